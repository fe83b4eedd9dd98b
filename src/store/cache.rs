//! The token cache: one small versioned JSON file per account key (a hash of issuer, client id,
//! scopes, audience and resources) in a private directory (mode 0700), each file mode 0600 with a sibling
//! `.lock` file. A cache hit reads one small file, however many accounts exist. Writes go
//! through [`write_atomic`] (a temp file in the same directory, `rename`, then `fsync`),
//! so readers see the old or the new file, never a torn one. A corrupt file is moved aside (not deleted) and treated as
//! empty; a file of a newer format is refused and left alone.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::store::files::{ensure_dir, fnv1a, write_atomic};
use crate::store::lock::LockFile;
use crate::sys::current_uid;
use crate::sys::hardening::open_read_nofollow;

/// The format version written into every entry.
pub const VERSION: u32 = 1;

/// One account's tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub version: u32,
    pub issuer: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The RFC 8707 resource indicators the tokens were asked for (`--resource`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Secret<String>>,
    /// Unix seconds at which the access token expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Unix seconds at which this helper obtained the access token (refresh, sign-in, import):
    /// with `expires_at`, the token's issued lifetime, which caps the minimum lifetime asked of
    /// it ([`Entry::valid_access_token`]). Absent in files written before it existed: the
    /// minimum lifetime then applies uncapped, as it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obtained_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret<String>>,
    /// The scope the provider granted with the last token (its `scope`, RFC 6749 §5.1; the
    /// requested one when it sent none). Absent in files of older versions and after `import`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_scope: Option<String>,
    /// The audience of the last access token, when it is a readable JWT (its `aud`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_audience: Option<String>,
    /// Unix seconds of the last write.
    #[serde(default)]
    pub updated_at: i64,
}

impl Entry {
    /// An empty entry for the account `s`.
    pub fn empty(s: &Settings) -> Entry {
        Entry {
            version: VERSION,
            issuer: s.issuer.clone(),
            client_id: s.client_id.clone(),
            scope: s.scope.clone(),
            audience: s.audience.clone(),
            resource: s.resources.clone(),
            access_token: None,
            expires_at: None,
            obtained_at: None,
            refresh_token: None,
            granted_scope: None,
            granted_audience: None,
            updated_at: 0,
        }
    }

    /// The requested scopes the provider did not grant, in request order (none when the
    /// granted scope is unknown).
    pub fn scopes_not_granted(&self) -> Vec<&str> {
        let Some(granted) = &self.granted_scope else {
            return Vec::new();
        };
        let granted: Vec<&str> = granted.split_whitespace().collect();
        self.scope
            .split_whitespace()
            .filter(|s| !granted.contains(s))
            .collect()
    }

    /// Whether the token's audience is known and does not include the requested one.
    pub fn audience_differs(&self) -> bool {
        match (&self.audience, &self.granted_audience) {
            (Some(asked), Some(got)) => !got.split_whitespace().any(|a| a == asked),
            _ => false,
        }
    }

    /// The access token if it stays valid for at least the minimum lifetime after `now`: the
    /// asked `min_lifetime`, a soft one capped at half the token's issued lifetime when that is
    /// known ([`effective_min_lifetime`]).
    pub fn valid_access_token(&self, now: i64, min_lifetime: u64) -> Option<(&str, i64)> {
        let token = self.access_token.as_ref()?;
        let exp = self.expires_at?;
        let issued = self.obtained_at.map(|at| exp.saturating_sub(at));
        let min = effective_min_lifetime(min_lifetime, issued);
        (exp.saturating_sub(now) >= min).then_some((token.expose().as_str(), exp))
    }

    /// Records an access token obtained at `now`, valid until `expires_at`.
    pub fn set_access_token(&mut self, token: Secret<String>, expires_at: i64, now: i64) {
        self.access_token = Some(token);
        self.expires_at = Some(expires_at);
        self.obtained_at = Some(now);
        self.updated_at = now;
    }

