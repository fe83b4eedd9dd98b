//! The only module that locks files: one lock per account, held from the cache re-read through
//! the provider request to the cache write, and never on the hot path (a cache hit takes no lock
//! and makes no `statfs`).
//!
//! Two ways to take it, chosen per cache directory when a lock is needed ([`choose`]):
//! - **flock** ([`flock`]), on a local file system: std's `File::lock` (flock on Unix,
//!   LockFileEx on Windows) on the account's sibling `KEY.lock` file (never the data file, which
//!   is replaced by rename). The kernel releases it when the process dies, so a crash never
//!   leaves a stale lock.
//! - **exclusive create** ([`create`]), on a file system that many machines share (NFS, AFS,
//!   SMB, FUSE, Lustre, … — [`fs_type`]), where `flock` may stay local to each machine: the lock
//!   is the existence of `KEY.lock.owner`, created with `O_CREAT|O_EXCL`, which the storage makes
//!   atomic across machines. It records the holder's host, pid and start time and is kept fresh
//!   by a heartbeat; a dead holder's lock is broken (see [`create`] for the rule). This
//!   machine's processes first queue on the `flock` as before, so only one of them at a time
//!   polls the shared file, and an older helper on the same machine is still excluded.
//!
//! `lock-mode` (`--lock-mode`, `GIT_CREDENTIAL_IAM_LOCK_MODE`) forces either way. A waiter is
//! told who holds the lock (pid and host) once, and a timeout names the holder.

mod create;
mod flock;
mod fs_type;
mod holder;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::LockMode;
use crate::error::Result;

/// A wait shorter than this goes unsaid: the holder is about to finish, and by then it has
/// written the record that names it.
const QUIET: Duration = Duration::from_millis(100);

/// The account's lock: the `flock` file's path and the mode to lock it in.
#[derive(Debug, Clone)]
pub struct LockFile {
    path: PathBuf,
    mode: LockMode,
}

impl LockFile {
    /// The lock whose `flock` file is `path` (`KEY.lock`), taken in `mode`.
    pub fn new(path: PathBuf, mode: LockMode) -> LockFile {
        LockFile { path, mode }
    }

    /// The `flock` file (`KEY.lock`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file whose exclusive creation is the lock on shared file systems (`KEY.lock.owner`):
    /// distinct from the `flock` file, which an older helper may hold open.
    pub fn owner_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".owner");
        self.path.with_file_name(name)
    }

    /// The configured mode.
    pub fn mode(&self) -> LockMode {
        self.mode
    }
}

/// How a lock is taken in one directory, and why: what `status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// An exclusive create of the owner file (else `flock` alone).
    pub create: bool,
    /// Why, for people.
    pub reason: String,
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.create {
            "exclusive create"
        } else {
            "flock"
        };
        write!(f, "{how} ({})", self.reason)
    }
}

/// How the lock of an account in `dir` is taken under `mode`: in `auto`, an exclusive create on
/// a shared file system and `flock` elsewhere (and wherever the file system cannot be told,
/// which includes every system but Linux).
pub fn choose(dir: &Path, mode: LockMode) -> Choice {
    let fs = fs_type::shared_or_ancestor(dir);
    let risk = |s: &fs_type::Shared| format!("{}: flock may not reach other machines", s.name);
    match (mode, fs) {
        (LockMode::Create, _) => Choice {
            create: true,
            reason: "forced by lock-mode".into(),
        },
        (LockMode::Flock, Ok(Some(s))) => Choice {
            create: false,
            reason: format!("forced by lock-mode; {}", risk(&s)),
        },
        (LockMode::Flock, _) => Choice {
            create: false,
            reason: "forced by lock-mode".into(),
        },
        (LockMode::Auto, Ok(Some(s))) => Choice {
            create: true,
            reason: risk(&s),
        },
        (LockMode::Auto, Ok(None)) if cfg!(target_os = "linux") => Choice {
            create: false,
            reason: "local file system".into(),
        },
        (LockMode::Auto, Ok(None)) => Choice {
            create: false,
            reason: "file system not checked on this platform".into(),
        },
        (LockMode::Auto, Err(e)) => Choice {
            create: false,
            reason: format!("file system not checked: {e}"),
        },
    }
}

/// An exclusive lock, released on drop.
#[derive(Debug)]
pub struct LockGuard {
    // Held for their `Drop`, in this order: the owner file first, then this machine's flock.
    _owner: Option<create::Owned>,
    _flock: Option<flock::Held>,
}

