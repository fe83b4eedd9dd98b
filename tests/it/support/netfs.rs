//! Two machines on one shared directory: `bindfs` mounts and `unshare -u` host names.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::process::run_bounded;
use super::skip::needs_root;

/// Whether the two-machine tests can run: root (for `unshare -u` and mounting), `bindfs`,
/// `fusermount` and `unshare` on PATH, and `/dev/fuse`. When not, it prints `TEST: skipped:
/// needs …` straight to stderr (past the harness's capture) so that the skip shows; the test
/// then returns.
#[cfg(unix)]
pub fn needs_bindfs(test: &str) -> bool {
    if !needs_root(test) {
        return false;
    }
    let on_path = |p: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
    };
    let missing: Vec<&str> = ["bindfs", "fusermount", "unshare", "hostname"]
        .into_iter()
        .filter(|p| !on_path(p))
        .chain((!Path::new("/dev/fuse").exists()).then_some("/dev/fuse"))
        .collect();
    if missing.is_empty() {
        return true;
    }
    super::skip(
        test,
        &format!(
            "needs {} (Debian: apt-get install bindfs)",
            missing.join(", ")
        ),
    );
    false
}

/// Whether `dir` is a mount point, from `/proc/self/mountinfo` (field 5; spaces as `\040`).
pub fn is_mount_point(dir: &Path) -> bool {
    let want = dir.to_string_lossy().replace(' ', "\\040");
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// One directory mounted twice with `bindfs` (a FUSE file system): as on NFS with
/// `local_lock`, a `flock` through one mount does not exclude one through the other, while an
/// exclusive create is atomic across both. Both are unmounted on drop (bounded).
pub struct TwoMounts {
    /// The directory itself (on the local file system).
    pub under: PathBuf,
    /// Its first and second mount.
    pub a: PathBuf,
    pub b: PathBuf,
    _root: tempfile::TempDir,
}

impl TwoMounts {
    /// Mounts `<tmp>/under` on `<tmp>/a` and `<tmp>/b`; panics when a mount does not appear
    /// within 10 s.
    pub fn new() -> TwoMounts {
        let root = tempfile::tempdir().expect("temp dir");
        let [under, a, b] = ["under", "a", "b"].map(|n| root.path().join(n));
        for d in [&under, &a, &b] {
            fs::create_dir(d).expect("create mount dirs");
        }
        let mounts = TwoMounts {
            under: under.clone(),
            a: a.clone(),
            b: b.clone(),
            _root: root,
        };
        for m in [&a, &b] {
            assert!(
                run_bounded(
                    Command::new("bindfs").arg(&under).arg(m),
                    Duration::from_secs(10)
                ),
                "bindfs {} {} failed",
                under.display(),
                m.display()
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while !is_mount_point(m) {
                assert!(
                    Instant::now() < deadline,
                    "{} never got mounted",
                    m.display()
                );
                thread::sleep(Duration::from_millis(20));
            }
        }
        mounts
    }
}

impl Drop for TwoMounts {
    fn drop(&mut self) {
        for m in [&self.a, &self.b] {
            if is_mount_point(m)
                && !run_bounded(
                    Command::new("fusermount").arg("-u").arg(m),
                    Duration::from_secs(10),
                )
            {
                // Busy (a child still in it): detach it now, the kernel finishes later.
                let _ = run_bounded(
                    Command::new("umount").arg("-l").arg(m),
                    Duration::from_secs(10),
                );
            }
        }
    }
}

/// `cmd` run as if on the machine `host`: in a new UTS namespace (`unshare -u`, root only)
/// whose host name is `host`, with `cmd`'s program, arguments and environment (which must be
/// cleared, as [`helper_cmd`]'s is).
pub fn on_host(cmd: &Command, host: &str) -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "-u",
        "sh",
        "-c",
        "hostname \"$1\" && shift && exec \"$@\"",
        "sh",
    ])
    .arg(host)
    .arg(cmd.get_program())
    .args(cmd.get_args())
    .env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    c
}
