//! `riverwatch validate`: opens every file a manifest names and reports all
//! problems at once.

use crate::domain::config::Config;
use crate::error::Error;
use crate::io::raster::TileReader;
use std::path::Path;

/// Everything `validate` found.
#[derive(Debug, Default)]
pub struct Validation {
    /// Problems, each naming the file and the tile, feature or chief.
    pub problems: Vec<String>,
    /// Tiles whose rasters opened and read.
    pub tiles_ok: usize,
    /// River segments loaded.
    pub segments: usize,
    /// Chiefs loaded.
    pub chiefs: usize,
}

fn push(out: &mut Vec<String>, e: Error) {
    match e {
        Error::Many(v) => out.extend(v),
        other => out.push(other.to_string()),
    }
}

/// Checks a manifest and every input it names: rivers, chiefs (and that each
/// segment's chief exists), and each tile's rasters and masks, reading the
/// first and last rows so truncated files are caught.
pub fn validate(path: &Path, cfg: &Config) -> Validation {
    let mut v = Validation::default();
    let m = match crate::io::load_manifest(path) {
        Ok(m) => m,
        Err(e) => {
            push(&mut v.problems, e);
            return v;
        }
    };
    let reg = crate::io::load_registry(&m.chiefs)
        .map_err(|e| push(&mut v.problems, e))
        .ok();
    let segs = crate::io::vector::load_rivers(&m.rivers, cfg.widths())
        .map_err(|e| push(&mut v.problems, e))
        .ok();
    if let Some(r) = &reg {
        v.chiefs = r.len();
    }
    if let Some(s) = &segs {
        v.segments = s.len();
        if let Some(r) = &reg {
            for seg in s {
                if r.get(&seg.chief_id).is_none() {
                    v.problems.push(format!(
                        "{}: segment {:?}: chief_id {:?} is not in {}",
                        m.rivers.display(),
                        seg.id,
                        seg.chief_id,
                        m.chiefs.display()
                    ));
                }
            }
        }
    }
    for t in &m.tiles {
        match TileReader::open(t, &m.sensor) {
            Ok(r) => {
                let h = r.grid.height;
                let first = r.read_rows(0..1);
                let last = r.read_rows(h - 1..h);
                match first.and(last).and_then(|_| radiometry(&r, &m.sensor, cfg)) {
                    Ok(None) => v.tiles_ok += 1,
                    Ok(Some(p)) => v.problems.push(format!("tile {}: {p}", t.id)),
                    Err(e) => v.problems.push(tile_msg(&t.id, e)),
                }
            }
            Err(e) => v.problems.push(tile_msg(&t.id, e)),
        }
    }
    v
}

/// The reflectance check of a batch, on a sample of both dates (at most
/// 512 pixels a side), so `validate` says what `batch` would stop on.
fn radiometry(
    r: &TileReader,
    sensor: &crate::domain::manifest::Sensor,
    cfg: &Config,
) -> crate::error::Result<Option<String>> {
    use crate::kernels::radiometry::{pair_problem, problem, stats};
    if !cfg.check_radiometry {
        return Ok(None);
    }
    let (h, w) = (r.grid.height, r.grid.width);
    let b = r.before.read_sample(h, w, 512)?;
    let a = r.after.read_sample(h, w, 512)?;
    let valid = ndarray::Zip::from(&b.valid)
        .and(&a.valid)
        .map_collect(|&x, &y| x && y);
    let (sb, sa) = (
        stats(b.bands.view(), valid.view()),
        stats(a.bands.view(), valid.view()),
    );
    Ok(problem(&sb, sensor.product())
        .map(|p| format!("implausible reflectance on the earlier date: {p}"))
        .or_else(|| {
            problem(&sa, sensor.product())
                .map(|p| format!("implausible reflectance on the later date: {p}"))
        })
        .or_else(|| pair_problem(&sb, &sa).map(|p| format!("implausible reflectance: {p}"))))
}

/// Prefixes an error with its tile unless it already names it.
pub fn tile_msg(tile: &str, e: Error) -> String {
    let m = e.to_string();
    if m.starts_with(&format!("tile {tile}:")) {
        m
    } else {
        format!("tile {tile}: {m}")
    }
}
