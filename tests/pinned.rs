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
        "dd0881bcf3dfe75f144020f3f670e5aec0452140945c7ffb114621c94cf5dc22",
    ),
    (
        "dispatch/哈尔滨市/松北区.geojson",
        "9a923e4e3866f93c5bc8a9b5b03f189f25fb8c281091f7f8880d050050d70d64",
    ),
    (
        "dispatch/哈尔滨市/道外区.csv",
        "438fb7a527082212f461447b10ad1b5d56dca6d1aff3be348e2a944a65bc15fc",
    ),
    (
        "dispatch/哈尔滨市/道外区.geojson",
        "956bed12e8bede8c921b35313e60e5799659f927e8fda9df69e7cf883e80357e",
    ),
    (
        "dispatch/哈尔滨市/道里区.csv",
        "ff9f3acdec0aa9c22031a02dd672e91a62f35f0ebda26fd52cee0115e16ccb97",
    ),
    (
        "dispatch/哈尔滨市/道里区.geojson",
        "b549fe6e21795df6f6cfaaed64880a9feda13e4afcb457461dba4cf41b0a787f",
    ),
    (
        "flagged.geojson",
        "174ffb68dee46d5457c11bbfdaf9e108dc94c1d27fb32bb56439d293d5a1dbf2",
    ),
    (
        "tiles/songhua-0000.geojson",
        "fd1f8de59d8e7e198d16a43d1d71e5a7e40a17fe99ff1804948b612bc3b9ebd5",
    ),
    (
        "tiles/songhua-0001.geojson",
        "581b9ba0d8025815d9a38028a61b67dcaecdf6b2e81ed4d7729c0d9bd02d60e9",
    ),
    (
        "tiles/songhua-0002.geojson",
        "6740f5c34196f2cb717a6e47022adac2186399b8631f966e2476b8a45bbfc7f9",
    ),
    (
        "tiles/songhua-0003.geojson",
        "b103437279db088330f7cf6dcea6383b4eb1f1a4f7499237d2f71e214542e5e7",
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
