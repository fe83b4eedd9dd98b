//! `token` and `import` against the real test provider: every output format (the header accepted
//! by a loopback server that checks it at introspection, the ExecCredential parsed as JSON, the
//! WLCG file's mode and content, and its refusal of a symlink or of another user's file),
//! narrower-scope tokens cached under their own key, a CI job that imports a refresh token and
//! then clones with no prompt, and the documented exit codes.

use crate::support;

use std::fs;
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::{Account, GitAuth, GitServer, Idp, PUBLIC_CLIENT};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

/// A CI job's account: the helper runs with `CI=true`.
struct Ci {
    acct: Account,
}

impl Ci {
    fn new(idp: &Idp) -> Ci {
        Ci {
            acct: Account::new(idp.issuer(), PUBLIC_CLIENT, &[]),
        }
    }

    fn home(&self) -> &std::path::Path {
        self.acct.home()
    }

    fn run(&self, args: &[&str], input: &str) -> Output {
        let mut c = self.acct.cmd_args(args);
        c.env("CI", "true");
        support::run_with_input(c, input, T)
    }

    /// Seeds the cache the way a CI job does: a refresh token from a masked secret, on stdin.
    fn import_refresh_token(&self, idp: &Idp) -> String {
        let tok = idp.device_flow_token(PUBLIC_CLIENT, "openid offline_access");
        let rt = tok["refresh_token"]
            .as_str()
            .expect("a refresh token")
            .to_string();
        let out = self.run(&["import"], &format!("{rt}\n"));
        assert!(out.status.success(), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("imported") && !err.contains(&rt), "{err}");
        rt
    }
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn import_then_every_format() {
    let idp = Idp::start();
    let server = GitServer::start(&idp, GitAuth::Bearer);
    let ci = Ci::new(&idp);
    let rt = ci.import_refresh_token(&idp);
    assert!(
        !idp.introspect(&rt),
        "the import's refresh rotated the imported token"
    );

    let raw = stdout(&ci.run(&["token"], ""));
    let token = raw.strip_suffix('\n').expect("raw ends in a newline");
    assert!(!token.is_empty() && !token.contains('\n'));
    assert!(idp.introspect(token));

    idp.reset_counters();
    let header = stdout(&ci.run(&["token", "--format", "header"], ""));
    assert_eq!(header, format!("Authorization: Bearer {token}\n"));
    // The header, as curl would send it, is accepted by a server that introspects it.
    let url = format!("{}/info/refs?service=git-upload-pack", server.repo_url());
    let resp = ureq::get(&url)
        .header(
            "Authorization",
            header.trim_end().strip_prefix("Authorization: ").unwrap(),
        )
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    let json: Value =
        serde_json::from_str(&stdout(&ci.run(&["token", "--format", "json"], ""))).unwrap();
    assert_eq!(json["access_token"], token);
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["issuer"], idp.issuer());
    assert!(json["expires_at"].as_i64().unwrap() > 1_700_000_000);

