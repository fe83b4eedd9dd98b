//! The resource-owner password grant (RFC 6749 §4.3), deprecated and supported only for INDIGO
//! IAM clients whose administrator enabled it. Errors are turned into what the person can act
//! on: a wrong password, or a client that is not allowed the grant.

use super::{Client, TokenResponse};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::trust::host_of;

/// The one line printed on every use.
pub const DEPRECATION: &str = "warning: the password flow is deprecated: it hands your password \
to this program, needs an IAM administrator to enable it for the client, and cannot sign in \
through external identity providers; prefer the device flow (--flow device)";

/// Exchanges a username and password for tokens. Sends `scope` (with `offline_access` by
/// default, so later requests refresh silently) and `audience`.
pub fn grant(client: &Client, username: &str, password: &Secret<String>) -> Result<TokenResponse> {
    let s = client.settings();
    let mut form = vec![
        ("grant_type", "password"),
        ("username", username),
        ("password", password.expose().as_str()),
        ("scope", s.scope.as_str()),
    ];
    client.add_target(&mut form);
    let (url, reply) = client.token_reply(&form)?;
    let host = host_of(&url);
    if (200..300).contains(&reply.status) {
        return super::parse_token_response(&host, &reply.body);
    }
    let e = client.provider_error(&url, &reply, &[password.expose()]);
    Err(refusal(e, reply.status, &host, username, &s.client_id))
}

/// What a refused password grant means. A client the provider says may not use the grant
/// (`unauthorized_client`; IAM's 401 `unauthorized`) is [`Error::GrantNotAllowed`]; other named
/// set-up mistakes (the scope, the audience) stay as they are; any other 400, 401 or 403 (an
/// `invalid_grant`, or glewlwyd's empty 403) is [`Error::WrongPassword`], which names the other
/// possible cause too. 5xx, 429 and network failures stay provider errors.
fn refusal(e: Error, status: u16, host: &str, username: &str, client_id: &str) -> Error {
    match e {
        Error::OAuth { ref error, .. }
            if error == "unauthorized_client" || error == "unauthorized" =>
        {
            Error::GrantNotAllowed {
                host: host.to_string(),
                client_id: client_id.to_string(),
            }
        }
        e if e.is_setup_error() => e,
        _ if matches!(status, 400 | 401 | 403) => Error::WrongPassword {
            host: host.to_string(),
            username: username.to_string(),
            client_id: client_id.to_string(),
        },
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth(status: u16, error: &str) -> Error {
        Error::OAuth {
            host: "sso.example".into(),
            status,
            error: error.into(),
            description: None,
        }
    }

    fn empty(status: u16) -> Error {
        Error::Provider {
            host: "sso.example".into(),
            message: format!("HTTP {status} with a body that is not an OAuth error (empty)"),
        }
    }

    #[test]
    fn refusals_are_told_apart() {
        let r = |e, status| refusal(e, status, "sso.example", "alice", "cli");
        for (e, status) in [
            (oauth(400, "invalid_grant"), 400),
            (empty(403), 403),
            (empty(400), 400),
            (empty(401), 401),
            (oauth(400, "invalid_request"), 400),
        ] {
            assert!(matches!(r(e, status), Error::WrongPassword { .. }));
        }
        assert!(matches!(
            r(oauth(401, "unauthorized"), 401),
            Error::GrantNotAllowed { .. }
        ));
        assert!(matches!(
            r(oauth(400, "unauthorized_client"), 400),
            Error::GrantNotAllowed { .. }
        ));
        assert!(matches!(
            r(oauth(400, "invalid_scope"), 400),
            Error::OAuth { .. }
        ));
        assert!(matches!(r(empty(500), 500), Error::Provider { .. }));
        assert!(matches!(r(empty(429), 429), Error::Provider { .. }));
    }
}
