//! A sensor change between the dates (the later image's blue and green
//! scaled by 0.45, red by 0.6, as gdal_translate -scale does): the 0.2.0
//! residual fit refuses blue and green and keeps them unnormalised, which
//! floods the result with false alarms; the default hands the fit to IR-MAD,
//! says so, and finds what the unchanged pair finds.

mod util;

use std::path::Path;
use std::process::Command;
use util::{json, run, text, tmp};

fn f1(pred: &Path, truth: &Path) -> (f64, f64) {
    let o = run(&[
        "eval",
        "--pred",
        pred.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    (
        v["objects"]["f1"].as_f64().unwrap(),
        v["objects"]["precision"].as_f64().unwrap(),
    )
}

fn detect(dir: &Path, selection: Option<&str>, out: &Path) -> String {
    let mut args = vec![
        "detect".to_string(),
        dir.join("manifest.json").to_string_lossy().into_owned(),
        "-o".into(),
        out.to_string_lossy().into_owned(),
    ];
    if let Some(s) = selection {
        let cfg = out.with_extension("toml");
        std::fs::write(&cfg, format!("normalize_selection = \"{s}\"\n")).unwrap();
        args.extend(["--config".into(), cfg.to_string_lossy().into_owned()]);
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&a);
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

#[test]
fn a_sensor_change_is_normalised_by_irmad_and_said() {
    let d = tmp("sensor-change");
    let (orig, changed) = (d.join("orig"), d.join("changed"));
    let o = run(&[
        "synth",
        "--seed",
        "131",
        "--tiles",
        "1",
        "--size",
        "768",
        "-o",
        orig.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // The same scene, the later image through a different sensor.
    let m = json(&orig.join("manifest.json"));
    let after = m["tiles"][0]["after"]["image"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::create_dir_all(changed.join("tiles")).unwrap();
    for f in std::fs::read_dir(orig.join("tiles")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, changed.join("tiles").join(f.file_name().unwrap())).unwrap();
    }
    for f in [
        "manifest.json",
        "chiefs.json",
        "rivers.geojson",
        "truth.geojson",
    ] {
        std::fs::copy(orig.join(f), changed.join(f)).unwrap();
    }
    let st = Command::new("gdal_translate")
        .args(["-q", "-ot", "UInt16"])
        .args(["-scale_1", "0", "10000", "0", "4500"])
        .args(["-scale_2", "0", "10000", "0", "4500"])
        .args(["-scale_3", "0", "10000", "0", "6000"])
        .args(["-scale_4", "0", "10000", "0", "10000"])
        .args(["-scale_5", "0", "10000", "0", "10000"])
        .arg(orig.join(&after))
        .arg(changed.join(&after))
        .status()
        .expect("gdal_translate (gdal-bin) runs");
    assert!(st.success());

    let truth = orig.join("truth.geojson");
    detect(&orig, None, &d.join("orig.geojson"));
    let (f1_orig, _) = f1(&d.join("orig.geojson"), &truth);
    let said = detect(&changed, None, &d.join("auto.geojson"));
    let (f1_auto, p_auto) = f1(&d.join("auto.geojson"), &truth);
    let refused = detect(&changed, Some("residual"), &d.join("residual.geojson"));
    let (f1_res, p_res) = f1(&d.join("residual.geojson"), &truth);

    eprintln!("F1 unchanged pair {f1_orig:.3}; changed: auto {f1_auto:.3} (P {p_auto:.3}), residual {f1_res:.3} (P {p_res:.3})");
    assert!(
        said.contains("IR-MAD chose the unchanged pixels instead"),
        "{said}"
    );
    assert!(refused.contains("band 1 left unnormalised"), "{refused}");
    // IR-MAD recovers nearly all of the unchanged pair's quality; the
    // residual fit alone does not.
    assert!(
        f1_auto > f1_orig - 0.06 && p_auto > 0.85,
        "auto F1 {f1_auto:.3} P {p_auto:.3}, unchanged pair F1 {f1_orig:.3}"
    );
    assert!(
        f1_res < f1_auto - 0.15 || p_res < p_auto - 0.15,
        "residual F1 {f1_res:.3} P {p_res:.3}, auto {f1_auto:.3} {p_auto:.3}"
    );
}
