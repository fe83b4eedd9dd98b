//! The one option table. Each row of [`OPTIONS`] describes one option: its long name, the value it
//! takes, whether it repeats, its environment variable, its config-file key, its help text,
//! whether it belongs to an account or to the whole run, and which actions it is for. The
//! command line parser, the environment reader, the config file reader (unknown keys), `--help`
//! and the tests of the man page and the shell completions all read this table; the [`Options`]
//! struct, its merge and its setters are generated from it by [`option_table!`].
//!
//! Adding an option: one row here, and its use where [`super::Settings`] is resolved.

use std::path::PathBuf;

use super::{AuthMode, Flow, LockMode};
use crate::error::{Error, Result};

/// What an option's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Text,
    /// A file or folder.
    Path,
    /// Whole seconds within bounds.
    Secs { least: u64, most: u64 },
    /// One of a few words.
    Choice(&'static [&'static str]),
    /// A switch: no value on the command line, true/false in the environment and the file.
    /// `on` is what it sets its field to (`--no-qr` sets `qr` to false).
    Switch { on: bool },
    /// Words, repeatable: `--url A --url B`, `GIT_CREDENTIAL_IAM_URL="A B"`, `urls = [A, B]`.
    Words,
    /// Like [`Kind::Words`], each an absolute URI without a fragment (RFC 8707 §2).
    Uris,
}

/// Whose option it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// An account's setting: command line, environment, the account's table, top-level defaults.
    Account,
    /// The whole run (`--config`, `--help`): never per account.
    Global,
    /// One action's own argument (`token --format`): command line only.
    Action,
}

/// One row of the option table.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// The long name, without `--`.
    pub name: &'static str,
    /// A short form (`-h`).
    pub short: Option<char>,
    /// The [`Options`] field it sets (several switches may set one field).
    pub field: &'static str,
    /// The value's placeholder in `--help` (`URL`); `None` for a switch.
    pub value: Option<&'static str>,
    pub kind: Kind,
    /// Read from `GIT_CREDENTIAL_IAM_<NAME>` (see [`Opt::env_var`]).
    pub env: bool,
    /// Its key in the config file, at the top level (defaults) and in `[account.NAME]`.
    pub key: Option<&'static str>,
    pub scope: Scope,
    /// The actions it is for (empty: all).
    pub actions: &'static [&'static str],
    /// One line (or a few) for `--help`.
    pub help: &'static str,
}

impl Opt {
    const fn new(name: &'static str, kind: Kind, scope: Scope) -> Opt {
        Opt {
            name,
            short: None,
            field: "",
            value: None,
            kind,
            env: false,
            key: None,
            scope,
            actions: &[],
            help: "",
        }
    }
    /// An account option: from the command line, the environment and the config file.
    const fn account(name: &'static str, kind: Kind, value: Option<&'static str>) -> Opt {
        Opt {
            value,
            env: true,
            key: Some(name),
            ..Opt::new(name, kind, Scope::Account)
        }
    }
    const fn action(
        name: &'static str,
        kind: Kind,
        value: Option<&'static str>,
        actions: &'static [&'static str],
    ) -> Opt {
        Opt {
            value,
            actions,
            ..Opt::new(name, kind, Scope::Action)
        }
    }
    const fn help(self, help: &'static str) -> Opt {
        Opt { help, ..self }
    }
    const fn key(self, key: Option<&'static str>) -> Opt {
        Opt { key, ..self }
    }
    const fn env(self, env: bool) -> Opt {
        Opt { env, ..self }
    }
    const fn short(self, c: char) -> Opt {
        Opt {
            short: Some(c),
            ..self
        }
    }
    const fn value(self, value: &'static str) -> Opt {
        Opt {
            value: Some(value),
            ..self
        }
    }
    const fn field(self, field: &'static str) -> Opt {
        Opt { field, ..self }
    }

    /// Whether it may be given more than once (the values add up).
    pub fn repeatable(&self) -> bool {
        matches!(self.kind, Kind::Words | Kind::Uris)
    }

    /// Whether it takes a value on the command line.
    pub fn takes_value(&self) -> bool {
        !matches!(self.kind, Kind::Switch { .. })
    }

    /// `GIT_CREDENTIAL_IAM_<NAME>` (upper case, `-` → `_`), when the environment may set it.
    pub fn env_var(&self) -> Option<String> {
        self.env.then(|| {
            format!(
                "GIT_CREDENTIAL_IAM_{}",
                self.name.to_ascii_uppercase().replace('-', "_")
            )
        })
    }

    /// Looks a row up by its long name.
    pub fn named(name: &str) -> Option<&'static Opt> {
        OPTIONS.iter().find(|o| o.name == name)
    }
}

