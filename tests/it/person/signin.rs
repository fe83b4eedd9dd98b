//! The device sign-in as the person sees it, through the real binary and the test provider: the
//! prompt on a pipe is plain text (no `\r`, no escape sequences, no QR code unless `--qr`); the
//! browser is opened, with the link that carries the code, exactly in the environments where that
//! can work (a fake `$BROWSER` records what it is given); on a terminal (under `script`) the QR
//! code and the live status line appear. stdout carries git's protocol lines and nothing else.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use crate::support::iam::qr;
use crate::support::{Idp, PUBLIC_CLIENT, REQUEST, Stream, Terminal, find_user_code};

const T: Duration = Duration::from_secs(30);

/// A helper run: `get` for a fresh home, the request on stdin, stdout and stderr piped.
struct Run {
    child: Child,
    stdout: Stream,
    stderr: Stream,
    _home: tempfile::TempDir,
}

impl Run {
    fn start(idp: &Idp, args: &[&str], env: &[(&str, &str)]) -> Run {
        let home = tempfile::tempdir().unwrap();
        let mut cmd = support::helper_cmd(home.path());
        cmd.args(["--issuer", idp.issuer(), "--client-id", PUBLIC_CLIENT])
            .args(args)
            .arg("get")
            .envs(env.iter().copied());
        let mut child = support::spawn_with_input(&mut cmd, REQUEST);
        let stdout = Stream::spawn(child.stdout.take().unwrap());
        let stderr = Stream::spawn(child.stderr.take().unwrap());
        Run {
            child,
            stdout,
            stderr,
            _home: home,
        }
    }

    /// Waits for the end; returns (stdout, stderr), asserting success and a protocol-only stdout.
    fn finish(mut self) -> (String, String) {
        let err = self.stderr.read_to_end();
        let out = self.stdout.read_to_end();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "helper failed: {status}\n{err}");
        assert_protocol_only(&out);
        (out, err)
    }
}

/// stdout holds git's answer and nothing else.
fn assert_protocol_only(out: &str) {
    assert!(out.ends_with('\n'), "{out:?}");
    let keys: Vec<&str> = out
        .lines()
        .map(|l| l.split_once('=').map_or(l, |(k, _)| k))
        .collect();
    assert_eq!(
        keys,
        ["username", "password", "password_expiry_utc"],
        "stdout: {out:?}"
    );
}

fn assert_plain(err: &str) {
    assert!(
        !err.contains('\x1b'),
        "an escape sequence on a pipe: {err:?}"
    );
    assert!(!err.contains('\r'), "a carriage return on a pipe: {err:?}");
    assert!(
        !err.chars().any(|c| c.is_control() && c != '\n'),
        "a control character on a pipe: {err:?}"
    );
}

#[test]
fn prompt_on_a_pipe_is_plain_text_without_qr_code_or_browser() {
    let idp = Idp::shared();
    // A desktop would open a browser, but a wide COLUMNS must not bring a QR code to a pipe.
    let mut run = Run::start(idp, &["--interactive"], &[("COLUMNS", "300")]);
    let code = run.stderr.code();
    idp.approve(&code);
    let (out, err) = run.finish();
    assert_plain(&err);
    for c in ['█', '▀', '▄'] {
        assert!(!err.contains(c), "no QR code on a pipe: {err}");
    }
    assert!(!err.contains("browser"), "{err}");
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "git-credential-iam: signed in to 127.0.0.1:{} as alice, token valid until ",
            idp.port()
        )),
        "{err}"
    );
    assert!(
        !err.contains(support::answered_password(&out)),
        "the token never reaches stderr"
    );
}

#[test]
fn qr_forced_on_a_pipe_draws_the_link() {
    let idp = Idp::shared();
    let mut run = Run::start(idp, &["--interactive", "--qr"], &[]);
    let code = run.stderr.code();
    idp.approve(&code);
    let (_, err) = run.finish();
    assert_plain(&err);
    let link = err
        .lines()
        .find_map(|l| l.strip_prefix("  Or open this link, which fills in the code: "))
        .unwrap_or_else(|| panic!("no complete link: {err}"));
    assert!(link.contains(&code), "{link}");
    let code_qr = qr::encode(link).unwrap();
    let drawing = qr::draw(&code_qr, qr::Ink::Light);
    assert!(
        err.contains(&format!("  Or scan this code with a phone:\n{drawing}")),
        "{err}"
    );
}

/// A fake browser that writes the link it is given to `record`; `BROWSER` naming it.
fn fake_browser(dir: &Path, record: &Path) -> String {
    let script = dir.join("fake-browser");
    std::fs::write(&script, "#!/bin/sh\nprintf '%s\\n' \"$2\" > \"$1\"\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!("{} {}", script.display(), record.display())
}

/// A named pipe whose first writer's text arrives on the returned channel: the test learns the
/// moment the fake browser runs, without polling for a file.
fn fifo(path: &Path) -> Receiver<String> {
    let ok = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(ok.success(), "mkfifo {}", path.display());
    let (tx, rx) = mpsc::channel();
    let p: PathBuf = path.to_path_buf();
    std::thread::spawn(move || {
        if let Ok(text) = std::fs::read_to_string(&p) {
            let _ = tx.send(text);
        }
    });
    rx
}

/// (name, extra args, environment, whether the browser opens)
type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, bool);

