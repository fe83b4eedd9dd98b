//! `register`: RFC 7591 dynamic client registration at the provider's `registration_endpoint`
//! (INDIGO IAM's is `<issuer>iam/api/client-registration`), saving the new client as a named
//! account in the config file so that `--account NAME` alone selects it afterwards. The client
//! secret and the registration access token go into new 0600 files beside the config (never
//! over an existing file, never into the config). The config is edited as a TOML document
//! (`toml_edit`), so the user's comments and layout stay; the edited file is written atomically
//! next to the real file when the config is a symbolic link (the link stays), and it is loaded
//! back with [`ConfigFile::load`] before it replaces the old one.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use toml_edit::{Array, DocumentMut, Item, Table, value};

use crate::actions::Io;
use crate::config::{self, ConfigFile, Flow, Options, Settings};
use crate::encoding::clean;
use crate::error::{Error, Result};
use crate::provider::Client;
use crate::provider::device::GRANT_TYPE as DEVICE_GRANT;
use crate::provider::http::oauth_error;
use crate::provider::registration::parse_registration_response;
use crate::store::files::ensure_dir;
use crate::trust::{Pattern, host_of};

/// `register`'s own arguments.
#[derive(Debug, Default)]
pub struct RegisterArgs {
    /// `--confidential`: a client with a secret.
    pub confidential: bool,
    /// `--print`: show the registration response (secrets replaced).
    pub print: bool,
}

/// The git server shown in hints when no `--url` was given.
const PLACEHOLDER_URL: &str = "https://git.example.org";

/// What `register` was asked for.
pub struct Request<'a> {
    pub name: &'a str,
    pub config_path: &'a Path,
    pub confidential: bool,
    pub print: bool,
    /// `--url`: the git servers the account serves (its `urls`); may be empty.
    pub urls: &'a [String],
    /// A comment line written above the new `[account.NAME]` table (`setup` marks its tables).
    pub note: Option<&'a str>,
}

/// What saving an account added: the text appended to the config file (exactly), the secret
/// files created, and the client id. `setup --undo` removes exactly these.
#[derive(Debug, Clone)]
pub struct Saved {
    pub client_id: String,
    /// The bytes appended to the config file; empty when the old text was not kept as a prefix.
    pub appended: String,
    /// The 0600 files created beside the config (client secret, registration access token).
    pub files: Vec<PathBuf>,
}

/// `register` from the command line: the account name from `--account`, the config file from
/// `--config`, `GIT_CREDENTIAL_IAM_CONFIG` or the default path (created if missing).
pub fn run(
    args: &RegisterArgs,
    options: &Options,
    config: Option<&Path>,
    io: &mut Io,
) -> Result<()> {
    let getenv = io.getenv;
    let mut o = options.clone();
    let name = o.account.take().unwrap_or_default();
    o.client_id.get_or_insert_with(|| "(registering)".into());
    let path = config::explicit_config_path(config, getenv)
        .or_else(|| config::default_config_path(getenv))
        .ok_or_else(|| {
            Error::Usage("cannot find the config directory: pass --config FILE".into())
        })?;
    // The file named by --config or GIT_CREDENTIAL_IAM_CONFIG may not exist yet: register
    // creates it, so it is read only when it is there.
    let s = if path.exists() {
        Settings::resolve(&o, Some(&path), getenv)?
    } else {
        let no_file = |k: &str| getenv(k).filter(|_| k != "GIT_CREDENTIAL_IAM_CONFIG");
        Settings::resolve(&o, None, &no_file)?
    }
    .ok_or_else(|| Error::Usage("register needs --issuer URL and --account NAME".into()))?;
    let r = Request {
        name: &name,
        config_path: &path,
        confidential: args.confidential,
        print: args.print,
        urls: &options.urls,
        note: None,
    };
    register(&s, &r, io)
}