/// A value as a source gives it, before it is checked against its option's kind.
#[derive(Debug, Clone)]
pub enum Raw {
    Text(String),
    Bool(bool),
    Int(i64),
    List(Vec<String>),
}

/// The error for a value of the wrong kind. Never quotes the value: it could be a secret.
fn wrong(opt: &Opt) -> Error {
    let wanted = match opt.kind {
        Kind::Text | Kind::Path => "text".to_string(),
        Kind::Secs { least, most } => {
            return Error::Usage(format!(
                "--{} takes a whole number of seconds from {least} to {most}",
                opt.name
            ));
        }
        Kind::Choice(words) => match words {
            [a, b] => format!("{a} or {b}"),
            _ => format!(
                "{} or {}",
                words[..words.len() - 1].join(", "),
                words[words.len() - 1]
            ),
        },
        Kind::Switch { .. } => "true or false".into(),
        Kind::Words | Kind::Uris => "words (a list in the config file)".into(),
    };
    Error::Usage(format!("--{} takes {wanted}", opt.name))
}

/// A field's way of taking a value for an option of the table.
trait Slot {
    fn put(&mut self, opt: &Opt, raw: Raw) -> Result<()>;
    /// `self` where set, else `lower` (a source of lower precedence).
    fn or(self, lower: &Self) -> Self;
}

impl Slot for Option<String> {
    fn put(&mut self, opt: &Opt, raw: Raw) -> Result<()> {
        match raw {
            Raw::Text(t) => *self = Some(t),
            _ => return Err(wrong(opt)),
        }
        Ok(())
    }
    fn or(self, lower: &Self) -> Self {
        self.or_else(|| lower.clone())
    }
}

impl Slot for Option<PathBuf> {
    fn put(&mut self, opt: &Opt, raw: Raw) -> Result<()> {
        match raw {
            Raw::Text(t) => *self = Some(t.into()),
            _ => return Err(wrong(opt)),
        }
        Ok(())
    }
    fn or(self, lower: &Self) -> Self {
        self.or_else(|| lower.clone())
    }
}

impl Slot for Option<u64> {
    fn put(&mut self, opt: &Opt, raw: Raw) -> Result<()> {
        let Kind::Secs { least, most } = opt.kind else {
            unreachable!("--{} is not a number of seconds", opt.name)
        };
        let n = match &raw {
            Raw::Text(t) => t.trim().parse::<u64>().ok(),
            Raw::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        };
        *self = Some(
            n.filter(|n| (least..=most).contains(n))
                .ok_or_else(|| wrong(opt))?,
        );
        Ok(())
    }
    fn or(self, lower: &Self) -> Self {
        self.or(*lower)
    }
}

impl Slot for Option<bool> {
    fn put(&mut self, opt: &Opt, raw: Raw) -> Result<()> {
        let Kind::Switch { on } = opt.kind else {
            unreachable!("--{} is not a switch", opt.name)
        };
        let b = match &raw {
            Raw::Bool(b) => *b,
            Raw::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" | "" => false,
                _ => return Err(wrong(opt)),
            },
            _ => return Err(wrong(opt)),
        };
        // A negative switch set to false (`GIT_CREDENTIAL_IAM_NON_INTERACTIVE=0`) says only "not
        // that": it leaves the choice to the next source and the default, and never forces the
        // opposite (a prompt in CI, a browser over SSH).
        if b || on {
            *self = Some(b == on);
        }
        Ok(())
    }
    fn or(self, lower: &Self) -> Self {
        self.or(*lower)
    }
}