impl LockGuard {
    /// Takes `lock`. If another process holds it, calls `on_wait` once with the holder (pid and
    /// host, to say we are waiting), then waits until the holder releases it or `timeout`
    /// passes, after which it fails naming the holder. On a shared file system a lock whose
    /// holder is gone is broken instead (see [`create`]).
    pub fn acquire(
        lock: &LockFile,
        timeout: Duration,
        on_wait: impl FnOnce(&str),
    ) -> Result<LockGuard> {
        let start = Instant::now();
        let mut on_wait = Some(on_wait);
        let mut say = |holder: &str| {
            if let Some(f) = on_wait.take() {
                f(holder)
            }
        };
        let dir = lock.path.parent().unwrap_or(Path::new("."));
        let choice = choose(dir, lock.mode);
        // On a shared file system, flock may fail outright (NFS without a lock manager):
        // then the owner file alone excludes.
        let flock = flock::acquire(&lock.path, timeout, choice.create, &mut say)?;
        let owner = if choice.create {
            Some(create::acquire(
                &lock.owner_path(),
                start,
                timeout,
                &mut say,
            )?)
        } else {
            None
        };
        Ok(LockGuard {
            _owner: owner,
            _flock: flock,
        })
    }

    /// Whether the lock was taken by an exclusive create (a shared file system).
    #[cfg(test)]
    fn is_exclusive_create(&self) -> bool {
        self._owner.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(dir: &Path, name: &str, mode: LockMode) -> LockFile {
        LockFile::new(dir.join(name), mode)
    }

    #[test]
    fn second_lock_times_out_naming_holder() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [LockMode::Flock, LockMode::Create] {
            let p = lock(dir.path(), &format!("{mode:?}.lock"), mode);
            let _g = LockGuard::acquire(&p, Duration::from_secs(1), |_| panic!("no wait")).unwrap();
            let mut waited = None;
            let e = LockGuard::acquire(&p, Duration::from_millis(200), |h| {
                waited = Some(h.to_string())
            })
            .unwrap_err();
            let pid = format!("pid {}", std::process::id());
            let host = holder::Me::get().host.clone();
            let waited = waited.unwrap();
            assert!(waited.contains(&pid) && waited.contains(&host), "{waited}");
            assert!(e.to_string().contains(&pid), "{e}");
            assert!(e.to_string().contains(&host), "{e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_lock_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "precious").unwrap();
        let p = lock(dir.path(), "c.lock", LockMode::Flock);
        std::os::unix::fs::symlink(&target, p.path()).unwrap();
        let e = LockGuard::acquire(&p, Duration::from_secs(1), |_| panic!("no wait")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
        // The owner file too: a link there is never taken for a holder, nor followed.
        let p = lock(dir.path(), "d.lock", LockMode::Create);
        std::os::unix::fs::symlink(&target, p.owner_path()).unwrap();
        let e = LockGuard::acquire(&p, Duration::from_secs(1), |_| {}).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    }

    #[test]
    fn released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [LockMode::Flock, LockMode::Create, LockMode::Auto] {
            let p = lock(dir.path(), &format!("{mode:?}.lock"), mode);
            let g = LockGuard::acquire(&p, Duration::from_secs(1), |_| {}).unwrap();
            assert_eq!(g.is_exclusive_create(), mode == LockMode::Create);
            assert_eq!(p.owner_path().exists(), mode == LockMode::Create);
            drop(g);
            assert!(
                !p.owner_path().exists(),
                "the owner file goes with the lock"
            );
            LockGuard::acquire(&p, Duration::from_millis(10), |_| panic!("should be free"))
                .unwrap();
        }
    }

    #[test]
    fn owner_file_is_beside_the_flock_file() {
        let p = LockFile::new(PathBuf::from("/c/0123.lock"), LockMode::Auto);
        assert_eq!(p.owner_path(), Path::new("/c/0123.lock.owner"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn choice_follows_the_mode_and_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let local = fs_type::shared(dir.path()).unwrap().is_none();
        let auto = choose(dir.path(), LockMode::Auto);
        assert_eq!(auto.create, !local, "{auto}");
        if local {
            assert_eq!(auto.to_string(), "flock (local file system)");
        }
        let forced = choose(dir.path(), LockMode::Create);
        assert_eq!(forced.to_string(), "exclusive create (forced by lock-mode)");
        assert!(!choose(dir.path(), LockMode::Flock).create);
        // A directory not created yet is judged by the file system it will be created on.
        assert_eq!(choose(&dir.path().join("x/y"), LockMode::Auto), auto);
    }
}
