//! Talking to the provider: discovery, the device flow (RFC 8628), refresh and revocation
//! (RFC 6749 / 7009). One [`Client`] per run holds the HTTP agent, the client credentials and the
//! endpoints (discovered lazily, so a cache hit never gets here). When an endpoint from the
//! cached discovery document is unreachable or answers 404, the client forgets the document,
//! fetches it once more and retries the request once ([`Client::post_to`]).

pub mod claims;
pub mod device;
pub mod discovery;
pub mod http;
pub mod password;
pub mod registration;

use std::cell::{Cell, OnceCell};

use serde::Deserialize;

use crate::config::Settings;
use crate::encoding::jwt_exp;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::trust::host_of;
use crate::validate;
use discovery::Endpoints;
use http::{AuthMethod, ClientAuth, Http, oauth_error};

/// A successful token response.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: Secret<String>,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub expires_in: Option<serde_json::Value>,
    #[serde(default)]
    pub refresh_token: Option<Secret<String>>,
    #[serde(default)]
    pub scope: Option<String>,
    /// The OpenID Connect ID token (read only for the name of who signed in; never stored).
    #[serde(default)]
    pub id_token: Option<Secret<String>>,
}

impl TokenResponse {
    /// Unix seconds when the access token expires: `expires_in` (clamped to 0..=10 years), else
    /// the JWT's `exp` (at most 10 years ahead), else a conservative five minutes. Never wraps.
    pub fn expires_at(&self, now: i64) -> i64 {
        match self.expires_in.as_ref().and_then(json_seconds) {
            Some(secs) => now.saturating_add(secs.clamp(0, MAX_TOKEN_LIFETIME_SECS)),
            None => jwt_exp(self.access_token.expose())
                .map(|exp| bounded_expiry(exp, now))
                .unwrap_or_else(|| now.saturating_add(300)),
        }
    }
}

/// Longest access token lifetime believed: ten years.
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 10 * 365 * 24 * 3600;

/// An absolute expiry (Unix seconds, e.g. a JWT's `exp` or `--expires-at`) kept between the
/// epoch and [`MAX_TOKEN_LIFETIME_SECS`] after `now`.
pub fn bounded_expiry(exp: i64, now: i64) -> i64 {
    exp.min(now.saturating_add(MAX_TOKEN_LIFETIME_SECS)).max(0)
}

/// Seconds from a provider's JSON: an integer (saturated to `i64`), a finite float
/// (truncated, saturated) or a decimal string; anything else is `None`.
pub fn json_seconds(v: &serde_json::Value) -> Option<i64> {
    use serde_json::Value;
    let from_f64 = |f: f64| f.is_finite().then_some(f as i64); // `as` saturates
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|_| i64::MAX))
            .or_else(|| n.as_f64().and_then(from_f64)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(from_f64))
        }
        _ => None,
    }
}

/// Parses and checks a successful token response from the provider at `host`: JSON with an
/// `access_token` that is a valid bearer token, a printable `refresh_token` if any, and a
/// `token_type` of Bearer if any (see [`validate`]). Nothing is cached unless this accepts it.
pub fn parse_token_response(host: &str, body: &[u8]) -> Result<TokenResponse> {
    let t: TokenResponse = serde_json::from_slice(body).map_err(|e| Error::Provider {
        host: host.to_string(),
        message: format!(
            "the token response is not usable ({}: {})",
            http::describe_body(body),
            if e.is_data() {
                "a required field such as access_token is missing or mistyped"
            } else {
                "not JSON"
            }
        ),
    })?;
    if t.access_token.expose().is_empty() {
        return Err(Error::Provider {
            host: host.to_string(),
            message: "the token response has an empty access_token".into(),
        });
    }
    validate::response_tokens(
        host,
        t.access_token.expose(),
        t.refresh_token.as_ref().map(|r| r.expose().as_str()),
        t.token_type.as_deref(),
    )?;
    Ok(t)
}

