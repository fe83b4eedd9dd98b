//! The test OpenID provider `tests/idp/server.js` (npm `oidc-provider`) and its fixed data.

use std::process::{Command, Output};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::{basic_auth, get_json, post_form};
use super::node::{NodeChild, idp_dir};
use super::process::run_with_input;

/// The test account's login.
pub const ALICE: &str = "alice";

/// The test account's password.
pub const ALICE_PASSWORD: &str = "wonderland";

/// Public client (`token_endpoint_auth_method: none`): device_code + refresh_token.
pub const PUBLIC_CLIENT: &str = "public-cli";

/// Confidential client (client_secret_basic, secret [`CONF_SECRET`]): device_code + refresh_token.
pub const CONF_CLIENT: &str = "conf-cli";

/// Secret of [`CONF_CLIENT`] and [`PW_CONF_CLIENT`]: contains `+`, `%` and a space.
pub const CONF_SECRET: &str = "s3c+r%t with space";

/// Public client with the password grant (+ refresh_token).
pub const PW_CLIENT: &str = "pw-cli";

/// Confidential client (secret [`CONF_SECRET`]) with the password grant (+ refresh_token).
pub const PW_CONF_CLIENT: &str = "pw-conf-cli";

/// Resource-server client that may introspect any token.
pub const RS_CLIENT: &str = "rs";

/// Secret of [`RS_CLIENT`].
pub const RS_SECRET: &str = "rs-secret";

/// `grant_type` of the device flow's token request.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Bound on one run of `approve.js`.
const APPROVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Options of the test provider; `Default` gives the server's defaults.
#[derive(Debug, Clone, Default)]
pub struct IdpOptions {
    /// Access-token lifetime in seconds (server default 3600).
    pub access_ttl: Option<u64>,
    /// Device-code lifetime (`expires_in`) in seconds (server default 600).
    pub device_ttl: Option<u64>,
    /// Refresh-token lifetime in seconds (server default 14 days).
    pub refresh_ttl: Option<u64>,
    /// `interval` added to the device authorization response (server default 1).
    pub interval: Option<u64>,
    /// Send no `interval` at all (the client must then use RFC 8628's 5 s).
    pub no_interval: bool,
    /// Issuer `http://127.0.0.1:PORT/` instead of `http://127.0.0.1:PORT`.
    pub trailing_slash: bool,
    /// The first N token polls of each device code answer 400 `slow_down`.
    pub slow_down: u32,
    /// Replaces the extra scopes the provider knows (default `read:git write:git`).
    pub extra_scopes: Option<String>,
    /// More raw arguments for server.js.
    pub extra_args: Vec<String>,
}

/// A running test OpenID provider (`tests/idp/server.js`); killed on drop.
pub struct Idp {
    node: NodeChild,
    issuer: String,
    port: u16,
}

impl Idp {
    /// Start the provider with default options.
    pub fn start() -> Idp {
        Idp::start_with(IdpOptions::default())
    }

