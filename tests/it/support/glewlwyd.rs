//! A second, independent provider for the end-to-end tests: Debian's `glewlwyd` 2.7 (a C SSO
//! server whose OpenID Connect plugin does the device flow, refresh tokens, the password grant,
//! `client_secret_basic` and revocation). [`Glewlwyd::start`] creates an sqlite database in a
//! temporary folder from the package's init script, starts the server on 127.0.0.1 with
//! `tests/glewlwyd/glewlwyd.conf.in`, waits (bounded) until it answers, logs in as the built-in
//! admin and applies `tests/glewlwyd/setup.json` through the admin API. [`Glewlwyd::approve`]
//! does what a person does on the verification page: log in as the user, grant the client its
//! scopes, and submit the user code.
//!
//! The server runs under `sh`, which kills it when its stdin closes: when the [`Glewlwyd`] is
//! dropped, and when the test process dies without dropping it (a `static`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The test user, its password and display name (the ID token's `name`).
pub const USER: &str = "alice";
pub const USER_PASSWORD: &str = "wonderland";
pub const USER_NAME: &str = "Alice Liddell";
/// A public client with the device flow and refresh tokens.
pub const PUBLIC_CLIENT: &str = "public-cli";
/// A confidential client (password grant, device flow, refresh) with [`CONF_SECRET`].
pub const CONF_CLIENT: &str = "conf-cli";
/// [`CONF_CLIENT`]'s secret: base64-like, with `+ / =`, which glewlwyd does not form-decode.
pub const CONF_SECRET: &str = "s3c+r/t=b4se64+/==";
/// The scopes alice holds: `profile` exists but is not hers, so asking for it shows a grant
/// narrower than the request.
pub const USER_SCOPES: &str = "openid offline_access";

/// The package's sqlite init script (creates the admin user `admin`/`password`).
const INIT_SQL: &str = "/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz";
/// Bound on the server's start.
const READY: Duration = Duration::from_secs(15);
/// Bound on one HTTP request.
const HTTP: Duration = Duration::from_secs(10);

/// A running glewlwyd.
pub struct Glewlwyd {
    child: Child,
    stdin: Option<ChildStdin>,
    dir: tempfile::TempDir,
    base: String,
}

/// Where the server's files live in the repository.
fn files_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/glewlwyd")
}

/// Whether glewlwyd is installed (the binary and the package's init script).
pub fn installed() -> bool {
    Command::new("glewlwyd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && Path::new(INIT_SQL).is_file()
}

/// Says, past the test harness's capture, that `test` was skipped because glewlwyd is missing;
/// true when it is (the test then returns).
pub fn missing(test: &str) -> bool {
    if installed() {
        return false;
    }
    super::skip(
        test,
        "needs glewlwyd (apt-get install glewlwyd; .ci/run installs it)",
    );
    true
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(HTTP))
        .build()
        .new_agent()
}

/// A reply: status, `Location`, `Set-Cookie` session value, body.
struct Reply {
    status: u16,
    location: String,
    session: Option<String>,
    body: String,
}

fn reply(url: &str, r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.unwrap_or_else(|e| panic!("{url}: {e}"));
    let header = |name: &str| -> Vec<String> {
        r.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    };
    let location = header("location").concat();
    let session = header("set-cookie").iter().find_map(|c| {
        c.split(';')
            .next()
            .and_then(|kv| kv.trim().strip_prefix("GLEWLWYD2_SESSION_ID="))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    });
    Reply {
        status: r.status().as_u16(),
        location,
        session,
        body: r.body_mut().read_to_string().unwrap_or_default(),
    }
}

