//! Deterministic bi-temporal scenes of a river corridor with ground truth.
//!
//! The scene lies on the real Songhua River near Harbin (Natural Earth 1:10m
//! centreline, `data/songhua_ne10m.geojson`), in EPSG:32652 at 10 m. Tiles form
//! a two-row strip that follows the river, so objects straddle tile seams.
//!
//! What is modelled, and the numbers used (reflectance, bands blue, green, red,
//! NIR, SWIR1 ≈ Sentinel-2 B2, B3, B4, B8, B11):
//!
//! * Materials, from the USGS spectral library splib07 and ECOSTRESS library
//!   convolved to Sentinel-2 bands, rounded (see [`SPECTRA`]): turbid river
//!   water, clear water, wet and dry sand, loam soil, moist black soil
//!   (chernozem, plough land), grass, wetland vegetation, crops at peak and
//!   senescent, trees, red-tile and steel roofs, concrete, asphalt, greenhouse
//!   plastic, waste, cloud. Each object gets a ±8 % spectral jitter and every
//!   pixel a ±5 % texture from value noise.
//! * True changes, inside and outside the management zone: occupation (water →
//!   fill soil, crops or grass on reclaimed land at the shoreline), sand mining
//!   (bars and banks → pits of turbid water, wet sand and sand piles), dumping
//!   (vegetation or bank → bright rough waste mounds), construction (anything →
//!   rectilinear roofs, sheds and hard standing). Areas are log-uniform from
//!   400 m² to 4 ha, with 15 % tiny ones of 100–400 m² below the mapping unit.
//! * Nuisances: crop stages re-drawn per date (bare, emerging, peak,
//!   senescent, ploughed), grass and wetland greenness ±25 %, natural water
//!   level change of 1–2.5 px at every shoreline, per-band gain 0.90–1.10 and
//!   additive haze up to 0.03 falling off as λ⁻², clouds with shadows on some
//!   tiles (mask file on some, not on others), sub-pixel misregistration of
//!   the later date up to 1.5 px (bilinear resampling), sensor noise
//!   σ = 0.003 + 2 % of the signal, SWIR at 20 m (2 × 2 block means) for
//!   Sentinel-2, a nodata swath edge on one tile, and structures on both dates
//!   (villages, roads, a bridge, greenhouses).

use crate::domain::chiefs::{Chief, Level, Registry};
use crate::domain::class::ChangeClass;
use crate::domain::grid::Grid;
use crate::domain::rivers::{Projected, Segment};
use crate::error::{Error, Result};
use crate::io::crs::{epsg_wkt, project, Transformer};
use crate::io::raster::write_geotiff;
use crate::io::vector::{collection_bytes, poly_feature, PolyFeature};
use crate::kernels::label::label;
use crate::kernels::polygons::trace;
use crate::kernels::zones;
use crate::pipeline::link::SegmentIndex;
use geo::{Coord, LineString, MultiLineString, MultiPolygon};
use ndarray::{s, Array2, Array3};
use rayon::prelude::*;
use serde_json::{json, Value};
use std::path::Path;

/// The embedded Natural Earth centreline of the Songhua near Harbin.
const SONGHUA: &str = include_str!("../../data/songhua_ne10m.geojson");

/// Smallest spectral change (Euclidean distance of noiseless reflectance over
/// the five bands) that counts as a changed pixel in the truth.
pub const TRUTH_MIN_CHANGE: f32 = 0.05;

/// Pixel size, metres.
pub const PIXEL_M: f64 = 10.0;
const EPSG: u32 = 32652;
/// Dates written to the manifest.
pub const BEFORE_DATE: &str = "2025-06-12";
/// Dates written to the manifest.
pub const AFTER_DATE: &str = "2026-06-17";
/// The third date (`SynthOptions::third_date`): a night five weeks later.
pub const THIRD_DATE: &str = "2026-07-22";
/// Share of the first night's objects removed by the third date.
pub const RECTIFIED_SHARE: f32 = 0.4;

/// Synth settings.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Random seed; the same seed gives byte-identical files.
    pub seed: u64,
    /// Number of tiles.
    pub tiles: usize,
    /// Tile side in pixels.
    pub size: usize,
    /// `sentinel2-l2a` or `gf-4band`.
    pub sensor: String,
    /// Also render a third date (2026-07-22): some objects removed (rectified), some
    /// left (fake rectification), some new; writes `manifest-night2.json`,
    /// `truth-night2.geojson` and `rectification.geojson`. The first two
    /// dates are the same with or without it.
    pub third_date: bool,
    /// Harder conditions, for robustness measurements (not the samples):
    /// the later date through a different sensor (per-band gains drawn in
    /// 0.5–1.6), haze up to 0.075 and ±25 % illumination on it, shifts up to
    /// 2 px, clouds on every tile and no cloud mask files. Off, every file
    /// is byte-identical to a generator without the option.
    pub hard: bool,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            seed: 7,
            tiles: 4,
            size: 512,
            sensor: "sentinel2-l2a".into(),
            third_date: false,
            hard: false,
        }
    }
}

// ---------------------------------------------------------------- randomness

#[inline]
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline]
fn hash(seed: u64, x: i64, y: i64, k: u64) -> u64 {
    mix(seed ^ mix((x as u64).wrapping_mul(0x1000_0000_01B3) ^ mix((y as u64) ^ mix(k))))
}

#[inline]
fn unit(h: u64) -> f32 {
    (h >> 40) as f32 / (1u64 << 24) as f32
}

/// Smooth value noise in [0, 1] with lattice spacing `scale` pixels.
fn vnoise(seed: u64, x: f64, y: f64, scale: f64, k: u64) -> f32 {
    let (fx, fy) = (x / scale, y / scale);
    let (x0, y0) = (fx.floor(), fy.floor());
    let (tx, ty) = ((fx - x0) as f32, (fy - y0) as f32);
    let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let (xi, yi) = (x0 as i64, y0 as i64);
    let v = |dx: i64, dy: i64| unit(hash(seed, xi + dx, yi + dy, k));
    let a = v(0, 0) + (v(1, 0) - v(0, 0)) * sx;
    let b = v(0, 1) + (v(1, 1) - v(0, 1)) * sx;
    a + (b - a) * sy
}

fn fbm(seed: u64, x: f64, y: f64, scale: f64, k: u64) -> f32 {
    (vnoise(seed, x, y, scale, k) * 0.55
        + vnoise(seed, x, y, scale / 2.0, k + 1) * 0.3
        + vnoise(seed, x, y, scale / 4.0, k + 2) * 0.15)
        .clamp(0.0, 1.0)
}

