//! `riverwatch detect` end to end on the bundled sample tiles.

mod util;
use util::*;

fn detect(args: &[&str], out: &std::path::Path) -> std::process::Output {
    let mut a = vec!["detect"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", out.to_str().unwrap()]);
    run(&a)
}

#[test]
fn sample_tiles_output_is_schema_valid_and_matches_truth() {
    let dir = tmp("detect-sample");
    let out = dir.join("flagged.geojson");
    let o = detect(&["sample-tiles/manifest.json"], &out);
    assert!(o.status.success(), "{}", text(&o));
    let doc = json(&out);
    check_schema("flagged", &doc);
    let feats = doc["features"].as_array().unwrap();
    assert!(!feats.is_empty());
    for f in feats {
        let p = &f["properties"];
        let chain = p["chain"].as_array().unwrap();
        assert_eq!(chain[0], p["chief_id"]);
        assert_eq!(chain.last().unwrap(), "hlj", "chain ends at the province");
        assert!(p["city"].is_string());
        // Area equals pixel count × 100 m² (10 m pixels, no simplification).
        let px = p["evidence"]["pixels"].as_f64().unwrap();
        assert!((p["area_m2"].as_f64().unwrap() - px * 100.0).abs() < 1e-6 * px * 100.0 + 0.01);
    }
    // Quality floor on the sample tiles (measured: precision 0.931, recall at
    // the mapping unit 0.844, chief accuracy 1.0, obstruction F1 1.0): a
    // regression guard.
    let e = run(&[
        "eval",
        "--pred",
        out.to_str().unwrap(),
        "--truth",
        "sample-tiles/truth.geojson",
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    assert!(r["objects"]["precision"].as_f64().unwrap() >= 0.85, "{r:#}");
    assert!(r["recall_at_mmu"].as_f64().unwrap() >= 0.8, "{r:#}");
    assert!(r["chief_accuracy"].as_f64().unwrap() >= 0.99, "{r:#}");
    assert!(r["obstruction"]["f1"].as_f64().unwrap() >= 0.9, "{r:#}");
}

#[test]
fn output_is_identical_whatever_the_thread_count() {
    let dir = tmp("detect-threads");
    let mut outs = Vec::new();
    for threads in ["1", "2", "3"] {
        let out = dir.join(format!("t{threads}.geojson"));
        let o = bin()
            .args([
                "detect",
                "sample-tiles/manifest.json",
                "--tile",
                "songhua-0001",
                "-o",
                out.to_str().unwrap(),
            ])
            .env("RAYON_NUM_THREADS", threads)
            .current_dir(root())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        outs.push(std::fs::read(&out).unwrap());
    }
    assert!(
        outs.windows(2).all(|w| w[0] == w[1]),
        "outputs differ between thread counts"
    );
}

#[test]
fn single_pair_mode_and_emitted_rasters() {
    let dir = tmp("detect-pair");
    let out = dir.join("pair.geojson");
    let rasters = dir.join("rasters");
    let t = "sample-tiles/tiles/songhua-0000";
    let o = detect(
        &[
            "--before",
            &format!("{t}_2025-06-12.tif"),
            "--after",
            &format!("{t}_2026-06-17.tif"),
            "--rivers",
            "sample-tiles/rivers.geojson",
            "--chiefs",
            "sample-tiles/chiefs.json",
            "--tile",
            "songhua-0000",
            "--emit-rasters",
            rasters.to_str().unwrap(),
        ],
        &out,
    );
    assert!(o.status.success(), "{}", text(&o));
    let doc = json(&out);
    check_schema("flagged", &doc);
    assert_eq!(
        doc["features"][0]["properties"]["before_date"], "2025-06-12",
        "date taken from the file name"
    );
    for name in [
        "landcover_before",
        "landcover_after",
        "change_magnitude",
        "change_class",
        "confidence",
        "any_change",
        "suppressed",
        "zones",
    ] {
        let p = rasters.join(format!("songhua-0000_{name}.tif"));
        let (g, bands) = riverwatch::probe(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!((g.width, g.height, bands), (384, 384, 1), "{name}");
    }
    // NDVI, NDWI, MNDWI, NDBI, BSI (the sample tiles have SWIR).
    for name in ["indices_before", "indices_after"] {
        let p = rasters.join(format!("songhua-0000_{name}.tif"));
        let (_, bands) = riverwatch::probe(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(bands, 5, "{name}");
    }
}

#[test]
fn emitted_rasters_leave_polygons_alone_and_score_pixel_by_pixel() {
    let dir = tmp("detect-emit");
    let (a, b, rasters) = (dir.join("a.geojson"), dir.join("b.geojson"), dir.join("r"));
    let o = detect(
        &[
            "sample-tiles/manifest.json",
            "--emit-rasters",
            rasters.to_str().unwrap(),
        ],
        &a,
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = detect(&["sample-tiles/manifest.json"], &b);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "--emit-rasters changed the polygons"
    );
    let e = run(&[
        "eval-change",
        "--rasters",
        rasters.to_str().unwrap(),
        "--truth",
        "sample-tiles/truth.geojson",
        "--json",
    ]);
    assert!(e.status.success(), "{}", text(&e));
    let r: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    assert_eq!(r["tiles"], 4);
    // Measured on the sample tiles: any_change kappa 0.66 (F1 0.67),
    // reported kappa 0.84: regression floors.
    assert!(r["any_change"]["kappa"].as_f64().unwrap() >= 0.55, "{r:#}");
    assert!(r["reported"]["kappa"].as_f64().unwrap() >= 0.75, "{r:#}");
    let n = r["any_change"]["tp"].as_u64().unwrap() + r["any_change"]["fn"].as_u64().unwrap();
    assert_eq!(n, r["truth_pixels"].as_u64().unwrap());
    let missing = run(&[
        "eval-change",
        "--rasters",
        dir.join("nope").to_str().unwrap(),
        "--truth",
        "sample-tiles/truth.geojson",
    ]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(text(&missing).contains("nope"), "{}", text(&missing));
}

#[test]
fn cva_otsu_baseline_runs_with_the_same_outputs() {
    let dir = tmp("detect-cva");
    let out = dir.join("cva.geojson");
    let o = detect(
        &["sample-tiles/manifest.json", "--method", "cva-otsu"],
        &out,
    );
    assert!(o.status.success(), "{}", text(&o));
    check_schema("flagged", &json(&out));
}

#[test]
fn bad_inputs_exit_2_from_detect_too() {
    let dir = tmp("detect-bad");
    for case in [
        "missing-file",
        "wrong-band-count",
        "grids-differ",
        "chief-parent-missing",
        "nan-width",
        "bad-json",
        "truncated-tiff",
    ] {
        let out = dir.join(format!("{case}.geojson"));
        let m = root()
            .join("tests/bad-inputs")
            .join(case)
            .join("manifest.json");
        let o = detect(&[m.to_str().unwrap()], &out);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{case}: {t}");
        assert!(!t.contains("panicked"), "{case}: {t}");
        assert!(!out.exists(), "{case}: nothing may be written");
        let first = std::fs::read_to_string(m.parent().unwrap().join("expect.txt")).unwrap();
        let want = first.lines().next().unwrap();
        assert!(t.contains(want), "{case}: expected {want:?} in {t}");
    }
}

#[test]
fn config_file_overrides_and_rejects_unknown_keys() {
    let dir = tmp("detect-config");
    let cfg = dir.join("strict.toml");
    std::fs::write(&cfg, "min_area_m2 = 5000.0\n").unwrap();
    let out = dir.join("big.geojson");
    let o = detect(
        &[
            "sample-tiles/manifest.json",
            "--config",
            cfg.to_str().unwrap(),
        ],
        &out,
    );
    assert!(o.status.success(), "{}", text(&o));
    for f in json(&out)["features"].as_array().unwrap() {
        assert!(f["properties"]["area_m2"].as_f64().unwrap() >= 5000.0);
    }
    std::fs::write(&cfg, "min_area = 5000.0\n").unwrap();
    let o = detect(
        &[
            "sample-tiles/manifest.json",
            "--config",
            cfg.to_str().unwrap(),
        ],
        &out,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("strict.toml"), "{}", text(&o));
}
