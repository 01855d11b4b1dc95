//! Whole scenes in bounded memory.
//!
//! A scene larger than [`StreamOptions::in_memory_px`] is not read whole:
//!
//! 0. **Read once.** When the zone's rows, with the reach of the stage
//!    chain, hold at most [`StreamOptions::preload_px`] pixels, both dates
//!    are read there once, full rows, and the sample and every strip take
//!    their windows from memory (the same values as reading each window).
//! 1. **Global pass on a sample.** The scene-wide estimates (radiometric
//!    fit, sub-pixel shift, shadow cast offsets, water thresholds, change
//!    threshold) come from the whole scene when it is at most
//!    [`StreamOptions::sample_px`] pixels, else from bands of rows spread
//!    evenly over the part of the scene near a river, up to four from each
//!    storage block row read (a tiled file decodes whole tile rows).
//! 2. **Row blocks.** Blocks of [`StreamOptions::block_rows`] rows that no
//!    management zone reaches are neither read nor computed. The others
//!    run through the same stage functions as the whole-scene path, with
//!    the estimates fixed, each stage on a window of rows with its own halo
//!    (every stage is local: see [`Halos`]); each stage's output is kept in
//!    a rolling buffer ([`super::rows::Buf`]) only as long as a later stage
//!    reads it.
//! 3. **Stitching.** Flagged pixels are labelled row by row with union-find;
//!    a component is finished when a row passes without touching it, then
//!    measured, traced and recorded exactly as in the whole-scene path.
//!
//! For a scene within the sample budget the output is identical to the
//! whole-scene path, whatever the block size (a test checks it with
//! 64-row blocks).

use super::blocks::{self, Magnitude};
use super::cover::{self, Cover};
use super::features::{self, PixelValues, RowSources, Stats};
use super::objects::{self, ObjectContext, Traced};
use super::rows::Buf;
use super::taps::Tap;
use super::{global, link, rules, trust, Context, SceneInfo, ScenePair, TileReport, TileResult};
use crate::domain::config::{Config, Method};
use crate::domain::detection::{round, Detection};
use crate::domain::grid::Grid;
use crate::domain::manifest::{Sensor, Tile};
use crate::domain::rivers::Projected;
use crate::error::{Error, Result};
use crate::io::crs::Transformer;
use crate::io::raster::{Block, DateReader, TileReader};
use crate::kernels::changeprob::{self, TreeModel};
use crate::kernels::clouds::{self, Cast};
use crate::kernels::label::Component;
use crate::kernels::normalize::Fit;
use crate::kernels::polygons::trace_at;
use crate::kernels::threshold::HYSTERESIS_REACH;
use crate::kernels::zones::zones_window;
use geo::{BoundingRect, Coord};
use ndarray::{concatenate, s, Array2, Array3, ArrayView2, Axis, Zip};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::mpsc::SyncSender;
use std::time::Instant;

/// When and how a scene is streamed. Not part of [`Config`]: it changes how
/// much memory a run takes, never what it finds (for scenes within
/// `sample_px`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamOptions {
    /// Rows per block.
    pub block_rows: usize,
    /// Scenes of at most this many pixels run whole, in memory.
    pub in_memory_px: usize,
    /// The global pass reads the whole scene up to this many pixels, else a
    /// sample of blocks of this size in all.
    pub sample_px: usize,
    /// A streamed scene whose zone rows (with the reach of the stage chain)
    /// hold at most this many pixels is read once, whole rows, before the
    /// global pass: the sample and every strip take their windows from
    /// memory instead of decoding the same tiles twice. 0: never.
    #[serde(default = "default_preload_px")]
    pub preload_px: usize,
    /// Vertical strips computed side by side (each with its own GDAL
    /// handles and a halo of columns, each streaming on its own thread);
    /// 0: four per worker thread, at most one per 1024 columns. Strips are
    /// cut so each holds about the same number of zone blocks. The output
    /// is the same for any number.
    #[serde(default)]
    pub strips: usize,
}

impl Default for StreamOptions {
    /// 112-row blocks (a 10980² pair in four strips peaks at 944 MiB
    /// with them, 1003 MiB with 128 rows); scenes up to the sample budget
    /// run whole (about 134 bytes per pixel, so under 450 MB: streaming one
    /// would estimate on all of it and then compute it again, 1024²: 0.47
    /// s against 0.29 s whole), larger ones stream (2048²: 0.63 s streamed,
    /// 0.83 s whole); the global pass reads at most 3 Mpx (about 420 MB; a
    /// sample of millions of pixels fixes a gain or a threshold to well
    /// under the rounding of the report).
    fn default() -> Self {
        StreamOptions {
            block_rows: 112,
            in_memory_px: 3 << 20,
            sample_px: 3 << 20,
            preload_px: default_preload_px(),
            strips: 0,
        }
    }
}

/// 8 Mpx: both dates' reflectance and validity at 42 bytes a pixel, so at
/// most about 340 MB on top of the strips' buffers.
fn default_preload_px() -> usize {
    8 << 20
}

impl StreamOptions {
    /// Whether a scene of this grid is streamed.
    pub fn streams(&self, grid: &Grid) -> bool {
        grid.width * grid.height > self.in_memory_px
    }
}

/// How the scene was streamed, for the tile report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamReport {
    /// Rows per block.
    pub block_rows: usize,
    /// Blocks in the scene.
    pub blocks: usize,
    /// Blocks some management zone reaches (computed).
    pub blocks_in_zone: usize,
    /// Share of the scene's pixels read (the blocks a corridor reaches in
    /// each strip's columns, and their row halos). A streamed report's
    /// valid and cloud shares are over the management zone.
    pub read_share: f64,
    /// Rows the global pass estimated from.
    pub sample_rows: usize,
    /// Vertical strips computed side by side.
    #[serde(default)]
    pub strips: usize,
}

/// Rows of the bands the global pass samples from a scene larger than the
/// sample budget (fixed, so the sample does not depend on the block size).
/// Thin bands spread the same budget over more of the scene: against the
/// whole-scene run on the synth 5490² and 10980² pairs, 16-row bands gave
/// object F1 0.823 and 0.568 (whole scene 0.823 and 0.576), 64-row bands
/// 0.817 and 0.530 (they put the 10980² pair's x shift at 0 px where the
/// whole scene finds 1.25). Taking up to [`BANDS_PER_BLOCK_ROW`] bands from
/// each 256-row tile row read (instead of one) gave 0.826 and 0.542 (one per
/// tile row: 0.827 and 0.530) with the global pass 2.07 → 1.29 s and
/// 1.30 → 1.09 s.
pub const SAMPLE_BAND_ROWS: usize = 16;

/// What the global pass fixes for every block.
#[derive(Debug, Clone)]
pub struct Params {
    /// Radiometric fit, later → earlier.
    pub fit: Fit,
    /// Shift of the later image, pixels (x, y).
    pub shift: [f32; 2],
    /// Shadow cast offsets per date.
    pub cast: Cast,
    /// NDWI water thresholds (before, after).
    pub water: [f32; 2],
    /// Change threshold.
    pub threshold: f32,
}

/// Estimates the scene-wide parameters on a scene (or a sample of one) in
/// memory, with the same functions as the whole-scene path.
pub fn estimate(pair: ScenePair, zone: ArrayView2<bool>, cfg: &Config) -> Params {
    let ScenePair {
        before,
        after,
        valid,
        ..
    } = pair;
    let e = super::estimate_whole(before.view(), after, valid, zone, cfg, &mut |_| {});
    Params {
        threshold: e.threshold,
        water: e.cv.water_threshold,
        fit: e.g.fit,
        shift: e.g.shift,
        cast: e.g.cast,
    }
}

/// How far each stage reads beyond the rows it computes (its halo), given
/// the settings and the estimated shift and cast offsets. Each is a bound
/// on the stage's dependence, so a window with this halo gives exactly the
/// whole-scene values on its inner rows.
#[derive(Debug, Clone, Copy)]
pub struct Halos {
    /// Clouds and shadows on raw data: the core's size test (a component of
    /// `m` pixels spans fewer than `m` rows), growth, dilation, the cast
    /// offset and the shadow's own growth and dilations.
    pub clouds: usize,
    /// Normalisation and the bilinear shift.
    pub align: usize,
    /// Thin clouds: the core's size test (2 m), growth, dilation.
    pub thin: usize,
    /// Land cover and the misregistration-tolerant magnitude (the change
    /// model, which reads [`changeprob::HALO`] rows around a flagged
    /// pixel, runs after the rules on buffers that hold them).
    pub cover: usize,
    /// Rules and clean-up: shoreline dilations, compact-shore extent,
    /// hysteresis reach, shoreline reconstruction, closing and opening.
    pub mask: usize,
    /// Distance to cloud (capped).
    pub cloud_d: usize,
}

impl Halos {
    /// The halos across rows for these settings and estimates.
    pub fn of(cfg: &Config, p: &Params) -> Halos {
        Halos::along(cfg, p, 1)
    }

    /// The halos across columns: the same stages, with the horizontal
    /// shadow cast offset and shift.
    pub fn across(cfg: &Config, p: &Params) -> Halos {
        Halos::along(cfg, p, 0)
    }

