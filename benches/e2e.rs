//! `detect` end to end on one 2048 × 2048 five-band pair, next to a bench that
//! only reads the same two files with GDAL (both dates on their own threads,
//! as detect does). The ratio of the two is the number to watch.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use riverwatch::{detect_tile, load_context_inputs, Config, Context, Manifest, NoTap};
use std::path::PathBuf;

fn manifest() -> Manifest {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/e2e2048");
    if !dir.join("manifest.json").exists() {
        let o = riverwatch::SynthOptions {
            seed: 42,
            tiles: 1,
            size: 2048,
            sensor: "sentinel2-l2a".into(),
            ..Default::default()
        };
        riverwatch::synth(&dir, &o).expect("synth");
    }
    riverwatch::load_manifest(&dir.join("manifest.json")).expect("manifest")
}

fn e2e(c: &mut Criterion) {
    riverwatch::tune_allocator();
    let m = manifest();
    let cfg = Config::default();
    let (segments, registry) = load_context_inputs(&m, &cfg).expect("inputs");
    let ctx = Context {
        segments: &segments,
        registry: &registry,
        config: &cfg,
        stream: Default::default(),
        indexes: &Default::default(),
        change_model: None,
    };
    let tile = &m.tiles[0];
    let mut g = c.benchmark_group("tile-2048");
    g.sample_size(10)
        .throughput(Throughput::Elements(2048 * 2048));
    g.bench_function("gdal_read_both_threads", |b| {
        b.iter(|| {
            let p = riverwatch::read_pair(tile, &m.sensor, cfg.block_rows).expect("read");
            p.before.len() + p.after.len()
        })
    });
    g.bench_function("detect", |b| {
        b.iter(|| {
            detect_tile(tile, &m.sensor, &ctx, &mut NoTap)
                .expect("detect")
                .detections
                .len()
        })
    });
    g.finish();
}

criterion_group!(benches, e2e);
criterion_main!(benches);
