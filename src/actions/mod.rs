//! The actions a user or git asks for: git's `get`/`erase` and `login`/`logout`/`status`
//! ([`helper`]), `token` and `import` ([`tokens`], printing through [`output`]), `register` and
//! `setup`, all obtaining tokens through one sign-in pipeline ([`pipeline`]). They are the only
//! code that combines the store, the provider and the person, and they reach the process only
//! through [`Io`].

pub mod helper;
pub mod output;
pub mod pipeline;
pub mod register;
pub mod setup;
pub mod tokens;

use std::io::Write;

use crate::error::{Error, Result};

/// The process's streams, clock and environment, passed in so tests can drive everything.
pub struct Io<'a> {
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
    pub stderr_is_tty: bool,
    pub clock: &'a dyn Fn() -> i64,
    /// The process environment (`std::env::var` in the binary).
    pub getenv: &'a dyn Fn(&str) -> Option<String>,
}

impl Io<'_> {
    /// Writes `text` on stdout (git's answer, or the output asked for); a failure is
    /// [`Error::Output`].
    pub fn print(&mut self, text: &str) -> Result<()> {
        self.stdout
            .write_all(text.as_bytes())
            .map_err(Error::Output)
    }

    /// Prints one `git-credential-iam: MSG` line on stderr.
    pub fn say(&mut self, msg: &str) {
        let _ = writeln!(self.stderr, "git-credential-iam: {msg}");
    }
}
