//! The properties the provider-answer fuzz targets check (`token_response`,
//! `device_authorization`, `discovery`, `registration`), shared with the property tests in
//! `src/provider/mod.rs`, which includes this file with `#[path]` as a child of the `provider` module,
//! so plain `cargo test` runs the same checks on stable. The includer must have the `oauth`
//! items used below in scope (`super::…`). Every check panics on a violation.

use super::device::{MAX_INTERVAL_SECS, MAX_LIFETIME_SECS, parse_device_authorization};
use super::discovery::parse_discovery;
use super::registration::parse_registration_response;
use super::{MAX_TOKEN_LIFETIME_SECS, parse_token_response, validate};

/// The host errors name.
const HOST: &str = "fuzz.example";
/// The issuer of the discovery check.
const ISSUER: &str = "https://iam.example/";
/// A clock reading for the expiry checks.
const NOW: i64 = 1_700_000_000;

/// An error from a parse function: one line, naming the host.
fn one_line(e: &dyn std::fmt::Display, host: &str) {
    let m = e.to_string();
    assert!(!m.contains(['\n', '\r']), "multi-line error: {m:?}");
    assert!(m.starts_with(host), "error not naming {host}: {m:?}");
}

/// A token response: what parses holds a valid bearer token, a printable refresh token if any,
/// and an expiry within ten years whatever the clock says; nothing panics.
pub fn check_token_response(body: &[u8]) {
    match parse_token_response(HOST, body) {
        Ok(t) => {
            assert!(validate::access_token(t.access_token.expose()).is_ok());
            if let Some(r) = &t.refresh_token {
                assert!(validate::refresh_token(r.expose()).is_ok());
            }
            assert!(validate::token_type(t.token_type.as_deref()));
            let exp = t.expires_at(NOW);
            assert!(
                (0..=NOW + MAX_TOKEN_LIFETIME_SECS).contains(&exp),
                "expires_at {exp}"
            );
            for now in [i64::MIN, -1, 0, i64::MAX] {
                let _ = t.expires_at(now);
            }
        }
        Err(e) => one_line(&e, HOST),
    }
}

/// A device authorization response: what parses has its numbers clamped (interval 1..=300 s,
/// lifetime at least two intervals and at most an hour) and a printable device code.
pub fn check_device_authorization(body: &[u8]) {
    match parse_device_authorization(HOST, body) {
        Ok(da) => {
            let (interval, lifetime) = (da.interval_secs(), da.lifetime_secs());
            assert!((1..=MAX_INTERVAL_SECS).contains(&interval), "{interval}");
            assert!(
                (2 * interval..=MAX_LIFETIME_SECS).contains(&lifetime),
                "{lifetime}"
            );
            assert_eq!(
                (da.interval, da.expires_in),
                (Some(interval), Some(lifetime))
            );
            assert!(validate::refresh_token(da.device_code.expose()).is_ok());
            assert!(!da.user_code.is_empty());
        }
        Err(e) => one_line(&e, HOST),
    }
}

/// A discovery document for [`ISSUER`]: what parses names exactly that issuer and only
/// endpoints the helper may use (https, or http on loopback).
pub fn check_discovery(body: &[u8]) {
    match parse_discovery(ISSUER, body) {
        Ok(e) => {
            assert_eq!(e.issuer, ISSUER);
            for url in [
                Some(&e.token_endpoint),
                e.device_authorization_endpoint.as_ref(),
            ]
            .into_iter()
            .chain([
                e.revocation_endpoint.as_ref(),
                e.registration_endpoint.as_ref(),
            ])
            .flatten()
            {
                assert!(
                    url.starts_with("https://") || url.starts_with("http://"),
                    "{url:?}"
                );
            }
        }
        Err(e) => one_line(&e, "iam.example"),
    }
}

/// A registration response: what parses has a printable client id, and a printable secret and
/// a bearer registration token when present.
pub fn check_registration(body: &[u8]) {
    match parse_registration_response(HOST, body) {
        Ok(r) => {
            assert!(validate::refresh_token(&r.client_id).is_ok());
            if let Some(s) = &r.client_secret {
                assert!(validate::refresh_token(s.expose()).is_ok());
            }
            if let Some(t) = &r.registration_access_token {
                assert!(validate::access_token(t.expose()).is_ok());
            }
        }
        Err(e) => one_line(&e, HOST),
    }
}
