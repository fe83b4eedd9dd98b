//! The lock on a file system that many machines share: the exclusive creation (`O_CREAT|O_EXCL`,
//! never following a link) of the owner file `KEY.lock.owner`, which the storage makes atomic
//! across machines where `flock` may not be (NFS since v3, AFS, SMB, FUSE, cluster file
//! systems).
//!
//! - **Record.** The holder writes its host name, pid, start time, boot id and pid namespace,
//!   a nonce, and a heartbeat line (see [`super::holder`]).
//! - **Heartbeat.** While it holds the lock, a thread rewrites the heartbeat counter every
//!   [`HEARTBEAT`] and syncs it, which changes both the content and the mtime.
//! - **Stale rule, with no clock agreement between machines.** A waiter compares what it reads
//!   (content, size, mtime, inode) with what it read before, on its own monotonic clock; it
//!   never compares a remote time with its own. A lock whose holder is on another machine (or
//!   unknown) is stale once it has not changed for `--lock-timeout` (at least [`MIN_STALE`]).
//!   A holder on this machine (same host name, boot and pid namespace) is checked directly:
//!   alive (its pid exists with the recorded start time) → never broken, however old; dead →
//!   broken at once.
//! - **Breaking** is safe against other breakers: the waiter checks the file is still the one
//!   it judged stale, renames it to a unique name, and reads it back. Only if it is byte for
//!   byte the stale one is it deleted; otherwise (a new holder's file, renamed by a breaker that
//!   came late) it is put back with `link`, which never replaces a file. Then it retries the
//!   create. What remains: should a third process create a lock in the instant between that
//!   rename and the put-back, the put-back fails and two holders run; it needs three processes
//!   inside a few system calls of each other after a holder died.
//! - **Release** deletes the file only if it is still ours (our nonce).
//! - **Waiting** gives up after `--lock-timeout` while the holder shows signs of life, naming
//!   it; it always gives a silent holder the full stale period first.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::holder::Record;
use crate::error::{Error, Result};
use crate::sys::hardening::{open_nofollow, open_read_nofollow};

/// How often a holder shows it is alive.
pub const HEARTBEAT: Duration = Duration::from_millis(500);
/// The shortest silence after which a lock from another machine is stale: four heartbeats.
pub const MIN_STALE: Duration = Duration::from_secs(2);
/// The longest pause between two looks at a held lock.
const MAX_POLL: Duration = Duration::from_millis(200);
/// Digits of the heartbeat counter (fixed, so that it is rewritten in place).
const BEAT_DIGITS: usize = 10;

/// A held owner file, deleted on drop (if still ours).
#[derive(Debug)]
pub struct Owned {
    path: PathBuf,
    nonce: String,
    stop: Option<mpsc::Sender<()>>,
    beat: Option<JoinHandle<()>>,
}

impl Drop for Owned {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.beat.take() {
            let _ = t.join();
        }
        // Only our own file: one that a waiter judged stale and replaced is another's lock.
        if let Ok(Some(o)) = observe(&self.path)
            && Record::parse(&o.content).nonce.as_deref() == Some(self.nonce.as_str())
        {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// What a waiter saw of the owner file; two looks that are equal mean no sign of life between.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Look {
    content: Vec<u8>,
    len: u64,
    mtime: Option<SystemTime>,
    ino: u64,
}

/// Takes the owner file `path`, waiting as the module says; `start` is when the caller began
/// to wait (the flock before counts), `timeout` is `--lock-timeout`.
pub fn acquire(
    path: &Path,
    start: Instant,
    timeout: Duration,
    say: &mut dyn FnMut(&str),
) -> Result<Owned> {
    let stale_after = timeout.max(MIN_STALE);
    let mut last: Option<(Look, Instant)> = None;
    let mut first_seen: Option<Instant> = None;
    let mut poll = Duration::from_millis(5);
    loop {
        if let Some(owned) = try_create(path)? {
            return Ok(owned);
        }
        let now = Instant::now();
        let Some(look) = observe(path)? else {
            // Released between our create and our look: try again at once (bounded).
            if now.duration_since(start) >= timeout + stale_after {
                return Err(timed_out(path, &Record::default(), start));
            }
            continue;
        };
        let holder = Record::parse(&look.content);
        let seen = *first_seen.get_or_insert(now);
        // The holder writes its record just after its create: say whom we wait for once it has,
        // or once the wait is no longer short.
        if holder.pid.is_some() || now.duration_since(start) >= super::QUIET {
            say(&holder.to_string());
        }
        let since = match &last {
            Some((l, since)) if *l == look => *since,
            _ => {
                last = Some((look.clone(), now));
                now
            }
        };
        if holder.is_local() {
            if !holder.is_alive_here() {
                if !break_stale(path, &look)? {
                    std::thread::sleep(poll);
                }
                continue;
            }
            if now.duration_since(start) >= timeout {
                return Err(timed_out(path, &holder, start));
            }
        } else {
            if now.duration_since(since) >= stale_after {
                if !break_stale(path, &look)? {
                    std::thread::sleep(poll);
                }
                continue;
            }
            if now.duration_since(start) >= timeout && now.duration_since(seen) >= stale_after {
                return Err(timed_out(path, &holder, start));
            }
        }
        std::thread::sleep(poll);
        poll = (poll * 2).min(MAX_POLL);
    }
}

fn timed_out(path: &Path, holder: &Record, start: Instant) -> Error {
    Error::LockTimeout {
        path: path.to_path_buf(),
        holder: holder.to_string(),
        waited_secs: start.elapsed().as_secs(),
    }
}

/// A nonce unique to this lock taking: pid, the time and a counter.
fn nonce() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}

