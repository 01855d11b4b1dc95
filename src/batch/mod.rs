//! The nightly batch as map and reduce: [`map`] turns one tile into its
//! detection records (written per tile with a completion record, so
//! `--resume` after a crash or `kill -9` redoes only what is missing), a pool
//! of threads runs it over the tiles, and [`reduce`] merges the records
//! across tile seams; the sinks then write dispatch packages and the run
//! summary.
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

pub mod cases;
pub mod map;
pub mod recheck;
pub mod records;
pub mod reduce;
pub mod validate;

use crate::domain::chiefs::Registry;
use crate::domain::config::Config;
use crate::domain::manifest::Manifest;
use crate::domain::rivers::Segment;
use crate::error::{Error, Result};
use crate::pipeline::Context;
use map::Outcome;
use records::TileRecord;
use reduce::TileDetections;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Set (for example by a Ctrl-C handler) to stop after the tiles in
    /// flight; the run then records itself as interrupted.
    pub cancel: Arc<AtomicBool>,
    /// Keep cases across nights in this store (`--cases DB`).
    pub cases: Option<cases::CaseOptions>,
    /// When a scene is streamed in row blocks.
    pub stream: crate::StreamOptions,
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
    /// Merged records whose chain lacks a city or county chief (dispatched
    /// to `未分配-unassigned`).
    pub unassigned: usize,
    /// Stopped by [`BatchOptions::cancel`] before every tile was done: no
    /// merge or dispatch was written, `summary.json` says `interrupted`.
    pub interrupted: bool,
    /// What the night did to the case store, when one is kept.
    pub cases: Option<crate::sinks::cases::Ingest>,
}

/// Loads and cross-checks the rivers and chiefs a manifest names.
///
/// # Errors
/// Any input problem, and segments whose chief is not in the registry.
pub fn load_context_inputs(m: &Manifest, cfg: &Config) -> Result<(Vec<Segment>, Registry)> {
    let reg = crate::io::load_registry(&m.chiefs)?;
    let (segs, notes) = crate::io::vector::load_rivers_noted(&m.rivers, cfg.widths())?;
    for n in notes {
        eprintln!("note: {n}");
    }
    let missing: Vec<String> = segs
        .iter()
        .filter(|s| reg.get(&s.chief_id).is_none())
        .map(|s| {
            format!(
                "{}: segment {:?}: chief_id {:?} is not in {}",
                m.rivers.display(),
                s.id,
                s.chief_id,
                m.chiefs.display()
            )
        })
        .collect();
    if missing.is_empty() {
        Ok((segs, reg))
    } else {
        Err(Error::Many(missing))
    }
}

/// Progress of a running batch: a bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    n: usize,
    t0: Instant,
    done: AtomicUsize,
    /// Failures and pixels done so far.
    stats: Mutex<(usize, u64)>,
}

impl Progress {
    fn new(n: usize, show_bar: bool) -> Self {
        let bar = (show_bar && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(n as u64);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} tiles · {msg} · ETA {eta}",
            ) {
                b.set_style(style);
            }
            b
        });
        Progress {
            bar,
            n,
            t0: Instant::now(),
            done: AtomicUsize::new(0),
            stats: Mutex::new((0, 0)),
        }
    }

    fn line(tile: &str, outcome: &Outcome) -> String {
        match outcome {
            Outcome::Done {
                record,
                resumed: true,
                ..
            } => format!("tile {tile}: resumed ({} polygons)", record.polygons),
            Outcome::Done { record, .. } => format!(
                "tile {tile}: {} polygons in {:.1} s ({:.1} MPix/s)",
                record.polygons,
                record.seconds,
                record.pixels as f64 / 1e6 / record.seconds.max(1e-9)
            ),
            Outcome::Failed { record } => format!(
                "tile {tile}: FAILED: {}",
                record.reason.as_deref().unwrap_or("?")
            ),
        }
    }

    fn tick(&self, tile: &str, outcome: &Outcome) {
        let line = Self::line(tile, outcome);
        let (fails, px) = {
            let mut st = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            match outcome {
                Outcome::Done { record, .. } => st.1 += record.pixels,
                Outcome::Failed { .. } => st.0 += 1,
            }
            *st
        };
        let finished = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        let rate = px as f64 / 1e6 / self.t0.elapsed().as_secs_f64().max(1e-9);
        match &self.bar {
            Some(b) => {
                b.set_message(format!("{fails} failed · {rate:.1} MPix/s"));
                b.inc(1);
                if matches!(outcome, Outcome::Failed { .. }) {
                    b.println(&line);
                }
            }
            None => eprintln!("[{finished}/{}] {line}", self.n),
        }
    }
}

