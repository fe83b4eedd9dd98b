//! The one HTTP agent: connect and overall timeouts, the system trust store plus `--ca-file`
//! (and `SSL_CERT_FILE`), proxies from the usual environment variables, a User-Agent with the
//! version, and 4xx bodies kept (OAuth errors live there). Built only off the hot path.

use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

use crate::encoding::{base64, form_urlencode};
use crate::error::{Error, Result};
use crate::secret::{Secret, redact};

/// System CA bundles, first found wins (Debian, Fedora, openSUSE, Alpine/macOS).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Largest response body we read (a discovery document is a few KB).
const MAX_BODY: u64 = 1 << 20;

/// Longest request timeout handed to the HTTP agent.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// An HTTP response: status and body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Client credentials for the token endpoints.
pub struct ClientAuth {
    pub client_id: String,
    pub secret: Option<Secret<String>>,
}

impl ClientAuth {
    /// Whether RFC 6749 §2.3.1's form-encoding changes the id or the secret (a `+`, `/`, `=`,
    /// `%` or space in it): only then can a provider that does not decode Basic credentials
    /// refuse the encoded form.
    pub fn encoding_matters(&self) -> bool {
        let changed = |s: &str| form_urlencode(s) != s;
        self.secret.is_some()
            && (changed(&self.client_id)
                || self.secret.as_ref().is_some_and(|s| changed(s.expose())))
    }
}

/// How a confidential client presents its secret. RFC 6749 §2.3.1 says HTTP Basic with the id
/// and the secret each form-encoded first ([`AuthMethod::Basic`]); some providers (glewlwyd) do
/// not decode them, so a secret with `+ / =` only works sent as it is ([`AuthMethod::BasicRaw`])
/// or in the form ([`AuthMethod::Post`], `client_secret_post`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Basic,
    BasicRaw,
    Post,
}

/// A failed request: the error, and whether the request surely never reached the server (the
/// host is unknown or refused/unreachable at connect time, never a timeout), so that sending it
/// again elsewhere cannot redeem anything twice.
pub struct Failure {
    pub error: Error,
    pub unreachable: bool,
}

/// The agent and its settings.
pub struct Http {
    agent: ureq::Agent,
    timeout: Duration,
}

impl Http {
    /// Builds the agent. `ca_file` adds trusted roots to the system's (`system`, the
    /// `SSL_CERT_FILE` the settings name, else the usual bundles). The trust store is read only
    /// when `tls` is set (an https issuer): a loopback http issuer needs none.
    pub fn new(
        timeout: Duration,
        ca_file: Option<&std::path::Path>,
        system: Option<&std::path::Path>,
        tls: bool,
    ) -> Result<Http> {
        // ureq adds the timeout to an `Instant`, which panics on overflow: never hand it more
        // than a day, whatever the settings say.
        let timeout = timeout.min(MAX_TIMEOUT);
        let roots = if tls {
            load_roots(ca_file, system)?
        } else {
            RootCerts::WebPki
        };
        let mut builder = ureq::Agent::config_builder();
        if !tls {
            // A loopback http issuer is reached directly: through an environment proxy
            // (`HTTP_PROXY`, `ALL_PROXY`) its refresh token and client secret would leave the
            // machine in clear.
            builder = builder.proxy(None);
        }
        let config = builder
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
            .max_redirects(0)
            .user_agent(concat!("git-credential-iam/", env!("CARGO_PKG_VERSION")))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build();
        Ok(Http {
            agent: config.into(),
            timeout,
        })
    }

    /// GET `url`, expecting JSON.
    pub fn get(&self, url: &str) -> Result<Reply> {
        let resp = self
            .agent
            .get(url)
            .header("Accept", "application/json")
            .call()
            .map_err(|e| self.http_error(url, e))?;
        self.read(url, resp)
    }

