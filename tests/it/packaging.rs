//! The release build and the packages, built with the commands of contrib/packaging/README.md
//! and .github/workflows/release.yml:
//!
//! * the static-PIE release binary (`RUSTFLAGS="-C target-feature=+crt-static" cargo build
//!   --release --locked --target TRIPLE`) is static-PIE, runs, resolves `localhost` and speaks
//!   TLS (a sign-in import and a token from the test provider over https with a throwaway CA);
//! * the crate (`cargo package`) holds what it should, and `cargo install` from it works;
//! * the Debian package (`cargo deb --locked --no-build`) lists the expected files, and its
//!   binary runs once unpacked (`dpkg-deb -x`; nothing is installed on the machine);
//! * the RPM (`cargo generate-rpm`) lists the same files (`rpm -qlp`), and the `.spec` file
//!   installs those files too.
//!
//! Everything is built once, into `TARGET/packaging/` (TARGET is the directory of this test
//! build): the first build takes minutes, later runs are no-ops. A test whose tool is missing
//! (cargo-deb, cargo-generate-rpm, rpm) says `skipped: needs …` on stderr; `.ci/run` installs
//! them all.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::{ALICE, ALICE_PASSWORD, Idp, IdpOptions, PW_CLIENT, RS_CLIENT, RS_SECRET};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(60);

#[cfg(target_arch = "x86_64")]
const TRIPLE: &str = "x86_64-unknown-linux-gnu";
#[cfg(target_arch = "aarch64")]
const TRIPLE: &str = "aarch64-unknown-linux-gnu";

/// The RUSTFLAGS of the release builds.
const RELEASE_RUSTFLAGS: &str = "-C target-feature=+crt-static";

const VERSION_LINE: &str = concat!("git-credential-iam ", env!("CARGO_PKG_VERSION"), "\n");

/// Every file the packages install, relative to `/` (the man page as the Debian package has it).
const DEB_FILES: &[&str] = &[
    "usr/bin/git-credential-iam",
    "usr/share/man/man1/git-credential-iam.1.gz",
    "usr/share/bash-completion/completions/git-credential-iam",
    "usr/share/zsh/vendor-completions/_git-credential-iam",
    "usr/share/fish/vendor_completions.d/git-credential-iam.fish",
    "usr/share/doc/git-credential-iam/README.md",
    "usr/share/doc/git-credential-iam/copyright",
];

/// Every file the RPM installs (Fedora/EL places: zsh's site-functions, /usr/share/licenses).
const RPM_FILES: &[&str] = &[
    "/usr/bin/git-credential-iam",
    "/usr/share/man/man1/git-credential-iam.1",
    "/usr/share/bash-completion/completions/git-credential-iam",
    "/usr/share/zsh/site-functions/_git-credential-iam",
    "/usr/share/fish/vendor_completions.d/git-credential-iam.fish",
    "/usr/share/doc/git-credential-iam/README.md",
    "/usr/share/licenses/git-credential-iam/LICENSE",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `TARGET/packaging`, next to the debug build this test belongs to.
fn target_dir() -> PathBuf {
    let bin = support::helper_path();
    let profile_dir = bin.parent().expect("the binary's directory");
    profile_dir
        .parent()
        .expect("the target directory")
        .join("packaging")
}

use support::output_text as text;

/// `cargo ARGS` in the repository, building into [`target_dir`] with the release RUSTFLAGS
/// (and none inherited from the outer build).
fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root())
        .args(args)
        .env("CARGO_TARGET_DIR", target_dir())
        .env("RUSTFLAGS", RELEASE_RUSTFLAGS)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    cmd
}

fn run_ok(mut cmd: Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
    out
}

