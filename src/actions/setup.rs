//! `setup URL`: the whole set-up for one git server in one command, and `setup --undo URL`,
//! which takes back exactly what it added.
//!
//! In order: the account (`[account.NAME]` with `urls = [URL]`, written by
//! [`register::save_account`] for a client given with `--client-id`, or registered by
//! [`register::register_client`]), git's configuration scoped to the URL
//! (`credential.<URL>.helper`, after an empty value that resets the helper list for that URL;
//! `credential.<URL>.useHttpPath` when the URL has a path) written by running `git config`
//! (`--global`, or `--file FILE`), a sign-in (the same pipeline as `get`: a valid cached login
//! is used as it is), and one `git ls-remote URL` that proves it works.
//!
//! Each step is skipped when its result is already there, so a second run changes nothing.
//! What a run added is recorded in a small JSON file beside the config file (`config.toml` →
//! `config.setup.json`): the account table's exact text, the secret files created, each git
//! config value added and whether the login is new. `--undo` removes those and nothing else.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::actions::Io;
use crate::actions::helper;
use crate::actions::pipeline::{Purpose, SignIn};
use crate::actions::register::{self, Account, Removed};
use crate::config::{self, ConfigFile, Flow, Options, Settings};
use crate::encoding::clean;
use crate::encoding::rfc3339;
use crate::error::{Error, Result};
use crate::store::cache::AccountFiles;
use crate::trust;

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

/// `setup URL` or `setup --undo URL` from the command line.
pub fn run(args: &SetupArgs, options: &Options, config: Option<&Path>, io: &mut Io) -> Result<()> {
    let getenv = io.getenv;
    let text = match (&args.url, options.urls.as_slice()) {
        (Some(u), _) => u.clone(),
        (None, [u]) => u.clone(),
        _ => {
            return Err(Error::Usage(
                "setup needs the git server's URL: git-credential-iam setup \
                 https://git.example.org/"
                    .into(),
            ));
        }
    };
    let url = server_url(&text)?;
    let config_path = config::explicit_config_path(config, getenv)
        .or_else(|| config::default_config_path(getenv))
        .ok_or_else(|| {
            Error::Usage("cannot find the config directory: pass --config FILE".into())
        })?;
    let place = match &args.git_file {
        Some(f) => Place::File(
            std::path::absolute(f).map_err(|e| Error::io("cannot find the path of", f, e))?,
        ),
        None => Place::Global,
    };
    let record_path = record_path(&config_path);
    if args.undo {
        return undo(&url, &config_path, &record_path, io);
    }
    let name = match &options.account {
        Some(n) => n.clone(),
        None => account_name(&url),
    };
    if !register::valid_account_name(&name) {
        return Err(Error::Usage(format!(
            "setup needs an account name of letters, digits, '-' and '_', not {}: pass \
             --account NAME",
            trust::quote(&name)
        )));
    }
    let mut records = Records::load(&record_path)?;
    let before = records.clone();
    let entry = url.as_str().to_string();
    let rec = records.entry(&entry, &config_path, &name);

    // Each step's record is saved even when the step fails half-way, so --undo can take back
    // what it did.
    let done = ensure_account(args, options, &url, &name, &config_path, rec, io);
    records.save(&record_path, &before)?;
    done?;
    let helper_line = helper_value(&name, &config_path, getenv)?;
    let rec = records.entry(&entry, &config_path, &name);
    let done = ensure_git_config(&place, &url, &helper_line, rec, io);
    records.save(&record_path, &before)?;
    done?;

    if args.no_login {
        io.say(&format!(
            "not signed in (--no-login), and not checked: the first git command for {entry} \
             signs you in, or run: git-credential-iam --account {name} login"
        ));
        return Ok(());
    }
    let rec = records.entry(&entry, &config_path, &name);
    let done = sign_in(options, &name, &config_path, rec, io);
    records.save(&record_path, &before)?;
    done?;
    check(&place, &url, io)
}

