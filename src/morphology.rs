//! Binary morphology with a 3 × 3 cross (4-neighbourhood) or square, and
//! bounded geodesic reconstruction.

use ndarray::{Array2, ArrayView2, Axis, Zip};
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
    let (h, w) = m.dim();
    let mut out = Array2::from_elem((h, w), false);
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(r, mut row)| {
            for c in 0..w {
                let mut acc = m[[r, c]];
                let mut visit = |rr: isize, cc: isize| {
                    // Outside the raster counts as background for dilation and as
                    // foreground for erosion, so edges neither grow nor shrink.
                    let v = if rr < 0 || cc < 0 || rr >= h as isize || cc >= w as isize {
                        !dilate
                    } else {
                        m[[rr as usize, cc as usize]]
                    };
                    if dilate {
                        acc |= v
                    } else {
                        acc &= v
                    }
                };
                let (ri, ci) = (r as isize, c as isize);
                for (dr, dc) in [(-1, 0), (1, 0), (0, -1), (0, 1)] {
                    visit(ri + dr, ci + dc);
                }
                if shape == Shape::Square {
                    for (dr, dc) in [(-1, -1), (-1, 1), (1, -1), (1, 1)] {
                        visit(ri + dr, ci + dc);
                    }
                }
                row[c] = acc;
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
            let mut visit = |rr: usize, cc: usize| {
                if mask[[rr, cc]] && !out[[rr, cc]] {
                    out[[rr, cc]] = true;
                    next.push((rr, cc));
                }
            };
            if r > 0 {
                visit(r - 1, c);
            }
            if r + 1 < h {
                visit(r + 1, c);
            }
            if c > 0 {
                visit(r, c - 1);
            }
            if c + 1 < w {
                visit(r, c + 1);
            }
        }
        frontier = next;
    }
    out
}

/// Distance in pixels (chessboard, capped at `cap`) to the nearest `true`
/// pixel, by the two-pass distance transform.
pub fn distance_to(m: ArrayView2<bool>, cap: u8) -> Array2<u8> {
    let (h, w) = m.dim();
    let mut d = m.mapv(|v| if v { 0u8 } else { cap });
    for r in 0..h {
        for c in 0..w {
            let mut v = d[[r, c]];
            if r > 0 {
                v = v.min(d[[r - 1, c]].saturating_add(1));
                if c > 0 {
                    v = v.min(d[[r - 1, c - 1]].saturating_add(1));
                }
                if c + 1 < w {
                    v = v.min(d[[r - 1, c + 1]].saturating_add(1));
                }
            }
            if c > 0 {
                v = v.min(d[[r, c - 1]].saturating_add(1));
            }
            d[[r, c]] = v.min(cap);
        }
    }
    for r in (0..h).rev() {
        for c in (0..w).rev() {
            let mut v = d[[r, c]];
            if r + 1 < h {
                v = v.min(d[[r + 1, c]].saturating_add(1));
                if c > 0 {
                    v = v.min(d[[r + 1, c - 1]].saturating_add(1));
                }
                if c + 1 < w {
                    v = v.min(d[[r + 1, c + 1]].saturating_add(1));
                }
            }
            if c + 1 < w {
                v = v.min(d[[r, c + 1]].saturating_add(1));
            }
            d[[r, c]] = v.min(cap);
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

    proptest! {
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
}
