//! `setup URL` end to end, with real git against the test provider and the token-checking git
//! server: with a client given and with a registered one; the sign-in approved headlessly; the
//! final `git ls-remote`; a second run that changes no byte and asks the provider nothing;
//! `--undo` that gives back the config files byte for byte; `--file` that writes only there;
//! `--no-login`; the one-line message when the server refuses the token; the short `iam`
//! helper when the binary is on PATH. The commands carry no `GIT_CREDENTIAL_IAM_URL`: only
//! what setup writes ties the URL.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::support::{GitAuth, GitServer, Idp, PUBLIC_CLIENT, run_approving, setup_cmd};

const T: Duration = Duration::from_secs(60);

const USER_CONFIG: &str = "# my settings\nmin-lifetime = 120 # two minutes\n\n\
                           [account.other]\n# not for git\nissuer = \"https://iam.example.org/\"\n\
                           client-id = \"other\"\n";
const USER_GITCONFIG: &str = "# my git\n[user]\n\tname = Test # me\n\temail = test@example.org\n\
                              [credential]\n\thelper = store\n";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

use support::ok;

fn config_path(home: &Path) -> PathBuf {
    home.join(".config/git-credential-iam/config.toml")
}

fn record_path(home: &Path) -> PathBuf {
    home.join(".config/git-credential-iam/config.setup.json")
}

/// A home with a config file and a .gitconfig of the user's, comments included.
fn user_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    fs::create_dir_all(config_path(home.path()).parent().unwrap()).unwrap();
    fs::write(config_path(home.path()), USER_CONFIG).unwrap();
    fs::write(home.path().join(".gitconfig"), USER_GITCONFIG).unwrap();
    home
}

/// Every file under `dir` with its bytes (the record, the secret files, the config files).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            all.extend(snapshot(&p));
        } else {
            all.push((p.clone(), fs::read(&p).unwrap()));
        }
    }
    all.sort();
    all
}

/// `git ls-remote URL` as the user would run it afterwards (nothing but the home's config).
fn ls_remote(home: &Path, dir: &Path, url: &str) -> Output {
    let mut cmd = support::git_cmd(home);
    cmd.env_remove("GIT_CREDENTIAL_IAM_URL")
        .current_dir(dir)
        .args(["ls-remote", url]);
    support::run_with_input(cmd, "", T)
}

/// The provider's counters that a sign-in or a registration moves.
fn provider_work(idp: &Idp) -> (u64, u64, u64, u64) {
    let c = idp.counters();
    (
        c["device_authorization"].as_u64().unwrap_or(0),
        c["registration"].as_u64().unwrap_or(0),
        idp.token_requests(support::DEVICE_GRANT),
        idp.token_requests("refresh_token"),
    )
}

