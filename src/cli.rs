//! The command line as a typed [`Command`]: `git-credential-iam [OPTIONS] ACTION [OPTIONS]`.
//! Options may stand before or after the action (git appends the action to the helper line), as
//! `--name value` or `--name=value`. The account options go to [`Options`], which `config`
//! merges with the environment and the config file; each action's own options travel in its
//! variant.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::actions::output::Format;
use crate::actions::register::RegisterArgs;
use crate::actions::setup::SetupArgs;
use crate::actions::tokens::{ImportKind, parse_expires_at};
use crate::config::{OPTIONS, Opt, Options, help_lines};
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

/// Parses argv (without the program name).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation> {
    let mut o = Options::default();
    let mut words: Vec<String> = Vec::new();
    // The action options given, to check they belong to the action.
    let mut own: Vec<&'static Opt> = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|_| Error::Usage("an argument is not valid UTF-8".into()))?;
        let (opt, inline) = if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            if matches!(name, "client-secret" | "password" | "token") {
                return Err(Error::Usage(format!(
                    "--{name} is not accepted: a secret on the command line is visible to every \
                     user through ps; use a file (e.g. --client-secret-file)"
                )));
            }
            let opt = Opt::named(name).ok_or_else(|| {
                Error::Usage(format!("unknown option {}", shown(&format!("--{name}"))))
            })?;
            (opt, inline)
        } else if let Some(short) = arg.strip_prefix('-') {
            let opt = OPTIONS
                .iter()
                .find(|o| o.short.is_some_and(|c| short == c.to_string()))
                .ok_or_else(|| Error::Usage(format!("unknown option {}", shown(&arg))))?;
            (opt, None)
        } else {
            words.push(arg);
            continue;
        };
        if !opt.actions.is_empty() {
            own.push(opt);
        }
        if opt.takes_value() {
            let value = match inline {
                Some(v) => v,
                None => args
                    .next()
                    .and_then(|v| v.into_string().ok())
                    .ok_or_else(|| Error::Usage(format!("--{} needs a value", opt.name)))?,
            };
            o.set(opt.name, value)?;
        } else if inline.is_some() {
            return Err(Error::Usage(format!("--{} takes no value", opt.name)));
        } else {
            o.switch(opt)?;
        }
    }
    let mut words = words.into_iter();
    let action = words.next();
    // `setup URL`: the one argument an action takes.
    let setup_url = if action.as_deref() == Some("setup") {
        words.next()
    } else {
        None
    };
    if words.next().is_some() {
        // Never echoed: it could be a token given as an argument by mistake.
        return Err(Error::Usage(
            "unexpected extra argument after the action (not shown: it could be a secret); \
             give one action, and pass tokens on stdin"
                .into(),
        ));
    }
    let config = o.config.take();
    if let Some(a) = action.as_deref()
        && KNOWN.contains(&a)
        && let Some(opt) = own.iter().find(|o| !o.actions.contains(&a))
        && o.help != Some(true)
        && o.version != Some(true)
    {
        return Err(Error::Usage(format!(
            "--{} is for {}, not {a}",
            opt.name,
            opt.actions.join(" and ")
        )));
    }
    let command = command(action, setup_url, &mut o)?;
    Ok(Invocation {
        command,
        options: o,
        config,
    })
}

/// The actions this version knows (any other is ignored, as git's protocol says).
const KNOWN: &[&str] = &[
    "get", "erase", "store", "login", "logout", "status", "token", "import", "register", "setup",
];

