//! git's `get` and `erase`, and `login`, `logout`, `status` for people.
//!
//! `get` and `login` obtain their token through the one sign-in pipeline
//! ([`SignIn`](super::pipeline::SignIn), whose documentation gives its steps and failure
//! handling), shared with `token`, `import` and `setup`.
//!
//! `get` then answers git in the form its server asked for. `erase` drops the cached access
//! token only if it is the one git rejected. `logout` revokes and forgets; `status` lists.

use crate::actions::Io;
use crate::actions::pipeline::{Purpose, SignIn};
use crate::actions::pipeline::{Token, warner};
use crate::config::{AuthMode, Interactive, Settings};
use crate::credential::{Answer, Request};
use crate::encoding::rfc3339;
use crate::error::{Error, Result};
use crate::provider::{Client, device};
use crate::store::cache::{self, AccountFiles, Entry};
use crate::store::lock::LockGuard;

/// `get`: answer git with a valid token, from the cache, a refresh, or the device flow.
pub fn get(s: &Settings, req: &Request, io: &mut Io) -> Result<()> {
    // Where the token may go was decided by `Settings::for_request`. An `oauth_refresh_token`
    // from git is never used: this helper never hands one out, so it came from another helper.
    let token = SignIn::new(s, Purpose::Serve)
        .for_git_user(req.username.as_deref())
        .run(io)?;
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
        e.clear_access_token();
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
    s.asked_by_a_person(io.stderr_is_tty);
    let t = SignIn::new(&s, Purpose::SignInAgain).run(io)?;
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
    io.print(&out)
}