    /// The halos along axis `k` of the cast offsets and the shift (0: x,
    /// columns; 1: y, rows).
    fn along(cfg: &Config, p: &Params, k: usize) -> Halos {
        let rules = cfg.method == Method::Rules;
        let m = cfg.cloud_min_pixels.max(1);
        let dy = p
            .cast
            .iter()
            .flatten()
            .map(|o| if k == 0 { o.0 } else { o.1 }.unsigned_abs())
            .max()
            .unwrap_or(0);
        let sh = (cfg.shoreline_px + cfg.rising_water_px).max(cfg.bank_px);
        let morph = 2 * cfg.close_iterations + 2 * cfg.open_iterations;
        Halos {
            clouds: if rules {
                (m - 1) + cfg.cloud_grow_px + 3 + dy + 7 + 1
            } else {
                0
            },
            align: if rules && cfg.coregister {
                p.shift[k].abs().ceil() as usize + 2
            } else {
                0
            },
            thin: if rules {
                (2 * m - 1) + cfg.cloud_grow_px + 2 + 1
            } else {
                0
            },
            cover: if rules { cfg.misregistration_px } else { 0 },
            mask: if rules {
                sh + (rules::COMPACT_SHORE_MAX_PX + 1)
                    + HYSTERESIS_REACH
                    + (cfg.shoreline_px + 1)
                    + morph
                    + 1
            } else {
                HYSTERESIS_REACH + morph + 1
            },
            cloud_d: usize::from(features::CLOUD_CAP) + 1,
        }
    }

    /// Rows each stage's buffer must hold beyond the block, so every later
    /// stage finds its window: (raw, clouds, aligned, thin, cover). The
    /// first (raw) is the reach of the whole stage chain.
    fn leads(&self) -> [usize; 5] {
        let cover = self.mask;
        let thin = (cover + self.cover).max(self.cloud_d).max(self.mask);
        let aligned = (thin + self.thin).max(cover + self.cover);
        let clouds = thin;
        let raw = (clouds + self.clouds)
            .max(aligned + self.align)
            .max(thin + self.thin)
            .max(cover + self.cover)
            .max(self.mask);
        [raw, clouds, aligned, thin, cover]
    }
}

/// The raw rows' lead ([`Halos::leads`]) for any estimate: the shadow
/// cast offsets and the shift at the bounds their searches keep to.
fn lead_bound(cfg: &Config) -> usize {
    let c = cfg.shadow_search_px as isize;
    let p = Params {
        fit: Fit::identity(5),
        shift: [cfg.coregister_px as f32; 2],
        cast: [Some((c, c)); 2],
        water: [0.0; 2],
        threshold: 0.0,
    };
    Halos::of(cfg, &p).leads()[0]
}

/// Rows per chunk of the raw and aligned buffers (the largest): they are
/// read or computed with little or no halo, so small chunks cost nothing
/// and let the rows no stage reads any more go sooner.
const FINE_STEP: usize = 32;

/// Land cover and magnitude rows, with the aligned valid mask, the zone
/// and the wet ground the rules read.
type CoverRows = (Cover, Magnitude, (Array2<bool>, Array2<bool>, Array2<bool>));

/// Raw rows of both dates: reflectance, valid on both, the zone.
type Raw = (Array3<f32>, Array3<f32>, (Array2<bool>, Array2<bool>));

/// The scene's river corridors, with each segment's map y and x ranges
/// grown by its corridor, computed once per scene.
struct Corridors<'a> {
    projected: &'a [Projected],
    spans: Vec<[f64; 2]>,
    xspans: Vec<[f64; 2]>,
    /// No segments: the whole scene is the zone (research mode).
    scene_only: bool,
}

impl<'a> Corridors<'a> {
    fn new(projected: &'a [Projected], scene_only: bool) -> Self {
        let span = |y: bool| {
            projected
                .iter()
                .map(|p| {
                    let r = p.corridor_m.max(p.channel_m);
                    p.lines.bounding_rect().map_or([1.0, 0.0], |b| {
                        let (lo, hi) = if y {
                            (b.min().y, b.max().y)
                        } else {
                            (b.min().x, b.max().x)
                        };
                        [lo - r, hi + r]
                    })
                })
                .collect()
        };
        Corridors {
            projected,
            spans: span(true),
            xspans: span(false),
            scene_only,
        }
    }

    /// Whether segment `i`'s corridor may reach map y range `[y0, y1]`.
    fn reaches(&self, i: usize, [y0, y1]: [f64; 2]) -> bool {
        self.spans[i][0] <= y1 && self.spans[i][1] >= y0
    }

    /// Per block of `b` rows, whether some corridor may reach it (every
    /// block without segments).
    fn blocks(&self, grid: &Grid, b: usize) -> Vec<bool> {
        (0..grid.height.div_ceil(b))
            .map(|k| {
                let span = row_span(grid, k * b..((k + 1) * b).min(grid.height));
                self.scene_only || (0..self.spans.len()).any(|i| self.reaches(i, span))
            })
            .collect()
    }

    /// Per block of `b` rows, whether some corridor may reach the block's
    /// rows within columns `cols` (every block without segments).
    fn blocks_in(&self, grid: &Grid, b: usize, cols: Range<usize>) -> Vec<bool> {
        let [x0, x1] = col_span(grid, cols);
        (0..grid.height.div_ceil(b))
            .map(|k| {
                let span = row_span(grid, k * b..((k + 1) * b).min(grid.height));
                self.scene_only
                    || (0..self.spans.len()).any(|i| {
                        self.reaches(i, span) && self.xspans[i][0] <= x1 && self.xspans[i][1] >= x0
                    })
            })
            .collect()
    }

    /// The management zone on the window `rows` × `cols`, scanning only
    /// the segments whose corridor may reach those rows.
    fn zone(&self, grid: &Grid, rows: Range<usize>, cols: Range<usize>) -> Array2<bool> {
        if self.scene_only {
            return Array2::from_elem((rows.len(), cols.len()), true);
        }
        let span = row_span(grid, rows.clone());
        let near: Vec<Projected> = (0..self.spans.len())
            .filter(|&i| self.reaches(i, span))
            .map(|i| self.projected[i].clone())
            .collect();
        zones_window(grid, rows, cols, &near).zone
    }
}

/// The map y range of the pixel centres of `rows`, with a pixel's margin.
fn row_span(grid: &Grid, rows: Range<usize>) -> [f64; 2] {
    let (r0, r1, w) = (rows.start as f64, rows.end as f64, grid.width as f64);
    map_span(grid, [(0.0, r0), (w, r0), (0.0, r1), (w, r1)], |p| p.1)
}

/// The map x range of the pixel centres of `cols`, with a pixel's margin.
fn col_span(grid: &Grid, cols: Range<usize>) -> [f64; 2] {
    let (c0, c1, h) = (cols.start as f64, cols.end as f64, grid.height as f64);
    map_span(grid, [(c0, 0.0), (c0, h), (c1, 0.0), (c1, h)], |p| p.0)
}

/// The range of one map coordinate (`pick`) over pixel corners given as
/// (column, row), grown by a pixel.
fn map_span(grid: &Grid, corners: [(f64, f64); 4], pick: fn((f64, f64)) -> f64) -> [f64; 2] {
    let v = corners.map(|(c, r)| pick(grid.to_map(c, r)));
    let pad = grid.pixel_size();
    [
        v.iter().cloned().fold(f64::INFINITY, f64::min) - pad,
        v.iter().cloned().fold(f64::NEG_INFINITY, f64::max) + pad,
    ]
}

/// Reads a window of both dates and rasterises the zone there.
fn read_raw(
    reader: &TileReader,
    corridors: &Corridors<'_>,
    rows: Range<usize>,
    cols: Range<usize>,
) -> Result<Raw> {
    let (b, a) = reader.read_window(rows.clone(), cols.clone())?;
    Ok(raw_of(&reader.grid, corridors, rows, cols, b, a))
}

/// One window of both dates as the stages' raw rows: the bands, valid on
/// both dates, and the management zone.
fn raw_of(
    grid: &Grid,
    corridors: &Corridors<'_>,
    rows: Range<usize>,
    cols: Range<usize>,
    b: Block,
    a: Block,
) -> Raw {
    let valid = Zip::from(&b.valid)
        .and(&a.valid)
        .map_collect(|&x, &y| x && y);
    let zone = corridors.zone(grid, rows, cols);
    (b.bands, a.bands, (valid, zone))
}

