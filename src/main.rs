//! The `riverwatch` command. Exit codes: 0 success, 1 some tiles failed, 2 bad
//! invocation or unusable input.

mod cases_cmd;
mod cli;
mod scale_cmd;

use anyhow::{Context, Result};
use clap::Parser;
use cli::{Cli, Cmd};
use riverwatch::{
    Config, DateImage, EvalObject, FeatureWriter, Manifest, Method, RasterWriter, Sensor,
    StageTimes, Tap, Taps, Tile,
};
use std::path::PathBuf;
use std::process::ExitCode;

fn config(path: Option<&std::path::Path>) -> Result<Config> {
    match path {
        Some(p) => Ok(riverwatch::load_config(p)?),
        None => Ok(Config::default()),
    }
}

fn settings(c: &cli::CommonArgs) -> Result<Config> {
    let mut cfg = config(c.config.as_deref())?;
    if let Some(m) = &c.method {
        cfg.method = match m.as_str() {
            "rules" => Method::Rules,
            "cva-otsu" => Method::CvaOtsu,
            other => anyhow::bail!("unknown --method {other:?} (rules or cva-otsu)"),
        };
    }
    if let Some(v) = c.min_area_m2 {
        cfg.min_area_m2 = v;
    }
    if let Some(v) = c.min_pixels {
        cfg.min_pixels = v;
    }
    cfg.check()?;
    Ok(cfg)
}

/// When and how scenes are streamed (`--stream`, `--block-rows`, `--strips`).
fn streaming(c: &cli::CommonArgs) -> riverwatch::StreamOptions {
    let d = riverwatch::StreamOptions::default();
    riverwatch::StreamOptions {
        block_rows: c.block_rows as usize,
        strips: c.strips as usize,
        in_memory_px: match c.stream.as_str() {
            "always" => 0,
            "never" => usize::MAX,
            _ => d.in_memory_px,
        },
        ..d
    }
}

fn date_from_name(p: &std::path::Path) -> Option<String> {
    let s = p.file_stem()?.to_string_lossy().to_string();
    let b = s.as_bytes();
    (0..b.len().saturating_sub(9))
        .map(|i| &s[i..i + 10])
        .find(|c| riverwatch::date_problem(c).is_none())
        .map(str::to_string)
}

