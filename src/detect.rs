//! The detection pipeline for one tile pair: read both dates, zones from the
//! river segments, normalisation, indices, clouds and shadows, land cover,
//! change magnitude and threshold, from-to rules, clean-up, components,
//! polygons, linking to segment and chief.

use crate::change::{self, otsu};
use crate::chiefs::Registry;
use crate::config::{Config, Method};
use crate::corridor::{self, Zones};
use crate::error::{Error, Result};
use crate::indices::{indices_with, Indices};
use crate::io::raster::{write_geotiff, Grid, TileReader, Transformer};
use crate::io::vector::PolyFeature;
use crate::label::{label, Component};
use crate::landcover::{self, BARE, BUILT, VEG, WATER};
use crate::link::{blocks_flow, chief_link, SegmentIndex};
use crate::manifest::{Manifest, Sensor, Tile};
use crate::morphology::{close, dilate, distance_to, open, reconstruct, Shape};
use crate::normalize::{self, Fit};
use crate::polygonize::trace;
use crate::rivers::Segment;
use geo::{Area, Coord, MultiPolygon, SimplifyVwPreserve, Validation};
use ndarray::{s, Array2, Array3, Zip};
use serde::Serialize;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Instant;

/// The change classes, in class-code order (code = index + 1 in rasters).
pub const CLASSES: [&str; 4] = ["occupation", "sand_mining", "dumping", "construction"];

/// Codes of the `suppressed` raster: why a changed pixel inside the zone was
/// or was not kept as an encroachment candidate.
pub mod reason {
    /// Not changed, or outside the zone.
    pub const NONE: u8 = 0;
    /// Kept: a candidate encroachment.
    pub const CANDIDATE: u8 = 1;
    /// Water-level change along the earlier shoreline (kept only where it
    /// touches a candidate within `shoreline_px + 1` pixels).
    pub const SHORELINE: u8 = 2;
    /// Land turned (or stayed) vegetated: phenology, crop cycles, regrowth.
    pub const VEGETATION: u8 = 3;
    /// Land turned into dark bare soil: ploughing, moist soil.
    pub const DARK_SOIL: u8 = 4;
    /// Water stayed water: turbidity, sun glint.
    pub const WATER_TO_WATER: u8 = 5;
}

/// Everything a tile needs besides its own rasters.
pub struct Context<'a> {
    /// Sensor layout.
    pub sensor: &'a Sensor,
    /// River segments (sorted by id).
    pub segments: &'a [Segment],
    /// Chief registry.
    pub registry: &'a Registry,
    /// Settings.
    pub config: &'a Config,
}

/// Loads and cross-checks the rivers and chiefs a manifest names.
///
/// # Errors
/// Any input problem, and segments whose chief is not in the registry.
pub fn load_context_inputs(m: &Manifest, cfg: &Config) -> Result<(Vec<Segment>, Registry)> {
    let reg = Registry::load(&m.chiefs)?;
    let segs = crate::rivers::load(&m.rivers, cfg.widths())?;
    let missing: Vec<String> = segs
        .iter()
        .filter(|s| reg.get(&s.chief_id).is_none())
        .map(|s| {
            format!(
                "{}: segment {:?}: chief_id {:?} is not in {}",
                m.rivers.display(),
                s.id,
                s.chief_id,
                m.chiefs.display()
            )
        })
        .collect();
    if missing.is_empty() {
        Ok((segs, reg))
    } else {
        Err(Error::Many(missing))
    }
}

/// What happened in one tile, for logs and the batch summary.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TileReport {
    /// Tile id.
    pub tile: String,
    /// Columns × rows.
    pub size: [usize; 2],
    /// Share of pixels valid on both dates.
    pub valid_share: f64,
    /// Share of pixels masked as cloud or shadow (file or detected).
    pub cloud_share: f64,
    /// Share of pixels in the management zone.
    pub zone_share: f64,
    /// Radiometric normalisation (later → earlier).
    pub normalization: Fit,
    /// Estimated shift of the later image, pixels (x, y), corrected before
    /// change detection.
    #[serde(default)]
    pub shift_px: [f32; 2],
    /// Adaptive change threshold used.
    pub change_threshold: f32,
    /// Adaptive NDWI water thresholds (before, after).
    pub water_threshold: [f32; 2],
    /// Polygons flagged.
    pub polygons: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Result of one tile.
pub struct TileResult {
    /// Flagged polygons (WGS84), in deterministic order.
    pub features: Vec<PolyFeature>,
    /// Diagnostics.
    pub report: TileReport,
    /// The reference grid.
    pub grid: Grid,
}