impl Slot for Vec<String> {
    fn put(&mut self, opt: &Opt, raw: Raw) -> Result<()> {
        let words: Vec<String> = match raw {
            Raw::Text(t) => t.split_whitespace().map(str::to_string).collect(),
            Raw::List(l) => l,
            _ => return Err(wrong(opt)),
        };
        if opt.kind == Kind::Uris {
            for w in &words {
                check_resource(opt.name, w)?;
            }
        }
        for w in words {
            if !self.contains(&w) {
                self.push(w);
            }
        }
        Ok(())
    }
    fn or(self, lower: &Self) -> Self {
        if self.is_empty() { lower.clone() } else { self }
    }
}

/// A resource indicator must be an absolute URI without a fragment (RFC 8707 §2), and without
/// user info (no resource needs credentials in its name, and it is shown by `status` and in
/// errors). Errors do not quote it.
fn check_resource(option: &str, text: &str) -> Result<()> {
    if text.contains(char::is_whitespace) {
        return Err(Error::Usage(format!(
            "--{option} takes an absolute URI, which has no spaces"
        )));
    }
    match url::Url::parse(text) {
        Ok(u) if u.fragment().is_none() && !text.contains('#') => {
            if u.username().is_empty() && u.password().is_none() {
                Ok(())
            } else {
                Err(Error::Usage(format!(
                    "--{option} takes a URI without user info (user:password@): drop it"
                )))
            }
        }
        Ok(_) => Err(Error::Usage(format!(
            "--{option} takes an absolute URI without a fragment (RFC 8707): drop the #…"
        ))),
        Err(e) => Err(Error::Usage(format!(
            "--{option} takes an absolute URI such as https://api.example.org/ (RFC 8707), \
             and this one is not ({e})"
        ))),
    }
}

/// The enums chosen by a word.
macro_rules! choice_slot {
    ($t:ty, $($word:literal => $v:expr),*) => {
        impl Slot for Option<$t> {
            fn put(&mut self, opt: &Opt, raw: Raw) -> Result<()> {
                *self = Some(match &raw {
                    $(Raw::Text(t) if t == $word => $v,)*
                    _ => return Err(wrong(opt)),
                });
                Ok(())
            }
            fn or(self, lower: &Self) -> Self {
                self.or(*lower)
            }
        }
    };
}
choice_slot!(AuthMode, "auto" => AuthMode::Auto, "basic" => AuthMode::Basic, "bearer" => AuthMode::Bearer);
choice_slot!(LockMode, "auto" => LockMode::Auto, "flock" => LockMode::Flock, "create" => LockMode::Create);
choice_slot!(Flow, "device" => Flow::Device, "password" => Flow::Password);

/// Generates [`Options`] (one public field per row that names a type), its setter and merge, and
/// [`OPTIONS`] (every row, in order) from one list. A row without a type sets the field of
/// another row (`non-interactive` sets `interactive`).
macro_rules! option_table {
    ($( $field:ident $(: $ty:ty)? => $opt:expr; )*) => {
        /// Every option, each unset until a source sets it; generated from the option table.
        #[derive(Debug, Default, Clone)]
        pub struct Options {
            $($( pub $field: $ty, )?)*
        }

        /// The option table: every option, in the order `--help` lists them.
        pub static OPTIONS: &[Opt] = &[$( $opt.field(stringify!($field)), )*];

        impl Options {
            /// Sets the field of `opt` from `raw`.
            fn put(&mut self, opt: &Opt, raw: Raw) -> Result<()> {
                match opt.field {
                    $($( stringify!($field) => <$ty as Slot>::put(&mut self.$field, opt, raw), )?)*
                    other => unreachable!("no field {other}"),
                }
            }

            /// Fills every unset field from `lower` (a source of lower precedence).
            pub fn or(self, lower: &Options) -> Options {
                Options {
                    $($( $field: <$ty as Slot>::or(self.$field, &lower.$field), )?)*
                }
            }
        }
    };
}

use Kind::*;

const SECS: Option<&str> = Some("SECS");
const FILE: Option<&str> = Some("FILE");