/// Whether `name` can name an account: letters, digits, `-` and `_`.
pub fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `register`: registers a client, saves it as account `r.name` and prints how to use it.
pub fn register(s: &Settings, r: &Request, io: &mut Io) -> Result<()> {
    let saved = register_client(s, r, io)?;
    let host = host_of(&s.issuer);
    let config_opt = if Some(r.config_path.to_path_buf()) == config::default_config_path(io.getenv)
    {
        String::new()
    } else {
        format!(" --config {}", r.config_path.display())
    };
    io.say(&format!(
        "registered client {} at {host} as account {:?} in {}",
        saved.client_id,
        r.name,
        r.config_path.display()
    ));
    if r.urls.is_empty() {
        io.say(&format!(
            "tie the account to your git server: add urls = [\"{PLACEHOLDER_URL}/\"] to \
             [account.{}] in {}, or register with --url URL",
            r.name,
            r.config_path.display()
        ));
    }
    io.say(&format!(
        "use it with: git config --global credential.{}.helper \"iam --account {}{config_opt}\"",
        git_config_url(r.urls.first().map(String::as_str)),
        r.name
    ));
    Ok(())
}

/// Registers a client and saves it as account `r.name` (the one registration path, shared by
/// `register` and `setup`). Everything that can be checked locally (the name, the `--url`s,
/// the config file, that no secret file would be overwritten) is checked before the provider
/// is asked, so that a refusal leaves no orphan client behind.
pub fn register_client(s: &Settings, r: &Request, io: &mut Io) -> Result<Saved> {
    if !valid_account_name(r.name) {
        return Err(Error::Usage(format!(
            "register needs --account NAME, a name of letters, digits, '-' and '_', not {:?}",
            r.name
        )));
    }
    for u in r.urls {
        Pattern::parse(u)?;
    }
    let existing = ConfigFile::load(r.config_path, false)?;
    if existing.accounts.contains_key(r.name) {
        return Err(Error::Usage(format!(
            "account {:?} already exists in {}; pick another name or remove it first",
            r.name,
            r.config_path.display()
        )));
    }
    // Checked now, written later: the file must be editable before a client is registered.
    ConfigEdit::open(r.config_path)?;
    let (secret_path, reg_path) = secret_paths(r.config_path, r.name)?;
    for p in [&secret_path, &reg_path] {
        refuse_existing(p)?;
    }

    let client = Client::new(s, (io.clock)())?;
    let host = host_of(&s.issuer);
    let manual = manual_page(&s.issuer);
    let Some(url) = client.endpoints()?.registration_endpoint.clone() else {
        return Err(Error::Provider {
            host,
            message: format!("offers no dynamic client registration; {manual}"),
        });
    };
    let mut grants = vec![DEVICE_GRANT, "refresh_token"];
    if s.flow == Flow::Password {
        grants.push("password");
        io.say("note: the password grant is requested, but INDIGO IAM leaves it disabled until an administrator enables it",
        );
    }
    let body = json!({
        "client_name": format!("git-credential-iam on {}", hostname()),
        "grant_types": grants,
        "response_types": [],
        "scope": s.scope,
        "token_endpoint_auth_method": if r.confidential { "client_secret_basic" } else { "none" },
    });
    let reply = client.http().post_json(&url, &body)?;
    if !(200..300).contains(&reply.status) {
        let e = oauth_error(&url, &reply, &[]);
        return Err(Error::Provider {
            host,
            message: format!("refused the registration ({e}); {manual}"),
        });
    }
    // The one parser of registration answers checks every field before anything is saved.
    let reg = parse_registration_response(&host, &reply.body).map_err(|e| match e {
        Error::Provider { host, message } => Error::Provider {
            host,
            message: format!(
                "{message}; nothing was saved (the provider may hold an unusable client now: \
                 delete it on its web interface)"
            ),
        },
        e => e,
    })?;
    let client_id = reg.client_id.as_str();
    let client_secret = reg.client_secret.as_ref().map(|v| v.expose().as_str());
    let reg_token = reg
        .registration_access_token
        .as_ref()
        .map(|v| v.expose().as_str());

    let account = Account {
        issuer: &s.issuer,
        client_id,
        scope: &s.scope,
        secret_file: client_secret.map(|_| secret_path.as_path()),
        audience: s.audience.as_deref(),
        password_flow: s.flow == Flow::Password,
        urls: r.urls,
    };
    let mut secrets = Vec::new();
    if let Some(v) = client_secret {
        secrets.push((secret_path.as_path(), v));
    }
    if let Some(v) = reg_token {
        secrets.push((reg_path.as_path(), v));
    }
    let saved = save_account(r.config_path, r.name, &account, &secrets, r.note)?;
    if r.print {
        let resp: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        let secret_file = client_secret.map(|_| secret_path.as_path());
        let reg_file = reg_token.map(|_| reg_path.as_path());
        print_response(&resp, secret_file, reg_file, io)?;
    }
    Ok(saved)
}