/// Streams a tile (see the module documentation).
///
/// # Errors
/// Unreadable rasters, implausible radiometry on the sample, no valid
/// pixel, a CRS that cannot be transformed to WGS84.
pub fn detect(
    reader: TileReader,
    tile: &Tile,
    sensor: &Sensor,
    ctx: &Context<'_>,
    tap: &mut dyn Tap,
) -> Result<TileResult> {
    let info = &SceneInfo::of(tile);
    let t0 = Instant::now();
    let cfg = ctx.config;
    let opt = &ctx.stream;
    let grid = reader.grid.clone();
    let (h, w) = (grid.height, grid.width);
    let b = opt.block_rows.max(1);
    let scene_only = ctx.segments.is_empty();
    let indexed = ctx.indexed(&grid.wkt)?;
    let near = indexed.near(&grid);
    let corridors = Corridors::new(&near, scene_only);
    let need = corridors.blocks(&grid, b);
    if h == 0 || w == 0 {
        return Err(Error::Tile {
            tile: info.tile.clone(),
            msg: "the raster is empty (0 rows or columns)".into(),
        });
    }
    let pre = match Preload::ranges(&runs(&need, b, h), lead_bound(cfg), h, w, opt.preload_px) {
        Some(r) => Some(Preload::read(&reader, r, tile, sensor)?),
        None => None,
    };
    let t1 = Instant::now();
    if pre.is_some() {
        tap.stage("read zone rows once", (t1 - t0).as_secs_f64());
    }
    let (params, sample_rows, bands) =
        sample_pass(&reader, &corridors, pre.as_ref(), (tile, info), sensor, ctx)?;
    tap.stage("global pass (sample)", t1.elapsed().as_secs_f64());
    // The sample's planes are free now; the strips reuse their pages.
    // Handing them back (as before) made the strips fault them in again:
    // 2048² kernel time 0.23 → 0.16 s, wall 0.62 → 0.58 s; 10980² the same
    // time and peak (A/B the same hour: 4.33/4.43 s against 4.35/4.40 s).
    crate::io::release_memory_above(TRIM_ABOVE);
    let halos = Halos::of(cfg, &params);
    let linker = link::Linker::new(ctx.segments, &indexed.index, ctx.registry);
    let to_wgs = Transformer::to_wgs84(&grid.wkt)?;
    let model = ctx.model(bands)?;
    let ox = ObjectContext {
        grid: &grid,
        info,
        linker: (!scene_only).then_some(&linker),
        to_wgs: &to_wgs,
        threshold: params.threshold,
        cfg,
        model,
    };
    let notes_in = reader.notes();
    let n_strips = strip_count(opt, w);
    let lead = Halos::across(cfg, &params).leads()[0];
    let mut strips = Vec::with_capacity(n_strips);
    let mut first = Some(reader);
    let bounds = strip_bounds(&corridors, &grid, b, n_strips);
    for k in 0..n_strips {
        let (inner, win) = strip_cols(w, &bounds, k, lead);
        let reader = match first.take() {
            Some(r) => r,
            None => TileReader::open(tile, sensor)?,
        };
        strips.push(Strip {
            need: corridors.blocks_in(&grid, b, inner.clone()),
            reader,
            inner,
            win,
            bufs: Bufs::default(),
            laps: [0.0; 3],
        });
    }
    let mut engine = Engine {
        strips,
        shared: Shared {
            corridors: &corridors,
            pre: pre.as_ref(),
            params: &params,
            halos,
            cfg,
            model,
        },
        ox: &ox,
        swir: bands > 4,
        counts: Counts::default(),
        out: Vec::new(),
        too_large: Vec::new(),
        px_read: pre.as_ref().map_or(0, Preload::pixels),
        stitch_s: 0.0,
    };
    for run in runs(&need, b, h) {
        engine.run(run, b, tap)?;
    }
    // Each stage's time in the slowest strip (the strips run side by side).
    let laps = engine
        .strips
        .iter()
        .fold([0f64; 3], |m, s| [0, 1, 2].map(|i| m[i].max(s.laps[i])));
    for (name, t) in [
        "read+zones+cloud tests",
        "clouds+align",
        "cover+magnitude+rules",
    ]
    .iter()
    .zip(laps)
    {
        tap.stage(name, t);
    }
    tap.stage("stitch+polygons+link", engine.stitch_s);
    let Engine {
        counts,
        mut out,
        px_read,
        too_large,
        ..
    } = engine;
    if counts.computed > 0 && counts.valid == 0 {
        return Err(Error::Tile {
            tile: info.tile.clone(),
            msg: "no pixel is valid on both dates (all nodata or masked)".into(),
        });
    }
    out.sort_by_key(|(key, _)| *key);
    let detections: Vec<Detection> = out.into_iter().map(|(_, d)| d).collect();
    let mut notes = notes_in;
    if counts.computed == 0 {
        notes.push(
            "no management zone reaches this scene: nothing was computed beyond the sample".into(),
        );
    }
    notes.extend(trust::normalisation(&params.fit, cfg));
    notes.extend(trust::flagged_share(
        counts.reported,
        counts.zone_usable,
        cfg,
    ));
    notes.extend(trust::too_large(&too_large, grid.pixel_area(), cfg));
    let n = (h * w) as f64;
    let report = TileReport {
        tile: info.tile.clone(),
        size: [w, h],
        // Valid and cloudy shares of the zone (what a strip skips has no
        // zone, so they do not depend on the strips); the zone share is
        // exact (no zone outside the blocks computed).
        valid_share: round(counts.zone_valid as f64 / counts.zone.max(1) as f64, 4),
        cloud_share: round(counts.zone_cloud as f64 / counts.zone.max(1) as f64, 4),
        zone_share: round(counts.zone as f64 / n, 4),
        normalization: super::rounded_fit(&params.fit),
        shift_px: params.shift,
        change_threshold: round(params.threshold as f64, 4) as f32,
        water_threshold: params.water.map(|t| round(t as f64, 3) as f32),
        polygons: detections.len(),
        seconds: t0.elapsed().as_secs_f64(),
        notes,
        stream: Some(StreamReport {
            block_rows: b,
            blocks: need.len(),
            blocks_in_zone: need.iter().filter(|&&x| x).count(),
            read_share: round(px_read as f64 / (h * w).max(1) as f64, 4),
            sample_rows,
            strips: n_strips,
        }),
    };
    Ok(TileResult {
        detections,
        report,
        grid,
    })
}

/// Runs of consecutive zone blocks, as row ranges.
fn runs(need: &[bool], b: usize, h: usize) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for (k, _) in need.iter().enumerate().filter(|(_, &x)| x) {
        let r = k * b..((k + 1) * b).min(h);
        match out.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => out.push(r),
        }
    }
    out
}

/// Bands of the storage block rows a sample band shares: reading one band
/// of a block row decodes the whole block row (16 bands of 16 rows in a
/// 256-row tiled GeoTIFF), so up to this many are taken from each block
/// row read. Four cut the sample's decoding about 4× on 256-row tiles and
/// keep it spread over a quarter as many places as one band per block row.
const BANDS_PER_BLOCK_ROW: usize = 4;

/// `k` of the `pool` of `b`-row bands (their indices, ascending) for the
/// global pass on a raster stored in blocks of `block_h` rows: block rows
/// spread evenly over those holding pool bands, and in each up to
/// [`BANDS_PER_BLOCK_ROW`] of its pool bands spread evenly. With blocks no
/// taller than a band, `k` bands spread evenly over the pool.
fn sample_bands(pool: &[usize], k: usize, b: usize, block_h: usize) -> Vec<usize> {
    let per = (block_h / b).clamp(1, BANDS_PER_BLOCK_ROW);
    // The pool grouped by block row.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &blk in pool {
        let row = blk * b / block_h.max(1);
        match groups.last_mut() {
            Some(g) if g[0] * b / block_h.max(1) == row => g.push(blk),
            _ => groups.push(vec![blk]),
        }
    }
    let t = k.div_ceil(per).clamp(1, groups.len().max(1));
    let mut out = Vec::new();
    for i in 0..t.min(groups.len()) {
        let g = &groups[i * groups.len() / t];
        let n = per.min(g.len());
        out.extend((0..n).map(|j| g[j * g.len() / n]));
    }
    out
}

/// The global pass: the whole scene when it is within the sample budget,
/// else zone blocks spread evenly; checks the radiometry on it. Returns the
/// estimates, the number of rows they came from and the number of bands.
fn sample_pass(
    reader: &TileReader,
    corridors: &Corridors<'_>,
    pre: Option<&Preload>,
    (tile, info): (&Tile, &SceneInfo),
    sensor: &Sensor,
    ctx: &Context<'_>,
) -> Result<(Params, usize, usize)> {
    let grid = &reader.grid;
    let (h, w) = (grid.height, grid.width);
    let b = SAMPLE_BAND_ROWS;
    let ranges: Vec<Range<usize>> = if h * w <= ctx.stream.sample_px {
        std::iter::once(0..h).collect()
    } else {
        let need = corridors.blocks(grid, b);
        let zone: Vec<usize> = (0..need.len()).filter(|&k| need[k]).collect();
        let pool = if zone.is_empty() {
            (0..need.len()).collect()
        } else {
            zone
        };
        let k = (ctx.stream.sample_px / (b * w)).clamp(1, pool.len());
        sample_bands(&pool, k, b, reader.block_height())
            .into_iter()
            .map(|blk| blk * b..((blk + 1) * b).min(h))
            .collect()
    };
    let parts = read_sample(reader, corridors, &ranges, pre, (tile, sensor))?;
    let cat3 = |f: fn(&Raw) -> &Array3<f32>| -> Array3<f32> {
        let v: Vec<_> = parts.iter().map(|p| f(p).view()).collect();
        concatenate(Axis(1), &v).expect("same bands and width")
    };
    let cat2 = |f: fn(&Raw) -> &Array2<bool>| -> Array2<bool> {
        let v: Vec<_> = parts.iter().map(|p| f(p).view()).collect();
        concatenate(Axis(0), &v).expect("same width")
    };
    let pair = ScenePair {
        before: cat3(|p| &p.0),
        after: cat3(|p| &p.1),
        valid: cat2(|p| &p.2 .0),
        grid: grid.rows(0..ranges.iter().map(|r| r.len()).sum()),
        notes: Vec::new(),
    };
    let zone = cat2(|p| &p.2 .1);
    drop(parts);
    if ctx.config.check_radiometry {
        super::check_radiometry(&pair, info, sensor)?;
    }
    let (rows, bands) = (pair.valid.nrows(), pair.before.dim().0);
    Ok((estimate(pair, zone.view(), ctx.config), rows, bands))
}