/// The git server's URL: https (http on loopback only), no user name, query or fragment.
fn server_url(text: &str) -> Result<Url> {
    let url = trust::checked(text, "git server URL")?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Usage(format!(
            "the git server URL {} has a query or fragment: give https://HOST/ or the URL of a \
             repository",
            trust::shown(text)
        )));
    }
    Ok(url)
}

/// The account name derived from the URL's host: letters and digits kept, anything else `-`.
fn account_name(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let mut name = String::new();
    for c in host.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '-'
        };
        if !(c == '-' && (name.is_empty() || name.ends_with('-'))) {
            name.push(c);
        }
    }
    name.trim_end_matches('-').to_string()
}

/// `config.toml` → `config.setup.json`, beside it.
fn record_path(config_path: &Path) -> PathBuf {
    let stem = config_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config".into());
    config_path.with_file_name(format!("{stem}.setup.json"))
}

// ------------------------------------------------------------------------------------------
// the record of what setup added

/// Everything setup added with one config file, by URL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Records {
    /// Bumped when the format changes.
    version: u32,
    setups: Vec<Record>,
}

/// What setup added for one URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    /// The URL as parsed (the account's `urls` entry).
    url: String,
    /// The config file holding the account.
    config: PathBuf,
    /// The account that serves the URL.
    account: String,
    /// Set when setup wrote the account table (else it was the user's own).
    #[serde(default)]
    account_added: Option<AddedAccount>,
    /// Whether setup's sign-in made a login where the cache had none.
    #[serde(default)]
    login_added: bool,
    /// The git config values setup added, in order.
    #[serde(default)]
    git: Vec<GitValue>,
    /// Files setup created by writing to them (the config file, a git config file): removed
    /// on undo when nothing else was written to them.
    #[serde(default)]
    created: Vec<PathBuf>,
}

/// An account table setup wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AddedAccount {
    client_id: String,
    /// The exact text appended to the config file.
    appended: String,
    /// Secret files created beside the config (client secret, registration token).
    files: Vec<PathBuf>,
}

/// One value added to a git config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct GitValue {
    /// The file given with `--file`; `None` for `git config --global`.
    file: Option<PathBuf>,
    key: String,
    value: String,
}

impl Records {
    fn load(path: &Path) -> Result<Records> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Config {
                path: path.to_path_buf(),
                message: format!(
                    "setup's record does not parse ({}): fix or remove it (it only serves \
                     setup --undo)",
                    clean(&e.to_string(), 200)
                ),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Records {
                version: 1,
                setups: Vec::new(),
            }),
            Err(e) => Err(Error::io("cannot read setup's record", path, e)),
        }
    }

    /// Writes the record when it differs from `before` (so a run that adds nothing writes
    /// nothing); an empty record is removed.
    fn save(&self, path: &Path, before: &Records) -> Result<()> {
        if self == before {
            return Ok(());
        }
        if self.setups.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(Error::io("cannot remove setup's record", path, e))
                }
                _ => Ok(()),
            };
        }
        let mut text = serde_json::to_string_pretty(self).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: format!("cannot write setup's record: {e}"),
        })?;
        text.push('\n');
        crate::store::files::write_atomic(path, text.as_bytes())
    }

    /// The record of `url`, created empty when missing.
    fn entry(&mut self, url: &str, config: &Path, account: &str) -> &mut Record {
        let i = match self.setups.iter().position(|r| r.url == url) {
            Some(i) => i,
            None => {
                self.setups.push(Record {
                    url: url.to_string(),
                    config: config.to_path_buf(),
                    account: account.to_string(),
                    account_added: None,
                    login_added: false,
                    git: Vec::new(),
                    created: Vec::new(),
                });
                self.setups.len() - 1
            }
        };
        &mut self.setups[i]
    }
}

// ------------------------------------------------------------------------------------------
// the account

