//! Commands with a clean environment rooted in a test home, bounded runs, and a child's lines.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::provider::Idp;

pub(super) fn prepare_home(home: &Path) {
    for d in [".config", ".local/state", ".local/share", ".cache", "run"] {
        fs::create_dir_all(home.join(d)).expect("create test home dirs");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(home.join("run"), fs::Permissions::from_mode(0o700));
    }
}

pub(super) fn clean_env(cmd: &mut Command, home: &Path) {
    prepare_home(home);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", home.join(".gitconfig"))
        .env("LANG", "C")
        // The hosts the tests' hand-written requests name are tied to every account the tests
        // give on the command line; the trust-boundary tests remove this to test the rule.
        .env("GIT_CREDENTIAL_IAM_URL", TIED_URL);
}

/// The hosts tied through `GIT_CREDENTIAL_IAM_URL` in every test command's environment.
pub const TIED_URL: &str = "git.example.org git.example";

/// `program` with an empty environment except PATH, HOME=`home`, XDG_CONFIG_HOME /
/// XDG_STATE_HOME / XDG_DATA_HOME / XDG_CACHE_HOME / XDG_RUNTIME_DIR under `home` (created),
/// GIT_CONFIG_NOSYSTEM=1, GIT_CONFIG_GLOBAL=`home`/.gitconfig, LANG=C and
/// GIT_CREDENTIAL_IAM_URL=[`TIED_URL`]: nothing of the developer's HOME or config reaches it.
pub fn clean_cmd(program: impl AsRef<std::ffi::OsStr>, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    clean_env(&mut cmd, home);
    cmd
}

/// The helper binary under test in [`clean_cmd`]'s environment.
pub fn helper_cmd(home: &Path) -> Command {
    clean_cmd(helper_path(), home)
}

/// A finished command's status, stdout and stderr, for an assertion's message.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts that `out` is a success (showing all it printed when not); returns it.
pub fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", output_text(&out));
    out
}

/// Path of the helper binary under test.
pub fn helper_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_git-credential-iam"))
}

/// `git` with the same clean environment as [`helper_cmd`] plus GIT_TERMINAL_PROMPT=0.
pub fn git_cmd(home: &Path) -> Command {
    let mut cmd = clean_cmd("git", home);
    cmd.env("GIT_TERMINAL_PROMPT", "0");
    cmd
}

/// Spawns `cmd` with stdin, stdout and stderr piped and writes `input` to its stdin (a child
/// that exits without reading it is no failure), then closes stdin.
pub fn spawn_with_input(cmd: &mut Command, input: &str) -> Child {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child
}

/// The account cache files (`*.json`, not the discovery documents) in `cache_dir`.
pub fn account_cache_files(cache_dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(cache_dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "json")
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("discovery-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Run `cmd` with `input` on stdin and stdout/stderr captured; kill it and panic (showing what
/// it printed) when it runs longer than `timeout`.
pub fn run_with_input(mut cmd: Command, input: &str, timeout: Duration) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.as_bytes().to_vec();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let reader = |r: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out_t = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err_t = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_t.join().unwrap_or_default();
            let stderr = err_t.join().unwrap_or_default();
            panic!(
                "{cmd:?} still running after {timeout:?}; stdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// Lines of a reader (a child's stderr, say), read on a background thread until EOF.
pub struct Lines {
    rx: Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    /// Start reading `reader` line by line (lossy UTF-8) on a thread.
    pub fn spawn<R: Read + Send + 'static>(reader: R) -> Lines {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut r = BufReader::new(reader);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf)
                            .trim_end_matches(['\r', '\n'])
                            .to_string();
                        if tx.send(line).is_err() {
                            // receiver gone: keep draining so the child never blocks on a full pipe
                            let _ = std::io::copy(&mut r, &mut std::io::sink());
                            break;
                        }
                    }
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// The first line from now on for which `pred` holds, or `None` at EOF or after `timeout`.
    pub fn wait_for(
        &mut self,
        mut pred: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None;
                }
            }
        }
    }

    /// Every line until EOF (or until `timeout`, then what came so far).
    pub fn rest(&mut self, timeout: Duration) -> Vec<String> {
        let start = self.seen.len();
        self.wait_for(|_| false, timeout);
        self.seen[start..].to_vec()
    }

    /// All lines received so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }
}

/// Read `reader` line by line on a thread and return the first line for which `pred` holds;
/// panics (listing the lines seen) at EOF or after `timeout`. The thread keeps draining the
/// reader afterwards, so the child never blocks on a full pipe.
pub fn wait_for_line<R: Read + Send + 'static>(
    reader: R,
    pred: impl FnMut(&str) -> bool,
    timeout: Duration,
) -> String {
    let mut lines = Lines::spawn(reader);
    match lines.wait_for(pred, timeout) {
        Some(line) => line,
        None => panic!(
            "no matching line within {timeout:?} (or EOF); lines seen:\n{}",
            lines.seen().join("\n")
        ),
    }
}

/// The token in the helper's Basic-mode answer to git (its `password=` line).
pub fn answered_password(stdout: &str) -> &str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("password="))
        .unwrap_or_else(|| panic!("no password= line in {stdout:?}"))
}

/// The first user code in `line` as oidc-provider prints it (`XXXX-XXXX`, letters of
/// `BCDFGHJKLMNPQRSTVWXZ`).
pub fn find_user_code(line: &str) -> Option<String> {
    const CHARSET: &str = "BCDFGHJKLMNPQRSTVWXZ";
    let b = line.as_bytes();
    (0..b.len().saturating_sub(8)).find_map(|i| {
        let w = &line.get(i..i + 9)?;
        let ok = w.char_indices().all(|(j, c)| {
            if j == 4 {
                c == '-'
            } else {
                CHARSET.contains(c)
            }
        });
        let bounded = |k: Option<&u8>| k.is_none_or(|c| !c.is_ascii_alphanumeric());
        (ok && bounded(i.checked_sub(1).and_then(|k| b.get(k))) && bounded(b.get(i + 9)))
            .then(|| w.to_string())
    })
}

/// Runs `cmd` to its end within `timeout`; `false` when it fails or is killed at the deadline.
pub(super) fn run_bounded(cmd: &mut Command, timeout: Duration) -> bool {
    let Ok(mut child) = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// [`helper_cmd`] without `GIT_CREDENTIAL_IAM_URL`: only what `setup` writes ties a URL.
pub fn setup_cmd(home: &Path, args: &[&str]) -> Command {
    let mut cmd = helper_cmd(home);
    cmd.env_remove("GIT_CREDENTIAL_IAM_URL")
        .arg("setup")
        .args(args);
    cmd
}

/// Runs `cmd` (stdin closed), approves the device code it prints on stderr at `idp` when it
/// prints one, and returns its output once it exits; panics after `timeout`.
pub fn run_approving(mut cmd: Command, idp: &Idp, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut out = child.stdout.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let mut lines = Lines::spawn(child.stderr.take().unwrap());
    if let Some(line) = lines.wait_for(|l| l.contains("  Code:  "), timeout) {
        idp.approve(&find_user_code(&line).expect("a user code"));
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {timeout:?}: {:?}",
                lines.seen()
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    lines.rest(timeout);
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: lines.seen().join("\n").into_bytes(),
    }
}

/// `bin` (another build of the helper, e.g. the static-PIE release binary) with the same clean
/// environment as [`helper_cmd`].
pub fn cmd_for(bin: &Path, home: &Path) -> Command {
    clean_cmd(bin, home)
}
