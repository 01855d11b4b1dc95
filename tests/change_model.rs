//! The change model from the command line: `--change-model` loads a
//! refitted model (the built-in one, read from `models/`, gives the same
//! bytes as the default), broken or mismatched models stop with exit 2 and
//! the file's name, and `--emit-features` writes the features a refit reads.

mod util;
use util::*;

fn detect(extra: &[&str], out: &std::path::Path) -> std::process::Output {
    let mut a = vec![
        "detect",
        "sample-tiles/manifest.json",
        "--tile",
        "songhua-0001",
        "-o",
    ];
    a.push(out.to_str().unwrap());
    a.extend(extra);
    run(&a)
}

#[test]
fn the_shipped_model_file_gives_the_default_output() {
    let dir = tmp("cm-same");
    let (d, f) = (dir.join("default.geojson"), dir.join("file.geojson"));
    let o = detect(&[], &d);
    assert!(o.status.success(), "{}", text(&o));
    let o = detect(&["--change-model", "models/change-swir.json"], &f);
    assert!(o.status.success(), "{}", text(&o));
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    assert_eq!(read(&d), read(&f));
    let n = serde_json::from_slice::<serde_json::Value>(&read(&d)).unwrap()["features"]
        .as_array()
        .unwrap()
        .len();
    assert!(n > 0, "the sample tile has encroachments");
}

#[test]
fn a_broken_or_mismatched_model_exits_2_naming_the_file() {
    let dir = tmp("cm-bad");
    let broken = dir.join("broken.json");
    std::fs::write(&broken, "{\"format\": ").unwrap();
    let text_model = std::fs::read_to_string(root().join("models/change-swir.json")).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text_model).unwrap();
    m["features"][0] = "lr9".into();
    let renamed = dir.join("renamed.json");
    std::fs::write(&renamed, m.to_string()).unwrap();
    let vnir = root().join("models/change-vnir.json");
    for (model, want) in [
        (broken.as_path(), "not valid JSON"),
        (renamed.as_path(), "not a usable change model"),
        // A VNIR model on a pair with SWIR: loads, then the tile says why.
        (vnir.as_path(), "does not fit this 5-band pair"),
    ] {
        let o = detect(
            &["--change-model", model.to_str().unwrap()],
            &dir.join("out.geojson"),
        );
        let t = text(&o);
        assert_eq!(o.status.code(), Some(2), "{t}");
        assert!(!t.contains("panicked"), "{t}");
        assert!(t.contains(want), "expected {want:?} in {t}");
        if want != "does not fit this 5-band pair" {
            assert!(
                t.contains(model.file_name().unwrap().to_str().unwrap()),
                "{t}"
            );
        }
    }
}

#[test]
fn emitted_features_have_one_band_per_model_input() {
    let dir = tmp("cm-features");
    let o = detect(
        &["--emit-rasters", dir.to_str().unwrap(), "--emit-features"],
        &dir.join("out.geojson"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let p = dir.join("songhua-0001_change_features.tif");
    let (_, bands) = riverwatch::probe(&p).unwrap();
    let want = riverwatch::kernels::changeprob::feature_names(5).len();
    assert_eq!(bands, want, "{}", p.display());
}
