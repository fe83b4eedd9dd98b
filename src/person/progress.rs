//! The status of a device sign-in while the helper polls, drawn from the [`PollEvent`]s that
//! `provider::device::poll` reports. On a terminal: one line updated in place (`\r` and erase-line)
//! with the time left before the code expires (mm:ss) and what the provider last said, replaced
//! at the end by a final line or wiped for the error. Elsewhere (a pipe, a log): plain lines with
//! no control characters, one only when the provider's answer changes, never one per poll.

use std::io::Write;

use crate::provider::device::PollEvent;

/// Return to the start of the line and erase it.
const ERASE_LINE: &str = "\r\x1b[2K";

/// What the provider last said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Said {
    Waiting,
    SlowDown(u64),
    NetworkProblem,
}

impl Said {
    fn text(self) -> String {
        match self {
            Said::Waiting => "waiting for approval".into(),
            Said::SlowDown(n) => format!("provider asked to slow down, polling every {n} s"),
            Said::NetworkProblem => "network problem, retrying".into(),
        }
    }
}

/// The status display; see the module docs.
pub struct Status<'w> {
    out: &'w mut dyn Write,
    live: bool,
    said: Said,
    left_secs: Option<u64>,
    /// What the live line shows now; empty when nothing is drawn.
    shown: String,
}

impl<'w> Status<'w> {
    /// A display on `out`, live (updated in place) when `out` is a terminal.
    pub fn new(out: &'w mut dyn Write, terminal: bool) -> Status<'w> {
        Status {
            out,
            live: terminal,
            said: Said::Waiting, // the instructions already say so
            left_secs: None,
            shown: String::new(),
        }
    }

    /// Takes in one event from polling.
    pub fn event(&mut self, e: PollEvent) {
        let said = match e {
            PollEvent::Tick { left } => {
                // Round up: "00:01" until the last second is over.
                self.left_secs = Some(left.as_secs() + u64::from(left.subsec_nanos() > 0));
                None
            }
            PollEvent::Pending => Some(Said::Waiting),
            PollEvent::SlowDown { every_secs } => Some(Said::SlowDown(every_secs)),
            PollEvent::NetworkProblem => Some(Said::NetworkProblem),
        };
        let changed = said.is_some_and(|s| s != self.said);
        if let Some(s) = said {
            self.said = s;
        }
        if self.live {
            self.redraw();
        } else if changed {
            let _ = writeln!(self.out, "git-credential-iam: {}", self.said.text());
            let _ = self.out.flush();
        }
    }

    fn redraw(&mut self) {
        let Some(left) = self.left_secs else {
            return;
        };
        let line = format!(
            "  {:02}:{:02} left · {}",
            left / 60,
            left % 60,
            self.said.text()
        );
        if line != self.shown {
            let _ = write!(self.out, "{ERASE_LINE}{line}");
            let _ = self.out.flush();
            self.shown = line;
        }
    }

    /// Ends the display with `line` (which replaces the live line).
    pub fn finish(&mut self, line: &str) {
        self.clear();
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }

    /// Wipes the live line (for an error that the caller prints).
    pub fn clear(&mut self) {
        if self.live && !self.shown.is_empty() {
            let _ = write!(self.out, "{ERASE_LINE}");
            let _ = self.out.flush();
            self.shown.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tick(ms: u64) -> PollEvent {
        PollEvent::Tick {
            left: Duration::from_millis(ms),
        }
    }

    /// A poll sequence: two pending answers, a slow_down, two more, a network failure, pending.
    fn feed(status: &mut Status) {
        for e in [
            tick(600_000),
            tick(599_000),
            PollEvent::Pending,
            tick(598_000),
            PollEvent::Pending,
            tick(597_000),
            PollEvent::SlowDown { every_secs: 10 },
            tick(596_500),
            tick(587_000),
            PollEvent::SlowDown { every_secs: 10 },
            PollEvent::NetworkProblem,
            tick(61_000),
            tick(59_999),
            PollEvent::Pending,
        ] {
            status.event(e);
        }
    }

    #[test]
    fn terminal_line_updates_in_place_and_is_replaced_by_the_final_line() {
        let mut out = Vec::new();
        let mut s = Status::new(&mut out, true);
        feed(&mut s);
        s.finish("git-credential-iam: signed in to iam.example as alice, token valid until T");
        let text = String::from_utf8(out).unwrap();
        let frames: Vec<&str> = text.split(ERASE_LINE).collect();
        assert_eq!(frames[0], "", "every frame starts by erasing the line");
        assert_eq!(
            &frames[1..],
            [
                "  10:00 left · waiting for approval",
                "  09:59 left · waiting for approval",
                "  09:58 left · waiting for approval",
                "  09:57 left · waiting for approval",
                "  09:57 left · provider asked to slow down, polling every 10 s",
                "  09:47 left · provider asked to slow down, polling every 10 s",
                "  09:47 left · network problem, retrying",
                "  01:01 left · network problem, retrying",
                "  01:00 left · network problem, retrying",
                "  01:00 left · waiting for approval",
                "git-credential-iam: signed in to iam.example as alice, token valid until T\n",
            ]
        );
        assert_eq!(text.matches('\n').count(), 1, "one line in the end");
    }

    #[test]
    fn terminal_error_wipes_the_line() {
        let mut out = Vec::new();
        let mut s = Status::new(&mut out, true);
        s.event(tick(5_000));
        s.clear();
        s.clear();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\r\x1b[2K  00:05 left · waiting for approval\r\x1b[2K"
        );
    }

    #[test]
    fn plain_output_has_a_line_per_change_and_no_control_characters() {
        let mut out = Vec::new();
        let mut s = Status::new(&mut out, false);
        feed(&mut s);
        s.finish("git-credential-iam: signed in to iam.example, token valid until T");
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "git-credential-iam: provider asked to slow down, polling every 10 s\n\
             git-credential-iam: network problem, retrying\n\
             git-credential-iam: waiting for approval\n\
             git-credential-iam: signed in to iam.example, token valid until T\n"
        );
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
        let mut out = Vec::new();
        Status::new(&mut out, false).clear();
        assert!(out.is_empty());
    }
}
