//! Who holds a lock: this process's identity ([`Me`]: host name, pid, start time, boot and pid
//! namespace), the record an owner file carries ([`Record`]), how a holder is named to people,
//! and whether a holder on this machine is still alive. Everything read from a lock file is
//! untrusted: a host name is shown only when it is a plain host name, a pid is used only when it
//! is a real one (never 0 or negative, which `kill` would take for a process group).

use std::fmt;
use std::sync::OnceLock;

/// This process, as a lock file records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    pub host: String,
    pub pid: u32,
    /// `/proc/self/stat` field 22 (clock ticks after boot): with the pid, names one process.
    pub start: Option<u64>,
    /// `/proc/sys/kernel/random/boot_id`: the same host name after a reboot is another boot.
    pub boot: Option<String>,
    /// The pid namespace (`/proc/self/ns/pid`): containers with one host name are not one
    /// machine for `kill`.
    pub pidns: Option<String>,
}

impl Me {
    /// This process (read once).
    pub fn get() -> &'static Me {
        static ME: OnceLock<Me> = OnceLock::new();
        ME.get_or_init(|| Me {
            host: hostname(),
            pid: std::process::id(),
            start: process_start(std::process::id()),
            boot: read_trimmed("/proc/sys/kernel/random/boot_id").filter(|b| plain(b)),
            pidns: std::fs::read_link("/proc/self/ns/pid")
                .ok()
                .map(|p| p.to_string_lossy().into_owned())
                .filter(|p| plain(p)),
        })
    }
}

/// The host name (`gethostname`), or `unknown-host` when it is not a plain name.
fn hostname() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: `buf` is writable for its whole length, which is what we pass.
        if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
            let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
            if let Ok(h) = std::str::from_utf8(&buf[..end])
                && host_like(h)
            {
                return h.to_string();
            }
        }
    }
    #[cfg(not(unix))]
    if let Some(h) = std::env::var("COMPUTERNAME").ok().filter(|h| host_like(h)) {
        return h;
    }
    "unknown-host".into()
}

/// A host name as people write them: letters, digits, `.`, `-`, `_`; at most 255.
fn host_like(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// A value safe to write on one line of a record and to compare: printable ASCII, no spaces.
fn plain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_graphic())
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The start time of process `pid` (`/proc/PID/stat` field 22), on Linux.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 (the command) is in parentheses and may hold spaces or `)`: count after the last.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// The holder an owner file records. Every field is optional: a file being written, or one of
/// an unknown format, has gaps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub host: Option<String>,
    pub pid: Option<u32>,
    pub start: Option<u64>,
    pub boot: Option<String>,
    pub pidns: Option<String>,
    pub nonce: Option<String>,
}

/// The first line of an owner file.
const MAGIC: &str = "git-credential-iam lock";

impl Record {
    /// The record of this process holding a lock, told apart from its other locks by `nonce`.
    pub fn mine(nonce: &str) -> Record {
        let me = Me::get();
        Record {
            host: Some(me.host.clone()),
            pid: Some(me.pid),
            start: me.start,
            boot: me.boot.clone(),
            pidns: me.pidns.clone(),
            nonce: Some(nonce.to_string()),
        }
    }

