//! The shapes `git-credential-iam token` prints a token in: raw, an HTTP header, JSON, kubectl's
//! ExecCredential, or a WLCG Bearer Token Discovery file written atomically with mode 0600
//! (`$BEARER_TOKEN_FILE`, else `$XDG_RUNTIME_DIR/bt_u$UID`, else `/tmp/bt_u$UID`). The token is
//! never written through a symbolic link or over a file another user owns (in a shared `/tmp`
//! anyone can pre-create `bt_u$UID`): such a file is refused with its owner and the fix.

use std::path::{Path, PathBuf};

use crate::actions::pipeline::Token;
use crate::encoding::rfc3339;
use crate::error::{Error, Result};
use crate::store::files::write_atomic;

/// An output format of `token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Raw,
    Header,
    Json,
    ExecCredential,
    Wlcg,
}

impl Format {
    /// Parses `--format`.
    pub fn parse(s: &str) -> Result<Format> {
        Ok(match s {
            "raw" => Format::Raw,
            "header" => Format::Header,
            "json" => Format::Json,
            "exec-credential" => Format::ExecCredential,
            "wlcg" => Format::Wlcg,
            // Never quotes the value: it could be a token given in the wrong place.
            _ => {
                return Err(Error::Usage(
                    "--format takes raw, header, json, exec-credential or wlcg".into(),
                ));
            }
        })
    }
}

/// Facts about the token that `json` reports: what was requested (the token itself carries
/// what was granted, when known).
pub struct Describe<'a> {
    pub issuer: &'a str,
    pub scope: &'a str,
    pub audience: Option<&'a str>,
}

/// Renders the token as `format`. For `wlcg`, writes the file and returns its path and a newline.
pub fn render(
    format: Format,
    t: &Token,
    d: &Describe,
    getenv: &dyn Fn(&str) -> Option<String>,
) -> Result<String> {
    let token = t.access.expose();
    Ok(match format {
        Format::Raw => format!("{token}\n"),
        Format::Header => format!("Authorization: Bearer {token}\n"),
        Format::Json => {
            // `scope` and `audience` are what the provider granted when known (the token
            // response's scope, the JWT's aud), else what was requested; the request is
            // reported beside them, and `grant_differs` says whether they disagree.
            let scope = t.granted_scope.as_deref().unwrap_or(d.scope);
            let audience = t.granted_audience.as_deref().or(d.audience);
            let asked: Vec<&str> = d.scope.split_whitespace().collect();
            let got: Vec<&str> = scope.split_whitespace().collect();
            let scope_differs = asked.iter().any(|s| !got.contains(s));
            let audience_differs = match (d.audience, t.granted_audience.as_deref()) {
                (Some(asked), Some(got)) => !got.split_whitespace().any(|a| a == asked),
                _ => false,
            };
            let v = serde_json::json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_at": t.expires_at,
                "issuer": d.issuer,
                "scope": scope,
                "audience": audience,
                "requested_scope": d.scope,
                "requested_audience": d.audience,
                "grant_differs": scope_differs || audience_differs,
            });
            format!("{v}\n")
        }
        Format::ExecCredential => {
            let v = serde_json::json!({
                "apiVersion": "client.authentication.k8s.io/v1",
                "kind": "ExecCredential",
                "status": { "token": token, "expirationTimestamp": rfc3339(t.expires_at) },
            });
            format!("{v}\n")
        }
        Format::Wlcg => {
            let path = wlcg_path(getenv)?;
            write_wlcg(&path, token)?;
            format!("{}\n", path.display())
        }
    })
}