impl Glewlwyd {
    /// Starts and configures a server. Panics (with its log) when anything fails.
    pub fn start() -> Glewlwyd {
        let dir = tempfile::Builder::new()
            .prefix("gci-glewlwyd-")
            .tempdir()
            .expect("tempdir");
        let db = dir.path().join("glewlwyd.db");
        let init = Command::new("sh")
            .arg("-c")
            .arg("zcat \"$1\" | sqlite3 \"$2\"")
            .args(["sh", INIT_SQL])
            .arg(&db)
            .output()
            .expect("run zcat | sqlite3");
        assert!(
            init.status.success(),
            "cannot create the glewlwyd database: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let conf = fs::read_to_string(files_dir().join("glewlwyd.conf.in"))
            .expect("tests/glewlwyd/glewlwyd.conf.in")
            .replace("@PORT@", &port.to_string())
            .replace("@DIR@", dir.path().to_str().expect("utf-8 temp path"));
        let conf_path = dir.path().join("glewlwyd.conf");
        fs::write(&conf_path, conf).unwrap();
        let log = fs::File::create(dir.path().join("glewlwyd.log")).unwrap();
        // `sh` starts the server, waits for its own stdin to close, then stops it.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("glewlwyd --config-file=\"$1\" & pid=$!; cat >/dev/null; kill $pid; wait $pid")
            .args(["sh"])
            .arg(&conf_path)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run glewlwyd");
        let stdin = child.stdin.take();
        let mut g = Glewlwyd {
            child,
            stdin,
            dir,
            base: format!("http://127.0.0.1:{port}"),
        };
        g.wait_ready();
        g.configure();
        g
    }

    /// Polls `/config` until the server answers (at most [`READY`]).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(500)))
            .build()
            .new_agent();
        loop {
            if let Ok(r) = agent.get(&format!("{}/config", self.base)).call()
                && r.status() == 200
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "glewlwyd exited ({status}) before it was ready:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "glewlwyd did not answer within {READY:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Logs in as `username` with `password`: the session cookie's value.
    fn login(&self, username: &str, password: &str) -> String {
        let url = format!("{}/api/auth/", self.base);
        let r = reply(
            &url,
            agent()
                .post(&url)
                .header("Content-Type", "application/json")
                .send(serde_json::json!({"username": username, "password": password}).to_string()),
        );
        assert_eq!(r.status, 200, "login as {username}: {}", r.body);
        r.session
            .unwrap_or_else(|| panic!("no session cookie for {username}"))
    }

    /// A request with the session `cookie` and a JSON body.
    fn call(&self, method: &str, path: &str, cookie: &str, body: Option<&Value>) -> Reply {
        let url = format!("{}{path}", self.base);
        let cookie = format!("GLEWLWYD2_SESSION_ID={cookie}");
        let a = agent();
        let r = match (method, body) {
            ("GET", _) => a.get(&url).header("Cookie", &cookie).call(),
            (m, Some(b)) => {
                let req = match m {
                    "PUT" => a.put(&url),
                    _ => a.post(&url),
                };
                req.header("Cookie", &cookie)
                    .header("Content-Type", "application/json")
                    .send(b.to_string())
            }
            (m, None) => panic!("{m} {path} needs a body"),
        };
        reply(&url, r)
    }

    /// Applies `tests/glewlwyd/setup.json` as the built-in admin.
    fn configure(&self) {
        let text = fs::read_to_string(files_dir().join("setup.json"))
            .expect("tests/glewlwyd/setup.json")
            .replace("@ISSUER@", &self.issuer());
        let setup: Value = serde_json::from_str(&text).expect("setup.json is JSON");
        let admin = self.login("admin", "password");
        for step in setup["requests"].as_array().expect("requests") {
            let path = step[0].as_str().expect("a path");
            let r = self.call("POST", path, &admin, Some(&step[1]));
            assert_eq!(r.status, 200, "POST {path}: {}\n{}", r.body, self.log());
        }
    }

    /// The OIDC plugin's issuer (`http://127.0.0.1:PORT/api/oidc`, no trailing slash).
    pub fn issuer(&self) -> String {
        format!("{}/api/oidc", self.base)
    }

    /// `127.0.0.1:PORT`, the host the helper names.
    pub fn host(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    /// Approves `user_code` for `client_id` as [`USER`], granting it `scope`: the person's part
    /// of a device sign-in. Panics unless glewlwyd says the device is connected.
    pub fn approve(&self, client_id: &str, user_code: &str, scope: &str) {
        let session = self.login(USER, USER_PASSWORD);
        let r = self.call(
            "PUT",
            &format!("/api/auth/grant/{client_id}"),
            &session,
            Some(&serde_json::json!({ "scope": scope })),
        );
        assert_eq!(r.status, 200, "grant: {}", r.body);
        let r = self.call(
            "GET",
            &format!("/api/oidc/device?code={user_code}&g_continue"),
            &session,
            None,
        );
        assert!(
            r.status == 302 && r.location.contains("prompt=deviceComplete"),
            "approving {user_code}: {} {}\n{}",
            r.status,
            r.location,
            self.log()
        );
    }

    /// A refresh at the token endpoint with `refresh_token` for `client_id` (with `secret`, sent
    /// raw in Basic, the way glewlwyd reads it): the status (glewlwyd answers a dead one with an
    /// empty 400).
    pub fn refresh_status_for(
        &self,
        client_id: &str,
        secret: Option<&str>,
        refresh_token: &str,
    ) -> u16 {
        let url = format!("{}/token", self.issuer());
        let mut req = agent().post(&url);
        if let Some(s) = secret {
            req = req.header(
                "Authorization",
                format!(
                    "Basic {}",
                    super::base64(format!("{client_id}:{s}").as_bytes())
                ),
            );
        }
        let r = req.send_form([
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh_token),
        ]);
        reply(&url, r).status
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        fs::read(self.dir.path().join("glewlwyd.log"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .replace('\0', "")
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }
}

impl Drop for Glewlwyd {
    fn drop(&mut self) {
        drop(self.stdin.take()); // sh stops the server
        let _ = self.child.wait();
    }
}
