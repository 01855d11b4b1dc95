//! The sample tiles' batch output, pinned by SHA-256: a restructuring or a
//! speed-up must not change a byte of what rectification teams receive. A
//! deliberate change of detection or format updates these hashes in the same
//! commit, with the reason in CHANGES.md.

mod util;
use sha2::{Digest, Sha256};
use util::*;

const PINNED: &[(&str, &str)] = &[
    (
        "dispatch/哈尔滨市/松北区.csv",
        "3cb6bbfdc085f9960479b413169e9b0692e221630c53994c6ed1717eeef2420f",
    ),
    (
        "dispatch/哈尔滨市/松北区.geojson",
        "04302ea37584332a17dfb9e1517ee58c83c3e5a98be4a43ef491246c27c10552",
    ),
    (
        "dispatch/哈尔滨市/道外区.csv",
        "a0a2b5fa2f952967d53aa6adb6efdb3d10bf3cc8f2c9650fbb9ab44b64a1a088",
    ),
    (
        "dispatch/哈尔滨市/道外区.geojson",
        "e8051df2dc1cb5c24bca9f25b189b11775113c650f7252852053a00797ded2c6",
    ),
    (
        "dispatch/哈尔滨市/道里区.csv",
        "7ae8d17061ddf62bc285f2ab2874c2621e5ea2d34890a555e73eeda76f64267a",
    ),
    (
        "dispatch/哈尔滨市/道里区.geojson",
        "1b8b839c880c3c935f4b4b1badef6e096662e6bf32347dc901ea93cb003344c0",
    ),
    (
        "flagged.geojson",
        "d464fae45f04d3e06ae846914e3bf980596046811841ce387da06620bd5009e6",
    ),
    (
        "flagged.gpkg",
        "3f3bf885bf486a9296993fd40c6667101dfb4cb5c71c7b7f16fda1a9cdbe4dc8",
    ),
    (
        "tiles/songhua-0000.geojson",
        "a4f2101e42f5287b529c4c1b9820f2c1e4df904aeb4f6bd04da4ad1b266542c0",
    ),
    (
        "tiles/songhua-0001.geojson",
        "753e375c9b7d8c8b31beda455dcdf01ab5e56c7450b66839d3dca36cf1781d8f",
    ),
    (
        "tiles/songhua-0002.geojson",
        "b770d636ff3d6e5fb624637131b9cce629d84728980f20bc8a3c1f372d96b445",
    ),
    (
        "tiles/songhua-0003.geojson",
        "c01aaa3295622436547e5bb03c2c16f537f263576660e33fe5c39033a05bdcaf",
    ),
];

#[test]
fn sample_tile_batch_output_is_pinned() {
    let out = tmp("pinned");
    let o = run(&[
        "batch",
        "sample-tiles/manifest.json",
        "-o",
        out.to_str().unwrap(),
        "--jobs",
        "2",
        "--no-progress",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let mut wrong = Vec::new();
    for (rel, want) in PINNED {
        let bytes = std::fs::read(out.join(rel)).unwrap_or_default();
        let got: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if got != *want {
            wrong.push(format!("{rel}: {got} (pinned {want})"));
        }
    }
    assert!(wrong.is_empty(), "outputs changed:\n{}", wrong.join("\n"));
}

#[test]
fn feature_tap_writes_one_line_per_polygon_and_changes_nothing() {
    let dir = tmp("features-tap");
    let (plain, tapped, feats) = (
        dir.join("a.geojson"),
        dir.join("b.geojson"),
        dir.join("f.jsonl"),
    );
    let o = run(&[
        "detect",
        "sample-tiles/manifest.json",
        "-o",
        plain.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&[
        "detect",
        "sample-tiles/manifest.json",
        "-o",
        tapped.to_str().unwrap(),
        "--features",
        feats.to_str().unwrap(),
        "--timings",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("global pass"), "{}", text(&o));
    assert_eq!(
        std::fs::read(&plain).unwrap(),
        std::fs::read(&tapped).unwrap()
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&feats)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let n_conf = lines[0]["conf_names"].as_array().unwrap().len();
    let polys = json(&plain)["features"].as_array().unwrap().len();
    assert_eq!(lines.len() - 1, polys);
    for l in &lines[1..] {
        assert_eq!(l["conf_features"].as_array().unwrap().len(), n_conf);
        assert_eq!(
            l["class_features"].as_array().unwrap().len(),
            lines[0]["class_names"]["swir"].as_array().unwrap().len()
        );
    }
}
