//! git-credential-iam: OAuth2/OIDC access tokens from INDIGO IAM (or any OIDC provider) for git.
//!
//! # Map
//! `main` hands argv, the standard streams, the clock and the environment (one `getenv`, in
//! [`Io`]) to [`run`]. The rooms, each a folder or a file:
//! - `cli`: argv → a typed `Command` (each action with its own fields).
//! - `config/`: one option table (`options.rs`) drives the command line, the environment
//!   (`GIT_CREDENTIAL_IAM_*`), the config file's keys (`file.rs`) and `--help`; `mod.rs` merges
//!   them into the `Settings` of one account and decides whether a request's URL is tied to it.
//! - `credential`: git's `key=value` credential protocol (the request, the answer).
//! - `trust`: where a token may go; every URL parsed by the WHATWG parser.
//! - `validate`: what a token from outside must be before it is kept or printed.
//! - `store/`: the cache (`cache.rs`, one JSON file per account), private atomic files
//!   (`files.rs`) and the account's lock (`lock/`: `flock`, or an exclusive create on shared
//!   file systems).
//! - `provider/`: everything that talks to the provider, over one HTTP agent: discovery, the
//!   device flow, the password grant, refresh, revocation, registration.
//! - `person/`: what the person sees and types: where prompts go, the device sign-in (QR code,
//!   browser, live status line), the password prompts. It never talks to the network.
//! - `actions/`: `get`, `erase`, `login`, `logout`, `status` (`helper.rs`), `token`/`import`
//!   (`tokens.rs`, printed by `output.rs`), `register`, `setup`, all obtaining tokens through
//!   the one sign-in pipeline (`pipeline.rs`: lock, re-read, refresh, dead login, provider down,
//!   flow, save).
//! - `sys/`: the operating system: core dumps off, no-follow opens, signal deferral, the uid.
//! - `error`, `secret`, `encoding`: the shared vocabulary (typed errors with exit codes,
//!   `Secret` that never prints, small encoders).
//!
//! Rules: only the pipeline puts a token into the cache, under the account's lock (`erase` and
//! `logout` only take one out, under the same lock); only
//! `provider/` opens network connections; only `person/` and `Io::say` write to the person;
//! stdout carries only git's answer or `token`'s output. The hot path (a cached, valid token)
//! reads one small file and touches no network. Imports go down this list's dependency order
//! (`actions` → `person`/`provider` → `store` → `config`/`trust`/`validate` → vocabulary), with
//! no cycles.

mod actions;
mod cli;
mod config;
mod credential;
mod encoding;
mod error;
mod person;
mod provider;
mod secret;
mod store;
mod sys;
mod trust;
mod validate;

pub use actions::Io;
pub use config::{Options, Settings};
pub use error::Error;
pub use secret::Secret;
pub use sys::hardening::disable_core_dumps;

/// The token cache's format, as the integration tests and fuzz targets read and write it.
pub mod cache {
    pub use crate::store::cache::{
        AccountFiles, Entry, VERSION, account_key, account_key_with, load,
    };
    pub use crate::store::files::{ensure_dir, fnv1a};
}

/// git's credential protocol parser, for the integration tests and fuzz targets.
pub mod protocol {
    pub use crate::credential::{MAX_INPUT, MAX_LINE, Request};
}

/// The provider's answers as the helper checks them, for the fuzz targets.
pub mod oauth {
    pub use crate::provider::{
        MAX_TOKEN_LIFETIME_SECS, device, discovery, parse_token_response, registration,
    };
    /// The rules a token from outside must pass before it is kept or printed.
    pub mod validate {
        pub use crate::validate::{access_token, refresh_token, token_type};
    }
}

/// The QR code of the sign-in link, for its golden-file test.
pub mod qr {
    pub use crate::person::qr::{Ink, draw, encode};
}

use std::ffi::OsString;
use std::io::BufRead;

use actions::{helper, register, setup, tokens};
use cli::{Command, Invocation};
use config::ForRequest;
use credential::Request;
use error::{EXIT_OK, Result};