    let exec: Value = serde_json::from_str(&stdout(
        &ci.run(&["token", "--format", "exec-credential"], ""),
    ))
    .unwrap();
    assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(exec["kind"], "ExecCredential");
    assert_eq!(exec["status"]["token"], token);
    assert!(
        exec["status"]["expirationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let path = stdout(&ci.run(&["token", "--format", "wlcg"], ""));
    let path = std::path::PathBuf::from(path.trim_end());
    assert_eq!(path, ci.home().join("run").join(format!("bt_u{}", uid())));
    assert_eq!(fs::read_to_string(&path).unwrap(), format!("{token}\n"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert_eq!(
        idp.counters()["token"]["refresh_token"],
        0,
        "every format came from the cache"
    );
}

#[cfg(unix)]
fn uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").unwrap().uid()
}

#[test]
fn narrower_scope_is_cached_under_its_own_key() {
    let idp = Idp::start();
    let ci = Ci::new(&idp);
    ci.import_refresh_token(&idp);
    let full = stdout(&ci.run(&["token"], "")).trim().to_string();
    idp.reset_counters();
    let narrow = stdout(&ci.run(&["token", "--scope", "openid"], ""))
        .trim()
        .to_string();
    assert_ne!(narrow, full);
    assert_eq!(idp.token_requests("refresh_token"), 1);
    let info = idp.introspection(&narrow);
    assert_eq!(info["active"], true);
    assert!(
        !info["scope"]
            .as_str()
            .unwrap_or("")
            .contains("offline_access"),
        "{info}"
    );
    // Again: from its own cache entry, no provider request.
    let again = stdout(&ci.run(&["token", "--scope", "openid"], ""))
        .trim()
        .to_string();
    assert_eq!(again, narrow);
    assert_eq!(idp.token_requests("refresh_token"), 1);
    // The account's login survived the rotation the narrowing refresh caused.
    let status = stdout(&ci.run(&["status"], ""));
    assert!(
        status.matches("refresh token: held").count() >= 1,
        "{status}"
    );
    let out = ci.run(&["token", "--min-lifetime", "999999"], "");
    assert!(
        out.status.success(),
        "the rotated refresh token was saved to the account: {out:?}"
    );
}

#[test]
fn imported_login_clones_with_no_prompt() {
    let idp = Idp::start();
    let server = GitServer::start(&idp, GitAuth::Bearer);
    let ci = Ci::new(&idp);
    ci.import_refresh_token(&idp);
    idp.reset_counters();
    let helper = format!(
        "{} --issuer {} --client-id {PUBLIC_CLIENT} --url {}/ --non-interactive",
        support::helper_path().display(),
        idp.issuer(),
        server.url()
    );
    let mut git = support::git_cmd(ci.home());
    git.current_dir(ci.home()).env("CI", "true").args([
        "-c",
        &format!("credential.helper={helper}"),
        "clone",
        "-q",
        &server.repo_url(),
        "w",
    ]);
    let out = support::run_with_input(git, "", Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ci.home().join("w/.git").is_dir());
    assert_eq!(idp.counters()["device_authorization"], 0);
}

#[test]
fn exit_codes_are_distinct_and_fast() {
    let idp = Idp::shared();
    let ci = Ci::new(idp);
    let start = Instant::now();
    let out = ci.run(&["token"], "");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "no login fails in well under a second"
    );
    assert_eq!(out.status.code(), Some(3), "login needed: {out:?}");
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("git-credential-iam login"));

    assert_eq!(
        ci.run(&["token", "--format", "yaml"], "").status.code(),
        Some(2),
        "usage"
    );
    assert_eq!(
        ci.run(&["import"], "not a token\n").status.code(),
        Some(2),
        "bad input"
    );
    let out = ci.run(&["import"], "dead-refresh-token\n");
    assert_eq!(
        out.status.code(),
        Some(3),
        "a refused refresh token needs a login: {out:?}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("dead-refresh-token"));

    let mut c = support::helper_cmd(ci.home());
    c.args([
        "--issuer",
        "http://127.0.0.1:9/",
        "--client-id",
        "x",
        "--timeout",
        "2",
        "import",
    ]);
    let out = support::run_with_input(c, "some-token\n", T);
    assert_eq!(out.status.code(), Some(4), "provider unreachable: {out:?}");
}

#[test]
fn import_access_token_with_expiry() {
    let idp = Idp::shared();
    let ci = Ci::new(idp);
    let tok = idp.device_flow_token(PUBLIC_CLIENT, "openid");
    let at = tok["access_token"].as_str().unwrap();
    let out = ci.run(&["import", "--access-token"], &format!("{at}\n"));
    assert_eq!(
        out.status.code(),
        Some(2),
        "an opaque token needs --expires-at: {out:?}"
    );
    let exp = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600)
        .to_string();
    let out = ci.run(
        &["import", "--access-token", "--expires-at", &exp],
        &format!("{at}\n"),
    );
    assert!(out.status.success(), "{out:?}");
    let json: Value =
        serde_json::from_str(&stdout(&ci.run(&["token", "--format", "json"], ""))).unwrap();
    assert_eq!(json["access_token"], at);
    assert_eq!(json["expires_at"].as_i64().unwrap().to_string(), exp);
}

/// The WLCG token file's place taken by a symbolic link, or (as root) by a file another user
/// owns: refused with the cause and the fix, the token written through neither.
#[cfg(unix)]
#[test]
fn wlcg_file_refuses_a_symlink_and_another_users_file() {
    let idp = Idp::shared();
    let ci = Ci::new(idp);
    ci.import_refresh_token(idp);
    let path = ci.home().join("run").join(format!("bt_u{}", uid()));
    let fix = "set XDG_RUNTIME_DIR or BEARER_TOKEN_FILE to a path you own";

    let elsewhere = ci.home().join("elsewhere");
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    let out = ci.run(&["token", "--format", "wlcg"], "");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        err.contains("symbolic link") && err.contains(&path.display().to_string()),
        "{err}"
    );
    assert!(err.contains(fix), "{err}");
    assert!(
        fs::symlink_metadata(&path).unwrap().is_symlink(),
        "the link stays"
    );
    assert!(!elsewhere.exists(), "nothing written through the link");
    fs::remove_file(&path).unwrap();

    if !support::needs_root(
        "wlcg_file_refuses_a_symlink_and_another_users_file (file of uid 65534)",
    ) {
        return;
    }
    fs::write(&path, "theirs\n").unwrap();
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    let out = ci.run(&["token", "--format", "wlcg"], "");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        err.contains(&format!("another user (uid 65534) owns {}", path.display())),
        "{err}"
    );
    assert!(err.contains(fix), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "theirs\n");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::symlink_metadata(&path).unwrap().uid(), 65534);
    // The token itself is still good: the raw format prints it, and it is not in the error.
    let token = stdout(&ci.run(&["token"], "")).trim().to_string();
    assert!(!err.contains(&token));
}
