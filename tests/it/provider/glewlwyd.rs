//! The helper end to end against a second, independent provider: Debian's glewlwyd 2.7
//! (tests/it/support/glewlwyd.rs starts one server for this whole file). It deviates from IAM and
//! from oidc-provider in ways a CLI client must survive: a dead refresh token is an empty 400,
//! a wrong password an empty 403, Basic client credentials are not form-decoded (a secret with
//! `+ / =` only works raw or posted), `audience` is ignored (the access token's `aud` is the
//! scope list), and the ID token has no `preferred_username`. Without glewlwyd installed, each
//! test prints `SKIPPED: TEST: needs glewlwyd (…)` on stderr (listed again after the summary).

use crate::support;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Output};
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::glewlwyd::{
    self, CONF_CLIENT, CONF_SECRET, Glewlwyd, PUBLIC_CLIENT, USER, USER_NAME, USER_PASSWORD,
    USER_SCOPES,
};
use crate::support::{Account, Lines, REQUEST};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

/// The one server of this test binary, or `None` (said on stderr) without glewlwyd.
fn server(test: &str) -> Option<&'static Glewlwyd> {
    static SERVER: OnceLock<Glewlwyd> = OnceLock::new();
    if glewlwyd::missing(test) {
        return None;
    }
    Some(SERVER.get_or_init(Glewlwyd::start))
}

/// An account of `client` at `g` in a fresh home (with the client's secret file when it is the
/// confidential one), and `extra` options.
fn account(g: &Glewlwyd, client: &str, extra: &[&str]) -> Account {
    let mut acct = Account::new(&g.issuer(), client, &["--timeout", "10"]);
    if client == CONF_CLIENT {
        let f = acct.home().join("client.secret");
        fs::write(&f, format!("{CONF_SECRET}\n")).unwrap();
        acct.add_args(&["--client-secret-file", f.to_str().unwrap()]);
    }
    acct.add_args(extra);
    acct
}

/// Runs `action` interactively, approves the code it shows as the user (granting
/// [`USER_SCOPES`]), and returns its output.
fn sign_in(acct: &Account, g: &Glewlwyd, client: &str, action: &str) -> Output {
    let mut child: Child =
        support::spawn_with_input(&mut acct.cmd(&["--interactive"], action), REQUEST);
    let mut lines = Lines::spawn(child.stderr.take().unwrap());
    let line = lines
        .wait_for(|l| l.contains("Code:"), T)
        .unwrap_or_else(|| panic!("no code line; stderr:\n{}", lines.seen().join("\n")));
    let code = line.split("Code:").nth(1).unwrap().trim().to_string();
    g.approve(client, &code, USER_SCOPES);
    let rest = lines.rest(T);
    let mut out = child.wait_with_output().unwrap();
    out.stderr = [lines.seen().join("\n"), rest.join("\n")]
        .join("\n")
        .into_bytes();
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The token in a Basic-mode answer.
fn answered(out: &Output) -> String {
    support::answered_password(&text(&out.stdout)).to_string()
}

/// Device sign-in with a public client, what was granted, a silent refresh with a rotated
/// refresh token, a dead (replayed) refresh token: exit 3 without a person, a new sign-in with
/// one; then logout revokes.
#[test]
fn device_sign_in_refresh_dead_login_and_logout() {
    let Some(g) = server("device_sign_in_refresh_dead_login_and_logout") else {
        return;
    };
    let acct = account(
        g,
        PUBLIC_CLIENT,
        &["--scope", "openid offline_access profile"],
    );
    let out = sign_in(&acct, g, PUBLIC_CLIENT, "get");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{}", g.log());
    let first = answered(&out);
    assert!(
        stderr.contains(&format!("signed in to {} as {USER_NAME},", g.host())),
        "the name, not glewlwyd's opaque sub: {stderr}"
    );
    assert!(
        stderr.contains("without the requested scope profile"),
        "{stderr}"
    );

    // What was granted: status and token --format json.
    let status = text(&acct.run(&[], "status", "").stdout);
    assert!(
        status.contains(
            "granted scope: openid offline_access (differs from the request: profile not granted)"
        ),
        "{status}"
    );
    let out = acct.run(&["--non-interactive", "--format", "json"], "token", "");
    let j: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stderr)));
    assert_eq!(j["scope"], USER_SCOPES);
    assert_eq!(j["requested_scope"], "openid offline_access profile");
    assert_eq!(j["grant_differs"], true);
    // glewlwyd's quirk: the access token's aud is the scope list.
    assert_eq!(j["audience"], USER_SCOPES);
    assert_eq!(j["access_token"], first.as_str());

    // Silent refresh; glewlwyd rotates the refresh token (one-use).
    let old_rt = acct.cache()["refresh_token"].as_str().unwrap().to_string();
    acct.set_cache(|c| c["expires_at"] = 1.into());
    let out = acct.run(&["--non-interactive"], "get", REQUEST);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_ne!(answered(&out), first);
    let new_rt = acct.cache()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(new_rt, old_rt, "rotated");

    // A replayed refresh token: glewlwyd answers an empty 400 (and disables the chain).
    acct.set_cache(|c| {
        c["expires_at"] = 1.into();
        c["refresh_token"] = old_rt.clone().into();
    });
    let out = acct.run(&["--non-interactive"], "get", REQUEST);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("HTTP 400, empty body") && stderr.contains("git-credential-iam login"),
        "{stderr}"
    );
    assert!(!stderr.contains(&old_rt), "{stderr}");
    assert!(acct.cache().get("refresh_token").is_none(), "dropped");

    // With a person at hand, the same dead login leads straight to a new sign-in.
    acct.set_cache(|c| {
        c["expires_at"] = 1.into();
        c["refresh_token"] = old_rt.clone().into();
    });
    let out = sign_in(&acct, g, PUBLIC_CLIENT, "get");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rt = acct.cache()["refresh_token"].as_str().unwrap().to_string();

    // Logout forgets the login. glewlwyd revokes only for a confidential client (one with the
    // client_credentials grant): a public client's revocation is refused with an empty 401,
    // and said so.
    let out = acct.run(&[], "logout", "");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("could not revoke") && stderr.contains("HTTP 401"),
        "{stderr}"
    );
    assert!(support::account_cache_files(&acct.cache_dir()).is_empty());
    assert_eq!(
        g.refresh_status_for(PUBLIC_CLIENT, None, &rt),
        200,
        "still valid"
    );
}

