//! Where a token may go: the one place for URL rules. Every URL the helper meets (git's request,
//! each `urls` entry, the issuer, every discovery endpoint, the registration endpoint, the
//! verification URI) is parsed here by the WHATWG parser of the `url` crate, never sliced by
//! hand. A token travels only over https, or over http to a loopback host (127.0.0.0/8, ::1,
//! `localhost`), and git gets a token only for a request whose URL is tied to the account: it
//! matches one of the account's `urls` (scheme, host and port equal, the host compared without
//! case and without a trailing dot, the path a prefix on a `/` boundary).

use std::net::IpAddr;

use url::{Host, Url};

use crate::error::{Error, Result};

/// Longest URL text accepted from anywhere.
const MAX_URL: usize = 8192;

/// Parses `text` as an absolute http(s) URL. `what` names it in the error, which shows the
/// text only as [`shown`] does (never a user name, password, query or fragment).
pub fn parse(text: &str, what: &str) -> Result<Url> {
    let bad = |why: &str| Error::Usage(format!("the {what} {} {why}", shown(text)));
    if text.len() > MAX_URL {
        return Err(bad("is too long"));
    }
    let url = Url::parse(text).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad("is not an https:// URL"));
    }
    if url.host().is_none() {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("carries a user name or password; remove it"));
    }
    Ok(url)
}

/// Parses `text` and checks the transport: https, or http on a loopback host only.
pub fn checked(text: &str, what: &str) -> Result<Url> {
    let url = parse(text, what)?;
    if !safe_transport(&url) {
        return Err(Error::Usage(format!(
            "refusing plain http:// {what} {}: tokens would travel unencrypted; use https:// \
             (http is allowed only on loopback)",
            origin(&url)
        )));
    }
    Ok(url)
}

/// Whether a token may travel to `url`: https, or http to a loopback host.
pub fn safe_transport(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => is_loopback(url),
        _ => false,
    }
}

/// Whether the URL's host is 127.0.0.0/8, ::1 or `localhost`, decided on the parsed host.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => {
            let d = d.strip_suffix('.').unwrap_or(d);
            d.eq_ignore_ascii_case("localhost")
                || d.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

/// `scheme://host[:port]` of a URL, for messages (never a path, query or user info).
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// `host[:port]` of URL text, for messages; text that does not parse gives a placeholder.
pub fn host_of(text: &str) -> String {
    match Url::parse(text) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => "the provider".into(),
        },
        Err(_) => "the provider".into(),
    }
}

/// The URL git asks about, from the request's `protocol`, `host` and optional `path`. `None`
/// when these do not make one unambiguous http(s) URL: a protocol other than http or https, or
/// a host field holding anything but a host and port (a path, user info, a query, an escape),
/// so that the parsed authority is the whole of git's `host` and nothing else.
pub fn request_url(protocol: &str, host: &str, path: Option<&str>) -> Option<Url> {
    let scheme = protocol.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "https" | "http") {
        return None;
    }
    let odd = |c: char| {
        matches!(c, '/' | '\\' | '?' | '#' | '@' | '%') || c.is_whitespace() || c.is_control()
    };
    if host.is_empty() || host.len() > 1024 || host.chars().any(odd) {
        return None;
    }
    let path = path.unwrap_or("");
    if path.len() > MAX_URL || path.chars().any(char::is_control) {
        return None;
    }
    Url::parse(&format!("{scheme}://{host}/{path}")).ok()
}

/// One entry of an account's `urls`: a URL prefix (`https://git.example.org/group/`) or a bare
/// host with an optional port (`git.example.org`, `git.example.org:8443`), which stands for
/// that host over https (and over http too when the host is loopback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// `None` for a bare host.
    scheme: Option<String>,
    host: String,
    /// `None` for a bare host without a port: the request scheme's default port.
    port: Option<u16>,
    /// The path without a trailing slash; empty for the whole host.
    path: String,
}