/// The one other way to present the secret after `first` was refused: the RFC 6749 §2.3.1
/// form when another way was remembered; else the raw secret in Basic, which works at every
/// endpoint that takes Basic (glewlwyd's revocation endpoint takes only Basic); else, when the
/// client id holds a `:` that raw Basic cannot carry, `client_secret_post` if discovery lists it.
fn fallback_method(
    first: AuthMethod,
    client_id: &str,
    offers_post: impl FnOnce() -> bool,
) -> AuthMethod {
    if first != AuthMethod::Basic {
        AuthMethod::Basic
    } else if client_id.contains(':') && offers_post() {
        AuthMethod::Post
    } else {
        AuthMethod::BasicRaw
    }
}

/// Whether a reply refuses the client itself: 400 or 401 with `invalid_client`, or with no
/// body at all (glewlwyd).
fn refuses_client(reply: &http::Reply) -> bool {
    #[derive(Deserialize)]
    struct E {
        error: String,
    }
    matches!(reply.status, 400 | 401)
        && (reply.body.iter().all(u8::is_ascii_whitespace)
            || serde_json::from_slice::<E>(&reply.body).is_ok_and(|e| e.error == "invalid_client"))
}

/// The provider, as seen by one run.
pub struct Client<'a> {
    settings: &'a Settings,
    http: Http,
    auth: ClientAuth,
    /// The endpoints first used (from the disk cache or fetched).
    endpoints: OnceCell<Endpoints>,
    /// Whether `endpoints` came from the disk cache (and may be stale).
    from_cache: Cell<bool>,
    /// The document fetched again after an endpoint of a cached one failed (at most once).
    refetched: OnceCell<Endpoints>,
    /// How the client secret is presented: the RFC form, or what was remembered for the issuer.
    method: Cell<AuthMethod>,
    now: i64,
}

/// Which endpoint a request goes to.
#[derive(Clone, Copy)]
enum Endpoint {
    Token,
    Device,
    Revocation,
}

impl Endpoint {
    fn url(self, e: &Endpoints) -> Option<&String> {
        match self {
            Endpoint::Token => Some(&e.token_endpoint),
            Endpoint::Device => e.device_authorization_endpoint.as_ref(),
            Endpoint::Revocation => e.revocation_endpoint.as_ref(),
        }
    }
}