/// Runs the map step over every tile on `jobs` threads; outcomes in tile order.
fn map_all(m: &Manifest, ctx: &Context<'_>, o: &BatchOptions) -> Vec<Option<Outcome>> {
    let shared = vec![m.rivers.clone(), m.chiefs.clone()];
    let n = m.tiles.len();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..n).map(|_| None).collect());
    let progress = Progress::new(n, o.progress);
    std::thread::scope(|s| {
        for _ in 0..o.jobs.clamp(1, n.max(1)) {
            s.spawn(|| loop {
                if o.cancel.load(Ordering::SeqCst) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                let t = &m.tiles[i];
                let outcome = map::run_tile(t, &m.sensor, ctx, &o.out, &shared, o.resume);
                progress.tick(&t.id, &outcome);
                if let Ok(mut r) = results.lock() {
                    r[i] = Some(outcome);
                }
            });
        }
    });
    if let Some(b) = &progress.bar {
        b.finish_and_clear();
    }
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// The map outputs sorted out: per-tile detections for the reduce step,
/// every record, failures, and counts.
#[derive(Default)]
struct Gathered {
    per_tile: Vec<TileDetections>,
    records: Vec<TileRecord>,
    failures: Vec<(String, String)>,
    ok: usize,
    resumed: usize,
}

fn gather(m: &Manifest, results: Vec<Option<Outcome>>) -> Gathered {
    let mut g = Gathered::default();
    for (t, r) in m.tiles.iter().zip(results) {
        match r {
            Some(Outcome::Done {
                record,
                detections,
                resumed,
            }) => {
                if resumed {
                    g.resumed += 1;
                } else {
                    g.ok += 1;
                }
                if let Some(grid) = record.grid() {
                    g.per_tile.push(TileDetections {
                        tile: t.id.clone(),
                        detections,
                        grid,
                    });
                }
                g.records.push(record);
            }
            Some(Outcome::Failed { record }) => {
                g.failures
                    .push((t.id.clone(), record.reason.clone().unwrap_or_default()));
                g.records.push(record);
            }
            None => g.failures.push((t.id.clone(), "not processed".into())),
        }
    }
    g
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
        segments: &segments,
        registry: &registry,
        config: cfg,
        stream: o.stream,
    };
    std::fs::create_dir_all(o.out.join("tiles")).map_err(|e| Error::io(o.out.join("tiles"), e))?;
    // Leftovers of a run that was killed while writing, and the products
    // of an earlier run, which must never stand beside this run's records.
    crate::io::remove_stale_tmp(&o.out)?;
    crate::io::remove_stale_tmp(&o.out.join("tiles"))?;
    crate::sinks::remove_products(&o.out)?;
    // Opened (and migrated) before the long part, so a locked or foreign
    // store stops the run at once.
    let mut store = match &o.cases {
        Some(c) => Some(crate::sinks::cases::Store::open(
            &c.db,
            c.prefix.as_deref(),
        )?),
        None => None,
    };
    let results = map_all(m, &ctx, o);
    let interrupted = results.iter().any(Option::is_none) && o.cancel.load(Ordering::SeqCst);
    let g = gather(m, results);
    let mut ingest = None;
    let merged = if interrupted {
        Vec::new()
    } else {
        let mut merged = reduce::merge_seams(&g.per_tile, &segments, &registry)?;
        match (&mut store, &o.cases) {
            (Some(store), Some(co)) => {
                let up = cases::update(store, &mut merged, m, &o.out, co)?;
                crate::sinks::geojson::write(&o.out.join("flagged.geojson"), &merged)?;
                crate::sinks::gpkg::write(&o.out.join("flagged.gpkg"), &merged)?;
                crate::sinks::dispatch::write_packages(
                    &o.out,
                    &up.package,
                    m,
                    &segments,
                    &registry,
                    Some(&up.rollup),
                )?;
                ingest = Some(up.ingest);
            }
            _ => {
                crate::sinks::geojson::write(&o.out.join("flagged.geojson"), &merged)?;
                crate::sinks::gpkg::write(&o.out.join("flagged.gpkg"), &merged)?;
                crate::sinks::dispatch::write_packages(
                    &o.out, &merged, m, &segments, &registry, None,
                )?;
            }
        }
        merged
    };
    // Written last: its presence and `state` say whether the run finished.
    crate::sinks::summary::write(
        &o.out,
        &crate::sinks::summary::Run {
            manifest: m,
            config: cfg,
            records: &g.records,
            failures: &g.failures,
            merged: &merged,
            wall: t0.elapsed().as_secs_f64(),
            ok: g.ok,
            resumed: g.resumed,
            interrupted,
            cases: ingest.as_ref(),
        },
    )?;
    Ok(BatchResult {
        ok: g.ok,
        resumed: g.resumed,
        failures: g.failures,
        merged: merged.len(),
        unassigned: merged
            .iter()
            .filter(|f| crate::sinks::dispatch::unassigned(f))
            .count(),
        interrupted,
        cases: ingest,
    })
}
