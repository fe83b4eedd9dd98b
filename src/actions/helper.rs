//! The actions as policy. `get`: a lock-free read of the account's cache file serves a valid
//! token with no network at all (the hot path git runs on every fetch); otherwise take the
//! account's lock, re-read (another process may have done the work), refresh, or run the device
//! flow, save atomically, then answer. `erase` drops the cached access token only if it is the one
//! git rejected. `login`, `logout`, `status` serve people.

use std::io::Write;

use crate::config::{AuthMode, Flow, Interactive, Settings};
use crate::credential::{Answer, Request};
use crate::encoding::rfc3339;
use crate::error::{Error, Result};
use crate::person::askpass;
use crate::person::browser;
use crate::person::prompt::Prompt;
use crate::person::signin;
use crate::provider::{Client, TokenResponse, device, password};
use crate::secret::Secret;
use crate::store::cache::{self, AccountFiles, Entry};
use crate::store::lock::LockGuard;
use crate::trust::host_of;

/// The process's streams, clock and environment, passed in so tests can drive everything.
pub struct Io<'a> {
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
    pub stderr_is_tty: bool,
    pub clock: &'a dyn Fn() -> i64,
    /// The process environment (`std::env::var` in the binary).
    pub getenv: &'a dyn Fn(&str) -> Option<String>,
}

impl Io<'_> {
    /// Prints one `git-credential-iam: MSG` line on stderr.
    pub fn say(&mut self, msg: &str) {
        let _ = writeln!(self.stderr, "git-credential-iam: {msg}");
    }
}

/// A sink for cache warnings that prints them on `stderr`.
pub fn warner(stderr: &mut dyn Write) -> impl FnMut(&str) + '_ {
    move |m: &str| {
        let _ = writeln!(stderr, "git-credential-iam: {m}");
    }
}

/// A usable access token, its expiry (Unix seconds), and what the provider granted when known
/// (see [`Entry::granted_scope`], [`Entry::granted_audience`]).
pub struct Token {
    pub access: Secret<String>,
    pub expires_at: i64,
    pub granted_scope: Option<String>,
    pub granted_audience: Option<String>,
}

/// `get`: answer git with a valid token, from the cache, a refresh, or the device flow.
pub fn get(s: &Settings, req: &Request, io: &mut Io) -> Result<()> {
    // Where the token may go was decided by `Settings::for_request`. An `oauth_refresh_token`
    // from git is never used: this helper never hands one out, so it came from another helper.
    let files = AccountFiles::for_settings(s);
    let token = obtain(s, &files, req.username.as_deref(), false, io)?;
    answer(s, req, &token, io)
}

/// Writes the answer in the form the server asked for. When git announced
/// `capability[]=authtype` (2.46 and later) both forms go as a ready `credential` with
/// `ephemeral=1`, so a storage helper after this one (`credential.helper store`) keeps nothing.
fn answer(s: &Settings, req: &Request, t: &Token, io: &mut Io) -> Result<()> {
    let can_authtype = req.has_capability("authtype");
    let bearer = match s.auth {
        AuthMode::Basic => false,
        AuthMode::Bearer => {
            if !can_authtype {
                io.say("this git cannot send Bearer tokens (git 2.46 or later can); sending the token as a Basic password");
            }
            can_authtype
        }
        AuthMode::Auto => {
            let schemes = req.challenge_schemes();
            can_authtype
                && schemes.iter().any(|x| x == "bearer")
                && !schemes.iter().any(|x| x == "basic")
        }
    };
    let token = t.access.expose();
    let expires_at = t.expires_at;
    let username = s
        .username
        .as_deref()
        .or(req.username.as_deref())
        .unwrap_or("oauth2");
    let a = if bearer {
        Answer::Bearer { token, expires_at }
    } else if can_authtype {
        Answer::BasicHeader {
            username,
            token,
            expires_at,
        }
    } else {
        Answer::Basic {
            username,
            token,
            expires_at,
        }
    };
    a.write_to(io.stdout)
}

