//! Binary morphology with a 3 × 3 cross (4-neighbourhood) or square, and
//! bounded geodesic reconstruction.

use ndarray::{Array2, ArrayView2, Zip};
use rayon::prelude::*;

/// Structuring element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// 4-neighbourhood plus centre.
    Cross,
    /// 8-neighbourhood plus centre.
    Square,
}

fn step(m: ArrayView2<bool>, shape: Shape, dilate: bool) -> Array2<bool> {
    match (shape, dilate) {
        (Shape::Cross, true) => step_n::<false, true>(m),
        (Shape::Cross, false) => step_n::<false, false>(m),
        (Shape::Square, true) => step_n::<true, true>(m),
        (Shape::Square, false) => step_n::<true, false>(m),
    }
}

/// One dilation (`DILATE`) or erosion with a cross or (`SQUARE`) a square,
/// row by row over three row slices. Outside the raster counts as
/// background for dilation and as foreground for erosion, so edges neither
/// grow nor shrink.
fn step_n<const SQUARE: bool, const DILATE: bool>(m: ArrayView2<bool>) -> Array2<bool> {
    let m = m.as_standard_layout();
    let (h, w) = m.dim();
    let mut out = Array2::from_elem((h, w), false);
    let (Some(s), Some(o)) = (m.as_slice(), out.as_slice_mut()) else {
        return out;
    };
    if w == 0 {
        return out;
    }
    let edge = !DILATE;
    let op = |a: bool, b: bool| if DILATE { a | b } else { a & b };
    o.par_chunks_mut(w).enumerate().for_each(|(r, row)| {
        let cur = &s[r * w..(r + 1) * w];
        // The column through the row before and after (outside: `edge`),
        // as a plain byte-wise pass the compiler vectorises.
        let mut vert = cur.to_vec();
        for other in [(r > 0).then(|| r - 1), (r + 1 < h).then_some(r + 1)] {
            match other {
                Some(k) => {
                    for (v, &x) in vert.iter_mut().zip(&s[k * w..(k + 1) * w]) {
                        *v = op(*v, x);
                    }
                }
                None => vert.iter_mut().for_each(|v| *v = op(*v, edge)),
            }
        }
        // Across: the square takes the columns' neighbours, the cross the
        // row's own.
        let across = if SQUARE { &vert[..] } else { cur };
        row.copy_from_slice(&vert);
        if w > 1 {
            for c in 1..w - 1 {
                row[c] = op(row[c], op(across[c - 1], across[c + 1]));
            }
            row[0] = op(row[0], op(edge, across[1]));
            row[w - 1] = op(row[w - 1], op(across[w - 2], edge));
        } else {
            row[0] = op(row[0], edge);
        }
    });
    out
}

/// Dilation repeated `n` times.
pub fn dilate(m: ArrayView2<bool>, shape: Shape, n: usize) -> Array2<bool> {
    let mut a = m.to_owned();
    for _ in 0..n {
        a = step(a.view(), shape, true);
    }
    a
}

/// Erosion repeated `n` times.
pub fn erode(m: ArrayView2<bool>, shape: Shape, n: usize) -> Array2<bool> {
    let mut a = m.to_owned();
    for _ in 0..n {
        a = step(a.view(), shape, false);
    }
    a
}

/// Opening: erosion then dilation. Removes specks narrower than the element.
pub fn open(m: ArrayView2<bool>, shape: Shape, n: usize) -> Array2<bool> {
    dilate(erode(m, shape, n).view(), shape, n)
}

/// Closing: dilation then erosion. Fills pinholes and one-pixel gaps.
pub fn close(m: ArrayView2<bool>, shape: Shape, n: usize) -> Array2<bool> {
    erode(dilate(m, shape, n).view(), shape, n)
}

/// Calls `f` with each 4-connected neighbour of `(r, c)` inside an
/// `(h, w)` raster.
pub fn neighbours4(
    (r, c): (usize, usize),
    (h, w): (usize, usize),
    mut f: impl FnMut(usize, usize),
) {
    if r > 0 {
        f(r - 1, c);
    }
    if r + 1 < h {
        f(r + 1, c);
    }
    if c > 0 {
        f(r, c - 1);
    }
    if c + 1 < w {
        f(r, c + 1);
    }
}

