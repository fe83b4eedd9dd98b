//! The command line as a typed [`Command`]: `git-credential-iam [OPTIONS] ACTION [OPTIONS]`.
//! Options may stand before or after the action (git appends the action to the helper line), as
//! `--name value` or `--name=value`. The account options go to [`Options`], which `config`
//! merges with the environment and the config file; each action's own options travel in its
//! variant.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::actions::output::Format;
use crate::actions::tokens::{ImportKind, parse_expires_at};
use crate::config::Options;
use crate::config::cli::Cli;
use crate::error::{Error, Result};

/// What the command line asks for: the action, the account options, the config file.
#[derive(Debug)]
pub struct Invocation {
    pub command: Command,
    /// The account options given on the command line.
    pub options: Options,
    /// `--config FILE`.
    pub config: Option<PathBuf>,
}

/// One action with its own arguments.
#[derive(Debug)]
pub enum Command {
    /// git's `get`: answer with a token for the URL on stdin.
    Get,
    /// git's `erase`: drop the rejected token.
    Erase,
    /// git's `store`: nothing to do (the cache is ours).
    Store,
    Login,
    Logout,
    Status,
    /// `token`: `scope`/`audience` ask for a narrower token than the account's.
    Token {
        format: Format,
        scope: Option<String>,
        audience: Option<String>,
    },
    /// `import`: a token on stdin.
    Import {
        kind: ImportKind,
        expires_at: Option<i64>,
    },
    Register(RegisterArgs),
    Setup(SetupArgs),
    Help,
    Version,
    /// An action this version does not know: git's protocol says to ignore it.
    Unknown,
}

/// `register`'s own arguments.
#[derive(Debug, Default)]
pub struct RegisterArgs {
    /// `--confidential`: a client with a secret.
    pub confidential: bool,
    /// `--print`: show the registration response (secrets replaced).
    pub print: bool,
}

/// `setup`'s own arguments.
#[derive(Debug, Default)]
pub struct SetupArgs {
    /// The git server's URL (`setup URL`, or the one `--url`).
    pub url: Option<String>,
    /// `--file FILE`: the git config file to write instead of `--global`.
    pub git_file: Option<PathBuf>,
    /// `--undo`.
    pub undo: bool,
    /// `--no-login`.
    pub no_login: bool,
    /// `--confidential`, for a client registered on the way.
    pub confidential: bool,
}

/// Parses argv (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation> {
    let cli = Cli::parse(args)?;
    let mut options = cli.options;
    let command = if cli.help {
        Command::Help
    } else if cli.version {
        Command::Version
    } else {
        let Some(action) = cli.action.as_deref() else {
            return Err(Error::Usage(
                "no action given (get, store, erase, login, logout, status)".into(),
            ));
        };
        match action {
            "get" => Command::Get,
            "erase" => Command::Erase,
            "store" => Command::Store,
            "login" => Command::Login,
            "logout" => Command::Logout,
            "status" => Command::Status,
            "token" => Command::Token {
                format: Format::parse(cli.format.as_deref().unwrap_or("raw"))?,
                scope: options.scope.take(),
                audience: options.audience.take(),
            },
            "import" => Command::Import {
                kind: if cli.import_access_token {
                    ImportKind::AccessToken
                } else {
                    ImportKind::RefreshToken
                },
                expires_at: cli
                    .expires_at
                    .as_deref()
                    .map(parse_expires_at)
                    .transpose()?,
            },
            "register" => Command::Register(RegisterArgs {
                confidential: cli.confidential,
                print: cli.print,
            }),
            "setup" => Command::Setup(SetupArgs {
                url: cli.setup_url,
                git_file: cli.git_file,
                undo: cli.undo,
                no_login: cli.no_login,
                confidential: cli.confidential,
            }),
            _ => Command::Unknown,
        }
    };
    Ok(Invocation {
        command,
        options,
        config: cli.config_file,
    })
}

/// The usage text printed by `--help`.
pub fn usage() -> &'static str {
    crate::config::cli::USAGE
}
