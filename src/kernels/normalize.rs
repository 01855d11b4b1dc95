//! Relative radiometric normalisation of the later date to the earlier,
//! `before = gain × after + offset` per band, fitted by least squares on
//! pixels taken as unchanged. Two ways to choose them ([`Selection`]):
//!
//! - the **residual fit** (0.2.0): start from the identity, keep the share
//!   of sample pixels with the lowest residual, refit, repeat. Haze and
//!   illumination differences are removed; change, clouds and phenology
//!   fall out of the kept set. Starting from the identity, it cannot follow
//!   a sensor change: a band whose gain leaves 0.5–2 is refused;
//! - **IR-MAD** ([`super::irmad`]): every sample pixel is scored for change
//!   in a way no affine difference between the dates can move, and the
//!   share with the lowest score is kept. A band whose kept pixels correlate
//!   under [`MIN_CORRELATION`] has its mean and spread matched instead of a
//!   fitted line, and is listed in [`Fit::weak`] so the caller says so.
//!
//! The default (`auto`) uses the residual fit and hands the whole fit to
//! IR-MAD when the residual fit refuses a band or leaves the trusted gains,
//! unless a band does not correlate over IR-MAD's unchanged pixels either
//! (a season, not a sensor): then the residual fit stays, and is named.

use super::irmad;
use ndarray::{ArrayView2, ArrayView3, ArrayViewMut3, Axis, Zip};
use rayon::prelude::*;
use serde::Serialize;

/// Fewest unchanged pixels a band is fitted on.
const MIN_KEPT: usize = 100;

/// A band is fitted only where its unchanged pixels correlate at least this
/// well between the dates: below 0.5 one date explains under a quarter of
/// the other's variance, which is noise or change, not a radiometric line.
pub const MIN_CORRELATION: f64 = 0.5;

/// Gains outside this range are refused whatever the fit: a factor of ten
/// between dates is a scale mistake (DN against reflectance), not
/// radiometry, and the radiometry check names it.
const GAIN_RANGE: [f64; 2] = [0.1, 10.0];

/// Fitted per-band gains and offsets (after → before).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Fit {
    /// Gain per band.
    pub gain: Vec<f32>,
    /// Offset per band.
    pub offset: Vec<f32>,
    /// Pixels the bands were fitted on (the unchanged share of the sample).
    pub samples: usize,
    /// Bands whose fit was refused, with the refused gain (NaN when the
    /// unchanged pixels had no spread or no correlation): those bands keep
    /// the identity, which the caller must say rather than trust.
    #[serde(skip)]
    pub rejected: Vec<(usize, f64)>,
    /// Bands whose unchanged pixels correlate under [`MIN_CORRELATION`],
    /// with that correlation: their mean and spread were matched instead
    /// of fitting a line.
    #[serde(skip)]
    pub weak: Vec<(usize, f64)>,
    /// With [`Selection::Auto`]: the bands on which IR-MAD's unchanged
    /// pixels correlated under [`MIN_CORRELATION`] (with that correlation),
    /// for which the residual fit was kept instead of IR-MAD's.
    #[serde(skip)]
    pub irmad_weak: Vec<(usize, f64)>,
    /// How the unchanged pixels were found, for the caller's notes.
    #[serde(skip)]
    pub quality: Option<FitQuality>,
}

/// How well the no-change selection and the per-band lines hold.
#[derive(Debug, Clone, PartialEq)]
pub struct FitQuality {
    /// IR-MAD iterations run.
    pub iterations: usize,
    /// Whether IR-MAD settled within its iteration limit.
    pub converged: bool,
    /// Canonical correlations, ascending.
    pub rho: Vec<f64>,
    /// Per band, the correlation of the two dates over the unchanged pixels.
    pub r: Vec<f64>,
    /// Whether IR-MAD could run at all (`false`: singular statistics even
    /// without the flat bands; the bands were fitted on every sample pixel).
    pub irmad: bool,
    /// With [`Selection::Auto`], the bands the residual fit refused or
    /// fitted outside the trusted range (with that gain) before IR-MAD
    /// took over.
    pub replaced: Vec<(usize, f64)>,
}

impl Fit {
    /// The identity (no change), for `n` bands.
    pub fn identity(n: usize) -> Fit {
        Fit {
            gain: vec![1.0; n],
            offset: vec![0.0; n],
            samples: 0,
            rejected: Vec::new(),
            weak: Vec::new(),
            irmad_weak: Vec::new(),
            quality: None,
        }
    }
}

