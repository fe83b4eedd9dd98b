//! The operating system: the calls that harden the process and its files ([`hardening`]) and the
//! deferral of termination signals while a rotated refresh token is in flight ([`signals`]).

pub mod hardening;
pub mod signals;

/// The process's effective user id: the owner of the files it creates.
#[cfg(unix)]
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
