//! One login shared by several machines through a network file system (issue 13), emulated on
//! one machine: the cache directory mounted twice with `bindfs` (FUSE; `flock` through one
//! mount does not exclude one through the other, while an exclusive create is atomic across
//! both, as on NFS with `local_lock` or AFS), and the processes of each mount under their own
//! host name (`unshare -u`). Against the test provider, which rotates refresh tokens and
//! revokes the whole grant when a rotated one is reused, 16 + 16 concurrent `get`s on an expired
//! token must make exactly one refresh and keep the login. Also: a lock left by a dead holder on
//! another machine is broken after `--lock-timeout`; a live local holder's never is; `status`
//! names the lock mode. The two-machine tests need root, bindfs and /dev/fuse, and say so when
//! they skip; the lock-file tests force `--lock-mode create` and run anywhere.

use crate::support;

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use crate::support::{Account, Idp, PUBLIC_CLIENT, REQUEST, TwoMounts, iam};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);
const SCOPE: &str = "openid offline_access";

/// A test home and one account of the test provider, cached in `cache_dir`.
struct Shared {
    acct: Account,
    issuer: String,
}

impl Shared {
    fn new(idp: &Idp) -> Shared {
        Shared {
            acct: Account::new(idp.issuer(), PUBLIC_CLIENT, &[]),
            issuer: idp.issuer().to_string(),
        }
    }

    fn home(&self) -> &Path {
        self.acct.home()
    }

    /// The helper with this account's options and its cache in `cache_dir`.
    fn cmd(&self, cache_dir: &Path, extra: &[&str], action: &str) -> Command {
        let dir = cache_dir.to_str().expect("a UTF-8 path");
        self.acct.cmd(
            &[&["--cache-dir", dir, "--non-interactive"], extra].concat(),
            action,
        )
    }

    /// A login in `cache_dir` (a device flow approved by the test user, then `import`), with
    /// its access token made expired.
    fn seed_expired(&self, idp: &Idp, cache_dir: &Path) {
        let tok = idp.device_flow_token(PUBLIC_CLIENT, SCOPE);
        let rt = tok["refresh_token"].as_str().expect("a refresh token");
        let out = support::run_with_input(self.cmd(cache_dir, &[], "import"), rt, T);
        assert!(out.status.success(), "import: {}", text(&out));
        let file = self.cache_file(cache_dir);
        let mut v: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        v["expires_at"] = 1000.into();
        fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    }

    fn key(&self) -> String {
        iam::cache::account_key(&self.issuer, PUBLIC_CLIENT, SCOPE, None)
    }

    fn cache_file(&self, cache_dir: &Path) -> PathBuf {
        cache_dir.join(format!("{}.json", self.key()))
    }

    fn owner_file(&self, cache_dir: &Path) -> PathBuf {
        cache_dir.join(format!("{}.lock.owner", self.key()))
    }
}

use support::output_text as text;

/// The `password=` of a `get` answer.
fn password(out: &Output) -> Option<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("password=").map(str::to_string))
}

/// The cache directory (mode 0700) under `dir`.
fn cache_dir_in(dir: &Path) -> PathBuf {
    let d = dir.join("cache");
    fs::create_dir_all(&d).unwrap();
    fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    d
}

/// What the two mounts must show, checked before relying on it: a flock through one does not
/// exclude a flock through the other (so flock alone would let both "machines" refresh), and
/// an exclusive create through one does exclude one through the other.
fn assert_two_machines(m: &TwoMounts) {
    let open = |p: &Path| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(p)
            .unwrap()
    };
    let a = open(&m.a.join("premise.lock"));
    let b = open(&m.b.join("premise.lock"));
    let a2 = open(&m.a.join("premise.lock"));
    a.try_lock().unwrap();
    assert!(
        b.try_lock().is_ok(),
        "flock through mount B is excluded by one through mount A: bindfs shares flock here, \
         the test would prove nothing"
    );
    assert!(a2.try_lock().is_err(), "flock excludes within one mount");
    let excl = |p: &Path| {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(p)
    };
    let _first: File = excl(&m.a.join("premise.owner")).unwrap();
    let second = excl(&m.b.join("premise.owner")).unwrap_err();
    assert_eq!(second.kind(), std::io::ErrorKind::AlreadyExists);
    drop((a, b, a2));
    fs::remove_file(m.under.join("premise.lock")).unwrap();
    fs::remove_file(m.under.join("premise.owner")).unwrap();
}