/// The static-PIE release binary, built once for all tests of this file.
fn static_binary() -> &'static Path {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let out = cargo(&["build", "--release", "--locked", "--target", TRIPLE])
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "the static-PIE release build failed: {}",
                text(&out)
            ));
        }
        Ok(target_dir().join(TRIPLE).join("release/git-credential-iam"))
    });
    match built {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// (ELF type, program header types) of a 64-bit little-endian ELF file.
fn elf_kind(bin: &Path) -> (u16, Vec<u32>) {
    let b = fs::read(bin).unwrap_or_else(|e| panic!("read {}: {e}", bin.display()));
    assert_eq!(
        &b[..6],
        b"\x7fELF\x02\x01",
        "{}: not ELF64 LE",
        bin.display()
    );
    let (phoff, phentsize, phnum) = (u64_at(&b, 32) as usize, u16_at(&b, 54), u16_at(&b, 56));
    let types = (0..phnum as usize)
        .map(|i| u32_at(&b, phoff + i * phentsize as usize))
        .collect();
    (u16_at(&b, 16), types)
}

const ET_DYN: u16 = 3;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;

#[test]
fn the_release_build_is_static_pie_and_runs() {
    let bin = static_binary();
    let (kind, segments) = elf_kind(bin);
    // Static-PIE: position-independent (ET_DYN, relocated by itself: PT_DYNAMIC) with no
    // program interpreter, so no dynamic loader and no shared library at all.
    assert_eq!(kind, ET_DYN, "not position-independent: {segments:?}");
    assert!(segments.contains(&PT_DYNAMIC), "{segments:?}");
    assert!(!segments.contains(&PT_INTERP), "has a dynamic loader");
    let home = tempfile::tempdir().unwrap();
    let out = run_ok({
        let mut c = support::cmd_for(bin, home.path());
        c.arg("--version");
        c
    });
    assert_eq!(String::from_utf8_lossy(&out.stdout), VERSION_LINE);
}

/// The FNV-1a hash that names the discovery cache file (src/store/files.rs)
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

/// glibc's getaddrinfo in a static binary: `files` and `dns` are built in (glibc 2.34+), other
/// NSS modules would be loaded with dlopen. Here the static helper reaches the test provider as
/// `https://localhost:PORT` (resolved through /etc/hosts) and checks its certificate against a
/// throwaway CA: first the discovery document (which names the provider's own issuer,
/// https://127.0.0.1:PORT, so the helper refuses it: proof it was fetched), then a refresh
/// token import whose token request goes to `https://localhost:PORT/token`.
#[test]
fn the_static_binary_resolves_localhost_and_speaks_tls() {
    let bin = static_binary();
    let certs = tempfile::tempdir().unwrap();
    let ca = support::make_test_ca(certs.path());
    let idp = Idp::start_with(IdpOptions {
        extra_args: ca.provider_args(),
        ..IdpOptions::default()
    });
    let issuer = idp.issuer().to_string();
    let by_ip = format!("https://127.0.0.1:{}", idp.port());
    assert_eq!(issuer, by_ip);
    let by_name = format!("https://localhost:{}", idp.port());
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("cache");
    let helper = |issuer: &str, args: &[&str], stdin: &str| {
        let mut c = support::cmd_for(bin, home.path());
        c.args([
            "--issuer",
            issuer,
            "--client-id",
            PW_CLIENT,
            "--timeout",
            "20",
        ])
        .arg("--cache-dir")
        .arg(&cache)
        .arg("--ca-file")
        .arg(&ca.ca)
        .args(args);
        support::run_with_input(c, stdin, T)
    };

    // 1. Discovery by name.
    let out = helper(&by_name, &["import"], "a-refresh-token\n");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("names issuer \"{by_ip}\"")),
        "the discovery document did not arrive by name: {err}"
    );

    // 2. The token endpoint by name: a discovery document in the cache whose endpoints name
    //    `localhost` (the helper checks issuer equality and https, not the endpoints' host).
    let mut doc =
        support::get_json_trusting(&ca.ca, &format!("{by_ip}/.well-known/openid-configuration"));
    for (k, v) in doc.as_object_mut().unwrap() {
        if k != "issuer"
            && let Some(s) = v.as_str()
        {
            *v = Value::String(s.replace(&by_ip, &by_name));
        }
    }
    assert!(
        doc["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with(&by_name)
    );
    fs::create_dir_all(&cache).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&cache, fs::Permissions::from_mode(0o700)).unwrap();
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let seeded = cache.join(format!("discovery-{:016x}.json", fnv1a(issuer.as_bytes())));
    fs::write(
        &seeded,
        json!({"fetched_at": now, "endpoints": doc}).to_string(),
    )
    .unwrap();

    let (status, tok) = support::post_form_trusting(
        &ca.ca,
        &format!("{by_ip}/token"),
        None,
        &[
            ("grant_type", "password"),
            ("client_id", PW_CLIENT),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
            ("scope", "openid offline_access"),
        ],
    );
    assert_eq!(status, 200, "{tok}");
    let refresh = tok["refresh_token"].as_str().expect("refresh_token");
    let out = helper(&issuer, &["import"], refresh);
    assert!(out.status.success(), "import: {}", text(&out));
    // The seeded document was used, not fetched again from the issuer (which would rewrite it
    // with 127.0.0.1 endpoints).
    let still: Value = serde_json::from_slice(&fs::read(&seeded).unwrap()).unwrap();
    assert!(
        still["endpoints"]["token_endpoint"]
            .as_str()
            .is_some_and(|e| e.starts_with(&by_name)),
        "{still}"
    );
    let out = helper(&issuer, &["--format", "raw", "token"], "");
    assert!(out.status.success(), "token: {}", text(&out));
    let access = String::from_utf8(out.stdout).unwrap();
    let (status, intro) = support::post_form_trusting(
        &ca.ca,
        &format!("{by_ip}/token/introspection"),
        Some(&support::basic_auth(RS_CLIENT, RS_SECRET)),
        &[("token", access.trim())],
    );
    assert_eq!(status, 200, "{intro}");
    assert_eq!(intro["active"], true, "{intro}");
}

