//! Real `git clone` and `git push` through the helper, over a loopback smart-HTTP server
//! (`git http-backend`) that checks every token at the provider's introspection endpoint: once
//! answering git in Bearer form (authtype capability), once in Basic form (username/password),
//! plus the large-push case of Bearer mode and its `http.postBuffer` workaround.

use crate::support;

use std::fs;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::support::{GitAuth, GitServer, Idp, Lines, PUBLIC_CLIENT, find_user_code};

const T: Duration = Duration::from_secs(60);

fn git(home: &Path, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = support::git_cmd(home);
    cmd.current_dir(dir).args(args);
    support::run_with_input(cmd, "", T)
}

use support::ok;

/// A home whose global git config uses the helper for the provider, tied to `server`.
fn configure(idp: &Idp, server: &GitServer, home: &Path, extra: &str) {
    let helper = support::helper_path();
    let line = format!(
        "{} --issuer {} --client-id {PUBLIC_CLIENT} --url {}/ --interactive {extra}",
        helper.display(),
        idp.issuer(),
        server.url()
    );
    let cfg = home.join(".gitconfig");
    for (k, v) in [
        ("credential.helper", line.as_str()),
        ("user.name", "Test"),
        ("user.email", "test@example.org"),
        ("init.defaultBranch", "main"),
    ] {
        let out = support::run_with_input(
            {
                let mut c = support::git_cmd(home);
                c.args(["config", "--file"]).arg(&cfg).args([k, v]);
                c
            },
            "",
            T,
        );
        assert!(out.status.success());
    }
}

/// `git clone` with the device flow: reads the code from git's stderr (the helper's stderr is
/// git's), approves it, and waits for the clone.
fn clone_with_sign_in(idp: &Idp, home: &Path, url: &str) {
    let mut cmd = support::git_cmd(home);
    cmd.current_dir(home)
        .args(["clone", url, "work"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = Lines::spawn(child.stderr.take().unwrap());
    let line = lines
        .wait_for(|l| l.contains("Code:"), T)
        .unwrap_or_else(|| panic!("no code; git said: {:?}", lines.seen()));
    idp.approve(&find_user_code(&line).unwrap());
    let status = child.wait().unwrap();
    let rest = lines.rest(T);
    assert!(
        status.success(),
        "clone failed: {:?} {rest:?}",
        lines.seen()
    );
}

fn commit_and_push(home: &Path, work: &Path, name: &str, bytes: usize, extra: &[&str]) -> Output {
    // xorshift: incompressible, so the pack really is `bytes` long.
    let mut x = 0x9E3779B97F4A7C15u64 ^ bytes as u64 ^ name.len() as u64;
    let data: Vec<u8> = (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    fs::write(work.join(name), data).unwrap();
    ok(git(home, work, &["add", name]));
    ok(git(home, work, &["commit", "-qm", name]));
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["push", "origin", "HEAD:main"]);
    git(home, work, &args)
}

fn round_trip(mode: GitAuth) -> (Idp, GitServer, tempfile::TempDir) {
    let idp = Idp::start();
    let server = GitServer::start(&idp, mode);
    let home = tempfile::tempdir().unwrap();
    configure(&idp, &server, home.path(), "");
    clone_with_sign_in(&idp, home.path(), &server.repo_url());
    let work = home.path().join("work");
    assert!(work.join(".git").is_dir());

    // A second clone: served from the cache, no provider token request.
    idp.reset_counters();
    ok(git(
        home.path(),
        home.path(),
        &["clone", "-q", &server.repo_url(), "again"],
    ));
    assert_eq!(idp.counters()["device_authorization"], 0);
    assert_eq!(idp.token_requests("refresh_token"), 0);

    // A push, checked on the server.
    ok(commit_and_push(home.path(), &work, "small.txt", 1000, &[]));
    let head =
        String::from_utf8(ok(git(home.path(), &work, &["rev-parse", "HEAD"])).stdout).unwrap();
    assert_eq!(server.rev_parse("main"), head.trim());
    (idp, server, home)
}

#[test]
fn clone_and_push_with_bearer_authtype() {
    let (_idp, server, _home) = round_trip(GitAuth::Bearer);
    let c = server.counters();
    assert!(c["authorized"].as_u64().unwrap() >= 3, "{c}");
}

#[test]
fn clone_and_push_with_basic_password() {
    let (_idp, server, _home) = round_trip(GitAuth::Basic);
    let c = server.counters();
    assert!(
        c["basic_users"]["oauth2"].as_u64().unwrap() >= 3,
        "username oauth2: {c}"
    );
}

/// git 2.47, Bearer mode: a push larger than `http.postBuffer` is sent chunked after an
/// unauthenticated probe; the probe's 401 makes git call `erase` on a valid token. The README
/// documents the workaround (a larger `http.postBuffer`), which this test shows works, and the
/// refresh token survives either way.
#[test]
fn large_push_in_bearer_mode_needs_post_buffer() {
    let (idp, _server, home) = round_trip(GitAuth::Bearer);
    let work = home.path().join("work");
    let big = 3 << 20; // 3 MiB, over the 1 MiB default http.postBuffer

    let out = commit_and_push(home.path(), &work, "big1.bin", big, &[]);
    let cache_dir = home.path().join(".local/state/git-credential-iam");
    let entry = support::account_cache_files(&cache_dir).pop().unwrap();
    let cache: serde_json::Value = serde_json::from_slice(&fs::read(&entry).unwrap()).unwrap();
    assert!(
        cache["refresh_token"].is_string(),
        "the refresh token survives an erase"
    );
    // The known git limit: the push fails with 401 and the valid access token was erased;
    // the next get refreshes silently.
    assert!(
        !out.status.success(),
        "git fixed the large-push probe? update the README"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    assert!(cache.get("access_token").is_none(), "{cache}");

    idp.reset_counters();
    let out = commit_and_push(
        home.path(),
        &work,
        "big2.bin",
        big,
        &["-c", "http.postBuffer=524288000"],
    );
    assert!(
        out.status.success(),
        "with a large http.postBuffer the push works: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        idp.counters()["device_authorization"],
        0,
        "no new sign-in needed"
    );
    assert_eq!(
        idp.token_requests("refresh_token"),
        1,
        "the erased token was refreshed once"
    );
}
