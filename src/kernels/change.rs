//! Change magnitude and its adaptive threshold.
//!
//! The misregistration-tolerant magnitude at pixel p is
//! `max(min_q |A(p) − B(q)|, min_q |B(p) − A(q)|)` over q in the
//! `(2r+1)²` neighbourhood of p: a shift of up to r pixels between dates finds
//! the matching spectrum nearby and scores near zero, while a new object (no
//! similar spectrum nearby in the earlier date) or a vanished one (none in the
//! later date) scores high. Kernels take band-planar arrays
//! `(bands, rows, cols)`, the layout the reader produces.

use ndarray::{Array2, ArrayView2, ArrayView3, Axis, Zip};
use rayon::prelude::*;
use std::ops::Range;

/// Misregistration-tolerant change for output rows `rows` of planar arrays
/// `a` (earlier) and `b` (later): returns `(appeared, vanished)`, where
/// `appeared` = `min_q |B(p) − A'(q)|` (nothing like the later spectrum was
/// nearby before: something new is here) and `vanished` = `min_q |A(p) − B'(q)|`.
/// `A'(q)` ranges over the pixels of the other date within `radius` and the
/// 50/50 blends of horizontally, vertically and diagonally adjacent pairs
/// among them: a sub-pixel shift resampled bilinearly mixes neighbouring
/// spectra, and an edge between contrasting surfaces must not read as change.
/// The magnitude is the larger of the two. Rows of `a`/`b` outside `rows`
/// serve as the halo; pixels beyond the arrays are skipped. With `need`
/// (shaped like the output rows) only pixels where it is true are computed,
/// the others are 0; computed values do not depend on `need`.
pub fn tolerant_rows(
    a: ArrayView3<f32>,
    b: ArrayView3<f32>,
    radius: usize,
    rows: Range<usize>,
    need: Option<ArrayView2<bool>>,
) -> (Array2<f32>, Array2<f32>) {
    match a.dim().0 {
        4 => tolerant_n::<4>(a, b, radius, rows, need),
        5 => tolerant_n::<5>(a, b, radius, rows, need),
        // Other band counts: the first 8, missing ones read as 0.
        _ => tolerant_n::<8>(a, b, radius, rows, need),
    }
}

/// A match closer than this (reflectance 0.02, half the smallest change
/// threshold) ends the neighbourhood search early: the pixel is unchanged,
/// and how unchanged no longer matters. Most pixels stop at the centre.
const EARLY_EXIT2: f32 = 0.02 * 0.02;

/// Band planes of a block of rows, each contiguous and row-major.
struct Planes<'a, const N: usize> {
    p: [&'a [f32]; N],
    w: usize,
}

impl<'a, const N: usize> Planes<'a, N> {
    /// `None` when a plane is not contiguous.
    fn new(a: &ArrayView3<'a, f32>, zeros: &'a [f32]) -> Option<Self> {
        let (nb, h, w) = a.dim();
        let mut p = [zeros; N];
        for (k, slot) in p.iter_mut().enumerate().take(nb.min(N)) {
            let plane = a.index_axis_move(Axis(0), k);
            *slot = plane.to_slice().filter(|s| s.len() == h * w)?;
        }
        Some(Planes { p, w })
    }
}

/// Spectra addressed by pixel.
trait Spectra<const N: usize>: Sync {
    fn px(&self, y: usize, x: usize) -> [f32; N];
}

impl<const N: usize> Spectra<N> for Planes<'_, N> {
    #[inline(always)]
    fn px(&self, y: usize, x: usize) -> [f32; N] {
        let i = y * self.w + x;
        std::array::from_fn(|k| self.p[k][i])
    }
}

/// Pixel-interleaved copy of a block: each spectrum contiguous, which the
/// whole-block search reads faster than N planes.
struct Interleaved<const N: usize> {
    s: Vec<[f32; N]>,
    w: usize,
}

impl<const N: usize> Interleaved<N> {
    fn new(p: &Planes<'_, N>, h: usize) -> Self {
        let w = p.w;
        let mut s = vec![[0f32; N]; h * w];
        s.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
            for (k, plane) in p.p.iter().enumerate() {
                for (x, v) in plane[y * w..(y + 1) * w].iter().enumerate() {
                    row[x][k] = *v;
                }
            }
        });
        Interleaved { s, w }
    }
}

impl<const N: usize> Spectra<N> for Interleaved<N> {
    #[inline(always)]
    fn px(&self, y: usize, x: usize) -> [f32; N] {
        self.s[y * self.w + x]
    }
}

