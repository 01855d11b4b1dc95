//! The map step: one tile to its detections and completion record, or a
//! recorded failure. A panic in one tile is that tile's failure, never the
//! batch's; a finished earlier result with unchanged inputs and settings is
//! taken as it is (`--resume`).

use super::plan::Task;
use super::records::{
    fingerprint, geojson_path, record_path, sha256_file, tile_files, write_record, InputSum,
    TileRecord,
};
use crate::domain::detection::Detection;
use crate::domain::manifest::{Sensor, Tile};
use crate::error::Error;
use crate::io::vector::read_detections;
use crate::pipeline::taps::NoTap;
use crate::pipeline::{detect_tile, Context};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the map step made of one tile.
pub enum Outcome {
    /// Detected (now or by an earlier attempt), record and GeoJSON written.
    Done {
        /// The completion record.
        record: TileRecord,
        /// The tile's detections.
        detections: Vec<Detection>,
        /// Taken from an earlier attempt.
        resumed: bool,
    },
    /// The tile failed; its failure record says why.
    Failed {
        /// The failure record.
        record: TileRecord,
    },
}

/// A finished earlier result for this tile, if it is still valid.
pub fn resumable(
    out: &Path,
    tile: &str,
    fp: &str,
    cfg_hash: &str,
) -> Option<(TileRecord, Vec<Detection>)> {
    let rec: TileRecord = crate::io::read_json(&record_path(out, tile)).ok()?;
    if rec.status != "ok"
        || rec.fingerprint != fp
        || rec.config_hash != cfg_hash
        || rec.version != env!("CARGO_PKG_VERSION")
    {
        return None;
    }
    let gj = geojson_path(out, tile);
    let (_, sha) = sha256_file(&gj).ok()?;
    if Some(&sha) != rec.output_sha256.as_ref() {
        return None;
    }
    let feats = read_detections(&gj).ok()?;
    Some((rec, feats))
}

pub fn process(
    t: &Tile,
    sensor: &Sensor,
    ctx: &Context<'_>,
    out: &Path,
    fp: String,
    cfg_hash: &str,
) -> Outcome {
    let start = Instant::now();
    let mut record = TileRecord {
        tile: t.id.clone(),
        status: "failed".into(),
        reason: None,
        fingerprint: fp,
        config_hash: cfg_hash.to_string(),
        version: env!("CARGO_PKG_VERSION").into(),
        seconds: 0.0,
        pixels: 0,
        polygons: 0,
        output_sha256: None,
        inputs: Vec::new(),
        grid: None,
        report: None,
    };
    // A panic in one tile is that tile's failure, never the batch's.
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        detect_tile(t, sensor, ctx, &mut NoTap)
    }))
    .unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        Err(Error::Tile {
            tile: t.id.clone(),
            msg: format!("internal error: {msg}"),
        })
    });
    let done = res.and_then(|r| {
        let gj = geojson_path(out, &t.id);
        crate::sinks::geojson::write(&gj, &r.detections)?;
        let (_, sha) = sha256_file(&gj)?;
        let mut inputs = Vec::new();
        for p in tile_files(t) {
            let (bytes, sha256) = sha256_file(&p)?;
            inputs.push(InputSum {
                path: p.display().to_string(),
                bytes,
                sha256,
            });
        }
        Ok((r, sha, inputs))
    });
    record.seconds = start.elapsed().as_secs_f64();
    match done {
        Ok((r, sha, inputs)) => {
            record.status = "ok".into();
            record.pixels = (r.grid.width * r.grid.height) as u64;
            record.polygons = r.detections.len();
            record.output_sha256 = Some(sha);
            record.inputs = inputs;
            record.grid = Some((r.grid.wkt.clone(), r.grid.gt, r.grid.width, r.grid.height));
            record.report = Some(r.report);
            match write_record(out, &record) {
                Ok(()) => Outcome::Done {
                    record,
                    detections: r.detections,
                    resumed: false,
                },
                Err(e) => {
                    record.status = "failed".into();
                    record.reason = Some(e.to_string());
                    Outcome::Failed { record }
                }
            }
        }
        Err(e) => {
            record.reason = Some(super::validate::tile_msg(&t.id, e));
            // A stale result from an earlier run must not survive a failure.
            crate::io::vfs::remove(&geojson_path(out, &t.id));
            let _ = write_record(out, &record);
            Outcome::Failed { record }
        }
    }
}

/// The map step for one tile: resumed when allowed and still valid,
/// processed otherwise.
pub fn run_tile(
    t: &Tile,
    sensor: &Sensor,
    ctx: &Context<'_>,
    out: &Path,
    shared: &[PathBuf],
    resume: bool,
) -> Outcome {
    let cfg_hash = ctx.config.hash();
    let fp = fingerprint(t, shared);
    match resume
        .then(|| resumable(out, &t.id, &fp, &cfg_hash))
        .flatten()
    {
        Some((record, detections)) => Outcome::Done {
            record,
            detections,
            resumed: true,
        },
        None => process(t, sensor, ctx, out, fp, &cfg_hash),
    }
}

/// The map step of a planned task: `run_tile` on the task's tile, its
/// outputs and record in `records/tiles/`. With `resume`, a valid earlier
/// result is taken as it is, so running a task again (a retry, or two
/// attempts at once) gives the same files.
pub fn run_task(task: &Task, ctx: &Context<'_>, records: &Path, resume: bool) -> Outcome {
    let shared = [task.plan.rivers.clone(), task.plan.chiefs.clone()];
    run_tile(&task.tile, &task.plan.sensor, ctx, records, &shared, resume)
}
