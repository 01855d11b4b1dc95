//! Inputs, validation, synth and eval, through the built binary.

mod util;
use util::*;

#[test]
fn sample_tiles_validate() {
    let o = run(&["validate", "sample-tiles/manifest.json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("OK (4 tiles"), "{}", text(&o));
}

#[test]
fn sample_files_match_their_schemas() {
    let s = root().join("sample-tiles");
    check_schema("manifest", &json(&s.join("manifest.json")));
    check_schema("rivers", &json(&s.join("rivers.geojson")));
    check_schema("chiefs", &json(&s.join("chiefs.json")));
    check_schema("truth", &json(&s.join("truth.geojson")));
    let truth = json(&s.join("truth.geojson"));
    let feats = truth["features"].as_array().unwrap();
    assert!(
        feats.len() >= 20,
        "sample truth has {} features",
        feats.len()
    );
    for c in ["occupation", "sand_mining", "dumping", "construction"] {
        assert!(
            feats.iter().any(|f| f["properties"]["class"] == c),
            "no {c} in truth"
        );
    }
    assert!(feats
        .iter()
        .any(|f| f["properties"]["obstructs_flood_channel"] == true));
}

#[test]
fn synth_reproduces_sample_tiles_byte_for_byte() {
    let s = root().join("sample-tiles");
    let meta = json(&s.join("synth.json"));
    let out = tmp("synth-repro");
    let (seed, tiles, size) = (
        meta["seed"].to_string(),
        meta["tiles"].to_string(),
        meta["size"].to_string(),
    );
    let mut args = vec![
        "synth",
        "-o",
        out.to_str().unwrap(),
        "--seed",
        &seed,
        "--tiles",
        &tiles,
        "--size",
        &size,
        "--sensor",
        meta["sensor"].as_str().unwrap(),
    ];
    if meta.get("third_date").is_some() {
        args.push("--third-date");
    }
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
    let (a, b) = (files(&s), files(&out));
    assert_eq!(a, b, "file lists differ");
    for f in &a {
        assert!(
            std::fs::read(s.join(f)).unwrap() == std::fs::read(out.join(f)).unwrap(),
            "{} differs from a fresh synth",
            f.display()
        );
    }
}

#[test]
fn synth_gf_has_four_bands_and_validates() {
    let out = tmp("synth-gf");
    let o = run(&[
        "synth",
        "-o",
        out.to_str().unwrap(),
        "--seed",
        "11",
        "--tiles",
        "2",
        "--size",
        "128",
        "--sensor",
        "gf-4band",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let m = json(&out.join("manifest.json"));
    assert_eq!(m["sensor"], "gf-4band");
    let o = run(&["validate", out.join("manifest.json").to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let img = out.join(m["tiles"][0]["before"]["image"].as_str().unwrap());
    let (_, bands) = riverwatch::probe(&img).unwrap();
    assert_eq!(bands, 4);
}

#[test]
fn every_bad_input_exits_2_with_a_message_naming_file_and_problem() {
    let dir = root().join("tests/bad-inputs");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let case = e.path();
        if !case.is_dir() || case.ends_with("common") {
            continue;
        }
        n += 1;
        let expect = std::fs::read_to_string(case.join("expect.txt")).unwrap();
        let o = run(&["validate", case.join("manifest.json").to_str().unwrap()]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{}: {t}", case.display());
        assert!(!t.contains("panicked"), "{}: {t}", case.display());
        for want in expect.lines().filter(|l| !l.is_empty()) {
            assert!(
                t.contains(want),
                "{}: expected {want:?} in:\n{t}",
                case.display()
            );
        }
    }
    assert!(n >= 15, "only {n} bad-input cases");
}

#[test]
fn eval_truth_against_itself_and_against_nothing() {
    let o = run(&[
        "eval",
        "--pred",
        "sample-tiles/truth.geojson",
        "--truth",
        "sample-tiles/truth.geojson",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in ["objects", "class_aware", "obstruction"] {
        assert_eq!(r[k]["f1"], 1.0, "{k}");
    }
    assert_eq!(r["chief_accuracy"], 1.0);
    assert!((r["area"]["iou"].as_f64().unwrap() - 1.0).abs() < 1e-9);

    let dir = tmp("eval-empty");
    let empty = dir.join("empty.geojson");
    std::fs::write(&empty, r#"{"type":"FeatureCollection","features":[]}"#).unwrap();
    let o = run(&[
        "eval",
        "--pred",
        empty.to_str().unwrap(),
        "--truth",
        "sample-tiles/truth.geojson",
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["objects"]["recall"], 0.0);
    assert_eq!(r["objects"]["precision"], 1.0);
    assert!(r["chief_accuracy"].is_null());
}

#[test]
fn eval_rejects_broken_geojson_with_exit_2() {
    let dir = tmp("eval-bad");
    let bad = dir.join("bad.geojson");
    std::fs::write(&bad, "{\"type\": \"FeatureCollection\", \"features\": [").unwrap();
    let o = run(&[
        "eval",
        "--pred",
        bad.to_str().unwrap(),
        "--truth",
        "sample-tiles/truth.geojson",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("bad.geojson"), "{}", text(&o));
}
