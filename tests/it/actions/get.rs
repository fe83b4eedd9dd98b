//! The helper end to end against the real test provider (npm `oidc-provider`): device flow,
//! cache hits with zero provider requests, refresh with rotation, concurrency (one refresh, one
//! device flow for many processes), `erase` semantics, denial and expiry, non-interactive
//! failure, logout with revocation, and a confidential client whose secret needs encoding.

use crate::support;

use std::fs;

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    Account, CONF_CLIENT, CONF_SECRET, Idp, IdpOptions, Lines, PUBLIC_CLIENT, REQUEST, Terminal,
    find_user_code,
};

const T: Duration = Duration::from_secs(30);

/// Spawns `get` (interactive), approves the code it prints, returns its output.
fn get_with_approval(acct: &Account, idp: &Idp, extra: &[&str]) -> Output {
    let mut child = acct.spawn_get(&[&["--interactive"], extra].concat());
    let code = read_code(&mut child);
    idp.approve(&code);
    finish(child)
}

/// Reads the user code from a child's stderr (which keeps being drained).
fn read_code(child: &mut Child) -> String {
    let mut lines = Lines::spawn(child.stderr.take().unwrap());
    let line = lines
        .wait_for(|l| l.contains("Code:"), T)
        .unwrap_or_else(|| panic!("no code line; stderr: {:?}", lines.seen()));
    assert!(
        lines.seen().iter().any(|l| l.contains("Open:")),
        "{:?}",
        lines.seen()
    );
    std::thread::spawn(move || lines.rest(T));
    find_user_code(&line).unwrap_or_else(|| panic!("no user code in {line:?}"))
}

fn finish(child: Child) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "helper failed: {out:?}");
    out
}

/// `key=value` lines of a protocol answer.
fn answer(out: &Output) -> Vec<(String, String)> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not a protocol line: {l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn value(out: &Output, key: &str) -> String {
    answer(out)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {key} in {out:?}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn provider_requests(idp: &Idp) -> u64 {
    let c = idp.counters();
    c["routes"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum()
}

#[test]
fn cold_get_runs_device_flow_then_warm_get_makes_no_request() {
    let idp = Idp::start();
    let acct = Account::new(idp.issuer(), PUBLIC_CLIENT, &[]);
    let out = get_with_approval(&acct, &idp, &[]);
    let token = value(&out, "password");
    assert_eq!(value(&out, "username"), "oauth2");
    assert!(
        idp.introspect(&token),
        "the token is active at the provider"
    );
    let exp: i64 = value(&out, "password_expiry_utc").parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now + 3000..now + 3700).contains(&exp),
        "expiry {exp} vs now {now}"
    );
    assert!(
        !stderr(&out).contains(&token),
        "the token never reaches stderr"
    );

    // The cache: private, holds a refresh token.
    let file = acct.cache_file();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(acct.cache_dir()).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
    assert!(acct.cache()["refresh_token"].is_string());

    // Warm: the same token, not a single request to the provider.
    let before = provider_requests(&idp);
    let warm = acct.run(&["--non-interactive"], "get", REQUEST);
    assert!(warm.status.success(), "{warm:?}");
    assert_eq!(value(&warm, "password"), token);
    assert!(warm.stderr.is_empty(), "{}", stderr(&warm));
    assert_eq!(
        provider_requests(&idp),
        before,
        "a cache hit makes no provider request"
    );
}

#[test]
fn expired_token_refreshes_once_and_persists_the_rotated_refresh_token() {
    let idp = Idp::start();
    let acct = Account::new(idp.issuer(), PUBLIC_CLIENT, &[]);
    let first = value(&get_with_approval(&acct, &idp, &[]), "password");
    let old_rt = acct.cache()["refresh_token"].as_str().unwrap().to_string();
    acct.set_cache(|v| v["expires_at"] = 1000.into());
    idp.reset_counters();

    let out = acct.run(&["--non-interactive"], "get", REQUEST);
    assert!(out.status.success(), "{out:?}");
    let second = value(&out, "password");
    assert_ne!(first, second);
    assert_eq!(idp.token_requests("refresh_token"), 1);
    assert_eq!(
        idp.counters()["routes"]["discovery"].as_u64().unwrap_or(0),
        0,
        "discovery is cached"
    );
    let new_rt = acct.cache()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(new_rt, old_rt, "the rotated refresh token is saved");
    assert_eq!(acct.cache()["access_token"].as_str().unwrap(), second);
    assert!(idp.introspect(&second));
    assert!(idp.introspect(&new_rt), "the new refresh token is live");
    assert!(!idp.introspect(&old_rt), "the old refresh token is dead");
}

#[test]
fn min_lifetime_forces_refresh() {
    let idp = Idp::start();
    let acct = Account::new(idp.issuer(), PUBLIC_CLIENT, &[]);
    get_with_approval(&acct, &idp, &[]);
    idp.reset_counters();
    let out = acct.run(
        &["--non-interactive", "--min-lifetime", "999999"],
        "get",
        REQUEST,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(idp.token_requests("refresh_token"), 1);
    assert_eq!(idp.counters()["device_authorization"], 0);
}

#[test]
fn sixteen_concurrent_gets_make_one_refresh() {
    let idp = Idp::start();
    let acct = Account::new(idp.issuer(), PUBLIC_CLIENT, &[]);
    get_with_approval(&acct, &idp, &[]);
    acct.set_cache(|v| v["expires_at"] = 1000.into());
    idp.reset_counters();
    let children: Vec<Child> = (0..16)
        .map(|_| acct.spawn_get(&["--non-interactive"]))
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let tokens: Vec<String> = outs
        .iter()
        .map(|o| {
            assert!(o.status.success(), "{o:?}");
            value(o, "password")
        })
        .collect();
    assert_eq!(
        idp.token_requests("refresh_token"),
        1,
        "exactly one refresh"
    );
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "all answer the same token"
    );
    assert!(idp.introspect(&tokens[0]));
}

#[test]
fn concurrent_gets_on_empty_cache_share_one_device_flow() {
    let idp = Idp::start();
    let acct = Account::new(idp.issuer(), PUBLIC_CLIENT, &[]);
    let mut children: Vec<Child> = (0..6).map(|_| acct.spawn_get(&["--interactive"])).collect();
    // Whoever holds the lock prints the code; the others say they wait.
    let mut readers: Vec<Lines> = children
        .iter_mut()
        .map(|c| Lines::spawn(c.stderr.take().unwrap()))
        .collect();
    let deadline = Instant::now() + T;
    let code = 'found: loop {
        assert!(Instant::now() < deadline, "no process printed a code");
        for r in readers.iter_mut() {
            if let Some(l) = r.wait_for(|l| l.contains("Code:"), Duration::from_millis(50)) {
                break 'found find_user_code(&l).unwrap();
            }
        }
    };
    idp.approve(&code);
    let mut tokens = Vec::new();
    let mut waited = 0;
    for (mut c, mut r) in children.into_iter().zip(readers) {
        let mut out = String::new();
        std::io::Read::read_to_string(c.stdout.as_mut().unwrap(), &mut out).unwrap();
        let status = c.wait().unwrap();
        let err = r.rest(T);
        assert!(status.success(), "{err:?}");
        let all = r.seen().join("\n");
        if all.contains("waiting for another git-credential-iam process (pid ") {
            waited += 1;
        }
        assert!(
            !err.iter()
                .any(|l| l.contains(out.lines().nth(1).unwrap_or("x"))),
            "no token on stderr"
        );
        tokens.push(out);
    }
    assert_eq!(
        idp.counters()["device_authorization"],
        1,
        "exactly one device authorization"
    );
    assert!(waited >= 1, "the waiters say they wait");
    assert!(
        tokens
            .iter()
            .all(|t| t == &tokens[0] && t.contains("password="))
    );
}

