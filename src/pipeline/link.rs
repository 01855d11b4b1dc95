//! Links polygons to river segments and chiefs through an R-tree of centreline
//! pieces: nearest centreline (ties within 1 m go to the lower `segment_id`),
//! the chief chain up to the province, and the flood-channel share.

use crate::domain::chiefs::{ChiefLink, Registry};
use crate::domain::class::ChangeClass;
use crate::domain::detection::{round, SegmentLink};
use crate::domain::grid::Grid;
use crate::domain::rivers::{Projected, Segment};
use crate::error::Result;
use crate::kernels::zones::dist2_point_segment;
use geo::{BoundingRect, Coord, Distance, Euclidean, Line, MultiPolygon, Point};
use rstar::primitives::GeomWithData;
use rstar::{RTree, AABB};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Piece = GeomWithData<Line<f64>, u32>;

/// Distance within which two segments count as equally near, metres.
pub const TIE_M: f64 = 1.0;

/// An R-tree over the centreline pieces of segments projected into one CRS.
pub struct SegmentIndex {
    tree: RTree<Piece>,
    ids: Vec<String>,
    channel_m: Vec<f64>,
}

/// The segment a polygon belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nearest {
    /// Index into the segment list the index was built from.
    pub segment: usize,
    /// Shortest polygon-to-centreline distance, CRS units (metres).
    pub distance_m: f64,
}

impl SegmentIndex {
    /// Builds the index with `bulk_load`. `projected[i].index` points into `segments`.
    pub fn new(segments: &[Segment], projected: &[Projected]) -> SegmentIndex {
        let pieces: Vec<Piece> = projected
            .iter()
            .flat_map(|p| {
                p.lines.0.iter().flat_map(move |ls| {
                    ls.lines()
                        .filter(|l| l.start != l.end || ls.0.len() == 2)
                        .map(move |l| GeomWithData::new(l, p.index as u32))
                })
            })
            .collect();
        SegmentIndex {
            tree: RTree::bulk_load(pieces),
            ids: segments.iter().map(|s| s.id.clone()).collect(),
            channel_m: segments.iter().map(|s| s.channel_m).collect(),
        }
    }

    /// The segment nearest to `poly` (shortest polygon-to-line distance).
    ///
    /// Pieces are visited in order of their distance from one vertex of the
    /// polygon; no piece farther than `best + radius + TIE_M` from it (the
    /// radius being the vertex's farthest reach within the polygon's
    /// bounding box) can be within `TIE_M` of the best, so the walk stops
    /// there.
    pub fn nearest(&self, poly: &MultiPolygon<f64>) -> Option<Nearest> {
        let probe = poly.0.first()?.exterior().0.first().copied()?;
        let bb = poly.bounding_rect()?;
        let reach = {
            let dx = (probe.x - bb.min().x).max(bb.max().x - probe.x);
            let dy = (probe.y - bb.min().y).max(bb.max().y - probe.y);
            (dx * dx + dy * dy).sqrt()
        };
        let mut best: Vec<(u32, f64)> = Vec::new();
        let mut dmin = f64::INFINITY;
        for (piece, d2) in self
            .tree
            .nearest_neighbor_iter_with_distance_2(&Point::from(probe))
        {
            if d2.sqrt() - reach > dmin + TIE_M {
                break;
            }
            // A cheap lower bound first: the piece's distance to the box.
            let (a, b) = (piece.geom().start, piece.geom().end);
            let lb = box_gap(&bb, a.x.min(b.x), a.x.max(b.x), a.y.min(b.y), a.y.max(b.y));
            if lb > dmin + TIE_M {
                continue;
            }
            let d = Euclidean.distance(poly, piece.geom());
            dmin = dmin.min(d);
            match best.iter_mut().find(|b| b.0 == piece.data) {
                Some(b) => b.1 = b.1.min(d),
                None => best.push((piece.data, d)),
            }
        }
        best.into_iter()
            .filter(|b| b.1 <= dmin + TIE_M)
            .min_by(|a, b| self.ids[a.0 as usize].cmp(&self.ids[b.0 as usize]))
            .map(|(s, d)| Nearest {
                segment: s as usize,
                distance_m: d,
            })
    }

