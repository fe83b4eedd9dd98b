//! Hostile input: what git (or anyone who can write to the helper's stdin or its cache
//! directory) could feed the helper.
//!
//! * Property tests (proptest): every request `Request::write_to` accepts parses back equal;
//!   parsing arbitrary bytes never panics and fails only with a one-line input error; the cache
//!   loader never panics on arbitrary file content.
//! * The real binary on oversized input, NUL, CR, a line without `=`, invalid UTF-8 and 10,000
//!   `wwwauth[]` lines: the right exit code, one line on stderr, nothing on stdout, no panic,
//!   bounded time and memory.
//! * The fuzz targets' seed corpus (`contrib/fuzz/corpus/*/`) and the inputs the fuzzers found,
//!   through the same checks the fuzz targets make (`contrib/fuzz/checks.rs`), on stable.
//! * The process and its files: no core dumps; a cache or lock file that is a symbolic link,
//!   belongs to another user or was written by a newer version is refused, never served,
//!   moved or overwritten.

#[path = "../../contrib/fuzz/checks.rs"]
mod checks;
use crate::support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::iam::protocol::{MAX_INPUT, MAX_LINE, Request};
use crate::support::iam::{Secret, cache};
use checks::{CacheFixture, Loaded, check_protocol};
use proptest::prelude::*;
use serde_json::{Value, json};

// ------------------------------------------------------------------------------------------
// Property tests

/// A value git could send: one or more characters, anything but LF, CR and NUL. Mostly
/// printable ASCII with `=` and spaces, some arbitrary Unicode (tabs, other control characters,
/// U+2028, astral planes).
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[ -~]{1,40}",
        2 => "[a-z=]{1,6}( [a-z=\"]{1,6}){0,3}",
        2 => r"[^\n\r\x00]{1,20}",
        1 => "[=]{1,3}",
        1 => "[éü中文😀\t\u{b}\u{c}\u{85}\u{2028} ]{1,10}",
    ]
}

fn secret() -> impl Strategy<Value = Option<Secret<String>>> {
    proptest::option::of(value().prop_map(Secret::new))
}

prop_compose! {
    fn request()(
        (protocol, host, path, username) in (
            proptest::option::of(value()),
            proptest::option::of(value()),
            proptest::option::of(value()),
            proptest::option::of(value()),
        ),
        (password, credential, oauth_refresh_token) in (secret(), secret(), secret()),
        (authtype, password_expiry_utc) in (
            proptest::option::of(value()),
            proptest::option::of(value()),
        ),
        wwwauth in proptest::collection::vec(value(), 0..8),
        capabilities in proptest::collection::vec(value(), 0..4),
    ) -> Request {
        Request {
            protocol, host, path, username, password, authtype, credential,
            oauth_refresh_token, password_expiry_utc, wwwauth, capabilities,
        }
    }
}

/// Lines that look like git's, with the usual ways to get them wrong.
fn request_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let key = prop_oneof![
        4 => prop::sample::select(vec![
            "protocol", "host", "path", "username", "password", "authtype", "credential",
            "oauth_refresh_token", "password_expiry_utc", "url", "wwwauth[]", "capability[]",
            "state[]", "ephemeral", "continue", "quit", "",
        ])
        .prop_map(String::from),
        1 => "[ -~]{0,12}",
    ];
    let val = prop_oneof![
        12 => value().prop_map(String::into_bytes),
        1 => Just(Vec::new()),
        1 => "(https?|ssh|)://([a-z]{0,5}(:[a-z]{0,3})?@)?[a-z.:0-9]{0,12}(/[a-z/.]{0,10})?"
            .prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..16),
    ];
    // Mostly well-formed lines, so that most requests parse and the write-back is checked.
    let sep = prop_oneof![30 => Just("="), 1 => Just(""), 1 => Just("==")];
    let end = prop_oneof![60 => Just("\n"), 1 => Just("\r\n"), 1 => Just("\0\n"), 1 => Just("")];
    proptest::collection::vec((key, sep, val, end), 0..12).prop_map(|lines| {
        let mut out = Vec::new();
        for (k, s, v, e) in lines {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(&v);
            out.extend_from_slice(e.as_bytes());
        }
        out
    })
}

