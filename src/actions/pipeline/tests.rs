//! The sign-in pipeline driven whole through [`crate::run`] and the [`Io`] seam, against a fake
//! provider: a small HTTP server on 127.0.0.1 in a thread that serves discovery, the device flow
//! and the token endpoint, and answers refreshes as each test scripts (a new token, 400
//! `invalid_grant`, an empty 400, 500, 503, 429). Each failure class is run through `get`,
//! `token`, a narrower `token --scope` and `import`, and the cache files are checked afterwards.
//! No real HOME, config or environment is read: an empty config file, a temporary cache
//! directory and an environment that holds nothing.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::actions::Io;
use crate::store::cache::account_key;

/// The refresh token every seeded login holds.
const RT: &str = "RT-OLD-SECRET";
/// The account's scope (the default).
const SCOPE: &str = "openid offline_access";

/// One request the fake received.
#[derive(Clone, Debug)]
struct Seen {
    /// The fake's issuer, for answers that name it.
    issuer: String,
    path: String,
    body: String,
}

impl Seen {
    fn is_refresh(&self) -> bool {
        self.body.contains("grant_type=refresh_token")
    }

    /// The `scope` the request asked for (form-decoded).
    fn scope(&self) -> String {
        self.body
            .split('&')
            .find_map(|kv| kv.strip_prefix("scope="))
            .unwrap_or_default()
            .replace('+', " ")
            .replace("%20", " ")
    }
}

