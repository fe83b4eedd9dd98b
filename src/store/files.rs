//! Files that must stay private and whole: the cache directory created with mode 0700, and
//! atomic writes (a temp file created exclusively with mode 0600, renamed over the target), used
//! by the cache, the provider's cached documents, the WLCG token file and the config file.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

/// Creates the cache directory with mode 0700 if it is missing.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| Error::io("cannot create the directory", dir, e))
}

/// Writes `bytes` to `path` atomically: a temp file created exclusively (mode 0600) in the same
/// directory, `rename` over `path`, then `fsync` of the file and of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    ensure_dir(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("cache");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        // Rename first, then fsync: once renamed, the new file survives the death of this
        // process (the page cache is the kernel's), so the window in which a kill loses a
        // rotated refresh token is as short as it can be; the fsyncs then make it survive a
        // power cut too.
        fs::rename(&tmp, path)?;
        f.sync_all()?;
        #[cfg(unix)]
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e: std::io::Error| {
        let _ = fs::remove_file(&tmp);
        Error::io("cannot write", path, e)
    })
}
