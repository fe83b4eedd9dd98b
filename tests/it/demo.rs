//! `contrib/demo.sh --auto` end to end: the newcomer's one-minute demo must keep working. It
//! runs with `GIT_CREDENTIAL_IAM_BIN` set to the binary under test (so it does not build a
//! release binary) and must sign in, clone twice (the second time from the cache, with zero
//! token requests), refresh silently, and clean up its temporary HOME.
#![cfg(unix)]

use crate::support;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The demo takes a few seconds; this only bounds a hang.
const DEMO_TIMEOUT: Duration = Duration::from_secs(120);

fn demo_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/demo.sh")
}

/// What a finished run printed.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn transcript(&self) -> String {
        format!(
            "exit: {}\n---- stdout ----\n{}\n---- stderr ----\n{}",
            self.status, self.stdout, self.stderr
        )
    }

    /// The one stdout line starting with `prefix`; panics with the transcript otherwise.
    fn line(&self, prefix: &str) -> &str {
        let found: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| l.starts_with(prefix))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one stdout line starting with {prefix:?}\n{}",
            self.transcript()
        );
        found[0]
    }
}

/// Send `signal` to the process group `pgid` (which this test created with the demo as its
/// leader, so it holds only processes the demo started).
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// Run `bash contrib/demo.sh ARGS` in its own process group with a bounded wait. On timeout the
/// whole group gets SIGTERM (the script's trap stops its servers and its background clone, and
/// removes its temp dir), then SIGKILL after a grace period, so nothing the demo started
/// outlives the test holding our pipes open.
fn run_demo(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new("bash");
    cmd.arg(demo_script())
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child: Child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run bash (needed for contrib/demo.sh): {e}"));
    let pgid = child.id();
    let reader = |r: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out_t = reader(child.stdout.take().map(|s| Box::new(s) as _));
    let err_t = reader(child.stderr.take().map(|s| Box::new(s) as _));
    let deadline = Instant::now() + DEMO_TIMEOUT;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            // TERM to everything in the group (the script's trap then stops the servers and
            // the clone's own group); KILL the group only while its leader is unreaped, so the
            // group id cannot belong to anyone else yet.
            signal_group(pgid, "-TERM");
            let grace = Instant::now() + Duration::from_secs(5);
            let exited = loop {
                if let Some(status) = child.try_wait().expect("try_wait") {
                    break Some(status);
                }
                if Instant::now() >= grace {
                    break None;
                }
                thread::sleep(Duration::from_millis(20));
            };
            break exited.unwrap_or_else(|| {
                signal_group(pgid, "-KILL");
                child.wait().expect("wait")
            });
        }
        thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    };
    assert!(
        !timed_out,
        "contrib/demo.sh {args:?} still running after {DEMO_TIMEOUT:?}\n{}",
        run.transcript()
    );
    run
}

/// The two numbers in "... before N, after M ...".
fn before_after(line: &str) -> (u64, u64) {
    let num_after = |key: &str| -> u64 {
        let rest = &line[line
            .find(key)
            .unwrap_or_else(|| panic!("no {key:?} in {line:?}"))
            + key.len()..];
        rest.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or_else(|e| panic!("no number after {key:?} in {line:?}: {e}"))
    };
    (num_after("before "), num_after("after "))
}

#[test]
fn demo_auto_signs_in_serves_from_cache_and_refreshes() {
    support::ensure_node_modules();
    let run = run_demo(
        &["--auto"],
        &[(
            "GIT_CREDENTIAL_IAM_BIN",
            env!("CARGO_BIN_EXE_git-credential-iam"),
        )],
    );
    let t = run.transcript();
    assert!(run.status.success(), "the demo failed\n{t}");

    // the device flow was shown (on stderr, through git) and approved
    assert!(
        run.stderr.contains("\n  Code:  "),
        "no device code shown\n{t}"
    );
    assert!(
        run.stderr.contains("signed in to 127.0.0.1:"),
        "no sign-in\n{t}"
    );
    run.line("demo: approving code ");

    // first clone
    run.line(
        r#"demo: first clone succeeded: README says "hello from the git-credential-iam demo""#,
    );

    // second clone from the cache: the token endpoint count did not move
    let second = run.line("demo: second clone succeeded: token endpoint requests ");
    let (before, after) = before_after(second);
    assert!(
        before >= 1,
        "the sign-in made no token request? {second}\n{t}"
    );
    assert_eq!(before, after, "the second clone asked for a token\n{t}");
    assert!(
        second.contains(": 0 new (served from the cache)"),
        "{second}\n{t}"
    );

    // status lists the login with a refresh token
    assert!(
        run.stdout.contains("\n  client id:     public-cli\n"),
        "status\n{t}"
    );
    assert!(
        run.stdout.contains("\n  refresh token: held\n"),
        "status\n{t}"
    );

    // the token action: an Authorization header (token shortened) when this build has it,
    // else a skip note
    let header = "=== git-credential-iam token --format header ===";
    run.line(header);
    let shown = run
        .stdout
        .lines()
        .skip_while(|l| *l != header)
        .nth(1)
        .unwrap_or_default();
    assert!(
        shown.starts_with("Authorization: Bearer ")
            && shown.ends_with("... (shortened by the demo)"),
        "token section shows {shown:?}\n{t}"
    );

    // exactly one silent refresh, no new sign-in
    let refresh = run.line("demo: refresh happened: refresh_token grants ");
    let (before, after) = before_after(refresh);
    assert_eq!(after, before + 1, "{refresh}\n{t}");
    assert!(refresh.ends_with("(no new sign-in)"), "{refresh}\n{t}");
    run.line("=== Done in ");

    // no token ever printed in the clear by the demo's get
    for l in run.stdout.lines() {
        if l.starts_with("password=") || l.starts_with("credential=") {
            assert!(
                l.ends_with("=<the new access token, not shown>"),
                "{l}\n{t}"
            );
        }
    }

    // the temporary HOME is gone (its path is in the printed credential.helper line)
    let helper_line = run.line("demo: git config --global credential.http://127.0.0.1:");
    assert!(helper_line.contains(".helper: "), "{helper_line}");
    let cache_dir = helper_line
        .rsplit("--cache-dir ")
        .next()
        .expect("--cache-dir in the helper line")
        .trim_matches('\'');
    let tmp = Path::new(cache_dir)
        .ancestors()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("git-credential-iam-demo."))
        })
        .unwrap_or_else(|| panic!("no demo temp dir in {cache_dir:?}\n{t}"));
    assert!(!tmp.exists(), "{} was not removed\n{t}", tmp.display());
}

#[test]
fn demo_help_and_unknown_option() {
    let help = run_demo(&["--help"], &[]);
    assert!(help.status.success(), "{}", help.transcript());
    assert!(help.stdout.contains("--auto"), "{}", help.transcript());

    let bad = run_demo(&["--bogus"], &[]);
    assert_eq!(bad.status.code(), Some(2), "{}", bad.transcript());
    assert!(
        bad.stderr.contains("unknown option --bogus"),
        "{}",
        bad.transcript()
    );
}
