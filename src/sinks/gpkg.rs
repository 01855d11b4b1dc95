//! `flagged.gpkg`: the flagged polygons as one GeoPackage layer with typed
//! fields (numbers as numbers, dates as dates, the flag as an integer 0/1,
//! lists joined), written through GDAL/OGR next to `flagged.geojson`. A
//! Shapefile export from GeoJSON garbles the Chinese of a default setup;
//! the GeoPackage keeps it (UTF-8 by definition).

use crate::domain::detection::Detection;
use crate::error::Result;
use crate::io::gpkg::{self, Kind, Table, Val};
use std::path::Path;

const FIELDS: &[(&str, Kind)] = &[
    ("id", Kind::Str),
    ("class", Kind::Str),
    ("class_zh", Kind::Str),
    ("obstructs_flood_channel", Kind::Int),
    ("confidence", Kind::Real),
    ("area_m2", Kind::Real),
    ("tile", Kind::Str),
    ("tiles", Kind::Str),
    ("before_date", Kind::Date),
    ("after_date", Kind::Date),
    ("river", Kind::Str),
    ("segment_id", Kind::Str),
    ("distance_m", Kind::Real),
    ("chief_id", Kind::Str),
    ("chief_level", Kind::Str),
    ("chief_title", Kind::Str),
    ("chain", Kind::Str),
    ("city", Kind::Str),
    ("county", Kind::Str),
    ("ndvi_before", Kind::Real),
    ("ndvi_after", Kind::Real),
    ("ndwi_before", Kind::Real),
    ("ndwi_after", Kind::Real),
    ("change_magnitude", Kind::Real),
    ("pixels", Kind::Int),
    ("case_id", Kind::Str),
    ("case_status", Kind::Str),
    ("first_seen", Kind::Date),
    ("age_days", Kind::Int),
];

fn row(d: &Detection) -> Vec<Val> {
    let s = |v: &str| Val::Str(Some(v.to_string()));
    let o = |v: Option<String>| Val::Str(v);
    let seg = d.segment.clone();
    let ch = d.chief.clone();
    let case = d.case.clone();
    let ev = d.evidence;
    vec![
        s(&d.id),
        s(d.class.as_str()),
        s(d.class.zh()),
        Val::Int(i64::from(d.obstructs_flood_channel)),
        Val::Real(d.confidence),
        Val::Real(d.area_m2),
        s(&d.tile),
        s(&d.tiles.join(" ")),
        Val::Date(d.before_date.clone()),
        Val::Date(d.after_date.clone()),
        o(seg.as_ref().map(|x| x.river.clone())),
        o(seg.as_ref().map(|x| x.segment_id.clone())),
        seg.as_ref()
            .map_or(Val::Str(None), |x| Val::Real(x.distance_m)),
        o(ch.as_ref().map(|x| x.chief_id.clone())),
        o(ch.as_ref().map(|x| x.chief_level.as_str().to_string())),
        o(ch.as_ref().map(|x| x.chief_title.clone())),
        o(ch.as_ref().map(|x| x.chain.join(" > "))),
        o(ch.as_ref().and_then(|x| x.city.clone())),
        o(ch.as_ref().and_then(|x| x.county.clone())),
        Val::Real(ev.ndvi_before),
        Val::Real(ev.ndvi_after),
        Val::Real(ev.ndwi_before),
        Val::Real(ev.ndwi_after),
        Val::Real(ev.change_magnitude),
        Val::Int(ev.pixels as i64),
        o(case.as_ref().map(|c| c.case_id.clone())),
        o(case.as_ref().map(|c| c.case_status.as_str().to_string())),
        case.as_ref()
            .map_or(Val::Str(None), |c| Val::Date(c.first_seen.clone())),
        case.as_ref()
            .map_or(Val::Str(None), |c| Val::Int(c.age_days)),
    ]
}

/// Writes `records` as the layer `flagged` of a GeoPackage at `path`.
///
/// # Errors
/// GDAL without the GeoPackage driver, an unwritable folder.
pub fn write(path: &Path, records: &[Detection]) -> Result<()> {
    let stamp = records
        .iter()
        .map(|d| d.after_date.as_str())
        .max()
        .unwrap_or("1970-01-01");
    gpkg::write(
        path,
        &[Table {
            name: "flagged",
            fields: FIELDS,
            rows: records
                .iter()
                .map(|d| (Some(d.geometry.clone()), row(d)))
                .collect(),
            spatial: true,
        }],
        stamp,
    )
}