    /// The provider with default options that the tests of this process share: started once,
    /// on first use, and running until the process ends (its stdin closes then). A test that
    /// shares it reads and resets no counters (every test's requests count there), and keeps
    /// its own account, home and cache (an [`super::Account`]), so the tests stay independent.
    /// A test that counts requests, or needs options, starts its own.
    pub fn shared() -> &'static Idp {
        static SHARED: OnceLock<Idp> = OnceLock::new();
        SHARED.get_or_init(Idp::start)
    }

    /// Start the provider with `opts`; panics (with the server log) when it does not come up
    /// within 30 s.
    pub fn start_with(opts: IdpOptions) -> Idp {
        let mut args = Vec::new();
        let mut num = |flag: &str, v: Option<u64>| {
            if let Some(v) = v {
                args.push(flag.to_string());
                args.push(v.to_string());
            }
        };
        num("--access-ttl", opts.access_ttl);
        num("--device-ttl", opts.device_ttl);
        num("--refresh-ttl", opts.refresh_ttl);
        num("--interval", opts.interval);
        if opts.slow_down > 0 {
            args.push("--slow-down".into());
            args.push(opts.slow_down.to_string());
        }
        if opts.no_interval {
            args.push("--interval".into());
            args.push("none".into());
        }
        if opts.trailing_slash {
            args.push("--trailing-slash".into());
        }
        if let Some(s) = &opts.extra_scopes {
            args.push("--extra-scopes".into());
            args.push(s.clone());
        }
        args.extend(opts.extra_args.iter().cloned());
        let (node, ready) = NodeChild::spawn("server.js", &args);
        let issuer = ready["issuer"]
            .as_str()
            .expect("ready line has issuer")
            .to_string();
        let port = ready["port"].as_u64().expect("ready line has port") as u16;
        Idp { node, issuer, port }
    }

    /// The issuer exactly as the provider announces it (with a trailing `/` under
    /// `trailing_slash`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The port the provider listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Absolute URL of `path` (`"/token"`, `"token"`, …) on the provider, without a double slash.
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}/{}",
            self.issuer.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }

    /// The discovery document (`/.well-known/openid-configuration`).
    pub fn discovery(&self) -> Value {
        get_json(&self.url("/.well-known/openid-configuration"))
    }

    /// `POST` endpoint of device authorization requests.
    pub fn device_authorization_endpoint(&self) -> String {
        self.url("/device/auth")
    }
    /// Token endpoint.
    pub fn token_endpoint(&self) -> String {
        self.url("/token")
    }
    /// Introspection endpoint (RFC 7662).
    pub fn introspection_endpoint(&self) -> String {
        self.url("/token/introspection")
    }
    /// Revocation endpoint (RFC 7009).
    pub fn revocation_endpoint(&self) -> String {
        self.url("/token/revocation")
    }
    /// Dynamic client registration endpoint (RFC 7591, open).
    pub fn registration_endpoint(&self) -> String {
        self.url("/reg")
    }
    /// The page where the user enters the code (`verification_uri`).
    pub fn verification_uri(&self) -> String {
        self.url("/device")
    }

    /// Request counters, e.g. `{"device_authorization":1,"token":{"<device grant>":2,
    /// "refresh_token":0,"password":0},"introspection":0,"revocation":0,"registration":0,
    /// "routes":{…}}`; every request counts, successful or not.
    pub fn counters(&self) -> Value {
        get_json(&self.url("/__counters"))
    }

    /// `counters()["token"][grant_type]` as a number (0 when absent).
    pub fn token_requests(&self, grant_type: &str) -> u64 {
        self.counters()["token"][grant_type].as_u64().unwrap_or(0)
    }

    /// Zero every counter.
    pub fn reset_counters(&self) {
        let (status, _) = post_form(&self.url("/__counters/reset"), None, &[]);
        assert_eq!(status, 200, "counter reset failed");
    }

    /// Run `approve.js` with extra arguments and return its output (no assertion).
    pub fn run_approver(&self, user_code: &str, extra: &[&str]) -> Output {
        let mut cmd = Command::new("node");
        cmd.arg(idp_dir().join("approve.js"))
            .args(["--issuer", &self.issuer, "--user-code", user_code])
            .args(extra)
            .current_dir(idp_dir());
        run_with_input(cmd, "", APPROVE_TIMEOUT)
    }

    /// Approve `user_code` as alice would in a browser (login + consent); panics on failure.
    pub fn approve(&self, user_code: &str) {
        let out = self.run_approver(user_code, &[]);
        assert!(
            out.status.success(),
            "approve.js failed for {user_code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Deny `user_code` on the consent page; the device flow then ends with `access_denied`.
    pub fn deny(&self, user_code: &str) {
        let out = self.run_approver(user_code, &["--deny"]);
        assert!(
            out.status.success(),
            "approve.js --deny failed for {user_code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The introspection answer for `token` (asked as the `rs` client).
    pub fn introspection(&self, token: &str) -> Value {
        let (status, body) = post_form(
            &self.introspection_endpoint(),
            Some(&basic_auth(RS_CLIENT, RS_SECRET)),
            &[("token", token)],
        );
        assert_eq!(status, 200, "introspection answered {status}: {body}");
        body
    }

    /// Is `token` (access or refresh token) active?
    pub fn introspect(&self, token: &str) -> bool {
        self.introspection(token)["active"] == Value::Bool(true)
    }

    /// Revoke `token` as the public client `client_id` (a public client may only revoke its
    /// own tokens). Returns the HTTP status (200 on success).
    pub fn revoke(&self, client_id: &str, token: &str) -> u16 {
        post_form(
            &self.revocation_endpoint(),
            None,
            &[("client_id", client_id), ("token", token)],
        )
        .0
    }

    /// Password grant for alice as the public [`PW_CLIENT`]; returns (status, body).
    pub fn password_grant(&self, password: &str, scope: &str) -> (u16, Value) {
        post_form(
            &self.token_endpoint(),
            None,
            &[
                ("grant_type", "password"),
                ("client_id", PW_CLIENT),
                ("username", ALICE),
                ("password", password),
                ("scope", scope),
            ],
        )
    }

    /// A fresh token response for alice via the password grant (scope e.g.
    /// `"openid offline_access"`); panics unless it succeeds.
    pub fn token_for_password(&self, scope: &str) -> Value {
        let (status, body) = self.password_grant(ALICE_PASSWORD, scope);
        assert_eq!(status, 200, "password grant failed: {body}");
        body
    }

    /// Device authorization request for a public client; returns the JSON answer (asserts 200).
    pub fn device_authorize(&self, client_id: &str, scope: &str) -> Value {
        let (status, body) = post_form(
            &self.device_authorization_endpoint(),
            None,
            &[("client_id", client_id), ("scope", scope)],
        );
        assert_eq!(status, 200, "device authorization failed: {body}");
        body
    }

    /// Poll the token endpoint for `device_code` (public client) until it answers anything but
    /// `authorization_pending`/`slow_down`, or `timeout` passes (panics then). Waits the
    /// server's interval (at least 50 ms) between polls. Returns (status, body) of the last answer.
    pub fn poll_device_token(
        &self,
        client_id: &str,
        device_code: &str,
        interval: Duration,
        timeout: Duration,
    ) -> (u16, Value) {
        let deadline = Instant::now() + timeout;
        let interval = interval.max(Duration::from_millis(50));
        loop {
            let (status, body) = post_form(
                &self.token_endpoint(),
                None,
                &[
                    ("grant_type", DEVICE_GRANT),
                    ("client_id", client_id),
                    ("device_code", device_code),
                ],
            );
            let err = body["error"].as_str().unwrap_or("");
            if err != "authorization_pending" && err != "slow_down" {
                return (status, body);
            }
            assert!(
                Instant::now() < deadline,
                "no device token within {timeout:?}: {body}"
            );
            thread::sleep(interval);
        }
    }

    /// A whole device flow for a public client, approved by alice: returns the token response.
    pub fn device_flow_token(&self, client_id: &str, scope: &str) -> Value {
        let auth = self.device_authorize(client_id, scope);
        self.approve(auth["user_code"].as_str().expect("user_code"));
        let (status, body) = self.poll_device_token(
            client_id,
            auth["device_code"].as_str().expect("device_code"),
            Duration::from_millis(50),
            Duration::from_secs(10),
        );
        assert_eq!(status, 200, "device token request failed: {body}");
        body
    }

    /// What the provider wrote on stderr so far.
    pub fn log(&self) -> String {
        self.node.log_text()
    }
}
