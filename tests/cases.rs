//! Cases across nights (`batch --cases`), `cases …` and `recheck`, on the
//! sample tiles' two nights (synth `--third-date`): ids that persist, a
//! store that survives kill -9, re-checks scored against the generator's
//! truth of which sites were really rectified.

mod util;
use geo::{Area, BooleanOps, MultiPolygon};
use riverwatch::{CaseStatus, CaseStore};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;
use util::*;

fn sample(f: &str) -> String {
    root().join("sample-tiles").join(f).display().to_string()
}

fn night(manifest: &str, out: &Path, db: &Path) -> std::process::Output {
    run(&[
        "batch",
        manifest,
        "-o",
        out.to_str().unwrap(),
        "--jobs",
        "2",
        "--no-progress",
        "--cases",
        db.to_str().unwrap(),
        "--case-prefix",
        "HLJ",
    ])
}

fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

fn polygons(path: &str) -> Vec<(MultiPolygon<f64>, serde_json::Value)> {
    let v = json(Path::new(path));
    v["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let g: geojson::Geometry = serde_json::from_value(f["geometry"].clone()).unwrap();
            let mp: MultiPolygon<f64> = match geo::Geometry::<f64>::try_from(g).unwrap() {
                geo::Geometry::Polygon(p) => MultiPolygon(vec![p]),
                geo::Geometry::MultiPolygon(m) => m,
                other => panic!("not polygonal: {other:?}"),
            };
            (mp, f["properties"].clone())
        })
        .collect()
}

fn iou(a: &MultiPolygon<f64>, b: &MultiPolygon<f64>) -> f64 {
    let i = a.intersection(b).unsigned_area();
    let u = a.unsigned_area() + b.unsigned_area() - i;
    if u > 0.0 {
        i / u
    } else {
        0.0
    }
}

/// Index and IoU of the best match of `g` among `cands` (IoU ≥ 0.3).
fn best<'a, T>(g: &MultiPolygon<f64>, cands: &'a [(MultiPolygon<f64>, T)]) -> Option<&'a T> {
    cands
        .iter()
        .map(|(c, t)| (iou(g, c), t))
        .filter(|(v, _)| *v >= 0.3)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, t)| t)
}

/// Night 1, a team reports every case but one rectified and marks one a
/// false alarm, night 2, re-check.
struct Loop {
    dir: PathBuf,
    db: PathBuf,
}

fn two_nights_and_recheck(name: &str) -> Loop {
    let dir = tmp(name);
    let db = dir.join("cases.db");
    ok(night(&sample("manifest.json"), &dir.join("n1"), &db));
    let ids: Vec<String> = {
        let o = run(&["cases", "--cases", db.to_str().unwrap(), "list", "--ids"]);
        String::from_utf8_lossy(&ok_out(o))
            .lines()
            .map(String::from)
            .collect()
    };
    assert!(ids.len() >= 20, "{ids:?}");
    let (fa, rest) = ids.split_last().unwrap();
    let mut args = vec!["cases", "--cases", db.to_str().unwrap(), "mark"];
    args.extend(rest.iter().map(String::as_str));
    args.extend([
        "--status",
        "reported_rectified",
        "--by",
        "道里区 team",
        "--date",
        "2026-07-01",
    ]);
    ok(run(&args));
    ok(run(&[
        "cases",
        "--cases",
        db.to_str().unwrap(),
        "mark",
        fa,
        "--status",
        "false_alarm",
        "--by",
        "松北区 team",
        "--note",
        "old boat yard",
        "--date",
        "2026-06-20",
    ]));
    ok(night(&sample("manifest-night2.json"), &dir.join("n2"), &db));
    ok(run(&[
        "recheck",
        &sample("manifest-night2.json"),
        "--cases",
        db.to_str().unwrap(),
        "-o",
        dir.join("recheck").to_str().unwrap(),
    ]));
    Loop { dir, db }
}

fn ok_out(o: std::process::Output) -> Vec<u8> {
    assert!(o.status.success(), "{}", text(&o));
    o.stdout
}

