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
pub mod merge;
pub mod plan;
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
use merge::Gathered;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
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
    load_rivers_and_chiefs(&m.rivers, &m.chiefs, cfg)
}

/// Loads and cross-checks a rivers file and a chief registry (notes on how
/// the rivers were read go to stderr).
///
/// # Errors
/// Any input problem, and segments whose chief is not in the registry.
pub fn load_rivers_and_chiefs(
    rivers: &Path,
    chiefs: &Path,
    cfg: &Config,
) -> Result<(Vec<Segment>, Registry)> {
    let reg = crate::io::load_registry(chiefs)?;
    let (segs, notes) = crate::io::vector::load_rivers_noted(rivers, cfg.widths())?;
    for n in notes {
        eprintln!("note: {n}");
    }
    let missing: Vec<String> = segs
        .iter()
        .filter(|s| reg.get(&s.chief_id).is_none())
        .map(|s| {
            format!(
                "{}: segment {:?}: chief_id {:?} is not in {}",
                rivers.display(),
                s.id,
                s.chief_id,
                chiefs.display()
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

/// Runs the map step over every task on `jobs` threads; outcomes in task order.
fn map_all(tasks: &[plan::Task], ctx: &Context<'_>, o: &BatchOptions) -> Vec<Option<Outcome>> {
    let n = tasks.len();
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
                let outcome = map::run_task(&tasks[i], ctx, &o.out, o.resume);
                progress.tick(&tasks[i].tile.id, &outcome);
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

/// The outcomes of an interrupted run, for its summary.
fn gather_outcomes(m: &Manifest, results: Vec<Option<Outcome>>) -> Gathered {
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
                g.done(&t.id, record, detections);
            }
            Some(Outcome::Failed { record }) => {
                let why = record.reason.clone().unwrap_or_default();
                g.failed(&t.id, why, Some(record));
            }
            None => g.failed(&t.id, "not processed".into(), None),
        }
    }
    g
}

/// Runs a batch over every tile of `m`: the plan, the map step of every
/// task on a pool of threads (records in `OUT/tiles/`), and the reduce
/// step (`merge`) reading those records back, exactly as
/// `riverwatch plan` + `run-task` + `merge` on any engine.
///
/// # Errors
/// Unusable shared inputs (rivers, chiefs) or an unwritable output folder;
/// a failing tile is recorded, not returned.
pub fn run(m: &Manifest, cfg: &Config, o: &BatchOptions) -> Result<BatchResult> {
    let t0 = Instant::now();
    let (segments, registry) = load_context_inputs(m, cfg)?;
    let indexes = crate::pipeline::link::Indexes::default();
    let ctx = Context {
        segments: &segments,
        registry: &registry,
        config: cfg,
        stream: o.stream,
        indexes: &indexes,
        change_model: None,
    };
    std::fs::create_dir_all(o.out.join("tiles")).map_err(|e| Error::io(o.out.join("tiles"), e))?;
    // Leftovers of a run that was killed while writing, and the products
    // of an earlier run, which must never stand beside this run's records.
    crate::io::remove_stale_tmp(&o.out)?;
    crate::io::remove_stale_tmp(&o.out.join("tiles"))?;
    crate::sinks::remove_products(&o.out)?;
    let tasks = plan::tasks(m, cfg, o.stream)?;
    if let Some(t) = tasks.first() {
        // The batch owns its folder: an earlier run's plan is replaced.
        t.plan.install(&o.out, true)?;
    }
    // Opened (and migrated) before the long part, so a locked or foreign
    // store stops the run at once.
    let mut store = match &o.cases {
        Some(c) => Some(crate::sinks::cases::Store::open(
            &c.db,
            c.prefix.as_deref(),
        )?),
        None => None,
    };
    let results = map_all(&tasks, &ctx, o);
    let inp = merge::Inputs {
        manifest: m,
        config: cfg,
        segments: &segments,
        registry: &registry,
        indexes: &indexes,
    };
    let interrupted = results.iter().any(Option::is_none) && o.cancel.load(Ordering::SeqCst);
    if interrupted {
        let g = gather_outcomes(m, results);
        merge::write_summary(&inp, &g, &o.out, &[], true, None, t0)?;
        return Ok(BatchResult {
            ok: g.ok,
            resumed: g.resumed,
            failures: g.failures,
            merged: 0,
            unassigned: 0,
            interrupted: true,
            cases: None,
        });
    }
    let (ok, resumed) = results.iter().fold((0, 0), |(ok, re), r| match r {
        Some(Outcome::Done { resumed: true, .. }) => (ok, re + 1),
        Some(Outcome::Done { .. }) => (ok + 1, re),
        _ => (ok, re),
    });
    drop(results);
    // The reduce step reads the records back from disk, as `merge` does.
    let mut g = merge::gather(&o.out, m, &cfg.hash());
    (g.ok, g.resumed) = (ok, resumed);
    merge::finish(&inp, &g, &o.out, store.as_mut().zip(o.cases.as_ref()), t0)
}
