//! The detection pipeline for one scene, as named stages:
//!
//! 1. [`global`]: clouds and shadows, radiometric normalisation, the global
//!    shift, thin clouds (a pass over the whole scene);
//! 2. [`cover`]: indices and land cover of both dates;
//! 3. [`blocks`]: the misregistration-tolerant change magnitude in row blocks
//!    with a halo, and the adaptive threshold;
//! 4. [`rules`]: from-to rules (routine change suppressed), clean-up;
//! 5. [`objects`]: components, [`features`], [`models`], polygons, [`link`]
//!    (segment, chief, obstruction) into typed [`Detection`] records.
//!
//! [`detect_scene`] runs them on arrays already in memory; [`detect_tile`]
//! reads a tile pair through `io` first. Observers ([`taps`]) see every
//! stage and never change what is computed.

pub mod blocks;
pub mod cover;
pub mod features;
pub mod global;
pub mod link;
pub mod models;
pub mod objects;
pub mod recheck;
pub mod rows;
pub mod rules;
pub mod stream;
pub mod taps;
pub mod trust;

use crate::domain::chiefs::Registry;
use crate::domain::config::{Config, Method};
use crate::domain::detection::{round, Detection};
use crate::domain::grid::Grid;
use crate::domain::manifest::{Sensor, Tile};
use crate::domain::rivers::Segment;
use crate::error::{Error, Result};
use crate::io::crs::{project, Transformer};
use crate::io::raster::TileReader;
use crate::kernels::label::label;
use crate::kernels::morphology::distance_to;
use crate::kernels::normalize::Fit;
use crate::kernels::zones::{zones, Zones};
use ndarray::{Array2, Array3, Zip};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use taps::{SceneLayers, Tap};

/// Everything a scene needs besides its own pixels.
pub struct Context<'a> {
    /// River segments (sorted by id). With none, the whole scene is the
    /// management zone and records are not linked to a segment or chief:
    /// the research mode of `detect --scene`.
    pub segments: &'a [Segment],
    /// Chief registry.
    pub registry: &'a Registry,
    /// Settings.
    pub config: &'a Config,
    /// When a scene is streamed in row blocks instead of read whole.
    pub stream: stream::StreamOptions,
    /// The segments projected and indexed per CRS, shared by the tiles of
    /// a run (`&Indexes::default()` for a fresh cache).
    pub indexes: &'a link::Indexes,
    /// A change model to use instead of the built-in one
    /// ([`crate::change_model`]), e.g. a refitted one; `None` normally.
    pub change_model: Option<&'a crate::kernels::changeprob::TreeModel>,
}

impl Context<'_> {
    /// The change model for a pair with `bands` bands; `None` for a
    /// method without one (the CVA baseline).
    ///
    /// # Errors
    /// A given model whose features do not fit the pair.
    pub fn model(&self, bands: usize) -> Result<Option<&crate::kernels::changeprob::TreeModel>> {
        if self.config.method != Method::Rules {
            return Ok(None);
        }
        match self.change_model {
            Some(m) => {
                m.check(bands).map_err(|e| {
                    Error::Config(format!(
                        "the change model does not fit this {bands}-band pair: {e}"
                    ))
                })?;
                Ok(Some(m))
            }
            None => Ok(Some(models::change_model(bands))),
        }
    }

    /// The segments in the CRS `wkt`, projected and indexed once per run.
    ///
    /// # Errors
    /// A CRS the segments cannot be projected into.
    pub fn indexed(&self, wkt: &str) -> Result<std::sync::Arc<link::Indexed>> {
        self.indexes
            .get(self.segments, wkt, || project(self.segments, wkt))
    }
}

/// Two dates of one scene in memory: reflectance stacks of shape (bands,
/// rows, cols) with bands blue, green, red, NIR and optionally SWIR1, on one
/// grid, and where both dates hold usable data.
pub struct ScenePair {
    /// Earlier (reference) date.
    pub before: Array3<f32>,
    /// Later date.
    pub after: Array3<f32>,
    /// True where both dates hold data (and no given mask says unusable).
    pub valid: Array2<bool>,
    /// The grid both dates are on.
    pub grid: Grid,
    /// What the reader did on the fly (for example a warp from a
    /// geographic CRS), carried into the report.
    pub notes: Vec<String>,
}

