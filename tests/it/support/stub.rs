//! The scripted provider: one fake HTTP server on a loopback socket for the answers a real
//! provider never gives on demand (faults, hangs, hostile bodies, odd registrations). Every
//! request is logged ([`Seen`]: when, method, path, `Authorization`, body) before the test's
//! `route` answers it ([`Reply`]). It runs until the test process ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::HTTP_TIMEOUT;

/// One request the scripted provider received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// The `Authorization` header's value, or empty.
    pub authorization: String,
    pub body: String,
}

/// How the scripted provider answers a request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Status, extra header lines (each ending in `\r\n`), body (served as JSON).
    Http(u16, &'static str, String),
    /// Accept the request and never answer (the connection closes after 30 s).
    Hang,
}

/// A scripted provider on `http://127.0.0.1:PORT` (see the module's documentation).
pub struct Scripted {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    /// Answers each request with `route(base_url, request)`: a status and a JSON body.
    pub fn start(route: impl Fn(&str, &Seen) -> (u16, String) + Send + 'static) -> Scripted {
        Scripted::start_with(move |base, req| {
            let (status, body) = route(base, req);
            Reply::Http(status, "", body)
        })
    }

    /// Answers each request with `route(base_url, request)`, which may add headers or hang.
    pub fn start_with(route: impl Fn(&str, &Seen) -> Reply + Send + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, base) = (seen.clone(), url.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(HTTP_TIMEOUT));
                let Some(req) = read_request(&stream) else {
                    continue;
                };
                log.lock().unwrap().push(req.clone());
                match route(&base, &req) {
                    Reply::Http(status, headers, body) => {
                        let mut s = stream;
                        let _ = write!(
                            s,
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{headers}\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Reply::Hang => {
                        thread::spawn(move || {
                            thread::sleep(Duration::from_secs(30));
                            drop(stream);
                        });
                    }
                }
            }
        });
        Scripted { url, seen }
    }

    /// `127.0.0.1:PORT`, the host the helper names in its messages.
    pub fn host(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The path of every request so far, in order.
    pub fn paths(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.path).collect()
    }
}

/// Reads one HTTP/1.1 request: the request line, the headers (`Content-Length` and
/// `Authorization` kept), then the body.
fn read_request(stream: &TcpStream) -> Option<Seen> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let at = Instant::now();
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("").to_string();
    let path = words.next().unwrap_or("").to_string();
    let (mut length, mut authorization) = (0usize, String::new());
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok()?;
            } else if k.eq_ignore_ascii_case("authorization") {
                authorization = v.trim().to_string();
            }
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    r.read_exact(&mut body).ok()?;
    Some(Seen {
        at,
        method,
        path,
        authorization,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A provider for `register` tests that need a registration response the real provider never
/// gives: discovery (issuer `http://127.0.0.1:PORT`, with a `registration_endpoint`), and 201
/// with `reply` to every `POST /reg`.
pub struct RegistrationStub {
    fake: Scripted,
}

impl RegistrationStub {
    /// Starts the stub.
    pub fn start(reply: Value) -> RegistrationStub {
        let fake =
            Scripted::start(
                move |iss, req| match (req.method.as_str(), req.path.as_str()) {
                    ("GET", "/.well-known/openid-configuration") => {
                        let d = serde_json::json!({
                            "issuer": iss,
                            "token_endpoint": format!("{iss}/token"),
                            "registration_endpoint": format!("{iss}/reg"),
                        });
                        (200, d.to_string())
                    }
                    ("POST", "/reg") => (201, reply.to_string()),
                    _ => (404, "{}".to_string()),
                },
            );
        RegistrationStub { fake }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.fake.url
    }

    /// `127.0.0.1:PORT`, the host the helper names in its messages.
    pub fn host(&self) -> &str {
        self.fake.host()
    }

    /// How many registration requests arrived.
    pub fn registrations(&self) -> usize {
        self.fake
            .seen()
            .iter()
            .filter(|s| s.method == "POST" && s.path == "/reg")
            .count()
    }
}
