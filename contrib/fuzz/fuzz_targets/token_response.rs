//! Arbitrary bytes as a token endpoint answer to `oauth::parse_token_response`;
//! see `oauth_checks::check_token_response`.
#![no_main]

// The items `oauth_checks.rs` reaches through `super::` (it is a child of `oauth` in the lib).
use git_credential_iam::oauth::{
    MAX_TOKEN_LIFETIME_SECS, device, discovery, parse_token_response, registration, validate,
};

#[path = "../oauth_checks.rs"]
#[allow(dead_code)]
mod oauth_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    oauth_checks::check_token_response(data);
});