/// One exclusive create of the owner file: `Ok(None)` when it exists.
fn try_create(path: &Path) -> Result<Option<Owned>> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = match open_nofollow(&mut opts).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(Error::io("cannot create the lock file", path, e)),
    };
    let nonce = nonce();
    let text = Record::mine(&nonce).to_text();
    let beat_at = (text.len() + "beat ".len()) as u64;
    let written = file
        .write_all(format!("{text}beat {:0BEAT_DIGITS$}\n", 0).as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(Error::io("cannot write the lock file", path, e));
    }
    let (stop, stopped) = mpsc::channel::<()>();
    let beat = crate::sys::signals::spawn_quiet("lock-heartbeat", move || {
        heartbeat(file, beat_at, stopped)
    })
    .ok();
    Ok(Some(Owned {
        path: path.to_path_buf(),
        nonce,
        stop: Some(stop),
        beat,
    }))
}

/// Rewrites the counter at `at` every [`HEARTBEAT`] until `stopped` closes.
fn heartbeat(mut file: File, at: u64, stopped: mpsc::Receiver<()>) {
    let mut n: u64 = 0;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT) {
        n = (n + 1) % 10u64.pow(BEAT_DIGITS as u32);
        let _ = file
            .seek(SeekFrom::Start(at))
            .and_then(|_| file.write_all(format!("{n:0BEAT_DIGITS$}").as_bytes()))
            .and_then(|()| file.sync_all());
    }
}

/// Reads the owner file: `Ok(None)` when there is none. Opening it each time also makes NFS
/// revalidate its attributes (close-to-open consistency), so the look is fresh.
fn observe(path: &Path) -> Result<Option<Look>> {
    let Some(mut file) = open_read_nofollow(path, "the lock file")? else {
        return Ok(None);
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io("cannot stat", path, e))?;
    let mut content = Vec::new();
    Read::by_ref(&mut file)
        .take(4096)
        .read_to_end(&mut content)
        .map_err(|e| Error::io("cannot read the lock file", path, e))?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let ino = 0;
    Ok(Some(Look {
        content,
        len: meta.len(),
        mtime: meta.modified().ok(),
        ino,
    }))
}

/// Breaks the lock at `path` if it is still exactly `stale`; see the module. `Ok(true)` when
/// this call removed it (the caller retries the create either way).
fn break_stale(path: &Path, stale: &Look) -> Result<bool> {
    if observe(path)?.as_ref() != Some(stale) {
        return Ok(false); // released, or alive after all
    }
    remove_if_content(path, &stale.content)
}