/// Grows `seed` inside `mask` by at most `steps` 4-connected pixels
/// (bounded geodesic reconstruction), by breadth-first search: the cost
/// follows the grown area, not `steps` × the raster.
pub fn reconstruct(seed: ArrayView2<bool>, mask: ArrayView2<bool>, steps: usize) -> Array2<bool> {
    let (h, w) = mask.dim();
    let mut out = Zip::from(&seed).and(&mask).map_collect(|&s, &m| s && m);
    let mut frontier: Vec<(usize, usize)> = out
        .indexed_iter()
        .filter(|(_, &v)| v)
        .map(|(i, _)| i)
        .collect();
    for _ in 0..steps {
        if frontier.is_empty() {
            break;
        }
        let mut next = Vec::new();
        for (r, c) in frontier {
            neighbours4((r, c), (h, w), |rr, cc| {
                if mask[[rr, cc]] && !out[[rr, cc]] {
                    out[[rr, cc]] = true;
                    next.push((rr, cc));
                }
            });
        }
        frontier = next;
    }
    out
}

/// Distance in pixels (chessboard, capped at `cap`) to the nearest `true`
/// pixel, by the two-pass distance transform. Each pass takes a row at a
/// time: first the three neighbours in the row before (independent along
/// the row, so the compiler vectorises it), then the neighbour before in
/// the same row (a sweep); the same minimum as visiting pixel by pixel.
pub fn distance_to(m: ArrayView2<bool>, cap: u8) -> Array2<u8> {
    let (h, w) = m.dim();
    // Standard layout whatever the view's (a transposed view maps to a
    // column-major array), so the rows below are contiguous.
    let mut d = m.as_standard_layout().mapv(|v| if v { 0u8 } else { cap });
    if w == 0 {
        return d;
    }
    let flat = d
        .as_slice_mut()
        .expect("a standard-layout array is contiguous");
    // From the row before (forward) or after (backward): up-left, up,
    // up-right (or their mirror), each one further.
    let from_row = |cur: &mut [u8], other: &[u8]| {
        cur[0] = cur[0].min(other[0].saturating_add(1));
        if w > 1 {
            cur[0] = cur[0].min(other[1].saturating_add(1));
            cur[w - 1] = cur[w - 1]
                .min(other[w - 1].saturating_add(1))
                .min(other[w - 2].saturating_add(1));
        }
        for c in 1..w.saturating_sub(1) {
            let o = other[c - 1].min(other[c]).min(other[c + 1]);
            cur[c] = cur[c].min(o.saturating_add(1));
        }
    };
    for r in 0..h {
        let (done, rest) = flat.split_at_mut(r * w);
        let cur = &mut rest[..w];
        if r > 0 {
            from_row(cur, &done[(r - 1) * w..]);
        }
        for c in 1..w {
            cur[c] = cur[c].min(cur[c - 1].saturating_add(1));
        }
        for v in cur.iter_mut() {
            *v = (*v).min(cap);
        }
    }
    for r in (0..h).rev() {
        let (head, below) = flat.split_at_mut((r + 1) * w);
        let cur = &mut head[r * w..];
        if r + 1 < h {
            from_row(cur, &below[..w]);
        }
        for c in (0..w - 1).rev() {
            cur[c] = cur[c].min(cur[c + 1].saturating_add(1));
        }
        for v in cur.iter_mut() {
            *v = (*v).min(cap);
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mask(bits: &[bool], w: usize) -> Array2<bool> {
        Array2::from_shape_vec((bits.len() / w, w), bits.to_vec()).unwrap()
    }

    /// The definition, pixel by pixel.
    fn naive(m: &Array2<bool>, shape: Shape, dilate: bool) -> Array2<bool> {
        let (h, w) = m.dim();
        Array2::from_shape_fn((h, w), |(r, c)| {
            let mut acc = m[[r, c]];
            for dr in -1isize..=1 {
                for dc in -1isize..=1 {
                    if shape == Shape::Cross && dr != 0 && dc != 0 {
                        continue;
                    }
                    let (rr, cc) = (r as isize + dr, c as isize + dc);
                    let v = if rr < 0 || cc < 0 || rr >= h as isize || cc >= w as isize {
                        !dilate
                    } else {
                        m[[rr as usize, cc as usize]]
                    };
                    acc = if dilate { acc | v } else { acc & v };
                }
            }
            acc
        })
    }

    proptest! {
        #[test]
        fn row_wise_step_equals_the_definition(bits in proptest::collection::vec(any::<bool>(), 70), w in 1usize..8) {
            let n = bits.len() / w * w;
            let m = mask(&bits[..n], w);
            for shape in [Shape::Cross, Shape::Square] {
                prop_assert_eq!(dilate(m.view(), shape, 1), naive(&m, shape, true));
                prop_assert_eq!(erode(m.view(), shape, 1), naive(&m, shape, false));
            }
        }

        #[test]
        fn opening_and_closing_are_idempotent(bits in proptest::collection::vec(any::<bool>(), 64)) {
            let m = mask(&bits, 8);
            let o = open(m.view(), Shape::Cross, 1);
            prop_assert_eq!(open(o.view(), Shape::Cross, 1), o.clone());
            let c = close(m.view(), Shape::Square, 1);
            prop_assert_eq!(close(c.view(), Shape::Square, 1), c);
            // Opening shrinks, closing grows.
            prop_assert!(Zip::from(&o).and(&m).all(|&o, &m| !o || m));
        }
    }

    proptest! {
        #[test]
        fn fast_reconstruct_and_distance_equal_iterated_dilation(bits in proptest::collection::vec(any::<bool>(), 99), seeds in proptest::collection::vec(any::<bool>(), 99)) {
            let m = mask(&bits, 11);
            let s = mask(&seeds, 11).mapv(|v| v) & &m.mapv(|v| v);
            let sparse = Zip::from(&s).and(&mask(&seeds, 11)).map_collect(|&a, &b| a && b);
            // Iterated: dilate (cross) inside the mask.
            let mut it = Zip::from(&sparse).and(&m).map_collect(|&a, &b| a && b);
            for _ in 0..3 {
                let d = dilate(it.view(), Shape::Cross, 1);
                it = Zip::from(&d).and(&m).map_collect(|&a, &b| a && b);
            }
            prop_assert_eq!(reconstruct(sparse.view(), m.view(), 3), it);
            // Chessboard distance by iterated square dilation.
            let mut expect = m.mapv(|v| if v { 0u8 } else { 4 });
            let mut cur = m.clone();
            for k in 1..4u8 {
                let next = dilate(cur.view(), Shape::Square, 1);
                Zip::from(&mut expect).and(&next).and(&cur).for_each(|e, &n, &c| if n && !c { *e = k });
                cur = next;
            }
            prop_assert_eq!(distance_to(m.view(), 4), expect);
        }
    }

    proptest! {
        #[test]
        fn distance_is_the_capped_chessboard_distance_at_any_width(bits in proptest::collection::vec(proptest::bool::weighted(0.1), 0..90), w in 1usize..10, cap in 1u8..6) {
            let n = bits.len() / w * w;
            let m = mask(&bits[..n], w);
            let (h, _) = m.dim();
            let expect = Array2::from_shape_fn((h, w), |(r, c)| {
                let mut best = cap;
                for ((rr, cc), &v) in m.indexed_iter() {
                    if v {
                        let d = r.abs_diff(rr).max(c.abs_diff(cc)).min(cap as usize) as u8;
                        best = best.min(d);
                    }
                }
                best
            });
            prop_assert_eq!(distance_to(m.view(), cap), expect);
        }
    }

    #[test]
    fn reconstruct_is_bounded() {
        let mask = Array2::from_elem((1, 10), true);
        let mut seed = Array2::from_elem((1, 10), false);
        seed[[0, 0]] = true;
        let r = reconstruct(seed.view(), mask.view(), 3);
        assert_eq!(r.iter().filter(|&&v| v).count(), 4);
        let d = distance_to(seed.view(), 5);
        assert_eq!(d.row(0).to_vec(), vec![0, 1, 2, 3, 4, 5, 5, 5, 5, 5]);
    }

    #[test]
    fn distance_to_takes_a_column_major_view() {
        let mut m = Array2::from_elem((4, 7), false);
        m[[1, 5]] = true;
        let t = m.t();
        assert_eq!(
            distance_to(t, 3),
            distance_to(t.as_standard_layout().view(), 3)
        );
    }
}
