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
    if let Some(aud) = &s.audience {
        form.push(("audience", aud));
    }
    let host = host_of(&client.endpoints()?.token_endpoint);
    client
        .token_request(&form, &[password.expose()])
        .map_err(|e| match e {
            Error::OAuth { ref error, .. } if error == "invalid_grant" => Error::WrongPassword {
                host: host.clone(),
                username: username.to_string(),
            },
            // IAM answers a client without the grant (or with a wrong secret) 401 "unauthorized".
            Error::OAuth { ref error, .. }
                if error == "unauthorized_client" || error == "unauthorized" =>
            {
                Error::GrantNotAllowed {
                    host: host.clone(),
                    client_id: s.client_id.clone(),
                }
            }
            e => e,
        })
}