/// A JSON value of any type, with the extremes.
fn json_any() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec![i64::MIN, i64::MAX, -1, 0, 4_294_967_296]).prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        ".{0,12}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({"a": [1, {"b": null}]})),
    ]
}

/// A field that is usually of the right type (`good`), sometimes of any type, sometimes absent.
fn field<S: Strategy<Value = Value> + 'static>(good: S) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        30 => good.prop_map(Some),
        1 => json_any().prop_map(Some),
        1 => Just(None),
    ]
}

fn string_field(right: &'static str) -> impl Strategy<Value = Option<Value>> {
    field(prop_oneof![4 => Just(right.to_string()), 1 => ".{0,12}"].prop_map(Value::from))
}

/// A cache file: a JSON object close to an `Entry`, maybe with unknown fields, then maybe
/// truncated or with one byte replaced.
fn cache_file() -> impl Strategy<Value = Vec<u8>> {
    let object = (
        (
            field(prop_oneof![8 => Just(1u32), 1 => 0u32..=3].prop_map(Value::from)),
            string_field("https://iam.example/"),
            string_field("cli"),
            string_field("openid offline_access"),
            field(proptest::option::of(".{0,8}").prop_map(|a| a.map_or(Value::Null, Value::from))),
        ),
        (
            field(".{0,30}".prop_map(Value::from)),
            field(any::<i64>().prop_map(Value::from)),
            field(".{0,30}".prop_map(Value::from)),
            field(any::<i64>().prop_map(Value::from)),
            proptest::option::of(("[a-z_]{1,8}", json_any())),
        ),
    )
        .prop_map(
            |((version, issuer, client_id, scope, audience), (at, exp, rt, upd, extra))| {
                let mut m = serde_json::Map::new();
                for (k, v) in [
                    ("version", version),
                    ("issuer", issuer),
                    ("client_id", client_id),
                    ("scope", scope),
                    ("audience", audience),
                    ("access_token", at),
                    ("expires_at", exp),
                    ("refresh_token", rt),
                    ("updated_at", upd),
                ] {
                    if let Some(v) = v {
                        m.insert(k.into(), v);
                    }
                }
                if let Some((k, v)) = extra {
                    m.insert(k, v);
                }
                serde_json::to_vec_pretty(&Value::Object(m)).unwrap()
            },
        );
    (
        object,
        prop_oneof![6 => Just(None), 1 => any::<prop::sample::Index>().prop_map(Some)],
        prop_oneof![6 => Just(None), 1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(Some)],
    )
        .prop_map(|(mut bytes, cut, flip)| {
            if let Some((i, b)) = flip
                && !bytes.is_empty()
            {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            if let Some(i) = cut {
                bytes.truncate(i.index(bytes.len() + 1));
            }
            bytes
        })
}

proptest! {
    // The seeds of failures found so far are in `hostile_input.proptest-regressions` beside this
    // file (proptest's default would look in `tests/proptest-regressions/`, since `main.rs`
    // makes this folder a crate's).
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn write_then_parse_is_identity(req in request()) {
        let mut out = Vec::new();
        req.write_to(&mut out).unwrap();
        let text = std::str::from_utf8(&out).unwrap();
        // key=value lines, then the blank line that ends the block.
        let body = text.strip_suffix('\n').unwrap();
        prop_assert!(body.is_empty() || body.ends_with('\n'), "{text:?}");
        for line in body.lines() {
            prop_assert!(line.contains('=') && !line.contains(['\r', '\0']), "{line:?}");
        }
        prop_assert_eq!(&Request::parse(text).unwrap(), &req);
        // And the same through the fuzz target's checks (buffer sizes, canonical output).
        prop_assert_eq!(check_protocol(&out).unwrap(), req);
    }

    #[test]
    fn parse_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = check_protocol(&bytes);
    }

    #[test]
    fn parse_request_like_bytes(bytes in request_like_bytes()) {
        let _ = check_protocol(&bytes);
    }

    #[test]
    fn cache_load_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dir = tempfile::tempdir().unwrap();
        CacheFixture::new(dir.path()).check(&bytes);
    }

    #[test]
    fn cache_load_entry_like_files(bytes in cache_file()) {
        let dir = tempfile::tempdir().unwrap();
        let got = CacheFixture::new(dir.path()).check(&bytes);
        // A well-formed file of this account with a known format is always accepted.
        if let Ok(e) = serde_json::from_slice::<cache::Entry>(&bytes) {
            let ours = e.issuer == "https://iam.example/" && e.client_id == "cli"
                && e.audience.is_none();
            let expected = if e.version > cache::VERSION {
                Loaded::Refused
            } else if ours {
                Loaded::Entry
            } else {
                Loaded::Other
            };
            prop_assert_eq!(got, expected);
        } else if serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("version")?.as_u64())
            .is_some_and(|v| v > cache::VERSION.into())
        {
            // Unparsable, but it says it is of a newer format: refused and kept.
            prop_assert_eq!(got, Loaded::Refused);
        } else {
            prop_assert_eq!(got, Loaded::MovedAside);
        }
    }
}

