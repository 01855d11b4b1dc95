//! Linking at provincial scale: 100,000 river segments, 1,000,000 polygons.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use geo::{polygon, Coord, LineString, MultiLineString, MultiPolygon};
use riverwatch::{Projected, Segment, SegmentIndex};

struct Lcg(u64);
impl Lcg {
    fn f(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Segments of 2–6 km with 8 vertices, scattered over a 700 km square (about
/// the size of Heilongjiang), in a metric CRS.
fn network(n: usize, rng: &mut Lcg) -> (Vec<Segment>, Vec<Projected>) {
    let mut segs = Vec::with_capacity(n);
    let mut proj = Vec::with_capacity(n);
    for i in 0..n {
        let (mut x, mut y) = (rng.f() * 700_000.0, rng.f() * 700_000.0);
        let mut h = rng.f() * std::f64::consts::TAU;
        let step = 250.0 + rng.f() * 500.0;
        let mut pts = vec![Coord { x, y }];
        for _ in 0..7 {
            h += (rng.f() - 0.5) * 0.6;
            x += step * h.cos();
            y += step * h.sin();
            pts.push(Coord { x, y });
        }
        let lines = MultiLineString(vec![LineString(pts)]);
        segs.push(Segment {
            id: format!("S{i:06}"),
            river: "r".into(),
            chief_id: "c".into(),
            corridor_m: 500.0,
            channel_m: 200.0,
            lines: lines.clone(),
        });
        proj.push(Projected {
            index: i,
            lines,
            corridor_m: 500.0,
            channel_m: 200.0,
        });
    }
    (segs, proj)
}

fn link(c: &mut Criterion) {
    let mut rng = Lcg(7);
    let (segs, proj) = network(100_000, &mut rng);
    // Polygons of 20–80 m squares near random segment vertices.
    let polys: Vec<MultiPolygon<f64>> = (0..1_000_000)
        .map(|_| {
            let s = &proj[(rng.f() * proj.len() as f64) as usize];
            let v = s.lines.0[0].0[(rng.f() * 8.0) as usize];
            let (x, y) = (v.x + (rng.f() - 0.5) * 800.0, v.y + (rng.f() - 0.5) * 800.0);
            let d = 20.0 + rng.f() * 60.0;
            MultiPolygon(vec![
                polygon![(x: x, y: y), (x: x + d, y: y), (x: x + d, y: y + d), (x: x, y: y + d)],
            ])
        })
        .collect();
    let mut g = c.benchmark_group("link");
    g.sample_size(10);
    g.bench_function("bulk_load_100k_segments", |b| {
        b.iter(|| SegmentIndex::new(&segs, &proj))
    });
    let index = SegmentIndex::new(&segs, &proj);
    g.throughput(Throughput::Elements(polys.len() as u64));
    g.bench_function("nearest_1M_polygons", |b| {
        b.iter(|| polys.iter().filter_map(|p| index.nearest(p)).count())
    });
    // What a run does: every polygon at once, on every core.
    g.bench_function("nearest_all_1M_polygons", |b| {
        b.iter(|| index.nearest_all(&polys).iter().flatten().count())
    });
    g.finish();
}

criterion_group!(benches, link);
criterion_main!(benches);
