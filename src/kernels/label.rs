//! Connected components of a binary raster (4-connectivity), labelled in
//! raster-scan order so labels are deterministic.

use ndarray::{Array2, ArrayView2};

/// Per-component bounding box and pixel count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    /// Label value in the label raster (1-based).
    pub label: u32,
    /// Pixels in the component.
    pub pixels: usize,
    /// First row.
    pub r0: usize,
    /// One past the last row.
    pub r1: usize,
    /// First column.
    pub c0: usize,
    /// One past the last column.
    pub c1: usize,
}

fn find(p: &mut [u32], mut x: u32) -> u32 {
    while p[x as usize] != x {
        p[x as usize] = p[p[x as usize] as usize];
        x = p[x as usize];
    }
    x
}

/// Labels 4-connected components of `mask`. Returns the label raster (0 =
/// background) and the components in label order. Labels are numbered by the
/// first pixel of each component in raster-scan order.
///
/// # Examples
/// ```
/// use ndarray::array;
/// let m = array![[true, false, true], [true, false, false]];
/// let (lab, comps) = riverwatch::kernels::label::label(m.view());
/// assert_eq!(comps.len(), 2);
/// assert_eq!(lab[[1, 0]], 1);
/// assert_eq!(lab[[0, 2]], 2);
/// ```
pub fn label(mask: ArrayView2<bool>) -> (Array2<u32>, Vec<Component>) {
    let (h, w) = mask.dim();
    let mask = mask.as_standard_layout();
    let ms = mask.as_slice().unwrap_or(&[]);
    let mut lab = vec![0u32; h * w];
    if ms.len() != h * w || w == 0 {
        return (Array2::zeros((h, w)), Vec::new());
    }
    let mut parent: Vec<u32> = vec![0];
    for r in 0..h {
        let row = &ms[r * w..(r + 1) * w];
        for (c, _) in row.iter().enumerate().filter(|(_, &v)| v) {
            let i = r * w + c;
            let up = if r > 0 { lab[i - w] } else { 0 };
            let left = if c > 0 { lab[i - 1] } else { 0 };
            let l = match (up, left) {
                (0, 0) => {
                    let n = parent.len() as u32;
                    parent.push(n);
                    n
                }
                (a, 0) | (0, a) => a,
                (a, b) => {
                    let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
                    let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
                    parent[hi as usize] = lo;
                    lo.min(a).min(b)
                }
            };
            lab[i] = l;
        }
    }
    // Resolve to roots, then renumber roots in order of first appearance.
    let mut remap = vec![0u32; parent.len()];
    let mut comps: Vec<Component> = Vec::new();
    // Row by row (no division per pixel); a run of one provisional label
    // resolves it once.
    for r in 0..h {
        let mut last = (0u32, 0u32);
        for (c, l) in lab[r * w..(r + 1) * w].iter_mut().enumerate() {
            if *l == 0 {
                continue;
            }
            let nl = if *l == last.0 {
                last.1
            } else {
                let root = find(&mut parent, *l) as usize;
                if remap[root] == 0 {
                    comps.push(Component {
                        label: comps.len() as u32 + 1,
                        pixels: 0,
                        r0: r,
                        r1: r + 1,
                        c0: c,
                        c1: c + 1,
                    });
                    remap[root] = comps.len() as u32;
                }
                last = (*l, remap[root]);
                remap[root]
            };
            *l = nl;
            let k = &mut comps[nl as usize - 1];
            k.pixels += 1;
            k.r1 = k.r1.max(r + 1);
            k.c0 = k.c0.min(c);
            k.c1 = k.c1.max(c + 1);
        }
    }
    let lab = Array2::from_shape_vec((h, w), lab).unwrap_or_else(|_| Array2::zeros((h, w)));
    (lab, comps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn u_shape_is_one_component_and_diagonals_are_not_joined() {
        let m = array![
            [true, false, true],
            [true, false, true],
            [true, true, true],
            [false, false, false],
            [true, false, false],
            [false, true, false]
        ];
        let (lab, comps) = label(m.view());
        assert_eq!(comps.len(), 3);
        assert_eq!(comps[0].pixels, 7);
        assert_eq!(lab[[0, 2]], 1);
        assert_ne!(lab[[4, 0]], lab[[5, 1]]);
        assert_eq!(
            (comps[0].r0, comps[0].r1, comps[0].c0, comps[0].c1),
            (0, 3, 0, 3)
        );
    }

    /// Labels by flood fill, numbered in raster order of first pixels.
    fn flood(m: &Array2<bool>) -> Array2<u32> {
        let (h, w) = m.dim();
        let mut lab = Array2::<u32>::zeros((h, w));
        let mut n = 0;
        for r in 0..h {
            for c in 0..w {
                if !m[[r, c]] || lab[[r, c]] != 0 {
                    continue;
                }
                n += 1;
                let mut stack = vec![(r, c)];
                lab[[r, c]] = n;
                while let Some(p) = stack.pop() {
                    crate::kernels::morphology::neighbours4(p, (h, w), |yy, xx| {
                        if m[[yy, xx]] && lab[[yy, xx]] == 0 {
                            lab[[yy, xx]] = n;
                            stack.push((yy, xx));
                        }
                    });
                }
            }
        }
        lab
    }

    proptest::proptest! {
        #[test]
        fn labels_equal_a_flood_fill(bits in proptest::collection::vec(proptest::bool::weighted(0.55), 0..160), w in 1usize..14) {
            let n = bits.len() / w * w;
            let m = Array2::from_shape_vec((n / w, w), bits[..n].to_vec()).unwrap();
            let (lab, comps) = label(m.view());
            proptest::prop_assert_eq!(&lab, &flood(&m));
            for k in &comps {
                let px: Vec<(usize, usize)> = lab.indexed_iter().filter(|(_, &l)| l == k.label).map(|(i, _)| i).collect();
                proptest::prop_assert_eq!(k.pixels, px.len());
                proptest::prop_assert_eq!(k.r0, px.iter().map(|p| p.0).min().unwrap());
                proptest::prop_assert_eq!(k.r1, px.iter().map(|p| p.0).max().unwrap() + 1);
                proptest::prop_assert_eq!(k.c0, px.iter().map(|p| p.1).min().unwrap());
                proptest::prop_assert_eq!(k.c1, px.iter().map(|p| p.1).max().unwrap() + 1);
            }
        }
    }
}
