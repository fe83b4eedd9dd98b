//! The command line: `git-credential-iam [OPTIONS] ACTION [OPTIONS]`. Options may stand before
//! or after the action (git appends the action to the helper line), as `--name value` or
//! `--name=value`. This module only splits argv; `config` merges it with the environment and
//! the config file.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::config::Options;
use crate::error::{Error, Result};

/// What the command line asks for.
#[derive(Debug, Default)]
pub struct Cli {
    /// The action word (`get`, `store`, `erase`, `login`, …), if any.
    pub action: Option<String>,
    /// Options given on the command line.
    pub options: Options,
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `--help`.
    pub help: bool,
    /// `--version`.
    pub version: bool,
    /// `token --format FORMAT`.
    pub format: Option<String>,
    /// `import --expires-at TIME`.
    pub expires_at: Option<String>,
    /// `import --access-token` (default: a refresh token).
    pub import_access_token: bool,
    /// `register --confidential`.
    pub confidential: bool,
    /// `register --print`.
    pub print: bool,
    /// `setup URL`: the git server's URL (the one argument after `setup`).
    pub setup_url: Option<String>,
    /// `setup --file FILE`: the git config file to write instead of `--global`.
    pub git_file: Option<PathBuf>,
    /// `setup --undo`.
    pub undo: bool,
    /// `setup --no-login`.
    pub no_login: bool,
}

