//! OpenID Connect discovery: `ISSUER/.well-known/openid-configuration` (no double slash when the
//! issuer ends in `/`, as INDIGO IAM's does). The returned `issuer` must equal the configured one
//! exactly, and every endpoint must be https (or loopback http). The document is cached in the
//! cache directory for a day, so a refresh costs one round trip, not two; a cached document
//! passes the same checks when read. When an endpoint of a cached document stops working,
//! [`super::Client`] forgets it and fetches it again ([`forget`], [`fetch_and_store`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::http::{AuthMethod, Http, describe_body};
use crate::error::{Error, Result};
use crate::store::files::{fnv1a, write_atomic};
use crate::trust::{checked, host_of};

/// How long a cached discovery document is trusted.
pub const LIFETIME_SECS: i64 = 24 * 3600;

/// The fields of the discovery document the helper uses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Endpoints {
    pub issuer: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    #[serde(default)]
    pub grant_types_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

impl Endpoints {
    /// Whether the document lists `client_secret_post` among the token endpoint's client
    /// authentication methods.
    pub fn offers_secret_post(&self) -> bool {
        self.token_endpoint_auth_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "client_secret_post"))
    }
}

#[derive(Serialize, Deserialize)]
struct Cached {
    fetched_at: i64,
    endpoints: Endpoints,
}

/// The discovery URL of `issuer`.
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Where the document of `issuer` is cached.
pub fn cache_path(cache_dir: &Path, issuer: &str) -> PathBuf {
    cache_dir.join(format!("discovery-{:016x}.json", fnv1a(issuer.as_bytes())))
}

/// Where the client authentication method that worked at `issuer` is remembered (beside its
/// discovery document; the `discovery-` prefix keeps it out of the account listings).
pub fn auth_method_path(cache_dir: &Path, issuer: &str) -> PathBuf {
    cache_dir.join(format!(
        "discovery-{:016x}-client-auth.json",
        fnv1a(issuer.as_bytes())
    ))
}

#[derive(Serialize, Deserialize)]
struct RememberedAuth {
    issuer: String,
    method: AuthMethod,
}

/// The client authentication method remembered for `issuer`, if any.
pub fn remembered_auth_method(cache_dir: &Path, issuer: &str) -> Option<AuthMethod> {
    let bytes = std::fs::read(auth_method_path(cache_dir, issuer)).ok()?;
    serde_json::from_slice::<RememberedAuth>(&bytes)
        .ok()
        .filter(|r| r.issuer == issuer)
        .map(|r| r.method)
}

/// Remembers `method` for `issuer` (atomically, mode 0600; the RFC form forgets). Best effort:
/// without the file, the next run finds the method again with one extra request.
pub fn remember_auth_method(cache_dir: &Path, issuer: &str, method: AuthMethod) {
    let path = auth_method_path(cache_dir, issuer);
    if method == AuthMethod::Basic {
        let _ = std::fs::remove_file(path);
        return;
    }
    let r = RememberedAuth {
        issuer: issuer.to_string(),
        method,
    };
    let _ = write_atomic(&path, &serde_json::to_vec(&r).expect("serializes"));
}

/// The cached document of `issuer` if it is younger than a day and passes the checks a fetched
/// one must pass.
pub fn cached(cache_dir: &Path, issuer: &str, now: i64) -> Option<Endpoints> {
    let path = cache_path(cache_dir, issuer);
    std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Cached>(&b).ok())
        .filter(|c| (0..LIFETIME_SECS).contains(&now.saturating_sub(c.fetched_at)))
        .and_then(|c| check(issuer, c.endpoints).ok())
}

/// Fetches the document of `issuer`, validates it and caches it.
pub fn fetch_and_store(http: &Http, issuer: &str, cache_dir: &Path, now: i64) -> Result<Endpoints> {
    let path = cache_path(cache_dir, issuer);
    let fresh = fetch(http, issuer)?;
    let cached = Cached {
        fetched_at: now,
        endpoints: fresh.clone(),
    };
    // Best effort: a cache we cannot write only costs a round trip next time.
    let _ = write_atomic(&path, &serde_json::to_vec(&cached).expect("serializes"));
    Ok(fresh)
}

/// Forgets the cached document (after an endpoint stopped working).
pub fn forget(cache_dir: &Path, issuer: &str) {
    let _ = std::fs::remove_file(cache_path(cache_dir, issuer));
}

/// Fetches and validates the document.
pub fn fetch(http: &Http, issuer: &str) -> Result<Endpoints> {
    checked(issuer, "issuer")?;
    let url = discovery_url(issuer);
    let reply = http.get(&url)?;
    let host = host_of(&url);
    if reply.status != 200 {
        return Err(Error::Provider {
            host,
            message: format!(
                "discovery at {url} answered HTTP {} ({}); is --issuer right?",
                reply.status,
                describe_body(&reply.body)
            ),
        });
    }
    parse_discovery(issuer, &reply.body)
}

