//! The server recipe of `contrib/server/` on the real stack: Apache httpd with mod_auth_openidc
//! as an OAuth 2.0 resource server (introspection at the provider, `Require claim aud:…`) in
//! front of `git http-backend`, rendered from the shipped templates. The test provider runs over
//! https with a throwaway CA (mod_auth_openidc talks https only) and turns IAM's `audience`
//! parameter into the token's `aud` (`--audience-resource`). Real git and the helper, logged in
//! beforehand with `import`: clone and push in `--auth auto`, `bearer` and `basic` modes, checked
//! in Apache's access log (REMOTE_USER and the Authorization scheme); then a token for another
//! audience and an expired token, each refused with 401, after which git's `erase` and the
//! helper's refresh make the next git command work with no new sign-in.
//!
//! Skips, saying so on stderr, when apache2 or libapache2-mod-auth-openidc is missing.

use crate::support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::{
    AccessLine, Apache, ApacheSite, CONF_CLIENT, CONF_SECRET, DEVICE_GRANT, Idp, IdpOptions,
    PUBLIC_CLIENT, RS_CLIENT, RS_SECRET, TestCa,
};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);
/// The audience the server requires (`Require claim aud:…`) and the helper asks for.
const AUDIENCE: &str = "https://git.example.org";
/// Another server's audience.
const OTHER_AUDIENCE: &str = "https://other.example.org";
const SCOPE: &str = "openid offline_access read:git write:git";
/// Lifetime of [`CONF_CLIENT`]'s access tokens at this provider: the expired-token case.
const SHORT_TTL: u64 = 2;

struct Stack {
    idp: Idp,
    ca: TestCa,
    apache: Apache,
    home: tempfile::TempDir,
}

impl Stack {
    fn provider_post(&self, path: &str, auth: Option<&str>, form: &[(&str, &str)]) -> Value {
        let (status, body) =
            support::post_form_trusting(&self.ca.ca, &self.idp.url(path), auth, form);
        assert_eq!(status, 200, "POST {path}: {body}");
        body
    }

    fn counters(&self) -> Value {
        support::get_json_trusting(&self.ca.ca, &self.idp.url("/__counters"))
    }

    fn reset_counters(&self) {
        self.provider_post("/__counters/reset", None, &[]);
    }

    fn active(&self, token: &str) -> bool {
        let auth = support::basic_auth(RS_CLIENT, RS_SECRET);
        self.provider_post("/token/introspection", Some(&auth), &[("token", token)])["active"]
            == Value::Bool(true)
    }

    /// A device flow for `resources`, approved by alice (approve.js trusting the test CA);
    /// returns the refresh token.
    fn device_grant(&self, client: &str, auth: Option<&str>, resources: &[&str]) -> String {
        let mut form = vec![("client_id", client), ("scope", SCOPE)];
        form.extend(resources.iter().map(|r| ("resource", *r)));
        let da = self.provider_post("/device/auth", auth, &form);
        let mut cmd = Command::new("node");
        cmd.arg(support::idp_dir().join("approve.js"))
            .args(["--issuer", self.idp.issuer(), "--user-code"])
            .arg(da["user_code"].as_str().unwrap())
            .env("NODE_EXTRA_CA_CERTS", &self.ca.ca)
            .current_dir(support::idp_dir());
        let out = support::run_with_input(cmd, "", T);
        assert!(out.status.success(), "approve.js: {out:?}");
        let tok = self.provider_post(
            "/token",
            auth,
            &[
                ("grant_type", DEVICE_GRANT),
                ("client_id", client),
                ("device_code", da["device_code"].as_str().unwrap()),
            ],
        );
        tok["refresh_token"].as_str().expect("refresh_token").into()
    }

