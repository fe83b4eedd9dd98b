//! Proves the test infrastructure in `tests/idp` and `tests/it/support` works: the provider's
//! device flow, refresh-token rotation, introspection, counters, client authentication,
//! password grant and deny path, and the token-checking git server in both modes.
//! It does not exercise the helper binary.

use std::time::Duration;

use crate::support::*;
use serde_json::Value;

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

#[test]
fn device_flow_refresh_introspection_and_counters() {
    let idp = Idp::start();

    let (status, auth) = post_form(
        &idp.device_authorization_endpoint(),
        None,
        &[
            ("client_id", PUBLIC_CLIENT),
            ("scope", "openid offline_access"),
        ],
    );
    assert_eq!(status, 200, "{auth}");
    assert_eq!(
        auth["interval"], 1,
        "interval added by the test server: {auth}"
    );
    assert_eq!(auth["expires_in"], 600);
    assert_eq!(s(&auth, "verification_uri"), idp.verification_uri());
    let user_code = s(&auth, "user_code");
    assert_eq!(
        find_user_code(&format!("enter {user_code} at ...")).as_deref(),
        Some(user_code)
    );
    let device_code = s(&auth, "device_code");

    // before approval: authorization_pending
    let (status, pending) = post_form(
        &idp.token_endpoint(),
        None,
        &[
            ("grant_type", DEVICE_GRANT),
            ("client_id", PUBLIC_CLIENT),
            ("device_code", device_code),
        ],
    );
    assert_eq!(
        (status, s(&pending, "error")),
        (400, "authorization_pending")
    );

    idp.approve(user_code);
    let (status, tokens) = idp.poll_device_token(
        PUBLIC_CLIENT,
        device_code,
        Duration::from_secs(1),
        Duration::from_secs(10),
    );
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(s(&tokens, "token_type"), "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    let access = s(&tokens, "access_token");
    let refresh = s(&tokens, "refresh_token");
    assert!(
        !access.contains('.'),
        "access tokens are opaque, not JWTs: {access}"
    );

    let intro = idp.introspection(access);
    assert_eq!(intro["active"], true, "{intro}");
    assert_eq!(s(&intro, "sub"), ALICE);
    assert_eq!(s(&intro, "client_id"), PUBLIC_CLIENT);
    assert!(!idp.introspect("not-a-token"));

    // refresh: rotation gives a new refresh token and kills the old one
    let (status, refreshed) = post_form(
        &idp.token_endpoint(),
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", PUBLIC_CLIENT),
            ("refresh_token", refresh),
        ],
    );
    assert_eq!(status, 200, "{refreshed}");
    let refresh2 = s(&refreshed, "refresh_token");
    assert_ne!(refresh2, refresh);
    assert!(idp.introspect(s(&refreshed, "access_token")));
    assert!(idp.introspect(refresh2));
    assert!(!idp.introspect(refresh), "rotated refresh token is dead");

    let counters = idp.counters();
    assert_eq!(counters["device_authorization"], 1, "{counters}");
    assert_eq!(
        counters["token"][DEVICE_GRANT].as_u64().unwrap(),
        2,
        "pending + success: {counters}"
    );
    assert_eq!(counters["token"]["refresh_token"], 1, "{counters}");
    assert_eq!(counters["introspection"], 5, "{counters}");

    // reusing the rotated refresh token: invalid_grant, and the whole grant is revoked
    let (status, reused) = post_form(
        &idp.token_endpoint(),
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", PUBLIC_CLIENT),
            ("refresh_token", refresh),
        ],
    );
    assert_eq!((status, s(&reused, "error")), (400, "invalid_grant"));
    assert!(
        !idp.introspect(refresh2),
        "reuse of a rotated refresh token revokes the grant"
    );

    idp.reset_counters();
    let counters = idp.counters();
    assert_eq!(counters["token"]["refresh_token"], 0, "{counters}");
    assert_eq!(counters["introspection"], 0, "{counters}");

    // revocation
    let tokens = idp.device_flow_token(PUBLIC_CLIENT, "openid read:git");
    assert_eq!(s(&tokens, "scope"), "openid read:git");
    assert!(
        tokens.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    let access = s(&tokens, "access_token");
    assert!(idp.introspect(access));
    assert_eq!(idp.revoke(PUBLIC_CLIENT, access), 200);
    assert!(!idp.introspect(access));
    assert_eq!(idp.counters()["revocation"], 1);
}

