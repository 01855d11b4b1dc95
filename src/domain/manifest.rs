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
    /// A named preset: `sentinel2-l2a`, `sentinel2-l1c` (top of atmosphere),
    /// `landsat-c2l2` or `gf-4band`.
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
            "sentinel2-l2a" | "sentinel2-l1c" => (b5, 1e-4, 0.0),
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

    /// What its reflectance is: top of atmosphere for `sentinel2-l1c`,
    /// surface reflectance for every other preset and custom sensors.
    pub fn product(&self) -> crate::kernels::radiometry::Product {
        if self.name == "sentinel2-l1c" {
            crate::kernels::radiometry::Product::TopOfAtmosphere
        } else {
            crate::kernels::radiometry::Product::Surface
        }
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
                    "unknown sensor preset {s:?} (known: sentinel2-l2a, sentinel2-l1c, landsat-c2l2, gf-4band)"
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateImage {
    /// One multi-band raster, bands numbered by the sensor (resolved against
    /// the manifest folder once loaded; any GDAL path, `/vsizip/…` or a
    /// subdataset such as `SENTINEL2_L2A:…`, is passed to GDAL as is).
    /// Empty when `bands` is given.
    #[serde(default, skip_serializing_if = "path_is_empty")]
    pub image: PathBuf,
    /// Or one file per band, as Sentinel-2 and Landsat ship (band 1 of each;
    /// files at another resolution or grid are resampled onto the blue
    /// band's grid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bands: Option<BandFiles>,
    /// Or a local STAC Item (JSON) whose assets are the bands, by common
    /// band name (`eo:bands` `common_name`, or asset keys `blue`, `green`,
    /// `red`, `nir`, `swir16`), its `scl` or `qa_pixel` asset the mask and
    /// `raster:bands` scale/offset the radiometry; filled in when the
    /// manifest is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stac: Option<PathBuf>,
    /// Acquisition date, YYYY-MM-DD (with `stac`, from the item when left out).
    #[serde(default)]
    pub date: String,
    /// Optional mask of unusable pixels (cloud, shadow, defective), read as
    /// `mask_kind` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<PathBuf>,
    /// How to read `mask`: `binary` (default: non-zero = unusable), `scl`
    /// (Sentinel-2 scene classification), `qa_pixel` (Landsat C2 bits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_kind: Option<MaskKind>,
    /// reflectance = DN × scale + offset for this date (default: the raster's
    /// own scale metadata, else the sensor's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// See `scale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<f64>,
    /// Sentinel-2 processing baseline of this date's product, e.g. `"04.00"`:
    /// from 04.00 on (products from 25 January 2022) L2A reflectance is
    /// (DN − 1000) / 10000, so the offset is −0.1; before it, 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
}

fn path_is_empty(p: &Path) -> bool {
    p.as_os_str().is_empty()
}

/// One file per band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandFiles {
    /// Blue (S2 B02, Landsat 8/9 SR_B2).
    pub blue: PathBuf,
    /// Green (B03, SR_B3).
    pub green: PathBuf,
    /// Red (B04, SR_B4).
    pub red: PathBuf,
    /// Near infrared (B08, SR_B5).
    pub nir: PathBuf,
    /// Shortwave infrared ~1.6 µm (B11 at 20 m, SR_B6); required when the
    /// sensor has SWIR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swir1: Option<PathBuf>,
}

impl BandFiles {
    /// The files in riverwatch's band order.
    pub fn order(&self) -> Vec<&Path> {
        let mut v = vec![
            self.blue.as_path(),
            self.green.as_path(),
            self.red.as_path(),
            self.nir.as_path(),
        ];
        v.extend(self.swir1.as_deref());
        v
    }
}

/// How a mask file marks unusable pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskKind {
    /// Non-zero = unusable.
    #[default]
    Binary,
    /// Sentinel-2 L2A scene classification: unusable are 0 no data,
    /// 1 saturated or defective, 3 cloud shadow, 8 cloud (medium
    /// probability), 9 cloud (high probability), 10 thin cirrus and 11 snow
    /// or ice (snow comes and goes with the season; it is not an
    /// encroachment); usable are 2 dark area, 4 vegetation, 5 bare soil,
    /// 6 water and 7 unclassified.
    Scl,
    /// Landsat Collection 2 QA_PIXEL: unusable where bit 0 fill, 1 dilated
    /// cloud, 2 cirrus, 3 cloud, 4 cloud shadow or 5 snow is set.
    QaPixel,
}

impl MaskKind {
    /// Whether a mask value marks the pixel unusable.
    pub fn unusable(self, v: f64) -> bool {
        match self {
            MaskKind::Binary => v != 0.0,
            MaskKind::Scl => matches!(v as i64, 0 | 1 | 3 | 8 | 9 | 10 | 11),
            MaskKind::QaPixel => (v as i64) & 0b11_1111 != 0,
        }
    }
}