    /// Refreshes `rt` for `audience`: (access token, the rotated refresh token).
    fn refresh(
        &self,
        client: &str,
        auth: Option<&str>,
        rt: &str,
        audience: &str,
    ) -> (String, String) {
        let tok = self.provider_post(
            "/token",
            auth,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", client),
                ("refresh_token", rt),
                ("scope", SCOPE),
                ("audience", audience),
            ],
        );
        let s = |k: &str| {
            tok[k]
                .as_str()
                .unwrap_or_else(|| panic!("{k}: {tok}"))
                .to_string()
        };
        (s("access_token"), s("refresh_token"))
    }

    /// The account's options, as on the helper line.
    fn account_args(&self) -> Vec<String> {
        [
            "--issuer",
            self.idp.issuer(),
            "--client-id",
            PUBLIC_CLIENT,
            "--scope",
            SCOPE,
            "--audience",
            AUDIENCE,
            "--ca-file",
            self.ca.ca.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    }

    /// The README's recipe: a helper line scoped to the server and tied to it with `--url`.
    fn configure(&self, auth: &str) {
        let quoted: Vec<String> = self
            .account_args()
            .iter()
            .map(|a| format!("'{a}'"))
            .collect();
        let line = format!(
            "{} {} --url {}/ --auth {auth} --non-interactive",
            support::helper_path().display(),
            quoted.join(" "),
            self.apache.url()
        );
        let key = format!("credential.{}/.helper", self.apache.url());
        for (k, v) in [
            (key.as_str(), line.as_str()),
            ("user.name", "Test"),
            ("user.email", "test@example.org"),
        ] {
            ok(self.git(self.home.path(), &["config", "--global", k, v]));
        }
    }

    fn git(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = support::git_cmd(self.home.path());
        cmd.current_dir(dir).args(args);
        support::run_with_input(cmd, "", T)
    }

    fn cache_file(&self) -> std::path::PathBuf {
        let dir = self.home.path().join(".local/state/git-credential-iam");
        let mut files = support::account_cache_files(&dir);
        assert_eq!(files.len(), 1, "one account cached: {files:?}");
        files.pop().unwrap()
    }

    fn cache(&self) -> Value {
        serde_json::from_slice(&fs::read(self.cache_file()).unwrap()).unwrap()
    }

    /// Makes the cache serve `token` as if it were valid for another hour.
    fn plant_access_token(&self, token: &str) {
        let mut entry = self.cache();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        entry["access_token"] = token.into();
        entry["expires_at"] = (now + 3600).into();
        fs::write(self.cache_file(), entry.to_string()).unwrap();
    }

    /// The access-log lines written since `mark` lines.
    fn log_since(&self, mark: usize) -> Vec<AccessLine> {
        self.apache.access_log().split_off(mark)
    }
}

use support::ok;

/// Clone, commit, push in one `--auth` mode; the push must land in the served repository.
fn clone_and_push(s: &Stack, auth: &str) -> Vec<AccessLine> {
    s.configure(auth);
    let mark = s.apache.access_log().len();
    let work = s.home.path().join(format!("work-{auth}"));
    ok(s.git(
        s.home.path(),
        &["clone", "-q", &s.apache.repo_url(), work.to_str().unwrap()],
    ));
    fs::write(work.join(format!("{auth}.txt")), auth).unwrap();
    ok(s.git(&work, &["add", "."]));
    ok(s.git(&work, &["commit", "-qm", auth]));
    ok(s.git(&work, &["push", "-q", "origin", "HEAD:main"]));
    let head = String::from_utf8(ok(s.git(&work, &["rev-parse", "HEAD"])).stdout).unwrap();
    assert_eq!(s.apache.rev_parse("main"), head.trim(), "the push arrived");
    s.log_since(mark)
}

/// Every request that got through carried `scheme` and the token's `sub` as REMOTE_USER;
/// the push went through git-receive-pack (which http-backend allows only with a REMOTE_USER).
fn assert_served(lines: &[AccessLine], scheme: &str) {
    let served: Vec<_> = lines.iter().filter(|l| l.status == 200).collect();
    assert!(served.len() >= 4, "{lines:#?}");
    for l in &served {
        assert_eq!(
            (l.user.as_str(), l.scheme.as_str()),
            ("alice", scheme),
            "{l:?}"
        );
    }
    assert!(
        served.iter().any(|l| l
            .request
            .starts_with("POST /git/repo.git/git-receive-pack ")),
        "{lines:#?}"
    );
    // The only refusals are git's first, anonymous, requests.
    for l in lines.iter().filter(|l| l.status != 200) {
        assert_eq!((l.status, l.scheme.as_str()), (401, "-"), "{lines:#?}");
    }
}

/// `git ls-remote` fails with the planted token (401, then git's `erase`), and the next one
/// works after a silent refresh.
fn refused_then_recovered(s: &Stack, planted: &str, what: &str) -> Vec<AccessLine> {
    s.plant_access_token(planted);
    s.reset_counters();
    let mark = s.apache.access_log().len();
    let out = s.git(s.home.path(), &["ls-remote", &s.apache.repo_url()]);
    assert!(!out.status.success(), "{what}: accepted?");
    let refused = s.log_since(mark);
    assert!(
        refused
            .iter()
            .any(|l| l.status == 401 && l.scheme == "Bearer"),
        "{what}: {refused:#?}"
    );
    assert!(refused.iter().all(|l| l.status == 401), "{refused:#?}");
    let entry = s.cache();
    assert!(
        entry.get("access_token").is_none(),
        "{what}: erased: {entry}"
    );
    assert!(entry["refresh_token"].is_string(), "{what}: kept the login");

    let mark = s.apache.access_log().len();
    ok(s.git(s.home.path(), &["ls-remote", &s.apache.repo_url()]));
    let c = s.counters();
    assert_eq!(c["token"]["refresh_token"], 1, "{what}: one refresh: {c}");
    assert_eq!(c["device_authorization"], 0, "{what}: no sign-in: {c}");
    let fresh = s.cache()["access_token"].as_str().unwrap().to_string();
    assert_ne!(fresh, planted);
    refused
        .into_iter()
        .chain(s.log_since(mark))
        .collect::<Vec<_>>()
}

