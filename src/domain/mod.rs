//! Plain domain types: no GDAL, no files. Grids, change classes, the
//! detection record, river segments, chiefs, the manifest and sensors, and
//! the settings. Parsers here take text already read (the `io` layer reads
//! files) and a path used only to name the file in messages.

pub mod case;
pub mod chiefs;
pub mod class;
pub mod config;
pub mod detection;
pub mod grid;
pub mod manifest;
pub mod rivers;

use crate::error::{Error, Result};
use std::path::Path;

/// Parses JSON text into `T`, naming the file and position on failure.
///
/// # Errors
/// [`Error::Json`] when not valid JSON or not of the expected shape.
pub fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
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