impl DateImage {
    /// Every file this date reads (image or band files, and the mask).
    pub fn files(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = match &self.bands {
            Some(b) => b.order(),
            None => vec![self.image.as_path()],
        };
        v.extend(self.mask.as_deref());
        v
    }

    /// The file that names this date in messages (the image, or the blue
    /// band's file).
    pub fn label(&self) -> &Path {
        self.bands
            .as_ref()
            .map_or(self.image.as_path(), |b| b.blue.as_path())
    }

    /// Scale and offset set for this date (by `scale`/`offset`, or by
    /// `baseline` for the offset), each `None` when not set here.
    ///
    /// # Errors
    /// A baseline that is not `NN.NN`, or both `baseline` and `offset`.
    pub fn radiometry(
        &self,
        sensor_scale: f64,
    ) -> std::result::Result<(Option<f64>, Option<f64>), String> {
        let offset = match (&self.baseline, self.offset) {
            (Some(_), Some(_)) => {
                return Err("give \"baseline\" or \"offset\", not both".into());
            }
            (Some(b), None) => {
                let v: f64 = b
                    .parse()
                    .ok()
                    .filter(|v: &f64| (0.0..100.0).contains(v) && b.len() == 5)
                    .ok_or_else(|| {
                        format!("baseline {b:?} is not a processing baseline like \"04.00\"")
                    })?;
                let scale = self.scale.unwrap_or(sensor_scale);
                Some(if v >= 4.0 { -1000.0 * scale } else { 0.0 })
            }
            (None, o) => o,
        };
        Ok((self.scale, offset))
    }
}

/// The common band names riverwatch reads from a STAC Item, in its band
/// order, with the asset keys that name them when `eo:bands` does not.
const STAC_BANDS: [(&str, &[&str]); 5] = [
    ("blue", &["blue", "B02", "SR_B2"]),
    ("green", &["green", "B03", "SR_B3"]),
    ("red", &["red", "B04", "SR_B4"]),
    ("nir", &["nir", "nir08", "B08", "SR_B5"]),
    ("swir16", &["swir16", "B11", "SR_B6"]),
];

impl DateImage {
    /// Fills this date from a STAC Item (`item`: its JSON; `base`: its
    /// folder, against which relative asset hrefs resolve; `swir`: whether
    /// the sensor uses SWIR). Values the manifest set stay.
    ///
    /// # Errors
    /// A missing band asset, an item without a date, naming what is missing.
    pub fn apply_stac(
        &mut self,
        item: &Value,
        base: &Path,
        swir: bool,
    ) -> std::result::Result<(), String> {
        let assets = item
            .get("assets")
            .and_then(Value::as_object)
            .ok_or("not a STAC Item: no \"assets\"")?;
        let href = |a: &Value| -> Option<PathBuf> {
            let h = a.get("href")?.as_str()?;
            Some(if h.starts_with("http://") || h.starts_with("https://") {
                PathBuf::from(format!("/vsicurl/{h}"))
            } else {
                resolve(base, Path::new(h.strip_prefix("file://").unwrap_or(h)))
            })
        };
        let find = |common: &str, keys: &[&str]| -> Option<(PathBuf, &Value)> {
            let by_name = assets.iter().find(|(_, a)| {
                a.get("eo:bands")
                    .and_then(Value::as_array)
                    .is_some_and(|b| {
                        b.len() == 1
                            && b[0].get("common_name").and_then(Value::as_str) == Some(common)
                    })
            });
            let (_, a) = by_name.or_else(|| keys.iter().find_map(|k| assets.get_key_value(*k)))?;
            Some((href(a)?, a))
        };
        let mut files = Vec::new();
        let mut first = None;
        for (common, keys) in STAC_BANDS.iter().take(if swir { 5 } else { 4 }) {
            let (p, a) = find(common, keys).ok_or_else(|| {
                format!("the STAC Item has no asset for the {common} band (by eo:bands common_name or the keys {keys:?})")
            })?;
            first.get_or_insert(a);
            files.push(p);
        }
        let mut it = files.into_iter();
        let mut next = || it.next().unwrap_or_default();
        self.bands = Some(BandFiles {
            blue: next(),
            green: next(),
            red: next(),
            nir: next(),
            swir1: swir.then(&mut next),
        });
        if self.mask.is_none() {
            for (key, kind) in [
                ("scl", MaskKind::Scl),
                ("SCL", MaskKind::Scl),
                ("qa_pixel", MaskKind::QaPixel),
            ] {
                if let Some(p) = assets.get(key).and_then(href) {
                    self.mask = Some(p);
                    self.mask_kind = Some(kind);
                    break;
                }
            }
        }
        if let Some(rb) = first
            .and_then(|a| a.get("raster:bands"))
            .and_then(|r| r.get(0))
        {
            if self.scale.is_none() && self.baseline.is_none() {
                self.scale = rb.get("scale").and_then(Value::as_f64);
            }
            if self.offset.is_none() && self.baseline.is_none() {
                self.offset = rb.get("offset").and_then(Value::as_f64);
            }
        }
        if self.date.is_empty() {
            let dt = item
                .get("properties")
                .and_then(|p| p.get("datetime"))
                .and_then(Value::as_str)
                .ok_or("the STAC Item has no properties.datetime; give \"date\" in the manifest")?;
            self.date = dt.get(..10).unwrap_or(dt).to_string();
        }
        Ok(())
    }
}