/// The names a scene's records carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneInfo {
    /// Tile id.
    pub tile: String,
    /// Earlier date, YYYY-MM-DD.
    pub before_date: String,
    /// Later date, YYYY-MM-DD.
    pub after_date: String,
}

impl SceneInfo {
    /// The names of a manifest tile.
    pub fn of(tile: &Tile) -> SceneInfo {
        SceneInfo {
            tile: tile.id.clone(),
            before_date: tile.before.date.clone(),
            after_date: tile.after.date.clone(),
        }
    }
}

/// What happened in one tile, for logs and the batch summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// What was done on the fly and what to distrust (warps, unusual
    /// radiometry), for the log and the summary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// How the scene was streamed (absent when it was read whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<stream::StreamReport>,
}

/// Result of one scene.
pub struct TileResult {
    /// Flagged polygons, in deterministic order.
    pub detections: Vec<Detection>,
    /// Diagnostics.
    pub report: TileReport,
    /// The reference grid.
    pub grid: Grid,
}

/// Wall time per stage, reported to the taps.
struct Lap(Instant);

impl Lap {
    fn mark(&mut self, tap: &mut dyn Tap, stage: &str) {
        tap.stage(stage, self.0.elapsed().as_secs_f64());
        self.0 = Instant::now();
    }
}

/// Reads both dates of a tile through GDAL into a [`ScenePair`]
/// (reflectance, bands blue, green, red, NIR[, SWIR1]; `valid` where both
/// dates hold data and no mask says unusable).
///
/// # Errors
/// Unreadable rasters, grids that differ, too few bands.
pub fn read_pair(tile: &Tile, sensor: &Sensor, block_rows: usize) -> Result<ScenePair> {
    read_whole(TileReader::open(tile, sensor)?, block_rows)
}

/// Reads both dates of an opened tile whole.
fn read_whole(reader: TileReader, block_rows: usize) -> Result<ScenePair> {
    let grid = reader.grid.clone();
    let notes = reader.notes();
    let (b, a) = reader.read_both(block_rows)?;
    let valid = Zip::from(&b.valid)
        .and(&a.valid)
        .map_collect(|&x, &y| x && y);
    Ok(ScenePair {
        before: b.bands,
        after: a.bands,
        valid,
        grid,
        notes,
    })
}

/// Reads a tile pair through GDAL and runs [`detect_scene`] on it.
///
/// # Errors
/// Unreadable rasters, grids that differ, too few bands, no valid pixel.
pub fn detect_tile(
    tile: &Tile,
    sensor: &Sensor,
    ctx: &Context<'_>,
    tap: &mut dyn Tap,
) -> Result<TileResult> {
    let t0 = Instant::now();
    let reader = TileReader::open(tile, sensor)?;
    if ctx.stream.streams(&reader.grid) && !tap.wants_scene() {
        return stream::detect(reader, tile, sensor, ctx, tap);
    }
    let pair = read_whole(reader, ctx.config.block_rows)?;
    tap.stage("read", t0.elapsed().as_secs_f64());
    if ctx.config.check_radiometry {
        check_radiometry(&pair, &SceneInfo::of(tile), sensor)?;
    }
    let mut r = detect_scene(pair, &SceneInfo::of(tile), ctx, tap)?;
    r.report.seconds = t0.elapsed().as_secs_f64();
    Ok(r)
}

