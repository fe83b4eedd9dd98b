//! The files in `contrib/`: `curl-iam` against the real test provider and a token-checking git
//! server (the request succeeds, the token never shows in curl's argv or environment, a missing
//! login ends with the helper's exit code before curl runs), and the man page and shell
//! completions checked against `git-credential-iam --help`, so neither can go stale silently.
//!
//! Needs `curl` (Debian package curl) and `bash`; `zsh`, `fish` and `groff`, when installed,
//! check their files too.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::{GitAuth, GitServer, Idp, PUBLIC_CLIENT};

const T: Duration = Duration::from_secs(30);

fn contrib(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(path)
}

use support::output_text as text;

/// The first `name` on PATH that is a file.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A test home with a `curl` first on PATH that writes its argv (NUL-separated) and its
/// environment to `curl.argv` / `curl.env` in the home, then execs the real curl.
struct Home {
    dir: tempfile::TempDir,
    issuer: String,
}

impl Home {
    fn new(idp: &Idp) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let real_curl = on_path("curl")
            .expect("curl is not installed (Debian package curl): contrib/curl-iam needs it");
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        let wrapper = bin.join("curl");
        let log = |n: &str| sh_quote(dir.path().join(n).to_str().unwrap());
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nprintf '%s\\0' \"$0\" \"$@\" > {}\nenv > {}\nexec {} \"$@\"\n",
                log("curl.argv"),
                log("curl.env"),
                sh_quote(real_curl.to_str().unwrap()),
            ),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
        }
        Home {
            dir,
            issuer: idp.issuer().to_string(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The helper with the account in its environment, as a CI job sets it.
    fn helper(&self, args: &[&str], input: &str) -> Output {
        let mut c = support::helper_cmd(self.path());
        c.args(args)
            .env("GIT_CREDENTIAL_IAM_ISSUER", &self.issuer)
            .env("GIT_CREDENTIAL_IAM_CLIENT_ID", PUBLIC_CLIENT)
            .env("CI", "true");
        support::run_with_input(c, input, T)
    }

    /// `contrib/curl-iam ARGS` in the helper's clean environment (copied from
    /// `support::helper_cmd`), with the wrapper `curl` first on PATH, the helper under test as
    /// GIT_CREDENTIAL_IAM_BIN, CI=true, and `env` added.
    fn curl_iam(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.curl_iam_with_input(args, env, "")
    }

    /// [`Home::curl_iam`] with `input` on its stdin.
    fn curl_iam_with_input(&self, args: &[&str], env: &[(&str, &str)], input: &str) -> Output {
        let mut c = support::clean_cmd(contrib("curl-iam"), self.path());
        c.current_dir(self.path());
        let path = std::env::join_paths(
            std::iter::once(self.path().join("bin"))
                .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
        )
        .unwrap();
        c.env("PATH", path)
            .env("GIT_CREDENTIAL_IAM_BIN", support::helper_path())
            .env("CI", "true")
            .args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        support::run_with_input(c, input, T)
    }

    /// What the wrapper recorded: (argv, environment), or None when curl never ran.
    fn curl_record(&self) -> Option<(Vec<String>, String)> {
        let argv = fs::read(self.path().join("curl.argv")).ok()?;
        let argv = String::from_utf8(argv).unwrap();
        let argv = argv
            .split_terminator('\0')
            .map(str::to_string)
            .collect::<Vec<_>>();
        let env = fs::read_to_string(self.path().join("curl.env")).unwrap();
        Some((argv, env))
    }
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn curl_iam_sends_the_token_but_never_in_argv() {
    let idp = Idp::start();
    let server = GitServer::start(&idp, GitAuth::Bearer);
    let home = Home::new(&idp);

    // A login seeded the way a CI job does it: a refresh token on stdin.
    let tok = idp.device_flow_token(PUBLIC_CLIENT, "openid offline_access");
    let rt = tok["refresh_token"].as_str().expect("a refresh token");
    let out = home.helper(&["import"], &format!("{rt}\n"));
    assert!(out.status.success(), "import: {}", text(&out));
    let out = home.helper(&["token"], "");
    assert!(out.status.success(), "token: {}", text(&out));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.len() > 8, "{token:?}");

    let url = format!("{}/info/refs?service=git-upload-pack", server.repo_url());
    let body = home.path().join("refs");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let _ = fs::remove_file(home.path().join("curl.argv"));
        let _ = fs::remove_file(&body);
        let mut all = vec!["-fsS", "-o", body.to_str().unwrap(), "-w", "%{http_code}"];
        all.extend_from_slice(args);
        all.push(&url);
        let out = home.curl_iam(&all, env);
        assert!(out.status.success(), "curl-iam {all:?}: {}", text(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
        let refs = fs::read_to_string(&body).unwrap();
        assert!(refs.contains("# service=git-upload-pack"), "{refs}");
        let (argv, env) = home.curl_record().expect("curl ran");
        assert!(
            argv.iter().all(|a| !a.contains(&token)),
            "the token is in curl's argv: {argv:?}"
        );
        assert!(!env.contains(&token), "the token is in curl's environment");
        // Every argument of ours reached curl unchanged, in order, after the header file.
        assert_eq!(argv[1..3], ["-H", "@/dev/fd/3"]);
        assert_eq!(argv[3..], all[..]);
        argv
    };

    // The account from the helper's environment variables.
    let argv = run(
        &[],
        &[
            ("GIT_CREDENTIAL_IAM_ISSUER", &home.issuer),
            ("GIT_CREDENTIAL_IAM_CLIENT_ID", PUBLIC_CLIENT),
        ],
    );
    assert!(argv.contains(&url));

    // A leading --account NAME picks a config-file account (and is not passed to curl), and
    // curl's stdin is still the caller's: here curl reads its URL from a config on stdin.
    let cfg = home.path().join(".config/git-credential-iam");
    fs::create_dir_all(&cfg).unwrap();
    fs::write(
        cfg.join("config.toml"),
        format!(
            "[account.test]\nissuer = \"{}\"\nclient-id = \"{PUBLIC_CLIENT}\"\n",
            home.issuer
        ),
    )
    .unwrap();
    let _ = fs::remove_file(home.path().join("curl.argv"));
    let out = home.curl_iam_with_input(
        &["--account", "test", "-fsS", "-K", "-"],
        &[],
        &format!("url = \"{url}\"\n"),
    );
    assert!(out.status.success(), "curl-iam --account: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("# service=git-upload-pack"),
        "{}",
        text(&out)
    );
    let (argv, env) = home.curl_record().expect("curl ran");
    assert_eq!(argv[1..], ["-H", "@/dev/fd/3", "-fsS", "-K", "-"]);
    assert!(!env.contains(&token), "the token is in curl's environment");

    let counters = server.counters();
    assert_eq!(counters["authorized"], 2, "{counters}");
    assert_eq!(counters["unauthorized"], 0, "{counters}");
    assert_eq!(
        idp.counters()["device_authorization"],
        1,
        "only the test's own device flow"
    );
}

#[test]
fn curl_iam_without_login_exits_with_the_helpers_code_and_never_runs_curl() {
    let idp = Idp::start();
    let home = Home::new(&idp);
    let url = "http://127.0.0.1:9/never";
    let account = [
        ("GIT_CREDENTIAL_IAM_ISSUER", home.issuer.as_str()),
        ("GIT_CREDENTIAL_IAM_CLIENT_ID", PUBLIC_CLIENT),
    ];

    let out = home.curl_iam(&["-fsS", url], &account);
    assert_eq!(out.status.code(), Some(3), "login needed: {}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("git-credential-iam login"),
        "the helper says what to do: {}",
        text(&out)
    );
    assert!(home.curl_record().is_none(), "curl ran");
    assert_eq!(
        idp.counters()["device_authorization"],
        0,
        "nothing prompted"
    );

    // Usage errors, the script's and the helper's: exit 2, no curl.
    let out = home.curl_iam(&["--account"], &account);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = home.curl_iam(&["--account", "nope", url], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "unknown account: {}",
        text(&out)
    );
    assert!(home.curl_record().is_none(), "curl ran");

    // --help is curl-iam's own.
    let out = home.curl_iam(&["--help"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("GIT_CREDENTIAL_IAM_BIN") && help.contains("--account"));
    assert!(home.curl_record().is_none(), "curl ran");
}

// ------------------------------------------------------------------------------------------
// the man page and the completions against --help

/// Actions and options that `git-credential-iam --help` lists.
struct Help {
    actions: Vec<String>,
    /// Long options, with their `--`.
    long: Vec<String>,
    /// Short options, with their `-`.
    short: Vec<String>,
}

fn help() -> Help {
    let out = Command::new(support::helper_path())
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let help = String::from_utf8(out.stdout).unwrap();
    let section = |title: &str| -> Vec<String> {
        help.lines()
            .skip_while(|l| !l.starts_with(title))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    };
    // "  get, store, erase   git's credential protocol ..."
    let actions: Vec<String> = section("Actions:")
        .iter()
        .filter_map(|l| l.trim().split("  ").next())
        .flat_map(|spec| spec.split(", ").map(str::to_string).collect::<Vec<_>>())
        .collect();
    // "  --issuer URL               the OIDC issuer", "  -h, --help   this text"
    let mut long = Vec::new();
    let mut short = Vec::new();
    for l in section("Options") {
        let l = l.trim();
        if !l.starts_with('-') {
            continue;
        }
        let spec = l.split("  ").next().unwrap();
        for part in spec.split(", ") {
            let name = part.split([' ', '=']).next().unwrap().to_string();
            if name.starts_with("--") {
                long.push(name);
            } else {
                short.push(name);
            }
        }
    }
    assert!(
        actions.len() >= 8 && actions.iter().any(|a| a == "token"),
        "cannot parse the actions of --help: {actions:?}\n{help}"
    );
    assert!(
        long.len() >= 20 && long.iter().any(|o| o == "--issuer"),
        "cannot parse the options of --help: {long:?}\n{help}"
    );
    Help {
        actions,
        long,
        short,
    }
}

/// True when `word` occurs in `text` with no letter, digit, `-` or `_` right before or after.
fn mentions(text: &str, word: &str) -> bool {
    let part = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(word).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(part)
            && !text[i + word.len()..].chars().next().is_some_and(part)
    })
}

/// The man page as text: font escapes dropped, `\-` as `-`.
fn man_text() -> String {
    let roff = fs::read_to_string(contrib("git-credential-iam.1")).unwrap();
    let mut s = roff.replace("\\-", "-").replace("\\e", "\\");
    for f in ["\\fB", "\\fI", "\\fR", "\\fP"] {
        s = s.replace(f, "");
    }
    s
}

/// The text of the man page section `.SH NAME` up to the next `.SH`.
fn man_section(man: &str, name: &str) -> String {
    let head = format!(".SH {name}\n");
    let start = man
        .find(&head)
        .unwrap_or_else(|| panic!("the man page has no {head:?}"));
    let rest = &man[start + head.len()..];
    rest[..rest.find("\n.SH ").unwrap_or(rest.len())].to_string()
}

#[test]
fn man_page_covers_every_action_and_option_of_help() {
    let help = help();
    let man = man_text();
    let actions = man_section(&man, "ACTIONS");
    let options = man_section(&man, "OPTIONS");
    let synopsis = man_section(&man, "SYNOPSIS");
    let missing: Vec<_> = help
        .actions
        .iter()
        .filter(|a| !mentions(&actions, a) || !mentions(&synopsis, a))
        .chain(
            help.long
                .iter()
                .chain(&help.short)
                .filter(|o| !mentions(&options, o)),
        )
        .collect();
    assert!(
        missing.is_empty(),
        "contrib/git-credential-iam.1 does not document {missing:?} (listed by --help; the \
         actions in SYNOPSIS and ACTIONS, the options in OPTIONS)"
    );
    for code in ["0", "1", "2", "3", "4"] {
        assert!(
            man_section(&man, "EXIT STATUS").contains(&format!(".B {code}\n")),
            "exit code {code} is not in EXIT STATUS"
        );
    }
    let version = format!("git-credential-iam {}", env!("CARGO_PKG_VERSION"));
    assert!(
        man.lines()
            .any(|l| l.starts_with(".TH ") && l.contains(&version)),
        "the .TH line does not name {version}"
    );
    if on_path("groff").is_some() {
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(contrib("git-credential-iam.1"))
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff warns: {}",
            text(&out)
        );
    } else {
        support::skip(
            "man page's roff check",
            "needs groff (apt install groff): the man page's roff was not checked",
        );
    }
}

