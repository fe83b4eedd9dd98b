//! Where the device-flow instructions go. stdout is git's protocol channel, so never there:
//! stderr when it is a terminal; else `/dev/tty` when the process has one (IDEs capture git's
//! stderr); else nobody can answer and no flow is started. `--interactive` forces stderr;
//! git's `credential.interactive=false` forbids prompting unless `--interactive` says otherwise.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};

use crate::config::Interactive;

/// The destination of the instructions.
pub enum Prompt<'a> {
    /// The caller's stderr.
    Stderr(&'a mut dyn Write),
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
            Interactive::Always => Some(Prompt::Stderr(stderr)),
            Interactive::Auto if git_forbids_prompts() => None,
            Interactive::Auto if stderr_is_tty => Some(Prompt::Stderr(stderr)),
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
            Prompt::Stderr(w) => *w,
            Prompt::Tty(f) => f,
        }
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
