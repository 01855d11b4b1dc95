//! The plan step: a manifest and settings turned into one self-contained
//! task per tile, so any engine (the local pool, Spark, Dask) can run the
//! map step ([`super::map::run_task`]) on any machine that sees the inputs,
//! and the reduce step ([`super::merge`]) needs only the records folder.
//!
//! `riverwatch plan` writes the tasks as JSON lines; every task carries the
//! [`Plan`] it belongs to, and `run-task` writes that plan to
//! `RECORDS/plan.json`, where `merge` finds the manifest and settings.

use super::records::sha256_file;
use crate::domain::config::Config;
use crate::domain::manifest::{Manifest, Sensor, Tile};
use crate::error::{Error, Result};
use crate::pipeline::stream::StreamOptions;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The format tag of a plan; a reader refuses any other.
pub const PLAN_FORMAT: &str = "riverwatch-plan/1";

/// What every task of one plan shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Always `riverwatch-plan/1` (`PLAN_FORMAT`).
    pub format: String,
    /// riverwatch version that made the plan; `run-task` and `merge` of
    /// another version refuse it (outputs are only reproducible within one).
    pub version: String,
    /// The manifest, absolute.
    pub manifest: PathBuf,
    /// Its SHA-256 when planned (`merge` refuses a changed manifest).
    pub manifest_sha256: String,
    /// Tiles in the manifest (and tasks in the plan).
    pub tiles: usize,
    /// Sensor layout.
    pub sensor: Sensor,
    /// River segments, absolute.
    pub rivers: PathBuf,
    /// Chief registry, absolute.
    pub chiefs: PathBuf,
    /// Every setting, so an executor needs no settings file.
    pub config: Config,
    /// [`Config::hash`] of `config`.
    pub config_hash: String,
    /// Streaming settings (memory only; never what is found).
    pub stream: StreamOptions,
}

/// One tile's map step, self-contained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// The plan it belongs to.
    pub plan: Plan,
    /// Position of the tile in the manifest (0-based).
    pub index: usize,
    /// Pixels of the tile's reference grid (0 when the image could not be
    /// opened while planning: the task then records the failure); engines
    /// size their partitions by it.
    pub pixels: u64,
    /// The tile, every path absolute (or a GDAL path such as `/vsis3/…`).
    pub tile: Tile,
}

impl Plan {
    /// The plan of manifest `m` (loaded from an absolute path for tasks
    /// that run elsewhere) with settings `cfg`.
    ///
    /// # Errors
    /// An unreadable manifest file.
    pub fn new(m: &Manifest, cfg: &Config, stream: StreamOptions) -> Result<Plan> {
        let (_, sha) = sha256_file(&m.path)?;
        Ok(Plan {
            format: PLAN_FORMAT.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            manifest: m.path.clone(),
            manifest_sha256: sha,
            tiles: m.tiles.len(),
            sensor: m.sensor.clone(),
            rivers: m.rivers.clone(),
            chiefs: m.chiefs.clone(),
            config: cfg.clone(),
            config_hash: cfg.hash(),
            stream,
        })
    }

    /// Checks that this binary can run the plan: format, version, and that
    /// the settings hash to `config_hash` (a hand-edited or truncated task
    /// is refused rather than run with other settings).
    ///
    /// # Errors
    /// What does not match, naming `origin` (the task or plan file).
    pub fn check(&self, origin: &Path) -> Result<()> {
        let bad = |msg: String| Error::Invalid {
            path: origin.to_path_buf(),
            msg,
        };
        if self.format != PLAN_FORMAT {
            return Err(bad(format!(
                "plan format {:?}, this riverwatch reads {PLAN_FORMAT:?}: make the plan again with `riverwatch plan`",
                self.format
            )));
        }
        if self.version != env!("CARGO_PKG_VERSION") {
            return Err(bad(format!(
                "planned by riverwatch {}, this is {}: run every step with one version (make the plan again)",
                self.version,
                env!("CARGO_PKG_VERSION")
            )));
        }
        self.config.check().map_err(|e| bad(e.to_string()))?;
        if self.config.hash() != self.config_hash {
            return Err(bad(format!(
                "settings hash to {}, the plan says {}: the task was edited; make the plan again",
                self.config.hash(),
                self.config_hash
            )));
        }
        Ok(())
    }

    /// `RECORDS/plan.json`.
    pub fn path(records: &Path) -> PathBuf {
        records.join("plan.json")
    }

    /// Writes `RECORDS/plan.json` (atomically; many tasks may do it at once
    /// with the same content). A records folder holds one plan's records:
    /// a different plan already there is refused unless `replace`.
    ///
    /// # Errors
    /// Another plan in the folder, or an unwritable folder.
    pub fn install(&self, records: &Path, replace: bool) -> Result<()> {
        crate::io::vfs::create_dir_all(&records.join("tiles"))?;
        let path = Plan::path(records);
        if !replace && crate::io::vfs::exists(&path) {
            let there: Plan = crate::io::read_json(&path)?;
            if &there == self {
                return Ok(());
            }
            return Err(Error::Invalid {
                path,
                msg: format!(
                    "holds another plan (manifest {}, settings {}); this task is of manifest {}, settings {}: give each plan its own records folder",
                    there.manifest.display(),
                    there.config_hash,
                    self.manifest.display(),
                    self.config_hash
                ),
            });
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Json {
            path: path.clone(),
            msg: e.to_string(),
        })?;
        crate::io::write_atomic(&path, text.as_bytes())
    }
}

/// One task per tile of `m`, in manifest order. The pixel count comes from
/// opening the tile's first image (metadata only).
///
/// # Errors
/// See [`Plan::new`].
pub fn tasks(m: &Manifest, cfg: &Config, stream: StreamOptions) -> Result<Vec<Task>> {
    let plan = Plan::new(m, cfg, stream)?;
    Ok(m.tiles
        .iter()
        .enumerate()
        .map(|(index, t)| Task {
            plan: plan.clone(),
            index,
            pixels: crate::io::raster::probe(t.before.label())
                .map_or(0, |(g, _)| (g.width * g.height) as u64),
            tile: t.clone(),
        })
        .collect())
}

/// The manifest at `path` loaded from its absolute path, so every path in
/// the plan is absolute.
///
/// # Errors
/// A missing or broken manifest.
pub fn load_absolute(path: &Path) -> Result<Manifest> {
    if crate::io::vfs::is_vsi(path) {
        return crate::io::load_manifest(path);
    }
    let abs = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
    crate::io::load_manifest(&abs)
}

/// Writes `tasks` as JSON lines (atomically).
///
/// # Errors
/// An unwritable file.
pub fn write_tasks(path: &Path, tasks: &[Task]) -> Result<()> {
    let mut text = String::new();
    for t in tasks {
        let line = serde_json::to_string(t).map_err(|e| Error::Json {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        text.push_str(&line);
        text.push('\n');
    }
    crate::io::write_atomic(path, text.as_bytes())
}

/// Parses one task (a line of `tasks.jsonl`) read from `origin`, and checks
/// its plan.
///
/// # Errors
/// Malformed JSON, unknown keys, or a plan this binary cannot run.
pub fn parse_task(origin: &Path, text: &str) -> Result<Task> {
    let t: Task = crate::domain::parse_json(origin, text.trim())?;
    t.plan.check(origin)?;
    if t.index >= t.plan.tiles {
        return Err(Error::Invalid {
            path: origin.to_path_buf(),
            msg: format!(
                "task index {} but the plan has {} tiles",
                t.index, t.plan.tiles
            ),
        });
    }
    Ok(t)
}