/// Where WLCG Bearer Token Discovery readers look for the token file.
pub fn wlcg_path(getenv: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf> {
    if let Some(p) = getenv("BEARER_TOKEN_FILE").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let uid = current_uid()?;
    Ok(match getenv("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join(format!("bt_u{uid}")),
        None => PathBuf::from("/tmp").join(format!("bt_u{uid}")),
    })
}

/// What to do when the token file's place is taken.
const WLCG_FIX: &str = "set XDG_RUNTIME_DIR or BEARER_TOKEN_FILE to a path you own";

/// Writes the WLCG token file after checking what is already at `path`.
fn write_wlcg(path: &Path, token: &str) -> Result<()> {
    check_wlcg_file(path)?;
    write_atomic(path, format!("{token}\n").as_bytes()).map_err(|e| {
        // Someone may have put a file there since the check (the rename then fails with a bare
        // "Operation not permitted"): name the cause when it is that.
        check_wlcg_file(path).err().unwrap_or(e)
    })
}

/// Refuses a symbolic link, anything but a regular file, and a file another user owns at
/// `path`; a missing file is fine (it is created).
#[cfg(unix)]
fn check_wlcg_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("cannot inspect the WLCG token file", path, e)),
    };
    let refuse =
        |context: String, why: String| Err(Error::io(context, path, std::io::Error::other(why)));
    let uid = crate::sys::current_uid();
    if meta.file_type().is_symlink() {
        return refuse(
            "refusing to write the token through the symbolic link".into(),
            format!("remove it, or {WLCG_FIX}"),
        );
    }
    if meta.uid() != uid {
        return refuse(
            format!("another user (uid {}) owns", meta.uid()),
            format!("the token is not written there; {WLCG_FIX}"),
        );
    }
    if !meta.is_file() {
        return refuse(
            "refusing to replace".into(),
            format!("it is not a regular file; remove it, or {WLCG_FIX}"),
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_wlcg_file(_path: &Path) -> Result<()> {
    Ok(())
}

#[cfg(unix)]
fn current_uid() -> Result<u32> {
    Ok(crate::sys::current_uid())
}

#[cfg(not(unix))]
fn current_uid() -> Result<u32> {
    Err(Error::Usage(
        "--format wlcg needs BEARER_TOKEN_FILE on this platform".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn tok() -> Token {
        Token {
            access: Secret::new("AT".into()),
            expires_at: 1_800_000_000,
            granted_scope: None,
            granted_audience: None,
        }
    }
    const D: Describe = Describe {
        issuer: "https://iam.example/",
        scope: "openid",
        audience: None,
    };

    #[test]
    fn formats() {
        let none = |_: &str| None;
        assert_eq!(render(Format::Raw, &tok(), &D, &none).unwrap(), "AT\n");
        assert_eq!(
            render(Format::Header, &tok(), &D, &none).unwrap(),
            "Authorization: Bearer AT\n"
        );
        let j: serde_json::Value =
            serde_json::from_str(&render(Format::Json, &tok(), &D, &none).unwrap()).unwrap();
        assert_eq!(j["expires_at"], 1_800_000_000);
        assert_eq!(j["issuer"], "https://iam.example/");
        let e: serde_json::Value =
            serde_json::from_str(&render(Format::ExecCredential, &tok(), &D, &none).unwrap())
                .unwrap();
        assert_eq!(e["kind"], "ExecCredential");
        assert_eq!(e["status"]["expirationTimestamp"], "2027-01-15T08:00:00Z");
        assert!(Format::parse("yaml").is_err());
    }

    #[test]
    fn json_reports_what_was_granted_and_what_was_asked() {
        let none = |_: &str| None;
        let json = |t: &Token, d: &Describe| -> serde_json::Value {
            serde_json::from_str(&render(Format::Json, t, d, &none).unwrap()).unwrap()
        };
        let asked = Describe {
            issuer: "https://iam.example/",
            scope: "openid profile",
            audience: Some("https://api.example"),
        };
        // Unknown grant: the request, as before.
        let j = json(&tok(), &asked);
        assert_eq!(
            (&j["scope"], &j["audience"], &j["grant_differs"]),
            (
                &"openid profile".into(),
                &"https://api.example".into(),
                &false.into()
            )
        );
        let mut t = tok();
        t.granted_scope = Some("openid".into());
        t.granted_audience = Some("openid offline_access".into());
        let j = json(&t, &asked);
        assert_eq!(j["scope"], "openid");
        assert_eq!(j["audience"], "openid offline_access");
        assert_eq!(j["requested_scope"], "openid profile");
        assert_eq!(j["requested_audience"], "https://api.example");
        assert_eq!(j["grant_differs"], true);
        t.granted_scope = Some("profile openid email".into());
        t.granted_audience = Some("https://api.example".into());
        assert_eq!(json(&t, &asked)["grant_differs"], false);
    }

    #[test]
    fn wlcg_file_is_private_and_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        let env = move |k: &str| (k == "XDG_RUNTIME_DIR").then(|| d.clone());
        let printed = render(Format::Wlcg, &tok(), &D, &env).unwrap();
        let path = PathBuf::from(printed.trim_end());
        assert!(
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("bt_u")
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "AT\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn wlcg_file_is_never_written_through_a_symlink_or_a_foreign_file() {
        use std::io::Write;
        const SECRET: &str = "the-access-token-value";
        let t = Token {
            access: Secret::new(SECRET.into()),
            expires_at: 1_800_000_000,
            granted_scope: None,
            granted_audience: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        let env = move |k: &str| (k == "XDG_RUNTIME_DIR").then(|| d.clone());
        let path = wlcg_path(&env).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        let e = render(Format::Wlcg, &t, &D, &env).unwrap_err().to_string();
        assert!(
            e.contains("symbolic link") && e.contains(WLCG_FIX) && !e.contains(SECRET),
            "{e}"
        );
        assert!(std::fs::symlink_metadata(&path).unwrap().is_symlink());
        assert!(!elsewhere.exists(), "nothing written through the link");
        std::fs::remove_file(&path).unwrap();

        if crate::sys::current_uid() != 0 {
            let _ = writeln!(
                std::io::stderr(),
                "skipped: needs root (wlcg_file_is_never_written_through_a_symlink_or_a_foreign_file: a file owned by uid 65534)"
            );
            return;
        }
        std::fs::write(&path, "theirs\n").unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let e = render(Format::Wlcg, &t, &D, &env).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("another user (uid 65534) owns {}", path.display()))
                && e.contains(WLCG_FIX)
                && !e.contains(SECRET),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "theirs\n");
    }
}
