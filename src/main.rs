//! The `riverwatch` command. Exit codes: 0 success, 1 some tiles failed, 2 bad
//! invocation or unusable input.

mod cli;

use anyhow::{Context, Result};
use clap::Parser;
use cli::{Cli, Cmd};
use riverwatch::config::Method;
use riverwatch::detect;
use riverwatch::manifest::{DateImage, Manifest, Sensor, Tile};
use riverwatch::{io::vector, Config};
use std::path::PathBuf;
use std::process::ExitCode;

fn config(path: Option<&std::path::Path>) -> Result<Config> {
    match path {
        Some(p) => Ok(Config::from_toml(p)?),
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

fn date_from_name(p: &std::path::Path) -> Option<String> {
    let s = p.file_stem()?.to_string_lossy().to_string();
    let b = s.as_bytes();
    (0..b.len().saturating_sub(9))
        .map(|i| &s[i..i + 10])
        .find(|c| riverwatch::manifest::date_problem(c).is_none())
        .map(str::to_string)
}

fn detect(a: cli::DetectArgs) -> Result<ExitCode> {
    let cfg = settings(&a.common)?;
    let (manifest, tiles) = match (&a.manifest, &a.before) {
        (Some(m), None) => {
            let man = Manifest::load(m)?;
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
                if let Some(p) = riverwatch::manifest::date_problem(d) {
                    anyhow::bail!("{p}");
                }
            }
            let id = a.tiles.first().cloned().unwrap_or_else(|| "tile".into());
            if let Some(p) = riverwatch::manifest::tile_id_problem(&id) {
                anyhow::bail!("--tile {id:?} {p}");
            }
            let tile = Tile {
                id,
                before: DateImage {
                    image: before.clone(),
                    date: bd,
                    mask: a.before_mask.clone(),
                },
                after: DateImage {
                    image: after,
                    date: ad,
                    mask: a.after_mask.clone(),
                },
            };
            let man = Manifest {
                path: PathBuf::from("(command line)"),
                sensor,
                rivers: a.rivers.clone().context("--rivers is required")?,
                chiefs: a.chiefs.clone().context("--chiefs is required")?,
                tiles: vec![tile.clone()],
            };
            (man, vec![tile])
        }
        _ => anyhow::bail!("give a MANIFEST or --before/--after/--rivers/--chiefs"),
    };
    let (segments, registry) = detect::load_context_inputs(&manifest, &cfg)?;
    let ctx = detect::Context {
        sensor: &manifest.sensor,
        segments: &segments,
        registry: &registry,
        config: &cfg,
    };
    let mut all = Vec::new();
    let mut failed = 0;
    for t in &tiles {
        match detect::detect_tile(t, &ctx, a.emit_rasters.as_deref()) {
            Ok(r) => {
                eprintln!(
                    "tile {}: {} polygon(s) in {:.2} s (threshold {:.3}, gains {:?}, offsets {:?})",
                    t.id,
                    r.features.len(),
                    r.report.seconds,
                    r.report.change_threshold,
                    r.report.normalization.gain,
                    r.report.normalization.offset
                );
                all.extend(r.features);
            }
            Err(e) => {
                failed += 1;
                eprintln!("{}", riverwatch::validate::tile_msg(&t.id, e));
            }
        }
    }
    if failed == tiles.len() {
        anyhow::bail!("every tile failed; nothing written");
    }
    vector::write_collection(&a.out, &all)?;
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
            let o = riverwatch::synth::SynthOptions {
                seed: a.seed,
                tiles: a.tiles,
                size: a.size,
                sensor: a.sensor,
            };
            let s = riverwatch::synth::synth(&a.out, &o)
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
            let v = riverwatch::validate::validate(&a.manifest, &cfg);
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
        Cmd::Batch(a) => {
            let cfg = settings(&a.common)?;
            let m = Manifest::load(&a.manifest)?;
            let o = riverwatch::batch::BatchOptions {
                out: a.out.clone(),
                jobs: a.jobs.max(1),
                resume: a.resume,
                progress: !a.no_progress,
            };
            let r = riverwatch::batch::run(&m, &cfg, &o)
                .with_context(|| format!("batch into {}", a.out.display()))?;
            eprintln!(
                "{} tile(s) processed, {} resumed, {} failed; {} polygon(s) in {}; dispatch pages in {}",
                r.ok,
                r.resumed,
                r.failures.len(),
                r.merged,
                a.out.join("flagged.geojson").display(),
                a.out.join("dispatch").display()
            );
            for (t, why) in &r.failures {
                eprintln!("  failed: {t}: {why}");
            }
            Ok(if r.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::EvalChange(a) => {
            let truth = vector::read_collection(&a.truth).context("reading truth")?;
            let r = riverwatch::eval::evaluate_change(&a.rasters, &truth)?;
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
                preds.extend(
                    vector::read_collection(p)
                        .with_context(|| "reading predictions".to_string())?,
                );
            }
            let truth = vector::read_collection(&a.truth).context("reading truth")?;
            let r = riverwatch::eval::evaluate_with(&preds, &truth, a.mmu_m2, a.min_truth_m2)?;
            if let Some(path) = &a.matches {
                let mut lines = Vec::new();
                for m in &r.matches {
                    lines.extend(serde_json::to_vec(m)?);
                    lines.push(b'\n');
                }
                riverwatch::io::write_atomic(path, &lines)?;
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

fn main() -> ExitCode {
    riverwatch::tune_allocator();
    let cli = Cli::parse();
    // GDAL would print every error to stderr as well; riverwatch reports them
    // itself, with the file and tile, so only warnings of note are kept quiet.
    gdal::config::set_error_handler(|_, _, _| {});
    match run(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("riverwatch: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