    /// POST a form to `url` with client authentication: for a confidential client the secret
    /// is presented as `method` (HTTP Basic with id and secret each form-urlencoded before
    /// base64, as RFC 6749 §2.3.1 says, or a variant); for a public one `client_id` goes in the
    /// form. The failure tells a request that never reached the server from other failures.
    pub fn try_post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        auth: &ClientAuth,
        method: AuthMethod,
    ) -> std::result::Result<Reply, Failure> {
        let mut body = String::new();
        let mut add = |k: &str, v: &str| {
            if !body.is_empty() {
                body.push('&');
            }
            body.push_str(k);
            body.push('=');
            body.push_str(&form_urlencode(v));
        };
        for (k, v) in form {
            add(k, v);
        }
        let mut req = self
            .agent
            .post(url)
            .header("Accept", "application/json")
            .header("Content-Type", "application/x-www-form-urlencoded");
        match (&auth.secret, method) {
            (Some(secret), AuthMethod::Post) => {
                add("client_id", &auth.client_id);
                add("client_secret", secret.expose());
            }
            (Some(secret), basic) => {
                let pair = if basic == AuthMethod::BasicRaw {
                    format!("{}:{}", auth.client_id, secret.expose())
                } else {
                    format!(
                        "{}:{}",
                        form_urlencode(&auth.client_id),
                        form_urlencode(secret.expose())
                    )
                };
                req = req.header(
                    "Authorization",
                    format!("Basic {}", base64(pair.as_bytes())),
                );
            }
            (None, _) => add("client_id", &auth.client_id),
        }
        let resp = req.send(body.as_bytes()).map_err(|e| Failure {
            unreachable: never_sent(&e),
            error: self.http_error(url, e),
        })?;
        self.read(url, resp).map_err(|error| Failure {
            error,
            unreachable: false,
        })
    }

    /// POST a JSON document to `url` (dynamic client registration).
    pub fn post_json(&self, url: &str, body: &serde_json::Value) -> Result<Reply> {
        let resp = self
            .agent
            .post(url)
            .header("Accept", "application/json")
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .map_err(|e| self.http_error(url, e))?;
        self.read(url, resp)
    }

    fn read(&self, url: &str, mut resp: ureq::http::Response<ureq::Body>) -> Result<Reply> {
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| self.http_error(url, e))?;
        Ok(Reply { status, body })
    }

    fn http_error(&self, url: &str, e: ureq::Error) -> Error {
        let message = match e {
            ureq::Error::Timeout(_) => {
                format!("no answer within {} s (--timeout)", self.timeout.as_secs())
            }
            ureq::Error::BodyExceedsLimit(_) => "the answer is larger than 1 MiB".into(),
            ureq::Error::Io(ref io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused".into()
            }
            ref other if is_tls_failure(other) => {
                format!("{other} (TLS; if the provider uses a private CA, pass --ca-file FILE)")
            }
            other => other.to_string(),
        };
        Error::Http {
            host: crate::trust::host_of(url),
            message,
        }
    }
}

/// Whether `e` is a failed TLS handshake (an unknown issuer, a name mismatch, an expired
/// certificate), told by the error's type: rustls's error reaches ureq inside an I/O error.
fn is_tls_failure(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => true,
        ureq::Error::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.is::<rustls::Error>()),
        _ => false,
    }
}

/// Whether `e` happened before the request could reach the server: no such host, or the
/// connection refused or unreachable. Timeouts and resets are not: the server may have acted.
fn never_sent(e: &ureq::Error) -> bool {
    use std::io::ErrorKind::{
        AddrNotAvailable, ConnectionRefused, HostUnreachable, NetworkUnreachable,
    };
    match e {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
        ureq::Error::Io(io) => matches!(
            io.kind(),
            ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable
        ),
        _ => false,
    }
}

/// Parses an OAuth error body (`error`, `error_description`), redacting `sent_secrets`. In
/// `src/provider`, use `Client::provider_error`, which adds the client secret.
pub fn oauth_error(url: &str, reply: &Reply, sent_secrets: &[&str]) -> Error {
    #[derive(serde::Deserialize)]
    struct OAuthErr {
        error: String,
        error_description: Option<String>,
    }
    let host = crate::trust::host_of(url);
    match serde_json::from_slice::<OAuthErr>(&reply.body) {
        Ok(e) => Error::OAuth {
            host,
            status: reply.status,
            error: redacted(&e.error, sent_secrets, 80),
            description: e
                .error_description
                .map(|d| redacted(&d, sent_secrets, 300))
                .filter(|d| !d.is_empty()),
        },
        Err(_) => Error::Provider {
            host,
            message: format!(
                "HTTP {} with a body that is not an OAuth error ({})",
                reply.status,
                describe_body(&reply.body)
            ),
        },
    }
}

