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
// Parsed once per run; boxing the larger variants would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Generate sample tiles with ground truth.
    Synth(SynthArgs),
    /// Check every input a manifest names; process nothing.
    Validate(ValidateArgs),
    /// Score predictions against ground truth.
    Eval(EvalArgs),
    /// Score the change rasters of `detect --emit-rasters` pixel by pixel
    /// (change versus no change: precision, recall, F1, accuracy, kappa).
    EvalChange(EvalChangeArgs),
    /// Detect changes in tile pairs and write flagged polygons.
    Detect(DetectArgs),
    /// Run every tile of a manifest in parallel; merge seams; write dispatch
    /// packages and a summary.
    Batch(BatchArgs),
    /// Plan a batch for any engine: one self-contained task per tile, as
    /// JSON lines (absolute paths, every setting, the settings hash).
    Plan(PlanArgs),
    /// The map step of a plan: run one task (or every task given, one JSON
    /// per line) into a records folder. Idempotent and atomic: a retry, or
    /// two attempts at once, give the same files.
    RunTask(RunTaskArgs),
    /// The reduce step of a plan: merge a records folder across seams and
    /// write flagged polygons, dispatch packages, the case update and the
    /// summary, exactly as `batch` does.
    Merge(MergeArgs),
    /// Cases kept across nights (`batch --cases DB`): list, show, mark,
    /// export.
    Cases(CasesArgs),
    /// Re-check cases reported rectified against the newest images of a
    /// manifest: verified or rectification failed, with evidence.
    Recheck(RecheckArgs),
}

/// `cases` flags.
#[derive(Debug, Args)]
pub struct CasesArgs {
    /// The case store (SQLite) a batch wrote with --cases.
    #[arg(long, global = true, value_name = "DB")]
    pub cases: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub cmd: CasesCmd,
}

