//! The one place that reads options: the command line (parsed by `cli`), the environment
//! (`GIT_CREDENTIAL_IAM_<OPTION>`) and the config file (`config.toml`, with named accounts that
//! may list the URLs or hosts they serve). The command line wins over the environment, which
//! wins over the account's table, which wins over the file's top-level defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// How the token is handed to git.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Bearer when git can send it and the server asks for it, else Basic.
    Auto,
    /// Always `username` + `password=TOKEN`.
    Basic,
    /// `authtype=Bearer` whenever git announced the capability.
    Bearer,
}

/// How a new login is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    /// The device authorization grant (RFC 8628): the default.
    Device,
    /// The deprecated resource-owner password grant (RFC 6749 §4.3).
    Password,
}

/// Every option, each unset until a source sets it. Field names are the options' names.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Options {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub account: Option<String>,
    pub cache_dir: Option<PathBuf>,
    pub min_lifetime: Option<u64>,
    pub username: Option<String>,
    pub auth: Option<AuthMode>,
    pub interactive: Option<bool>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Option<u64>,
    pub lock_timeout: Option<u64>,
    pub flow: Option<Flow>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// Draw the sign-in link as a QR code (`--qr`/`--no-qr`); unset: on a wide enough terminal.
    pub qr: Option<bool>,
    /// Open the sign-in page in a browser (`--browser`/`--no-browser`); unset: on a local
    /// desktop session.
    pub browser: Option<bool>,
    /// Config file only: URL prefixes (`https://gitlab.example.org/group/`) or hosts
    /// (`gitlab.example.org`) that this account serves.
    #[serde(default)]
    pub urls: Vec<String>,
}

/// Names of the options that the environment may set, as `GIT_CREDENTIAL_IAM_<NAME>`.
const ENV_OPTIONS: &[&str] = &[
    "issuer",
    "client-id",
    "client-secret-file",
    "scope",
    "audience",
    "account",
    "cache-dir",
    "min-lifetime",
    "username",
    "auth",
    "interactive",
    "non-interactive",
    "ca-file",
    "timeout",
    "lock-timeout",
    "flow",
    "password-file",
    "password-env",
    "qr",
    "no-qr",
    "browser",
    "no-browser",
];

impl Options {
    /// Sets option `name` (its long name) from text.
    pub fn set(&mut self, name: &str, value: String) -> Result<()> {
        let num = |v: &str| {
            v.trim().parse::<u64>().map_err(|_| {
                Error::Usage(format!(
                    "--{name} takes a whole number of seconds, not {v:?}"
                ))
            })
        };
        match name {
            "issuer" => self.issuer = Some(value),
            "client-id" => self.client_id = Some(value),
            "client-secret-file" => self.client_secret_file = Some(value.into()),
            "scope" => self.scope = Some(value),
            "audience" => self.audience = Some(value),
            "account" => self.account = Some(value),
            "cache-dir" => self.cache_dir = Some(value.into()),
            "min-lifetime" => self.min_lifetime = Some(num(&value)?),
            "username" => self.username = Some(value),
            "auth" => {
                self.auth = Some(match value.as_str() {
                    "auto" => AuthMode::Auto,
                    "basic" => AuthMode::Basic,
                    "bearer" => AuthMode::Bearer,
                    v => {
                        return Err(Error::Usage(format!(
                            "--auth takes auto, basic or bearer, not {v:?}"
                        )));
                    }
                })
            }
            "interactive" => self.interactive = Some(flag(name, &value)?),
            "non-interactive" => self.interactive = Some(!flag(name, &value)?),
            "ca-file" => self.ca_file = Some(value.into()),
            "timeout" => self.timeout = Some(num(&value)?),
            "lock-timeout" => self.lock_timeout = Some(num(&value)?),
            "flow" => {
                self.flow = Some(match value.as_str() {
                    "device" => Flow::Device,
                    "password" => Flow::Password,
                    v => {
                        return Err(Error::Usage(format!(
                            "--flow takes device or password, not {v:?}"
                        )));
                    }
                })
            }
            "password-file" => self.password_file = Some(value.into()),
            "password-env" => self.password_env = Some(value),
            "qr" => self.qr = Some(flag(name, &value)?),
            "no-qr" => self.qr = Some(!flag(name, &value)?),
            "browser" => self.browser = Some(flag(name, &value)?),
            "no-browser" => self.browser = Some(!flag(name, &value)?),
            _ => return Err(Error::Usage(format!("unknown option --{name}"))),
        }
        Ok(())
    }

