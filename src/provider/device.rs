//! The device authorization grant (RFC 8628): ask for a code, then poll the token endpoint
//! honouring `interval` (5 s when absent, as IAM never sends it), `slow_down` (+5 s for this and
//! all later polls), `authorization_pending`, `access_denied` and `expired_token`, and stop
//! locally at `expires_in`. The provider's numbers are clamped (interval 1..=300 s, code
//! lifetime at most an hour) and every time computation is checked, so an absurd answer cannot
//! overflow an `Instant`. Nothing is written here, neither to a terminal (polling reports
//! [`PollEvent`]s to a callback; `signin` shows the person what to do) nor to the cache (the
//! caller saves the result, so Ctrl-C or a failure leaves the cache as it was).

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{Client, TokenResponse};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::trust::host_of;

/// Consecutive network failures after which polling stops.
const MAX_NETWORK_FAILURES: u32 = 4;

/// The grant type of the polls.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Poll interval when the provider names none (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL_SECS: u64 = 5;
/// Longest poll interval believed (also after `slow_down`s).
pub const MAX_INTERVAL_SECS: u64 = 300;
/// Code lifetime when the provider names none.
pub const DEFAULT_LIFETIME_SECS: u64 = 600;
/// Longest code lifetime believed: nobody waits longer than an hour for a sign-in.
pub const MAX_LIFETIME_SECS: u64 = 3600;

/// The device authorization response.
#[derive(Debug, Deserialize)]
pub struct DeviceAuthorization {
    pub device_code: Secret<String>,
    pub user_code: String,
    #[serde(alias = "verification_url")]
    pub verification_uri: String,
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    #[serde(default, deserialize_with = "lenient_secs")]
    pub expires_in: Option<u64>,
    #[serde(default, deserialize_with = "lenient_secs")]
    pub interval: Option<u64>,
}

impl DeviceAuthorization {
    /// Seconds between polls: `interval` clamped to 1..=[`MAX_INTERVAL_SECS`], 5 when absent.
    pub fn interval_secs(&self) -> u64 {
        self.interval
            .unwrap_or(DEFAULT_INTERVAL_SECS)
            .clamp(1, MAX_INTERVAL_SECS)
    }

    /// Seconds the code lives: `expires_in` (600 when absent) at most [`MAX_LIFETIME_SECS`], and
    /// at least two intervals, so a nonsense 0 still allows one poll.
    pub fn lifetime_secs(&self) -> u64 {
        self.expires_in
            .unwrap_or(DEFAULT_LIFETIME_SECS)
            .min(MAX_LIFETIME_SECS)
            .max(2 * self.interval_secs())
    }
}

/// A number of seconds the way providers write it: an integer (saturated to `u64`; negative
/// reads as 0), a float (truncated), or a decimal string. Anything else (or `null`) is absent.
fn lenient_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(super::json_seconds(&v).map(|s| u64::try_from(s.max(0)).unwrap_or(0)))
}

/// Parses and checks a device authorization response from the provider at `host`: the
/// required fields present and non-empty, `expires_in` and `interval` replaced by their clamped
/// values ([`DeviceAuthorization::lifetime_secs`], [`DeviceAuthorization::interval_secs`]).
pub fn parse_device_authorization(host: &str, body: &[u8]) -> Result<DeviceAuthorization> {
    let refuse = |message: String| Error::Provider {
        host: host.to_string(),
        message,
    };
    let mut da: DeviceAuthorization = serde_json::from_slice(body).map_err(|e| {
        refuse(format!(
            "the device authorization response is not usable ({}: {})",
            super::http::describe_body(body),
            if e.is_data() {
                "a required field such as device_code is missing or mistyped"
            } else {
                "not JSON"
            }
        ))
    })?;
    if da.device_code.expose().is_empty() || da.user_code.is_empty() {
        return Err(refuse(
            "the device authorization response has an empty device_code or user_code".into(),
        ));
    }
    if let Err(why) = crate::validate::refresh_token(da.device_code.expose()) {
        return Err(refuse(format!(
            "the device authorization response has a device_code that is not printable ASCII \
             ({why})"
        )));
    }
    da.interval = Some(da.interval_secs());
    da.expires_in = Some(da.lifetime_secs());
    Ok(da)
}