#[test]
fn completions_parse_and_cover_every_action_and_option() {
    let help = help();
    let files = [
        ("bash", "git-credential-iam.bash", "--"),
        ("zsh", "_git-credential-iam", "--"),
        ("fish", "git-credential-iam.fish", "-l "),
    ];
    for (shell, file, long_prefix) in files {
        let path = contrib("completions").join(file);
        let script = fs::read_to_string(&path).unwrap();
        let missing: Vec<_> = help
            .actions
            .iter()
            .cloned()
            .chain(
                help.long
                    .iter()
                    .map(|o| format!("{long_prefix}{}", o.trim_start_matches("--"))),
            )
            .filter(|w| !mentions(&script, w))
            .collect();
        assert!(
            missing.is_empty(),
            "{} does not complete {missing:?} (listed by --help)",
            path.display()
        );
        for value in [
            "raw",
            "header",
            "json",
            "exec-credential",
            "wlcg",
            "auto",
            "basic",
            "bearer",
        ] {
            assert!(
                mentions(&script, value),
                "{} does not complete the value {value}",
                path.display()
            );
        }
        // bash is required; zsh and fish are checked when installed.
        if shell != "bash" && on_path(shell).is_none() {
            support::skip(
                &format!("{shell} completion syntax check"),
                &format!("needs {shell}: {} was not parsed", path.display()),
            );
            continue;
        }
        let out = Command::new(shell).arg("-n").arg(&path).output().unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{shell} -n {}: {}",
            path.display(),
            text(&out)
        );
    }

    // The bash completion completes: actions first, then --format's values.
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            r#"source "$1"
               t() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=()
                     _git_credential_iam; echo "${COMPREPLY[*]}"; }
               t git-credential-iam ''
               t git-credential-iam --account x token --format ''
               t git-credential-iam --auth b"#,
        )
        .arg("bash")
        .arg(contrib("completions/git-credential-iam.bash"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        lines,
        [
            help.actions.join(" ").as_str(),
            "raw header json exec-credential wlcg",
            "basic bearer"
        ],
        "{}",
        text(&out)
    );
}

