//! git's credential protocol (`git help credential`): the `key=value` request git writes on our
//! stdin, and the answer we write on stdout. Parsing follows git 2.47 exactly: split at the first
//! `=`, arrays (`key[]`) keep their order and an empty value resets them, unknown keys are
//! ignored, the block ends at a blank line or EOF. Input is bounded (65535 bytes a line, 1 MiB
//! in all) and anything git would never send (NUL, CR, invalid UTF-8, a line without `=`) is
//! refused with a one-line error instead of a panic.

use std::io::{BufRead, Write};

use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::trust;

/// Longest line git writes.
pub const MAX_LINE: usize = 65535;
/// Most bytes we read from git in one request.
pub const MAX_INPUT: usize = 1 << 20;

/// What git asks about. Only the attributes the helper uses are kept.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Request {
    pub protocol: Option<String>,
    pub host: Option<String>,
    pub path: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret<String>>,
    pub authtype: Option<String>,
    pub credential: Option<Secret<String>>,
    pub oauth_refresh_token: Option<Secret<String>>,
    pub password_expiry_utc: Option<String>,
    pub wwwauth: Vec<String>,
    pub capabilities: Vec<String>,
}

impl Request {
    /// Reads one request block from `input`.
    pub fn read_from<R: BufRead + ?Sized>(input: &mut R) -> Result<Request> {
        let mut req = Request::default();
        let mut total = 0usize;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = <&mut R as std::io::Read>::take(&mut *input, MAX_LINE as u64 + 2)
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::Input(format!("cannot read stdin: {e}")))?;
            if n == 0 {
                break;
            }
            total += n;
            if total > MAX_INPUT {
                return Err(Error::Input(format!(
                    "request is larger than {MAX_INPUT} bytes"
                )));
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            } else if line.len() > MAX_LINE {
                return Err(Error::Input(format!(
                    "a line is longer than {MAX_LINE} bytes"
                )));
            }
            if line.len() > MAX_LINE {
                return Err(Error::Input(format!(
                    "a line is longer than {MAX_LINE} bytes"
                )));
            }
            if line.is_empty() {
                break;
            }
            req.apply_line(&line)?;
        }
        Ok(req)
    }

    /// Parses a request from a string (tests, fuzzing).
    pub fn parse(text: &str) -> Result<Request> {
        Request::read_from(&mut text.as_bytes())
    }

    fn apply_line(&mut self, line: &[u8]) -> Result<()> {
        if line.contains(&0) {
            return Err(Error::Input("a line contains a NUL byte".into()));
        }
        if line.contains(&b'\r') {
            return Err(Error::Input("a line contains a carriage return".into()));
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| Error::Input("a line is not valid UTF-8".into()))?;
        let Some((key, value)) = line.split_once('=') else {
            // The line is not quoted: it could be a token pasted in the wrong place.
            return Err(Error::Input(
                "a line without '=' (expected key=value; the line is not shown)".into(),
            ));
        };
        let value = value.to_string();
        let opt = |v: String| if v.is_empty() { None } else { Some(v) };
        match key {
            "protocol" => self.protocol = opt(value),
            "host" => self.host = opt(value),
            "path" => self.path = opt(value),
            "username" => self.username = opt(value),
            "password" => self.password = opt(value).map(Secret::new),
            "authtype" => self.authtype = opt(value),
            "credential" => self.credential = opt(value).map(Secret::new),
            "oauth_refresh_token" => self.oauth_refresh_token = opt(value).map(Secret::new),
            "password_expiry_utc" => self.password_expiry_utc = opt(value),
            "url" => self.apply_url(&value)?,
            "wwwauth[]" => push_array(&mut self.wwwauth, value),
            "capability[]" => push_array(&mut self.capabilities, value),
            _ => {} // unknown keys are ignored, as git's protocol requires
        }
        Ok(())
    }

    /// `url=` sets protocol, host, path and username from a URL, as git does. The URL is
    /// parsed by the WHATWG parser; a password in it is ignored, never kept.
    fn apply_url(&mut self, url: &str) -> Result<()> {
        // git refuses a URL without a scheme too ("url has no scheme").
        let u = url::Url::parse(url).map_err(|e| {
            Error::Input(format!(
                "url= is not a URL with a scheme ({e}); expected protocol://host/..."
            ))
        })?;
        if !u.username().is_empty() {
            self.username = Some(u.username().to_string());
        }
        self.protocol = Some(u.scheme().to_string());
        self.host = u.host_str().map(|h| match u.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        });
        let path = u.path().trim_start_matches('/');
        self.path = (!path.is_empty()).then(|| path.to_string());
        Ok(())
    }

    /// Writes the request as git writes one to a helper (`credential_write` in git's
    /// credential.c): the `capability[]` lines, then `authtype`, `credential`, `protocol`,
    /// `host`, `path`, `username`, `password`, `oauth_refresh_token`, `password_expiry_utc`, the
    /// `wwwauth[]` lines in their order, and a blank line that ends the block (git closes the
    /// pipe instead; [`Request::read_from`] takes either). Unset fields are left out.
    ///
    /// The inverse of [`Request::read_from`]: whatever this writes reads back equal. So it
    /// refuses, writing nothing, what could not: a value with LF, CR or NUL (it would end or
    /// break the line, or inject a key), an empty value (it reads back as unset, and in an
    /// array it means "reset"), a line longer than [`MAX_LINE`] or a request larger than
    /// [`MAX_INPUT`]. Errors name the key, never the value.
    pub fn write_to<W: Write + ?Sized>(&self, out: &mut W) -> Result<()> {
        let mut buf = String::with_capacity(256);
        for c in &self.capabilities {
            write_item(&mut buf, "capability[]", c)?;
        }
        fn secret(s: &Option<Secret<String>>) -> Option<&str> {
            s.as_ref().map(|s| s.expose().as_str())
        }
        let scalars = [
            ("authtype", self.authtype.as_deref()),
            ("credential", secret(&self.credential)),
            ("protocol", self.protocol.as_deref()),
            ("host", self.host.as_deref()),
            ("path", self.path.as_deref()),
            ("username", self.username.as_deref()),
            ("password", secret(&self.password)),
            ("oauth_refresh_token", secret(&self.oauth_refresh_token)),
            ("password_expiry_utc", self.password_expiry_utc.as_deref()),
        ];
        for (key, value) in scalars {
            if let Some(v) = value {
                write_item(&mut buf, key, v)?;
            }
        }
        for w in &self.wwwauth {
            write_item(&mut buf, "wwwauth[]", w)?;
        }
        buf.push('\n');
        if buf.len() > MAX_INPUT {
            return Err(Error::Input(format!(
                "the request would be larger than {MAX_INPUT} bytes; refusing to write it"
            )));
        }
        out.write_all(buf.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| Error::Input(format!("cannot write the request: {e}")))
    }

    /// Whether git announced a capability (`capability[]=authtype`).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| c == name)
    }

    /// The URL git is asking about, `protocol://host/path` (a path only with useHttpPath),
    /// parsed by [`trust::request_url`]: `None` unless it is one unambiguous http(s) URL.
    pub fn url(&self) -> Option<url::Url> {
        trust::request_url(
            self.protocol.as_deref()?,
            self.host.as_deref()?,
            self.path.as_deref(),
        )
    }

    /// What git asked about, for messages: the protocol and the host, quoted when odd.
    pub fn describe(&self) -> String {
        let p = self.protocol.as_deref().unwrap_or("(no protocol)");
        let h = self.host.as_deref().unwrap_or("(no host)");
        format!("protocol={} host={}", trust::quote(p), trust::quote(h))
    }

    /// The token git presented (in `erase`): `credential` in Bearer mode, the token inside
    /// `credential=base64(user:token)` with `authtype=Basic`, else `password`.
    pub fn presented_token(&self) -> Option<Secret<String>> {
        if let Some(c) = &self.credential {
            if self
                .authtype
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case("basic"))
            {
                let raw = crate::encoding::base64url_decode(c.expose())?;
                let text = String::from_utf8(raw).ok()?;
                let (_, token) = text.split_once(':')?;
                return Some(Secret::new(token.to_string()));
            }
            return Some(c.clone());
        }
        self.password.clone()
    }

    /// The auth schemes offered by the server's `WWW-Authenticate` challenges, lower-cased.
    pub fn challenge_schemes(&self) -> Vec<String> {
        self.wwwauth
            .iter()
            .filter_map(|c| c.split_whitespace().next())
            .map(|s| s.trim_end_matches(',').to_ascii_lowercase())
            .collect()
    }
}