/// Where the client secret and the registration access token of account `name` go: beside
/// the path the user named (when that is a link into a dotfiles repository, secrets must not
/// land in the repository).
fn secret_paths(config_path: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
    let dir = std::path::absolute(dir_of(config_path))
        .map_err(|e| Error::io("cannot find the directory of", config_path, e))?;
    Ok((
        dir.join(format!("{name}.secret")),
        dir.join(format!("{name}.registration")),
    ))
}

/// Adds `[account.NAME]` (with `note` as a comment above it) to the config file and creates
/// the `secrets` files (mode 0600, never over an existing file). The one writer of account
/// tables: `register` and `setup` (with a client given or registered) both come here. The
/// config is replaced only when every secret file was written; on failure nothing is left.
pub fn save_account(
    config_path: &Path,
    name: &str,
    account: &Account,
    secrets: &[(&Path, &str)],
    note: Option<&str>,
) -> Result<Saved> {
    let file = ConfigEdit::open(config_path)?;
    for (p, _) in secrets {
        refuse_existing(p)?;
    }
    let staged = file.stage(name, account, note)?;
    let mut written = Vec::new();
    let saved = (|| {
        for (path, v) in secrets {
            ensure_dir(dir_of(path))?;
            create_secret_file(path, v)?;
            written.push(path.to_path_buf());
        }
        staged.commit()
    })();
    match saved {
        Ok(appended) => Ok(Saved {
            client_id: account.client_id.to_string(),
            appended,
            files: written,
        }),
        Err(e) => {
            for p in &written {
                let _ = fs::remove_file(p);
            }
            Err(e)
        }
    }
}

/// What [`remove_account`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Removed {
    /// The table is gone (the appended text cut off, or the table taken out).
    TakenOut,
    /// There was no such table.
    Absent,
    /// The table's client id is no longer `client_id`: someone changed it; it stays.
    Changed,
}

/// Takes `[account.NAME]` out of the config file again. When the file still ends with exactly
/// the text that was `appended`, that text is cut off, so the file is again byte for byte what
/// it was; otherwise the table is removed as a TOML table (the rest of the file keeps its
/// comments and layout). Only a table whose `client-id` is still `client_id` is removed.
pub fn remove_account(
    config_path: &Path,
    name: &str,
    appended: &str,
    client_id: &str,
) -> Result<Removed> {
    let mut edit = ConfigEdit::open(config_path)?;
    let Some(table) = edit.accounts()?.get(name).and_then(Item::as_table) else {
        return Ok(Removed::Absent);
    };
    if table.get("client-id").and_then(Item::as_str) != Some(client_id) {
        return Ok(Removed::Changed);
    }
    let text = edit.text.clone();
    let cut = text
        .strip_suffix(appended)
        .filter(|rest| !appended.is_empty() && !has_account(rest, name));
    let new_text = match cut {
        Some(rest) => rest.to_string(),
        None => {
            edit.accounts()?.remove(name);
            if edit.accounts()?.is_empty() {
                edit.doc.remove("account");
            }
            edit.doc.to_string()
        }
    };
    let staged = edit.stage_text(new_text)?;
    staged.commit()?;
    Ok(Removed::TakenOut)
}

/// Whether TOML `text` holds `[account.NAME]` (text that does not parse holds nothing).
fn has_account(text: &str, name: &str) -> bool {
    text.parse::<DocumentMut>()
        .ok()
        .and_then(|d| d.get("account")?.as_table()?.get(name).map(|_| ()))
        .is_some()
}

/// The URL in a `credential.<url>.helper` key for a `urls` entry (a bare host means https).
fn git_config_url(entry: Option<&str>) -> String {
    match entry {
        None => PLACEHOLDER_URL.to_string(),
        Some(u) if u.contains("://") => u.trim_end_matches('/').to_string(),
        Some(host) => format!("https://{host}"),
    }
}

/// Refuses to go on when `path` exists (as anything, a dangling link too).
fn refuse_existing(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("cannot inspect", path, e)),
        Ok(_) => Err(Error::Usage(format!(
            "{} already exists and register never overwrites it: remove it, or pick another \
             --account name",
            path.display()
        ))),
    }
}