    /// [`Self::nearest`] for many polygons, in parallel; results in input
    /// order. The polygons are visited in Z-order (Morton order of one
    /// vertex each), so consecutive queries walk the same branches of the
    /// tree, which stay in the CPU cache.
    pub fn nearest_all(&self, polys: &[MultiPolygon<f64>]) -> Vec<Option<Nearest>> {
        use rayon::prelude::*;
        let probes: Vec<Option<Coord<f64>>> = polys
            .iter()
            .map(|p| p.0.first().and_then(|q| q.exterior().0.first().copied()))
            .collect();
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for c in probes.iter().flatten() {
            (x0, y0, x1, y1) = (x0.min(c.x), y0.min(c.y), x1.max(c.x), y1.max(c.y));
        }
        let scale = |v: f64, lo: f64, hi: f64| {
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.0 };
            (t.clamp(0.0, 1.0) * 65535.0) as u32
        };
        let mut order: Vec<(u64, usize)> = probes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let key = c.map_or(u64::MAX, |c| morton(scale(c.x, x0, x1), scale(c.y, y0, y1)));
                (key, i)
            })
            .collect();
        order.par_sort_unstable();
        let found: Vec<(usize, Option<Nearest>)> = order
            .par_iter()
            .with_min_len(1024)
            .map(|&(_, i)| (i, self.nearest(&polys[i])))
            .collect();
        let mut out = vec![None; polys.len()];
        for (i, n) in found {
            out[i] = n;
        }
        out
    }

    /// Share of `points` lying within the flood channel (`channel_m`) of segment `seg`.
    /// Points are area samples of a polygon (pixel centres), so this is its area share.
    pub fn channel_share(&self, seg: usize, points: &[Coord<f64>]) -> f64 {
        if points.is_empty() {
            return 0.0;
        }
        let h = self.channel_m[seg];
        let h2 = h * h;
        let inside = points
            .iter()
            .filter(|p| {
                let env =
                    AABB::from_corners(Point::new(p.x - h, p.y - h), Point::new(p.x + h, p.y + h));
                self.tree.locate_in_envelope_intersecting(&env).any(|l| {
                    l.data as usize == seg
                        && dist2_point_segment(**p, l.geom().start, l.geom().end) <= h2
                })
            })
            .count();
        inside as f64 / points.len() as f64
    }
}

/// The Z-order (Morton) key of two 16-bit coordinates.
fn morton(x: u32, y: u32) -> u64 {
    fn spread(v: u32) -> u64 {
        let mut v = u64::from(v & 0xffff);
        v = (v | (v << 8)) & 0x00ff_00ff;
        v = (v | (v << 4)) & 0x0f0f_0f0f;
        v = (v | (v << 2)) & 0x3333_3333;
        (v | (v << 1)) & 0x5555_5555
    }
    spread(x) | (spread(y) << 1)
}

/// Gap between a rectangle and an axis-aligned box (0 when they overlap): a
/// lower bound of the distance between anything inside each.
fn box_gap(bb: &geo::Rect<f64>, x0: f64, x1: f64, y0: f64, y1: f64) -> f64 {
    let dx = (x0 - bb.max().x).max(bb.min().x - x1).max(0.0);
    let dy = (y0 - bb.max().y).max(bb.min().y - y1).max(0.0);
    (dx * dx + dy * dy).sqrt()
}

