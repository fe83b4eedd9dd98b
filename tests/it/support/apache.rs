//! A throwaway CA, and Apache httpd with mod_auth_openidc running `contrib/server/`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::git_server::{git_plain, seed_bare_repo};
use super::node::READY_TIMEOUT;

/// A throwaway CA (`ca.pem`) and a server certificate for 127.0.0.1 and `localhost` signed by
/// it (`srv.pem`, key `srv.key`), made with the `openssl` command in a directory of the caller's.
pub struct TestCa {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn openssl_in(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl TestCa {
    /// The test provider's arguments to serve https with this CA's server certificate.
    pub fn provider_args(&self) -> Vec<String> {
        let path = |p: &Path| p.to_str().expect("a UTF-8 path").to_string();
        vec![
            "--tls-key".into(),
            path(&self.key),
            "--tls-cert".into(),
            path(&self.cert),
        ]
    }
}

/// Makes a [`TestCa`] in `dir` (valid two days, EC P-256).
pub fn make_test_ca(dir: &Path) -> TestCa {
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    let args = |s: String| s.split(' ').map(str::to_string).collect::<Vec<_>>();
    let run = |v: Vec<String>, extra: &[&str]| {
        let mut all: Vec<&str> = v.iter().map(String::as_str).collect();
        all.extend(extra);
        openssl_in(dir, &all);
    };
    run(
        args(format!(
            "req -x509 {ec} -keyout ca.key -out ca.pem -subj /CN=test-ca -days 2"
        )),
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    run(
        args(format!(
            "req {ec} -keyout srv.key -out srv.csr -subj /CN=127.0.0.1"
        )),
        &[],
    );
    fs::write(
        dir.join("srv.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("write srv.ext");
    run(
        args(
            "x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 \
             -extfile srv.ext"
                .to_string(),
        ),
        &[],
    );
    TestCa {
        ca: dir.join("ca.pem"),
        cert: dir.join("srv.pem"),
        key: dir.join("srv.key"),
    }
}

/// Where Apache httpd and mod_auth_openidc are installed.
pub struct ApacheInstall {
    /// `apache2` (Debian) or `httpd`.
    pub binary: PathBuf,
    /// The directory holding `mod_auth_openidc.so` and the standard modules.
    pub modules: PathBuf,
}

/// Finds Apache httpd and mod_auth_openidc (Debian's `apache2` and
/// `libapache2-mod-auth-openidc`, or a layout with `httpd`). When either is missing it prints
/// `TEST: skipped: needs apache2 and libapache2-mod-auth-openidc` straight to stderr, past the
/// harness's capture, and returns `None`: `.ci/run` installs both, so CI never skips.
pub fn needs_apache(test: &str) -> Option<ApacheInstall> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    let binary = dirs
        .flat_map(|d| [d.join("apache2"), d.join("httpd")])
        .find(|p| p.is_file());
    let modules = [
        "/usr/lib/apache2/modules",
        "/usr/lib64/httpd/modules",
        "/usr/lib/httpd/modules",
    ]
    .map(PathBuf::from)
    .into_iter()
    .find(|d| d.join("mod_auth_openidc.so").is_file());
    match (binary, modules) {
        (Some(binary), Some(modules)) => Some(ApacheInstall { binary, modules }),
        _ => {
            super::skip(
                test,
                "needs apache2 and libapache2-mod-auth-openidc \
                 (apt-get install apache2 libapache2-mod-auth-openidc; .ci/run does)",
            );
            None
        }
    }
}

/// What [`Apache::start`] puts into `contrib/server/git-iam.conf`'s placeholders.
pub struct ApacheSite<'a> {
    pub introspection_endpoint: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    /// CA bundle (PEM) for the provider's certificate; copied next to the config.
    pub ca_bundle: &'a Path,
    pub audience: &'a str,
}

/// One request in Apache's `git_iam` access log (contrib/server/git-iam.conf's LogFormat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLine {
    /// `%u`: REMOTE_USER, `-` when none.
    pub user: String,
    /// `%r`: `GET /git/repo.git/info/refs?service=git-upload-pack HTTP/1.1`.
    pub request: String,
    pub status: u16,
    /// The `Authorization` scheme that came in (`Bearer`, `Basic`), `-` when none.
    pub scheme: String,
}

/// Apache httpd running `contrib/server/httpd.conf` + `git-iam.conf` (rendered with the same
/// `@PLACEHOLDER@` substitution a site does) on 127.0.0.1 in the foreground, with its own
/// ServerRoot, pid file and logs in a temp dir, in front of `repos/repo.git` (one commit on
/// `main`, like [`GitServer`]'s). As root it serves as `www-data` (or `nobody`), which then owns
/// the repositories. It runs under a `sh` that stops it (SIGTERM) when its stdin closes: on drop,
/// or when the test process dies.
pub struct Apache {
    watchdog: Child,
    stdin: Option<ChildStdin>,
    root: tempfile::TempDir,
    port: u16,
}

/// The path under which [`Apache`] serves the repositories.
pub const APACHE_URL_PATH: &str = "/git";

/// (uid, gid) of the first of `names` in /etc/passwd.
fn passwd_ids(names: &[&str]) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    names.iter().find_map(|name| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == *name)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
        })
    })
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    if path.is_dir() && !path.is_symlink() {
        for e in fs::read_dir(path).expect("read_dir") {
            chown_tree(&e.expect("dir entry").path(), uid, gid);
        }
    }
}