struct Pixels {
    before: Array3<f32>,
    after: Array3<f32>,
    valid: Array2<bool>,
}

fn read_all(reader: TileReader, block_rows: usize) -> Result<Pixels> {
    let (b, a) = reader.read_both(block_rows)?;
    let valid = Zip::from(&b.valid)
        .and(&a.valid)
        .map_collect(|&x, &y| x && y);
    Ok(Pixels {
        before: b.bands,
        after: a.bands,
        valid,
    })
}

/// Misregistration-tolerant appearance and disappearance magnitudes computed
/// in row blocks with a halo, so the same kernel serves a streaming reader;
/// only where `need` is true when it is given (0 elsewhere).
fn magnitude_blocks(
    a: &Array3<f32>,
    b: &Array3<f32>,
    radius: usize,
    block_rows: usize,
    need: Option<&Array2<bool>>,
) -> (Array2<f32>, Array2<f32>) {
    let (_, h, w) = a.dim();
    let mut ap = Array2::<f32>::zeros((h, w));
    let mut va = Array2::<f32>::zeros((h, w));
    for start in (0..h).step_by(block_rows) {
        let end = (start + block_rows).min(h);
        let (h0, h1) = (start.saturating_sub(radius), (end + radius).min(h));
        let (x, y) = change::tolerant_rows(
            a.slice(s![.., h0..h1, ..]),
            b.slice(s![.., h0..h1, ..]),
            radius,
            start - h0..end - h0,
            need.map(|n| n.slice(s![start..end, ..])),
        );
        ap.slice_mut(s![start..end, ..]).assign(&x);
        va.slice_mut(s![start..end, ..]).assign(&y);
    }
    (ap, va)
}

/// Keeps the 4-connected components of `weak` that hold at least one pixel
/// with `strength` above `strong`.
fn hysteresis(
    weak: ndarray::ArrayView2<bool>,
    strength: ndarray::ArrayView2<f32>,
    strong: f32,
) -> Array2<bool> {
    let (lab, comps) = label(weak);
    let mut keep = vec![false; comps.len() + 1];
    Zip::from(&lab).and(&strength).for_each(|&l, &m| {
        if l != 0 && m > strong {
            keep[l as usize] = true;
        }
    });
    lab.mapv(|l| keep[l as usize])
}

/// Why a change from land cover `b` to `a` (later brightness `br_a`) is
/// routine rather than a change of use: water staying water (turbidity,
/// glint), land turning or staying vegetated (phenology, crop cycles,
/// regrowth), land turning into dark bare soil (ploughing, moist soil).
fn seasonal(b: u8, a: u8, br_a: f32, cfg: &Config) -> Option<u8> {
    let wb = b == WATER;
    if wb && a == WATER {
        Some(reason::WATER_TO_WATER)
    } else if !wb && a == VEG {
        Some(reason::VEGETATION)
    } else if a == BARE && !wb && br_a < cfg.dark_soil_brightness {
        Some(reason::DARK_SOIL)
    } else {
        None
    }
}

/// Wall time per pipeline stage, printed with RIVERWATCH_DEBUG.
struct Lap {
    on: bool,
    at: Instant,
}

impl Lap {
    fn mark(&mut self, stage: &str) {
        if self.on {
            eprintln!("TIME {stage:<24} {:8.3} s", self.at.elapsed().as_secs_f64());
        }
        self.at = Instant::now();
    }
}

/// Per-component statistics.
#[derive(Debug, Default, Clone)]
struct Stats {
    n: f64,
    water_b: f64,
    water_a: f64,
    veg_b: f64,
    bare_a: f64,
    built_a: f64,
    br_a: f64,
    br_a2: f64,
    br_b: f64,
    ndvi_b: f64,
    ndvi_a: f64,
    ndwi_b: f64,
    ndwi_a: f64,
    mag: f64,
    /// Mean later-date reflectance per band.
    spec_a: [f64; 5],
    /// Sum of |brightness difference| over 4-adjacent pixel pairs inside the component.
    contrast: f64,
    pairs: f64,
    /// Area over the area of the minimum rotated rectangle.
    rectangularity: f64,
    /// Share of pixels that survive one erosion (3 × 3 cross): 0 for lines
    /// and slivers along edges, near 1 for solid blobs.
    solidity: f64,
    /// Mean earlier-date reflectance per band.
    spec_b: [f64; 5],
    /// Largest appearance magnitude.
    mag_max: f64,
    /// Sum of disappearance magnitude.
    van: f64,
    /// Pixels kept only as shoreline change next to a candidate.
    shore: f64,
    /// Pixels in the flood channel.
    chan: f64,
    /// Sum of the distance (pixels, capped) to the nearest cloud or shadow.
    cloud_d: f64,
}

