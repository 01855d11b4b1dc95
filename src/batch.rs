//! The nightly batch: many tiles with a bounded number in flight, per-tile
//! outputs written atomically with a completion record (so `--resume` after a
//! crash or `kill -9` redoes only what is missing), polygons merged across
//! tile seams, dispatch packages per city and county, and a run summary.
//!
//! Layout of the output folder:
//!
//! ```text
//! OUT/flagged.geojson            all polygons, merged across seams
//! OUT/tiles/<tile>.geojson       per tile, before the merge
//! OUT/tiles/<tile>.record.json   completion record (inputs, config hash, timing)
//! OUT/dispatch/<city>/<county>.geojson|.csv|.html
//! OUT/summary.json
//! ```

use crate::chiefs::Registry;
use crate::config::Config;
use crate::corridor;
use crate::detect::{detect_tile, load_context_inputs, round, Context, TileReport};
use crate::error::{Error, Result};
use crate::io::raster::{Grid, Transformer};
use crate::io::vector::{read_collection, write_collection, PolyFeature};
use crate::io::write_atomic;
use crate::link::{blocks_flow, chief_link, pixel_centres, SegmentIndex};
use crate::manifest::{Manifest, Tile};
use crate::rivers::Segment;
use geo::{unary_union, Area, BoundingRect, Coord, Intersects, MapCoordsInPlace, MultiPolygon};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Batch settings.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// Output folder.
    pub out: PathBuf,
    /// Tiles in flight at once (memory ≈ jobs × one tile's working set).
    pub jobs: usize,
    /// Skip tiles whose output exists and whose inputs and settings are unchanged.
    pub resume: bool,
    /// Show a progress bar (when stderr is a terminal); plain lines otherwise.
    pub progress: bool,
}

/// One input file's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSum {
    /// Path as resolved from the manifest.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// The record written next to a tile's output once it is complete.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TileRecord {
    /// Tile id.
    pub tile: String,
    /// `ok` or `failed`.
    pub status: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// Size and modification time of every input, hashed.
    pub fingerprint: String,
    /// Hash of the settings.
    pub config_hash: String,
    /// riverwatch version.
    pub version: String,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Pixels in the tile.
    pub pixels: u64,
    /// Polygons flagged.
    pub polygons: usize,
    /// SHA-256 of `tiles/<tile>.geojson`.
    pub output_sha256: Option<String>,
    /// Checksums of the tile's input files.
    pub inputs: Vec<InputSum>,
    /// CRS WKT and geotransform of the reference grid.
    pub grid: Option<(String, [f64; 6], usize, usize)>,
    /// The detector's diagnostics.
    pub report: Option<TileReport>,
}

/// What a batch did.
#[derive(Debug, Clone)]
pub struct BatchResult {
    /// Tiles processed now.
    pub ok: usize,
    /// Tiles taken from an earlier run.
    pub resumed: usize,
    /// Failed tiles with their reasons.
    pub failures: Vec<(String, String)>,
    /// Features in `flagged.geojson`.
    pub merged: usize,
}

fn sha256_file(path: &Path) -> Result<(u64, String)> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    Ok((n, hex(&h.finalize())))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn tile_files(t: &Tile) -> Vec<PathBuf> {
    let mut v = vec![t.before.image.clone(), t.after.image.clone()];
    v.extend(t.before.mask.clone());
    v.extend(t.after.mask.clone());
    v
}

/// Size + mtime of every input of a tile (and the shared vectors), hashed:
/// cheap to recompute on resume.
fn fingerprint(t: &Tile, shared: &[PathBuf]) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_string(t).unwrap_or_default().as_bytes());
    for p in tile_files(t).iter().chain(shared) {
        let meta = std::fs::metadata(p);
        let (len, mtime) = match &meta {
            Ok(m) => (
                m.len(),
                m.modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos()),
            ),
            Err(_) => (u64::MAX, 0),
        };
        h.update(format!("{}|{len}|{mtime}\n", p.display()).as_bytes());
    }
    hex(&h.finalize())
}

enum Outcome {
    Done {
        record: TileRecord,
        features: Vec<PolyFeature>,
        resumed: bool,
    },
    Failed {
        record: TileRecord,
    },
}

fn record_path(out: &Path, tile: &str) -> PathBuf {
    out.join("tiles").join(format!("{tile}.record.json"))
}

fn geojson_path(out: &Path, tile: &str) -> PathBuf {
    out.join("tiles").join(format!("{tile}.geojson"))
}

