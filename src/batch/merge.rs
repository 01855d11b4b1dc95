//! The reduce step as engines run it: the records the map step left in a
//! records folder (`tiles/<tile>.record.json` and `tiles/<tile>.geojson`,
//! written by `batch` or by `run-task` on any machine) merged across seams
//! into `flagged.geojson`/`.gpkg`, dispatch packages, the case store and
//! `summary.json`. The local `batch` ends with the same function, so every
//! engine writes the same bytes.

use super::cases::{self, CaseOptions};
use super::plan::Plan;
use super::records::{geojson_path, record_path, sha256_file, TileRecord};
use super::reduce::{self, TileDetections};
use super::BatchResult;
use crate::domain::chiefs::Registry;
use crate::domain::config::Config;
use crate::domain::detection::Detection;
use crate::domain::manifest::Manifest;
use crate::domain::rivers::Segment;
use crate::error::{Error, Result};
use crate::pipeline::link::Indexes;
use crate::sinks::cases::Store;
use std::path::Path;
use std::time::Instant;

/// The map outputs sorted out: per-tile detections for the seam merge,
/// every record, failures, and counts.
#[derive(Default)]
pub(crate) struct Gathered {
    pub per_tile: Vec<TileDetections>,
    pub records: Vec<TileRecord>,
    pub failures: Vec<(String, String)>,
    pub ok: usize,
    pub resumed: usize,
}

impl Gathered {
    /// Adds a finished tile.
    pub fn done(&mut self, tile: &str, record: TileRecord, detections: Vec<Detection>) {
        if let Some(grid) = record.grid() {
            self.per_tile.push(TileDetections {
                tile: tile.to_string(),
                detections,
                grid,
            });
        }
        self.records.push(record);
    }

    /// Adds a failed tile (with its record when there is one).
    pub fn failed(&mut self, tile: &str, reason: String, record: Option<TileRecord>) {
        self.failures.push((tile.to_string(), reason));
        self.records.extend(record);
    }
}

/// Why a tile counts as failed, with its record when there is one.
type Failure = (String, Option<Box<TileRecord>>);

/// What one tile's files in `records` say: its record and detections, or
/// why it counts as failed.
fn read_tile(
    records: &Path,
    tile: &str,
    cfg_hash: &str,
) -> std::result::Result<(TileRecord, Vec<Detection>), Failure> {
    let rp = record_path(records, tile);
    if !crate::io::vfs::exists(&rp) {
        return Err((
            format!(
                "not processed: no record {} (its task did not run or did not finish: run it again)",
                rp.display()
            ),
            None,
        ));
    }
    let rec: TileRecord = crate::io::read_json(&rp).map_err(|e| (e.to_string(), None))?;
    if rec.config_hash != cfg_hash || rec.version != env!("CARGO_PKG_VERSION") {
        return Err((
            format!(
                "{}: made with settings {} by riverwatch {}, the plan has settings {cfg_hash} for riverwatch {}: run its task again",
                rp.display(),
                rec.config_hash,
                rec.version,
                env!("CARGO_PKG_VERSION")
            ),
            None,
        ));
    }
    if rec.status != "ok" {
        let why = rec.reason.clone().unwrap_or_else(|| "failed".into());
        return Err((why, Some(Box::new(rec))));
    }
    let gj = geojson_path(records, tile);
    let sha = sha256_file(&gj)
        .map(|(_, s)| s)
        .map_err(|e| (e.to_string(), None))?;
    if Some(&sha) != rec.output_sha256.as_ref() {
        return Err((
            format!(
                "{}: does not match its record (changed or half-copied after the task ran): run its task again",
                gj.display()
            ),
            None,
        ));
    }
    let dets = crate::io::vector::read_detections(&gj).map_err(|e| (e.to_string(), None))?;
    Ok((rec, dets))
}

/// Reads the records of every tile of `m` from `records`, in manifest order.
pub(crate) fn gather(records: &Path, m: &Manifest, cfg_hash: &str) -> Gathered {
    let mut g = Gathered::default();
    for t in &m.tiles {
        match read_tile(records, &t.id, cfg_hash) {
            Ok((rec, dets)) => {
                g.ok += 1;
                g.done(&t.id, rec, dets);
            }
            Err((why, rec)) => g.failed(&t.id, why, rec.map(|r| *r)),
        }
    }
    g
}

/// The shared inputs of a reduce step.
pub struct Inputs<'a> {
    /// The manifest.
    pub manifest: &'a Manifest,
    /// Settings.
    pub config: &'a Config,
    /// River segments.
    pub segments: &'a [Segment],
    /// Chief registry.
    pub registry: &'a Registry,
    /// The segments projected and indexed per CRS (shared with the map
    /// step when it ran in this process).
    pub indexes: &'a Indexes,
}

