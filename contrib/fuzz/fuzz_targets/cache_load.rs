//! `cache::load` on arbitrary cache file content; see `CacheFixture::check`.
#![no_main]

use std::sync::OnceLock;

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

/// One account in `$TMPDIR/gci-fuzz-cache-PID` (run.sh points TMPDIR into its work directory
/// and removes it afterwards).
fn fixture() -> &'static checks::CacheFixture {
    static F: OnceLock<checks::CacheFixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("gci-fuzz-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        checks::CacheFixture::new(&dir)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fixture().check(data);
});