/// Reads full-width row ranges of both dates, one date on each thread
/// (the later on a second set of GDAL handles: decoding is single-threaded
/// per handle). A 16-row band of a tiled file decodes a whole row of
/// tiles, which the next band from the same tile row finds in GDAL's block
/// cache: with one date per thread the two threads need two tile rows of
/// cache, where two threads reading both dates of different tile rows
/// needed four and evicted each other's (10980², 256² tiles: 112 MB
/// against the 96 MB cache).
fn read_dates(
    reader: &TileReader,
    ranges: &[Range<usize>],
    tile: &Tile,
    sensor: &Sensor,
) -> Result<Vec<(Block, Block)>> {
    let w = reader.grid.width;
    let read = |r: &DateReader| -> Result<Vec<Block>> {
        ranges
            .iter()
            .map(|rows| r.read_window(rows.clone(), 0..w))
            .collect()
    };
    // A few rows are not worth opening a second set of handles.
    let (before, after) = if ranges.len() < 2 && ranges.iter().map(|r| r.len()).sum::<usize>() < 256
    {
        (read(&reader.before)?, read(&reader.after)?)
    } else {
        std::thread::scope(|s| {
            let later = s.spawn(|| read(&TileReader::open(tile, sensor)?.after));
            let before = read(&reader.before)?;
            let after = later.join().map_err(|_| Error::Tile {
                tile: tile.id.clone(),
                msg: "a reader thread panicked".into(),
            })??;
            Ok::<_, Error>((before, after))
        })?
    };
    Ok(before.into_iter().zip(after).collect())
}

/// Reads the sample's row ranges: from the preloaded rows when they hold
/// them all, else through GDAL ([`read_dates`]).
fn read_sample(
    reader: &TileReader,
    corridors: &Corridors<'_>,
    ranges: &[Range<usize>],
    pre: Option<&Preload>,
    (tile, sensor): (&Tile, &Sensor),
) -> Result<Vec<Raw>> {
    let w = reader.grid.width;
    let held: Option<Vec<(Block, Block)>> =
        pre.and_then(|p| ranges.iter().map(|r| p.window(r.clone(), 0..w)).collect());
    let dates = match held {
        Some(d) => d,
        None => read_dates(reader, ranges, tile, sensor)?,
    };
    Ok(ranges
        .iter()
        .zip(dates)
        .map(|(rows, (b, a))| raw_of(&reader.grid, corridors, rows.clone(), 0..w, b, a))
        .collect())
}

/// Rows of both dates read once, full width: the zone blocks and the reach
/// of the stage chain around them (see [`StreamOptions::preload_px`]).
struct Preload {
    parts: Vec<(Range<usize>, Block, Block)>,
}

impl Preload {
    /// The rows to preload: each run of zone blocks grown by `lead` rows
    /// (overlapping ones joined), or `None` when they hold more than
    /// `budget` pixels.
    fn ranges(
        runs: &[Range<usize>],
        lead: usize,
        h: usize,
        w: usize,
        budget: usize,
    ) -> Option<Vec<Range<usize>>> {
        let mut out: Vec<Range<usize>> = Vec::new();
        for r in runs {
            let g = r.start.saturating_sub(lead)..(r.end + lead).min(h);
            match out.last_mut() {
                Some(last) if last.end >= g.start => last.end = last.end.max(g.end),
                _ => out.push(g),
            }
        }
        let px: usize = out.iter().map(|r| r.len() * w).sum();
        (px > 0 && px <= budget).then_some(out)
    }

    fn read(
        reader: &TileReader,
        ranges: Vec<Range<usize>>,
        tile: &Tile,
        sensor: &Sensor,
    ) -> Result<Preload> {
        let dates = read_dates(reader, &ranges, tile, sensor)?;
        Ok(Preload {
            parts: ranges
                .into_iter()
                .zip(dates)
                .map(|(r, (b, a))| (r, b, a))
                .collect(),
        })
    }

    /// Pixels held.
    fn pixels(&self) -> usize {
        self.parts.iter().map(|(_, b, _)| b.valid.len()).sum()
    }

    /// A window of both dates, when one preloaded range holds its rows.
    fn window(&self, rows: Range<usize>, cols: Range<usize>) -> Option<(Block, Block)> {
        let (r, b, a) = self
            .parts
            .iter()
            .find(|(r, _, _)| r.start <= rows.start && rows.end <= r.end)?;
        let rs = rows.start - r.start..rows.end - r.start;
        let cut = |x: &Block| Block {
            bands: x.bands.slice(s![.., rs.clone(), cols.clone()]).to_owned(),
            valid: x.valid.slice(s![rs.clone(), cols.clone()]).to_owned(),
        };
        Some((cut(b), cut(a)))
    }
}

/// Pixel counts for the report: over the pixels computed (which depend
/// on the strips), and over the zone (which do not).
#[derive(Default)]
struct Counts {
    computed: usize,
    valid: usize,
    zone: usize,
    zone_valid: usize,
    zone_cloud: usize,
    zone_usable: usize,
    reported: usize,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.computed += o.computed;
        self.valid += o.valid;
        self.zone += o.zone;
        self.zone_valid += o.zone_valid;
        self.zone_cloud += o.zone_cloud;
        self.zone_usable += o.zone_usable;
        self.reported += o.reported;
    }
}

/// Columns of strip `k` between `bounds`: what it reports (`inner`) and
/// what it reads and computes (`win`: `inner` grown by `lead` on each
/// side, clipped to the `w` columns).
fn strip_cols(w: usize, bounds: &[usize], k: usize, lead: usize) -> (Range<usize>, Range<usize>) {
    let inner = bounds[k]..bounds[k + 1];
    let win = inner.start.saturating_sub(lead)..(inner.end + lead).min(w);
    (inner, win)
}

/// Columns per group when strips are balanced.
const BALANCE_COLS: usize = 64;

/// Where `strips` strips start (and the last ends): cut so each holds
/// about the same share of the work, counted as the blocks of `b` rows a
/// corridor reaches in each group of [`BALANCE_COLS`] columns (equal
/// widths when every block is needed). Strips of equal width left one
/// strip with 38 of the 87 zone blocks of the 10980² pair, which then ran
/// alone for the last seconds. Any cut gives the same output.
fn strip_bounds(corridors: &Corridors<'_>, grid: &Grid, b: usize, strips: usize) -> Vec<usize> {
    let w = grid.width;
    let groups: Vec<Range<usize>> = (0..w.div_ceil(BALANCE_COLS))
        .map(|g| g * BALANCE_COLS..((g + 1) * BALANCE_COLS).min(w))
        .collect();
    // A group's work: its columns times the blocks it computes (one for
    // a group no corridor reaches, so empty stretches still spread out).
    let work: Vec<usize> = groups
        .iter()
        .map(|g| {
            let blocks = corridors
                .blocks_in(grid, b, g.clone())
                .iter()
                .filter(|&&n| n)
                .count();
            g.len() * blocks.max(1)
        })
        .collect();
    let total: usize = work.iter().sum();
    let mut bounds = vec![0];
    let mut acc = 0;
    for (i, (g, wk)) in groups.iter().zip(&work).enumerate() {
        acc += wk;
        let k = bounds.len();
        // Close strip k − 1 once it holds its share, leaving at least one
        // group for each strip still to come.
        if k < strips && acc * strips >= k * total && groups.len() - (i + 1) >= strips - k {
            bounds.push(g.end);
        }
    }
    // Fewer groups than strips: equal widths.
    if bounds.len() < strips {
        return (0..=strips).map(|k| k * w / strips).collect();
    }
    bounds.push(w);
    bounds
}

/// How many strips a scene `w` columns wide is cut into: the option, else
/// four per worker thread with at least [`MIN_STRIP_COLS`] columns each.
/// More strips than cores because the corridor is rarely spread evenly: a
/// strip skips the blocks no corridor reaches in its columns, and the busy
/// ones get the idle ones' core (10980² pair: 2 strips 24–25 s, 4 strips
/// 19–20 s when the stages were slower; now 4 strips 4.53–4.65 s, 8 strips
/// 4.36–4.44 s at 875 MiB; 5490²: 4 strips 2.32–2.33 s, 5 strips 2.24–2.26
/// s, 8 strips 2.31–2.33 s; same output).
fn strip_count(opt: &StreamOptions, w: usize) -> usize {
    let n = match opt.strips {
        0 => (4 * rayon::current_num_threads()).min(w / MIN_STRIP_COLS),
        n => n,
    };
    n.clamp(1, w.max(1))
}

/// Narrowest strip the automatic choice makes: each side of a strip
/// recomputes a halo of a few hundred columns (about 250 with the default
/// settings), so a narrower strip would spend more on its halo than it
/// gains from running beside the others.
pub const MIN_STRIP_COLS: usize = 1024;

/// Resident size above which a streamed scene hands freed memory back
/// between blocks. A safety valve, not a routine step: a 10980² pair lives
/// in about 950 MiB, and trimming below that (768 or 896 MiB, measured)
/// re-faults pages on every block for no lower peak.
const TRIM_ABOVE: u64 = 960 << 20;

/// Bytes of flagged-pixel masks a strip may hand over ahead of the
/// stitcher (a block's mask is a byte per pixel of its own columns): 54
/// blocks of 112 × 2,745 (a 10980² scene in four strips), so a strip with
/// no zone for a while runs well ahead, and at most 16 MiB per strip
/// whatever the scene's width (64 MiB measured no faster).
const QUEUE_BYTES: usize = 16 << 20;

/// What every strip of a scene shares (read only).
#[derive(Clone, Copy)]
struct Shared<'a> {
    corridors: &'a Corridors<'a>,
    /// Rows read before the global pass, which the strips take their
    /// windows from.
    pre: Option<&'a Preload>,
    params: &'a Params,
    /// Row halos.
    halos: Halos,
    cfg: &'a Config,
    model: Option<&'a TreeModel>,
}