/// Creates `path` (which must not exist) with mode 0600 and writes `value` and a newline.
fn create_secret_file(path: &Path, value: &str) -> Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(path)?;
        let written = f
            .write_all(format!("{value}\n").as_bytes())
            .and_then(|()| f.sync_all());
        if written.is_err() {
            let _ = fs::remove_file(path);
        }
        written
    })();
    result.map_err(|e| Error::io("cannot create", path, e))
}

/// The new account's table, as written to the config file.
pub struct Account<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub secret_file: Option<&'a Path>,
    pub audience: Option<&'a str>,
    pub password_flow: bool,
    pub urls: &'a [String],
}

impl Account<'_> {
    fn table(&self) -> Table {
        let mut t = Table::new();
        t["issuer"] = value(self.issuer);
        t["client-id"] = value(self.client_id);
        t["scope"] = value(self.scope);
        if let Some(f) = self.secret_file {
            t["client-secret-file"] = value(f.to_string_lossy().as_ref());
        }
        if let Some(a) = self.audience {
            t["audience"] = value(a);
        }
        if self.password_flow {
            t["flow"] = value("password");
        }
        if !self.urls.is_empty() {
            t["urls"] = value(self.urls.iter().collect::<Array>());
        }
        t
    }
}

/// The config file being edited: the path the user named and the file it really is (through
/// symbolic links), with its text parsed as a TOML document.
struct ConfigEdit {
    named: PathBuf,
    real: PathBuf,
    /// The file's text as read.
    text: String,
    doc: DocumentMut,
}

impl ConfigEdit {
    /// Reads and parses the config file (a missing one is empty).
    fn open(named: &Path) -> Result<ConfigEdit> {
        let real = resolve_links(named)?;
        let text = match fs::read_to_string(&real) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io("cannot read config file", &real, e)),
        };
        let doc = text.parse::<DocumentMut>().map_err(|e| Error::Config {
            path: named.to_path_buf(),
            message: e.to_string().lines().collect::<Vec<_>>().join(" "),
        })?;
        let mut edit = ConfigEdit {
            named: named.to_path_buf(),
            real,
            text,
            doc,
        };
        edit.accounts()?;
        Ok(edit)
    }

    /// The `account` table (created, as a bare parent of `[account.NAME]`, when missing).
    fn accounts(&mut self) -> Result<&mut Table> {
        let named = &self.named;
        let item = self.doc.entry("account").or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        item.as_table_mut().ok_or_else(|| Error::Config {
            path: named.clone(),
            message: "`account` is not a table of [account.NAME] tables; register cannot add \
                      to it: edit the file by hand"
                .into(),
        })
    }

    /// Adds `[account.NAME]` (after a `# note` comment line, if any) at the end of the file and
    /// writes the result to a temporary file beside the real one, then loads that with the
    /// config loader: it must hold the account.
    fn stage(mut self, name: &str, account: &Account, note: Option<&str>) -> Result<Staged> {
        let last = last_position(self.doc.as_table());
        let mut table = account.table();
        table.set_position(Some(last + 1));
        // The file's text stays a prefix of the result: what follows its last table (comments,
        // blank lines) goes before the new table, then one blank line.
        let before = self.doc.to_string();
        let mut prefix = String::new();
        if !before.trim().is_empty() {
            prefix.push_str(self.doc.trailing().as_str().unwrap_or(""));
            if !before.ends_with('\n') {
                prefix.push('\n');
            }
            if !before.ends_with("\n\n") {
                prefix.push('\n');
            }
        }
        if let Some(note) = note {
            for line in note.lines() {
                prefix.push_str(&format!("# {line}\n"));
            }
        }
        self.doc.set_trailing("");
        table.decor_mut().set_prefix(prefix);
        self.accounts()?.insert(name, Item::Table(table));
        let text = self.doc.to_string();
        let staged = self.stage_text(text)?;
        let loaded = ConfigFile::load(&staged.tmp, true).map_err(|e| {
            let why = match e {
                Error::Config { message, .. } => message,
                other => other.to_string(),
            };
            Error::Config {
                path: self.named.clone(),
                message: format!("the edited file would not load ({why}); it is left unchanged"),
            }
        })?;
        let saved = loaded.accounts.get(name);
        if saved.and_then(|a| a.client_id.as_deref()) != Some(account.client_id)
            || saved.map(|a| a.urls.as_slice()) != Some(account.urls)
        {
            return Err(Error::Config {
                path: self.named.clone(),
                message: format!(
                    "the edited file does not hold [account.{name}] as written; it is left \
                     unchanged: add the account by hand"
                ),
            });
        }
        Ok(staged)
    }

    /// Writes `text` to a temporary file beside the real one (with the real one's mode), to
    /// replace it on [`Staged::commit`].
    fn stage_text(&self, text: String) -> Result<Staged> {
        let dir = dir_of(&self.real).to_path_buf();
        ensure_dir(&dir)?;
        let file_name = self
            .real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config.toml".into());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = dir.join(format!(".{file_name}.{}.{nanos}.tmp", std::process::id()));
        let mode = fs::metadata(&self.real).map(|m| m.permissions()).ok();
        let appended = text
            .strip_prefix(self.text.as_str())
            .unwrap_or_default()
            .to_string();
        Staged::create(tmp, self.real.clone(), text.as_bytes(), mode, appended)
    }
}