    /// Options from `GIT_CREDENTIAL_IAM_*` variables, read through `getenv`.
    pub fn from_env(getenv: &dyn Fn(&str) -> Option<String>) -> Result<Options> {
        let mut o = Options::default();
        for name in ENV_OPTIONS {
            let var = format!(
                "GIT_CREDENTIAL_IAM_{}",
                name.to_ascii_uppercase().replace('-', "_")
            );
            if let Some(v) = getenv(&var).filter(|v| !v.is_empty()) {
                o.set(name, v)
                    .map_err(|e| Error::Usage(format!("{var}: {e}")))?;
            }
        }
        Ok(o)
    }

    /// Fills every unset field from `lower` (a source of lower precedence).
    pub fn or(self, lower: &Options) -> Options {
        let lower = lower.clone();
        Options {
            issuer: self.issuer.or(lower.issuer),
            client_id: self.client_id.or(lower.client_id),
            client_secret_file: self.client_secret_file.or(lower.client_secret_file),
            scope: self.scope.or(lower.scope),
            audience: self.audience.or(lower.audience),
            account: self.account.or(lower.account),
            cache_dir: self.cache_dir.or(lower.cache_dir),
            min_lifetime: self.min_lifetime.or(lower.min_lifetime),
            username: self.username.or(lower.username),
            auth: self.auth.or(lower.auth),
            interactive: self.interactive.or(lower.interactive),
            ca_file: self.ca_file.or(lower.ca_file),
            timeout: self.timeout.or(lower.timeout),
            lock_timeout: self.lock_timeout.or(lower.lock_timeout),
            flow: self.flow.or(lower.flow),
            password_file: self.password_file.or(lower.password_file),
            password_env: self.password_env.or(lower.password_env),
            qr: self.qr.or(lower.qr),
            browser: self.browser.or(lower.browser),
            urls: if self.urls.is_empty() {
                lower.urls
            } else {
                self.urls
            },
        }
    }
}

/// A yes/no option's value from text (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
fn flag(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        v => Err(Error::Usage(format!(
            "{name} takes true or false, not {v:?}"
        ))),
    }
}

/// The config file: top-level options are defaults for every account.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(flatten)]
    pub defaults: Options,
    #[serde(default, rename = "account")]
    pub accounts: BTreeMap<String, Options>,
}

impl ConfigFile {
    /// Reads `path`; a missing file is an empty config unless `required`.
    pub fn load(path: &Path, required: bool) -> Result<ConfigFile> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(ConfigFile::default());
            }
            Err(e) => return Err(Error::io("cannot read config file", path, e)),
        };
        toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: e.to_string().lines().collect::<Vec<_>>().join(" "),
        })
    }

    /// The account serving `url` (`protocol://host/path`): the one whose longest `urls` entry
    /// matches. An entry with `://` is a URL prefix; one without is a host (with optional port).
    pub fn account_for_url(&self, url: &str) -> Option<&str> {
        let host = url
            .split_once("://")
            .map(|(_, r)| r.split('/').next().unwrap_or(r));
        let mut best: Option<(&str, usize)> = None;
        for (name, acct) in &self.accounts {
            for pattern in &acct.urls {
                let matched = if pattern.contains("://") {
                    let p = pattern.trim_end_matches('/');
                    url == p
                        || url
                            .strip_prefix(p)
                            .is_some_and(|rest| rest.starts_with('/'))
                } else {
                    host == Some(pattern.as_str())
                };
                if matched && best.is_none_or(|(_, len)| pattern.len() > len) {
                    best = Some((name, pattern.len()));
                }
            }
        }
        best.map(|(n, _)| n)
    }
}