/// The stage buffers of one strip over one run of zone blocks.
#[derive(Default)]
struct Bufs {
    raw: Buf<Raw>,
    // The per-pixel bits of the cloud and shadow tests, computed as the raw
    // rows are read, so the cloud stage reads a byte a pixel over its halo
    // instead of both dates' bands.
    flags: Buf<Array2<u8>>,
    clouds: Buf<(Array2<u8>, Array2<u8>)>,
    aligned: Buf<(Array3<f32>, Array2<bool>)>,
    // Thin-cloud levels of both dates (per pixel), so the thin-cloud stage
    // reads two bytes a pixel over its halo instead of both dates' bands.
    levels: Buf<(Array2<u8>, Array2<u8>)>,
    thin: Buf<(Array2<u8>, Array2<u8>, Array2<bool>)>,
    // Land cover and magnitude, with the aligned valid mask and the zone
    // the rules read (so the raw and aligned rows can go sooner).
    cover: Buf<CoverRows>,
    mask: Buf<Array2<bool>>,
    cloud_d: Buf<Array2<u8>>,
}

/// A vertical strip of the scene, computed beside the others: its own GDAL
/// handles, its columns and its stage buffers. Every stage is as local
/// across columns as across rows, so a window of columns with the halo
/// of the whole stage chain gives exactly the scene's values on the
/// strip's own columns.
struct Strip {
    /// Per block, whether a corridor may reach the strip's own columns;
    /// the strip skips the others (its rows there are empty).
    need: Vec<bool>,
    reader: TileReader,
    inner: Range<usize>,
    win: Range<usize>,
    bufs: Bufs,
    /// Seconds in read+zones+cloud tests, clouds+align,
    /// cover+magnitude+rules.
    laps: [f64; 3],
}

/// One block's rows of a strip, for the stitcher.
struct StripRows {
    /// Flagged pixels, block rows × the strip's own columns.
    mask: Array2<bool>,
    /// Per row, the values of its flagged pixels in column order.
    values: Vec<Vec<PixelValues>>,
    counts: Counts,
    /// Pixels read: new rows × the strip's own columns.
    px_read: usize,
}

impl Strip {
    /// Streams the blocks of `run`, handing each block's rows (or the
    /// first error) to `tx`; stops early when the stitcher has gone.
    fn stream(
        &mut self,
        sh: &Shared<'_>,
        run: Range<usize>,
        b: usize,
        tx: &SyncSender<Result<StripRows>>,
    ) {
        for a in run.clone().step_by(b) {
            let e = (a + b).min(run.end);
            let rows = if self.need[a / b] {
                self.advance(sh, a, e, b)
            } else {
                Ok(self.skipped(a..e))
            };
            let failed = rows.is_err();
            if tx.send(rows).is_err() || failed {
                break;
            }
        }
    }

    /// Computes rows `a..e` (a block of at most `b` rows), extending every
    /// buffer by what the block needs and dropping what no later block
    /// reads.
    fn advance(&mut self, sh: &Shared<'_>, a: usize, e: usize, b: usize) -> Result<StripRows> {
        let h = self.reader.grid.height;
        let cfg = sh.cfg;
        let p = sh.params;
        let hl = sh.halos;
        let [l_raw, l_clouds, l_aligned, l_thin, l_cover] = hl.leads();
        let rules = cfg.method == Method::Rules;
        let model = sh.model;
        let (reader, cols) = (&self.reader, self.win.clone());
        let Bufs {
            raw,
            flags,
            clouds,
            aligned,
            levels,
            thin,
            cover,
            mask,
            cloud_d,
        } = &mut self.bufs;
        let mut lap = Instant::now();
        let want = |l: usize| a.saturating_sub(l)..e + l;
        let before_end = raw.end().max(a.saturating_sub(l_raw));
        let mut px_new = 0;
        raw.extend(want(l_raw), 0, h, FINE_STEP.min(b), |r, _| {
            let x = match sh.pre.and_then(|p| p.window(r.clone(), cols.clone())) {
                Some((b, a)) => raw_of(&reader.grid, sh.corridors, r.clone(), cols.clone(), b, a),
                None => {
                    px_new += r.len();
                    read_raw(reader, sh.corridors, r.clone(), cols.clone())?
                }
            };
            // The cloud tests' bits while the rows are at hand (none
            // without the rules: the CVA baseline finds no cloud).
            let f = if rules {
                clouds::cloud_flags(x.0.view(), x.1.view(), x.2 .0.view(), &cfg.clouds())
            } else {
                Array2::zeros((r.len(), cols.len()))
            };
            flags.push(r.start, f);
            Ok(x)
        })?;
        // Rows read through GDAL here (not from the preloaded rows).
        let px_read = if sh.pre.is_some() {
            px_new
        } else {
            raw.end().saturating_sub(before_end)
        };
        self.laps[0] += lap.elapsed().as_secs_f64();
        lap = Instant::now();
        clouds.extend(want(l_clouds), hl.clouds, h, b, |r, _| {
            let (cb, ca, _) =
                clouds::clouds_from_flags(flags.get(r).view(), &cfg.clouds(), Some(p.cast));
            Ok((cb, ca))
        })?;
        aligned.extend(want(l_aligned), hl.align, h, FINE_STEP.min(b), |r, _| {
            let (af, v) = raw.get_part(r, |d| (&d.1, &d.2 .0));
            Ok(global::align(af, v, &p.fit, p.shift, rules, cfg))
        })?;
        if rules {
            levels.extend(want(l_thin + hl.thin), 0, h, FINE_STEP.min(b), |r, _| {
                let bf = raw.get_part(r.clone(), |d| &d.0);
                let (af, v) = aligned.get(r);
                let [lb, la] = clouds::thin_levels(bf.view(), af.view(), v.view());
                Ok((lb, la))
            })?;
        }
        thin.extend(want(l_thin), hl.thin, h, b, |r, new| {
            // Only the thin clouds need the halo; the raw-data clouds and
            // the valid mask are read on the new rows.
            let v = aligned.get_part(new.clone(), |d| &d.1);
            let (cb, ca) = clouds.get(new.clone());
            let lv = rules.then(|| levels.get(r.clone()));
            let inner = new.start - r.start..new.end - r.start;
            let ([cb, ca], u) = global::thin_from_levels(
                lv.as_ref().map(|(lb, la)| [lb.view(), la.view()]),
                inner,
                v.view(),
                [cb, ca],
                cfg,
            );
            Ok((cb, ca, u))
        })?;
        self.laps[1] += lap.elapsed().as_secs_f64();
        lap = Instant::now();
        cover.extend(want(l_cover), hl.cover, h, b, |r, _| {
            let (bf, z) = raw.get_part(r.clone(), |d| (&d.0, &d.2 .1));
            let (af, v) = aligned.get(r.clone());
            let (cb, ca, u) = thin.get(r.clone());
            let mut cv = cover::land_cover_with(
                &cover::CoverInput {
                    before: bf.view(),
                    after: af.view(),
                    valid: v.view(),
                    clouds: [cb.view(), ca.view()],
                    zone: z.view(),
                    usable: u.view(),
                },
                Some(p.water),
                cfg,
            );
            let wet = rules::wet_after(&cv, cfg);
            cv.drop_unread();
            let mut mag = blocks::magnitude(bf.view(), af.view(), Some(z.view()), cfg);
            if rules {
                rules::sand_removal(&mut mag, &cv, cfg);
            }
            Ok((cv, mag, (v, z, wet)))
        })?;
        mask.extend(want(0), hl.mask, h, b, |r, _| {
            let u = thin.get_part(r.clone(), |d| &d.2);
            // Only the layers the rules read, over their halo.
            let ((lc_b, lc_a, br_a), (ap, wet), (v, z)) =
                cover.get_part(r, |(cv, m, (v, z, wet))| {
                    (
                        (&cv.lc_before, &cv.lc_after, &cv.after.brightness),
                        (&m.appeared, wet),
                        (v, z),
                    )
                });
            let cand = rules::candidates(
                &rules::RuleInput {
                    appeared: ap.view(),
                    threshold: p.threshold,
                    lc_before: lc_b.view(),
                    lc_after: lc_a.view(),
                    brightness_after: br_a.view(),
                    wet: wet.view(),
                    valid: v.view(),
                    usable: u.view(),
                    zone: z.view(),
                },
                cfg,
            );
            Ok(rules::clean(cand.mask.view(), z.view(), u.view(), cfg))
        })?;
        cloud_d.extend(want(0), hl.cloud_d, h, b, |r, _| {
            let (cb, ca) = thin.get_part(r, |d| (&d.0, &d.1));
            Ok(super::cloud_distance(&cb, &ca).1)
        })?;
        let prob = model.and_then(|m| self.probability(a..e, m));
        self.laps[2] += lap.elapsed().as_secs_f64();
        let out = self.rows_of(a..e, prob.as_ref());
        self.trim(e, &hl);
        let mut out = out;
        out.px_read = px_read * self.inner.len();
        Ok(out)
    }