/// Merges gathered records across seams and writes every product into
/// `out`: `flagged.geojson`, `flagged.gpkg`, dispatch packages (by case
/// when a store is given, which the night then updates) and, last,
/// `summary.json`.
pub(crate) fn finish(
    inp: &Inputs<'_>,
    g: &Gathered,
    out: &Path,
    cases: Option<(&mut Store, &CaseOptions)>,
    t0: Instant,
) -> Result<BatchResult> {
    let mut merged = reduce::merge_seams(&g.per_tile, inp.segments, inp.registry, inp.indexes)?;
    let write_flagged = |merged: &[Detection]| -> Result<()> {
        crate::sinks::geojson::write(&out.join("flagged.geojson"), merged)?;
        crate::sinks::gpkg::write(&out.join("flagged.gpkg"), merged)
    };
    let ingest = match cases {
        Some((store, co)) => {
            let up = cases::update(store, &mut merged, inp.manifest, out, co)?;
            write_flagged(&merged)?;
            crate::sinks::dispatch::write_packages(
                out,
                &up.package,
                inp.manifest,
                inp.segments,
                inp.registry,
                Some(&up.rollup),
            )?;
            Some(up.ingest)
        }
        None => {
            write_flagged(&merged)?;
            crate::sinks::dispatch::write_packages(
                out,
                &merged,
                inp.manifest,
                inp.segments,
                inp.registry,
                None,
            )?;
            None
        }
    };
    write_summary(inp, g, out, &merged, false, ingest.as_ref(), t0)?;
    Ok(BatchResult {
        ok: g.ok,
        resumed: g.resumed,
        failures: g.failures.clone(),
        merged: merged.len(),
        unassigned: merged
            .iter()
            .filter(|f| crate::sinks::dispatch::unassigned(f))
            .count(),
        interrupted: false,
        cases: ingest,
    })
}

/// Writes `summary.json` (last: its presence and `state` say whether the
/// run finished).
pub(crate) fn write_summary(
    inp: &Inputs<'_>,
    g: &Gathered,
    out: &Path,
    merged: &[Detection],
    interrupted: bool,
    cases: Option<&crate::sinks::cases::Ingest>,
    t0: Instant,
) -> Result<()> {
    crate::sinks::summary::write(
        out,
        &crate::sinks::summary::Run {
            manifest: inp.manifest,
            config: inp.config,
            records: &g.records,
            failures: &g.failures,
            merged,
            wall: t0.elapsed().as_secs_f64(),
            ok: g.ok,
            resumed: g.resumed,
            interrupted,
            cases,
        },
    )
}

/// `riverwatch merge RECORDS -o OUT`: the plan from `RECORDS/plan.json`,
/// its manifest (unchanged since planning), rivers and chiefs loaded, the
/// records gathered and every product written into `out`.
///
/// # Errors
/// No or a foreign plan in `records`, a manifest changed since planning,
/// unusable rivers or chiefs, an unwritable `out`, a locked case store. A
/// failed or missing tile is reported in the summary, not returned.
pub fn merge(records: &Path, out: &Path, cases: Option<&CaseOptions>) -> Result<BatchResult> {
    let t0 = Instant::now();
    let plan_path = Plan::path(records);
    if !crate::io::vfs::exists(&plan_path) {
        return Err(Error::Invalid {
            path: records.to_path_buf(),
            msg: "has no plan.json: it is not a records folder of `riverwatch run-task` or `batch` (run the tasks of a plan into it first)".into(),
        });
    }
    let plan: Plan = crate::io::read_json(&plan_path)?;
    plan.check(&plan_path)?;
    let (_, sha) = sha256_file(&plan.manifest)?;
    if sha != plan.manifest_sha256 {
        return Err(Error::Invalid {
            path: plan.manifest.clone(),
            msg: "changed since the plan was made: make the plan again and run its tasks".into(),
        });
    }
    let m = crate::io::load_manifest(&plan.manifest)?;
    let (segments, registry) = super::load_context_inputs(&m, &plan.config)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    crate::io::remove_stale_tmp(out)?;
    crate::sinks::remove_products(out)?;
    let mut store = match cases {
        Some(c) => Some(Store::open(&c.db, c.prefix.as_deref())?),
        None => None,
    };
    let g = gather(records, &m, &plan.config_hash);
    let inp = Inputs {
        manifest: &m,
        config: &plan.config,
        segments: &segments,
        registry: &registry,
        indexes: &Indexes::default(),
    };
    finish(&inp, &g, out, store.as_mut().zip(cases), t0)
}
