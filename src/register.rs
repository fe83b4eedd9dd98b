//! `register`: RFC 7591 dynamic client registration at the provider's `registration_endpoint`
//! (INDIGO IAM's is `<issuer>iam/api/client-registration`), saving the new client as a named
//! account in the config file so that `--account NAME` alone selects it afterwards. The client
//! secret and the registration access token go into 0600 files beside the config, never into it.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::cache::write_atomic;
use crate::cli::Cli;
use crate::config::{self, ConfigFile, Flow, Settings};
use crate::error::{Error, Result};
use crate::helper::Io;
use crate::oauth::Client;
use crate::oauth::device::GRANT_TYPE as DEVICE_GRANT;
use crate::oauth::http::{clean, oauth_error};
use crate::trust::host_of;

/// What `register` was asked for.
pub struct Request<'a> {
    pub name: &'a str,
    pub config_path: &'a Path,
    pub confidential: bool,
    pub print: bool,
}

/// `register` from the command line: the account name from `--account`, the config file from
/// `--config`, `GIT_CREDENTIAL_IAM_CONFIG` or the default path (created if missing).
pub fn run(
    cli: &Cli,
    config: Option<&Path>,
    io: &mut Io,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<()> {
    let mut o = cli.options.clone();
    let name = o.account.take().unwrap_or_default();
    o.client_id.get_or_insert_with(|| "(registering)".into());
    let path = config::explicit_config_path(config, getenv)
        .or_else(config::default_config_path)
        .ok_or_else(|| {
            Error::Usage("cannot find the config directory: pass --config FILE".into())
        })?;
    // The file named by --config or GIT_CREDENTIAL_IAM_CONFIG may not exist yet: register
    // creates it, so it is read only when it is there.
    let s = if path.exists() {
        Settings::resolve(&o, Some(&path), getenv)?
    } else {
        let no_file = |k: &str| getenv(k).filter(|_| k != "GIT_CREDENTIAL_IAM_CONFIG");
        Settings::resolve(&o, None, &no_file)?
    }
    .ok_or_else(|| Error::Usage("register needs --issuer URL and --account NAME".into()))?;
    let r = Request {
        name: &name,
        config_path: &path,
        confidential: cli.confidential,
        print: cli.print,
    };
    register(&s, &r, io)
}

/// Registers a client and saves it as account `r.name`.
pub fn register(s: &Settings, r: &Request, io: &mut Io) -> Result<()> {
    if r.name.is_empty()
        || !r
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::Usage(format!(
            "register needs --account NAME, a name of letters, digits, '-' and '_', not {:?}",
            r.name
        )));
    }
    let existing = ConfigFile::load(r.config_path, false)?;
    if existing.accounts.contains_key(r.name) {
        return Err(Error::Usage(format!(
            "account {:?} already exists in {}; pick another name or remove it first",
            r.name,
            r.config_path.display()
        )));
    }
    let client = Client::new(s, (io.clock)())?;
    let host = host_of(&s.issuer);
    let manual = manual_page(&s.issuer);
    let Some(url) = client.endpoints()?.registration_endpoint.clone() else {
        return Err(Error::Provider {
            host,
            message: format!("offers no dynamic client registration; {manual}"),
        });
    };
    let mut grants = vec![DEVICE_GRANT, "refresh_token"];
    if s.flow == Flow::Password {
        grants.push("password");
        io.say("note: the password grant is requested, but INDIGO IAM leaves it disabled until an administrator enables it",
        );
    }
    let body = json!({
        "client_name": format!("git-credential-iam on {}", hostname()),
        "grant_types": grants,
        "response_types": [],
        "scope": s.scope,
        "token_endpoint_auth_method": if r.confidential { "client_secret_basic" } else { "none" },
    });
    let reply = client.http().post_json(&url, &body)?;
    if !(200..300).contains(&reply.status) {
        let e = oauth_error(&url, &reply, &[]);
        return Err(Error::Provider {
            host,
            message: format!("refused the registration ({e}); {manual}"),
        });
    }
    let resp: Value = serde_json::from_slice(&reply.body).map_err(|e| Error::Provider {
        host: host.clone(),
        message: format!("the registration response is not JSON: {e}"),
    })?;
    let client_id = resp["client_id"]
        .as_str()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::Provider {
            host: host.clone(),
            message: "the registration response has no client_id".into(),
        })?;
    let dir = r.config_path.parent().unwrap_or(Path::new("."));
    let secret_file = save_secret(dir, r.name, "secret", resp["client_secret"].as_str())?;
    let reg_file = save_secret(
        dir,
        r.name,
        "registration",
        resp["registration_access_token"].as_str(),
    )?;
    let mut table = format!(
        "\n[account.{}]\nissuer = {}\nclient-id = {}\nscope = {}\n",
        r.name,
        toml_str(&s.issuer),
        toml_str(client_id),
        toml_str(&s.scope)
    );
    if let Some(f) = &secret_file {
        table.push_str(&format!(
            "client-secret-file = {}\n",
            toml_str(&f.to_string_lossy())
        ));
    }
    if let Some(a) = &s.audience {
        table.push_str(&format!("audience = {}\n", toml_str(a)));
    }
    if s.flow == Flow::Password {
        table.push_str("flow = \"password\"\n");
    }
    let mut text = std::fs::read_to_string(r.config_path).unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&table);
    write_atomic(r.config_path, text.as_bytes())?;
    if r.print {
        print_response(&resp, secret_file.as_deref(), reg_file.as_deref(), io)?;
    }
    let config_opt = if Some(r.config_path.to_path_buf()) == config::default_config_path() {
        String::new()
    } else {
        format!(" --config {}", r.config_path.display())
    };
    io.say(&format!(
        "registered client {client_id} at {host} as account {:?} in {}",
        r.name,
        r.config_path.display()
    ));
    io.say(&format!(
        "use it with: git config --global credential.helper \"iam --account {}{config_opt}\"",
        r.name
    ));
    Ok(())
}

/// Where to register by hand when the provider will not register us.
fn manual_page(issuer: &str) -> String {
    format!(
        "register a client on the provider's web interface (INDIGO IAM: {}, dashboard, \
         \"My clients\") with the device code and refresh token grants, and pass --client-id",
        issuer
    )
}

/// Writes `value` (if any) to `DIR/NAME.KIND`, mode 0600.
fn save_secret(dir: &Path, name: &str, kind: &str, value: Option<&str>) -> Result<Option<PathBuf>> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let path = dir.join(format!("{name}.{kind}"));
    write_atomic(&path, format!("{v}\n").as_bytes())?;
    Ok(Some(path))
}

/// A TOML basic string: JSON's string escapes are valid TOML.
fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this machine".into())
}

fn print_response(
    resp: &Value,
    secret: Option<&Path>,
    reg: Option<&Path>,
    io: &mut Io,
) -> Result<()> {
    let mut out = String::new();
    if let Some(map) = resp.as_object() {
        for (k, v) in map {
            let shown = match k.as_str() {
                "client_secret" => format!(
                    "[saved to {}]",
                    secret.map(|p| p.display().to_string()).unwrap_or_default()
                ),
                "registration_access_token" => format!(
                    "[saved to {}]",
                    reg.map(|p| p.display().to_string()).unwrap_or_default()
                ),
                _ => clean(
                    &match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                    500,
                ),
            };
            out.push_str(&format!("{k}: {shown}\n"));
        }
    }
    io.stdout
        .write_all(out.as_bytes())
        .map_err(|e| Error::io("cannot write to", "stdout", e))
}