impl Stats {
    fn mean(&self, v: f64) -> f64 {
        v / self.n.max(1.0)
    }
    /// Mean pixel-to-pixel brightness difference relative to mean brightness.
    fn local_contrast(&self) -> f64 {
        if self.pairs == 0.0 {
            0.0
        } else {
            self.contrast / self.pairs / self.mean(self.br_a).max(1e-3)
        }
    }
    fn texture(&self) -> f64 {
        let m = self.mean(self.br_a);
        (self.mean(self.br_a2) - m * m).max(0.0).sqrt()
    }
}

impl Stats {
    /// Inputs of the confidence model, in the order of
    /// [`crate::model::CONF_FEATURES`].
    fn conf_features(&self, threshold: f64) -> [f64; crate::model::N_CONF] {
        let d: Vec<f64> = (0..4)
            .map(|k| self.mean(self.spec_a[k] - self.spec_b[k]))
            .collect();
        let cloud_d = self.mean(self.cloud_d);
        [
            (self.mean(self.mag) / threshold).max(1e-6).ln(),
            (self.mag_max / threshold).max(1e-6).ln(),
            (self.n / 4.0).ln(),
            self.solidity,
            self.local_contrast().min(1.0),
            self.mean(self.water_b),
            self.mean(self.veg_b),
            self.mean(self.br_a),
            self.rectangularity,
            self.mean(self.water_a),
            self.mean(self.bare_a),
            self.mean(self.built_a),
            self.texture(),
            cloud_d / f64::from(CLOUD_CAP),
            f64::from(u8::from(cloud_d < f64::from(CLOUD_CAP) - 0.1)),
            self.mean(self.van) / threshold,
            self.mean(self.ndvi_a - self.ndvi_b),
            self.mean(self.ndwi_a - self.ndwi_b),
            d[0],
            d[1],
            d[2],
            d[3],
            (d[0] - d[2]).abs(),
        ]
    }

    /// Inputs of the class model, in the order of
    /// [`crate::model::CLASS_FEATURES`] (the last four only with SWIR).
    fn class_features(&self, swir: bool) -> Vec<f64> {
        let m = |v: f64| self.mean(v);
        let (a, b) = (self.spec_a.map(m), self.spec_b.map(m));
        let mut x = vec![
            m(self.water_b),
            m(self.water_a),
            m(self.veg_b),
            m(self.bare_a),
            m(self.built_a),
            m(self.br_a),
            m(self.br_b),
            self.texture(),
            self.local_contrast().min(1.0),
            self.solidity,
            self.rectangularity,
            m(self.ndvi_a),
            m(self.ndvi_b),
            m(self.ndwi_a),
            m(self.ndwi_b),
            a[2] / a[0].max(1e-6),
            (self.n / 4.0).ln(),
            a[0],
            a[1],
            a[2],
            a[3],
            b[0],
            b[1],
            b[2],
            b[3],
        ];
        if swir {
            let nd = |s: f64, n: f64| (s - n) / (s + n).max(1e-9);
            x.extend([a[4], b[4], nd(a[4], a[3]), nd(b[4], b[3])]);
        }
        x
    }
}

/// Cap, in pixels, of the distance to the nearest cloud or shadow that the
/// confidence model reads.
const CLOUD_CAP: u8 = 30;

/// Rounds to `d` decimals (output precision of numeric properties).
pub(crate) fn round(v: f64, d: i32) -> f64 {
    let k = 10f64.powi(d);
    (v * k).round() / k
}

