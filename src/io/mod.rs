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
