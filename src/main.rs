//! The binary: hands argv, the standard streams, the clock and the environment to the library.
//!
//! On Unix it starts the way a C program does (`no_main`, a C `main`): std's own start-up (a
//! stack-overflow handler, which makes glibc read `/proc/self/maps`, an alternate signal stack,
//! a poll of the standard descriptors) is about a tenth of a cache-hit `get`, the call git makes
//! on every fetch (README, "Reliability and performance"). What of it matters is done here:
//! SIGPIPE is ignored as std would (a closed pipe is an error to report, not a silent death),
//! and stdout is flushed before the exit. The arguments come from `argv` itself.
#![cfg_attr(unix, no_main)]

use std::ffi::OsString;
use std::io::{IsTerminal, Write};

#[cfg(unix)]
#[unsafe(no_mangle)]
extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    use std::os::unix::ffi::OsStringExt;
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let count = usize::try_from(argc).unwrap_or(0);
    let args = (1..count)
        .map(|i| {
            // SAFETY: the C runtime passes `argc` valid, NUL-terminated strings in `argv`,
            // alive for the whole process.
            let arg = unsafe { std::ffi::CStr::from_ptr(*argv.add(i)) };
            OsString::from_vec(arg.to_bytes().to_vec())
        })
        .collect();
    libc::c_int::from(run(args))
}

#[cfg(not(unix))]
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(run(std::env::args_os().skip(1).collect()))
}

fn run(args: Vec<OsString>) -> u8 {
    // Before anything is read: a core dump would hold the tokens and the client secret.
    git_credential_iam::disable_core_dumps();
    let stdin = std::io::stdin();
    let mut stdin = stdin.lock();
    let mut stdout = std::io::stdout().lock();
    let stderr = std::io::stderr();
    let stderr_is_tty = stderr.is_terminal();
    let mut stderr = stderr.lock();
    let clock = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    // The one place the process environment is read. HOME, when unset, is the system's record
    // of the user (the password database; the profile folder on Windows).
    let getenv = |k: &str| {
        let v = std::env::var(k).ok();
        if k == "HOME" && v.as_deref().is_none_or(str::is_empty) {
            return dirs::home_dir().and_then(|h| h.into_os_string().into_string().ok());
        }
        v
    };
    let mut io = git_credential_iam::Io {
        stdout: &mut stdout,
        stderr: &mut stderr,
        stderr_is_tty,
        clock: &clock,
        getenv: &getenv,
    };
    let code = git_credential_iam::run(args, &mut stdin, &mut io);
    // Returning from a C `main` does not flush Rust's buffered stdout; a failure here is the
    // same failure as a failed write of the answer.
    match stdout.flush() {
        Err(e) if code == 0 => {
            let e = git_credential_iam::Error::Output(e);
            let _ = writeln!(stderr, "git-credential-iam: {e}");
            e.exit_code()
        }
        _ => code,
    }
}