#[test]
fn setup_with_a_given_client_is_idempotent_and_undone_byte_for_byte() {
    let idp = Idp::start();
    let server = GitServer::start(&idp, GitAuth::Bearer);
    let home = user_home();
    let h = home.path();
    let url = server.repo_url();
    let args = [
        url.as_str(),
        "--issuer",
        idp.issuer(),
        "--client-id",
        PUBLIC_CLIENT,
        "--no-browser",
    ];

    let out = ok(run_approving(setup_cmd(h, &args), &idp, T));
    let said = stderr(&out);
    assert!(
        said.contains("  Code:  "),
        "the sign-in shows on stderr: {said}"
    );
    assert!(
        said.contains("checked: git ls-remote") && said.contains("lists 2 refs"),
        "{said}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");

    // What it wrote: the account, tied to the URL, after the user's text.
    let config = fs::read_to_string(config_path(h)).unwrap();
    let added = config.strip_prefix(USER_CONFIG).expect(&config);
    assert!(
        added.contains("# Added by `git-credential-iam setup`")
            && added.contains("[account.127-0-0-1]\n")
            && added.contains(&format!("client-id = \"{PUBLIC_CLIENT}\""))
            && added.contains(&format!("urls = [\"{url}\"]")),
        "{added}"
    );
    // git's config: scoped to the URL, the reset first, the absolute path of the binary (it is
    // not on PATH here), useHttpPath since the URL has a path; never an unscoped helper.
    let gitconfig = fs::read_to_string(h.join(".gitconfig")).unwrap();
    let added = gitconfig.strip_prefix(USER_GITCONFIG).expect(&gitconfig);
    assert_eq!(
        added,
        format!(
            "[credential \"{url}\"]\n\thelper = \n\thelper = {} --account 127-0-0-1\n\
             \tuseHttpPath = true\n",
            fs::canonicalize(support::helper_path()).unwrap().display()
        )
    );
    // The user runs git: served from the cache, no provider token request.
    let before = provider_work(&idp);
    let listed = ok(ls_remote(h, h, &url));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("refs/heads/main"));
    assert_eq!(provider_work(&idp), before);

    // Again: no byte changes, no registration, no sign-in, no refresh.
    let files = snapshot(h.join(".config").as_path());
    let git_before = fs::read(h.join(".gitconfig")).unwrap();
    let out = ok(run_approving(setup_cmd(h, &args), &idp, T));
    assert!(!stderr(&out).contains("Code:"), "{}", stderr(&out));
    assert!(stderr(&out).contains("checked: git ls-remote"));
    assert_eq!(snapshot(h.join(".config").as_path()), files);
    assert_eq!(fs::read(h.join(".gitconfig")).unwrap(), git_before);
    assert_eq!(provider_work(&idp), before);

    // --undo: both files byte for byte as they were, the record and the login gone.
    let out = ok(support::run_with_input(
        setup_cmd(h, &["--undo", &url]),
        "",
        T,
    ));
    assert!(stderr(&out).contains("removed account"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(config_path(h)).unwrap(), USER_CONFIG);
    assert_eq!(
        fs::read_to_string(h.join(".gitconfig")).unwrap(),
        USER_GITCONFIG
    );
    assert!(!record_path(h).exists());
    assert!(support::account_cache_files(&h.join(".local/state/git-credential-iam")).is_empty());
    // The URL is no longer served: git gets no token.
    let out = ls_remote(h, h, &url);
    assert!(!out.status.success());
    // A second undo has nothing to do.
    let out = ok(support::run_with_input(
        setup_cmd(h, &["--undo", &url]),
        "",
        T,
    ));
    assert!(stderr(&out).contains("nothing to undo"), "{}", stderr(&out));
}

#[test]
fn setup_registers_a_client_and_writes_only_the_file_given() {
    let idp = Idp::start();
    let server = GitServer::start(&idp, GitAuth::Basic);
    let home = user_home();
    let h = home.path();
    // A repository: its .git/config is the --file (relative, from its directory).
    let work = h.join("work");
    fs::create_dir(&work).unwrap();
    ok(support::run_with_input(
        {
            let mut c = support::git_cmd(h);
            c.current_dir(&work).args(["init", "-q"]);
            c
        },
        "",
        T,
    ));
    let repo_config = fs::read(work.join(".git/config")).unwrap();
    let url = server.repo_url();
    let args = [
        url.as_str(),
        "--issuer",
        idp.issuer(),
        "--account",
        "lab",
        "--file",
        ".git/config",
        "--no-browser",
    ];
    let mut cmd = setup_cmd(h, &args);
    cmd.current_dir(&work);
    let out = ok(run_approving(cmd, &idp, T));
    let said = stderr(&out);
    assert!(said.contains("registered client"), "{said}");
    assert!(said.contains("lists 2 refs"), "{said}");
    assert_eq!(idp.counters()["registration"], 1);
    assert_eq!(
        fs::read_to_string(h.join(".gitconfig")).unwrap(),
        USER_GITCONFIG,
        "--file writes only there"
    );
    let written = fs::read_to_string(work.join(".git/config")).unwrap();
    assert!(
        written.contains(&format!("[credential \"{url}\"]")) && written.contains("--account lab"),
        "{written}"
    );
    let config = fs::read_to_string(config_path(h)).unwrap();
    assert!(config.starts_with(USER_CONFIG) && config.contains("[account.lab]"));
    // The registration access token: in its own 0600 file, never in the config.
    let reg = h.join(".config/git-credential-iam/lab.registration");
    assert!(reg.is_file());
    assert!(!config.contains(fs::read_to_string(&reg).unwrap().trim()));
    // git in the repository uses it; git elsewhere does not know the URL.
    ok(ls_remote(h, &work, &url));
    assert!(!ls_remote(h, h, &url).status.success());

    // Again: nothing registered, nothing signed in, not a byte changed.
    let files = snapshot(h);
    let before = provider_work(&idp);
    let mut cmd = setup_cmd(h, &args);
    cmd.current_dir(&work);
    ok(run_approving(cmd, &idp, T));
    assert_eq!(provider_work(&idp), before);
    assert_eq!(snapshot(h), files);

    let mut cmd = setup_cmd(h, &["--undo", &url]);
    cmd.current_dir(&work);
    ok(support::run_with_input(cmd, "", T));
    assert_eq!(fs::read(work.join(".git/config")).unwrap(), repo_config);
    assert_eq!(fs::read_to_string(config_path(h)).unwrap(), USER_CONFIG);
    assert!(!reg.exists(), "the file setup created is removed");
}

