//! The global pass over a whole scene: clouds and shadows on the raw data,
//! radiometric normalisation of the later date to the earlier, the global
//! sub-pixel shift, then thin clouds on the normalised data.

use crate::domain::config::Config;
use crate::kernels::clouds::Cast;
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
    /// Shadow cast offsets per date.
    pub cast: Cast,
}

impl Prepared {
    /// The land-cover input of the earlier date `before` and this prepared
    /// later date, over `zone`.
    pub fn cover_input<'a>(
        &'a self,
        before: ArrayView3<'a, f32>,
        zone: ArrayView2<'a, bool>,
    ) -> super::cover::CoverInput<'a> {
        super::cover::CoverInput {
            before,
            after: self.after.view(),
            valid: self.valid.view(),
            clouds: [self.clouds_before.view(), self.clouds_after.view()],
            zone,
            usable: self.usable.view(),
        }
    }
}

/// Valid and cloud-free on both dates.
pub fn usable(valid: ArrayView2<bool>, a: ArrayView2<u8>, b: ArrayView2<u8>) -> Array2<bool> {
    Zip::from(valid)
        .and(a)
        .and(b)
        .map_collect(|&v, &a, &b| v && a == 0 && b == 0)
}

/// Clouds and shadows on the raw data of both dates (none for the CVA
/// baseline), with the shadow cast offsets estimated or, when `cast` is
/// given, fixed.
pub fn clouds_raw<'a>(
    before: ArrayView3<'a, f32>,
    after: ArrayView3<'a, f32>,
    valid: ArrayView2<bool>,
    rules: bool,
    cast: Option<Cast>,
    cfg: &Config,
) -> (Array2<u8>, Array2<u8>, Cast) {
    if rules {
        clouds::clouds_and_shadows_cast(before, after, valid, &cfg.clouds(), cast)
    } else {
        let d = valid.dim();
        (Array2::zeros(d), Array2::zeros(d), [None, None])
    }
}

/// IR-MAD iterations at most: the canonical correlations settle to 1e-5
/// within 10–20 on real pairs (Nielsen 2007 reports about ten).
pub const IRMAD_ITERATIONS: usize = 30;

/// Whether the later date is shifted onto the earlier.
fn shifts(rules: bool, cfg: &Config) -> bool {
    rules && cfg.coregister
}

/// Normalises the later date and applies the shift (a fixed global fit and
/// shift, as the streaming path does per block).
pub fn align(
    mut after: Array3<f32>,
    valid: Array2<bool>,
    fit: &normalize::Fit,
    shift: [f32; 2],
    rules: bool,
    cfg: &Config,
) -> (Array3<f32>, Array2<bool>) {
    normalize::apply(after.view_mut(), fit);
    if shifts(rules, cfg) {
        coregister::apply_shift(after.view(), valid.view(), shift[0], shift[1])
    } else {
        (after, valid)
    }
}

/// Thin clouds and haze on the aligned data, added to the cloud codes;
/// returns them with what is usable.
pub fn thin<'a>(
    before: ArrayView3<'a, f32>,
    after: ArrayView3<'a, f32>,
    valid: ArrayView2<bool>,
    mut cs: [Array2<u8>; 2],
    rules: bool,
    cfg: &Config,
) -> ([Array2<u8>; 2], Array2<bool>) {
    if rules {
        let (tb, ta) = clouds::thin_clouds(before, after, valid, &cfg.clouds());
        for (c, t) in cs.iter_mut().zip([tb, ta]) {
            Zip::from(c).and(&t).for_each(|c, &t| *c = (*c).max(t));
        }
    }
    let u = usable(valid, cs[0].view(), cs[1].view());
    (cs, u)
}

/// [`thin`] for rows `inner` of a window, from the window's thin-cloud
/// levels ([`clouds::thin_levels`]; `None` for the CVA baseline) and the
/// raw-data cloud codes and valid mask of those rows: the same values as
/// [`thin`] on the window, cut to `inner`.
pub fn thin_from_levels(
    levels: Option<[ArrayView2<u8>; 2]>,
    inner: std::ops::Range<usize>,
    valid: ArrayView2<bool>,
    mut cs: [Array2<u8>; 2],
    cfg: &Config,
) -> ([Array2<u8>; 2], Array2<bool>) {
    if let Some(lv) = levels {
        let (tb, ta) = clouds::thin_clouds_from_levels(lv, &cfg.clouds());
        for (c, t) in cs.iter_mut().zip([tb, ta]) {
            Zip::from(c)
                .and(t.slice(ndarray::s![inner.clone(), ..]))
                .for_each(|c, &t| *c = (*c).max(t));
        }
    }
    let u = usable(valid, cs[0].view(), cs[1].view());
    (cs, u)
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
    // Clouds and shadows are found on the raw data (haze is far smaller than a
    // cloud's brightening) so normalisation can leave them out of its fit.
    let (cs_b, cs_a, cast) =
        clouds_raw(before.view(), after.view(), valid.view(), rules, None, cfg);
    let u = usable(valid.view(), cs_b.view(), cs_a.view());
    let fit = if rules && cfg.normalize {
        normalize::fit(
            before,
            after.view(),
            u.view(),
            3,
            cfg.normalize_selection,
            IRMAD_ITERATIONS,
            cfg.normalize_keep,
            cfg.trust_gain_range,
        )
    } else {
        normalize::Fit::identity(before.dim().0)
    };
    normalize::apply(after.view_mut(), &fit);
    let (after, valid, shift) = if shifts(rules, cfg) {
        let (dx, dy) =
            coregister::estimate_shift(before, after.view(), u.view(), cfg.coregister_px as f32);
        let (a, v) = coregister::apply_shift(after.view(), valid.view(), dx, dy);
        (a, v, [dx, dy])
    } else {
        (after, valid, [0.0, 0.0])
    };
    // Thin cloud and haze patches show once haze differences are removed.
    let ([cs_b, cs_a], usable) = thin(
        before.view(),
        after.view(),
        valid.view(),
        [cs_b, cs_a],
        rules,
        cfg,
    );
    Prepared {
        after,
        valid,
        clouds_before: cs_b,
        clouds_after: cs_a,
        usable,
        fit,
        shift,
        cast,
    }
}
