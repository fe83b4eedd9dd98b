//! Git servers: the token-checking smart-HTTP server (`tests/idp/git-server.js`) and a hostile
//! one that logs every `Authorization` header (`tests/idp/log-server.js`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::http::get_json;
use super::node::NodeChild;
use super::provider::{Idp, RS_CLIENT, RS_SECRET};

/// How the [`GitServer`] wants the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitAuth {
    /// `Authorization: Bearer TOKEN`; challenge `WWW-Authenticate: Bearer realm="git"`.
    Bearer,
    /// `Authorization: Basic base64(ANY_USER:TOKEN)`; challenge `Basic realm="git"`.
    Basic,
}

/// A running token-checking git smart-HTTP server over a temp dir holding `repo.git` (one
/// commit on `main`, file `README`); killed on drop.
pub struct GitServer {
    node: NodeChild,
    url: String,
    root: tempfile::TempDir,
}

/// Run git with a clean environment (no system/global config), panicking on failure.
pub(super) fn git_plain(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("LANG", "C")
        .output()
        .unwrap_or_else(|e| panic!("cannot run git: {e}"));
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Creates the bare repository `bare` (branch `main`) with one commit holding `README` with
/// `readme` in it, made in a scratch clone beside it that is removed again.
pub(super) fn seed_bare_repo(bare: &Path, readme: &str) {
    let parent = bare.parent().expect("a parent directory");
    let work = parent.join("seed");
    fs::create_dir(&work).expect("mkdir seed");
    git_plain(
        parent,
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    git_plain(&work, &["init", "-q", "-b", "main"]);
    fs::write(work.join("README"), readme).expect("write README");
    git_plain(&work, &["add", "README"]);
    git_plain(
        &work,
        &[
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.org",
            "commit",
            "-q",
            "-m",
            "initial",
        ],
    );
    git_plain(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    fs::remove_dir_all(&work).expect("rm seed");
}

impl GitServer {
    /// Create the repository and start the server checking tokens against `idp`.
    pub fn start(idp: &Idp, mode: GitAuth) -> GitServer {
        let root = tempfile::Builder::new()
            .prefix("gci-git-")
            .tempdir()
            .expect("tempdir");
        let bare = root.path().join("repo.git");
        seed_bare_repo(&bare, "hello from the test git server\n");

        let mode_arg = match mode {
            GitAuth::Bearer => "bearer",
            GitAuth::Basic => "basic",
        };
        let args: Vec<String> = [
            "--root",
            root.path().to_str().unwrap(),
            "--issuer",
            idp.issuer(),
            "--mode",
            mode_arg,
            "--introspect-client",
            RS_CLIENT,
            "--introspect-secret",
            RS_SECRET,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (node, ready) = NodeChild::spawn("git-server.js", &args);
        let url = ready["url"]
            .as_str()
            .expect("ready line has url")
            .to_string();
        GitServer { node, url, root }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `http://127.0.0.1:PORT/repo.git`, the URL to clone.
    pub fn repo_url(&self) -> String {
        format!("{}/repo.git", self.url)
    }

    /// Path of the bare repository on disk.
    pub fn repo_path(&self) -> PathBuf {
        self.root.path().join("repo.git")
    }

    /// `git rev-parse REV` in the bare repository (e.g. to check that a push arrived).
    pub fn rev_parse(&self, rev: &str) -> String {
        git_plain(&self.repo_path(), &["rev-parse", rev])
    }

    /// `{"requests":N,"unauthorized":N,"authorized":N,"basic_users":{"USER":N}}`.
    pub fn counters(&self) -> Value {
        get_json(&format!("{}/__counters", self.url))
    }

    /// What the server wrote on stderr so far (includes http-backend's stderr).
    pub fn log(&self) -> String {
        self.node.log_text()
    }
}

/// A hostile git server (`tests/idp/log-server.js`): 401 with Basic and Bearer challenges to
/// every request, and a log of every `Authorization` header it was sent.
pub struct LogServer {
    _node: NodeChild,
    url: String,
}

impl LogServer {
    pub fn start() -> LogServer {
        let (node, ready) = NodeChild::spawn("log-server.js", &[]);
        let url = ready["url"]
            .as_str()
            .expect("ready line has url")
            .to_string();
        LogServer { _node: node, url }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// (requests seen, the `Authorization` headers sent, "-" for none).
    pub fn log(&self) -> (u64, Vec<String>) {
        let v = get_json(&format!("{}/__log", self.url));
        let auth = v["authorization"]
            .as_array()
            .expect("authorization list")
            .iter()
            .map(|a| a.as_str().unwrap_or_default().to_string())
            .collect();
        (v["requests"].as_u64().unwrap_or_default(), auth)
    }
}
