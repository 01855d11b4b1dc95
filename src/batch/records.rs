//! The map step's outputs on disk: per tile a GeoJSON of its detections and
//! a completion record (inputs' checksums, settings hash, timing, the
//! detector's report), written atomically so `--resume` redoes only what is
//! missing or stale.

use crate::domain::manifest::Tile;
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::pipeline::TileReport;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One input file's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSum {
    /// Path as resolved from the manifest.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// The record written next to a tile's output once it is complete.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TileRecord {
    /// Tile id.
    pub tile: String,
    /// `ok` or `failed`.
    pub status: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// Size and modification time of every input, hashed.
    pub fingerprint: String,
    /// Hash of the settings.
    pub config_hash: String,
    /// riverwatch version.
    pub version: String,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Pixels in the tile.
    pub pixels: u64,
    /// Polygons flagged.
    pub polygons: usize,
    /// SHA-256 of `tiles/<tile>.geojson`.
    pub output_sha256: Option<String>,
    /// Checksums of the tile's input files.
    pub inputs: Vec<InputSum>,
    /// CRS WKT and geotransform of the reference grid.
    pub grid: Option<(String, [f64; 6], usize, usize)>,
    /// The detector's diagnostics.
    pub report: Option<TileReport>,
}

pub(crate) fn sha256_file(path: &Path) -> Result<(u64, String)> {
    if crate::io::vfs::is_vsi(path) {
        let b = crate::io::vfs::read(path)?;
        return Ok((b.len() as u64, hex(&Sha256::digest(&b))));
    }
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if k == 0 {
            break;
        }
        n += k as u64;
        h.update(&buf[..k]);
    }
    Ok((n, hex(&h.finalize())))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The local files a tile reads: each path, or for GDAL paths the archive
/// (`/vsizip/a.zip/x.tif` → `a.zip`) or the file of a subdataset
/// (`SENTINEL2_L2A:/p/MTD.xml:10m:…` → `/p/MTD.xml`); remote paths
/// (`/vsicurl/`, `/vsis3/`, …) are left out.
pub(crate) fn tile_files(t: &Tile) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = t
        .before
        .files()
        .into_iter()
        .chain(t.after.files())
        .filter_map(local_file)
        .collect();
    v.dedup();
    v
}

fn local_file(p: &Path) -> Option<PathBuf> {
    let s = p.to_string_lossy();
    for pre in ["/vsizip/", "/vsitar/", "/vsigzip/"] {
        if let Some(rest) = s.strip_prefix(pre) {
            let lower = rest.to_ascii_lowercase();
            let end = [".zip", ".tar.gz", ".tgz", ".tar", ".gz"]
                .iter()
                .filter_map(|x| lower.find(x).map(|i| i + x.len()))
                .min()?;
            return Some(PathBuf::from(&rest[..end]));
        }
    }
    if s.starts_with("/vsi") {
        return None;
    }
    if crate::domain::manifest::is_virtual_path(p) {
        return s.split(':').nth(1).map(PathBuf::from);
    }
    Some(p.to_path_buf())
}

/// Size + mtime of every input of a tile (and the shared vectors), hashed:
/// cheap to recompute on resume.
pub(crate) fn fingerprint(t: &Tile, shared: &[PathBuf]) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_string(t).unwrap_or_default().as_bytes());
    for p in tile_files(t).iter().chain(shared) {
        let meta = std::fs::metadata(p);
        let (len, mtime) = match &meta {
            Ok(m) => (
                m.len(),
                m.modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos()),
            ),
            Err(_) => (u64::MAX, 0),
        };
        h.update(format!("{}|{len}|{mtime}\n", p.display()).as_bytes());
    }
    hex(&h.finalize())
}

pub(crate) fn record_path(out: &Path, tile: &str) -> PathBuf {
    out.join("tiles").join(format!("{tile}.record.json"))
}

pub(crate) fn geojson_path(out: &Path, tile: &str) -> PathBuf {
    out.join("tiles").join(format!("{tile}.geojson"))
}

pub(crate) fn write_record(out: &Path, r: &TileRecord) -> Result<()> {
    let text = serde_json::to_string_pretty(r).map_err(|e| Error::Json {
        path: record_path(out, &r.tile),
        msg: e.to_string(),
    })?;
    write_atomic(&record_path(out, &r.tile), text.as_bytes())
}

impl TileRecord {
    /// The reference grid this record's detections are on.
    pub fn grid(&self) -> Option<crate::domain::grid::Grid> {
        self.grid
            .clone()
            .map(|(wkt, gt, width, height)| crate::domain::grid::Grid {
                width,
                height,
                gt,
                wkt,
            })
    }
}
