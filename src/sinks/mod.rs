//! Where records go: GeoJSON files, dispatch packages per city and county,
//! the batch summary, and the taps that write rasters and model features.

pub mod case_export;
pub mod cases;
pub mod dispatch;
pub mod features;
pub mod geojson;
pub mod gpkg;
pub mod rasters;
pub mod summary;

use crate::error::{Error, Result};
use std::path::Path;

/// Removes the run-level products of an earlier run (`summary.json`,
/// `flagged.geojson`, `dispatch/`) from an output folder, summary first, so
/// a folder never shows a finished-looking summary beside newer records.
///
/// # Errors
/// A product that exists but cannot be removed.
pub fn remove_products(out: &Path) -> Result<()> {
    for f in ["summary.json", "flagged.geojson", "flagged.gpkg"] {
        let p = out.join(f);
        if p.exists() {
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    for dir in ["dispatch", "chips"] {
        let d = out.join(dir);
        if d.exists() {
            std::fs::remove_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
    }
    Ok(())
}