#[test]
fn persisting_sites_keep_their_case_id_across_nights() {
    let l = two_nights_and_recheck("cases-ids");
    let store = CaseStore::open_existing(&l.db).unwrap();
    let obs = store.observations(None).unwrap();
    let n1: Vec<(MultiPolygon<f64>, String)> = obs
        .iter()
        .filter(|o| o.date == "2026-06-17")
        .map(|o| (o.geometry.clone(), o.case_id.clone()))
        .collect();
    let n2: Vec<(MultiPolygon<f64>, String)> = obs
        .iter()
        .filter(|o| o.date == "2026-07-22")
        .map(|o| (o.geometry.clone(), o.case_id.clone()))
        .collect();
    // Every truth object that persists (fate "kept") and was found on both
    // nights must be one case.
    let (mut same, mut both) = (0, 0);
    for (g, p) in polygons(&sample("rectification.geojson")) {
        if p["fate"] != "kept" {
            continue;
        }
        if let (Some(a), Some(b)) = (best(&g, &n1), best(&g, &n2)) {
            both += 1;
            same += usize::from(a == b);
            assert_eq!(a, b, "a persisting site changed its case id");
        }
    }
    eprintln!("persisting sites found on both nights: {both}, same id: {same}");
    assert!(
        both >= 8,
        "only {both} persisting sites found on both nights"
    );
    // New sites of night 2 open new cases, numbered on.
    let n2_new = obs
        .iter()
        .filter(|o| o.date == "2026-07-22" && o.listing == riverwatch::Listing::New)
        .count();
    assert!(n2_new >= 5, "{n2_new} new cases on night 2");
    // The false alarm is recorded but not dispatched again.
    let fa = store.list(Some(CaseStatus::FalseAlarm)).unwrap();
    assert_eq!(fa.len(), 1);
    let fa_id = &fa[0].id;
    let seen_again = obs
        .iter()
        .any(|o| &o.case_id == fa_id && o.date == "2026-07-22");
    let dispatched = files(&l.dir.join("n2/dispatch"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "geojson"))
        .any(|p| {
            std::fs::read_to_string(l.dir.join("n2/dispatch").join(p))
                .unwrap()
                .contains(fa_id.as_str())
        });
    assert!(
        seen_again,
        "the false-alarm site should still be detected on night 2"
    );
    assert!(!dispatched, "a false alarm was dispatched again");
    // Packages list new cases first, then open ones with their age.
    let csvs: Vec<PathBuf> = files(&l.dir.join("n2/dispatch"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "csv") && !p.ends_with("supervision.csv"))
        .collect();
    assert!(!csvs.is_empty());
    for p in csvs {
        let t = std::fs::read_to_string(l.dir.join("n2/dispatch").join(&p)).unwrap();
        let rank = |line: &str| {
            if line.contains(",新发现 New,") {
                0
            } else if line.contains(",反弹 Reappeared,") {
                1
            } else {
                2
            }
        };
        let ranks: Vec<i32> = t.lines().skip(1).map(rank).collect();
        assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{p:?}: {t}");
        let header = t.lines().next().unwrap();
        assert!(header.starts_with("\u{feff}id,class,"), "{header}");
        assert!(
            header.ends_with(",after_date,case_id,case_status,listing,first_seen,age_days,overdue"),
            "{header}"
        );
    }
    let sup = std::fs::read_to_string(l.dir.join("n2/dispatch/supervision.csv")).unwrap();
    assert!(sup.contains("哈尔滨市,(all),"), "{sup}");
    // Night 2 is 35 days after night 1: cases still open from night 1 are
    // overdue (30 days).
    let s = json(&l.dir.join("n2/summary.json"));
    assert!(s["cases"]["continued"].as_u64().unwrap() >= 8, "{s:#}");
}