#[test]
fn confidential_client_uses_form_encoded_basic_auth() {
    let idp = Idp::shared();
    let good = basic_auth(CONF_CLIENT, CONF_SECRET);
    assert_eq!(
        good,
        format!("Basic {}", base64(b"conf-cli:s3c%2Br%25t+with+space")),
        "id and secret are form-urlencoded before base64"
    );
    let raw = format!(
        "Basic {}",
        base64(format!("{CONF_CLIENT}:{CONF_SECRET}").as_bytes())
    );

    let (status, body) = post_form(
        &idp.device_authorization_endpoint(),
        Some(&raw),
        &[("scope", "openid")],
    );
    assert_eq!(status, 400, "unencoded secret is refused: {body}");
    let (status, body) = post_form(
        &idp.device_authorization_endpoint(),
        None,
        &[("client_id", CONF_CLIENT)],
    );
    assert_eq!((status, s(&body, "error")), (401, "invalid_client"));

    let (status, auth) = post_form(
        &idp.device_authorization_endpoint(),
        Some(&good),
        &[("scope", "openid offline_access")],
    );
    assert_eq!(status, 200, "{auth}");
    idp.approve(s(&auth, "user_code"));
    let (status, tokens) = post_form(
        &idp.token_endpoint(),
        Some(&good),
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", s(&auth, "device_code")),
        ],
    );
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        s(&idp.introspection(s(&tokens, "access_token")), "client_id"),
        CONF_CLIENT
    );
    let (status, refreshed) = post_form(
        &idp.token_endpoint(),
        Some(&good),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", s(&tokens, "refresh_token")),
        ],
    );
    assert_eq!(status, 200, "{refreshed}");
}