/// The fake provider. Dropping it stops its thread.
struct Fake {
    issuer: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

type Script = dyn Fn(&Seen) -> (u16, String) + Send + Sync;

impl Fake {
    /// Serves discovery itself and everything else through `script`.
    fn start(script: impl Fn(&Seen) -> (u16, String) + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}/");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let thread = {
            let (issuer, seen, stop) = (issuer.clone(), seen.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        serve(conn, &issuer, &seen, &*script);
                    }
                }
            })
        };
        Fake {
            issuer,
            seen,
            stop,
            addr,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn refreshes(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(Seen::is_refresh).collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes `accept`
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one HTTP/1.1 request (then closes the connection).
fn serve(conn: TcpStream, issuer: &str, seen: &Mutex<Vec<Seen>>, script: &Script) {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut length = 0;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let req = Seen {
        issuer: issuer.to_string(),
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (status, text) = if req.path == "/.well-known/openid-configuration" {
        (
            200,
            format!(
                r#"{{"issuer":"{issuer}","token_endpoint":"{issuer}token","device_authorization_endpoint":"{issuer}device"}}"#
            ),
        )
    } else {
        seen.lock().unwrap().push(req.clone());
        script(&req)
    };
    let mut conn = reader.into_inner();
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{text}",
        text.len()
    );
}

/// A token response: `access`, valid `life` seconds, with `refresh` if any.
fn token_json(access: &str, life: i64, refresh: Option<&str>) -> String {
    let rt = refresh.map_or(String::new(), |r| format!(r#","refresh_token":"{r}""#));
    format!(r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":{life}{rt}}}"#)
}

/// A device authorization answer polled every second.
fn device_json(issuer: &str) -> String {
    format!(
        r#"{{"device_code":"DEVCODE","user_code":"ABCD-EFGH","verification_uri":"{issuer}verify","expires_in":60,"interval":1}}"#
    )
}

/// What the fake answers a refresh with, by failure class.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    /// A dead login, said the standard way.
    InvalidGrant,
    /// A dead login, said glewlwyd's way: 400 with no body.
    Empty400,
    /// The provider down.
    Status(u16),
}

impl Refusal {
    /// Whether the refusal says the login is dead (not the provider down).
    fn is_dead_login(self) -> bool {
        !matches!(self, Refusal::Status(_))
    }

    fn reply(self) -> (u16, String) {
        match self {
            Refusal::InvalidGrant => (400, r#"{"error":"invalid_grant"}"#.into()),
            Refusal::Empty400 => (400, String::new()),
            Refusal::Status(s) => (s, r#"{"error":"temporarily_unavailable"}"#.into()),
        }
    }
}

/// The ways a token is asked for, each through `crate::run`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ask {
    Get,
    Token,
    /// `token --scope openid`: a narrower token from the account's login.
    Narrowed,
    /// `import`, with [`IMPORTED`] on stdin.
    Import,
}

/// The refresh token `import` reads.
const IMPORTED: &str = "RT-IMPORTED-SECRET";

/// One run's results.
struct Ran {
    code: u8,
    stdout: String,
    stderr: String,
}

/// A temporary home: an empty config file and a cache directory.
struct Home {
    dir: tempfile::TempDir,
    now: i64,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), "").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        Home { dir, now }
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// The cache file of `issuer`'s account (client `cli`) for `scope`.
    fn file(&self, issuer: &str, scope: &str) -> PathBuf {
        let key = account_key(issuer, "cli", scope, None);
        self.cache().join(format!("{key}.json"))
    }

    fn read(&self, issuer: &str, scope: &str) -> Option<serde_json::Value> {
        let bytes = std::fs::read(self.file(issuer, scope)).ok()?;
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    /// Seeds the entry of `scope` with `fields` (JSON members).
    fn seed(&self, issuer: &str, scope: &str, fields: &str) {
        crate::store::files::ensure_dir(&self.cache()).unwrap();
        let sep = if fields.is_empty() { "" } else { "," };
        let text = format!(
            r#"{{"version":1,"issuer":"{issuer}","client_id":"cli","scope":"{scope}"{sep}{fields},"updated_at":1}}"#
        );
        crate::store::files::write_atomic(&self.file(issuer, scope), text.as_bytes()).unwrap();
    }

    /// The account's login: `RT` and an access token `at` expiring `in_secs` from now.
    fn seed_login(&self, issuer: &str, at: &str, in_secs: i64) {
        let exp = self.now + in_secs;
        self.seed(
            issuer,
            SCOPE,
            &format!(r#""access_token":"{at}","expires_at":{exp},"refresh_token":"{RT}""#),
        );
    }

    /// Runs `ask` (with `extra` options) at the clock `self.now + later`.
    fn ask(&self, fake: &Fake, ask: Ask, extra: &[&str], later: i64) -> Ran {
        let (action, more, stdin): (&str, &[&str], String) = match ask {
            Ask::Get => (
                "get",
                &["--url", "https://git.example/"],
                "protocol=https\nhost=git.example\n\n".into(),
            ),
            Ask::Token => ("token", &[], String::new()),
            Ask::Narrowed => ("token", &["--scope", "openid"], String::new()),
            Ask::Import => ("import", &[], format!("{IMPORTED}\n")),
        };
        let options: Vec<&str> = more.iter().chain(extra).copied().collect();
        self.run(fake, action, &options, &stdin, later)
    }

    /// Runs `action` with `options` and `stdin` through [`crate::run`] at `self.now + later`,
    /// with an empty config file, this home's cache and an empty environment.
    fn run(&self, fake: &Fake, action: &str, options: &[&str], stdin: &str, later: i64) -> Ran {
        let config = self.dir.path().join("config.toml");
        let cache = self.cache();
        let mut args: Vec<OsString> = vec!["--config".into(), config.into()];
        args.extend(["--cache-dir".into(), cache.into()]);
        let common = [
            "--issuer",
            &fake.issuer,
            "--client-id",
            "cli",
            "--timeout",
            "5",
        ];
        let ui = ["--no-browser", "--no-qr"];
        args.extend(common.iter().chain(&ui).chain(options).map(OsString::from));
        args.push(action.into());
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let now = self.now + later;
        let clock = move || now;
        let getenv = |_: &str| None;
        let mut io = Io {
            stdout: &mut stdout,
            stderr: &mut stderr,
            stderr_is_tty: false,
            clock: &clock,
            getenv: &getenv,
        };
        let code = crate::run(args, &mut stdin.as_bytes(), &mut io);
        Ran {
            code,
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        }
    }
}

/// The token a run handed out: git's password, or `token`'s raw line.
fn handed_out(ask: Ask, r: &Ran) -> String {
    match ask {
        Ask::Get => r
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("password="))
            .unwrap_or_default()
            .to_string(),
        _ => r.stdout.trim().to_string(),
    }
}

/// A fake that answers every refresh with `status` and `body`, and nothing else.
fn on_refresh(status: u16, body: String) -> Fake {
    Fake::start(move |req| match req.is_refresh() {
        true => (status, body.clone()),
        false => (404, String::new()),
    })
}

/// A fake that answers every refresh as `refusal` says.
fn refusing(refusal: Refusal) -> Fake {
    let (status, body) = refusal.reply();
    on_refresh(status, body)
}

/// `ask`, non-interactively, with a login whose access token has expired, against a provider
/// answering `refusal`: checks that it exits with `code` after one refresh (a narrower token's
/// refused refresh is followed by one as the account, which tells a dead login from a refused
/// scope), printing nothing on stdout and making no narrower entry; returns the case with
/// stderr, and the account's entry.
fn expired_login_fails(refusal: Refusal, ask: Ask, code: u8) -> (String, serde_json::Value) {
    let fake = refusing(refusal);
    let home = Home::new();
    home.seed_login(&fake.issuer, "AT-EXPIRED", -10);
    let r = home.ask(&fake, ask, &["--non-interactive"], 0);
    let case = format!("{refusal:?} {ask:?}: {}", r.stderr);
    assert_eq!(r.code, code, "{case}");
    assert!(r.stdout.is_empty(), "{case}");
    let refreshes = fake.refreshes();
    let confirmed = ask == Ask::Narrowed && refusal.is_dead_login();
    assert_eq!(refreshes.len(), 1 + usize::from(confirmed), "{case}");
    if confirmed {
        assert_eq!(refreshes[0].scope(), "openid", "{case}");
        assert_eq!(refreshes[1].scope(), SCOPE, "{case}");
    }
    assert!(home.read(&fake.issuer, "openid").is_none(), "{case}");
    (case, home.read(&fake.issuer, SCOPE).unwrap())
}

/// `import` of [`IMPORTED`] against a provider answering `refusal`, with a login cached (its
/// access token valid `in_secs` more): checks that it exits with `code` after one refresh and
/// leaves the cache file byte for byte as it was, and returns stderr.
fn import_keeps_the_cache(refusal: Refusal, in_secs: i64, code: u8) -> String {
    let fake = refusing(refusal);
    let home = Home::new();
    home.seed_login(&fake.issuer, "AT-CACHED", in_secs);
    let before = std::fs::read(home.file(&fake.issuer, SCOPE)).unwrap();
    let r = home.ask(&fake, Ask::Import, &["--non-interactive"], 0);
    assert_eq!(r.code, code, "{refusal:?} import: {}", r.stderr);
    assert!(!r.stderr.contains(IMPORTED), "{}", r.stderr);
    assert_eq!(fake.refreshes().len(), 1);
    let after = std::fs::read(home.file(&fake.issuer, SCOPE)).unwrap();
    assert_eq!(after, before, "{refusal:?} import");
    r.stderr
}

/// A dead login — 400 `invalid_grant` or glewlwyd's empty 400 — is handled the same by `get`,
/// `token`, a narrower `token` and `import`: one refresh, no retry; the refused refresh token
/// is dropped from the cache (for `import`, never saved, and the login cached before kept);
/// without a person at hand, exit 3 naming what to do; the secret never printed.
#[test]
fn a_dead_login_is_dropped_alike_by_every_action() {
    for refusal in [Refusal::InvalidGrant, Refusal::Empty400] {
        for ask in [Ask::Get, Ask::Token, Ask::Narrowed] {
            let (case, account) = expired_login_fails(refusal, ask, 3);
            assert!(case.contains("no longer valid"), "{case}");
            assert!(case.contains("git-credential-iam login"), "{case}");
            assert!(!case.contains(RT), "{case}");
            assert!(account.get("refresh_token").is_none(), "{case}: {account}");
            assert!(account.get("access_token").is_none(), "{case}: {account}");
        }
        // `import`: the refused token was never saved; the cached login stays as it was.
        let stderr = import_keeps_the_cache(refusal, -10, 3);
        assert!(
            stderr.contains("imported refresh token was refused"),
            "{stderr}"
        );
    }
}

/// The provider down — 500, 503, 429 — is handled the same by `get`, `token` and a narrower
/// `token`: the login is kept, and a cached token that still works (if only for 30 s, below
/// the minimum lifetime) is served with a warning; with none, exit 4. `import` has no cached
/// token of the imported login to fall back on: exit 4, the cache untouched.
#[test]
fn the_provider_down_serves_the_cached_token_alike_for_every_action() {
    for status in [500, 503, 429] {
        let refusal = Refusal::Status(status);
        for ask in [Ask::Get, Ask::Token, Ask::Narrowed] {
            // A token still valid for 30 s: served.
            let fake = refusing(refusal);
            let home = Home::new();
            home.seed_login(&fake.issuer, "AT-STILL-GOOD", 30);
            let exp = home.now + 30;
            home.seed(
                &fake.issuer,
                "openid",
                &format!(r#""access_token":"AT-NARROW-STILL-GOOD","expires_at":{exp}"#),
            );
            let r = home.ask(&fake, ask, &["--non-interactive"], 0);
            let case = format!("{status} {ask:?}: {}", r.stderr);
            assert_eq!(r.code, 0, "{case}");
            let want = match ask {
                Ask::Narrowed => "AT-NARROW-STILL-GOOD",
                _ => "AT-STILL-GOOD",
            };
            assert_eq!(handed_out(ask, &r), want, "{case}");
            assert!(
                r.stderr.contains("cannot refresh") && r.stderr.contains(&status.to_string()),
                "{case}"
            );
            assert_eq!(fake.refreshes().len(), 1, "{case}");
            let account = home.read(&fake.issuer, SCOPE).unwrap();
            assert_eq!(account["refresh_token"], RT, "{case}: the login is kept");

            // No token left that works: exit 4, the login still kept.
            let (case, account) = expired_login_fails(refusal, ask, 4);
            assert_eq!(account["refresh_token"], RT, "{case}: the login is kept");
        }
        import_keeps_the_cache(refusal, 30, 4);
    }
}

/// A refresh that rotates the refresh token saves the new one to the account, whoever asked:
/// `get` and `token` with the new access token beside it; a narrower `token` with the narrower
/// access token in its own entry (which holds no refresh token) and the scope asked for sent;
/// `import` with the imported token replaced by the rotated one.
#[test]
fn a_rotated_refresh_token_is_saved_to_the_account_by_every_action() {
    for ask in [Ask::Get, Ask::Token, Ask::Narrowed, Ask::Import] {
        let fake = on_refresh(200, token_json("AT-NEW", 3600, Some("RT-ROTATED")));
        let home = Home::new();
        home.seed_login(&fake.issuer, "AT-EXPIRED", -10);
        let r = home.ask(&fake, ask, &["--non-interactive"], 0);
        let case = format!("{ask:?}: {}", r.stderr);
        assert_eq!(r.code, 0, "{case}");
        let refreshes = fake.refreshes();
        assert_eq!(refreshes.len(), 1, "{case}");
        let account = home.read(&fake.issuer, SCOPE).unwrap();
        assert_eq!(account["refresh_token"], "RT-ROTATED", "{case}: {account}");
        match ask {
            Ask::Narrowed => {
                assert!(
                    refreshes[0].body.contains("scope=openid&")
                        || refreshes[0].body.ends_with("scope=openid"),
                    "{:?}",
                    refreshes[0]
                );
                assert_eq!(account["access_token"], "AT-EXPIRED", "{case}");
                let narrow = home.read(&fake.issuer, "openid").unwrap();
                assert_eq!(narrow["access_token"], "AT-NEW", "{case}");
                assert!(narrow.get("refresh_token").is_none(), "{case}: {narrow}");
                assert_eq!(handed_out(ask, &r), "AT-NEW");
            }
            Ask::Import => {
                assert!(refreshes[0].body.contains(IMPORTED), "{case}");
                assert_eq!(account["access_token"], "AT-NEW", "{case}");
                assert!(r.stderr.contains("refresh token held"), "{case}");
            }
            Ask::Get | Ask::Token => {
                assert_eq!(account["access_token"], "AT-NEW", "{case}");
                assert_eq!(account["obtained_at"], home.now, "{case}");
                assert_eq!(handed_out(ask, &r), "AT-NEW");
            }
        }
    }
}

/// A cached token valid long enough is served with no request at all (the hot path), the
/// account's own and a narrower one alike.
#[test]
fn a_cache_hit_makes_no_request() {
    let fake = Fake::start(|_| (500, String::new()));
    let home = Home::new();
    home.seed_login(&fake.issuer, "AT-GOOD", 3000);
    let exp = home.now + 3000;
    home.seed(
        &fake.issuer,
        "openid",
        &format!(r#""access_token":"AT-NARROW","expires_at":{exp}"#),
    );
    for (ask, want) in [
        (Ask::Get, "AT-GOOD"),
        (Ask::Token, "AT-GOOD"),
        (Ask::Narrowed, "AT-NARROW"),
    ] {
        let r = home.ask(&fake, ask, &["--non-interactive"], 0);
        assert_eq!(
            (r.code, handed_out(ask, &r)),
            (0, want.to_string()),
            "{}",
            r.stderr
        );
    }
    assert!(fake.seen().is_empty(), "{:?}", fake.seen());
}

/// When the account's login is dead, a narrower `token` does what `get` does with a person at
/// hand: says so, signs in with the device flow for the account (its scope), saves that login,
/// then makes the narrower token from the new refresh token.
#[test]
fn a_narrowed_token_with_a_dead_login_signs_in_like_get() {
    let fake = Fake::start(|req| match req.path.as_str() {
        "/device" => (200, device_json(&req.issuer)),
        _ if req.body.contains("grant_type=urn") => {
            (200, token_json("AT-SIGNED-IN", 3600, Some("RT-NEW")))
        }
        _ if req.body.contains(RT) => Refusal::Empty400.reply(),
        _ if req.body.contains("RT-NEW") => (200, token_json("AT-NARROW", 3600, None)),
        _ => (404, String::new()),
    });
    let home = Home::new();
    home.seed_login(&fake.issuer, "AT-EXPIRED", -10);
    let r = home.ask(&fake, Ask::Narrowed, &["--interactive"], 0);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("a new sign-in is needed"), "{}", r.stderr);
    assert!(r.stderr.contains("ABCD-EFGH"), "{}", r.stderr);
    assert_eq!(handed_out(Ask::Narrowed, &r), "AT-NARROW");
    let device = fake
        .seen()
        .into_iter()
        .find(|s| s.path == "/device")
        .unwrap();
    assert!(
        device.body.contains("offline_access"),
        "the account's scope: {device:?}"
    );
    let account = home.read(&fake.issuer, SCOPE).unwrap();
    assert_eq!(
        (&account["refresh_token"], &account["access_token"]),
        (&"RT-NEW".into(), &"AT-SIGNED-IN".into())
    );
    let narrow = home.read(&fake.issuer, "openid").unwrap();
    assert_eq!(narrow["access_token"], "AT-NARROW");
}

/// `login` signs in anew even with a valid token cached, and saves the new login.
#[test]
fn login_forces_the_sign_in() {
    let fake = Fake::start(|req| match req.path.as_str() {
        "/device" => (200, device_json(&req.issuer)),
        _ if req.body.contains("grant_type=urn") => {
            (200, token_json("AT-LOGIN", 3600, Some("RT-LOGIN")))
        }
        _ => (500, String::new()),
    });
    let home = Home::new();
    home.seed_login(&fake.issuer, "AT-GOOD", 3000);
    let r = home.ask(&fake, Ask::Token, &["--interactive"], 0);
    assert_eq!(
        r.stdout.trim(),
        "AT-GOOD",
        "`token` serves the valid token: {}",
        r.stderr
    );
    let r = home.run(&fake, "login", &["--interactive"], "", 0);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("token cached"), "{}", r.stderr);
    assert!(fake.refreshes().is_empty());
    let account = home.read(&fake.issuer, SCOPE).unwrap();
    assert_eq!(
        (&account["refresh_token"], &account["access_token"]),
        (&"RT-LOGIN".into(), &"AT-LOGIN".into())
    );
}

/// A provider issuing 60-second tokens under the default minimum lifetime of 60 s: one
/// refresh, then the new token is served from the cache for the first half of its life (not
/// refreshed on every `get`), and refreshed once in its second half.
#[test]
fn short_lived_tokens_are_reused_for_half_their_life() {
    let fake = on_refresh(200, token_json("AT-SHORT", 60, None));
    let home = Home::new();
    home.seed_login(&fake.issuer, "AT-EXPIRED", -10);
    for (later, refreshes) in [(0, 1), (10, 1), (30, 1), (31, 2)] {
        let r = home.ask(&fake, Ask::Get, &["--non-interactive"], later);
        assert_eq!(
            (r.code, handed_out(Ask::Get, &r)),
            (0, "AT-SHORT".into()),
            "{}",
            r.stderr
        );
        assert_eq!(fake.refreshes().len(), refreshes, "at +{later} s");
    }
}

/// An entry written before `obtained_at` existed keeps today's rule: a token with less than
/// the minimum lifetime left is refreshed, however short-lived.
#[test]
fn an_entry_without_obtained_at_keeps_the_uncapped_minimum() {
    let fake = on_refresh(200, token_json("AT-NEW", 3600, None));
    let home = Home::new();
    home.seed_login(&fake.issuer, "AT-OLD", 50);
    let r = home.ask(&fake, Ask::Get, &["--non-interactive"], 0);
    assert_eq!(handed_out(Ask::Get, &r), "AT-NEW", "{}", r.stderr);
    assert_eq!(fake.refreshes().len(), 1);
}

/// Two locks are taken in one order whichever entry is the account's: a narrower token's entry
/// may be another account's own (same issuer and client, that scope), and that account's run,
/// narrowing the other way, takes the same two locks. Here the "other run" holds the entry that
/// sorts first and then wants the other one; the narrowing run must not be holding it meanwhile.
#[test]
fn two_locks_are_taken_in_one_order() {
    use crate::config::LockMode;
    use crate::store::lock::{LockFile, LockGuard};
    use std::time::Duration;
    let fake = Fake::start(|req| match req.is_refresh() {
        true => (200, token_json("AT-NARROW", 3600, None)),
        false => (404, String::new()),
    });
    let home = Home::new();
    home.seed_login(&fake.issuer, "AT-GOOD", 3000);
    let lock = |scope: &str| home.file(&fake.issuer, scope).with_extension("lock");
    // A narrower scope whose file sorts before the account's (the keys hash the fake's random
    // port too, so search: about every other scope will do).
    let scope = (0..10_000)
        .map(|i| format!("openid s{i}"))
        .find(|s| lock(s) < lock(SCOPE))
        .expect("a scope whose key sorts first");
    let scope = scope.as_str();
    let other = LockGuard::acquire(
        &LockFile::new(lock(scope), LockMode::Flock),
        Duration::ZERO,
        |_| {},
    )
    .unwrap();
    std::thread::scope(|t| {
        let run = t.spawn(|| {
            home.run(
                &fake,
                "token",
                &[
                    "--scope",
                    scope,
                    "--lock-timeout",
                    "5",
                    "--lock-mode",
                    "flock",
                ],
                "",
                0,
            )
        });
        std::thread::sleep(Duration::from_millis(500));
        let account = LockGuard::acquire(
            &LockFile::new(lock(SCOPE), LockMode::Flock),
            Duration::ZERO,
            |_| {},
        );
        assert!(
            account.is_ok(),
            "the narrowing run holds the account's lock while it waits for the other: {:?}",
            account.err().map(|e| e.to_string())
        );
        drop(account);
        drop(other);
        let r = run.join().unwrap();
        assert_eq!((r.code, r.stdout.trim()), (0, "AT-NARROW"), "{}", r.stderr);
    });
}

/// A 400 or 401 whose body is an HTML page came from a proxy, gateway or firewall in front of
/// the provider, not from its token endpoint: the login is kept (exit 4, the refresh token still
/// cached), as for a provider that is down, rather than thrown away on a middlebox's say-so.
#[test]
fn an_html_page_refusing_a_refresh_keeps_the_login() {
    for status in [400, 401] {
        let fake = on_refresh(
            status,
            "<!DOCTYPE html><html><body>Unauthorized</body></html>".into(),
        );
        let home = Home::new();
        home.seed_login(&fake.issuer, "AT-EXPIRED", -10);
        let r = home.ask(&fake, Ask::Get, &["--non-interactive"], 0);
        let case = format!("{status}: {}", r.stderr);
        assert_eq!(r.code, 4, "{case}");
        assert!(r.stderr.contains("HTML page"), "{case}");
        assert!(!r.stderr.contains("no longer valid"), "{case}");
        let account = home.read(&fake.issuer, SCOPE).unwrap();
        assert_eq!(account["refresh_token"], RT, "{case}: {account}");
    }
}

#[test]
fn an_expired_access_token_is_not_imported() {
    let fake = on_refresh(500, String::new());
    let home = Home::new();
    home.seed_login(&fake.issuer, "AT-CACHED", 3600);
    let before = std::fs::read(home.file(&fake.issuer, SCOPE)).unwrap();
    let past = (home.now - 5).to_string();
    let r = home.run(
        &fake,
        "import",
        &["--access-token", "--expires-at", &past],
        "AT-EXPIRED-SECRET\n",
        0,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("expired at"), "{}", r.stderr);
    assert!(!r.stderr.contains("AT-EXPIRED-SECRET"), "{}", r.stderr);
    assert_eq!(
        std::fs::read(home.file(&fake.issuer, SCOPE)).unwrap(),
        before,
        "the cached login stays as it was"
    );
    // A minute ahead of the clock is still a token.
    let soon = (home.now + 60).to_string();
    let r = home.run(
        &fake,
        "import",
        &["--access-token", "--expires-at", &soon],
        "AT-FRESH\n",
        0,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// A provider that refuses the narrower scope, but still refreshes the account's own: the
/// narrower refusal is no dead login. The login is kept (with its rotated refresh token), and
/// the error names the scope and the options.
#[test]
fn a_refused_narrower_scope_keeps_the_login() {
    for refusal in [Refusal::InvalidGrant, Refusal::Empty400] {
        let (status, body) = refusal.reply();
        let fake = Fake::start(move |req| {
            match (req.is_refresh(), req.scope().as_str()) {
            (true, "openid") => (status, body.clone()),
            (true, _) => (
                200,
                r#"{"access_token":"AT-ACCOUNT-NEW","token_type":"Bearer","expires_in":3600,"refresh_token":"RT-ROTATED"}"#.into(),
            ),
            _ => (404, String::new()),
        }
        });
        let home = Home::new();
        home.seed_login(&fake.issuer, "AT-EXPIRED", -10);
        let r = home.ask(&fake, Ask::Narrowed, &["--non-interactive"], 0);
        let case = format!("{refusal:?}: {}", r.stderr);
        assert_eq!(r.code, 4, "{case}");
        assert!(r.stdout.is_empty(), "{case}");
        assert!(r.stderr.contains("scope \"openid\""), "{case}");
        assert!(r.stderr.contains("--scope"), "{case}");
        assert!(!r.stderr.contains("RT-"), "{case}");
        let account = home.read(&fake.issuer, SCOPE).unwrap();
        assert_eq!(account["refresh_token"], "RT-ROTATED", "{case}");
        assert_eq!(account["access_token"], "AT-ACCOUNT-NEW", "{case}");
        assert!(home.read(&fake.issuer, "openid").is_none(), "{case}");
    }
}
