//! Streaming in row blocks gives exactly the whole-scene result: the same
//! detections (every field, every coordinate) and the same report, for
//! blocks of 64 rows and of an odd size (the latter in three vertical
//! strips computed side by side, with the zone rows read once before the
//! global pass and without), on the sample tiles, a fresh
//! synth seed in both band layouts, and a scene where most blocks lie
//! outside every management zone (skipped, not read).

mod util;

use riverwatch::{
    detect_tile, load_context_inputs, load_manifest, Config, Context, Manifest, NoTap, Segment,
    StreamOptions, TileResult,
};
use std::path::Path;
use util::{root, run, tmp};

fn detect_all(m: &Manifest, segs: &[Segment], stream: StreamOptions) -> Vec<TileResult> {
    detect_all_with(m, segs, stream, &Config::default())
}

fn detect_all_with(
    m: &Manifest,
    segs: &[Segment],
    stream: StreamOptions,
    cfg: &Config,
) -> Vec<TileResult> {
    let (_, registry) = load_context_inputs(m, cfg).unwrap();
    let ctx = Context {
        segments: segs,
        registry: &registry,
        config: cfg,
        stream,
        indexes: &Default::default(),
        change_model: None,
    };
    m.tiles
        .iter()
        .map(|t| detect_tile(t, &m.sensor, &ctx, &mut NoTap).unwrap())
        .collect()
}

fn always(rows: usize) -> StreamOptions {
    always_in(rows, 1)
}

/// Streamed in blocks of `rows` rows and `strips` vertical strips.
fn always_in(rows: usize, strips: usize) -> StreamOptions {
    StreamOptions {
        block_rows: rows,
        in_memory_px: 0,
        strips,
        ..StreamOptions::default()
    }
}

/// The same, every window read through GDAL where it is needed (no rows
/// read once before the global pass).
fn unloaded(rows: usize, strips: usize) -> StreamOptions {
    StreamOptions {
        preload_px: 0,
        ..always_in(rows, strips)
    }
}

fn whole() -> StreamOptions {
    StreamOptions {
        in_memory_px: usize::MAX,
        ..StreamOptions::default()
    }
}

/// Detections as JSON, and the report without the wall time and the
/// streaming summary.
fn comparable(r: &TileResult) -> (serde_json::Value, serde_json::Value) {
    let mut rep = serde_json::to_value(&r.report).unwrap();
    let o = rep.as_object_mut().unwrap();
    o.remove("seconds");
    o.remove("stream");
    (serde_json::to_value(&r.detections).unwrap(), rep)
}

fn assert_same(manifest: &Path, segs: Option<&dyn Fn(&Segment) -> bool>) -> Vec<f64> {
    let m = load_manifest(manifest).unwrap();
    let (all, _) = load_context_inputs(&m, &Config::default()).unwrap();
    let segs: Vec<Segment> = match segs {
        Some(keep) => all.into_iter().filter(|s| keep(s)).collect(),
        None => all,
    };
    let reference = detect_all(&m, &segs, whole());
    assert!(reference.iter().all(|r| r.report.stream.is_none()));
    let mut shares = Vec::new();
    // Three strips of a 512-wide scene: the outer two read and compute a
    // window that ends inside the scene, so their own columns are exact
    // only if the column halo covers the whole stage chain.
    let mut first: Option<Vec<serde_json::Value>> = None;
    for opt in [always_in(64, 1), always_in(45, 3), unloaded(45, 3)] {
        let (rows, strips) = (opt.block_rows, opt.strips);
        let streamed = detect_all(&m, &segs, opt);
        // Streamed reports, shares included, do not depend on the block
        // size or the strips (a strip skips blocks by its own columns).
        let reports: Vec<_> = streamed.iter().map(|r| comparable(r).1).collect();
        match &first {
            None => first = Some(reports),
            Some(f) => assert_eq!(
                f, &reports,
                "streamed reports differ with {rows}-row blocks in {strips} strips"
            ),
        }
        for (a, b) in reference.iter().zip(&streamed) {
            let s = b.report.stream.as_ref().expect("streamed");
            assert_eq!((s.block_rows, s.strips), (rows, strips));
            assert_eq!(s.blocks, b.grid.height.div_ceil(rows));
            let (da, ra) = comparable(a);
            let (db, rb) = comparable(b);
            assert_eq!(
                da, db,
                "{}: detections differ with {rows}-row blocks",
                a.report.tile
            );
            {
                // A streamed report's valid and cloudy shares are over the
                // zone (a whole scene's over the tile); the rest is equal.
                for k in [
                    "change_threshold",
                    "water_threshold",
                    "normalization",
                    "shift_px",
                    "polygons",
                    "zone_share",
                ] {
                    assert_eq!(ra[k], rb[k], "{}: {k}", a.report.tile);
                }
            }
            shares.push(s.blocks_in_zone as f64 / s.blocks as f64);
        }
    }
    assert!(reference.iter().map(|r| r.detections.len()).sum::<usize>() > 0);
    shares
}

