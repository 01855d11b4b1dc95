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
        "cd84d88b027ab9d17073bc5bfaf427f2fff528333876cacabf89460add9e9b97",
    ),
    (
        "dispatch/哈尔滨市/松北区.geojson",
        "271971e285a79a3e6d45915c0dd9cf472e51df7c19da329fd011898015e25eb0",
    ),
    (
        "dispatch/哈尔滨市/道外区.csv",
        "847ff307866131099ddca6eacf8b17c5074511d4fd839495d40dcbee1a68287f",
    ),
    (
        "dispatch/哈尔滨市/道外区.geojson",
        "217dc79d4936461eec5040deb1d13be6ed000eba90f61f373e10d1d717becce5",
    ),
    (
        "dispatch/哈尔滨市/道里区.csv",
        "d756feeba8a9e3c4ad895deba507775ef41272faf81f8f4c513e5259e6cc7f60",
    ),
    (
        "dispatch/哈尔滨市/道里区.geojson",
        "d8c9906568c4855d0adc82cfd2711a48887051174ff9145c938b24fa2bca01f5",
    ),
    (
        "flagged.geojson",
        "70cc18f5343e5d763e78577dbc5724e77eede26fb6a0a54eb227d64797e5c8cb",
    ),
    (
        "flagged.gpkg",
        "6ff8591f5b383f7857b55d1c2cff33944eaa32e44616980b6cf23ff0e2b4e3a5",
    ),
    (
        "tiles/songhua-0000.geojson",
        "a4f2101e42f5287b529c4c1b9820f2c1e4df904aeb4f6bd04da4ad1b266542c0",
    ),
    (
        "tiles/songhua-0001.geojson",
        "cebb763b1ee6835ade248905540244f9ae912189e6ed771a6d9f018c5796702b",
    ),
    (
        "tiles/songhua-0002.geojson",
        "b770d636ff3d6e5fb624637131b9cce629d84728980f20bc8a3c1f372d96b445",
    ),
    (
        "tiles/songhua-0003.geojson",
        "0ec356b27a075617b1724c4a3d1c2c94e8d52493e5872754f36cc5157a680efb",
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
