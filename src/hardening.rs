//! The few operating-system calls that keep secrets from leaking out of the process, in one
//! place and with their constants from `libc` (never hand-coded numbers, which are right on one
//! architecture only): no core dumps ([`disable_core_dumps`]).

/// Keeps this process from ever writing a core dump, which could hold an access token, a refresh
/// token or the client secret. Called first thing in `main`, before any secret is read.
///
/// On every Unix the core file size limit (`RLIMIT_CORE`, soft and hard) becomes 0, so neither
/// the process nor the programs it starts (a browser, an askpass program) write a core file, and
/// none can raise the limit again. On Linux the process is also made non-dumpable
/// (`PR_SET_DUMPABLE` 0): no core dump whatever the limit or a `core_pattern` pipe, and other
/// processes of the same user can neither `ptrace` it nor read its memory through
/// `/proc/PID/mem`. Both are best effort (they fail only on a kernel without them) and cost one
/// system call each. The limit is set first, so a process seen non-dumpable has both.
pub fn disable_core_dumps() {
    #[cfg(unix)]
    {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `zero` is an initialised rlimit that outlives the call, which only reads it.
        unsafe {
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
        }
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: prctl(PR_SET_DUMPABLE) takes plain integers, touches no memory of ours and only
    // changes this process's dumpable flag.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}