#[test]
fn row_blocks_equal_the_whole_scene_on_the_sample_tiles() {
    assert_same(&root().join("sample-tiles/manifest.json"), None);
}

#[test]
fn row_blocks_equal_the_whole_scene_on_a_fresh_seed_in_both_layouts() {
    for sensor in ["sentinel2-l2a", "gf-4band"] {
        let d = tmp(&format!("stream-seed-{sensor}"));
        let o = run(&[
            "synth",
            "--seed",
            "103",
            "--tiles",
            "2",
            "--size",
            "512",
            "--sensor",
            sensor,
            "-o",
            d.to_str().unwrap(),
        ]);
        assert!(o.status.success());
        assert_same(&d.join("manifest.json"), None);
    }
}

#[test]
fn blocks_no_zone_reaches_are_skipped_and_change_nothing() {
    // Keep only the river segments that stay in the northern part of each
    // sample tile's latitude range, so most blocks lie outside every zone.
    let m = load_manifest(&root().join("sample-tiles/manifest.json")).unwrap();
    let (segs, _) = load_context_inputs(&m, &Config::default()).unwrap();
    let lat = |s: &Segment| {
        use geo::BoundingRect;
        s.lines.bounding_rect().map_or(0.0, |b| b.min().y)
    };
    let mut lats: Vec<f64> = segs.iter().map(lat).collect();
    lats.sort_by(f64::total_cmp);
    let cut = lats[lats.len() * 3 / 4];
    let keep = move |s: &Segment| lat(s) >= cut;
    let shares = assert_same(&root().join("sample-tiles/manifest.json"), Some(&keep));
    assert!(
        shares.iter().any(|&s| s < 1.0),
        "some tile should have had blocks skipped: read shares {shares:?}"
    );
}

#[test]
fn batch_streamed_writes_the_same_files() {
    let a = tmp("stream-batch-whole");
    let b = tmp("stream-batch-64");
    let m = root().join("sample-tiles/manifest.json");
    let m = m.to_str().unwrap();
    let o = run(&[
        "batch",
        m,
        "-o",
        a.to_str().unwrap(),
        "--no-progress",
        "--stream",
        "never",
    ]);
    assert!(o.status.success());
    let o = run(&[
        "batch",
        m,
        "-o",
        b.to_str().unwrap(),
        "--no-progress",
        "--stream",
        "always",
        "--block-rows",
        "64",
    ]);
    assert!(o.status.success(), "{}", util::text(&o));
    let mut compared = 0;
    for rel in util::files(&a) {
        let f = a.join(&rel);
        let name = rel.to_string_lossy();
        // Tile records and the summary carry wall times and the streaming
        // summary, the plan the streaming settings; everything sent to a
        // team must be byte-identical.
        if name.starts_with("tiles/") && name.ends_with(".json")
            || name == "summary.json"
            || name == "plan.json"
        {
            continue;
        }
        let (x, y) = (
            std::fs::read(&f).unwrap(),
            std::fs::read(b.join(&rel)).unwrap(),
        );
        assert!(
            x == y,
            "{name} differs between whole-scene and streamed batch"
        );
        compared += 1;
    }
    assert!(compared >= 5, "compared {compared} files");
}