    /// Forgets the access token (rejected by a server, or from a dead login).
    pub fn clear_access_token(&mut self) {
        self.access_token = None;
        self.expires_at = None;
        self.obtained_at = None;
    }

    fn belongs_to(&self, s: &Settings) -> bool {
        self.issuer == s.issuer
            && self.client_id == s.client_id
            && self.audience == s.audience
            && sorted(&self.resource) == sorted(&s.resources)
    }
}

/// The cap on a soft minimum lifetime, as a divisor of the issued lifetime: such a token is
/// reused during the first half of its life at least. Half, because it bounds the refreshes to
/// two per issued lifetime however short the provider makes it (a provider issuing 60-second
/// tokens got a refresh on every `get` under the default `--min-lifetime 60`), while every token
/// served still has at least half its issued life left: room for the request that asked, and
/// as much as can be promised without refreshing more often than that.
pub const LIFETIME_DIVISOR: i64 = 2;

/// The largest minimum lifetime that is soft: the default `--min-lifetime`. Up to it, the
/// minimum only keeps a token from expiring in the middle of a request, which is relative to
/// how long the provider's tokens live, and is capped ([`LIFETIME_DIVISOR`]). A longer one is a
/// requirement (a job that needs its token for an hour; `--min-lifetime 999999` to force a
/// refresh) and is honoured as asked, however often that refreshes.
const SOFT_MIN_LIFETIME: u64 = crate::config::DEFAULT_MIN_LIFETIME;

/// The minimum remaining lifetime (seconds) a cached token must have to be served: `asked`
/// (`--min-lifetime`), and when it is soft ([`SOFT_MIN_LIFETIME`]) and the token's `issued`
/// lifetime is known, at most that lifetime over [`LIFETIME_DIVISOR`] (never below a second).
pub fn effective_min_lifetime(asked: u64, issued: Option<i64>) -> i64 {
    let min = i64::try_from(asked).unwrap_or(i64::MAX);
    match issued {
        Some(life) if asked <= SOFT_MIN_LIFETIME => min.min((life / LIFETIME_DIVISOR).max(1)),
        _ => min,
    }
}

/// The cache files of one account.
#[derive(Debug, Clone)]
pub struct AccountFiles {
    pub dir: PathBuf,
    pub data: PathBuf,
    /// The account's lock (`KEY.lock`, and `KEY.lock.owner` on a shared file system).
    pub lock: LockFile,
}

impl AccountFiles {
    /// The files for the account described by `s`.
    pub fn for_settings(s: &Settings) -> AccountFiles {
        let key = account_key_with(
            &s.issuer,
            &s.client_id,
            &s.scope,
            s.audience.as_deref(),
            &s.resources,
        );
        AccountFiles {
            dir: s.cache_dir.clone(),
            data: s.cache_dir.join(format!("{key}.json")),
            lock: LockFile::new(s.cache_dir.join(format!("{key}.lock")), s.lock_mode),
        }
    }
}

/// A stable key: FNV-1a over the fields that make tokens interchangeable. Scopes are compared
/// as a set. The file also records the fields, and a mismatch reads as a miss.
pub fn account_key(issuer: &str, client_id: &str, scope: &str, audience: Option<&str>) -> String {
    account_key_with(issuer, client_id, scope, audience, &[])
}

/// [`account_key`] with the RFC 8707 resources, compared as a set. Without resources the key is
/// exactly [`account_key`]'s of before they existed, so existing caches keep their files.
pub fn account_key_with(
    issuer: &str,
    client_id: &str,
    scope: &str,
    audience: Option<&str>,
    resources: &[String],
) -> String {
    let mut scopes: Vec<&str> = scope.split_whitespace().collect();
    scopes.sort_unstable();
    scopes.dedup();
    let mut material = format!(
        "{issuer}\0{client_id}\0{}\0{}",
        scopes.join(" "),
        audience.unwrap_or("")
    );
    let resources = sorted(resources);
    if !resources.is_empty() {
        material.push_str("\0resource");
        for r in resources {
            material.push('\0');
            material.push_str(r);
        }
    }
    format!("{:016x}", fnv1a(material.as_bytes()))
}