/// A finished earlier result for this tile, if it is still valid.
fn resumable(
    out: &Path,
    tile: &str,
    fp: &str,
    cfg_hash: &str,
) -> Option<(TileRecord, Vec<PolyFeature>)> {
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
    let feats = read_collection(&gj).ok()?;
    Some((rec, feats))
}

fn process(t: &Tile, ctx: &Context<'_>, out: &Path, fp: String, cfg_hash: &str) -> Outcome {
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
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| detect_tile(t, ctx, None)))
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
        write_collection(&gj, &r.features)?;
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
            record.polygons = r.features.len();
            record.output_sha256 = Some(sha);
            record.inputs = inputs;
            record.grid = Some((r.grid.wkt.clone(), r.grid.gt, r.grid.width, r.grid.height));
            record.report = Some(r.report);
            match write_record(out, &record) {
                Ok(()) => Outcome::Done {
                    record,
                    features: r.features,
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
            record.reason = Some(crate::validate::tile_msg(&t.id, e));
            // A stale result from an earlier run must not survive a failure.
            let _ = std::fs::remove_file(geojson_path(out, &t.id));
            let _ = write_record(out, &record);
            Outcome::Failed { record }
        }
    }
}

fn write_record(out: &Path, r: &TileRecord) -> Result<()> {
    let text = serde_json::to_string_pretty(r).map_err(|e| Error::Json {
        path: record_path(out, &r.tile),
        msg: e.to_string(),
    })?;
    write_atomic(&record_path(out, &r.tile), text.as_bytes())
}

fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

/// Runs a batch over every tile of `m`.
///
/// # Errors
/// Unusable shared inputs (rivers, chiefs) or an unwritable output folder;
/// a failing tile is recorded, not returned.
pub fn run(m: &Manifest, cfg: &Config, o: &BatchOptions) -> Result<BatchResult> {
    let t0 = Instant::now();
    let (segments, registry) = load_context_inputs(m, cfg)?;
    let ctx = Context {
        sensor: &m.sensor,
        segments: &segments,
        registry: &registry,
        config: cfg,
    };
    std::fs::create_dir_all(o.out.join("tiles")).map_err(|e| Error::io(o.out.join("tiles"), e))?;
    // Leftovers of a run that was killed while writing.
    crate::io::remove_stale_tmp(&o.out)?;
    crate::io::remove_stale_tmp(&o.out.join("tiles"))?;
    let cfg_hash = cfg.hash();
    let shared = vec![m.rivers.clone(), m.chiefs.clone()];
    let n = m.tiles.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..n).map(|_| None).collect());
    let stats = Mutex::new((0usize, 0u64, 0f64)); // failures, pixels done, busy seconds
    let tty = o.progress && std::io::stderr().is_terminal();
    let bar = if tty {
        let b = indicatif::ProgressBar::new(n as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} tiles · {msg} · ETA {eta}",
        ) {
            b.set_style(style);
        }
        Some(b)
    } else {
        None
    };
    let jobs = o.jobs.clamp(1, n.max(1));
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                let t = &m.tiles[i];
                let fp = fingerprint(t, &shared);
                let outcome = match o
                    .resume
                    .then(|| resumable(&o.out, &t.id, &fp, &cfg_hash))
                    .flatten()
                {
                    Some((record, features)) => Outcome::Done {
                        record,
                        features,
                        resumed: true,
                    },
                    None => process(t, &ctx, &o.out, fp, &cfg_hash),
                };
                let line = {
                    let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
                    match &outcome {
                        Outcome::Done {
                            record, resumed, ..
                        } => {
                            st.1 += record.pixels;
                            st.2 += if *resumed { 0.0 } else { record.seconds };
                            let mpix = record.pixels as f64 / 1e6 / record.seconds.max(1e-9);
                            if *resumed {
                                format!("tile {}: resumed ({} polygons)", t.id, record.polygons)
                            } else {
                                format!(
                                    "tile {}: {} polygons in {:.1} s ({:.1} MPix/s)",
                                    t.id, record.polygons, record.seconds, mpix
                                )
                            }
                        }
                        Outcome::Failed { record } => {
                            st.0 += 1;
                            format!(
                                "tile {}: FAILED: {}",
                                t.id,
                                record.reason.as_deref().unwrap_or("?")
                            )
                        }
                    }
                };
                let (fails, px) = {
                    let st = stats.lock().unwrap_or_else(|e| e.into_inner());
                    (st.0, st.1)
                };
                let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                let rate = px as f64 / 1e6 / t0.elapsed().as_secs_f64().max(1e-9);
                match &bar {
                    Some(b) => {
                        b.set_message(format!("{fails} failed · {rate:.1} MPix/s"));
                        b.inc(1);
                        if matches!(outcome, Outcome::Failed { .. }) {
                            b.println(&line);
                        }
                    }
                    None => eprintln!("[{finished}/{n}] {line}"),
                }
                if let Ok(mut r) = results.lock() {
                    r[i] = Some(outcome);
                }
            });
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut failures = Vec::new();
    let mut records = Vec::new();
    let mut per_tile: Vec<(String, Vec<PolyFeature>, Grid)> = Vec::new();
    let (mut ok, mut resumed) = (0, 0);
    for (t, r) in m.tiles.iter().zip(results) {
        match r {
            Some(Outcome::Done {
                record,
                features,
                resumed: was,
            }) => {
                if was {
                    resumed += 1;
                } else {
                    ok += 1;
                }
                if let Some((wkt, gt, w, h)) = record.grid.clone() {
                    per_tile.push((
                        t.id.clone(),
                        features,
                        Grid {
                            width: w,
                            height: h,
                            gt,
                            wkt,
                        },
                    ));
                }
                records.push(record);
            }
            Some(Outcome::Failed { record }) => {
                failures.push((t.id.clone(), record.reason.clone().unwrap_or_default()));
                records.push(record);
            }
            None => failures.push((t.id.clone(), "not processed".into())),
        }
    }
    let merged = merge_seams(&per_tile, &segments, &registry)?;
    write_collection(&o.out.join("flagged.geojson"), &merged)?;
    crate::dispatch::write_packages(&o.out, &merged, m, &segments)?;
    let wall = t0.elapsed().as_secs_f64();
    write_summary(
        &o.out, m, cfg, &records, &failures, &merged, wall, ok, resumed,
    )?;
    Ok(BatchResult {
        ok,
        resumed,
        failures,
        merged: merged.len(),
    })
}