#[test]
fn the_crate_packages_and_installs() {
    let out = run_ok(cargo(&[
        "package",
        "--locked",
        "--no-verify",
        "--allow-dirty",
    ]));
    let name = format!("git-credential-iam-{}", env!("CARGO_PKG_VERSION"));
    let crate_file = target_dir().join("package").join(format!("{name}.crate"));
    assert!(crate_file.is_file(), "{}", text(&out));
    let size = fs::metadata(&crate_file).unwrap().len();
    assert!(size < 400_000, "the crate is {size} bytes");
    let list = run_ok({
        let mut c = Command::new("tar");
        c.arg("tzf").arg(&crate_file);
        c
    });
    let list = String::from_utf8(list.stdout).unwrap();
    for want in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src/main.rs",
        "README.md",
        "LICENSE",
        "contrib/git-credential-iam.1",
        "contrib/completions/_git-credential-iam",
    ] {
        assert!(
            list.lines().any(|l| l == format!("{name}/{want}")),
            "{want} missing from the crate:\n{list}"
        );
    }
    for unwanted in [
        "/tests/",
        "node_modules",
        "/contrib/fuzz/",
        "/contrib/bench/",
        "/.ci/",
    ] {
        assert!(!list.contains(unwanted), "{unwanted} in the crate:\n{list}");
    }

    // `cargo install` of the unpacked crate, into a temporary root. It builds with the release
    // flags into the shared target directory, so only the crate itself is compiled (once: it is
    // unpacked in the same place each time, with the archive's times, and is a unit of its own).
    let unpacked = target_dir().join("crate");
    let _ = fs::remove_dir_all(&unpacked);
    fs::create_dir_all(&unpacked).unwrap();
    run_ok({
        let mut c = Command::new("tar");
        c.arg("xzf").arg(&crate_file).arg("-C").arg(&unpacked);
        c
    });
    let dir = tempfile::tempdir().unwrap();
    let install_root = dir.path().join("root");
    let mut install = cargo(&["install", "--locked", "--offline", "--target", TRIPLE]);
    // The crate's binary is a unit of its own (its dependencies are shared): with the same
    // settings the crate's build and the repository's have the same unit hash, and each would
    // compile the other's away (40 s each time). It is put in a target directory of its own,
    // over the shared build directory, so it never replaces the binary the packages take.
    install
        .env("CARGO_BUILD_BUILD_DIR", target_dir())
        .env("CARGO_TARGET_DIR", target_dir().join("crate-target"))
        .args([
            "--config",
            "profile.release.package.git-credential-iam.codegen-units=3",
        ])
        .arg("--path")
        .arg(unpacked.join(&name))
        .arg("--root")
        .arg(&install_root);
    run_ok(install);
    let home = tempfile::tempdir().unwrap();
    let out = run_ok({
        let mut c = support::cmd_for(&install_root.join("bin/git-credential-iam"), home.path());
        c.arg("--version");
        c
    });
    assert_eq!(String::from_utf8_lossy(&out.stdout), VERSION_LINE);
}

