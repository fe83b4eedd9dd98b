//! Node.js scripts of `tests/idp` run as children: `npm ci` once, a ready line, a log file.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a server may take to print its ready line.
pub(super) const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// `tests/idp`, where the node scripts live.
pub fn idp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("idp")
}

/// Make sure `node` runs and `tests/idp/node_modules` is installed (runs `npm ci` at most once
/// per test process, under a file lock shared by all test binaries). Panics when it cannot,
/// with the same message in every test of the process.
pub fn ensure_node_modules() {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(msg) = RESULT.get_or_init(install_node_modules) {
        panic!("{msg}");
    }
}

fn install_node_modules() -> Result<(), String> {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Err(format!(
                "`node --version` failed ({}): Node.js >= 20 is required to run the test IdP",
                out.status
            ));
        }
        Err(e) => {
            return Err(format!(
                "cannot run `node` ({e}): Node.js >= 20 and npm are required to run the test IdP \
                 (tests/idp); install them, these tests do not skip"
            ));
        }
    }
    let dir = idp_dir();
    // in tests/idp (git-ignored) so every test binary and target dir shares it
    let lock_path = dir.join(".npm-ci.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if node_modules_stale(&dir) {
        // `npm ci` empties node_modules first: never through a link to someone else's.
        if fs::symlink_metadata(dir.join("node_modules")).is_ok_and(|m| m.is_symlink()) {
            return Err(format!(
                "{}/node_modules is a link to packages other than package-lock.json pins: \
                 run `npm ci` where it points, or remove the link",
                dir.display()
            ));
        }
        let started = Instant::now();
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run `npm ci` in {}: {e}", dir.display()))?;
        if !out.status.success() {
            return Err(format!(
                "`npm ci` in {} failed ({}):\n{}\n{}",
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        eprintln!(
            "support: npm ci in {} took {:?}",
            dir.display(),
            started.elapsed()
        );
    }
    Ok(())
}

/// True when `node_modules` is missing or holds other packages than `package-lock.json` pins:
/// npm's record of what it installed (`node_modules/.package-lock.json`) names other paths or
/// versions. (By content, not by time: a fresh checkout's lock file is newer than any install.)
fn node_modules_stale(dir: &Path) -> bool {
    let packages = |file: &Path| -> Option<Vec<(String, String)>> {
        let lock: Value = serde_json::from_slice(&fs::read(file).ok()?).ok()?;
        let mut all: Vec<(String, String)> = lock["packages"]
            .as_object()?
            .iter()
            .filter(|(path, _)| !path.is_empty())
            .map(|(path, p)| {
                (
                    path.clone(),
                    p["version"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        all.sort();
        Some(all)
    };
    let wanted = packages(&dir.join("package-lock.json")).expect("tests/idp/package-lock.json");
    packages(&dir.join("node_modules").join(".package-lock.json")) != Some(wanted)
}

/// A node script running as a child with piped stdin (it exits when stdin closes) and its
/// stderr going to a log file that is printed when a test panics.
pub(super) struct NodeChild {
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl NodeChild {
    /// Spawn `node SCRIPT ARGS` in `tests/idp` and return it with its parsed ready line.
    pub(super) fn spawn(script: &str, args: &[String]) -> (NodeChild, Value) {
        ensure_node_modules();
        let dir = tempfile::Builder::new()
            .prefix("gci-node-")
            .tempdir()
            .expect("tempdir");
        let log = dir.path().join(format!("{script}.log"));
        let log_file = File::create(&log).expect("create log file");
        let mut child = Command::new("node")
            .arg(idp_dir().join(script))
            .args(args)
            .current_dir(idp_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `node {script}`: {e} (is Node.js installed?)"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            for _ in lines {} // nothing more is expected; keep the pipe drained
        });
        let mut me = NodeChild {
            child,
            stdin,
            log,
            _dir: dir,
        };
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => panic!(
                "node {script} exited before it was ready ({:?}); its log:\n{}",
                me.child.try_wait(),
                me.log_text()
            ),
            Err(_) => panic!(
                "node {script} printed no ready line within {READY_TIMEOUT:?}; its log:\n{}",
                me.log_text()
            ),
        };
        let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            panic!(
                "node {script}: bad ready line {line:?}: {e}; its log:\n{}",
                me.log_text()
            )
        });
        (me, ready)
    }

    pub(super) fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeChild {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "---- log of {} ----\n{}",
                self.log.display(),
                self.log_text()
            );
        }
    }
}