option_table! {
    issuer: Option<String> => Opt::account("issuer", Text, Some("URL"))
        .help("the OIDC issuer (https://iam.example.org/)");
    client_id: Option<String> => Opt::account("client-id", Text, Some("ID"))
        .help("the OAuth client id");
    client_secret_file: Option<PathBuf> => Opt::account("client-secret-file", Path, FILE)
        .help("file holding the client secret (confidential clients)");
    scope: Option<String> => Opt::account("scope", Text, Some("\"S1 S2\""))
        .help("scopes to ask for [default: \"openid offline_access\"]");
    audience: Option<String> => Opt::account("audience", Text, Some("AUD"))
        .help("audience of the token (INDIGO IAM's `audience` parameter)");
    // RFC 8707 resource indicators, sent on every sign-in and refresh; part of the cache key.
    resource: Vec<String> => Opt::account("resource", Uris, Some("URI"))
        .help("a resource the token is for (RFC 8707; IAM 1.12+); repeatable");
    // A named account of the config file; never a key in it.
    account: Option<String> => Opt::account("account", Text, Some("NAME")).key(None)
        .help("a named account from the config file");
    // The URL prefixes (`https://git.example.org/group/`) or hosts (`git.example.org`) the
    // account is tied to: git gets a token only for a request that matches one. `urls` in an
    // `[account.NAME]` table, or `--url` / `GIT_CREDENTIAL_IAM_URL`; never a top-level key.
    urls: Vec<String> => Opt::account("url", Words, Some("URL")).key(Some("urls"))
        .help("a URL (prefix) or host the token may go to; repeatable. git gets a token only \
               for a URL tied to the account: one of these, else the account's urls");
    cache_dir: Option<PathBuf> => Opt::account("cache-dir", Path, Some("DIR"))
        .help("where tokens are cached [default: $XDG_STATE_HOME/git-credential-iam]");
    min_lifetime: Option<u64> => Opt::account("min-lifetime", Secs { least: 0, most: 31_536_000 }, SECS)
        .help("do not serve a token expiring sooner than this; up to 60, at most half the \
               token's issued lifetime [default: 60]");
    username: Option<String> => Opt::account("username", Text, Some("NAME"))
        .help("the username git is told in Basic mode [default: git's, or oauth2]");
    auth: Option<AuthMode> => Opt::account("auth", Choice(&["auto", "basic", "bearer"]), Some("auto|basic|bearer"))
        .help("how git sends the token [default: auto]");
    interactive: Option<bool> => Opt::account("interactive", Switch { on: true }, None)
        .help("always allow the device flow (instructions on stderr)");
    interactive => Opt::account("non-interactive", Switch { on: false }, None).key(None)
        .help("never prompt; fail with exit code 3 when a login is needed");
    // Draw the sign-in link as a QR code; unset: on a wide enough terminal.
    qr: Option<bool> => Opt::account("qr", Switch { on: true }, None)
        .help("draw the sign-in link as a QR code [default: on a wide terminal]");
    qr => Opt::account("no-qr", Switch { on: false }, None).key(None)
        .help("do not draw the QR code");
    // Open the sign-in page in a browser; unset: on a local desktop session.
    browser: Option<bool> => Opt::account("browser", Switch { on: true }, None)
        .help("open the sign-in page in a browser [default: on a local desktop, not over SSH; \
               the program is $BROWSER, else the system's]");
    browser => Opt::account("no-browser", Switch { on: false }, None).key(None)
        .help("do not open a browser");
    ca_file: Option<PathBuf> => Opt::account("ca-file", Path, FILE)
        .help("extra trusted CA certificates (PEM)");
    timeout: Option<u64> => Opt::account("timeout", Secs { least: 1, most: 3600 }, SECS)
        .help("network timeout per request [default: 30]");
    lock_timeout: Option<u64> => Opt::account("lock-timeout", Secs { least: 0, most: 86400 }, SECS)
        .help("longest wait for another process's login [default: 300]");
    lock_mode: Option<LockMode> => Opt::account("lock-mode", Choice(&["auto", "flock", "create"]), Some("MODE"))
        .help("auto, flock or create: how the account is locked; auto takes an exclusive \
               create on NFS, AFS, SMB, FUSE, Lustre… [default: auto]");
    flow: Option<Flow> => Opt::account("flow", Choice(&["device", "password"]), Some("device|password"))
        .help("how a new login is made [default: device]; password is deprecated");
    password_file: Option<PathBuf> => Opt::account("password-file", Path, FILE)
        .help("password flow: read the password from FILE");
    password_env: Option<String> => Opt::account("password-env", Text, Some("NAME"))
        .help("password flow: read the password from environment variable NAME");
    // `--config FILE` (or `GIT_CREDENTIAL_IAM_CONFIG`).
    config: Option<PathBuf> => Opt::new("config", Path, Scope::Global).value("FILE").env(true)
        .help("config file [default: $XDG_CONFIG_HOME/git-credential-iam/config.toml]");
    format: Option<String> => Opt::action("format", Text, Some("FORMAT"), &["token"])
        .help("raw, header, json, exec-credential or wlcg [default: raw]");
    access_token: Option<bool> => Opt::action("access-token", Switch { on: true }, None, &["import"])
        .help("stdin holds an access token");
    access_token => Opt::action("refresh-token", Switch { on: false }, None, &["import"])
        .help("stdin holds a refresh token (the default)");
    expires_at: Option<String> => Opt::action("expires-at", Text, Some("TIME"), &["import"])
        .help("with --access-token: expiry, Unix seconds or RFC 3339 (default: the JWT's \
               exp claim)");
    confidential: Option<bool> => Opt::action("confidential", Switch { on: true }, None, &["register", "setup"])
        .help("ask for a client with a secret (default: public)");
    print: Option<bool> => Opt::action("print", Switch { on: true }, None, &["register"])
        .help("show the registration response (secrets replaced)");
    file: Option<PathBuf> => Opt::action("file", Path, FILE, &["setup"])
        .help("write git's configuration to FILE (a repository's .git/config, a CI \
               image's) instead of git config --global");
    no_login: Option<bool> => Opt::action("no-login", Switch { on: true }, None, &["setup"])
        .help("do not sign in now (nor check with git ls-remote)");
    undo: Option<bool> => Opt::action("undo", Switch { on: true }, None, &["setup"])
        .help("remove what setup URL added, and nothing else");
    help: Option<bool> => Opt::new("help", Switch { on: true }, Scope::Global).short('h')
        .help("this text");
    version: Option<bool> => Opt::new("version", Switch { on: true }, Scope::Global).short('V')
        .help("the version");
}