#[allow(clippy::too_many_arguments)]
fn write_summary(
    out: &Path,
    m: &Manifest,
    cfg: &Config,
    records: &[TileRecord],
    failures: &[(String, String)],
    merged: &[PolyFeature],
    wall: f64,
    ok: usize,
    resumed: usize,
) -> Result<()> {
    let mut by_class: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_city: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_county: BTreeMap<String, usize> = BTreeMap::new();
    let (mut obs_t, mut obs_f) = (0, 0);
    for f in merged {
        *by_class.entry(f.str("class").to_string()).or_default() += 1;
        let city = f
            .props
            .get("city")
            .and_then(Value::as_str)
            .unwrap_or(crate::dispatch::UNASSIGNED);
        let county = f
            .props
            .get("county")
            .and_then(Value::as_str)
            .unwrap_or(crate::dispatch::UNASSIGNED);
        *by_city.entry(city.to_string()).or_default() += 1;
        *by_county.entry(format!("{city}/{county}")).or_default() += 1;
        if f.flag("obstructs_flood_channel") {
            obs_t += 1;
        } else {
            obs_f += 1;
        }
    }
    let processed: Vec<&TileRecord> = records.iter().filter(|r| r.status == "ok").collect();
    let pixels: u64 = processed.iter().map(|r| r.pixels).sum();
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
    let v = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "manifest": m.path.display().to_string(),
        "config_hash": cfg.hash(),
        "config": cfg,
        "tiles": {"total": m.tiles.len(), "processed": ok, "resumed": resumed, "failed": failures.len()},
        "polygons": {"per_tile": processed.iter().map(|r| r.polygons).sum::<usize>(), "merged": merged.len()},
        "counts": {
            "by_class": by_class, "by_city": by_city, "by_county": by_county,
            "obstructs_flood_channel": {"true": obs_t, "false": obs_f},
        },
        "throughput": {
            "wall_seconds": (wall * 1000.0).round() / 1000.0,
            "megapixels": pixels as f64 / 1e6,
            "mpix_per_s": ((pixels as f64 / 1e6 / wall.max(1e-9)) * 100.0).round() / 100.0,
            "tiles_per_min": (((ok + resumed) as f64 / wall.max(1e-9) * 60.0) * 100.0).round() / 100.0,
            "peak_rss_mb": peak_rss_mb(),
        },
        "failures": failures.iter().map(|(t, r)| json!({"tile": t, "reason": r})).collect::<Vec<_>>(),
        "per_tile": records.iter().map(|r| json!({
            "tile": r.tile, "status": r.status, "seconds": (r.seconds * 1000.0).round() / 1000.0,
            "mpix_per_s": if r.status == "ok" { ((r.pixels as f64 / 1e6 / r.seconds.max(1e-9)) * 100.0).round() / 100.0 } else { 0.0 },
            "polygons": r.polygons, "reason": r.reason,
            "normalization": r.report.as_ref().map(|x| json!({"gain": x.normalization.gain, "offset": x.normalization.offset})),
            "change_threshold": r.report.as_ref().map(|x| x.change_threshold),
            "cloud_share": r.report.as_ref().map(|x| x.cloud_share),
        })).collect::<Vec<_>>(),
        "inputs": inputs,
    });
    let text = serde_json::to_string_pretty(&v).map_err(|e| Error::Json {
        path: out.join("summary.json"),
        msg: e.to_string(),
    })?;
    write_atomic(&out.join("summary.json"), format!("{text}\n").as_bytes())
}