/// `items` sorted, without repeats.
fn sorted(items: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = items.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Reads the entry of account `s`. A missing file is `None`; a corrupt one is moved aside with a
/// warning through `warn` and reads as `None`. A file of a newer format (its `version` field,
/// even when the rest does not parse) is an error and stays as it is: every write path loads
/// first, so none overwrites it.
pub fn load(
    files: &AccountFiles,
    s: &Settings,
    warn: &mut dyn FnMut(&str),
) -> Result<Option<Entry>> {
    read_entry(files, s, warn, true)
}

/// The lock-free read of the hot path: [`load`], except that a file that does not parse is
/// only skipped, never moved aside. A reader without the lock may glimpse a file while it is
/// being replaced (on a network file system, say); the holder of the lock, which re-reads with
/// [`load`], decides whether it is corrupt.
pub fn peek(
    files: &AccountFiles,
    s: &Settings,
    warn: &mut dyn FnMut(&str),
) -> Result<Option<Entry>> {
    read_entry(files, s, warn, false)
}

fn read_entry(
    files: &AccountFiles,
    s: &Settings,
    warn: &mut dyn FnMut(&str),
    locked: bool,
) -> Result<Option<Entry>> {
    let Some(bytes) = read_private(&files.data, warn)? else {
        return Ok(None);
    };
    match serde_json::from_slice::<Entry>(&bytes) {
        Ok(e) if e.version > VERSION => Err(newer_format(&files.data, e.version.into())),
        Ok(e) if e.belongs_to(s) => Ok(Some(cached_entry(e, &files.data, warn))),
        Ok(_) => Ok(None),
        Err(err) => {
            // A newer format may not parse as this version's entry at all: it is no corruption,
            // and moving it aside would lose that version's login. Refuse, and touch nothing.
            if let Some(v) = format_version(&bytes).filter(|v| *v > u64::from(VERSION)) {
                return Err(newer_format(&files.data, v));
            }
            if !locked {
                return Ok(None);
            }
            let aside = files
                .data
                .with_extension(format!("json.corrupt-{}", std::process::id()));
            let moved = fs::rename(&files.data, &aside).is_ok();
            warn(&format!(
                "warning: cache file {} is corrupt ({}); {}; starting afresh",
                files.data.display(),
                err.classify_name(),
                if moved {
                    format!("moved it to {}", aside.display())
                } else {
                    "left it".into()
                }
            ));
            Ok(None)
        }
    }
}

/// The `version` a cache file declares, if it is valid JSON: an object with an unsigned integer
/// `version` field (whatever the rest holds). Only for a file that is no entry of ours.
fn format_version(bytes: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()?
        .get("version")?
        .as_u64()
}

/// The refusal of a cache file written in format `version`, newer than this one's.
fn newer_format(path: &Path, version: u64) -> Error {
    Error::Cache {
        path: path.to_path_buf(),
        message: format!(
            "was written by a newer git-credential-iam (format {version}); upgrade, or pass \
             --cache-dir DIR"
        ),
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "unexpected fields",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

/// A cache entry just read from `path`: an access token that is not a valid bearer token (the
/// file was edited, or written by a version that did not check) is dropped with a warning
/// through `warn`, so it is never printed. Returns the entry.
fn cached_entry(mut e: Entry, path: &Path, warn: &mut dyn FnMut(&str)) -> Entry {
    if let Some(Err(why)) = e
        .access_token
        .as_ref()
        .map(|t| crate::validate::access_token(t.expose()))
    {
        warn(&format!(
            "warning: cache file {} holds an access token that is not a valid bearer token \
             ({why}); ignoring it",
            path.display()
        ));
        e.clear_access_token();
    }
    e
}

/// Opens an entry's file. Writers replace it by `rename`, and an open racing that can fail for
/// an instant where the file is on a network or FUSE file system: `ESTALE` on NFS, `ENOENT` on
/// FUSE file systems that resolve a file by the name it had when the opener looked it up
/// (bindfs, sshfs): a valid login would then read as none. Such an open is tried once more,
/// with a fresh lookup, before the file is taken for missing.
fn open_entry(path: &Path) -> Result<Option<fs::File>> {
    let stale = |e: &Error| {
        #[cfg(unix)]
        {
            matches!(e, Error::Io { source, .. } if source.raw_os_error() == Some(libc::ESTALE))
        }
        #[cfg(not(unix))]
        {
            let _ = e;
            false
        }
    };
    match open_read_nofollow(path, "the cache file") {
        Ok(None) => open_read_nofollow(path, "the cache file"),
        Err(e) if stale(&e) => open_read_nofollow(path, "the cache file"),
        first => first,
    }
}

/// Reads a file that must be private: refuses symlinks and files of another user, repairs
/// group/world permissions.
fn read_private(path: &Path, warn: &mut dyn FnMut(&str)) -> Result<Option<Vec<u8>>> {
    let Some(mut file) = open_entry(path)? else {
        return Ok(None);
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // fstat of what was opened (no race with a rename): the hot path reads this file
        // without checking the directory, so the file itself must be ours. Anyone else's
        // (say, planted by the owner of a `--cache-dir` we run in as root) is never served,
        // and never made private by us either.
        let meta = file
            .metadata()
            .map_err(|e| Error::io("cannot stat", path, e))?;
        let me = current_uid();
        if meta.uid() != me {
            return Err(Error::Cache {
                path: path.to_path_buf(),
                message: format!(
                    "belongs to user id {}, not to you (user id {me}); refusing to use its \
                     tokens (remove it, or pass --cache-dir DIR with a directory of yours)",
                    meta.uid()
                ),
            });
        }
        if meta.permissions().mode() & 0o077 != 0 {
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io("cannot make private", path, e))?;
            warn(&format!(
                "warning: cache file {} was readable by others; its mode is now 0600 \
                 (consider logging out and in again)",
                path.display()
            ));
        }
    }
    // Through `take`: std's `File::read_to_end` would `statx` the file again for a size hint,
    // and a cache file has no business being larger than 1 MiB.
    let mut bytes = Vec::with_capacity(4096);
    std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, 1 << 20), &mut bytes)
        .map_err(|e| Error::io("cannot read the cache file", path, e))?;
    Ok(Some(bytes))
}

