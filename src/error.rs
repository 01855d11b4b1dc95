//! Typed library errors. Every variant carries the context a user needs to fix
//! the input: which file, which tile, which feature or chief.

use std::path::PathBuf;

/// Library result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong in riverwatch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {err}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (part of the message, not a separate
        /// source, so a report does not print it twice).
        err: std::io::Error,
    },
    /// A JSON or GeoJSON file could not be parsed.
    #[error("{path}: not valid JSON: {msg}")]
    Json {
        /// The file.
        path: PathBuf,
        /// Parser message with line and column.
        msg: String,
    },
    /// An input file parsed but breaks a rule of its format.
    #[error("{path}: {msg}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the feature, tile or chief.
        msg: String,
    },
    /// Several problems found while validating inputs.
    #[error("{} problem(s):\n  {}", .0.len(), .0.join("\n  "))]
    Many(Vec<String>),
    /// GDAL failed on a raster or coordinate transformation.
    #[error("{path}: GDAL: {msg}")]
    Gdal {
        /// The file (or a description of the operation).
        path: PathBuf,
        /// GDAL's message.
        msg: String,
    },
    /// A raster has fewer bands than the sensor needs.
    #[error("{path}: has {have} band(s) but the sensor needs band {need}")]
    BandCount {
        /// The file.
        path: PathBuf,
        /// Highest band number the sensor refers to.
        need: usize,
        /// Band count of the file.
        have: usize,
    },
    /// Two rasters of one tile do not share their grid.
    #[error("tile {tile}: {a} and {b} do not share a grid: {what}")]
    GridMismatch {
        /// The tile id.
        tile: String,
        /// First file.
        a: PathBuf,
        /// Second file.
        b: PathBuf,
        /// What differs (size, geotransform, CRS).
        what: String,
    },
    /// A configuration value is unusable.
    #[error("config: {0}")]
    Config(String),
    /// A tile produced no usable data.
    #[error("tile {tile}: {msg}")]
    Tile {
        /// The tile id.
        tile: String,
        /// What went wrong.
        msg: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Invalid {
            path: path.into(),
            msg: msg.into(),
        }
    }
    /// Shorthand for [`Error::Gdal`].
    pub fn gdal(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        Error::Gdal {
            path: path.into(),
            msg: clean_gdal_message(&e.to_string()),
        }
    }
    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, err: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            err,
        }
    }
}

/// GDAL's error Display wraps the useful text in class/number boilerplate
/// ("CPL error class: '3', error number: '1', error msg: '…'"); keep the text.
fn clean_gdal_message(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let Some(i) = lower.find("error msg: '") else {
        return s.to_string();
    };
    let inner = s[i + 12..].trim_end_matches('\'').trim();
    let opening = lower[..i].contains("gdalopen");
    match (opening, inner.is_empty()) {
        (true, true) => {
            "cannot be opened as a raster (not a format GDAL reads, or unreadable)".into()
        }
        (true, false) => format!("cannot be opened as a raster: {inner}"),
        (false, true) => s.to_string(),
        (false, false) => format!(
            "{}{inner}",
            &s[..lower.find("cpl error class").unwrap_or(0)]
        ),
    }
}
