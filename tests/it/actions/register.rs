//! The deprecated password flow and `register`, against the real test provider: success (token
//! active at introspection), wrong password, a client without the grant, non-interactive without
//! a password, the password never in stderr / cache / argv, `--password-env` and
//! `--password-file`, a confidential client whose secret needs encoding, and a registered client
//! that then completes a device flow and a refresh with only `--account NAME`; `register`
//! refusing an unusable client id (control characters, empty, too long) from a scripted
//! provider, never overwriting a secret file (checked before the provider is asked), writing a
//! symlinked config through the link and keeping the user's text, and suggesting only a
//! URL-scoped helper; and the terminal prompt on a pseudo-terminal: the password is not echoed,
//! and Ctrl-C at the prompt gives the terminal its echo back and interrupts git.

use crate::support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    ALICE, ALICE_PASSWORD, CONF_SECRET, Idp, Lines, PUBLIC_CLIENT, PW_CLIENT, PW_CONF_CLIENT,
    REQUEST, RegistrationStub, Terminal, find_user_code,
};
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);

fn helper(home: &Path, args: &[&str], action: &str) -> Command {
    let mut c = support::helper_cmd(home);
    c.args(args).arg(action);
    c
}

fn run(cmd: Command, input: &str) -> Output {
    support::run_with_input(cmd, input, T)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `--issuer ISSUER --client-id CLIENT --flow password` and then `extra`.
fn password_args<'a>(idp: &'a Idp, client: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--issuer",
        idp.issuer(),
        "--client-id",
        client,
        "--flow",
        "password",
    ];
    args.extend_from_slice(extra);
    args
}

/// Every file under `dir`, concatenated (to look for a password in the cache).
fn all_files(dir: &Path) -> String {
    let mut out = String::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.push_str(&all_files(&p));
            } else if let Ok(t) = fs::read(&p) {
                out.push_str(&String::from_utf8_lossy(&t));
            }
        }
    }
    out
}

#[test]
fn password_flow_from_file_and_env() {
    let idp = Idp::start();
    let home = tempfile::tempdir().unwrap();
    let pw_file = home.path().join("pw");
    fs::write(&pw_file, format!("{ALICE_PASSWORD}\n")).unwrap();
    let pf = pw_file.to_str().unwrap();
    let args = password_args(
        &idp,
        PW_CLIENT,
        &[
            "--username",
            ALICE,
            "--password-file",
            pf,
            "--non-interactive",
        ],
    );
    let out = run(helper(home.path(), &args, "get"), REQUEST);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        idp.introspect(support::answered_password(&text)),
        "the token is active"
    );
    let err = stderr(&out);
    assert_eq!(
        err.matches("deprecated").count(),
        1,
        "one deprecation line: {err}"
    );
    assert!(err.contains("device flow"), "{err}");
    assert!(!err.contains(ALICE_PASSWORD));
    assert_eq!(idp.token_requests("password"), 1);
    let cache = all_files(&home.path().join(".local/state"));
    assert!(
        cache.contains("refresh_token"),
        "offline_access brought a refresh token"
    );
    assert!(
        !cache.contains(ALICE_PASSWORD),
        "the password is never cached"
    );
    // No option takes the password itself on the command line, where `ps` would show it: one
    // given there is a usage error that does not echo it, and nothing is sent.
    let mut on_argv = args.clone();
    on_argv.extend(["--password", ALICE_PASSWORD]);
    let out = run(helper(home.path(), &on_argv, "get"), REQUEST);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!stderr(&out).contains(ALICE_PASSWORD), "{out:?}");
    assert_eq!(idp.token_requests("password"), 1);

    // The environment variable source, in a fresh cache.
    let home2 = tempfile::tempdir().unwrap();
    let args = password_args(
        &idp,
        PW_CLIENT,
        &[
            "--username",
            ALICE,
            "--password-env",
            "IAM_PW",
            "--non-interactive",
        ],
    );
    let mut cmd = helper(home2.path(), &args, "get");
    cmd.env("IAM_PW", ALICE_PASSWORD);
    let out = run(cmd, REQUEST);
    assert!(out.status.success(), "{out:?}");
    assert!(!stderr(&out).contains(ALICE_PASSWORD));
    assert_eq!(idp.token_requests("password"), 2);
}