impl Pattern {
    /// Parses a `urls` entry.
    pub fn parse(entry: &str) -> Result<Pattern> {
        let bare = !entry.contains("://");
        let text = if bare {
            format!("https://{entry}")
        } else {
            entry.to_string()
        };
        let url = parse(&text, "urls entry")?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(Error::Usage(format!(
                "the urls entry {} has a query or fragment; give a URL prefix",
                shown(entry)
            )));
        }
        if bare && url.path() != "/" {
            return Err(Error::Usage(format!(
                "the urls entry {} is neither a host nor a URL: write https://HOST/PATH",
                shown(entry)
            )));
        }
        Ok(Pattern {
            scheme: (!bare).then(|| url.scheme().to_string()),
            host: host_key(&url)?,
            port: if bare {
                url.port()
            } else {
                url.port_or_known_default()
            },
            path: url.path().trim_end_matches('/').to_string(),
        })
    }

    /// Whether this entry names `url`'s scheme, host and port (whatever the path).
    pub fn same_origin(&self, url: &Url) -> bool {
        if let Some(s) = &self.scheme
            && s != url.scheme()
        {
            return false;
        }
        host_key(url).is_ok_and(|h| h == self.host)
            && self.port.or_else(|| default_port(url.scheme())) == url.port_or_known_default()
    }

    /// How specifically this entry matches `url` (longer path = more specific), or `None`.
    pub fn matches(&self, url: &Url) -> Option<usize> {
        if !self.same_origin(url) {
            return None;
        }
        let path = url.path();
        let tied = self.path.is_empty()
            || path == self.path
            || path
                .strip_prefix(self.path.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        tied.then_some(self.path.len() + 1)
    }
}

/// The best match of `url` among `entries`: its specificity, or `None` when nothing matches.
/// Entries that do not parse never match.
pub fn best_match(entries: &[String], url: &Url) -> Option<usize> {
    entries
        .iter()
        .filter_map(|e| Pattern::parse(e).ok()?.matches(url))
        .max()
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    }
}

/// The host as compared: lower case (the parser's), one trailing dot dropped.
fn host_key(url: &Url) -> Result<String> {
    let h = url
        .host_str()
        .ok_or_else(|| Error::Usage("a URL has no host".into()))?;
    Ok(h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase())
}

/// URL text for a message: where it carries user info, a query or a fragment (a password, a
/// `?private_token=`), only its scheme, host, port and path, and a note of what was left out;
/// text that does not parse is quoted only without `@`, `?` or `#`. Otherwise as [`quote`].
pub fn shown(text: &str) -> String {
    match Url::parse(text) {
        Ok(u)
            if !u.username().is_empty()
                || u.password().is_some()
                || u.query().is_some()
                || u.fragment().is_some() =>
        {
            let mut bare = u.clone();
            bare.set_query(None);
            bare.set_fragment(None);
            let _ = bare.set_username("");
            let _ = bare.set_password(None);
            format!(
                "{} (its user info, query or fragment not shown)",
                quote(bare.as_str())
            )
        }
        Err(_) if text.contains(['@', '?', '#']) => "(not shown)".into(),
        _ => quote(text),
    }
}