/// Makes sure account `name` exists and is tied to `url`: an existing one is checked (never
/// changed); a missing one is written, for the client given or a newly registered one.
fn ensure_account(
    args: &SetupArgs,
    options: &Options,
    url: &Url,
    name: &str,
    config_path: &Path,
    rec: &mut Record,
    io: &mut Io,
) -> Result<()> {
    let getenv = io.getenv;
    let file = ConfigFile::load(config_path, false)?;
    let entry = url.as_str();
    let shown = config_path.display();
    if let Some(a) = file.accounts.get(name) {
        if rec.account != name {
            return Err(Error::Usage(format!(
                "{entry} was set up with account {:?}: run setup --undo {entry} first, or \
                 pass --account {}",
                rec.account, rec.account
            )));
        }
        if trust::best_match(&a.urls, url).is_none() {
            return Err(Error::Usage(format!(
                "account {name:?} in {shown} is not tied to {entry}: add \"{entry}\" to its \
                 urls, or pass --account ANOTHER_NAME"
            )));
        }
        let issuer = a.issuer.as_ref().or(file.defaults.issuer.as_ref());
        let client = a.client_id.as_ref().or(file.defaults.client_id.as_ref());
        for (opt, given, has) in [
            ("--issuer", &options.issuer, issuer),
            ("--client-id", &options.client_id, client),
        ] {
            if given.is_some() && given.as_ref() != has {
                return Err(Error::Usage(format!(
                    "account {name:?} in {shown} has another {} than the {opt} given: pass \
                     --account ANOTHER_NAME, or leave out {opt}",
                    opt.trim_start_matches("--")
                )));
            }
        }
        return Ok(());
    }
    if rec.account != name {
        return Err(Error::Usage(format!(
            "{entry} was set up with account {:?}: run setup --undo {entry} first",
            rec.account
        )));
    }

    let env = Options::from_env(getenv)?;
    let given_client =
        options.client_id.is_some() || env.client_id.is_some() || file.defaults.client_id.is_some();
    let mut o = options.clone();
    o.account = None;
    o.urls = vec![entry.to_string()];
    if !given_client {
        o.client_id = Some("(registering)".into());
    }
    // As for `register`: the config file may not exist yet; setup creates it.
    let s = if config_path.exists() {
        Settings::resolve(&o, Some(config_path), getenv)?
    } else {
        let no_file = |k: &str| getenv(k).filter(|_| k != "GIT_CREDENTIAL_IAM_CONFIG");
        Settings::resolve(&o, None, &no_file)?
    }
    .ok_or_else(|| {
        Error::Usage(format!(
            "setup needs the provider of account {name:?}: pass --issuer ISSUER (INDIGO IAM's \
             ends in /)"
        ))
    })?;
    trust::checked(&s.issuer, "issuer")?;
    let note = format!(
        "Added by `git-credential-iam setup`; `git-credential-iam setup --undo {entry}` \
         removes it."
    );
    let urls = [entry.to_string()];
    let config_existed = exists(config_path);
    let saved = if given_client {
        let secret_file = s
            .client_secret_file
            .as_deref()
            .map(std::path::absolute)
            .transpose()
            .map_err(|e| Error::io("cannot find the path of", "--client-secret-file", e))?;
        let account = Account {
            issuer: &s.issuer,
            client_id: &s.client_id,
            scope: &s.scope,
            secret_file: secret_file.as_deref(),
            audience: s.audience.as_deref(),
            password_flow: s.flow == Flow::Password,
            urls: &urls,
        };
        register::save_account(config_path, name, &account, &[], Some(&note))?
    } else {
        let r = register::Request {
            name,
            config_path,
            confidential: args.confidential,
            print: false,
            urls: &urls,
            note: Some(&note),
        };
        let saved = register::register_client(&s, &r, io)?;
        io.say(&format!(
            "registered client {} at {}",
            saved.client_id,
            trust::host_of(&s.issuer)
        ));
        saved
    };
    io.say(&format!(
        "added account {name:?} (client {}) with urls = [\"{entry}\"] to {shown}",
        saved.client_id
    ));
    if !config_existed {
        rec.created.push(config_path.to_path_buf());
    }
    rec.account_added = Some(AddedAccount {
        client_id: saved.client_id,
        appended: saved.appended,
        files: saved.files,
    });
    Ok(())
}

