//! The manifest: which tile pairs to compare, with which sensor layout, against
//! which rivers and chiefs. Paths are relative to the manifest's folder.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// 1-based band numbers of the bands riverwatch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandMap {
    /// Blue band.
    pub blue: usize,
    /// Green band.
    pub green: usize,
    /// Red band.
    pub red: usize,
    /// Near infrared band.
    pub nir: usize,
    /// Shortwave infrared (~1.6 µm), absent on GF sensors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swir1: Option<usize>,
}

impl BandMap {
    /// Band numbers in riverwatch's internal order: blue, green, red, nir and (optionally) swir1.
    pub fn order(&self) -> Vec<usize> {
        let mut v = vec![self.blue, self.green, self.red, self.nir];
        v.extend(self.swir1);
        v
    }
}

/// How to turn stored digital numbers into reflectance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sensor {
    /// Preset name, or `custom`.
    #[serde(default = "custom_name")]
    pub name: String,
    /// Band numbers.
    pub bands: BandMap,
    /// reflectance = DN × scale + offset.
    pub scale: f64,
    /// See `scale`.
    #[serde(default)]
    pub offset: f64,
    /// DN marking missing data.
    #[serde(default)]
    pub nodata: Option<f64>,
}

fn custom_name() -> String {
    "custom".into()
}

impl Sensor {
    /// A named preset: `sentinel2-l2a`, `landsat-c2l2` or `gf-4band`.
    pub fn preset(name: &str) -> Option<Sensor> {
        let b4 = BandMap {
            blue: 1,
            green: 2,
            red: 3,
            nir: 4,
            swir1: None,
        };
        let b5 = BandMap {
            swir1: Some(5),
            ..b4
        };
        let (bands, scale, offset) = match name {
            "sentinel2-l2a" => (b5, 1e-4, 0.0),
            "landsat-c2l2" => (b5, 2.75e-5, -0.2),
            "gf-4band" => (b4, 1e-4, 0.0),
            _ => return None,
        };
        Some(Sensor {
            name: name.into(),
            bands,
            scale,
            offset,
            nodata: Some(0.0),
        })
    }

    /// True when a SWIR band is available.
    pub fn has_swir(&self) -> bool {
        self.bands.swir1.is_some()
    }

    /// Parses the manifest's `sensor` value: a preset name or an object.
    ///
    /// # Errors
    /// A message naming the unknown preset or the broken field.
    pub fn from_value(v: &Value) -> std::result::Result<Sensor, String> {
        match v {
            Value::String(s) => Sensor::preset(s).ok_or_else(|| {
                format!(
                    "unknown sensor preset {s:?} (known: sentinel2-l2a, landsat-c2l2, gf-4band)"
                )
            }),
            Value::Object(_) => {
                let s: Sensor =
                    serde_json::from_value(v.clone()).map_err(|e| format!("sensor: {e}"))?;
                let all = s.bands.order();
                if all.contains(&0) {
                    return Err("sensor: band numbers are 1-based".into());
                }
                if all.iter().collect::<BTreeSet<_>>().len() != all.len() {
                    return Err("sensor: two roles use the same band".into());
                }
                if !s.scale.is_finite() || s.scale == 0.0 || !s.offset.is_finite() {
                    return Err("sensor: scale must be finite and non-zero, offset finite".into());
                }
                Ok(s)
            }
            _ => Err("sensor must be a preset name or an object".into()),
        }
    }
}

/// One date of a tile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateImage {
    /// Raster path (resolved against the manifest folder once loaded).
    pub image: PathBuf,
    /// Acquisition date, YYYY-MM-DD.
    pub date: String,
    /// Optional cloud/shadow mask (non-zero = unusable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<PathBuf>,
}

/// A tile pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tile {
    /// Tile id: letters, digits, `.`, `_`, `-`.
    pub id: String,
    /// Earlier (reference) date.
    pub before: DateImage,
    /// Later date.
    pub after: DateImage,
}

/// A loaded manifest with paths resolved.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file.
    pub path: PathBuf,
    /// Sensor layout.
    pub sensor: Sensor,
    /// River segments file.
    pub rivers: PathBuf,
    /// Chief registry file.
    pub chiefs: PathBuf,
    /// Tiles, in file order.
    pub tiles: Vec<Tile>,
}