#[inline(always)]
fn dist2<const N: usize>(p: &[f32; N], q: &[f32; N]) -> f32 {
    let mut d = 0f32;
    for k in 0..N {
        let v = p[k] - q[k];
        d += v * v;
    }
    d
}

#[inline(always)]
fn dist2_pair<const N: usize>(p: &[f32; N], q: &[f32; N], o: &[f32; N]) -> f32 {
    let mut d = 0f32;
    for k in 0..N {
        let v = p[k] - 0.5 * (q[k] + o[k]);
        d += v * v;
    }
    d
}

#[inline(always)]
fn dist2_quad<const N: usize>(
    p: &[f32; N],
    a: &[f32; N],
    b: &[f32; N],
    c: &[f32; N],
    e: &[f32; N],
) -> f32 {
    let mut d = 0f32;
    for k in 0..N {
        let v = p[k] - 0.25 * (a[k] + b[k] + c[k] + e[k]);
        d += v * v;
    }
    d
}

/// Smallest squared distance from `p` to the spectra of `s` in the window
/// rows `y0..=y1`, cols `x0..=x1` and to the blends of adjacent pairs and
/// 2 × 2 groups. The centre is tried first so unchanged pixels stop early.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn nearest<const N: usize, S: Spectra<N>>(
    p: &[f32; N],
    s: &S,
    (y, x): (usize, usize),
    y0: usize,
    y1: usize,
    x0: usize,
    x1: usize,
) -> f32 {
    let mut m = dist2(p, &s.px(y, x));
    if m <= EARLY_EXIT2 {
        return m;
    }
    // Whole pixels first: a shift that the neighbourhood explains needs no blends.
    for yy in y0..=y1 {
        for xx in x0..=x1 {
            m = m.min(dist2(p, &s.px(yy, xx)));
        }
    }
    if m <= EARLY_EXIT2 {
        return m;
    }
    for yy in y0..=y1 {
        for xx in x0..=x1 {
            let q = s.px(yy, xx);
            let right = (xx < x1).then(|| s.px(yy, xx + 1));
            let down = (yy < y1).then(|| s.px(yy + 1, xx));
            if let Some(r) = &right {
                m = m.min(dist2_pair(p, &q, r));
            }
            if let Some(dn) = &down {
                m = m.min(dist2_pair(p, &q, dn));
            }
            if let (Some(r), Some(dn)) = (&right, &down) {
                m = m.min(dist2_quad(p, &q, r, dn, &s.px(yy + 1, xx + 1)));
            }
        }
        if m <= EARLY_EXIT2 {
            return m;
        }
    }
    m
}

fn tolerant_n<const N: usize>(
    a: ArrayView3<f32>,
    b: ArrayView3<f32>,
    radius: usize,
    rows: Range<usize>,
    need: Option<ArrayView2<bool>>,
) -> (Array2<f32>, Array2<f32>) {
    let (_, h, w) = a.dim();
    let mut appeared = Array2::<f32>::zeros((rows.len(), w));
    let mut vanished = Array2::<f32>::zeros((rows.len(), w));
    // Planes are used in place when each is contiguous (row blocks of a
    // standard-layout array are); anything else is copied once.
    // Missing bands (fewer than N) read as 0; with all N there, nothing
    // to zero (a block's plane was zeroed for nothing on every call).
    let zeros = if a.dim().0 < N {
        vec![0f32; h * w]
    } else {
        Vec::new()
    };
    let copy = |x: &ArrayView3<f32>| {
        (!x.axis_iter(Axis(0)).all(|p| p.is_standard_layout()))
            .then(|| x.as_standard_layout().into_owned())
    };
    let (ca, cb) = (copy(&a), copy(&b));
    let av = ca.as_ref().map_or_else(|| a.view(), |c| c.view());
    let bv = cb.as_ref().map_or_else(|| b.view(), |c| c.view());
    let (Some(sa), Some(sb)) = (Planes::<N>::new(&av, &zeros), Planes::<N>::new(&bv, &zeros))
    else {
        return (appeared, vanished);
    };
    // Sparse requests read the planes in place; whole blocks are worth an
    // interleaved copy of the block.
    if need.is_some() {
        search(
            &sa,
            &sb,
            h,
            radius,
            rows,
            need,
            &mut appeared,
            &mut vanished,
        );
    } else {
        let (ia, ib) = (Interleaved::new(&sa, h), Interleaved::new(&sb, h));
        search(
            &ia,
            &ib,
            h,
            radius,
            rows,
            need,
            &mut appeared,
            &mut vanished,
        );
    }
    (appeared, vanished)
}