fn push_array(list: &mut Vec<String>, value: String) {
    if value.is_empty() {
        list.clear();
    } else {
        list.push(value);
    }
}

/// Appends `key=value\n`, or refuses a value that would not read back as itself.
fn write_item(buf: &mut String, key: &str, value: &str) -> Result<()> {
    let refuse = |why: &str| -> Result<()> {
        Err(Error::Input(format!(
            "the value of {key} {why}; refusing to write it"
        )))
    };
    if value.is_empty() {
        return refuse(if key.ends_with("[]") {
            "is empty (git reads an empty array value as a reset)"
        } else {
            "is empty (git reads it as unset)"
        });
    }
    if value.bytes().any(|b| b == b'\n' || b == b'\r' || b == 0) {
        return refuse("contains a newline, CR or NUL");
    }
    if key.len() + 1 + value.len() > MAX_LINE {
        return refuse(&format!("makes a line longer than {MAX_LINE} bytes"));
    }
    buf.push_str(key);
    buf.push('=');
    buf.push_str(value);
    buf.push('\n');
    Ok(())
}

/// How the token is handed to git. The `authtype` forms carry `ephemeral=1`: git (2.46 and
/// later) then sends the header itself and keeps the credential out of storage helpers.
#[derive(Clone, PartialEq)]
pub enum Answer<'a> {
    /// `capability[]=authtype`, `authtype=Bearer`, `credential=TOKEN`: git sends `Authorization: Bearer`.
    Bearer { token: &'a str, expires_at: i64 },
    /// `capability[]=authtype`, `authtype=Basic`, `credential=base64(USER:TOKEN)`: git sends
    /// `Authorization: Basic` itself, and `credential.helper store` keeps nothing.
    BasicHeader {
        username: &'a str,
        token: &'a str,
        expires_at: i64,
    },
    /// `username=…`, `password=TOKEN`: git before 2.46 builds Basic; a storage helper after
    /// this one would copy it (the README says how to set git up against that).
    Basic {
        username: &'a str,
        token: &'a str,
        expires_at: i64,
    },
}

