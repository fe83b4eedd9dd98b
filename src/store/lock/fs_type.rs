//! Which file system holds the cache directory, and whether `flock` on it may stay local to one
//! machine. `statfs(2)`'s `f_type` names the file system; the numbers come from `libc` where it
//! has them, and from [`NOT_IN_LIBC`] (one table, each line naming its source) where it does
//! not. Linux only: elsewhere nothing is detected and the caller keeps `flock`.

use std::path::Path;

/// A file system on which `flock` may not exclude a process on another machine: shared by many
/// machines, with locks kept by each machine's kernel (NFS with `local_lock`, FUSE) or not
/// forwarded reliably (AFS, SMB, cluster file systems).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shared {
    /// A short name for people: `nfs`, `afs`, `fuse`, …
    pub name: &'static str,
}

/// Magic numbers of shared file systems that `libc` does not define (as `u32`, the width of
/// `f_type`'s values). Sources: `include/uapi/linux/magic.h` of Linux 6.x unless noted.
mod not_in_libc {
    /// CIFS (`fs/smb/client/cifsglob.h`: `CIFS_SUPER_MAGIC`).
    pub const CIFS: u32 = 0xFF53_4D42;
    /// SMB2/SMB3 through the cifs module (`fs/smb/client/cifsglob.h`: `SMB2_SUPER_MAGIC`).
    pub const SMB2: u32 = 0xFE53_4D42;
    /// Lustre (`lustre/include/uapi/linux/lustre/lustre_user.h`: `LL_SUPER_MAGIC`).
    pub const LUSTRE: u32 = 0x0BD0_0BD0;
    /// IBM Spectrum Scale / GPFS (`"GPFS"` in ASCII, as `stat -f` reports it).
    pub const GPFS: u32 = 0x4750_4653;
    /// CephFS (`fs/ceph/super.h`: `CEPH_SUPER_MAGIC`).
    pub const CEPH: u32 = 0x00C3_6400;
    /// 9p / v9fs (`V9FS_MAGIC`).
    pub const V9FS: u32 = 0x0102_1997;
    /// GFS2 (`fs/gfs2/incore.h` / `linux/gfs2_ondisk.h`: `GFS2_MAGIC`).
    pub const GFS2: u32 = 0x0116_1970;
    /// kAFS, the in-kernel AFS client (`AFS_FS_MAGIC`); OpenAFS reports libc's
    /// `AFS_SUPER_MAGIC`.
    pub const KAFS: u32 = 0x6B41_4653;
}

/// The shared file systems, by `f_type`.
#[cfg(target_os = "linux")]
// f_type and libc's constants are `c_long` on glibc and `c_uint` on musl: `as u32` keeps the
// 32 bits of the magic number on both (and a cast to the same type is no mistake there).
#[allow(clippy::unnecessary_cast)]
fn table() -> [(u32, &'static str); 15] {
    use not_in_libc::*;
    [
        (libc::NFS_SUPER_MAGIC as u32, "nfs"),
        (libc::AFS_SUPER_MAGIC as u32, "afs"),
        (KAFS, "afs"),
        (libc::SMB_SUPER_MAGIC as u32, "smb"),
        (CIFS, "cifs"),
        (SMB2, "smb2"),
        (libc::CODA_SUPER_MAGIC as u32, "coda"),
        (libc::FUSE_SUPER_MAGIC as u32, "fuse"),
        (libc::OCFS2_SUPER_MAGIC as u32, "ocfs2"),
        (libc::NCP_SUPER_MAGIC as u32, "ncp"),
        (LUSTRE, "lustre"),
        (GPFS, "gpfs"),
        (CEPH, "ceph"),
        (V9FS, "9p"),
        (GFS2, "gfs2"),
    ]
}

/// The shared file system whose magic number is `f_type`, if it is one.
#[cfg(target_os = "linux")]
fn shared_of(f_type: u32) -> Option<Shared> {
    table()
        .into_iter()
        .find(|(magic, _)| *magic == f_type)
        .map(|(_, name)| Shared { name })
}

/// What `statfs` says about `path`'s file system: `Ok(Some)` for a shared one, `Ok(None)` for
/// any other. An error when `statfs` fails (say, `path` is missing); `Ok(None)` off Linux.
pub fn shared(path: &Path) -> std::io::Result<Option<Shared>> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: statfs is plain data; zeroed is a valid value that the call overwrites.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a NUL-terminated path and `st` a valid statfs, both alive for the call.
        if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        #[allow(clippy::unnecessary_cast)]
        Ok(shared_of(st.f_type as u32))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        Ok(None)
    }
}

/// [`shared`] of `path`, or of its nearest existing ancestor when it does not exist yet (the
/// cache directory will be created on that file system).
pub fn shared_or_ancestor(path: &Path) -> std::io::Result<Option<Shared>> {
    shared(path.ancestors().find(|p| p.exists()).unwrap_or(path))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn table_names_the_shared_file_systems_once() {
        let mut magics: Vec<u32> = table().iter().map(|(m, _)| *m).collect();
        let n = magics.len();
        magics.sort_unstable();
        magics.dedup();
        assert_eq!(magics.len(), n, "no magic number twice");
        assert_eq!(shared_of(0x6969), Some(Shared { name: "nfs" }));
        assert_eq!(shared_of(not_in_libc::CIFS), Some(Shared { name: "cifs" }));
        #[allow(clippy::unnecessary_cast)]
        let local = [libc::EXT4_SUPER_MAGIC as u32, libc::TMPFS_MAGIC as u32];
        for m in local {
            assert_eq!(shared_of(m), None, "{m:#x} is local");
        }
    }

    #[test]
    fn a_temp_dir_is_checked_and_a_missing_one_through_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let here = shared(dir.path()).unwrap();
        let missing = dir.path().join("a/b/c");
        assert!(shared(&missing).is_err());
        assert_eq!(shared_or_ancestor(&missing).unwrap(), here);
    }
}