#[test]
fn password_grant_and_denied_device_flow() {
    let idp = Idp::start();
    let tokens = idp.token_for_password("openid offline_access read:git");
    assert_eq!(s(&tokens, "scope"), "openid offline_access read:git");
    assert!(idp.introspect(s(&tokens, "access_token")));
    let (status, refreshed) = post_form(
        &idp.token_endpoint(),
        None,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", PW_CLIENT),
            ("refresh_token", s(&tokens, "refresh_token")),
        ],
    );
    assert_eq!(status, 200, "{refreshed}");

    let (status, body) = idp.password_grant("wrong", "openid");
    assert_eq!((status, s(&body, "error")), (400, "invalid_grant"));

    let (status, body) = post_form(
        &idp.token_endpoint(),
        None,
        &[
            ("grant_type", "password"),
            ("client_id", PUBLIC_CLIENT),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ],
    );
    assert_eq!(
        (status, s(&body, "error")),
        (400, "unauthorized_client"),
        "{body}"
    );

    let (status, body) = post_form(
        &idp.token_endpoint(),
        Some(&basic_auth(PW_CONF_CLIENT, CONF_SECRET)),
        &[
            ("grant_type", "password"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("scope", "openid"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(idp.counters()["token"]["password"], 4);

    // denied on the consent page
    let auth = idp.device_authorize(PUBLIC_CLIENT, "openid offline_access");
    idp.deny(s(&auth, "user_code"));
    let (status, body) = idp.poll_device_token(
        PUBLIC_CLIENT,
        s(&auth, "device_code"),
        Duration::ZERO,
        Duration::from_secs(5),
    );
    assert_eq!((status, s(&body, "error")), (400, "access_denied"));

    // aborted on the device confirmation page
    let auth = idp.device_authorize(PUBLIC_CLIENT, "openid");
    let out = idp.run_approver(s(&auth, "user_code"), &["--deny", "--deny-at", "confirm"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, body) = idp.poll_device_token(
        PUBLIC_CLIENT,
        s(&auth, "device_code"),
        Duration::ZERO,
        Duration::from_secs(5),
    );
    assert_eq!((status, s(&body, "error")), (400, "access_denied"));

    // the approver fails on a wrong password or an unknown code
    let auth = idp.device_authorize(PUBLIC_CLIENT, "openid");
    let out = idp.run_approver(s(&auth, "user_code"), &["--password", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("login rejected"));
    assert!(!idp.run_approver("BCDF-GHJK", &[]).status.success());
}

#[test]
fn server_options_trailing_slash_slow_down_ttls() {
    let idp = Idp::start_with(IdpOptions {
        trailing_slash: true,
        slow_down: 1,
        interval: Some(0),
        access_ttl: Some(1),
        device_ttl: Some(30),
        ..IdpOptions::default()
    });
    assert!(idp.issuer().ends_with('/'), "{}", idp.issuer());
    let doc = get_json(&format!("{}.well-known/openid-configuration", idp.issuer()));
    assert_eq!(s(&doc, "issuer"), idp.issuer());
    assert_eq!(s(&doc, "token_endpoint"), format!("{}token", idp.issuer()));
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "password")
    );

    let auth = idp.device_authorize(PUBLIC_CLIENT, "openid");
    assert_eq!(auth["interval"], 0);
    assert_eq!(auth["expires_in"], 30);
    let poll = || {
        post_form(
            &idp.token_endpoint(),
            None,
            &[
                ("grant_type", DEVICE_GRANT),
                ("client_id", PUBLIC_CLIENT),
                ("device_code", s(&auth, "device_code")),
            ],
        )
    };
    assert_eq!(s(&poll().1, "error"), "slow_down");
    assert_eq!(s(&poll().1, "error"), "authorization_pending");
    idp.approve(s(&auth, "user_code"));
    let (status, tokens) = poll();
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["expires_in"], 1);

    let idp = Idp::start_with(IdpOptions {
        no_interval: true,
        ..IdpOptions::default()
    });
    assert!(
        idp.device_authorize(PUBLIC_CLIENT, "openid")
            .get("interval")
            .is_none()
    );

    // open dynamic registration of a device-flow client
    let (status, client) = post_json(
        &idp.registration_endpoint(),
        &serde_json::json!({
            "client_name": "registered",
            "grant_types": [DEVICE_GRANT, "refresh_token"],
            "token_endpoint_auth_method": "none",
        }),
    );
    assert_eq!(status, 201, "{client}");
    let tokens = idp.device_flow_token(s(&client, "client_id"), "openid offline_access");
    assert!(tokens.get("refresh_token").is_some());
    assert_eq!(idp.counters()["registration"], 1);
}

fn clone(
    home: &std::path::Path,
    url: &str,
    header: Option<&str>,
    dest: &str,
) -> std::process::Output {
    let mut cmd = git_cmd(home);
    if let Some(h) = header {
        cmd.arg("-c").arg(format!("http.extraHeader={h}"));
    }
    cmd.args(["clone", "-q", url, dest]).current_dir(home);
    run_with_input(cmd, "", Duration::from_secs(30))
}

#[test]
fn git_server_checks_tokens_in_both_modes() {
    let idp = Idp::start();
    let token = idp.device_flow_token(PUBLIC_CLIENT, "openid read:git");
    let token = s(&token, "access_token");
    let home = tempfile::tempdir().unwrap();

    // bearer
    let git = GitServer::start(&idp, GitAuth::Bearer);
    let out = clone(home.path(), &git.repo_url(), None, "nothing");
    assert!(!out.status.success(), "clone without a token must fail");
    let out = clone(
        home.path(),
        &git.repo_url(),
        Some("Authorization: Bearer bogus"),
        "bogus",
    );
    assert!(!out.status.success(), "clone with a bad token must fail");
    let header = format!("Authorization: Bearer {token}");
    let out = clone(home.path(), &git.repo_url(), Some(&header), "bearer");
    assert!(
        out.status.success(),
        "clone failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(home.path().join("bearer/README").exists());
    let c = git.counters();
    assert_eq!(c["unauthorized"], 2, "{c}");
    assert!(c["authorized"].as_u64().unwrap() >= 2, "{c}");

    // push through it
    let work = home.path().join("bearer");
    std::fs::write(work.join("more.txt"), "more\n").unwrap();
    let run = |args: &[&str]| {
        let mut cmd = git_cmd(home.path());
        cmd.args(["-c", "user.name=T", "-c", "user.email=t@example.org", "-c"])
            .arg(format!("http.extraHeader={header}"))
            .args(args)
            .current_dir(&work);
        let out = run_with_input(cmd, "", Duration::from_secs(30));
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    run(&["add", "more.txt"]);
    run(&["commit", "-q", "-m", "more"]);
    run(&["push", "-q", "origin", "main"]);
    assert_eq!(git.rev_parse("main"), run(&["rev-parse", "HEAD"]));

    // basic
    let git = GitServer::start(&idp, GitAuth::Basic);
    let out = clone(home.path(), &git.repo_url(), None, "nothing2");
    assert!(!out.status.success());
    let out = clone(
        home.path(),
        &git.repo_url(),
        Some(&header),
        "bearer-on-basic",
    );
    assert!(!out.status.success(), "basic mode refuses a Bearer header");
    let basic = format!(
        "Authorization: Basic {}",
        base64(format!("oauth2:{token}").as_bytes())
    );
    let out = clone(home.path(), &git.repo_url(), Some(&basic), "basic");
    assert!(
        out.status.success(),
        "clone failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = git.counters();
    assert!(c["basic_users"]["oauth2"].as_u64().unwrap() >= 1, "{c}");
}

/// What a command of the harness really runs with (asked of `env` itself): only the clean
/// environment, rooted in the test home, so that no test reads the developer's HOME or config.
#[test]
fn commands_run_in_a_clean_environment_rooted_in_the_test_home() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_str().unwrap();
    let env_of = |cmd| {
        let out = run_with_input(cmd, "", Duration::from_secs(10));
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // git (as a shell alias shows it) has the same, and never prompts on its own.
    let mut git = git_cmd(home.path());
    git.args(["-c", "alias.show-env=!env", "show-env"]);
    let text = env_of(git);
    for want in [format!("HOME={h}"), "GIT_TERMINAL_PROMPT=0".to_string()] {
        assert!(
            text.lines().any(|l| l == want),
            "{want} in git's environment:\n{text}"
        );
    }
    {
        let text = env_of(clean_cmd("env", home.path()));
        let mut env: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('=')).collect();
        env.sort();
        let path = std::env::var("PATH").unwrap_or_default();
        let want = [
            ("GIT_CONFIG_GLOBAL", format!("{h}/.gitconfig")),
            ("GIT_CONFIG_NOSYSTEM", "1".to_string()),
            ("GIT_CREDENTIAL_IAM_URL", TIED_URL.to_string()),
            ("HOME", h.to_string()),
            ("LANG", "C".to_string()),
            ("PATH", path),
            ("XDG_CACHE_HOME", format!("{h}/.cache")),
            ("XDG_CONFIG_HOME", format!("{h}/.config")),
            ("XDG_DATA_HOME", format!("{h}/.local/share")),
            ("XDG_RUNTIME_DIR", format!("{h}/run")),
            ("XDG_STATE_HOME", format!("{h}/.local/state")),
        ];
        let want: Vec<(&str, &str)> = want.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(env, want, "the whole environment of a test command");
    }
}

#[test]
fn wait_for_line_finds_the_user_code() {
    let mut child = std::process::Command::new("sh")
        .args(["-c", "echo starting >&2; echo 'Open http://x/device and enter QBPK-HMFV' >&2; cat >/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let line = wait_for_line(
        child.stderr.take().unwrap(),
        |l| find_user_code(l).is_some(),
        Duration::from_secs(10),
    );
    assert_eq!(find_user_code(&line).as_deref(), Some("QBPK-HMFV"));
    assert_eq!(find_user_code("XQBPK-HMFV"), None);
    drop(child.stdin.take());
    child.wait().unwrap();
}