/// Runs the helper and returns the exit code. Errors are printed once, on one line, on stderr.
/// The environment is read only through `io.getenv`.
pub fn run(args: Vec<OsString>, stdin: &mut dyn BufRead, io: &mut Io) -> u8 {
    // stdout is flushed here, inside the one error path: `main` may exit without Rust's flush.
    let done = cli::parse(args)
        .and_then(|inv| dispatch(inv, stdin, io))
        .and_then(|()| io.stdout.flush().map_err(error::Error::Output));
    match done {
        Ok(()) => EXIT_OK,
        Err(e) => {
            let _ = writeln!(io.stderr, "git-credential-iam: {e}");
            e.exit_code()
        }
    }
}

/// Runs one parsed command.
fn dispatch(inv: Invocation, stdin: &mut dyn BufRead, io: &mut Io) -> Result<()> {
    let Invocation {
        command,
        options,
        config,
    } = inv;
    let getenv = io.getenv;
    let config = config.as_deref();
    let account = |action: &str| {
        Settings::resolve(&options, config, getenv)?.ok_or_else(|| need_issuer(action))
    };
    match command {
        Command::Help => write_out(io, &cli::usage()),
        Command::Version => write_out(
            io,
            concat!("git-credential-iam ", env!("CARGO_PKG_VERSION"), "\n"),
        ),
        Command::Get | Command::Erase => {
            let req = Request::read_from(stdin)?;
            let asked = req.describe();
            let get = matches!(command, Command::Get);
            match Settings::for_request(&options, config, req.url().as_ref(), &asked, getenv)? {
                ForRequest::Serve(s) if get => helper::get(&s, &req, io),
                ForRequest::Serve(s) => helper::erase(&s, &req, io),
                // No account serves this URL: stay silent so git asks its next helper.
                ForRequest::Silent => Ok(()),
                // Exit 0 with nothing on stdout: git goes on to its next helper. `erase` stays
                // quiet: what git rejected there was never ours.
                ForRequest::Refuse(why) => {
                    if get {
                        io.say(&why);
                    }
                    Ok(())
                }
            }
        }
        Command::Store => {
            // The cache is ours; drain git's input so it never sees a broken pipe.
            let _ = Request::read_from(stdin);
            Ok(())
        }
        Command::Login => helper::login(&account("login")?, io),
        Command::Logout => helper::logout(&account("logout")?, io),
        Command::Status => status(&options, config, io),
        Command::Register(args) => register::run(&args, &options, config, io),
        Command::Setup(args) => setup::run(&args, &options, config, io),
        Command::Token {
            format,
            scope,
            audience,
        } => {
            let base = account("token")?;
            let mut target = base.clone();
            if let Some(s) = scope {
                target.scope = s;
            }
            if let Some(a) = audience {
                target.audience = Some(a).filter(|a| !a.is_empty());
            }
            tokens::token(&base, &target, format, io, getenv)
        }
        Command::Import { kind, expires_at } => {
            tokens::import(&account("import")?, kind, expires_at, stdin, io)
        }
        Command::Unknown => Ok(()), // git's protocol: unknown actions are ignored
    }
}

/// `status`: the cache directory and lock mode resolved as for every action.
fn status(options: &config::Options, config: Option<&std::path::Path>, io: &mut Io) -> Result<()> {
    let config::Local {
        cache_dir,
        lock_mode,
        file,
    } = config::Local::resolve(options, config, io.getenv)?;
    let names = |e: &store::cache::Entry| {
        file.accounts
            .iter()
            .filter(|(_, a)| {
                a.issuer.as_deref().or(file.defaults.issuer.as_deref()) == Some(e.issuer.as_str())
                    && a.client_id
                        .as_deref()
                        .or(file.defaults.client_id.as_deref())
                        == Some(e.client_id.as_str())
            })
            .map(|(n, _)| n.clone())
            .collect()
    };
    helper::status(&cache_dir, lock_mode, &names, io)
}

fn need_issuer(action: &str) -> Error {
    Error::Usage(format!(
        "{action} needs an issuer: pass --issuer URL and --client-id ID, or --account NAME"
    ))
}

fn write_out(io: &mut Io, text: &str) -> Result<()> {
    io.print(text)
}