/// A valid token: cached, refreshed, or from a new device flow (`force_flow` skips the first two).
pub fn obtain(
    s: &Settings,
    files: &AccountFiles,
    git_username: Option<&str>,
    force_flow: bool,
    io: &mut Io,
) -> Result<Token> {
    // Hot path: no lock, no network. Writers replace the file by rename, so this read sees a
    // whole file, old or new.
    if !force_flow
        && let Some(t) = cache::peek(files, s, &mut warner(io.stderr))?
            .as_ref()
            .and_then(|e| from_entry(e, (io.clock)(), s.min_lifetime))
    {
        return Ok(t);
    }
    cache::prepare_dir(&files.dir, &mut warner(io.stderr))?;
    let stderr = &mut *io.stderr;
    let _lock = LockGuard::acquire(&files.lock, s.lock_timeout, |holder| {
        let _ = writeln!(
            stderr,
            "git-credential-iam: waiting for {holder} to finish its sign-in or refresh…"
        );
    })?;
    let mut entry =
        cache::load(files, s, &mut warner(io.stderr))?.unwrap_or_else(|| Entry::empty(s));
    if !force_flow && let Some(t) = from_entry(&entry, (io.clock)(), s.min_lifetime) {
        return Ok(t); // another process refreshed or signed in while we waited
    }
    let client = Client::new(s, (io.clock)())?;
    let refresh = entry.refresh_token.clone();
    if let (false, Some(rt)) = (force_flow, refresh) {
        // Until the rotated refresh token is saved (the guard outlives `store`).
        let _deferred = crate::sys::signals::Deferred::new();
        match client.refresh(&rt) {
            Ok(t) => return store(files, &mut entry, t, io),
            Err(e) if e.is_login_gone() => {
                io.say(&format!(
                    "the saved login is no longer valid ({e}); a new sign-in is needed"
                ));
                entry.refresh_token = None;
                entry.access_token = None;
                entry.expires_at = None;
                cache::save(files, &entry)?;
            }
            Err(e) => {
                // The provider is unreachable or failing, but the cached token still works for a
                // little while: serve it rather than fail.
                if let Some(t) = from_entry(&entry, (io.clock)(), 1) {
                    io.say(&format!(
                        "cannot refresh ({e}); using the cached token, which expires soon"
                    ));
                    return Ok(t);
                }
                return Err(e);
            }
        }
    }
    if s.flow == Flow::Password {
        let t = password_login(s, &client, git_username, io)?;
        let _deferred = crate::sys::signals::Deferred::new();
        return store(files, &mut entry, t, io);
    }
    let stderr_is_tty = io.stderr_is_tty;
    let host = host_of(&s.issuer);
    let t = {
        let Some(mut prompt) = Prompt::open(s.interactive, &mut *io.stderr, stderr_is_tty) else {
            return Err(Error::LoginRequired(format!(
                "no valid login for {host} and no terminal to sign in on (non-interactive); \
                 run `git-credential-iam login` (with the same options) first"
            )));
        };
        let opener = browser::System {
            env: io.getenv,
            os: std::env::consts::OS,
        };
        let ui = signin::Ui {
            qr: s.qr,
            browser: s.browser,
            env: io.getenv,
            os: std::env::consts::OS,
            opener: &opener,
        };
        signin::sign_in(&client, &host, &mut prompt, &ui, io.clock)?
    };
    // The new login is saved before Ctrl-C can end the process.
    let _deferred = crate::sys::signals::Deferred::new();
    store(files, &mut entry, t, io)
}

/// The deprecated password grant: one warning line, the credentials from their sources, tokens.
/// The password is never cached.
fn password_login(
    s: &Settings,
    client: &Client,
    git_username: Option<&str>,
    io: &mut Io,
) -> Result<TokenResponse> {
    let host = host_of(&s.issuer);
    let username = askpass::username(s, git_username, &host, io.getenv)?;
    let pw = askpass::password(s, &format!("{username}@{host}"), io.getenv)?;
    io.say(password::DEPRECATION);
    password::grant(client, &username, &pw)
}