/// The password grant on a confidential client whose secret has `+ / =`: glewlwyd refuses the
/// RFC 6749 form-encoded Basic credentials (empty 400); the helper retries once with the raw
/// secret, remembers it, and later requests use it at once: a silent refresh, and logout's
/// revocation. No secret reaches stderr.
#[test]
fn password_grant_with_a_secret_glewlwyd_does_not_form_decode() {
    let Some(g) = server("password_grant_with_a_secret_glewlwyd_does_not_form_decode") else {
        return;
    };
    let acct = account(g, CONF_CLIENT, &[]);
    let pw = acct.home().join("pw");
    fs::write(&pw, format!("{USER_PASSWORD}\n")).unwrap();
    let flow = [
        "--flow",
        "password",
        "--username",
        USER,
        "--password-file",
        pw.to_str().unwrap(),
    ];
    let out = acct.run(&flow, "token", "");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{}", g.log());
    let first = text(&out.stdout);
    assert!(
        !stderr.contains(CONF_SECRET) && !stderr.contains(USER_PASSWORD),
        "{stderr}"
    );
    let remembered: Vec<PathBuf> = fs::read_dir(acct.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-client-auth.json"))
        .collect();
    assert_eq!(remembered.len(), 1);
    assert!(
        fs::read_to_string(&remembered[0])
            .unwrap()
            .contains("basic_raw")
    );

    // A silent refresh on the confidential client, the remembered way.
    acct.set_cache(|c| c["expires_at"] = 1.into());
    let out = acct.run(&["--non-interactive"], "token", "");
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), g.log());
    assert_ne!(text(&out.stdout), first);

    // Logout revokes the refresh token: glewlwyd refuses it afterwards.
    let rt = acct.cache()["refresh_token"].as_str().unwrap().to_string();
    let out = acct.run(&[], "logout", "");
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("refresh token revoked"),
        "{stderr}\n{}",
        g.log()
    );
    assert!(!stderr.contains(CONF_SECRET), "{stderr}");
    assert_eq!(
        g.refresh_status_for(CONF_CLIENT, Some(CONF_SECRET), &rt),
        400
    );
}

/// A wrong password (glewlwyd: an empty 403) and a client without the password grant (also an
/// empty 403) are reported as what they may be, not as a provider failure.
#[test]
fn wrong_password_is_reported_as_one() {
    let Some(g) = server("wrong_password_is_reported_as_one") else {
        return;
    };
    for client in [CONF_CLIENT, PUBLIC_CLIENT] {
        let acct = account(g, client, &[]);
        let pw = acct.home().join("pw");
        fs::write(&pw, "not-the-password\n").unwrap();
        let out = acct.run(
            &[
                "--flow",
                "password",
                "--username",
                USER,
                "--password-file",
                pw.to_str().unwrap(),
            ],
            "token",
            "",
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{stderr}");
        assert!(
            stderr.contains("wrong username or password (username \"alice\")")
                && stderr.contains(&format!("client {client} may not use the password grant")),
            "{client}: {stderr}"
        );
        assert!(!stderr.contains("not-the-password"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}
