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
    let features: Vec<geojson::Feature> = records.into_iter().map(detection_feature).collect();
    let bytes = collection_bytes(features);
    check(
        Kind::Flagged,
        path,
        &serde_json::from_slice(&bytes).unwrap_or_default(),
    )?;
    crate::io::write_atomic(path, &bytes)
}
