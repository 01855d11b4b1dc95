//! Per-block work: the misregistration-tolerant change magnitude computed in
//! row blocks with a halo (so the same code serves a streaming reader), and
//! the adaptive change threshold.

use crate::domain::config::{Config, Method};
use crate::kernels::change;
use crate::kernels::changeprob::{self, TreeModel};
use crate::kernels::threshold::otsu;
use ndarray::{s, Array2, ArrayView2, ArrayView3};

/// Appearance and disappearance magnitudes (reflectance units).
pub struct Magnitude {
    /// Something new is here (drives encroachment).
    pub appeared: Array2<f32>,
    /// Something went away (kept by the any-change layer).
    pub vanished: Array2<f32>,
    /// The change model's probability (rules method, inside the zone's
    /// usable pixels; see [`with_probability`]).
    pub probability: Option<Array2<f32>>,
}

/// The change model's per-pixel probability on the flagged pixels `mask`
/// (0 elsewhere): it is read only as a component's mean over its pixels,
/// so pixels outside the cleaned mask need none. A flagged pixel is usable,
/// in the zone and within the closing's reach of a pixel over the weak
/// change threshold, so this is the value it had when the model ran over
/// all of those: the mask is a sixth to an eighth of them on the bench
/// pairs (10980²: 240,767 of 1,495,638 pixels), where the model had been
/// a fifth of the CPU time.
pub fn probability(
    x: &ProbabilityInput<'_>,
    mask: ArrayView2<bool>,
    model: &TreeModel,
) -> Array2<f32> {
    changeprob::probability(x.before, x.after, x.usable, mask, model)
}

/// The pixels [`probability`] reads.
pub struct ProbabilityInput<'a> {
    /// Earlier reflectance.
    pub before: ArrayView3<'a, f32>,
    /// Later reflectance, normalised and shifted.
    pub after: ArrayView3<'a, f32>,
    /// Usable on both dates (the features' windows read only these).
    pub usable: ArrayView2<'a, bool>,
}

/// Misregistration-tolerant appearance and disappearance magnitudes in row
/// blocks with a halo; only where `need` is true when it is given (0
/// elsewhere).
pub fn tolerant_blocks(
    before: ArrayView3<f32>,
    after: ArrayView3<f32>,
    radius: usize,
    block_rows: usize,
    need: Option<ArrayView2<bool>>,
) -> Magnitude {
    let (_, h, w) = after.dim();
    let mut ap = Array2::<f32>::zeros((h, w));
    let mut va = Array2::<f32>::zeros((h, w));
    for start in (0..h).step_by(block_rows) {
        let end = (start + block_rows).min(h);
        let (h0, h1) = (start.saturating_sub(radius), (end + radius).min(h));
        let (x, y) = change::tolerant_rows(
            before.slice(s![.., h0..h1, ..]),
            after.slice(s![.., h0..h1, ..]),
            radius,
            start - h0..end - h0,
            need.map(|n| n.slice_move(s![start..end, ..])),
        );
        ap.slice_mut(s![start..end, ..]).assign(&x);
        va.slice_mut(s![start..end, ..]).assign(&y);
    }
    Magnitude {
        appeared: ap,
        vanished: va,
        probability: None,
    }
}

/// The change magnitude of the configured method: tolerant (rules; only
/// inside `need` when given) or plain CVA (the baseline, whole scene).
pub fn magnitude(
    before: ArrayView3<f32>,
    after: ArrayView3<f32>,
    need: Option<ArrayView2<bool>>,
    cfg: &Config,
) -> Magnitude {
    match cfg.method {
        Method::Rules => {
            tolerant_blocks(before, after, cfg.misregistration_px, cfg.block_rows, need)
        }
        Method::CvaOtsu => {
            let m = change::cva(before, after);
            Magnitude {
                appeared: m.clone(),
                vanished: m,
                probability: None,
            }
        }
    }
}

/// The adaptive change threshold: Otsu on the larger of appearance and
/// disappearance over the usable pixels of the zone; for the rules method
/// clamped to `[min_change, max_change]` (a scene with little change has no
/// second mode, and a hazy one has a spread-out first mode).
pub fn threshold(m: &Magnitude, zone_usable: ArrayView2<bool>, cfg: &Config) -> f32 {
    let values = m
        .appeared
        .iter()
        .zip(m.vanished.iter())
        .zip(zone_usable.iter())
        .filter(|(_, &z)| z)
        .map(|((&a, &b), _)| a.max(b));
    let t = otsu(values, 0.0, 0.5).unwrap_or(cfg.min_change);
    match cfg.method {
        Method::Rules => t.clamp(cfg.min_change, cfg.max_change),
        Method::CvaOtsu => t,
    }
}
