//! A scripted provider on a loopback socket, for answers the real provider never gives.

use std::io::{BufRead, BufReader, Read, Write};
use std::thread;

use serde_json::Value;

use super::http::HTTP_TIMEOUT;

/// A minimal provider on 127.0.0.1 for `register` tests that need a registration response the
/// real provider never gives: it serves a discovery document (issuer `http://127.0.0.1:PORT`,
/// with a `registration_endpoint`) and answers every `POST /reg` with 201 and `reply`. It runs
/// until the test process ends.
pub struct RegistrationStub {
    issuer: String,
    registrations: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl RegistrationStub {
    /// Starts the stub.
    pub fn start(reply: Value) -> RegistrationStub {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let registrations = Arc::new(AtomicUsize::new(0));
        let (iss, count) = (issuer.clone(), registrations.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(HTTP_TIMEOUT));
                let Some((line, _body)) = read_http_request(&stream) else {
                    continue;
                };
                let (status, body) = if line.starts_with("GET /.well-known/openid-configuration ") {
                    let d = serde_json::json!({
                        "issuer": iss,
                        "token_endpoint": format!("{iss}/token"),
                        "registration_endpoint": format!("{iss}/reg"),
                    });
                    ("200 OK", d.to_string())
                } else if line.starts_with("POST /reg ") {
                    count.fetch_add(1, Ordering::SeqCst);
                    ("201 Created", reply.to_string())
                } else {
                    ("404 Not Found", "{}".to_string())
                };
                let mut s = stream;
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        RegistrationStub {
            issuer,
            registrations,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// `127.0.0.1:PORT`, the host the helper names in its messages.
    pub fn host(&self) -> &str {
        self.issuer.trim_start_matches("http://")
    }

    /// How many registration requests arrived.
    pub fn registrations(&self) -> usize {
        self.registrations.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Reads one HTTP/1.1 request (head, then a `Content-Length` body): its request line and body.
fn read_http_request(stream: &std::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    r.read_exact(&mut body).ok()?;
    Some((line.trim_end().to_string(), body))
}