/// `cases` subcommands.
#[derive(Debug, Subcommand)]
pub enum CasesCmd {
    /// One line per case (id, status, class, place, age).
    List {
        /// Only cases of this status.
        #[arg(long)]
        status: Option<String>,
        /// Print only the ids, one per line (for scripts).
        #[arg(long)]
        ids: bool,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A case with its observations and status history.
    Show {
        /// Case id, e.g. RW-2026-000003.
        id: String,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set the status of cases (a team's report, a false alarm, a closure).
    Mark {
        /// Case ids.
        #[arg(required = true)]
        ids: Vec<String>,
        /// New status: reported_rectified, verified, rectification_failed,
        /// closed or false_alarm.
        #[arg(long)]
        status: String,
        /// Who reports it (team or office).
        #[arg(long)]
        by: String,
        /// Free text.
        #[arg(long, default_value = "")]
        note: String,
        /// Date of the report, YYYY-MM-DD (default: today).
        #[arg(long)]
        date: Option<String>,
    },
    /// Write cases.csv, observations.csv, events.csv and cases.gpkg.
    Export {
        /// Output folder.
        #[arg(short, long)]
        out: PathBuf,
        /// csv, gpkg or all.
        #[arg(long, default_value = "all")]
        format: String,
    },
}

/// `recheck` flags.
#[derive(Debug, Args)]
pub struct RecheckArgs {
    /// Manifest whose `after` images are the newest acquisitions (its
    /// `before` images are the reference state).
    pub manifest: PathBuf,
    /// The case store.
    #[arg(long, value_name = "DB")]
    pub cases: PathBuf,
    /// Output folder for the re-check packages (per city and county).
    #[arg(short, long)]
    pub out: PathBuf,
    /// Score the verdicts against this GeoJSON of sites with a `fate`
    /// property, `rectified` or `kept` (synth writes rectification.geojson).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Shared settings.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `batch` flags.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The manifest.
    pub manifest: PathBuf,
    /// Output folder.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Tiles in flight at once (memory grows with it).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Skip tiles already done with unchanged inputs and settings.
    #[arg(long)]
    pub resume: bool,
    /// No progress bar, plain log lines only.
    #[arg(long)]
    pub no_progress: bool,
    /// The case store.
    #[command(flatten)]
    pub cases: CaseArgs,
    /// Shared settings.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The case store of `batch` and `merge`.
#[derive(Debug, Args)]
pub struct CaseArgs {
    /// Keep cases across nights in this SQLite store (created when
    /// missing): packages then list cases with stable ids.
    #[arg(long, value_name = "DB")]
    pub cases: Option<PathBuf>,
    /// Case id prefix for a new store, e.g. HLJ (default RW).
    #[arg(long, requires = "cases")]
    pub case_prefix: Option<String>,
    /// Days after which an open case is overdue.
    #[arg(long, default_value_t = 30, requires = "cases")]
    pub overdue_days: i64,
}

impl CaseArgs {
    /// The store settings, when `--cases` is given.
    pub fn options(&self) -> Option<riverwatch::CaseOptions> {
        self.cases.clone().map(|db| riverwatch::CaseOptions {
            db,
            prefix: self.case_prefix.clone(),
            overdue_days: self.overdue_days,
        })
    }
}

/// `plan` flags.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The manifest.
    pub manifest: PathBuf,
    /// Tasks file to write (JSON lines, one task per tile).
    #[arg(short, long)]
    pub out: PathBuf,
    /// Shared settings.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `run-task` flags.
#[derive(Debug, Args)]
pub struct RunTaskArgs {
    /// The task: a file of one or more task lines (from `plan`), `-` for
    /// standard input, or the JSON text itself.
    pub task: String,
    /// Records folder (shared by every task of the plan; `merge` reads it).
    #[arg(short, long)]
    pub out: PathBuf,
    /// Run only the task at this position of the file (0-based line).
    #[arg(long)]
    pub index: Option<usize>,
}

/// `merge` flags.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Records folder the tasks of a plan ran into.
    pub records: PathBuf,
    /// Output folder (may be the records folder).
    #[arg(short, long)]
    pub out: PathBuf,
    /// The case store (as `batch --cases`).
    #[command(flatten)]
    pub cases: CaseArgs,
}

/// Settings shared by detect and batch.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// TOML settings file (overrides the built-in defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Detector: rules (default) or cva-otsu (the textbook baseline).
    #[arg(long)]
    pub method: Option<String>,
    /// Minimum polygon area, m².
    #[arg(long)]
    pub min_area_m2: Option<f64>,
    /// Minimum polygon pixel count.
    #[arg(long)]
    pub min_pixels: Option<usize>,
    /// Stream scenes in row blocks (bounded memory): auto (scenes over
    /// 3 Mpx, about 1774 × 1774 pixels), always, or never (read every
    /// scene whole).
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub stream: String,
    /// Rows per block when streaming.
    #[arg(long, default_value_t = 112, value_parser = clap::value_parser!(u32).range(8..))]
    pub block_rows: u32,
    /// Vertical strips computed side by side when streaming, each on its
    /// own thread, cut so each holds about the same number of zone blocks;
    /// 0 (default): four per worker thread, at most one per 1024 columns.
    /// The output is the same for any number.
    #[arg(long, default_value_t = 0)]
    pub strips: u32,
}

/// `detect` flags.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Manifest (omit when giving --before/--after).
    pub manifest: Option<PathBuf>,
    /// Only these tiles of the manifest (repeatable).
    #[arg(long = "tile")]
    pub tiles: Vec<String>,
    /// Earlier image (single-pair mode).
    #[arg(long, requires = "after", conflicts_with = "manifest")]
    pub before: Option<PathBuf>,
    /// Later image (single-pair mode).
    #[arg(long)]
    pub after: Option<PathBuf>,
    /// River segments GeoJSON (single-pair mode).
    #[arg(long)]
    pub rivers: Option<PathBuf>,
    /// Chief registry (single-pair mode).
    #[arg(long)]
    pub chiefs: Option<PathBuf>,
    /// Sensor preset (single-pair mode).
    #[arg(long, default_value = "sentinel2-l2a")]
    pub sensor: String,
    /// Cloud/shadow mask of the earlier image.
    #[arg(long)]
    pub before_mask: Option<PathBuf>,
    /// Cloud/shadow mask of the later image.
    #[arg(long)]
    pub after_mask: Option<PathBuf>,
    /// How the masks mark unusable pixels: binary (non-zero), scl
    /// (Sentinel-2 scene classification) or qa_pixel (Landsat C2 bits).
    #[arg(long)]
    pub mask_kind: Option<String>,
    /// Earlier date YYYY-MM-DD (default: from the file name).
    #[arg(long)]
    pub before_date: Option<String>,
    /// Later date YYYY-MM-DD (default: from the file name).
    #[arg(long)]
    pub after_date: Option<String>,
    /// Output GeoJSON.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Also write intermediate rasters (land cover, magnitude, classes,
    /// confidence, any-change, zones) as GeoTIFFs into this folder.
    #[arg(long)]
    pub emit_rasters: Option<PathBuf>,
    /// Use this change model (JSON from scripts/fit_change_model.py)
    /// instead of the built-in one: for cross-validation and refits.
    #[arg(long)]
    pub change_model: Option<PathBuf>,
    /// With --emit-rasters, also write the change model's per-pixel
    /// features (`TILE_change_features.tif`), for refitting the model.
    #[arg(long, requires = "emit_rasters")]
    pub emit_features: bool,
    /// Also write every reported component's model inputs as JSON lines
    /// (first line: the input names, in model order); what
    /// scripts/fit_models.py reads.
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// Whole-scene research mode (single-pair only): every pixel is in the
    /// management zone and polygons are not linked to segments or chiefs,
    /// so --rivers and --chiefs are not needed.
    #[arg(long, requires = "before", conflicts_with_all = ["rivers", "chiefs"])]
    pub scene: bool,
    /// Print the wall time of each pipeline stage.
    #[arg(long)]
    pub timings: bool,
    /// Shared settings.
    #[command(flatten)]
    pub common: CommonArgs,
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
    /// Also render a third date (a later night) where some objects were
    /// removed (rectified), some left (fake rectification) and some are
    /// new: writes manifest-night2.json, truth-night2.geojson and
    /// rectification.geojson.
    #[arg(long)]
    pub third_date: bool,
    /// Harder conditions for robustness measurements: a sensor change on
    /// the later date (per-band gains 0.5–1.6), strong haze, shifts up to
    /// 2 px, clouds on every tile and no cloud mask files.
    #[arg(long)]
    pub hard: bool,
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

/// `eval-change` flags.
#[derive(Debug, Args)]
pub struct EvalChangeArgs {
    /// Folder given to `detect --emit-rasters` (with --truth).
    #[arg(long, requires = "truth", conflicts_with_all = ["reference", "pred"])]
    pub rasters: Option<PathBuf>,
    /// Ground-truth GeoJSON (with --rasters).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// A reference change map on any grid (with --pred).
    #[arg(long, requires = "pred")]
    pub reference: Option<PathBuf>,
    /// A single-band change raster, non-zero = changed (for example
    /// `<tile>_change_class.tif` or `<tile>_any_change.tif`; with --reference).
    #[arg(long, requires = "reference")]
    pub pred: Option<PathBuf>,
    /// What the reference codes mean.
    #[arg(long, default_value = "unchanged=1,changed=2")]
    pub codes: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
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
    /// Also write each prediction's match (id, tile, matched truth class or
    /// null, IoU) to this file as JSON lines.
    #[arg(long)]
    pub matches: Option<PathBuf>,
    /// Score only truth objects of at least this area, m² (0 = all).
    #[arg(long, default_value_t = 0.0)]
    pub min_truth_m2: f64,
}
