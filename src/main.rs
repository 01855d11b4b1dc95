//! The `riverwatch` command. Exit codes: 0 success, 1 some tiles failed, 2 bad
//! invocation or unusable input.

mod cli;

use anyhow::{Context, Result};
use clap::Parser;
use cli::{Cli, Cmd};
use riverwatch::{io::vector, Config};
use std::process::ExitCode;

fn config(path: Option<&std::path::Path>) -> Result<Config> {
    match path {
        Some(p) => Ok(Config::from_toml(p)?),
        None => Ok(Config::default()),
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Synth(a) => {
            let o = riverwatch::synth::SynthOptions { seed: a.seed, tiles: a.tiles, size: a.size, sensor: a.sensor };
            let s = riverwatch::synth::synth(&a.out, &o).with_context(|| format!("synth into {}", a.out.display()))?;
            eprintln!("wrote {} tiles, {} segments, {} truth polygons to {}", s.tiles, s.segments, s.truth, a.out.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Validate(a) => {
            let cfg = config(a.config.as_deref())?;
            let v = riverwatch::validate::validate(&a.manifest, &cfg);
            if v.problems.is_empty() {
                println!("{}: OK ({} tiles, {} segments, {} chiefs)", a.manifest.display(), v.tiles_ok, v.segments, v.chiefs);
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{}: {} problem(s):", a.manifest.display(), v.problems.len());
                for p in &v.problems {
                    eprintln!("  {p}");
                }
                Ok(ExitCode::from(2))
            }
        }
        Cmd::Eval(a) => {
            let mut preds = Vec::new();
            for p in &a.pred {
                preds.extend(vector::read_collection(p).with_context(|| "reading predictions".to_string())?);
            }
            let truth = vector::read_collection(&a.truth).context("reading truth")?;
            let r = riverwatch::eval::evaluate(&preds, &truth, a.mmu_m2)?;
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
