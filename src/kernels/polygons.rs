//! Raster to vector: traces the pixel edges of a labelled component into a
//! polygon with holes. Rings follow pixel boundaries exactly, so the polygon's
//! area equals pixel count × pixel area.
//!
//! Components are 4-connected. Where two pixels of the component meet only at
//! a corner, the trace passes from one to the other, so an enclosed hole that
//! touches the outside or another hole at one corner stays a separate ring
//! touching at a single point — valid under OGC rules — and no ring ever
//! crosses or touches itself.

use super::label::Component;
use crate::domain::grid::Grid;
use geo::{Coord, LineString, Polygon};
use ndarray::ArrayView2;

/// Traces component `comp` of `labels` into a polygon in the grid's map
/// coordinates. `row_offset` is the row of `labels`' first row in `grid`.
/// The exterior ring is counter-clockwise and holes clockwise in map
/// coordinates (y up).
pub fn trace(
    labels: ArrayView2<u32>,
    comp: &Component,
    grid: &Grid,
    row_offset: usize,
) -> Polygon<f64> {
    trace_at(labels, comp, grid, [row_offset, 0])
}

/// [`trace`] with `labels` a window of the grid whose first pixel is at
/// grid (row, column) `offset` (a component cut out of a streamed scene).
pub fn trace_at(
    labels: ArrayView2<u32>,
    comp: &Component,
    grid: &Grid,
    offset: [usize; 2],
) -> Polygon<f64> {
    let [row_offset, col_offset] = offset;
    let (bw, bh) = (comp.c1 - comp.c0, comp.r1 - comp.r0);
    let inside = |r: isize, c: isize| -> bool {
        r >= 0
            && c >= 0
            && (r as usize) < bh
            && (c as usize) < bw
            && labels[[comp.r0 + r as usize, comp.c0 + c as usize]] == comp.label
    };
    // Lattice vertices (x, y) with 0 ≤ x ≤ bw, 0 ≤ y ≤ bh. Each vertex has at
    // most two outgoing boundary edges.
    let vw = bw + 1;
    let vid = |x: usize, y: usize| y * vw + x;
    // Edge: (from vertex, to vertex, owning pixel id). Walking direction keeps
    // the component on the right in (x right, y down) pixel space.
    let mut edges: Vec<(u32, u32, u32)> = Vec::new();
    let push = |edges: &mut Vec<(u32, u32, u32)>, a: usize, b: usize, px: usize| {
        edges.push((a as u32, b as u32, px as u32));
    };
    for r in 0..bh {
        for c in 0..bw {
            let (ri, ci) = (r as isize, c as isize);
            if !inside(ri, ci) {
                continue;
            }
            let px = r * bw + c;
            if !inside(ri - 1, ci) {
                push(&mut edges, vid(c, r), vid(c + 1, r), px);
            }
            if !inside(ri, ci + 1) {
                push(&mut edges, vid(c + 1, r), vid(c + 1, r + 1), px);
            }
            if !inside(ri + 1, ci) {
                push(&mut edges, vid(c + 1, r + 1), vid(c, r + 1), px);
            }
            if !inside(ri, ci - 1) {
                push(&mut edges, vid(c, r + 1), vid(c, r), px);
            }
        }
    }
    // Outgoing edges per vertex, as (vertex, edge) sorted: memory in the
    // boundary's length, not the bounding box's area (a long component's
    // box can be 10⁸ vertices).
    let mut by_from: Vec<(u32, u32)> = edges
        .iter()
        .enumerate()
        .map(|(e, &(a, _, _))| (a, e as u32))
        .collect();
    by_from.sort_unstable();
    let out = |v: u32| -> [u32; 2] {
        let i = by_from.partition_point(|&(w, _)| w < v);
        let at = |k: usize| {
            by_from
                .get(k)
                .filter(|&&(w, _)| w == v)
                .map_or(u32::MAX, |&(_, e)| e)
        };
        [at(i), at(i + 1)]
    };
    let mut used = vec![false; edges.len()];
    let mut rings: Vec<Vec<(usize, usize)>> = Vec::new();
    for start in 0..edges.len() {
        if used[start] {
            continue;
        }
        let mut ring = Vec::new();
        let mut e = start;
        loop {
            used[e] = true;
            let (a, b, px) = edges[e];
            ring.push((a as usize % vw, a as usize / vw));
            let cand = out(b);
            let next = if cand[1] == u32::MAX {
                cand[0]
            } else {
                // Corner where two pixels of the component meet diagonally:
                // continue along the other pixel.
                let (e0, e1) = (cand[0], cand[1]);
                let pick = if edges[e0 as usize].2 != px { e0 } else { e1 };
                if used[pick as usize] {
                    if pick == e0 {
                        e1
                    } else {
                        e0
                    }
                } else {
                    pick
                }
            };
            if next == u32::MAX || used[next as usize] {
                break;
            }
            e = next as usize;
        }
        rings.push(simplify_collinear(ring));
    }
    // Map to CRS coordinates.
    let to_ls = |ring: &[(usize, usize)]| -> LineString<f64> {
        let mut pts: Vec<Coord<f64>> = ring
            .iter()
            .map(|&(x, y)| {
                let (mx, my) = grid.to_map(
                    (col_offset + comp.c0 + x) as f64,
                    (row_offset + comp.r0 + y) as f64,
                );
                Coord { x: mx, y: my }
            })
            .collect();
        pts.push(pts[0]);
        LineString(pts)
    };
    let mut lss: Vec<(f64, LineString<f64>)> = rings
        .iter()
        .map(|r| to_ls(r))
        .map(|ls| (signed_area(&ls), ls))
        .collect();
    // The exterior has the largest absolute area; a 4-connected component has
    // exactly one.
    let ext_i = lss
        .iter()
        .enumerate()
        .max_by(|a, b| a.1 .0.abs().total_cmp(&b.1 .0.abs()))
        .map(|(i, _)| i)
        .unwrap_or(0);
    let (ea, mut ext) = lss.swap_remove(ext_i);
    if ea < 0.0 {
        ext.0.reverse();
    }
    let holes = lss
        .into_iter()
        .map(|(a, mut ls)| {
            if a > 0.0 {
                ls.0.reverse();
            }
            ls
        })
        .collect();
    Polygon::new(ext, holes)
}

