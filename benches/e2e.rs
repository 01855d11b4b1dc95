//! `detect` end to end on one 2048 × 2048 five-band pair, next to a bench that
//! only reads the same two files with GDAL. The ratio of the two is the
//! number to watch (aim: within 2×).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use riverwatch::chiefs::Registry;
use riverwatch::config::Config;
use riverwatch::detect::{detect_tile, load_context_inputs, Context};
use riverwatch::io::raster::TileReader;
use riverwatch::manifest::Manifest;
use std::path::PathBuf;

fn manifest() -> Manifest {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/e2e2048");
    if !dir.join("manifest.json").exists() {
        let o = riverwatch::synth::SynthOptions {
            seed: 42,
            tiles: 1,
            size: 2048,
            sensor: "sentinel2-l2a".into(),
        };
        riverwatch::synth::synth(&dir, &o).expect("synth");
    }
    Manifest::load(&dir.join("manifest.json")).expect("manifest")
}

fn e2e(c: &mut Criterion) {
    riverwatch::tune_allocator();
    let m = manifest();
    let cfg = Config::default();
    let (segments, registry): (_, Registry) = load_context_inputs(&m, &cfg).expect("inputs");
    let ctx = Context {
        sensor: &m.sensor,
        segments: &segments,
        registry: &registry,
        config: &cfg,
    };
    let tile = &m.tiles[0];
    let mut g = c.benchmark_group("tile-2048");
    g.sample_size(10)
        .throughput(Throughput::Elements(2048 * 2048));
    g.bench_function("gdal_read_only", |b| {
        b.iter(|| {
            let r = TileReader::open(tile, &m.sensor).expect("open");
            let mut n = 0usize;
            for start in (0..r.grid.height).step_by(cfg.block_rows) {
                let (x, y) = r
                    .read_rows(start..(start + cfg.block_rows).min(r.grid.height))
                    .expect("read");
                n += x.bands.len() + y.bands.len();
            }
            n
        })
    });
    g.bench_function("gdal_read_both_threads", |b| {
        b.iter(|| {
            let r = TileReader::open(tile, &m.sensor).expect("open");
            let (x, y) = r.read_both(cfg.block_rows).expect("read");
            x.bands.len() + y.bands.len()
        })
    });
    g.bench_function("detect", |b| {
        b.iter(|| {
            detect_tile(tile, &ctx, None)
                .expect("detect")
                .features
                .len()
        })
    });
    g.finish();
}

criterion_group!(benches, e2e);
criterion_main!(benches);
