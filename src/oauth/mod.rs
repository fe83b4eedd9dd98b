//! Talking to the provider: discovery, the device flow (RFC 8628), refresh and revocation
//! (RFC 6749 / 7009). One [`Client`] per run holds the HTTP agent, the client credentials and the
//! endpoints (discovered lazily, so a cache hit never gets here).

pub mod device;
pub mod discovery;
pub mod http;
pub mod password;
pub mod validate;

use std::cell::OnceCell;

use serde::Deserialize;

use crate::config::Settings;
use crate::encoding::jwt_exp;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::trust::host_of;
use discovery::Endpoints;
use http::{ClientAuth, Http, oauth_error};

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
    /// Unix seconds when the access token expires: `expires_in`, else the JWT's `exp`, else a
    /// conservative five minutes.
    pub fn expires_at(&self, now: i64) -> i64 {
        let secs = match &self.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        secs.map(|s| now + s.max(0))
            .or_else(|| jwt_exp(self.access_token.expose()))
            .unwrap_or(now + 300)
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

/// The provider, as seen by one run.
pub struct Client<'a> {
    settings: &'a Settings,
    http: Http,
    auth: ClientAuth,
    endpoints: OnceCell<Endpoints>,
    now: i64,
}

impl<'a> Client<'a> {
    /// Builds the client: reads the client secret file and builds the HTTP agent.
    pub fn new(settings: &'a Settings, now: i64) -> Result<Client<'a>> {
        crate::trust::checked(&settings.issuer, "issuer")?;
        Ok(Client {
            settings,
            http: Http::new(
                settings.timeout,
                settings.ca_file.as_deref(),
                settings.issuer.starts_with("https://"),
            )?,
            auth: ClientAuth {
                client_id: settings.client_id.clone(),
                secret: settings.client_secret()?,
            },
            endpoints: OnceCell::new(),
            now,
        })
    }

    /// The provider's endpoints (discovery, cached on disk for a day).
    pub fn endpoints(&self) -> Result<&Endpoints> {
        if let Some(e) = self.endpoints.get() {
            return Ok(e);
        }
        let e = discovery::endpoints(
            &self.http,
            &self.settings.issuer,
            &self.settings.cache_dir,
            self.now,
        )?;
        Ok(self.endpoints.get_or_init(|| e))
    }

    /// Refreshes. Sends `scope` and `audience` again (IAM drops the audience otherwise).
    pub fn refresh(&self, refresh_token: &Secret<String>) -> Result<TokenResponse> {
        let url = self.endpoints()?.token_endpoint.clone();
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose().as_str()),
            ("scope", self.settings.scope.as_str()),
        ];
        if let Some(aud) = &self.settings.audience {
            form.push(("audience", aud));
        }
        self.token_request(&url, &form, &[refresh_token.expose()])
    }

    /// POSTs to the token endpoint and parses a token response or an OAuth error. Every value in
    /// `secrets` is removed from error messages.
    pub fn token_request(
        &self,
        url: &str,
        form: &[(&str, &str)],
        secrets: &[&str],
    ) -> Result<TokenResponse> {
        let reply = self.http.post_form(url, form, &self.auth)?;
        let mut all: Vec<&str> = secrets.to_vec();
        if let Some(s) = &self.auth.secret {
            all.push(s.expose());
        }
        if !(200..300).contains(&reply.status) {
            return Err(oauth_error(url, &reply, &all));
        }
        parse_token_response(&host_of(url), &reply.body)
    }

    /// Revokes a token (RFC 7009) where the provider offers revocation. `Ok(false)` when it does not.
    pub fn revoke(&self, token: &Secret<String>, hint: &str) -> Result<bool> {
        let Some(url) = self.endpoints()?.revocation_endpoint.clone() else {
            return Ok(false);
        };
        let form = [
            ("token", token.expose().as_str()),
            ("token_type_hint", hint),
        ];
        let reply = self.http.post_form(&url, &form, &self.auth)?;
        if (200..300).contains(&reply.status) {
            Ok(true)
        } else {
            Err(oauth_error(&url, &reply, &[token.expose()]))
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

    /// The client's credentials.
    pub fn auth(&self) -> &ClientAuth {
        &self.auth
    }
}