/// Whether the device flow may prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interactive {
    /// Prompt when a terminal can be reached.
    Auto,
    /// Always prompt, on stderr.
    Always,
    /// Never prompt.
    Never,
}

/// Fully resolved settings for one account.
#[derive(Debug, Clone)]
pub struct Settings {
    pub account: Option<String>,
    pub issuer: String,
    pub client_id: String,
    pub client_secret_file: Option<PathBuf>,
    pub scope: String,
    pub audience: Option<String>,
    pub cache_dir: PathBuf,
    pub min_lifetime: u64,
    pub username: Option<String>,
    pub auth: AuthMode,
    pub interactive: Interactive,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    pub lock_timeout: Duration,
    pub flow: Flow,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// `Some` when `--qr`/`--no-qr` (or the environment, or the file) decides.
    pub qr: Option<bool>,
    /// `Some` when `--browser`/`--no-browser` (or the environment, or the file) decides.
    pub browser: Option<bool>,
}

/// Default scopes: without `offline_access` there is no refresh token.
pub const DEFAULT_SCOPE: &str = "openid offline_access";

impl Settings {
    /// Resolves the settings. `url` is the URL git asks about (for account matching). Returns
    /// `Ok(None)` when nothing configures an issuer for this URL (git's `get` then stays silent).
    pub fn resolve(
        cli: &Options,
        config_path: Option<&Path>,
        url: Option<&str>,
        getenv: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Settings>> {
        let env = Options::from_env(getenv)?;
        let explicit = explicit_config_path(config_path, getenv);
        let path = explicit.clone().or_else(default_config_path);
        let file = match &path {
            Some(p) => ConfigFile::load(p, explicit.is_some())?,
            None => ConfigFile::default(),
        };
        let named = cli.account.clone().or(env.account.clone());
        let account_name = match named {
            Some(n) => {
                if !file.accounts.contains_key(&n) {
                    let where_ = path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    return Err(Error::Usage(format!(
                        "no account {n:?} in the config file {where_}: add an [account.{n}] table"
                    )));
                }
                Some(n)
            }
            None => url
                .and_then(|u| file.account_for_url(u))
                .map(str::to_string),
        };
        let account_opts = account_name
            .as_ref()
            .and_then(|n| file.accounts.get(n))
            .cloned()
            .unwrap_or_default();
        let merged = cli.clone().or(&env).or(&account_opts).or(&file.defaults);
        let Some(issuer) = merged.issuer else {
            return Ok(None);
        };
        let client_id = merged.client_id.ok_or_else(|| {
            Error::Usage(format!(
                "no client id for issuer {issuer}: pass --client-id ID, set \
                 GIT_CREDENTIAL_IAM_CLIENT_ID, or add client-id to the config file"
            ))
        })?;
        let cache_dir = match merged.cache_dir {
            Some(d) => d,
            None => default_cache_dir().ok_or_else(|| {
                Error::Usage(
                    "cannot find a home directory for the cache: pass --cache-dir DIR".into(),
                )
            })?,
        };
        let interactive = match merged.interactive {
            Some(true) => Interactive::Always,
            Some(false) => Interactive::Never,
            None if getenv("GIT_TERMINAL_PROMPT").as_deref() == Some("0") => Interactive::Never,
            None if getenv("CI").is_some_and(|v| v == "true" || v == "1") => Interactive::Never,
            None => Interactive::Auto,
        };
        Ok(Some(Settings {
            account: account_name,
            issuer,
            client_id,
            client_secret_file: merged.client_secret_file,
            scope: merged.scope.unwrap_or_else(|| DEFAULT_SCOPE.to_string()),
            audience: merged.audience.filter(|a| !a.is_empty()),
            cache_dir,
            min_lifetime: merged.min_lifetime.unwrap_or(60),
            username: merged.username,
            auth: merged.auth.unwrap_or(AuthMode::Auto),
            interactive,
            ca_file: merged.ca_file,
            timeout: Duration::from_secs(merged.timeout.unwrap_or(30).max(1)),
            lock_timeout: Duration::from_secs(merged.lock_timeout.unwrap_or(300)),
            flow: merged.flow.unwrap_or(Flow::Device),
            password_file: merged.password_file,
            password_env: merged.password_env,
            qr: merged.qr,
            browser: merged.browser,
        }))
    }

    /// Reads the client secret file, if one is configured. Only the network paths call this.
    pub fn client_secret(&self) -> Result<Option<Secret<String>>> {
        let Some(path) = &self.client_secret_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io("cannot read the client secret file", path, e))?;
        let secret = text.trim_end_matches(['\n', '\r']).to_string();
        if secret.is_empty() {
            return Err(Error::Usage(format!(
                "the client secret file {} is empty",
                path.display()
            )));
        }
        Ok(Some(Secret::new(secret)))
    }
}

