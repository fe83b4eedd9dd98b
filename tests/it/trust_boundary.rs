//! Where a token may go, tried the way a hostile repository would: real git 2.47 cloning with
//! submodules on another server, a storage helper after ours, and hand-written requests for
//! other hosts, other protocols and a path that spells a loopback URL. The token goes only to
//! a URL tied to its account (the account's `urls`, or `--url`), over https or loopback http.

use crate::support;

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::support::{GitAuth, GitServer, Idp, LogServer, PUBLIC_CLIENT};

const T: Duration = Duration::from_secs(60);
const SCOPE: &str = "openid offline_access";

/// The helper with the tests' usual environment minus the tied hosts: only what the test
/// configures ties a URL here.
fn helper(home: &Path, args: &[&str], input: &str) -> Output {
    let mut cmd = support::helper_cmd(home);
    cmd.env_remove("GIT_CREDENTIAL_IAM_URL").args(args);
    support::run_with_input(cmd, input, T)
}

fn git(home: &Path, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = support::git_cmd(home);
    cmd.env_remove("GIT_CREDENTIAL_IAM_URL")
        .current_dir(dir)
        .args(args);
    support::run_with_input(cmd, "", T)
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A home whose config file holds `[account.a]` for `idp`, tied to `urls`.
fn home_with_account(idp: &Idp, urls: &[&str]) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".config/git-credential-iam");
    fs::create_dir_all(&dir).unwrap();
    let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
    fs::write(
        dir.join("config.toml"),
        format!(
            "[account.a]\nissuer = {:?}\nclient-id = {PUBLIC_CLIENT:?}\nurls = [{}]\n",
            idp.issuer(),
            urls.join(", ")
        ),
    )
    .unwrap();
    home
}

/// Signs in ahead of time (`import` of a refresh token, with the account options `args`) and
/// returns the cached access token.
fn seed_login(idp: &Idp, home: &Path, args: &[&str]) -> String {
    let tok = idp.device_flow_token(PUBLIC_CLIENT, SCOPE);
    let rt = tok["refresh_token"].as_str().expect("a refresh token");
    ok(helper(
        home,
        &[args, &["import"]].concat(),
        &format!("{rt}\n"),
    ));
    let at = ok(helper(home, &[args, &["token"]].concat(), ""));
    assert!(at.trim().len() > 10, "{at}");
    at.trim().to_string()
}

fn global_git_config(home: &Path, pairs: &[(&str, &str)]) {
    let cfg = home.join(".gitconfig");
    for (k, v) in pairs {
        let mut cmd = support::git_cmd(home);
        cmd.args(["config", "--add", "--file"])
            .arg(&cfg)
            .args([k, v]);
        ok(support::run_with_input(cmd, "", T));
    }
}

/// Adds a submodule `sub` pointing at `sub_url` to the server's repository (by file path,
/// so no credential is involved).
fn add_submodule(home: &Path, server: &GitServer, sub_url: &str) {
    let work = home.join("seed");
    let repo = server.repo_path();
    ok(git(
        home,
        home,
        &["clone", "-q", repo.to_str().unwrap(), "seed"],
    ));
    let head = ok(git(home, &work, &["rev-parse", "HEAD"]));
    fs::write(
        work.join(".gitmodules"),
        format!("[submodule \"sub\"]\n\tpath = sub\n\turl = {sub_url}\n"),
    )
    .unwrap();
    let cacheinfo = format!("160000,{},sub", head.trim());
    for args in [
        &["update-index", "--add", "--cacheinfo", &cacheinfo][..],
        &["add", ".gitmodules"],
        &[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@example.org",
            "commit",
            "-qm",
            "sub",
        ],
        &["push", "-q", "origin", "HEAD:main"],
    ] {
        ok(git(home, &work, args));
    }
}

