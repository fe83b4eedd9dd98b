//! The binary: hands argv, the standard streams, the clock and the environment to the library.
//!
//! On Unix it starts the way a C program does (`no_main`, a C `main`): std's own start-up (a
//! stack-overflow handler, which makes glibc read `/proc/self/maps`, an alternate signal stack,
//! a poll of the standard descriptors) is about a tenth of a cache-hit `get`, the call git makes
//! on every fetch (README, "Reliability and performance"). What of it matters is done here:
//! descriptors 0–2 that were closed are opened on `/dev/null` (else the first file the helper
//! opens would become its stderr), and SIGPIPE is ignored (a closed pipe is an error to report,
//! not a silent death), as std would; `run` flushes stdout. The arguments come from `argv`.
#![cfg_attr(unix, no_main)]

use std::ffi::OsString;
use std::io::IsTerminal;

#[cfg(unix)]
#[unsafe(no_mangle)]
extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    use std::os::unix::ffi::OsStringExt;
    standard_descriptors_open();
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

/// Opens `/dev/null` on any of descriptors 0–2 that is closed (`git … 2>&-`), as std's start-up
/// does: one `poll` when all three are open.
#[cfg(unix)]
fn standard_descriptors_open() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is a valid array of three pollfd for the duration of the call.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } < 0 {
        return;
    }
    for p in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
        let mode = if p.fd == 0 {
            libc::O_RDONLY
        } else {
            libc::O_RDWR
        };
        // SAFETY: a NUL-terminated path; open returns the lowest free descriptor, which is this
        // closed one since the lower ones are open (they were checked in order).
        unsafe { libc::open(c"/dev/null".as_ptr(), mode) };
    }
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
    // `run` flushes stdout itself: returning from a C `main` would not.
    git_credential_iam::run(args, &mut stdin, &mut io)
}
