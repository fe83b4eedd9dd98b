//! Provider faults a real provider will not produce on demand, from a hand-written fake server
//! on loopback: 500, 503 with Retry-After, garbage JSON, an HTML error page, a token response
//! missing fields, a hang past the timeout, a connection refused, a discovery document naming
//! another issuer, IAM's secret-quoting `invalid_token`, and `slow_down` during the device flow.
//! Each must give a clear one-line error within the timeout and leave the cache untouched.

use crate::support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::iam::cache::account_key;
use crate::support::{Reply, Scripted, Seen};

/// The fake of most tests here: the scripted provider serving discovery (naming
/// `issuer_override` or itself), `/device`, and at the token endpoint `token_replies` in order
/// (the last one repeats).
struct Fake;

impl Fake {
    fn start(token_replies: Vec<Reply>, issuer_override: Option<&str>) -> Scripted {
        let issuer = issuer_override.map(str::to_string);
        let next = Mutex::new(0usize);
        Scripted::start_with(move |base, req| match req.path.as_str() {
            "/.well-known/openid-configuration" => Reply::Http(
                200,
                "",
                discovery_doc(issuer.as_deref().unwrap_or(base), base),
            ),
            "/device" => Reply::Http(
                200,
                "",
                format!(
                    r#"{{"device_code":"DEVCODE-SECRET","user_code":"ABCD-EFGH","verification_uri":"{base}/verify","expires_in":60,"interval":1}}"#
                ),
            ),
            _ => {
                let mut n = next.lock().unwrap();
                let r = token_replies[(*n).min(token_replies.len() - 1)].clone();
                *n += 1;
                r
            }
        })
    }
}

const RT: &str = "REFRESH-TOKEN-SECRET-1234";