/// The command of `action`, with its own options taken out of `o`.
fn command(action: Option<String>, url: Option<String>, o: &mut Options) -> Result<Command> {
    let on = |b: Option<bool>| b.unwrap_or(false);
    if on(o.help) {
        return Ok(Command::Help);
    }
    if on(o.version) {
        return Ok(Command::Version);
    }
    let Some(action) = action else {
        return Err(Error::Usage(
            "no action given (get, store, erase, login, logout, status)".into(),
        ));
    };
    Ok(match action.as_str() {
        "get" => Command::Get,
        "erase" => Command::Erase,
        "store" => Command::Store,
        "login" => Command::Login,
        "logout" => Command::Logout,
        "status" => Command::Status,
        // --scope/--audience on `token` ask for a narrower token of the account.
        "token" => Command::Token {
            format: Format::parse(o.format.as_deref().unwrap_or("raw"))?,
            scope: o.scope.take(),
            audience: o.audience.take(),
        },
        "import" => Command::Import {
            kind: if on(o.access_token) {
                ImportKind::AccessToken
            } else {
                ImportKind::RefreshToken
            },
            expires_at: o.expires_at.as_deref().map(parse_expires_at).transpose()?,
        },
        "register" => Command::Register(RegisterArgs {
            confidential: on(o.confidential),
            print: on(o.print),
        }),
        "setup" => Command::Setup(SetupArgs {
            url,
            git_file: o.file.take(),
            undo: on(o.undo),
            no_login: on(o.no_login),
            confidential: on(o.confidential),
        }),
        _ => Command::Unknown, // git's protocol: unknown actions are ignored
    })
}

/// An argument quoted in an error only when it looks like an option name, never a secret.
fn shown(arg: &str) -> String {
    let plain = arg.len() <= 32
        && arg
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if plain {
        arg.to_string()
    } else {
        "(not shown)".into()
    }
}