/// Resolves a manifest path against the manifest's folder; GDAL special
/// paths (`/vsi…/`, `DRIVER:…` subdatasets) and absolute paths are kept,
/// except that a relative path inside `/vsizip/` or `/vsitar/` is resolved.
pub fn resolve(base: &Path, p: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    for pre in ["/vsizip/", "/vsitar/", "/vsigzip/"] {
        if let Some(rest) = s.strip_prefix(pre) {
            if !rest.starts_with('/') {
                return PathBuf::from(format!("{pre}{}", base.join(rest).display()));
            }
            return p.to_path_buf();
        }
    }
    if is_virtual_path(p) || p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// True for paths only GDAL understands: `/vsi…/` virtual file systems and
/// `DRIVER:…` subdataset names (such as `SENTINEL2_L2A:…`).
pub fn is_virtual_path(p: &Path) -> bool {
    let s = p.to_string_lossy();
    s.starts_with("/vsi")
        || s.split_once(':').is_some_and(|(d, _)| {
            d.len() >= 2
                && d.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
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
            for d in [&t.before, &t.after] {
                if d.stac.is_some() && d.date.is_empty() {
                    continue; // from the STAC Item, checked once it is read
                }
                if let Some(p) = date_problem(&d.date) {
                    problems.push(format!("{f}: tile {:?}: {p}", t.id));
                }
            }
            let dated = !t.before.date.is_empty() && !t.after.date.is_empty();
            if dated && t.before.date >= t.after.date {
                problems.push(format!(
                    "{f}: tile {:?}: before date {} is not earlier than after date {}",
                    t.id, t.before.date, t.after.date
                ));
            }
            for (which, d) in [("before", &mut t.before), ("after", &mut t.after)] {
                let mut say =
                    |m: String| problems.push(format!("{f}: tile {:?} {which}: {m}", t.id));
                let given = usize::from(!d.image.as_os_str().is_empty())
                    + usize::from(d.bands.is_some())
                    + usize::from(d.stac.is_some());
                if given != 1 {
                    say("give exactly one of \"image\" (one multi-band file), \"bands\" (one file per band) or \"stac\" (a STAC Item)".into());
                }
                if let (Some(b), Some(s)) = (&d.bands, &sensor) {
                    if s.has_swir() != b.swir1.is_some() {
                        say(format!(
                            "the sensor {} {} SWIR, so \"bands\" {} \"swir1\"",
                            s.name,
                            if s.has_swir() { "has" } else { "has no" },
                            if s.has_swir() {
                                "needs"
                            } else {
                                "must not have"
                            }
                        ));
                    }
                }
                if d.mask_kind.is_some() && d.mask.is_none() {
                    say("\"mask_kind\" without a \"mask\"".into());
                }
                if let Some(s) = &sensor {
                    if d.baseline.is_some() && !s.name.starts_with("sentinel2") {
                        say(format!("\"baseline\" is a Sentinel-2 setting; the sensor is {}: use \"offset\"", s.name));
                    }
                    if let Err(m) = d.radiometry(s.scale) {
                        say(m);
                    }
                }
                if d.scale.is_some_and(|v| !v.is_finite() || v == 0.0)
                    || d.offset.is_some_and(|v| !v.is_finite())
                {
                    say("scale must be finite and non-zero, offset finite".into());
                }
                if !d.image.as_os_str().is_empty() {
                    d.image = resolve(&base, &d.image);
                }
                if let Some(b) = &mut d.bands {
                    for p in [&mut b.blue, &mut b.green, &mut b.red, &mut b.nir] {
                        *p = resolve(&base, p);
                    }
                    b.swir1 = b.swir1.as_ref().map(|p| resolve(&base, p));
                }
                d.mask = d.mask.as_ref().map(|m| resolve(&base, m));
                d.stac = d.stac.as_ref().map(|m| resolve(&base, m));
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