    /// The change model's probability on the flagged pixels of rows
    /// `rows` in the strip's own columns (0 elsewhere; `None` when none is
    /// flagged), from a window of the buffers around them with the model's
    /// halo (which the buffers keep, see [`Strip::trim`]). Only that
    /// window's columns are copied out: flagged pixels are few, and copying
    /// whole rows of both dates was a fifth of the model's time.
    fn probability(&self, rows: Range<usize>, model: &TreeModel) -> Option<Array2<f32>> {
        let (h, w) = (self.reader.grid.height, self.win.len());
        let own = self.inner.start - self.win.start..self.inner.end - self.win.start;
        let Bufs {
            raw,
            aligned,
            thin,
            mask,
            ..
        } = &self.bufs;
        let m = mask.get(rows.clone());
        let flagged = m.slice(s![.., own.clone()]);
        let (mut r0, mut r1, mut c0, mut c1) = (usize::MAX, 0, usize::MAX, 0);
        for ((i, c), _) in flagged.indexed_iter().filter(|(_, &f)| f) {
            (r0, r1) = (r0.min(i), r1.max(i + 1));
            (c0, c1) = (c0.min(own.start + c), c1.max(own.start + c + 1));
        }
        if r1 == 0 {
            return None;
        }
        let halo = changeprob::HALO;
        let (a, e) = (rows.start + r0, rows.start + r1);
        let win = a.saturating_sub(halo)..(e + halo).min(h);
        let cols = c0.saturating_sub(halo)..(c1 + halo).min(w);
        let nb = raw.row(a).0 .0.dim().0;
        let (n, wc) = (win.len(), cols.len());
        let mut bf = Array3::<f32>::zeros((nb, n, wc));
        let mut af = Array3::<f32>::zeros((nb, n, wc));
        let mut u = Array2::from_elem((n, wc), false);
        let mut need = Array2::from_elem((n, wc), false);
        for (i, r) in win.clone().enumerate() {
            let ((x, _, _), lr) = raw.row(r);
            bf.slice_mut(s![.., i, ..])
                .assign(&x.slice(s![.., lr, cols.clone()]));
            let ((y, _), la) = aligned.row(r);
            af.slice_mut(s![.., i, ..])
                .assign(&y.slice(s![.., la, cols.clone()]));
            let ((_, _, ok), lt) = thin.row(r);
            u.row_mut(i).assign(&ok.slice(s![lt, cols.clone()]));
            if (a..e).contains(&r) {
                // Flagged pixels of the strip's own columns.
                let f = m.row(r - rows.start);
                for (k, c) in cols.clone().enumerate() {
                    need[[i, k]] = f[c] && own.contains(&c);
                }
            }
        }
        let x = blocks::ProbabilityInput {
            before: bf.view(),
            after: af.view(),
            usable: u.view(),
        };
        let p = blocks::probability(&x, need.view(), model);
        let mut out = Array2::<f32>::zeros((rows.len(), w));
        out.slice_mut(s![r0..r1, cols.clone()])
            .assign(&p.slice(s![a - win.start..e - win.start, ..]));
        Some(out)
    }

    /// The stitcher's view of rows `rows`, which every buffer holds: the
    /// mask, the flagged pixels' values (`prob`: the change model's
    /// probability on those rows) and the counts, on the strip's own
    /// columns. Each row is read where its buffers hold it: copying the
    /// block's rows of every layer out first moved about 90 bytes a pixel
    /// to read a few flagged pixels.
    fn rows_of(&self, rows: Range<usize>, prob: Option<&Array2<f32>>) -> StripRows {
        let b = &self.bufs;
        let own = self.inner.start - self.win.start..self.inner.end - self.win.start;
        let mut counts = Counts {
            computed: rows.len() * own.len(),
            ..Counts::default()
        };
        let mut mask = Array2::from_elem((rows.len(), own.len()), false);
        let mut values = Vec::with_capacity(rows.len());
        for (i, r) in rows.enumerate() {
            let ((bf, _, (valid, zone)), lr) = b.raw.row(r);
            let ((af, _), la) = b.aligned.row(r);
            let ((cb, ca, _), lt) = b.thin.row(r);
            let ((cv, mag, _), lc) = b.cover.row(r);
            let (m, lm) = b.mask.row(r);
            let (cd, ld) = b.cloud_d.row(r);
            let m = m.row(lm);
            for c in own.clone() {
                let (v, z) = (valid[[lr, c]], zone[[lr, c]]);
                counts.valid += usize::from(v);
                counts.zone += usize::from(z);
                counts.zone_valid += usize::from(z && v);
                counts.zone_cloud += usize::from(z && (cb[[lt, c]] != 0 || ca[[lt, c]] != 0));
                counts.zone_usable += usize::from(cv.zone_usable[[lc, c]]);
            }
            mask.row_mut(i).assign(&m.slice(s![own.clone()]));
            let src = RowSources {
                cover: (cv, lc),
                magnitude: (&mag.appeared, &mag.vanished, lc),
                before: (bf.view(), lr),
                after: (af.view(), la),
                cloud_d: (cd.view(), ld),
                probability: prob.map(|p| (p.view(), i)),
            };
            let row: Vec<PixelValues> = own
                .clone()
                .filter(|&c| m[c])
                .map(|c| PixelValues::in_row(&src, c))
                .collect();
            values.push(row);
        }
        StripRows {
            mask,
            values,
            counts,
            px_read: 0,
        }
    }

    /// The stitcher's view of rows `rows` of a block the strip skips: no
    /// corridor reaches its own columns, so nothing there is flagged.
    fn skipped(&self, rows: Range<usize>) -> StripRows {
        StripRows {
            mask: Array2::from_elem((rows.len(), self.inner.len()), false),
            values: vec![Vec::new(); rows.len()],
            counts: Counts::default(),
            px_read: 0,
        }
    }

    /// Drops the rows the next block's stages no longer read (a stage
    /// that ends at row E with halo H next reads its inputs from E − H);
    /// `e` is the end of the block just done. The change model reads the
    /// reflectance of both dates [`changeprob::HALO`] rows above the next
    /// block.
    fn trim(&mut self, e: usize, hl: &Halos) {
        let bf = &mut self.bufs;
        let next = |buf_end: usize, halo: usize| buf_end.saturating_sub(halo);
        let e_model = next(e, changeprob::HALO);
        let (e_clouds, e_aligned, e_thin) = (bf.clouds.end(), bf.aligned.end(), bf.thin.end());
        let (e_cover, e_mask, e_cd) = (bf.cover.end(), bf.mask.end(), bf.cloud_d.end());
        let e_levels = bf.levels.end();
        bf.flags.trim(e.min(next(e_clouds, hl.clouds)));
        bf.raw.trim(
            e_model
                .min(next(e_aligned, hl.align))
                .min(e_levels)
                .min(next(e_cover, hl.cover)),
        );
        bf.aligned.trim(
            e_model
                .min(e_levels)
                .min(e_thin)
                .min(next(e_cover, hl.cover)),
        );
        bf.levels.trim(e.min(next(e_thin, hl.thin)));
        bf.clouds.trim(e_thin);
        bf.thin.trim(
            e_model
                .min(next(e_cover, hl.cover))
                .min(next(e_mask, hl.mask))
                .min(next(e_cd, hl.cloud_d)),
        );
        bf.cover.trim(e.min(next(e_mask, hl.mask)));
        bf.mask.trim(e);
        bf.cloud_d.trim(e);
    }
}

/// The block engine of one scene.
struct Engine<'a> {
    strips: Vec<Strip>,
    shared: Shared<'a>,
    ox: &'a ObjectContext<'a>,
    /// Whether the bands include SWIR (the models' feature set).
    swir: bool,
    counts: Counts,
    /// Detections with their sort key (first row, first column).
    out: Vec<((usize, usize), Detection)>,
    /// Pixel counts of the components over `max_object_px`.
    too_large: Vec<usize>,
    px_read: usize,
    /// Seconds stitching, tracing and linking.
    stitch_s: f64,
}