/// Provider text made safe to print: control characters removed FIRST (so a secret split by
/// one is still found), then the secrets redacted, then the length capped (a cut can no longer
/// leave part of a secret behind).
fn redacted(text: &str, secrets: &[&str], max: usize) -> String {
    let printable: String = text.chars().filter(|c| !c.is_control()).collect();
    crate::encoding::clean(&redact(&printable, secrets), max)
}

/// A short, printable description of a body we could not use.
pub fn describe_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let t = text.trim_start();
    if t.is_empty() {
        "empty".into()
    } else if t.starts_with('<') {
        "an HTML page".into()
    } else {
        format!("{} bytes", body.len())
    }
}

fn load_roots(
    ca_file: Option<&std::path::Path>,
    ssl_cert_file: Option<&std::path::Path>,
) -> Result<RootCerts> {
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    let system = ssl_cert_file
        .map(std::path::Path::to_path_buf)
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(std::path::PathBuf::from))
        .find(|p| p.is_file());
    if let Some(p) = system
        && let Ok(pem) = std::fs::read(&p)
    {
        certs.extend(parse_certs(&pem));
    }
    if let Some(p) = ca_file {
        let pem = std::fs::read(p).map_err(|e| Error::io("cannot read --ca-file", p, e))?;
        let extra: Vec<_> = parse_certs(&pem).collect();
        if extra.is_empty() {
            return Err(Error::Usage(format!(
                "--ca-file {} holds no PEM certificate",
                p.display()
            )));
        }
        certs.extend(extra);
    }
    Ok(if certs.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::Specific(Arc::new(certs))
    })
}

fn parse_certs(pem: &[u8]) -> impl Iterator<Item = Certificate<'static>> + '_ {
    ureq::tls::parse_pem(pem).filter_map(|item| match item {
        Ok(PemItem::Certificate(c)) => Some(c),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_error_is_redacted() {
        let reply = Reply {
            status: 401,
            body: br#"{"error":"invalid_token","error_description":"Refresh token for value SECRET-RT was not found"}"#.to_vec(),
        };
        let e = oauth_error("https://iam.example/token", &reply, &["SECRET-RT"]);
        let msg = e.to_string();
        assert!(!msg.contains("SECRET-RT"), "{msg}");
        assert!(
            msg.contains("iam.example") && msg.contains("invalid_token"),
            "{msg}"
        );
        assert!(e.is_login_gone());
    }

    #[test]
    fn an_absurd_timeout_does_not_overflow() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
        });
        let http = Http::new(Duration::MAX, None, None, false).unwrap();
        let reply = http.get(&url).unwrap();
        assert_eq!((reply.status, reply.body.as_slice()), (200, &b"{}"[..]));
        server.join().unwrap();
    }

    #[test]
    fn a_secret_split_by_control_characters_is_still_redacted() {
        let reply = Reply {
            status: 400,
            body: br#"{"error":"bad","error_description":"secret SEC\u0007RET-VALUE, tail"}"#
                .to_vec(),
        };
        let msg = oauth_error("https://iam.example/token", &reply, &["SECRET-VALUE"]).to_string();
        assert!(
            !msg.contains("SECRET-VALUE") && !msg.contains("SEC"),
            "{msg}"
        );
        assert!(msg.contains("[redacted], tail"), "{msg}");
        // A long description is cut after redaction: no prefix of a secret is left behind.
        let long = format!(
            r#"{{"error":"bad","error_description":"{}SECRET-VALUE"}}"#,
            "x".repeat(295)
        );
        let reply = Reply {
            status: 400,
            body: long.into_bytes(),
        };
        let msg = oauth_error("https://iam.example/token", &reply, &["SECRET-VALUE"]).to_string();
        assert!(!msg.contains("SECRE"), "{msg}");
    }

    #[test]
    fn html_error_page_described() {
        let reply = Reply {
            status: 502,
            body: b"<html>Bad gateway</html>".to_vec(),
        };
        let msg = oauth_error("https://iam.example/token", &reply, &[]).to_string();
        assert!(msg.contains("HTML page") && msg.contains("502"), "{msg}");
    }
}
