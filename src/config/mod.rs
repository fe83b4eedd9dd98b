//! The one place that reads options: the command line (parsed by `cli`), the environment
//! (`GIT_CREDENTIAL_IAM_<OPTION>`) and the config file (`config.toml`, with named accounts that
//! may list the URLs or hosts they serve). The command line wins over the environment, which
//! wins over the account's table, which wins over the file's top-level defaults.

mod file;
mod options;

pub use file::ConfigFile;
pub use options::{OPTIONS, Opt, Options, help_lines};

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::trust;

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

/// How the account's lock is taken (`lock-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// `flock` on a local file system, an exclusive create on one that many machines share
    /// (NFS, AFS, SMB, FUSE, Lustre, …): the default.
    Auto,
    /// Always `flock` (`LockFileEx` on Windows).
    Flock,
    /// Always an exclusive create of a lock file recording host, pid and start time.
    Create,
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
    pub lock_mode: LockMode,
    pub flow: Flow,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// `Some` when `--qr`/`--no-qr` (or the environment, or the file) decides.
    pub qr: Option<bool>,
    /// `Some` when `--browser`/`--no-browser` (or the environment, or the file) decides.
    pub browser: Option<bool>,
    /// RFC 8707 resource indicators (`--resource`), in the order given, without repeats.
    pub resources: Vec<String>,
    /// `SSL_CERT_FILE`: a bundle of trusted roots in place of the system's.
    pub ssl_cert_file: Option<PathBuf>,
}

/// What `status` needs, resolved as for every other action: the cache directory and the lock
/// mode (of the named account, else of the command line, the environment and the file's
/// defaults), and the config file, to name the accounts.
pub struct Local {
    pub cache_dir: PathBuf,
    pub lock_mode: LockMode,
    pub file: ConfigFile,
}

impl Local {
    /// Resolves the local settings.
    pub fn resolve(
        cli: &Options,
        config_path: Option<&Path>,
        getenv: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Local> {
        let src = Sources::load(cli, config_path, getenv)?;
        let named = src.named_account()?;
        let merged = src.merged(named.as_ref(), getenv)?;
        Ok(Local {
            cache_dir: cache_dir(merged.cache_dir, getenv)?,
            lock_mode: merged.lock_mode.unwrap_or(LockMode::Auto),
            file: src.file,
        })
    }
}

/// Default scopes: without `offline_access` there is no refresh token.
pub const DEFAULT_SCOPE: &str = "openid offline_access";
/// The default `--min-lifetime` (seconds): also the largest one the cache treats as a soft
/// margin, capped by the token's own lifetime (see `store::cache`).
pub const DEFAULT_MIN_LIFETIME: u64 = 60;

/// What `get` and `erase` may do for the URL git asks about.
pub enum ForRequest {
    /// The URL is tied to the account and safe to send a token to.
    Serve(Box<Settings>),
    /// Nothing configures an issuer for this URL: stay silent, git asks its next helper.
    Silent,
    /// An account is configured, but a token must not go to this URL: one line for stderr that
    /// names the fix, and no answer.
    Refuse(String),
}

/// The three sources of options, read once.
struct Sources {
    cli: Options,
    env: Options,
    file: ConfigFile,
    path: Option<PathBuf>,
}

impl Sources {
    fn load(
        cli: &Options,
        config_path: Option<&Path>,
        getenv: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Sources> {
        let env = Options::from_env(getenv)?;
        let explicit = explicit_config_path(config_path, getenv);
        let path = explicit.clone().or_else(|| default_config_path(getenv));
        let file = match &path {
            Some(p) => ConfigFile::load(p, explicit.is_some())?,
            None => ConfigFile::default(),
        };
        Ok(Sources {
            cli: cli.clone(),
            env,
            file,
            path,
        })
    }

    fn file_name(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the config file".into())
    }

    /// The account named by `--account` or the environment, checked to exist.
    fn named_account(&self) -> Result<Option<String>> {
        let Some(n) = self.cli.account.clone().or(self.env.account.clone()) else {
            return Ok(None);
        };
        if !self.file.accounts.contains_key(&n) {
            let table = if n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                format!("an [account.{n}] table")
            } else {
                "the account's table".into()
            };
            return Err(Error::Usage(format!(
                "no account {} in the config file {}: add {table}",
                trust::quote(&n),
                self.file_name()
            )));
        }
        Ok(Some(n))
    }

    /// `--url` entries, else `GIT_CREDENTIAL_IAM_URL`'s.
    fn given_urls(&self) -> &[String] {
        if self.cli.urls.is_empty() {
            &self.env.urls
        } else {
            &self.cli.urls
        }
    }