fn detect(a: cli::DetectArgs) -> Result<ExitCode> {
    let cfg = settings(&a.common)?;
    let (manifest, tiles) = match (&a.manifest, &a.before) {
        (Some(m), None) => {
            let man = riverwatch::load_manifest(m)?;
            let tiles = man.select(&a.tiles)?;
            (man, tiles)
        }
        (None, Some(before)) => {
            let after = a
                .after
                .clone()
                .context("--after is required with --before")?;
            let sensor = Sensor::preset(&a.sensor)
                .with_context(|| format!("unknown --sensor {:?}", a.sensor))?;
            let bd = a
                .before_date
                .clone()
                .or_else(|| date_from_name(before))
                .context("--before-date is required (no YYYY-MM-DD in the file name)")?;
            let ad = a
                .after_date
                .clone()
                .or_else(|| date_from_name(&after))
                .context("--after-date is required (no YYYY-MM-DD in the file name)")?;
            for d in [&bd, &ad] {
                if let Some(p) = riverwatch::date_problem(d) {
                    anyhow::bail!("{p}");
                }
            }
            let id = a.tiles.first().cloned().unwrap_or_else(|| "tile".into());
            if let Some(p) = riverwatch::tile_id_problem(&id) {
                anyhow::bail!("--tile {id:?} {p}");
            }
            let mask_kind = match a.mask_kind.as_deref() {
                None => None,
                Some(k) => Some(serde_json::from_value(serde_json::Value::from(k)).map_err(
                    |_| anyhow::anyhow!("--mask-kind {k:?}: one of binary, scl, qa_pixel"),
                )?),
            };
            let tile = Tile {
                id,
                before: DateImage {
                    image: before.clone(),
                    date: bd,
                    mask: a.before_mask.clone(),
                    mask_kind,
                    ..DateImage::default()
                },
                after: DateImage {
                    image: after,
                    date: ad,
                    mask: a.after_mask.clone(),
                    mask_kind,
                    ..DateImage::default()
                },
            };
            let man =
                Manifest {
                    path: PathBuf::from("(command line)"),
                    sensor,
                    rivers: a.rivers.clone().or(a.scene.then(PathBuf::new)).context(
                        "--rivers is required (or --scene for a whole-scene research run)",
                    )?,
                    chiefs: a.chiefs.clone().or(a.scene.then(PathBuf::new)).context(
                        "--chiefs is required (or --scene for a whole-scene research run)",
                    )?,
                    tiles: vec![tile.clone()],
                };
            (man, vec![tile])
        }
        _ => anyhow::bail!("give a MANIFEST or --before/--after/--rivers/--chiefs"),
    };
    let (segments, registry) = if a.scene {
        let none = riverwatch::Registry::from_chiefs(std::path::Path::new("(none)"), Vec::new())?;
        (Vec::new(), none)
    } else {
        riverwatch::load_context_inputs(&manifest, &cfg)?
    };
    let model = match &a.change_model {
        Some(p) => Some(riverwatch::load_change_model(p)?),
        None => None,
    };
    let ctx = riverwatch::Context {
        segments: &segments,
        registry: &registry,
        config: &cfg,
        stream: streaming(&a.common),
        indexes: &riverwatch::Indexes::default(),
        change_model: model.as_ref(),
    };
    let mut rasters = a.emit_rasters.clone().map(|dir| RasterWriter {
        dir,
        features: a.emit_features,
    });
    let mut features = a.features.clone().map(FeatureWriter::new);
    let mut all = Vec::new();
    let mut failed = 0;
    for t in &tiles {
        let mut times = StageTimes::default();
        let mut taps: Vec<&mut dyn Tap> = vec![&mut times];
        if let Some(r) = rasters.as_mut() {
            taps.push(r);
        }
        if let Some(f) = features.as_mut() {
            taps.push(f);
        }
        match riverwatch::detect_tile(t, &manifest.sensor, &ctx, &mut Taps(taps)) {
            Ok(r) => {
                eprintln!(
                    "tile {}: {} polygon(s) in {:.2} s (threshold {:.3}, gains {:?}, offsets {:?})",
                    t.id,
                    r.detections.len(),
                    r.report.seconds,
                    r.report.change_threshold,
                    r.report.normalization.gain,
                    r.report.normalization.offset
                );
                for n in &r.report.notes {
                    eprintln!("  note: {n}");
                }
                if let Some(st) = &r.report.stream {
                    eprintln!(
                        "  streamed: {} of {} blocks of {} rows reach a zone, in {} strips; {:.1} % of the scene read; estimates from {} rows",
                        st.blocks_in_zone,
                        st.blocks,
                        st.block_rows,
                        st.strips,
                        100.0 * st.read_share,
                        st.sample_rows
                    );
                }
                if a.timings {
                    for (stage, s) in &times.0 {
                        eprintln!("  {stage:<24} {s:8.3} s");
                    }
                }
                all.extend(r.detections);
            }
            Err(e) => {
                failed += 1;
                eprintln!("{}", riverwatch::tile_msg(&t.id, e));
            }
        }
    }
    if failed == tiles.len() {
        anyhow::bail!("every tile failed; nothing written");
    }
    if let Some(f) = features {
        f.finish()?;
    }
    riverwatch::write_detections(&a.out, &all)?;
    eprintln!("wrote {} polygon(s) to {}", all.len(), a.out.display());
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Synth(a) => {
            let o = riverwatch::SynthOptions {
                seed: a.seed,
                tiles: a.tiles,
                size: a.size,
                sensor: a.sensor,
                third_date: a.third_date,
                hard: a.hard,
            };
            let s = riverwatch::synth(&a.out, &o)
                .with_context(|| format!("synth into {}", a.out.display()))?;
            eprintln!(
                "wrote {} tiles, {} segments, {} truth polygons to {}",
                s.tiles,
                s.segments,
                s.truth,
                a.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Validate(a) => {
            let cfg = config(a.config.as_deref())?;
            let v = riverwatch::validate(&a.manifest, &cfg);
            if v.problems.is_empty() {
                println!(
                    "{}: OK ({} tiles, {} segments, {} chiefs)",
                    a.manifest.display(),
                    v.tiles_ok,
                    v.segments,
                    v.chiefs
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{}: {} problem(s):", a.manifest.display(), v.problems.len());
                for p in &v.problems {
                    eprintln!("  {p}");
                }
                Ok(ExitCode::from(2))
            }
        }
        Cmd::Detect(a) => detect(a),
        Cmd::Cases(a) => cases_cmd::cases(a),
        Cmd::Recheck(a) => {
            let cfg = settings(&a.common)?;
            cases_cmd::recheck(a, &cfg)
        }
        Cmd::Batch(a) => {
            let cfg = settings(&a.common)?;
            // Absolute paths, as `plan` makes them, so every engine's
            // summary and messages name the files alike.
            let m = riverwatch::load_manifest_absolute(&a.manifest)?;
            let o = riverwatch::BatchOptions {
                out: a.out.clone(),
                jobs: a.jobs.max(1),
                resume: a.resume,
                progress: !a.no_progress,
                cancel: cancel_on_ctrl_c(),
                stream: streaming(&a.common),
                cases: a.cases.options(),
            };
            let r = riverwatch::run_batch(&m, &cfg, &o)
                .with_context(|| format!("batch into {}", a.out.display()))?;
            Ok(report_batch(&r, &a.out))
        }
        Cmd::Plan(a) => {
            let cfg = settings(&a.common)?;
            scale_cmd::plan(&a, &cfg, streaming(&a.common))
        }
        Cmd::RunTask(a) => scale_cmd::run_task(&a),
        Cmd::Merge(a) => {
            let cases = a.cases.options();
            let r = riverwatch::merge_records(&a.records, &a.out, cases.as_ref()).with_context(
                || format!("merge {} into {}", a.records.display(), a.out.display()),
            )?;
            Ok(report_batch(&r, &a.out))
        }
        Cmd::EvalChange(a) => {
            if let (Some(reference), Some(pred)) = (&a.reference, &a.pred) {
                let codes = riverwatch::Codes::parse(&a.codes)
                    .map_err(|m| anyhow::anyhow!("--codes {:?}: {m}", a.codes))?;
                let r = riverwatch::evaluate_reference(pred, reference, &codes)?;
                if a.json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    print!("{}", r.table());
                }
                return Ok(ExitCode::SUCCESS);
            }
            let (Some(rasters), Some(truth)) = (&a.rasters, &a.truth) else {
                anyhow::bail!(
                    "give --rasters DIR --truth T.geojson, or --reference REF.tif --pred P.tif"
                );
            };
            let truth = EvalObject::read(truth).context("reading truth")?;
            let r = riverwatch::evaluate_change(rasters, &truth)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", r.table());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Eval(a) => {
            let mut preds = Vec::new();
            for p in &a.pred {
                preds.extend(EvalObject::read(p).context("reading predictions")?);
            }
            let truth = EvalObject::read(&a.truth).context("reading truth")?;
            let r = riverwatch::evaluate_with(&preds, &truth, a.mmu_m2, a.min_truth_m2)?;
            if let Some(path) = &a.matches {
                let mut lines = Vec::new();
                for m in &r.matches {
                    lines.extend(serde_json::to_vec(m)?);
                    lines.push(b'\n');
                }
                std::fs::write(path, &lines)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", r.table());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints what a batch (or a merge) did; its exit code: 0, 1 when tiles
/// failed, 130 when interrupted.
fn report_batch(r: &riverwatch::BatchResult, out: &std::path::Path) -> ExitCode {
    eprintln!(
        "{} tile(s) processed, {} resumed, {} failed; {} polygon(s) in {}; dispatch pages in {}",
        r.ok,
        r.resumed,
        r.failures.len(),
        r.merged,
        out.join("flagged.geojson").display(),
        out.join("dispatch").display()
    );
    for (t, why) in &r.failures {
        eprintln!("  failed: {t}: {why}");
    }
    if r.unassigned > 0 {
        eprintln!(
            "warning: {} polygon(s) have no city or county chief in their chain; they are in {}/dispatch/未分配-unassigned: add the missing levels to the chief registry",
            r.unassigned,
            out.display()
        );
    }
    if let Some(c) = &r.cases {
        if c.already {
            eprintln!("cases: this night is already in the case store; nothing changed");
        } else {
            eprintln!(
                "cases: {} opened, {} detection(s) continued open cases, {} reappeared, {} at false-alarm sites (not dispatched); supervision list in {}",
                c.opened,
                c.continued,
                c.reappeared,
                c.suppressed,
                out.join("dispatch/supervision.csv").display()
            );
        }
    }
    if r.interrupted {
        eprintln!(
            "interrupted: {} tile(s) done are recorded; run again with --resume to finish",
            r.ok + r.resumed
        );
        return ExitCode::from(130);
    }
    if r.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// A flag set by Ctrl-C (SIGINT): the batch finishes the tiles in
/// flight, records the run as interrupted and exits 130. A second Ctrl-C
/// ends the process at once (the tile records already written stay valid).
fn cancel_on_ctrl_c() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = std::sync::Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let handler = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("stopping after the tiles in flight (Ctrl-C again to stop now)");
    });
    if let Err(e) = handler {
        eprintln!("riverwatch: warning: Ctrl-C will not stop cleanly: {e}");
    }
    flag
}

fn main() -> ExitCode {
    riverwatch::tune_allocator();
    let cli = Cli::parse();
    // GDAL would print every error to stderr as well; riverwatch reports them
    // itself, with the file and tile, so only warnings of note are kept quiet.
    riverwatch::quiet_gdal();
    match run(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("riverwatch: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
