//! `Request::read_from` (git's credential protocol) on arbitrary bytes; see `check_protocol`.
#![no_main]

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = checks::check_protocol(data);
});