    /// A request is served by account `account` through its `urls` (no `--url`), but the
    /// command line or the environment names another issuer: the token of that other provider
    /// would go to this account's URLs, which were tied to the account's own issuer. Only one
    /// helper line that names both the account and the issuer (`--account A --issuer I`) makes
    /// that choice explicitly. Why not, naming the fix; `None` when nothing conflicts.
    fn foreign_issuer(&self, account: Option<&str>, origin: &str) -> Option<String> {
        let n = account.filter(|_| self.given_urls().is_empty())?;
        if self.cli.account.is_some() && self.cli.issuer.is_some() {
            return None;
        }
        let own = self.file.accounts.get(n)?.issuer.as_ref();
        let own = own.or(self.file.defaults.issuer.as_ref())?;
        let (given, by) = match (&self.cli.issuer, &self.env.issuer) {
            (Some(i), _) => (i, "--issuer"),
            (None, Some(i)) => (i, "GIT_CREDENTIAL_IAM_ISSUER"),
            (None, None) => return None,
        };
        if given.trim_end_matches('/') == own.trim_end_matches('/') {
            return None;
        }
        Some(format!(
            "no token for {origin}: it is tied to account {n:?} (issuer {}), but {by} names \
             another issuer ({}); unset {by} for git, or add --url {origin}/ to tie that \
             issuer's token to this URL",
            trust::host_of(own),
            trust::host_of(given)
        ))
    }

