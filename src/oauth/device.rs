//! The device authorization grant (RFC 8628): ask for a code, then poll the token endpoint
//! honouring `interval` (5 s when absent, as IAM never sends it), `slow_down` (+5 s for this and
//! all later polls), `authorization_pending`, `access_denied` and `expired_token`, and stop
//! locally at `expires_in`. Nothing is written here, neither to a terminal (polling reports
//! [`PollEvent`]s to a callback; `signin` shows the person what to do) nor to the cache (the
//! caller saves the result, so Ctrl-C or a failure leaves the cache as it was).

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::http::oauth_error;
use super::{Client, TokenResponse};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::trust::host_of;

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
    crate::trust::checked(&url, "device authorization endpoint")?;
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

/// What polling reports while it waits, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollEvent {
    /// Time passes: `left` until the code expires. Sent when the wait starts and each time the
    /// time left crosses a whole second.
    Tick { left: Duration },
    /// The provider answered `authorization_pending`: the person has not approved yet.
    Pending,
    /// The provider answered `slow_down`; polls now come every `every_secs` seconds.
    SlowDown { every_secs: u64 },
    /// The provider could not be reached; polling goes on after a pause.
    NetworkProblem,
}

/// Polls until the person approves, denies, or the code expires, reporting to `progress`.
pub fn poll(
    client: &Client,
    da: &DeviceAuthorization,
    progress: &mut dyn FnMut(PollEvent),
) -> Result<TokenResponse> {
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
        if !wait_ticking(deadline, wait, progress) {
            return Err(Error::DeviceCodeExpired { host });
        }
        let result = client.token_request(&token_url, &form, &[da.device_code.expose()]);
        if !matches!(result, Err(Error::Http { .. })) {
            failures = 0;
        }
        match result {
            Ok(t) => return Ok(t),
            Err(Error::OAuth { error, .. }) if error == "authorization_pending" => {
                backoff = 0;
                progress(PollEvent::Pending);
            }
            Err(Error::OAuth { error, .. }) if error == "slow_down" => {
                interval += 5;
                progress(PollEvent::SlowDown {
                    every_secs: interval,
                });
            }
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
                progress(PollEvent::NetworkProblem);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sleeps for `wait`, cut short at `deadline`, sending a [`PollEvent::Tick`] first and then each
/// time the time left crosses a whole second (so a countdown shows every second). False when the
/// deadline has passed.
fn wait_ticking(deadline: Instant, wait: Duration, progress: &mut dyn FnMut(PollEvent)) -> bool {
    let until = (Instant::now() + wait).min(deadline);
    loop {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        if left.is_zero() {
            return false;
        }
        progress(PollEvent::Tick { left });
        if now >= until {
            return true;
        }
        let to_next_second = match left.subsec_nanos() {
            0 => Duration::from_secs(1),
            n => Duration::from_nanos(u64::from(n)),
        };
        std::thread::sleep((until - now).min(to_next_second));
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
    fn waiting_ticks_on_whole_seconds_and_stops_at_the_deadline() {
        let mut ticks = Vec::new();
        let deadline = Instant::now() + Duration::from_millis(1300);
        let start = Instant::now();
        let ok = wait_ticking(deadline, Duration::from_millis(400), &mut |e| ticks.push(e));
        assert!(ok);
        assert!(start.elapsed() >= Duration::from_millis(400));
        // at the start (1.3 s left), at 1.0 s left, and when the wait ends (0.9 s left)
        let secs: Vec<u64> = ticks
            .iter()
            .map(|e| match e {
                PollEvent::Tick { left } => left.as_secs_f64().ceil() as u64,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(secs.first(), Some(&2), "{ticks:?}");
        assert!(secs.contains(&1), "{ticks:?}");
        let mut ticks = 0;
        assert!(!wait_ticking(
            Instant::now() + Duration::from_millis(50),
            Duration::from_secs(5),
            &mut |_| ticks += 1
        ));
        assert!(ticks >= 1);
    }
}
