//! The reduce step: per-tile detection records merged across tile seams.
//! Polygons of the same class in different tiles that touch across a seam
//! become one record (area, evidence, segment, chief and flag recomputed;
//! `tile` is the lowest tile id, `tiles` lists all). Every output record
//! gets `tiles`. Tiles in different CRSs are not merged with each other.

use crate::domain::chiefs::Registry;
use crate::domain::detection::{round, Detection};
use crate::domain::grid::Grid;
use crate::domain::rivers::Segment;
use crate::error::Result;
use crate::io::crs::{project, Transformer};
use crate::io::vector::round_geometry;
use crate::pipeline::link::{pixel_centres, Indexes, Linker};
use geo::{unary_union, Area, BoundingRect, Coord, Intersects, MapCoordsInPlace, MultiPolygon};
use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{RTree, AABB};
use std::collections::BTreeMap;

/// One tile's map output.
#[derive(Debug, Clone)]
pub struct TileDetections {
    /// Tile id.
    pub tile: String,
    /// Its records.
    pub detections: Vec<Detection>,
    /// Its reference grid.
    pub grid: Grid,
}

/// Snaps coordinates within 5 cm of the grid's pixel lattice onto it, undoing
/// the 7-decimal rounding of WGS84 output so shared seam edges coincide.
fn snap(mp: &mut MultiPolygon<f64>, g: &Grid) {
    let (ox, oy, sx, sy) = (g.gt[0], g.gt[3], g.gt[1], g.gt[5]);
    mp.map_coords_in_place(|c| {
        let (fx, fy) = ((c.x - ox) / sx, (c.y - oy) / sy);
        let (rx, ry) = (ox + fx.round() * sx, oy + fy.round() * sy);
        Coord {
            x: if (rx - c.x).abs() < 0.05 { rx } else { c.x },
            y: if (ry - c.y).abs() < 0.05 { ry } else { c.y },
        }
    });
}

fn find(p: &mut [usize], mut x: usize) -> usize {
    while p[x] != x {
        p[x] = p[p[x]];
        x = p[x];
    }
    x
}

/// A record with its geometry back in its tile's CRS.
struct Item<'a> {
    tile: usize,
    det: &'a Detection,
    geom: MultiPolygon<f64>,
}

fn envelope(mp: &MultiPolygon<f64>) -> Option<([f64; 2], [f64; 2])> {
    mp.bounding_rect().map(|r| {
        (
            [r.min().x - 0.5, r.min().y - 0.5],
            [r.max().x + 0.5, r.max().y + 0.5],
        )
    })
}

/// Groups of items (indices, ascending) of one class that touch across tiles.
fn touching_groups(items: &[Item<'_>]) -> BTreeMap<usize, Vec<usize>> {
    let rects: Vec<GeomWithData<Rectangle<[f64; 2]>, usize>> = items
        .iter()
        .enumerate()
        .filter_map(|(k, it)| {
            envelope(&it.geom).map(|(a, b)| GeomWithData::new(Rectangle::from_corners(a, b), k))
        })
        .collect();
    let tree = RTree::bulk_load(rects);
    let mut parent: Vec<usize> = (0..items.len()).collect();
    for (k, it) in items.iter().enumerate() {
        let Some((a, b)) = envelope(&it.geom) else {
            continue;
        };
        for other in tree.locate_in_envelope_intersecting(&AABB::from_corners(a, b)) {
            let j = other.data;
            let o = &items[j];
            if j <= k || o.tile == it.tile || o.det.class != it.det.class {
                continue;
            }
            if it.geom.intersects(&o.geom) {
                let (a, b) = (find(&mut parent, k), find(&mut parent, j));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for k in 0..items.len() {
        let r = find(&mut parent, k);
        groups.entry(r).or_default().push(k);
    }
    groups
}

/// Merges records across tile seams.
///
/// # Errors
/// When coordinates cannot be transformed.
pub fn merge_seams(
    per_tile: &[TileDetections],
    segments: &[Segment],
    registry: &Registry,
    indexes: &Indexes,
) -> Result<Vec<Detection>> {
    let mut out = Vec::new();
    let mut by_crs: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, t) in per_tile.iter().enumerate() {
        by_crs.entry(t.grid.wkt.as_str()).or_default().push(i);
    }
    for (wkt, tiles) in by_crs {
        let from = Transformer::from_wgs84(wkt)?;
        let to = Transformer::to_wgs84(wkt)?;
        let indexed = indexes.get(segments, wkt, || project(segments, wkt))?;
        let linker = Linker::new(segments, &indexed.index, registry);
        let mut items = Vec::new();
        for &ti in &tiles {
            for det in &per_tile[ti].detections {
                let mut geom = det.geometry.clone();
                from.apply_geom(&mut geom)?;
                snap(&mut geom, &per_tile[ti].grid);
                items.push(Item {
                    tile: ti,
                    det,
                    geom,
                });
            }
        }
        for (_, members) in touching_groups(&items) {
            if let [only] = members[..] {
                let mut d = items[only].det.clone();
                d.tiles = vec![per_tile[items[only].tile].tile.clone()];
                out.push(d);
                continue;
            }
            let group: Vec<&Item<'_>> = members.iter().map(|&k| &items[k]).collect();
            out.push(merge_group(group, per_tile, &linker, &to)?);
        }
    }
    out.sort_by(|a, b| (&a.tile, &a.id).cmp(&(&b.tile, &b.id)));
    Ok(out)
}

fn merge_group(
    mut ms: Vec<&Item<'_>>,
    per_tile: &[TileDetections],
    linker: &Linker<'_>,
    to_wgs: &Transformer,
) -> Result<Detection> {
    let tile_of = |m: &Item<'_>| per_tile[m.tile].tile.as_str();
    ms.sort_by(|a, b| (tile_of(a), a.det.id.as_str()).cmp(&(tile_of(b), b.det.id.as_str())));
    let first = ms[0];
    let union = unary_union(ms.iter().map(|m| &m.geom));
    let pieces: Vec<&Detection> = ms.iter().map(|m| m.det).collect();
    let (evidence, confidence) = Detection::merged_evidence(&pieces);
    let mut tiles: Vec<String> = ms.iter().map(|m| tile_of(m).to_string()).collect();
    tiles.dedup();
    let mut d = first.det.clone();
    d.id = format!("{}-m{}", first.det.id, ms.len());
    d.area_m2 = round(union.unsigned_area(), 2);
    d.confidence = confidence;
    d.evidence = evidence;
    let grid = &per_tile[first.tile].grid;
    if let Some(link) = linker.link(&union, d.class, || pixel_centres(&union, grid)) {
        d.segment = Some(link.segment);
        d.chief = Some(link.chief);
        d.obstructs_flood_channel = link.obstructs;
    }
    d.tile = tile_of(first).to_string();
    d.tiles = tiles;
    let mut geometry = union.clone();
    to_wgs.apply_geom(&mut geometry)?;
    round_geometry(&mut geometry);
    d.geometry = geometry;
    d.geometry_crs = Some(union);
    Ok(d)
}