/// `git clone --recurse-submodules` of a repository whose submodule lives on a hostile
/// server, with a *global* helper line: the first clone works, the hostile server never sees
/// an Authorization header, and the helper says why on stderr.
fn submodule_case(helper_args: impl Fn(&Idp, &GitServer) -> Vec<String>, tied_by_account: bool) {
    let idp = Idp::start();
    let server = GitServer::start(&idp, GitAuth::Bearer);
    let hostile = LogServer::start();
    let home = if tied_by_account {
        home_with_account(&idp, &[&format!("{}/", server.url())])
    } else {
        tempfile::tempdir().unwrap()
    };
    let args = helper_args(&idp, &server);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let token = seed_login(&idp, home.path(), &args);
    add_submodule(home.path(), &server, &format!("{}/sub.git", hostile.url()));
    let line = format!(
        "{} {} --non-interactive",
        support::helper_path().display(),
        args.join(" ")
    );
    global_git_config(home.path(), &[("credential.helper", &line)]);

    let out = git(
        home.path(),
        home.path(),
        &["clone", "--recurse-submodules", &server.repo_url(), "work"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        home.path().join("work/README").is_file(),
        "the tied clone failed: {err}"
    );
    let (requests, auth) = hostile.log();
    assert!(requests > 0, "git never asked the hostile server: {err}");
    assert!(
        auth.iter().all(|a| a == "-"),
        "the hostile server was sent credentials: {auth:?}"
    );
    assert!(!err.contains(&token));
    assert!(err.contains("not tied"), "{err}");
}

#[test]
fn submodule_on_another_server_gets_nothing_from_a_named_account() {
    submodule_case(|_, _| vec!["--account".into(), "a".into()], true);
}

#[test]
fn submodule_on_another_server_gets_nothing_from_a_helper_line_account() {
    submodule_case(
        |idp, server| {
            vec![
                "--issuer".into(),
                idp.issuer().into(),
                "--client-id".into(),
                PUBLIC_CLIENT.into(),
                "--url".into(),
                format!("{}/", server.url()),
            ]
        },
        false,
    );
}

/// `credential.helper store` after ours: with git 2.46+ (`capability[]=authtype`) both answer
/// forms are ready headers marked ephemeral, so `store` writes nothing.
fn store_after_ours(mode: GitAuth, extra: &[&str]) {
    let idp = Idp::start();
    let server = GitServer::start(&idp, mode);
    let home = home_with_account(&idp, &[&format!("{}/", server.url())]);
    let token = seed_login(&idp, home.path(), &["--account", "a"]);
    let line = format!(
        "{} --account a --non-interactive {}",
        support::helper_path().display(),
        extra.join(" ")
    );
    global_git_config(
        home.path(),
        &[("credential.helper", &line), ("credential.helper", "store")],
    );
    ok(git(
        home.path(),
        home.path(),
        &["clone", "-q", &server.repo_url(), "work"],
    ));
    assert!(home.path().join("work/README").is_file());
    let stored = fs::read_to_string(home.path().join(".git-credentials")).unwrap_or_default();
    assert!(
        !stored.contains(&token),
        "git's store helper copied the token: {stored}"
    );
    assert_eq!(stored, "", "nothing stored at all");
}

#[test]
fn store_after_ours_keeps_nothing_in_basic_mode() {
    store_after_ours(GitAuth::Basic, &[]);
}

#[test]
fn store_after_ours_keeps_nothing_with_auth_basic_forced() {
    store_after_ours(GitAuth::Basic, &["--auth", "basic"]);
}

#[test]
fn store_after_ours_keeps_nothing_in_bearer_mode() {
    store_after_ours(GitAuth::Bearer, &[]);
}

/// Hand-written requests that a hostile repository can make git send: other protocols, other
/// hosts, upper-case `HTTP`, a path that spells a loopback URL. None gets a token, and each
/// leaves one line on stderr and exit 0 (git asks its next helper).
#[test]
fn untied_or_unsafe_requests_get_no_answer() {
    let idp = Idp::shared();
    let home = home_with_account(idp, &["https://git.example.org/", "git.example.net"]);
    let token = seed_login(idp, home.path(), &["--account", "a"]);
    let get = |input: &str| helper(home.path(), &["--account", "a", "get"], input);

    let served = ok(get("protocol=https\nhost=git.example.org\n\n"));
    assert!(served.contains(&token), "the tied URL is served");

    for (what, input) in [
        ("smtp", "protocol=smtp\nhost=git.example.org\n\n"),
        ("imap", "protocol=imap\nhost=mail.example.org\n\n"),
        ("cert", "protocol=cert\npath=/home/u/cert.p12\n\n"),
        ("another host", "protocol=https\nhost=github.com\n\n"),
        (
            "another port",
            "protocol=https\nhost=git.example.org:8443\n\n",
        ),
        (
            "a look-alike",
            "protocol=https\nhost=git.example.org.evil.example\n\n",
        ),
        ("upper-case HTTP", "protocol=HTTP\nhost=git.example.net\n\n"),
        (
            "a loopback URL in the path",
            "protocol=http\nhost=git.example.net\npath=x://127.0.0.1/repo.git\n\n",
        ),
        (
            "user info in host",
            "protocol=https\nhost=x@git.example.org\n\n",
        ),
    ] {
        let out = get(input);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{what}: {err}");
        assert!(out.stdout.is_empty(), "{what}: answered {:?}", out.stdout);
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.contains("no token for"), "{what}: {err}");
        assert!(!err.contains(&token), "{what}");
    }

    // Top-level keys are defaults, not an account that serves every URL.
    let cfg = home.path().join(".config/git-credential-iam/config.toml");
    let text = fs::read_to_string(&cfg).unwrap();
    let top_level: String = text
        .lines()
        .filter(|l| !l.starts_with("[account") && !l.starts_with("urls"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&cfg, top_level).unwrap();
    let out = helper(
        home.path(),
        &["get"],
        "protocol=https\nhost=git.example.org\n\n",
    );
    assert!(out.stdout.is_empty(), "top-level keys answered");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not tied"));
}

/// An `oauth_refresh_token` that git hands over came from another helper: it is never sent
/// to the provider.
#[test]
fn a_refresh_token_from_git_is_never_used() {
    let idp = Idp::start();
    let home = home_with_account(&idp, &["https://git.example.org/"]);
    let tok = idp.device_flow_token(PUBLIC_CLIENT, SCOPE);
    let rt = tok["refresh_token"].as_str().unwrap();
    idp.reset_counters();
    let out = helper(
        home.path(),
        &["--account", "a", "--non-interactive", "get"],
        &format!("protocol=https\nhost=git.example.org\noauth_refresh_token={rt}\n\n"),
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(out.stdout.is_empty());
    assert_eq!(
        idp.token_requests("refresh_token"),
        0,
        "the handed token was used"
    );
}
