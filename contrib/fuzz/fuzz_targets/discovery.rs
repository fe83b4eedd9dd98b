//! Arbitrary bytes as a discovery document to `oauth::discovery::parse_discovery`;
//! see `oauth_checks::check_discovery`.
#![no_main]

// The items `oauth_checks.rs` reaches through `super::` (it is a child of `oauth` in the lib).
use git_credential_iam::oauth::{
    MAX_TOKEN_LIFETIME_SECS, device, discovery, parse_token_response, registration, validate,
};

#[path = "../oauth_checks.rs"]
#[allow(dead_code)]
mod oauth_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    oauth_checks::check_discovery(data);
});
