//! The detection record: one flagged polygon with everything a rectification
//! team and an evaluator need. It travels from the pipeline through the seam
//! merge, dispatch and evaluation as this typed struct; it becomes GeoJSON
//! only in a sink (`properties` = the serde form of the record).

use super::case::{Listing, Status};
use super::chiefs::ChiefLink;
use super::class::ChangeClass;
use geo::MultiPolygon;
use serde::{Deserialize, Serialize};

/// Per-polygon evidence: mean indices of both dates, mean change magnitude,
/// pixel count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Mean NDVI on the earlier date.
    pub ndvi_before: f64,
    /// Mean NDVI on the later date.
    pub ndvi_after: f64,
    /// Mean NDWI on the earlier date.
    pub ndwi_before: f64,
    /// Mean NDWI on the later date.
    pub ndwi_after: f64,
    /// Mean change magnitude (reflectance units).
    pub change_magnitude: f64,
    /// Pixels in the polygon.
    pub pixels: u64,
}

/// The river segment a polygon belongs to (nearest centreline).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SegmentLink {
    /// River name.
    pub river: String,
    /// Segment id.
    pub segment_id: String,
    /// Shortest polygon-to-centreline distance, metres.
    pub distance_m: f64,
}

/// The case a polygon belongs to, as dispatch packages show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseTag {
    /// Stable case id, e.g. `HLJ-2026-000123`.
    pub case_id: String,
    /// Status after tonight's update.
    pub case_status: Status,
    /// How tonight's package lists it.
    pub case_listing: Listing,
    /// Date of the first detection.
    pub first_seen: String,
    /// Days from the first detection to this night.
    pub age_days: i64,
    /// Open longer than the configured deadline.
    pub overdue: bool,
}

/// One flagged polygon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Deterministic id: `<tile>-r<row>c<col>` of the component's first pixel,
    /// `-m<n>` appended when `n` pieces were merged across seams.
    pub id: String,
    /// Class.
    pub class: ChangeClass,
    /// See [`ChangeClass::obstructs`].
    pub obstructs_flood_channel: bool,
    /// Probability that this is a true encroachment, 0–1.
    pub confidence: f64,
    /// Planar area in the tile's projected CRS, m².
    pub area_m2: f64,
    /// Tile (the lowest tile id after a seam merge).
    pub tile: String,
    /// Every tile the polygon came from; empty (and not written) before the
    /// seam merge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiles: Vec<String>,
    /// Earlier date, YYYY-MM-DD.
    pub before_date: String,
    /// Later date, YYYY-MM-DD.
    pub after_date: String,
    /// The segment it belongs to; `None` only in whole-scene research runs
    /// without river segments (then the fields are not written).
    #[serde(flatten)]
    pub segment: Option<SegmentLink>,
    /// The responsible chief and the escalation chain; `None` as `segment`.
    #[serde(flatten)]
    pub chief: Option<ChiefLink>,
    /// Evidence.
    pub evidence: Evidence,
    /// The case this polygon belongs to, when the batch keeps a case store
    /// (`--cases`); not written otherwise.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub case: Option<CaseTag>,
    /// Geometry in WGS84 longitude/latitude, 7 decimals.
    #[serde(skip, default = "empty")]
    pub geometry: MultiPolygon<f64>,
    /// Geometry in the tile's projected CRS, when the record came straight
    /// from the pipeline (not kept in files).
    #[serde(skip)]
    pub geometry_crs: Option<MultiPolygon<f64>>,
}

impl Detection {
    /// Evidence weighted by pixel count over several pieces of one object.
    pub fn merged_evidence(pieces: &[&Detection]) -> (Evidence, f64) {
        let px: Vec<f64> = pieces.iter().map(|d| d.evidence.pixels as f64).collect();
        let total = px.iter().sum::<f64>().max(1.0);
        let wmean = |get: &dyn Fn(&Detection) -> f64| {
            pieces.iter().zip(&px).map(|(d, w)| get(d) * w).sum::<f64>() / total
        };
        let ev = Evidence {
            ndvi_before: round(wmean(&|d| d.evidence.ndvi_before), 4),
            ndvi_after: round(wmean(&|d| d.evidence.ndvi_after), 4),
            ndwi_before: round(wmean(&|d| d.evidence.ndwi_before), 4),
            ndwi_after: round(wmean(&|d| d.evidence.ndwi_after), 4),
            change_magnitude: round(wmean(&|d| d.evidence.change_magnitude), 4),
            pixels: total as u64,
        };
        (ev, round(wmean(&|d| d.confidence), 3))
    }
}

fn empty() -> MultiPolygon<f64> {
    MultiPolygon(Vec::new())
}

/// Rounds to `d` decimals (the output precision of numeric properties).
pub fn round(v: f64, d: i32) -> f64 {
    let k = 10f64.powi(d);
    (v * k).round() / k
}
