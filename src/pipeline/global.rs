//! The global pass over a whole scene: clouds and shadows on the raw data,
//! radiometric normalisation of the later date to the earlier, the global
//! sub-pixel shift, then thin clouds on the normalised data.

use crate::domain::config::Config;
use crate::kernels::{clouds, coregister, normalize};
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Zip};

/// The later date made comparable to the earlier, and what is unusable.
pub struct Prepared {
    /// Later date, normalised and shifted onto the earlier.
    pub after: Array3<f32>,
    /// Valid on both dates (after the shift).
    pub valid: Array2<bool>,
    /// Cloud (5) / shadow (6) codes of the earlier date, 0 elsewhere.
    pub clouds_before: Array2<u8>,
    /// Cloud / shadow codes of the later date.
    pub clouds_after: Array2<u8>,
    /// Valid and free of cloud and shadow on both dates.
    pub usable: Array2<bool>,
    /// Normalisation (later → earlier).
    pub fit: normalize::Fit,
    /// Estimated shift of the later image, pixels (x, y).
    pub shift: [f32; 2],
}

/// Valid and cloud-free on both dates.
pub fn usable(valid: ArrayView2<bool>, a: ArrayView2<u8>, b: ArrayView2<u8>) -> Array2<bool> {
    Zip::from(valid)
        .and(a)
        .and(b)
        .map_collect(|&v, &a, &b| v && a == 0 && b == 0)
}

/// Runs the global pass; with `rules` false (the CVA baseline) it only
/// passes the data through.
pub fn prepare(
    before: ArrayView3<f32>,
    mut after: Array3<f32>,
    valid: Array2<bool>,
    rules: bool,
    cfg: &Config,
) -> Prepared {
    let (h, w) = valid.dim();
    // Clouds and shadows are found on the raw data (haze is far smaller than a
    // cloud's brightening) so normalisation can leave them out of its fit.
    let (mut cs_b, mut cs_a) = if rules {
        clouds::clouds_and_shadows(before.view(), after.view(), valid.view(), &cfg.clouds())
    } else {
        (Array2::zeros((h, w)), Array2::zeros((h, w)))
    };
    let u = usable(valid.view(), cs_b.view(), cs_a.view());
    let fit = if rules && cfg.normalize {
        normalize::fit(before, after.view(), u.view(), 3, 4, cfg.normalize_keep)
    } else {
        normalize::Fit::identity(before.dim().0)
    };
    normalize::apply(after.view_mut(), &fit);
    let (after, valid, shift) = if rules && cfg.coregister {
        let (dx, dy) =
            coregister::estimate_shift(before, after.view(), u.view(), cfg.coregister_px as f32);
        let (a, v) = coregister::apply_shift(after.view(), valid.view(), dx, dy);
        (a, v, [dx, dy])
    } else {
        (after, valid, [0.0, 0.0])
    };
    // Thin cloud and haze patches show once haze differences are removed.
    if rules {
        let (tb, ta) =
            clouds::thin_clouds(before.view(), after.view(), valid.view(), &cfg.clouds());
        Zip::from(&mut cs_b)
            .and(&tb)
            .for_each(|c, &t| *c = (*c).max(t));
        Zip::from(&mut cs_a)
            .and(&ta)
            .for_each(|c, &t| *c = (*c).max(t));
    }
    let usable = usable(valid.view(), cs_b.view(), cs_a.view());
    Prepared {
        after,
        valid,
        clouds_before: cs_b,
        clouds_after: cs_a,
        usable,
        fit,
        shift,
    }
}
