//! Opening the sign-in page in the person's browser, where that can work: a local desktop
//! session (`DISPLAY` or `WAYLAND_DISPLAY` on Linux and other Unix systems; always on macOS and
//! Windows), not over SSH (the browser would open on the far machine), and only when a prompt is
//! shown at all. `--browser`/`--no-browser` override the guess.
//!
//! The program is `$BROWSER` (its first `:`-separated entry, split on white space, with `%s`
//! standing for the link or the link appended), else `xdg-open`, `open` or `cmd /c start`. It is
//! spawned detached, in its own process group, with every standard stream on the null device
//! (git reads the helper's stdout), and never waited for.

use std::process::{Command, Stdio};

/// Whether to open the browser. `env` reads the environment, `os` is
/// [`std::env::consts::OS`], `forced` is `--browser` (`Some(true)`) or `--no-browser`
/// (`Some(false)`), `interactive_prompt` whether sign-in instructions are shown at all.
pub fn should_open(
    env: &dyn Fn(&str) -> Option<String>,
    os: &str,
    forced: Option<bool>,
    interactive_prompt: bool,
) -> bool {
    let set = |k: &str| env(k).is_some_and(|v| !v.is_empty());
    if !interactive_prompt {
        return false;
    }
    if let Some(f) = forced {
        return f;
    }
    if set("SSH_CONNECTION") || set("SSH_TTY") {
        return false;
    }
    match os {
        "macos" | "windows" => true,
        _ => set("DISPLAY") || set("WAYLAND_DISPLAY"),
    }
}

/// Whether `url` may be handed to a browser or drawn as a QR code: printable ASCII with no
/// white space or quotes (so no program can read it as an option or a second argument) that
/// the URL parser reads as `https://`, or `http://` to a loopback host, with no user info.
pub fn is_openable(url: &str) -> bool {
    url.len() <= 2000
        && url.bytes().all(|b| b.is_ascii_graphic() && b != b'"')
        && crate::trust::checked(url, "verification link").is_ok()
}

/// Something that opens a link. Returns the program it started, or why it could not.
pub trait Opener {
    fn open(&self, url: &str) -> Result<String, String>;
}

/// The real opener: `$BROWSER` or the system's.
pub struct System<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub os: &'a str,
}

impl Opener for System<'_> {
    fn open(&self, url: &str) -> Result<String, String> {
        if !is_openable(url) {
            return Err("the link is not a plain http(s) URL".into());
        }
        let (program, args) = command(url, self.env, self.os);
        let mut cmd = Command::new(&program);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        {
            // Its own process group: Ctrl-C on git must not close the browser.
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(|e| format!("{program}: {e}"))?;
        // Reap it whenever it ends; the helper never waits for it.
        let _ = crate::sys::signals::spawn_quiet("browser-reaper", move || {
            let _ = child.wait();
        });
        Ok(program)
    }
}

/// The program and arguments that open `url` (already checked by [`is_openable`]).
pub fn command(url: &str, env: &dyn Fn(&str) -> Option<String>, os: &str) -> (String, Vec<String>) {
    let from_env = env("BROWSER").and_then(|b| {
        let first = b.split(':').next().unwrap_or("").trim().to_string();
        let mut words = first.split_whitespace().map(str::to_string);
        let program = words.next()?;
        let mut args: Vec<String> = words.collect();
        if args.iter().any(|a| a.contains("%s")) {
            for a in &mut args {
                *a = a.replace("%s", url);
            }
        } else {
            args.push(url.to_string());
        }
        Some((program, args))
    });
    from_env.unwrap_or_else(|| match os {
        "macos" => ("open".into(), vec![url.into()]),
        // `start` runs under cmd, which reads & | < > ( ) ^ % as syntax: escape each with ^.
        // The link has no white space, so it reaches cmd unquoted and `start` takes it as the
        // thing to open, not as a window title.
        "windows" => (
            "cmd".into(),
            vec!["/c".into(), "start".into(), cmd_escape(url)],
        ),
        _ => ("xdg-open".into(), vec![url.into()]),
    })
}