#[test]
fn erase_drops_only_the_rejected_token_and_keeps_the_refresh_token() {
    let idp = Idp::start();
    let acct = Account::new(idp.issuer(), PUBLIC_CLIENT, &[]);
    let token = value(&get_with_approval(&acct, &idp, &[]), "password");
    let rt = acct.cache()["refresh_token"].clone();

    // A different (older) token rejected: the cached one survives.
    let out = acct.run(
        &[],
        "erase",
        "protocol=https\nhost=git.example.org\nusername=oauth2\npassword=some-older-token\n\n",
    );
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    assert_eq!(acct.cache()["access_token"].as_str().unwrap(), token);

    // Our token rejected (Bearer form): dropped, refresh token kept.
    let out = acct.run(
        &[],
        "erase",
        &format!("protocol=https\nhost=git.example.org\nauthtype=Bearer\ncredential={token}\n\n"),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(acct.cache().get("access_token").is_none());
    assert_eq!(acct.cache()["refresh_token"], rt);

    // The next get refreshes silently.
    idp.reset_counters();
    let out = acct.run(&["--non-interactive"], "get", REQUEST);
    assert!(out.status.success(), "{out:?}");
    assert_ne!(value(&out, "password"), token);
    assert_eq!(idp.token_requests("refresh_token"), 1);

    // store is a no-op; unknown actions are ignored.
    for action in ["store", "frobnicate"] {
        let out = acct.run(
            &[],
            action,
            "protocol=https\nhost=x\nusername=u\npassword=p\n\n",
        );
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "{out:?}"
        );
    }
}

#[test]
fn denied_and_expired_device_codes_leave_the_cache_untouched() {
    let idp = Idp::start_with(IdpOptions {
        device_ttl: Some(3),
        ..Default::default()
    });
    let acct = Account::new(idp.issuer(), PUBLIC_CLIENT, &[]);

    let mut child = acct.spawn_get(&["--interactive"]);
    let code = read_code(&mut child);
    idp.deny(&code);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(out.stdout.is_empty());
    assert!(acct.cached().is_none(), "nothing cached");

    let start = Instant::now();
    let out = acct.run(&["--interactive"], "get", REQUEST);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(15));
    assert!(acct.cached().is_none(), "nothing cached");
}

