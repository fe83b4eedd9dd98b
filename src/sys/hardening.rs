//! The few operating-system calls that keep secrets from leaking out of the process or being
//! read from where an attacker points, in one place and with their constants from `libc` (never
//! hand-coded numbers, which are right on one architecture only): no core dumps
//! ([`disable_core_dumps`]); opening a file without following a symbolic link planted at its
//! path ([`open_nofollow`], [`is_symlink_refusal`], [`open_read_nofollow`]), shared by the cache
//! and the lock.

use std::fs::{File, OpenOptions};

use crate::error::{Error, Result};

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

/// Makes `opts` refuse to open a symbolic link at the path's last component (`O_NOFOLLOW`), so a
/// link planted where a private file belongs is refused rather than followed; such an open fails
/// with an error for which [`is_symlink_refusal`] is true. A no-op where there is no
/// `O_NOFOLLOW`.
pub fn open_nofollow(opts: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW)
    }
    #[cfg(not(unix))]
    opts
}

/// Whether `e`, from an open through [`open_nofollow`], means that the path is a symbolic link:
/// `ELOOP` (POSIX), or `EMLINK` on FreeBSD and DragonFly.
pub fn is_symlink_refusal(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        let code = e.raw_os_error();
        code == Some(libc::ELOOP)
            || (cfg!(any(target_os = "freebsd", target_os = "dragonfly"))
                && code == Some(libc::EMLINK))
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Opens `path` for reading without following a symbolic link: `Ok(None)` when there is no
/// such file, a one-line error naming the path when it is a link (`what` names the file in
/// other errors, e.g. "the cache file").
pub fn open_read_nofollow(path: &std::path::Path, what: &str) -> Result<Option<File>> {
    match open_nofollow(OpenOptions::new().read(true)).open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if is_symlink_refusal(&e) => Err(Error::Cache {
            path: path.to_path_buf(),
            message: "is a symbolic link; refusing to follow it (remove it)".into(),
        }),
        Err(e) => Err(Error::io(format!("cannot read {what}"), path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[cfg(unix)]
    #[test]
    fn a_symlink_is_refused_and_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "planted").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open_nofollow(OpenOptions::new().read(true))
            .open(&link)
            .unwrap_err();
        assert!(is_symlink_refusal(&e), "{e:?}");
        // A plain file opens, and other errors are not taken for a symlink.
        open_nofollow(OpenOptions::new().read(true))
            .open(&target)
            .unwrap();
        let e = open_nofollow(OpenOptions::new().read(true))
            .open(dir.path().join("missing"))
            .unwrap_err();
        assert!(!is_symlink_refusal(&e), "{e:?}");
    }

    /// What a hand-coded open flag or errno looks like on one line of Rust, if it does: an octal
    /// literal of five or more digits (file modes have three or four, `O_*` flags more), a
    /// number compared with `raw_os_error()` or passed to `custom_flags`, or a number assigned
    /// on a line naming `O_NOFOLLOW` or `ELOOP`.
    fn hand_coded(line: &str) -> bool {
        let digit_after = |needle: &str| {
            line.match_indices(needle).any(|(i, _)| {
                line[i + needle.len()..]
                    .trim_start()
                    .starts_with(|c: char| c.is_ascii_digit())
            })
        };
        let long_octal = line.match_indices("0o").any(|(i, _)| {
            let digits = &line[i + 2..];
            digits.len()
                - digits
                    .trim_start_matches(|c| ('0'..='7').contains(&c))
                    .len()
                >= 5
        });
        long_octal
            || digit_after("raw_os_error() == Some(")
            || digit_after("raw_os_error(), Some(")
            || digit_after("custom_flags(")
            || ((line.contains("O_NOFOLLOW") || line.contains("ELOOP")) && digit_after("= "))
    }

    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name();
            if p.is_dir() && name != "target" && name != "node_modules" {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// No open flag or errno number is hand-coded anywhere in the tree (src, tests, contrib):
    /// they come from `libc`, through this module.
    #[test]
    fn no_platform_number_is_hand_coded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for d in ["src", "tests", "contrib"] {
            rust_files(&root.join(d), &mut files);
        }
        assert!(files.len() > 10, "found the sources: {files:?}");
        let mut found = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            for (n, line) in text.lines().enumerate() {
                if hand_coded(line) {
                    found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(
            found.is_empty(),
            "hand-coded platform numbers (use libc through src/sys/hardening.rs):\n{}",
            found.join("\n")
        );
        // The detector itself, on what was here before.
        let octal = format!("opts.custom_flags({}{});", "0o", 4 * 100_000);
        assert!(hand_coded(&octal));
        assert!(hand_coded(&format!("e.raw_os_error() == Some({})", 40)));
        assert!(!hand_coded("fs::Permissions::from_mode(0o600)"));
        assert!(!hand_coded("e.raw_os_error() == Some(libc::ELOOP)"));
    }
}