/// Runs `cmds` at once, each with `input`, each bounded by `T`; their outputs in order.
fn run_all(cmds: Vec<Command>, input: &str) -> Vec<Output> {
    let threads: Vec<_> = cmds
        .into_iter()
        .map(|c| {
            let input = input.to_string();
            std::thread::spawn(move || support::run_with_input(c, &input, T))
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn thirty_two_gets_on_two_machines_make_one_refresh() {
    if !support::needs_bindfs("thirty_two_gets_on_two_machines_make_one_refresh") {
        return;
    }
    let mounts = TwoMounts::new();
    assert_two_machines(&mounts);
    let idp = Idp::start();
    let acct = Shared::new(&idp);
    let under = cache_dir_in(&mounts.under);
    let (dir_a, dir_b) = (mounts.a.join("cache"), mounts.b.join("cache"));
    acct.seed_expired(&idp, &under);
    idp.reset_counters();

    let mut cmds = Vec::new();
    for _ in 0..16 {
        cmds.push(support::on_host(&acct.cmd(&dir_a, &[], "get"), "nodea"));
        cmds.push(support::on_host(&acct.cmd(&dir_b, &[], "get"), "nodeb"));
    }
    let started = Instant::now();
    let outs = run_all(cmds, REQUEST);
    let took = started.elapsed();

    let refreshes = idp.token_requests("refresh_token");
    let answered: Vec<String> = outs.iter().filter_map(password).collect();
    let failures: Vec<String> = outs
        .iter()
        .filter(|o| !o.status.success() || password(o).is_none())
        .map(text)
        .collect();
    assert_eq!(
        (refreshes, answered.len()),
        (1, 32),
        "exactly one refresh for 32 gets on two machines, every get answered ({took:?}); \
         failures:\n{}",
        failures.join("\n---\n")
    );
    assert!(
        answered.iter().all(|t| t == &answered[0]),
        "all answer the one refreshed token"
    );
    assert!(idp.introspect(&answered[0]), "the token is active");
    // No lock file left behind, no corrupt copy moved aside; the cache file parses.
    let names: Vec<String> = fs::read_dir(&under)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains(".owner") || n.contains("corrupt")),
        "{names:?}"
    );
    let cached: Value = serde_json::from_slice(&fs::read(acct.cache_file(&under)).unwrap())
        .expect("the cache file parses");
    assert!(cached["refresh_token"].is_string(), "{names:?}");
    // The login is alive: a further refresh (forced by a long --min-lifetime) works.
    let out = support::run_with_input(
        acct.cmd(&dir_b, &["--min-lifetime", "999999"], "token"),
        "",
        T,
    );
    assert!(out.status.success(), "the login survived: {}", text(&out));
    assert_eq!(idp.token_requests("refresh_token"), 2);
    eprintln!("32 gets on two machines: {took:?}");

    // `status` names the lock mode: exclusive create on the mount, flock on the local disk.
    let status = |dir: &Path, extra: &[&str]| {
        let out = support::run_with_input(acct.cmd(dir, extra, "status"), "", T);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let s = status(&dir_a, &[]);
    assert!(
        s.contains("lock: exclusive create (fuse: flock may not reach other machines)"),
        "{s}"
    );
    let s = status(&dir_a, &["--lock-mode", "flock"]);
    assert!(
        s.contains("lock: flock (forced by lock-mode; fuse: flock may not reach other machines)"),
        "{s}"
    );
    assert!(
        status(&under, &[]).contains("lock: flock (local file system)"),
        "{s}"
    );
}

/// An owner file as the helper writes it (see src/store/lock/holder.rs), planted with an old mtime.
fn plant_owner(path: &Path, host: &str, pid: u32, start: Option<u64>, boot: &str, pidns: &str) {
    let mut text = format!("git-credential-iam lock\nhost {host}\npid {pid}\n");
    if let Some(s) = start {
        text.push_str(&format!("start {s}\n"));
    }
    text.push_str(&format!(
        "boot {boot}\npidns {pidns}\nnonce planted\nbeat 0000000007\n"
    ));
    fs::write(path, text).unwrap();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(old)
        .unwrap();
}

fn this_host() -> String {
    let out = Command::new("hostname").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn read_trimmed(p: &str) -> String {
    fs::read_to_string(p).unwrap().trim().to_string()
}

/// A lock left on the shared cache by a process of another machine that died: a waiter whose
/// file system may be shared (forced here by the environment variable) breaks it once it has
/// not changed for --lock-timeout, then refreshes.
#[test]
fn a_dead_holders_lock_from_another_machine_is_broken_after_the_timeout() {
    let idp = Idp::start();
    let acct = Shared::new(&idp);
    let dir = cache_dir_in(acct.home());
    acct.seed_expired(&idp, &dir);
    let owner = acct.owner_file(&dir);
    plant_owner(&owner, "nodeb", 4242, Some(77), "another-boot", "pid:[1]");
    idp.reset_counters();
    let mut cmd = acct.cmd(&dir, &["--lock-timeout", "2"], "get");
    cmd.env("GIT_CREDENTIAL_IAM_LOCK_MODE", "create");
    let started = Instant::now();
    let out = support::run_with_input(cmd, REQUEST, T);
    let took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    assert!(password(&out).is_some(), "{}", text(&out));
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "broken after the 2 s of silence, not before and not much later: {took:?}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("waiting for another git-credential-iam process (pid 4242) on nodeb"),
        "{err}"
    );
    assert_eq!(idp.token_requests("refresh_token"), 1);
    assert!(!owner.exists(), "the lock is gone with its new holder");
    let left: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("owner"))
        .collect();
    assert!(left.is_empty(), "nothing left aside: {left:?}");
}

/// A lock held by a live process of this machine is never broken, however old its file: the
/// waiter says whom it waits for, and gives up after --lock-timeout naming it.
#[test]
fn a_live_local_holders_lock_is_never_broken() {
    let idp = Idp::start();
    let acct = Shared::new(&idp);
    let dir = cache_dir_in(acct.home());
    acct.seed_expired(&idp, &dir);
    let owner = acct.owner_file(&dir);
    // This test process, as the helper would record it.
    let stat = read_trimmed("/proc/self/stat");
    let start: u64 = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let pidns = fs::read_link("/proc/self/ns/pid").unwrap();
    let host = this_host();
    let me = std::process::id();
    plant_owner(
        &owner,
        &host,
        me,
        Some(start),
        &read_trimmed("/proc/sys/kernel/random/boot_id"),
        &pidns.to_string_lossy(),
    );
    let planted = fs::read(&owner).unwrap();
    idp.reset_counters();
    let started = Instant::now();
    let out = support::run_with_input(
        acct.cmd(
            &dir,
            &["--lock-timeout", "2", "--lock-mode", "create"],
            "get",
        ),
        REQUEST,
        T,
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    let holder = format!("another git-credential-iam process (pid {me}) on {host}");
    assert!(
        err.contains(&format!("waiting for {holder}")),
        "the wait names the holder: {err}"
    );
    assert!(
        err.contains(&format!("gave up after 2 s waiting for {holder}")),
        "the timeout names the holder: {err}"
    );
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(
        fs::read(&owner).unwrap(),
        planted,
        "the live lock is left alone"
    );
    assert_eq!(idp.token_requests("refresh_token"), 0);
}