/// The highest position of any table in `t` (0 for none).
fn last_position(t: &Table) -> isize {
    t.iter()
        .filter_map(|(_, item)| item.as_table())
        .map(|sub| sub.position().unwrap_or(0).max(last_position(sub)))
        .max()
        .unwrap_or(0)
}

/// The edited config in its temporary file, removed on drop unless committed.
struct Staged {
    tmp: PathBuf,
    real: PathBuf,
    /// The text added after the old file's text (empty when the old text is not a prefix).
    appended: String,
}

impl Staged {
    /// Creates `tmp` (exclusively; with `mode`, else 0600) holding `bytes`, to replace `real`.
    fn create(
        tmp: PathBuf,
        real: PathBuf,
        bytes: &[u8],
        mode: Option<fs::Permissions>,
        appended: String,
    ) -> Result<Staged> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .map_err(|e| Error::io("cannot create", &tmp, e))?;
        // From here on the temporary file is ours: dropping `staged` removes it.
        let staged = Staged {
            tmp,
            real,
            appended,
        };
        (|| {
            if let Some(m) = mode {
                f.set_permissions(m)?;
            }
            f.write_all(bytes)?;
            f.sync_all()
        })()
        .map_err(|e| Error::io("cannot write", &staged.tmp, e))?;
        Ok(staged)
    }

    /// Puts the edited file in place of the real one; returns the text appended to it.
    fn commit(mut self) -> Result<String> {
        fs::rename(&self.tmp, &self.real)
            .map_err(|e| Error::io("cannot replace the config file", &self.real, e))?;
        #[cfg(unix)]
        if let Ok(d) = fs::File::open(dir_of(&self.real)) {
            let _ = d.sync_all();
        }
        let appended = std::mem::take(&mut self.appended);
        std::mem::forget(self);
        Ok(appended)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

/// The directory holding `path` (`.` for a bare file name).
fn dir_of(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The file `path` names through any chain of symbolic links (a dangling link names the file
/// it points to, which is then created). Directory links need no care: the temporary file is
/// made in the same directory as the file it replaces.
fn resolve_links(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target =
                    fs::read_link(&p).map_err(|e| Error::io("cannot read the link", &p, e))?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            Ok(_) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(p),
            Err(e) => return Err(Error::io("cannot inspect config file", &p, e)),
        }
    }
    Err(Error::Config {
        path: path.to_path_buf(),
        message: "too many levels of symbolic links".into(),
    })
}

/// Where to register by hand when the provider will not register us.
fn manual_page(issuer: &str) -> String {
    format!(
        "register a client on the provider's web interface (INDIGO IAM: {}, dashboard, \
         \"My clients\") with the device code and refresh token grants, and pass --client-id",
        issuer
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this machine".into())
}

fn print_response(
    resp: &Value,
    secret: Option<&Path>,
    reg: Option<&Path>,
    io: &mut Io,
) -> Result<()> {
    let mut out = String::new();
    if let Some(map) = resp.as_object() {
        for (k, v) in map {
            let shown = match k.as_str() {
                "client_secret" => format!(
                    "[saved to {}]",
                    secret.map(|p| p.display().to_string()).unwrap_or_default()
                ),
                "registration_access_token" => format!(
                    "[saved to {}]",
                    reg.map(|p| p.display().to_string()).unwrap_or_default()
                ),
                _ => clean(
                    &match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                    500,
                ),
            };
            out.push_str(&format!("{k}: {shown}\n"));
        }
    }
    io.print(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXISTING: &str = "# my settings\ncache-dir = \"/tmp/c\" # where tokens go\n\n\
                            [account.old]\n# the old one\nissuer = \"https://old.example/\"\n\
                            client-id = \"old\"\n";

    fn account<'a>(client_id: &'a str, urls: &'a [String]) -> Account<'a> {
        Account {
            issuer: "https://iam.example/",
            client_id,
            scope: "openid offline_access",
            secret_file: Some(Path::new("/conf/lab.secret")),
            audience: None,
            password_flow: false,
            urls,
        }
    }

    fn add(path: &Path, name: &str, a: &Account) -> Result<()> {
        ConfigEdit::open(path)?.stage(name, a, None)?.commit()?;
        Ok(())
    }

    #[test]
    fn the_account_is_appended_and_comments_stay() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        fs::write(&p, EXISTING).unwrap();
        let urls = vec![
            "https://git.example.org/".to_string(),
            "git.example.net".into(),
        ];
        add(&p, "lab", &account("id-1", &urls)).unwrap();
        let text = fs::read_to_string(&p).unwrap();
        assert!(text.starts_with(EXISTING), "{text}");
        assert!(
            text.ends_with(
                "\n[account.lab]\nissuer = \"https://iam.example/\"\nclient-id = \"id-1\"\n\
                 scope = \"openid offline_access\"\nclient-secret-file = \"/conf/lab.secret\"\n\
                 urls = [\"https://git.example.org/\", \"git.example.net\"]\n"
            ),
            "{text}"
        );
        let f = ConfigFile::load(&p, true).unwrap();
        assert_eq!(f.accounts["lab"].urls, urls);
        assert_eq!(f.accounts.len(), 2);
        // Into an empty (missing) file: no leading blank line, no bare [account] table.
        let q = dir.path().join("sub/new.toml");
        add(&q, "lab", &account("id-2", &[])).unwrap();
        let text = fs::read_to_string(&q).unwrap();
        assert!(text.starts_with("[account.lab]\n"), "{text}");
        assert!(!text.contains("urls"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&q), 0o600);
            fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
            add(&p, "lab2", &account("id-3", &[])).unwrap();
            assert_eq!(mode(&p), 0o644, "the file keeps its mode");
        }
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temp file left"
        );
    }

    #[test]
    fn a_saved_account_is_removed_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        let urls = vec!["https://git.example.org/".to_string()];
        for original in [EXISTING, "", "# only a comment"] {
            fs::write(&p, original).unwrap();
            let saved =
                save_account(&p, "lab", &account("id", &urls), &[], Some("a note")).unwrap();
            let text = fs::read_to_string(&p).unwrap();
            assert!(text.contains("\n# a note\n[account.lab]\n") || text.starts_with("# a note\n"));
            assert_eq!(format!("{original}{}", saved.appended), text);
            assert_eq!(
                remove_account(&p, "lab", &saved.appended, "other").unwrap(),
                Removed::Changed
            );
            assert_eq!(
                remove_account(&p, "lab", &saved.appended, "id").unwrap(),
                Removed::TakenOut
            );
            assert_eq!(fs::read_to_string(&p).unwrap(), original);
            assert_eq!(
                remove_account(&p, "lab", &saved.appended, "id").unwrap(),
                Removed::Absent
            );
        }
        // Edited after: the table alone goes, what the user added after it stays.
        fs::write(&p, EXISTING).unwrap();
        let saved = save_account(&p, "lab", &account("id", &urls), &[], None).unwrap();
        let mut text = fs::read_to_string(&p).unwrap();
        text.push_str("\n[account.later]\nissuer = \"https://i/\"\nclient-id = \"c\"\n");
        fs::write(&p, &text).unwrap();
        assert_eq!(
            remove_account(&p, "lab", &saved.appended, "id").unwrap(),
            Removed::TakenOut
        );
        let f = ConfigFile::load(&p, true).unwrap();
        assert_eq!(f.accounts.keys().collect::<Vec<_>>(), ["later", "old"]);
        assert!(fs::read_to_string(&p).unwrap().starts_with(EXISTING));
    }

    #[test]
    fn the_file_text_stays_a_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        for original in [
            "cache-dir = \"/x\"",
            "cache-dir = \"/x\"\n# trailing comment\n",
            "# only a comment",
            "[account.a]\nissuer = \"i\" # c\nclient-id=\"c\"\n\n\n# end\n",
            "account.b.issuer = \"i\"\naccount.b.client-id = \"c\"\n",
        ] {
            fs::write(&p, original).unwrap();
            add(&p, "lab", &account("id", &[])).unwrap();
            let text = fs::read_to_string(&p).unwrap();
            let added = text.strip_prefix(original).expect(&text);
            assert!(
                added
                    .trim_start_matches('\n')
                    .starts_with("[account.lab]\n")
                    && text.contains("\n\n[account.lab]\n"),
                "{text:?}"
            );
            assert!(
                text.ends_with(
                    "scope = \"openid offline_access\"\nclient-secret-file = \"/conf/lab.secret\"\n"
                ),
                "{text:?}"
            );
            assert_eq!(
                ConfigFile::load(&p, true).unwrap().accounts["lab"]
                    .client_id
                    .as_deref(),
                Some("id")
            );
        }
    }

    #[test]
    fn user_text_with_control_characters_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        let mut a = account("id", &[]);
        a.scope = "openid\u{7f}\n\"x\" \\";
        add(&p, "lab", &a).unwrap();
        let f = ConfigFile::load(&p, true).unwrap();
        assert_eq!(f.accounts["lab"].scope.as_deref(), Some(a.scope));
    }

    #[test]
    fn a_config_that_is_not_toml_or_not_a_table_is_refused_before_registering() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        fs::write(&p, "account = 3\n").unwrap();
        let e = ConfigEdit::open(&p).err().unwrap().to_string();
        assert!(e.contains("edit the file by hand"), "{e}");
        fs::write(&p, "[account.x\n").unwrap();
        assert!(matches!(ConfigEdit::open(&p), Err(Error::Config { .. })));
    }

    #[test]
    fn a_symlinked_config_is_edited_through_the_link() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("dotfiles")).unwrap();
        fs::create_dir_all(dir.path().join("conf")).unwrap();
        let real = dir.path().join("dotfiles/iam.toml");
        fs::write(&real, EXISTING).unwrap();
        let mid = dir.path().join("conf/mid.toml");
        std::os::unix::fs::symlink("../dotfiles/iam.toml", &mid).unwrap();
        let link = dir.path().join("conf/config.toml");
        std::os::unix::fs::symlink("mid.toml", &link).unwrap();
        add(&link, "lab", &account("id", &[])).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
        assert!(fs::symlink_metadata(&mid).unwrap().is_symlink());
        let text = fs::read_to_string(&real).unwrap();
        assert!(text.starts_with(EXISTING) && text.contains("[account.lab]"));
        // A dangling link: its target is created.
        let dangling = dir.path().join("conf/new.toml");
        std::os::unix::fs::symlink("../dotfiles/new.toml", &dangling).unwrap();
        add(&dangling, "lab", &account("id", &[])).unwrap();
        assert!(fs::symlink_metadata(&dangling).unwrap().is_symlink());
        assert!(dir.path().join("dotfiles/new.toml").is_file());
        // A loop is an error, not a hang.
        let a = dir.path().join("conf/a.toml");
        std::os::unix::fs::symlink("a.toml", &a).unwrap();
        assert!(ConfigEdit::open(&a).is_err());
    }

    #[test]
    fn secret_files_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lab.secret");
        fs::write(&p, "mine\n").unwrap();
        let e = refuse_existing(&p).unwrap_err().to_string();
        assert!(
            e.contains(&p.display().to_string())
                && e.contains("remove it, or pick another --account name")
                && !e.contains('\n'),
            "{e}"
        );
        assert!(create_secret_file(&p, "new").is_err());
        assert_eq!(fs::read_to_string(&p).unwrap(), "mine\n");
        let q = dir.path().join("lab.registration");
        refuse_existing(&q).unwrap();
        create_secret_file(&q, "tok").unwrap();
        assert_eq!(fs::read_to_string(&q).unwrap(), "tok\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&q).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn the_suggested_helper_is_tied_to_a_url() {
        assert_eq!(git_config_url(None), "https://git.example.org");
        assert_eq!(
            git_config_url(Some("https://gitlab.example.org/group/")),
            "https://gitlab.example.org/group"
        );
        assert_eq!(
            git_config_url(Some("git.example.net")),
            "https://git.example.net"
        );
    }
}