/// How the unchanged pixels are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    /// The residual fit, and IR-MAD for the whole fit when the residual fit
    /// refuses a band (its gain outside 0.5–2) or gives a gain outside the
    /// trusted range (`trust_gain_range`, 0.7–1.4): a sensor change, which
    /// the residual fit, starting from the identity, follows badly or not
    /// at all. When a band correlates under [`MIN_CORRELATION`] over
    /// IR-MAD's unchanged pixels, the residual fit is kept
    /// ([`Fit::irmad_weak`]).
    #[default]
    Auto,
    /// IR-MAD always.
    Irmad,
    /// The residual fit only (0.2.0): start from the identity, keep the
    /// `keep` share of sample pixels with the lowest residual, refit,
    /// four times; a band whose gain leaves 0.5–2 keeps the identity.
    Residual,
}

/// Residual-fit iterations (0.2.0's four: the kept set no longer changes
/// after three on the synth and OSCD pairs).
const RESIDUAL_ITERATIONS: usize = 4;

/// Fits the normalisation from every `stride`-th valid pixel with the
/// chosen [`Selection`]; IR-MAD runs at most `iterations` iterations, and
/// with [`Selection::Auto`] takes over when a residual-fit gain leaves
/// `trusted`. Returns the identity when fewer than 200 samples are valid.
#[allow(clippy::too_many_arguments)]
pub fn fit(
    before: ArrayView3<f32>,
    after: ArrayView3<f32>,
    valid: ArrayView2<bool>,
    stride: usize,
    selection: Selection,
    iterations: usize,
    keep: f64,
    trusted: [f32; 2],
) -> Fit {
    let residual = || fit_residual(before, after, valid, stride, RESIDUAL_ITERATIONS, keep);
    match selection {
        Selection::Residual => residual(),
        Selection::Irmad => fit_irmad(before, after, valid, stride, iterations, keep),
        Selection::Auto => {
            let r = residual();
            let mut odd = r.rejected.clone();
            odd.extend(
                r.gain
                    .iter()
                    .enumerate()
                    .filter(|&(b, &g)| {
                        (g < trusted[0] || g > trusted[1]) && !r.rejected.iter().any(|x| x.0 == b)
                    })
                    .map(|(b, &g)| (b, f64::from(g))),
            );
            if odd.is_empty() {
                return r;
            }
            odd.sort_by_key(|x| x.0);
            let mut f = fit_irmad(before, after, valid, stride, iterations, keep);
            // An IR-MAD unchanged set over which a band correlates under
            // MIN_CORRELATION is no better than the residual fit's: a
            // season moved that band, not a sensor, and matching its mean
            // and spread flagged a sixth of Norcia (OSCD). The residual
            // fit is kept, and the caller says why.
            if !f.weak.is_empty() {
                let mut r = r;
                r.irmad_weak = f.weak;
                return r;
            }
            if let Some(q) = f.quality.as_mut() {
                q.replaced = odd;
            }
            f
        }
    }
}

/// Every `stride`-th valid pixel; `None` under 200 (too few to fit).
fn sample(valid: ArrayView2<bool>, stride: usize) -> Option<Vec<(usize, usize)>> {
    let (h, w) = valid.dim();
    let mut samples: Vec<(usize, usize)> = Vec::new();
    for r in (0..h).step_by(stride.max(1)) {
        for c in (0..w).step_by(stride.max(1)) {
            if valid[[r, c]] {
                samples.push((r, c));
            }
        }
    }
    (samples.len() >= 200).then_some(samples)
}