#[test]
fn non_interactive_without_login_fails_fast_naming_login() {
    let idp = Idp::start();
    let acct = Account::new(idp.issuer(), PUBLIC_CLIENT, &[]);
    for (extra, env) in [
        (vec!["--non-interactive"], None),
        (vec![], Some(("GIT_TERMINAL_PROMPT", "0"))),
        (vec![], Some(("CI", "true"))),
    ] {
        let mut cmd = acct.cmd(&extra, "get");
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let start = Instant::now();
        let out = support::run_with_input(cmd, REQUEST, T);
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(out.status.code(), Some(3), "{out:?}");
        assert!(out.stdout.is_empty());
        let e = stderr(&out);
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.contains("git-credential-iam login"), "{e}");
    }
    assert_eq!(idp.counters()["device_authorization"], 0);
}

#[test]
fn login_status_logout_revokes() {
    let idp = Idp::start_with(IdpOptions {
        trailing_slash: true,
        ..Default::default()
    });
    assert!(idp.issuer().ends_with('/'));
    let acct = Account::new(idp.issuer(), PUBLIC_CLIENT, &[]);
    let mut child = acct
        .cmd(&["--interactive"], "login")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let code = read_code(&mut child);
    idp.approve(&code);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "login prints nothing on stdout");

    let status = acct.run(&[], "status", "");
    let text = String::from_utf8(status.stdout.clone()).unwrap();
    assert!(
        text.contains(idp.issuer()) && text.contains("refresh token: held"),
        "{text}"
    );
    let cache = acct.cache();
    for secret in [
        cache["access_token"].as_str().unwrap(),
        cache["refresh_token"].as_str().unwrap(),
    ] {
        assert!(!text.contains(secret), "status never shows a token");
    }

    let rt = cache["refresh_token"].as_str().unwrap().to_string();
    let out = acct.run(&[], "logout", "");
    assert!(out.status.success(), "{out:?}");
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    assert!(acct.cached().is_none());
    assert!(
        !idp.introspect(&rt),
        "the refresh token is revoked at the provider"
    );
}

#[test]
fn confidential_client_secret_is_form_encoded_in_basic_auth() {
    let idp = Idp::shared();
    let acct = Account::new(idp.issuer(), CONF_CLIENT, &[]);
    let secret_file = acct.home().join("secret");
    fs::write(&secret_file, format!("{CONF_SECRET}\n")).unwrap();
    let sf = secret_file.to_str().unwrap().to_string();
    let out = get_with_approval(&acct, idp, &["--client-secret-file", &sf]);
    assert!(idp.introspect(&value(&out, "password")));
    acct.set_cache(|v| v["expires_at"] = 1000.into());
    let out = acct.run(
        &["--client-secret-file", &sf, "--non-interactive"],
        "get",
        REQUEST,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(!stderr(&out).contains(CONF_SECRET));
}

#[test]
fn bad_input_is_one_line_and_keeps_the_cache() {
    let idp = Idp::shared();
    let acct = Account::new(idp.issuer(), PUBLIC_CLIENT, &[]);
    get_with_approval(&acct, idp, &[]);
    let before = fs::read(acct.cache_file()).unwrap();
    for bad in ["protocol=https\nhost\n\n", "host=a\0b\n\n", "host=a\rb\n\n"] {
        let out = acct.run(&[], "get", bad);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(out.stdout.is_empty());
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }
    assert_eq!(fs::read(acct.cache_file()).unwrap(), before);
}

/// On a terminal, `get` prompts; git's `credential.interactive=false` forbids that, and the
/// helper fails fast naming `login`.
#[test]
fn git_credential_interactive_false_forbids_the_prompt_on_a_terminal() {
    let idp = Idp::start();
    let acct = Account::new(idp.issuer(), PUBLIC_CLIENT, &[]);
    let gitconfig = acct.home().join(".gitconfig");
    let get = format!(
        "printf 'protocol=https\\nhost=git.example.org\\n\\n' | {} --issuer {} --client-id {PUBLIC_CLIENT} get; echo rc=$?",
        support::helper_path().display(),
        idp.issuer()
    );

    fs::write(&gitconfig, "[credential]\n\tinteractive = false\n").unwrap();
    let text = Terminal::run(acct.home(), &get, T);
    assert!(
        text.contains("rc=3") && text.contains("git-credential-iam login"),
        "{text}"
    );
    assert!(!text.contains("Code:"), "{text}");
    assert_eq!(idp.counters()["device_authorization"], 0);

    // Without it, the same terminal gets the prompt (cut short by `timeout`, unanswered).
    fs::write(&gitconfig, "").unwrap();
    let text = Terminal::run(
        acct.home(),
        &format!("timeout 3 sh -c \"{}\"", get.replace('"', "\\\"")),
        T,
    );
    assert!(text.contains("Code:"), "{text}");
}