    /// The file's text, up to (not including) the heartbeat line.
    pub fn to_text(&self) -> String {
        let mut s = format!("{MAGIC}\n");
        let mut line = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                s.push_str(&format!("{k} {v}\n"));
            }
        };
        line("host", self.host.clone());
        line("pid", self.pid.map(|p| p.to_string()));
        line("start", self.start.map(|p| p.to_string()));
        line("boot", self.boot.clone());
        line("pidns", self.pidns.clone());
        line("nonce", self.nonce.clone());
        s
    }

    /// Parses an owner file (a flock file's `pid N on HOST` too); what does not parse is left
    /// out.
    pub fn parse(bytes: &[u8]) -> Record {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
        let mut r = Record::default();
        if let Some(rest) = text.trim().strip_prefix("pid ") {
            // The flock file: `pid N on HOST` (older helpers: `pid N`).
            let mut words = rest.split_whitespace();
            r.pid = words.next().and_then(parse_pid);
            if words.next() == Some("on") {
                r.host = words.next().filter(|h| host_like(h)).map(str::to_string);
            }
            return r;
        }
        if text.lines().next() != Some(MAGIC) {
            return r;
        }
        for l in text.lines().skip(1) {
            let Some((k, v)) = l.split_once(' ') else {
                continue;
            };
            let v = v.trim();
            match k {
                "host" if host_like(v) => r.host = Some(v.into()),
                "pid" => r.pid = parse_pid(v),
                "start" => r.start = v.parse().ok(),
                "boot" if plain(v) => r.boot = Some(v.into()),
                "pidns" if plain(v) => r.pidns = Some(v.into()),
                "nonce" if plain(v) => r.nonce = Some(v.into()),
                _ => {}
            }
        }
        r
    }

    /// Whether the holder runs on this machine and in this pid namespace, where `kill` and
    /// `/proc` can check it: same host name, same boot, same pid namespace.
    pub fn is_local(&self) -> bool {
        let me = Me::get();
        self.host.as_deref() == Some(me.host.as_str())
            && self.boot.is_some()
            && self.boot == me.boot
            && self.pidns == me.pidns
            && self.pid.is_some()
    }

    /// For a local holder: whether its process still runs (the pid exists and, where known,
    /// started when the record says: a reused pid is another process). When in doubt, alive.
    pub fn is_alive_here(&self) -> bool {
        let Some(pid) = self.pid else {
            return true;
        };
        if !pid_exists(pid) {
            return false;
        }
        match (self.start, process_start(pid)) {
            (Some(recorded), Some(now)) => recorded == now,
            _ => true,
        }
    }
}

/// A pid as `kill` may take it: 1 up to `i32::MAX` (0 and negative numbers name process groups).
fn parse_pid(s: &str) -> Option<u32> {
    s.parse::<u32>()
        .ok()
        .filter(|p| *p >= 1 && i32::try_from(*p).is_ok())
}

/// Whether a process `pid` exists: `kill(pid, 0)` succeeds or is refused (`EPERM`: it exists,
/// as another user's). Without `kill`, assumed.
fn pid_exists(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(p) = libc::pid_t::try_from(pid) else {
            return true;
        };
        if p < 1 {
            return true;
        }
        // SAFETY: signal 0 only checks that `p` (a positive pid, never a group) exists.
        if unsafe { libc::kill(p, 0) } == 0 {
            return true;
        }
        std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "another git-credential-iam process")?;
        match (self.pid, &self.host) {
            (Some(p), Some(h)) => write!(f, " (pid {p}) on {h}"),
            (Some(p), None) => write!(f, " (pid {p})"),
            (None, Some(h)) => write!(f, " on {h}"),
            (None, None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_names_its_holder() {
        let r = Record::mine("n1");
        let text = r.to_text();
        assert_eq!(Record::parse(text.as_bytes()), r);
        let me = Me::get();
        assert_eq!(
            r.to_string(),
            format!(
                "another git-credential-iam process (pid {}) on {}",
                me.pid, me.host
            )
        );
        assert!(r.is_local() || me.boot.is_none());
        assert!(r.is_alive_here());
        if cfg!(target_os = "linux") {
            assert!(me.start.is_some() && me.boot.is_some() && me.pidns.is_some());
        }
    }

    #[test]
    fn hostile_records_are_not_believed() {
        let evil = "git-credential-iam lock\nhost \x1b[31mevil\npid 0\nnonce a b\n";
        let r = Record::parse(evil.as_bytes());
        assert_eq!(r, Record::default());
        assert_eq!(r.to_string(), "another git-credential-iam process");
        assert_eq!(Record::parse(b"pid -1 on x").pid, None);
        assert_eq!(Record::parse(b"pid 4294967295").pid, None);
        assert_eq!(Record::parse(b"garbage\nhost a\n"), Record::default());
        let flock = Record::parse(b"pid 42 on node-b.example");
        assert_eq!(
            (flock.pid, flock.host.as_deref()),
            (Some(42), Some("node-b.example"))
        );
        assert!(
            !flock.is_local(),
            "no boot id: not known to be this machine"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_dead_or_reused_pid_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut r = Record::mine("n");
        r.pid = Some(pid);
        r.start = None;
        assert!(!r.is_alive_here(), "reaped: gone");
        let mut r = Record::mine("n");
        r.start = r.start.map(|s| s + 1);
        assert!(
            !r.is_alive_here(),
            "our pid with another start time: a reused pid"
        );
        assert!(Record::mine("n").is_alive_here());
    }
}