/// Text from outside, quoted for a message only when it is short and printable.
pub fn quote(text: &str) -> String {
    if text.len() <= 200 && !text.chars().any(char::is_control) {
        format!("{text:?}")
    } else {
        "(not shown)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(proto: &str, host: &str, path: Option<&str>) -> Option<String> {
        request_url(proto, host, path).map(|u| u.to_string())
    }

    #[test]
    fn transport_is_decided_on_the_parsed_host() {
        for ok in [
            "https://iam.example/",
            "http://127.0.0.1:8080/",
            "http://127.1.2.3/",
            "http://localhost/",
            "http://LOCALHOST./x",
            "http://[::1]:80/",
        ] {
            assert!(checked(ok, "issuer").is_ok(), "{ok}");
        }
        for bad in [
            "http://iam.example/",
            "http://127.0.0.1.evil.example/",
            "http://iam.example.org/x://127.0.0.1/token",
            "http://localhost:1@iam.example.org/token",
            "http://localhost@iam.example.org/",
            "ftp://x/",
            "HTTP://iam.example/",
            "//127.0.0.1/",
            "https:///",
        ] {
            assert!(checked(bad, "issuer").is_err(), "{bad}");
        }
    }

    #[test]
    fn request_urls_are_exactly_what_git_named() {
        assert_eq!(
            req("https", "Git.Example.org", None).as_deref(),
            Some("https://git.example.org/")
        );
        assert_eq!(
            req("HTTP", "127.0.0.1:18765", Some("repo.git")).as_deref(),
            Some("http://127.0.0.1:18765/repo.git")
        );
        // useHttpPath with a path that looks like a URL: the host stays git's host.
        let u = request_url("http", "git.example.net", Some("x://127.0.0.1/repo.git")).unwrap();
        assert_eq!(u.host_str(), Some("git.example.net"));
        assert!(!safe_transport(&u));
        for (p, h) in [
            ("https", "git.example.net@evil.com"),
            ("https", "evil.com/git.example.net"),
            ("https", "evil.com\\x"),
            ("https", "evil.com#x"),
            ("https", "evil.com?x"),
            ("https", "host:notaport"),
            ("https", "host:99999"),
            ("https", ""),
            ("smtp", "git.example.net"),
            ("cert", "git.example.net"),
            ("https", "a b"),
        ] {
            assert_eq!(req(p, h, None), None, "{p}://{h}");
        }
        assert_eq!(
            req("https", "git.example.org:443", None).as_deref(),
            Some("https://git.example.org/")
        );
    }

    #[test]
    fn patterns_tie_scheme_host_port_and_path_boundary() {
        let u = |s: &str| Url::parse(s).unwrap();
        let p = Pattern::parse("https://gitlab.example.org/group/").unwrap();
        assert!(
            p.matches(&u("https://gitlab.example.org/group/x.git"))
                .is_some()
        );
        assert!(p.matches(&u("https://GITLAB.example.org./group")).is_some());
        assert!(
            p.matches(&u("https://gitlab.example.org:443/group/a"))
                .is_some()
        );
        assert!(
            p.matches(&u("https://gitlab.example.org/groupie/x"))
                .is_none()
        );
        assert!(p.matches(&u("https://gitlab.example.org/")).is_none());
        assert!(p.matches(&u("http://gitlab.example.org/group/x")).is_none());
        assert!(
            p.matches(&u("https://gitlab.example.org:8443/group/x"))
                .is_none()
        );
        assert!(
            p.matches(&u("https://gitlab.example.org.evil/group/x"))
                .is_none()
        );
        let h = Pattern::parse("git.example.net").unwrap();
        assert!(h.matches(&u("https://git.example.net/any/path")).is_some());
        assert!(h.matches(&u("https://git.example.net:8443/")).is_none());
        let hp = Pattern::parse("git.example.net:8443").unwrap();
        assert!(hp.matches(&u("https://git.example.net:8443/")).is_some());
        assert!(hp.matches(&u("https://git.example.net/")).is_none());
        let root = Pattern::parse("https://git.example.org").unwrap();
        assert!(root.matches(&u("https://git.example.org/a")).is_some());
        assert!(
            p.matches(&u("https://gitlab.example.org/group/x")).unwrap()
                > root.matches(&u("https://git.example.org/a")).unwrap()
        );
        for bad in ["https://x/?q", "x/y", "https://u:p@x/", "smtp://x/", ""] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn messages_never_echo_a_password_or_query_in_a_url() {
        for (text, what) in [
            ("https://oauth2:glpat-SECRET@git.example.org/", "urls entry"),
            ("https://SECRET@git.example.org/", "issuer"),
            ("ftp://u:SECRET@x/", "issuer"),
            (
                "https://git.example.org/?private_token=SECRET",
                "urls entry",
            ),
            ("https://git.example.org/#SECRET", "urls entry"),
            ("https://u:SECRET@/", "issuer"),
        ] {
            let e = if what == "urls entry" {
                Pattern::parse(text).unwrap_err()
            } else {
                parse(text, what).unwrap_err()
            };
            let e = e.to_string();
            assert!(!e.contains("SECRET"), "{text}: {e}");
        }
        let e = Pattern::parse("git.example.org/SECRET?private_token=SECRET")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("SECRET"), "{e}");
        let e = parse("https://u:p@git.example.org/x", "issuer")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"https://git.example.org/x\""), "{e}");
    }

    #[test]
    fn messages_never_echo_long_or_control_text() {
        let secret = format!("eyJ{}", "a".repeat(300));
        let e = parse(&secret, "issuer").unwrap_err().to_string();
        assert!(!e.contains("aaaaaaaa"), "{e}");
    }
}
