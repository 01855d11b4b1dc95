//! Input and output: GDAL rasters, GeoJSON vectors, and safe file writing.

pub mod raster;
pub mod vector;

use crate::error::{Error, Result};
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same folder and a
/// rename, so a reader never sees a half-written file and a crash never leaves
/// one behind.
///
/// # Errors
/// [`Error::Io`] naming `path` when the folder cannot be created or written.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// The temporary sibling used by [`write_atomic`] and raster writers.
pub fn tmp_path(path: &Path) -> std::path::PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Removes what a killed run left half-written in `dir` (not recursive):
/// files named `*.tmp<pid>` (see [`tmp_path`]) and `.dispatch.tmp<pid>`
/// folders. Run before writing into an output folder again.
///
/// # Errors
/// An unreadable folder or a leftover that cannot be removed.
pub fn remove_stale_tmp(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = name
            .rsplit_once(".tmp")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if !stale {
            continue;
        }
        let p = e.path();
        let r = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.map_err(|err| Error::io(&p, err))?;
    }
    Ok(())
}

/// Reads and parses a JSON file, naming the file and position on failure.
///
/// # Errors
/// [`Error::Io`] when unreadable, [`Error::Json`] when not valid JSON or not of
/// the expected shape.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        let mut msg = e.to_string();
        if text.contains("NaN") || text.contains("Infinity") {
            msg.push_str(
                " (NaN and Infinity are not JSON numbers; widths and coordinates must be finite)",
            );
        }
        Error::Json {
            path: path.to_path_buf(),
            msg,
        }
    })
}
