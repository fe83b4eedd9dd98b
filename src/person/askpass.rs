//! Asking the person (or the configured source) for a username and password, for the deprecated
//! password flow. Never stdin (git's protocol channel) and never argv: a file
//! (`--password-file`), an environment variable (`--password-env NAME`, removed from the
//! environment once read so no child process sees it), `GIT_ASKPASS`/`SSH_ASKPASS`, or the
//! terminal (`/dev/tty`) with echo off.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::config::{Interactive, Settings};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// The password for the password grant, from the first source that is configured.
pub fn password(
    s: &Settings,
    who: &str,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret<String>> {
    if let Some(path) = &s.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io("cannot read the password file", path, e))?;
        return non_empty(
            text.trim_end_matches(['\n', '\r']).to_string(),
            "the password file",
        );
    }
    if let Some(name) = &s.password_env {
        let value = getenv(name).ok_or_else(|| {
            Error::Usage(format!(
                "--password-env {name}: the environment variable {name} is not set"
            ))
        })?;
        // SAFETY: no other thread of this process reads the environment: the only thread the
        // helper starts (the bounded lock wait) has handed over its lock before we get here.
        unsafe { std::env::remove_var(name) };
        return non_empty(value, &format!("the environment variable {name}"));
    }
    let prompt = format!("Password for {who}: ");
    ask(s, &prompt, false, getenv).map(Secret::new)
}

/// The username for the password grant: `--username`, git's `username`, or a prompt.
pub fn username(
    s: &Settings,
    from_git: Option<&str>,
    host: &str,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<String> {
    if let Some(u) = s.username.as_deref().or(from_git).filter(|u| !u.is_empty()) {
        return Ok(u.to_string());
    }
    ask(s, &format!("Username for {host}: "), true, getenv)
}

fn non_empty(v: String, what: &str) -> Result<Secret<String>> {
    if v.is_empty() {
        return Err(Error::Usage(format!("{what} is empty")));
    }
    Ok(Secret::new(v))
}

/// Asks through GIT_ASKPASS / SSH_ASKPASS, else on the terminal; never when non-interactive.
fn ask(
    s: &Settings,
    prompt: &str,
    echo: bool,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<String> {
    if s.interactive == Interactive::Never {
        return Err(Error::LoginRequired(
            "the password flow needs a password and prompting is not allowed: pass \
             --password-file FILE or --password-env NAME (and --username), or run \
             `git-credential-iam login` at a terminal"
                .into(),
        ));
    }
    for var in ["GIT_ASKPASS", "SSH_ASKPASS"] {
        if let Some(program) = getenv(var).filter(|p| !p.is_empty()) {
            return askpass(&program, prompt, s);
        }
    }
    read_tty(prompt, echo)
}

fn askpass(program: &str, prompt: &str, s: &Settings) -> Result<String> {
    let mut cmd = Command::new(program);
    cmd.arg(prompt)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(name) = &s.password_env {
        cmd.env_remove(name);
    }
    let out = cmd
        .output()
        .map_err(|e| Error::io("cannot run the askpass program", program, e))?;
    if !out.status.success() {
        return Err(Error::LoginRequired(format!(
            "the askpass program {program} was cancelled"
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        return Err(Error::LoginRequired(format!(
            "the askpass program {program} gave no answer"
        )));
    }
    Ok(line)
}

/// Reads one line from the terminal, with echo off unless `echo`. Echo goes off before the prompt
/// is printed (a password typed ahead is not shown), and comes back on every way out, Ctrl-C
/// included (see [`EchoOff`]).
fn read_tty(prompt: &str, echo: bool) -> Result<String> {
    let mut tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| {
            Error::LoginRequired(
                "no terminal to ask for the password on: pass --password-file FILE or \
             --password-env NAME"
                    .into(),
            )
        })?;
    let guard = (!echo).then(|| EchoOff::new(&tty));
    let _ = tty.write_all(prompt.as_bytes()).and_then(|_| tty.flush());
    let mut line = String::new();
    let read = BufReader::new(&tty).read_line(&mut line);
    drop(guard);
    if !echo {
        let _ = tty.write_all(b"\n");
    }
    read.map_err(|e| Error::io("cannot read from", "/dev/tty", e))?;
    let line = line.trim_end_matches(['\n', '\r']).to_string();
    if line.is_empty() {
        return Err(Error::LoginRequired("no answer at the prompt".into()));
    }
    Ok(line)
}

/// Turns terminal echo off until dropped. A signal that ends the process meanwhile (Ctrl-C,
/// SIGTERM, SIGHUP, SIGQUIT) would skip `Drop` and leave the person's terminal without echo, so
/// while echo is off those signals run a handler that restores the terminal and then re-raises
/// the signal with its default action: the process still dies of it (git sees exit 130 for
/// Ctrl-C), as OpenSSH's `readpassphrase` does.
struct EchoOff {
    #[cfg(unix)]
    saved: Option<unix::Saved>,
}

impl EchoOff {
    fn new(tty: &File) -> EchoOff {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            EchoOff {
                saved: unix::echo_off(tty.as_raw_fd()),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tty;
            EchoOff {}
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = self.saved.take() {
            unix::restore(saved);
        }
    }
}

#[cfg(unix)]
mod unix {
    use std::sync::atomic::{AtomicI32, Ordering};

    const SIGNALS: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

    /// The descriptor whose settings the handler restores; -1 when echo is on.
    static FD: AtomicI32 = AtomicI32::new(-1);
    /// The settings to restore, written before `FD` is published and read only after.
    static mut SAVED: std::mem::MaybeUninit<libc::termios> = std::mem::MaybeUninit::uninit();

    /// What [`restore`] puts back: the dispositions the signals had before.
    pub struct Saved {
        fd: i32,
        actions: [libc::sigaction; 4],
    }

    extern "C" fn on_signal(sig: libc::c_int) {
        let fd = FD.swap(-1, Ordering::SeqCst);
        // SAFETY: only async-signal-safe calls (tcsetattr, signal, raise); SAVED was fully
        // written before FD was set to a descriptor.
        unsafe {
            if fd >= 0 {
                libc::tcsetattr(fd, libc::TCSANOW, (&raw const SAVED).cast());
            }
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }

    /// Turns echo off on `fd` and installs the handler; `None` when `fd` is not a terminal.
    pub fn echo_off(fd: i32) -> Option<Saved> {
        // SAFETY: termios and sigaction are plain data filled in by the calls on a valid
        // descriptor; SAVED is written before FD publishes it, on this thread only.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return None;
            }
            (&raw mut SAVED).cast::<libc::termios>().write(t);
            FD.store(fd, Ordering::SeqCst);
            let mut actions: [libc::sigaction; 4] = std::mem::zeroed();
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            for (sig, old) in SIGNALS.iter().zip(actions.iter_mut()) {
                libc::sigaction(*sig, &action, old);
            }
            let mut quiet = t;
            quiet.c_lflag &= !(libc::ECHO | libc::ECHONL);
            libc::tcsetattr(fd, libc::TCSANOW, &quiet);
            Some(Saved { fd, actions })
        }
    }

    /// Puts the terminal settings and the signal dispositions back.
    pub fn restore(saved: Saved) {
        // SAFETY: as in `echo_off`; the handler may have run already (FD is then -1).
        unsafe {
            if FD.swap(-1, Ordering::SeqCst) >= 0 {
                libc::tcsetattr(saved.fd, libc::TCSANOW, (&raw const SAVED).cast());
            }
            for (sig, old) in SIGNALS.iter().zip(saved.actions.iter()) {
                libc::sigaction(*sig, old, std::ptr::null_mut());
            }
        }
    }
}
