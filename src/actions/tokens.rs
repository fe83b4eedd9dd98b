//! `token` and `import`: the cache serving programs other than git. `token` prints a valid token
//! (same lock, refresh and flow as `get`) in a chosen format; with `--scope`/`--audience` it asks
//! for a narrower token by refreshing the account's login with that scope/audience, caching the
//! result under its own key so repeated calls do not hit the provider. `import` seeds the cache
//! for CI from a refresh token (validated by one refresh) or an access token read on stdin.

use std::io::Read;

use crate::actions::helper::{self, Io, Token, from_entry};
use crate::actions::output::{self, Describe, Format};
use crate::config::Settings;
use crate::encoding::jwt_exp;
use crate::encoding::rfc3339;
use crate::error::{Error, Result};
use crate::provider::{Client, bounded_expiry};
use crate::secret::Secret;
use crate::store::cache::{self, AccountFiles, Entry, account_key};
use crate::store::lock::LockGuard;
use crate::validate;

/// `token`: `base` is the account; `target` the same with any narrower scope/audience.
pub fn token(
    base: &Settings,
    target: &Settings,
    format: Format,
    io: &mut Io,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    let key = |s: &Settings| account_key(&s.issuer, &s.client_id, &s.scope, s.audience.as_deref());
    let t = if key(base) == key(target) {
        helper::obtain(base, &AccountFiles::for_settings(base), None, false, io)?
    } else {
        narrowed(base, target, io)?
    };
    let d = Describe {
        issuer: &target.issuer,
        scope: &target.scope,
        audience: target.audience.as_deref(),
    };
    let text = output::render(format, &t, &d, getenv)?;
    io.stdout
        .write_all(text.as_bytes())
        .map_err(|e| Error::io("cannot write to", "stdout", e))
}

/// A token for `target` obtained by refreshing `base`'s login with `target`'s scope/audience.
fn narrowed(base: &Settings, target: &Settings, io: &mut Io) -> Result<Token> {
    let tfiles = AccountFiles::for_settings(target);
    if let Some(t) = cache::peek(&tfiles, target, &mut helper::warner(io.stderr))?
        .as_ref()
        .and_then(|e| from_entry(e, (io.clock)(), target.min_lifetime))
    {
        return Ok(t);
    }
    // Make sure the account itself is signed in (this may refresh or run the flow).
    let bfiles = AccountFiles::for_settings(base);
    helper::obtain(base, &bfiles, None, false, io)?;
    let _base_lock = LockGuard::acquire(&bfiles.lock, base.lock_timeout, |_| {})?;
    let _target_lock = LockGuard::acquire(&tfiles.lock, target.lock_timeout, |_| {})?;
    let mut tentry = cache::load(&tfiles, target, &mut helper::warner(io.stderr))?
        .unwrap_or_else(|| Entry::empty(target));
    if let Some(t) = from_entry(&tentry, (io.clock)(), target.min_lifetime) {
        return Ok(t);
    }
    let mut bentry = cache::load(&bfiles, base, &mut helper::warner(io.stderr))?
        .unwrap_or_else(|| Entry::empty(base));
    let Some(rt) = bentry.refresh_token.clone() else {
        return Err(Error::LoginRequired(format!(
            "the login for {} holds no refresh token, so no narrower token can be made; \
             sign in with the scope offline_access",
            base.issuer
        )));
    };
    let client = Client::new(target, (io.clock)())?;
    let _deferred = crate::sys::signals::Deferred::new();
    let resp = client.refresh(&rt)?;
    // A rotated refresh token belongs to the account's login: save it there first.
    if let Some(new_rt) = resp.refresh_token.clone() {
        bentry.refresh_token = Some(new_rt);
        bentry.updated_at = (io.clock)();
        cache::save(&bfiles, &bentry)?;
    }
    let resp = crate::provider::TokenResponse {
        refresh_token: None,
        ..resp
    };
    helper::store(&tfiles, &mut tentry, resp, io)
}

/// What `import` reads on stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    RefreshToken,
    AccessToken,
}

/// `import`: seeds the account's cache from stdin. A refresh token is validated by one refresh
/// (which also stores a rotated token); an access token's expiry comes from `expires_at` or its
/// JWT `exp` claim.
pub fn import(
    s: &Settings,
    kind: ImportKind,
    expires_at: Option<i64>,
    stdin: &mut dyn Read,
    io: &mut Io,
) -> Result<()> {
    let mut text = String::new();
    stdin
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| Error::Input(format!("cannot read the token from stdin: {e}")))?;
    let token = text.trim().to_string();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(Error::Input(
            "expected exactly one token on stdin (e.g. `printf %s \"$IAM_REFRESH_TOKEN\" | git-credential-iam import`)".into(),
        ));
    }
    let checked = match kind {
        ImportKind::AccessToken => validate::access_token(&token).map_err(|why| {
            format!("the token on stdin is not a valid bearer token (RFC 6750; {why})")
        }),
        ImportKind::RefreshToken => validate::refresh_token(&token).map_err(|why| {
            format!("the token on stdin is not a valid refresh token (printable ASCII; {why})")
        }),
    };
    checked.map_err(Error::Input)?;
    let token = Secret::new(token);
    let files = AccountFiles::for_settings(s);
    cache::prepare_dir(&files.dir, &mut helper::warner(io.stderr))?;
    let _lock = LockGuard::acquire(&files.lock, s.lock_timeout, |_| {})?;
    let mut entry =
        cache::load(&files, s, &mut helper::warner(io.stderr))?.unwrap_or_else(|| Entry::empty(s));
    let saved = match kind {
        ImportKind::RefreshToken => {
            let client = Client::new(s, (io.clock)())?;
            let _deferred = crate::sys::signals::Deferred::new();
            let resp = client.refresh(&token).map_err(|e| match e {
                e if e.is_login_gone() => Error::LoginRequired(format!(
                    "the imported refresh token was refused ({e}); get a fresh one"
                )),
                e => e,
            })?;
            entry.refresh_token = Some(token);
            helper::store(&files, &mut entry, resp, io)?
        }
        ImportKind::AccessToken => {
            let exp = expires_at
                .or_else(|| jwt_exp(token.expose()))
                .map(|exp| bounded_expiry(exp, (io.clock)()))
                .ok_or_else(|| {
                    Error::Usage(
                        "cannot tell when this access token expires: pass --expires-at".into(),
                    )
                })?;
            entry.access_token = Some(token.clone());
            entry.expires_at = Some(exp);
            entry.updated_at = (io.clock)();
            // Nothing was granted in our sight: what the token says about itself, if readable.
            entry.granted_scope = None;
            entry.granted_audience = crate::provider::claims::audience(token.expose());
            cache::save(&files, &entry)?;
            Token {
                access: token,
                expires_at: exp,
                granted_scope: None,
                granted_audience: entry.granted_audience.clone(),
            }
        }
    };
    io.say(&format!(
        "imported; access token valid until {}{}",
        rfc3339(saved.expires_at),
        if entry.refresh_token.is_some() {
            ", refresh token held"
        } else {
            ""
        }
    ));
    Ok(())
}

/// Parses `--expires-at`: Unix seconds or RFC 3339.
pub fn parse_expires_at(s: &str) -> Result<i64> {
    if let Ok(n) = s.trim().parse::<i64>() {
        return Ok(n);
    }
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| {
            Error::Usage(format!(
                "--expires-at takes Unix seconds or RFC 3339, not {s:?}"
            ))
        })
}
