//! Support code for git-credential-iam's integration tests (`mod support;` in `tests/*.rs`).
//!
//! * [`Idp`] runs the test OpenID provider `tests/idp/server.js` (npm `oidc-provider`, with the
//!   device flow, refresh-token rotation, introspection, revocation, open dynamic registration
//!   and a password grant). `npm ci` runs once when `tests/idp/node_modules` is missing or stale.
//!   Node.js is required: without it every test that starts an [`Idp`] panics (never skips).
//! * [`GitServer`] runs `tests/idp/git-server.js`, a git smart-HTTP server in front of a bare
//!   repository with one commit, that lets a request through only when its token is active at
//!   the [`Idp`] (RFC 7662 introspection).
//! * [`helper_cmd`] / [`git_cmd`] build commands with a clean environment rooted in a test home.
//! * [`wait_for_line`] / [`Lines`] read a child's output with a bounded wait (for the user code
//!   in the helper's device-flow prompt).
//!
//! Every wait is bounded; nothing sleeps to wait for readiness. All servers bind 127.0.0.1 only
//! and die with their [`Idp`] / [`GitServer`] value (and, through their stdin, with the test
//! process). Fixed test data: account [`ALICE`]/[`ALICE_PASSWORD`]; clients [`PUBLIC_CLIENT`],
//! [`CONF_CLIENT`] (secret [`CONF_SECRET`]), [`PW_CLIENT`], [`PW_CONF_CLIENT`], [`RS_CLIENT`].
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

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

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one HTTP request made by this module.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on one run of `approve.js`.
const APPROVE_TIMEOUT: Duration = Duration::from_secs(20);

/// `tests/idp`, where the node scripts live.
pub fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("idp")
}

// ------------------------------------------------------------------------------------------
// node + npm ci

/// Make sure `node` runs and `tests/idp/node_modules` is installed (runs `npm ci` at most once
/// per test process, under a file lock shared by all test binaries). Panics when it cannot,
/// with the same message in every test of the process.
pub fn ensure_node_modules() {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(msg) = RESULT.get_or_init(install_node_modules) {
        panic!("{msg}");
    }
}