impl<'a> Client<'a> {
    /// Builds the client: reads the client secret file and builds the HTTP agent.
    pub fn new(settings: &'a Settings, now: i64) -> Result<Client<'a>> {
        let issuer = crate::trust::checked(&settings.issuer, "issuer")?;
        let secret = settings.client_secret()?;
        let method = match &secret {
            Some(_) => discovery::remembered_auth_method(&settings.cache_dir, &settings.issuer),
            None => None,
        };
        Ok(Client {
            settings,
            http: Http::new(
                settings.timeout,
                settings.ca_file.as_deref(),
                settings.ssl_cert_file.as_deref(),
                issuer.scheme() == "https",
            )?,
            auth: ClientAuth {
                client_id: settings.client_id.clone(),
                secret,
            },
            endpoints: OnceCell::new(),
            from_cache: Cell::new(false),
            refetched: OnceCell::new(),
            method: Cell::new(method.unwrap_or(AuthMethod::Basic)),
            now,
        })
    }

    /// The provider's endpoints (discovery, cached on disk for a day).
    pub fn endpoints(&self) -> Result<&Endpoints> {
        if let Some(e) = self.refetched.get().or(self.endpoints.get()) {
            return Ok(e);
        }
        let s = self.settings;
        let e = match discovery::cached(&s.cache_dir, &s.issuer, self.now) {
            Some(e) => {
                self.from_cache.set(true);
                e
            }
            None => discovery::fetch_and_store(&self.http, &s.issuer, &s.cache_dir, self.now)?,
        };
        Ok(self.endpoints.get_or_init(|| e))
    }

    /// After an endpoint of the cached discovery document failed: forgets the document and
    /// fetches it again. False (nothing done) when the endpoints in use were not from the cache,
    /// or were already fetched again.
    fn rediscover(&self) -> Result<bool> {
        if !self.from_cache.replace(false) {
            return Ok(false);
        }
        let s = self.settings;
        discovery::forget(&s.cache_dir, &s.issuer);
        let e = discovery::fetch_and_store(&self.http, &s.issuer, &s.cache_dir, self.now)?;
        Ok(self.refetched.set(e).is_ok())
    }

    /// POSTs `form` to the endpoint `which` (`Ok(None)` when the provider has none). When the
    /// endpoint came from the cached discovery document and is unreachable (the request never
    /// left: no such host, connection refused; not a timeout) or answers 404, the document is
    /// fetched again once and the request retried once with the new endpoint.
    fn post_to(
        &self,
        which: Endpoint,
        form: &[(&str, &str)],
    ) -> Result<Option<(String, http::Reply)>> {
        loop {
            let Some(url) = which.url(self.endpoints()?).cloned() else {
                return Ok(None);
            };
            let failed = match self.post_authenticated(&url, form) {
                Ok(reply) if reply.status == 404 => Ok((url, reply)),
                Ok(reply) => return Ok(Some((url, reply))),
                Err(f) if f.unreachable => Err(f.error),
                Err(f) => return Err(f.error),
            };
            if !self.rediscover()? {
                return failed.map(Some);
            }
        }
    }

    /// POSTs `form` to `url` with the client's credentials. A confidential client whose secret
    /// form-encoding changes, refused as a client (400/401 with `invalid_client` or no body), tries
    /// once more the other way ([`fallback_method`]). A retry the provider gets past (any answer
    /// but a client refusal or a 5xx) is remembered for the issuer.
    fn post_authenticated(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> std::result::Result<http::Reply, http::Failure> {
        let first = self.method.get();
        let reply = self.http.try_post_form(url, form, &self.auth, first)?;
        if !self.auth.encoding_matters() || !refuses_client(&reply) {
            return Ok(reply);
        }
        let offers_post = || self.endpoints().is_ok_and(Endpoints::offers_secret_post);
        let other = fallback_method(first, &self.auth.client_id, offers_post);
        let retry = match self.http.try_post_form(url, form, &self.auth, other) {
            Ok(r) => r,
            Err(_) => return Ok(reply),
        };
        if refuses_client(&retry) || retry.status >= 500 {
            return Ok(reply);
        }
        self.method.set(other);
        let s = self.settings;
        discovery::remember_auth_method(&s.cache_dir, &s.issuer, other);
        Ok(retry)
    }

    /// Refreshes. Sends `scope` and `audience` again (IAM drops the audience otherwise). A 400
    /// or 401 means the grant is unusable whatever the body says (glewlwyd answers a used or
    /// revoked refresh token with an empty 400): [`Error::RefreshRefused`], a dead login,
    /// unless the provider names a set-up mistake (the client, the scope, the audience) or the
    /// body is an HTML page (a proxy's). 5xx, 429 and network failures stay transient.
    pub fn refresh(&self, refresh_token: &Secret<String>) -> Result<TokenResponse> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose().as_str()),
            ("scope", self.settings.scope.as_str()),
        ];
        self.add_target(&mut form);
        let (url, reply) = self.token_reply(&form)?;
        if (200..300).contains(&reply.status) {
            return parse_token_response(&host_of(&url), &reply.body);
        }
        let e = self.provider_error(&url, &reply, &[refresh_token.expose()]);
        let setup = e.is_setup_error();
        // An HTML page is a proxy's, a gateway's or a firewall's, not the token endpoint's
        // answer: it says nothing about the grant, so the login is kept.
        let html = String::from_utf8_lossy(&reply.body)
            .trim_start()
            .starts_with('<');
        Err(match e {
            e if !matches!(reply.status, 400 | 401) || e.is_login_gone() || setup || html => e,
            Error::OAuth {
                host,
                status,
                error,
                description,
            } => Error::RefreshRefused {
                host,
                status,
                reason: match description {
                    Some(d) => format!("{error}: {d}"),
                    None => error,
                },
            },
            _ => Error::RefreshRefused {
                host: host_of(&url),
                status: reply.status,
                reason: format!("{} body", http::describe_body(&reply.body)),
            },
        })
    }

    /// Adds what the token is for to a sign-in or refresh `form`: `audience` (INDIGO IAM drops it
    /// on a refresh that does not repeat it) and each RFC 8707 `resource`.
    pub(crate) fn add_target<'f>(&'f self, form: &mut Vec<(&'static str, &'f str)>) {
        if let Some(aud) = &self.settings.audience {
            form.push(("audience", aud));
        }
        for r in &self.settings.resources {
            form.push(("resource", r));
        }
    }

    /// POSTs `form` to the token endpoint: the endpoint's URL and the reply, whatever its status.
    pub(crate) fn token_reply(&self, form: &[(&str, &str)]) -> Result<(String, http::Reply)> {
        Ok(self
            .post_to(Endpoint::Token, form)?
            .expect("a token endpoint is required"))
    }

    /// POSTs to the token endpoint and parses a token response or an OAuth error. Every value in
    /// `secrets` is removed from error messages.
    pub fn token_request(&self, form: &[(&str, &str)], secrets: &[&str]) -> Result<TokenResponse> {
        let (url, reply) = self.token_reply(form)?;
        if !(200..300).contains(&reply.status) {
            return Err(self.provider_error(&url, &reply, secrets));
        }
        parse_token_response(&host_of(&url), &reply.body)
    }

    /// Starts a device authorization (RFC 8628 §3.1) with `form`: the reply, or `Ok(None)` when
    /// the provider offers no device flow.
    pub fn device_request(&self, form: &[(&str, &str)]) -> Result<Option<(String, http::Reply)>> {
        self.post_to(Endpoint::Device, form)
    }

    /// Revokes a token (RFC 7009) where the provider offers revocation. `Ok(false)` when it does not.
    pub fn revoke(&self, token: &Secret<String>, hint: &str) -> Result<bool> {
        let form = [
            ("token", token.expose().as_str()),
            ("token_type_hint", hint),
        ];
        let Some((url, reply)) = self.post_to(Endpoint::Revocation, &form)? else {
            return Ok(false);
        };
        if (200..300).contains(&reply.status) {
            Ok(true)
        } else {
            Err(self.provider_error(&url, &reply, &[token.expose()]))
        }
    }

    /// The one way to turn a provider's error answer into an [`Error`]: its `error` and
    /// `error_description` with the client secret and every secret sent in that request
    /// (`sent`: a refresh token, a password, a device code) removed, as sent and as
    /// form-encoded. Every error that quotes the provider goes through here.
    pub fn provider_error(&self, url: &str, reply: &http::Reply, sent: &[&str]) -> Error {
        let mut secrets: Vec<String> = sent.iter().map(|s| s.to_string()).collect();
        if let Some(s) = &self.auth.secret {
            secrets.push(s.expose().clone());
        }
        let encoded: Vec<String> = secrets
            .iter()
            .map(|s| crate::encoding::form_urlencode(s))
            .filter(|e| !secrets.contains(e))
            .collect();
        secrets.extend(encoded);
        let all: Vec<&str> = secrets.iter().map(String::as_str).collect();
        match oauth_error(url, reply, &all) {
            // RFC 8707 §2: the resources asked for are refused; name the option.
            Error::OAuth {
                host,
                status,
                error,
                description,
            } if error == "invalid_target" && !self.settings.resources.is_empty() => {
                Error::ResourceRefused {
                    host,
                    status,
                    resources: self.settings.resources.clone(),
                    description,
                }
            }
            e => e,
        }
    }

    /// The settings this client serves.
    pub fn settings(&self) -> &Settings {
        self.settings
    }

    /// The HTTP agent.
    pub fn http(&self) -> &Http {
        &self.http
    }
}