/// Runs the detector on one tile. `emit` writes the intermediate rasters as
/// GeoTIFFs into that folder.
///
/// # Errors
/// Unreadable rasters, grids that differ, too few bands, no valid pixel.
pub fn detect_tile(tile: &Tile, ctx: &Context<'_>, emit: Option<&Path>) -> Result<TileResult> {
    let t0 = Instant::now();
    let debug = std::env::var_os("RIVERWATCH_DEBUG").is_some();
    let mut lap = Lap { on: debug, at: t0 };
    let cfg = ctx.config;
    let reader = TileReader::open(tile, ctx.sensor)?;
    let grid = reader.grid.clone();
    let (h, w) = (grid.height, grid.width);
    let Pixels {
        before,
        after,
        valid,
    } = read_all(reader, cfg.block_rows)?;
    let mut after = after;
    lap.mark("read");
    let n_valid = valid.iter().filter(|&&v| v).count();
    if n_valid == 0 {
        return Err(Error::Tile {
            tile: tile.id.clone(),
            msg: "no pixel is valid on both dates (all nodata or masked)".into(),
        });
    }
    let projected = corridor::project(ctx.segments, &grid.wkt)?;
    let Zones { zone, channel } = corridor::zones(&grid, 0..h, &projected);
    let rules = cfg.method == Method::Rules;
    lap.mark("zones");

    // Clouds and shadows are found on the raw data (haze is far smaller than a
    // cloud's brightening) so normalisation can leave them out of its fit.
    let (mut cs_b, mut cs_a) = if rules {
        landcover::clouds_and_shadows(before.view(), after.view(), valid.view(), cfg)
    } else {
        (Array2::zeros((h, w)), Array2::zeros((h, w)))
    };
    lap.mark("clouds");
    let usable = Zip::from(&valid)
        .and(&cs_b)
        .and(&cs_a)
        .map_collect(|&v, &a, &b| v && a == 0 && b == 0);
    let fit = if rules && cfg.normalize {
        normalize::fit(
            before.view(),
            after.view(),
            usable.view(),
            3,
            4,
            cfg.normalize_keep,
        )
    } else {
        Fit::identity(before.dim().0)
    };
    normalize::apply(after.view_mut(), &fit);
    lap.mark("normalise");
    let (after, valid, shift) = if rules && cfg.coregister {
        let (dx, dy) = crate::coregister::estimate_shift(
            before.view(),
            after.view(),
            usable.view(),
            cfg.coregister_px as f32,
        );
        lap.mark("coregister: estimate");
        let (a, v) = crate::coregister::apply_shift(after.view(), valid.view(), dx, dy);
        (a, v, [dx, dy])
    } else {
        (after, valid, [0.0, 0.0])
    };
    lap.mark("coregister");
    // Thin cloud and haze patches show once haze differences are removed.
    if rules {
        let (tb, ta) = landcover::thin_clouds(before.view(), after.view(), valid.view(), cfg);
        Zip::from(&mut cs_b)
            .and(&tb)
            .for_each(|c, &t| *c = (*c).max(t));
        Zip::from(&mut cs_a)
            .and(&ta)
            .for_each(|c, &t| *c = (*c).max(t));
    }
    lap.mark("thin clouds");
    let usable = Zip::from(&valid)
        .and(&cs_b)
        .and(&cs_a)
        .map_collect(|&v, &a, &b| v && a == 0 && b == 0);
    let ixb = indices_with(before.view(), emit.is_some());
    let ixa = indices_with(after.view(), emit.is_some());
    let zu = Zip::from(&zone).and(&usable).map_collect(|&z, &u| z && u);
    let tw = [
        landcover::water_threshold(ixb.ndwi.view(), zu.view(), cfg.water_ndwi),
        landcover::water_threshold(ixa.ndwi.view(), zu.view(), cfg.water_ndwi),
    ];
    let lc_b = landcover::classify(&ixb, valid.view(), cs_b.view(), tw[0], cfg);
    let lc_a = landcover::classify(&ixa, valid.view(), cs_a.view(), tw[1], cfg);
    lap.mark("indices+landcover");

    // `appeared` drives encroachment (something new is here); the any-change
    // layer also keeps what vanished.
    let (mut appeared, vanished) = if rules {
        // Polygons only come from the management zone, so the magnitude is
        // only needed there, unless the whole-tile layers are written.
        let need = if emit.is_some() { None } else { Some(&zone) };
        magnitude_blocks(
            &before,
            &after,
            cfg.misregistration_px,
            cfg.block_rows,
            need,
        )
    } else {
        let m = change::cva(before.view(), after.view());
        (m.clone(), m)
    };
    lap.mark("magnitude");
    // The change magnitude is the larger of appearance and disappearance.
    let zone_mag = || {
        appeared
            .iter()
            .zip(vanished.iter())
            .zip(zu.iter())
            .filter(|(_, &z)| z)
            .map(|((&a, &b), _)| a.max(b))
    };
    let threshold = if rules {
        otsu(zone_mag(), 0.0, 0.5)
            .unwrap_or(cfg.min_change)
            .clamp(cfg.min_change, cfg.max_change)
    } else {
        otsu(zone_mag(), 0.0, 0.5).unwrap_or(cfg.min_change)
    };
    // Hysteresis: pixels above `hysteresis × threshold` join an object when
    // connected to a pixel above the threshold, so object edges blurred by
    // resampling and weakly changed parts of a site are kept.
    // Sand taken away: a bright bare surface (bar, beach) turned into water
    // or darker wet ground. The new surface often existed nearby (the bar was
    // wet at its edges, the river is next to it), so what counts there is
    // what vanished.
    if rules {
        Zip::indexed(&mut appeared)
            .and(&vanished)
            .par_for_each(|(r, c), ap, &va| {
                let (b, a) = (lc_b[[r, c]], lc_a[[r, c]]);
                let bright_bare = (b == BARE || b == BUILT)
                    && ixb.ndvi[[r, c]] < 0.2
                    && ixb.brightness[[r, c]] > cfg.sand_brightness;
                let darker = (a == WATER || a == BARE)
                    && ixa.brightness[[r, c]] < ixb.brightness[[r, c]] - 0.03;
                if bright_bare && darker {
                    *ap = ap.max(va);
                }
            });
    }
    let weak = threshold * cfg.hysteresis;
    let changed = Zip::from(&appeared)
        .and(&usable)
        .map_collect(|&m, &u| u && m > weak);

    // Why each changed pixel in the zone is or is not a candidate (see
    // `reason`); written with --emit-rasters as `suppressed`.
    let mut why = Array2::<u8>::zeros((h, w));
    let candidates = if rules {
        let wb = lc_b.mapv(|c| c == WATER);
        let land_b = Zip::from(&wb).and(&valid).map_collect(|&w, &v| v && !w);
        // Within k pixels (8-connected, chessboard distance) of land or of
        // water: k dilations with the 3 × 3 square.
        let sh = cfg.shoreline_px;
        let near_land = dilate(land_b.view(), Shape::Square, sh);
        let near_land_bank = dilate(land_b.view(), Shape::Square, cfg.bank_px);
        let near_water = dilate(wb.view(), Shape::Square, sh);
        Zip::indexed(&mut why).par_for_each(|(r, c), k| {
            if !changed[[r, c]] || !zone[[r, c]] {
                return;
            }
            let (b, a) = (lc_b[[r, c]], lc_a[[r, c]]);
            let (wbb, waa) = (b == WATER, a == WATER);
            // Near the earlier shoreline, water turning into wet bare ground
            // (exposed mud, wet sand) or into bank vegetation, or land turning
            // into water or wet ground, is the water level moving (or the bank
            // seen through residual misregistration), not an encroachment. Wet
            // ground: water-saturated sediment absorbs SWIR (MNDWI near 0);
            // without SWIR, NDWI stays closer to 0 than on dry soil.
            let near_shore = if wbb {
                near_land[[r, c]]
            } else {
                near_water[[r, c]]
            };
            // Bank vegetation over earlier water is explained by residual
            // misregistration only right at the bank; further out it is
            // reclaimed land.
            let at_bank = wbb && near_land_bank[[r, c]];
            let wet = match &ixa.mndwi {
                Some(m) => m[[r, c]] > cfg.wet_mndwi,
                None => ixa.ndwi[[r, c]] > cfg.wet_ndwi,
            };
            *k = if let Some(k) = seasonal(b, a, ixa.brightness[[r, c]], cfg) {
                k
            } else if (near_shore
                && (waa || (a == BARE && wet && ixa.brightness[[r, c]] < cfg.built_brightness)))
                || (at_bank && a == VEG)
            {
                reason::SHORELINE
            } else {
                reason::CANDIDATE
            };
        });
        // A water-level change is a long thin band along the shore; a compact
        // blob in that band (a small pond fill, a pit) is an object.
        if cfg.compact_shore {
            let shore = why.mapv(|k| k == reason::SHORELINE);
            let (lab, comps) = label(shore.view());
            let mut promote = vec![false; comps.len() + 1];
            for c in &comps {
                let (bh, bw) = (c.r1 - c.r0, c.c1 - c.c0);
                let compact = bh.max(bw) <= 2 * bh.min(bw)
                    && c.pixels * 2 >= bh * bw
                    && c.pixels >= cfg.min_pixels;
                promote[c.label as usize] = compact;
            }
            Zip::from(&mut why).and(&lab).for_each(|k, &l| {
                if l != 0 && promote[l as usize] {
                    *k = reason::CANDIDATE;
                }
            });
        }
        let cand = why.mapv(|k| k == reason::CANDIDATE);
        let core = hysteresis(cand.view(), appeared.view(), threshold);
        let with_shore = why.mapv(|k| k == reason::CANDIDATE || k == reason::SHORELINE);
        reconstruct(core.view(), with_shore.view(), cfg.shoreline_px + 1)
    } else {
        let cand = Zip::from(&changed).and(&zone).map_collect(|&c, &z| c && z);
        hysteresis(cand.view(), appeared.view(), threshold)
    };
    let mut mask = close(candidates.view(), Shape::Cross, cfg.close_iterations);
    if cfg.open_iterations > 0 {
        mask = open(mask.view(), Shape::Cross, cfg.open_iterations);
    }
    Zip::from(&mut mask)
        .and(&zone)
        .and(&usable)
        .for_each(|m, &z, &u| *m = *m && z && u);

    let (lab, comps) = label(mask.view());
    let eroded = crate::morphology::erode(mask.view(), Shape::Cross, 1);
    let mut core_px = vec![0usize; comps.len() + 1];
    Zip::from(&lab).and(&eroded).for_each(|&l, &e| {
        if e {
            core_px[l as usize] += 1;
        }
    });
    let cloud_px = Zip::from(&cs_a)
        .and(&cs_b)
        .fold(0usize, |n, &a, &b| n + usize::from(a != 0 || b != 0));
    let cloud_d = if cloud_px > 0 {
        let cloud = Zip::from(&cs_a)
            .and(&cs_b)
            .map_collect(|&a, &b| a != 0 || b != 0);
        distance_to(cloud.view(), CLOUD_CAP)
    } else {
        Array2::from_elem((h, w), CLOUD_CAP)
    };
    let extra = Extra {
        vanished: &vanished,
        why: &why,
        channel: &channel,
        cloud_d: &cloud_d,
    };
    let index = SegmentIndex::new(ctx.segments, &projected);
    let to_wgs = Transformer::to_wgs84(&grid.wkt)?;
    let pixel_area = grid.pixel_area();
    // Class code and confidence per reported component label, for the
    // rasters written with --emit-rasters.
    let mut reported: Vec<(u8, f32)> = vec![(0, 0.0); comps.len() + 1];
    let mut features = Vec::new();
    lap.mark("rules+morphology+labels");
    for comp in &comps {
        if comp.pixels < cfg.min_pixels || (comp.pixels as f64) * pixel_area < cfg.min_area_m2 {
            continue;
        }
        let (mut st, pts) = stats(
            comp, &lab, &grid, &lc_b, &lc_a, &ixb, &ixa, &appeared, &before, &after, &extra,
        );
        st.solidity = core_px[comp.label as usize] as f64 / comp.pixels as f64;
        let poly = trace(lab.view(), comp, &grid, 0);
        st.rectangularity = {
            use geo::MinimumRotatedRect;
            poly.minimum_rotated_rect()
                .map_or(0.0, |r| poly.unsigned_area() / r.unsigned_area().max(1e-9))
        };
        let swir = ixa.mndwi.is_some();
        let xc = st.conf_features(threshold as f64);
        let xk = st.class_features(swir);
        let confidence = crate::model::confidence(&xc, swir);
        // The textbook baseline reports every object above the mapping unit.
        if rules && confidence < cfg.min_confidence {
            continue;
        }
        let class = crate::model::class(&xk, swir);
        let mut mp = MultiPolygon(vec![poly]);
        if cfg.simplify_m > 0.0 {
            let sm = mp.simplify_vw_preserve(cfg.simplify_m * cfg.simplify_m);
            if sm.is_valid() && sm.unsigned_area() > 0.0 {
                mp = sm;
            }
        }
        let area = mp.unsigned_area();
        if area < cfg.min_area_m2 {
            continue;
        }
        let Some(near) = index.nearest(&mp) else {
            continue;
        };
        let seg = &ctx.segments[near.segment];
        let cname = CLASSES[class];
        let obstructs = blocks_flow(cname) && index.channel_share(near.segment, &pts) >= 0.5;
        if debug {
            // One line per component with the model inputs, read by
            // scripts/fit_models.py.
            eprintln!(
                "DEBUG {}",
                json!({"id": format!("{}-r{:05}c{:05}", tile.id, comp.r0, (comp.c0..comp.c1).find(|&c| lab[[comp.r0, c]] == comp.label).unwrap_or(comp.c0)),
                    "n": comp.pixels, "class": cname, "conf": confidence, "xc": xc, "xk": xk})
            );
        }
        reported[comp.label as usize] = (class as u8 + 1, confidence as f32);
        let link = chief_link(ctx.registry, &seg.chief_id);
        let mut wgs = mp;
        to_wgs.apply_geom(&mut wgs)?;
        // Canonical precision now, so a feature read back from a file (on
        // resume) is identical to one kept in memory.
        crate::io::vector::round_geometry(&mut wgs);
        let first = (
            comp.r0,
            (comp.c0..comp.c1)
                .find(|&c| lab[[comp.r0, c]] == comp.label)
                .unwrap_or(comp.c0),
        );
        let props = json!({
            "id": format!("{}-r{:05}c{:05}", tile.id, first.0, first.1),
            "class": cname,
            "obstructs_flood_channel": obstructs,
            "confidence": round(confidence, 3),
            "area_m2": round(area, 2),
            "tile": tile.id,
            "before_date": tile.before.date,
            "after_date": tile.after.date,
            "river": seg.river,
            "segment_id": seg.id,
            "distance_m": round(near.distance_m, 2),
            "chief_id": link.chief_id,
            "chief_level": link.chief_level,
            "chief_title": link.chief_title,
            "chain": link.chain,
            "city": link.city,
            "county": link.county,
            "evidence": {
                "ndvi_before": round(st.mean(st.ndvi_b), 4),
                "ndvi_after": round(st.mean(st.ndvi_a), 4),
                "ndwi_before": round(st.mean(st.ndwi_b), 4),
                "ndwi_after": round(st.mean(st.ndwi_a), 4),
                "change_magnitude": round(st.mean(st.mag), 4),
                "pixels": comp.pixels,
            },
        });
        let props = match props {
            Value::Object(m) => m,
            _ => Default::default(),
        };
        features.push(PolyFeature {
            geometry: wgs,
            props,
        });
    }
    lap.mark("polygons+link");
    if let Some(dir) = emit {
        let p = |name: &str| dir.join(format!("{}_{name}.tif", tile.id));
        let mag = Zip::from(&appeared)
            .and(&vanished)
            .map_collect(|&a, &b| a.max(b));
        write_geotiff(&p("landcover_before"), &grid, &[lc_b.view()], None)?;
        write_geotiff(&p("landcover_after"), &grid, &[lc_a.view()], None)?;
        write_geotiff(&p("change_magnitude"), &grid, &[mag.view()], None)?;
        let class_raster = lab.mapv(|l| reported[l as usize].0);
        let conf_raster = lab.mapv(|l| reported[l as usize].1);
        write_geotiff(&p("change_class"), &grid, &[class_raster.view()], None)?;
        write_geotiff(&p("confidence"), &grid, &[conf_raster.view()], None)?;
        // Indices per date: NDVI, NDWI and, with SWIR, MNDWI, NDBI, BSI.
        for (name, ix) in [("indices_before", &ixb), ("indices_after", &ixa)] {
            let mut bands = vec![ix.ndvi.view(), ix.ndwi.view()];
            bands.extend(
                [&ix.mndwi, &ix.ndbi, &ix.bsi]
                    .into_iter()
                    .flatten()
                    .map(|a| a.view()),
            );
            write_geotiff(&p(name), &grid, &bands, None)?;
        }
        // Any change, over the whole tile: every usable pixel above the
        // threshold that is not a seasonal change (phenology, ploughing,
        // turbidity), closed, in patches of at least the mapping unit. It
        // keeps what the rules chose not to report for other reasons
        // (water-level change, low confidence, outside the zone).
        let any = Zip::indexed(&mag)
            .and(&usable)
            .par_map_collect(|(r, c), &m, &u| {
                u && m > threshold
                    && seasonal(lc_b[[r, c]], lc_a[[r, c]], ixa.brightness[[r, c]], cfg).is_none()
            });
        let closed = close(any.view(), Shape::Cross, cfg.close_iterations);
        let (alab, acomps) = label(closed.view());
        let big: Vec<bool> = std::iter::once(false)
            .chain(acomps.iter().map(|c| c.pixels >= cfg.min_pixels))
            .collect();
        let any_change = Zip::from(&alab)
            .and(&usable)
            .map_collect(|&l, &u| u && big[l as usize]);
        write_geotiff(
            &p("any_change"),
            &grid,
            &[any_change.mapv(u8::from).view()],
            None,
        )?;
        write_geotiff(&p("suppressed"), &grid, &[why.view()], None)?;
        let zones_u8 = Zip::from(&zone)
            .and(&channel)
            .map_collect(|&z, &c| u8::from(z) + u8::from(c));
        write_geotiff(&p("zones"), &grid, &[zones_u8.view()], None)?;
    }
    let n = (h * w) as f64;
    let report = TileReport {
        tile: tile.id.clone(),
        size: [w, h],
        valid_share: round(n_valid as f64 / n, 4),
        cloud_share: round(cloud_px as f64 / n, 4),
        zone_share: round(zone.iter().filter(|&&z| z).count() as f64 / n, 4),
        normalization: Fit {
            gain: fit
                .gain
                .iter()
                .map(|&g| round(g as f64, 4) as f32)
                .collect(),
            offset: fit
                .offset
                .iter()
                .map(|&o| round(o as f64, 4) as f32)
                .collect(),
            samples: fit.samples,
        },
        shift_px: shift,
        change_threshold: round(threshold as f64, 4) as f32,
        water_threshold: [round(tw[0] as f64, 3) as f32, round(tw[1] as f64, 3) as f32],
        polygons: features.len(),
        seconds: t0.elapsed().as_secs_f64(),
    };
    Ok(TileResult {
        features,
        report,
        grid,
    })
}

