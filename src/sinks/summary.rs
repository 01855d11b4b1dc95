//! `OUT/summary.json`: counts by class, city and county, throughput, per-tile
//! timing and failures with their reasons, and the inputs' checksums.

use super::dispatch::place;
use crate::batch::records::{sha256_file, InputSum, TileRecord};
use crate::domain::config::Config;
use crate::domain::detection::Detection;
use crate::domain::manifest::Manifest;
use crate::error::{Error, Result};
use crate::io::write_atomic;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// What the summary is made of.
pub struct Run<'a> {
    /// The manifest.
    pub manifest: &'a Manifest,
    /// Settings.
    pub config: &'a Config,
    /// Every tile's completion record.
    pub records: &'a [TileRecord],
    /// Failed tiles with reasons.
    pub failures: &'a [(String, String)],
    /// Merged records.
    pub merged: &'a [Detection],
    /// Wall time, seconds.
    pub wall: f64,
    /// Tiles processed now.
    pub ok: usize,
    /// Tiles resumed.
    pub resumed: usize,
    /// Stopped before every tile was done.
    pub interrupted: bool,
    /// What the night did to the case store, when one is kept.
    pub cases: Option<&'a super::cases::Ingest>,
}

/// Counts of merged records by class, city, county and obstruction flag.
fn counts(merged: &[Detection]) -> Value {
    let mut by_class: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_city: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_county: BTreeMap<String, usize> = BTreeMap::new();
    let (mut obs_t, mut obs_f) = (0, 0);
    for f in merged {
        *by_class.entry(f.class.as_str().to_string()).or_default() += 1;
        let (city, county) = place(f);
        *by_city.entry(city.clone()).or_default() += 1;
        *by_county.entry(format!("{city}/{county}")).or_default() += 1;
        if f.obstructs_flood_channel {
            obs_t += 1;
        } else {
            obs_f += 1;
        }
    }
    let unassigned = merged
        .iter()
        .filter(|f| super::dispatch::unassigned(f))
        .count();
    json!({
        "by_class": by_class, "by_city": by_city, "by_county": by_county,
        "unassigned": unassigned,
        "obstructs_flood_channel": {"true": obs_t, "false": obs_f},
    })
}

fn per_tile(r: &TileRecord) -> Value {
    json!({
        "tile": r.tile, "status": r.status, "seconds": (r.seconds * 1000.0).round() / 1000.0,
        "mpix_per_s": if r.status == "ok" { ((r.pixels as f64 / 1e6 / r.seconds.max(1e-9)) * 100.0).round() / 100.0 } else { 0.0 },
        "polygons": r.polygons, "reason": r.reason,
        "normalization": r.report.as_ref().map(|x| json!({"gain": x.normalization.gain, "offset": x.normalization.offset})),
        "change_threshold": r.report.as_ref().map(|x| x.change_threshold),
        "cloud_share": r.report.as_ref().map(|x| x.cloud_share),
        "notes": r.report.as_ref().map(|x| &x.notes),
    })
}

/// Checksums of the processed tiles' inputs and of the shared inputs.
fn inputs(m: &Manifest, processed: &[&TileRecord]) -> Vec<InputSum> {
    let mut inputs: Vec<InputSum> = processed.iter().flat_map(|r| r.inputs.clone()).collect();
    for p in [&m.path, &m.rivers, &m.chiefs] {
        if let Ok((bytes, sha256)) = sha256_file(p) {
            inputs.push(InputSum {
                path: p.display().to_string(),
                bytes,
                sha256,
            });
        }
    }
    inputs
}

/// Writes `OUT/summary.json` atomically.
///
/// # Errors
/// When the file cannot be written.
pub fn write(out: &Path, run: &Run<'_>) -> Result<()> {
    let Run {
        manifest: m,
        config: cfg,
        records,
        failures,
        merged,
        wall,
        ok,
        resumed,
        interrupted,
        cases,
    } = *run;
    let processed: Vec<&TileRecord> = records.iter().filter(|r| r.status == "ok").collect();
    let pixels: u64 = processed.iter().map(|r| r.pixels).sum();
    let v = json!({
        "state": if interrupted { "interrupted" } else { "complete" },
        "version": env!("CARGO_PKG_VERSION"),
        "manifest": m.path.display().to_string(),
        "config_hash": cfg.hash(),
        "config": cfg,
        "tiles": {"total": m.tiles.len(), "processed": ok, "resumed": resumed, "failed": failures.len()},
        "polygons": {"per_tile": processed.iter().map(|r| r.polygons).sum::<usize>(), "merged": merged.len()},
        "counts": counts(merged),
        "throughput": {
            "wall_seconds": (wall * 1000.0).round() / 1000.0,
            "megapixels": pixels as f64 / 1e6,
            "mpix_per_s": ((pixels as f64 / 1e6 / wall.max(1e-9)) * 100.0).round() / 100.0,
            "tiles_per_min": (((ok + resumed) as f64 / wall.max(1e-9) * 60.0) * 100.0).round() / 100.0,
            "peak_rss_mb": peak_rss_mb(),
        },
        "failures": failures.iter().map(|(t, r)| json!({"tile": t, "reason": r})).collect::<Vec<_>>(),
        "per_tile": records.iter().map(per_tile).collect::<Vec<_>>(),
        "inputs": inputs(m, &processed),
    });
    let mut v = v;
    if let Some(c) = cases {
        v["cases"] = json!(c);
    }
    let text = serde_json::to_string_pretty(&v).map_err(|e| Error::Json {
        path: out.join("summary.json"),
        msg: e.to_string(),
    })?;
    write_atomic(&out.join("summary.json"), format!("{text}\n").as_bytes())
}

fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}