// ------------------------------------------------------------------------------------------
// The real binary on hostile stdin

/// How one run of the helper ended.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// Peak resident set size of the helper process, from `wait4` (Linux: kilobytes).
    max_rss_kb: i64,
    elapsed: Duration,
}

/// Longest a run may take (a debug build on a busy machine; a run takes about 0.1 s).
const RUN_TIMEOUT: Duration = Duration::from_secs(10);
/// Memory bound for any input: the helper reads at most 1 MiB, one line of at most 64 KiB.
const MAX_RSS_KB: i64 = 20 * 1024;

/// Runs `git-credential-iam --issuer http://127.0.0.1:9/ --client-id x --cache-dir TMP
/// --non-interactive get` with a clean environment and `input` on stdin. Reaps the child with
/// `wait4` for its peak memory, and kills it after [`RUN_TIMEOUT`].
#[cfg(target_os = "linux")]
#[allow(clippy::zombie_processes)] // reaped with wait4, not Child::wait
fn run_get(input: Vec<u8>) -> Run {
    let home = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_git-credential-iam"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .args([
            "--issuer",
            "http://127.0.0.1:9/",
            "--client-id",
            "x",
            "--url",
            "git.example.org",
            "--cache-dir",
        ])
        .arg(home.path().join("cache"))
        .args(["--non-interactive", "get"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The helper stops reading at the first bad line: the rest of the write fails (EPIPE).
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let pid = child.id() as libc::pid_t;
    let (status, rusage) = loop {
        let mut status = 0;
        // SAFETY: plain syscall; `status` and `ru` are valid for writes.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        assert!(r >= 0, "wait4: {}", std::io::Error::last_os_error());
        if r == pid {
            break (status, ru);
        }
        if start.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            // SAFETY: as above; reaps the killed child.
            unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
            panic!("the helper did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    writer.join().unwrap();
    Run {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        max_rss_kb: rusage.ru_maxrss,
        elapsed,
    }
}

/// Set in a copy of this test binary that runs one memory-measuring test by itself.
const SMALL_PROCESS: &str = "GIT_CREDENTIAL_IAM_TEST_SMALL_PROCESS";

/// True where the calling test is to do its work: in a small process. A child that `Command`
/// spawns (vfork, then exec) takes its parent's peak RSS into its own `ru_maxrss`, and this
/// test binary, with every test of the suite in it, grows past [`MAX_RSS_KB`]. So the calling
/// test runs again alone in a fresh copy of this binary (`--exact`, named after the test's
/// thread), asserts that it passed there, and returns false.
#[cfg(target_os = "linux")]
fn in_a_small_process() -> bool {
    if std::env::var_os(SMALL_PROCESS).is_some() {
        return true;
    }
    let thread = std::thread::current();
    let test = thread
        .name()
        .expect("tests run on threads named after them");
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args([test, "--exact", "--test-threads", "1"])
        .env(SMALL_PROCESS, "1")
        .stdin(Stdio::null())
        .output()
        .expect("run the test binary again");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("test result: ok. 1 passed"),
        "{test} alone in a small process: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// The run ended with exit code `code` and exactly one line on stderr (containing `needle`),
/// nothing on stdout, no panic, within bounded time and memory.
#[cfg(target_os = "linux")]
fn assert_one_line_exit(what: &str, r: &Run, code: i32, needle: &str) {
    assert_eq!(r.code, Some(code), "{what}: {r:?}");
    assert!(r.stdout.is_empty(), "{what}: something on stdout: {r:?}");
    assert!(!r.stderr.contains("panicked"), "{what}: {r:?}");
    assert!(
        r.stderr.ends_with('\n') && r.stderr.matches('\n').count() == 1,
        "{what}: not exactly one line on stderr: {:?}",
        r.stderr
    );
    assert!(r.stderr.contains(needle), "{what}: {:?}", r.stderr);
    assert!(
        r.max_rss_kb < MAX_RSS_KB,
        "{what}: peak RSS {} kB",
        r.max_rss_kb
    );
    assert!(r.elapsed < RUN_TIMEOUT, "{what}: took {:?}", r.elapsed);
}

#[cfg(target_os = "linux")]
#[test]
fn binary_refuses_hostile_stdin_with_one_line() {
    if !in_a_small_process() {
        return;
    }
    let line_of = |n: usize| format!("protocol=https\nhost={}\n", "a".repeat(n)).into_bytes();
    let two_mib = 2 << 20;
    let many_lines = b"wwwauth[]=Basic realm=\"x\"\n".repeat(two_mib / 26 + 1);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a 70,000-byte line", line_of(70_000), "longer than 65535"),
        (
            "a line just over the limit",
            line_of(MAX_LINE),
            "longer than 65535",
        ),
        (
            "2 MiB on one line",
            vec![b'a'; two_mib],
            "longer than 65535",
        ),
        ("2 MiB of lines", many_lines, "larger than 1048576"),
        ("a NUL byte", b"protocol=https\nhost=a\0b\n".to_vec(), "NUL"),
        ("a lone NUL", b"\0".to_vec(), "NUL"),
        (
            "CRLF line ends",
            b"protocol=https\r\nhost=a\r\n\r\n".to_vec(),
            "carriage return",
        ),
        (
            "a key without =",
            b"protocol=https\nhost\n".to_vec(),
            "without '='",
        ),
        (
            "invalid UTF-8",
            b"protocol=https\nhost=\xff\xfe\n".to_vec(),
            "UTF-8",
        ),
        (
            "a URL without a scheme",
            b"url=://host/path\n".to_vec(),
            "scheme",
        ),
    ];
    for (what, input, needle) in cases {
        let r = run_get(input);
        assert_one_line_exit(what, &r, 2, needle);
        assert!(
            r.stderr
                .starts_with("git-credential-iam: bad input from git: "),
            "{r:?}"
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn binary_accepts_10000_challenges_then_needs_a_login() {
    if !in_a_small_process() {
        return;
    }
    // Accepted (under both limits): the helper goes on, finds no login, and may not prompt.
    let input = b"wwwauth[]=Basic realm=\"x\"\n".repeat(10_000);
    let r = run_get([b"protocol=https\nhost=git.example.org\n".as_slice(), &input].concat());
    assert_one_line_exit("10,000 wwwauth[] lines", &r, 3, "no valid login");
    assert!(!r.stderr.contains("bad input"), "{r:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn binary_accepts_the_largest_request() {
    if !in_a_small_process() {
        return;
    }
    // Lines of MAX_LINE bytes and MAX_INPUT bytes in all (with the blank line): accepted, and
    // written back byte for byte; one byte more is refused.
    let full = format!("wwwauth[]={}\n", "b".repeat(MAX_LINE - "wwwauth[]=".len()));
    let n = (MAX_INPUT - 1) / full.len();
    let last = MAX_INPUT - 1 - n * full.len() - "wwwauth[]=\n".len();
    let mut input = full.repeat(n) + &format!("wwwauth[]={}\n", "c".repeat(last)) + "\n";
    assert_eq!(input.len(), MAX_INPUT);
    let req = Request::parse(&input).unwrap();
    assert_eq!(req.wwwauth.len(), n + 1);
    let mut out = Vec::new();
    req.write_to(&mut out).unwrap();
    assert!(out == input.as_bytes());
    let mut big = req.clone();
    big.wwwauth[n].push('c');
    assert!(
        big.write_to(&mut Vec::new())
            .unwrap_err()
            .to_string()
            .contains("larger")
    );
    input.insert(input.len() - 2, 'c');
    assert!(
        Request::parse(&input)
            .unwrap_err()
            .to_string()
            .contains("larger")
    );
    input.remove(input.len() - 3);
    let r = run_get(input.into_bytes());
    // Read whole (no "bad input"); it names no URL, so no token and git goes on (exit 0).
    assert_one_line_exit("the largest request", &r, 0, "tied to an account");
    assert!(!r.stderr.contains("bad input"), "{r:?}");
}

// ------------------------------------------------------------------------------------------
// The fuzz corpus and the fuzzers' findings

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

fn name(p: &Path) -> &str {
    p.file_name().unwrap().to_str().unwrap()
}

#[test]
fn seed_corpus_is_small() {
    let files: Vec<PathBuf> = ["protocol", "cache_load"]
        .iter()
        .flat_map(|t| corpus(t))
        .collect();
    assert!(
        files.len() <= 50,
        "{} seed files; keep at most 50",
        files.len()
    );
    for f in files {
        let len = std::fs::metadata(&f).unwrap().len();
        assert!(
            len <= 4096,
            "{}: {len} bytes; seeds stay small",
            f.display()
        );
    }
}

#[test]
fn protocol_corpus() {
    let refused = [
        "bad-utf8",
        "crlf",
        "no-equals",
        "nul",
        "url-empty-scheme",
        "url-no-scheme",
    ];
    for f in corpus("protocol") {
        let got = check_protocol(&std::fs::read(&f).unwrap());
        assert_eq!(
            got.is_err(),
            refused.contains(&name(&f)),
            "{}: {got:?}",
            f.display()
        );
    }
}

#[test]
fn cache_load_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = CacheFixture::new(dir.path());
    for f in corpus("cache_load") {
        let got = fixture.check(&std::fs::read(&f).unwrap());
        let expected = match name(&f) {
            "good" | "good-minimal" | "extreme-expiry" | "unknown-fields" | "escapes" => {
                Loaded::Entry
            }
            "other-account" | "other-audience" => Loaded::Other,
            // A version above ours, even one no `Entry` can hold (2^32), is a newer format:
            // refused and kept, never moved aside.
            "newer-version" | "huge-numbers" => Loaded::Refused,
            _ => Loaded::MovedAside,
        };
        assert_eq!(got, expected, "{}", f.display());
    }
}

/// Inputs the fuzzers (or their seeds) made fail, kept as regressions.
#[test]
fn fuzz_regressions_protocol() {
    // `url=` with an empty scheme was accepted as `protocol=` "" (which reads back as unset, so
    // parse and write disagreed); git refuses it ("url has no scheme").
    let e = check_protocol(b"url=://host/path\n").unwrap_err();
    assert!(e.to_string().contains("scheme"), "{e}");
}

/// Found by the `cache_load` fuzz target's seeds (`extreme-expiry`): an `expires_at` near
/// `i64::MIN` in a cache file makes `Entry::valid_access_token` compute `exp - now` with an
/// overflow: a panic in a debug build, and in a release build (no overflow checks) a wrap to a
/// huge lifetime, so the long-expired token is served forever and never refreshed. Fixed in
/// src/store/cache.rs (`exp.saturating_sub(now)`).
#[test]
fn fuzz_regression_cache_expiry_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = CacheFixture::new(dir.path());
    let file = br#"{"version":1,"issuer":"https://iam.example/","client_id":"cli",
        "scope":"openid offline_access","access_token":"at","expires_at":-9223372036854775808}"#;
    std::fs::write(&fixture.files.data, file).unwrap();
    let e = cache::load(&fixture.files, &fixture.settings, &mut |_| {})
        .unwrap()
        .unwrap();
    assert_eq!(e.valid_access_token(1_700_000_000, 60), None);
}

/// `--min-lifetime` above `i64::MAX` becomes negative in `valid_access_token`
/// (`min_lifetime as i64`), so a token that expired a second ago was served. Fixed in
/// src/store/cache.rs (`i64::try_from(min_lifetime).unwrap_or(i64::MAX)`).
#[test]
fn huge_min_lifetime_serves_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = CacheFixture::new(dir.path());
    let mut e = cache::Entry::empty(&fixture.settings);
    e.access_token = Some(Secret::new("at".into()));
    e.expires_at = Some(1_700_000_000);
    assert_eq!(e.valid_access_token(1_700_000_001, u64::MAX), None);
    assert_eq!(e.valid_access_token(1_700_000_000, u64::MAX), None);
}

// ------------------------------------------------------------------------------------------
// The process and its files

/// Kills and reaps the child on drop, so a failed assertion leaves no helper behind.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The helper turns core dumps off before it reads anything: a core file (or a `core_pattern`
/// pipe) would hold its tokens and the client secret. Seen from outside on a helper blocked
/// reading `store`'s input from a stdin this test holds open: `/proc/PID/limits` shows a core
/// size limit of 0, soft and hard (the soft limit is raised to the hard one just before the
/// exec, so an inherited 0 proves nothing), and `/proc/PID/status` belongs to root:root, which is
/// how Linux shows a non-dumpable process (`PR_SET_DUMPABLE` 0). Run as root, the helper gets
/// group 65534, so that while dumpable its files belong to root:65534.
/// git (or any reader) that closes its end of the pipe before the answer is written: the helper
/// gets an error it reports in one line with exit 1, never a silent death by SIGPIPE, in the
/// binary's own start-up as in std's.
#[cfg(unix)]
#[test]
fn a_closed_stdout_is_reported_not_a_silent_death() {
    use std::os::unix::process::ExitStatusExt;
    let home = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = support::clean_cmd(support::helper_path(), home.path())
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), None, "killed by a signal: {stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("stdout"), "{stderr}");
}

#[cfg(target_os = "linux")]
#[test]
fn binary_disables_core_dumps() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("/bin/sh");
    cmd.env_clear()
        .env("HOME", home.path())
        .current_dir(home.path())
        .args(["-c", r#"ulimit -S -c "$(ulimit -H -c)" && exec "$0" store"#])
        .arg(support::helper_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        cmd.gid(65534);
    }
    let child = Reaped(cmd.spawn().unwrap());
    let status = PathBuf::from(format!("/proc/{}/status", child.0.id()));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let owner = loop {
        let m = std::fs::metadata(&status).expect("the helper is running");
        if (m.uid(), m.gid()) == (0, 0) || Instant::now() > deadline {
            break (m.uid(), m.gid());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(
        owner,
        (0, 0),
        "{} still belongs to the helper after {RUN_TIMEOUT:?}: it is dumpable",
        status.display()
    );
    let limits = std::fs::read_to_string(status.with_file_name("limits")).unwrap();
    let core: Vec<&str> = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max core file size"))
        .expect("a core size line")
        .split_whitespace()
        .collect();
    assert_eq!(core[..2], ["0", "0"], "{limits}");
}

/// Runs the helper with `args` (an action and its options) for the account of
/// `CacheFixture::new(dir)` (same issuer, client and cache directory; no config file, clean
/// environment, non-interactive) and `input` on stdin.
fn run_account(dir: &Path, args: &[&str], input: &str) -> std::process::Output {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = support::helper_cmd(&home);
    cmd.args([
        "--issuer",
        "https://iam.example/",
        "--client-id",
        "cli",
        "--non-interactive",
        "--cache-dir",
    ])
    .arg(dir.join("cache"))
    .args(args);
    support::run_with_input(cmd, input, RUN_TIMEOUT)
}

/// A cache file holding `access_token` for the account of [`CacheFixture`], valid for years.
fn entry_with(access_token: &str) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "version": 1,
        "issuer": "https://iam.example/",
        "client_id": "cli",
        "scope": "openid offline_access",
        "access_token": access_token,
        "expires_at": 4_000_000_000i64,
        "updated_at": 1_700_000_000i64,
    }))
    .unwrap()
}

/// The hot path (a cached, valid token: no lock, no directory check) serves only a file of the
/// user running the helper. As root with `--cache-dir` on a folder another user controls, that
/// user's planted token is refused with one line naming the file and the fix, and never
/// printed; the file is left alone. Needs root, to give the folder away.
#[cfg(unix)]
#[test]
fn a_cache_file_of_another_user_is_refused_on_the_hot_path() {
    use std::os::unix::fs::MetadataExt;
    if !support::needs_root("a_cache_file_of_another_user_is_refused_on_the_hot_path") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fixture = CacheFixture::new(dir.path());
    let planted = "planted-by-user-65534";
    std::fs::write(&fixture.files.data, entry_with(planted)).unwrap();
    // The fixture's own account reads this file: the same name the binary looks up.
    let ok = run_account(dir.path(), &["token"], "");
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        planted,
        "{ok:?}"
    );

    for p in [&fixture.settings.cache_dir, &fixture.files.data] {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    }
    let before = std::fs::read(&fixture.files.data).unwrap();
    let out = run_account(dir.path(), &["token"], "");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        !stdout.contains(planted) && !stderr.contains(planted),
        "{out:?}"
    );
    assert_eq!(stderr.matches('\n').count(), 1, "one line: {stderr:?}");
    let file = fixture.files.data.display().to_string();
    for needle in [&file, "user id 65534", "--cache-dir"] {
        assert!(stderr.contains(needle), "{needle:?} in {stderr:?}");
    }
    assert_eq!(std::fs::read(&fixture.files.data).unwrap(), before);
    let meta = std::fs::metadata(&fixture.files.data).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (65534, 0o600));
}