fn gauss(h: u64) -> f32 {
    let u1 = unit(h).max(1e-7);
    let u2 = unit(mix(h));
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

/// A small deterministic generator for placements.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.f()
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[(self.next() % v.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------- spectra

type Spec = [f32; 5];

/// Material reflectance (blue, green, red, NIR, SWIR1).
pub const SPECTRA: &[(&str, Spec)] = &[
    ("turbid_water", [0.070, 0.095, 0.085, 0.040, 0.015]),
    ("clear_water", [0.045, 0.060, 0.035, 0.015, 0.008]),
    ("wet_sand", [0.090, 0.115, 0.135, 0.165, 0.150]),
    ("dry_sand", [0.170, 0.215, 0.260, 0.300, 0.360]),
    ("soil", [0.080, 0.110, 0.150, 0.210, 0.290]),
    ("black_soil", [0.045, 0.060, 0.075, 0.110, 0.150]),
    ("grass", [0.040, 0.080, 0.050, 0.330, 0.200]),
    ("wetland", [0.035, 0.070, 0.045, 0.280, 0.150]),
    ("crop_peak", [0.030, 0.075, 0.035, 0.450, 0.220]),
    ("crop_senescent", [0.060, 0.090, 0.110, 0.250, 0.300]),
    ("trees", [0.025, 0.050, 0.030, 0.300, 0.140]),
    ("roof_tile", [0.080, 0.090, 0.160, 0.250, 0.330]),
    ("roof_steel", [0.180, 0.200, 0.200, 0.220, 0.200]),
    ("concrete", [0.200, 0.220, 0.240, 0.270, 0.300]),
    ("asphalt", [0.060, 0.070, 0.080, 0.100, 0.120]),
    ("greenhouse", [0.280, 0.300, 0.310, 0.350, 0.300]),
    ("waste", [0.160, 0.170, 0.180, 0.210, 0.250]),
    ("cloud", [0.420, 0.430, 0.450, 0.480, 0.360]),
];

#[derive(Clone, Copy)]
#[repr(usize)]
enum M {
    Turbid = 0,
    Clear,
    WetSand,
    DrySand,
    Soil,
    BlackSoil,
    Grass,
    Wetland,
    CropPeak,
    CropSen,
    Trees,
    RoofTile,
    RoofSteel,
    Concrete,
    Asphalt,
    Greenhouse,
    Waste,
    Cloud,
}

#[inline]
fn sp(m: M) -> Spec {
    SPECTRA[m as usize].1
}

#[inline]
fn blend(a: Spec, b: Spec, t: f32) -> Spec {
    let mut o = a;
    for i in 0..5 {
        o[i] = a[i] * (1.0 - t) + b[i] * t;
    }
    o
}

#[inline]
fn scale_spec(a: Spec, f: f32) -> Spec {
    a.map(|v| v * f)
}

// ---------------------------------------------------------------- scene

#[derive(Clone)]
struct Obj {
    class: usize,
    poly: Vec<(f64, f64)>,
    bb: [f64; 4],
    variant: u64,
    fate: Fate,
}

/// What happens to an object by the third date.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Still there (reported rectified or not, it was not).
    Kept,
    /// Removed: the site is back to its earlier state.
    Rectified,
    /// Built after the second date.
    New,
}

impl Fate {
    fn as_str(self) -> &'static str {
        match self {
            Fate::Kept => "kept",
            Fate::Rectified => "rectified",
            Fate::New => "new",
        }
    }
}

impl Obj {
    /// Present on date `t` (0 before, 1 after, 2 third).
    fn present(&self, t: usize) -> bool {
        match t {
            1 => self.fate != Fate::New,
            2 => self.fate != Fate::Rectified,
            _ => false,
        }
    }

    fn contains(&self, x: f64, y: f64) -> bool {
        if x < self.bb[0] || x > self.bb[1] || y < self.bb[2] || y > self.bb[3] {
            return false;
        }
        let mut inside = false;
        let n = self.poly.len();
        let mut j = n - 1;
        for i in 0..n {
            let (xi, yi) = self.poly[i];
            let (xj, yj) = self.poly[j];
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
        inside
    }
}

struct Piece {
    a: (f64, f64),
    b: (f64, f64),
    main: bool,
}

struct Scene {
    seed: u64,
    pieces: Vec<Piece>,
    objs: Vec<Obj>,
    villages: Vec<(f64, f64, f64)>,
    roads: Vec<((f64, f64), (f64, f64))>,
    bridges: Vec<((f64, f64), (f64, f64))>,
    level_px: f64,
}

fn seg_dist(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    zones::dist2_point_segment(
        Coord { x: p.0, y: p.1 },
        Coord { x: a.0, y: a.1 },
        Coord { x: b.0, y: b.1 },
    )
    .sqrt()
}

impl Scene {
    fn dist(&self, x: f64, y: f64, main: bool) -> f64 {
        self.pieces
            .iter()
            .filter(|p| p.main == main)
            .map(|p| seg_dist((x, y), p.a, p.b))
            .fold(f64::INFINITY, f64::min)
    }

    /// Half-width of the main river in pixels at (x, y): 110–190 m.
    fn half_width(&self, x: f64, y: f64) -> f64 {
        11.0 + 8.0 * vnoise(self.seed, x, y, 180.0, 11) as f64
    }

    fn is_bar(&self, x: f64, y: f64, dm: f64, w: f64) -> bool {
        dm < w * 0.55 && vnoise(self.seed, x, y, 40.0, 12) > 0.72
    }

    fn water_before(&self, x: f64, y: f64, dm: f64, dt: f64) -> bool {
        let w = self.half_width(x, y);
        (dm < w && !self.is_bar(x, y, dm, w)) || dt < 3.0
    }

    /// Reflectance of world pixel (x, y) on date `t` (0 before, 1 after),
    /// before atmosphere, clouds and sensor effects.
    fn render(&self, xi: i64, yi: i64, t: usize, dm: f64, dt: f64) -> Spec {
        let (x, y) = (xi as f64 + 0.5, yi as f64 + 0.5);
        let seed = self.seed;
        let tex = 1.0
            + 0.1 * (vnoise(seed, x, y, 3.0, 20 + t as u64) - 0.5)
            + 0.04 * (unit(hash(seed, xi, yi, 21 + t as u64)) - 0.5);
        let w = self.half_width(x, y);
        let level = if t == 1 { self.level_px } else { 0.0 };
        let mut out = self.base(x, y, xi, yi, t, dm, dt, w, level);
        // Structures present on both dates.
        for (a, b) in &self.bridges {
            if seg_dist((x, y), *a, *b) < 1.0 {
                out = sp(M::Concrete);
            }
        }
        if t > 0 {
            for o in self.objs.iter().filter(|o| o.present(t)) {
                if o.contains(x, y) {
                    if let Some(s) = self.changed(o, x, y, xi, yi, dm, dt) {
                        out = s;
                    }
                }
            }
        }
        scale_spec(out, tex)
    }

    #[allow(clippy::too_many_arguments)]
    fn base(
        &self,
        x: f64,
        y: f64,
        xi: i64,
        yi: i64,
        t: usize,
        dm: f64,
        dt: f64,
        w: f64,
        level: f64,
    ) -> Spec {
        let seed = self.seed;
        let tu = t as u64;
        let green = 1.0 + 0.25 * (2.0 * vnoise(seed, x, y, 300.0, 30 + tu) - 1.0);
        // Main river.
        if dm < w + level || dt < 3.0 + level * 0.3 {
            if self.is_bar(x, y, dm, w) && dm < w {
                let dry = vnoise(seed, x, y, 12.0, 13) > 0.6;
                return if dry { sp(M::DrySand) } else { sp(M::WetSand) };
            }
            if dm >= w && dt >= 3.0 {
                // Shore flooded by a natural rise: shallow water over the bank.
                return blend(sp(M::Turbid), sp(M::Wetland), 0.3);
            }
            let turb = vnoise(seed, x, y, 60.0, 14);
            return blend(sp(M::Clear), sp(M::Turbid), 0.5 + 0.5 * turb);
        }
        if dm < w || dt < 3.0 {
            // Exposed by a natural fall of the water level.
            return sp(M::WetSand);
        }
        for (a, b) in &self.roads {
            if seg_dist((x, y), *a, *b) < 0.8 {
                return sp(M::Asphalt);
            }
        }
        for &(vx, vy, r) in &self.villages {
            let d = ((x - vx).powi(2) + (y - vy).powi(2)).sqrt();
            if d < r {
                let (cx, cy) = (xi.rem_euclid(6), yi.rem_euclid(5));
                if cx < 4 && cy < 3 {
                    let h = hash(seed, xi.div_euclid(6), yi.div_euclid(5), 40);
                    return if h % 3 == 0 {
                        sp(M::RoofSteel)
                    } else {
                        sp(M::RoofTile)
                    };
                }
                return if cx == 5 || cy == 4 {
                    sp(M::Concrete)
                } else {
                    scale_spec(sp(M::Grass), green)
                };
            }
        }
        // Banks and riparian belt.
        let bank = dm - w;
        if bank < 3.0 + 4.0 * vnoise(seed, x, y, 25.0, 15) as f64 {
            return if vnoise(seed, x, y, 50.0, 16) > 0.55 {
                if bank < 1.5 {
                    sp(M::WetSand)
                } else {
                    sp(M::DrySand)
                }
            } else {
                scale_spec(sp(M::Wetland), green)
            };
        }
        if bank < 14.0 + 10.0 * vnoise(seed, x, y, 60.0, 17) as f64 {
            let n = vnoise(seed, x, y, 20.0, 18);
            return if n > 0.62 {
                sp(M::Trees)
            } else if n > 0.3 {
                scale_spec(sp(M::Wetland), green)
            } else {
                scale_spec(sp(M::Grass), green)
            };
        }
        // Field parcels on a slightly rotated lattice.
        let (u, v) = (x * 0.966 + y * 0.259, -x * 0.259 + y * 0.966);
        let (pu, pv) = ((u / 28.0).floor() as i64, (v / 18.0).floor() as i64);
        let ph = hash(seed, pu, pv, 50);
        let kind = ph % 100;
        let pj = 1.0 + 0.08 * (unit(mix(ph)) - 0.5);
        let s = match kind {
            0..=59 => {
                // Crop: the stage is drawn per date (crop cycles).
                let stage = hash(seed, pu, pv, 51 + tu) % 5;
                match stage {
                    0 => sp(M::BlackSoil),
                    1 => blend(sp(M::BlackSoil), sp(M::CropPeak), 0.35),
                    2 | 3 => sp(M::CropPeak),
                    _ => sp(M::CropSen),
                }
            }
            60..=79 => scale_spec(sp(M::Grass), green),
            80..=91 => sp(M::Trees),
            92..=95 => sp(M::Greenhouse),
            _ => sp(M::Soil),
        };
        scale_spec(s, pj)
    }

    #[allow(clippy::too_many_arguments)]
    fn changed(&self, o: &Obj, x: f64, y: f64, xi: i64, yi: i64, dm: f64, dt: f64) -> Option<Spec> {
        let seed = self.seed;
        let j = 1.0 + 0.16 * (unit(mix(o.variant)) - 0.5);
        let s = match o.class {
            0 => {
                if !self.water_before(x, y, dm, dt) {
                    return None;
                }
                match o.variant % 4 {
                    0 | 1 => sp(M::Soil),
                    2 => blend(sp(M::Soil), sp(M::CropPeak), 0.6),
                    _ => blend(sp(M::Grass), sp(M::Soil), 0.4),
                }
            }
            1 => {
                if self.water_before(x, y, dm, dt) && !self.is_bar(x, y, dm, self.half_width(x, y))
                {
                    return None;
                }
                let n = vnoise(seed, x, y, 4.0, o.variant);
                if n < 0.4 {
                    blend(sp(M::Turbid), sp(M::Clear), 0.3)
                } else if n < 0.82 {
                    sp(M::WetSand)
                } else {
                    sp(M::DrySand)
                }
            }
            2 => {
                let h = hash(seed, xi, yi, o.variant) % 10;
                let base = match h {
                    0..=3 => sp(M::Waste),
                    4..=5 => sp(M::Concrete),
                    6..=7 => sp(M::Soil),
                    8 => sp(M::Greenhouse),
                    _ => sp(M::BlackSoil),
                };
                scale_spec(base, 0.85 + 0.3 * vnoise(seed, x, y, 2.0, o.variant + 1))
            }
            _ => {
                let (cx, cy) = (xi.rem_euclid(8), yi.rem_euclid(7));
                match o.variant % 3 {
                    0 => sp(M::RoofSteel),
                    1 => {
                        if cx < 6 && cy < 5 {
                            sp(M::RoofTile)
                        } else {
                            sp(M::Concrete)
                        }
                    }
                    _ => sp(M::Concrete),
                }
            }
        };
        Some(scale_spec(s, j))
    }
}

fn shape(rng: &mut Rng, class: usize, cx: f64, cy: f64, area_px: f64) -> Vec<(f64, f64)> {
    let rect = class == 3 || (class == 0 && rng.f() < 0.4);
    if rect {
        let aspect = rng.range(1.0, 3.0);
        let (hw, hh) = (
            (area_px * aspect).sqrt() / 2.0,
            (area_px / aspect).sqrt() / 2.0,
        );
        let th = rng.range(0.0, std::f64::consts::PI);
        let (c, s) = (th.cos(), th.sin());
        [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)]
            .iter()
            .map(|&(u, v)| (cx + u * c - v * s, cy + u * s + v * c))
            .collect()
    } else {
        let r = (area_px / std::f64::consts::PI).sqrt();
        let ph: Vec<f64> = (0..3).map(|_| rng.range(0.0, 6.3)).collect();
        let amp = [
            rng.range(0.1, 0.3),
            rng.range(0.05, 0.2),
            rng.range(0.0, 0.12),
        ];
        (0..28)
            .map(|i| {
                let a = i as f64 / 28.0 * std::f64::consts::TAU;
                let k = 1.0
                    + amp[0] * (2.0 * a + ph[0]).sin()
                    + amp[1] * (3.0 * a + ph[1]).sin()
                    + amp[2] * (5.0 * a + ph[2]).sin();
                (cx + r * k * a.cos(), cy + r * k * a.sin())
            })
            .collect()
    }
}

// ---------------------------------------------------------------- layout

struct Layout {
    wkt: String,
    /// World pixel (0, 0) top-left corner in map coordinates.
    x0: f64,
    y0: f64,
    /// Tile origins in world pixels (col, row) and ids.
    tiles: Vec<(String, i64, i64)>,
}

fn load_songhua(wkt: &str) -> Result<LineString<f64>> {
    let fc: geojson::FeatureCollection = SONGHUA
        .parse()
        .map_err(|e: geojson::Error| Error::invalid("data/songhua_ne10m.geojson", e.to_string()))?;
    let g = fc
        .features
        .first()
        .and_then(|f| f.geometry.as_ref())
        .ok_or_else(|| Error::invalid("data/songhua_ne10m.geojson", "no geometry"))?;
    let mut ml =
        crate::io::vector::lines(g).map_err(|m| Error::invalid("data/songhua_ne10m.geojson", m))?;
    Transformer::from_wgs84(wkt)?.apply_geom(&mut ml)?;
    ml.0.into_iter()
        .next()
        .ok_or_else(|| Error::invalid("data/songhua_ne10m.geojson", "no line"))
}

fn y_at(line: &LineString<f64>, x: f64) -> Option<f64> {
    line.0
        .windows(2)
        .find(|w| (w[0].x - x) * (w[1].x - x) <= 0.0 && w[0].x != w[1].x)
        .map(|w| w[0].y + (w[1].y - w[0].y) * (x - w[0].x) / (w[1].x - w[0].x))
}

// ---------------------------------------------------------------- main entry

/// What synth wrote.
#[derive(Debug, Clone)]
pub struct SynthSummary {
    /// Tiles written.
    pub tiles: usize,
    /// Truth features written.
    pub truth: usize,
    /// Segments written.
    pub segments: usize,
}

fn chiefs() -> Vec<Chief> {
    let mut v = vec![Chief {
        id: "hlj".into(),
        level: Level::Province,
        title: "黑龙江省总河长 Heilongjiang provincial river chief".into(),
        region: "黑龙江省".into(),
        parent: None,
    }];
    v.push(Chief {
        id: "hlj-harbin".into(),
        level: Level::City,
        title: "哈尔滨市河长 Harbin city river chief".into(),
        region: "哈尔滨市".into(),
        parent: Some("hlj".into()),
    });
    for (cid, zh, en) in COUNTIES {
        v.push(Chief {
            id: format!("hrb-{cid}"),
            level: Level::County,
            title: format!("{zh}河长 {en} river chief"),
            region: zh.to_string(),
            parent: Some("hlj-harbin".into()),
        });
        for t in 1..=2 {
            let tid = format!("hrb-{cid}-t{t}");
            v.push(Chief {
                id: tid.clone(),
                level: Level::Township,
                title: format!("{zh}第{t}街道河长 {en} township {t} river chief"),
                region: format!("{zh}第{t}街道"),
                parent: Some(format!("hrb-{cid}")),
            });
            for vi in 1..=2 {
                v.push(Chief {
                    id: format!("{tid}-v{vi}"),
                    level: Level::Village,
                    title: format!(
                        "{zh}第{t}街道第{vi}村河长 {en} township {t} village {vi} river chief"
                    ),
                    region: format!("{zh}第{t}街道第{vi}村"),
                    parent: Some(tid.clone()),
                });
            }
        }
    }
    v
}

const COUNTIES: [(&str, &str, &str); 5] = [
    ("daoli", "道里区", "Daoli District"),
    ("songbei", "松北区", "Songbei District"),
    ("daowai", "道外区", "Daowai District"),
    ("hulan", "呼兰区", "Hulan District"),
    ("bin", "宾县", "Bin County"),
];

/// Generates a scene into `out`: manifest, rivers, chiefs, truth, tiles.
///
/// # Errors
/// Unknown sensor, bad sizes, or files that cannot be written.
pub fn synth(out: &Path, o: &SynthOptions) -> Result<SynthSummary> {
    let nb = match o.sensor.as_str() {
        "sentinel2-l2a" => 5,
        "gf-4band" => 4,
        s => {
            return Err(Error::Config(format!(
                "synth supports sensors sentinel2-l2a and gf-4band, not {s:?}"
            )))
        }
    };
    if o.tiles == 0 || o.tiles > 256 || o.size < 64 || o.size > 8192 || o.size % 2 != 0 {
        return Err(Error::Config(
            "synth needs 1–256 tiles of an even size of 64–8192 px".into(),
        ));
    }
    let wkt = epsg_wkt(EPSG)?;
    let river = load_songhua(&wkt)?;
    let mut rng = Rng(mix(o.seed ^ 0x5EED));
    let size = o.size as i64;
    let cols = o.tiles as i64;
    let layout = make_layout(&wkt, &river, size, cols)?;
    let (main_pts, trib) = river_lines(&river, &layout, size * cols, &mut rng);
    let mut pieces: Vec<Piece> = main_pts
        .windows(2)
        .map(|w| Piece {
            a: w[0],
            b: w[1],
            main: true,
        })
        .collect();
    pieces.extend(trib.windows(2).map(|w| Piece {
        a: w[0],
        b: w[1],
        main: false,
    }));

    let (segments, seg_defaults) = make_segments(&main_pts, &trib, &layout, &mut rng);
    // Written first, then read back through the same loader and projection
    // the detector uses, so truth and detection see identical geometry.
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    write_rivers(&out.join("rivers.geojson"), &segments, &wkt, &seg_defaults)?;
    let segments = crate::io::vector::load_rivers(
        &out.join("rivers.geojson"),
        crate::domain::rivers::WidthDefaults::default(),
    )?;
    let projected: Vec<Projected> = project(&segments, &wkt)?;

    let level_px = rng.pick(&[-1.0, 1.0]) * rng.range(1.0, 2.5);
    let mut scene = Scene {
        seed: mix(o.seed),
        pieces,
        objs: Vec::new(),
        villages: Vec::new(),
        roads: Vec::new(),
        bridges: Vec::new(),
        level_px,
    };
    add_structures(
        &mut scene,
        &mut rng,
        &layout,
        &main_pts,
        o.tiles,
        (size, cols),
    );
    add_changes(&mut scene, &mut rng, &layout, o, size);
    if o.third_date {
        add_new_changes(&mut scene, &layout, o, size);
    }

    // Registry and rivers.
    let registry = Registry::from_chiefs(&out.join("chiefs.json"), chiefs())?;
    write_chiefs(&out.join("chiefs.json"), &registry)?;

    let index = SegmentIndex::new(&segments, &projected);
    let mut truth: Vec<(Fate, PolyFeature)> = Vec::new();
    let mut truth2: Vec<(Fate, PolyFeature)> = Vec::new();
    let mut third_tiles = Vec::new();
    let mut manifest_tiles = Vec::new();
    let mut shifts = Vec::new();
    std::fs::create_dir_all(out.join("tiles")).map_err(|e| Error::io(out.join("tiles"), e))?;
    let to_wgs = Transformer::to_wgs84(&wkt)?;
    let world = World {
        o,
        layout: &layout,
        scene: &scene,
        out,
        nb,
        projected: &projected,
        segments: &segments,
        index: &index,
        to_wgs: &to_wgs,
    };
    for (ti, (id, tx, ty)) in layout.tiles.iter().enumerate() {
        let t = synth_tile(&world, ti, id, *tx, *ty)?;
        truth.extend(t.truth);
        manifest_tiles.push(t.manifest);
        shifts.push(t.shift);
        if let Some((m2, t2)) = t.third {
            third_tiles.push(m2);
            truth2.extend(t2);
        }
    }
    let plain =
        |v: &[(Fate, PolyFeature)]| collection_bytes(v.iter().map(|(_, f)| poly_feature(f)));
    crate::io::write_atomic(&out.join("truth.geojson"), &plain(&truth))?;
    write_manifest(&out.join("manifest.json"), &o.sensor, manifest_tiles)?;
    if o.third_date {
        write_manifest(&out.join("manifest-night2.json"), &o.sensor, third_tiles)?;
        crate::io::write_atomic(&out.join("truth-night2.geojson"), &plain(&truth2))?;
        // The first night's truth with what became of each object.
        let fates = truth.iter().map(|(fate, f)| {
            let mut f = f.clone();
            f.props.insert("fate".into(), json!(fate.as_str()));
            poly_feature(&f)
        });
        crate::io::write_atomic(&out.join("rectification.geojson"), &collection_bytes(fates))?;
    }
    let meta = json!({"generator": "riverwatch synth", "seed": o.seed, "tiles": o.tiles, "size": o.size, "sensor": o.sensor,
        "water_level_change_px": (scene.level_px * 100.0).round() / 100.0, "objects": scene.objs.iter().filter(|ob| ob.fate != Fate::New).count(), "tiles_detail": shifts});
    let mut meta = meta;
    if o.third_date {
        meta["third_date"] = json!(THIRD_DATE);
        meta["third_date_objects"] = json!({
            "kept": scene.objs.iter().filter(|ob| ob.fate == Fate::Kept).count(),
            "rectified": scene.objs.iter().filter(|ob| ob.fate == Fate::Rectified).count(),
            "new": scene.objs.iter().filter(|ob| ob.fate == Fate::New).count(),
        });
    }
    crate::io::write_atomic(
        &out.join("synth.json"),
        format!(
            "{}\n",
            serde_json::to_string_pretty(&meta).unwrap_or_default()
        )
        .as_bytes(),
    )?;
    Ok(SynthSummary {
        tiles: layout.tiles.len(),
        truth: truth.len(),
        segments: segments.len(),
    })
}

/// One row of tiles along the river, starting west of central Harbin.
fn make_layout(wkt: &str, river: &LineString<f64>, size: i64, cols: i64) -> Result<Layout> {
    // Start west of central Harbin so the strip follows the river east.
    let anchor = {
        let t = Transformer::from_wgs84(wkt)?;
        let (mut xs, mut ys) = (vec![126.43], vec![45.74]);
        t.apply(&mut xs, &mut ys)?;
        (
            (xs[0] / PIXEL_M).round() * PIXEL_M,
            (ys[0] / PIXEL_M).round() * PIXEL_M,
        )
    };
    // One row of tiles along the river; each column is shifted vertically (by
    // an even number of pixels, on one lattice) to keep the river near its
    // middle, so neighbours share part of their side edge.
    let layout = {
        let x0 = anchor.0;
        let y0 = anchor.1 + size as f64 * PIXEL_M / 2.0;
        let mut tiles = Vec::new();
        for c in 0..cols {
            let cx = x0 + ((c as f64) + 0.5) * size as f64 * PIXEL_M;
            let ry = y_at(river, cx).unwrap_or(anchor.1);
            let off = (((y0 - ry) / PIXEL_M - size as f64 / 2.0) / 2.0).round() as i64 * 2;
            tiles.push((format!("songhua-{:04}", tiles.len()), c * size, off));
        }
        Layout {
            wkt: wkt.to_string(),
            x0,
            y0,
            tiles,
        }
    };
    Ok(layout)
}

/// A point in world pixels (x, y).
type Pt = (f64, f64);

/// The main river in world pixels (densified to ≤ 60 px, clipped to the
/// strip) and a tributary joining from the south.
fn river_lines(
    river: &LineString<f64>,
    layout: &Layout,
    width_px: i64,
    rng: &mut Rng,
) -> (Vec<Pt>, Vec<Pt>) {
    let to_px = |p: Coord<f64>| ((p.x - layout.x0) / PIXEL_M, (layout.y0 - p.y) / PIXEL_M);
    let (wx0, wx1) = (-60.0, width_px as f64 + 60.0);
    // River pieces in world pixels, densified to ≤ 60 px, clipped to the strip.
    let mut main_pts: Vec<(f64, f64)> = Vec::new();
    for w in river.0.windows(2) {
        let (a, b) = (to_px(w[0]), to_px(w[1]));
        let n = ((((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt()) / 60.0)
            .ceil()
            .max(1.0) as usize;
        for k in 0..n {
            let t = k as f64 / n as f64;
            main_pts.push((a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t));
        }
    }
    let in_strip = |p: &(f64, f64)| p.0 >= wx0 - 300.0 && p.0 <= wx1 + 300.0;
    let main_pts: Vec<(f64, f64)> = main_pts.into_iter().filter(in_strip).collect();
    // A tributary joining from the south about a third of the way along.
    let join = main_pts[main_pts.len() / 3];
    let mut trib = vec![join];
    let mut p = join;
    let mut heading = std::f64::consts::FRAC_PI_2 + rng.range(-0.5, 0.5);
    for _ in 0..12 {
        heading += rng.range(-0.35, 0.35);
        p = (p.0 + 50.0 * heading.cos(), p.1 + 50.0 * heading.sin());
        trib.push(p);
    }
    (main_pts, trib)
}

/// Segments of 2–6 km along each river, each with its chief and widths;
/// the flags say which widths are left to the defaults.
fn make_segments(
    main_pts: &[(f64, f64)],
    trib: &[(f64, f64)],
    layout: &Layout,
    rng: &mut Rng,
) -> (Vec<Segment>, Vec<(bool, bool)>) {
    let to_map = |x: f64, y: f64| Coord {
        x: layout.x0 + x * PIXEL_M,
        y: layout.y0 - y * PIXEL_M,
    };
    let mut segments: Vec<Segment> = Vec::new();
    let mut seg_defaults: Vec<(bool, bool)> = Vec::new();
    let village_chiefs: Vec<String> = chiefs()
        .into_iter()
        .filter(|c| c.level == Level::Village)
        .map(|c| c.id)
        .collect();
    let township_chiefs: Vec<String> = chiefs()
        .into_iter()
        .filter(|c| c.level == Level::Township)
        .map(|c| c.id)
        .collect();
    for (river_name, pts, wide) in [
        ("松花江 Songhua", main_pts, true),
        ("阿什河 Ashi", trib, false),
    ] {
        let mut i = 0;
        let mut k = 0;
        while i + 1 < pts.len() {
            let target = rng.range(200.0, 600.0);
            let mut len = 0.0;
            let mut j = i;
            while j + 1 < pts.len() && len < target {
                len +=
                    ((pts[j + 1].0 - pts[j].0).powi(2) + (pts[j + 1].1 - pts[j].1).powi(2)).sqrt();
                j += 1;
            }
            if pts.len() - 1 - j < 3 {
                j = pts.len() - 1;
            }
            let ls = LineString(pts[i..=j].iter().map(|&(x, y)| to_map(x, y)).collect());
            let (corridor_m, channel_m) = if wide {
                (
                    rng.pick(&[400.0, 450.0, 500.0, 550.0, 600.0]),
                    rng.pick(&[150.0, 200.0, 250.0]),
                )
            } else {
                (rng.pick(&[250.0, 300.0]), rng.pick(&[80.0, 100.0]))
            };
            // About one main-river segment in four relies on the defaults.
            let use_default = wide && rng.f() < 0.25;
            let (corridor_m, channel_m) = if use_default {
                (500.0, 200.0)
            } else {
                (corridor_m, channel_m)
            };
            let county = (segments.len() * COUNTIES.len() / 12).min(COUNTIES.len() - 1);
            let chief_id = if rng.f() < 0.7 {
                village_chiefs[county * 4 + (k % 4)].clone()
            } else {
                township_chiefs[county * 2 + (k % 2)].clone()
            };
            segments.push(Segment {
                id: format!("{}-{:03}", if wide { "SH" } else { "AS" }, k + 1),
                river: river_name.to_string(),
                chief_id,
                corridor_m,
                channel_m,
                lines: MultiLineString(vec![ls]),
            });
            seg_defaults.push((use_default, use_default));
            k += 1;
            i = j;
        }
    }
    (segments, seg_defaults)
}

/// Villages (some inside the corridor), roads and a bridge: structures that
/// exist on both dates.
fn add_structures(
    scene: &mut Scene,
    rng: &mut Rng,
    layout: &Layout,
    main_pts: &[(f64, f64)],
    n_tiles: usize,
    (size, cols): (i64, i64),
) {
    let (ymin, ymax) = layout.tiles.iter().fold((i64::MAX, i64::MIN), |a, t| {
        (a.0.min(t.2), a.1.max(t.2 + size))
    });
    for _ in 0..(n_tiles * 2) {
        for _ in 0..50 {
            let (x, y) = (
                rng.range(0.0, (cols * size) as f64),
                rng.range(ymin as f64, ymax as f64),
            );
            let d = scene.dist(x, y, true).min(scene.dist(x, y, false));
            if d > 30.0 {
                scene.villages.push((x, y, rng.range(10.0, 28.0)));
                break;
            }
        }
    }
    for c in 0..cols {
        let x = (c * size) as f64 + rng.range(0.2, 0.8) * size as f64;
        scene.roads.push((
            (x, ymin as f64 - 10.0),
            (x + rng.range(-200.0, 200.0), ymax as f64 + 10.0),
        ));
    }
    {
        let pc = &main_pts[main_pts.len() / 2];
        let pn = &main_pts[main_pts.len() / 2 + 1];
        let (dx, dy) = (pn.0 - pc.0, pn.1 - pc.1);
        let l = (dx * dx + dy * dy).sqrt().max(1e-9);
        let (nx, ny) = (-dy / l * 30.0, dx / l * 30.0);
        scene
            .bridges
            .push(((pc.0 - nx, pc.1 - ny), (pc.0 + nx, pc.1 + ny)));
    }
}

/// True changes: per tile, inside the corridor and a few outside; some
/// centred on seams.
fn add_changes(scene: &mut Scene, rng: &mut Rng, layout: &Layout, o: &SynthOptions, size: i64) {
    let mut centres: Vec<(usize, f64, f64, bool)> = Vec::new();
    let tiles_xy: Vec<(i64, i64)> = layout.tiles.iter().map(|t| (t.1, t.2)).collect();
    let per_tile = ((o.size * o.size) as f64 / (512.0 * 512.0) * 18.0)
        .round()
        .max(6.0) as usize;
    for (tidx, &(tx, ty)) in tiles_xy.iter().enumerate() {
        // Rows shared with the next tile: seam objects go there so that they
        // really straddle two tiles.
        let shared = tiles_xy
            .get(tidx + 1)
            .map(|&(_, ny)| (ty.max(ny), (ty + size).min(ny + size)))
            .filter(|(a, b)| b - a > 8);
        for n in 0..per_tile + 3 {
            let class = n % 4;
            let outside = n >= per_tile;
            let seam = n % 3 == 2;
            for _ in 0..400 {
                let mut x = tx as f64 + rng.range(0.0, size as f64);
                let mut y = ty as f64 + rng.range(0.0, size as f64);
                if let (true, Some((a, b))) = (seam, shared) {
                    x = (tx + size) as f64 + rng.range(-6.0, 6.0);
                    y = rng.range(a as f64, b as f64);
                }
                // Sites keep their distance (25 px) so objects do not pile up.
                let free = centres
                    .iter()
                    .all(|&(_, cx, cy, _)| (cx - x).powi(2) + (cy - y).powi(2) > 625.0);
                if free && site_ok(scene, class, x, y, outside) {
                    centres.push((class, x, y, outside));
                    break;
                }
            }
        }
    }
    for (i, &(class, x, y, _)) in centres.iter().enumerate() {
        let variant = mix(o.seed ^ (i as u64 * 7919));
        // The fate draws from its own hash, so the first two dates do not
        // depend on whether a third is rendered.
        let fate = if unit(hash(o.seed, i as i64, 0, 90)) < RECTIFIED_SHARE {
            Fate::Rectified
        } else {
            Fate::Kept
        };
        let obj = make_obj(rng, class, (x, y), variant, fate);
        scene.objs.push(obj);
    }
}

/// Whether (x, y) suits a change of `class` (0 occupation, 1 sand mining,
/// 2 dumping, 3 construction), or with `outside` a site beyond the corridor.
fn site_ok(scene: &Scene, class: usize, x: f64, y: f64, outside: bool) -> bool {
    let dm = scene.dist(x, y, true);
    let dt = scene.dist(x, y, false);
    let w = scene.half_width(x, y);
    let d = dm.min(dt);
    let ok = if outside {
        d > 70.0 && d < 110.0
    } else {
        match class {
            0 => (dm - w).abs() < 2.0,
            1 => dm < w * 0.6 && scene.is_bar(x, y, dm, w) || (dm > w && dm < w + 6.0),
            2 => dm > w + 4.0 && d < 40.0,
            _ => dm > w + 3.0 && d < 45.0,
        }
    };
    ok && !(dt < 3.0 && class != 3)
}

/// An object of `class` around (x, y): area drawn log-uniform over 4–400
/// px (15 % tiny, 1–4 px), occupation twice as large.
fn make_obj(rng: &mut Rng, class: usize, (x, y): (f64, f64), variant: u64, fate: Fate) -> Obj {
    let area_px = if rng.f() < 0.15 {
        rng.range(1.0, 4.0)
    } else {
        (rng.range(4f64.ln(), 400f64.ln())).exp()
    };
    let area_px = if class == 0 { area_px * 2.0 } else { area_px };
    let poly = shape(rng, class, x, y, area_px);
    let bb = poly
        .iter()
        .fold([f64::MAX, f64::MIN, f64::MAX, f64::MIN], |b, p| {
            [b[0].min(p.0), b[1].max(p.0), b[2].min(p.1), b[3].max(p.1)]
        });
    Obj {
        class,
        poly,
        bb,
        variant,
        fate,
    }
}

/// Changes that appear only on the third date: a third as many per tile as
/// the first night's, inside the corridor, clear of the earlier sites.
fn add_new_changes(scene: &mut Scene, layout: &Layout, o: &SynthOptions, size: i64) {
    let mut rng = Rng(mix(o.seed ^ 0x3D3D_3D3D));
    let per_tile =
        (((o.size * o.size) as f64 / (512.0 * 512.0) * 18.0).round() / 3.0).max(2.0) as usize;
    let mut taken: Vec<(f64, f64)> = scene
        .objs
        .iter()
        .map(|ob| ((ob.bb[0] + ob.bb[1]) / 2.0, (ob.bb[2] + ob.bb[3]) / 2.0))
        .collect();
    let first = scene.objs.len();
    for &(_, tx, ty) in &layout.tiles {
        for n in 0..per_tile {
            let class = (n + 1) % 4;
            for _ in 0..400 {
                let x = tx as f64 + rng.range(8.0, size as f64 - 8.0);
                let y = ty as f64 + rng.range(8.0, size as f64 - 8.0);
                let free = taken
                    .iter()
                    .all(|&(cx, cy)| (cx - x).powi(2) + (cy - y).powi(2) > 900.0);
                if free && site_ok(scene, class, x, y, false) {
                    taken.push((x, y));
                    let variant = mix(o.seed ^ ((first + taken.len()) as u64 * 7919));
                    let obj = make_obj(&mut rng, class, (x, y), variant, Fate::New);
                    scene.objs.push(obj);
                    break;
                }
            }
        }
    }
}

fn write_manifest(path: &Path, sensor: &str, tiles: Vec<Value>) -> Result<()> {
    let manifest = json!({"version": 1, "sensor": sensor, "rivers": "rivers.geojson", "chiefs": "chiefs.json", "tiles": tiles});
    crate::io::write_atomic(
        path,
        format!(
            "{}\n",
            serde_json::to_string_pretty(&manifest).unwrap_or_default()
        )
        .as_bytes(),
    )
}

/// What every tile of a synth run shares.
struct World<'a> {
    o: &'a SynthOptions,
    layout: &'a Layout,
    scene: &'a Scene,
    out: &'a Path,
    nb: usize,
    projected: &'a [Projected],
    segments: &'a [Segment],
    index: &'a SegmentIndex,
    to_wgs: &'a Transformer,
}

/// One tile's contribution: truth polygons, manifest entry, meta entry;
/// with a third date also its manifest entry and truth.
struct TileOut {
    truth: Vec<(Fate, PolyFeature)>,
    manifest: Value,
    shift: Value,
    third: Option<(Value, Vec<(Fate, PolyFeature)>)>,
}

/// One date of the world around a tile, `m` pixels wider on every side
/// (room for the later date's shift), SWIR at 20 m.
fn render_date(
    scene: &Scene,
    (tx, ty): (&i64, &i64),
    t: usize,
    wsz: usize,
    m: usize,
) -> Array3<f32> {
    let mut a = Array3::<f32>::zeros((5, wsz, wsz));
    let rows: Vec<(usize, Vec<Spec>)> = (0..wsz)
        .into_par_iter()
        .map(|r| {
            let yi = *ty - m as i64 + r as i64;
            let v: Vec<Spec> = (0..wsz)
                .map(|c| {
                    let xi = *tx - m as i64 + c as i64;
                    let (x, y) = (xi as f64 + 0.5, yi as f64 + 0.5);
                    let dm = scene.dist(x, y, true);
                    let dt = scene.dist(x, y, false);
                    scene.render(xi, yi, t, dm, dt)
                })
                .collect();
            (r, v)
        })
        .collect();
    for (r, v) in rows {
        for (c, s) in v.into_iter().enumerate() {
            for b in 0..5 {
                a[[b, r, c]] = s[b];
            }
        }
    }
    // SWIR at 20 m: 2 × 2 block means on the world lattice.
    for r in (0..wsz).step_by(2) {
        for c in (0..wsz).step_by(2) {
            let mean =
                (a[[4, r, c]] + a[[4, r + 1, c]] + a[[4, r, c + 1]] + a[[4, r + 1, c + 1]]) / 4.0;
            for (dr, dc) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                a[[4, r + dr, c + dc]] = mean;
            }
        }
    }
    a
}

/// The tile cut from a rendered date, shifted by (dx, dy) pixels with
/// bilinear resampling.
fn crop(a: &Array3<f32>, sz: usize, m: usize, dx: f64, dy: f64) -> Array3<f32> {
    let mut outa = Array3::<f32>::zeros((5, sz, sz));
    for b in 0..5 {
        for r in 0..sz {
            for c in 0..sz {
                let (fx, fy) = (c as f64 + m as f64 + dx, r as f64 + m as f64 + dy);
                let (x0, y0) = (fx.floor(), fy.floor());
                let (tx, ty) = ((fx - x0) as f32, (fy - y0) as f32);
                let (x0, y0) = (x0 as usize, y0 as usize);
                let v00 = a[[b, y0, x0]];
                let v01 = a[[b, y0, x0 + 1]];
                let v10 = a[[b, y0 + 1, x0]];
                let v11 = a[[b, y0 + 1, x0 + 1]];
                outa[[b, r, c]] =
                    (v00 * (1.0 - tx) + v01 * tx) * (1.0 - ty) + (v10 * (1.0 - tx) + v11 * tx) * ty;
            }
        }
    }
    outa
}

/// A shift of up to 1.5 px in a random direction.
fn draw_shift(r: &mut Rng) -> (f64, f64) {
    draw_shift_up_to(r, 1.5)
}

/// A shift of up to `max` px in a random direction.
fn draw_shift_up_to(r: &mut Rng, max: f64) -> (f64, f64) {
    let shift = (r.range(-max, max), r.range(-max, max));
    let m = (shift.0 * shift.0 + shift.1 * shift.1).sqrt();
    if m > max {
        (shift.0 * max / m, shift.1 * max / m)
    } else {
        shift
    }
}

/// How one tile looks on its dates.
struct TileSetup<'a> {
    id: &'a str,
    ti: usize,
    xy: (i64, i64),
    grid: Grid,
    clouds: bool,
    mask_file: bool,
}