/// The config file the user named: `--config FILE`, else `GIT_CREDENTIAL_IAM_CONFIG` (empty
/// counts as unset). Such a file must exist; the default one (below) may not.
pub fn explicit_config_path(
    cli: Option<&Path>,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Option<PathBuf> {
    cli.map(Path::to_path_buf).or_else(|| {
        getenv("GIT_CREDENTIAL_IAM_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// `$XDG_CONFIG_HOME/git-credential-iam/config.toml` (or the platform's config directory).
pub fn default_config_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("git-credential-iam").join("config.toml"))
}

/// A state directory, not a cache directory that cleaners wipe: it holds refresh tokens.
pub fn default_cache_dir() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|d| d.join("git-credential-iam"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    const CONFIG: &str = r#"
cache-dir = "/tmp/x"
[account.cern]
issuer = "https://cms-auth.example/"
client-id = "cern-client"
urls = ["https://gitlab.example.org/", "git.example.net"]
[account.cern-sub]
issuer = "https://other.example/"
client-id = "sub"
urls = ["https://gitlab.example.org/special"]
"#;

    #[test]
    fn matches_account_by_url_and_host() {
        let (_d, p) = write_config(CONFIG);
        let f = ConfigFile::load(&p, true).unwrap();
        assert_eq!(
            f.account_for_url("https://gitlab.example.org/a/b.git"),
            Some("cern")
        );
        assert_eq!(
            f.account_for_url("https://gitlab.example.org/special/x"),
            Some("cern-sub")
        );
        assert_eq!(
            f.account_for_url("https://gitlab.example.org/specialist"),
            Some("cern")
        );
        assert_eq!(f.account_for_url("https://git.example.net/"), Some("cern"));
        assert_eq!(f.account_for_url("https://github.com/"), None);
    }

    #[test]
    fn precedence_cli_env_file() {
        let (_d, p) = write_config(CONFIG);
        let env = |k: &str| match k {
            "GIT_CREDENTIAL_IAM_CLIENT_ID" => Some("from-env".to_string()),
            "GIT_CREDENTIAL_IAM_MIN_LIFETIME" => Some("120".to_string()),
            _ => None,
        };
        let cli = Options {
            min_lifetime: Some(5),
            ..Default::default()
        };
        let s = Settings::resolve(&cli, Some(&p), Some("https://git.example.net/"), &env)
            .unwrap()
            .unwrap();
        assert_eq!(s.account.as_deref(), Some("cern"));
        assert_eq!(s.issuer, "https://cms-auth.example/");
        assert_eq!(s.client_id, "from-env");
        assert_eq!(s.min_lifetime, 5);
        assert_eq!(s.cache_dir, PathBuf::from("/tmp/x"));
        assert_eq!(s.scope, DEFAULT_SCOPE);
    }

    #[test]
    fn unconfigured_url_is_none_and_bad_config_is_error() {
        let (_d, p) = write_config(CONFIG);
        let s = Settings::resolve(
            &Options::default(),
            Some(&p),
            Some("https://github.com/"),
            &no_env,
        );
        assert!(s.unwrap().is_none());
        let (_d2, bad) = write_config("issuer = 3\nbogus = 1\n");
        let e = Settings::resolve(&Options::default(), Some(&bad), None, &no_env).unwrap_err();
        assert!(e.to_string().contains("config file"), "{e}");
        let cli = Options {
            account: Some("nope".into()),
            ..Default::default()
        };
        let e = Settings::resolve(&cli, Some(&p), None, &no_env).unwrap_err();
        assert!(e.to_string().contains("[account.nope]"), "{e}");
    }

    #[test]
    fn qr_and_browser_from_cli_env_and_file() {
        let (_d, p) = write_config(
            "issuer = \"https://i/\"\nclient-id = \"c\"\ncache-dir = \"/tmp/c\"\nqr = false\nbrowser = true\n",
        );
        let s = Settings::resolve(&Options::default(), Some(&p), None, &no_env)
            .unwrap()
            .unwrap();
        assert_eq!((s.qr, s.browser), (Some(false), Some(true)));
        let env = |k: &str| match k {
            "GIT_CREDENTIAL_IAM_QR" => Some("yes".to_string()),
            "GIT_CREDENTIAL_IAM_NO_BROWSER" => Some("1".to_string()),
            _ => None,
        };
        let s = Settings::resolve(&Options::default(), Some(&p), None, &env)
            .unwrap()
            .unwrap();
        assert_eq!((s.qr, s.browser), (Some(true), Some(false)));
        let cli = Options {
            qr: Some(false),
            browser: Some(true),
            ..Default::default()
        };
        let s = Settings::resolve(&cli, Some(&p), None, &env)
            .unwrap()
            .unwrap();
        assert_eq!((s.qr, s.browser), (Some(false), Some(true)));
        let s = Settings::resolve(&Options::default(), None, None, &|k: &str| match k {
            "GIT_CREDENTIAL_IAM_ISSUER" => Some("https://i/".into()),
            "GIT_CREDENTIAL_IAM_CLIENT_ID" => Some("c".into()),
            "GIT_CREDENTIAL_IAM_CACHE_DIR" => Some("/tmp/c".into()),
            _ => None,
        })
        .unwrap()
        .unwrap();
        assert_eq!((s.qr, s.browser), (None, None), "unset: decided at sign-in");
        let bad = |k: &str| (k == "GIT_CREDENTIAL_IAM_BROWSER").then(|| "firefox".to_string());
        let e = Options::from_env(&bad).unwrap_err().to_string();
        assert!(
            e.contains("GIT_CREDENTIAL_IAM_BROWSER") && e.contains("true or false"),
            "{e}"
        );
    }

    #[test]
    fn terminal_prompt_zero_means_never() {
        let cli = Options {
            issuer: Some("https://i/".into()),
            client_id: Some("c".into()),
            cache_dir: Some("/tmp/c".into()),
            ..Default::default()
        };
        let env = |k: &str| (k == "GIT_TERMINAL_PROMPT").then(|| "0".to_string());
        let s = Settings::resolve(&cli, Some(Path::new("/nonexistent/x.toml")), None, &env);
        assert!(s.is_err(), "an explicit missing config file is an error");
        let s = Settings::resolve(&cli, None, None, &env).unwrap().unwrap();
        assert_eq!(s.interactive, Interactive::Never);
    }
}