/// Parses and checks a discovery document for `issuer`: JSON naming exactly `issuer`, with a
/// token endpoint, and every endpoint https (or loopback http).
pub fn parse_discovery(issuer: &str, body: &[u8]) -> Result<Endpoints> {
    let url = discovery_url(issuer);
    let e: Endpoints = serde_json::from_slice(body).map_err(|err| Error::Provider {
        host: host_of(&url),
        message: format!(
            "the discovery document at {url} is not usable ({}: {})",
            describe_body(body),
            if err.is_data() {
                "a required field such as token_endpoint is missing or mistyped"
            } else {
                "not JSON"
            }
        ),
    })?;
    check(issuer, e)
}

/// The checks of [`parse_discovery`] on a parsed document.
fn check(issuer: &str, e: Endpoints) -> Result<Endpoints> {
    let host = host_of(issuer);
    if e.issuer != issuer {
        return Err(Error::Provider {
            host,
            message: format!(
                "the discovery document names issuer {:?}, not the configured {issuer:?}; \
                 refusing it (set --issuer to the provider's exact issuer, trailing slash included)",
                crate::encoding::clean(&e.issuer, 200)
            ),
        });
    }
    for (what, url) in [
        ("token endpoint", Some(&e.token_endpoint)),
        (
            "device authorization endpoint",
            e.device_authorization_endpoint.as_ref(),
        ),
        ("revocation endpoint", e.revocation_endpoint.as_ref()),
        ("registration endpoint", e.registration_endpoint.as_ref()),
    ] {
        if let Some(url) = url {
            checked(url, what).map_err(|err| Error::Provider {
                host: host.clone(),
                message: format!("its discovery document is refused: {err}"),
            })?;
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_document_passes_the_same_checks() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = "https://iam.example/";
        let write = |token_endpoint: &str, fetched_at: i64| {
            let doc = serde_json::json!({
                "fetched_at": fetched_at,
                "endpoints": {"issuer": issuer, "token_endpoint": token_endpoint},
            });
            std::fs::write(cache_path(dir.path(), issuer), doc.to_string()).unwrap();
        };
        write("https://iam.example/token", 1000);
        assert!(cached(dir.path(), issuer, 1000).is_some());
        assert!(
            cached(dir.path(), issuer, 1000 + LIFETIME_SECS).is_none(),
            "too old"
        );
        assert!(cached(dir.path(), issuer, 999).is_none(), "from the future");
        assert!(cached(dir.path(), "https://other.example/", 1000).is_none());
        write("http://evil.example/token", 1000);
        assert!(
            cached(dir.path(), issuer, 1000).is_none(),
            "plain http off loopback"
        );
        write("https://iam.example/token", i64::MIN);
        assert!(
            cached(dir.path(), issuer, i64::MAX).is_none(),
            "no overflow"
        );
    }

    #[test]
    fn parse_checks_the_document() {
        let issuer = "https://iam.example/";
        let ok =
            br#"{"issuer":"https://iam.example/","token_endpoint":"https://iam.example/token"}"#;
        assert!(parse_discovery(issuer, ok).is_ok());
        for bad in [
            &br#"{"issuer":"https://evil.example/","token_endpoint":"https://iam.example/t"}"#[..],
            br#"{"issuer":"https://iam.example/","token_endpoint":"http://iam.example/t"}"#,
            br#"{"issuer":"https://iam.example/"}"#,
            br#"{"issuer":"https://iam.example/","token_endpoint":"javascript:alert(1)"}"#,
            b"<html>",
        ] {
            let e = parse_discovery(issuer, bad).unwrap_err().to_string();
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn the_client_auth_method_is_remembered_per_issuer() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = ("https://a.example/", "https://b.example/");
        assert_eq!(remembered_auth_method(dir.path(), a), None);
        remember_auth_method(dir.path(), a, AuthMethod::BasicRaw);
        assert_eq!(
            remembered_auth_method(dir.path(), a),
            Some(AuthMethod::BasicRaw)
        );
        assert_eq!(remembered_auth_method(dir.path(), b), None);
        remember_auth_method(dir.path(), a, AuthMethod::Post);
        assert_eq!(
            remembered_auth_method(dir.path(), a),
            Some(AuthMethod::Post)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(auth_method_path(dir.path(), a))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        remember_auth_method(dir.path(), a, AuthMethod::Basic);
        assert_eq!(remembered_auth_method(dir.path(), a), None);
        assert!(!auth_method_path(dir.path(), a).exists());
    }

    #[test]
    fn no_double_slash() {
        assert_eq!(
            discovery_url("https://iam.example/"),
            "https://iam.example/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://iam.example/realm"),
            "https://iam.example/realm/.well-known/openid-configuration"
        );
    }
}
