//! Indices and land cover of both dates, with the adaptive water threshold
//! fitted on the usable pixels of the management zone.

use crate::domain::config::Config;
use crate::kernels::indices::{indices_with, Indices};
use crate::kernels::landcover::{self, classify};
use ndarray::{Array2, ArrayView2, ArrayView3, Zip};

/// Indices and land cover of both dates.
pub struct Cover {
    /// Indices of the earlier date (NDVI, NDWI, brightness, MNDWI with SWIR).
    pub before: Indices,
    /// Indices of the later date.
    pub after: Indices,
    /// Land cover of the earlier date (see `kernels::landcover`).
    pub lc_before: Array2<u8>,
    /// Land cover of the later date.
    pub lc_after: Array2<u8>,
    /// Adaptive NDWI water thresholds (before, after).
    pub water_threshold: [f32; 2],
    /// Usable pixels of the management zone.
    pub zone_usable: Array2<bool>,
}

/// Pixels that are both in `zone` and `usable`.
pub fn and(a: ArrayView2<bool>, b: ArrayView2<bool>) -> Array2<bool> {
    Zip::from(a).and(b).map_collect(|&x, &y| x && y)
}

/// Computes indices and land cover of both dates.
pub struct CoverInput<'a> {
    /// Earlier reflectance.
    pub before: ArrayView3<'a, f32>,
    /// Later reflectance, normalised and shifted.
    pub after: ArrayView3<'a, f32>,
    /// Valid on both dates.
    pub valid: ArrayView2<'a, bool>,
    /// Cloud/shadow codes (before, after).
    pub clouds: [ArrayView2<'a, u8>; 2],
    /// Management zone.
    pub zone: ArrayView2<'a, bool>,
    /// Usable on both dates.
    pub usable: ArrayView2<'a, bool>,
}

/// Indices and land cover of both dates.
pub fn land_cover(x: &CoverInput<'_>, cfg: &Config) -> Cover {
    land_cover_with(x, None, cfg)
}

/// [`land_cover`] with the water thresholds fixed when `water` is given
/// (the streaming path fits them once on a sample of the scene).
pub fn land_cover_with(x: &CoverInput<'_>, water: Option<[f32; 2]>, cfg: &Config) -> Cover {
    let ixb = indices_with(x.before, false);
    let ixa = indices_with(x.after, false);
    let zu = and(x.zone, x.usable);
    let tw = water.unwrap_or_else(|| {
        [
            landcover::water_threshold(ixb.ndwi.view(), zu.view(), cfg.water_ndwi),
            landcover::water_threshold(ixa.ndwi.view(), zu.view(), cfg.water_ndwi),
        ]
    });
    let p = cfg.landcover();
    let lc_b = classify(&ixb, x.valid, x.clouds[0], tw[0], &p);
    let lc_a = classify(&ixa, x.valid, x.clouds[1], tw[1], &p);
    Cover {
        before: ixb,
        after: ixa,
        lc_before: lc_b,
        lc_after: lc_a,
        water_threshold: tw,
        zone_usable: zu,
    }
}

impl Cover {
    /// Drops the index layers that no stage reads once land cover is
    /// classified and the wet ground found (NDBI, BSI and MNDWI of both
    /// dates): the streaming path holds cover rows for the rules' halo,
    /// and these are a third of them.
    pub fn drop_unread(&mut self) {
        for ix in [&mut self.before, &mut self.after] {
            ix.ndbi = None;
            ix.bsi = None;
            ix.mndwi = None;
        }
    }
}