/// Writes the entry atomically (see [`write_atomic`]).
pub fn save(files: &AccountFiles, entry: &Entry) -> Result<()> {
    let json = serde_json::to_vec_pretty(entry).expect("an entry always serializes");
    write_atomic(&files.data, &json)
}

/// Removes the account's data file (the lock file stays: another process may hold it).
pub fn remove(files: &AccountFiles) -> Result<()> {
    match fs::remove_file(&files.data) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io("cannot remove the cache file", &files.data, e))
        }
        _ => Ok(()),
    }
}

/// Creates the cache directory (0700) or checks an existing one before anything is written into
/// it: a symlink or another user's directory is refused; group/world access is removed with a
/// warning.
pub fn prepare_dir(dir: &Path, warn: &mut dyn FnMut(&str)) -> Result<()> {
    let meta = match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ensure_dir(dir),
        Err(e) => return Err(Error::io("cannot inspect the cache directory", dir, e)),
        Ok(m) => m,
    };
    let refuse = |message: String| {
        Err(Error::Cache {
            path: dir.to_path_buf(),
            message,
        })
    };
    if meta.file_type().is_symlink() {
        return refuse(
            "is a symbolic link; refusing to use it (remove it, or pass --cache-dir)".into(),
        );
    }
    if !meta.is_dir() {
        return refuse("is not a directory (remove it, or pass --cache-dir)".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let me = current_uid();
        if meta.uid() != me {
            return refuse(format!(
                "belongs to user id {}, not to you (user id {me}); refusing to keep tokens there \
                 (fix its owner, or pass --cache-dir)",
                meta.uid()
            ));
        }
        if meta.mode() & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io("cannot make private", dir, e))?;
            warn(&format!(
                "warning: cache directory {} was open to other users; its mode is now 0700",
                dir.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = warn;
    Ok(())
}

/// Every entry in the cache directory, with its file (for `status`).
pub fn list(dir: &Path) -> Result<Vec<(PathBuf, Entry)>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("cannot list the cache directory", dir, e)),
    };
    let mut out = Vec::new();
    for ent in rd.flatten() {
        let p = ent.path();
        // An account's file is `KEY.json`, KEY being [`account_key`]'s 16 hex digits; other
        // files in the directory (the provider's cached documents, say) are not accounts.
        let is_entry = p.extension().is_some_and(|e| e == "json")
            && p.file_stem()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() == 16 && n.bytes().all(|b| b.is_ascii_hexdigit()));
        if is_entry
            && let Ok(Some(bytes)) = read_private(&p, &mut |_| {})
            && let Ok(e) = serde_json::from_slice::<Entry>(&bytes)
        {
            out.push((p, e));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthMode, Interactive};
    use std::io::Write;
    use std::time::Duration;

    pub(crate) fn settings(dir: &Path) -> Settings {
        Settings {
            account: None,
            issuer: "https://iam.example/".into(),
            client_id: "cli".into(),
            client_secret_file: None,
            scope: "openid offline_access".into(),
            audience: None,
            cache_dir: dir.to_path_buf(),
            min_lifetime: 60,
            username: None,
            auth: AuthMode::Auto,
            interactive: Interactive::Never,
            ca_file: None,
            timeout: Duration::from_secs(5),
            lock_timeout: Duration::from_secs(5),
            lock_mode: crate::config::LockMode::Auto,
            flow: crate::config::Flow::Device,
            password_file: None,
            password_env: None,
            qr: None,
            browser: None,
            resources: Vec::new(),
            ssl_cert_file: None,
        }
    }

    #[test]
    fn resources_key_apart_but_leave_old_keys_alone() {
        // The key of an account without resources, as every earlier version computed it.
        let old = format!(
            "{:016x}",
            fnv1a(b"https://i.example/\0c\0offline_access openid\0")
        );
        assert_eq!(
            account_key("https://i.example/", "c", "openid offline_access", None),
            old
        );
        let with = |r: &[&str]| {
            let r: Vec<String> = r.iter().map(|s| s.to_string()).collect();
            account_key_with("https://i.example/", "c", "openid offline_access", None, &r)
        };
        assert_eq!(with(&[]), old);
        let ab = with(&["https://a.example/", "https://b.example/"]);
        assert_ne!(ab, old);
        assert_eq!(
            ab,
            with(&[
                "https://b.example/",
                "https://a.example/",
                "https://a.example/"
            ])
        );
        assert_ne!(ab, with(&["https://a.example/"]));
        // Not the same as an audience of the same text.
        assert_ne!(
            with(&["https://a.example/"]),
            account_key(
                "https://i.example/",
                "c",
                "openid offline_access",
                Some("https://a.example/")
            )
        );
    }

    #[test]
    fn key_ignores_scope_order_but_not_audience() {
        let a = account_key("i", "c", "openid offline_access", None);
        assert_eq!(a, account_key("i", "c", "offline_access  openid", None));
        assert_ne!(
            a,
            account_key("i", "c", "openid offline_access", Some("aud"))
        );
    }

    #[test]
    fn save_load_round_trip_private() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(&dir.path().join("cache"));
        let files = AccountFiles::for_settings(&s);
        let mut e = Entry::empty(&s);
        e.access_token = Some(Secret::new("at".into()));
        e.expires_at = Some(1000);
        save(&files, &e).unwrap();
        let got = load(&files, &s, &mut |w| panic!("{w}")).unwrap().unwrap();
        assert_eq!(got, e);
        assert_eq!(got.valid_access_token(900, 60), Some(("at", 1000)));
        assert_eq!(got.valid_access_token(950, 60), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(m(&files.data), 0o600);
            assert_eq!(m(&files.dir), 0o700);
        }
    }

    /// The soft minimum lifetime is capped at half the issued lifetime; a longer minimum is
    /// honoured as asked; an unknown issued lifetime changes nothing.
    #[test]
    fn min_lifetime_capped_at_half_the_issued_lifetime() {
        assert_eq!(effective_min_lifetime(60, Some(60)), 30);
        assert_eq!(effective_min_lifetime(60, Some(3600)), 60);
        assert_eq!(
            effective_min_lifetime(60, Some(1)),
            1,
            "never below a second"
        );
        assert_eq!(
            effective_min_lifetime(60, Some(-5)),
            1,
            "nonsense: a second"
        );
        assert_eq!(effective_min_lifetime(0, Some(60)), 0);
        assert_eq!(effective_min_lifetime(60, None), 60);
        assert_eq!(effective_min_lifetime(999_999, Some(3600)), 999_999);
        assert_eq!(effective_min_lifetime(u64::MAX, Some(3600)), i64::MAX);

        let dir = tempfile::tempdir().unwrap();
        let mut e = Entry::empty(&settings(dir.path()));
        e.set_access_token(Secret::new("at".into()), 1060, 1000);
        assert_eq!(e.obtained_at, Some(1000));
        assert_eq!(e.valid_access_token(1030, 60), Some(("at", 1060)));
        assert_eq!(e.valid_access_token(1031, 60), None);
        // Written before `obtained_at` existed: the minimum applies uncapped, as it did.
        e.obtained_at = None;
        assert_eq!(e.valid_access_token(1000, 60), Some(("at", 1060)));
        assert_eq!(e.valid_access_token(1001, 60), None);
        e.clear_access_token();
        assert_eq!(
            (e.access_token.is_none(), e.expires_at, e.obtained_at),
            (true, None, None)
        );
    }

    /// A file written before `granted_scope`/`granted_audience` existed still loads, and one
    /// with them round-trips.
    #[test]
    fn old_files_without_the_granted_fields_load() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let files = AccountFiles::for_settings(&s);
        let old = br#"{"version":1,"issuer":"https://iam.example/","client_id":"cli","scope":"openid offline_access","access_token":"at","expires_at":1000,"refresh_token":"rt","updated_at":1}"#;
        write_atomic(&files.data, old).unwrap();
        let mut e = load(&files, &s, &mut |w| panic!("{w}")).unwrap().unwrap();
        assert_eq!(
            (e.granted_scope.as_deref(), e.granted_audience.as_deref()),
            (None, None)
        );
        assert!(e.scopes_not_granted().is_empty());
        e.granted_scope = Some("openid".into());
        e.granted_audience = Some("openid offline_access".into());
        save(&files, &e).unwrap();
        let back = load(&files, &s, &mut |w| panic!("{w}")).unwrap().unwrap();
        assert_eq!(back, e);
        assert_eq!(back.scopes_not_granted(), ["offline_access"]);
        assert!(!back.audience_differs(), "nothing was asked");
        e.audience = Some("https://api.example".into());
        assert!(e.audience_differs());
        e.granted_audience = Some("x https://api.example".into());
        assert!(!e.audience_differs());
    }

    #[test]
    fn corrupt_file_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let files = AccountFiles::for_settings(&s);
        fs::write(&files.data, b"{\"version\":1,").unwrap();
        let mut warned = String::new();
        // The lock-free read only skips it: a file being replaced may look torn there.
        assert!(
            peek(&files, &s, &mut |w| warned = w.to_string())
                .unwrap()
                .is_none()
        );
        assert!(
            files.data.exists() && !warned.contains("corrupt"),
            "{warned}"
        );
        assert!(
            load(&files, &s, &mut |w| warned = w.to_string())
                .unwrap()
                .is_none()
        );
        assert!(warned.contains("corrupt"), "{warned}");
        assert!(!files.data.exists());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "the corrupt copy is kept"
        );
    }

    #[cfg(unix)]
    #[test]
    fn cache_dir_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("c");
        prepare_dir(&d, &mut |w| panic!("{w}")).unwrap();
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        let mut warned = false;
        prepare_dir(&d, &mut |_| warned = true).unwrap();
        assert!(warned);
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        let e = prepare_dir(&link, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        if current_uid() == 0 {
            std::os::unix::fs::chown(&d, Some(65534), None).unwrap();
            let e = prepare_dir(&d, &mut |_| {}).unwrap_err();
            assert!(e.to_string().contains("belongs to user id 65534"), "{e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlink_refused_and_loose_mode_repaired() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let files = AccountFiles::for_settings(&s);
        std::os::unix::fs::symlink("/etc/passwd", &files.data).unwrap();
        let e = load(&files, &s, &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        fs::remove_file(&files.data).unwrap();
        save(&files, &Entry::empty(&s)).unwrap();
        fs::set_permissions(&files.data, fs::Permissions::from_mode(0o644)).unwrap();
        let mut warned = false;
        load(&files, &s, &mut |_| warned = true).unwrap().unwrap();
        assert!(warned);
        assert_eq!(
            fs::metadata(&files.data).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    /// A symlink at the cache path to a valid entry (say, one an attacker wrote) is refused,
    /// never served, and left where it is.
    #[cfg(unix)]
    #[test]
    fn symlinked_cache_file_is_refused_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(&dir.path().join("cache"));
        let files = AccountFiles::for_settings(&s);
        let mut e = Entry::empty(&s);
        e.access_token = Some(Secret::new("planted".into()));
        e.expires_at = Some(i64::MAX);
        let elsewhere = dir.path().join("elsewhere.json");
        save(
            &AccountFiles {
                data: elsewhere.clone(),
                ..files.clone()
            },
            &e,
        )
        .unwrap();
        ensure_dir(&files.dir).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &files.data).unwrap();
        let err = load(&files, &s, &mut |w| panic!("{w}")).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(fs::symlink_metadata(&files.data).unwrap().is_symlink());
    }

    /// A file of another user is never served, nor touched (made private), on the hot path or
    /// any other. Needs root, to give the file away; skipped visibly otherwise.
    #[cfg(unix)]
    #[test]
    fn cache_file_of_another_user_is_refused() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if current_uid() != 0 {
            let _ = writeln!(
                std::io::stderr(),
                "cache_file_of_another_user_is_refused: skipped: needs root"
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let files = AccountFiles::for_settings(&s);
        let mut e = Entry::empty(&s);
        e.access_token = Some(Secret::new("planted".into()));
        e.expires_at = Some(i64::MAX);
        save(&files, &e).unwrap();
        fs::set_permissions(&files.data, fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&files.data, Some(65534), None).unwrap();
        let err = load(&files, &s, &mut |w| panic!("{w}")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("belongs to user id 65534"), "{msg}");
        assert!(msg.contains(&files.data.display().to_string()), "{msg}");
        assert!(!msg.contains("planted"), "{msg}");
        let m = fs::metadata(&files.data).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o777), (65534, 0o644), "left alone");
    }

    /// A file of a newer format that this version cannot parse is refused naming its format,
    /// and kept byte for byte; a corrupt file with a version of ours (or none) is still moved.
    #[test]
    fn unparsable_newer_format_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path());
        let files = AccountFiles::for_settings(&s);
        let newer = br#"{"version": 2, "issuer": {"url": "https://iam.example/"}, "tokens": []}"#;
        write_atomic(&files.data, newer).unwrap();
        let e = load(&files, &s, &mut |w| panic!("{w}")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("newer git-credential-iam (format 2)"), "{msg}");
        assert!(msg.contains(&files.data.display().to_string()), "{msg}");
        assert_eq!(fs::read(&files.data).unwrap(), newer);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        for corrupt in [
            &br#"{"version": 1, "issuer": 7}"#[..],
            br#"{"version": "9"}"#,
        ] {
            write_atomic(&files.data, corrupt).unwrap();
            let mut warned = false;
            assert!(load(&files, &s, &mut |_| warned = true).unwrap().is_none());
            assert!(warned && !files.data.exists());
        }
    }
}