/// A temp HOME with a cache holding an expired access token and a refresh token.
fn seeded(issuer: &str) -> (tempfile::TempDir, PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let key = account_key(issuer, "cli", "openid offline_access", None);
    let file = cache.join(format!("{key}.json"));
    std::fs::write(
        &file,
        format!(
            r#"{{"version":1,"issuer":"{issuer}","client_id":"cli","scope":"openid offline_access","access_token":"OLD-ACCESS-SECRET","expires_at":1000,"refresh_token":"{RT}","updated_at":1}}"#
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    (home, file)
}

/// Bound on one helper run here (its own `--timeout` is 2 s).
const RUN: Duration = Duration::from_secs(30);

fn helper(home: &Path, issuer: &str, extra: &[&str], action: &str) -> Output {
    helper_with(home, issuer, extra, action, &[])
}

/// [`helper`] with `env` added to the harness's clean environment.
fn helper_with(
    home: &Path,
    issuer: &str,
    extra: &[&str],
    action: &str,
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = support::helper_cmd(home);
    cmd.args(["--issuer", issuer, "--client-id", "cli", "--timeout", "2"])
        .args(["--url", "https://git.example/"])
        .arg("--cache-dir")
        .arg(home.join("cache"))
        .args(extra)
        .arg(action)
        .envs(env.iter().copied());
    support::run_with_input(cmd, "protocol=https\nhost=git.example\n\n", RUN)
}

/// Runs a refresh against `replies` and checks the common promises; returns stderr.
fn refresh_fails(replies: Vec<Reply>) -> String {
    let fake = Fake::start(replies, None);
    let (home, file) = seeded(&fake.url);
    let before = std::fs::read(&file).unwrap();
    let start = Instant::now();
    let out = helper(home.path(), &fake.url, &["--non-interactive"], "get");
    let took = start.elapsed();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(took < Duration::from_secs(8), "took {took:?}: {stderr}");
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(
        !stderr.contains(RT) && !stderr.contains("OLD-ACCESS-SECRET"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before, "cache untouched");
    assert!(fake.paths().contains(&"/token".to_string()));
    stderr
}

#[test]
fn server_error_500() {
    let e = refresh_fails(vec![Reply::Http(500, "", "oops".into())]);
    assert!(e.contains("HTTP 500") && e.contains("127.0.0.1"), "{e}");
}

#[test]
fn unavailable_503_with_retry_after() {
    let e = refresh_fails(vec![Reply::Http(503, "Retry-After: 120\r\n", "".into())]);
    assert!(e.contains("HTTP 503"), "{e}");
}

#[test]
fn garbage_json() {
    let e = refresh_fails(vec![Reply::Http(
        200,
        "",
        "{\"access_token\": [garbage".into(),
    )]);
    assert!(e.contains("not usable"), "{e}");
}

#[test]
fn html_error_page() {
    let e = refresh_fails(vec![Reply::Http(
        502,
        "",
        "<html><body>Bad Gateway</body></html>".into(),
    )]);
    assert!(e.contains("HTML page"), "{e}");
}

#[test]
fn token_response_missing_fields() {
    let e = refresh_fails(vec![Reply::Http(
        200,
        "",
        r#"{"token_type":"Bearer","expires_in":3600}"#.into(),
    )]);
    assert!(e.contains("access_token"), "{e}");
}

#[test]
fn hang_past_the_timeout() {
    let e = refresh_fails(vec![Reply::Hang]);
    assert!(e.contains("no answer within 2 s"), "{e}");
}

#[test]
fn iam_invalid_token_quoting_the_secret_is_redacted_and_ends_the_login() {
    let body = format!(
        r#"{{"error":"invalid_token","error_description":"Refresh token for value {RT} was not found"}}"#
    );
    let fake = Fake::start(vec![Reply::Http(401, "", body)], None);
    let (home, file) = seeded(&fake.url);
    let out = helper(home.path(), &fake.url, &["--non-interactive"], "get");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "login needed: {stderr}");
    assert!(!stderr.contains(RT), "{stderr}");
    assert!(
        stderr.contains("[redacted]") && stderr.contains("git-credential-iam login"),
        "{stderr}"
    );
    let cached = std::fs::read_to_string(&file).unwrap();
    assert!(!cached.contains(RT), "the dead refresh token is dropped");
}

#[test]
fn connection_refused() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let (home, file) = seeded(&issuer);
    let before = std::fs::read(&file).unwrap();
    let out = helper(home.path(), &issuer, &["--non-interactive"], "get");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("connection refused"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1);
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

#[test]
fn issuer_mismatch_is_refused() {
    let fake = Fake::start(
        vec![Reply::Http(500, "", "".into())],
        Some("https://evil.example/"),
    );
    let (home, file) = seeded(&fake.url);
    let before = std::fs::read(&file).unwrap();
    let out = helper(home.path(), &fake.url, &["--non-interactive"], "get");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("evil.example") && stderr.contains("refusing"),
        "{stderr}"
    );
    assert!(
        !fake.paths().contains(&"/token".to_string()),
        "no token request to a mismatched issuer"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

#[test]
fn plain_http_issuer_refused_off_loopback() {
    let home = tempfile::tempdir().unwrap();
    let out = helper(
        home.path(),
        "http://iam.example.org/",
        &["--interactive"],
        "login",
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("https://"), "{stderr}");
}

#[test]
fn device_flow_slow_down_adds_five_seconds_for_good() {
    let ok = r#"{"access_token":"NEW-ACCESS","token_type":"Bearer","expires_in":3600}"#;
    let fake = Fake::start(
        vec![
            Reply::Http(400, "", r#"{"error":"slow_down"}"#.into()),
            Reply::Http(400, "", r#"{"error":"authorization_pending"}"#.into()),
            Reply::Http(200, "", ok.into()),
        ],
        None,
    );
    let home = tempfile::tempdir().unwrap();
    let out = helper(home.path(), &fake.url, &["--interactive"], "get");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("password=NEW-ACCESS")
    );
    assert!(!stderr.contains("DEVCODE-SECRET"), "{stderr}");
    // Not a terminal: one plain line per change of the provider's answer, no control characters.
    assert_eq!(
        status_lines(&stderr),
        [
            "provider asked to slow down, polling every 6 s",
            "waiting for approval"
        ],
        "{stderr}"
    );
    let polls: Vec<Instant> = fake
        .seen()
        .iter()
        .filter(|s| s.path == "/token")
        .map(|s| s.at)
        .collect();
    assert_eq!(polls.len(), 3);
    // interval 1 s; after slow_down every later poll waits 6 s.
    assert!(
        polls[1] - polls[0] >= Duration::from_millis(5900),
        "{:?}",
        polls[1] - polls[0]
    );
    assert!(
        polls[2] - polls[1] >= Duration::from_millis(5900),
        "{:?}",
        polls[2] - polls[1]
    );
    let bodies: Vec<String> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path == "/token")
        .map(|s| s.body)
        .collect();
    assert!(
        bodies[0].contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"),
        "{}",
        bodies[0]
    );
}

/// The status lines of a device flow's stderr (between the instructions and the final line),
/// checking that it holds no control character but newlines.
fn status_lines(stderr: &str) -> Vec<&str> {
    assert!(
        !stderr.chars().any(|c| c.is_control() && c != '\n'),
        "control characters on a pipe: {stderr:?}"
    );
    stderr
        .lines()
        .skip_while(|l| !l.starts_with("  Waiting for approval"))
        .skip(1)
        .filter_map(|l| l.strip_prefix("git-credential-iam: "))
        .filter(|l| !l.starts_with("signed in to"))
        .collect()
}

#[test]
fn device_flow_network_problem_is_one_line_then_polling_goes_on() {
    let ok = r#"{"access_token":"NEW-ACCESS","token_type":"Bearer","expires_in":3600}"#;
    let pending = || Reply::Http(400, "", r#"{"error":"authorization_pending"}"#.into());
    let fake = Fake::start(
        vec![
            pending(),
            pending(),
            Reply::Hang,
            pending(),
            pending(),
            Reply::Http(200, "", ok.into()),
        ],
        None,
    );
    let home = tempfile::tempdir().unwrap();
    let out = helper(
        home.path(),
        &fake.url,
        &["--interactive", "--timeout", "1"],
        "get",
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count(),
        3,
        "protocol lines only"
    );
    assert_eq!(
        status_lines(&stderr),
        ["network problem, retrying", "waiting for approval"],
        "a line per change, not per poll: {stderr}"
    );
    assert!(
        stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("git-credential-iam: signed in to 127.0.0.1:"),
        "{stderr}"
    );
    assert!(!stderr.contains("NEW-ACCESS") && !stderr.contains("DEVCODE-SECRET"));
}

#[test]
fn device_flow_denied_leaves_cache_untouched() {
    let fake = Fake::start(
        vec![Reply::Http(400, "", r#"{"error":"access_denied"}"#.into())],
        None,
    );
    let (home, file) = seeded(&fake.url);
    // Make the refresh fail as a dead login first, so the flow starts.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace(&format!(",\"refresh_token\":\"{RT}\""), ""),
    )
    .unwrap();
    let before = std::fs::read(&file).unwrap();
    let out = helper(home.path(), &fake.url, &["--interactive"], "get");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("denied"), "{stderr}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

#[test]
fn token_never_sent_to_a_plain_http_git_server_off_loopback() {
    let fake = Fake::start(vec![Reply::Http(500, "", "".into())], None);
    let (home, _file) = seeded(&fake.url);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_git-credential-iam"));
    cmd.env_clear()
        .env("HOME", home.path())
        .args([
            "--issuer",
            &fake.url,
            "--client-id",
            "cli",
            "--non-interactive",
            "--url",
            "git.example.org",
            "get",
        ])
        .arg("--cache-dir")
        .arg(home.path().join("cache"));
    let out = support::spawn_with_input(&mut cmd, "protocol=http\nhost=git.example.org\n\n")
        .wait_with_output()
        .unwrap();
    // No answer, so git goes on to its next helper; one line says why.
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain http"));
    assert!(fake.paths().is_empty(), "not even a provider request");
}

// ------------------------------------------------------------------------------------------
// A hostile provider: a scripted fake that answers each request as the test says.

/// A discovery document for the fake at `base` naming `issuer` and endpoints under `endpoints`.
fn discovery_doc(issuer: &str, endpoints: &str) -> String {
    format!(
        r#"{{"issuer":"{issuer}","token_endpoint":"{endpoints}/token","device_authorization_endpoint":"{endpoints}/device","revocation_endpoint":"{endpoints}/revoke"}}"#
    )
}

/// The usual discovery answer of a scripted fake, or `None` for other paths.
fn discovery(base: &str, req: &Seen) -> Option<(u16, String)> {
    (req.path == "/.well-known/openid-configuration").then(|| (200, discovery_doc(base, base)))
}

/// A cache for `issuer` (client `cli`, default scope) holding `fields` (JSON members).
fn seed_cache(issuer: &str, fields: &str) -> (tempfile::TempDir, PathBuf) {
    let (home, file) = seeded(issuer);
    std::fs::write(
        &file,
        format!(
            r#"{{"version":1,"issuer":"{issuer}","client_id":"cli","scope":"openid offline_access",{fields},"updated_at":1}}"#
        ),
    )
    .unwrap();
    (home, file)
}

/// Runs the helper with `stdin` (none: an empty one), returning the output.
fn run(home: &Path, issuer: &str, extra: &[&str], action: &str, stdin: &str) -> Output {
    let mut cmd = support::helper_cmd(home);
    cmd.args(["--issuer", issuer, "--client-id", "cli", "--timeout", "2"])
        .arg("--cache-dir")
        .arg(home.join("cache"))
        .args(extra)
        .arg(action);
    support::run_with_input(cmd, stdin, RUN)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn token_response_with_header_injection_is_refused_and_not_cached() {
    for body in [
        r#"{"access_token":"NEW\r\nX-Injected: yes","token_type":"Bearer","expires_in":3600}"#,
        r#"{"access_token":"NEW ACCESS","token_type":"Bearer","expires_in":3600}"#,
        r#"{"access_token":"NEW","refresh_token":"RT\nX","token_type":"Bearer","expires_in":3600}"#,
    ] {
        let fake = Scripted::start(move |base, req| {
            discovery(base, req).unwrap_or_else(|| (200, body.to_string()))
        });
        let (home, file) = seeded(&fake.url);
        let before = std::fs::read(&file).unwrap();
        let out = run(
            home.path(),
            &fake.url,
            &["--non-interactive", "--format", "header"],
            "token",
            "",
        );
        let stderr = text(&out.stderr);
        no_panic(&stderr);
        assert_eq!(out.status.code(), Some(4), "{body}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{body}: printed {:?}",
            text(&out.stdout)
        );
        let host = fake.url.trim_start_matches("http://");
        assert!(
            stderr.contains(&format!("{host}: the provider sent"))
                && stderr.contains("refusing it"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("Injected") && !stderr.contains(RT),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert_eq!(std::fs::read(&file).unwrap(), before, "cache untouched");
        let seen = fake.seen();
        assert!(
            seen.iter()
                .any(|s| s.path == "/token" && s.body.contains("grant_type=refresh_token")),
            "a refresh was tried"
        );
    }
}

#[test]
fn device_flow_token_with_header_injection_is_refused() {
    let fake = Scripted::start(|base, req| {
        discovery(base, req).unwrap_or_else(|| match req.path.as_str() {
            "/device" => (
                200,
                format!(
                    r#"{{"device_code":"DEVCODE-SECRET","user_code":"ABCD","verification_uri":"{base}/verify","expires_in":60,"interval":1}}"#
                ),
            ),
            _ => (
                200,
                r#"{"access_token":"A\u0000B","token_type":"Bearer","expires_in":60}"#.into(),
            ),
        })
    });
    let home = tempfile::tempdir().unwrap();
    let out = run(home.path(), &fake.url, &["--interactive"], "login", "");
    let stderr = text(&out.stderr);
    no_panic(&stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("not a valid bearer token; refusing it"),
        "{stderr}"
    );
    assert!(
        support::account_cache_files(&home.path().join("cache")).is_empty(),
        "nothing cached"
    );
}

#[test]
fn import_refuses_a_token_that_is_not_a_bearer_token() {
    let fake = Scripted::start(|base, req| {
        discovery(base, req).unwrap_or_else(|| {
            (
                200,
                r#"{"access_token":"FRESH","token_type":"Bearer","expires_in":60}"#.into(),
            )
        })
    });
    let home = tempfile::tempdir().unwrap();
    // No whitespace in these, so only the character check can refuse them.
    for (extra, stdin) in [
        (
            &["--access-token", "--expires-at", "4102444800"][..],
            "tok\u{1b}]0;pwned\u{7}",
        ),
        (&["--access-token", "--expires-at", "4102444800"][..], "a,b"),
        (&[][..], "rt\u{7f}x"),
        (&[][..], "rt\u{0}x"),
    ] {
        let out = run(home.path(), &fake.url, extra, "import", stdin);
        let stderr = text(&out.stderr);
        no_panic(&stderr);
        assert_eq!(out.status.code(), Some(2), "{stdin:?}: {stderr}");
        assert!(
            stderr.contains("the token on stdin is not a valid"),
            "{stderr}"
        );
        assert!(!stderr.contains("pwned"), "{stderr}");
    }
    assert!(
        support::account_cache_files(&home.path().join("cache")).is_empty(),
        "nothing cached"
    );
    assert!(
        fake.paths().is_empty(),
        "no provider request: {:?}",
        fake.paths()
    );
}

#[test]
fn cached_access_token_that_is_not_a_bearer_token_is_never_printed() {
    let fake = Scripted::start(|base, req| {
        discovery(base, req).unwrap_or_else(|| {
            (
                200,
                r#"{"access_token":"FRESH-ACCESS","token_type":"Bearer","expires_in":3600}"#.into(),
            )
        })
    });
    let (home, file) = seed_cache(
        &fake.url,
        &format!(
            r#""access_token":"OLD\r\nX-Injected: 1","expires_at":4102444800,"refresh_token":"{RT}""#
        ),
    );
    let out = run(
        home.path(),
        &fake.url,
        &["--non-interactive", "--format", "header"],
        "token",
        "",
    );
    let stderr = text(&out.stderr);
    no_panic(&stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(text(&out.stdout), "Authorization: Bearer FRESH-ACCESS\n");
    assert!(
        stderr.contains("holds an access token that is not a valid bearer token"),
        "{stderr}"
    );
    assert!(!stderr.contains("Injected"), "{stderr}");
    let cached = std::fs::read_to_string(&file).unwrap();
    assert!(
        cached.contains("FRESH-ACCESS") && !cached.contains("Injected"),
        "{cached}"
    );
}

/// Unix seconds now.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A fake whose device endpoint answers `device` (with `{base}` replaced) and whose token
/// endpoint answers `token`.
fn device_fake(device: &'static str, token: &'static str) -> Scripted {
    Scripted::start(move |base, req| {
        discovery(base, req).unwrap_or_else(|| match req.path.as_str() {
            "/device" => (200, device.replace("{base}", base)),
            _ => (200, token.to_string()),
        })
    })
}

const GOOD_TOKEN: &str = r#"{"access_token":"NEW-ACCESS","token_type":"Bearer","expires_in":3600}"#;

#[test]
fn device_flow_with_absurd_expires_in_signs_in() {
    for device in [
        r#"{"device_code":"DEVCODE-SECRET","user_code":"ABCD","verification_uri":"{base}/verify","expires_in":18446744073709551615,"interval":1}"#,
        r#"{"device_code":"DEVCODE-SECRET","user_code":"ABCD","verification_uri":"{base}/verify","expires_in":1e300,"interval":1}"#,
        r#"{"device_code":"DEVCODE-SECRET","user_code":"ABCD","verification_uri":"{base}/verify","expires_in":0,"interval":1}"#,
    ] {
        let fake = device_fake(device, GOOD_TOKEN);
        let home = tempfile::tempdir().unwrap();
        let out = run(home.path(), &fake.url, &["--interactive"], "login", "");
        let stderr = text(&out.stderr);
        no_panic(&stderr);
        assert!(out.status.success(), "{device}: {stderr}");
        // Clamped to an hour at most (0: two intervals, so one poll happens).
        assert!(
            stderr.contains("the code expires in 60 min")
                || stderr.contains("the code expires in 2 s"),
            "{stderr}"
        );
        assert!(stderr.contains("token cached"), "{stderr}");
    }
}

#[test]
fn device_flow_with_absurd_interval_waits_without_crashing() {
    let fake = device_fake(
        r#"{"device_code":"DEVCODE-SECRET","user_code":"ABCD","verification_uri":"{base}/verify","expires_in":600,"interval":18446744073709551615}"#,
        GOOD_TOKEN,
    );
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_git-credential-iam"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .env("HOME", home.path())
        .args([
            "--issuer",
            &fake.url,
            "--client-id",
            "cli",
            "--timeout",
            "2",
        ])
        .arg("--cache-dir")
        .arg(home.path().join("cache"))
        .args(["--interactive", "login"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = support::Lines::spawn(child.stderr.take().unwrap());
    let waiting = lines.wait_for(
        |l| l.contains("Waiting for approval"),
        Duration::from_secs(20),
    );
    // The interval is clamped to 300 s: the helper now waits (a panic would end it at once).
    let early_end = lines.wait_for(|_| true, Duration::from_millis(1500));
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(waiting.is_some(), "{:?}", lines.seen());
    assert!(
        early_end.is_none() && still_running,
        "the helper ended: {:?}",
        lines.seen()
    );
    assert!(
        !fake.paths().contains(&"/token".to_string()),
        "no poll before the clamped interval"
    );
}

#[test]
fn token_response_with_absurd_expires_in_never_wraps_the_expiry() {
    let ten_years = 10 * 365 * 24 * 3600;
    let jwt_exp_max = {
        let payload = support::base64(br#"{"exp":9223372036854775807,"sub":"x"}"#)
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_");
        format!(r#"{{"access_token":"h.{payload}.s","token_type":"Bearer"}}"#)
    };
    for (body, lo, hi) in [
        (
            r#"{"access_token":"NEW","token_type":"Bearer","expires_in":9223372036854775807}"#
                .to_string(),
            ten_years,
            ten_years,
        ),
        (
            r#"{"access_token":"NEW","token_type":"Bearer","expires_in":18446744073709551615}"#
                .to_string(),
            ten_years,
            ten_years,
        ),
        (
            r#"{"access_token":"NEW","token_type":"Bearer","expires_in":-9223372036854775808}"#
                .to_string(),
            0,
            0,
        ),
        (
            r#"{"access_token":"NEW","token_type":"Bearer","expires_in":"99999999999999999999999"}"#
                .to_string(),
            ten_years,
            ten_years,
        ),
        (jwt_exp_max, ten_years, ten_years),
    ] {
        let b = body.clone();
        let fake = Scripted::start(move |base, req| {
            discovery(base, req).unwrap_or_else(|| (200, b.clone()))
        });
        let (home, file) = seeded(&fake.url);
        let before = unix_now();
        let out = run(
            home.path(),
            &fake.url,
            &["--non-interactive", "--min-lifetime", "0", "--format", "json"],
            "token",
            "",
        );
        let after = unix_now();
        let stderr = text(&out.stderr);
        no_panic(&stderr);
        assert!(out.status.success(), "{body}: {stderr}");
        let cached: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let exp = cached["expires_at"].as_i64().unwrap();
        assert!(
            (before + lo..=after + hi).contains(&exp),
            "{body}: expires_at {exp}, now {before}"
        );
    }
}

#[test]
fn imported_jwt_with_absurd_exp_is_bounded() {
    let payload = support::base64(br#"{"exp":9223372036854775807,"sub":"x"}"#)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_");
    let home = tempfile::tempdir().unwrap();
    let issuer = "https://iam.example.org/";
    let before = unix_now();
    let out = run(
        home.path(),
        issuer,
        &["--access-token"],
        "import",
        &format!("h.{payload}.s\n"),
    );
    let stderr = text(&out.stderr);
    no_panic(&stderr);
    assert!(out.status.success(), "{stderr}");
    let files = support::account_cache_files(&home.path().join("cache"));
    assert_eq!(files.len(), 1, "{files:?}");
    let cached: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    let exp = cached["expires_at"].as_i64().unwrap();
    assert!(
        exp >= before && exp <= unix_now() + 10 * 365 * 24 * 3600,
        "expires_at {exp}"
    );
}

/// A client secret with characters that form-encoding changes.
const CLIENT_SECRET: &str = "cl1ent+s3cret%2F with/space";

/// Writes the client secret file into `home` and returns its path.
fn secret_file(home: &Path) -> String {
    let f = home.join("client.secret");
    std::fs::write(&f, format!("{CLIENT_SECRET}\n")).unwrap();
    f.to_str().unwrap().to_string()
}

/// An error answer that quotes the client secret (raw and form-encoded) and the refresh token.
fn echoing_error() -> String {
    let encoded = support::form_urlencode(CLIENT_SECRET);
    serde_json::json!({
        "error": "invalid_client",
        "error_description": format!("bad secret {CLIENT_SECRET} ({encoded}) for token {RT}"),
    })
    .to_string()
}

/// No secret in `stderr`: the client secret, and the refresh token (when `rt_sent`).
fn assert_no_secret(stderr: &str, rt_sent: bool) {
    assert!(!stderr.contains(CLIENT_SECRET), "{stderr}");
    assert!(
        !stderr.contains(&support::form_urlencode(CLIENT_SECRET)),
        "{stderr}"
    );
    assert!(!rt_sent || !stderr.contains(RT), "{stderr}");
    assert!(stderr.contains("[redacted]"), "{stderr}");
}

#[test]
fn device_start_error_quoting_the_client_secret_is_redacted() {
    let fake =
        Scripted::start(|base, req| discovery(base, req).unwrap_or_else(|| (400, echoing_error())));
    let home = tempfile::tempdir().unwrap();
    let f = secret_file(home.path());
    let out = run(
        home.path(),
        &fake.url,
        &["--interactive", "--client-secret-file", &f],
        "login",
        "",
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("invalid_client"), "{stderr}");
    assert_no_secret(&stderr, false);
    assert_eq!(fake.paths().last().map(String::as_str), Some("/device"));
}

#[test]
fn revocation_error_quoting_the_client_secret_is_redacted() {
    let fake =
        Scripted::start(|base, req| discovery(base, req).unwrap_or_else(|| (400, echoing_error())));
    let (home, file) = seeded(&fake.url);
    let f = secret_file(home.path());
    let out = run(
        home.path(),
        &fake.url,
        &["--client-secret-file", &f],
        "logout",
        "",
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("could not revoke"), "{stderr}");
    assert_no_secret(&stderr, true);
    assert!(fake.paths().contains(&"/revoke".to_string()));
    assert!(!file.exists(), "logged out all the same");
}

#[test]
fn token_error_quoting_the_client_secret_is_redacted() {
    let fake =
        Scripted::start(|base, req| discovery(base, req).unwrap_or_else(|| (401, echoing_error())));
    let (home, _file) = seeded(&fake.url);
    let f = secret_file(home.path());
    let out = run(
        home.path(),
        &fake.url,
        &["--non-interactive", "--client-secret-file", &f],
        "token",
        "",
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert_no_secret(&stderr, true);
}

/// The cached discovery documents in `home`'s cache directory.
fn cached_discovery(home: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(home.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("discovery-")
        })
        .collect()
}

/// A loopback port nobody listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A provider answering discovery, `/device` and `/token` (a valid token), and 404 elsewhere.
fn healthy() -> Scripted {
    Scripted::start(|base, req| {
        discovery(base, req).unwrap_or_else(|| match req.path.as_str() {
            "/device" => (
                200,
                format!(
                    r#"{{"device_code":"DEVCODE-SECRET","user_code":"ABCD","verification_uri":"{base}/verify","expires_in":60,"interval":1}}"#
                ),
            ),
            "/token" => (200, GOOD_TOKEN.into()),
            _ => (404, r#"{"error":"not_found"}"#.into()),
        })
    })
}

/// How many discovery requests `fake` answered.
fn discoveries(fake: &Scripted) -> usize {
    fake.paths()
        .iter()
        .filter(|p| *p == "/.well-known/openid-configuration")
        .count()
}

/// A first `token` run caches the discovery document; then its endpoints are pointed at
/// `stale_base` (a dead port, or a path the provider answers 404). The next run must fetch the
/// document again (once) and succeed.
fn stale_discovery_is_fetched_again(action: &str, stale_base: impl Fn(&str) -> String) {
    let fake = healthy();
    let (home, file) = seeded(&fake.url);
    let seed = std::fs::read(&file).unwrap();
    let out = run(home.path(), &fake.url, &["--non-interactive"], "token", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(discoveries(&fake), 1);
    let docs = cached_discovery(home.path());
    assert_eq!(docs.len(), 1, "{docs:?}");
    let doc = std::fs::read_to_string(&docs[0]).unwrap();
    let stale = doc.replace(
        &format!("{}/", fake.url),
        &format!("{}/", stale_base(&fake.url)),
    );
    assert_ne!(doc, stale);
    std::fs::write(&docs[0], &stale).unwrap();
    std::fs::write(&file, &seed).unwrap(); // an expired access token again: refresh needed
    let extra: &[&str] = if action == "login" {
        &["--interactive"]
    } else {
        &["--non-interactive"]
    };
    let out = run(home.path(), &fake.url, extra, action, "");
    let stderr = text(&out.stderr);
    no_panic(&stderr);
    assert!(out.status.success(), "{action}: {stderr}");
    if action == "token" {
        assert_eq!(text(&out.stdout), "NEW-ACCESS\n");
    }
    assert_eq!(
        discoveries(&fake),
        2,
        "fetched again, once: {:?}",
        fake.paths()
    );
    // The fresh document is cached: the same endpoints as the first fetch, fetched then or
    // later (a busy machine may cross a second between the two fetches).
    let json = |t: &str| serde_json::from_str::<serde_json::Value>(t).unwrap();
    let (first, now) = (
        json(&doc),
        json(&std::fs::read_to_string(&docs[0]).unwrap()),
    );
    assert_eq!(
        now["endpoints"], first["endpoints"],
        "the fresh document is cached"
    );
    assert!(
        now["fetched_at"].as_i64() >= first["fetched_at"].as_i64() && now["fetched_at"].is_i64(),
        "{now} after {first}"
    );
    assert_eq!(
        now.as_object().unwrap().len(),
        first.as_object().unwrap().len(),
        "{now}"
    );
}

#[test]
fn cached_discovery_pointing_at_a_dead_port_is_fetched_again() {
    let port = dead_port();
    stale_discovery_is_fetched_again("token", |_| format!("http://127.0.0.1:{port}"));
    let port = dead_port();
    stale_discovery_is_fetched_again("login", |_| format!("http://127.0.0.1:{port}"));
}

#[test]
fn cached_discovery_whose_endpoint_answers_404_is_fetched_again() {
    stale_discovery_is_fetched_again("token", |base| format!("{base}/old"));
    stale_discovery_is_fetched_again("login", |base| format!("{base}/old"));
}

#[test]
fn revocation_at_a_stale_cached_endpoint_is_retried_after_discovery() {
    let fake = Scripted::start(|base, req| {
        discovery(base, req).unwrap_or_else(|| match req.path.as_str() {
            "/revoke" => (200, String::new()),
            "/token" => (200, GOOD_TOKEN.into()),
            _ => (404, String::new()),
        })
    });
    let (home, file) = seeded(&fake.url);
    let seed = std::fs::read(&file).unwrap();
    let out = run(home.path(), &fake.url, &["--non-interactive"], "token", "");
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(&file, &seed).unwrap();
    let doc = cached_discovery(home.path()).remove(0);
    let port = dead_port();
    let text_ = std::fs::read_to_string(&doc).unwrap();
    std::fs::write(
        &doc,
        // The endpoints only: the issuer must still match.
        text_.replace(
            &format!("{}/", fake.url),
            &format!("http://127.0.0.1:{port}/"),
        ),
    )
    .unwrap();
    let out = run(home.path(), &fake.url, &[], "logout", "");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("refresh token revoked"), "{stderr}");
    assert_eq!(discoveries(&fake), 2);
}

#[test]
fn a_fresh_discovery_is_not_fetched_twice_and_a_timeout_does_not_refetch() {
    // A document fetched in this run whose token endpoint answers 404: one discovery only.
    let fake = Scripted::start(|base, req| {
        discovery(base, req).unwrap_or_else(|| (404, r#"{"error":"nope"}"#.into()))
    });
    let (home, _file) = seeded(&fake.url);
    let out = run(home.path(), &fake.url, &["--non-interactive"], "token", "");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(fake.paths().len(), 2, "{:?}", fake.paths());
    // A cached document whose token endpoint hangs: a timeout is not a stale document.
    let hang = Fake::start(vec![Reply::Hang], None);
    let (home, _file) = seeded(&hang.url);
    let out = run(
        home.path(),
        &hang.url,
        &["--non-interactive", "--timeout", "1"],
        "token",
        "",
    );
    assert_eq!(out.status.code(), Some(4));
    let out = run(
        home.path(),
        &hang.url,
        &["--non-interactive", "--timeout", "1"],
        "token",
        "",
    );
    assert!(
        text(&out.stderr).contains("no answer within"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        hang.paths()
            .iter()
            .filter(|p| *p == "/.well-known/openid-configuration")
            .count(),
        1,
        "{:?}",
        hang.paths()
    );
}

// ------------------------------------------------------------------------------------------
// Issue 15: answers of providers that are not IAM (glewlwyd's empty 400/403, a server that does
// not form-decode Basic credentials) and what the provider granted.

/// A refresh refused with HTTP `status` and `body`, non-interactively: the dead login is
/// dropped and the helper asks for a sign-in (exit 3). Returns stderr.
fn refresh_refused_is_a_dead_login(status: u16, body: &'static str) -> String {
    let fake = Scripted::start(move |base, req| {
        discovery(base, req).unwrap_or_else(|| (status, body.to_string()))
    });
    let (home, file) = seeded(&fake.url);
    let out = helper(home.path(), &fake.url, &["--non-interactive"], "get");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "login needed: {stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("no longer valid") && stderr.contains("git-credential-iam login"),
        "{stderr}"
    );
    assert!(!stderr.contains(RT), "{stderr}");
    let cached = std::fs::read_to_string(&file).unwrap();
    assert!(!cached.contains(RT), "the dead refresh token is dropped");
    assert_eq!(
        fake.paths().iter().filter(|p| *p == "/token").count(),
        1,
        "one refresh, no retry: {:?}",
        fake.paths()
    );
    stderr
}

#[test]
fn refresh_refused_with_an_empty_400_is_a_dead_login() {
    let e = refresh_refused_is_a_dead_login(400, "");
    assert!(e.contains("HTTP 400, empty body"), "{e}");
}

#[test]
fn refresh_refused_with_an_empty_401_is_a_dead_login() {
    let e = refresh_refused_is_a_dead_login(401, "");
    assert!(e.contains("HTTP 401"), "{e}");
}

#[test]
fn refresh_refused_with_another_oauth_error_is_a_dead_login() {
    let e = refresh_refused_is_a_dead_login(400, r#"{"error":"invalid_request"}"#);
    assert!(e.contains("invalid_request"), "{e}");
}

/// A refused refresh with a person at hand starts a new sign-in at once.
#[test]
fn refresh_refused_with_an_empty_400_signs_in_again() {
    let fake = Scripted::start(|base, req| {
        discovery(base, req).unwrap_or_else(|| match req.path.as_str() {
            "/device" => (
                200,
                format!(
                    r#"{{"device_code":"DEVCODE-SECRET","user_code":"ABCD-EFGH","verification_uri":"{base}/verify","expires_in":60,"interval":1}}"#
                ),
            ),
            _ if req.body.contains("grant_type=refresh_token") => (400, String::new()),
            _ => (200, GOOD_TOKEN.into()),
        })
    });
    let (home, file) = seeded(&fake.url);
    let out = helper(home.path(), &fake.url, &["--interactive"], "get");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(support::answered_password(&text(&out.stdout)), "NEW-ACCESS");
    assert!(stderr.contains("a new sign-in is needed"), "{stderr}");
    assert!(fake.paths().contains(&"/device".to_string()));
    assert!(!std::fs::read_to_string(&file).unwrap().contains(RT));
}

/// A client set-up mistake on a refresh is no dead login: the refresh token is kept.
#[test]
fn refresh_refused_for_a_set_up_mistake_keeps_the_login() {
    let fake = Scripted::start(|base, req| {
        discovery(base, req).unwrap_or_else(|| (400, r#"{"error":"invalid_scope"}"#.into()))
    });
    let (home, file) = seeded(&fake.url);
    let out = helper(home.path(), &fake.url, &["--non-interactive"], "get");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("--scope"), "{stderr}");
    assert!(std::fs::read_to_string(&file).unwrap().contains(RT));
}

/// 429 (and 5xx, network failures) stay transient: a cached token that still works a little
/// while is served, and the login is kept.
#[test]
fn refresh_answered_429_serves_the_cached_token_while_it_lasts() {
    let fake = Scripted::start(|base, req| {
        discovery(base, req).unwrap_or_else(|| (429, r#"{"error":"slow_down"}"#.into()))
    });
    let soon = unix_now() + 30;
    let (home, file) = seed_cache(
        &fake.url,
        &format!(r#""access_token":"STILL-GOOD","expires_at":{soon},"refresh_token":"{RT}""#),
    );
    let out = helper(home.path(), &fake.url, &["--non-interactive"], "get");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(support::answered_password(&text(&out.stdout)), "STILL-GOOD");
    assert!(
        stderr.contains("cannot refresh") && stderr.contains("429"),
        "{stderr}"
    );
    assert!(std::fs::read_to_string(&file).unwrap().contains(RT));
}

/// Runs the password flow (username `alice`, password from a file) against `fake`.
fn password_flow(fake: &Scripted, extra: &[&str]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let pw = home.path().join("pw");
    std::fs::write(&pw, "PASSWORD-SECRET\n").unwrap();
    let mut args = vec![
        "--flow",
        "password",
        "--username",
        "alice",
        "--password-file",
        pw.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = run(home.path(), &fake.url, &args, "token", "");
    drop(home);
    out
}

#[test]
fn password_refused_with_an_empty_403_is_a_wrong_password() {
    for status in [400, 401, 403] {
        let fake = Scripted::start(move |base, req| {
            discovery(base, req).unwrap_or_else(|| (status, String::new()))
        });
        let out = password_flow(&fake, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{stderr}");
        assert!(
            stderr.contains("wrong username or password (username \"alice\")")
                && stderr.contains("client cli may not use the password grant"),
            "HTTP {status}: {stderr}"
        );
        assert!(!stderr.contains("PASSWORD-SECRET"), "{stderr}");
    }
    let fake = Scripted::start(|base, req| discovery(base, req).unwrap_or((503, String::new())));
    let stderr = text(&password_flow(&fake, &[]).stderr);
    assert!(
        stderr.contains("HTTP 503") && !stderr.contains("wrong username"),
        "{stderr}"
    );
}

/// A provider that, like glewlwyd, compares the Basic password byte for byte with the secret
/// (no form-decoding) and answers anything else with an empty 400. `post` adds
/// `client_secret_post` to its discovery document (and accepts it).
struct RawBasicProvider {
    fake: Scripted,
    url: String,
}

impl RawBasicProvider {
    fn start(post: bool) -> RawBasicProvider {
        let raw = format!(
            "Basic {}",
            support::base64(format!("cli:{CLIENT_SECRET}").as_bytes())
        );
        let posted = format!("client_secret={}", support::form_urlencode(CLIENT_SECRET));
        let fake = Scripted::start(move |base, req| {
            if req.path == "/.well-known/openid-configuration" {
                let methods = if post {
                    r#""client_secret_basic","client_secret_post""#
                } else {
                    r#""client_secret_basic""#
                };
                (
                    200,
                    format!(
                        r#"{{"issuer":"{base}","token_endpoint":"{base}/token","token_endpoint_auth_methods_supported":[{methods}]}}"#
                    ),
                )
            } else if req.authorization == raw || (post && req.body.contains(&posted)) {
                (200, GOOD_TOKEN.to_string())
            } else {
                (400, String::new())
            }
        });
        let url = fake.url.clone();
        RawBasicProvider { fake, url }
    }

    fn token_requests(&self) -> Vec<Seen> {
        self.fake
            .seen()
            .into_iter()
            .filter(|a| a.path == "/token")
            .collect()
    }
}

/// A secret with `+ / =` (and `%`, a space) at a provider that does not form-decode Basic
/// credentials: the RFC form first, then the raw secret once, remembered for the issuer, so the
/// next run sends the raw secret at once. The secret never reaches stderr.
#[test]
fn a_secret_the_provider_does_not_form_decode_is_sent_raw_once_refused_and_remembered() {
    let fake = RawBasicProvider::start(false);
    let (home, _file) = seeded(&fake.url);
    let f = secret_file(home.path());
    let out = run(
        home.path(),
        &fake.url,
        &["--non-interactive", "--client-secret-file", &f],
        "token",
        "",
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(text(&out.stdout), "NEW-ACCESS\n");
    let encoded = support::basic_auth("cli", CLIENT_SECRET);
    let raw = format!(
        "Basic {}",
        support::base64(format!("cli:{CLIENT_SECRET}").as_bytes())
    );
    let sent: Vec<String> = fake
        .token_requests()
        .iter()
        .map(|a| a.authorization.clone())
        .collect();
    assert_eq!(
        sent,
        [encoded.clone(), raw.clone()],
        "RFC form first, then raw"
    );
    let remembered: Vec<PathBuf> = cached_discovery(home.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("-client-auth.json"))
        .collect();
    assert_eq!(
        remembered.len(),
        1,
        "remembered beside the discovery document"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&remembered[0])
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        !std::fs::read_to_string(&remembered[0])
            .unwrap()
            .contains("s3cret")
    );
    assert!(
        !stderr.contains(CLIENT_SECRET) && !stderr.contains("s3cret"),
        "{stderr}"
    );

    // The next refresh (the access token forgotten) sends the raw secret at once.
    let (home2, _) = seeded(&fake.url);
    std::fs::copy(
        &remembered[0],
        home2
            .path()
            .join("cache")
            .join(remembered[0].file_name().unwrap()),
    )
    .unwrap();
    let f2 = secret_file(home2.path());
    let before = fake.token_requests().len();
    let out = run(
        home2.path(),
        &fake.url,
        &["--non-interactive", "--client-secret-file", &f2],
        "token",
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after: Vec<String> = fake.token_requests()[before..]
        .iter()
        .map(|a| a.authorization.clone())
        .collect();
    assert_eq!(after, [raw], "one request, the remembered way");
}

/// Raw Basic is the retry even when discovery lists `client_secret_post` (Basic works at every
/// endpoint that takes Basic; glewlwyd's revocation endpoint takes nothing else).
#[test]
fn a_refused_encoded_secret_is_retried_raw_even_when_post_is_listed() {
    let fake = RawBasicProvider::start(true);
    let (home, _file) = seeded(&fake.url);
    let f = secret_file(home.path());
    let out = run(
        home.path(),
        &fake.url,
        &["--non-interactive", "--client-secret-file", &f],
        "token",
        "",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reqs = fake.token_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(
        reqs[0].authorization,
        support::basic_auth("cli", CLIENT_SECRET)
    );
    assert_eq!(
        reqs[1].authorization,
        format!(
            "Basic {}",
            support::base64(format!("cli:{CLIENT_SECRET}").as_bytes())
        )
    );
    assert!(!reqs[1].body.contains("client_secret"), "{reqs:?}");
}

/// A secret that form-encoding leaves as it is is never sent twice: a refused refresh is a
/// refused refresh.
#[test]
fn a_secret_encoding_does_not_change_is_not_retried() {
    let fake = RawBasicProvider::start(false);
    let (home, file) = seeded(&fake.url);
    let f = home.path().join("plain.secret");
    std::fs::write(&f, "plainsecret\n").unwrap();
    let out = run(
        home.path(),
        &fake.url,
        &[
            "--non-interactive",
            "--client-secret-file",
            f.to_str().unwrap(),
        ],
        "token",
        "",
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(fake.token_requests().len(), 1);
    assert!(!std::fs::read_to_string(&file).unwrap().contains(RT));
}

/// A JWT access token with `aud` and a token response whose `scope` is narrower than the
/// request: `token --format json` and `status` report the grant and say it differs.
#[test]
fn the_granted_scope_and_audience_are_recorded_and_reported() {
    let claims = r#"{"aud":"openid offline_access","exp":4102444800,"sub":"S"}"#;
    let jwt = format!(
        "h.{}.s",
        support::base64(claims.as_bytes())
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_")
    );
    let body = format!(
        r#"{{"access_token":"{jwt}","token_type":"Bearer","expires_in":3600,"scope":"openid"}}"#
    );
    let fake = Scripted::start(move |base, req| {
        discovery(base, req).unwrap_or_else(|| (200, body.clone()))
    });
    let (home, file) = seeded(&fake.url);
    let out = run(
        home.path(),
        &fake.url,
        &[
            "--non-interactive",
            "--audience",
            "https://api.example",
            "--format",
            "json",
        ],
        "token",
        "",
    );
    let stderr = text(&out.stderr);
    // The seeded login has no audience: this asks a narrower token of it.
    assert!(out.status.success(), "{stderr}");
    let j: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(j["scope"], "openid");
    assert_eq!(j["requested_scope"], "openid offline_access");
    assert_eq!(j["audience"], "openid offline_access");
    assert_eq!(j["requested_audience"], "https://api.example");
    assert_eq!(j["grant_differs"], true);
    assert!(
        stderr.contains("without the requested scope offline_access")
            && stderr.contains("not the requested \"https://api.example\""),
        "{stderr}"
    );
    let cached = std::fs::read_to_string(&file).unwrap();
    assert!(cached.contains(RT), "the account's login is kept");

    let out = run(home.path(), &fake.url, &[], "status", "");
    let status = text(&out.stdout);
    assert!(
        status.contains(
            "granted scope: openid (differs from the request: offline_access not granted)"
        ),
        "{status}"
    );
    assert!(
        status.contains("token audience: openid offline_access (differs from the request)"),
        "{status}"
    );
    assert!(!status.contains(&jwt), "{status}");
}

/// A loopback http provider is reached directly, never through a proxy from the environment:
/// through one, the refresh token would leave the machine in clear.
#[test]
fn a_loopback_http_provider_is_never_reached_through_a_proxy() {
    let fake = Fake::start(vec![Reply::Http(200, "", GOOD_TOKEN.into())], None);
    let proxy = Scripted::start(|_, _| (502, String::new()));
    let (home, _file) = seeded(&fake.url);
    let env = [
        ("HTTP_PROXY", proxy.url.as_str()),
        ("http_proxy", proxy.url.as_str()),
        ("ALL_PROXY", proxy.url.as_str()),
        ("NO_PROXY", ""),
    ];
    let out = helper_with(home.path(), &fake.url, &["--non-interactive"], "get", &env);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(text(&out.stdout).contains("NEW-ACCESS"), "{stderr}");
    assert!(proxy.seen().is_empty(), "the proxy saw {:?}", proxy.paths());
    assert!(fake.paths().contains(&"/token".to_string()));
}