impl Apache {
    /// Renders the configuration, checks it (`-t`) and starts Apache; returns once its port
    /// answers (bounded), panicking with its error log otherwise.
    pub fn start(install: &ApacheInstall, site: &ApacheSite) -> Apache {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let root = tempfile::Builder::new()
            .prefix("gci-apache-")
            .tempdir()
            .expect("tempdir");
        let dir = root.path();
        let repos = dir.join("repos");
        fs::create_dir(&repos).expect("mkdir repos");
        let bare = repos.join("repo.git");
        seed_bare_repo(&bare, "hello from Apache\n");
        let ca_bundle = dir.join("provider-ca.pem");
        fs::copy(site.ca_bundle, &ca_bundle).expect("copy the CA bundle");

        // As root Apache serves as another user, who must reach the CA bundle (read at each
        // introspection) and own the repositories (a push writes them).
        // SAFETY: geteuid/getegid have no preconditions and cannot fail.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let (uid, gid) = if euid == 0 {
            let ids = passwd_ids(&["www-data", "nobody"])
                .expect("running as root, Apache needs a user www-data or nobody");
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod");
            fs::set_permissions(&ca_bundle, fs::Permissions::from_mode(0o644)).expect("chmod");
            chown_tree(&repos, ids.0, ids.1);
            ids
        } else {
            (euid, egid)
        };

        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
            l.local_addr().unwrap().port()
        };
        let exec_path = git_plain(dir, &["--exec-path"]);
        let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/server");
        let vars: Vec<(&str, String)> = vec![
            ("SERVER_ROOT", dir.display().to_string()),
            ("LISTEN", format!("127.0.0.1:{port}")),
            ("USER", format!("#{uid}")),
            ("GROUP", format!("#{gid}")),
            ("MODULES", install.modules.display().to_string()),
            ("INTROSPECTION_ENDPOINT", site.introspection_endpoint.into()),
            ("CLIENT_ID", site.client_id.into()),
            ("CLIENT_SECRET", site.client_secret.into()),
            ("CA_BUNDLE", ca_bundle.display().to_string()),
            ("AUDIENCE", site.audience.into()),
            (
                "GIT_HTTP_BACKEND",
                Path::new(&exec_path)
                    .join("git-http-backend")
                    .display()
                    .to_string(),
            ),
            ("REPO_ROOT", repos.display().to_string()),
            ("URL_PATH", APACHE_URL_PATH.into()),
        ];
        for name in ["httpd.conf", "git-iam.conf"] {
            let template = fs::read_to_string(contrib.join(name))
                .unwrap_or_else(|e| panic!("read contrib/server/{name}: {e}"));
            let text = render_template(&template, &vars);
            fs::write(dir.join(name), text).expect("write the rendered config");
        }
        let conf = dir.join("httpd.conf");

        let check = Command::new(&install.binary)
            .arg("-t")
            .arg("-f")
            .arg(&conf)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", install.binary.display()));
        assert!(
            check.status.success(),
            "apache -t refuses the rendered contrib/server config:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );

        let out = File::create(dir.join("apache.out")).expect("create apache.out");
        let mut watchdog = Command::new("sh")
            .args([
                "-c",
                "\"$0\" -f \"$1\" -D FOREGROUND & pid=$!; cat >/dev/null; kill -TERM $pid; wait $pid",
            ])
            .arg(&install.binary)
            .arg(&conf)
            .stdin(Stdio::piped())
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("cannot run sh");
        let stdin = watchdog.stdin.take();
        let mut me = Apache {
            watchdog,
            stdin,
            root,
            port,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            || !me.root.path().join("httpd.pid").exists()
        {
            assert!(
                Instant::now() < deadline && me.watchdog.try_wait().ok().flatten().is_none(),
                "Apache did not come up on port {port}; its logs:\n{}",
                me.logs()
            );
            thread::sleep(Duration::from_millis(20));
        }
        me
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT/git/repo.git`.
    pub fn repo_url(&self) -> String {
        format!("{}{APACHE_URL_PATH}/repo.git", self.url())
    }

    /// `git rev-parse REV` in the served bare repository (owned by Apache's user as root).
    pub fn rev_parse(&self, rev: &str) -> String {
        let repo = self.root.path().join("repos/repo.git");
        git_plain(&repo, &["-c", "safe.directory=*", "rev-parse", rev])
    }

    /// Every request in the access log so far.
    pub fn access_log(&self) -> Vec<AccessLine> {
        let text =
            fs::read_to_string(self.root.path().join("git-iam-access.log")).unwrap_or_default();
        text.lines()
            .map(|l| parse_access_line(l).unwrap_or_else(|| panic!("odd access line {l:?}")))
            .collect()
    }

    /// The error log and what Apache printed.
    pub fn logs(&self) -> String {
        let read = |n: &str| fs::read_to_string(self.root.path().join(n)).unwrap_or_default();
        format!(
            "-- error.log --\n{}\n-- stdout/stderr --\n{}",
            read("error.log"),
            read("apache.out")
        )
    }
}

/// `LogFormat "%h %u %t \"%r\" %>s %b auth=%{GIT_IAM_AUTH_SCHEME}e"`.
fn parse_access_line(line: &str) -> Option<AccessLine> {
    let mut words = line.splitn(3, ' ');
    let _host = words.next()?;
    let user = words.next()?.to_string();
    let rest = words.next()?;
    let (_, rest) = rest.split_once("] \"")?;
    let (request, rest) = rest.rsplit_once("\" ")?;
    let f: Vec<&str> = rest.split(' ').collect();
    Some(AccessLine {
        user,
        request: request.to_string(),
        status: f.first()?.parse().ok()?,
        scheme: f.get(2)?.strip_prefix("auth=")?.to_string(),
    })
}

/// Replaces every `@NAME@` of `vars` in `template`; panics when a placeholder is left over
/// outside comments (a template and its renderer out of step).
pub fn render_template(template: &str, vars: &[(&str, String)]) -> String {
    let mut text = template.to_string();
    for (k, v) in vars {
        text = text.replace(&format!("@{k}@"), v);
    }
    for l in text.lines() {
        let l = l.trim_start();
        assert!(
            l.starts_with('#') || !l.contains('@'),
            "placeholder left in {l:?}"
        );
    }
    text
}

impl Drop for Apache {
    fn drop(&mut self) {
        drop(self.stdin.take()); // the watchdog stops Apache and waits for it
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.watchdog.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill has no memory preconditions; the group is the watchdog's own.
        unsafe { libc::kill(-(self.watchdog.id() as i32), libc::SIGKILL) };
        let _ = self.watchdog.wait();
        if thread::panicking() {
            eprintln!("---- Apache ----\n{}", self.logs());
        }
    }
}
