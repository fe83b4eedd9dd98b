//! The only module that locks files. Each account's cache file has a sibling `.lock` file (never
//! the data file itself, which is replaced by rename). Locks are std's `File::lock`/`try_lock`
//! (flock on Unix, LockFileEx on Windows), released by the kernel when the process dies, so a
//! crash never leaves a stale lock. The holder writes its pid into the lock file so that a
//! waiter can name it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::hardening::{is_symlink_refusal, open_nofollow};

/// An exclusive lock, released on drop.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    path: PathBuf,
}

impl LockGuard {
    /// Takes the lock at `path`. If another process holds it, calls `on_wait` once (to say we are
    /// waiting), then blocks until the holder releases it or `timeout` passes, after which it
    /// fails naming the holder. The blocking `lock()` runs on a helper thread so the wait can be
    /// bounded: waiters wake the moment the lock is free (no polling delay), one at a time.
    pub fn acquire(
        path: &Path,
        timeout: Duration,
        on_wait: impl FnOnce(&str),
    ) -> Result<LockGuard> {
        let mut file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                on_wait(&read_holder(&mut file));
                file = wait_for_lock(file, path, timeout)?;
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("cannot lock", path, e)),
        }
        // Say who holds it; best effort, the lock itself is what matters.
        let _ = file.set_len(0).and_then(|_| {
            file.seek(SeekFrom::Start(0))?;
            write!(file, "pid {}", std::process::id())
        });
        Ok(LockGuard {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Blocks in `File::lock` on a thread, for at most `timeout`. If the wait times out, the thread
/// keeps waiting and releases the lock as soon as it gets it (its receiver is gone).
fn wait_for_lock(file: File, path: &Path, timeout: Duration) -> Result<File> {
    let mut probe = file
        .try_clone()
        .map_err(|e| Error::io("cannot lock", path, e))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let got = file.lock().map(|()| file);
        if let Err(mpsc::SendError(Ok(f))) = tx.send(got) {
            let _ = f.unlock();
        }
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(f)) => Ok(f),
        Ok(Err(e)) => Err(Error::io("cannot lock", path, e)),
        Err(_) => Err(Error::LockTimeout {
            path: path.to_path_buf(),
            holder: read_holder(&mut probe),
            waited_secs: timeout.as_secs(),
        }),
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    open_nofollow(&mut opts).open(path).map_err(|e| {
        if is_symlink_refusal(&e) {
            Error::Cache {
                path: path.to_path_buf(),
                message: "is a symbolic link; refusing to follow it (remove it)".into(),
            }
        } else {
            Error::io("cannot open the lock file", path, e)
        }
    })
}

fn read_holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.take(64).read_to_string(&mut s));
    let s = s.trim();
    if s.starts_with("pid ") && s[4..].chars().all(|c| c.is_ascii_digit()) {
        format!("another git-credential-iam process ({s})")
    } else {
        "another git-credential-iam process".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_times_out_naming_holder() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.lock");
        let _g = LockGuard::acquire(&p, Duration::from_secs(1), |_| panic!("no wait")).unwrap();
        let mut waited = None;
        let e = LockGuard::acquire(&p, Duration::from_millis(200), |h| {
            waited = Some(h.to_string())
        })
        .unwrap_err();
        let pid = format!("pid {}", std::process::id());
        assert!(waited.unwrap().contains(&pid));
        assert!(e.to_string().contains(&pid), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_lock_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "precious").unwrap();
        let p = dir.path().join("c.lock");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        let e = LockGuard::acquire(&p, Duration::from_secs(1), |_| panic!("no wait")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    }

    #[test]
    fn released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.lock");
        drop(LockGuard::acquire(&p, Duration::from_secs(1), |_| {}).unwrap());
        LockGuard::acquire(&p, Duration::from_millis(10), |_| panic!("should be free")).unwrap();
    }
}
