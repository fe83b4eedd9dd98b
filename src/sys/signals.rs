//! Deferring termination signals while a refresh is in flight. Between the moment the provider
//! rotates a refresh token and the moment the new one is saved, a Ctrl-C (SIGINT), SIGTERM,
//! SIGHUP or SIGQUIT would lose the login: the old token is already dead. [`Deferred`] blocks
//! those signals for that window (bounded by `--timeout`); a signal that arrives meanwhile stays
//! pending and takes effect the moment the guard drops, after the save. SIGKILL cannot be
//! deferred; the cache write is ordered to keep its window as short as possible.

/// Blocks SIGINT, SIGTERM, SIGHUP and SIGQUIT until dropped.
pub struct Deferred {
    #[cfg(unix)]
    old: libc::sigset_t,
}

impl Deferred {
    /// Starts deferring.
    pub fn new() -> Deferred {
        #[cfg(unix)]
        // SAFETY: sigset_t is plain data initialised by sigemptyset; pthread_sigmask only reads
        // `set` and writes `old`, both valid for the duration of the calls.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
                libc::sigaddset(&mut set, sig);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            Deferred { old }
        }
        #[cfg(not(unix))]
        Deferred {}
    }
}

/// Spawns a thread that never takes a termination signal. The kernel hands a process-directed
/// signal to any thread that does not block it, and its default action ends the whole process:
/// while the main thread defers them around a refresh, any other thread that left them open
/// would let a Ctrl-C through and lose the rotated login. Every thread the helper starts goes
/// through here, so the signals stay with the main thread.
pub fn spawn_quiet<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<T>> {
    // The new thread inherits the mask in effect while it is created.
    let _blocked = Deferred::new();
    std::thread::Builder::new().name(name.into()).spawn(f)
}

impl Default for Deferred {
    fn default() -> Self {
        Deferred::new()
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: restores the mask saved in `new`; a pending signal is delivered now.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// Whether the calling thread blocks `sig`.
    fn blocked(sig: libc::c_int) -> bool {
        // SAFETY: pthread_sigmask with a null `set` only writes the current mask into `now`.
        unsafe {
            let mut now: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut now);
            libc::sigismember(&now, sig) == 1
        }
    }

    #[test]
    fn a_quiet_thread_blocks_the_termination_signals_and_the_caller_keeps_its_mask() {
        let before = blocked(libc::SIGINT);
        let inside = spawn_quiet("probe", || {
            [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT].map(blocked)
        })
        .unwrap()
        .join()
        .unwrap();
        assert_eq!(inside, [true; 4]);
        assert_eq!(
            blocked(libc::SIGINT),
            before,
            "the caller's mask is restored"
        );
    }
}