#[cfg(unix)]
#[test]
fn browser_is_opened_with_the_code_exactly_where_it_can_work() {
    let idp = Idp::shared();
    let dir = tempfile::tempdir().unwrap();
    let display = ("DISPLAY", ":0");
    let cases: Vec<Case> = vec![
        ("DISPLAY", vec![], vec![display], true),
        (
            "WAYLAND_DISPLAY",
            vec![],
            vec![("WAYLAND_DISPLAY", "wayland-0")],
            true,
        ),
        ("no display", vec![], vec![], false),
        (
            "SSH_CONNECTION",
            vec![],
            vec![display, ("SSH_CONNECTION", "10.0.0.1 50000 10.0.0.2 22")],
            false,
        ),
        (
            "SSH_TTY",
            vec![],
            vec![display, ("SSH_TTY", "/dev/pts/3")],
            false,
        ),
        ("--browser", vec!["--browser"], vec![], true),
        ("--no-browser", vec!["--no-browser"], vec![display], false),
        (
            "GIT_CREDENTIAL_IAM_NO_BROWSER",
            vec![],
            vec![display, ("GIT_CREDENTIAL_IAM_NO_BROWSER", "true")],
            false,
        ),
    ];
    std::thread::scope(|s| {
        for (i, (name, args, env, opens)) in cases.into_iter().enumerate() {
            let (idp, dir) = (&idp, dir.path());
            s.spawn(move || {
                let record = dir.join(format!("record-{i}"));
                let recorded = opens.then(|| fifo(&record));
                let browser = fake_browser(dir, &record);
                let mut env = env.clone();
                env.push(("BROWSER", &browser));
                let mut run = Run::start(idp, &[&["--interactive"], &args[..]].concat(), &env);
                let code = run.stderr.code();
                if let Some(rx) = recorded {
                    let url = rx
                        .recv_timeout(T)
                        .unwrap_or_else(|_| panic!("{name}: the browser was not opened"));
                    let url = url.trim_end();
                    assert!(
                        url.starts_with(&idp.verification_uri()) && url.contains(&code),
                        "{name}: the browser got {url:?}, the code is {code}"
                    );
                    // The person approves the code the browser showed.
                    idp.approve(find_user_code(url).as_deref().unwrap_or(&code));
                } else {
                    idp.approve(&code);
                }
                let (_, err) = run.finish();
                assert_plain(&err);
                assert_eq!(
                    err.contains("  Opened the link in your browser ("),
                    opens,
                    "{name}: {err}"
                );
                if !opens {
                    assert!(!record.exists(), "{name}: the browser ran");
                    assert!(!err.contains("browser"), "{name}: {err}");
                }
            });
        }
    });
}

#[cfg(unix)]
#[test]
fn a_browser_that_cannot_start_is_one_quiet_line() {
    let idp = Idp::shared();
    let mut run = Run::start(
        idp,
        &["--interactive"],
        &[("DISPLAY", ":0"), ("BROWSER", "/nonexistent/browser")],
    );
    let code = run.stderr.code();
    idp.approve(&code);
    let (_, err) = run.finish();
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("browser")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("  Could not open a browser (/nonexistent/browser: "),
        "{err}"
    );
}

/// On a terminal (a pty from util-linux `script`): the QR code, the status line redrawn in
/// place, and the final line replacing it. stdin and stdout stay files, as git's pipes would be.
#[cfg(target_os = "linux")]
#[test]
fn on_a_terminal_the_qr_code_and_the_live_status_line_appear() {
    let idp = Idp::shared();
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (req, out) = (dir.path().join("request"), dir.path().join("stdout"));
    std::fs::write(&req, REQUEST).unwrap();
    let line = format!(
        "'{}' --issuer '{}' --client-id {PUBLIC_CLIENT} get < '{}' > '{}'",
        support::helper_path().display(),
        idp.issuer(),
        req.display(),
        out.display()
    );
    let mut tty = Terminal::start(home.path(), &line);
    let code = tty.code();
    // The status line is drawn as soon as polling starts.
    tty.wait_until("status line", |t| {
        t.split("\r\x1b[2K").skip(1).any(|frame| {
            let (mmss, said) = frame.split_once(" left · ").unwrap_or(("", ""));
            mmss.len() == 7 && mmss.starts_with("  ") && said.starts_with("waiting for approval")
        })
    });
    idp.approve(&code);
    let (status, text) = tty.finish();
    assert!(status.success(), "{status}\n{text}");
    assert_protocol_only(&std::fs::read_to_string(&out).unwrap());

    assert!(text.contains("  Or scan this code with a phone:"), "{text}");
    let link = text
        .lines()
        .find_map(|l| l.strip_prefix("  Or open this link, which fills in the code: "))
        .unwrap()
        .trim_end_matches('\r');
    let drawing = qr::draw(&qr::encode(link).unwrap(), qr::Ink::Light);
    // The pty turns each "\n" into "\r\n".
    assert!(text.contains(&drawing.replace('\n', "\r\n")), "{text}");
    let signed_in = format!(
        "\r\x1b[2Kgit-credential-iam: signed in to 127.0.0.1:{} as alice, token valid until ",
        idp.port()
    );
    assert!(text.contains(&signed_in), "{text:?}");
    assert!(
        text.trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("signed in to"),
        "the final line replaces the status line: {text:?}"
    );
}
