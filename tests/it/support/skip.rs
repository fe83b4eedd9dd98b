//! Tests (or parts) that need root or a tool this machine may lack: said, counted, never silent.
//!
//! A test that cannot run here calls [`skip`] (through [`needs_root`], [`needs_tool`] and the
//! other `needs_*`) and returns: `SKIPPED: TEST: WHY` goes straight to stderr, past the test
//! harness's capture, and when the test process ends it prints how many tests or parts were
//! skipped, after cargo's `test result:` line. CI runs as root with every tool installed
//! (`.ci/run`), so there nothing is skipped.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// What was skipped so far, one `TEST: WHY` a skip.
static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Says on the real stderr that `test` (or a part of it, named in `test`) was not run, and
/// why; the summary at exit counts it.
pub fn skip(test: &str, why: &str) {
    let line = format!("{test}: {why}");
    let _ = writeln!(std::io::stderr(), "SKIPPED: {line}");
    let mut skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    if skipped.is_empty() {
        // SAFETY: registers a plain function with no preconditions, once.
        unsafe { libc::atexit(summary) };
    }
    skipped.push(line);
}

/// At exit: the skips again, after the harness's own summary.
extern "C" fn summary() {
    let skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "\nSKIPPED {} test(s) or part(s), counted as passed above (CI runs them):",
        skipped.len()
    );
    for line in skipped.iter() {
        let _ = writeln!(err, "  SKIPPED: {line}");
    }
}

/// Whether the tests run as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the tests run as root, for a test (or part, named in `test`) that needs root (to
/// give a file to another user, to mount); [`skip`]s it when not.
pub fn needs_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    skip(test, "needs root (sudo cargo test)");
    false
}

/// Whether `probe` (a command that only reports, like `cargo deb --version`) runs and exits 0;
/// when not, [`skip`]s `test`, naming WHAT is needed and HOW to get it: `.ci/run` installs
/// every such tool, so CI never skips.
pub fn needs_tool(test: &str, probe: &mut Command, what: &str, how: &str) -> bool {
    let ok = probe
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        skip(test, &format!("needs {what} ({how})"));
    }
    ok
}