/// The checks of the provider-answer fuzz targets, run by the property tests below.
#[cfg(test)]
#[path = "../../contrib/fuzz/oauth_checks.rs"]
mod oauth_checks;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::base64;
    use proptest::prelude::*;
    use serde_json::Value;

    /// A JSON value of the kinds providers send, with the extremes and the hostile characters.
    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            1 => Just(Value::Null),
            1 => any::<bool>().prop_map(Value::from),
            1 => any::<i64>().prop_map(Value::from),
            1 => any::<u64>().prop_map(Value::from),
            1 => any::<f64>().prop_map(Value::from),
            3 => prop_oneof![
                Just(i64::MIN),
                Just(-1),
                Just(0),
                Just(1),
                Just(3600),
                Just(i64::MAX)
            ]
            .prop_map(Value::from),
            1 => Just(Value::from(u64::MAX)),
            1 => Just(Value::from(1e300)),
            6 => "[A-Za-z0-9._~+/-]{1,12}=?".prop_map(Value::from),
            2 => Just(Value::from("Bearer")),
            1 => "[ -~]{0,12}".prop_map(Value::from),
            1 => ".{0,12}".prop_map(Value::from),
            1 => "-?[0-9]{1,30}".prop_map(Value::from),
            2 => "(https?://)(127.0.0.1|iam.example|evil.example)(:[0-9]{1,5})?/[a-z]{0,5}"
                .prop_map(Value::from),
            2 => Just(Value::from("https://iam.example/")),
        ]
    }

    /// A JSON object over `fields` (each present or not), maybe with an unknown field, as bytes,
    /// sometimes cut short.
    fn object(fields: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::collection::vec(proptest::option::of(value()), fields.len()),
            proptest::option::of(("[a-z_]{1,8}", value())),
            proptest::option::of(any::<prop::sample::Index>()),
        )
            .prop_map(move |(values, extra, cut)| {
                let mut m = serde_json::Map::new();
                for (k, v) in fields.iter().zip(values) {
                    if let Some(v) = v {
                        m.insert(k.to_string(), v);
                    }
                }
                if let Some((k, v)) = extra {
                    m.insert(k, v);
                }
                let mut bytes = serde_json::to_vec(&Value::Object(m)).unwrap();
                if let Some(i) = cut {
                    bytes.truncate(i.index(bytes.len() + 1));
                }
                bytes
            })
    }

    const TOKEN_FIELDS: &[&str] = &[
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "scope",
        "id_token",
    ];
    const DEVICE_FIELDS: &[&str] = &[
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    ];
    const DISCOVERY_FIELDS: &[&str] = &[
        "issuer",
        "token_endpoint",
        "device_authorization_endpoint",
        "revocation_endpoint",
        "registration_endpoint",
        "grant_types_supported",
    ];
    const REGISTRATION_FIELDS: &[&str] = &[
        "client_id",
        "client_secret",
        "registration_access_token",
        "registration_client_uri",
    ];

    proptest! {
        #[test]
        fn token_response_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            super::oauth_checks::check_token_response(&b);
        }

        #[test]
        fn token_response_like_json(b in object(TOKEN_FIELDS)) {
            super::oauth_checks::check_token_response(&b);
        }

        #[test]
        fn device_authorization_arbitrary_bytes(
            b in proptest::collection::vec(any::<u8>(), 0..512)
        ) {
            super::oauth_checks::check_device_authorization(&b);
        }

        #[test]
        fn device_authorization_like_json(b in object(DEVICE_FIELDS)) {
            super::oauth_checks::check_device_authorization(&b);
        }

        #[test]
        fn discovery_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            super::oauth_checks::check_discovery(&b);
        }

        #[test]
        fn discovery_like_json(b in object(DISCOVERY_FIELDS)) {
            super::oauth_checks::check_discovery(&b);
        }

        #[test]
        fn registration_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            super::oauth_checks::check_registration(&b);
        }

        #[test]
        fn registration_like_json(b in object(REGISTRATION_FIELDS)) {
            super::oauth_checks::check_registration(&b);
        }
    }

    /// The checked-in seeds of the provider-answer fuzz targets pass the same checks.
    #[test]
    fn fuzz_seed_corpus() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/fuzz/corpus/");
        for (target, check) in [
            (
                "token_response",
                super::oauth_checks::check_token_response as fn(&[u8]),
            ),
            (
                "device_authorization",
                super::oauth_checks::check_device_authorization,
            ),
            ("discovery", super::oauth_checks::check_discovery),
            ("registration", super::oauth_checks::check_registration),
        ] {
            let dir = std::fs::read_dir(format!("{root}{target}")).unwrap();
            let mut n = 0;
            for f in dir {
                check(&std::fs::read(f.unwrap().path()).unwrap());
                n += 1;
            }
            assert!(n > 0, "no seeds for {target}");
        }
    }

    fn response(json: &str) -> TokenResponse {
        parse_token_response("iam.example", json.as_bytes()).unwrap()
    }

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn absurd_expires_in_never_wraps() {
        let at = |e: &str| {
            response(&format!(r#"{{"access_token":"a","expires_in":{e}}}"#)).expires_at(NOW)
        };
        let max = NOW + MAX_TOKEN_LIFETIME_SECS;
        assert_eq!(at("3600"), NOW + 3600);
        assert_eq!(at("\"3600\""), NOW + 3600);
        assert_eq!(at("3600.9"), NOW + 3600);
        assert_eq!(at("9223372036854775807"), max);
        assert_eq!(at("18446744073709551615"), max);
        assert_eq!(at("1e300"), max);
        assert_eq!(at("\"99999999999999999999999\""), max);
        assert_eq!(at("-9223372036854775808"), NOW);
        assert_eq!(at("-1e300"), NOW);
        assert_eq!(at("null"), NOW + 300);
        assert_eq!(at("\"soon\""), NOW + 300);
        // Near the end of time, still no wrap.
        let t = response(r#"{"access_token":"a","expires_in":9223372036854775807}"#);
        assert_eq!(t.expires_at(i64::MAX - 5), i64::MAX);
        assert_eq!(t.expires_at(i64::MIN), i64::MIN + MAX_TOKEN_LIFETIME_SECS);
    }

    #[test]
    fn the_fallback_client_authentication() {
        use AuthMethod::*;
        assert_eq!(fallback_method(Basic, "cli", || true), BasicRaw);
        assert_eq!(fallback_method(Basic, "urn:cli", || true), Post);
        assert_eq!(fallback_method(Basic, "urn:cli", || false), BasicRaw);
        assert_eq!(fallback_method(BasicRaw, "cli", || true), Basic);
        assert_eq!(fallback_method(Post, "urn:cli", || true), Basic);
        let reply = |status, body: &str| http::Reply {
            status,
            body: body.as_bytes().to_vec(),
        };
        assert!(refuses_client(&reply(400, "")));
        assert!(refuses_client(&reply(401, " \n")));
        assert!(refuses_client(&reply(401, r#"{"error":"invalid_client"}"#)));
        assert!(!refuses_client(&reply(400, r#"{"error":"invalid_grant"}"#)));
        assert!(!refuses_client(&reply(403, "")));
        assert!(!refuses_client(&reply(500, "")));
    }

    #[test]
    fn absurd_jwt_exp_is_bounded() {
        let jwt = |claims: &str| {
            let p = base64(claims.as_bytes())
                .trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_");
            format!(r#"{{"access_token":"h.{p}.s"}}"#)
        };
        let t = response(&jwt(r#"{"exp":9223372036854775807}"#));
        assert_eq!(t.expires_at(NOW), NOW + MAX_TOKEN_LIFETIME_SECS);
        let t = response(&jwt(r#"{"exp":-9223372036854775808}"#));
        assert_eq!(t.expires_at(NOW), 0);
        let t = response(&jwt(r#"{"exp":1700003600}"#));
        assert_eq!(t.expires_at(NOW), NOW + 3600);
        assert_eq!(bounded_expiry(i64::MAX, i64::MAX), i64::MAX);
    }
}
