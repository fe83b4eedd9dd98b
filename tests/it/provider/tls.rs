//! TLS: an https provider on loopback whose certificate comes from a private CA (made here with
//! the `openssl` command). Without that CA the helper refuses the connection with a clear
//! one-line error and leaves the cache alone; with `--ca-file` or `SSL_CERT_FILE` it trusts it
//! (in addition to the system store) and refreshes.

use crate::support;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::iam::cache::account_key;

const SERVER_JS: &str = r#"
const https = require('node:https');
const fs = require('node:fs');
const [key, cert] = process.argv.slice(1);
const srv = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
  const base = `https://127.0.0.1:${srv.address().port}`;
  res.setHeader('Content-Type', 'application/json');
  if (req.url === '/.well-known/openid-configuration') {
    res.end(JSON.stringify({ issuer: base, token_endpoint: `${base}/token` }));
  } else {
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ access_token: 'TLS-ACCESS', token_type: 'Bearer', expires_in: 3600 })));
  }
});
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
"#;

struct Server {
    child: Child,
    issuer: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fake https provider (any refresh token gets `TLS-ACCESS`, so one seeded login serves every
/// step below; the test provider would rotate it) with the certificate of `ca`.
fn start(ca: &support::TestCa) -> Server {
    let mut child = Command::new("node")
        .args(["-e", SERVER_JS])
        .arg(&ca.key)
        .arg(&ca.cert)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node");
    let stdout = child.stdout.take().unwrap();
    let port = support::wait_for_line(
        stdout,
        |l| l.trim().parse::<u16>().is_ok(),
        Duration::from_secs(30),
    );
    Server {
        child,
        issuer: format!("https://127.0.0.1:{}", port.trim()),
    }
}

fn seed(home: &Path, issuer: &str) -> std::path::PathBuf {
    let cache = home.join("cache");
    fs::create_dir_all(&cache).unwrap();
    let file = cache.join(format!(
        "{}.json",
        account_key(issuer, "cli", "openid offline_access", None)
    ));
    fs::write(
        &file,
        format!(r#"{{"version":1,"issuer":"{issuer}","client_id":"cli","scope":"openid offline_access","access_token":"OLD","expires_at":1000,"refresh_token":"RT-SECRET","updated_at":1}}"#),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o700)).unwrap();
    }
    file
}

fn get(home: &Path, issuer: &str, extra: &[&str], env: &[(&str, &Path)]) -> std::process::Output {
    let mut c = support::helper_cmd(home);
    c.args([
        "--issuer",
        issuer,
        "--client-id",
        "cli",
        "--non-interactive",
        "--timeout",
        "5",
        "--cache-dir",
    ])
    .arg(home.join("cache"))
    .args(extra)
    .arg("get");
    for (k, v) in env {
        c.env(k, v);
    }
    support::run_with_input(
        c,
        "protocol=https\nhost=git.example.org\n\n",
        Duration::from_secs(30),
    )
}

#[test]
fn private_ca_refused_until_trusted() {
    support::ensure_node_modules();
    let dir = tempfile::tempdir().unwrap();
    let test_ca = support::make_test_ca(dir.path());
    let server = start(&test_ca);
    let home = tempfile::tempdir().unwrap();
    let file = seed(home.path(), &server.issuer);
    let before = fs::read(&file).unwrap();

    let out = get(home.path(), &server.issuer, &[], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    eprintln!("without the CA: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("127.0.0.1")
            && err.to_lowercase().contains("certificate")
            && err.contains("--ca-file"),
        "{err}"
    );
    assert_eq!(fs::read(&file).unwrap(), before, "cache untouched");

    let ca = test_ca.ca.clone();
    let out = get(
        home.path(),
        &server.issuer,
        &["--ca-file", ca.to_str().unwrap()],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("password=TLS-ACCESS"));

    fs::write(&file, &before).unwrap();
    let out = get(home.path(), &server.issuer, &[], &[("SSL_CERT_FILE", &ca)]);
    assert!(
        out.status.success(),
        "SSL_CERT_FILE: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = dir.path().join("not-a-cert.pem");
    fs::write(&bad, "hello").unwrap();
    let out = get(
        home.path(),
        &server.issuer,
        &[
            "--min-lifetime",
            "999999",
            "--ca-file",
            bad.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no PEM certificate"));
}