/// A cache file written by a newer git-credential-iam (a format this one cannot parse) is
/// refused with one line naming the file and the format, never moved aside as corrupt (which
/// loses the login), on the read path (`token`) as on a write path (`import`): the file is
/// byte-identical afterwards and no other file appears.
#[test]
fn a_newer_cache_file_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = CacheFixture::new(dir.path());
    let newer = serde_json::to_vec_pretty(&json!({
        "version": 7,
        "issuer": {"url": "https://iam.example/", "kind": "iam"},
        "client_id": "cli",
        "grants": [{"scope": "openid", "access_token": "at-7", "refresh_token": "rt-7"}],
    }))
    .unwrap();
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(&fixture.files.data)
        .unwrap()
        .write_all(&newer)
        .unwrap();
    let listing = || {
        let mut names: Vec<_> = std::fs::read_dir(&fixture.settings.cache_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| !n.to_string_lossy().ends_with(".lock"))
            .collect();
        names.sort();
        names
    };
    let before = listing();
    for (args, input) in [
        (&["token"][..], ""),
        (
            &["import", "--access-token", "--expires-at", "4000000000"][..],
            "new-at",
        ),
    ] {
        let out = run_account(dir.path(), args, input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
        assert_eq!(
            stderr.matches('\n').count(),
            1,
            "{args:?}: one line: {stderr:?}"
        );
        let file = fixture.files.data.display().to_string();
        for needle in [&file, "newer git-credential-iam (format 7)", "--cache-dir"] {
            assert!(
                stderr.contains(needle),
                "{args:?}: {needle:?} in {stderr:?}"
            );
        }
        assert!(
            !stderr.contains("at-7") && !stderr.contains("rt-7"),
            "{stderr:?}"
        );
        assert_eq!(
            std::fs::read(&fixture.files.data).unwrap(),
            newer,
            "{args:?}"
        );
        assert_eq!(listing(), before, "{args:?}: nothing moved aside or added");
    }
}

