//! `plan` and `run-task`: the batch split into steps that any engine (Spark,
//! Dask, a shell loop) can run. `merge` is in main.rs beside `batch`, whose
//! report it shares.

use crate::cli::{PlanArgs, RunTaskArgs};
use anyhow::{bail, Context, Result};
use riverwatch::{Config, StreamOptions, Task, TaskOutcome};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The variable a test sets to make the first attempt of the named tiles'
/// tasks (comma-separated ids) die half-way, as an executor that is lost
/// would: a half-written temporary file, no record, exit code 70. A marker
/// in the records folder makes the next attempt run normally.
pub const FAIL_ONCE_VAR: &str = "RIVERWATCH_FAIL_ONCE";

pub fn plan(a: &PlanArgs, cfg: &Config, stream: StreamOptions) -> Result<ExitCode> {
    let m = riverwatch::load_manifest_absolute(&a.manifest)?;
    let tasks = riverwatch::plan_tasks(&m, cfg, stream)?;
    riverwatch::write_tasks(&a.out, &tasks)?;
    let px: u64 = tasks.iter().map(|t| t.pixels).sum();
    let unopened = tasks.iter().filter(|t| t.pixels == 0).count();
    eprintln!(
        "planned {} task(s), {:.1} Mpx, settings {} into {}",
        tasks.len(),
        px as f64 / 1e6,
        cfg.hash(),
        a.out.display()
    );
    if unopened > 0 {
        eprintln!(
            "note: {unopened} tile(s) could not be opened while planning; their tasks will record the failure"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The task text and what to call it in messages.
fn task_text(arg: &str) -> Result<(PathBuf, String)> {
    if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the task from standard input")?;
        return Ok((PathBuf::from("<stdin>"), s));
    }
    if arg.trim_start().starts_with('{') {
        return Ok((PathBuf::from("<task argument>"), arg.to_string()));
    }
    let p = PathBuf::from(arg);
    let s = std::fs::read_to_string(&p)
        .with_context(|| format!("{}: cannot read the task", p.display()))?;
    Ok((p, s))
}

/// The tasks of `text` (one per non-empty line), or the one at `index`.
fn parse_tasks(origin: &Path, text: &str, index: Option<usize>) -> Result<Vec<Task>> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let chosen: Vec<(usize, &str)> = match index {
        Some(i) => match lines.get(i) {
            Some(l) => vec![*l],
            None => bail!(
                "{}: --index {i} but it holds {} task(s)",
                origin.display(),
                lines.len()
            ),
        },
        None => lines,
    };
    if chosen.is_empty() {
        bail!(
            "{}: holds no task (make one with `riverwatch plan`)",
            origin.display()
        );
    }
    let mut tasks = Vec::with_capacity(chosen.len());
    for (n, line) in chosen {
        let at = PathBuf::from(format!("{} line {}", origin.display(), n + 1));
        tasks.push(riverwatch::parse_task(&at, line)?);
    }
    if let Some(t) = tasks.iter().find(|t| t.plan != tasks[0].plan) {
        bail!(
            "{}: tasks of different plans (tile {} is of manifest {}, settings {}): run each plan's tasks separately",
            origin.display(),
            t.tile.id,
            t.plan.manifest.display(),
            t.plan.config_hash
        );
    }
    Ok(tasks)
}

/// Dies the way a lost executor does, once per tile and records folder,
/// when [`FAIL_ONCE_VAR`] names the tile.
fn injected_failure(task: &Task, out: &Path) {
    let Ok(ids) = std::env::var(FAIL_ONCE_VAR) else {
        return;
    };
    if !ids.split(',').any(|i| i.trim() == task.tile.id) {
        return;
    }
    let marker = out.join(format!(".failed-once-{}", task.tile.id));
    if marker.exists() || std::fs::write(&marker, b"").is_err() {
        return;
    }
    let _ = std::fs::write(
        out.join("tiles")
            .join(format!(".{}.geojson.injected.rwtmp", task.tile.id)),
        b"{\"type\": \"FeatureCollection\", \"feat",
    );
    eprintln!(
        "riverwatch: tile {}: injected failure ({FAIL_ONCE_VAR}); the next attempt runs normally",
        task.tile.id
    );
    std::process::exit(70);
}

/// One JSON line per task on standard output: what the engine logs.
fn outcome_line(task: &Task, o: &TaskOutcome) -> serde_json::Value {
    let (status, rec) = match o {
        TaskOutcome::Done {
            record,
            resumed: true,
            ..
        } => ("resumed", record),
        TaskOutcome::Done { record, .. } => ("ok", record),
        TaskOutcome::Failed { record } => ("failed", record),
    };
    serde_json::json!({
        "tile": task.tile.id,
        "index": task.index,
        "status": status,
        "polygons": rec.polygons,
        "pixels": rec.pixels,
        "seconds": (rec.seconds * 1000.0).round() / 1000.0,
        "reason": rec.reason,
    })
}

/// Exit 0 once every task has its record (a tile that failed on its own
/// inputs has a failure record: retrying would fail the same way); 2 when
/// the task or the shared inputs are unusable, so an engine retries or
/// stops.
pub fn run_task(a: &RunTaskArgs) -> Result<ExitCode> {
    let (origin, text) = task_text(&a.task)?;
    let tasks = parse_tasks(&origin, &text, a.index)?;
    let plan = &tasks[0].plan;
    plan.install(&a.out, false)?;
    let (segments, registry) =
        riverwatch::load_rivers_and_chiefs(&plan.rivers, &plan.chiefs, &plan.config)?;
    let ctx = riverwatch::Context {
        segments: &segments,
        registry: &registry,
        config: &plan.config,
        stream: plan.stream,
        indexes: &riverwatch::Indexes::default(),
        change_model: None,
    };
    for t in &tasks {
        injected_failure(t, &a.out);
        let o = riverwatch::run_task(t, &ctx, &a.out, true);
        println!("{}", outcome_line(t, &o));
    }
    Ok(ExitCode::SUCCESS)
}