    /// The settings of `account` (or of no account: the command line, the environment and the
    /// file's defaults). `None` when no source gives an issuer.
    fn settings(
        &self,
        account: Option<String>,
        getenv: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Settings>> {
        let merged = self.merged(account.as_ref(), getenv)?;
        let Some(issuer) = merged.issuer else {
            return Ok(None);
        };
        let client_id = merged.client_id.ok_or_else(|| {
            Error::Usage(format!(
                "no client id for issuer {}: pass --client-id ID, set \
                 GIT_CREDENTIAL_IAM_CLIENT_ID, or add client-id to the config file",
                trust::host_of(&issuer)
            ))
        })?;
        let cache_dir = cache_dir(merged.cache_dir, getenv)?;
        let interactive = match merged.interactive {
            Some(true) => Interactive::Always,
            Some(false) => Interactive::Never,
            None if getenv("GIT_TERMINAL_PROMPT").as_deref() == Some("0") => Interactive::Never,
            None if getenv("CI").is_some_and(|v| v == "true" || v == "1") => Interactive::Never,
            None => Interactive::Auto,
        };
        Ok(Some(Settings {
            account,
            issuer,
            client_id,
            client_secret_file: merged.client_secret_file,
            scope: merged.scope.unwrap_or_else(|| DEFAULT_SCOPE.to_string()),
            audience: merged.audience.filter(|a| !a.is_empty()),
            cache_dir,
            // Numbers were range-checked when they were set.
            min_lifetime: merged.min_lifetime.unwrap_or(DEFAULT_MIN_LIFETIME),
            username: merged.username,
            auth: merged.auth.unwrap_or(AuthMode::Auto),
            interactive,
            ca_file: merged.ca_file,
            timeout: Duration::from_secs(merged.timeout.unwrap_or(30)),
            lock_timeout: Duration::from_secs(merged.lock_timeout.unwrap_or(300)),
            lock_mode: merged.lock_mode.unwrap_or(LockMode::Auto),
            flow: merged.flow.unwrap_or(Flow::Device),
            password_file: merged.password_file,
            password_env: merged.password_env,
            qr: merged.qr,
            browser: merged.browser,
            resources: merged.resource,
            ssl_cert_file: getenv("SSL_CERT_FILE")
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
        }))
    }

    /// The options of `account` (or of no account) merged by precedence: the command line, the
    /// environment, the account's table, the file's defaults; `~` expanded, and every path
    /// checked to be absolute (see [`home_expanded`]).
    fn merged(
        &self,
        account: Option<&String>,
        getenv: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Options> {
        let account_opts = account
            .and_then(|n| self.file.accounts.get(n))
            .cloned()
            .unwrap_or_default();
        let merged = self
            .cli
            .clone()
            .or(&self.env)
            .or(&account_opts)
            .or(&self.file.defaults);
        home_expanded(merged, getenv)
    }
}

impl Settings {
    /// A person ran the command (`login`, `setup`): unless prompting is forbidden, the sign-in's
    /// instructions go to stderr even when it is not a terminal (a log they are watching).
    pub fn asked_by_a_person(&mut self, stderr_is_tty: bool) {
        if self.interactive != Interactive::Never && !stderr_is_tty {
            self.interactive = Interactive::Always;
        }
    }

    /// Resolves the settings of the named account (`--account`, the environment), or of the
    /// command line, the environment and the file's defaults. For the actions a person runs
    /// (`login`, `token`, …), which need no URL. `Ok(None)` when no source gives an issuer.
    pub fn resolve(
        cli: &Options,
        config_path: Option<&Path>,
        getenv: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Settings>> {
        let src = Sources::load(cli, config_path, getenv)?;
        let named = src.named_account()?;
        src.settings(named, getenv)
    }

    /// Decides whether git's request (`url`, `None` when it is not one unambiguous http(s)
    /// URL; `asked` describes it for messages) may get a token, and whose.
    ///
    /// The account is the one named (`--account`, the environment), else the config account
    /// whose `urls` match best, else the command line, environment and file defaults. The URL
    /// must then be tied to it: matched by `--url`/`GIT_CREDENTIAL_IAM_URL` when given, else by
    /// the account's `urls`. Top-level keys are only defaults: they never tie a URL.
    pub fn for_request(
        cli: &Options,
        config_path: Option<&Path>,
        url: Option<&url::Url>,
        asked: &str,
        getenv: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ForRequest> {
        let src = Sources::load(cli, config_path, getenv)?;
        let named = src.named_account()?;
        let matched = match (&named, url) {
            (None, Some(u)) => src
                .file
                .accounts
                .iter()
                .filter_map(|(n, a)| Some((trust::best_match(&a.urls, u)?, n)))
                .max_by_key(|(score, _)| *score)
                .map(|(_, n)| n.clone()),
            _ => None,
        };
        let account = named.clone().or(matched.clone());
        let Some(settings) = src.settings(account.clone(), getenv)? else {
            return Ok(ForRequest::Silent);
        };
        let account_urls = account
            .as_ref()
            .and_then(|n| src.file.accounts.get(n))
            .map(|a| a.urls.as_slice())
            .unwrap_or_default();
        for entry in src.given_urls().iter().chain(account_urls) {
            trust::Pattern::parse(entry)?;
        }
        // `--url`/`GIT_CREDENTIAL_IAM_URL` scope the helper line: when given, they are the ties,
        // whichever account the request matched (its settings may come from the same line).
        let ties: &[String] = if src.given_urls().is_empty() {
            account_urls
        } else {
            src.given_urls()
        };
        let who = match &account {
            Some(n) => format!("account {n:?}"),
            None => format!("the issuer {}", trust::host_of(&settings.issuer)),
        };
        let Some(url) = url else {
            return Ok(ForRequest::Refuse(format!(
                "no token for {asked}: tokens go only to https:// URLs (http:// on loopback) \
                 tied to an account"
            )));
        };
        let origin = trust::origin(url);
        if let Some(why) = src.foreign_issuer(account.as_deref(), &origin) {
            return Ok(ForRequest::Refuse(why));
        }
        if trust::best_match(ties, url).is_none() {
            let fix = match &account {
                Some(n) => format!(
                    "add \"{origin}/\" to urls in [account.{n}] of {}",
                    src.file_name()
                ),
                None => format!(
                    "put the options in an [account.NAME] table of {} with urls = [\"{origin}/\"]",
                    src.file_name()
                ),
            };
            let path_hint = if url.path() == "/"
                && ties
                    .iter()
                    .any(|t| trust::Pattern::parse(t).is_ok_and(|p| p.same_origin(url)))
            {
                format!(
                    "; the account is tied to paths on this host, so git must send the path: \
                     git config --global credential.{origin}.useHttpPath true"
                )
            } else {
                String::new()
            };
            return Ok(ForRequest::Refuse(format!(
                "no token for {origin}: it is not tied to {who}; {fix}, or pass --url \
                 {origin}/ on the helper line{path_hint}"
            )));
        }
        if !trust::safe_transport(url) {
            return Ok(ForRequest::Refuse(format!(
                "no token for {origin}: it would travel unencrypted over plain http; use \
                 https:// (plain http is allowed only on loopback)"
            )));
        }
        Ok(ForRequest::Serve(Box::new(settings)))
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

/// Where XDG base directories apply (not macOS, not Windows): the environment decides, read
/// through `getenv`.
#[cfg(all(unix, not(target_vendor = "apple")))]
fn xdg_dir(
    getenv: &dyn Fn(&str) -> Option<String>,
    var: &str,
    under_home: &str,
) -> Option<PathBuf> {
    getenv(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home_dir(getenv).map(|h| h.join(under_home)))
}

/// `$XDG_CONFIG_HOME/git-credential-iam/config.toml` (or the platform's config directory).
pub fn default_config_path(getenv: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    #[cfg(all(unix, not(target_vendor = "apple")))]
    let dir = xdg_dir(getenv, "XDG_CONFIG_HOME", ".config");
    #[cfg(not(all(unix, not(target_vendor = "apple"))))]
    let dir = {
        let _ = getenv;
        dirs::config_dir()
    };
    dir.map(|d| d.join("git-credential-iam").join("config.toml"))
}

/// A state directory, not a cache directory that cleaners wipe: it holds refresh tokens.
pub fn default_cache_dir(getenv: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    #[cfg(all(unix, not(target_vendor = "apple")))]
    let dir = xdg_dir(getenv, "XDG_STATE_HOME", ".local/state");
    #[cfg(not(all(unix, not(target_vendor = "apple"))))]
    let dir = {
        let _ = getenv;
        dirs::state_dir().or_else(dirs::data_local_dir)
    };
    dir.map(|d| d.join("git-credential-iam"))
}

/// The home directory: `HOME`, read through `getenv` only (the binary's `getenv` falls back
/// to the system's record of the user when HOME is unset), so tests never see the real one.
fn home_dir(getenv: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    getenv("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)
}

/// `~` or `~/…` with the home directory in front; other paths unchanged.
fn expand_home(p: &Path, getenv: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let Ok(rest) = p.strip_prefix("~") else {
        return p.to_path_buf();
    };
    match home_dir(getenv) {
        Some(home) => home.join(rest),
        None => p.to_path_buf(),
    }
}

/// The options with `~` expanded in their paths.
/// `o` with `~` expanded in every path. A path still relative came from the command line or the
/// environment (the config file's are relative to the file): it is refused, since it would be
/// read from whatever repository git runs in, which could then supply a CA (`--ca-file`), a
/// client secret or a password file.
fn home_expanded(mut o: Options, getenv: &dyn Fn(&str) -> Option<String>) -> Result<Options> {
    for p in o.paths_mut() {
        *p = expand_home(p, getenv);
        if p.is_relative() {
            return Err(Error::Usage(
                "a file or folder on the command line or in GIT_CREDENTIAL_IAM_* must be an \
                 absolute path (or start with ~/): a relative one would be read from the \
                 repository git runs in"
                    .into(),
            ));
        }
    }
    Ok(o)
}

/// The cache directory given, checked, else the default one.
fn cache_dir(given: Option<PathBuf>, getenv: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
    match given {
        Some(d) => checked_cache_dir(d, getenv),
        None => default_cache_dir(getenv).ok_or_else(|| {
            Error::Usage("cannot find a home directory for the cache: pass --cache-dir DIR".into())
        }),
    }
}

/// The cache directory must be absolute: a relative one would land in git's working
/// directory, the repository, where `git add -A` commits the refresh token.
fn checked_cache_dir(dir: PathBuf, getenv: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
    let dir = expand_home(&dir, getenv);
    if dir.is_relative() {
        return Err(Error::Usage(
            "the cache directory must be an absolute path (or start with ~/): a relative one \
             would be inside the repository git runs in"
                .into(),
        ));
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No environment but a home directory that does not exist: no test reads the real one.
    fn no_env(k: &str) -> Option<String> {
        (k == "HOME").then(|| "/nonexistent/home".to_string())
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

    fn url(u: &str) -> url::Url {
        url::Url::parse(u).unwrap()
    }

    /// The account `for_request` serves `u` with, or why it does not.
    fn served(cli: &Options, p: &Path, u: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
        match Settings::for_request(cli, Some(p), Some(&url(u)), "test", env).unwrap() {
            ForRequest::Serve(s) => format!("serve {}", s.account.unwrap_or_default()),
            ForRequest::Silent => "silent".into(),
            ForRequest::Refuse(why) => format!("refuse {why}"),
        }
    }

    #[test]
    fn matches_account_by_url_and_host() {
        let (_d, p) = write_config(CONFIG);
        let none = Options::default();
        let s = |u: &str| served(&none, &p, u, &no_env);
        assert_eq!(s("https://gitlab.example.org/a/b.git"), "serve cern");
        assert_eq!(s("https://gitlab.example.org/special/x"), "serve cern-sub");
        assert_eq!(s("https://gitlab.example.org/specialist"), "serve cern");
        assert_eq!(s("https://git.example.net/"), "serve cern");
        assert_eq!(s("https://GIT.example.net./"), "serve cern");
        assert_eq!(s("https://github.com/"), "silent");
        assert!(
            s("http://git.example.net/").starts_with("refuse"),
            "plain http"
        );
        assert_eq!(s("https://git.example.net:8443/"), "silent", "another port");
    }

    #[test]
    fn named_account_answers_only_for_its_urls() {
        let (_d, p) = write_config(CONFIG);
        let cli = Options {
            account: Some("cern".into()),
            ..Default::default()
        };
        assert_eq!(
            served(&cli, &p, "https://gitlab.example.org/x", &no_env),
            "serve cern"
        );
        let r = served(&cli, &p, "https://github.com/x", &no_env);
        assert!(
            r.starts_with("refuse") && r.contains("urls in [account.cern]"),
            "{r}"
        );
        let r = Settings::for_request(&cli, Some(&p), None, "protocol=\"smtp\"", &no_env);
        assert!(matches!(r.unwrap(), ForRequest::Refuse(w) if w.contains("smtp")));
        // --url ties instead of the account's urls.
        let cli = Options {
            urls: vec!["https://github.com/".into()],
            ..cli
        };
        assert_eq!(
            served(&cli, &p, "https://github.com/x", &no_env),
            "serve cern"
        );
        let r = served(&cli, &p, "https://gitlab.example.org/x", &no_env);
        assert!(r.starts_with("refuse"), "{r}");
    }

    /// A helper line's own account (`--issuer … --url X`) is tied to X only: a request for
    /// another account's URL never gets that issuer's token, nor does the account's own
    /// token go beyond what the helper line was scoped to.
    #[test]
    fn a_helper_line_url_scopes_every_account() {
        let (_d, p) = write_config(CONFIG);
        let line = Options {
            issuer: Some("https://line-issuer.example/".into()),
            client_id: Some("line".into()),
            urls: vec!["https://mine.example/".into()],
            ..Default::default()
        };
        let r = served(&line, &p, "https://gitlab.example.org/a.git", &no_env);
        assert!(r.starts_with("refuse") && r.contains("--url"), "{r}");
        assert_eq!(
            served(&line, &p, "https://mine.example/r.git", &no_env),
            "serve "
        );
        let env = |k: &str| match k {
            "GIT_CREDENTIAL_IAM_ISSUER" => Some("https://env-issuer.example/".into()),
            "GIT_CREDENTIAL_IAM_CLIENT_ID" => Some("env".into()),
            "GIT_CREDENTIAL_IAM_URL" => Some("https://mine.example/".into()),
            _ => no_env(k),
        };
        let r = served(&Options::default(), &p, "https://git.example.net/", &env);
        assert!(r.starts_with("refuse"), "{r}");
    }

    #[test]
    fn an_ambient_issuer_never_borrows_an_accounts_urls() {
        let (_d, p) = write_config(CONFIG);
        let other = "https://elsewhere.example/";
        let env = |k: &str| match k {
            "GIT_CREDENTIAL_IAM_ISSUER" => Some(other.to_string()),
            _ => no_env(k),
        };
        let u = "https://gitlab.example.org/a.git";
        let r = served(&Options::default(), &p, u, &env);
        assert!(r.starts_with("refuse"), "{r}");
        assert!(r.contains("GIT_CREDENTIAL_IAM_ISSUER"), "{r}");
        assert!(
            r.contains("cms-auth.example") && r.contains("elsewhere.example"),
            "{r}"
        );
        let cli = Options {
            issuer: Some(other.into()),
            ..Default::default()
        };
        let r = served(&cli, &p, u, &no_env);
        assert!(r.starts_with("refuse") && r.contains("--issuer"), "{r}");
        // The account's own issuer (a trailing slash aside) is no conflict.
        let same = Options {
            issuer: Some("https://cms-auth.example".into()),
            ..Default::default()
        };
        assert_eq!(served(&same, &p, u, &no_env), "serve cern");
        // Named on the same line, or tied with --url, the choice is explicit.
        let named = Options {
            account: Some("cern".into()),
            ..cli.clone()
        };
        assert_eq!(served(&named, &p, u, &no_env), "serve cern");
        // A helper line naming the account does not vouch for an issuer from the environment.
        let account_only = Options {
            account: Some("cern".into()),
            ..Default::default()
        };
        let r = served(&account_only, &p, u, &env);
        assert!(
            r.starts_with("refuse") && r.contains("GIT_CREDENTIAL_IAM_ISSUER"),
            "{r}"
        );
        let tied = Options {
            urls: vec!["https://gitlab.example.org/".into()],
            ..cli
        };
        assert_eq!(served(&tied, &p, u, &no_env), "serve cern");
    }

    #[test]
    fn top_level_keys_tie_nothing() {
        let (_d, p) = write_config(
            "issuer = \"https://i.example/\"\nclient-id = \"c\"\ncache-dir = \"/tmp/c\"\n",
        );
        let r = served(&Options::default(), &p, "https://git.example.org/", &no_env);
        assert!(r.starts_with("refuse") && r.contains("--url"), "{r}");
        let env = |k: &str| {
            (k == "GIT_CREDENTIAL_IAM_URL")
                .then(|| "https://a.example/ git.example.org".into())
                .or_else(|| no_env(k))
        };
        assert_eq!(
            served(&Options::default(), &p, "https://git.example.org/r", &env),
            "serve "
        );
        let (_d2, bad) = write_config("urls = [\"https://x/\"]\n");
        let e = Settings::resolve(&Options::default(), Some(&bad), &no_env).unwrap_err();
        assert!(e.to_string().contains("[account.NAME]"), "{e}");
    }

    #[test]
    fn path_prefix_needs_the_path() {
        let (_d, p) = write_config(
            "[account.a]\nissuer = \"https://i.example/\"\nclient-id = \"c\"\n\
             cache-dir = \"/tmp/c\"\nurls = [\"https://git.example.org/group/\"]\n",
        );
        let cli = Options {
            account: Some("a".into()),
            ..Default::default()
        };
        let r = served(&cli, &p, "https://git.example.org/", &no_env);
        assert!(r.contains("useHttpPath"), "{r}");
        assert_eq!(
            served(&cli, &p, "https://git.example.org/group/r.git", &no_env),
            "serve a"
        );
        let r = served(&cli, &p, "https://git.example.org/groupie/r.git", &no_env);
        assert!(r.starts_with("refuse"), "{r}");
    }

    #[test]
    fn paths_in_the_file_are_the_files() {
        let (d, p) = write_config(
            "[account.a]\nissuer = \"https://i.example/\"\nclient-id = \"c\"\n\
             cache-dir = \"state\"\nclient-secret-file = \"~/s\"\n",
        );
        let cli = Options {
            account: Some("a".into()),
            ..Default::default()
        };
        let s = Settings::resolve(&cli, Some(&p), &no_env).unwrap().unwrap();
        assert_eq!(s.cache_dir, d.path().join("state"));
        let home = PathBuf::from("/nonexistent/home");
        assert_eq!(s.client_secret_file, Some(home.join("s")));
        let cli = Options {
            cache_dir: Some("rel".into()),
            ..cli
        };
        let e = Settings::resolve(&cli, Some(&p), &no_env).unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
        assert!(
            !e.to_string().contains("   "),
            "one line, no run of spaces: {e}"
        );
    }

    #[test]
    fn numbers_are_range_checked_without_echo() {
        let mut o = Options::default();
        let e = o.set("timeout", "18446744073709551615".into()).unwrap_err();
        assert!(e.to_string().contains("1 to 3600"), "{e}");
        assert!(!e.to_string().contains("1844674"), "{e}");
        assert!(o.set("timeout", "0".into()).is_err());
        assert!(o.set("timeout", "3600".into()).is_ok());
        let e = o.set("auth", "SECRETVALUE".into()).unwrap_err();
        assert!(!e.to_string().contains("SECRETVALUE"), "{e}");
        let (_d, p) = write_config(
            "issuer = \"https://i/\"\nclient-id = \"c\"\ncache-dir = \"/tmp/c\"\ntimeout = 99999\n",
        );
        let e = Settings::resolve(&Options::default(), Some(&p), &no_env).unwrap_err();
        assert!(e.to_string().contains("timeout"), "{e}");
    }

    #[test]
    fn config_errors_do_not_quote_the_line() {
        let (_d, p) = write_config("client-secret = \"hunter2-SECRET\"\n");
        let e = Settings::resolve(&Options::default(), Some(&p), &no_env).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn precedence_cli_env_file() {
        let (_d, p) = write_config(CONFIG);
        let env = |k: &str| match k {
            "GIT_CREDENTIAL_IAM_CLIENT_ID" => Some("from-env".to_string()),
            "GIT_CREDENTIAL_IAM_MIN_LIFETIME" => Some("120".to_string()),
            _ => no_env(k),
        };
        let cli = Options {
            min_lifetime: Some(5),
            ..Default::default()
        };
        let r = Settings::for_request(
            &cli,
            Some(&p),
            Some(&url("https://git.example.net/")),
            "",
            &env,
        );
        let ForRequest::Serve(s) = r.unwrap() else {
            panic!("not served")
        };
        assert_eq!(s.account.as_deref(), Some("cern"));
        assert_eq!(s.issuer, "https://cms-auth.example/");
        assert_eq!(s.client_id, "from-env");
        assert_eq!(s.min_lifetime, 5);
        assert_eq!(s.cache_dir, PathBuf::from("/tmp/x"));
        assert_eq!(s.scope, DEFAULT_SCOPE);
    }

    #[test]
    fn bad_config_is_error() {
        let (_d, p) = write_config(CONFIG);
        let (_d2, bad) = write_config("issuer = 3\nbogus = 1\n");
        let e = Settings::resolve(&Options::default(), Some(&bad), &no_env).unwrap_err();
        assert!(e.to_string().contains("config file"), "{e}");
        let cli = Options {
            account: Some("nope".into()),
            ..Default::default()
        };
        let e = Settings::resolve(&cli, Some(&p), &no_env).unwrap_err();
        assert!(e.to_string().contains("[account.nope]"), "{e}");
    }

    #[test]
    fn qr_and_browser_from_cli_env_and_file() {
        let (_d, p) = write_config(
            "issuer = \"https://i/\"\nclient-id = \"c\"\ncache-dir = \"/tmp/c\"\nqr = false\nbrowser = true\n",
        );
        let s = Settings::resolve(&Options::default(), Some(&p), &no_env)
            .unwrap()
            .unwrap();
        assert_eq!((s.qr, s.browser), (Some(false), Some(true)));
        let env = |k: &str| match k {
            "GIT_CREDENTIAL_IAM_QR" => Some("yes".to_string()),
            "GIT_CREDENTIAL_IAM_NO_BROWSER" => Some("1".to_string()),
            _ => no_env(k),
        };
        let s = Settings::resolve(&Options::default(), Some(&p), &env)
            .unwrap()
            .unwrap();
        assert_eq!((s.qr, s.browser), (Some(true), Some(false)));
        let cli = Options {
            qr: Some(false),
            browser: Some(true),
            ..Default::default()
        };
        let s = Settings::resolve(&cli, Some(&p), &env).unwrap().unwrap();
        assert_eq!((s.qr, s.browser), (Some(false), Some(true)));
        let (_e, empty) = write_config("");
        let s = Settings::resolve(&Options::default(), Some(&empty), &|k: &str| match k {
            "GIT_CREDENTIAL_IAM_ISSUER" => Some("https://i/".into()),
            "GIT_CREDENTIAL_IAM_CLIENT_ID" => Some("c".into()),
            "GIT_CREDENTIAL_IAM_CACHE_DIR" => Some("/tmp/c".into()),
            _ => no_env(k),
        })
        .unwrap()
        .unwrap();
        assert_eq!((s.qr, s.browser), (None, None), "unset: decided at sign-in");
        // A negative switch set to false only says "not that": the file's choice stands, and
        // `GIT_CREDENTIAL_IAM_NON_INTERACTIVE=0` never forces a prompt in CI.
        let not_no = |k: &str| match k {
            "GIT_CREDENTIAL_IAM_NO_QR" | "GIT_CREDENTIAL_IAM_NON_INTERACTIVE" => Some("0".into()),
            "CI" => Some("true".into()),
            _ => no_env(k),
        };
        let s = Settings::resolve(&Options::default(), Some(&p), &not_no)
            .unwrap()
            .unwrap();
        assert_eq!(s.qr, Some(false), "the file's qr = false stands");
        assert_eq!(s.interactive, Interactive::Never, "CI=true still decides");
        let bad = |k: &str| {
            (k == "GIT_CREDENTIAL_IAM_BROWSER")
                .then(|| "firefox".to_string())
                .or_else(|| no_env(k))
        };
        let e = Options::from_env(&bad).unwrap_err().to_string();
        assert!(
            e.contains("GIT_CREDENTIAL_IAM_BROWSER") && e.contains("true or false"),
            "{e}"
        );
    }

    #[test]
    fn lock_mode_from_cli_env_and_file() {
        let (_d, p) = write_config(
            "issuer = \"https://i/\"\nclient-id = \"c\"\ncache-dir = \"/tmp/c\"\nlock-mode = \"create\"\n",
        );
        let mode = |cli: &Options, env: &dyn Fn(&str) -> Option<String>| {
            Settings::resolve(cli, Some(&p), env)
                .unwrap()
                .unwrap()
                .lock_mode
        };
        assert_eq!(mode(&Options::default(), &no_env), LockMode::Create);
        let env = |k: &str| {
            (k == "GIT_CREDENTIAL_IAM_LOCK_MODE")
                .then(|| "flock".to_string())
                .or_else(|| no_env(k))
        };
        assert_eq!(mode(&Options::default(), &env), LockMode::Flock);
        let mut cli = Options::default();
        cli.set("lock-mode", "auto".into()).unwrap();
        assert_eq!(mode(&cli, &env), LockMode::Auto);
        let (_e, empty) = write_config("issuer = \"https://i/\"\nclient-id = \"c\"\n");
        let s = Settings::resolve(&Options::default(), Some(&empty), &no_env);
        assert_eq!(s.unwrap().unwrap().lock_mode, LockMode::Auto, "the default");
        let e = cli
            .set("lock-mode", "mkdir".into())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("auto, flock or create") && !e.contains("mkdir"),
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
        let env = |k: &str| {
            (k == "GIT_TERMINAL_PROMPT")
                .then(|| "0".to_string())
                .or_else(|| no_env(k))
        };
        let s = Settings::resolve(&cli, Some(Path::new("/nonexistent/x.toml")), &env);
        assert!(s.is_err(), "an explicit missing config file is an error");
        let (_d, empty) = write_config("");
        let s = Settings::resolve(&cli, Some(&empty), &env)
            .unwrap()
            .unwrap();
        assert_eq!(s.interactive, Interactive::Never);
    }

    #[test]
    fn resources_from_cli_env_and_file() {
        let (_d, p) = write_config(
            "[account.a]\nissuer = \"https://i/\"\nclient-id = \"c\"\ncache-dir = \"/tmp/c\"\n\
             resource = [\"https://file.example/\", \"urn:example:rs\"]\n",
        );
        let named = Options {
            account: Some("a".into()),
            ..Default::default()
        };
        let resources = |cli: &Options, env: &dyn Fn(&str) -> Option<String>| {
            Settings::resolve(cli, Some(&p), env)
                .unwrap()
                .unwrap()
                .resources
        };
        assert_eq!(
            resources(&named, &no_env),
            ["https://file.example/", "urn:example:rs"]
        );
        let env = |k: &str| {
            (k == "GIT_CREDENTIAL_IAM_RESOURCE")
                .then(|| "https://env.example/a https://env.example/b".to_string())
                .or_else(|| no_env(k))
        };
        assert_eq!(
            resources(&named, &env),
            ["https://env.example/a", "https://env.example/b"]
        );
        let mut cli = named.clone();
        cli.set("resource", "https://cli.example/".into()).unwrap();
        assert_eq!(resources(&cli, &env), ["https://cli.example/"]);
        let e = cli
            .clone()
            .set("resource", "https://u:SECRET@cli.example/".into())
            .unwrap_err()
            .to_string();
        assert!(e.contains("user info") && !e.contains("SECRET"), "{e}");
        let (_e, bad) = write_config("resource = [\"not a uri\"]\n");
        let e = Settings::resolve(&Options::default(), Some(&bad), &no_env).unwrap_err();
        assert!(
            e.to_string().contains("line 1") && e.to_string().contains("--resource"),
            "{e}"
        );
        let bad_env = |k: &str| {
            (k == "GIT_CREDENTIAL_IAM_RESOURCE")
                .then(|| "https://x.example/#frag".to_string())
                .or_else(|| no_env(k))
        };
        let e = Options::from_env(&bad_env).unwrap_err().to_string();
        assert!(
            e.contains("GIT_CREDENTIAL_IAM_RESOURCE") && e.contains("fragment"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_and_command_line_only_options_are_refused_in_the_file() {
        for key in [
            "bogus = 1",
            "account-name = \"x\"",
            "format = \"json\"",
            "non-interactive = true",
        ] {
            let (_d, p) = write_config(&format!("\n{key}\n"));
            let e = Settings::resolve(&Options::default(), Some(&p), &no_env).unwrap_err();
            assert!(e.to_string().contains("line 2: unknown key"), "{key}: {e}");
        }
        let (_d, p) = write_config("[account.a]\nurls = \"git.example.org\"\nqr = 3\n");
        let e = Settings::resolve(&Options::default(), Some(&p), &no_env).unwrap_err();
        assert!(e.to_string().contains("line 3: qr"), "{e}");
    }

    #[test]
    fn status_resolves_the_cache_dir_like_every_action() {
        let (d, p) = write_config("cache-dir = \"state\"\n[account.a]\ncache-dir = \"/acct\"\n");
        let local = |cli: &Options, env: &dyn Fn(&str) -> Option<String>| {
            Local::resolve(cli, Some(&p), env).unwrap().cache_dir
        };
        assert_eq!(local(&Options::default(), &no_env), d.path().join("state"));
        let named = Options {
            account: Some("a".into()),
            ..Default::default()
        };
        assert_eq!(local(&named, &no_env), PathBuf::from("/acct"));
        let env = |k: &str| {
            (k == "GIT_CREDENTIAL_IAM_CACHE_DIR")
                .then(|| "~/env-cache".to_string())
                .or_else(|| no_env(k))
        };
        assert_eq!(
            local(&named, &env),
            PathBuf::from("/nonexistent/home/env-cache")
        );
        let (_e, empty) = write_config("");
        let env = |k: &str| match k {
            "XDG_STATE_HOME" => Some("/xdg/state".to_string()),
            _ => no_env(k),
        };
        assert_eq!(
            Local::resolve(&Options::default(), Some(&empty), &env)
                .unwrap()
                .cache_dir,
            PathBuf::from("/xdg/state/git-credential-iam")
        );
        assert_eq!(
            default_config_path(&no_env),
            Some(PathBuf::from(
                "/nonexistent/home/.config/git-credential-iam/config.toml"
            ))
        );
    }
}