impl Engine<'_> {
    /// Streams one run of zone blocks, rows `run`, in blocks of `b` rows:
    /// the strips compute each block side by side, then its rows are
    /// stitched in order.
    fn run(&mut self, run: Range<usize>, b: usize, tap: &mut dyn Tap) -> Result<()> {
        let w = self.ox.grid.width;
        let mut stitch = Stitch::new(w, self.shared.cfg.max_object_px);
        for s in &mut self.strips {
            s.bufs = Bufs::default();
        }
        // Freed memory is handed back between blocks only once the
        // resident size passes `TRIM_ABOVE`: trimming after every block
        // kept a 10980² pair at 945 MiB but re-faulted the block buffers'
        // pages each time (29.9 s, 13 s of it in the kernel, against 24.2 s
        // without); after every stage it cost a third more again.
        //
        // Each strip streams the run on its own thread, skipping the blocks
        // no corridor reaches in its columns, and hands each block's rows
        // over a short queue; this thread stitches them in order, so a
        // strip with little zone runs ahead instead of waiting each block
        // for the busiest one.
        let mut strips = std::mem::take(&mut self.strips);
        let shared = self.shared;
        let own_pools = strips.len() >= rayon::current_num_threads();
        let res = std::thread::scope(|sc| {
            let queues: Vec<_> = strips
                .iter_mut()
                .map(|strip| {
                    let depth = (QUEUE_BYTES / (b * strip.inner.len()).max(1)).max(2);
                    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<StripRows>>(depth);
                    let run = run.clone();
                    let tile = &self.ox.info.tile;
                    sc.spawn(move || {
                        // With at least a strip per worker thread, the
                        // strip's kernels run their parallel loops on a
                        // pool of this one thread: the strips are the
                        // parallelism, and handing the loops of four strips
                        // to the two shared workers cost a tenth more CPU
                        // in waiting and hand-offs (10980²: 6.4 → 5.6 s).
                        // Fewer strips share the workers.
                        if !own_pools {
                            return strip.stream(&shared, run, b, &tx);
                        }
                        match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                            Ok(pool) => pool.install(|| strip.stream(&shared, run, b, &tx)),
                            Err(e) => {
                                let msg = format!("cannot start a strip's thread: {e}");
                                let _ = tx.send(Err(Error::Tile {
                                    tile: tile.clone(),
                                    msg,
                                }));
                            }
                        }
                    });
                    rx
                })
                .collect();
            self.stitch_run(&queues, run.clone(), b, &mut stitch, tap)
        });
        self.strips = strips;
        res?;
        let lap = Instant::now();
        let rest = stitch.close();
        self.finish_all(rest, tap)?;
        self.stitch_s += lap.elapsed().as_secs_f64();
        Ok(())
    }

    /// Stitches the blocks of `run` in order as the strips hand them over.
    fn stitch_run(
        &mut self,
        queues: &[std::sync::mpsc::Receiver<Result<StripRows>>],
        run: Range<usize>,
        b: usize,
        stitch: &mut Stitch,
        tap: &mut dyn Tap,
    ) -> Result<()> {
        for a in run.clone().step_by(b) {
            let e = (a + b).min(run.end);
            let parts: Vec<StripRows> = queues
                .iter()
                .map(|q| {
                    q.recv()
                        .expect("a strip hands over every block or an error")
                })
                .collect::<Result<_>>()?;
            let lap = Instant::now();
            for p in &parts {
                self.px_read += p.px_read;
                self.counts.add(&p.counts);
            }
            let masks: Vec<_> = parts.iter().map(|p| p.mask.view()).collect();
            let m = concatenate(Axis(1), &masks).expect("strips of the same rows");
            for (i, r) in (a..e).enumerate() {
                let values: Vec<PixelValues> = parts
                    .iter()
                    .flat_map(|p| p.values[i].iter().copied())
                    .collect();
                let done = stitch.row(r, m.row(i), &values);
                self.finish_all(done, tap)?;
            }
            self.stitch_s += lap.elapsed().as_secs_f64();
            drop(parts);
            crate::io::release_memory_above(TRIM_ABOVE);
        }
        Ok(())
    }

    fn finish_all(&mut self, comps: Vec<Done>, tap: &mut dyn Tap) -> Result<()> {
        for done in comps {
            let px = match done {
                Done::Pixels(px) => px,
                Done::TooLarge(n) => {
                    if objects::reaches_unit(n, self.ox.grid, self.shared.cfg) {
                        self.too_large.push(n);
                    }
                    continue;
                }
            };
            for px in split_pieces(px, self.ox) {
                let Some((key, t)) = traced(px, self.ox) else {
                    continue;
                };
                let pixels = t.pixels;
                if let Some((d, _, _)) = objects::finish(t, self.swir, self.ox, tap)? {
                    self.counts.reported += pixels;
                    self.out.push((key, d));
                }
            }
        }
        Ok(())
    }
}

/// A flagged pixel kept until its component is finished.
struct Pix {
    r: u32,
    c: u32,
    v: PixelValues,
}

/// A component's pixels by position: index + 1 of each pixel of a list in
/// its bounding box, 0 elsewhere.
struct BoxIndex {
    r0: usize,
    c0: usize,
    idx: Array2<u32>,
}

impl BoxIndex {
    fn of(px: &[Pix]) -> BoxIndex {
        let r0 = px.iter().map(|p| p.r).min().unwrap_or(0) as usize;
        let c0 = px.iter().map(|p| p.c).min().unwrap_or(0) as usize;
        let r1 = px.iter().map(|p| p.r).max().map_or(0, |r| r as usize + 1);
        let c1 = px.iter().map(|p| p.c).max().map_or(0, |c| c as usize + 1);
        let mut idx = Array2::<u32>::zeros((r1.saturating_sub(r0), c1.saturating_sub(c0)));
        for (i, p) in px.iter().enumerate() {
            idx[[p.r as usize - r0, p.c as usize - c0]] = i as u32 + 1;
        }
        BoxIndex { r0, c0, idx }
    }

    /// The list index of the pixel at (r, c), if it is one.
    fn at(&self, r: isize, c: isize) -> Option<usize> {
        let (rr, cc) = (r - self.r0 as isize, c - self.c0 as isize);
        let (h, w) = self.idx.dim();
        (rr >= 0 && cc >= 0 && (rr as usize) < h && (cc as usize) < w)
            .then(|| self.idx[[rr as usize, cc as usize]])
            .filter(|&i| i != 0)
            .map(|i| i as usize - 1)
    }

    /// Whether the pixel at (r, c) survives one erosion with the 3 × 3
    /// cross: its four neighbours are in the list (outside the scene counts
    /// as inside, as `kernels::morphology::erode` has it).
    fn solid(&self, r: isize, c: isize, grid: &Grid) -> bool {
        let (h, w) = (grid.height as isize, grid.width as isize);
        [(r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)]
            .iter()
            .all(|&(a, b)| a < 0 || b < 0 || a >= h || b >= w || self.at(a, b).is_some())
    }
}

/// [`rules::drop_improbable`] on one finished component: without pixels
/// under `split_probability` (or with the rule off, or without the rules)
/// the component as it is; else its pixels at or over the cut, in 4-
/// connected pieces, each kept only when one of its pixels has its four
/// neighbours in the piece (outside the scene counts as inside).
fn split_pieces(px: Vec<Pix>, x: &ObjectContext<'_>) -> Vec<Vec<Pix>> {
    let cut = x.cfg.split_probability;
    let on = cut > 0.0 && x.cfg.method == Method::Rules && x.model.is_some();
    if !on || px.len() > x.cfg.max_object_px || px.iter().all(|p| p.v.p >= cut) {
        return vec![px];
    }
    let kept: Vec<Pix> = px.into_iter().filter(|p| p.v.p >= cut).collect();
    if kept.is_empty() {
        return Vec::new();
    }
    let ix = BoxIndex::of(&kept);
    let mut piece = vec![usize::MAX; kept.len()];
    let mut pieces: Vec<(Vec<usize>, bool)> = Vec::new();
    for s0 in 0..kept.len() {
        if piece[s0] != usize::MAX {
            continue;
        }
        let k = pieces.len();
        piece[s0] = k;
        let (mut members, mut core, mut stack) = (Vec::new(), false, vec![s0]);
        while let Some(i) = stack.pop() {
            members.push(i);
            let (r, c) = (kept[i].r as isize, kept[i].c as isize);
            core = core || ix.solid(r, c, x.grid);
            for (a, b) in [(r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)] {
                if let Some(j) = ix.at(a, b) {
                    if piece[j] == usize::MAX {
                        piece[j] = k;
                        stack.push(j);
                    }
                }
            }
        }
        pieces.push((members, core));
    }
    let mut slots: Vec<Option<Pix>> = kept.into_iter().map(Some).collect();
    pieces
        .into_iter()
        .filter(|(_, core)| *core)
        .map(|(m, _)| m.into_iter().filter_map(|i| slots[i].take()).collect())
        .collect()
}

/// Measures and traces a finished component from its pixels, as the
/// whole-scene path does from the label raster: statistics in raster order,
/// solidity from the pixels that survive one erosion with the 3 × 3 cross
/// (outside the scene counts as inside), the outline, the pixel centres.
/// `None` under the mapping unit.
fn traced(mut px: Vec<Pix>, x: &ObjectContext<'_>) -> Option<((usize, usize), Traced)> {
    let grid = x.grid;
    if !objects::reaches_unit(px.len(), grid, x.cfg) {
        return None;
    }
    px.sort_unstable_by_key(|p| (p.r, p.c));
    let ix = BoxIndex::of(&px);
    let (r0, c0) = (ix.r0, ix.c0);
    let (bh, bw) = ix.idx.dim();
    let at = |r: usize, c: usize| ix.at(r as isize, c as isize);
    let mut st = Stats::default();
    let mut pts = Vec::with_capacity(px.len());
    let mut core = 0usize;
    for p in &px {
        let (r, c) = (p.r as usize, p.c as usize);
        features::add(&mut st, &p.v);
        for (rr, cc) in [(r, c + 1), (r + 1, c)] {
            if let Some(j) = at(rr, cc) {
                features::add_contrast(&mut st, p.v.br_a, px[j].v.br_a);
            }
        }
        if ix.solid(r as isize, c as isize, grid) {
            core += 1;
        }
        let (mx, my) = grid.to_map(c as f64 + 0.5, r as f64 + 0.5);
        pts.push(Coord { x: mx, y: my });
    }
    st.solidity = core as f64 / px.len() as f64;
    // The index raster becomes the label raster in place (a long
    // component's bounding box can be hundreds of MB).
    let mut labels = ix.idx;
    labels.mapv_inplace(|i| u32::from(i != 0));
    let comp = Component {
        label: 1,
        pixels: px.len(),
        r0: 0,
        r1: bh,
        c0: 0,
        c1: bw,
    };
    let first = (r0, px[0].c as usize);
    let t = Traced {
        stats: st,
        pixels: px.len(),
        id: format!("{}-r{:05}c{:05}", x.info.tile, first.0, first.1),
        outline: trace_at(labels.view(), &comp, grid, [r0, c0]),
        centres: pts,
    };
    Some((first, t))
}

