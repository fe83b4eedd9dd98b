//! Plain HTTP (and https to a private CA) from the tests: forms, JSON, client authentication.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// Bound on one HTTP request made by this module.
pub(super) const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// An agent that returns every status (no error for a 4xx) and gives up after
/// [`HTTP_TIMEOUT`], trusting the system's roots, or only the certificates of the PEM file `ca`.
fn agent(ca: Option<&Path>) -> ureq::Agent {
    use ureq::tls::{PemItem, RootCerts, TlsConfig};
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(HTTP_TIMEOUT));
    if let Some(ca) = ca {
        let pem = fs::read(ca).unwrap_or_else(|e| panic!("read {}: {e}", ca.display()));
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(PemItem::Certificate(c)) => Some(c),
                _ => None,
            })
            .collect();
        assert!(!certs.is_empty(), "no certificate in {}", ca.display());
        config = config.tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(&certs))
                .build(),
        );
    }
    config.build().new_agent()
}

/// The status and the JSON body (`Null` when empty) of an answer to `what`; panics on a
/// transport error or a non-JSON body.
fn json_answer(
    what: &str,
    answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> (u16, Value) {
    let mut res = answer.unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = res.status().as_u16();
    let text = res
        .body_mut()
        .read_to_string()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what} answered {status} with non-JSON {text:?}: {e}"))
    };
    (status, value)
}

fn post_form_with(
    agent: ureq::Agent,
    url: &str,
    authorization: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = agent.post(url);
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    json_answer(&format!("POST {url}"), req.send_form(form.iter().copied()))
}

fn get_json_with(agent: ureq::Agent, url: &str) -> Value {
    let (status, body) = json_answer(&format!("GET {url}"), agent.get(url).call());
    assert_eq!(status, 200, "GET {url} answered {status}: {body}");
    body
}

/// POST an `application/x-www-form-urlencoded` form; `authorization` is a whole header value
/// (e.g. from [`basic_auth`]). Returns the status and the JSON body (`Null` when empty).
/// Panics on a transport error or a non-JSON body.
pub fn post_form(url: &str, authorization: Option<&str>, form: &[(&str, &str)]) -> (u16, Value) {
    post_form_with(agent(None), url, authorization, form)
}

/// [`post_form`] to an https URL whose certificate `ca` signs.
pub fn post_form_trusting(
    ca: &Path,
    url: &str,
    authorization: Option<&str>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    post_form_with(agent(Some(ca)), url, authorization, form)
}

/// POST a JSON body. Returns the status and the JSON answer.
pub fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let answer = agent(None)
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string());
    json_answer(&format!("POST {url}"), answer)
}

/// GET a JSON document, asserting status 200.
pub fn get_json(url: &str) -> Value {
    get_json_with(agent(None), url)
}

/// [`get_json`] from an https URL whose certificate `ca` signs.
pub fn get_json_trusting(ca: &Path, url: &str) -> Value {
    get_json_with(agent(Some(ca)), url)
}

/// `application/x-www-form-urlencoded` encoding of one value (space as `+`).
pub fn form_urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Basic …` header value for client authentication as RFC 6749 2.3.1 wants it: id and secret
/// each form-urlencoded, joined by `:`, then base64.
pub fn basic_auth(client_id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", form_urlencode(client_id), form_urlencode(secret));
    format!("Basic {}", base64(pair.as_bytes()))
}
