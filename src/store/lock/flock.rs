//! The `flock` lock: std's `File::lock`/`try_lock` (flock on Unix, LockFileEx on Windows) on the
//! account's `KEY.lock` file. The kernel releases it when the process dies, so a crash never
//! leaves a stale lock. The holder writes `pid N on HOST` into the file so that a waiter can
//! name it. A blocking `lock()` runs on a helper thread so that the wait can be bounded:
//! waiters wake the moment the lock is free (no polling delay), one at a time.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::holder::{Me, Record};
use crate::error::{Error, Result};
use crate::sys::hardening::{is_symlink_refusal, open_nofollow};

/// A held `flock`, released on drop.
#[derive(Debug)]
pub struct Held {
    file: File,
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Takes the `flock` on `path`, saying once through `say` whom we wait for, for at most
/// `timeout`. With `best_effort` (on a shared file system, where the owner file is the real
/// lock), a file system that cannot lock at all (`ENOLCK`, `EOPNOTSUPP`: NFS without a lock
/// manager) gives `Ok(None)` rather than an error; a timeout is an error either way.
pub fn acquire(
    path: &Path,
    timeout: Duration,
    best_effort: bool,
    say: &mut dyn FnMut(&str),
) -> Result<Option<Held>> {
    let file = open_lock_file(path)?;
    let got = match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => wait_for_lock(file, path, timeout, say),
        Err(TryLockError::Error(e)) => Err(Error::io("cannot lock", path, e)),
    };
    let mut file = match got {
        Ok(f) => f,
        Err(Error::Io { .. }) if best_effort => return Ok(None),
        Err(e) => return Err(e),
    };
    // Say who holds it; best effort, the lock itself is what matters.
    let me = Me::get();
    let _ = file.set_len(0).and_then(|_| {
        file.seek(SeekFrom::Start(0))?;
        write!(file, "pid {} on {}", me.pid, me.host)
    });
    Ok(Some(Held { file }))
}

/// Blocks in `File::lock` on a thread, for at most `timeout`. A wait longer than
/// [`super::QUIET`] is said through `say`, naming the holder: by then the holder has written its
/// record (it writes it just after taking the lock), and a short wait needs no words. If the wait
/// times out, the thread
/// keeps waiting and releases the lock as soon as it gets it (its receiver is gone). The thread
/// starts with termination signals blocked, so that they reach the main thread (which defers
/// them around a refresh; see `signals`).
fn wait_for_lock(
    file: File,
    path: &Path,
    timeout: Duration,
    say: &mut dyn FnMut(&str),
) -> Result<File> {
    let mut probe = file
        .try_clone()
        .map_err(|e| Error::io("cannot lock", path, e))?;
    let (tx, rx) = mpsc::channel();
    crate::sys::signals::spawn_quiet("lock-wait", move || {
        let got = file.lock().map(|()| file);
        if let Err(mpsc::SendError(Ok(f))) = tx.send(got) {
            let _ = f.unlock();
        }
    })
    .map_err(|e| Error::io("cannot wait for the lock", path, e))?;
    let quiet = super::QUIET.min(timeout);
    let got = match rx.recv_timeout(quiet) {
        Err(mpsc::RecvTimeoutError::Timeout) => {
            say(&read_holder(&mut probe).to_string());
            rx.recv_timeout(timeout - quiet)
        }
        other => other,
    };
    match got {
        Ok(Ok(f)) => Ok(f),
        Ok(Err(e)) => Err(Error::io("cannot lock", path, e)),
        Err(_) => Err(Error::LockTimeout {
            path: path.to_path_buf(),
            holder: read_holder(&mut probe).to_string(),
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

fn read_holder(file: &mut File) -> Record {
    let mut s = Vec::new();
    let _ = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.take(300).read_to_end(&mut s));
    Record::parse(&s)
}
