//! One account of the helper in a test home of its own: the fixture most tests start from.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use serde_json::Value;

use super::process::{account_cache_files, helper_cmd, run_with_input, spawn_with_input};

/// The request git sends for `https://git.example.org/...` (a host every test command ties to
/// its account through `GIT_CREDENTIAL_IAM_URL`, see [`super::TIED_URL`]).
pub const REQUEST: &str = "protocol=https\nhost=git.example.org\n\n";

/// Bound on one run of the helper through [`Account::run`].
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// A test home (HOME and the XDG directories of [`helper_cmd`]) and the helper's options for
/// one account: `--issuer`, `--client-id` and whatever more the test gives. Each test makes its
/// own, so tests sharing a provider never share a cache.
pub struct Account {
    home: tempfile::TempDir,
    args: Vec<String>,
}

impl Account {
    /// `--issuer ISSUER --client-id CLIENT EXTRA…` in a fresh home.
    pub fn new(issuer: &str, client: &str, extra: &[&str]) -> Account {
        let mut args = vec![
            "--issuer".to_string(),
            issuer.to_string(),
            "--client-id".to_string(),
            client.to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Account {
            home: tempfile::tempdir().expect("a temp home"),
            args,
        }
    }

    /// The test home.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Adds options for every later command (e.g. a secret file made in [`Account::home`]).
    pub fn add_args(&mut self, more: &[&str]) {
        self.args.extend(more.iter().map(|s| s.to_string()));
    }

    /// The helper with the account's options, then `args` as they are.
    pub fn cmd_args(&self, args: &[&str]) -> Command {
        let mut c = helper_cmd(self.home.path());
        c.args(&self.args).args(args);
        c
    }

    /// The helper with the account's options, then `extra`, then `action`.
    pub fn cmd(&self, extra: &[&str], action: &str) -> Command {
        let mut c = self.cmd_args(extra);
        c.arg(action);
        c
    }

    /// Runs [`Account::cmd`] with `input` on stdin (bounded: panics after 30 s).
    pub fn run(&self, extra: &[&str], action: &str, input: &str) -> Output {
        run_with_input(self.cmd(extra, action), input, RUN_TIMEOUT)
    }

    /// Spawns `get` with git's [`REQUEST`] on stdin, stdout and stderr piped.
    pub fn spawn_get(&self, extra: &[&str]) -> Child {
        spawn_with_input(&mut self.cmd(extra, "get"), REQUEST)
    }

    /// The default cache directory under the test home (XDG_STATE_HOME).
    pub fn cache_dir(&self) -> PathBuf {
        self.home.path().join(".local/state/git-credential-iam")
    }

    /// The account's cache file (the only `*.json` that is not a discovery document), if any.
    pub fn cached(&self) -> Option<PathBuf> {
        account_cache_files(&self.cache_dir()).pop()
    }

    /// The account's cache file; panics when there is none.
    pub fn cache_file(&self) -> PathBuf {
        self.cached().expect("a cache file")
    }

    /// The cache file, parsed (it always parses).
    pub fn cache(&self) -> Value {
        serde_json::from_slice(&fs::read(self.cache_file()).expect("read the cache file"))
            .expect("the cache always parses")
    }

    /// Rewrites the cache file through `f`.
    pub fn set_cache(&self, f: impl FnOnce(&mut Value)) {
        let mut v = self.cache();
        f(&mut v);
        fs::write(self.cache_file(), serde_json::to_vec(&v).unwrap()).expect("write the cache");
    }

    /// Makes the cached access token expired long ago.
    pub fn expire(&self) {
        self.set_cache(|v| v["expires_at"] = 1000.into());
    }
}
