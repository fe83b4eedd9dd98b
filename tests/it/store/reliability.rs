//! Proof under faults, against the real test provider: a helper killed with SIGKILL at random
//! points of a refresh (the cache always parses and holds the old or the new tokens), a lock
//! holder stopped with SIGSTOP (the waiter's bounded wait ends naming it), a cache directory that
//! belongs to another user, and a sweep asserting that no token or secret ever reaches stderr or
//! the helper's argv.

use crate::support;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    Account, CONF_CLIENT, CONF_SECRET, Idp, Lines, PUBLIC_CLIENT, REQUEST, find_user_code,
};

const T: Duration = Duration::from_secs(30);

/// A login seeded the way CI does it: a refresh token imported from stdin.
fn seed(home: &Account, idp: &Idp) {
    let rt = idp.device_flow_token(PUBLIC_CLIENT, "openid offline_access")["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let out = home.run(&[], "import", &rt);
    assert!(out.status.success(), "{out:?}");
}

/// A small deterministic PRNG (xorshift) for kill delays.
fn delays(n: usize, max_us: u64) -> Vec<Duration> {
    let mut x = 0x2545F4914F6CDD1Du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_micros(x % max_us)
        })
        .collect()
}

/// Outcomes of killing a refresh with `signal` at `n` random points.
#[derive(Debug, Default)]
struct Outcomes {
    before_refresh: usize,
    completed: usize,
    lost: usize,
    /// Completed refreshes whose process then died of the signal: it arrived while the
    /// process was still running, and the rotated token was saved all the same.
    completed_then_killed: usize,
}

fn kill_refreshes(idp: &Idp, home: &Account, signal: i32, n: usize) -> Outcomes {
    let mut o = Outcomes::default();
    for delay in delays(n, 25_000) {
        home.expire();
        let old_rt = home.cache()["refresh_token"].as_str().unwrap().to_string();
        let mut child = home.spawn_get(&[]);
        std::thread::sleep(delay);
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        let killed = std::os::unix::process::ExitStatusExt::signal(&status) == Some(signal);
        // The cache always parses, with the format version and a refresh token.
        let v = home.cache();
        assert_eq!(v["version"], 1);
        let rt = v["refresh_token"]
            .as_str()
            .expect("a refresh token is always there")
            .to_string();
        let rotated = rt != old_rt;
        // Is the login still usable?
        let out = home.run(&[], "get", REQUEST);
        match (out.status.code(), rotated) {
            (Some(0), false) => o.before_refresh += 1,
            (Some(0), true) => {
                o.completed += 1;
                o.completed_then_killed += usize::from(killed);
            }
            (Some(3), false) => {
                // Killed between the provider's rotation and our write: the provider has
                // already consumed the old refresh token. Only a new sign-in recovers.
                o.lost += 1;
                seed(home, idp);
            }
            other => panic!("unexpected outcome {other:?}: {out:?}"),
        }
    }
    eprintln!("signal {signal} at {n} random points of a refresh: {o:?}");
    o
}

#[test]
fn sigkill_during_refresh_never_corrupts_the_cache() {
    let idp = Idp::shared();
    let home = Account::new(idp.issuer(), PUBLIC_CLIENT, &["--non-interactive"]);
    seed(&home, idp);
    let o = kill_refreshes(idp, &home, libc::SIGKILL, 100);
    assert!(
        o.completed > 0 && o.before_refresh > 0,
        "the delays cover both sides: {o:?}"
    );
}

#[test]
fn ctrl_c_or_sigterm_during_refresh_never_loses_the_login() {
    let idp = Idp::shared();
    let home = Account::new(idp.issuer(), PUBLIC_CLIENT, &["--non-interactive"]);
    seed(&home, idp);
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let o = kill_refreshes(idp, &home, signal, 50);
        assert_eq!(
            o.lost, 0,
            "termination is deferred until the rotated token is saved: {o:?}"
        );
        assert!(
            o.completed_then_killed > 0,
            "some signals landed during the refresh: {o:?}"
        );
    }
}

