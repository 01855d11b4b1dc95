//! `riverwatch batch`: failures, resume after kill -9, determinism across
//! `--jobs`, seams, dispatch packages.

mod util;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use util::*;

fn batch(manifest: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut a = vec![
        "batch",
        manifest.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--no-progress",
    ];
    a.extend_from_slice(extra);
    run(&a)
}

fn synth(dir: &Path, seed: u64, tiles: usize, size: usize) -> PathBuf {
    let o = run(&[
        "synth",
        "-o",
        dir.to_str().unwrap(),
        "--seed",
        &seed.to_string(),
        "--tiles",
        &tiles.to_string(),
        "--size",
        &size.to_string(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    dir.join("manifest.json")
}

/// Every output that must be byte-identical between runs.
fn outputs(out: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<(PathBuf, Vec<u8>)> = files(out)
        .into_iter()
        .filter(|p| {
            p.starts_with("dispatch")
                || p == Path::new("flagged.geojson")
                || p.extension().is_some_and(|e| e == "geojson")
        })
        .map(|p| {
            let b = std::fs::read(out.join(&p)).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    v
}

fn assert_same(a: &Path, b: &Path) {
    let (x, y) = (outputs(a), outputs(b));
    assert_eq!(
        x.iter().map(|p| &p.0).collect::<Vec<_>>(),
        y.iter().map(|p| &p.0).collect::<Vec<_>>(),
        "different files"
    );
    for ((p, u), (_, v)) in x.iter().zip(&y) {
        assert!(
            u == v,
            "{} differs between {} and {}",
            p.display(),
            a.display(),
            b.display()
        );
    }
}

#[test]
fn sixteen_tiles_two_broken_exit_1_and_the_rest_is_complete() {
    let dir = tmp("batch-broken");
    let m = synth(&dir.join("in"), 21, 16, 128);
    let man = json(&m);
    let tiles: Vec<String> = man["tiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    // Tile 3: truncated later image. Tile 9: a three-band later image.
    let t3 = dir
        .join("in")
        .join(man["tiles"][3]["after"]["image"].as_str().unwrap());
    let bytes = std::fs::read(&t3).unwrap();
    std::fs::write(&t3, &bytes[..bytes.len() / 3]).unwrap();
    let t9 = dir
        .join("in")
        .join(man["tiles"][9]["after"]["image"].as_str().unwrap());
    let (grid, _) = riverwatch::probe(&t9).unwrap();
    let plane = ndarray::Array2::<u16>::from_elem((grid.height, grid.width), 900);
    riverwatch::write_geotiff(
        &t9,
        &grid,
        &[plane.view(), plane.view(), plane.view()],
        Some(0.0),
    )
    .unwrap();

    let out = dir.join("out");
    let o = batch(&m, &out, &["--jobs", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let s = json(&out.join("summary.json"));
    let fails = s["failures"].as_array().unwrap();
    assert_eq!(fails.len(), 2, "{s:#}");
    assert!(fails.iter().any(|f| f["tile"] == tiles[3].as_str()));
    assert!(
        fails
            .iter()
            .any(|f| f["tile"] == tiles[9].as_str()
                && f["reason"].as_str().unwrap().contains("band")),
        "{fails:?}"
    );
    assert_eq!(s["tiles"]["processed"], 14);
    for (i, t) in tiles.iter().enumerate() {
        let gj = out.join("tiles").join(format!("{t}.geojson"));
        assert_eq!(gj.exists(), i != 3 && i != 9, "{}", gj.display());
        if gj.exists() {
            check_schema("flagged", &json(&gj));
        }
    }
    check_schema("flagged", &json(&out.join("flagged.geojson")));
    assert!(out.join("dispatch").is_dir());
}

#[test]
fn jobs_1_and_jobs_2_give_identical_outputs() {
    let dir = tmp("batch-jobs");
    let m = root().join("sample-tiles/manifest.json");
    let (a, b) = (dir.join("j1"), dir.join("j2"));
    assert!(batch(&m, &a, &["--jobs", "1"]).status.success());
    assert!(batch(&m, &b, &["--jobs", "2"]).status.success());
    assert_same(&a, &b);
}

#[test]
fn kill_9_then_resume_gives_the_uninterrupted_result() {
    let dir = tmp("batch-kill");
    let m = synth(&dir.join("in"), 5, 8, 320);
    let reference = dir.join("reference");
    assert!(batch(&m, &reference, &["--jobs", "2"]).status.success());
    // Kill at several moments: before any tile finished, after some, and
    // (most likely) during the final merge and dispatch.
    for (k, wait_records) in [0usize, 2, 5, 8].into_iter().enumerate() {
        let out = dir.join(format!("killed{k}"));
        let mut child = bin()
            .args([
                "batch",
                m.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--jobs",
                "2",
                "--no-progress",
            ])
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_records(&out, wait_records, &mut child, || false);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // What a run killed in the middle of writing leaves behind, whether
        // or not this kill happened to hit such a moment.
        std::fs::create_dir_all(out.join("tiles")).unwrap();
        std::fs::write(
            out.join("tiles/songhua-0001.geojson.tmp999999"),
            b"{\"type\":",
        )
        .unwrap();
        std::fs::create_dir_all(out.join(".dispatch.tmp999999/x")).unwrap();
        std::fs::write(out.join(".dispatch.tmp999999/x/y.geojson"), b"").unwrap();
        let o = batch(&m, &out, &["--jobs", "2", "--resume"]);
        assert!(o.status.success(), "{}", text(&o));
        assert_same(&reference, &out);
        let litter: Vec<_> = files(&out)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains(".tmp"))
            .collect();
        assert!(litter.is_empty(), "left behind: {litter:?}");
        if (2..8).contains(&wait_records) {
            let s = json(&out.join("summary.json"));
            assert!(
                s["tiles"]["resumed"].as_u64().unwrap() >= 1,
                "resume redid everything: {s:#}"
            );
        }
    }
}

#[test]
fn resume_redoes_a_tile_whose_input_changed() {
    let dir = tmp("batch-resume-change");
    let m = synth(&dir.join("in"), 8, 3, 128);
    let out = dir.join("out");
    assert!(batch(&m, &out, &[]).status.success());
    let man = json(&m);
    let img = dir
        .join("in")
        .join(man["tiles"][1]["before"]["image"].as_str().unwrap());
    let bytes = std::fs::read(&img).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&img, bytes).unwrap(); // same content, new mtime
    let o = batch(&m, &out, &["--resume"]);
    assert!(o.status.success(), "{}", text(&o));
    let s = json(&out.join("summary.json"));
    assert_eq!(s["tiles"]["resumed"], 2);
    assert_eq!(s["tiles"]["processed"], 1);
}

#[test]
fn seams_are_merged_and_dispatch_packages_are_complete() {
    let dir = tmp("batch-seams");
    let out = dir.join("out");
    let o = batch(
        &root().join("sample-tiles/manifest.json"),
        &out,
        &["--jobs", "2"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let flagged = json(&out.join("flagged.geojson"));
    check_schema("flagged", &flagged);
    let feats = flagged["features"].as_array().unwrap();
    let merged: Vec<_> = feats
        .iter()
        .filter(|f| f["properties"]["tiles"].as_array().unwrap().len() > 1)
        .collect();
    assert!(
        !merged.is_empty(),
        "the sample tiles have objects across seams"
    );
    let per_tile: usize = files(&out.join("tiles"))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "geojson"))
        .map(|p| {
            json(&out.join("tiles").join(p))["features"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert!(
        feats.len() < per_tile,
        "merging reduces the count ({} vs {per_tile})",
        feats.len()
    );
    for f in &merged {
        let p = &f["properties"];
        let tiles = p["tiles"].as_array().unwrap();
        assert_eq!(
            p["tile"], tiles[0],
            "a merged feature's tile is the lowest tile id"
        );
        assert!(p["id"].as_str().unwrap().contains("-m"));
    }
    // Dispatch: every feature in exactly one county package; CSV with BOM and
    // Chinese intact; HTML self-contained with chips.
    let mut n = 0;
    for p in files(&out.join("dispatch")) {
        let path = out.join("dispatch").join(&p);
        match p.extension().and_then(|e| e.to_str()) {
            Some("geojson") => {
                let d = json(&path);
                check_schema("flagged", &d);
                n += d["features"].as_array().unwrap().len();
            }
            Some("csv") => {
                let t = std::fs::read_to_string(&path).unwrap();
                assert!(t.starts_with('\u{feff}'), "BOM");
                assert!(t.contains("哈尔滨市"), "Chinese intact");
                assert_eq!(
                    t.lines().count() - 1,
                    json(&path.with_extension("geojson"))["features"]
                        .as_array()
                        .unwrap()
                        .len()
                );
            }
            Some("html") => {
                let t = std::fs::read_to_string(&path).unwrap();
                assert!(t.contains("data:image/png;base64,"), "chips embedded");
                assert!(t.contains("<svg"), "overview map");
                assert!(
                    !t.contains("http://")
                        || t.matches("http://").count()
                            == t.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
                    "no network"
                );
                assert!(["乱占", "乱采", "乱堆", "乱建"]
                    .iter()
                    .any(|w| t.contains(w)));
            }
            other => panic!("unexpected file {} ({other:?})", p.display()),
        }
    }
    assert_eq!(n, feats.len());
    let s = json(&out.join("summary.json"));
    assert_eq!(
        s["polygons"]["merged"].as_u64().unwrap() as usize,
        feats.len()
    );
    assert!(s["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["sha256"].as_str().unwrap().len() == 64));
}

#[test]
fn ogrinfo_opens_every_geojson() {
    let dir = tmp("batch-ogr");
    let out = dir.join("out");
    assert!(batch(&root().join("sample-tiles/manifest.json"), &out, &[])
        .status
        .success());
    if std::process::Command::new("ogrinfo")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("ogrinfo not installed (make test installs gdal-bin); skipped");
        return;
    }
    let mut paths = vec![out.join("flagged.geojson")];
    paths.extend(
        files(&out.join("dispatch"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "geojson"))
            .map(|p| out.join("dispatch").join(p)),
    );
    for p in paths {
        let o = std::process::Command::new("ogrinfo")
            .args(["-al", "-so"])
            .arg(&p)
            .output()
            .unwrap();
        let t = text(&o);
        assert!(
            o.status.success() && !t.contains("ERROR") && t.contains("Feature Count"),
            "{}: {t}",
            p.display()
        );
    }
}

#[test]
fn ctrl_c_stops_after_the_tiles_in_flight_and_says_so() {
    let dir = tmp("batch-sigint");
    let m = synth(&dir.join("in"), 9, 12, 320);
    let out = dir.join("out");
    // An earlier complete run's products must not survive a new run.
    assert!(batch(&m, &out, &["--jobs", "1"]).status.success());
    assert!(out.join("flagged.geojson").exists());
    let child = bin()
        .args([
            "batch",
            m.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--jobs",
            "1",
            "--no-progress",
        ])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The new run removes the old products first; wait for that, then for
    // a tile to finish, then Ctrl-C (`kill -INT`, as a terminal sends it).
    let t0 = Instant::now();
    while out.join("flagged.geojson").exists() && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let o = child.wait_with_output().unwrap();
    let t = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(130), "{t}");
    assert!(t.contains("interrupted"), "{t}");
    let s = json(&out.join("summary.json"));
    assert_eq!(s["state"], "interrupted", "{s}");
    assert!(s["tiles"]["processed"].as_u64().unwrap() < 12, "{s}");
    assert!(!out.join("flagged.geojson").exists());
    assert!(!out.join("dispatch").exists());
    // --resume finishes the run.
    let o = batch(&m, &out, &["--jobs", "2", "--resume"]);
    assert!(o.status.success(), "{}", text(&o));
    let s = json(&out.join("summary.json"));
    assert_eq!(s["state"], "complete");
    // Every synth chain has a city and a county chief.
    assert_eq!(s["counts"]["unassigned"], 0, "{s}");
    assert!(out.join("flagged.geojson").exists());
}