#[allow(clippy::too_many_arguments)]
fn search<const N: usize, S: Spectra<N>>(
    sa: &S,
    sb: &S,
    h: usize,
    radius: usize,
    rows: Range<usize>,
    need: Option<ArrayView2<bool>>,
    appeared: &mut Array2<f32>,
    vanished: &mut Array2<f32>,
) {
    let w = appeared.ncols();
    appeared
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(vanished.axis_iter_mut(Axis(0)))
        .enumerate()
        .for_each(|(i, (mut orow, mut vrow))| {
            let y = rows.start + i;
            let (y0, y1) = (y.saturating_sub(radius), (y + radius).min(h - 1));
            let need = need.as_ref().map(|n| n.row(i));
            for x in 0..w {
                if need.as_ref().is_some_and(|n| !n[x]) {
                    continue;
                }
                let (x0, x1) = (x.saturating_sub(radius), (x + radius).min(w - 1));
                let (pb, pa) = (sb.px(y, x), sa.px(y, x));
                orow[x] = nearest(&pb, sa, (y, x), y0, y1, x0, x1).sqrt();
                vrow[x] = nearest(&pa, sb, (y, x), y0, y1, x0, x1).sqrt();
            }
        });
}

/// Misregistration-tolerant magnitude over whole arrays: the larger of
/// appearance and disappearance.
pub fn tolerant(a: ArrayView3<f32>, b: ArrayView3<f32>, radius: usize) -> Array2<f32> {
    let (ap, va) = tolerant_rows(a, b, radius, 0..a.dim().1, None);
    Zip::from(&ap).and(&va).map_collect(|&x, &y| x.max(y))
}

/// Classic change vector magnitude `|A(p) − B(p)|` over planar arrays.
pub fn cva(a: ArrayView3<f32>, b: ArrayView3<f32>) -> Array2<f32> {
    let (nb, h, w) = a.dim();
    let mut out = Array2::<f32>::zeros((h, w));
    for k in 0..nb {
        Zip::from(&mut out)
            .and(a.index_axis(Axis(0), k))
            .and(b.index_axis(Axis(0), k))
            .par_for_each(|o, &x, &y| *o += (x - y) * (x - y));
    }
    out.par_mapv_inplace(f32::sqrt);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn scene(shift: usize) -> Array3<f32> {
        // Stripes 3 px wide in two bands, shifted right by `shift`.
        Array3::from_shape_fn((2, 20, 20), |(b, _, c)| {
            if ((c + 20 - shift) / 3) % 2 == 0 {
                0.1 + b as f32 * 0.2
            } else {
                0.3
            }
        })
    }

    #[test]
    fn tolerates_shifts_up_to_the_radius() {
        let a = scene(0);
        for s in 1..=2 {
            let m = tolerant(a.view(), scene(s).view(), 2);
            // Away from the wrap-around at the edges.
            assert!(
                m.slice(ndarray::s![.., 4..16]).iter().all(|&v| v < 1e-6),
                "shift {s}: {m:?}"
            );
            assert!(cva(a.view(), scene(s).view()).iter().any(|&v| v > 0.1));
        }
        let mut b = a.clone();
        b[[0, 10, 10]] = 0.9;
        let m = tolerant(a.view(), b.view(), 2);
        assert!(m[[10, 10]] > 0.5);
    }

    #[test]
    fn row_blocks_with_halo_equal_the_whole() {
        let a = scene(0);
        let mut b = scene(1);
        b[[1, 5, 5]] = 0.8;
        let whole = tolerant(a.view(), b.view(), 2);
        // Block rows 8..14 computed from rows 6..16 (halo 2).
        let (ap, va) = tolerant_rows(
            a.slice(ndarray::s![.., 6..16, ..]),
            b.slice(ndarray::s![.., 6..16, ..]),
            2,
            2..8,
            None,
        );
        let part = Zip::from(&ap).and(&va).map_collect(|&x, &y| x.max(y));
        assert_eq!(part, whole.slice(ndarray::s![8..14, ..]));
    }

    #[test]
    fn parallel_equals_serial() {
        let a = Array3::from_shape_fn((4, 40, 33), |(b, r, c)| {
            ((r * 7 + c * 13 + b * 5) % 17) as f32 / 17.0
        });
        let b = Array3::from_shape_fn((4, 40, 33), |(b, r, c)| {
            ((r * 5 + c * 11 + b * 3) % 19) as f32 / 19.0
        });
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| tolerant(a.view(), b.view(), 2));
        let many = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap()
            .install(|| tolerant(a.view(), b.view(), 2));
        assert_eq!(one, many);
    }
}
