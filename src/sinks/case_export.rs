//! `riverwatch cases export`: the case store as files a team or an analyst
//! opens without SQLite — `cases.csv`, `observations.csv`, `events.csv`
//! (UTF-8 with BOM, CRLF, like the dispatch tables) and `cases.gpkg` with
//! the layers `cases` (latest geometry), `observations` (every night's
//! geometry) and `events` (status history, no geometry).

use super::cases::{CaseRow, Event, Observation, Store};
use crate::error::{Error, Result};
use crate::io::gpkg::{self, Kind, Table, Val};
use crate::io::write_atomic;
use geo::Centroid;
use std::path::{Path, PathBuf};

/// Which files to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The three CSV tables.
    Csv,
    /// The GeoPackage.
    Gpkg,
    /// Both.
    All,
}

const CASE_FIELDS: &[(&str, Kind)] = &[
    ("case_id", Kind::Str),
    ("status", Kind::Str),
    ("status_zh", Kind::Str),
    ("class", Kind::Str),
    ("city", Kind::Str),
    ("county", Kind::Str),
    ("river", Kind::Str),
    ("chief_id", Kind::Str),
    ("chief_title", Kind::Str),
    ("tile", Kind::Str),
    ("first_seen", Kind::Str),
    ("last_seen", Kind::Str),
    ("status_date", Kind::Str),
    ("area_m2", Kind::Real),
    ("observations", Kind::Int),
    ("centroid_lon", Kind::Real),
    ("centroid_lat", Kind::Real),
];

const OBS_FIELDS: &[(&str, Kind)] = &[
    ("case_id", Kind::Str),
    ("date", Kind::Str),
    ("before_date", Kind::Str),
    ("detection_id", Kind::Str),
    ("tile", Kind::Str),
    ("class", Kind::Str),
    ("confidence", Kind::Real),
    ("area_m2", Kind::Real),
    ("listing", Kind::Str),
    ("before_image", Kind::Str),
    ("after_image", Kind::Str),
    ("after_mask", Kind::Str),
    ("chips", Kind::Str),
];

const EVENT_FIELDS: &[(&str, Kind)] = &[
    ("case_id", Kind::Str),
    ("n", Kind::Int),
    ("date", Kind::Str),
    ("status", Kind::Str),
    ("by", Kind::Str),
    ("note", Kind::Str),
    ("evidence", Kind::Str),
];

fn s(v: &str) -> Val {
    Val::Str(Some(v.to_string()))
}

fn opt(v: &Option<String>) -> Val {
    Val::Str(v.clone())
}

fn case_vals(c: &CaseRow, n_obs: usize) -> Vec<Val> {
    let (x, y) = c.geometry.centroid().map_or((0.0, 0.0), |p| (p.x(), p.y()));
    vec![
        s(&c.id),
        s(c.status.as_str()),
        s(c.status.zh()),
        s(c.class.as_str()),
        opt(&c.city),
        opt(&c.county),
        opt(&c.river),
        opt(&c.chief_id),
        opt(&c.chief_title),
        s(&c.tile),
        s(&c.first_seen),
        s(&c.last_seen),
        s(&c.status_date),
        Val::Real(c.area_m2),
        Val::Int(n_obs as i64),
        Val::Real((x * 1e7).round() / 1e7),
        Val::Real((y * 1e7).round() / 1e7),
    ]
}

fn obs_vals(o: &Observation) -> Vec<Val> {
    let listing = serde_json::to_value(o.listing)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string));
    vec![
        s(&o.case_id),
        s(&o.date),
        s(&o.before_date),
        s(&o.detection_id),
        s(&o.tile),
        s(o.class.as_str()),
        Val::Real(o.confidence),
        Val::Real(o.area_m2),
        Val::Str(listing),
        opt(&o.before_image),
        opt(&o.after_image),
        opt(&o.after_mask),
        opt(&o.chips),
    ]
}

fn event_vals(e: &Event) -> Vec<Val> {
    vec![
        s(&e.case_id),
        Val::Int(e.n),
        s(&e.date),
        s(e.status.as_str()),
        s(&e.by),
        s(&e.note),
        opt(&e.evidence),
    ]
}

fn csv_bytes(
    fields: &[(&str, Kind)],
    rows: &[Vec<Val>],
) -> std::result::Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::from("\u{feff}".as_bytes()));
    w.write_record(fields.iter().map(|f| f.0))?;
    for r in rows {
        w.write_record(r.iter().map(|v| match v {
            Val::Str(s) => s.clone().unwrap_or_default(),
            Val::Int(n) => n.to_string(),
            Val::Real(x) => serde_json::Value::from(*x).to_string(),
            Val::Date(d) => d.clone(),
        }))?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Writes the export into `dir` (created when missing); returns the files
/// written.
///
/// # Errors
/// An unreadable store, an unwritable folder, GDAL without GeoPackage.
pub fn export(store: &Store, dir: &Path, format: Format) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let cases = store.list(None)?;
    let obs = store.observations(None)?;
    let events = store.events(None)?;
    let n_obs = |id: &str| obs.iter().filter(|o| o.case_id == id).count();
    let case_rows: Vec<Vec<Val>> = cases.iter().map(|c| case_vals(c, n_obs(&c.id))).collect();
    let obs_rows: Vec<Vec<Val>> = obs.iter().map(obs_vals).collect();
    let event_rows: Vec<Vec<Val>> = events.iter().map(event_vals).collect();
    let mut written = Vec::new();
    if format != Format::Gpkg {
        for (name, fields, rows) in [
            ("cases.csv", CASE_FIELDS, &case_rows),
            ("observations.csv", OBS_FIELDS, &obs_rows),
            ("events.csv", EVENT_FIELDS, &event_rows),
        ] {
            let p = dir.join(name);
            let bytes = csv_bytes(fields, rows).map_err(|e| Error::invalid(&p, e.to_string()))?;
            write_atomic(&p, &bytes)?;
            written.push(p);
        }
    }
    if format != Format::Csv {
        let p = dir.join("cases.gpkg");
        let stamp = events
            .iter()
            .map(|e| e.date.as_str())
            .max()
            .unwrap_or("1970-01-01");
        gpkg::write(
            &p,
            &[
                Table {
                    name: "cases",
                    fields: CASE_FIELDS,
                    rows: cases
                        .iter()
                        .zip(case_rows)
                        .map(|(c, r)| (Some(c.geometry.clone()), r))
                        .collect(),
                    spatial: true,
                },
                Table {
                    name: "observations",
                    fields: OBS_FIELDS,
                    rows: obs
                        .iter()
                        .zip(obs_rows)
                        .map(|(o, r)| (Some(o.geometry.clone()), r))
                        .collect(),
                    spatial: true,
                },
                Table {
                    name: "events",
                    fields: EVENT_FIELDS,
                    rows: event_rows.into_iter().map(|r| (None, r)).collect(),
                    spatial: false,
                },
            ],
            stamp,
        )?;
        written.push(p);
    }
    Ok(written)
}