#[test]
fn recheck_tells_rectified_from_fake_rectification() {
    let l = two_nights_and_recheck("cases-recheck");
    let report = json(&l.dir.join("recheck/recheck.json"));
    let truth = polygons(&sample("rectification.geojson"));
    let store = CaseStore::open_existing(&l.db).unwrap();
    let (mut right, mut scored, mut unmatched) = (0, 0, 0);
    for site in report["sites"].as_array().unwrap() {
        let id = site["case_id"].as_str().unwrap();
        let case = store.get(id).unwrap();
        let Some(fate) = best(&case.geometry, &truth) else {
            unmatched += 1; // a false detection: nothing to restore
            continue;
        };
        let verdict = site["measure"]["verdict"].as_str().unwrap();
        if verdict == "inconclusive" {
            continue;
        }
        scored += 1;
        let want = if fate["fate"] == "rectified" {
            "verified"
        } else {
            "failed"
        };
        right += usize::from(verdict == want);
        // The verdict is in the store, with its evidence.
        let want_status = if verdict == "verified" {
            CaseStatus::Verified
        } else {
            CaseStatus::RectificationFailed
        };
        assert_eq!(case.status, want_status, "{id}");
        let ev = store.events(Some(id)).unwrap();
        let last = ev.last().unwrap();
        assert_eq!(last.by, "riverwatch recheck");
        assert!(last.evidence.as_deref().unwrap().contains("restored_share"));
    }
    let acc = right as f64 / scored.max(1) as f64;
    eprintln!(
        "re-check accuracy: {right}/{scored} = {acc:.3} ({unmatched} sites without a truth object)"
    );
    assert!(scored >= 15, "only {scored} re-checks scored");
    assert!(acc >= 0.85, "re-check accuracy {acc:.3}");
    // Chips: before, at detection, now, per case.
    let chips = files(&l.dir.join("recheck"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with("_detection.png"))
        .count();
    assert_eq!(chips, report["sites"].as_array().unwrap().len());
}

#[test]
fn export_opens_in_ogr_and_rerunning_a_night_changes_nothing() {
    let l = two_nights_and_recheck("cases-export");
    let exp = l.dir.join("export");
    let db = l.db.to_str().unwrap();
    ok(run(&[
        "cases",
        "--cases",
        db,
        "export",
        "-o",
        exp.to_str().unwrap(),
    ]));
    let o = std::process::Command::new("ogrinfo")
        .args(["-so", exp.join("cases.gpkg").to_str().unwrap()])
        .output()
        .expect("ogrinfo (gdal-bin) is installed by make test");
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for layer in [
        "cases (Multi Polygon)",
        "observations (Multi Polygon)",
        "events (None)",
    ] {
        assert!(t.contains(layer), "{t}");
    }
    let before = std::fs::read(exp.join("observations.csv")).unwrap();
    let events = std::fs::read(exp.join("events.csv")).unwrap();
    // The same night again: recognised, store unchanged.
    let t = ok(night(
        &sample("manifest-night2.json"),
        &l.dir.join("n2"),
        &l.db,
    ));
    assert!(t.contains("already in the case store"), "{t}");
    ok(run(&[
        "cases",
        "--cases",
        db,
        "export",
        "-o",
        exp.to_str().unwrap(),
        "--format",
        "csv",
    ]));
    assert!(before == std::fs::read(exp.join("observations.csv")).unwrap());
    assert!(events == std::fs::read(exp.join("events.csv")).unwrap());
    // show prints the history.
    let first = String::from_utf8(ok_out(run(&["cases", "--cases", db, "list", "--ids"]))).unwrap();
    let id = first.lines().next().unwrap();
    let t = ok(run(&["cases", "--cases", db, "show", id]));
    assert!(
        t.contains("history:") && t.contains("reported_rectified"),
        "{t}"
    );
}

/// Store content as its CSV export.
fn export_csv(db: &Path, out: &Path) -> Vec<Vec<u8>> {
    ok(run(&[
        "cases",
        "--cases",
        db.to_str().unwrap(),
        "export",
        "-o",
        out.to_str().unwrap(),
        "--format",
        "csv",
    ]));
    ["cases.csv", "observations.csv", "events.csv"]
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap())
        .collect()
}