impl Answer<'_> {
    /// Writes the answer in git's format. Refuses (writing nothing) values git could misread: a
    /// newline or NUL inside a token from a hostile provider would inject protocol lines.
    pub fn write_to<W: Write + ?Sized>(&self, out: &mut W) -> Result<()> {
        let mut buf = String::with_capacity(256);
        match self {
            Answer::Bearer { token, expires_at } => {
                // The capability comes first: the lines after it depend on it.
                write_item(&mut buf, "capability[]", "authtype")?;
                write_item(&mut buf, "authtype", "Bearer")?;
                write_item(&mut buf, "credential", token)?;
                write_item(&mut buf, "ephemeral", "1")?;
                write_item(&mut buf, "password_expiry_utc", &expires_at.to_string())?;
            }
            Answer::BasicHeader {
                username,
                token,
                expires_at,
            } => {
                if username.contains(':') {
                    return Err(Error::Input(
                        "the username contains ':', which Basic authentication cannot carry".into(),
                    ));
                }
                let pair = Secret::new(format!("{username}:{token}"));
                let encoded = Secret::new(crate::encoding::base64(pair.expose().as_bytes()));
                write_item(&mut buf, "capability[]", "authtype")?;
                write_item(&mut buf, "authtype", "Basic")?;
                write_item(&mut buf, "credential", encoded.expose())?;
                write_item(&mut buf, "ephemeral", "1")?;
                write_item(&mut buf, "password_expiry_utc", &expires_at.to_string())?;
            }
            Answer::Basic {
                username,
                token,
                expires_at,
            } => {
                write_item(&mut buf, "username", username)?;
                write_item(&mut buf, "password", token)?;
                write_item(&mut buf, "password_expiry_utc", &expires_at.to_string())?;
            }
        }
        out.write_all(buf.as_bytes())
            .and_then(|_| out.flush())
            .map_err(Error::Output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEN: &str = "capability[]=authtype\ncapability[]=state\nprotocol=http\nhost=127.0.0.1:18765\n\
wwwauth[]=Bearer realm=\"example\", error=\"invalid_token\"\nwwwauth[]=Basic realm=\"git\"\n\n";

    #[test]
    fn parses_what_git_2_47_sends() {
        let r = Request::parse(SEEN).unwrap();
        assert_eq!(r.protocol.as_deref(), Some("http"));
        assert_eq!(r.host.as_deref(), Some("127.0.0.1:18765"));
        assert_eq!(r.capabilities, ["authtype", "state"]);
        assert_eq!(r.wwwauth.len(), 2);
        assert_eq!(r.challenge_schemes(), ["bearer", "basic"]);
        assert!(r.has_capability("authtype"));
        assert_eq!(
            r.url().map(String::from).as_deref(),
            Some("http://127.0.0.1:18765/")
        );
    }

    #[test]
    fn splits_at_first_equals() {
        let r = Request::parse("password=abc==\n").unwrap();
        assert_eq!(r.password.unwrap().expose(), "abc==");
    }

    #[test]
    fn empty_array_value_resets() {
        let r = Request::parse("wwwauth[]=Basic a\nwwwauth[]=\nwwwauth[]=Bearer b\n").unwrap();
        assert_eq!(r.wwwauth, ["Bearer b"]);
    }

    #[test]
    fn unknown_keys_ignored_and_block_ends_at_blank_line() {
        let r = Request::parse("future_key=1\nstate[]=x\nhost=a\n\nhost=b\n").unwrap();
        assert_eq!(r.host.as_deref(), Some("a"));
    }

    #[test]
    fn eof_without_newline() {
        let r = Request::parse("protocol=https\nhost=example.org").unwrap();
        assert_eq!(r.host.as_deref(), Some("example.org"));
    }

    #[test]
    fn url_sets_fields() {
        let r = Request::parse("url=https://bob@git.example.org:8443/group/repo.git\n").unwrap();
        assert_eq!(r.protocol.as_deref(), Some("https"));
        assert_eq!(r.host.as_deref(), Some("git.example.org:8443"));
        assert_eq!(r.path.as_deref(), Some("group/repo.git"));
        assert_eq!(r.username.as_deref(), Some("bob"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "no-equals-here\n",
            "host=a\rb\n",
            "host=a\0b\n",
            "url=nonsense\n",
            "url=://host/path\n",
        ] {
            let e = Request::parse(bad).unwrap_err();
            assert!(matches!(e, Error::Input(_)), "{bad:?}");
            assert!(!e.to_string().contains('\n'));
        }
        let e = Request::read_from(&mut &b"host=\xff\xfe\n"[..]).unwrap_err();
        assert!(e.to_string().contains("UTF-8"));
    }

    #[test]
    fn rejects_oversized() {
        let long = format!("host={}\n", "a".repeat(MAX_LINE));
        assert!(
            Request::parse(&long)
                .unwrap_err()
                .to_string()
                .contains("longer")
        );
        let many = "wwwauth[]=Basic realm=\"x\"\n".repeat(60_000);
        assert!(
            Request::parse(&many)
                .unwrap_err()
                .to_string()
                .contains("larger")
        );
        let ok = "wwwauth[]=Basic realm=\"x\"\n".repeat(10_000);
        assert_eq!(Request::parse(&ok).unwrap().wwwauth.len(), 10_000);
    }

    #[test]
    fn basic_header_form_is_ephemeral_and_erase_reads_it_back() {
        let mut out = Vec::new();
        Answer::BasicHeader {
            username: "oauth2",
            token: "T0K",
            expires_at: 1700000000,
        }
        .write_to(&mut out)
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            format!(
                "capability[]=authtype\nauthtype=Basic\ncredential={}\nephemeral=1\n\
                 password_expiry_utc=1700000000\n",
                crate::encoding::base64(b"oauth2:T0K")
            )
        );
        assert!(
            !text.contains("password="),
            "no password for storage helpers"
        );
        let req = Request::parse(&format!("{text}protocol=https\nhost=h\n")).unwrap();
        assert_eq!(req.presented_token().unwrap().expose(), "T0K");
        let bad = Answer::BasicHeader {
            username: "a:b",
            token: "T",
            expires_at: 0,
        };
        assert!(bad.write_to(&mut Vec::new()).is_err());
    }

    #[test]
    fn request_url_is_parsed_not_sliced() {
        let r =
            Request::parse("protocol=http\nhost=git.example.net\npath=x://127.0.0.1/repo.git\n")
                .unwrap();
        let u = r.url().unwrap();
        assert_eq!(u.host_str(), Some("git.example.net"));
        assert!(!crate::trust::safe_transport(&u));
        let r = Request::parse("protocol=HTTP\nhost=git.example.net\n").unwrap();
        assert!(!crate::trust::safe_transport(&r.url().unwrap()));
        assert!(
            Request::parse("protocol=smtp\nhost=mail\n")
                .unwrap()
                .url()
                .is_none()
        );
        assert!(
            Request::parse("protocol=https\nhost=a@b\n")
                .unwrap()
                .url()
                .is_none()
        );
    }

    #[test]
    fn writes_bearer_and_basic_exactly() {
        let mut out = Vec::new();
        Answer::Bearer {
            token: "T0K",
            expires_at: 1700000000,
        }
        .write_to(&mut out)
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "capability[]=authtype\nauthtype=Bearer\ncredential=T0K\nephemeral=1\npassword_expiry_utc=1700000000\n"
        );
        let mut out = Vec::new();
        Answer::Basic {
            username: "oauth2",
            token: "T0K",
            expires_at: 5,
        }
        .write_to(&mut out)
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "username=oauth2\npassword=T0K\npassword_expiry_utc=5\n"
        );
    }

    #[test]
    fn refuses_injected_token() {
        let mut out = Vec::new();
        let e = Answer::Bearer {
            token: "a\nquit=1",
            expires_at: 1,
        }
        .write_to(&mut out);
        assert!(e.is_err());
        assert!(out.is_empty());
    }

    fn full_request() -> Request {
        Request {
            protocol: Some("https".into()),
            host: Some("git.example.org:8443".into()),
            path: Some("group/repo.git".into()),
            username: Some("bob".into()),
            password: Some(Secret::new("p=w d".into())),
            authtype: Some("Bearer".into()),
            credential: Some(Secret::new("T0K".into())),
            oauth_refresh_token: Some(Secret::new("RT".into())),
            password_expiry_utc: Some("1700000000".into()),
            wwwauth: vec!["Bearer realm=\"a\"".into(), "Basic realm=\"b\"".into()],
            capabilities: vec!["authtype".into(), "state".into()],
        }
    }

    fn written(r: &Request) -> Result<String> {
        let mut out = Vec::new();
        let res = r.write_to(&mut out);
        if res.is_err() {
            assert!(out.is_empty(), "a refused request writes nothing");
        }
        res.map(|()| String::from_utf8(out).unwrap())
    }

    #[test]
    fn writes_request_in_gits_order() {
        assert_eq!(
            written(&full_request()).unwrap(),
            "capability[]=authtype\ncapability[]=state\nauthtype=Bearer\ncredential=T0K\n\
             protocol=https\nhost=git.example.org:8443\npath=group/repo.git\nusername=bob\n\
             password=p=w d\noauth_refresh_token=RT\npassword_expiry_utc=1700000000\n\
             wwwauth[]=Bearer realm=\"a\"\nwwwauth[]=Basic realm=\"b\"\n\n"
        );
        assert_eq!(written(&Request::default()).unwrap(), "\n");
    }

    #[test]
    fn write_then_parse_is_identity() {
        for r in [
            full_request(),
            Request::default(),
            Request::parse(SEEN).unwrap(),
        ] {
            assert_eq!(Request::parse(&written(&r).unwrap()).unwrap(), r);
        }
        // And parse then write gives back what git sent, in git's order.
        let seen = Request::parse(SEEN).unwrap();
        let again = written(&seen).unwrap();
        assert_eq!(written(&Request::parse(&again).unwrap()).unwrap(), again);
    }

    #[test]
    fn write_refuses_what_would_not_read_back() {
        type Set = fn(&mut Request, &str);
        let fields: [(&str, Set); 11] = [
            ("protocol", |r, v| r.protocol = Some(v.into())),
            ("host", |r, v| r.host = Some(v.into())),
            ("path", |r, v| r.path = Some(v.into())),
            ("username", |r, v| r.username = Some(v.into())),
            ("password", |r, v| r.password = Some(Secret::new(v.into()))),
            ("authtype", |r, v| r.authtype = Some(v.into())),
            ("credential", |r, v| {
                r.credential = Some(Secret::new(v.into()))
            }),
            ("oauth_refresh_token", |r, v| {
                r.oauth_refresh_token = Some(Secret::new(v.into()))
            }),
            ("password_expiry_utc", |r, v| {
                r.password_expiry_utc = Some(v.into())
            }),
            ("wwwauth[]", |r, v| r.wwwauth.push(v.into())),
            ("capability[]", |r, v| r.capabilities.push(v.into())),
        ];
        let long = "x".repeat(MAX_LINE);
        for (key, set) in fields {
            for bad in ["a\nquit=1", "a\rb", "a\0b", "\n", "", long.as_str()] {
                let mut r = full_request();
                set(&mut r, bad);
                let e = written(&r).unwrap_err();
                let msg = e.to_string();
                assert!(matches!(e, Error::Input(_)), "{key} {bad:?}: {msg}");
                assert!(msg.contains(key), "{msg}");
                assert!(!msg.contains('\n') && !msg.contains("quit"), "{msg}");
            }
            // The longest value that still fits on one line is written and reads back.
            let mut r = Request::default();
            set(&mut r, &"y".repeat(MAX_LINE - key.len() - 1));
            assert_eq!(Request::parse(&written(&r).unwrap()).unwrap(), r, "{key}");
        }
        let r = Request {
            wwwauth: vec!["z".repeat(60_000); 20],
            ..Request::default()
        };
        let e = written(&r).unwrap_err();
        assert!(e.to_string().contains("larger"), "{e}");
    }

    #[test]
    fn round_trips_what_it_reads() {
        let mut out = Vec::new();
        Answer::Basic {
            username: "u",
            token: "p=q",
            expires_at: 9,
        }
        .write_to(&mut out)
        .unwrap();
        let r = Request::parse(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(r.username.as_deref(), Some("u"));
        assert_eq!(r.password.unwrap().expose(), "p=q");
        assert_eq!(r.password_expiry_utc.as_deref(), Some("9"));
    }
}
