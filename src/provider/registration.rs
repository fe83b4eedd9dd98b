//! The answer to a dynamic client registration (RFC 7591), parsed and checked in one place so
//! that what `register` writes into the config file and the secret files, and prints, is
//! sane: a printable `client_id`, a printable `client_secret` (it goes into HTTP Basic and a
//! one-line file), a `registration_access_token` that is a valid bearer token. The request
//! itself is sent by `register` (src/actions/register.rs), which parses the answer with
//! [`parse_registration_response`].

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::validate;

/// Longest `client_id` accepted (IAM's are UUIDs; oidc-provider's about 40 characters).
pub const MAX_CLIENT_ID_LEN: usize = 1024;

/// A checked registration response.
#[derive(Debug)]
pub struct Registration {
    pub client_id: String,
    /// Absent for a public client (`token_endpoint_auth_method: none`).
    pub client_secret: Option<Secret<String>>,
    pub registration_access_token: Option<Secret<String>>,
}

#[derive(Deserialize)]
struct Raw {
    client_id: String,
    #[serde(default)]
    client_secret: Option<Secret<String>>,
    #[serde(default)]
    registration_access_token: Option<Secret<String>>,
    #[serde(default)]
    registration_client_uri: Option<String>,
}

/// Parses and checks a registration response from the provider at `host`. Empty optional
/// values read as absent. Errors never quote the response.
pub fn parse_registration_response(host: &str, body: &[u8]) -> Result<Registration> {
    let refuse = |message: String| Error::Provider {
        host: host.to_string(),
        message,
    };
    let raw: Raw = serde_json::from_slice(body).map_err(|e| {
        refuse(format!(
            "the registration response is not usable ({}: {})",
            super::http::describe_body(body),
            if e.is_data() {
                "client_id is missing or a field is mistyped"
            } else {
                "not JSON"
            }
        ))
    })?;
    match validate::refresh_token(&raw.client_id) {
        Ok(()) if raw.client_id.len() <= MAX_CLIENT_ID_LEN => {}
        Ok(()) => {
            return Err(refuse(
                "the registration response's client_id is too long".into(),
            ));
        }
        Err(why) => {
            return Err(refuse(format!(
                "the registration response's client_id is not printable ASCII ({why})"
            )));
        }
    }
    let present = |s: Option<Secret<String>>| s.filter(|s| !s.expose().is_empty());
    let client_secret = present(raw.client_secret);
    if let Some(Err(why)) = client_secret
        .as_ref()
        .map(|s| validate::refresh_token(s.expose()))
    {
        return Err(refuse(format!(
            "the provider sent a client_secret that is not printable ASCII; \
             refusing it ({why})"
        )));
    }
    let registration_access_token = present(raw.registration_access_token);
    if let Some(Err(why)) = registration_access_token
        .as_ref()
        .map(|s| validate::access_token(s.expose()))
    {
        return Err(refuse(format!(
            "the provider sent a registration_access_token that is not a valid \
             bearer token; refusing it ({why})"
        )));
    }
    // Not kept (nothing manages the client afterwards), but an answer that names an unsafe one
    // is not trusted for the rest either.
    if let Some(u) = raw.registration_client_uri.filter(|u| !u.is_empty()) {
        crate::trust::checked(&u, "registration client URI")
            .map_err(|e| refuse(format!("the registration response is refused: {e}")))?;
    }
    Ok(Registration {
        client_id: raw.client_id,
        client_secret,
        registration_access_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Registration> {
        parse_registration_response("iam.example", json.as_bytes())
    }

    #[test]
    fn public_and_confidential_clients() {
        let r = parse(
            r#"{"client_id":"abc-123","client_secret":"","token_endpoint_auth_method":"none"}"#,
        )
        .unwrap();
        assert_eq!(r.client_id, "abc-123");
        assert!(r.client_secret.is_none() && r.registration_access_token.is_none());
        let r = parse(
            r#"{"client_id":"c","client_secret":"s3c+r%t with space","registration_access_token":"eyJ.x.y",
                "registration_client_uri":"https://iam.example/register/c"}"#,
        )
        .unwrap();
        assert_eq!(r.client_secret.unwrap().expose(), "s3c+r%t with space");
        assert_eq!(r.registration_access_token.unwrap().expose(), "eyJ.x.y");
    }

    #[test]
    fn hostile_answers_are_refused_without_quoting_them() {
        for bad in [
            r#"{"client_id":""}"#,
            r#"{"client_id":"evil\u001b[2J"}"#,
            r#"{"client_id":"c\nclient-secret-file = \"/etc/passwd\""}"#,
            r#"{"client_id":"c","client_secret":"SECRET\nline"}"#,
            r#"{"client_id":"c","registration_access_token":"SECRET TOKEN"}"#,
            r#"{"client_id":"c","registration_client_uri":"http://evil.example/"}"#,
            r#"{"client_id":7}"#,
            r#"{"client_secret":"SECRET"}"#,
        ] {
            let m = parse(bad).unwrap_err().to_string();
            assert!(
                !m.contains("SECRET") && !m.contains('\n') && !m.contains('\u{1b}'),
                "{m}"
            );
        }
        assert!(parse(&format!(r#"{{"client_id":"{}"}}"#, "c".repeat(1025))).is_err());
    }
}
