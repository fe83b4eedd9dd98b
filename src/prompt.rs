//! Where the device-flow instructions go. stdout is git's protocol channel, so never there:
//! stderr when it is a terminal; else `/dev/tty` when the process has one (IDEs capture git's
//! stderr); else nobody can answer and no flow is started. `--interactive` forces stderr.

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

    /// Whether the destination is the process's stderr, where errors are printed anyway.
    pub fn is_stderr(&self) -> bool {
        matches!(self, Prompt::Stderr { .. })
    }
}
