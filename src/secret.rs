//! `Secret<T>`: a value (access token, refresh token, password, client secret) that must never
//! be printed. Its `Debug` shows a placeholder, it has no `Display`, and the value leaves only
//! through [`Secret::expose`], so every place that handles the raw value is easy to find.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A wrapped secret; see the module docs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The raw value. Call only where the value must go on the wire or into the cache file.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<T: Serialize> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Secret)
    }
}

/// Replaces every occurrence of each secret in `text` with `[redacted]`, for provider messages
/// that may quote what we sent (INDIGO IAM's "Refresh token for value … was not found").
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(*s, "[redacted]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_value() {
        let s = Secret::new("tok-123".to_string());
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(s.expose(), "tok-123");
    }

    #[test]
    fn redact_removes_quoted_secret() {
        let msg = "Refresh token for value eyJabc.def was not found";
        assert_eq!(
            redact(msg, &["eyJabc.def"]),
            "Refresh token for value [redacted] was not found"
        );
    }
}