// ------------------------------------------------------------------------------------------
// Hostile or mistaken command lines and config files

/// The helper with the tests' clean environment in `home`, run in `cwd`, on `input`.
fn run_in(home: &Path, cwd: &Path, args: &[&str], input: &str) -> std::process::Output {
    let mut cmd = support::helper_cmd(home);
    cmd.current_dir(cwd).args(args);
    support::run_with_input(cmd, input, RUN_TIMEOUT)
}

/// A token given as an argument by mistake is never echoed; an absurd `--timeout` is a usage
/// error, not a panic (it used to abort on `Instant + Duration`).
#[test]
fn arguments_are_never_echoed_and_absurd_numbers_are_usage_errors() {
    let home = tempfile::tempdir().unwrap();
    let secret = "eyJhbGciOiJSUzI1NiJ9.SECRET-TOKEN-VALUE.sig";
    for args in [
        &["import", secret][..],
        &["token", &format!("--{secret}")],
        &[
            "--issuer",
            "https://iam.example/",
            "--client-id",
            "c",
            "--auth",
            secret,
            "token",
        ],
        &["--timeout", "18446744073709551615", "token"],
        &["--lock-timeout", "99999999999", "token"],
    ] {
        let out = run_in(home.path(), home.path(), args, "");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            !err.contains("SECRET") && !err.contains("panicked"),
            "{err}"
        );
        assert!(!err.contains("18446744073709551615"), "{err}");
    }
}

