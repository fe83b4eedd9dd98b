//! The binary: hands argv, the standard streams, the clock and the environment to the library.

use std::io::IsTerminal;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before anything is read: a core dump would hold the tokens and the client secret.
    git_credential_iam::disable_core_dumps();
    let args = std::env::args_os().skip(1).collect();
    let stdin = std::io::stdin();
    let mut stdin = stdin.lock();
    let mut stdout = std::io::stdout().lock();
    let stderr = std::io::stderr();
    let stderr_is_tty = stderr.is_terminal();
    let mut stderr = stderr.lock();
    let clock = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    // The one place the process environment is read. HOME, when unset, is the system's record
    // of the user (the password database; the profile folder on Windows).
    let getenv = |k: &str| {
        let v = std::env::var(k).ok();
        if k == "HOME" && v.as_deref().is_none_or(str::is_empty) {
            return dirs::home_dir().and_then(|h| h.into_os_string().into_string().ok());
        }
        v
    };
    let mut io = git_credential_iam::Io {
        stdout: &mut stdout,
        stderr: &mut stderr,
        stderr_is_tty,
        clock: &clock,
        getenv: &getenv,
    };
    ExitCode::from(git_credential_iam::run(args, &mut stdin, &mut io))
}