/// The residual fit (see the module documentation).
fn fit_residual(
    before: ArrayView3<f32>,
    after: ArrayView3<f32>,
    valid: ArrayView2<bool>,
    stride: usize,
    iterations: usize,
    keep: f64,
) -> Fit {
    let nb = before.len_of(Axis(0));
    let mut f = Fit::identity(nb);
    let Some(samples) = sample(valid, stride) else {
        return f;
    };
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

/// IR-MAD, then the `keep` share of the sample with the lowest χ² as the
/// unchanged pixels, each band fitted there by least squares.
fn fit_irmad(
    before: ArrayView3<f32>,
    after: ArrayView3<f32>,
    valid: ArrayView2<bool>,
    stride: usize,
    iterations: usize,
    keep: f64,
) -> Fit {
    let nb = before.len_of(Axis(0));
    let mut f = Fit::identity(nb);
    let Some(samples) = sample(valid, stride) else {
        return f;
    };
    let gather = |img: &ArrayView3<f32>| -> Vec<f64> {
        samples
            .par_iter()
            .flat_map_iter(|&(r, c)| (0..nb).map(move |b| img[[b, r, c]] as f64))
            .collect()
    };
    let (x, y) = (gather(&before), gather(&after));
    let n = samples.len();
    // Bands flat on either date cannot enter IR-MAD (singular statistics);
    // it runs on the others and the flat ones are refused below.
    let spread = |v: &[f64], b: usize| {
        let m = (0..n).map(|i| v[i * nb + b]).sum::<f64>() / n as f64;
        (0..n).map(|i| (v[i * nb + b] - m).powi(2)).sum::<f64>() / n as f64
    };
    let active: Vec<usize> = (0..nb)
        .filter(|&b| spread(&x, b) > 1e-12 && spread(&y, b) > 1e-12)
        .collect();
    let pick = |v: &[f64]| -> Vec<f64> {
        (0..n)
            .flat_map(|i| active.iter().map(move |&b| v[i * nb + b]))
            .collect()
    };
    let mad = if active.is_empty() {
        None
    } else {
        irmad::irmad(&pick(&x), &pick(&y), active.len(), iterations)
    };
    let k = ((n as f64 * keep) as usize).clamp(MIN_KEPT.min(n), n);
    let kept: Vec<usize> = match &mad {
        Some(m) => {
            let mut order: Vec<usize> = (0..n).collect();
            order.select_nth_unstable_by(k - 1, |&i, &j| {
                m.chi2[i].total_cmp(&m.chi2[j]).then(i.cmp(&j))
            });
            let mut kept = order[..k].to_vec();
            kept.sort_unstable();
            kept
        }
        None => (0..n).collect(),
    };
    f.samples = kept.len();
    let mut r_band = vec![0.0; nb];
    for b in 0..nb {
        let m = kept.len() as f64;
        let (mut sx, mut sy) = (0f64, 0f64);
        for &i in &kept {
            sx += y[i * nb + b];
            sy += x[i * nb + b];
        }
        let (mx, my) = (sx / m, sy / m);
        let (mut sxx, mut syy, mut sxy) = (0f64, 0f64, 0f64);
        for &i in &kept {
            let (dx, dy) = (y[i * nb + b] - mx, x[i * nb + b] - my);
            sxx += dx * dx;
            syy += dy * dy;
            sxy += dx * dy;
        }
        let r = sxy / (sxx * syy).sqrt();
        r_band[b] = if r.is_finite() { r } else { 0.0 };
        let fitted = sxy / sxx;
        // Below the correlation floor the line is not trusted: the band's
        // mean and spread are matched instead (and said).
        let (g, weak) = if r >= MIN_CORRELATION {
            (fitted, false)
        } else {
            ((syy / sxx).sqrt(), true)
        };
        if (GAIN_RANGE[0]..=GAIN_RANGE[1]).contains(&g) {
            f.gain[b] = g as f32;
            f.offset[b] = (my - g * mx) as f32;
            if weak {
                f.weak.push((b, r));
            }
        } else {
            f.rejected.push((b, g));
        }
    }
    f.quality = Some(FitQuality {
        iterations: mad.as_ref().map_or(0, |m| m.iterations),
        converged: mad.as_ref().is_some_and(|m| m.converged),
        rho: mad.as_ref().map_or_else(Vec::new, |m| m.rho.clone()),
        r: r_band,
        irmad: mad.is_some(),
        replaced: Vec::new(),
    });
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
        for sel in [Selection::Auto, Selection::Residual, Selection::Irmad] {
            let f = fit(
                before.view(),
                after.view(),
                Array2::from_elem((h, w), true).view(),
                1,
                sel,
                30,
                0.5,
                [0.7, 1.4],
            );
            assert!((f.gain[0] - 1.1).abs() < 0.01, "{sel:?} {f:?}");
            assert!((f.offset[1] - 0.02).abs() < 0.005, "{sel:?} {f:?}");
            assert!(f.rejected.is_empty(), "{sel:?} {f:?}");
        }
    }

    /// An 80 × 80 three-band pair: the later date is the earlier with
    /// `(v - offset) / gain` per band and a little noise, except every
    /// `changed_every`-th pixel, which is random (changed); all valid.
    fn sensor_pair(
        seed: u64,
        gain: [f32; 3],
        offset: f32,
        changed_every: usize,
    ) -> (Array3<f32>, Array3<f32>, Array2<bool>) {
        let (h, w) = (80, 80);
        let mut s = seed;
        let mut rnd = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32
        };
        let mut before = Array3::<f32>::zeros((3, h, w));
        let mut after = Array3::<f32>::zeros((3, h, w));
        for r in 0..h {
            for c in 0..w {
                let base = rnd();
                for b in 0..3 {
                    let v = 0.03 + 0.3 * base + 0.05 * rnd();
                    before[[b, r, c]] = v;
                    after[[b, r, c]] = if (r * w + c) % changed_every == 0 {
                        0.6 * rnd()
                    } else {
                        (v - offset) / gain[b] + 0.002 * (rnd() - 0.5)
                    };
                }
            }
        }
        (before, after, Array2::from_elem((h, w), true))
    }

    /// A season, not a sensor: one band of the later date follows the
    /// earlier only loosely (r well under 0.5) and at a tenth of its
    /// level, so the residual fit leaves the trusted gains and hands over,
    /// but over
    /// IR-MAD's unchanged pixels that band still does not correlate: the
    /// residual fit is kept, and the band is named. The same pair with the
    /// band intact goes to IR-MAD as before.
    #[test]
    fn a_band_irmad_cannot_fit_keeps_the_residual_fit() {
        let (before, mut after, all) = sensor_pair(5, [0.6, 1.0, 1.0], 0.0, 10);
        let run = |after: &Array3<f32>, sel| {
            fit(
                before.view(),
                after.view(),
                all.view(),
                1,
                sel,
                30,
                0.5,
                [0.7, 1.4],
            )
        };
        let intact = run(&after, Selection::Auto);
        assert!(intact.irmad_weak.is_empty(), "{intact:?}");
        assert!((intact.gain[0] - 0.6).abs() < 0.01, "{intact:?}");
        let mut s = 11u64;
        for v in after.index_axis_mut(Axis(0), 0).iter_mut() {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = (s >> 40) as f32 / (1u64 << 24) as f32;
            *v = 0.1 * (0.15 * *v + 0.85 * 0.4 * noise);
        }
        let auto = run(&after, Selection::Auto);
        let residual = run(&after, Selection::Residual);
        assert_eq!(auto.irmad_weak.first().map(|w| w.0), Some(0), "{auto:?}");
        assert!(auto.irmad_weak[0].1 < MIN_CORRELATION, "{auto:?}");
        assert_eq!(auto.gain, residual.gain, "{auto:?}");
        assert_eq!(auto.offset, residual.offset, "{auto:?}");
    }

    /// A sensor change between the dates (gains 0.4 and 2.6, which the
    /// 0.2.0 fit refused and left at 1) is recovered, with a tenth of the
    /// pixels truly changed; a constant band is refused and said.
    #[test]
    fn recovers_a_sensor_change_and_refuses_a_flat_band() {
        let (before, mut after, all) = sensor_pair(3, [0.4, 2.6, 1.0], 0.01, 10);
        let f = fit(
            before.view(),
            after.view(),
            all.view(),
            1,
            Selection::Auto,
            30,
            0.5,
            [0.7, 1.4],
        );
        assert!((f.gain[0] - 0.4).abs() < 0.01, "{f:?}");
        assert!((f.gain[1] - 2.6).abs() < 0.05, "{f:?}");
        assert!((f.offset[0] - 0.01).abs() < 0.003, "{f:?}");
        assert!(f.rejected.is_empty(), "{f:?}");
        // Auto got there through IR-MAD, after the residual fit refused
        // band 2 (gain 2.6); the residual fit alone leaves it at 1.
        assert!(f
            .quality
            .as_ref()
            .is_some_and(|q| q.replaced.iter().any(|r| r.0 == 1)));
        let r = fit(
            before.view(),
            after.view(),
            all.view(),
            1,
            Selection::Residual,
            30,
            0.5,
            [0.7, 1.4],
        );
        assert_eq!(r.gain[1], 1.0);
        // The third band flat on the later date: IR-MAD runs on the other
        // two, the flat band is refused (left at 1) and said.
        after.index_axis_mut(Axis(0), 2).fill(0.2);
        let f = fit(
            before.view(),
            after.view(),
            all.view(),
            1,
            Selection::Auto,
            30,
            0.5,
            [0.7, 1.4],
        );
        assert!((f.gain[1] - 2.6).abs() < 0.05, "{f:?}");
        assert_eq!(f.rejected.len(), 1, "{f:?}");
        assert_eq!((f.rejected[0].0, f.gain[2]), (2, 1.0));
        assert!(f.quality.as_ref().is_some_and(|q| q.irmad));
    }

    /// A moderate sensor change (band gains 0.6 and 1.0, inside the
    /// residual fit's 0.5–2) with a fifth of the pixels changed: `auto`
    /// hands the fit to IR-MAD because a residual gain leaves the trusted
    /// range, and says which; with a range that trusts it, the residual fit
    /// is kept.
    #[test]
    fn auto_hands_an_untrusted_gain_to_irmad() {
        let (before, after, all) = sensor_pair(11, [0.6, 1.0, 1.0], 0.0, 5);
        let run = |trusted| {
            fit(
                before.view(),
                after.view(),
                all.view(),
                1,
                Selection::Auto,
                30,
                0.5,
                trusted,
            )
        };
        let f = run([0.7, 1.4]);
        assert!((f.gain[0] - 0.6).abs() < 0.01, "{f:?}");
        assert!((f.gain[1] - 1.0).abs() < 0.01, "{f:?}");
        let q = f.quality.as_ref().expect("IR-MAD ran");
        assert_eq!(q.replaced.iter().map(|r| r.0).collect::<Vec<_>>(), [0]);
        let r = run([0.5, 2.0]);
        assert!(r.quality.is_none(), "{r:?}");
    }
}