/// Renames `path` aside and deletes it if it holds `content`; otherwise puts it back.
fn remove_if_content(path: &Path, content: &[u8]) -> Result<bool> {
    let mut aside_name = std::ffi::OsString::from(".");
    aside_name.push(path.file_name().unwrap_or_default());
    aside_name.push(format!(".broken-{}", nonce()));
    let aside = path.with_file_name(aside_name);
    match fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("cannot break the stale lock", path, e)),
    }
    let moved = observe(&aside)?;
    if moved.as_ref().map(|m| m.content.as_slice()) == Some(content) {
        let _ = fs::remove_file(&aside);
        return Ok(true);
    }
    // A newer holder's file: put it back, never over a file that appeared meanwhile.
    if fs::hard_link(&aside, path).is_err() && !path.exists() {
        let _ = fs::rename(&aside, path);
    }
    let _ = fs::remove_file(&aside);
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plant(path: &Path, record: &Record) {
        fs::write(path, format!("{}beat 0000000000\n", record.to_text())).unwrap();
    }

    /// A holder on another machine that stopped beating: broken after the stale period.
    #[test]
    fn a_silent_remote_holder_is_broken_after_the_stale_period() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.lock.owner");
        let remote = Record {
            host: Some("node-b".into()),
            pid: Some(4242),
            boot: Some("other-boot".into()),
            nonce: Some("x".into()),
            ..Record::default()
        };
        plant(&p, &remote);
        let t = Instant::now();
        let mut said = String::new();
        let owned = acquire(&p, t, Duration::from_secs(2), &mut |h| said = h.into()).unwrap();
        let waited = t.elapsed();
        assert!(
            waited >= MIN_STALE && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        assert_eq!(
            said,
            "another git-credential-iam process (pid 4242) on node-b"
        );
        let mine = Record::parse(&fs::read(&p).unwrap());
        assert_eq!(mine.nonce.as_deref(), Some(owned.nonce.as_str()));
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "nothing left aside"
        );
        drop(owned);
        assert!(!p.exists());
    }

    /// A live holder (this very process, in the record of another lock) is never broken.
    #[test]
    fn a_live_local_holder_is_never_broken() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.lock.owner");
        plant(&p, &Record::mine("someone-else"));
        let before = fs::read(&p).unwrap();
        let t = Instant::now() - Duration::from_secs(10);
        let e = acquire(&p, t, Duration::from_secs(1), &mut |_| {}).unwrap_err();
        assert!(matches!(e, Error::LockTimeout { .. }), "{e}");
        assert_eq!(fs::read(&p).unwrap(), before);
    }

    /// A dead local holder is broken at once, with no stale period.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_dead_local_holder_is_broken_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.lock.owner");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let mut dead = Record::mine("dead");
        dead.pid = Some(child.id());
        child.wait().unwrap();
        plant(&p, &dead);
        let t = Instant::now();
        let owned = acquire(&p, t, Duration::from_secs(60), &mut |_| {}).unwrap();
        assert!(t.elapsed() < MIN_STALE, "{:?}", t.elapsed());
        drop(owned);
    }

    /// The holder's heartbeat keeps a waiter from ever finding it stale, and the waiter gives up
    /// naming it; the release removes only the holder's own file.
    #[test]
    fn a_beating_holder_is_not_stale_and_release_keeps_a_stranger() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.lock.owner");
        let held = try_create(&p).unwrap().unwrap();
        let before = observe(&p).unwrap().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while observe(&p).unwrap().unwrap() == before {
            assert!(Instant::now() < deadline, "no heartbeat");
            std::thread::sleep(Duration::from_millis(50));
        }
        // A waiter that counts this holder as remote still sees it alive.
        let look = observe(&p).unwrap().unwrap();
        assert!(
            !break_stale(&p, &before).unwrap(),
            "changed since: not stale"
        );
        assert_ne!(look, before);
        // Someone replaced the file (a breaker): our release leaves theirs alone.
        fs::remove_file(&p).unwrap();
        plant(&p, &Record::mine("stranger"));
        drop(held);
        assert_eq!(
            Record::parse(&fs::read(&p).unwrap()).nonce.as_deref(),
            Some("stranger")
        );
    }

    /// A breaker that renamed a newer holder's file by mistake puts it back.
    #[test]
    fn a_late_breaker_puts_a_new_lock_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.lock.owner");
        plant(&p, &Record::mine("old"));
        let stale = observe(&p).unwrap().unwrap();
        // Between the look and the rename, the old file went and a new holder came.
        fs::remove_file(&p).unwrap();
        plant(&p, &Record::mine("new"));
        assert!(!break_stale(&p, &stale).unwrap(), "the look differs");
        // Past the look (a breaker that came late): renamed, found newer, put back.
        assert!(!remove_if_content(&p, &stale.content).unwrap());
        let nonce = |p: &Path| Record::parse(&fs::read(p).unwrap()).nonce;
        assert_eq!(nonce(&p).as_deref(), Some("new"));
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "nothing aside"
        );
        // The stale one itself goes.
        let current = observe(&p).unwrap().unwrap();
        assert!(break_stale(&p, &current).unwrap());
        assert!(!p.exists());
    }
}
