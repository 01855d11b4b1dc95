//! One criterion group per kernel, on a 1024 × 1024 synth tile pair.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use riverwatch::kernels::{change, clouds, coregister, indices, label, morphology, normalize};
use riverwatch::Config;
use std::path::PathBuf;

fn data() -> (
    ndarray::Array3<f32>,
    ndarray::Array3<f32>,
    ndarray::Array2<bool>,
) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/k1024");
    if !dir.join("manifest.json").exists() {
        let o = riverwatch::SynthOptions {
            seed: 42,
            tiles: 1,
            size: 1024,
            sensor: "sentinel2-l2a".into(),
            ..Default::default()
        };
        riverwatch::synth(&dir, &o).expect("synth");
    }
    let m = riverwatch::load_manifest(&dir.join("manifest.json")).expect("manifest");
    let p = riverwatch::read_pair(&m.tiles[0], &m.sensor, 512).expect("read");
    (p.before, p.after, p.valid)
}

fn kernels(c: &mut Criterion) {
    let (before, after, valid) = data();
    let px = (before.dim().1 * before.dim().2) as u64;
    let cfg = Config::default();
    let mut g = c.benchmark_group("kernels-1024");
    g.sample_size(10).throughput(Throughput::Elements(px));
    g.bench_function("indices", |b| b.iter(|| indices::indices(before.view())));
    g.bench_function("normalize_fit", |b| {
        b.iter(|| {
            normalize::fit(
                before.view(),
                after.view(),
                valid.view(),
                3,
                normalize::Selection::Residual,
                30,
                0.5,
                [0.7, 1.4],
            )
        })
    });
    g.bench_function("normalize_fit_irmad", |b| {
        b.iter(|| {
            normalize::fit(
                before.view(),
                after.view(),
                valid.view(),
                3,
                normalize::Selection::Irmad,
                30,
                0.5,
                [0.7, 1.4],
            )
        })
    });
    g.bench_function("clouds_and_shadows", |b| {
        b.iter(|| {
            clouds::clouds_and_shadows(before.view(), after.view(), valid.view(), &cfg.clouds())
        })
    });
    let (ia, ib) = (&before, &after);
    g.bench_function("tolerant_change_r1", |b| {
        b.iter(|| change::tolerant(ia.view(), ib.view(), cfg.misregistration_px))
    });
    g.bench_function("tolerant_change_r2", |b| {
        b.iter(|| change::tolerant(ia.view(), ib.view(), 2))
    });
    g.bench_function("thin_clouds", |b| {
        b.iter(|| clouds::thin_clouds(before.view(), after.view(), valid.view(), &cfg.clouds()))
    });
    g.bench_function("coregister_estimate", |b| {
        b.iter(|| {
            coregister::estimate_shift(
                before.view(),
                after.view(),
                valid.view(),
                cfg.coregister_px as f32,
            )
        })
    });
    g.bench_function("coregister_apply", |b| {
        b.iter(|| coregister::apply_shift(after.view(), valid.view(), 0.375, -0.625))
    });
    g.bench_function("cva", |b| b.iter(|| change::cva(ia.view(), ib.view())));
    let mag = change::cva(ia.view(), ib.view());
    let mask = mag.mapv(|m| m > 0.08);
    g.bench_function("close_cross", |b| {
        b.iter(|| morphology::close(mask.view(), morphology::Shape::Cross, 1))
    });
    g.bench_function("label", |b| b.iter(|| label::label(mask.view())));
    g.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