#[test]
fn scripts_and_git_config_example_parse() {
    let out = Command::new("sh")
        .arg("-n")
        .arg(contrib("curl-iam"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sh -n contrib/curl-iam: {}",
        text(&out)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(contrib("curl-iam"))
            .unwrap()
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, "contrib/curl-iam is not executable");
    }

    // The example is valid git config, both as shipped (all commented) and with every example
    // uncommented; every helper line runs git-credential-iam and its options exist.
    let help = help();
    let example = fs::read_to_string(contrib("gitconfig.example")).unwrap();
    let uncommented: String = example
        .lines()
        .map(|l| {
            l.strip_prefix("#[")
                .map(|r| format!("[{r}"))
                .or_else(|| l.strip_prefix("#\t").map(|r| format!("\t{r}")))
                .unwrap_or_else(|| l.to_string())
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("uncommented");
    fs::write(&file, uncommented + "\n").unwrap();
    let mut helpers = Vec::new();
    for f in [contrib("gitconfig.example"), file] {
        let mut git = support::git_cmd(dir.path());
        git.args(["config", "-f"]).arg(&f).arg("--list");
        let out = support::run_with_input(git, "", T);
        assert!(
            out.status.success(),
            "git config -f {}: {}",
            f.display(),
            text(&out)
        );
        helpers = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("credential.") && l.contains(".helper="))
            .map(|l| l.split_once(".helper=").unwrap().1.to_string())
            // An empty value resets git's helper list (the storage-helper recipe).
            .filter(|h| !h.is_empty())
            .collect();
    }
    assert!(helpers.len() >= 5, "{helpers:?}");
    for h in &helpers {
        let mut words = h.split_whitespace();
        assert_eq!(words.next(), Some("iam"), "{h}");
        for w in words.filter(|w| w.starts_with("--")) {
            assert!(
                help.long.iter().any(|o| o == w),
                "{h}: {w} is not an option"
            );
        }
    }
}