/// Runs the detector on a scene already in memory.
///
/// # Errors
/// No pixel valid on both dates, band stacks that do not match the grid, or
/// a CRS that cannot be transformed to WGS84.
pub fn detect_scene(
    pair: ScenePair,
    info: &SceneInfo,
    ctx: &Context<'_>,
    tap: &mut dyn Tap,
) -> Result<TileResult> {
    let t0 = Instant::now();
    let mut lap = Lap(t0);
    let cfg = ctx.config;
    let ScenePair {
        before,
        after,
        valid,
        grid,
        notes,
    } = pair;
    check_shapes(&before, &after, &valid, &grid, info)?;
    let n_valid = valid.iter().filter(|&&v| v).count();
    if n_valid == 0 {
        return Err(Error::Tile {
            tile: info.tile.clone(),
            msg: "no pixel is valid on both dates (all nodata or masked)".into(),
        });
    }
    let scene_only = ctx.segments.is_empty();
    let indexed = ctx.indexed(&grid.wkt)?;
    let Zones { zone, channel } = if scene_only {
        Zones {
            zone: Array2::from_elem((grid.height, grid.width), true),
            channel: Array2::from_elem((grid.height, grid.width), false),
        }
    } else {
        zones(&grid, 0..grid.height, &indexed.near(&grid))
    };
    lap.mark(tap, "zones");
    let rules = cfg.method == Method::Rules;
    let model = ctx.model(before.dim().0)?;
    let Estimated {
        g,
        cv,
        mut mag,
        threshold,
    } = estimate_whole(before.view(), after, valid, zone.view(), cfg, &mut |s| {
        lap.mark(tap, s)
    });
    if rules {
        rules::sand_removal(&mut mag, &cv, cfg);
    }
    let wet = rules::wet_after(&cv, cfg);
    let masks = [g.valid.view(), g.usable.view(), zone.view()];
    let cand = rules::candidates(
        &rules::RuleInput::of(&cv, &wet, &mag, masks, threshold),
        cfg,
    );
    let mut mask = rules::clean(cand.mask.view(), zone.view(), g.usable.view(), cfg);
    lap.mark(tap, "rules+morphology");
    if let Some(m) = model {
        let x = blocks::ProbabilityInput {
            before: before.view(),
            after: g.after.view(),
            usable: g.usable.view(),
        };
        let p = blocks::probability(&x, mask.view(), m);
        if rules {
            rules::drop_improbable(&mut mask, p.view(), cfg);
        }
        mag.probability = Some(p);
        lap.mark(tap, "change model");
    }
    let (labels, comps) = label(mask.view());
    lap.mark(tap, "labels");
    let (cloud_px, cloud_d) = cloud_distance(&g.clouds_before, &g.clouds_after);
    let linker = link::Linker::new(ctx.segments, &indexed.index, ctx.registry);
    let to_wgs = Transformer::to_wgs84(&grid.wkt)?;
    let layers = features::Layers {
        labels: &labels,
        cover: &cv,
        appeared: &mag.appeared,
        vanished: &mag.vanished,
        probability: mag.probability.as_ref(),
        before: before.view(),
        after: g.after.view(),
        cloud_d: cloud_d.view(),
    };
    let ox = objects::ObjectContext {
        grid: &grid,
        info,
        linker: (!scene_only).then_some(&linker),
        to_wgs: &to_wgs,
        threshold,
        cfg,
        model,
    };
    let objs = objects::detections(mask.view(), &comps, &layers, &ox, tap)?;
    lap.mark(tap, "polygons+link");
    tap.scene(&SceneLayers {
        info,
        grid: &grid,
        before: before.view(),
        after: g.after.view(),
        usable: g.usable.view(),
        zone: zone.view(),
        channel: channel.view(),
        cover: &cv,
        threshold,
        why: cand.why.view(),
        labels: &labels,
        reported: &objs.reported,
        probability: mag.probability.as_ref(),
        config: cfg,
    })?;
    let mut notes = notes;
    notes.extend(trust::normalisation(&g.fit, cfg));
    let reported_px = labels
        .iter()
        .filter(|&&l| l != 0 && objs.reported[l as usize].0 != 0)
        .count();
    let zu_px = cv.zone_usable.iter().filter(|&&z| z).count();
    notes.extend(trust::flagged_share(reported_px, zu_px, cfg));
    notes.extend(trust::too_large(&objs.too_large, grid.pixel_area(), cfg));
    let n = (grid.height * grid.width) as f64;
    let report = TileReport {
        tile: info.tile.clone(),
        size: [grid.width, grid.height],
        valid_share: round(n_valid as f64 / n, 4),
        cloud_share: round(cloud_px as f64 / n, 4),
        zone_share: round(zone.iter().filter(|&&z| z).count() as f64 / n, 4),
        normalization: rounded_fit(&g.fit),
        shift_px: g.shift,
        change_threshold: round(threshold as f64, 4) as f32,
        water_threshold: cv.water_threshold.map(|t| round(t as f64, 3) as f32),
        polygons: objs.detections.len(),
        seconds: t0.elapsed().as_secs_f64(),
        notes,
        stream: None,
    };
    Ok(TileResult {
        detections: objs.detections,
        report,
        grid,
    })
}

/// The scene-wide pass and what it leaves: the global pass (clouds,
/// normalisation, shift, thin clouds), land cover with its water
/// thresholds, the tolerant magnitude inside the zone (before the sand
/// rule) and the change threshold.
struct Estimated {
    g: global::Prepared,
    cv: cover::Cover,
    mag: blocks::Magnitude,
    threshold: f32,
}