/// Saves a token response (a rotated refresh token replaces the old one; none keeps it). If the
/// cache cannot be written (disk full, read-only), the token is still handed out, with a warning:
/// it is valid, and failing would lose it too.
pub fn store(
    files: &AccountFiles,
    entry: &mut Entry,
    t: TokenResponse,
    io: &mut Io,
) -> Result<Token> {
    let now = (io.clock)();
    let expires_at = t.expires_at(now);
    entry.access_token = Some(t.access_token.clone());
    entry.expires_at = Some(expires_at);
    if let Some(rt) = t.refresh_token {
        entry.refresh_token = Some(rt);
    }
    // RFC 6749 §5.1: no `scope` in the answer means the scope requested.
    let granted = t
        .scope
        .as_deref()
        .map(|g| crate::encoding::clean(g.trim(), 2000))
        .filter(|g| !g.is_empty())
        .unwrap_or_else(|| entry.scope.clone());
    let before = (entry.granted_scope.take(), entry.granted_audience.take());
    entry.granted_scope = Some(granted);
    entry.granted_audience = crate::provider::claims::audience(t.access_token.expose());
    entry.updated_at = now;
    if (&entry.granted_scope, &entry.granted_audience) != (&before.0, &before.1)
        && let Some(note) = grant_note(entry)
    {
        io.say(&note);
    }
    if let Err(e) = cache::save(files, entry) {
        io.say(&format!(
            "warning: the new tokens could not be saved ({e}); this token works until it \
             expires, then a new sign-in is needed"
        ));
    }
    Ok(Token {
        access: t.access_token,
        expires_at,
        granted_scope: entry.granted_scope.clone(),
        granted_audience: entry.granted_audience.clone(),
    })
}

/// One line saying how what the provider granted differs from the request, if it does.
pub fn grant_note(e: &Entry) -> Option<String> {
    let mut parts = Vec::new();
    let missing = e.scopes_not_granted();
    if !missing.is_empty() {
        parts.push(format!(
            "without the requested scope {} (granted: {})",
            missing.join(" "),
            e.granted_scope.as_deref().unwrap_or_default()
        ));
    }
    if e.audience_differs() {
        parts.push(format!(
            "for the audience {:?}, not the requested {:?}",
            e.granted_audience.as_deref().unwrap_or_default(),
            e.audience.as_deref().unwrap_or_default()
        ));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "note: {} issued the token {}",
            host_of(&e.issuer),
            parts.join(", and ")
        )
    })
}

pub fn from_entry(e: &Entry, now: i64, min_lifetime: u64) -> Option<Token> {
    e.valid_access_token(now, min_lifetime)
        .map(|(t, exp)| Token {
            access: Secret::new(t.to_string()),
            expires_at: exp,
            granted_scope: e.granted_scope.clone(),
            granted_audience: e.granted_audience.clone(),
        })
}

/// `erase`: git's server rejected a token. Drop the cached access token only if it is that
/// token (a newer one written by another process survives); keep the refresh token.
pub fn erase(s: &Settings, req: &Request, io: &mut Io) -> Result<()> {
    let Some(rejected) = req.presented_token() else {
        return Ok(());
    };
    let files = AccountFiles::for_settings(s);
    if !files.data.exists() {
        return Ok(());
    }
    let _lock = LockGuard::acquire(&files.lock, s.lock_timeout, |_| {})?;
    if let Some(mut e) = cache::load(&files, s, &mut warner(io.stderr))?
        && e.access_token
            .as_ref()
            .is_some_and(|t| t.expose() == rejected.expose())
    {
        e.access_token = None;
        e.expires_at = None;
        e.updated_at = (io.clock)();
        cache::save(&files, &e)?;
    }
    Ok(())
}

/// `login`: run the device flow now and cache the result.
pub fn login(s: &Settings, io: &mut Io) -> Result<()> {
    if s.interactive == Interactive::Never {
        return Err(Error::LoginRequired(
            "login needs a person at a terminal, but --non-interactive, CI=true or \
             GIT_TERMINAL_PROMPT=0 forbids prompting; unset it to sign in"
                .into(),
        ));
    }
    let mut s = s.clone();
    if !io.stderr_is_tty {
        s.interactive = Interactive::Always; // a person asked: show the instructions on stderr
    }
    let files = AccountFiles::for_settings(&s);
    let t = obtain(&s, &files, None, true, io)?;
    io.say(&format!(
        "token cached, valid until {}",
        rfc3339(t.expires_at)
    ));
    Ok(())
}