/// `url` with cmd.exe's special characters escaped by `^`.
fn cmd_escape(url: &str) -> String {
    let mut out = String::with_capacity(url.len() + 8);
    for c in url.chars() {
        if "&|<>()^%!".contains(c) {
            out.push('^');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    /// (environment, os, forced, interactive prompt, expected)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, Option<bool>, bool, bool);

    #[test]
    fn decision_for_each_environment() {
        let cases: &[Case] = &[
            (&[("DISPLAY", ":0")], "linux", None, true, true),
            (
                &[("WAYLAND_DISPLAY", "wayland-0")],
                "linux",
                None,
                true,
                true,
            ),
            (&[], "linux", None, true, false),
            (&[("DISPLAY", "")], "linux", None, true, false),
            (
                &[
                    ("DISPLAY", ":0"),
                    ("SSH_CONNECTION", "10.0.0.1 5 10.0.0.2 22"),
                ],
                "linux",
                None,
                true,
                false,
            ),
            (
                &[("DISPLAY", ":0"), ("SSH_TTY", "/dev/pts/3")],
                "linux",
                None,
                true,
                false,
            ),
            (&[], "macos", None, true, true),
            (&[], "windows", None, true, true),
            (&[("SSH_CONNECTION", "a b c d")], "macos", None, true, false),
            (&[], "freebsd", None, true, false),
            (&[("DISPLAY", ":0")], "freebsd", None, true, true),
            // --browser forces, even over SSH or with no display
            (&[], "linux", Some(true), true, true),
            (
                &[("SSH_CONNECTION", "a b c d")],
                "linux",
                Some(true),
                true,
                true,
            ),
            // --no-browser disables
            (&[("DISPLAY", ":0")], "linux", Some(false), true, false),
            (&[], "macos", Some(false), true, false),
            // no prompt at all: never
            (&[("DISPLAY", ":0")], "linux", None, false, false),
            (&[("DISPLAY", ":0")], "linux", Some(true), false, false),
        ];
        for (vars, os, forced, prompt, want) in cases {
            assert_eq!(
                should_open(&env_of(vars), os, *forced, *prompt),
                *want,
                "{vars:?} {os} {forced:?} prompt={prompt}"
            );
        }
    }

    #[test]
    fn programs() {
        let url = "https://iam.example/device?user_code=ABCD-EFGH&x=1";
        let none = env_of(&[]);
        assert_eq!(
            command(url, &none, "linux"),
            ("xdg-open".into(), vec![url.into()])
        );
        assert_eq!(
            command(url, &none, "macos"),
            ("open".into(), vec![url.into()])
        );
        assert_eq!(
            command(url, &none, "windows"),
            (
                "cmd".into(),
                vec![
                    "/c".into(),
                    "start".into(),
                    "https://iam.example/device?user_code=ABCD-EFGH^&x=1".into()
                ]
            )
        );
        let b = env_of(&[("BROWSER", "/opt/fake --new-window:/usr/bin/other")]);
        assert_eq!(
            command(url, &b, "linux"),
            ("/opt/fake".into(), vec!["--new-window".into(), url.into()])
        );
        let b = env_of(&[("BROWSER", "w3m -o x=%s")]);
        assert_eq!(
            command(url, &b, "linux"),
            ("w3m".into(), vec!["-o".into(), format!("x={url}")])
        );
        let empty = env_of(&[("BROWSER", "")]);
        assert_eq!(command(url, &empty, "linux").0, "xdg-open");
    }

    #[test]
    fn only_plain_http_links_are_opened() {
        assert!(is_openable("https://iam.example/device?user_code=A-B"));
        assert!(is_openable("http://127.0.0.1:8080/device"));
        assert!(!is_openable("file:///etc/passwd"));
        assert!(!is_openable("javascript:alert(1)"));
        assert!(!is_openable("https://x/ --flag"));
        assert!(!is_openable("https://x/\"&calc"));
        assert!(!is_openable("https://x/\u{1b}[2J"));
        assert!(
            !is_openable("http://iam.example/device"),
            "plain http off loopback"
        );
        assert!(!is_openable("http://iam.example/x://127.0.0.1/device"));
        assert!(!is_openable("https://user:pw@iam.example/device"));
        let sys = System {
            env: &env_of(&[("BROWSER", "/nonexistent/browser")]),
            os: "linux",
        };
        assert!(sys.open("file:///etc/passwd").is_err());
        let e = sys.open("https://iam.example/device").unwrap_err();
        assert!(e.starts_with("/nonexistent/browser: "), "{e}");
    }
}