impl Options {
    /// Sets option `name` (its long name) from text, as the command line gives it.
    pub fn set(&mut self, name: &str, value: String) -> Result<()> {
        let opt =
            Opt::named(name).ok_or_else(|| Error::Usage(format!("unknown option --{name}")))?;
        self.put(opt, Raw::Text(value))
    }

    /// Turns switch `name` on, as `--name` on the command line.
    pub fn switch(&mut self, opt: &Opt) -> Result<()> {
        self.put(opt, Raw::Bool(true))
    }

    /// Sets the field of `opt` from a config file's value.
    pub(super) fn put_raw(&mut self, opt: &Opt, raw: Raw) -> Result<()> {
        self.put(opt, raw)
    }

    /// Options from `GIT_CREDENTIAL_IAM_*` variables, read through `getenv`. An empty value
    /// counts as unset.
    pub fn from_env(getenv: &dyn Fn(&str) -> Option<String>) -> Result<Options> {
        let mut o = Options::default();
        for opt in OPTIONS {
            let Some(var) = opt.env_var() else { continue };
            if let Some(v) = getenv(&var).filter(|v| !v.is_empty()) {
                o.put(opt, Raw::Text(v))
                    .map_err(|e| Error::Usage(format!("{var}: {e}")))?;
            }
        }
        Ok(o)
    }

    /// The options that name files or folders, those set.
    pub(super) fn paths_mut(&mut self) -> impl Iterator<Item = &mut PathBuf> {
        [
            &mut self.cache_dir,
            &mut self.client_secret_file,
            &mut self.ca_file,
            &mut self.password_file,
        ]
        .into_iter()
        .flatten()
    }
}