#[test]
fn a_scene_no_zone_reaches_gives_no_polygons_and_says_so() {
    // One river segment moved a degree north of the sample tiles.
    let m = load_manifest(&root().join("sample-tiles/manifest.json")).unwrap();
    let (segs, _) = load_context_inputs(&m, &Config::default()).unwrap();
    let mut far = segs[0].clone();
    use geo::MapCoordsInPlace;
    far.lines.map_coords_in_place(|c| geo::Coord {
        x: c.x,
        y: c.y + 1.0,
    });
    let streamed = detect_all(&m, &[far.clone()], always(64));
    let whole = detect_all(&m, &[far], whole());
    for (a, b) in whole.iter().zip(&streamed) {
        assert!(a.detections.is_empty() && b.detections.is_empty());
        let s = b.report.stream.as_ref().unwrap();
        assert_eq!(
            (s.blocks_in_zone, a.report.zone_share, b.report.zone_share),
            (0, 0.0, 0.0)
        );
        assert!(b
            .report
            .notes
            .iter()
            .any(|n| n.contains("no management zone reaches")));
    }
}

/// Regions over `max_object_px` are not reported, whole or streamed (the
/// streamed path keeps only their pixel count), and the notes say so.
#[test]
fn regions_over_the_cap_are_said_not_reported_in_both_paths() {
    let m = load_manifest(&root().join("sample-tiles/manifest.json")).unwrap();
    let (segs, _) = load_context_inputs(&m, &Config::default()).unwrap();
    let cfg = Config {
        max_object_px: 40,
        ..Config::default()
    };
    let reference = detect_all_with(&m, &segs, whole(), &cfg);
    let uncapped = detect_all(&m, &segs, whole());
    let n = |r: &[TileResult]| r.iter().map(|t| t.detections.len()).sum::<usize>();
    assert!(n(&reference) < n(&uncapped));
    assert!(reference
        .iter()
        .all(|t| t.detections.iter().all(|d| d.evidence.pixels <= 40)));
    assert!(reference.iter().any(|t| t
        .report
        .notes
        .iter()
        .any(|n| n.contains("larger than max_object_px = 40"))));
    for rows in [64, 45] {
        let streamed = detect_all_with(&m, &segs, always(rows), &cfg);
        for (a, b) in reference.iter().zip(&streamed) {
            let ((da, ra), (db, rb)) = (comparable(a), comparable(b));
            let t = &a.report.tile;
            assert_eq!(da, db, "{t}: detections with {rows}-row blocks");
            // Valid and cloud shares are over the zone blocks when streamed.
            for k in ["notes", "polygons", "change_threshold", "normalization"] {
                assert_eq!(ra[k], rb[k], "{t}: {k} with {rows}-row blocks");
            }
        }
    }
}

/// `split_probability` splits components in the whole-scene path on the
/// whole mask and, when streamed, on each finished component: the
/// detections are the same, and they differ from the unsplit ones.
#[test]
fn split_components_are_the_same_whole_and_streamed() {
    let m = load_manifest(&root().join("sample-tiles/manifest.json")).unwrap();
    let (segs, _) = load_context_inputs(&m, &Config::default()).unwrap();
    let cfg = Config::default();
    let off = Config {
        split_probability: 0.0,
        ..Config::default()
    };
    let reference = detect_all_with(&m, &segs, whole(), &cfg);
    let unsplit = detect_all_with(&m, &segs, whole(), &off);
    let px = |r: &[TileResult]| {
        r.iter()
            .flat_map(|t| t.detections.iter().map(|d| d.evidence.pixels))
            .sum::<u64>()
    };
    assert_ne!(px(&reference), px(&unsplit), "the split changed nothing");
    for opt in [always_in(64, 1), always_in(45, 3)] {
        let streamed = detect_all_with(&m, &segs, opt, &cfg);
        for (a, b) in reference.iter().zip(&streamed) {
            assert_eq!(
                comparable(a).0,
                comparable(b).0,
                "{}: split detections with {}-row blocks in {} strips",
                a.report.tile,
                opt.block_rows,
                opt.strips
            );
        }
    }
}