#[test]
fn kill_9_during_a_night_then_rerun_gives_the_same_store() {
    let dir = tmp("cases-kill");
    let (db, n1, n2) = (dir.join("cases.db"), dir.join("n1"), dir.join("n2"));
    let clean = |_: ()| {
        for p in [&n1, &n2] {
            let _ = std::fs::remove_dir_all(p);
        }
        for f in ["cases.db", "cases.db-wal", "cases.db-shm"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
    };
    clean(());
    ok(night(&sample("manifest.json"), &n1, &db));
    let t0 = Instant::now();
    ok(night(&sample("manifest-night2.json"), &n2, &db));
    let wall = t0.elapsed();
    let reference = export_csv(&db, &dir.join("ref"));
    // Kill night 2 after 0, 2 and 4 tile records, and at 90 % of a clean
    // run's time (most likely in the merge, the store update or dispatch).
    for (k, wait) in [
        (0usize, None),
        (2, None),
        (4, None),
        (0, Some(wall.mul_f64(0.9))),
    ] {
        clean(());
        ok(night(&sample("manifest.json"), &n1, &db));
        let mut child = bin()
            .args([
                "batch",
                &sample("manifest-night2.json"),
                "-o",
                n2.to_str().unwrap(),
                "--jobs",
                "2",
                "--no-progress",
                "--cases",
                db.to_str().unwrap(),
            ])
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        let n = if wait.is_some() { usize::MAX } else { k };
        wait_for_records(&n2, n, &mut child, || {
            wait.is_some_and(|w| t0.elapsed() >= w)
        });
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let rerun = bin()
            .args([
                "batch",
                &sample("manifest-night2.json"),
                "-o",
                n2.to_str().unwrap(),
                "--jobs",
                "2",
                "--no-progress",
                "--resume",
                "--cases",
                db.to_str().unwrap(),
            ])
            .current_dir(root())
            .output()
            .unwrap();
        ok(rerun);
        assert!(
            export_csv(&db, &dir.join(format!("k{k}"))) == reference,
            "store differs after a kill at {k} records / {wait:?}"
        );
    }
}

#[test]
fn a_second_writer_gets_a_clear_locked_error() {
    let dir = tmp("cases-lock");
    let db = dir.join("cases.db");
    ok(night(&sample("manifest.json"), &dir.join("n1"), &db));
    let mut conn = rusqlite::Connection::open(&db).unwrap();
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    let o = run(&[
        "cases",
        "--cases",
        db.to_str().unwrap(),
        "mark",
        "HLJ-2026-000001",
        "--status",
        "reported_rectified",
        "--by",
        "team",
    ]);
    drop(tx);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("locked by another writer"),
        "{}",
        text(&o)
    );
}

#[test]
fn bad_case_input_is_refused_with_the_fix() {
    let dir = tmp("cases-bad");
    let db = dir.join("cases.db");
    let d = db.to_str().unwrap();
    // Not a store.
    std::fs::write(&db, "hello").unwrap();
    let o = night(&sample("manifest.json"), &dir.join("n1"), &db);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("not a riverwatch case store"),
        "{}",
        text(&o)
    );
    std::fs::remove_file(&db).unwrap();
    // A missing store for `cases`.
    let o = run(&["cases", "--cases", d, "list"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("created by `riverwatch batch"),
        "{}",
        text(&o)
    );
    ok(night(&sample("manifest.json"), &dir.join("n1"), &db));
    // A move outside the lifecycle names the allowed ones.
    let o = run(&[
        "cases",
        "--cases",
        d,
        "mark",
        "HLJ-2026-000001",
        "--status",
        "verified",
        "--by",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("reported_rectified, false_alarm"),
        "{}",
        text(&o)
    );
    // An unknown case, an unknown status, a different prefix.
    let o = run(&[
        "cases",
        "--cases",
        d,
        "mark",
        "HLJ-2026-999999",
        "--status",
        "false_alarm",
        "--by",
        "x",
    ]);
    assert!(
        text(&o).contains("no case \"HLJ-2026-999999\""),
        "{}",
        text(&o)
    );
    let o = run(&["cases", "--cases", d, "list", "--status", "done"]);
    assert!(text(&o).contains("unknown status \"done\""), "{}", text(&o));
    let o = run(&[
        "batch",
        &sample("manifest.json"),
        "-o",
        dir.join("n1b").to_str().unwrap(),
        "--cases",
        d,
        "--case-prefix",
        "ZJ",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("prefix \"HLJ\", not \"ZJ\""),
        "{}",
        text(&o)
    );
}