/// The option lines of `--help`, generated from the table.
pub fn help_lines() -> String {
    const WIDTH: usize = 27;
    let mut out = String::new();
    for o in OPTIONS {
        let mut spec = String::new();
        if let Some(c) = o.short {
            spec.push_str(&format!("-{c}, "));
        }
        spec.push_str("--");
        spec.push_str(o.name);
        if let Some(v) = o.value {
            spec.push(' ');
            spec.push_str(v);
        }
        let mut text = String::new();
        if !o.actions.is_empty() {
            text.push_str(&o.actions.join("/"));
            text.push_str(": ");
        }
        text.push_str(o.help);
        let lines = wrap(&text, 93 - WIDTH);
        for (i, l) in lines.iter().enumerate() {
            let left = if i == 0 { spec.as_str() } else { "" };
            if left.len() >= WIDTH {
                out.push_str(&format!("  {left}  {l}\n"));
            } else {
                out.push_str(&format!("  {left:<WIDTH$}{l}\n"));
            }
        }
    }
    out
}

/// `text` in lines of at most `width` characters (a longer word gets a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for w in text.split_whitespace() {
        let last = lines.last_mut().expect("one line");
        if last.is_empty() {
            last.push_str(w);
        } else if last.chars().count() + 1 + w.chars().count() <= width {
            last.push(' ');
            last.push_str(w);
        } else {
            lines.push(w.to_string());
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_table_is_consistent() {
        let mut names = std::collections::BTreeSet::new();
        for o in OPTIONS {
            assert!(names.insert(o.name), "--{} twice", o.name);
            assert!(!o.help.is_empty(), "--{} has no help", o.name);
            assert_eq!(o.takes_value(), o.value.is_some(), "--{}", o.name);
            if o.scope != Scope::Account {
                assert!(o.key.is_none(), "--{} is not an account option", o.name);
            }
            if o.scope == Scope::Action {
                assert!(!o.actions.is_empty() && !o.env, "--{}", o.name);
            }
        }
        let env: Vec<_> = OPTIONS.iter().filter_map(Opt::env_var).collect();
        assert!(env.contains(&"GIT_CREDENTIAL_IAM_CLIENT_ID".to_string()));
        assert!(env.contains(&"GIT_CREDENTIAL_IAM_CONFIG".to_string()));
        assert!(env.contains(&"GIT_CREDENTIAL_IAM_RESOURCE".to_string()));
    }

    #[test]
    fn help_lines_parse_back() {
        let help = help_lines();
        for o in OPTIONS {
            assert!(
                help.lines().any(
                    |l| l
                        .trim_start()
                        .split("  ")
                        .next()
                        .is_some_and(|spec| spec.split(", ").any(|p| p
                            .split(' ')
                            .next()
                            .is_some_and(|n| n == format!("--{}", o.name))))
                ),
                "--{} missing from --help:\n{help}",
                o.name
            );
        }
        assert!(help.lines().all(|l| l.chars().count() <= 95), "{help}");
    }

    #[test]
    fn resources_are_absolute_uris_without_fragments() {
        let mut o = Options::default();
        o.set("resource", "https://api.example.org/ urn:example:rs".into())
            .unwrap();
        o.set("resource", "https://api.example.org/".into())
            .unwrap();
        assert_eq!(o.resource, ["https://api.example.org/", "urn:example:rs"]);
        for bad in [
            "api.example.net",
            "/relative",
            "https://a.example/#frag",
            "https://a/#",
        ] {
            let e = o.set("resource", bad.into()).unwrap_err().to_string();
            assert!(e.contains("--resource") && !e.contains(bad), "{e}");
        }
    }

    /// A file of `contrib/`.
    fn contrib(path: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("contrib")
            .join(path);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// `--long` and `-s` names of the table.
    fn names(only: impl Fn(&Opt) -> bool) -> BTreeSet<String> {
        OPTIONS
            .iter()
            .filter(|o| only(o))
            .flat_map(|o| {
                std::iter::once(format!("--{}", o.name)).chain(o.short.map(|c| format!("-{c}")))
            })
            .collect()
    }

    /// The `-x`/`--xyz` words of `text` (a word: letters, digits and `-`).
    fn dashed(text: &str) -> BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|w| w.starts_with('-') && !w.trim_start_matches('-').is_empty())
            .filter(|w| {
                w.chars()
                    .nth(1)
                    .is_some_and(|c| c == '-' || c.is_ascii_alphabetic())
            })
            .map(str::to_string)
            .collect()
    }

    /// Compares what a file lists with the table: nothing missing, nothing stale.
    fn same(file: &str, what: &str, listed: &BTreeSet<String>, table: &BTreeSet<String>) {
        let missing: Vec<_> = table.difference(listed).collect();
        let stale: Vec<_> = listed.difference(table).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "{file}: {what}: missing {missing:?}, not in the option table {stale:?}"
        );
    }

    #[test]
    fn the_man_page_lists_every_option_and_no_other() {
        let man = contrib("git-credential-iam.1").replace("\\-", "-");
        let section = |name: &str| {
            let start = man.find(&format!("\n.SH {name}\n")).expect(name);
            let rest = &man[start + 1..];
            rest[4..].split("\n.SH ").next().unwrap().to_string()
        };
        // The tag line after each .TP of OPTIONS names one option (or two: --qr, --no-qr).
        let options = section("OPTIONS");
        let mut tagged = BTreeSet::new();
        let mut lines = options.lines();
        while let Some(l) = lines.next() {
            if l == ".TP"
                && let Some(tag) = lines.next()
            {
                tagged.extend(dashed(tag));
            }
        }
        same(
            "git-credential-iam.1",
            ".SH OPTIONS",
            &tagged,
            &names(|_| true),
        );
        let env = section("ENVIRONMENT");
        let listed: BTreeSet<String> = env
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("GIT_CREDENTIAL_IAM_") && w.len() > 19)
            .map(str::to_string)
            .collect();
        let vars: BTreeSet<String> = OPTIONS.iter().filter_map(Opt::env_var).collect();
        same("git-credential-iam.1", ".SH ENVIRONMENT", &listed, &vars);
    }

    #[test]
    fn the_completions_list_every_option_and_no_other() {
        let all = names(|_| true);
        let valued = names(Opt::takes_value);

        let bash = contrib("completions/git-credential-iam.bash");
        let list = bash.split("local options=\"").nth(1).expect("options=");
        let list = list.split('"').next().unwrap();
        let long: BTreeSet<String> = all
            .iter()
            .filter(|n| n.starts_with("--"))
            .cloned()
            .collect();
        same("bash", "options", &dashed(list), &long);
        // The options that take a value, skipped when looking for the action.
        let arm = bash
            .split("case ${COMP_WORDS[i - 1]} in")
            .nth(1)
            .expect("action arm");
        let arm = arm.split(") ;;").next().unwrap();
        same("bash", "options with a value", &dashed(arm), &valued);

        let zsh = contrib("completions/_git-credential-iam");
        let (mut listed, mut with_value) = (BTreeSet::new(), BTreeSet::new());
        for l in zsh.lines().map(str::trim) {
            let Some(spec) = l.strip_prefix('\'') else {
                continue;
            };
            if let Some(braces) = spec.split('{').nth(1).filter(|_| spec.starts_with("(- *)")) {
                listed.extend(dashed(braces.split('}').next().unwrap()));
                continue;
            }
            let spec = match spec.strip_prefix('(') {
                Some(rest) => rest.split_once(')').map_or("", |(_, r)| r),
                None => spec,
            };
            let spec = spec.trim_start_matches('*');
            let Some(name) = spec.strip_prefix("--") else {
                continue;
            };
            let end = name.find(['=', '[']).unwrap_or(name.len());
            listed.insert(format!("--{}", &name[..end]));
            if name[end..].starts_with('=') {
                with_value.insert(format!("--{}", &name[..end]));
            }
        }
        same("zsh", "options", &listed, &all);
        same("zsh", "options with =[…]", &with_value, &valued);

        let fish = contrib("completions/git-credential-iam.fish");
        let (mut listed, mut with_value) = (BTreeSet::new(), BTreeSet::new());
        for l in fish.lines().filter(|l| l.starts_with("complete ")) {
            let words: Vec<&str> = l.split_whitespace().collect();
            for (i, w) in words.iter().enumerate() {
                let Some(next) = words.get(i + 1) else {
                    continue;
                };
                match *w {
                    "-l" => {
                        listed.insert(format!("--{next}"));
                        if words.contains(&"-x") || words.contains(&"-r") {
                            with_value.insert(format!("--{next}"));
                        }
                    }
                    "-s" => {
                        listed.insert(format!("-{next}"));
                    }
                    _ => {}
                }
            }
        }
        same("fish", "options", &listed, &all);
        same("fish", "options with -x or -r", &with_value, &valued);
    }
}