/// The usage text printed by `--help`.
pub const USAGE: &str = "\
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
  --issuer URL               the OIDC issuer (https://iam.example.org/)
  --client-id ID             the OAuth client id
  --client-secret-file FILE  file holding the client secret (confidential clients)
  --scope \"S1 S2\"            scopes to ask for [default: \"openid offline_access\"]
  --audience AUD             audience of the token (INDIGO IAM's `audience` parameter)
  --account NAME             a named account from the config file
  --url URL                  a URL (prefix) or host the token may go to; repeatable. git gets
                             a token only for a URL tied to the account: one of these, else
                             the account's urls
  --config FILE              config file [default: $XDG_CONFIG_HOME/git-credential-iam/config.toml]
  --cache-dir DIR            where tokens are cached [default: $XDG_STATE_HOME/git-credential-iam]
  --min-lifetime SECS        do not serve a token expiring sooner than this [default: 60]
  --username NAME            the username git is told in Basic mode [default: git's, or oauth2]
  --auth auto|basic|bearer   how git sends the token [default: auto]
  --interactive              always allow the device flow (instructions on stderr)
  --non-interactive          never prompt; fail with exit code 3 when a login is needed
  --qr, --no-qr              draw the sign-in link as a QR code [default: on a wide terminal]
  --browser, --no-browser    open the sign-in page in a browser [default: on a local desktop,
                             not over SSH; the program is $BROWSER, else the system's]
  --ca-file FILE             extra trusted CA certificates (PEM)
  --timeout SECS             network timeout per request [default: 30]
  --lock-timeout SECS        longest wait for another process's login [default: 300]
  --lock-mode MODE           auto, flock or create: how the account is locked; auto takes an
                             exclusive create on NFS, AFS, SMB, FUSE, Lustre… [default: auto]
  --flow device|password     how a new login is made [default: device]; password is deprecated
  --password-file FILE       password flow: read the password from FILE
  --password-env NAME        password flow: read the password from environment variable NAME
  --format FORMAT            token: raw, header, json, exec-credential or wlcg [default: raw]
  --access-token             import: stdin holds an access token (default: a refresh token)
  --expires-at TIME          import --access-token: expiry, Unix seconds or RFC 3339
                             (default: the JWT's exp claim)
  --confidential             register: ask for a client with a secret (default: public)
  --print                    register: show the registration response (secrets replaced)
  --file FILE                setup: write git's configuration to FILE (a repository's
                             .git/config, a CI image's) instead of git config --global
  --no-login                 setup: do not sign in now (nor check with git ls-remote)
  --undo                     setup: remove what setup URL added, and nothing else
  -h, --help                 this text
  -V, --version              the version

Exit codes: 0 success, 1 local failure, 2 usage error, 3 login needed, 4 provider or network error.
";

/// Options that take a value, by their long name.
const VALUE_OPTIONS: &[&str] = &[
    "issuer",
    "client-id",
    "client-secret-file",
    "scope",
    "audience",
    "account",
    "config",
    "cache-dir",
    "min-lifetime",
    "username",
    "auth",
    "ca-file",
    "timeout",
    "lock-timeout",
    "lock-mode",
    "flow",
    "password-file",
    "password-env",
    "format",
    "expires-at",
    "url",
    "file",
];

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

impl Cli {
    /// Parses argv (without the program name).
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Cli> {
        let mut cli = Cli::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let arg = arg
                .into_string()
                .map_err(|_| Error::Usage("an argument is not valid UTF-8".into()))?;
            let Some(long) = arg.strip_prefix("--") else {
                match arg.as_str() {
                    "-h" => cli.help = true,
                    "-V" => cli.version = true,
                    s if s.starts_with('-') => {
                        return Err(Error::Usage(format!("unknown option {}", shown(s))));
                    }
                    _ if cli.action.is_none() => cli.action = Some(arg),
                    // `setup URL`: the one argument an action takes.
                    _ if cli.action.as_deref() == Some("setup") && cli.setup_url.is_none() => {
                        cli.setup_url = Some(arg)
                    }
                    // Never echoed: it could be a token given as an argument by mistake.
                    _ => {
                        return Err(Error::Usage(
                            "unexpected extra argument after the action (not shown: it could \
                             be a secret); give one action, and pass tokens on stdin"
                                .into(),
                        ));
                    }
                }
                continue;
            };
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (long.to_string(), None),
            };
            if VALUE_OPTIONS.contains(&name.as_str()) {
                let value = match inline {
                    Some(v) => v,
                    None => args
                        .next()
                        .and_then(|v| v.into_string().ok())
                        .ok_or_else(|| Error::Usage(format!("--{name} needs a value")))?,
                };
                cli.set(&name, value)?;
            } else {
                if inline.is_some() {
                    return Err(Error::Usage(format!("--{name} takes no value")));
                }
                match name.as_str() {
                    "help" => cli.help = true,
                    "version" => cli.version = true,
                    "interactive" => cli.options.interactive = Some(true),
                    "non-interactive" => cli.options.interactive = Some(false),
                    "qr" => cli.options.qr = Some(true),
                    "no-qr" => cli.options.qr = Some(false),
                    "browser" => cli.options.browser = Some(true),
                    "no-browser" => cli.options.browser = Some(false),
                    "access-token" => cli.import_access_token = true,
                    "refresh-token" => cli.import_access_token = false,
                    "confidential" => cli.confidential = true,
                    "print" => cli.print = true,
                    "undo" => cli.undo = true,
                    "no-login" => cli.no_login = true,
                    "client-secret" | "password" | "token" => {
                        return Err(Error::Usage(format!(
                            "--{name} is not accepted: a secret on the command line is visible \
                             to every user through ps; use a file (e.g. --client-secret-file)"
                        )));
                    }
                    _ => {
                        return Err(Error::Usage(format!(
                            "unknown option {}",
                            shown(&format!("--{name}"))
                        )));
                    }
                }
            }
        }
        Ok(cli)
    }

    fn set(&mut self, name: &str, value: String) -> Result<()> {
        match name {
            "config" => self.config_file = Some(value.into()),
            "format" => self.format = Some(value),
            "expires-at" => self.expires_at = Some(value),
            "file" => self.git_file = Some(value.into()),
            _ => return self.options.set(name, value),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli> {
        Cli::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn options_before_and_after_action() {
        let cli = parse(&[
            "--issuer",
            "https://i/",
            "get",
            "--client-id=c",
            "--non-interactive",
        ])
        .unwrap();
        assert_eq!(cli.action.as_deref(), Some("get"));
        assert_eq!(cli.options.issuer.as_deref(), Some("https://i/"));
        assert_eq!(cli.options.client_id.as_deref(), Some("c"));
        assert_eq!(cli.options.interactive, Some(false));
        let cli = parse(&["get", "--qr", "--no-browser"]).unwrap();
        assert_eq!(
            (cli.options.qr, cli.options.browser),
            (Some(true), Some(false))
        );
        let cli = parse(&["--no-qr", "--browser", "login"]).unwrap();
        assert_eq!(
            (cli.options.qr, cli.options.browser),
            (Some(false), Some(true))
        );
        assert!(parse(&["--qr=yes"]).is_err(), "a switch takes no value");
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
        for secret in [
            "eyJhbGciOiJSUzI1NiJ9.SECRET",
            "--eyJSECRETTOKENVALUE0123456789ABCDEF",
        ] {
            let e = parse(&["import", secret]).unwrap_err().to_string();
            assert!(!e.contains("SECRET"), "{e}");
        }
        // Only `setup` takes an argument, and only one.
        assert!(parse(&["login", "https://git.example.org/"]).is_err());
        assert!(parse(&["setup", "https://a/", "https://b/"]).is_err());
        let cli = parse(&[
            "--account",
            "x",
            "setup",
            "https://a/",
            "--file=f",
            "--undo",
            "--no-login",
        ])
        .unwrap();
        assert_eq!(cli.setup_url.as_deref(), Some("https://a/"));
        assert_eq!(cli.git_file.as_deref(), Some(std::path::Path::new("f")));
        assert!(cli.undo && cli.no_login);
        let cli = parse(&["get", "--url", "https://a/", "--url=b.example"]).unwrap();
        assert_eq!(cli.options.urls, ["https://a/", "b.example"]);
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
