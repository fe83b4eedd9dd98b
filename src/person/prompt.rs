//! Where the device-flow instructions go. stdout is git's protocol channel, so never there:
//! stderr when it is a terminal; else `/dev/tty` when the process has one (IDEs capture git's
//! stderr); else nobody can answer and no flow is started. `--interactive` forces stderr;
//! git's `credential.interactive=false` forbids prompting unless `--interactive` says otherwise.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};

use crate::config::Interactive;

/// The destination of the instructions.
pub enum Prompt<'a> {
    /// The caller's stderr; `terminal` tells whether it is a terminal.
    Stderr {
        out: &'a mut dyn Write,
        terminal: bool,
    },
    /// The controlling terminal.
    Tty(std::fs::File),
}

impl<'a> Prompt<'a> {
    /// Picks the destination, or `None` when nobody can answer. `stderr_is_tty` tells whether the
    /// process's stderr is a terminal.
    pub fn open(
        mode: Interactive,
        stderr: &'a mut dyn Write,
        stderr_is_tty: bool,
    ) -> Option<Prompt<'a>> {
        match mode {
            Interactive::Never => None,
            Interactive::Always => Some(Prompt::Stderr {
                out: stderr,
                terminal: stderr_is_tty,
            }),
            Interactive::Auto if git_forbids_prompts() => None,
            Interactive::Auto if stderr_is_tty => Some(Prompt::Stderr {
                out: stderr,
                terminal: true,
            }),
            Interactive::Auto => OpenOptions::new()
                .write(true)
                .open("/dev/tty")
                .ok()
                .filter(|f| f.is_terminal())
                .map(Prompt::Tty),
        }
    }

    /// The writer.
    pub fn writer(&mut self) -> &mut dyn Write {
        match self {
            Prompt::Stderr { out, .. } => *out,
            Prompt::Tty(f) => f,
        }
    }

    /// Whether the destination is a terminal (so control sequences and drawings make sense).
    pub fn is_terminal(&self) -> bool {
        match self {
            Prompt::Stderr { terminal, .. } => *terminal,
            Prompt::Tty(_) => true,
        }
    }

    /// The terminal's width in columns, when the destination is a terminal that tells.
    pub fn columns(&self) -> Option<usize> {
        if !self.is_terminal() {
            return None;
        }
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            let fd = match self {
                Prompt::Stderr { .. } => libc::STDERR_FILENO,
                Prompt::Tty(f) => f.as_raw_fd(),
            };
            let mut size = libc::winsize {
                ws_row: 0,
                ws_col: 0,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which is valid.
            let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0;
            (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
        }
        #[cfg(not(unix))]
        None
    }

    /// Whether the destination is the process's stderr, where errors are printed anyway.
    pub fn is_stderr(&self) -> bool {
        matches!(self, Prompt::Stderr { .. })
    }
}

/// git 2.47's `credential.interactive=false` (from the repository's or the user's git config):
/// git does not tell helpers, so ask git. Only on the sign-in path, never on a cache hit.
fn git_forbids_prompts() -> bool {
    std::process::Command::new("git")
        .args(["config", "--type=bool", "--get", "credential.interactive"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "false")
}
