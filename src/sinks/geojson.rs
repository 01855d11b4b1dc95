//! Detection records to a GeoJSON FeatureCollection file: checked against
//! `schemas/flagged.schema.json`, then written atomically.

use crate::domain::detection::Detection;
use crate::error::Result;
use crate::io::vector::{collection_bytes, detection_feature};
use crate::schema::{check, Kind};
use std::path::Path;

/// Writes records as a FeatureCollection (one feature per line).
///
/// # Errors
/// A feature that does not match the flagged schema (an internal error), or
/// a file that cannot be written.
pub fn write<'a>(path: &Path, records: impl IntoIterator<Item = &'a Detection>) -> Result<()> {
    let records: Vec<&Detection> = records.into_iter().collect();
    let linked = records.iter().all(|d| d.chief.is_some());
    let features: Vec<geojson::Feature> = records.into_iter().map(detection_feature).collect();
    let bytes = collection_bytes(features);
    if !linked {
        // Whole-scene research output: the flagged format without the
        // segment and chief fields, which the schema requires.
        return crate::io::write_atomic(path, &bytes);
    }
    check(
        Kind::Flagged,
        path,
        &serde_json::from_slice(&bytes).unwrap_or_default(),
    )?;
    crate::io::write_atomic(path, &bytes)
}
