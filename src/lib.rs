//! git-credential-iam: OAuth2/OIDC access tokens from INDIGO IAM (or any OIDC provider) for git.
//!
//! Architecture: `main` hands argv, the standard streams and the environment to [`run`], which
//! parses the command line ([`cli`]), resolves the account's settings ([`config`]) and dispatches
//! to the actions in [`helper`]. git's `key=value` protocol lives in [`protocol`]; the token cache
//! in [`cache`] (one JSON file per account, atomic writes) guarded by [`lock`]; everything that
//! talks to the provider in [`oauth`] (discovery, device flow, refresh, revocation) over one HTTP
//! agent. A device sign-in is shown to the person by [`signin`]: the instructions on the
//! destination [`prompt`] picks, a [`qr`] code of the link, the page opened by [`browser`], and a
//! live status line drawn by [`progress`]. `setup` ([`setup`]) writes an account (through
//! [`register`]) and git's configuration for one URL, signs in and checks with git. Secrets travel wrapped in [`secret::Secret`] so they
//! cannot reach a log or a `Debug` print. The hot path (a cached, valid token) reads one small
//! file and touches no network.

mod actions;
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

pub use actions::helper::Io;
pub use config::{Options, Settings};
pub use error::Error;
pub use secret::Secret;
pub use sys::hardening::disable_core_dumps;

/// The token cache's format, as the integration tests and fuzz targets read and write it.
pub mod cache {
    pub use crate::store::cache::{AccountFiles, Entry, VERSION, account_key, load};
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

use actions::{helper, output, register, setup, tokens};
use config::cli::Cli;
use config::{ForRequest, cli};
use credential::Request;
use error::{EXIT_OK, Result};

/// Runs the helper and returns the exit code. Errors are printed once, on one line, on stderr.
pub fn run(
    args: Vec<OsString>,
    stdin: &mut dyn BufRead,
    io: &mut Io,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> u8 {
    match dispatch(args, stdin, io, getenv) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            let _ = writeln!(io.stderr, "git-credential-iam: {e}");
            e.exit_code()
        }
    }
}

fn dispatch(
    args: Vec<OsString>,
    stdin: &mut dyn BufRead,
    io: &mut Io,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    let cli = Cli::parse(args)?;
    if cli.help {
        return write_out(io, cli::USAGE);
    }
    if cli.version {
        return write_out(
            io,
            concat!("git-credential-iam ", env!("CARGO_PKG_VERSION"), "\n"),
        );
    }
    let Some(action) = cli.action.as_deref() else {
        return Err(Error::Usage(
            "no action given (get, store, erase, login, logout, status)".into(),
        ));
    };
    let config = cli.config_file.as_deref();
    match action {
        "get" | "erase" => {
            let req = Request::read_from(stdin)?;
            let asked = req.describe();
            let s = match Settings::for_request(
                &cli.options,
                config,
                req.url().as_ref(),
                &asked,
                getenv,
            )? {
                ForRequest::Serve(s) => s,
                // No account serves this URL: stay silent so git asks its next helper.
                ForRequest::Silent => return Ok(()),
                // Exit 0 with nothing on stdout: git goes on to its next helper. `erase` stays
                // quiet: what git rejected there was never ours.
                ForRequest::Refuse(why) => {
                    if action == "get" {
                        io.say(&why);
                    }
                    return Ok(());
                }
            };
            if action == "get" {
                helper::get(&s, &req, io)
            } else {
                helper::erase(&s, &req, io)
            }
        }
        "store" => {
            // The cache is ours; drain git's input so it never sees a broken pipe.
            let _ = Request::read_from(stdin);
            Ok(())
        }
        "login" | "logout" => {
            let s = Settings::resolve(&cli.options, config, getenv)?
                .ok_or_else(|| need_issuer(action))?;
            if action == "login" {
                helper::login(&s, io)
            } else {
                helper::logout(&s, io)
            }
        }
        "status" => status(&cli, config, io, getenv),
        "register" => register::run(&cli, config, io, getenv),
        "setup" => setup::run(&cli, config, io, getenv),
        "token" => {
            let format = output::Format::parse(cli.format.as_deref().unwrap_or("raw"))?;
            // --scope/--audience on `token` ask for a narrower token of the account.
            let mut base_opts = cli.options.clone();
            let (scope, audience) = (base_opts.scope.take(), base_opts.audience.take());
            let base = Settings::resolve(&base_opts, config, getenv)?
                .ok_or_else(|| need_issuer(action))?;
            let mut target = base.clone();
            if let Some(s) = scope {
                target.scope = s;
            }
            if let Some(a) = audience {
                target.audience = Some(a).filter(|a| !a.is_empty());
            }
            tokens::token(&base, &target, format, io, getenv)
        }
        "import" => {
            let s = Settings::resolve(&cli.options, config, getenv)?
                .ok_or_else(|| need_issuer(action))?;
            let kind = if cli.import_access_token {
                tokens::ImportKind::AccessToken
            } else {
                tokens::ImportKind::RefreshToken
            };
            let exp = cli
                .expires_at
                .as_deref()
                .map(tokens::parse_expires_at)
                .transpose()?;
            tokens::import(&s, kind, exp, stdin, io)
        }
        _ => Ok(()), // git's protocol: unknown actions are ignored
    }
}

fn status(
    cli: &Cli,
    config: Option<&std::path::Path>,
    io: &mut Io,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    let env = config::Options::from_env(getenv)?;
    let explicit = config::explicit_config_path(config, getenv);
    let file_path = explicit.clone().or_else(config::default_config_path);
    let file = match &file_path {
        Some(p) => config::ConfigFile::load(p, explicit.is_some())?,
        None => config::ConfigFile::default(),
    };
    let cache_dir = cli
        .options
        .cache_dir
        .clone()
        .or(env.cache_dir)
        .or(file.defaults.cache_dir.clone())
        .map(config::checked_cache_dir)
        .transpose()?
        .or_else(config::default_cache_dir)
        .ok_or_else(|| {
            Error::Usage("cannot find the cache directory: pass --cache-dir DIR".into())
        })?;
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
    let lock_mode = cli
        .options
        .lock_mode
        .or(env.lock_mode)
        .or(file.defaults.lock_mode)
        .unwrap_or(config::LockMode::Auto);
    helper::status(&cache_dir, lock_mode, &names, io)
}

fn need_issuer(action: &str) -> Error {
    Error::Usage(format!(
        "{action} needs an issuer: pass --issuer URL and --client-id ID, or --account NAME"
    ))
}

fn write_out(io: &mut Io, text: &str) -> Result<()> {
    io.stdout
        .write_all(text.as_bytes())
        .map_err(|e| Error::io("cannot write to", "stdout", e))
}