/// `~` in the config file is the home directory, and a relative path is the file's folder's:
/// never the working directory git runs in (the repository, where `git add -A` would commit
/// the refresh token). A relative `--cache-dir` or `--ca-file` is refused.
#[test]
fn config_paths_never_land_in_the_working_directory() {
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("repo");
    let conf_dir = home.path().join(".config/git-credential-iam");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::fs::write(
        conf_dir.join("config.toml"),
        "[account.a]\nissuer = \"https://iam.example/\"\nclient-id = \"c\"\n\
         cache-dir = \"~/.cache/iam\"\n",
    )
    .unwrap();
    let args = [
        "--account",
        "a",
        "import",
        "--access-token",
        "--expires-at",
        "2999-01-01T00:00:00Z",
    ];
    let out = run_in(home.path(), &repo, &args, "at-123\n");
    assert!(out.status.success(), "{out:?}");
    assert!(home.path().join(".cache/iam").is_dir(), "~ expanded");
    assert_eq!(
        std::fs::read_dir(&repo).unwrap().count(),
        0,
        "nothing in the repository"
    );

    std::fs::write(
        conf_dir.join("config.toml"),
        "[account.a]\nissuer = \"https://iam.example/\"\nclient-id = \"c\"\n\
         cache-dir = \"state\"\n",
    )
    .unwrap();
    let out = run_in(home.path(), &repo, &args, "at-123\n");
    assert!(out.status.success(), "{out:?}");
    assert!(
        conf_dir.join("state").is_dir(),
        "relative to the config file's folder"
    );
    assert_eq!(
        std::fs::read_dir(&repo).unwrap().count(),
        0,
        "nothing in the repository"
    );

    let out = run_in(
        home.path(),
        &repo,
        &["--cache-dir", "rel", "--account", "a", "token"],
        "",
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("absolute"));
    assert_eq!(std::fs::read_dir(&repo).unwrap().count(), 0);

    // Nor is trust material read from the repository: a relative CA file on the command line
    // (the repository could plant one) is refused before anything is read.
    std::fs::write(repo.join("ca.pem"), "planted").unwrap();
    let out = run_in(
        home.path(),
        &repo,
        &["--ca-file", "ca.pem", "--account", "a", "token"],
        "",
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("absolute"));
}