/// Writes a later date (`t` 1 or 2) of a tile: image, optional mask; returns
/// its manifest entry and what is unusable (cloud or shadow).
fn write_later(
    w: &World<'_>,
    ts: &TileSetup<'_>,
    date: &str,
    img: &Array3<f32>,
    nodata: &Array2<bool>,
    sky: Option<&Sky>,
) -> Result<(Value, Array2<bool>)> {
    let sz = w.o.size;
    let id = ts.id;
    let apath = format!("tiles/{id}_{date}.tif");
    let dn = to_dn(img, w.nb, Some(nodata));
    let views: Vec<_> = dn.iter().map(|a| a.view()).collect();
    write_geotiff(&w.out.join(&apath), &ts.grid, &views, Some(0.0))?;
    let unusable = sky.map_or_else(
        || Array2::from_elem((sz, sz), false),
        |k| {
            Array2::from_shape_fn((sz, sz), |(r, c)| {
                k.alpha[[r, c]] > 0.02 || k.shadow[[r, c]]
            })
        },
    );
    let mut after_json = json!({"image": apath, "date": date});
    if ts.mask_file {
        let mpath = format!("tiles/{id}_{date}_cloud.tif");
        let mask = unusable.mapv(u8::from);
        write_geotiff(&w.out.join(&mpath), &ts.grid, &[mask.view()], None)?;
        after_json["mask"] = json!(mpath);
    }
    Ok((after_json, unusable))
}