fn install_node_modules() -> Result<(), String> {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Err(format!(
                "`node --version` failed ({}): Node.js >= 20 is required to run the test IdP",
                out.status
            ));
        }
        Err(e) => {
            return Err(format!(
                "cannot run `node` ({e}): Node.js >= 20 and npm are required to run the test IdP \
                 (tests/idp); install them, these tests do not skip"
            ));
        }
    }
    let dir = idp_dir();
    // in tests/idp (git-ignored) so every test binary and target dir shares it
    let lock_path = dir.join(".npm-ci.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if node_modules_stale(&dir) {
        let started = Instant::now();
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run `npm ci` in {}: {e}", dir.display()))?;
        if !out.status.success() {
            return Err(format!(
                "`npm ci` in {} failed ({}):\n{}\n{}",
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        eprintln!(
            "support: npm ci in {} took {:?}",
            dir.display(),
            started.elapsed()
        );
    }
    Ok(())
}

/// True when `node_modules` is missing or older than `package-lock.json`.
fn node_modules_stale(dir: &Path) -> bool {
    let installed = dir.join("node_modules").join(".package-lock.json");
    let Ok(installed) = fs::metadata(installed).and_then(|m| m.modified()) else {
        return true;
    };
    let wanted = fs::metadata(dir.join("package-lock.json"))
        .and_then(|m| m.modified())
        .expect("tests/idp/package-lock.json is missing");
    installed < wanted
}

/// A node script running as a child with piped stdin (it exits when stdin closes) and its
/// stderr going to a log file that is printed when a test panics.
struct NodeChild {
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl NodeChild {
    /// Spawn `node SCRIPT ARGS` in `tests/idp` and return it with its parsed ready line.
    fn spawn(script: &str, args: &[String]) -> (NodeChild, Value) {
        ensure_node_modules();
        let dir = tempfile::Builder::new()
            .prefix("gci-node-")
            .tempdir()
            .expect("tempdir");
        let log = dir.path().join(format!("{script}.log"));
        let log_file = File::create(&log).expect("create log file");
        let mut child = Command::new("node")
            .arg(idp_dir().join(script))
            .args(args)
            .current_dir(idp_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node {script}`: {e} (is Node.js installed?)"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            for _ in lines {} // nothing more is expected; keep the pipe drained
        });
        let mut me = NodeChild {
            child,
            stdin,
            log,
            _dir: dir,
        };
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => panic!(
                "node {script} exited before it was ready ({:?}); its log:\n{}",
                me.child.try_wait(),
                me.log_text()
            ),
            Err(_) => panic!(
                "node {script} printed no ready line within {READY_TIMEOUT:?}; its log:\n{}",
                me.log_text()
            ),
        };
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "node {script}: bad ready line {line:?}: {e}; its log:\n{}",
                me.log_text()
            )
        });
        (me, ready)
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeChild {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "---- log of {} ----\n{}",
                self.log.display(),
                self.log_text()
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// HTTP

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(HTTP_TIMEOUT))
        .build()
        .new_agent()
}

fn json_of(url: &str, status: u16, text: String) -> (u16, Value) {
    let value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{url} answered {status} with non-JSON {text:?}: {e}"))
    };
    (status, value)
}

/// POST an `application/x-www-form-urlencoded` form; `authorization` is a whole header value
/// (e.g. from [`basic_auth`]). Returns the status and the JSON body (`Null` when empty).
/// Panics on a transport error or a non-JSON body.
pub fn post_form(url: &str, authorization: Option<&str>, form: &[(&str, &str)]) -> (u16, Value) {
    let mut req = agent().post(url);
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    let mut res = req
        .send_form(form.iter().copied())
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = res.status().as_u16();
    let text = res
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    json_of(url, status, text)
}

/// POST a JSON body. Returns the status and the JSON answer.
pub fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let mut res = agent()
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string())
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = res.status().as_u16();
    let text = res
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    json_of(url, status, text)
}

/// GET a JSON document, asserting status 200.
pub fn get_json(url: &str) -> Value {
    let mut res = agent()
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = res.status().as_u16();
    let text = res
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(status, 200, "GET {url} answered {status}: {text}");
    json_of(url, status, text).1
}

/// `application/x-www-form-urlencoded` encoding of one value (space as `+`).
pub fn form_urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Basic …` header value for client authentication as RFC 6749 2.3.1 wants it: id and secret
/// each form-urlencoded, joined by `:`, then base64.
pub fn basic_auth(client_id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", form_urlencode(client_id), form_urlencode(secret));
    format!("Basic {}", base64(pair.as_bytes()))
}

// ------------------------------------------------------------------------------------------
// Idp

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

// ------------------------------------------------------------------------------------------
// GitServer

/// How the [`GitServer`] wants the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitAuth {
    /// `Authorization: Bearer TOKEN`; challenge `WWW-Authenticate: Bearer realm="git"`.
    Bearer,
    /// `Authorization: Basic base64(ANY_USER:TOKEN)`; challenge `Basic realm="git"`.
    Basic,
}

/// A running token-checking git smart-HTTP server over a temp dir holding `repo.git` (one
/// commit on `main`, file `README`); killed on drop.
pub struct GitServer {
    node: NodeChild,
    url: String,
    root: tempfile::TempDir,
}

/// Run git with a clean environment (no system/global config), panicking on failure.
fn git_plain(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("LANG", "C")
        .output()
        .unwrap_or_else(|e| panic!("cannot run git: {e}"));
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Creates the bare repository `bare` (branch `main`) with one commit holding `README` with
/// `readme` in it, made in a scratch clone beside it that is removed again.
fn seed_bare_repo(bare: &Path, readme: &str) {
    let parent = bare.parent().expect("a parent directory");
    let work = parent.join("seed");
    fs::create_dir(&work).expect("mkdir seed");
    git_plain(
        parent,
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    git_plain(&work, &["init", "-q", "-b", "main"]);
    fs::write(work.join("README"), readme).expect("write README");
    git_plain(&work, &["add", "README"]);
    git_plain(
        &work,
        &[
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.org",
            "commit",
            "-q",
            "-m",
            "initial",
        ],
    );
    git_plain(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    fs::remove_dir_all(&work).expect("rm seed");
}

impl GitServer {
    /// Create the repository and start the server checking tokens against `idp`.
    pub fn start(idp: &Idp, mode: GitAuth) -> GitServer {
        let root = tempfile::Builder::new()
            .prefix("gci-git-")
            .tempdir()
            .expect("tempdir");
        let bare = root.path().join("repo.git");
        seed_bare_repo(&bare, "hello from the test git server\n");

        let mode_arg = match mode {
            GitAuth::Bearer => "bearer",
            GitAuth::Basic => "basic",
        };
        let args: Vec<String> = [
            "--root",
            root.path().to_str().unwrap(),
            "--issuer",
            idp.issuer(),
            "--mode",
            mode_arg,
            "--introspect-client",
            RS_CLIENT,
            "--introspect-secret",
            RS_SECRET,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (node, ready) = NodeChild::spawn("git-server.js", &args);
        let url = ready["url"]
            .as_str()
            .expect("ready line has url")
            .to_string();
        GitServer { node, url, root }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `http://127.0.0.1:PORT/repo.git`, the URL to clone.
    pub fn repo_url(&self) -> String {
        format!("{}/repo.git", self.url)
    }

    /// Path of the bare repository on disk.
    pub fn repo_path(&self) -> PathBuf {
        self.root.path().join("repo.git")
    }

    /// `git rev-parse REV` in the bare repository (e.g. to check that a push arrived).
    pub fn rev_parse(&self, rev: &str) -> String {
        git_plain(&self.repo_path(), &["rev-parse", rev])
    }

    /// `{"requests":N,"unauthorized":N,"authorized":N,"basic_users":{"USER":N}}`.
    pub fn counters(&self) -> Value {
        get_json(&format!("{}/__counters", self.url))
    }

    /// What the server wrote on stderr so far (includes http-backend's stderr).
    pub fn log(&self) -> String {
        self.node.log_text()
    }
}

// ------------------------------------------------------------------------------------------
// commands

fn prepare_home(home: &Path) {
    for d in [".config", ".local/state", ".local/share", ".cache", "run"] {
        fs::create_dir_all(home.join(d)).expect("create test home dirs");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(home.join("run"), fs::Permissions::from_mode(0o700));
    }
}

fn clean_env(cmd: &mut Command, home: &Path) {
    prepare_home(home);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", home.join(".gitconfig"))
        .env("LANG", "C")
        // The hosts the tests' hand-written requests name are tied to every account the tests
        // give on the command line; the trust-boundary tests remove this to test the rule.
        .env("GIT_CREDENTIAL_IAM_URL", TIED_URL);
}

/// The hosts tied through `GIT_CREDENTIAL_IAM_URL` in every test command's environment.
pub const TIED_URL: &str = "git.example.org git.example";

/// The helper binary with an empty environment except PATH, HOME=`home`, XDG_CONFIG_HOME /
/// XDG_STATE_HOME / XDG_DATA_HOME / XDG_CACHE_HOME / XDG_RUNTIME_DIR under `home` (created),
/// GIT_CONFIG_NOSYSTEM=1, GIT_CONFIG_GLOBAL=`home`/.gitconfig and LANG=C.
pub fn helper_cmd(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_git-credential-iam"));
    clean_env(&mut cmd, home);
    cmd
}

/// Path of the helper binary under test.
pub fn helper_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_git-credential-iam"))
}

/// `git` with the same clean environment as [`helper_cmd`] plus GIT_TERMINAL_PROMPT=0.
pub fn git_cmd(home: &Path) -> Command {
    let mut cmd = Command::new("git");
    clean_env(&mut cmd, home);
    cmd.env("GIT_TERMINAL_PROMPT", "0");
    cmd
}

/// util-linux `script` running the shell command `line` on a pseudo-terminal, with the same
/// clean environment as [`helper_cmd`]: `line` sees a terminal on stdin, stdout and stderr and
/// as `/dev/tty`; what it shows comes out on `script`'s stdout.
pub fn terminal_cmd(home: &Path, line: &str) -> Command {
    let mut cmd = Command::new("script");
    clean_env(&mut cmd, home);
    cmd.env("SHELL", "/bin/sh")
        .args(["-qec", line, "/dev/null"]);
    cmd
}

/// Spawns `cmd` with stdin, stdout and stderr piped and writes `input` to its stdin (a child
/// that exits without reading it is no failure), then closes stdin.
pub fn spawn_with_input(cmd: &mut Command, input: &str) -> Child {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child
}

/// The account cache files (`*.json`, not the discovery documents) in `cache_dir`.
pub fn account_cache_files(cache_dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(cache_dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "json")
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("discovery-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Run `cmd` with `input` on stdin and stdout/stderr captured; kill it and panic (showing what
/// it printed) when it runs longer than `timeout`.
pub fn run_with_input(mut cmd: Command, input: &str, timeout: Duration) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.as_bytes().to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let reader = |r: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_t = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err_t = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_t.join().unwrap_or_default();
            let stderr = err_t.join().unwrap_or_default();
            panic!(
                "{cmd:?} still running after {timeout:?}; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

// ------------------------------------------------------------------------------------------
// reading a child's output

/// Lines of a reader (a child's stderr, say), read on a background thread until EOF.
pub struct Lines {
    rx: Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    /// Start reading `reader` line by line (lossy UTF-8) on a thread.
    pub fn spawn<R: Read + Send + 'static>(reader: R) -> Lines {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut r = BufReader::new(reader);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\r', '\n'])
                            .to_string();
                        if tx.send(line).is_err() {
                            // receiver gone: keep draining so the child never blocks on a full pipe
                            let _ = std::io::copy(&mut r, &mut std::io::sink());
                            break;
                        }
                    }
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// The first line from now on for which `pred` holds, or `None` at EOF or after `timeout`.
    pub fn wait_for(
        &mut self,
        mut pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None;
                }
            }
        }
    }

    /// Every line until EOF (or until `timeout`, then what came so far).
    pub fn rest(&mut self, timeout: Duration) -> Vec<String> {
        let start = self.seen.len();
        self.wait_for(|_| false, timeout);
        self.seen[start..].to_vec()
    }

    /// All lines received so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }
}

/// How long a [`Stream`] waits for what a test expects.
const STREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// A child's output read raw (every byte, `\r` included) on a background thread.
pub struct Stream {
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
}

impl Stream {
    pub fn spawn(mut r: impl Read + Send + 'static) -> Stream {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = r.read(&mut chunk) {
                if tx.send(chunk[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Stream {
            rx,
            buf: Vec::new(),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    /// Reads until `pred` holds for the text so far; panics at EOF or after `T`.
    pub fn wait_until(&mut self, what: &str, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + STREAM_TIMEOUT;
        while !pred(&self.text()) {
            match self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(chunk) => self.buf.extend(chunk),
                Err(_) => panic!(
                    "no {what} within {STREAM_TIMEOUT:?} (or EOF); so far:\n{}",
                    self.text()
                ),
            }
        }
    }

    /// The user code of the `  Code:  XXXX-XXXX` line, once that line is complete.
    pub fn code(&mut self) -> String {
        self.wait_until("code line", |t| {
            t.lines().any(|l| l.contains("  Code:  ")) && t.contains("Waiting for approval")
        });
        let text = self.text();
        let line = text.lines().find(|l| l.contains("  Code:  ")).unwrap();
        find_user_code(line).unwrap_or_else(|| panic!("no user code in {line:?}"))
    }

    /// Everything until EOF.
    pub fn read_to_end(&mut self) -> String {
        let deadline = Instant::now() + STREAM_TIMEOUT;
        loop {
            match self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(chunk) => self.buf.extend(chunk),
                Err(RecvTimeoutError::Disconnected) => return self.text(),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no EOF within {STREAM_TIMEOUT:?}; so far:\n{}", self.text())
                }
            }
        }
    }
}

/// Read `reader` line by line on a thread and return the first line for which `pred` holds;
/// panics (listing the lines seen) at EOF or after `timeout`. The thread keeps draining the
/// reader afterwards, so the child never blocks on a full pipe.
pub fn wait_for_line<R: Read + Send + 'static>(
    reader: R,
    pred: impl FnMut(&str) -> bool,
    timeout: Duration,
) -> String {
    let mut lines = Lines::spawn(reader);
    match lines.wait_for(pred, timeout) {
        Some(line) => line,
        None => panic!(
            "no matching line within {timeout:?} (or EOF); lines seen:\n{}",
            lines.seen().join("\n")
        ),
    }
}

/// The token in the helper's Basic-mode answer to git (its `password=` line).
pub fn answered_password(stdout: &str) -> &str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("password="))
        .unwrap_or_else(|| panic!("no password= line in {stdout:?}"))
}

/// The first user code in `line` as oidc-provider prints it (`XXXX-XXXX`, letters of
/// `BCDFGHJKLMNPQRSTVWXZ`).
pub fn find_user_code(line: &str) -> Option<String> {
    const CHARSET: &str = "BCDFGHJKLMNPQRSTVWXZ";
    let b = line.as_bytes();
    (0..b.len().saturating_sub(8)).find_map(|i| {
        let w = &line.get(i..i + 9)?;
        let ok = w.char_indices().all(|(j, c)| {
            if j == 4 {
                c == '-'
            } else {
                CHARSET.contains(c)
            }
        });
        let bounded = |k: Option<&u8>| k.is_none_or(|c| !c.is_ascii_alphanumeric());
        (ok && bounded(i.checked_sub(1).and_then(|k| b.get(k))) && bounded(b.get(i + 9)))
            .then(|| w.to_string())
    })
}

/// A hostile git server (`tests/idp/log-server.js`): 401 with Basic and Bearer challenges to
/// every request, and a log of every `Authorization` header it was sent.
pub struct LogServer {
    _node: NodeChild,
    url: String,
}

impl LogServer {
    pub fn start() -> LogServer {
        let (node, ready) = NodeChild::spawn("log-server.js", &[]);
        let url = ready["url"]
            .as_str()
            .expect("ready line has url")
            .to_string();
        LogServer { _node: node, url }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// (requests seen, the `Authorization` headers sent, "-" for none).
    pub fn log(&self) -> (u64, Vec<String>) {
        let v = get_json(&format!("{}/__log", self.url));
        let auth = v["authorization"]
            .as_array()
            .expect("authorization list")
            .iter()
            .map(|a| a.as_str().unwrap_or_default().to_string())
            .collect();
        (v["requests"].as_u64().unwrap_or_default(), auth)
    }
}

// ------------------------------------------------------------------------------------------
// root-only tests

/// Whether the tests run as root (effective uid 0), read from `/proc/self/status` (no libc).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Says on the real stderr (not captured by the test harness) that part of a test was skipped.
pub fn skipped(what: &str) {
    let _ = writeln!(std::io::stderr(), "skipped: needs root: {what}");
}

// ------------------------------------------------------------------------------------------
// a scripted registration endpoint

/// A minimal provider on 127.0.0.1 for `register` tests that need a registration response the
/// real provider never gives: it serves a discovery document (issuer `http://127.0.0.1:PORT`,
/// with a `registration_endpoint`) and answers every `POST /reg` with 201 and `reply`. It runs
/// until the test process ends.
pub struct RegistrationStub {
    issuer: String,
    registrations: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl RegistrationStub {
    /// Starts the stub.
    pub fn start(reply: Value) -> RegistrationStub {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let registrations = Arc::new(AtomicUsize::new(0));
        let (iss, count) = (issuer.clone(), registrations.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(HTTP_TIMEOUT));
                let Some((line, _body)) = read_http_request(&stream) else {
                    continue;
                };
                let (status, body) = if line.starts_with("GET /.well-known/openid-configuration ") {
                    let d = serde_json::json!({
                        "issuer": iss,
                        "token_endpoint": format!("{iss}/token"),
                        "registration_endpoint": format!("{iss}/reg"),
                    });
                    ("200 OK", d.to_string())
                } else if line.starts_with("POST /reg ") {
                    count.fetch_add(1, Ordering::SeqCst);
                    ("201 Created", reply.to_string())
                } else {
                    ("404 Not Found", "{}".to_string())
                };
                let mut s = stream;
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        RegistrationStub {
            issuer,
            registrations,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `127.0.0.1:PORT`, the host the helper names in its messages.
    pub fn host(&self) -> &str {
        self.issuer.trim_start_matches("http://")
    }

    /// How many registration requests arrived.
    pub fn registrations(&self) -> usize {
        self.registrations.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Reads one HTTP/1.1 request (head, then a `Content-Length` body): its request line and body.
fn read_http_request(stream: &std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    r.read_exact(&mut body).ok()?;
    Some((line.trim_end().to_string(), body))
}

/// Whether the tests run as root, for a test that needs root (to give a file to another user).
/// When not, it prints `TEST: skipped: needs root` straight to stderr, past the test harness's
/// output capture, so that the skip shows in `cargo test`'s output; the test then returns.
#[cfg(unix)]
pub fn needs_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let _ = writeln!(std::io::stderr(), "{test}: skipped: needs root");
    false
}

// ------------------------------------------------------------------------------------------
// a private CA, https requests to a provider it signs, and Apache httpd from contrib/server

/// A throwaway CA (`ca.pem`) and a server certificate for 127.0.0.1 and `localhost` signed by
/// it (`srv.pem`, key `srv.key`), made with the `openssl` command in a directory of the caller's.
pub struct TestCa {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl_in(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes a [`TestCa`] in `dir` (valid two days, EC P-256).
pub fn make_test_ca(dir: &Path) -> TestCa {
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    let args = |s: String| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    let run = |v: Vec<String>, extra: &[&str]| {
        let mut all: Vec<&str> = v.iter().map(String::as_str).collect();
        all.extend(extra);
        openssl_in(dir, &all);
    };
    run(
        args(format!(
            "req -x509 {ec} -keyout ca.key -out ca.pem -subj /CN=test-ca -days 2"
        )),
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    run(
        args(format!(
            "req {ec} -keyout srv.key -out srv.csr -subj /CN=127.0.0.1"
        )),
        &[],
    );
    fs::write(
        dir.join("srv.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("write srv.ext");
    run(
        args(
            "x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 \
             -extfile srv.ext"
                .to_string(),
        ),
        &[],
    );
    TestCa {
        ca: dir.join("ca.pem"),
        cert: dir.join("srv.pem"),
        key: dir.join("srv.key"),
    }
}

/// An agent for an https server whose certificate `ca` (PEM) signs; like the module's plain
/// agent otherwise.
fn agent_trusting(ca: &Path) -> ureq::Agent {
    use ureq::tls::{PemItem, RootCerts, TlsConfig};
    let pem = fs::read(ca).unwrap_or_else(|e| panic!("read {}: {e}", ca.display()));
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|i| match i {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    assert!(!certs.is_empty(), "no certificate in {}", ca.display());
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(HTTP_TIMEOUT))
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(&certs))
                .build(),
        )
        .build()
        .new_agent()
}

/// [`post_form`] to an https URL whose certificate `ca` signs.
pub fn post_form_trusting(
    ca: &Path,
    url: &str,
    authorization: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = agent_trusting(ca).post(url);
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    let mut res = req
        .send_form(form.iter().copied())
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = res.status().as_u16();
    let text = res
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    json_of(url, status, text)
}

/// [`get_json`] from an https URL whose certificate `ca` signs.
pub fn get_json_trusting(ca: &Path, url: &str) -> Value {
    let mut res = agent_trusting(ca)
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = res.status().as_u16();
    let text = res
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(status, 200, "GET {url} answered {status}: {text}");
    json_of(url, status, text).1
}

/// Where Apache httpd and mod_auth_openidc are installed.
pub struct ApacheInstall {
    /// `apache2` (Debian) or `httpd`.
    pub binary: PathBuf,
    /// The directory holding `mod_auth_openidc.so` and the standard modules.
    pub modules: PathBuf,
}

/// Finds Apache httpd and mod_auth_openidc (Debian's `apache2` and
/// `libapache2-mod-auth-openidc`, or a layout with `httpd`). When either is missing it prints
/// `TEST: skipped: needs apache2 and libapache2-mod-auth-openidc` straight to stderr, past the
/// harness's capture, and returns `None`: `.ci/run` installs both, so CI never skips.
pub fn needs_apache(test: &str) -> Option<ApacheInstall> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    let binary = dirs
        .flat_map(|d| [d.join("apache2"), d.join("httpd")])
        .find(|p| p.is_file());
    let modules = [
        "/usr/lib/apache2/modules",
        "/usr/lib64/httpd/modules",
        "/usr/lib/httpd/modules",
    ]
    .map(PathBuf::from)
    .into_iter()
    .find(|d| d.join("mod_auth_openidc.so").is_file());
    match (binary, modules) {
        (Some(binary), Some(modules)) => Some(ApacheInstall { binary, modules }),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "{test}: skipped: needs apache2 and libapache2-mod-auth-openidc \
                 (apt-get install apache2 libapache2-mod-auth-openidc; .ci/run does)"
            );
            None
        }
    }
}

/// What [`Apache::start`] puts into `contrib/server/git-iam.conf`'s placeholders.
pub struct ApacheSite<'a> {
    pub introspection_endpoint: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    /// CA bundle (PEM) for the provider's certificate; copied next to the config.
    pub ca_bundle: &'a Path,
    pub audience: &'a str,
}

/// One request in Apache's `git_iam` access log (contrib/server/git-iam.conf's LogFormat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLine {
    /// `%u`: REMOTE_USER, `-` when none.
    pub user: String,
    /// `%r`: `GET /git/repo.git/info/refs?service=git-upload-pack HTTP/1.1`.
    pub request: String,
    pub status: u16,
    /// The `Authorization` scheme that came in (`Bearer`, `Basic`), `-` when none.
    pub scheme: String,
}

/// Apache httpd running `contrib/server/httpd.conf` + `git-iam.conf` (rendered with the same
/// `@PLACEHOLDER@` substitution a site does) on 127.0.0.1 in the foreground, with its own
/// ServerRoot, pid file and logs in a temp dir, in front of `repos/repo.git` (one commit on
/// `main`, like [`GitServer`]'s). As root it serves as `www-data` (or `nobody`), which then owns
/// the repositories. It runs under a `sh` that stops it (SIGTERM) when its stdin closes: on drop,
/// or when the test process dies.
pub struct Apache {
    watchdog: Child,
    stdin: Option<ChildStdin>,
    root: tempfile::TempDir,
    port: u16,
}

/// The path under which [`Apache`] serves the repositories.
pub const APACHE_URL_PATH: &str = "/git";

/// (uid, gid) of the first of `names` in /etc/passwd.
fn passwd_ids(names: &[&str]) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    names.iter().find_map(|name| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == *name)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    })
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    if path.is_dir() && !path.is_symlink() {
        for e in fs::read_dir(path).expect("read_dir") {
            chown_tree(&e.expect("dir entry").path(), uid, gid);
        }
    }
}

impl Apache {
    /// Renders the configuration, checks it (`-t`) and starts Apache; returns once its port
    /// answers (bounded), panicking with its error log otherwise.
    pub fn start(install: &ApacheInstall, site: &ApacheSite) -> Apache {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let root = tempfile::Builder::new()
            .prefix("gci-apache-")
            .tempdir()
            .expect("tempdir");
        let dir = root.path();
        let repos = dir.join("repos");
        fs::create_dir(&repos).expect("mkdir repos");
        let bare = repos.join("repo.git");
        seed_bare_repo(&bare, "hello from Apache\n");
        let ca_bundle = dir.join("provider-ca.pem");
        fs::copy(site.ca_bundle, &ca_bundle).expect("copy the CA bundle");

        // As root Apache serves as another user, who must reach the CA bundle (read at each
        // introspection) and own the repositories (a push writes them).
        // SAFETY: geteuid/getegid have no preconditions and cannot fail.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let (uid, gid) = if euid == 0 {
            let ids = passwd_ids(&["www-data", "nobody"])
                .expect("running as root, Apache needs a user www-data or nobody");
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod");
            fs::set_permissions(&ca_bundle, fs::Permissions::from_mode(0o644)).expect("chmod");
            chown_tree(&repos, ids.0, ids.1);
            ids
        } else {
            (euid, egid)
        };

        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
            l.local_addr().unwrap().port()
        };
        let exec_path = git_plain(dir, &["--exec-path"]);
        let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/server");
        let vars: Vec<(&str, String)> = vec![
            ("SERVER_ROOT", dir.display().to_string()),
            ("LISTEN", format!("127.0.0.1:{port}")),
            ("USER", format!("#{uid}")),
            ("GROUP", format!("#{gid}")),
            ("MODULES", install.modules.display().to_string()),
            ("INTROSPECTION_ENDPOINT", site.introspection_endpoint.into()),
            ("CLIENT_ID", site.client_id.into()),
            ("CLIENT_SECRET", site.client_secret.into()),
            ("CA_BUNDLE", ca_bundle.display().to_string()),
            ("AUDIENCE", site.audience.into()),
            (
                "GIT_HTTP_BACKEND",
                Path::new(&exec_path)
                    .join("git-http-backend")
                    .display()
                    .to_string(),
            ),
            ("REPO_ROOT", repos.display().to_string()),
            ("URL_PATH", APACHE_URL_PATH.into()),
        ];
        for name in ["httpd.conf", "git-iam.conf"] {
            let template = fs::read_to_string(contrib.join(name))
                .unwrap_or_else(|e| panic!("read contrib/server/{name}: {e}"));
            let text = render_template(&template, &vars);
            fs::write(dir.join(name), text).expect("write the rendered config");
        }
        let conf = dir.join("httpd.conf");

        let check = Command::new(&install.binary)
            .arg("-t")
            .arg("-f")
            .arg(&conf)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", install.binary.display()));
        assert!(
            check.status.success(),
            "apache -t refuses the rendered contrib/server config:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );

        let out = File::create(dir.join("apache.out")).expect("create apache.out");
        let mut watchdog = Command::new("sh")
            .args([
                "-c",
                "\"$0\" -f \"$1\" -D FOREGROUND & pid=$!; cat >/dev/null; kill -TERM $pid; wait $pid",
            ])
            .arg(&install.binary)
            .arg(&conf)
            .stdin(Stdio::piped())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("cannot run sh");
        let stdin = watchdog.stdin.take();
        let mut me = Apache {
            watchdog,
            stdin,
            root,
            port,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            || !me.root.path().join("httpd.pid").exists()
        {
            assert!(
                Instant::now() < deadline && me.watchdog.try_wait().ok().flatten().is_none(),
                "Apache did not come up on port {port}; its logs:\n{}",
                me.logs()
            );
            thread::sleep(Duration::from_millis(20));
        }
        me
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT/git/repo.git`.
    pub fn repo_url(&self) -> String {
        format!("{}{APACHE_URL_PATH}/repo.git", self.url())
    }

    /// `git rev-parse REV` in the served bare repository (owned by Apache's user as root).
    pub fn rev_parse(&self, rev: &str) -> String {
        let repo = self.root.path().join("repos/repo.git");
        git_plain(&repo, &["-c", "safe.directory=*", "rev-parse", rev])
    }

    /// Every request in the access log so far.
    pub fn access_log(&self) -> Vec<AccessLine> {
        let text =
            fs::read_to_string(self.root.path().join("git-iam-access.log")).unwrap_or_default();
        text.lines()
            .map(|l| parse_access_line(l).unwrap_or_else(|| panic!("odd access line {l:?}")))
            .collect()
    }

    /// The error log and what Apache printed.
    pub fn logs(&self) -> String {
        let read = |n: &str| fs::read_to_string(self.root.path().join(n)).unwrap_or_default();
        format!(
            "-- error.log --\n{}\n-- stdout/stderr --\n{}",
            read("error.log"),
            read("apache.out")
        )
    }
}

/// `LogFormat "%h %u %t \"%r\" %>s %b auth=%{GIT_IAM_AUTH_SCHEME}e"`.
fn parse_access_line(line: &str) -> Option<AccessLine> {
    let mut words = line.splitn(3, ' ');
    let _host = words.next()?;
    let user = words.next()?.to_string();
    let rest = words.next()?;
    let (_, rest) = rest.split_once("] \"")?;
    let (request, rest) = rest.rsplit_once("\" ")?;
    let f: Vec<&str> = rest.split(' ').collect();
    Some(AccessLine {
        user,
        request: request.to_string(),
        status: f.first()?.parse().ok()?,
        scheme: f.get(2)?.strip_prefix("auth=")?.to_string(),
    })
}

/// Replaces every `@NAME@` of `vars` in `template`; panics when a placeholder is left over
/// outside comments (a template and its renderer out of step).
pub fn render_template(template: &str, vars: &[(&str, String)]) -> String {
    let mut text = template.to_string();
    for (k, v) in vars {
        text = text.replace(&format!("@{k}@"), v);
    }
    for l in text.lines() {
        let l = l.trim_start();
        assert!(
            l.starts_with('#') || !l.contains('@'),
            "placeholder left in {l:?}"
        );
    }
    text
}

impl Drop for Apache {
    fn drop(&mut self) {
        drop(self.stdin.take()); // the watchdog stops Apache and waits for it
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.watchdog.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill has no memory preconditions; the group is the watchdog's own.
        unsafe { libc::kill(-(self.watchdog.id() as i32), libc::SIGKILL) };
        let _ = self.watchdog.wait();
        if thread::panicking() {
            eprintln!("---- Apache ----\n{}", self.logs());
        }
    }
}

// ------------------------------------------------------------------------------------------
// a second provider: glewlwyd (tests/support/glewlwyd.rs)

pub mod glewlwyd;

// ------------------------------------------------------------------------------------------
// two machines on one shared directory (bindfs, unshare)

/// Whether the two-machine tests can run: root (for `unshare -u` and mounting), `bindfs`,
/// `fusermount` and `unshare` on PATH, and `/dev/fuse`. When not, it prints `TEST: skipped:
/// needs …` straight to stderr (past the harness's capture) so that the skip shows; the test
/// then returns.
#[cfg(unix)]
pub fn needs_bindfs(test: &str) -> bool {
    if !needs_root(test) {
        return false;
    }
    let on_path = |p: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
    };
    let missing: Vec<&str> = ["bindfs", "fusermount", "unshare", "hostname"]
        .into_iter()
        .filter(|p| !on_path(p))
        .chain((!Path::new("/dev/fuse").exists()).then_some("/dev/fuse"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped: needs {} (Debian: apt-get install bindfs)",
        missing.join(", ")
    );
    false
}

/// Runs `cmd` to its end within `timeout`; `false` when it fails or is killed at the deadline.
fn run_bounded(cmd: &mut Command, timeout: Duration) -> bool {
    let Ok(mut child) = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// Whether `dir` is a mount point, from `/proc/self/mountinfo` (field 5; spaces as `\040`).
pub fn is_mount_point(dir: &Path) -> bool {
    let want = dir.to_string_lossy().replace(' ', "\\040");
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// One directory mounted twice with `bindfs` (a FUSE file system): as on NFS with
/// `local_lock`, a `flock` through one mount does not exclude one through the other, while an
/// exclusive create is atomic across both. Both are unmounted on drop (bounded).
pub struct TwoMounts {
    /// The directory itself (on the local file system).
    pub under: PathBuf,
    /// Its first and second mount.
    pub a: PathBuf,
    pub b: PathBuf,
    _root: tempfile::TempDir,
}

impl TwoMounts {
    /// Mounts `<tmp>/under` on `<tmp>/a` and `<tmp>/b`; panics when a mount does not appear
    /// within 10 s.
    pub fn new() -> TwoMounts {
        let root = tempfile::tempdir().expect("temp dir");
        let [under, a, b] = ["under", "a", "b"].map(|n| root.path().join(n));
        for d in [&under, &a, &b] {
            fs::create_dir(d).expect("create mount dirs");
        }
        let mounts = TwoMounts {
            under: under.clone(),
            a: a.clone(),
            b: b.clone(),
            _root: root,
        };
        for m in [&a, &b] {
            assert!(
                run_bounded(
                    Command::new("bindfs").arg(&under).arg(m),
                    Duration::from_secs(10)
                ),
                "bindfs {} {} failed",
                under.display(),
                m.display()
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while !is_mount_point(m) {
                assert!(
                    Instant::now() < deadline,
                    "{} never got mounted",
                    m.display()
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
        mounts
    }
}

impl Drop for TwoMounts {
    fn drop(&mut self) {
        for m in [&self.a, &self.b] {
            if is_mount_point(m)
                && !run_bounded(
                    Command::new("fusermount").arg("-u").arg(m),
                    Duration::from_secs(10),
                )
            {
                // Busy (a child still in it): detach it now, the kernel finishes later.
                let _ = run_bounded(
                    Command::new("umount").arg("-l").arg(m),
                    Duration::from_secs(10),
                );
            }
        }
    }
}

/// `cmd` run as if on the machine `host`: in a new UTS namespace (`unshare -u`, root only)
/// whose host name is `host`, with `cmd`'s program, arguments and environment (which must be
/// cleared, as [`helper_cmd`]'s is).
pub fn on_host(cmd: &Command, host: &str) -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "-u",
        "sh",
        "-c",
        "hostname \"$1\" && shift && exec \"$@\"",
        "sh",
    ])
    .arg(host)
    .arg(cmd.get_program())
    .args(cmd.get_args())
    .env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    c
}

// ------------------------------------------------------------------------------------------
// setup (tests/setup_e2e.rs)

/// [`helper_cmd`] without `GIT_CREDENTIAL_IAM_URL`: only what `setup` writes ties a URL.
pub fn setup_cmd(home: &Path, args: &[&str]) -> Command {
    let mut cmd = helper_cmd(home);
    cmd.env_remove("GIT_CREDENTIAL_IAM_URL")
        .arg("setup")
        .args(args);
    cmd
}

/// Runs `cmd` (stdin closed), approves the device code it prints on stderr at `idp` when it
/// prints one, and returns its output once it exits; panics after `timeout`.
pub fn run_approving(mut cmd: Command, idp: &Idp, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let mut lines = Lines::spawn(child.stderr.take().unwrap());
    if let Some(line) = lines.wait_for(|l| l.contains("  Code:  "), timeout) {
        idp.approve(&find_user_code(&line).expect("a user code"));
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {timeout:?}: {:?}",
                lines.seen()
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    lines.rest(timeout);
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: lines.seen().join("\n").into_bytes(),
    }
}

// ------------------------------------------------------------------------------------------
// packaging (tests/packaging.rs): another build of the helper, a CA for `localhost`, skips

/// `bin` (another build of the helper, e.g. the static-PIE release binary) with the same clean
/// environment as [`helper_cmd`].
pub fn cmd_for(bin: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(bin);
    clean_env(&mut cmd, home);
    cmd
}

/// Whether `probe` (a command that only reports, like `cargo deb --version`) runs and exits 0.
/// When it does not, prints `TEST: skipped: needs WHAT (HOW)` straight to stderr, past the
/// harness's capture, and returns false: `.ci/run` installs every such tool, so CI never skips.
pub fn needs_tool(test: &str, probe: &mut Command, what: &str, how: &str) -> bool {
    let ok = probe
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let _ = writeln!(std::io::stderr(), "{test}: skipped: needs {what} ({how})");
    }
    ok
}
