//! A pseudo-terminal (util-linux `script`) and a child's raw output.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::process::{clean_env, find_user_code, run_with_input};

/// util-linux `script` running the shell command `line` on a pseudo-terminal, with the same
/// clean environment as [`helper_cmd`]: `line` sees a terminal on stdin, stdout and stderr and
/// as `/dev/tty`; what it shows comes out on `script`'s stdout.
pub fn terminal_cmd(home: &Path, line: &str) -> Command {
    let mut cmd = Command::new("script");
    clean_env(&mut cmd, home);
    cmd.env("SHELL", "/bin/sh")
        .args(["-qec", line, "/dev/null"]);
    cmd
}

/// How long a [`Stream`] waits for what a test expects.
const STREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// A child's output read raw (every byte, `\r` included) on a background thread.
pub struct Stream {
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
}

impl Stream {
    pub fn spawn(mut r: impl Read + Send + 'static) -> Stream {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = r.read(&mut chunk) {
                if tx.send(chunk[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Stream {
            rx,
            buf: Vec::new(),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    /// Reads until `pred` holds for the text so far; panics at EOF or after `T`.
    pub fn wait_until(&mut self, what: &str, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + STREAM_TIMEOUT;
        while !pred(&self.text()) {
            match self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(chunk) => self.buf.extend(chunk),
                Err(_) => panic!(
                    "no {what} within {STREAM_TIMEOUT:?} (or EOF); so far:\n{}",
                    self.text()
                ),
            }
        }
    }

    /// The user code of the `  Code:  XXXX-XXXX` line, once that line is complete.
    pub fn code(&mut self) -> String {
        self.wait_until("code line", |t| {
            t.lines().any(|l| l.contains("  Code:  ")) && t.contains("Waiting for approval")
        });
        let text = self.text();
        let line = text.lines().find(|l| l.contains("  Code:  ")).unwrap();
        find_user_code(line).unwrap_or_else(|| panic!("no user code in {line:?}"))
    }

    /// Everything until EOF.
    pub fn read_to_end(&mut self) -> String {
        let deadline = Instant::now() + STREAM_TIMEOUT;
        loop {
            match self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(chunk) => self.buf.extend(chunk),
                Err(RecvTimeoutError::Disconnected) => return self.text(),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no EOF within {STREAM_TIMEOUT:?}; so far:\n{}", self.text())
                }
            }
        }
    }
}

/// A shell command line running on a pseudo-terminal ([`terminal_cmd`]): its keyboard (the
/// pty's input, held open until [`Terminal::finish`]: EOF would end the session) and its screen
/// (everything the line shows, `\r` and escape sequences included).
pub struct Terminal {
    child: Child,
    keyboard: Option<ChildStdin>,
    screen: Stream,
}

impl Terminal {
    /// Starts `line` on a terminal in `home`'s clean environment.
    pub fn start(home: &Path, line: &str) -> Terminal {
        let mut child = terminal_cmd(home, line)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("util-linux `script` is needed for the terminal tests");
        let keyboard = child.stdin.take();
        let screen = Stream::spawn(child.stdout.take().unwrap());
        Terminal {
            child,
            keyboard,
            screen,
        }
    }

    /// Runs `line` on a terminal to its end, with nothing typed; returns what it showed.
    /// Panics after `timeout`.
    pub fn run(home: &Path, line: &str, timeout: Duration) -> String {
        let out = run_with_input(terminal_cmd(home, line), "", timeout);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `keys` (`\r` is Enter, `\x03` Ctrl-C).
    pub fn type_keys(&mut self, keys: &str) {
        self.keyboard
            .as_mut()
            .expect("the keyboard")
            .write_all(keys.as_bytes())
            .expect("type on the terminal");
    }

    /// Waits until the screen shows what `pred` wants; panics at EOF or after 30 s.
    pub fn wait_until(&mut self, what: &str, pred: impl Fn(&str) -> bool) {
        self.screen.wait_until(what, pred);
    }

    /// The user code of the sign-in prompt on the screen.
    pub fn code(&mut self) -> String {
        self.screen.code()
    }

    /// Everything shown until the session ends, then its exit status.
    pub fn finish(mut self) -> (ExitStatus, String) {
        let shown = self.screen.read_to_end();
        drop(self.keyboard.take());
        let status = self.child.wait().expect("wait for script");
        (status, shown)
    }
}
