//! Command-line flags (clap). The only code that knows clap: it turns what the
//! user typed into library calls and a [`riverwatch::Config`].

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// River-corridor change detection linked to river chiefs.
#[derive(Debug, Parser)]
#[command(name = "riverwatch", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Generate sample tiles with ground truth.
    Synth(SynthArgs),
    /// Check every input a manifest names; process nothing.
    Validate(ValidateArgs),
    /// Score predictions against ground truth.
    Eval(EvalArgs),
}

/// `synth` flags.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output folder.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Number of tiles.
    #[arg(long, default_value_t = 4)]
    pub tiles: usize,
    /// Tile side, pixels.
    #[arg(long, default_value_t = 512)]
    pub size: usize,
    /// Sensor layout: sentinel2-l2a or gf-4band.
    #[arg(long, default_value = "sentinel2-l2a")]
    pub sensor: String,
}

/// `validate` flags.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The manifest.
    pub manifest: PathBuf,
    /// TOML settings file.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `eval` flags.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Prediction GeoJSON files (per-tile output of detect or batch).
    #[arg(long, num_args = 1.., required = true)]
    pub pred: Vec<PathBuf>,
    /// Ground-truth GeoJSON.
    #[arg(long)]
    pub truth: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Truth size, m², for the "recall at the mapping unit" line.
    #[arg(long, default_value_t = 400.0)]
    pub mmu_m2: f64,
}
