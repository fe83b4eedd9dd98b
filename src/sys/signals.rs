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
