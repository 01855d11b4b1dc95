//! Links polygons to river segments and chiefs through an R-tree of centreline
//! pieces: nearest centreline (ties within 1 m go to the lower `segment_id`),
//! the chief chain up to the province, and the flood-channel share.

use crate::domain::chiefs::{ChiefLink, Registry};
use crate::domain::class::ChangeClass;
use crate::domain::detection::{round, SegmentLink};
use crate::domain::grid::Grid;
use crate::domain::rivers::{Projected, Segment};
use crate::kernels::zones::dist2_point_segment;
use geo::{BoundingRect, Coord, Distance, Euclidean, Line, MultiPolygon, Point};
use rstar::primitives::GeomWithData;
use rstar::{RTree, AABB};

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
    pub fn nearest(&self, poly: &MultiPolygon<f64>) -> Option<Nearest> {
        let probe = poly.0.first()?.exterior().0.first().copied()?;
        let first = self.tree.nearest_neighbor(&Point::from(probe))?;
        // The polygon is at least as close as any of its points, so every
        // candidate lies within this envelope.
        let d0 = Euclidean.distance(&Point::from(probe), first.geom());
        let bb = poly.bounding_rect()?;
        let r = d0 + TIE_M;
        let env = AABB::from_corners(
            Point::new(bb.min().x - r, bb.min().y - r),
            Point::new(bb.max().x + r, bb.max().y + r),
        );
        let mut best: Vec<(u32, f64)> = Vec::new();
        for piece in self.tree.locate_in_envelope_intersecting(&env) {
            let d = Euclidean.distance(poly, piece.geom());
            match best.iter_mut().find(|b| b.0 == piece.data) {
                Some(b) => b.1 = b.1.min(d),
                None => best.push((piece.data, d)),
            }
        }
        let dmin = best.iter().map(|b| b.1).fold(f64::INFINITY, f64::min);
        best.into_iter()
            .filter(|b| b.1 <= dmin + TIE_M)
            .min_by(|a, b| self.ids[a.0 as usize].cmp(&self.ids[b.0 as usize]))
            .map(|(s, d)| Nearest {
                segment: s as usize,
                distance_m: d,
            })
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

/// Links polygons in one CRS to segments and chiefs: the one place where
/// segment, chief properties and the obstruction flag are decided.
pub struct Linker<'a> {
    index: SegmentIndex,
    segments: &'a [Segment],
    registry: &'a Registry,
}

impl<'a> Linker<'a> {
    /// An index over `segments` projected into one CRS (`projected`).
    pub fn new(segments: &'a [Segment], projected: &[Projected], registry: &'a Registry) -> Self {
        Linker {
            index: SegmentIndex::new(segments, projected),
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
        for _ in 0..2000 {
            let (x, y, d) = (f() * 20_000.0, f() * 20_000.0, 5.0 + f() * 150.0);
            let p = MultiPolygon(vec![
                polygon![(x: x, y: y), (x: x + d, y: y), (x: x + d, y: y + d * 0.7), (x: x, y: y + d)],
            ]);
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
    }
}