/// Checks a tile id.
pub fn tile_id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("is empty")
    } else if id == "." || id == ".." {
        Some("is not a usable file name")
    } else if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        Some("may only contain letters, digits, '.', '_' and '-'")
    } else {
        None
    }
}

/// Checks a YYYY-MM-DD date: the shape, and that the day exists in the
/// calendar (`2025-02-31` does not).
pub fn date_problem(d: &str) -> Option<String> {
    let shape = d.len() == 10
        && d.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape {
        return Some(format!("date {d:?} is not YYYY-MM-DD"));
    }
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .err()
        .map(|_| format!("date {d:?} does not exist in the calendar"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    version: Value,
    sensor: Value,
    rivers: PathBuf,
    chiefs: PathBuf,
    tiles: Vec<Value>,
}

impl Manifest {
    /// Parses a manifest's JSON text and checks its own rules (not the files
    /// it names: `validate` does that). `path` is where it was read from;
    /// relative paths inside are resolved against its folder.
    ///
    /// # Errors
    /// [`Error::Json`] when malformed, [`Error::Many`] listing every bad tile.
    pub fn from_json(path: &Path, text: &str) -> Result<Manifest> {
        let raw: Raw = super::parse_json(path, text)?;
        let f = path.display();
        let mut problems = Vec::new();
        if raw.version.as_u64() != Some(1) {
            problems.push(format!(
                "{f}: version {} is not supported (expected 1)",
                raw.version
            ));
        }
        let sensor = Sensor::from_value(&raw.sensor)
            .map_err(|m| problems.push(format!("{f}: {m}")))
            .ok();
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut seen = BTreeSet::new();
        let mut tiles = Vec::new();
        if raw.tiles.is_empty() {
            problems.push(format!("{f}: no tiles"));
        }
        for (i, t) in raw.tiles.into_iter().enumerate() {
            let hint = t
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            let mut t: Tile = match serde_json::from_value(t) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("{f}: tile #{i} ({hint}): {e}"));
                    continue;
                }
            };
            if let Some(p) = tile_id_problem(&t.id) {
                problems.push(format!("{f}: tile #{i}: id {:?} {p}", t.id));
            }
            if !seen.insert(t.id.clone()) {
                problems.push(format!("{f}: tile {:?} appears twice", t.id));
            }
            for d in [&t.before.date, &t.after.date] {
                if let Some(p) = date_problem(d) {
                    problems.push(format!("{f}: tile {:?}: {p}", t.id));
                }
            }
            if t.before.date >= t.after.date {
                problems.push(format!(
                    "{f}: tile {:?}: before date {} is not earlier than after date {}",
                    t.id, t.before.date, t.after.date
                ));
            }
            for d in [&mut t.before, &mut t.after] {
                d.image = base.join(&d.image);
                d.mask = d.mask.as_ref().map(|m| base.join(m));
            }
            tiles.push(t);
        }
        match sensor {
            Some(sensor) if problems.is_empty() => Ok(Manifest {
                path: path.to_path_buf(),
                sensor,
                rivers: base.join(raw.rivers),
                chiefs: base.join(raw.chiefs),
                tiles,
            }),
            _ => Err(Error::Many(problems)),
        }
    }

    /// The tiles whose ids are in `ids` (all when empty).
    ///
    /// # Errors
    /// [`Error::Invalid`] naming an id the manifest does not have.
    pub fn select(&self, ids: &[String]) -> Result<Vec<Tile>> {
        if ids.is_empty() {
            return Ok(self.tiles.clone());
        }
        ids.iter()
            .map(|id| {
                self.tiles
                    .iter()
                    .find(|t| &t.id == id)
                    .cloned()
                    .ok_or_else(|| Error::invalid(&self.path, format!("no tile with id {id:?}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn presets_and_ids() {
        assert!(Sensor::preset("gf-4band").is_some_and(|s| !s.has_swir()));
        assert!(Sensor::preset("sentinel2-l2a").is_some_and(|s| s.has_swir()));
        assert!(tile_id_problem("a/b").is_some());
        assert!(tile_id_problem("songhua-0003").is_none());
        assert!(date_problem("2025-13-01").is_some());
        assert!(date_problem("2025-06-12").is_none());
        assert!(date_problem("2025-02-31").is_some());
        assert!(date_problem("2024-02-29").is_none());
        assert!(date_problem("2025-6-12").is_some());
    }
}