/// Further per-pixel layers the component statistics read.
struct Extra<'a> {
    vanished: &'a Array2<f32>,
    why: &'a Array2<u8>,
    channel: &'a Array2<bool>,
    cloud_d: &'a Array2<u8>,
}

#[allow(clippy::too_many_arguments)]
fn stats(
    comp: &Component,
    lab: &Array2<u32>,
    grid: &Grid,
    lc_b: &Array2<u8>,
    lc_a: &Array2<u8>,
    ixb: &Indices,
    ixa: &Indices,
    mag: &Array2<f32>,
    before: &Array3<f32>,
    after: &Array3<f32>,
    ex: &Extra<'_>,
) -> (Stats, Vec<Coord<f64>>) {
    let mut st = Stats::default();
    let mut pts = Vec::with_capacity(comp.pixels);
    for r in comp.r0..comp.r1 {
        for c in comp.c0..comp.c1 {
            if lab[[r, c]] != comp.label {
                continue;
            }
            let (b, a) = (lc_b[[r, c]], lc_a[[r, c]]);
            let bra = ixa.brightness[[r, c]] as f64;
            st.n += 1.0;
            st.water_b += f64::from(u8::from(b == WATER));
            st.water_a += f64::from(u8::from(a == WATER));
            st.veg_b += f64::from(u8::from(b == VEG));
            st.bare_a += f64::from(u8::from(a == BARE));
            st.built_a += f64::from(u8::from(a == BUILT));
            st.br_a += bra;
            st.br_a2 += bra * bra;
            st.br_b += ixb.brightness[[r, c]] as f64;
            st.ndvi_b += ixb.ndvi[[r, c]] as f64;
            st.ndvi_a += ixa.ndvi[[r, c]] as f64;
            st.ndwi_b += ixb.ndwi[[r, c]] as f64;
            st.ndwi_a += ixa.ndwi[[r, c]] as f64;
            st.mag += mag[[r, c]] as f64;
            for (k, v) in st.spec_a.iter_mut().enumerate().take(after.dim().0) {
                *v += after[[k, r, c]] as f64;
            }
            for (k, v) in st.spec_b.iter_mut().enumerate().take(before.dim().0) {
                *v += before[[k, r, c]] as f64;
            }
            st.mag_max = st.mag_max.max(mag[[r, c]] as f64);
            st.van += ex.vanished[[r, c]] as f64;
            st.shore += f64::from(u8::from(ex.why[[r, c]] == reason::SHORELINE));
            st.chan += f64::from(u8::from(ex.channel[[r, c]]));
            st.cloud_d += ex.cloud_d[[r, c]] as f64;
            for (rr, cc) in [(r, c + 1), (r + 1, c)] {
                if rr < lab.nrows() && cc < lab.ncols() && lab[[rr, cc]] == comp.label {
                    st.contrast += (bra - ixa.brightness[[rr, cc]] as f64).abs();
                    st.pairs += 1.0;
                }
            }
            let (x, y) = grid.to_map(c as f64 + 0.5, r as f64 + 0.5);
            pts.push(Coord { x, y });
        }
    }
    (st, pts)
}