// ------------------------------------------------------------------ seams

/// Snaps coordinates within 5 cm of the grid's pixel lattice onto it, undoing
/// the 7-decimal rounding of WGS84 output so shared seam edges coincide.
fn snap(mp: &mut MultiPolygon<f64>, g: &Grid) {
    let (ox, oy, sx, sy) = (g.gt[0], g.gt[3], g.gt[1], g.gt[5]);
    mp.map_coords_in_place(|c| {
        let (fx, fy) = ((c.x - ox) / sx, (c.y - oy) / sy);
        let (rx, ry) = (ox + fx.round() * sx, oy + fy.round() * sy);
        Coord {
            x: if (rx - c.x).abs() < 0.05 { rx } else { c.x },
            y: if (ry - c.y).abs() < 0.05 { ry } else { c.y },
        }
    });
}

fn find(p: &mut [usize], mut x: usize) -> usize {
    while p[x] != x {
        p[x] = p[p[x]];
        x = p[x];
    }
    x
}

fn num(v: Option<&Value>) -> f64 {
    v.and_then(Value::as_f64).unwrap_or(0.0)
}

/// Merges polygons of the same class in different tiles that touch across a
/// seam into one feature (area, evidence, segment, chief and flag recomputed;
/// `tile` is the lowest tile id, `tiles` lists all). Every output feature gets
/// `tiles`. Tiles in different CRSs are not merged with each other.
///
/// # Errors
/// When coordinates cannot be transformed.
pub fn merge_seams(
    per_tile: &[(String, Vec<PolyFeature>, Grid)],
    segments: &[Segment],
    registry: &Registry,
) -> Result<Vec<PolyFeature>> {
    let mut out = Vec::new();
    let mut by_crs: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (_, _, g)) in per_tile.iter().enumerate() {
        by_crs.entry(g.wkt.as_str()).or_default().push(i);
    }
    for (wkt, tiles) in by_crs {
        let from = Transformer::from_wgs84(wkt)?;
        let to = Transformer::to_wgs84(wkt)?;
        let projected = corridor::project(segments, wkt)?;
        let index = SegmentIndex::new(segments, &projected);
        // (tile index, feature, geometry in the CRS)
        let mut items: Vec<(usize, &PolyFeature, MultiPolygon<f64>)> = Vec::new();
        for &ti in &tiles {
            let (_, feats, g) = &per_tile[ti];
            for f in feats {
                let mut mp = f.geometry.clone();
                from.apply_geom(&mut mp)?;
                snap(&mut mp, g);
                items.push((ti, f, mp));
            }
        }
        let rects: Vec<GeomWithData<Rectangle<[f64; 2]>, usize>> = items
            .iter()
            .enumerate()
            .filter_map(|(k, (_, _, mp))| {
                mp.bounding_rect().map(|r| {
                    GeomWithData::new(
                        Rectangle::from_corners(
                            [r.min().x - 0.5, r.min().y - 0.5],
                            [r.max().x + 0.5, r.max().y + 0.5],
                        ),
                        k,
                    )
                })
            })
            .collect();
        let tree = RTree::bulk_load(rects);
        let mut parent: Vec<usize> = (0..items.len()).collect();
        for (k, (ti, f, mp)) in items.iter().enumerate() {
            let Some(r) = mp.bounding_rect() else {
                continue;
            };
            let env = AABB::from_corners(
                [r.min().x - 0.5, r.min().y - 0.5],
                [r.max().x + 0.5, r.max().y + 0.5],
            );
            for other in tree.locate_in_envelope_intersecting(&env) {
                let j = other.data;
                if j <= k || items[j].0 == *ti || items[j].1.str("class") != f.str("class") {
                    continue;
                }
                if mp.intersects(&items[j].2) {
                    let (a, b) = (find(&mut parent, k), find(&mut parent, j));
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                }
            }
        }
        let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for k in 0..items.len() {
            let r = find(&mut parent, k);
            groups.entry(r).or_default().push(k);
        }
        for (_, members) in groups {
            if members.len() == 1 {
                let (ti, f, _) = &items[members[0]];
                let mut f = (*f).clone();
                f.props.insert("tiles".into(), json!([per_tile[*ti].0]));
                out.push(f);
                continue;
            }
            out.push(merge_group(
                &members
                    .iter()
                    .map(|&k| (&per_tile[items[k].0], items[k].1, &items[k].2))
                    .collect::<Vec<_>>(),
                &index,
                segments,
                registry,
                &to,
            )?);
        }
    }
    out.sort_by(|a, b| (a.str("tile"), a.str("id")).cmp(&(b.str("tile"), b.str("id"))));
    Ok(out)
}