#[test]
fn apache_mod_auth_openidc_serves_git_to_iam_tokens() {
    let Some(install) = support::needs_apache("apache_mod_auth_openidc_serves_git_to_iam_tokens")
    else {
        return;
    };
    let started = Instant::now();
    let certs = tempfile::tempdir().unwrap();
    let ca = support::make_test_ca(certs.path());
    let idp = Idp::start_with(IdpOptions {
        extra_args: [
            ca.provider_args(),
            vec![
                "--audience-resource".into(),
                "--client-access-ttl".into(),
                format!("{CONF_CLIENT}={SHORT_TTL}"),
            ],
        ]
        .concat(),
        ..IdpOptions::default()
    });
    assert!(idp.issuer().starts_with("https://"), "{}", idp.issuer());
    let apache = Apache::start(
        &install,
        &ApacheSite {
            introspection_endpoint: &idp.url("/token/introspection"),
            client_id: RS_CLIENT,
            client_secret: RS_SECRET,
            ca_bundle: &ca.ca,
            audience: AUDIENCE,
        },
    );
    let s = Stack {
        idp,
        ca,
        apache,
        home: tempfile::tempdir().unwrap(),
    };

    // Without a token: 401, and the challenge names Bearer only (the helper's auto mode then
    // answers Bearer; in Basic mode git sends Basic anyway, which the module accepts).
    let resp = ureq::get(format!(
        "{}/info/refs?service=git-upload-pack",
        s.apache.repo_url()
    ))
    .config()
    .http_status_as_error(false)
    .build()
    .call()
    .unwrap();
    assert_eq!(resp.status(), 401);
    let challenges: Vec<_> = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        challenges.len() == 1 && challenges[0].starts_with("Bearer "),
        "{challenges:?}"
    );

    // One sign-in, for both audiences; a token for the other one, then the helper's login.
    let rt = s.device_grant(PUBLIC_CLIENT, None, &[AUDIENCE, OTHER_AUDIENCE]);
    let (other_token, rt) = s.refresh(PUBLIC_CLIENT, None, &rt, OTHER_AUDIENCE);
    // A short-lived token for the right audience (another client of the same provider).
    let conf = support::basic_auth(CONF_CLIENT, CONF_SECRET);
    let conf_rt = s.device_grant(CONF_CLIENT, Some(&conf), &[AUDIENCE]);
    let (short_token, _) = s.refresh(CONF_CLIENT, Some(&conf), &conf_rt, AUDIENCE);

    let mut import = support::helper_cmd(s.home.path());
    import.args(s.account_args()).arg("import");
    let out = support::run_with_input(import, &format!("{rt}\n"), T);
    assert!(out.status.success(), "import: {out:?}");
    assert!(
        !s.active(&rt),
        "import refreshed (rotated) the refresh token"
    );

    // Clone and push in each mode.
    s.reset_counters();
    assert_served(&clone_and_push(&s, "auto"), "Bearer");
    assert_served(&clone_and_push(&s, "bearer"), "Bearer");
    assert_served(&clone_and_push(&s, "basic"), "Basic");
    let c = s.counters();
    assert_eq!(c["device_authorization"], 0, "no sign-in: {c}");
    assert_eq!(c["token"]["refresh_token"], 0, "one token served all: {c}");
    assert_eq!(
        c["introspection"], 1,
        "the module introspected it once and cached the answer: {c}"
    );

    // A token for another audience: active at the provider, refused by `Require claim aud:`.
    s.configure("auto");
    assert!(s.active(&other_token));
    let lines = refused_then_recovered(&s, &other_token, "other audience");
    assert!(
        lines.iter().any(|l| l.status == 401 && l.user == "alice"),
        "authenticated, not authorized: {lines:#?}"
    );

    // An expired token (the cache says it is valid): the provider's introspection says inactive.
    let deadline = Instant::now() + Duration::from_secs(SHORT_TTL + 10);
    while s.active(&short_token) {
        assert!(Instant::now() < deadline, "the short token never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    let lines = refused_then_recovered(&s, &short_token, "expired");
    assert!(
        lines.iter().any(|l| l.status == 401 && l.user == "-"),
        "{lines:#?}"
    );
    eprintln!("apache_e2e: {:?}", started.elapsed());
}
