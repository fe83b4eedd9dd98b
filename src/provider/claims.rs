//! What a JWT says about itself, read without verifying it: only for display (who signed in)
//! and for recording what the provider granted (the audience). Never for a decision that
//! matters to security.

use crate::encoding::base64url_decode;

/// The claims of a JWT, or `None` for an opaque token.
fn claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let payload = token.split('.').nth(1)?;
    match serde_json::from_slice(&base64url_decode(payload)?).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Who a token is about, for people: `preferred_username`, else `name`, else `email`, else
/// `sub` (glewlwyd's ID token has a 32-character `sub` and no `preferred_username`).
pub fn display_name(token: &str) -> Option<String> {
    let c = claims(token)?;
    ["preferred_username", "name", "email", "sub"]
        .iter()
        .filter_map(|k| c.get(*k)?.as_str())
        .map(str::trim)
        .find(|v| !v.is_empty())
        .map(str::to_string)
}

/// The audience of a token when it is a readable JWT: its `aud` claim, a string or the strings
/// of an array joined by spaces. `None` for an opaque token or one without `aud`.
pub fn audience(token: &str) -> Option<String> {
    let aud = match claims(token)?.remove("aud")? {
        serde_json::Value::String(s) => s,
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => return None,
    };
    let aud: String = aud.chars().filter(|c| !c.is_control()).take(1000).collect();
    (!aud.trim().is_empty()).then_some(aud)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::base64;

    fn jwt(claims: &str) -> String {
        format!("h.{}.s", base64(claims.as_bytes()).trim_end_matches('='))
    }

    #[test]
    fn display_name_falls_back_in_order() {
        let all = r#"{"sub":"S","email":"e@x","name":"N","preferred_username":"P"}"#;
        assert_eq!(display_name(&jwt(all)).as_deref(), Some("P"));
        let t = jwt(r#"{"sub":"S","email":"e@x","name":"N","preferred_username":" "}"#);
        assert_eq!(display_name(&t).as_deref(), Some("N"));
        assert_eq!(
            display_name(&jwt(r#"{"sub":"S","email":"e@x"}"#)).as_deref(),
            Some("e@x")
        );
        assert_eq!(
            display_name(&jwt(r#"{"sub":"S","name":7}"#)).as_deref(),
            Some("S")
        );
        assert_eq!(display_name(&jwt(r#"{"exp":1}"#)), None);
        assert_eq!(display_name("opaque"), None);
        assert_eq!(display_name(&jwt("[1]")), None);
    }

    #[test]
    fn audience_as_string_or_list() {
        assert_eq!(audience(&jwt(r#"{"aud":"api"}"#)).as_deref(), Some("api"));
        assert_eq!(
            audience(&jwt(r#"{"aud":["a","b"]}"#)).as_deref(),
            Some("a b")
        );
        assert_eq!(audience(&jwt(r#"{"aud":""}"#)), None);
        assert_eq!(audience(&jwt(r#"{"aud":7}"#)), None);
        assert_eq!(audience(&jwt(r#"{"sub":"x"}"#)), None);
        assert_eq!(audience("opaque"), None);
    }
}
