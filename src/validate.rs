//! The one place that decides whether a token from outside (a provider's answer, `import`'s
//! stdin, a cache file) may be kept and later printed. An access token ends up in an HTTP
//! header (`Authorization: Bearer …` from git, `token --format header`, contrib/curl-iam), so it
//! must be an RFC 6750 `b64token`: a CR/LF or a space in it would inject headers. A refresh
//! token only travels form-encoded, but must still be printable ASCII (RFC 6749 `VSCHAR`).
//! The reasons never quote the token.

use crate::error::{Error, Result};

/// Longest token accepted (IAM JWTs with many groups are a few KiB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Why a token was refused (printable; never quotes the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Zero bytes.
    Empty,
    /// Longer than [`MAX_TOKEN_LEN`].
    TooLong,
    /// A byte outside the allowed set (a control character, a space, non-ASCII, …).
    BadByte,
    /// Leading or trailing space (refresh tokens).
    SpaceAtEnd,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Invalid::Empty => "it is empty",
            Invalid::TooLong => "it is longer than 16384 bytes",
            Invalid::BadByte => "it holds a character that is not allowed",
            Invalid::SpaceAtEnd => "it starts or ends with a space",
        })
    }
}

/// An access token: RFC 6750 `b64token` (`1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" /
/// "/" ) *"="`), 1 to [`MAX_TOKEN_LEN`] bytes.
pub fn access_token(t: &str) -> Result<(), Invalid> {
    let b = t.as_bytes();
    if b.is_empty() {
        return Err(Invalid::Empty);
    }
    if b.len() > MAX_TOKEN_LEN {
        return Err(Invalid::TooLong);
    }
    let body = b.iter().rposition(|&c| c != b'=').map_or(0, |i| i + 1);
    if body == 0 {
        return Err(Invalid::BadByte); // only "=": the token characters are missing
    }
    let ok = b[..body]
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || b"-._~+/".contains(&c));
    if ok { Ok(()) } else { Err(Invalid::BadByte) }
}

/// A refresh token: RFC 6749 `VSCHAR` (0x20–0x7E), 1 to [`MAX_TOKEN_LEN`] bytes, no space at
/// either end.
pub fn refresh_token(t: &str) -> Result<(), Invalid> {
    let b = t.as_bytes();
    if b.is_empty() {
        return Err(Invalid::Empty);
    }
    if b.len() > MAX_TOKEN_LEN {
        return Err(Invalid::TooLong);
    }
    if !b.iter().all(|&c| (0x20..=0x7e).contains(&c)) {
        return Err(Invalid::BadByte);
    }
    if b.first() == Some(&b' ') || b.last() == Some(&b' ') {
        return Err(Invalid::SpaceAtEnd);
    }
    Ok(())
}

/// A token response's `token_type`: absent (tolerated), or Bearer in any case.
pub fn token_type(tt: Option<&str>) -> bool {
    tt.is_none_or(|t| t.eq_ignore_ascii_case("bearer"))
}

/// Checks the tokens of a response from the provider at `host`.
pub fn response_tokens(
    host: &str,
    access: &str,
    refresh: Option<&str>,
    token_type_: Option<&str>,
) -> Result<()> {
    if let Err(why) = access_token(access) {
        return Err(Error::Provider {
            host: host.to_string(),
            message: format!(
                "the provider sent an access token that is not a valid bearer token; \
                 refusing it ({why})"
            ),
        });
    }
    if let Some(Err(why)) = refresh.map(refresh_token) {
        return Err(Error::Provider {
            host: host.to_string(),
            message: format!(
                "the provider sent a refresh token that is not printable ASCII; \
                 refusing it ({why})"
            ),
        });
    }
    if let Some(tt) = token_type_.filter(|t| !token_type(Some(t))) {
        return Err(Error::Provider {
            host: host.to_string(),
            message: format!(
                "token_type {:?} is not Bearer",
                crate::encoding::clean(tt, 40)
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens() {
        for good in [
            "a",
            "abc.def-ghi_jkl~mno+pqr/stu",
            "eyJhbGciOi.eyJzdWIi.sig==",
            "0123456789",
            "x=",
        ] {
            assert_eq!(access_token(good), Ok(()), "{good:?}");
        }
        for (bad, why) in [
            ("", Invalid::Empty),
            ("=", Invalid::BadByte),
            ("a=b", Invalid::BadByte),
            ("tok\r\nX-Injected: 1", Invalid::BadByte),
            ("tok\n", Invalid::BadByte),
            ("two words", Invalid::BadByte),
            ("tok\0", Invalid::BadByte),
            ("tökén", Invalid::BadByte),
            ("a,b", Invalid::BadByte),
            ("\"quoted\"", Invalid::BadByte),
        ] {
            assert_eq!(access_token(bad), Err(why), "{bad:?}");
        }
        assert_eq!(access_token(&"a".repeat(MAX_TOKEN_LEN)), Ok(()));
        assert_eq!(
            access_token(&"a".repeat(MAX_TOKEN_LEN + 1)),
            Err(Invalid::TooLong)
        );
    }

    #[test]
    fn refresh_tokens() {
        for good in ["rt", "a b", "!~{}\"'=,;", "eyJ.x.y"] {
            assert_eq!(refresh_token(good), Ok(()), "{good:?}");
        }
        for (bad, why) in [
            ("", Invalid::Empty),
            (" rt", Invalid::SpaceAtEnd),
            ("rt ", Invalid::SpaceAtEnd),
            ("rt\n", Invalid::BadByte),
            ("r\rt", Invalid::BadByte),
            ("r\tt", Invalid::BadByte),
            ("r\u{7f}t", Invalid::BadByte),
            ("rété", Invalid::BadByte),
        ] {
            assert_eq!(refresh_token(bad), Err(why), "{bad:?}");
        }
        assert_eq!(
            refresh_token(&"r".repeat(MAX_TOKEN_LEN + 1)),
            Err(Invalid::TooLong)
        );
    }

    #[test]
    fn token_types() {
        assert!(token_type(None));
        assert!(token_type(Some("Bearer")));
        assert!(token_type(Some("bearer")));
        assert!(token_type(Some("BEARER")));
        assert!(!token_type(Some("DPoP")));
        assert!(!token_type(Some("Bearer ")));
    }

    #[test]
    fn refusals_name_the_host_and_never_the_token() {
        let e = response_tokens("iam.example", "SECRET\r\nX: y", None, None).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains(
                "iam.example: the provider sent an access token that is not a valid bearer token"
            ) && m.contains("refusing it")
                && !m.contains("SECRET"),
            "{m}"
        );
        let e = response_tokens("iam.example", "ok", Some("RT-SECRET\n"), None).unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("refresh token") && !m.contains("RT-SECRET"),
            "{m}"
        );
        let e = response_tokens("iam.example", "ok", None, Some("mac")).unwrap_err();
        assert!(e.to_string().contains("not Bearer"), "{e}");
        assert!(response_tokens("iam.example", "ok", Some("rt"), Some("Bearer")).is_ok());
    }
}