#[test]
fn password_flow_errors_name_the_fix() {
    let idp = Idp::shared();
    let home = tempfile::tempdir().unwrap();
    let bad = home.path().join("bad");
    fs::write(&bad, "not-the-password").unwrap();
    let good = home.path().join("good");
    fs::write(&good, ALICE_PASSWORD).unwrap();
    let with_file = |client: &'static str, file: &Path| -> Output {
        let file = file.to_str().unwrap();
        let extra = [
            "--username",
            ALICE,
            "--non-interactive",
            "--password-file",
            file,
        ];
        run(
            helper(home.path(), &password_args(idp, client, &extra), "get"),
            REQUEST,
        )
    };
    let out = with_file(PW_CLIENT, &bad);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(
        stderr(&out).contains("wrong username or password"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("not-the-password"));
    let cached =
        support::account_cache_files(&home.path().join(".local/state/git-credential-iam")).len();
    assert_eq!(cached, 0, "a refused password caches nothing");
    // A client without the grant.
    let out = with_file(PUBLIC_CLIENT, &good);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let e = stderr(&out);
    assert!(
        e.contains("administrator") && e.contains(PUBLIC_CLIENT) && e.contains("device flow"),
        "{e}"
    );

    // Non-interactive with no password source: fast, exit 3, no prompt, no deprecation noise.
    let start = Instant::now();
    let args = password_args(idp, PW_CLIENT, &["--username", ALICE, "--non-interactive"]);
    let out = run(helper(home.path(), &args, "get"), REQUEST);
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("--password-file"));
}

#[test]
fn password_flow_askpass_and_confidential_client() {
    let idp = Idp::shared();
    let home = tempfile::tempdir().unwrap();
    let askpass = home.path().join("askpass.sh");
    let log = home.path().join("askpass.log");
    fs::write(
        &askpass,
        format!(
            "#!/bin/sh\necho \"$1\" >> {}\necho '{ALICE_PASSWORD}'\n",
            log.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&askpass, fs::Permissions::from_mode(0o700)).unwrap();
    }
    let secret = home.path().join("secret");
    fs::write(&secret, CONF_SECRET).unwrap();
    let args = [
        "--issuer",
        idp.issuer(),
        "--client-id",
        PW_CONF_CLIENT,
        "--client-secret-file",
        secret.to_str().unwrap(),
        "--flow",
        "password",
        "--username",
        ALICE,
        "--interactive",
    ];
    let mut cmd = helper(home.path(), &args, "get");
    cmd.env("GIT_ASKPASS", &askpass);
    let out = run(cmd, REQUEST);
    assert!(out.status.success(), "{out:?}");
    let asked = fs::read_to_string(&log).unwrap();
    assert!(asked.contains("Password for alice@127.0.0.1"), "{asked}");
    assert!(!stderr(&out).contains(CONF_SECRET) && !stderr(&out).contains(ALICE_PASSWORD));
}