// ------------------------------------------------------------------------------------------
// git's configuration

/// Which git config file setup writes.
enum Place {
    /// `git config --global` (`$GIT_CONFIG_GLOBAL`, `~/.gitconfig` or XDG's, as git decides).
    Global,
    /// `git config --file FILE`.
    File(PathBuf),
}

impl Place {
    fn of(file: Option<&Path>) -> Place {
        match file {
            Some(f) => Place::File(f.to_path_buf()),
            None => Place::Global,
        }
    }

    fn file(&self) -> Option<PathBuf> {
        match self {
            Place::Global => None,
            Place::File(f) => Some(f.clone()),
        }
    }

    /// The file written: `--file`'s, or the one `git config --global` writes (as git picks
    /// it: `$GIT_CONFIG_GLOBAL`, else `~/.gitconfig` unless only `$XDG_CONFIG_HOME/git/config`
    /// exists).
    fn path(&self, getenv: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
        match self {
            Place::File(f) => Some(f.clone()),
            Place::Global => {
                let var = |k: &str| getenv(k).filter(|v| !v.is_empty()).map(PathBuf::from);
                if let Some(f) = var("GIT_CONFIG_GLOBAL") {
                    return Some(f);
                }
                let home_dir = var("HOME")?;
                let home = home_dir.join(".gitconfig");
                let xdg = var("XDG_CONFIG_HOME")
                    .unwrap_or_else(|| home_dir.join(".config"))
                    .join("git/config");
                let xdg = Some(xdg);
                match xdg {
                    Some(x) if !exists(&home) && exists(&x) => Some(x),
                    _ => Some(home),
                }
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Place::Global => "your global git config".into(),
            Place::File(f) => f.display().to_string(),
        }
    }

    /// Runs `git config <scope> ARGS`.
    fn git_config(&self, args: &[&str]) -> Result<Output> {
        let mut cmd = Command::new("git");
        cmd.arg("config");
        match self {
            Place::Global => {
                cmd.arg("--global");
            }
            Place::File(f) => {
                cmd.arg("--file").arg(f);
            }
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::io("cannot run git (is it installed and on PATH?):", "git", e))
    }

    fn fail(&self, what: &str, out: &Output) -> Error {
        Error::Config {
            path: self
                .file()
                .unwrap_or_else(|| PathBuf::from("(git config --global)")),
            message: format!("git config {what} failed: {}", last_line(&out.stderr)),
        }
    }

    /// Every value of `key` in this file (none when the file does not exist).
    fn get_all(&self, key: &str) -> Result<Vec<String>> {
        let out = self.git_config(&["--get-all", key])?;
        match out.status.code() {
            Some(0) => Ok(String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect()),
            Some(1) => Ok(Vec::new()),
            _ => Err(self.fail("--get-all", &out)),
        }
    }

    fn add(&self, key: &str, value: &str) -> Result<()> {
        let out = self.git_config(&["--add", key, value])?;
        if !out.status.success() {
            return Err(self.fail("--add", &out));
        }
        Ok(())
    }

    /// Removes every `key` line whose value is exactly `value` (none is no error).
    fn unset(&self, key: &str, value: &str) -> Result<()> {
        let out = self.git_config(&["--fixed-value", "--unset-all", key, value])?;
        match out.status.code() {
            Some(0) | Some(5) => Ok(()),
            _ => Err(self.fail("--unset-all", &out)),
        }
    }
}

/// The helper line git runs: `iam --account NAME` when `git-credential-iam` on PATH is this
/// very program, else its absolute path (quoted for the shell git runs it with); then
/// `--config FILE` when the config is not the default one.
fn helper_value(
    name: &str,
    config_path: &Path,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<String> {
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| Error::io("cannot find the path of", "this program", e))?;
    let on_path = getenv("PATH").and_then(|p| {
        std::env::split_paths(&OsString::from(p))
            .map(|d| d.join("git-credential-iam"))
            .find(|c| c.is_file())
    });
    let same = on_path.and_then(|p| std::fs::canonicalize(p).ok()) == Some(exe.clone());
    let mut line = if same {
        "iam".to_string()
    } else {
        shell_word(&exe.to_string_lossy())
    };
    line.push_str(" --account ");
    line.push_str(name);
    if Some(config_path.to_path_buf()) != config::default_config_path(getenv) {
        let abs = std::path::absolute(config_path)
            .map_err(|e| Error::io("cannot find the path of", config_path, e))?;
        line.push_str(" --config ");
        line.push_str(&shell_word(&abs.to_string_lossy()));
    }
    Ok(line)
}

/// `text` as one word for `sh`: as it is when it is plain, else in single quotes.
fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Writes `credential.<URL>.helper` (after an empty value that resets the helper list for the
/// URL) and, for a URL with a path, `credential.<URL>.useHttpPath = true`, unless there.
fn ensure_git_config(
    place: &Place,
    url: &Url,
    helper_line: &str,
    rec: &mut Record,
    io: &mut Io,
) -> Result<()> {
    let scope = url.as_str().trim_end_matches('/');
    let key = format!("credential.{scope}.helper");
    let mut wanted = Vec::new();
    let values = place.get_all(&key)?;
    if !values.iter().any(|v| v == helper_line) {
        if !values.iter().any(String::is_empty) {
            wanted.push((key.clone(), String::new()));
        }
        wanted.push((key.clone(), helper_line.to_string()));
    }
    if url.path() != "/" {
        let key = format!("credential.{scope}.useHttpPath");
        if place.get_all(&key)?.is_empty() {
            wanted.push((key, "true".into()));
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let file = place.path(io.getenv);
    let existed = file.as_deref().is_none_or(exists);
    for (key, value) in wanted {
        place.add(&key, &value)?;
        rec.git.push(GitValue {
            file: place.file(),
            key,
            value,
        });
    }
    if let Some(f) = file.filter(|f| !existed && exists(f)) {
        rec.created.push(f);
    }
    io.say(&format!(
        "git: {key} = {helper_line:?} in {} (after an empty value, so no other helper, \
         storage helpers included, answers for {scope})",
        place.describe()
    ));
    Ok(())
}

// ------------------------------------------------------------------------------------------
// the sign-in and the check

/// Signs in unless a valid login is cached (or can be refreshed): the same pipeline as `get`,
/// with the instructions on stderr as for `login` (a person asked).
fn sign_in(
    options: &Options,
    name: &str,
    config_path: &Path,
    rec: &mut Record,
    io: &mut Io,
) -> Result<()> {
    let getenv = io.getenv;
    let mut o = options.clone();
    o.account = Some(name.to_string());
    o.urls.clear();
    let mut s = Settings::resolve(&o, Some(config_path), getenv)?.ok_or_else(|| {
        Error::Usage(format!(
            "account {name:?} in {} has no issuer: add issuer = \"https://…\" to it",
            config_path.display()
        ))
    })?;
    s.asked_by_a_person(io.stderr_is_tty);
    let files = AccountFiles::for_settings(&s);
    let had_login = files.data.exists();
    let t = SignIn::new(&s, Purpose::Serve)
        .run(io)
        .map_err(|e| match e {
            Error::LoginRequired(_) => Error::LoginRequired(format!(
                "no valid login for account {name:?}, and prompting is off (CI=true, \
             GIT_TERMINAL_PROMPT=0 or --non-interactive): run setup where you can sign in, or \
             pass --no-login"
            )),
            e => e,
        })?;
    if !had_login && files.data.exists() {
        rec.login_added = true;
    }
    io.say(&format!(
        "signed in to {} (account {name:?}), token valid until {}",
        trust::host_of(&s.issuer),
        rfc3339(t.expires_at)
    ));
    Ok(())
}

/// One `git ls-remote URL`, with the config setup wrote: `Ok` when git lists the refs, else
/// one line saying why not.
fn check(place: &Place, url: &Url, io: &mut Io) -> Result<()> {
    let entry = url.as_str();
    let mut cmd = Command::new("git");
    if let Place::File(f) = place {
        let mut inc = OsString::from("include.path=");
        inc.push(f);
        cmd.arg("-c").arg(inc);
    }
    let out = cmd
        .args(["ls-remote", entry])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_HTTP_LOW_SPEED_LIMIT", "1")
        .env("GIT_HTTP_LOW_SPEED_TIME", "60")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("cannot run git (is it installed and on PATH?):", "git", e))?;
    let origin = trust::origin(url);
    if out.status.success() {
        let refs = String::from_utf8_lossy(&out.stdout).lines().count();
        io.say(&format!(
            "checked: git ls-remote {entry} lists {refs} refs; git is set up for {origin}"
        ));
        return Ok(());
    }
    Err(diagnose(
        &origin,
        entry,
        &String::from_utf8_lossy(&out.stderr),
    ))
}

/// Why `git ls-remote` failed, from what git printed, as one line naming the fix.
fn diagnose(origin: &str, entry: &str, stderr: &str) -> Error {
    let low = stderr.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| low.contains(w));
    let said = last_line(stderr.as_bytes());
    let done = "the set-up is written";
    if has(&[
        "could not resolve",
        "failed to connect",
        "couldn't connect",
        "connection refused",
        "timed out",
        "network is unreachable",
        "ssl",
        "certificate",
    ]) {
        return Error::Http {
            host: origin.to_string(),
            message: format!(
                "git ls-remote {entry} failed ({said}); {done}: check the URL and your network"
            ),
        };
    }
    let message = if has(&["401", "authentication failed", "could not read username"]) {
        format!(
            "the server does not accept the token (HTTP 401); {done}, but this server must \
             accept your provider's tokens (GitHub, GitLab, Gitea and Bitbucket accept only \
             their own: see \"Which servers accept these tokens\" in the README)"
        )
    } else if has(&["403"]) {
        format!(
            "the server accepted the sign-in but refuses you {entry} (HTTP 403); {done}: ask \
             the server's administrators for access"
        )
    } else if has(&["404", "not found", "does not appear to be a git repository"]) {
        format!(
            "git ls-remote found no repository at {entry} ({said}); {done}: check it with a \
             repository's URL, e.g. git ls-remote {origin}/GROUP/REPO.git"
        )
    } else {
        format!("git ls-remote {entry} failed ({said}); {done}")
    };
    Error::Provider {
        host: origin.to_string(),
        message,
    }
}

/// The last non-empty line of a program's output, cleaned for a message.
fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message");
    clean(line.trim(), 300)
}

// ------------------------------------------------------------------------------------------
// undo

/// `setup --undo URL`: removes the git config values, the account table, the secret files and
/// the login that setup recorded for URL, each only if setup added it.
fn undo(url: &Url, config_path: &Path, record_path: &Path, io: &mut Io) -> Result<()> {
    let entry = url.as_str();
    let mut records = Records::load(record_path)?;
    let before = records.clone();
    let Some(i) = records.setups.iter().position(|r| r.url == entry) else {
        io.say(&format!(
            "nothing to undo for {entry}: {} records no setup of it",
            record_path.display()
        ));
        return Ok(());
    };
    let rec = records.setups[i].clone();
    for g in rec.git.iter().rev() {
        Place::of(g.file.as_deref()).unset(&g.key, &g.value)?;
    }
    if !rec.git.is_empty() {
        io.say(&format!("removed {} git config value(s)", rec.git.len()));
    }
    if let Some(a) = &rec.account_added {
        if rec.login_added {
            forget_login(&rec, config_path, io);
        }
        match register::remove_account(config_path, &rec.account, &a.appended, &a.client_id)? {
            Removed::TakenOut => io.say(&format!(
                "removed account {:?} from {}",
                rec.account,
                config_path.display()
            )),
            Removed::Absent => {}
            Removed::Changed => io.say(&format!(
                "kept account {:?} in {}: its client-id changed since setup",
                rec.account,
                config_path.display()
            )),
        }
        for f in &a.files {
            match std::fs::remove_file(f) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::io("cannot remove", f, e));
                }
                _ => {}
            }
        }
    }
    // Files that setup brought into being go too, when nothing else was written to them.
    for f in &rec.created {
        if std::fs::metadata(f).is_ok_and(|m| m.is_file() && m.len() == 0) {
            std::fs::remove_file(f).map_err(|e| Error::io("cannot remove", f, e))?;
        }
    }
    records.setups.remove(i);
    records.save(record_path, &before)
}

