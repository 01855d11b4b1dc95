//! Relative radiometric normalisation of the later date to the earlier by
//! iterated per-band regression on pseudo-invariant pixels: start from the
//! identity, keep the share of sample pixels with the lowest residual, refit
//! `before = gain × after + offset` per band by least squares, repeat. Haze
//! (additive) and illumination (multiplicative) differences between dates are
//! removed; true changes, clouds and phenology fall out of the kept set.

use ndarray::{ArrayView2, ArrayView3, ArrayViewMut3, Axis, Zip};
use rayon::prelude::*;
use serde::Serialize;

/// Fitted per-band gains and offsets (after → before).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Fit {
    /// Gain per band.
    pub gain: Vec<f32>,
    /// Offset per band.
    pub offset: Vec<f32>,
    /// Pseudo-invariant pixels used in the last iteration.
    pub samples: usize,
    /// Bands whose last fit was refused, with the refused gain (NaN when
    /// the kept pixels had no spread): those bands keep the identity, which
    /// the caller must say rather than trust.
    #[serde(skip)]
    pub rejected: Vec<(usize, f64)>,
}

impl Fit {
    /// The identity (no change), for `n` bands.
    pub fn identity(n: usize) -> Fit {
        Fit {
            gain: vec![1.0; n],
            offset: vec![0.0; n],
            samples: 0,
            rejected: Vec::new(),
        }
    }
}

/// Fits the normalisation from every `stride`-th valid pixel, `iterations`
/// times, keeping the `keep` share with the lowest residual each time.
/// Returns the identity when fewer than 200 samples are valid.
pub fn fit(
    before: ArrayView3<f32>,
    after: ArrayView3<f32>,
    valid: ArrayView2<bool>,
    stride: usize,
    iterations: usize,
    keep: f64,
) -> Fit {
    let nb = before.len_of(Axis(0));
    let (h, w) = valid.dim();
    let mut samples: Vec<(usize, usize)> = Vec::new();
    for r in (0..h).step_by(stride.max(1)) {
        for c in (0..w).step_by(stride.max(1)) {
            if valid[[r, c]] {
                samples.push((r, c));
            }
        }
    }
    let mut f = Fit::identity(nb);
    if samples.len() < 200 {
        return f;
    }
    // Sample spectra gathered once: (after, before) per band, contiguous.
    let data: Vec<f32> = samples
        .par_iter()
        .flat_map_iter(|&(r, c)| (0..nb).flat_map(move |b| [after[[b, r, c]], before[[b, r, c]]]))
        .collect();
    let px = |i: usize| &data[i * 2 * nb..(i + 1) * 2 * nb];
    for _ in 0..iterations {
        let mut res: Vec<(f32, usize)> = (0..samples.len())
            .into_par_iter()
            .map(|i| {
                let p = px(i);
                let e: f32 = (0..nb)
                    .map(|b| (f.gain[b] * p[2 * b] + f.offset[b] - p[2 * b + 1]).powi(2))
                    .sum();
                (e, i)
            })
            .collect();
        let k = ((res.len() as f64 * keep) as usize).clamp(100, res.len());
        res.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        // The selection is deterministic, so is the order of the sums.
        let kept = &res[..k];
        let mut next = Fit::identity(nb);
        next.samples = k;
        for b in 0..nb {
            let (mut sx, mut sy, mut sxx, mut sxy) = (0f64, 0f64, 0f64, 0f64);
            for &(_, i) in kept.iter() {
                let p = px(i);
                let (x, y) = (p[2 * b] as f64, p[2 * b + 1] as f64);
                sx += x;
                sy += y;
                sxx += x * x;
                sxy += x * y;
            }
            let n = k as f64;
            let var = sxx - sx * sx / n;
            let g = if var > 1e-9 {
                (sxy - sx * sy / n) / var
            } else {
                f64::NAN
            };
            // A gain outside 0.5–2 means the fit latched onto change, not
            // on illumination; keep the identity for that band (and say so).
            if (0.5..=2.0).contains(&g) {
                next.gain[b] = g as f32;
                next.offset[b] = ((sy - g * sx) / n) as f32;
            } else {
                next.rejected.push((b, g));
            }
        }
        f = next;
    }
    f
}

/// Applies a fit in place.
pub fn apply(mut after: ArrayViewMut3<f32>, f: &Fit) {
    for (b, mut plane) in after.axis_iter_mut(Axis(0)).enumerate() {
        let (g, o) = (f.gain[b], f.offset[b]);
        Zip::from(&mut plane).par_for_each(|v| *v = (*v * g + o).max(0.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Array3};

    #[test]
    fn recovers_gain_and_offset_despite_changes() {
        let (h, w) = (60, 60);
        let mut s = 1u64;
        let mut before = Array3::<f32>::zeros((2, h, w));
        for v in before.iter_mut() {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *v = 0.02 + ((s >> 40) as f32 / (1u64 << 24) as f32) * 0.4;
        }
        let mut after = before.mapv(|v| (v - 0.02) / 1.1);
        // 20 % of pixels truly changed.
        for r in 0..h / 5 {
            for c in 0..w {
                after[[0, r, c]] = 0.5;
                after[[1, r, c]] = 0.01;
            }
        }
        let f = fit(
            before.view(),
            after.view(),
            Array2::from_elem((h, w), true).view(),
            1,
            4,
            0.5,
        );
        assert!((f.gain[0] - 1.1).abs() < 0.01, "{f:?}");
        assert!((f.offset[1] - 0.02).abs() < 0.005, "{f:?}");
    }
}