/// The usage text printed by `--help`: the actions, then the option table.
pub fn usage() -> String {
    format!(
        "\
git-credential-iam: OAuth2/OIDC access tokens from INDIGO IAM (or any OIDC provider) for git

Usage: git-credential-iam [OPTIONS] <ACTION>

Actions:
  get, store, erase   git's credential protocol on stdin/stdout (git runs these)
  login               sign in now (device flow) and cache the tokens
  logout              forget the account's tokens and revoke the refresh token
  status              list cached logins: expiry, whether a refresh token is held
  token               print a valid access token (--format raw|header|json|exec-credential|wlcg)
  import              seed the cache from a token on stdin (a refresh token, or --access-token)
  register            register a new client (RFC 7591) and save it as --account NAME
  setup               setup URL: an account, git's config for URL and a sign-in, in one go

Options (also GIT_CREDENTIAL_IAM_<OPTION>, e.g. GIT_CREDENTIAL_IAM_CLIENT_ID, and config.toml):
{}
Exit codes: 0 success, 1 local failure (including a failed write of git's answer), 2 usage
error, 3 login needed, 4 provider or network error.
",
        help_lines()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Invocation> {
        super::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn options_before_and_after_action() {
        let inv = parse(&[
            "--issuer",
            "https://i/",
            "get",
            "--client-id=c",
            "--non-interactive",
        ])
        .unwrap();
        assert!(matches!(inv.command, Command::Get));
        assert_eq!(inv.options.issuer.as_deref(), Some("https://i/"));
        assert_eq!(inv.options.client_id.as_deref(), Some("c"));
        assert_eq!(inv.options.interactive, Some(false));
        let o = parse(&["get", "--qr", "--no-browser"]).unwrap().options;
        assert_eq!((o.qr, o.browser), (Some(true), Some(false)));
        let o = parse(&["--no-qr", "--browser", "login"]).unwrap().options;
        assert_eq!((o.qr, o.browser), (Some(false), Some(true)));
        assert!(parse(&["--qr=yes"]).is_err(), "a switch takes no value");
        assert!(matches!(
            parse(&["frobnicate"]).unwrap().command,
            Command::Unknown
        ));
        assert!(matches!(
            parse(&["get", "-h"]).unwrap().command,
            Command::Help
        ));
        assert!(matches!(parse(&["-V"]).unwrap().command, Command::Version));
        let e = parse(&["--issuer=x"]).unwrap_err().to_string();
        assert!(e.contains("no action given"), "{e}");
    }

    #[test]
    fn each_action_gets_its_own_fields() {
        let inv = parse(&["token", "--scope", "s", "--audience=a", "--format", "json"]).unwrap();
        let Command::Token {
            format,
            scope,
            audience,
        } = inv.command
        else {
            panic!("not token")
        };
        assert_eq!(format, Format::Json);
        assert_eq!(
            (scope.as_deref(), audience.as_deref()),
            (Some("s"), Some("a"))
        );
        assert!(
            inv.options.scope.is_none(),
            "narrowing, not the account's scope"
        );
        let inv = parse(&["import", "--access-token", "--expires-at", "100"]).unwrap();
        assert!(matches!(
            inv.command,
            Command::Import {
                kind: ImportKind::AccessToken,
                expires_at: Some(100)
            }
        ));
        let inv = parse(&["--config", "/c.toml", "register", "--confidential"]).unwrap();
        assert!(matches!(
            inv.command,
            Command::Register(RegisterArgs {
                confidential: true,
                print: false
            })
        ));
        assert_eq!(inv.config.as_deref(), Some(std::path::Path::new("/c.toml")));
        assert!(parse(&["token", "--format", "xml"]).is_err());
        // An action's own option on another action is a mistake, said so.
        for (args, want) in [
            (
                &["get", "--format", "json"][..],
                "--format is for token, not get",
            ),
            (
                &["login", "--access-token"],
                "--access-token is for import, not login",
            ),
            (&["--undo", "token"], "--undo is for setup, not token"),
            (
                &["--confidential", "login"],
                "--confidential is for register and setup, not login",
            ),
        ] {
            let e = parse(args).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        assert!(
            parse(&["frobnicate", "--format", "json"]).is_ok(),
            "unknown: ignored"
        );
        assert!(parse(&["--confidential", "setup", "https://a/"]).is_ok());
    }

    #[test]
    fn refuses_secrets_and_unknowns() {
        assert!(
            parse(&["--client-secret", "x"])
                .unwrap_err()
                .to_string()
                .contains("ps")
        );
        assert!(parse(&["--bogus"]).is_err());
        // A token given as an option's value by mistake is not echoed either.
        for args in [
            ["token", "--format", "eyJhbGciOiJSUzI1NiJ9.SECRET"],
            ["import", "--expires-at", "eyJhbGciOiJSUzI1NiJ9.SECRET"],
            ["get", "--auth", "eyJhbGciOiJSUzI1NiJ9.SECRET"],
            ["get", "--timeout", "eyJhbGciOiJSUzI1NiJ9.SECRET"],
            ["get", "--resource", "eyJhbGciOiJSUzI1NiJ9.SECRET"],
        ] {
            let e = parse(&args).unwrap_err().to_string();
            assert!(!e.contains("SECRET") && e.contains(args[1]), "{e}");
        }
        for secret in [
            "eyJhbGciOiJSUzI1NiJ9.SECRET",
            "--eyJSECRETTOKENVALUE0123456789ABCDEF",
            "-eyJSECRET",
        ] {
            let e = parse(&["import", secret]).unwrap_err().to_string();
            assert!(!e.contains("SECRET"), "{e}");
        }
        // Only `setup` takes an argument, and only one.
        assert!(parse(&["login", "https://git.example.org/"]).is_err());
        assert!(parse(&["setup", "https://a/", "https://b/"]).is_err());
        let inv = parse(&[
            "--account",
            "x",
            "setup",
            "https://a/",
            "--file=f",
            "--undo",
            "--no-login",
        ])
        .unwrap();
        let Command::Setup(a) = inv.command else {
            panic!("not setup")
        };
        assert_eq!(a.url.as_deref(), Some("https://a/"));
        assert_eq!(a.git_file.as_deref(), Some(std::path::Path::new("f")));
        assert!(a.undo && a.no_login);
        let o = parse(&["get", "--url", "https://a/", "--url=b.example"])
            .unwrap()
            .options;
        assert_eq!(o.urls, ["https://a/", "b.example"]);
        assert!(parse(&["--min-lifetime", "abc"]).is_err());
        assert!(parse(&["--auth", "digest"]).is_err());
        assert!(
            parse(&["--issuer"])
                .unwrap_err()
                .to_string()
                .contains("needs a value")
        );
    }
}