#[test]
fn register_then_device_flow_and_refresh_by_account_name() {
    let idp = Idp::start();
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("conf/config.toml");
    let cfg = config.to_str().unwrap();
    let register = |extra: &[&str]| {
        let args = [
            &[
                "--issuer",
                idp.issuer(),
                "--account",
                "lab",
                "--config",
                cfg,
            ],
            extra,
        ]
        .concat();
        run(helper(home.path(), &args, "register"), "")
    };

    let out = register(&["--print"]);
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        printed.contains("client_id: ") && printed.contains("registration_access_token: [saved to"),
        "{printed}"
    );
    let e = stderr(&out);
    assert!(
        e.contains("credential.https://git.example.org.helper \"iam --account lab"),
        "{e}"
    );
    assert!(!e.contains("credential.helper"), "no unscoped helper: {e}");
    assert_eq!(idp.counters()["registration"], 1);
    let text = fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("[account.lab]") && text.contains("client-id = "),
        "{text}"
    );
    let reg = fs::read_to_string(home.path().join("conf/lab.registration")).unwrap();
    assert!(
        !text.contains(reg.trim()),
        "the registration token is not in the config"
    );
    assert!(!printed.contains(reg.trim()) && !e.contains(reg.trim()));

    // The same name again is refused, and nothing changes.
    let again = register(&[]);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(fs::read_to_string(&config).unwrap(), text);

    // A config file named by GIT_CREDENTIAL_IAM_CONFIG that does not exist yet is created too.
    let config2 = home.path().join("conf2/config.toml");
    let mut cmd = helper(
        home.path(),
        &["--issuer", idp.issuer(), "--account", "lab2"],
        "register",
    );
    cmd.env("GIT_CREDENTIAL_IAM_CONFIG", &config2);
    let out = run(cmd, "");
    assert!(out.status.success(), "{out:?}");
    assert!(
        fs::read_to_string(&config2)
            .unwrap()
            .contains("[account.lab2]")
    );

    // --account lab alone: device flow, then a refresh.
    let mut child = helper(
        home.path(),
        &["--account", "lab", "--config", cfg, "--interactive"],
        "get",
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), REQUEST.as_bytes()).unwrap();
    let mut lines = Lines::spawn(child.stderr.take().unwrap());
    let code =
        find_user_code(&lines.wait_for(|l| l.contains("Code:"), T).expect("a code")).unwrap();
    idp.approve(&code);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", lines.rest(T));
    idp.reset_counters();
    let out = run(
        helper(
            home.path(),
            &[
                "--account",
                "lab",
                "--config",
                cfg,
                "--non-interactive",
                "--min-lifetime",
                "999999",
            ],
            "get",
        ),
        REQUEST,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(idp.token_requests("refresh_token"), 1);

    // A confidential registration keeps its secret in a 0600 file named in the config.
    let out = run(
        helper(
            home.path(),
            &[
                "--issuer",
                idp.issuer(),
                "--account",
                "lab2",
                "--config",
                cfg,
                "--confidential",
            ],
            "register",
        ),
        "",
    );
    assert!(out.status.success(), "{out:?}");
    let secret_file = home.path().join("conf/lab2.secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&secret_file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let secret = fs::read_to_string(&secret_file).unwrap();
    let text = fs::read_to_string(&config).unwrap();
    assert!(
        !text.contains(secret.trim()) && text.contains("client-secret-file"),
        "{text}"
    );
}

#[test]
fn register_refused_names_the_manual_page() {
    // A provider without a registration endpoint: the scripted provider serving discovery only.
    let fake = support::Scripted::start(|issuer, _| {
        (
            200,
            format!(r#"{{"issuer":"{issuer}","token_endpoint":"{issuer}/token"}}"#),
        )
    });
    let url = fake.url.clone();
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("c.toml");
    let out = run(
        helper(
            home.path(),
            &[
                "--issuer",
                &url,
                "--account",
                "x",
                "--config",
                cfg.to_str().unwrap(),
            ],
            "register",
        ),
        "",
    );
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let e = stderr(&out);
    assert!(
        e.contains("no dynamic client registration") && e.contains("My clients"),
        "{e}"
    );
    assert!(!cfg.exists(), "nothing written");
}

/// A comment-bearing config with one account, as a user keeps it.
const USER_CONFIG: &str = "# my git-credential-iam settings\nmin-lifetime = 120 # seconds\n\n\
                           [account.old]\nissuer = \"https://old.example/\"\nclient-id = \"old\"\n\
                           urls = [\"https://old-git.example/\"]\n";

/// `register --account lab --config CONFIG` against `issuer`, plus `extra`.
fn register_at(home: &Path, issuer: &str, config: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "--issuer",
        issuer,
        "--account",
        "lab",
        "--config",
        config.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(helper(home, &args, "register"), "")
}

/// Whether the config file still loads: `get` for a URL no account serves answers nothing and
/// succeeds (a config that does not parse fails every run, for every account).
fn config_loads(home: &Path, config: &Path) -> Output {
    run(
        helper(home, &["--config", config.to_str().unwrap()], "get"),
        "protocol=https\nhost=unrelated.example\n\n",
    )
}

#[test]
fn register_refuses_an_unusable_client_id_and_the_config_keeps_loading() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("conf/config.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(&config, USER_CONFIG).unwrap();
    for (what, id) in [
        ("DEL", json!("client\u{7f}id")),
        ("newline", json!("client\nid = \"x\"")),
        ("C1 control", json!("client\u{85}id")),
        ("empty", json!("")),
        ("1025 bytes", json!("a".repeat(1025))),
        ("missing", Value::Null),
    ] {
        let stub = RegistrationStub::start(json!({
            "client_id": id,
            "client_secret": "stub-client-secret",
            "registration_access_token": "stub-registration-token",
        }));
        let out = register_at(home.path(), stub.issuer(), &config, &["--confidential"]);
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{what}: {out:?}");
        assert_eq!(stub.registrations(), 1, "{what}");
        assert!(
            e.contains(&format!("{}: ", stub.host())) && e.contains("client_id"),
            "{what}: the error names the provider: {e}"
        );
        assert_eq!(e.lines().count(), 1, "{what}: {e}");
        assert!(!e.contains("stub-client-secret") && !e.contains("stub-registration-token"));
        assert_eq!(fs::read_to_string(&config).unwrap(), USER_CONFIG, "{what}");
        assert!(!home.path().join("conf/lab.secret").exists(), "{what}");
        assert!(
            !home.path().join("conf/lab.registration").exists(),
            "{what}"
        );
        let out = config_loads(home.path(), &config);
        assert!(
            out.status.success() && out.stdout.is_empty(),
            "{what}: {out:?}"
        );
    }
    assert_eq!(
        fs::read_dir(home.path().join("conf")).unwrap().count(),
        1,
        "no temporary file left"
    );

    // A usable id: the account is added after the user's text, which stays as it was.
    let stub = RegistrationStub::start(json!({"client_id": "good-id"}));
    let out = register_at(home.path(), stub.issuer(), &config, &[]);
    assert!(out.status.success(), "{out:?}");
    let text = fs::read_to_string(&config).unwrap();
    assert!(text.starts_with(USER_CONFIG), "{text}");
    assert!(
        text.ends_with(&format!(
            "\n\n[account.lab]\nissuer = \"{}\"\nclient-id = \"good-id\"\n\
             scope = \"openid offline_access\"\n",
            stub.issuer()
        )),
        "{text}"
    );
    assert!(config_loads(home.path(), &config).status.success());
}

#[test]
fn register_never_overwrites_a_secret_file() {
    let idp = Idp::start();
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("conf/config.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    let secret = home.path().join("conf/lab.secret");
    fs::write(&secret, "a secret of another client\n").unwrap();
    let out = register_at(home.path(), idp.issuer(), &config, &["--confidential"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let e = stderr(&out);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains(&secret.display().to_string())
            && e.contains("remove it, or pick another --account name"),
        "{e}"
    );
    assert_eq!(
        idp.counters()["registration"],
        0,
        "refused before registering: no orphan client"
    );
    assert_eq!(
        fs::read_to_string(&secret).unwrap(),
        "a secret of another client\n"
    );
    assert!(!config.exists(), "nothing written");
    // A left-over registration token file is kept the same way.
    fs::remove_file(&secret).unwrap();
    let reg = home.path().join("conf/lab.registration");
    fs::write(&reg, "old token\n").unwrap();
    let out = register_at(home.path(), idp.issuer(), &config, &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains(&reg.display().to_string()));
    assert_eq!(fs::read_to_string(&reg).unwrap(), "old token\n");
    assert_eq!(idp.counters()["registration"], 0);
    // Another name registers, with its secret in a new 0600 file.
    fs::remove_file(&reg).unwrap();
    let out = register_at(home.path(), idp.issuer(), &config, &["--confidential"]);
    assert!(out.status.success(), "{out:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[cfg(unix)]
#[test]
fn register_writes_through_a_symlinked_config_and_ties_nothing_unscoped() {
    let home = tempfile::tempdir().unwrap();
    let dotfiles = home.path().join("dotfiles");
    fs::create_dir_all(&dotfiles).unwrap();
    fs::write(dotfiles.join("iam.toml"), USER_CONFIG).unwrap();
    let conf = home.path().join("conf");
    fs::create_dir_all(&conf).unwrap();
    let link = conf.join("config.toml");
    std::os::unix::fs::symlink("../dotfiles/iam.toml", &link).unwrap();
    let stub = RegistrationStub::start(json!({
        "client_id": "linked-id",
        "client_secret": "stub-client-secret",
    }));
    let out = register_at(home.path(), stub.issuer(), &link, &["--confidential"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays a link"
    );
    let text = fs::read_to_string(dotfiles.join("iam.toml")).unwrap();
    assert!(
        text.starts_with(USER_CONFIG) && text.contains("client-id = \"linked-id\""),
        "{text}"
    );
    // The secret is beside the link, not in the dotfiles repository.
    let secret = conf.join("lab.secret");
    assert_eq!(fs::read_to_string(&secret).unwrap(), "stub-client-secret\n");
    assert!(text.contains(&format!("client-secret-file = \"{}\"", secret.display())));
    assert_eq!(fs::read_dir(&dotfiles).unwrap().count(), 1, "{text}");
    assert!(config_loads(home.path(), &link).status.success());

    // Without --url: a hint to tie the account to a git server, and only a URL-scoped helper.
    let e = stderr(&out);
    assert!(!e.contains("stub-client-secret"), "{e}");
    assert!(
        e.contains(&format!(
            "tie the account to your git server: add urls = [\"https://git.example.org/\"] to \
             [account.lab] in {}, or register with --url URL",
            link.display()
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "git config --global credential.https://git.example.org.helper \"iam --account lab \
             --config {}\"",
            link.display()
        )),
        "{e}"
    );
    assert!(!e.contains("credential.helper"), "{e}");

    // A config named relative to the working directory: the secret file is named absolutely.
    let work = home.path().join("work");
    fs::create_dir_all(&work).unwrap();
    let mut cmd = helper(
        home.path(),
        &[
            "--issuer",
            stub.issuer(),
            "--account",
            "lab",
            "--config",
            "rel.toml",
            "--confidential",
        ],
        "register",
    );
    cmd.current_dir(&work);
    let out = run(cmd, "");
    assert!(out.status.success(), "{out:?}");
    let text = fs::read_to_string(work.join("rel.toml")).unwrap();
    assert!(
        text.contains(&format!(
            "client-secret-file = \"{}\"",
            work.join("lab.secret").display()
        )),
        "{text}"
    );
}

/// `HELPER ARGS get < home/request`: git's request from a file, the terminal left to the prompts.
fn helper_line(home: &Path, args: &[&str]) -> String {
    let request = home.join("request");
    fs::write(&request, REQUEST).unwrap();
    format!(
        "{} {} get < {}",
        support::helper_path().display(),
        args.join(" "),
        request.display()
    )
}

/// The terminal prompt: the username is echoed, the password is not, and both come from the
/// terminal (not from git's stdin); the token git gets is live at the provider.
#[test]
fn terminal_prompt_hides_the_password() {
    let idp = Idp::shared();
    let home = tempfile::tempdir().unwrap();
    let answer = home.path().join("answer");
    let args = password_args(idp, PW_CLIENT, &[]);
    let line = format!("{} > {}", helper_line(home.path(), &args), answer.display());
    let mut term = Terminal::start(home.path(), &line);
    let host = format!("127.0.0.1:{}", idp.port());
    let prompt = format!("Username for {host}: ");
    term.wait_until(&prompt, |t| t.contains(&prompt));
    term.type_keys(&format!("{ALICE}\r"));
    let prompt = format!("Password for {ALICE}@{host}: ");
    term.wait_until(&prompt, |t| t.contains(&prompt));
    term.type_keys(&format!("{ALICE_PASSWORD}\r"));
    let (status, shown) = term.finish();
    assert!(status.success(), "{shown:?}");
    assert!(shown.contains(&format!("{host}: {ALICE}")), "{shown:?}");
    assert!(
        !shown.contains(ALICE_PASSWORD),
        "the password was echoed: {shown:?}"
    );
    assert!(shown.contains("deprecated"), "{shown:?}");
    let answered = fs::read_to_string(&answer).unwrap();
    assert!(
        idp.introspect(support::answered_password(&answered)),
        "{answered}"
    );
}

/// Ctrl-C at the password prompt: the helper dies of the interrupt as any program does (exit
/// 130), the terminal has its echo back, the foreground group (the shell standing in for git)
/// is interrupted too, and no password was sent.
#[test]
fn ctrl_c_at_the_password_prompt_restores_the_terminal() {
    let idp = Idp::start();
    let home = tempfile::tempdir().unwrap();
    let args = password_args(&idp, PW_CLIENT, &["--username", ALICE]);
    let line = format!(
        "trap 'echo shell-interrupted' INT; {}; echo helper-exit=$?; \
         echo \"terminal:$(stty -a | tr ' ;' '\\n\\n' | grep -E '^-?(echo|icanon|isig)$' | sort | tr '\\n' ' ')\"",
        helper_line(home.path(), &args)
    );
    let mut term = Terminal::start(home.path(), &line);
    term.wait_until("password prompt", |t| t.contains("Password for "));
    term.type_keys("wond\x03");
    let (status, shown) = term.finish();
    assert!(status.success(), "{shown:?}");
    assert!(shown.contains("shell-interrupted"), "{shown:?}");
    assert!(shown.contains("helper-exit=130"), "{shown:?}");
    assert!(
        shown.contains("terminal:echo icanon isig"),
        "terminal not restored: {shown:?}"
    );
    assert_eq!(idp.token_requests("password"), 0);
}