/// Renders and writes one tile pair (and its mask), and returns its truth.
fn synth_tile(w: &World<'_>, ti: usize, id: &str, tx: i64, ty: i64) -> Result<TileOut> {
    let World {
        o,
        layout,
        scene,
        out,
        nb,
        ..
    } = *w;
    let mut trng = Rng(mix(o.seed ^ mix(ti as u64 + 1000)));
    let grid = Grid {
        width: o.size,
        height: o.size,
        gt: [
            layout.x0 + tx as f64 * PIXEL_M,
            PIXEL_M,
            0.0,
            layout.y0 - ty as f64 * PIXEL_M,
            0.0,
            -PIXEL_M,
        ],
        wkt: layout.wkt.clone(),
    };
    let clouds = ti % 2 == 1 || o.hard;
    let ts = TileSetup {
        id,
        ti,
        xy: (tx, ty),
        grid: grid.clone(),
        clouds,
        mask_file: clouds && ti % 4 == 1 && !o.hard,
    };
    let nodata_wedge = ti + 1 == layout.tiles.len() && layout.tiles.len() > 1;
    let mut shift = draw_shift(&mut trng);
    let atm_before = atmosphere(&mut trng, 0.3);
    let mut atm_after = atmosphere(&mut trng, 1.0);
    // The hard conditions come from their own stream, so the default
    // scene's draws are untouched.
    let mut hrng = Rng(mix(o.seed ^ mix(ti as u64 + 7000)));
    let sensor_gain: Option<[f32; 5]> = o.hard.then(|| {
        shift = draw_shift_up_to(&mut hrng, 2.0);
        atm_after = atmosphere(&mut hrng, 2.5);
        std::array::from_fn(|_| hrng.range(0.5, 1.6) as f32)
    });
    let sz = o.size;
    let m = 4usize;
    let wsz = sz + 2 * m;
    let big_before = render_date(scene, (&tx, &ty), 0, wsz, m);
    let big_after = render_date(scene, (&tx, &ty), 1, wsz, m);
    let mut before = crop(&big_before, sz, m, 0.0, 0.0);
    let mut after = crop(&big_after, sz, m, shift.0, shift.1);
    let sky = clouds.then(|| Sky::new(mix(o.seed ^ (ti as u64 * 31 + 5)), &mut trng, (tx, ty), sz));
    sensor_effects(&mut before, atm_before, None, o.seed, (tx, ty), 0);
    sensor_effects(&mut after, atm_after, sky.as_ref(), o.seed, (tx, ty), 1);
    if let Some(g) = sensor_gain {
        for (b, mut plane) in after.axis_iter_mut(ndarray::Axis(0)).enumerate() {
            plane.mapv_inplace(|v| v * g[b]);
        }
    }
    // Nodata swath edge on the later date of the last tile.
    let nodata = Array2::from_shape_fn((sz, sz), |(r, c)| nodata_wedge && (c + r / 2) < sz / 5);
    let bpath = format!("tiles/{id}_{BEFORE_DATE}.tif");
    let dn = to_dn(&before, nb, None);
    let views: Vec<_> = dn.iter().map(|a| a.view()).collect();
    write_geotiff(&out.join(&bpath), &grid, &views, Some(0.0))?;
    let (after_json, unusable) = write_later(w, &ts, AFTER_DATE, &after, &nodata, sky.as_ref())?;
    let before_json = json!({"image": bpath, "date": BEFORE_DATE});
    let third = if o.third_date {
        let (j, truth) = third_date(w, &ts, &nodata)?;
        Some((json!({"id": id, "before": before_json, "after": j}), truth))
    } else {
        None
    };
    Ok(TileOut {
        truth: tile_truth(w, (id, 1), (tx, ty), &grid, &unusable, &nodata)?,
        manifest: json!({"id": id, "before": before_json, "after": after_json}),
        shift: {
            let mut j = json!({"tile": id, "after_shift_px": [(shift.0 * 1000.0).round() / 1000.0, (shift.1 * 1000.0).round() / 1000.0], "clouds": clouds, "mask": ts.mask_file});
            if let Some(g) = sensor_gain {
                j["sensor_gain"] = json!(g.map(|v| (v as f64 * 1000.0).round() / 1000.0));
            }
            j
        },
        third,
    })
}

