//! Per-date land cover from indices, and cloud/shadow detection from the two
//! dates together.
//!
//! Classes: 0 nodata, 1 water, 2 vegetation, 3 bare soil/sand, 4 built/bright,
//! 5 cloud, 6 shadow. Rules (4 bands; SWIR sharpens water and built):
//! water when darker than `water_max_brightness` and NDWI > t (t from Otsu on
//! corridor NDWI, clamped around the configured default) or, with SWIR,
//! MNDWI > 0.3 with NDVI < 0.1;
//! vegetation when NDVI > `veg_ndvi`; built when brightness >
//! `built_brightness` and NDVI < 0.3; bare otherwise.

use super::indices::Indices;
use super::threshold::{masked, otsu};
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

/// Thresholds of the per-date land-cover rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LandCoverParams {
    /// Water is darker than this brightness (bright roofs can have NDWI near 0).
    pub water_max_brightness: f32,
    /// NDVI above which a pixel is vegetation.
    pub veg_ndvi: f32,
    /// Brightness above which non-vegetated land is built/bright.
    pub built_brightness: f32,
}

/// No data.
pub const NODATA: u8 = 0;
/// Open water.
pub const WATER: u8 = 1;
/// Vegetation.
pub const VEG: u8 = 2;
/// Bare soil or sand.
pub const BARE: u8 = 3;
/// Built-up or bright man-made surface.
pub const BUILT: u8 = 4;
/// Cloud.
pub const CLOUD: u8 = 5;
/// Cloud shadow.
pub const SHADOW: u8 = 6;

/// The adaptive water threshold: Otsu on NDWI over `region`, clamped to
/// `default ± 0.15`; the default when the region is empty.
pub fn water_threshold<'a>(
    ndwi: ArrayView2<'a, f32>,
    region: ArrayView2<'a, bool>,
    default: f32,
) -> f32 {
    otsu(masked(ndwi, region), -0.6, 0.8)
        .map_or(default, |t| t.clamp(default - 0.15, default + 0.15))
}

/// Classifies one date.
pub fn classify(
    ix: &Indices,
    valid: ArrayView2<bool>,
    unusable: ArrayView2<u8>,
    t_water: f32,
    p: &LandCoverParams,
) -> Array2<u8> {
    let (h, w) = valid.dim();
    let mut out = Array2::<u8>::zeros((h, w));
    let swir = ix.mndwi.is_some();
    // Row by row (one-dimensional reads, no per-pixel split of the work).
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(r, mut o)| {
            let (v, un) = (valid.row(r), unusable.row(r));
            let (nv, nw, b) = (ix.ndvi.row(r), ix.ndwi.row(r), ix.brightness.row(r));
            let m = ix.mndwi.as_ref().map(|a| a.row(r));
            for c in 0..w {
                o[c] = if !v[c] {
                    NODATA
                } else if un[c] != 0 {
                    un[c]
                } else {
                    let (ndvi, ndwi, br) = (nv[c], nw[c], b[c]);
                    let mndwi = m.as_ref().map_or(0.0, |m| m[c]);
                    if br < p.water_max_brightness
                        && (ndwi > t_water || (swir && mndwi > 0.3 && ndvi < 0.1))
                    {
                        WATER
                    } else if ndvi > p.veg_ndvi {
                        VEG
                    } else if ndvi < 0.3 && br > p.built_brightness {
                        BUILT
                    } else {
                        BARE
                    }
                };
            }
        });
    out
}