/// Starts a device authorization and returns the response.
pub fn start(client: &Client) -> Result<DeviceAuthorization> {
    let s = client.settings();
    let mut form = vec![("scope", s.scope.as_str())];
    client.add_target(&mut form);
    // The endpoint was checked (https, or loopback http) with the discovery document.
    let (url, reply) = client
        .device_request(&form)?
        .ok_or_else(|| Error::Provider {
            host: host_of(&s.issuer),
            message: "the provider offers no device flow (no device_authorization_endpoint in \
                      its discovery document)"
                .into(),
        })?;
    if !(200..300).contains(&reply.status) {
        return Err(client.provider_error(&url, &reply, &[]));
    }
    parse_device_authorization(&host_of(&url), &reply.body)
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
    let host = host_of(&client.endpoints()?.token_endpoint);
    let deadline = after(Duration::from_secs(da.lifetime_secs()));
    let mut interval = da.interval_secs();
    let mut backoff = 0u64;
    let mut failures = 0u32;
    let mut form = vec![
        ("grant_type", GRANT_TYPE),
        ("device_code", da.device_code.expose().as_str()),
    ];
    // RFC 8707 §2.2: the resources again on the token request.
    for r in &client.settings().resources {
        form.push(("resource", r.as_str()));
    }
    loop {
        let wait = Duration::from_secs(interval.saturating_add(backoff));
        if !wait_ticking(deadline, wait, progress) {
            return Err(Error::DeviceCodeExpired { host });
        }
        let result = client.token_request(&form, &[da.device_code.expose()]);
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
                interval = slowed_down(interval);
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
                backoff = backoff.saturating_mul(2).max(interval).min(60);
                progress(PollEvent::NetworkProblem);
            }
            Err(e) => return Err(e),
        }
    }
}

/// The interval after a `slow_down`: 5 s more, at most [`MAX_INTERVAL_SECS`].
pub fn slowed_down(interval: u64) -> u64 {
    interval.saturating_add(5).min(MAX_INTERVAL_SECS)
}

/// The instant `d` from now, never overflowing: callers pass clamped durations (an hour at
/// most), which always fit; one that does not reads as "now" (already expired).
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).unwrap_or(now)
}

/// Sleeps for `wait`, cut short at `deadline`, sending a [`PollEvent::Tick`] first and then each
/// time the time left crosses a whole second (so a countdown shows every second). False when the
/// deadline has passed.
fn wait_ticking(deadline: Instant, wait: Duration, progress: &mut dyn FnMut(PollEvent)) -> bool {
    let until = Instant::now()
        .checked_add(wait)
        .map_or(deadline, |u| u.min(deadline));
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

    fn parse(json: &str) -> DeviceAuthorization {
        parse_device_authorization("iam.example", json.as_bytes()).unwrap()
    }

    #[test]
    fn absurd_numbers_are_clamped() {
        let da = parse(
            r#"{"device_code":"d","user_code":"u","verification_uri":"https://x/",
                "expires_in":18446744073709551615,"interval":18446744073709551615}"#,
        );
        assert_eq!((da.expires_in, da.interval), (Some(3600), Some(300)));
        let da = parse(
            r#"{"device_code":"d","user_code":"u","verification_uri":"https://x/",
                "expires_in":0,"interval":0}"#,
        );
        assert_eq!((da.expires_in, da.interval), (Some(2), Some(1)));
        let da = parse(
            r#"{"device_code":"d","user_code":"u","verification_uri":"https://x/",
                "expires_in":-7,"interval":-1e300}"#,
        );
        assert_eq!((da.expires_in, da.interval), (Some(2), Some(1)));
        let da = parse(
            r#"{"device_code":"d","user_code":"u","verification_uri":"https://x/",
                "expires_in":"900","interval":2.5}"#,
        );
        assert_eq!((da.expires_in, da.interval), (Some(900), Some(2)));
        // Absent: RFC 8628's 5 s, and ten minutes.
        let da = parse(r#"{"device_code":"d","user_code":"u","verification_uri":"https://x/"}"#);
        assert_eq!((da.expires_in, da.interval), (Some(600), Some(5)));
        // Built by hand, unclamped: the accessors clamp too.
        let raw = DeviceAuthorization {
            expires_in: Some(u64::MAX),
            interval: Some(u64::MAX),
            ..da
        };
        assert_eq!((raw.lifetime_secs(), raw.interval_secs()), (3600, 300));
    }

    #[test]
    fn slow_down_never_overflows() {
        assert_eq!(slowed_down(5), 10);
        assert_eq!(slowed_down(298), MAX_INTERVAL_SECS);
        assert_eq!(slowed_down(u64::MAX), MAX_INTERVAL_SECS);
    }

    #[test]
    fn unusable_answers_do_not_quote_the_provider() {
        for bad in [
            &br#"{"device_code":"d","user_code":"u"}"#[..],
            br#"{"device_code":"","user_code":"u","verification_uri":"x"}"#,
            br#"{"device_code":"d
x","user_code":"u","verification_uri":"x"}"#,
            br#"{"device_code":7,"user_code":"SECRETISH","verification_uri":"x"}"#,
            b"<html>",
        ] {
            let e = parse_device_authorization("iam.example", bad).unwrap_err();
            let m = e.to_string();
            assert!(m.starts_with("iam.example: "), "{m}");
            assert!(!m.contains("SECRETISH") && !m.contains('\n'), "{m}");
        }
    }

    #[test]
    fn far_instants_do_not_overflow() {
        let _ = after(Duration::MAX);
        let mut ticks = 0;
        assert!(!wait_ticking(
            Instant::now() + Duration::from_millis(20),
            Duration::MAX,
            &mut |_| ticks += 1
        ));
    }

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