/// Row-by-row labelling of flagged pixels (4-connectivity) with union-find;
/// each component's pixels are kept until a row passes without it.
struct Stitch {
    w: usize,
    prev: Vec<u32>,
    prev_row: Option<usize>,
    parent: Vec<u32>,
    pix: Vec<Vec<Pix>>,
    /// Pixels per label (at its root, the component's).
    n: Vec<usize>,
    /// Components over this many pixels keep only their count.
    cap: usize,
}

/// A finished component: its pixels, or only its size when it grew over
/// the cap.
enum Done {
    Pixels(Vec<Pix>),
    TooLarge(usize),
}

impl Stitch {
    fn new(w: usize, cap: usize) -> Stitch {
        Stitch {
            w,
            prev: vec![0; w],
            prev_row: None,
            parent: vec![0],
            pix: vec![Vec::new()],
            n: vec![0],
            cap,
        }
    }

    /// Counts a pixel (or `k`) to root `l`, dropping its pixels once it is
    /// over the cap.
    fn count(&mut self, l: u32, k: usize) {
        let l = l as usize;
        self.n[l] += k;
        if self.n[l] > self.cap && !self.pix[l].is_empty() {
            self.pix[l] = Vec::new();
        }
    }

    fn find(&mut self, mut x: u32) -> u32 {
        while self.parent[x as usize] != x {
            let g = self.parent[self.parent[x as usize] as usize];
            self.parent[x as usize] = g;
            x = g;
        }
        x
    }

    fn union(&mut self, a: u32, b: u32) -> u32 {
        let (a, b) = (self.find(a), self.find(b));
        if a == b {
            return a;
        }
        let (keep, gone) = if self.n[a as usize] >= self.n[b as usize] {
            (a, b)
        } else {
            (b, a)
        };
        let moved = std::mem::take(&mut self.pix[gone as usize]);
        let k = std::mem::take(&mut self.n[gone as usize]);
        if self.n[keep as usize] <= self.cap {
            self.pix[keep as usize].extend(moved);
        }
        self.count(keep, k);
        self.parent[gone as usize] = keep;
        keep
    }

    /// Adds row `r`; returns the components finished by it (those the
    /// previous row held and this row does not).
    /// `values` holds the values of the row's flagged pixels, in column
    /// order.
    fn row(
        &mut self,
        r: usize,
        mask: ndarray::ArrayView1<bool>,
        values: &[PixelValues],
    ) -> Vec<Done> {
        let mut cur = vec![0u32; self.w];
        let joined = self.prev_row == Some(r.wrapping_sub(1));
        let mut k = 0;
        for c in 0..self.w {
            if !mask[c] {
                continue;
            }
            let v = values[k];
            k += 1;
            let up = if joined { self.prev[c] } else { 0 };
            let left = if c > 0 { cur[c - 1] } else { 0 };
            let l = match (up, left) {
                (0, 0) => {
                    let id = self.parent.len() as u32;
                    self.parent.push(id);
                    self.pix.push(Vec::new());
                    self.n.push(0);
                    id
                }
                (u, 0) => self.find(u),
                (0, l) => self.find(l),
                (u, l) => self.union(u, l),
            };
            cur[c] = l;
            if self.n[l as usize] < self.cap {
                self.pix[l as usize].push(Pix {
                    r: r as u32,
                    c: c as u32,
                    v,
                });
            }
            self.count(l, 1);
        }
        let done = if joined {
            self.finished(&cur)
        } else {
            self.drain_prev()
        };
        self.prev = cur;
        self.prev_row = Some(r);
        done
    }

    /// Components of the previous row not continued in `cur`.
    fn finished(&mut self, cur: &[u32]) -> Vec<Done> {
        let mut live: Vec<u32> = cur.iter().filter(|&&l| l != 0).copied().collect();
        for l in live.iter_mut() {
            *l = self.find(*l);
        }
        live.sort_unstable();
        live.dedup();
        let mut ended: Vec<u32> = Vec::new();
        for c in 0..self.w {
            let l = self.prev[c];
            if l != 0 {
                let root = self.find(l);
                if live.binary_search(&root).is_err() {
                    ended.push(root);
                }
            }
        }
        self.take(ended)
    }

    /// The pixels of the components rooted at `roots` (each once), taken
    /// out of the stitcher.
    fn take(&mut self, mut roots: Vec<u32>) -> Vec<Done> {
        roots.sort_unstable();
        roots.dedup();
        roots
            .into_iter()
            .filter_map(|root| {
                let n = std::mem::take(&mut self.n[root as usize]);
                let p = std::mem::take(&mut self.pix[root as usize]);
                match n {
                    0 => None,
                    n if n > self.cap => Some(Done::TooLarge(n)),
                    _ => Some(Done::Pixels(p)),
                }
            })
            .collect()
    }

    /// Every component of the previous row (the run ended or skipped rows).
    fn drain_prev(&mut self) -> Vec<Done> {
        let prev = std::mem::replace(&mut self.prev, vec![0; self.w]);
        let mut roots: Vec<u32> = Vec::new();
        for l in prev.into_iter().filter(|&l| l != 0) {
            roots.push(self.find(l));
        }
        self.take(roots)
    }

    /// Finishes every open component (end of a run).
    fn close(&mut self) -> Vec<Done> {
        self.prev_row = None;
        self.drain_prev()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_bands_share_block_rows_only_when_blocks_are_taller() {
        let pool: Vec<usize> = (0..600).filter(|k| k % 7 != 3).collect();
        // Striped (or 16-row) storage: k bands spread evenly, as before.
        let old: Vec<usize> = (0..17).map(|i| pool[i * pool.len() / 17]).collect();
        assert_eq!(sample_bands(&pool, 17, 16, 1), old);
        assert_eq!(sample_bands(&pool, 17, 16, 16), old);
        // 256-row tiles: 5 block rows, 4 bands in each, spread inside it.
        let got = sample_bands(&pool, 17, 16, 256);
        assert_eq!(got.len(), 20);
        let mut rows: Vec<usize> = got.iter().map(|b| b * 16 / 256).collect();
        rows.dedup();
        assert_eq!(rows.len(), 5);
        assert!(got.windows(2).all(|w| w[0] < w[1]) && got.iter().all(|b| pool.contains(b)));
        assert!(
            got.iter().any(|&b| b % 16 >= 8),
            "spread within a block row"
        );
        // A pool smaller than the sample is taken whole.
        assert_eq!(sample_bands(&[2, 40], 17, 16, 256), vec![2, 40]);
    }

    #[test]
    fn runs_join_consecutive_blocks() {
        let need = [true, true, false, true, false, false, true];
        assert_eq!(runs(&need, 10, 65), vec![0..20, 30..40, 60..65]);
    }

    #[test]
    fn strips_are_balanced_by_the_blocks_a_corridor_reaches() {
        use crate::domain::rivers::Projected;
        use geo::{line_string, MultiLineString};
        // 4000 × 2000 px at 10 m; a river down the left tenth, the full
        // height, and a short one at the right reaching the top tenth.
        let grid = Grid {
            width: 4000,
            height: 2000,
            gt: [0.0, 10.0, 0.0, 20_000.0, 0.0, -10.0],
            wkt: String::new(),
        };
        let river = |x: f64, y0: f64, y1: f64, index| Projected {
            index,
            lines: MultiLineString(vec![line_string![(x: x, y: y0), (x: x, y: y1)]]),
            corridor_m: 500.0,
            channel_m: 200.0,
        };
        let proj = vec![
            river(2_000.0, 0.0, 20_000.0, 0),
            river(35_000.0, 18_000.0, 20_000.0, 1),
        ];
        let c = Corridors::new(&proj, false);
        let b = strip_bounds(&c, &grid, 100, 4);
        assert_eq!((b.len(), b[0], b[4]), (5, 0, 4000));
        assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
        // The long river's columns (0..250 px with its corridor) are cut
        // finer than equal widths would.
        assert!(b[1] < 1000, "{b:?}");
        // Without segments every block is needed: equal widths, to a group.
        let all = strip_bounds(&Corridors::new(&[], true), &grid, 100, 4);
        for (k, &x) in all.iter().enumerate() {
            assert!(x.abs_diff(k * 1000) <= BALANCE_COLS, "{all:?}");
        }
        // More strips than groups: equal widths.
        let narrow = Grid {
            width: 100,
            ..grid.clone()
        };
        assert_eq!(strip_bounds(&c, &narrow, 100, 4), vec![0, 25, 50, 75, 100]);
    }

    #[test]
    fn stitching_finds_a_u_shape_as_one_component() {
        let m = ndarray::array![
            [true, false, true, false],
            [true, false, true, false],
            [true, true, true, false],
            [false, false, false, true]
        ];
        let sizes = |cap: usize| {
            let mut s = Stitch::new(4, cap);
            let mut done = Vec::new();
            for r in 0..4 {
                let n = m.row(r).iter().filter(|&&x| x).count();
                done.extend(s.row(r, m.row(r), &vec![PixelValues::default(); n]));
            }
            done.extend(s.close());
            let mut sizes: Vec<(usize, bool)> = done
                .iter()
                .map(|d| match d {
                    Done::Pixels(p) => (p.len(), false),
                    Done::TooLarge(n) => (*n, true),
                })
                .collect();
            sizes.sort_unstable();
            sizes
        };
        assert_eq!(sizes(100), vec![(1, false), (7, false)]);
        // Over the cap (the arms merge at row 2): only the count is kept.
        assert_eq!(sizes(2), vec![(1, false), (7, true)]);
        assert_eq!(sizes(6), vec![(1, false), (7, true)]);
        assert_eq!(sizes(7), vec![(1, false), (7, false)]);
    }
}