#[test]
fn a_stopped_lock_holder_is_named_by_the_bounded_wait() {
    let idp = Idp::shared();
    let home = Account::new(idp.issuer(), PUBLIC_CLIENT, &[]);
    // The holder: a device flow waiting for approval holds the account's lock.
    let mut holder = home.spawn_get(&["--interactive"]);
    let mut lines = Lines::spawn(holder.stderr.take().unwrap());
    let code_line = lines
        .wait_for(|l| l.contains("Code:"), T)
        .expect("the holder shows a code");
    assert!(find_user_code(&code_line).is_some());
    let pid = holder.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );

    let start = Instant::now();
    let out = home.run(&["--interactive", "--lock-timeout", "1"], "get", REQUEST);
    let took = start.elapsed();
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    let _ = holder.kill();
    let _ = holder.wait();

    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert!(
        err.contains("waiting for another git-credential-iam process"),
        "{err}"
    );
    assert!(
        err.contains(&format!("(pid {pid})")),
        "the error names the holder: {err}"
    );
    assert!(err.contains("--lock-timeout"), "{err}");
    assert!(took < Duration::from_secs(5), "bounded: {took:?}");
}

#[cfg(unix)]
#[test]
fn a_cache_directory_of_another_user_is_refused() {
    if !support::needs_root("a_cache_directory_of_another_user_is_refused") {
        return;
    }
    let idp = Idp::shared();
    let home = Account::new(idp.issuer(), PUBLIC_CLIENT, &["--non-interactive"]);
    seed(&home, idp);
    home.expire();
    let before = fs::read(home.cache_file()).unwrap();
    std::os::unix::fs::chown(home.cache_dir(), Some(65534), None).unwrap();
    let out = home.run(&[], "get", REQUEST);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("belongs to user id 65534"), "{err}");
    assert_eq!(fs::read(home.cache_file()).unwrap(), before);
}

/// Every flow with secrets of known value: none appears in any stderr, and the helper's argv
/// (what `ps` shows) holds none while it runs.
#[test]
fn no_secret_reaches_stderr_or_argv() {
    let idp = Idp::shared();
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    fs::write(secret_file.path(), CONF_SECRET).unwrap();
    let sf = secret_file.path().to_str().unwrap().to_string();
    let home = Account::new(idp.issuer(), CONF_CLIENT, &["--client-secret-file", &sf]);
    let mut stderrs = Vec::new();

    // Device flow; read argv from /proc while it waits.
    let mut child = home.spawn_get(&["--interactive"]);
    let mut lines = Lines::spawn(child.stderr.take().unwrap());
    let code = find_user_code(&lines.wait_for(|l| l.contains("Code:"), T).unwrap()).unwrap();
    let argv = fs::read(format!("/proc/{}/cmdline", child.id())).unwrap_or_default();
    idp.approve(&code);
    assert!(child.wait().unwrap().success());
    stderrs.push(lines.rest(T).join("\n") + &lines.seen().join("\n"));
    let first = home.cache();

    // Refresh, token formats, status, erase, logout, and a dead refresh token.
    home.expire();
    for (extra, action, input) in [
        (vec!["--non-interactive"], "get", REQUEST.to_string()),
        (vec![], "token", String::new()),
        (vec!["--format", "json"], "token", String::new()),
        (vec![], "status", String::new()),
    ] {
        let out = home.run(&extra, action, &input);
        assert!(out.status.success(), "{out:?}");
        stderrs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let second = home.cache();
    let at = second["access_token"].as_str().unwrap().to_string();
    let out = home.run(
        &[],
        "erase",
        &format!("protocol=https\nhost=git.example.org\nusername=oauth2\npassword={at}\n\n"),
    );
    stderrs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    let out = home.run(&[], "logout", "");
    stderrs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    let dead = second["refresh_token"].as_str().unwrap().to_string();
    let out = home.run(&["--non-interactive"], "import", &dead);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    stderrs.push(String::from_utf8_lossy(&out.stderr).into_owned());

    let mut secrets = vec![
        CONF_SECRET.to_string(),
        "s3c%2Br%25t".to_string(),
        dead.clone(),
        at.clone(),
    ];
    for v in [&first, &second] {
        for k in ["access_token", "refresh_token"] {
            if let Some(s) = v[k].as_str() {
                secrets.push(s.to_string());
            }
        }
    }
    let all = stderrs.join("\n");
    assert!(
        all.contains("Code:") && all.contains("logged out"),
        "the sweep saw the flows: {all}"
    );
    for s in &secrets {
        assert!(!all.contains(s.as_str()), "a secret reached stderr: {all}");
        assert!(
            !String::from_utf8_lossy(&argv).contains(s.as_str()),
            "a secret is in argv"
        );
    }
    assert!(!argv.is_empty(), "argv was read while the helper ran");
}
