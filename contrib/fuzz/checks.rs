//! The properties both fuzz targets check, shared with `tests/it/hostile_input.rs` (which includes
//! this file with `#[path]`), so plain `cargo test` checks the seed corpus and the property tests
//! against exactly what the fuzzer checks. Every check panics on a violation.

use std::fs::{self, OpenOptions};
use std::io::{BufReader, Write};
use std::path::Path;

use git_credential_iam::Error;
use git_credential_iam::cache::{self, AccountFiles, Entry};
use git_credential_iam::protocol::{MAX_INPUT, Request};
use git_credential_iam::{Options, Settings};

/// git's credential protocol on hostile bytes: `Request::read_from` never panics, answers the
/// same whatever the reader's buffer size, fails only with a one-line `Error::Input`, and
/// whatever it accepts writes back (`Request::write_to`) to a block that parses to the same
/// request and writes back to the same bytes.
pub fn check_protocol(input: &[u8]) -> Result<Request, Error> {
    let whole = Request::read_from(&mut &input[..]);
    // A buffer size picked by the input (1..=64 bytes), so lines straddle buffer refills.
    let cap = 1 + (cache::fnv1a(input) % 64) as usize;
    let chunked = Request::read_from(&mut BufReader::with_capacity(cap, input));
    match (&whole, &chunked) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "buffer size {cap} changed the request"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "buffer size {cap}"),
        _ => panic!("buffer size {cap} changed the outcome: {whole:?} vs {chunked:?}"),
    }
    let req = match whole {
        Ok(r) => r,
        Err(e) => {
            assert!(matches!(e, Error::Input(_)), "not an input error: {e:?}");
            let msg = e.to_string();
            assert!(!msg.contains(['\n', '\r']), "multi-line error: {msg:?}");
            return Err(e);
        }
    };
    let mut out = Vec::new();
    if let Err(e) = req.write_to(&mut out) {
        // The one thing the parser accepts that cannot be written back: a request that grows
        // past the input limit (`url=` expands into `protocol=`, `host=`, `path=` lines).
        assert!(
            input.len() > MAX_INPUT - 64 && e.to_string().contains("larger"),
            "an accepted request cannot be written back: {e}"
        );
        assert!(out.is_empty(), "a refused request wrote something");
        return Ok(req);
    }
    let again = Request::read_from(&mut &out[..]).expect("a written request parses");
    assert_eq!(again, req, "write then parse is not the identity");
    let mut out2 = Vec::new();
    again
        .write_to(&mut out2)
        .expect("a written request writes again");
    assert_eq!(out, out2, "writing is not canonical");
    Ok(req)
}

/// What `cache::load` made of a file.
#[derive(Debug, PartialEq)]
pub enum Loaded {
    /// This account's entry.
    Entry,
    /// Valid, but another account's entry: left in place.
    Other,
    /// Corrupt: moved aside with a warning.
    MovedAside,
    /// Refused with a (one-line) error, e.g. a newer format.
    Refused,
}

/// A private cache directory with one account, for [`CacheFixture::check`].
pub struct CacheFixture {
    pub settings: Settings,
    pub files: AccountFiles,
}

impl CacheFixture {
    /// Sets up the account in `dir` (which must exist and be empty). The settings come from
    /// `Settings::resolve` with an empty config file, so nothing of the user's own configuration
    /// or environment leaks in.
    pub fn new(dir: &Path) -> CacheFixture {
        let config = dir.join("config.toml");
        fs::write(&config, "").unwrap();
        let opts = Options {
            issuer: Some("https://iam.example/".into()),
            client_id: Some("cli".into()),
            cache_dir: Some(dir.join("cache")),
            ..Options::default()
        };
        let settings = Settings::resolve(&opts, Some(&config), &|_| None)
            .expect("settings resolve")
            .expect("an issuer is set");
        cache::ensure_dir(&settings.cache_dir).unwrap();
        let files = AccountFiles::for_settings(&settings);
        CacheFixture { settings, files }
    }

    /// Writes `content` as the account's cache file (mode 0600) and loads it: `cache::load`
    /// never panics; it returns this account's entry, `None` for another account's entry (file
    /// kept, no warning) or for a corrupt file (moved aside, one warning), or a one-line error. A
    /// loaded access token is always a valid bearer token (an invalid one is dropped with one
    /// warning).
    /// Leaves the cache directory empty.
    pub fn check(&self, content: &[u8]) -> Loaded {
        let mut o = OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        o.open(&self.files.data)
            .and_then(|mut f| f.write_all(content))
            .unwrap();
        let mut warnings = Vec::new();
        let got = cache::load(&self.files, &self.settings, &mut |w| {
            warnings.push(w.to_string())
        });
        for w in &warnings {
            assert!(!w.contains(['\n', '\r']), "multi-line warning: {w:?}");
        }
        let kept = self.files.data.exists();
        let loaded = match got {
            Ok(Some(e)) => {
                check_entry(&e, &self.settings);
                assert!(kept, "an entry's file stays");
                // One warning at most: an access token that is not a valid bearer token is
                // dropped (never printed); the rest of the entry is kept.
                match warnings.as_slice() {
                    [] => {}
                    [w] => {
                        assert!(w.contains("not a valid bearer token"), "{w}");
                        assert!(e.access_token.is_none() && e.expires_at.is_none());
                    }
                    more => panic!("{more:?}"),
                }
                Loaded::Entry
            }
            Ok(None) if kept => {
                assert!(warnings.is_empty(), "{warnings:?}");
                Loaded::Other
            }
            Ok(None) => {
                assert_eq!(warnings.len(), 1, "{warnings:?}");
                assert!(warnings[0].contains("corrupt"), "{warnings:?}");
                Loaded::MovedAside
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.contains(['\n', '\r']), "multi-line error: {msg:?}");
                assert!(kept, "a refused file stays");
                Loaded::Refused
            }
        };
        for ent in fs::read_dir(&self.settings.cache_dir).unwrap().flatten() {
            fs::remove_file(ent.path()).unwrap();
        }
        loaded
    }
}

fn check_entry(e: &Entry, s: &Settings) {
    if let Some(t) = &e.access_token {
        assert!(
            git_credential_iam::oauth::validate::access_token(t.expose()).is_ok(),
            "an access token that is not a valid bearer token was loaded"
        );
    }
    assert_eq!(e.issuer, s.issuer);
    assert_eq!(e.client_id, s.client_id);
    assert_eq!(e.audience, s.audience);
    assert!(e.version <= cache::VERSION, "newer format accepted");
    // What the helper does with an entry must not panic either.
    let _ = e.valid_access_token(i64::MAX, u64::MAX);
    let _ = e.valid_access_token(i64::MIN, 0);
    let _ = e.valid_access_token(0, 60);
}
