//! The device authorization grant (RFC 8628): ask for a code, show the person where to enter it,
//! then poll the token endpoint honouring `interval` (5 s when absent, as IAM never sends it),
//! `slow_down` (+5 s for this and all later polls), `authorization_pending`, `access_denied` and
//! `expired_token`, and stop locally at `expires_in`. Nothing is written here: the caller caches
//! the result, so Ctrl-C or a failure leaves the cache as it was.

use std::io::Write;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::http::{clean, host_of, oauth_error};
use super::{Client, TokenResponse};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// Consecutive network failures after which polling stops.
const MAX_NETWORK_FAILURES: u32 = 4;

/// The grant type of the polls.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The device authorization response.
#[derive(Debug, Deserialize)]
pub struct DeviceAuthorization {
    pub device_code: Secret<String>,
    pub user_code: String,
    #[serde(alias = "verification_url")]
    pub verification_uri: String,
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub interval: Option<u64>,
}

/// Starts a device authorization and returns the response.
pub fn start(client: &Client) -> Result<DeviceAuthorization> {
    let s = client.settings();
    let url = client
        .endpoints()?
        .device_authorization_endpoint
        .clone()
        .ok_or_else(|| Error::Provider {
            host: host_of(&s.issuer),
            message: "the provider offers no device flow (no device_authorization_endpoint in \
                      its discovery document)"
                .into(),
        })?;
    super::http::check_url(&url, "device authorization endpoint")?;
    let mut form = vec![("scope", s.scope.as_str())];
    if let Some(aud) = &s.audience {
        form.push(("audience", aud));
    }
    let reply = client.http().post_form(&url, &form, client.auth())?;
    if !(200..300).contains(&reply.status) {
        return Err(oauth_error(&url, &reply, &[]));
    }
    serde_json::from_slice(&reply.body).map_err(|e| Error::Provider {
        host: host_of(&url),
        message: format!("the device authorization response is not usable: {e}"),
    })
}

/// Writes the instructions a person follows. Provider text is stripped of control characters
/// (a hostile provider must not drive the terminal).
pub fn show_instructions(da: &DeviceAuthorization, issuer_host: &str, out: &mut dyn Write) {
    let expires = da.expires_in.unwrap_or(600);
    let mut text = format!(
        "git-credential-iam: sign in to {issuer_host}\n  Open:  {}\n  Code:  {}\n",
        clean(&da.verification_uri, 500),
        clean(&da.user_code, 64)
    );
    if let Some(c) = &da.verification_uri_complete {
        text.push_str(&format!(
            "  Or open this link, which fills in the code: {}\n",
            clean(c, 600)
        ));
    }
    text.push_str(&format!(
        "  Waiting for approval (the code expires in {}); Ctrl-C to cancel.\n",
        human_duration(expires)
    ));
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Polls until the person approves, denies, or the code expires.
pub fn poll(client: &Client, da: &DeviceAuthorization) -> Result<TokenResponse> {
    let token_url = client.endpoints()?.token_endpoint.clone();
    let host = host_of(&token_url);
    let deadline = Instant::now() + Duration::from_secs(da.expires_in.unwrap_or(600));
    let mut interval = da.interval.unwrap_or(5).max(1);
    let mut backoff = 0u64;
    let mut failures = 0u32;
    let form = [
        ("grant_type", GRANT_TYPE),
        ("device_code", da.device_code.expose().as_str()),
    ];
    loop {
        let wait = Duration::from_secs(interval + backoff);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::DeviceCodeExpired { host });
        }
        std::thread::sleep(wait.min(left));
        if Instant::now() >= deadline {
            return Err(Error::DeviceCodeExpired { host });
        }
        let result = client.token_request(&token_url, &form, &[da.device_code.expose()]);
        if !matches!(result, Err(Error::Http { .. })) {
            failures = 0;
        }
        match result {
            Ok(t) => return Ok(t),
            Err(Error::OAuth { error, .. }) if error == "authorization_pending" => backoff = 0,
            Err(Error::OAuth { error, .. }) if error == "slow_down" => interval += 5,
            Err(Error::OAuth { error, .. }) if error == "access_denied" => {
                return Err(Error::Denied { host });
            }
            Err(Error::OAuth { error, .. }) if error == "expired_token" => {
                return Err(Error::DeviceCodeExpired { host });
            }
            // A connection problem: back off (RFC 8628 §3.5); give up when the provider stays
            // unreachable, rather than hang until the code expires.
            Err(e @ Error::Http { .. }) => {
                failures += 1;
                if failures >= MAX_NETWORK_FAILURES {
                    return Err(e);
                }
                backoff = (backoff * 2).max(interval).min(60);
            }
            Err(e) => return Err(e),
        }
    }
}

/// "10 min", "45 s".
pub fn human_duration(secs: u64) -> String {
    if secs >= 120 {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_strip_control_characters() {
        let da = DeviceAuthorization {
            device_code: Secret::new("dc".into()),
            user_code: "ABCD\x1b[2J-EFGH".into(),
            verification_uri: "https://iam.example/device".into(),
            verification_uri_complete: Some("https://iam.example/device?user_code=ABCD".into()),
            expires_in: Some(600),
            interval: None,
        };
        let mut out = Vec::new();
        show_instructions(&da, "iam.example", &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\x1b'));
        assert!(text.contains("Code:  ABCD[2J-EFGH"));
        assert!(text.contains("10 min"));
        assert!(!text.contains("dc"));
    }
}
