//! What the person sees during a device sign-in, in order: where to go and the code; a QR code
//! of the link when the prompt is a terminal wide enough ([`qr`]); the page opened in a browser
//! where that can work ([`browser`]); a status line while the caller polls ([`progress`]);
//! and a final line naming who signed in and until when the token is valid (never the token).
//! Everything goes to the destination [`Prompt`] picked, never to stdout. The requests to the
//! provider are the caller's ([`DeviceFlow`]): nothing in `person` talks to the network. Provider text is
//! stripped of control characters first: a hostile provider must not drive the terminal.

use crate::encoding::clean;
use crate::encoding::rfc3339;
use crate::error::Result;
use crate::person::browser::{self, Opener};
use crate::person::progress::Status;
use crate::person::prompt::Prompt;
use crate::person::qr;
use crate::provider::TokenResponse;
use crate::provider::claims::display_name;
use crate::provider::device::{DeviceAuthorization, PollEvent, human_duration};

/// The person-facing choices and the ways to reach the world.
pub struct Ui<'a> {
    /// `--qr` / `--no-qr`; `None`: on a terminal wide enough.
    pub qr: Option<bool>,
    /// `--browser` / `--no-browser`; `None`: on a local desktop session.
    pub browser: Option<bool>,
    /// Reads the environment (`COLUMNS`, `COLORFGBG`, `DISPLAY`, `SSH_CONNECTION`, …).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// [`std::env::consts::OS`].
    pub os: &'a str,
    /// Opens a link in a browser.
    pub opener: &'a dyn Opener,
}

/// Polls the provider for the code's tokens, reporting each answer (RFC 8628 §3.4).
pub type Poll<'a> =
    &'a dyn Fn(&DeviceAuthorization, &mut dyn FnMut(PollEvent)) -> Result<TokenResponse>;

/// The device flow's two requests to the provider, made by the caller: this module only shows.
pub struct DeviceFlow<'a> {
    /// Asks for a code (RFC 8628 §3.1).
    pub start: &'a dyn Fn() -> Result<DeviceAuthorization>,
    /// Polls until the person approves, reporting each answer (RFC 8628 §3.4).
    pub poll: Poll<'a>,
}

/// Runs the device flow with the person at `prompt` and returns the provider's tokens.
pub fn sign_in(
    flow: &DeviceFlow,
    host: &str,
    prompt: &mut Prompt,
    ui: &Ui,
    clock: &dyn Fn() -> i64,
) -> Result<TokenResponse> {
    let da = (flow.start)()?;
    let terminal = prompt.is_terminal();
    let on_stderr = prompt.is_stderr();
    let link = link(&da);
    let columns = qr::columns(ui.env, prompt.columns());
    let drawing = link
        .and_then(qr::encode)
        .filter(|c| qr::should_show(ui.qr, terminal, columns, qr::width(c)))
        .map(|c| qr::draw(&c, qr::ink(ui.env)));
    let opened = link.and_then(|l| browser_line(l, ui));
    let text = instructions(&da, host, drawing.as_deref(), opened.as_deref());
    let out = prompt.writer();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();

    let mut status = Status::new(prompt.writer(), terminal);
    match (flow.poll)(&da, &mut |e| status.event(e)) {
        Ok(t) => {
            status.finish(&signed_in(host, &t, clock()));
            Ok(t)
        }
        Err(e) => {
            status.clear();
            drop(status);
            if !on_stderr {
                // The error goes to stderr, which the person at this terminal may not see.
                let _ = writeln!(prompt.writer(), "git-credential-iam: {e}");
            }
            Err(e)
        }
    }
}

/// The link to open or scan: the one that fills in the code when it is a plain http(s) URL,
/// else the verification page.
fn link(da: &DeviceAuthorization) -> Option<&str> {
    da.verification_uri_complete
        .as_deref()
        .into_iter()
        .chain([da.verification_uri.as_str()])
        .find(|u| browser::is_openable(u))
}

/// Opens `link` when the environment allows; the line saying what happened, if anything did.
fn browser_line(link: &str, ui: &Ui) -> Option<String> {
    if !browser::should_open(ui.env, ui.os, ui.browser, true) {
        return None;
    }
    Some(match ui.opener.open(link) {
        Ok(program) => format!(
            "  Opened the link in your browser ({}).\n",
            clean(&program, 100)
        ),
        Err(why) => format!(
            "  Could not open a browser ({}); open the link yourself.\n",
            clean(&why, 200)
        ),
    })
}