#[test]
fn setup_without_login_then_a_server_that_refuses_the_token() {
    let idp = Idp::start();
    // A server that answers 401 to everything, as GitLab does to an IAM token.
    let hostile = support::LogServer::start();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let url = format!("{}/group/repo.git", hostile.url());
    let args = [
        url.as_str(),
        "--issuer",
        idp.issuer(),
        "--client-id",
        PUBLIC_CLIENT,
        "--no-browser",
    ];
    let mut no_login = args.to_vec();
    no_login.push("--no-login");
    let out = ok(run_approving(setup_cmd(h, &no_login), &idp, T));
    assert!(stderr(&out).contains("not signed in (--no-login)"));
    assert_eq!(provider_work(&idp), (0, 0, 0, 0), "no sign-in");
    assert_eq!(hostile.log().0, 0, "no check");

    // With the sign-in: the check fails, in one line that says why and where to read on.
    let out = run_approving(setup_cmd(h, &args), &idp, T);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let last = stderr(&out).lines().last().unwrap().to_string();
    assert!(
        last.starts_with("git-credential-iam: ")
            && last.contains("does not accept the token (HTTP 401)")
            && last.contains("Which servers accept these tokens"),
        "{last}"
    );
    let (_, sent) = hostile.log();
    assert!(
        sent.iter().any(|a| a.starts_with("Basic ")),
        "the token was sent: {sent:?}"
    );

    // Refused before anything is written: plain http off loopback, no URL, a bad name.
    for (bad, why) in [
        (vec!["http://git.example.org/"], "plain http"),
        (vec![], "needs the git server's URL"),
        (
            vec!["https://git.example.org/", "--account", "a b"],
            "account name",
        ),
    ] {
        let out = support::run_with_input(setup_cmd(h, &bad), "", T);
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{e}");
        assert!(e.contains(why) && e.trim().lines().count() == 1, "{e}");
    }

    // With the binary on PATH, the helper line is the short `iam`.
    let bin = h.join("bin");
    fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(support::helper_path(), bin.join("git-credential-iam")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let other = tempfile::tempdir().unwrap();
    let mut cmd = setup_cmd(
        other.path(),
        &[
            "https://git.example.org/",
            "--issuer",
            "https://iam.example.org/",
            "--client-id",
            "c",
            "--no-login",
        ],
    );
    cmd.env("PATH", &path);
    ok(support::run_with_input(cmd, "", T));
    let gitconfig = fs::read_to_string(other.path().join(".gitconfig")).unwrap();
    assert_eq!(
        gitconfig,
        "[credential \"https://git.example.org\"]\n\thelper = \n\
         \thelper = iam --account git-example-org\n"
    );
    // Undone: the files setup brought into being are gone again.
    let mut cmd = setup_cmd(other.path(), &["--undo", "https://git.example.org/"]);
    cmd.env("PATH", &path);
    ok(support::run_with_input(cmd, "", T));
    assert!(!other.path().join(".gitconfig").exists());
    assert!(!config_path(other.path()).exists());
    assert!(!record_path(other.path()).exists());
}