/// The third date of a tile: its own shift, atmosphere and clouds (drawn
/// from a separate stream), objects as [`Obj::present`] says.
fn third_date(
    w: &World<'_>,
    ts: &TileSetup<'_>,
    nodata: &Array2<bool>,
) -> Result<(Value, Vec<(Fate, PolyFeature)>)> {
    let (o, sz) = (w.o, w.o.size);
    let (tx, ty) = ts.xy;
    let mut r3 = Rng(mix(o.seed ^ mix(ts.ti as u64 + 5000)));
    let shift = draw_shift(&mut r3);
    let atm = atmosphere(&mut r3, 1.0);
    let m = 4usize;
    let big = render_date(w.scene, (&tx, &ty), 2, sz + 2 * m, m);
    let mut img = crop(&big, sz, m, shift.0, shift.1);
    let sky = ts.clouds.then(|| {
        Sky::new(
            mix(o.seed ^ (ts.ti as u64 * 37 + 11)),
            &mut r3,
            (tx, ty),
            sz,
        )
    });
    sensor_effects(&mut img, atm, sky.as_ref(), o.seed, (tx, ty), 2);
    let (j, unusable) = write_later(w, ts, THIRD_DATE, &img, nodata, sky.as_ref())?;
    let truth = tile_truth(w, (ts.id, 2), (tx, ty), &ts.grid, &unusable, nodata)?;
    Ok((j, truth))
}