#[test]
fn the_debian_package_holds_the_files_and_runs() {
    let test = "the_debian_package_holds_the_files_and_runs";
    if !support::needs_tool(
        test,
        cargo(&["deb", "--version"]).env_remove("RUSTFLAGS"),
        "cargo-deb",
        "cargo install cargo-deb --locked; .ci/run does",
    ) || !support::needs_tool(
        test,
        Command::new("dpkg-deb").arg("--version"),
        "dpkg-deb",
        "Debian package dpkg",
    ) {
        return;
    }
    static_binary();
    let out_dir = tempfile::tempdir().unwrap();
    let mut deb = cargo(&["deb", "--locked", "--no-build", "--target", TRIPLE]);
    deb.arg("--output").arg(out_dir.path());
    run_ok(deb);
    let debs: Vec<PathBuf> = fs::read_dir(out_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    let deb = &debs[0];

    let listing = run_ok({
        let mut c = Command::new("dpkg-deb");
        c.arg("-c").arg(deb);
        c
    });
    let listing = String::from_utf8(listing.stdout).unwrap();
    // `-rw-r--r-- root/root 4095 2026-01-01 00:00 ./usr/share/...`: mode and path.
    let files: Vec<(&str, &str)> = listing
        .lines()
        .filter(|l| !l.starts_with('d'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0], f[f.len() - 1].trim_start_matches("./"))
        })
        .collect();
    let mut paths: Vec<&str> = files.iter().map(|f| f.1).collect();
    paths.sort();
    let mut want = DEB_FILES.to_vec();
    want.sort();
    assert_eq!(paths, want, "{listing}");
    for (mode, path) in &files {
        let exec = *path == "usr/bin/git-credential-iam";
        assert_eq!(
            *mode,
            if exec { "-rwxr-xr-x" } else { "-rw-r--r--" },
            "{path}"
        );
    }

    let unpacked = tempfile::tempdir().unwrap();
    run_ok({
        let mut c = Command::new("dpkg-deb");
        c.arg("-x").arg(deb).arg(unpacked.path());
        c
    });
    let home = tempfile::tempdir().unwrap();
    let out = run_ok({
        let mut c = support::cmd_for(
            &unpacked.path().join("usr/bin/git-credential-iam"),
            home.path(),
        );
        c.arg("--version");
        c
    });
    assert_eq!(String::from_utf8_lossy(&out.stdout), VERSION_LINE);
    let page = unpacked
        .path()
        .join("usr/share/man/man1/git-credential-iam.1.gz");
    let out = run_ok({
        let mut c = Command::new("gzip");
        c.arg("-dc").arg(&page);
        c
    });
    assert_eq!(
        out.stdout,
        fs::read(root().join("contrib/git-credential-iam.1")).unwrap(),
        "the man page"
    );
    let control = run_ok({
        let mut c = Command::new("dpkg-deb");
        c.arg("-f").arg(deb).arg("Package").arg("Version");
        c
    });
    assert_eq!(
        String::from_utf8_lossy(&control.stdout),
        format!(
            "Package: git-credential-iam\nVersion: {}-1\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn the_rpm_holds_the_same_files() {
    let test = "the_rpm_holds_the_same_files";
    if !support::needs_tool(
        test,
        cargo(&["generate-rpm", "--help"]).env_remove("RUSTFLAGS"),
        "cargo-generate-rpm",
        "cargo install cargo-generate-rpm --locked; .ci/run does",
    ) || !support::needs_tool(
        test,
        Command::new("rpm").arg("--version"),
        "rpm",
        "Debian package rpm; .ci/run installs it",
    ) {
        return;
    }
    static_binary();
    let out_dir = tempfile::tempdir().unwrap();
    let mut gen_rpm = cargo(&["generate-rpm", "--target", TRIPLE]);
    gen_rpm.arg("--output").arg(out_dir.path());
    run_ok(gen_rpm);
    let rpms: Vec<PathBuf> = fs::read_dir(out_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rpm"))
        .collect();
    assert_eq!(rpms.len(), 1, "{rpms:?}");
    let listing = run_ok({
        let mut c = Command::new("rpm");
        c.arg("-qlp").arg(&rpms[0]);
        c
    });
    let listing = String::from_utf8(listing.stdout).unwrap();
    let mut paths: Vec<&str> = listing.lines().collect();
    paths.sort();
    let mut want = RPM_FILES.to_vec();
    want.sort();
    assert_eq!(paths, want);
    let info = run_ok({
        let mut c = Command::new("rpm");
        c.args(["-qp", "--queryformat", "%{NAME} %{VERSION} %{LICENSE}\n"])
            .arg(&rpms[0]);
        c
    });
    assert_eq!(
        String::from_utf8_lossy(&info.stdout),
        format!(
            "git-credential-iam {} Apache-2.0\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// The `.spec` file (for sites that build with rpmbuild) installs the files the RPM holds (the
/// man page gzipped, as rpmbuild does), from the files this repository has, and builds with
/// the release command.
#[test]
fn the_spec_file_installs_the_same_files() {
    let spec = fs::read_to_string(root().join("contrib/packaging/git-credential-iam.spec"))
        .expect("contrib/packaging/git-credential-iam.spec");
    assert!(
        spec.contains(&format!("Version:        {}\n", env!("CARGO_PKG_VERSION"))),
        "the spec's Version is not the crate's"
    );
    assert!(
        spec.contains("cargo build --release --locked"),
        "the spec builds otherwise"
    );
    let files = spec
        .split("%files\n")
        .nth(1)
        .expect("a %files section")
        .split("\n%changelog")
        .next()
        .unwrap();
    let macros = [
        ("%{_bindir}", "/usr/bin"),
        ("%{_mandir}", "/usr/share/man"),
        ("%{_datadir}", "/usr/share"),
        ("%{name}", "git-credential-iam"),
    ];
    let mut listed: Vec<String> = Vec::new();
    for line in files.lines().filter(|l| !l.trim().is_empty()) {
        let mut words = line.split_whitespace();
        let (kind, path) = match (words.next(), words.next()) {
            (Some("%license"), Some(p)) => ("license", p),
            (Some("%doc"), Some(p)) => ("doc", p),
            (Some(p), None) => ("file", p),
            _ => panic!("unexpected %files line {line:?}"),
        };
        let mut path = path.to_string();
        for (m, v) in macros {
            path = path.replace(m, v);
        }
        assert!(!path.contains('%'), "unknown macro in {line:?}");
        listed.push(match kind {
            "license" => format!("/usr/share/licenses/git-credential-iam/{path}"),
            "doc" => format!("/usr/share/doc/git-credential-iam/{path}"),
            _ => path.replace(".1*", ".1"),
        });
        if kind != "file" {
            assert!(
                root().join(&path).is_file(),
                "{path} is not in the repository"
            );
        }
    }
    listed.sort();
    let mut want = RPM_FILES.to_vec();
    want.sort();
    assert_eq!(listed, want, "{files}");
}

/// The release workflow runs the commands these tests run, with the tool versions .ci/run
/// installs.
#[test]
fn the_release_workflow_builds_what_is_tested() {
    let read = |p: &str| fs::read_to_string(root().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let workflow = read(".github/workflows/release.yml");
    let ci = read(".ci/run");
    for command in [
        &format!("RUSTFLAGS: {RELEASE_RUSTFLAGS}"),
        "cargo build --release --locked --target \"$TARGET\"",
        "cargo deb --locked --no-build --target \"$TARGET\"",
        "cargo generate-rpm --target \"$TARGET\"",
        "cargo install --locked cargo-deb --version ",
        "cargo install --locked cargo-generate-rpm --version ",
    ] {
        assert!(workflow.contains(command), "release.yml lacks {command:?}");
    }
    for tool in ["cargo-deb", "cargo-generate-rpm"] {
        let pin = |text: &str| {
            let at = text
                .find(&format!("{tool} --version "))
                .unwrap_or_else(|| panic!("no pinned {tool}"));
            text[at..].split_whitespace().nth(2).unwrap().to_string()
        };
        assert_eq!(
            pin(&workflow),
            pin(&ci),
            "{tool}: release.yml and .ci/run differ"
        );
    }
    for target in ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] {
        assert!(
            workflow.contains(target),
            "release.yml does not build {target}"
        );
    }
}
