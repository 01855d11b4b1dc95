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
        "1caab6c628046d66dabfecf41c8b73219e266170aac1db912cd94429ce9bbafe",
    ),
    (
        "dispatch/哈尔滨市/松北区.geojson",
        "63a9f1c73a7d052f61cd313e3b18e2f3d96bda38a56187f7ebadea54fbd059b4",
    ),
    (
        "dispatch/哈尔滨市/道外区.csv",
        "51583a414149277b23eb1e95f5dc5f40d4aa62bd95885efd6403991fdf23a874",
    ),
    (
        "dispatch/哈尔滨市/道外区.geojson",
        "7e46972bc68ad48d153930291b6dd8713114f8d7aff4b8eb8146e90502803e11",
    ),
    (
        "dispatch/哈尔滨市/道里区.csv",
        "d8a2106eaa2418e0f1c04ed1d9dd986546b3ba36a035e37410f8ae43f643b16d",
    ),
    (
        "dispatch/哈尔滨市/道里区.geojson",
        "9e917ed8d4840d30435773eb11b9f02dda5570dab219a9cf7815410cb4fa795c",
    ),
    (
        "flagged.geojson",
        "c1661fe52a6d9750bd5c1987155fc1c7cc4f339e7fb28e6733276b1f6c8aaafa",
    ),
    (
        "flagged.gpkg",
        "895d4994b0309db7962c408c9f5ae5d2df72d40411f1d4c555d720eb23ee7dd3",
    ),
    (
        "tiles/songhua-0000.geojson",
        "49511db21d9d2dea5085a1fcebb6aeed8d8275cadd7d361ed9f43b67f9d30157",
    ),
    (
        "tiles/songhua-0001.geojson",
        "86e30fc73cd83d4b59d6ea11329db2e978c4b2f3aa4012cb15d1eac388b8b472",
    ),
    (
        "tiles/songhua-0002.geojson",
        "6c2dda485a7a8409954d966bcf74acd39c12e10c4250c0bb1df286c628c5745d",
    ),
    (
        "tiles/songhua-0003.geojson",
        "ddccfb7f9a017313047a03ddecb90fcf51ffebad3a6042d8d905d2c09c1f7500",
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