/// Per-band gain and additive haze (falling off as λ⁻²) of one date.
fn atmosphere(r: &mut Rng, strength: f64) -> ([f32; 5], [f32; 5]) {
    let common = r.range(1.0 - 0.1 * strength, 1.0 + 0.1 * strength);
    let haze = r.range(0.0, 0.03 * strength);
    let wl: [f64; 5] = [0.49, 0.56, 0.665, 0.842, 1.61];
    let mut g = [0f32; 5];
    let mut off = [0f32; 5];
    for b in 0..5 {
        g[b] = (common * r.range(0.97, 1.03)) as f32;
        off[b] = (haze * (0.49 / wl[b]).powi(2)) as f32;
    }
    (g, off)
}

/// Clouds (on the later date) and their shadows, offset by the sun.
struct Sky {
    alpha: Array2<f32>,
    shadow: Array2<bool>,
}

impl Sky {
    fn new(cseed: u64, trng: &mut Rng, (tx, ty): (i64, i64), sz: usize) -> Sky {
        let cover = trng.range(0.66, 0.72) as f32;
        let (sdx, sdy) = (14i64, 10i64);
        let mut alpha = Array2::<f32>::zeros((sz, sz));
        let mut shadow = Array2::<bool>::from_elem((sz, sz), false);
        for r in 0..sz {
            for c in 0..sz {
                let (x, y) = ((tx + c as i64) as f64, (ty + r as i64) as f64);
                let n = fbm(cseed, x, y, 90.0, 60);
                alpha[[r, c]] = ((n - cover) / 0.12).clamp(0.0, 1.0);
                let ns = fbm(cseed, x - sdx as f64, y - sdy as f64, 90.0, 60);
                shadow[[r, c]] = ns > cover + 0.02;
            }
        }
        Sky { alpha, shadow }
    }
}

