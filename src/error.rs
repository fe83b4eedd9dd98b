//! The one error type of the helper. Every variant carries the context a user needs (a file, a
//! host, an OAuth error code) and never a secret value: provider messages are redacted before
//! they get here. Each variant maps to a documented exit code.

use std::fmt;
use std::path::PathBuf;

/// Exit code: the action succeeded.
pub const EXIT_OK: u8 = 0;
/// Exit code: a local failure (cache file, lock, terminal, I/O, a failed write of the answer).
pub const EXIT_LOCAL: u8 = 1;
/// Exit code: bad usage, bad configuration or malformed input.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: no usable login and nobody can answer a prompt; run `git-credential-iam login`.
pub const EXIT_LOGIN_NEEDED: u8 = 3;
/// Exit code: the provider or the network failed or refused.
pub const EXIT_PROVIDER: u8 = 4;

/// Everything that can go wrong.
#[derive(Debug)]
pub enum Error {
    /// Bad command line or option value; the message names the fix.
    Usage(String),
    /// A configuration file that cannot be read or parsed.
    Config { path: PathBuf, message: String },
    /// Malformed input from git on stdin.
    Input(String),
    /// The answer could not be written to stdout (git closed the pipe, a full disk): a local
    /// I/O failure, not git's fault.
    Output(std::io::Error),
    /// A file-system operation failed.
    Io {
        context: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The cache is unusable (permissions, ownership, symlink).
    Cache { path: PathBuf, message: String },
    /// Another process holds the account's lock for longer than we wait.
    LockTimeout {
        path: PathBuf,
        holder: String,
        waited_secs: u64,
    },
    /// No usable login and no way to start one (non-interactive).
    LoginRequired(String),
    /// The network or TLS failed talking to `host`.
    Http { host: String, message: String },
    /// The provider answered something we cannot use (not JSON, missing fields, bad issuer).
    Provider { host: String, message: String },
    /// An OAuth error response (`error`, `error_description`), already redacted.
    OAuth {
        host: String,
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// The user denied the device authorization request.
    Denied { host: String },
    /// The device code expired before the user approved it.
    DeviceCodeExpired { host: String },
    /// The provider refused a refresh (HTTP 400 or 401) without naming a set-up mistake: the
    /// login is gone, whatever the body said. `reason` is the OAuth error (redacted) or a
    /// description of the body.
    RefreshRefused {
        host: String,
        status: u16,
        reason: String,
    },
    /// The password grant was refused (HTTP 400, 401 or 403): a wrong username or password,
    /// or a client that may not use the grant.
    WrongPassword {
        host: String,
        username: String,
        client_id: String,
    },
    /// The client may not use the password grant.
    GrantNotAllowed { host: String, client_id: String },
    /// The provider refused the `--resource` indicators (RFC 8707 `invalid_target`).
    ResourceRefused {
        host: String,
        status: u16,
        resources: Vec<String>,
        description: Option<String>,
    },
}

impl Error {
    /// Builds an [`Error::Io`].
    pub fn io(
        context: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            context: context.into(),
            path: path.into(),
            source,
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Config { .. } | Error::Input(_) => EXIT_USAGE,
            Error::LoginRequired(_) => EXIT_LOGIN_NEEDED,
            Error::Http { .. }
            | Error::Provider { .. }
            | Error::OAuth { .. }
            | Error::RefreshRefused { .. }
            | Error::Denied { .. }
            | Error::DeviceCodeExpired { .. }
            | Error::WrongPassword { .. }
            | Error::GrantNotAllowed { .. }
            | Error::ResourceRefused { .. } => EXIT_PROVIDER,
            Error::Io { .. }
            | Error::Output(_)
            | Error::Cache { .. }
            | Error::LockTimeout { .. } => EXIT_LOCAL,
        }
    }

    /// Whether this error names a set-up mistake (the client, its grants, the scope, the
    /// audience, the resources) rather than a dead login: the login is kept and the fix named.
    pub fn is_setup_error(&self) -> bool {
        match self {
            Error::OAuth { error, .. } => is_setup_mistake(error),
            Error::ResourceRefused { .. } => true,
            _ => false,
        }
    }

    /// Whether this OAuth error means the refresh token is dead and a new login is needed.
    /// Standard providers say `invalid_grant`; INDIGO IAM says 401 `invalid_token` for an
    /// unknown, expired or revoked refresh token.
    /// Any 400 or 401 answer to a refresh that names no set-up mistake is
    /// [`Error::RefreshRefused`], a dead login too.
    pub fn is_login_gone(&self) -> bool {
        match self {
            Error::OAuth { error, .. } => error == "invalid_grant" || error == "invalid_token",
            Error::RefreshRefused { .. } => true,
            _ => false,
        }
    }
}

/// Whether an OAuth `error` code names a set-up mistake (the client, its grants, the scope, the
/// audience) rather than a dead grant: a new sign-in would fail the same way, so the login is
/// kept and the fix named.
pub fn is_setup_mistake(error: &str) -> bool {
    oauth_fix(error).is_some()
}

/// What to do about the OAuth errors that mean a set-up mistake rather than a dead login.
fn oauth_fix(error: &str) -> Option<&'static str> {
    Some(match error {
        // IAM answers a wrong client secret with 401 "unauthorized", others with invalid_client.
        "invalid_client" | "unauthorized" => {
            "check --client-id, and --client-secret-file for a confidential client"
        }
        "unauthorized_client" => {
            "this client may not use this grant: ask the provider's administrator to enable it"
        }
        "invalid_scope" => "the client may not ask for these scopes: check --scope",
        "invalid_target" => "the provider refuses this audience or resource: check --audience",
        _ => return None,
    })
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m} (see git-credential-iam --help)"),
            Error::Config { path, message } => {
                write!(f, "config file {}: {message}", path.display())
            }
            Error::Input(m) => write!(f, "bad input from git: {m}"),
            Error::Output(e) => write!(f, "cannot write to stdout: {e}"),
            Error::Io {
                context,
                path,
                source,
            } => {
                write!(f, "{context} {}: {source}", path.display())
            }
            Error::Cache { path, message } => write!(f, "cache {}: {message}", path.display()),
            Error::LockTimeout {
                path,
                holder,
                waited_secs,
            } => write!(
                f,
                "gave up after {waited_secs} s waiting for {holder} holding the lock {}; \
                 if that process is stuck, stop it (or raise --lock-timeout)",
                path.display()
            ),
            Error::LoginRequired(m) => write!(f, "{m}"),
            Error::Http { host, message } => write!(f, "cannot reach {host}: {message}"),
            Error::Provider { host, message } => write!(f, "{host}: {message}"),
            Error::OAuth {
                host,
                status,
                error,
                description,
            } => {
                write!(f, "{host} refused (HTTP {status}): {error}")?;
                if let Some(d) = description {
                    write!(f, ": {d}")?;
                }
                if let Some(fix) = oauth_fix(error) {
                    write!(f, " ({fix})")?;
                }
                Ok(())
            }
            Error::Denied { host } => write!(f, "{host}: the sign-in request was denied"),
            Error::DeviceCodeExpired { host } => write!(
                f,
                "{host}: the sign-in code expired before it was approved; run the command again"
            ),
            Error::RefreshRefused {
                host,
                status,
                reason,
            } => write!(
                f,
                "{host} refused the saved refresh token (HTTP {status}, {reason})"
            ),
            Error::WrongPassword {
                host,
                username,
                client_id,
            } => write!(
                f,
                "{host}: wrong username or password (username {username:?}); or client \
                 {client_id} may not use the password grant (ask the provider's administrator \
                 to enable it, or use the device flow: --flow device)"
            ),
            Error::ResourceRefused {
                host,
                status,
                resources,
                description,
            } => {
                let given: Vec<String> = resources
                    .iter()
                    .map(|r| format!("--resource {r}"))
                    .collect();
                write!(
                    f,
                    "{host} refused {} (HTTP {status}): invalid_target",
                    given.join(" ")
                )?;
                if let Some(d) = description {
                    write!(f, ": {d}")?;
                }
                write!(
                    f,
                    "; check the resource URI (the provider must know it, and the client may \
                     have to be allowed it) or remove --resource"
                )
            }
            Error::GrantNotAllowed { host, client_id } => write!(
                f,
                "{host} does not allow the password flow for client {client_id} (or its client \
                 secret is wrong): ask your IAM administrator to enable the password grant for \
                 it, or use the device flow (--flow device)"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Output(source) => Some(source),
            _ => None,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth(error: &str) -> Error {
        Error::OAuth {
            host: "iam.example.org".into(),
            status: 401,
            error: error.into(),
            description: None,
        }
    }

    #[test]
    fn set_up_mistakes_name_the_fix() {
        let m = oauth("unauthorized").to_string();
        assert!(m.contains("--client-secret-file"), "{m}");
        let m = oauth("invalid_scope").to_string();
        assert!(m.contains("--scope"), "{m}");
        let m = oauth("invalid_grant").to_string();
        assert!(m.ends_with("invalid_grant"), "no fix for a dead login: {m}");
        assert!(!m.contains('\n'), "{m}");
    }

    #[test]
    fn a_refused_refresh_is_a_dead_login_but_a_set_up_mistake_is_not() {
        let e = Error::RefreshRefused {
            host: "sso.example".into(),
            status: 400,
            reason: "empty body".into(),
        };
        assert!(e.is_login_gone());
        assert_eq!(
            e.to_string(),
            "sso.example refused the saved refresh token (HTTP 400, empty body)"
        );
        assert!(oauth("invalid_token").is_login_gone());
        assert!(!oauth("invalid_client").is_login_gone());
        for setup in [
            "invalid_client",
            "unauthorized",
            "unauthorized_client",
            "invalid_scope",
        ] {
            assert!(is_setup_mistake(setup), "{setup}");
        }
        assert!(!is_setup_mistake("invalid_request"));
    }

    #[test]
    fn a_refused_resource_names_the_option() {
        let e = Error::ResourceRefused {
            host: "iam.example.org".into(),
            status: 400,
            resources: vec!["https://api.example.org/".into()],
            description: None,
        };
        assert!(e.is_setup_error() && !e.is_login_gone());
        assert_eq!(e.exit_code(), EXIT_PROVIDER);
        let m = e.to_string();
        assert!(
            m.starts_with("iam.example.org refused --resource https://api.example.org/ (HTTP 400): invalid_target;")
                && m.ends_with("or remove --resource"),
            "{m}"
        );
    }

    #[test]
    fn a_failed_answer_is_a_local_failure_not_bad_input() {
        let e = Error::Output(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert_eq!(e.exit_code(), EXIT_LOCAL);
        let m = e.to_string();
        assert!(m.starts_with("cannot write to stdout"), "{m}");
        assert!(!m.contains("bad input"), "{m}");
    }

    #[test]
    fn a_refused_password_names_both_causes() {
        let m = Error::WrongPassword {
            host: "sso.example".into(),
            username: "alice".into(),
            client_id: "cli".into(),
        }
        .to_string();
        assert!(m.contains("wrong username or password"), "{m}");
        assert!(
            m.contains("client cli may not use the password grant"),
            "{m}"
        );
        assert!(!m.contains('\n'), "{m}");
    }
}