fn signed_area(ls: &LineString<f64>) -> f64 {
    ls.0.windows(2)
        .map(|w| w[0].x * w[1].y - w[1].x * w[0].y)
        .sum::<f64>()
        / 2.0
}

/// Drops vertices in the middle of straight runs.
fn simplify_collinear(ring: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    let n = ring.len();
    if n < 4 {
        return ring;
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let p = ring[(i + n - 1) % n];
        let c = ring[i];
        let q = ring[(i + 1) % n];
        let d1 = (c.0 as isize - p.0 as isize, c.1 as isize - p.1 as isize);
        let d2 = (q.0 as isize - c.0 as isize, q.1 as isize - c.1 as isize);
        if d1.0 * d2.1 - d1.1 * d2.0 != 0 {
            out.push(c);
        }
    }
    out
}

/// Pixels of `grid` whose centre lies inside `g` (in the grid's CRS), as a
/// window: (first row, first col, mask). `None` when `g` misses the grid.
pub fn burn(
    grid: &Grid,
    g: &geo::MultiPolygon<f64>,
) -> Option<(usize, usize, ndarray::Array2<bool>)> {
    use geo::{BoundingRect, Contains};
    let bb = g.bounding_rect()?;
    let (c0, r0) = grid.to_pixel(bb.min().x, bb.max().y);
    let (c1, r1) = grid.to_pixel(bb.max().x, bb.min().y);
    let (cs, rs) = (
        c0.min(c1).floor().max(0.0) as usize,
        r0.min(r1).floor().max(0.0) as usize,
    );
    let ce = (c0.max(c1).ceil().max(0.0) as usize).min(grid.width);
    let re = (r0.max(r1).ceil().max(0.0) as usize).min(grid.height);
    if ce <= cs || re <= rs {
        return None;
    }
    let m = ndarray::Array2::from_shape_fn((re - rs, ce - cs), |(r, c)| {
        let (x, y) = grid.to_map((c + cs) as f64 + 0.5, (r + rs) as f64 + 0.5);
        g.contains(&geo::Point::new(x, y))
    });
    Some((rs, cs, m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::label::label;
    use geo::{Area, Validation};
    use ndarray::Array2;

    fn grid(w: usize, h: usize) -> Grid {
        Grid {
            width: w,
            height: h,
            gt: [500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0],
            wkt: String::new(),
        }
    }

    fn check(mask: &Array2<bool>) {
        let (lab, comps) = label(mask.view());
        let g = grid(mask.ncols(), mask.nrows());
        for c in &comps {
            let p = trace(lab.view(), c, &g, 0);
            assert!(
                p.is_valid(),
                "invalid polygon {:?}: {:?}",
                p,
                p.validation_errors()
            );
            assert!((p.unsigned_area() - c.pixels as f64 * 100.0).abs() < 1e-6);
            assert!(signed_area(p.exterior()) > 0.0);
            for h in p.interiors() {
                assert!(signed_area(h) < 0.0);
            }
        }
    }

    #[test]
    fn ring_with_hole_and_corner_touching_hole() {
        let mut m = Array2::from_elem((7, 7), false);
        for r in 1..6 {
            for c in 1..6 {
                m[[r, c]] = true;
            }
        }
        m[[2, 2]] = false;
        m[[3, 3]] = false; // two holes touching at a corner
        m[[1, 5]] = false;
        m[[2, 4]] = false; // hole touching the outside at a corner
        check(&m);
    }

    #[test]
    fn random_masks_give_valid_polygons_with_exact_area() {
        let mut s = 12345u64;
        for _ in 0..200 {
            let mut m = Array2::from_elem((9, 11), false);
            for v in m.iter_mut() {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *v = (s >> 33) % 100 < 60;
            }
            check(&m);
        }
    }
}