/// `logout`: revoke the refresh token where the provider offers revocation, then forget the
/// account's tokens.
pub fn logout(s: &Settings, io: &mut Io) -> Result<()> {
    let files = AccountFiles::for_settings(s);
    if !files.data.exists() {
        io.say(&format!("no login cached for {}", s.issuer));
        return Ok(());
    }
    let _lock = LockGuard::acquire(&files.lock, s.lock_timeout, |_| {})?;
    let Some(entry) = cache::load(&files, s, &mut warner(io.stderr))? else {
        io.say(&format!("no login cached for {}", s.issuer));
        return Ok(());
    };
    let mut note = String::new();
    if let Some(rt) = &entry.refresh_token {
        match Client::new(s, (io.clock)()).and_then(|c| c.revoke(rt, "refresh_token")) {
            Ok(true) => note.push_str("; refresh token revoked"),
            Ok(false) => note.push_str("; the provider offers no revocation"),
            Err(e) => note.push_str(&format!("; could not revoke the refresh token ({e})")),
        }
    }
    cache::remove(&files)?;
    io.say(&format!("logged out of {}{note}", s.issuer));
    Ok(())
}

/// `status`: every cached login, never a token, and how the cache directory is locked.
pub fn status(
    cache_dir: &std::path::Path,
    lock_mode: crate::config::LockMode,
    names: &dyn Fn(&Entry) -> Vec<String>,
    io: &mut Io,
) -> Result<()> {
    let entries = cache::list(cache_dir)?;
    let now = (io.clock)();
    let mut out = String::new();
    if entries.is_empty() {
        out.push_str(&format!("no cached logins in {}\n", cache_dir.display()));
    }
    for (path, e) in entries {
        let names = names(&e);
        out.push_str(&format!(
            "{}\n",
            if names.is_empty() {
                "(account from the command line or environment)".to_string()
            } else {
                names.join(", ")
            }
        ));
        out.push_str(&format!(
            "  issuer:        {}\n  client id:     {}\n  scope:         {}\n",
            e.issuer, e.client_id, e.scope
        ));
        if let Some(g) = &e.granted_scope {
            let missing = e.scopes_not_granted();
            out.push_str(&format!("  granted scope: {g}"));
            if !missing.is_empty() {
                out.push_str(&format!(
                    " (differs from the request: {} not granted)",
                    missing.join(" ")
                ));
            }
            out.push('\n');
        }
        if let Some(a) = &e.audience {
            out.push_str(&format!("  audience:      {a}\n"));
        }
        if !e.resource.is_empty() {
            out.push_str(&format!("  resource:      {}\n", e.resource.join(" ")));
        }
        if let Some(g) = &e.granted_audience {
            out.push_str(&format!("  token audience: {g}"));
            if e.audience_differs() {
                out.push_str(" (differs from the request)");
            }
            out.push('\n');
        }
        let access = match (e.access_token.is_some(), e.expires_at) {
            (true, Some(exp)) if exp > now => {
                format!(
                    "valid until {} (in {})",
                    rfc3339(exp),
                    device::human_duration(exp.saturating_sub(now).unsigned_abs())
                )
            }
            (true, Some(exp)) => format!("expired at {}", rfc3339(exp)),
            _ => "none".into(),
        };
        out.push_str(&format!("  access token:  {access}\n"));
        out.push_str(&format!(
            "  refresh token: {}\n  file:          {}\n",
            if e.refresh_token.is_some() {
                "held"
            } else {
                "none (a new sign-in is needed when the access token expires)"
            },
            path.display()
        ));
    }
    out.push_str(&format!(
        "lock: {}\n",
        crate::store::lock::choose(cache_dir, lock_mode)
    ));
    io.stdout
        .write_all(out.as_bytes())
        .map_err(|e| Error::io("cannot write to", "stdout", e))
}
