//! Thresholds: Otsu's split of a histogram, and hysteresis on connected
//! components.

use ndarray::{Array2, ArrayView2, Zip};

/// Otsu's threshold over values in `[lo, hi]` with 256 bins (values outside
/// are clamped). Returns `None` for fewer than 2 values.
pub fn otsu(values: impl Iterator<Item = f32>, lo: f32, hi: f32) -> Option<f32> {
    const N: usize = 256;
    let mut hist = [0u64; N];
    let mut n = 0u64;
    let span = (hi - lo).max(1e-9);
    for v in values {
        let k = (((v - lo) / span) * N as f32).clamp(0.0, (N - 1) as f32) as usize;
        hist[k] += 1;
        n += 1;
    }
    if n < 2 {
        return None;
    }
    let total: f64 = hist
        .iter()
        .enumerate()
        .map(|(i, &c)| i as f64 * c as f64)
        .sum();
    let (mut w0, mut s0, mut best, mut arg) = (0f64, 0f64, -1f64, 0usize);
    for (i, &c) in hist.iter().enumerate() {
        w0 += c as f64;
        s0 += i as f64 * c as f64;
        let w1 = n as f64 - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (s0 / w0, (total - s0) / w1);
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            arg = i;
        }
    }
    Some(lo + (arg as f32 + 1.0) / N as f32 * span)
}

/// Values of `a` where `m` is true.
pub fn masked<'a>(
    a: ArrayView2<'a, f32>,
    m: ArrayView2<'a, bool>,
) -> impl Iterator<Item = f32> + 'a {
    a.into_iter().zip(m).filter(|(_, &k)| k).map(|(&v, _)| v)
}

/// How far (4-connected steps) hysteresis grows a weak region from a
/// strong pixel: 64 px is 640 m at 10 m, longer than the encroachments we
/// report, and a bound keeps the operation local, so row blocks with a halo
/// give exactly the whole-scene result (see `pipeline::stream`).
pub const HYSTERESIS_REACH: usize = 32;

/// Keeps the pixels of `weak` reachable (4-connected, inside `weak`, at
/// most [`HYSTERESIS_REACH`] steps) from a pixel with `strength` above
/// `strong`: the 4-connected components of `weak` that hold a strong pixel,
/// except the far ends of very long ones.
pub fn hysteresis(weak: ArrayView2<bool>, strength: ArrayView2<f32>, strong: f32) -> Array2<bool> {
    let seed = Zip::from(&weak)
        .and(&strength)
        .map_collect(|&w, &m| w && m > strong);
    crate::kernels::morphology::reconstruct(seed.view(), weak, HYSTERESIS_REACH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_splits_two_modes() {
        let v: Vec<f32> = (0..1000)
            .map(|i| if i < 800 { 0.02 } else { 0.3 })
            .collect();
        let t = otsu(v.into_iter(), 0.0, 0.5).unwrap();
        assert!(t > 0.02 && t < 0.3, "{t}");
    }

    #[test]
    fn hysteresis_keeps_components_with_a_strong_pixel() {
        let weak = ndarray::array![[true, true, false, true], [false, false, false, true]];
        let strength = ndarray::array![[0.1f32, 0.9, 0.0, 0.2], [0.0, 0.0, 0.0, 0.3]];
        let k = hysteresis(weak.view(), strength.view(), 0.5);
        assert_eq!(
            k,
            ndarray::array![[true, true, false, false], [false, false, false, false]]
        );
    }
}
