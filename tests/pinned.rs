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
        "f62ccf929db29a6786ef5a8133221a3d7f1cfb9730ed85cda370daf7c203ee56",
    ),
    (
        "dispatch/哈尔滨市/道外区.csv",
        "438fb7a527082212f461447b10ad1b5d56dca6d1aff3be348e2a944a65bc15fc",
    ),
    (
        "dispatch/哈尔滨市/道外区.geojson",
        "aa95b87bc74daf86f3a13feb318910414dc133d4c804ce7cc7c751b408e03d0c",
    ),
    (
        "dispatch/哈尔滨市/道里区.csv",
        "ff9f3acdec0aa9c22031a02dd672e91a62f35f0ebda26fd52cee0115e16ccb97",
    ),
    (
        "dispatch/哈尔滨市/道里区.geojson",
        "1638b3c976898e6519e5dd79a4862bdbdeffd77beb421339286434f86628b277",
    ),
    (
        "flagged.geojson",
        "e57bc42455236bc1b47dbc4c1c60635ed03116652b182ba3792dd73b4022c0f7",
    ),
    (
        "flagged.gpkg",
        "00a89f99f8d990174dd9cc3bc657765125cb63734519d51b9f0c02a8e3ec434e",
    ),
    (
        "tiles/songhua-0000.geojson",
        "c1460859a6839229b5efba316e173385b91c744027b14d4a5ce78503b3700bed",
    ),
    (
        "tiles/songhua-0001.geojson",
        "fca2c70ab81e403291fc0afbc6057e7d67e1593968fea350ebfbd789af8b281a",
    ),
    (
        "tiles/songhua-0002.geojson",
        "22dd2b27649dc8f8ef9af60acaa657e61bfdc63a89341a422c7aad7d796651fd",
    ),
    (
        "tiles/songhua-0003.geojson",
        "2e69753e9481b9874c96527b77a89c4a6b141aab670e6e0b9a9287a1ad33055e",
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
