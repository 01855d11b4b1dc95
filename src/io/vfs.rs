//! Files named by GDAL virtual paths (`/vsis3/…`, `/vsigs/…`, `/vsiaz/…`,
//! `/vsihdfs/…`, `/vsiwebhdfs/…`, `/vsimem/…`): read, written whole, tested
//! and removed through GDAL's VSI layer, so a cluster's executors can read
//! manifests, rivers, chiefs and tasks from object storage and write their
//! records there. Local paths go through `std::fs` as before.

use crate::error::{Error, Result};
use std::ffi::{c_void, CString};
use std::path::Path;

/// True when `path` is a GDAL virtual path (`/vsi…/`).
pub fn is_vsi(path: &Path) -> bool {
    path.to_string_lossy().starts_with("/vsi")
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.to_string_lossy().as_bytes())
        .map_err(|_| Error::invalid(path, "path contains a NUL byte"))
}

#[allow(unsafe_code)]
fn vsi_error(path: &Path, what: &str) -> Error {
    // SAFETY: GDAL returns a pointer to its thread-local message (never
    // null), copied at once.
    let msg = unsafe { std::ffi::CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg()) }
        .to_string_lossy()
        .into_owned();
    Error::Gdal {
        path: path.to_path_buf(),
        msg: if msg.is_empty() {
            what.to_string()
        } else {
            format!("{what}: {msg}")
        },
    }
}

/// The whole file.
///
/// # Errors
/// A missing or unreadable file, naming it.
#[allow(unsafe_code)]
pub fn read(path: &Path) -> Result<Vec<u8>> {
    if !is_vsi(path) {
        return std::fs::read(path).map_err(|e| Error::io(path, e));
    }
    let c = c_path(path)?;
    let mut buf: *mut u8 = std::ptr::null_mut();
    let mut n: u64 = 0;
    // SAFETY: GDAL allocates `buf` (n bytes plus a NUL) or leaves it null;
    // it is copied out and freed with VSIFree exactly once.
    let ok =
        unsafe { gdal_sys::VSIIngestFile(std::ptr::null_mut(), c.as_ptr(), &mut buf, &mut n, -1) };
    if ok == 0 || buf.is_null() {
        return Err(vsi_error(path, "cannot read"));
    }
    // SAFETY: buf holds n initialised bytes (see above).
    let v = unsafe { std::slice::from_raw_parts(buf, n as usize).to_vec() };
    // SAFETY: allocated by GDAL, not used after this.
    unsafe { gdal_sys::VSIFree(buf.cast::<c_void>()) };
    Ok(v)
}

/// Whether the file exists.
#[allow(unsafe_code)]
pub fn exists(path: &Path) -> bool {
    if !is_vsi(path) {
        return path.exists();
    }
    let Ok(c) = c_path(path) else { return false };
    // SAFETY: stat is a plain C struct GDAL fills; zeroed is a valid value.
    let mut st: gdal_sys::VSIStatBufL = unsafe { std::mem::zeroed() };
    // SAFETY: valid C string and out pointer.
    unsafe { gdal_sys::VSIStatL(c.as_ptr(), &mut st) == 0 }
}

/// Creates a folder and its parents (object stores have none to create).
///
/// # Errors
/// A folder that cannot be created, naming it.
#[allow(unsafe_code)]
pub fn create_dir_all(path: &Path) -> Result<()> {
    if !is_vsi(path) {
        return std::fs::create_dir_all(path).map_err(|e| Error::io(path, e));
    }
    let c = c_path(path)?;
    // SAFETY: valid C string. Failure is ignored when the folder is there
    // (or the store has no folders, as S3).
    let rc = unsafe { gdal_sys::VSIMkdirRecursive(c.as_ptr(), 0o755) };
    if rc != 0 && !exists(path) && !path.to_string_lossy().starts_with("/vsis3/") {
        return Err(vsi_error(path, "cannot create the folder"));
    }
    Ok(())
}

/// Removes a file; a missing file is not an error.
#[allow(unsafe_code)]
pub fn remove(path: &Path) {
    if !is_vsi(path) {
        let _ = std::fs::remove_file(path);
        return;
    }
    if let Ok(c) = c_path(path) {
        // SAFETY: valid C string.
        unsafe { gdal_sys::VSIUnlink(c.as_ptr()) };
    }
}

/// Writes `bytes` to a temporary sibling, then renames it onto `path`: a
/// reader sees the old file or the whole new one (on object stores, where a
/// rename is a copy, the object appears whole when the copy completes).
///
/// # Errors
/// A file that cannot be written or renamed, naming it.
#[allow(unsafe_code)]
pub fn write_atomic_vsi(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(
        ".{name}.{}-{}{}",
        std::process::id(),
        unique(),
        super::STALE_SUFFIX
    ));
    if let Some(dir) = path.parent() {
        create_dir_all(dir)?;
    }
    let (ct, cp) = (c_path(&tmp)?, c_path(path)?);
    // SAFETY: valid C strings; the handle is closed exactly once below.
    let fp = unsafe { gdal_sys::VSIFOpenL(ct.as_ptr(), c"wb".as_ptr()) };
    if fp.is_null() {
        return Err(vsi_error(&tmp, "cannot create"));
    }
    // SAFETY: bytes is a live slice; fp is open.
    let written = unsafe { gdal_sys::VSIFWriteL(bytes.as_ptr().cast(), 1, bytes.len(), fp) };
    // SAFETY: fp is open and not used afterwards.
    let closed = unsafe { gdal_sys::VSIFCloseL(fp) };
    if written != bytes.len() || closed != 0 {
        remove(&tmp);
        return Err(vsi_error(&tmp, "cannot write"));
    }
    // SAFETY: valid C strings.
    if unsafe { gdal_sys::VSIRename(ct.as_ptr(), cp.as_ptr()) } != 0 {
        remove(&tmp);
        return Err(vsi_error(
            path,
            "cannot rename the finished file into place",
        ));
    }
    Ok(())
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vsimem_round_trip() {
        let p = Path::new("/vsimem/rw-vfs-test/a/b.json");
        assert!(!exists(p));
        create_dir_all(p.parent().unwrap()).unwrap();
        write_atomic_vsi(p, b"{\"x\": 1}").unwrap();
        assert!(exists(p));
        assert_eq!(read(p).unwrap(), b"{\"x\": 1}");
        write_atomic_vsi(p, b"[]").unwrap();
        assert_eq!(read(p).unwrap(), b"[]");
        remove(p);
        assert!(!exists(p));
        let e = read(Path::new("/vsimem/rw-vfs-test/missing.json")).unwrap_err();
        assert!(e.to_string().contains("missing.json"), "{e}");
    }
}
