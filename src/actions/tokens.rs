//! `token` and `import`: the cache serving programs other than git. `token` prints a valid token
//! in a chosen format; with `--scope`/`--audience` it asks for a narrower token, made by
//! refreshing the account's login with that scope/audience and cached under its own key so
//! repeated calls do not hit the provider. `import` seeds the cache for CI from a refresh token
//! (checked by one refresh) or an access token read on stdin. All of it goes through the one
//! sign-in pipeline ([`SignIn`]): the same lock, refresh, dead-login and provider-down handling
//! as `get`.

use std::io::Read;

use crate::actions::Io;
use crate::actions::output::{self, Describe, Format};
use crate::actions::pipeline::{Purpose, SignIn};
use crate::config::Settings;
use crate::encoding::jwt_exp;
use crate::encoding::rfc3339;
use crate::error::{Error, Result};
use crate::provider::bounded_expiry;
use crate::secret::Secret;
use crate::validate;

/// `token`: `base` is the account; `target` the same with any narrower scope/audience.
pub fn token(
    base: &Settings,
    target: &Settings,
    format: Format,
    io: &mut Io,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    let t = SignIn::new(base, Purpose::Serve)
        .narrowed_to(target)
        .run(io)?;
    let d = Describe {
        issuer: &target.issuer,
        scope: &target.scope,
        audience: target.audience.as_deref(),
    };
    let text = output::render(format, &t, &d, getenv)?;
    io.print(&text)
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
        .map_err(|e| Error::Usage(format!("cannot read the token from stdin: {e}")))?;
    let token = text.trim().to_string();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(Error::Usage(
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
    checked.map_err(Error::Usage)?;
    let token = Secret::new(token);
    let purpose = match kind {
        ImportKind::RefreshToken => Purpose::ImportRefreshToken(token),
        ImportKind::AccessToken => {
            let now = (io.clock)();
            let expires_at = expires_at
                .or_else(|| jwt_exp(token.expose()))
                .map(|exp| bounded_expiry(exp, now))
                .ok_or_else(|| {
                    Error::Usage(
                        "cannot tell when this access token expires: pass --expires-at".into(),
                    )
                })?;
            if expires_at <= now {
                // Nothing is cached: an expired token would only be refused by every server.
                return Err(Error::Usage(format!(
                    "this access token expired at {}; import a fresh one (or a refresh token)",
                    rfc3339(expires_at)
                )));
            }
            Purpose::ImportAccessToken { token, expires_at }
        }
    };
    let saved = SignIn::new(s, purpose).run_for_import(io)?;
    io.say(&format!(
        "imported; access token valid until {}{}",
        rfc3339(saved.token.expires_at),
        if saved.refresh_token_held {
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
        // Never quotes the value: it could be the token, given in the wrong place.
        .map_err(|_| {
            Error::Usage(
                "--expires-at takes Unix seconds or RFC 3339 (2026-01-01T00:00:00Z)".into(),
            )
        })
}
