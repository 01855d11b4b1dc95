//! Components to detection records: connected components of the cleaned
//! mask, the minimum mapping unit, features, the two models, polygons,
//! linking, and the record itself.

use super::features::{self, Layers, Stats};
use super::link::Linker;
use super::models;
use super::taps::{ComponentRecord, Tap};
use super::SceneInfo;
use crate::domain::class::ChangeClass;
use crate::domain::config::Config;
use crate::domain::detection::{round, Detection, Evidence};
use crate::domain::grid::Grid;
use crate::error::Result;
use crate::io::crs::Transformer;
use crate::io::vector::round_geometry;
use crate::kernels::changeprob::TreeModel;
use crate::kernels::label::Component;
use crate::kernels::morphology::{erode, Shape};
use crate::kernels::polygons::trace;
use geo::{Area, Coord, MinimumRotatedRect, MultiPolygon, Polygon, SimplifyVwPreserve, Validation};
use ndarray::{Array2, ArrayView2, Zip};

/// What the object stage needs besides the per-pixel layers.
pub struct ObjectContext<'a> {
    /// The scene's grid.
    pub grid: &'a Grid,
    /// Tile id and dates.
    pub info: &'a SceneInfo,
    /// Segment and chief linking in the grid's CRS; `None` in a whole-scene
    /// run without segments (records are then not linked).
    pub linker: Option<&'a Linker<'a>>,
    /// Grid CRS → WGS84.
    pub to_wgs: &'a Transformer,
    /// The change threshold (features are relative to it).
    pub threshold: f32,
    /// Settings.
    pub cfg: &'a Config,
    /// The change model (rules method), whose stack gives the confidence.
    pub model: Option<&'a TreeModel>,
}

/// Detections, and per component label the reported class code and
/// confidence (0 when not reported).
pub struct Objects {
    /// Records in label order (deterministic).
    pub detections: Vec<Detection>,
    /// Per label: (class code, confidence) of reported components.
    pub reported: Vec<(u8, f32)>,
    /// Pixel counts of the components over `max_object_px`, not reported.
    pub too_large: Vec<usize>,
}

/// The component's id: tile, row and column of its first pixel.
fn component_id(tile: &str, comp: &Component, lab: &Array2<u32>) -> String {
    let c0 = (comp.c0..comp.c1)
        .find(|&c| lab[[comp.r0, c]] == comp.label)
        .unwrap_or(comp.c0);
    format!("{tile}-r{:05}c{:05}", comp.r0, c0)
}

/// Pixels per label that survive one erosion with the 3 × 3 cross.
fn core_pixels(mask: ArrayView2<bool>, lab: &Array2<u32>, n: usize) -> Vec<usize> {
    let eroded = erode(mask, Shape::Cross, 1);
    let mut core_px = vec![0usize; n + 1];
    Zip::from(lab).and(&eroded).for_each(|&l, &e| {
        if e {
            core_px[l as usize] += 1;
        }
    });
    core_px
}

fn rectangularity(poly: &Polygon<f64>) -> f64 {
    poly.minimum_rotated_rect()
        .map_or(0.0, |r| poly.unsigned_area() / r.unsigned_area().max(1e-9))
}

/// Simplifies when configured, keeping the exact outline if simplification
/// breaks validity or empties the polygon.
fn simplified(poly: Polygon<f64>, simplify_m: f64) -> MultiPolygon<f64> {
    let mp = MultiPolygon(vec![poly]);
    if simplify_m > 0.0 {
        let sm = mp.simplify_vw_preserve(simplify_m * simplify_m);
        if sm.is_valid() && sm.unsigned_area() > 0.0 {
            return sm;
        }
    }
    mp
}

/// Whether a component of `pixels` pixels reaches the mapping unit.
pub fn reaches_unit(pixels: usize, grid: &Grid, cfg: &Config) -> bool {
    pixels >= cfg.min_pixels && (pixels as f64) * grid.pixel_area() >= cfg.min_area_m2
}

/// One traced component, ready for the models: its statistics (solidity
/// set), pixel count, id, outline in the grid's CRS and pixel centres.
pub struct Traced {
    /// Statistics over its pixels.
    pub stats: Stats,
    /// Pixels.
    pub pixels: usize,
    /// Id: tile, row and column of its first pixel.
    pub id: String,
    /// Outline (pixel edges), grid CRS.
    pub outline: Polygon<f64>,
    /// Pixel centres, grid CRS.
    pub centres: Vec<Coord<f64>>,
}