/// Whether anything (a dangling link too) is at `path`.
fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Forgets (and revokes, where the provider can) the login setup made for an account it added.
fn forget_login(rec: &Record, config_path: &Path, io: &mut Io) {
    let getenv = io.getenv;
    let o = Options {
        account: Some(rec.account.clone()),
        ..Options::default()
    };
    let done = Settings::resolve(&o, Some(config_path), getenv).and_then(|s| match s {
        Some(s) => helper::logout(&s, io),
        None => Ok(()),
    });
    if let Err(e) = done {
        io.say(&format!(
            "could not forget the login of {:?}: {e}",
            rec.account
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_come_from_the_host() {
        let name = |u: &str| account_name(&Url::parse(u).unwrap());
        assert_eq!(
            name("https://Git.Example.org/group/repo.git"),
            "git-example-org"
        );
        assert_eq!(name("http://127.0.0.1:8080/"), "127-0-0-1");
        assert_eq!(name("http://[::1]:8080/"), "1");
        assert!(register::valid_account_name(&name(
            "https://xn--bcher-kva.example/"
        )));
    }

    #[test]
    fn the_url_is_checked() {
        assert!(server_url("https://git.example.org/").is_ok());
        assert!(server_url("http://127.0.0.1:1/repo.git").is_ok());
        for bad in [
            "http://git.example.org/",
            "ssh://git.example.org/",
            "https://u:p@git.example.org/",
            "https://git.example.org/?private_token=SECRET",
            "https://git.example.org/#SECRET",
            "git.example.org",
        ] {
            let e = server_url(bad).unwrap_err().to_string();
            assert!(
                !e.contains('\n') && !e.contains(":p@") && !e.contains("SECRET"),
                "{e}"
            );
            assert!(!e.contains("   "), "{e}");
        }
    }

    #[test]
    fn helper_words_are_quoted_for_the_shell() {
        assert_eq!(
            shell_word("/usr/bin/git-credential-iam"),
            "/usr/bin/git-credential-iam"
        );
        assert_eq!(shell_word("/a b/it's"), "'/a b/it'\\''s'");
        assert_eq!(
            record_path(Path::new("/c/config.toml")),
            Path::new("/c/config.setup.json")
        );
    }

    #[test]
    fn failures_are_told_apart() {
        let e = |s: &str| diagnose("https://g", "https://g/r.git", s).to_string();
        assert!(e("fatal: Authentication failed for 'https://g/r.git/'").contains("401"));
        assert!(e("remote: Not found\nfatal: repository 'x' not found").contains("no repository"));
        assert!(
            e("fatal: unable to access 'x': Failed to connect to g port 443")
                .starts_with("cannot reach https://g")
        );
        assert!(e("fatal: The requested URL returned error: 403").contains("403"));
        assert!(!e("fatal: a\nb").contains('\n'));
    }
}