/// Runs the scene-wide pass on a scene (or a streamed scene's sample);
/// `mark` is told when each stage ends.
fn estimate_whole(
    before: ndarray::ArrayView3<f32>,
    after: Array3<f32>,
    valid: Array2<bool>,
    zone: ndarray::ArrayView2<bool>,
    cfg: &Config,
    mark: &mut dyn FnMut(&str),
) -> Estimated {
    let rules = cfg.method == Method::Rules;
    let g = global::prepare(before, after, valid, rules, cfg);
    mark("global pass");
    let cv = cover::land_cover(&g.cover_input(before.view(), zone.view()), cfg);
    mark("indices+landcover");
    // Polygons only come from the management zone, so the tolerant
    // magnitude is only computed there.
    let mag = blocks::magnitude(before.view(), g.after.view(), Some(zone.view()), cfg);
    let threshold = blocks::threshold(&mag, cv.zone_usable.view(), cfg);
    mark("magnitude");
    Estimated {
        g,
        cv,
        mag,
        threshold,
    }
}

/// Stops a tile whose reflectance is implausible on either date or across
/// the pair ([`crate::kernels::radiometry`]), saying what to set.
fn check_radiometry(pair: &ScenePair, info: &SceneInfo, sensor: &Sensor) -> Result<()> {
    use crate::kernels::radiometry::{pair_problem, problem, stats};
    let sb = stats(pair.before.view(), pair.valid.view());
    let sa = stats(pair.after.view(), pair.valid.view());
    let found = problem(&sb, sensor.product())
        .map(|p| format!("on the earlier date ({}): {p}", info.before_date))
        .or_else(|| {
            problem(&sa, sensor.product())
                .map(|p| format!("on the later date ({}): {p}", info.after_date))
        })
        .or_else(|| pair_problem(&sb, &sa));
    match found {
        Some(p) => Err(Error::Tile {
            tile: info.tile.clone(),
            msg: format!(
                "implausible reflectance {p} (or set check_radiometry = false in the config if the scene really is like this, e.g. under snow)"
            ),
        }),
        None => Ok(()),
    }
}

/// Band stacks must have 4 or 5 bands and match the grid and each other.
fn check_shapes(
    before: &Array3<f32>,
    after: &Array3<f32>,
    valid: &Array2<bool>,
    grid: &Grid,
    info: &SceneInfo,
) -> Result<()> {
    let want = (grid.height, grid.width);
    let bands = before.dim().0;
    let msg = if before.dim() != after.dim() {
        Some(format!(
            "the dates differ in shape: {:?} vs {:?}",
            before.dim(),
            after.dim()
        ))
    } else if !(4..=5).contains(&bands) {
        Some(format!(
            "{bands} bands; expected 4 (blue, green, red, NIR) or 5 (and SWIR1)"
        ))
    } else if (before.dim().1, before.dim().2) != want || valid.dim() != want {
        Some(format!(
            "arrays of {:?} rows × cols do not match the grid's {want:?}",
            valid.dim()
        ))
    } else {
        None
    };
    match msg {
        Some(msg) => Err(Error::Tile {
            tile: info.tile.clone(),
            msg,
        }),
        None => Ok(()),
    }
}

/// Pixels under cloud or shadow on either date, and the distance to them,
/// capped at [`features::CLOUD_CAP`].
fn cloud_distance(cs_b: &Array2<u8>, cs_a: &Array2<u8>) -> (usize, Array2<u8>) {
    let cloud_px = Zip::from(cs_a)
        .and(cs_b)
        .fold(0usize, |n, &a, &b| n + usize::from(a != 0 || b != 0));
    let cap = features::CLOUD_CAP;
    let d = if cloud_px > 0 {
        let cloud = Zip::from(cs_a)
            .and(cs_b)
            .map_collect(|&a, &b| a != 0 || b != 0);
        distance_to(cloud.view(), cap)
    } else {
        Array2::from_elem(cs_a.dim(), cap)
    };
    (cloud_px, d)
}

fn rounded_fit(fit: &Fit) -> Fit {
    Fit {
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
        rejected: fit.rejected.clone(),
        weak: fit.weak.clone(),
        irmad_weak: fit.irmad_weak.clone(),
        quality: fit.quality.clone(),
    }
}
