//! Zone masks from river segments: the management zone (union of every
//! segment's `corridor_m` buffer) and the flood channel (union of `channel_m`
//! buffers), rasterised at pixel centres.

use crate::domain::grid::Grid;
use crate::domain::rivers::Projected;
use geo::Coord;
use ndarray::{Array2, Axis};
use rayon::prelude::*;
use std::ops::Range;

/// Zone masks for a block of rows.
#[derive(Debug, Clone)]
pub struct Zones {
    /// Inside the management zone of any segment.
    pub zone: Array2<bool>,
    /// Inside the flood channel of any segment.
    pub channel: Array2<bool>,
}

/// Squared distance from `p` to the segment `a`–`b`.
#[inline]
pub fn dist2_point_segment(p: Coord<f64>, a: Coord<f64>, b: Coord<f64>) -> f64 {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let l2 = dx * dx + dy * dy;
    let t = if l2 > 0.0 {
        (((p.x - a.x) * dx + (p.y - a.y) * dy) / l2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (qx, qy) = (a.x + t * dx - p.x, a.y + t * dy - p.y);
    qx * qx + qy * qy
}

/// A centreline piece with its squared half-widths and bounding box:
/// (a, b, corridor², channel², [ymin, ymax, xmin, xmax] expanded).
type Piece = (Coord<f64>, Coord<f64>, f64, f64, [f64; 4]);

/// Rasterises the zones for rows `rows` of `grid` (pixel centres).
pub fn zones(grid: &Grid, rows: Range<usize>, segs: &[Projected]) -> Zones {
    zones_window(grid, rows, 0..grid.width, segs)
}

/// Rasterises the zones for the window `rows` × `cols` of `grid`: pixel
/// centres are placed from the scene's own geotransform, so a window gives
/// the same bits as the scene.
pub fn zones_window(
    grid: &Grid,
    rows: Range<usize>,
    cols: Range<usize>,
    segs: &[Projected],
) -> Zones {
    let pieces: Vec<Piece> = segs
        .iter()
        .flat_map(|s| {
            s.lines.0.iter().flat_map(move |ls| {
                ls.0.windows(2).map(move |w| {
                    let (a, b) = (w[0], w[1]);
                    let r = s.corridor_m;
                    (
                        a,
                        b,
                        r * r,
                        s.channel_m * s.channel_m,
                        [
                            a.x.min(b.x) - r,
                            a.x.max(b.x) + r,
                            a.y.min(b.y) - r,
                            a.y.max(b.y) + r,
                        ],
                    )
                })
            })
        })
        .collect();
    let w = cols.len();
    let mut zone = Array2::from_elem((rows.len(), w), false);
    let mut channel = Array2::from_elem((rows.len(), w), false);
    zone.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(channel.axis_iter_mut(Axis(0)))
        .enumerate()
        .for_each(|(i, (mut zr, mut cr))| {
            let row = (rows.start + i) as f64 + 0.5;
            let (_, y) = grid.to_map(0.5, row);
            for (a, b, c2, h2, bb) in pieces.iter().filter(|p| y >= p.4[2] && y <= p.4[3]) {
                let c0 = (grid.to_pixel(bb[0], y).0.floor().max(0.0) as usize).max(cols.start);
                let c1 = (grid.to_pixel(bb[1], y).0.ceil().max(0.0) as usize).min(cols.end);
                for c in c0..c1 {
                    let k = c - cols.start;
                    if zr[k] && cr[k] {
                        continue;
                    }
                    let (x, _) = grid.to_map(c as f64 + 0.5, row);
                    let d2 = dist2_point_segment(Coord { x, y }, *a, *b);
                    if d2 <= *c2 {
                        zr[k] = true;
                        if d2 <= *h2 {
                            cr[k] = true;
                        }
                    }
                }
            }
        });
    Zones { zone, channel }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{LineString, MultiLineString};

    #[test]
    fn zone_width_matches_corridor() {
        let grid = Grid {
            width: 200,
            height: 100,
            gt: [0.0, 10.0, 0.0, 1000.0, 0.0, -10.0],
            wkt: String::new(),
        };
        let seg = Projected {
            index: 0,
            lines: MultiLineString(vec![LineString::from(vec![(0.0, 500.0), (2000.0, 500.0)])]),
            corridor_m: 200.0,
            channel_m: 50.0,
        };
        let z = zones(&grid, 0..100, &[seg]);
        // Rows whose centre lies within 200 m of y=500: centres 305..695 → 40 rows.
        let rows_in = (0..100).filter(|&r| z.zone[[r, 100]]).count();
        assert_eq!(rows_in, 40);
        assert_eq!((0..100).filter(|&r| z.channel[[r, 100]]).count(), 10);
        // Same result computed in two row blocks.
        let a = zones(
            &grid,
            0..37,
            &[Projected {
                index: 0,
                lines: MultiLineString(vec![LineString::from(vec![(0.0, 500.0), (2000.0, 500.0)])]),
                corridor_m: 200.0,
                channel_m: 50.0,
            }],
        );
        assert_eq!(a.zone, z.zone.slice(ndarray::s![0..37, ..]));
        // And in a window of columns.
        let seg = Projected {
            index: 0,
            lines: MultiLineString(vec![LineString::from(vec![(0.0, 500.0), (900.0, 700.0)])]),
            corridor_m: 200.0,
            channel_m: 50.0,
        };
        let whole = zones(&grid, 0..100, std::slice::from_ref(&seg));
        let win = zones_window(&grid, 10..60, 37..150, &[seg]);
        assert_eq!(win.zone, whole.zone.slice(ndarray::s![10..60, 37..150]));
        assert_eq!(
            win.channel,
            whole.channel.slice(ndarray::s![10..60, 37..150])
        );
    }
}