/// Shadow, atmosphere, cloud mixing and sensor noise, in place.
fn sensor_effects(
    img: &mut Array3<f32>,
    (g, off): ([f32; 5], [f32; 5]),
    sky: Option<&Sky>,
    seed: u64,
    (tx, ty): (i64, i64),
    t: u64,
) {
    let (_, h, w) = img.dim();
    for b in 0..5 {
        for r in 0..h {
            for c in 0..w {
                let mut v = img[[b, r, c]];
                if sky.is_some_and(|k| k.shadow[[r, c]]) {
                    v *= 0.35;
                }
                v = v * g[b] + off[b];
                if let Some(k) = sky {
                    let a = k.alpha[[r, c]];
                    v = v * (1.0 - a) + sp(M::Cloud)[b] * a;
                }
                let h = hash(seed, (tx + c as i64) * 8 + b as i64, ty + r as i64, 70 + t);
                v += gauss(h) * (0.003 + 0.02 * v);
                img[[b, r, c]] = v;
            }
        }
    }
}

/// Digital numbers (reflectance / 1e-4) of the first `nb` bands; 0 (nodata)
/// where `nodata` is set.
fn to_dn(img: &Array3<f32>, nb: usize, nodata: Option<&Array2<bool>>) -> Vec<Array2<u16>> {
    let (_, h, w) = img.dim();
    (0..nb)
        .map(|b| {
            let mut a = Array2::<u16>::zeros((h, w));
            ndarray::Zip::indexed(&mut a).for_each(|(r, c), d| {
                *d = if nodata.is_some_and(|n| n[[r, c]]) {
                    0
                } else {
                    (img[[b, r, c]] / 1e-4).round().clamp(1.0, 65535.0) as u16
                };
            });
            a
        })
        .collect()
}