/// Every component of `mask` (labelled in `layers.labels`) that passes the
/// mapping unit and the confidence floor, as a detection record.
///
/// # Errors
/// When a polygon cannot be transformed to WGS84.
pub fn detections(
    mask: ArrayView2<bool>,
    comps: &[Component],
    layers: &Layers<'_>,
    x: &ObjectContext<'_>,
    tap: &mut dyn Tap,
) -> Result<Objects> {
    let core_px = core_pixels(mask, layers.labels, comps.len());
    let mut reported: Vec<(u8, f32)> = vec![(0, 0.0); comps.len() + 1];
    let mut out = Vec::new();
    let swir = layers.cover.after.mndwi.is_some();
    let mut too_large = Vec::new();
    for comp in comps {
        if !reaches_unit(comp.pixels, x.grid, x.cfg) {
            continue;
        }
        if comp.pixels > x.cfg.max_object_px {
            too_large.push(comp.pixels);
            continue;
        }
        let (mut st, pts) = features::stats(comp, layers, x.grid);
        st.solidity = core_px[comp.label as usize] as f64 / comp.pixels as f64;
        let t = Traced {
            stats: st,
            pixels: comp.pixels,
            id: component_id(&x.info.tile, comp, layers.labels),
            outline: trace(layers.labels.view(), comp, x.grid, 0),
            centres: pts,
        };
        if let Some((d, code, conf)) = finish(t, swir, x, tap)? {
            reported[comp.label as usize] = (code, conf);
            out.push(d);
        }
    }
    Ok(Objects {
        detections: out,
        reported,
        too_large,
    })
}

/// Scores, simplifies, links and records one traced component; `None` when
/// it is under the confidence floor or the mapping unit after
/// simplification, or cannot be linked. Also returns the class code and
/// confidence for the scene layers.
///
/// # Errors
/// When the polygon cannot be transformed to WGS84.
pub fn finish(
    t: Traced,
    swir: bool,
    x: &ObjectContext<'_>,
    tap: &mut dyn Tap,
) -> Result<Option<(Detection, u8, f32)>> {
    let cfg = x.cfg;
    let mut st = t.stats;
    st.rectangularity = rectangularity(&t.outline);
    let Some((class, confidence, rec)) = score(&st, t.pixels, t.id, swir, x) else {
        return Ok(None);
    };
    let mp = simplified(t.outline, cfg.simplify_m);
    let area = mp.unsigned_area();
    if area < cfg.min_area_m2 {
        return Ok(None);
    }
    let pts = t.centres;
    let link = match x.linker {
        Some(l) => match l.link(&mp, class, || pts) {
            Some(link) => Some(link),
            None => return Ok(None),
        },
        None => None,
    };
    tap.component(&rec);
    let d = record(rec.id, class, confidence, area, &st, t.pixels, mp, link, x)?;
    Ok(Some((d, class.code(), confidence as f32)))
}

/// Confidence and class from the models; `None` under the confidence floor
/// (the CVA baseline reports every object above the mapping unit).
fn score(
    st: &Stats,
    pixels: usize,
    id: String,
    swir: bool,
    x: &ObjectContext<'_>,
) -> Option<(ChangeClass, f64, ComponentRecord)> {
    let xc = features::conf_features(st, x.threshold as f64);
    let xk = features::class_features(st, swir);
    let rules = x.cfg.method == crate::domain::config::Method::Rules;
    // With the change model the confidence stacks the component model's
    // score with the component's mean change probability (fitted on real
    // and synthetic components); the CVA baseline keeps the component
    // model's score as information.
    let component_score = models::confidence(&xc, swir);
    let mean_probability = st.mean_probability();
    let confidence = match x.model {
        Some(m) if rules => m.confidence.map_or(mean_probability, |s| {
            s.confidence(component_score, mean_probability)
        }),
        _ => component_score,
    };
    if rules && confidence < x.cfg.min_confidence {
        return None;
    }
    let class = models::class(&xk, swir);
    let rec = ComponentRecord {
        id,
        tile: x.info.tile.clone(),
        pixels,
        class,
        confidence,
        component_score,
        mean_probability,
        conf_features: xc.to_vec(),
        class_features: xk,
    };
    Some((class, confidence, rec))
}

#[allow(clippy::too_many_arguments)]
fn record(
    id: String,
    class: ChangeClass,
    confidence: f64,
    area: f64,
    st: &Stats,
    pixels: usize,
    mp: MultiPolygon<f64>,
    link: Option<super::link::Link>,
    x: &ObjectContext<'_>,
) -> Result<Detection> {
    let mut wgs = mp.clone();
    x.to_wgs.apply_geom(&mut wgs)?;
    // Canonical precision now, so a record read back from a file (on
    // resume) is identical to one kept in memory.
    round_geometry(&mut wgs);
    let [ndvi_b, ndvi_a, ndwi_b, ndwi_a, mag] = st.evidence_means();
    Ok(Detection {
        id,
        class,
        obstructs_flood_channel: link.as_ref().is_some_and(|l| l.obstructs),
        confidence: round(confidence, 3),
        area_m2: round(area, 2),
        tile: x.info.tile.clone(),
        tiles: Vec::new(),
        before_date: x.info.before_date.clone(),
        after_date: x.info.after_date.clone(),
        segment: link.as_ref().map(|l| l.segment.clone()),
        chief: link.map(|l| l.chief),
        evidence: Evidence {
            ndvi_before: round(ndvi_b, 4),
            ndvi_after: round(ndvi_a, 4),
            ndwi_before: round(ndwi_b, 4),
            ndwi_after: round(ndwi_a, 4),
            change_magnitude: round(mag, 4),
            pixels: pixels as u64,
        },
        case: None,
        geometry: wgs,
        geometry_crs: Some(mp),
    })
}
