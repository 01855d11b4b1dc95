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
        "cdc318c17541ee3883fddf74b19fb334250ab27f28d4ce92b332a2645e335afa",
    ),
    (
        "dispatch/哈尔滨市/松北区.geojson",
        "3cd9f448a97a6076be0ad8eaef5aba7cc2e83f1456ffa7a629b3b613edc7d449",
    ),
    (
        "dispatch/哈尔滨市/道外区.csv",
        "64a0906dc9c7e6baaa39d05f4155b5d31af389338dafd89ec817c67827ccc34e",
    ),
    (
        "dispatch/哈尔滨市/道外区.geojson",
        "097cac575df2986ccf50ae91feece7a346e93fb0ee922058bdbd59b16394f587",
    ),
    (
        "dispatch/哈尔滨市/道里区.csv",
        "87a3418b4ad3be0c0f15f290d5630ea77eaa6b37f3241934af41c46cc7f14303",
    ),
    (
        "dispatch/哈尔滨市/道里区.geojson",
        "6b2e462fc9a64df4d28fcf6e7af748f2d1efa9e07d324b45ac12676bc8ad41f0",
    ),
    (
        "flagged.geojson",
        "01ed00be1ff0c055f6060041171281df0672c16bc0d600399300d95aace18d42",
    ),
    (
        "flagged.gpkg",
        "7792bb29e41cd80dd922e727685ef8e48efa95487e28b57d5d5337918c31baa8",
    ),
    (
        "tiles/songhua-0000.geojson",
        "d2ef20da130e808c7051594eb0472002defff05e5de5d907a0a945ac0558100c",
    ),
    (
        "tiles/songhua-0001.geojson",
        "5a226247fb66128268e7b2d417839edff60ce20541d2d237ac642716954e561f",
    ),
    (
        "tiles/songhua-0002.geojson",
        "0b224e17f1a3198d4961a6e6f44a08bb99558f2ffa7349c0d6ef300f2fc57f5b",
    ),
    (
        "tiles/songhua-0003.geojson",
        "2334e4e7e20ad9285e15bf42c9a88cb23e834d3c11d041fe361a79c732c0f98f",
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