/// The instructions: where to go, the code, the QR `drawing` and the `browser` line if any, and
/// how long the code lasts.
pub fn instructions(
    da: &DeviceAuthorization,
    host: &str,
    drawing: Option<&str>,
    browser: Option<&str>,
) -> String {
    let mut text = format!(
        "git-credential-iam: sign in to {host}\n  Open:  {}\n  Code:  {}\n",
        clean(&da.verification_uri, 500),
        clean(&da.user_code, 64)
    );
    if let Some(c) = &da.verification_uri_complete {
        text.push_str(&format!(
            "  Or open this link, which fills in the code: {}\n",
            clean(c, 600)
        ));
    }
    if let Some(d) = drawing {
        text.push_str("  Or scan this code with a phone:\n");
        text.push_str(d);
    }
    if let Some(b) = browser {
        text.push_str(b);
    }
    text.push_str(&format!(
        "  Waiting for approval (the code expires in {}); Ctrl-C to cancel.\n",
        human_duration(da.expires_in.unwrap_or(600))
    ));
    text
}

/// "git-credential-iam: signed in to HOST as WHO, token valid until TIME": who from the ID
/// token, else from the access token when it is a JWT, else left out; `preferred_username`,
/// else `name`, else `email`, else `sub` ([`display_name`]).
pub fn signed_in(host: &str, t: &TokenResponse, now: i64) -> String {
    let who = t
        .id_token
        .as_ref()
        .and_then(|j| display_name(j.expose()))
        .or_else(|| display_name(t.access_token.expose()))
        .map(|s| format!(" as {}", clean(&s, 100)))
        .unwrap_or_default();
    format!(
        "git-credential-iam: signed in to {host}{who}, token valid until {}",
        rfc3339(t.expires_at(now))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::base64;
    use crate::secret::Secret;
    use std::cell::RefCell;

    const GOLDEN: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/device-prompt.txt"
    );

    fn da(complete: Option<&str>) -> DeviceAuthorization {
        DeviceAuthorization {
            device_code: Secret::new("DEVICE-CODE-SECRET".into()),
            user_code: "ABCD-EFGH".into(),
            verification_uri: "https://iam.example.org/device".into(),
            verification_uri_complete: complete.map(str::to_string),
            expires_in: Some(600),
            interval: None,
        }
    }

    /// Records the links it is asked to open; fails when `fail` is set.
    struct Fake {
        opened: RefCell<Vec<String>>,
        fail: bool,
    }

    impl Opener for Fake {
        fn open(&self, url: &str) -> std::result::Result<String, String> {
            self.opened.borrow_mut().push(url.to_string());
            if self.fail {
                Err("fake-browser: No such file or directory (os error 2)".into())
            } else {
                Ok("fake-browser".into())
            }
        }
    }

    fn fake(fail: bool) -> Fake {
        Fake {
            opened: RefCell::new(Vec::new()),
            fail,
        }
    }

    fn ui<'a>(env: &'a dyn Fn(&str) -> Option<String>, opener: &'a Fake) -> Ui<'a> {
        Ui {
            qr: None,
            browser: None,
            env,
            os: "linux",
            opener,
        }
    }

    /// The whole prompt for a known link, QR code included, against tests/golden/. Run with
    /// GOLDEN_BLESS=1 to rewrite the file after a deliberate change.
    #[test]
    fn prompt_with_qr_code_matches_the_golden_file() {
        let da = da(Some("https://iam.example.org/device?user_code=ABCD-EFGH"));
        let link = link(&da).unwrap();
        assert_eq!(link, "https://iam.example.org/device?user_code=ABCD-EFGH");
        let drawing = qr::draw(&qr::encode(link).unwrap(), qr::Ink::Light);
        let text = instructions(
            &da,
            "iam.example.org",
            Some(&drawing),
            Some("  Opened the link in your browser (xdg-open).\n"),
        );
        if std::env::var_os("GOLDEN_BLESS").is_some() {
            std::fs::write(GOLDEN, &text).unwrap();
        }
        let golden = std::fs::read_to_string(GOLDEN).expect("tests/golden/device-prompt.txt");
        assert_eq!(
            text, golden,
            "run with GOLDEN_BLESS=1 if the change is deliberate"
        );
        assert!(!text.contains("DEVICE-CODE-SECRET"));
        assert!(text.contains("\n  Code:  ABCD-EFGH\n  Or open this link"));
    }

    #[test]
    fn instructions_strip_control_characters() {
        let mut d = da(Some("https://iam.example/device?user_code=ABCD"));
        d.user_code = "ABCD\x1b[2J-EFGH".into();
        let text = instructions(&d, "iam.example", None, None);
        assert!(!text.contains('\x1b'));
        assert!(text.contains("Code:  ABCD[2J-EFGH"));
        assert!(text.contains("10 min"));
        assert!(!text.contains("DEVICE-CODE-SECRET"));
    }

    #[test]
    fn link_prefers_the_complete_uri_and_refuses_odd_schemes() {
        let d = da(Some("https://iam.example.org/device?user_code=ABCD-EFGH"));
        assert_eq!(link(&d), d.verification_uri_complete.as_deref());
        assert_eq!(link(&da(None)), Some("https://iam.example.org/device"));
        let mut odd = da(Some("javascript:alert(1)"));
        assert_eq!(link(&odd), Some("https://iam.example.org/device"));
        odd.verification_uri = "file:///etc/passwd".into();
        assert_eq!(link(&odd), None);
    }

    #[test]
    fn browser_opened_on_a_desktop_only() {
        let url = "https://iam.example.org/device?user_code=ABCD-EFGH";
        let desktop = |k: &str| (k == "DISPLAY").then(|| ":0".to_string());
        let f = fake(false);
        let line = browser_line(url, &ui(&desktop, &f)).unwrap();
        assert_eq!(line, "  Opened the link in your browser (fake-browser).\n");
        assert_eq!(*f.opened.borrow(), [url]);

        let f = fake(true);
        let line = browser_line(url, &ui(&desktop, &f)).unwrap();
        assert!(
            line.starts_with("  Could not open a browser (fake-browser: "),
            "{line}"
        );
        assert_eq!(line.lines().count(), 1);

        let ssh = |k: &str| match k {
            "DISPLAY" => Some(":0".to_string()),
            "SSH_CONNECTION" => Some("10.0.0.1 50000 10.0.0.2 22".to_string()),
            _ => None,
        };
        let f = fake(false);
        assert_eq!(browser_line(url, &ui(&ssh, &f)), None);
        let mut forced = ui(&ssh, &f);
        forced.browser = Some(true);
        assert!(browser_line(url, &forced).is_some());
        assert_eq!(f.opened.borrow().len(), 1);

        let f = fake(false);
        let mut off = ui(&desktop, &f);
        off.browser = Some(false);
        assert_eq!(browser_line(url, &off), None);
        assert_eq!(browser_line(url, &ui(&|_| None, &f)), None);
        assert!(f.opened.borrow().is_empty());
    }

    #[test]
    fn signed_in_names_the_subject_never_the_token() {
        let jwt = |claims: &str| format!("h.{}.s", base64(claims.as_bytes()).replace('=', ""));
        let access = jwt(r#"{"sub":"uuid-1","exp":2000000000}"#);
        let mut t = TokenResponse {
            access_token: Secret::new(access.clone()),
            token_type: Some("Bearer".into()),
            expires_in: Some(3600.into()),
            refresh_token: None,
            scope: None,
            id_token: Some(Secret::new(jwt(
                r#"{"sub":"uuid-1","preferred_username":"alice"}"#,
            ))),
        };
        let line = signed_in("iam.example", &t, 1_700_000_000);
        assert_eq!(
            line,
            "git-credential-iam: signed in to iam.example as alice, token valid until \
             2023-11-14T23:13:20Z"
        );
        assert!(!line.contains(&access));
        // glewlwyd: no preferred_username; the name, else the email, before the opaque sub.
        t.id_token = Some(Secret::new(jwt(
            r#"{"sub":"SLLUFrKv1EM6jqYlIUHrPHSuFCbyFmUs","name":"Alice Liddell","email":"alice@example.org"}"#,
        )));
        assert!(signed_in("iam.example", &t, 1_700_000_000).contains(" as Alice Liddell,"));
        t.id_token = Some(Secret::new(jwt(
            r#"{"sub":"SLLUFrKv1EM6jqYlIUHrPHSuFCbyFmUs","email":"alice@example.org"}"#,
        )));
        assert!(signed_in("iam.example", &t, 1_700_000_000).contains(" as alice@example.org,"));
        t.id_token = None;
        assert!(signed_in("iam.example", &t, 1_700_000_000).contains(" as uuid-1,"));
        t.access_token = Secret::new("opaque".into());
        assert!(
            signed_in("iam.example", &t, 1_700_000_000)
                .starts_with("git-credential-iam: signed in to iam.example, token valid until ")
        );
    }
}