/// Truth of one tile: object pixels (on the reference grid) that changed,
/// inside the management zone, not hidden by cloud, shadow or nodata.
fn tile_truth(
    w: &World<'_>,
    (id, t): (&str, usize),
    (tx, ty): (i64, i64),
    grid: &Grid,
    unusable: &Array2<bool>,
    nodata: &Array2<bool>,
) -> Result<Vec<(Fate, PolyFeature)>> {
    let World {
        o,
        scene,
        projected,
        segments,
        index,
        to_wgs,
        ..
    } = *w;
    let sz = o.size;
    let mut truth = Vec::new();
    // Truth: object pixels (on the reference grid) that changed, inside the
    // management zone, not hidden by cloud, shadow or nodata.
    let zones = zones::zones(grid, 0..sz, projected);
    for (oi, obj) in scene.objs.iter().enumerate() {
        if !obj.present(t) {
            continue;
        }
        let (c0, c1) = (
            (obj.bb[0].floor() as i64 - tx).max(0),
            (obj.bb[1].ceil() as i64 + 1 - tx).min(sz as i64),
        );
        let (r0, r1) = (
            (obj.bb[2].floor() as i64 - ty).max(0),
            (obj.bb[3].ceil() as i64 + 1 - ty).min(sz as i64),
        );
        if c0 >= c1 || r0 >= r1 {
            continue;
        }
        let mut mask = Array2::from_elem((sz, sz), false);
        let mut allowed = Array2::from_elem((sz, sz), false);
        let mut any = false;
        for r in r0 as usize..r1 as usize {
            for c in c0 as usize..c1 as usize {
                let (xi, yi) = (tx + c as i64, ty + r as i64);
                let (x, y) = (xi as f64 + 0.5, yi as f64 + 0.5);
                if !obj.contains(x, y) || !zones.zone[[r, c]] || unusable[[r, c]] || nodata[[r, c]]
                {
                    continue;
                }
                allowed[[r, c]] = true;
                let dm = scene.dist(x, y, true);
                let dt = scene.dist(x, y, false);
                // A pixel is truth where the object put a different
                // material: wet sand left wet sand inside a mining site is
                // not a change anyone can see.
                // The last object that changes a pixel is the one rendered there.
                let later = scene.objs[oi + 1..].iter().any(|o| {
                    o.present(t)
                        && o.contains(x, y)
                        && scene.changed(o, x, y, xi, yi, dm, dt).is_some()
                });
                if later {
                    continue;
                }
                if let Some(after) = scene.changed(obj, x, y, xi, yi, dm, dt) {
                    let before = scene.render(xi, yi, 0, dm, dt);
                    let d2: f32 = before
                        .iter()
                        .zip(&after)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum();
                    if d2.sqrt() > TRUTH_MIN_CHANGE {
                        mask[[r, c]] = true;
                        any = true;
                    }
                }
            }
        }
        if !any {
            continue;
        }
        // Close one-pixel gaps inside the object (an annotator outlines
        // the site, not every pixel), staying inside the object's usable
        // part of the zone.
        let closed = crate::kernels::morphology::close(
            mask.view(),
            crate::kernels::morphology::Shape::Square,
            1,
        );
        ndarray::Zip::from(&mut mask)
            .and(&closed)
            .and(&allowed)
            .for_each(|m, &c, &a| *m = *m || (c && a));
        let sub = mask.slice(s![r0 as usize..r1 as usize, ..]).to_owned();
        let (lab, comps) = label(sub.view());
        for comp in &comps {
            let poly = trace(lab.view(), comp, grid, r0 as usize);
            let mp = MultiPolygon(vec![poly]);
            let Some(near) = index.nearest(&mp) else {
                continue;
            };
            let pts: Vec<Coord<f64>> = lab
                .indexed_iter()
                .filter(|(_, &l)| l == comp.label)
                .map(|((r, c), _)| {
                    let (x, y) = grid.to_map(c as f64 + 0.5, (r + r0 as usize) as f64 + 0.5);
                    Coord { x, y }
                })
                .collect();
            let class = ChangeClass::ALL[obj.class];
            let obstructs = class.obstructs(|| index.channel_share(near.segment, &pts));
            let seg = &segments[near.segment];
            let mut wgs = mp;
            to_wgs.apply_geom(&mut wgs)?;
            let props = json!({"tile": id, "class": class, "obstructs_flood_channel": obstructs, "segment_id": seg.id, "chief_id": seg.chief_id, "pixels": comp.pixels});
            truth.push((
                obj.fate,
                PolyFeature {
                    geometry: wgs,
                    props: props.as_object().cloned().unwrap_or_default(),
                },
            ));
        }
    }
    Ok(truth)
}

fn write_chiefs(path: &Path, reg: &Registry) -> Result<()> {
    let list: Vec<&Chief> = reg.iter().collect();
    let v = json!({"chiefs": list});
    crate::io::write_atomic(
        path,
        format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()).as_bytes(),
    )
}

fn write_rivers(path: &Path, segs: &[Segment], wkt: &str, defaults: &[(bool, bool)]) -> Result<()> {
    let t = Transformer::to_wgs84(wkt)?;
    let mut feats = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let mut lines = s.lines.clone();
        t.apply_geom(&mut lines)?;
        let coords: Vec<Value> = lines.0[0]
            .0
            .iter()
            .map(|c| {
                json!([
                    crate::io::vector::round7(c.x),
                    crate::io::vector::round7(c.y)
                ])
            })
            .collect();
        let mut props = json!({"segment_id": s.id, "river": s.river, "chief_id": s.chief_id});
        let d = defaults.get(i).copied().unwrap_or((false, false));
        if !d.0 {
            props["corridor_m"] = json!(s.corridor_m);
        }
        if !d.1 {
            props["channel_m"] = json!(s.channel_m);
        }
        feats.push(json!({"type": "Feature", "properties": props, "geometry": {"type": "LineString", "coordinates": coords}}));
    }
    let v = json!({"type": "FeatureCollection", "features": feats});
    crate::io::write_atomic(
        path,
        format!("{}\n", serde_json::to_string(&v).unwrap_or_default()).as_bytes(),
    )
}