type Member<'a> = (
    &'a (String, Vec<PolyFeature>, Grid),
    &'a PolyFeature,
    &'a MultiPolygon<f64>,
);

fn merge_group(
    members: &[Member<'_>],
    index: &SegmentIndex,
    segments: &[Segment],
    registry: &Registry,
    to_wgs: &Transformer,
) -> Result<PolyFeature> {
    let mut ms: Vec<&Member<'_>> = members.iter().collect();
    ms.sort_by(|a, b| (a.0 .0.as_str(), a.1.str("id")).cmp(&(b.0 .0.as_str(), b.1.str("id"))));
    let first = ms[0];
    let union = unary_union(ms.iter().map(|m| m.2));
    let px: Vec<f64> = ms
        .iter()
        .map(|m| num(m.1.props.get("evidence").and_then(|e| e.get("pixels"))))
        .collect();
    let total: f64 = px.iter().sum::<f64>().max(1.0);
    let wmean = |get: &dyn Fn(&PolyFeature) -> f64| {
        ms.iter().zip(&px).map(|(m, w)| get(m.1) * w).sum::<f64>() / total
    };
    let ev = |k: &'static str| {
        move |f: &PolyFeature| num(f.props.get("evidence").and_then(|e| e.get(k)))
    };
    let mut tiles: Vec<String> = ms.iter().map(|m| m.0 .0.clone()).collect();
    tiles.dedup();
    let mut props: Map<String, Value> = first.1.props.clone();
    let class = first.1.str("class").to_string();
    props.insert(
        "id".into(),
        json!(format!("{}-m{}", first.1.str("id"), ms.len())),
    );
    props.insert("area_m2".into(), json!(round(union.unsigned_area(), 2)));
    props.insert(
        "confidence".into(),
        json!(round(
            wmean(&|f: &PolyFeature| num(f.props.get("confidence"))),
            3
        )),
    );
    props.insert(
        "evidence".into(),
        json!({
            "ndvi_before": round(wmean(&ev("ndvi_before")), 4),
            "ndvi_after": round(wmean(&ev("ndvi_after")), 4),
            "ndwi_before": round(wmean(&ev("ndwi_before")), 4),
            "ndwi_after": round(wmean(&ev("ndwi_after")), 4),
            "change_magnitude": round(wmean(&ev("change_magnitude")), 4),
            "pixels": total as u64,
        }),
    );
    if let Some(near) = index.nearest(&union) {
        let seg = &segments[near.segment];
        let pts = pixel_centres(&union, &first.0 .2);
        let obstructs = blocks_flow(&class) && index.channel_share(near.segment, &pts) >= 0.5;
        let link = chief_link(registry, &seg.chief_id);
        props.insert("river".into(), json!(seg.river));
        props.insert("segment_id".into(), json!(seg.id));
        props.insert("distance_m".into(), json!(round(near.distance_m, 2)));
        props.insert("obstructs_flood_channel".into(), json!(obstructs));
        props.insert("chief_id".into(), json!(link.chief_id));
        props.insert("chief_level".into(), json!(link.chief_level));
        props.insert("chief_title".into(), json!(link.chief_title));
        props.insert("chain".into(), json!(link.chain));
        props.insert("city".into(), json!(link.city));
        props.insert("county".into(), json!(link.county));
    }
    props.insert("tile".into(), json!(first.0 .0));
    props.insert("tiles".into(), json!(tiles));
    let mut geometry = union;
    to_wgs.apply_geom(&mut geometry)?;
    crate::io::vector::round_geometry(&mut geometry);
    Ok(PolyFeature { geometry, props })
}