/// Pixel centres of `grid` that fall inside `poly` (area samples for
/// [`SegmentIndex::channel_share`] when the pixels are not at hand).
pub fn pixel_centres(poly: &MultiPolygon<f64>, grid: &Grid) -> Vec<Coord<f64>> {
    use geo::Contains;
    let Some(bb) = poly.bounding_rect() else {
        return Vec::new();
    };
    let (c0, r0) = grid.to_pixel(bb.min().x, bb.max().y);
    let (c1, r1) = grid.to_pixel(bb.max().x, bb.min().y);
    let mut out = Vec::new();
    for r in (r0.floor() as i64)..(r1.ceil() as i64) {
        for c in (c0.floor() as i64)..(c1.ceil() as i64) {
            let (x, y) = grid.to_map(c as f64 + 0.5, r as f64 + 0.5);
            let p = Coord { x, y };
            if poly.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// What linking gives a polygon: its segment, its chief and chain, and the
/// obstruction flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// The nearest segment.
    pub segment: SegmentLink,
    /// Its chief.
    pub chief: ChiefLink,
    /// See [`ChangeClass::obstructs`].
    pub obstructs: bool,
}

/// Segments projected into one CRS with their R-tree, made once per CRS
/// and shared by every tile of a run (see [`Indexes`]).
pub struct Indexed {
    /// The projected segments, in segment order.
    pub projected: Vec<Projected>,
    /// The R-tree over their centreline pieces.
    pub index: SegmentIndex,
    /// The widest corridor or channel, metres.
    reach_m: f64,
}

impl Indexed {
    /// Projects nothing itself: `projected` are `segments` in one CRS.
    pub fn new(segments: &[Segment], projected: Vec<Projected>) -> Indexed {
        let reach_m = projected
            .iter()
            .map(|p| p.corridor_m.max(p.channel_m))
            .fold(0.0, f64::max);
        Indexed {
            index: SegmentIndex::new(segments, &projected),
            projected,
            reach_m,
        }
    }

    /// The segments whose corridor or channel may reach `grid` (an R-tree
    /// query on its extent grown by the widest corridor), in segment order:
    /// all a tile's zones need, however many segments the province has.
    pub fn near(&self, grid: &Grid) -> Vec<Projected> {
        let corners = [
            (0.0, 0.0),
            (grid.width as f64, 0.0),
            (0.0, grid.height as f64),
        ]
        .into_iter()
        .chain([(grid.width as f64, grid.height as f64)])
        .map(|(c, r)| grid.to_map(c, r));
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for (x, y) in corners {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
        let r = self.reach_m + grid.pixel_size();
        let env = AABB::from_corners(Point::new(x0 - r, y0 - r), Point::new(x1 + r, y1 + r));
        let mut hit: Vec<u32> = self
            .index
            .tree
            .locate_in_envelope_intersecting(&env)
            .map(|p| p.data)
            .collect();
        hit.sort_unstable();
        hit.dedup();
        hit.into_iter()
            .filter_map(|i| {
                // `projected` is in segment order (see `io::crs::project`).
                let k = self
                    .projected
                    .binary_search_by_key(&(i as usize), |p| p.index)
                    .ok()?;
                self.projected.get(k)
            })
            .cloned()
            .collect()
    }
}

/// A per-CRS cache of [`Indexed`] segments for one segment list: a batch
/// projects and indexes its rivers once per CRS, not once per tile.
#[derive(Default)]
pub struct Indexes {
    by_wkt: Mutex<HashMap<String, Arc<Indexed>>>,
    /// Address and length of the segment list the cache belongs to.
    owner: Mutex<Option<(usize, usize)>>,
}

impl Indexes {
    /// The segments in CRS `wkt`, projected with `project` and indexed the
    /// first time this CRS is asked for. A cache is for one segment list;
    /// asked for another, it builds without caching.
    ///
    /// # Errors
    /// What `project` returns.
    pub fn get(
        &self,
        segments: &[Segment],
        wkt: &str,
        project: impl FnOnce() -> Result<Vec<Projected>>,
    ) -> Result<Arc<Indexed>> {
        let me = (segments.as_ptr() as usize, segments.len());
        {
            let mut owner = self.owner.lock().unwrap_or_else(|e| e.into_inner());
            if *owner.get_or_insert(me) != me {
                return Ok(Arc::new(Indexed::new(segments, project()?)));
            }
        }
        let mut map = self.by_wkt.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = map.get(wkt) {
            return Ok(hit.clone());
        }
        let made = Arc::new(Indexed::new(segments, project()?));
        map.insert(wkt.to_string(), made.clone());
        Ok(made)
    }
}

/// Links polygons in one CRS to segments and chiefs: the one place where
/// segment, chief properties and the obstruction flag are decided.
pub struct Linker<'a> {
    index: &'a SegmentIndex,
    segments: &'a [Segment],
    registry: &'a Registry,
}

impl<'a> Linker<'a> {
    /// A linker over `index`, the R-tree of `segments` in one CRS.
    pub fn new(segments: &'a [Segment], index: &'a SegmentIndex, registry: &'a Registry) -> Self {
        Linker {
            index,
            segments,
            registry,
        }
    }

    /// Links a polygon (in the CRS) of class `class` whose area is sampled
    /// by `points` (asked for only when the flood-channel share is needed);
    /// `None` when there is no segment.
    pub fn link(
        &self,
        poly: &MultiPolygon<f64>,
        class: ChangeClass,
        points: impl FnOnce() -> Vec<Coord<f64>>,
    ) -> Option<Link> {
        let near = self.index.nearest(poly)?;
        let seg = &self.segments[near.segment];
        let obstructs = class.obstructs(|| self.index.channel_share(near.segment, &points()));
        Some(Link {
            segment: SegmentLink {
                river: seg.river.clone(),
                segment_id: seg.id.clone(),
                distance_m: round(near.distance_m, 2),
            },
            chief: self.registry.link(&seg.chief_id),
            obstructs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{polygon, LineString, MultiLineString};

    fn seg(id: &str, y: f64) -> (Segment, Projected) {
        let lines = MultiLineString(vec![LineString::from(vec![(0.0, y), (1000.0, y)])]);
        (
            Segment {
                id: id.into(),
                river: "r".into(),
                chief_id: "c".into(),
                corridor_m: 500.0,
                channel_m: 100.0,
                lines: lines.clone(),
            },
            Projected {
                index: 0,
                lines,
                corridor_m: 500.0,
                channel_m: 100.0,
            },
        )
    }

    #[test]
    fn nearest_and_ties() {
        let (a, mut pa) = seg("b-seg", 0.0);
        let (b, mut pb) = seg("a-seg", 201.0);
        pa.index = 0;
        pb.index = 1;
        let segs = vec![a, b];
        let idx = SegmentIndex::new(&segs, &[pa, pb]);
        let p = MultiPolygon(vec![
            polygon![(x: 100.0, y: 50.0), (x: 110.0, y: 50.0), (x: 110.0, y: 60.0), (x: 100.0, y: 60.0)],
        ]);
        let n = idx.nearest(&p).unwrap();
        assert_eq!(n.segment, 0);
        assert!((n.distance_m - 50.0).abs() < 1e-9);
        // 100 from one, 100.5 from the other: a tie within 1 m → lower id "a-seg".
        let q = MultiPolygon(vec![
            polygon![(x: 100.0, y: 100.0), (x: 110.0, y: 100.0), (x: 110.0, y: 100.5), (x: 100.0, y: 100.5)],
        ]);
        assert_eq!(idx.nearest(&q).unwrap().segment, 1);
        let pts = [Coord { x: 5.0, y: 50.0 }, Coord { x: 5.0, y: 150.0 }];
        assert_eq!(idx.channel_share(0, &pts), 0.5);
    }

    /// The indexed search gives what measuring every segment gives: the
    /// nearest segment (ties within 1 m to the lower id) and its distance.
    #[test]
    fn indexed_nearest_matches_brute_force() {
        use geo::{Coord, LineString, MultiLineString};
        let mut state = 12345u64;
        let mut f = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut segs = Vec::new();
        let mut proj = Vec::new();
        for i in 0..300 {
            let (mut x, mut y) = (f() * 20_000.0, f() * 20_000.0);
            let mut pts = vec![Coord { x, y }];
            for _ in 0..5 {
                x += (f() - 0.5) * 800.0;
                y += (f() - 0.5) * 800.0;
                pts.push(Coord { x, y });
            }
            let lines = MultiLineString(vec![LineString(pts)]);
            segs.push(Segment {
                id: format!("S{:03}", 299 - i),
                river: "r".into(),
                chief_id: "c".into(),
                corridor_m: 500.0,
                channel_m: 100.0,
                lines: lines.clone(),
            });
            proj.push(Projected {
                index: i,
                lines,
                corridor_m: 500.0,
                channel_m: 100.0,
            });
        }
        let idx = SegmentIndex::new(&segs, &proj);
        let mut polys = Vec::new();
        for _ in 0..2000 {
            let (x, y, d) = (f() * 20_000.0, f() * 20_000.0, 5.0 + f() * 150.0);
            let p = MultiPolygon(vec![
                polygon![(x: x, y: y), (x: x + d, y: y), (x: x + d, y: y + d * 0.7), (x: x, y: y + d)],
            ]);
            polys.push(p.clone());
            let all: Vec<(usize, f64)> = proj
                .iter()
                .map(|s| (s.index, Euclidean.distance(&p, &s.lines)))
                .collect();
            let dmin = all.iter().map(|a| a.1).fold(f64::INFINITY, f64::min);
            let want = all
                .iter()
                .filter(|a| a.1 <= dmin + TIE_M)
                .min_by(|a, b| segs[a.0].id.cmp(&segs[b.0].id))
                .unwrap();
            let got = idx.nearest(&p).unwrap();
            assert_eq!(got.segment, want.0);
            assert!((got.distance_m - want.1).abs() < 1e-9);
        }
        // The parallel Z-ordered walk gives the same answers, in input order.
        let one: Vec<Option<Nearest>> = polys.iter().map(|p| idx.nearest(p)).collect();
        assert_eq!(idx.nearest_all(&polys), one);
    }
}
