//! `--resource` (RFC 8707) against the test provider: the resource goes out on the device
//! sign-in and on every refresh (each token's `aud`, as the provider's introspection tells, is the
//! resource), it keys and is recorded in the cache and shown by `status`, and a provider that
//! refuses it (`invalid_target`) gets an error naming the option, on sign-in and on refresh.

use crate::support;

use std::process::{Output, Stdio};
use std::time::Duration;

use crate::support::{Idp, IdpOptions, PUBLIC_CLIENT, Stream};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);
const RESOURCE: &str = "https://api.example.org/";

fn helper(home: &std::path::Path, issuer: &str, args: &[&str]) -> std::process::Command {
    let mut c = support::helper_cmd(home);
    c.args(["--issuer", issuer, "--client-id", PUBLIC_CLIENT])
        .args(["--resource", RESOURCE])
        .args(args);
    c
}

fn run(home: &std::path::Path, issuer: &str, args: &[&str], input: &str) -> Output {
    support::run_with_input(helper(home, issuer, args), input, T)
}

/// `token --format json`'s access token.
fn access_token(home: &std::path::Path, issuer: &str, extra: &[&str]) -> String {
    let mut args = extra.to_vec();
    args.extend(["token", "--format", "json"]);
    let out = run(home, issuer, &args, "");
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

#[test]
fn resource_goes_out_on_sign_in_and_on_every_refresh() {
    let idp = Idp::start_with(IdpOptions {
        extra_args: vec!["--audience-resource".into()],
        ..IdpOptions::default()
    });
    let home = tempfile::tempdir().unwrap();

    // Sign in with the device flow, approved as alice.
    let mut child = helper(home.path(), idp.issuer(), &["--interactive", "login"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = Stream::spawn(child.stderr.take().unwrap());
    idp.approve(&stderr.code());
    let status = child.wait().unwrap();
    assert!(status.success(), "{}", stderr.read_to_end());

    let first = access_token(home.path(), idp.issuer(), &[]);
    let aud = |t: &str| idp.introspection(t)["aud"].clone();
    assert_eq!(
        aud(&first),
        Value::from(RESOURCE),
        "the sign-in sent the resource"
    );

    // A minimum lifetime longer than the token's: every `token` refreshes.
    let refreshes = idp.token_requests("refresh_token");
    let second = access_token(home.path(), idp.issuer(), &["--min-lifetime", "31536000"]);
    let third = access_token(home.path(), idp.issuer(), &["--min-lifetime", "31536000"]);
    assert_eq!(idp.token_requests("refresh_token"), refreshes + 2);
    for t in [&second, &third] {
        assert_ne!(t, &first);
        assert_eq!(aud(t), Value::from(RESOURCE), "a refresh sent the resource");
    }

    // Recorded in the cache entry, shown by status.
    let cache = home.path().join(".local/state/git-credential-iam");
    let files = support::account_cache_files(&cache);
    assert_eq!(files.len(), 1, "{files:?}");
    let entry: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(entry["resource"], serde_json::json!([RESOURCE]));
    let out = run(home.path(), idp.issuer(), &["status"], "");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(&format!("resource:      {RESOURCE}")),
        "{out:?}"
    );

    // The same account without --resource is another cache entry: no token for the resource
    // serves it, and nothing is refreshed for it.
    let mut plain = support::helper_cmd(home.path());
    plain
        .args(["--issuer", idp.issuer(), "--client-id", PUBLIC_CLIENT])
        .args(["--non-interactive", "token"]);
    let out = support::run_with_input(plain, "", T);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}

#[test]
fn a_refused_resource_names_the_option() {
    // Without --audience-resource the provider refuses every resource (invalid_target).
    let idp = Idp::start();
    let home = tempfile::tempdir().unwrap();

    // On the sign-in (the device authorization request).
    let out = run(home.path(), idp.issuer(), &["--interactive", "login"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(
        err.contains(&format!("--resource {RESOURCE}"))
            && err.contains("invalid_target")
            && err.contains("remove --resource"),
        "{err}"
    );

    // On a refresh (import validates a refresh token with one): the login is kept, not
    // declared dead.
    let tok = idp.device_flow_token(PUBLIC_CLIENT, "openid offline_access");
    let rt = tok["refresh_token"].as_str().unwrap();
    let refreshes = idp.token_requests("refresh_token");
    let out = run(home.path(), idp.issuer(), &["import"], &format!("{rt}\n"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(idp.token_requests("refresh_token"), refreshes + 1);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(
        err.contains("--resource") && err.contains("invalid_target") && !err.contains(rt),
        "{err}"
    );
}
