//! `plan`, `run-task` and `merge`: the batch as three steps any engine can
//! run. The same bytes as `batch`, tasks run twice at once, retries after a
//! lost attempt, and clear refusals of tasks and folders that do not fit.

mod util;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use util::*;

fn manifest() -> PathBuf {
    root().join("sample-tiles/manifest.json")
}

fn products(out: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<(PathBuf, Vec<u8>)> = files(out)
        .into_iter()
        .filter(|p| {
            p.starts_with("dispatch")
                || p == Path::new("flagged.geojson")
                || p == Path::new("flagged.gpkg")
        })
        .map(|p| {
            let b = std::fs::read(out.join(&p)).unwrap();
            (p, b)
        })
        .collect();
    v.sort();
    v
}

/// `riverwatch batch` on the sample tiles into `dir/batch`: its products.
fn batch_products(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let b = dir.join("batch");
    let m = manifest();
    let o = run(&[
        "batch",
        m.to_str().unwrap(),
        "-o",
        b.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    products(&b)
}

fn plan(dir: &Path) -> PathBuf {
    let tasks = dir.join("tasks.jsonl");
    let o = run(&[
        "plan",
        manifest().to_str().unwrap(),
        "-o",
        tasks.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    tasks
}

fn run_task(task: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut a = vec!["run-task", task, "-o", out.to_str().unwrap()];
    a.extend_from_slice(extra);
    run(&a)
}

#[test]
fn three_steps_give_the_bytes_of_batch() {
    let dir = tmp("steps-same");
    let want = batch_products(&dir);
    let b = dir.join("batch");
    let tasks = plan(&dir);
    let lines: Vec<String> = std::fs::read_to_string(&tasks)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 4);
    let t0: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(t0["plan"]["format"], "riverwatch-plan/1");
    assert_eq!(t0["pixels"], 384 * 384);
    let img = t0["tile"]["before"]["image"].as_str().unwrap();
    assert!(Path::new(img).is_absolute(), "{img}");

    let rec = dir.join("records");
    // Task 0 twice at once (speculative execution), then every task by
    // line, one of them as JSON text, one on standard input.
    let r = rec.to_str().unwrap().to_string();
    let t = tasks.to_str().unwrap().to_string();
    let twins: Vec<_> = (0..2)
        .map(|_| {
            let (r, t) = (r.clone(), t.clone());
            std::thread::spawn(move || run(&["run-task", &t, "--index", "0", "-o", &r]))
        })
        .collect();
    for h in twins {
        let o = h.join().unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = run_task(&lines[1], &rec, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let line: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(line["tile"], "songhua-0001");
    assert_eq!(line["status"], "ok");
    let mut child = bin()
        .args(["run-task", "-", "-o", rec.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(std::fs::read(&tasks).unwrap().as_slice())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let status: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["status"].to_string())
        .collect();
    // Tiles 0 and 1 were done: a retry takes them as they are.
    assert_eq!(status, ["\"resumed\"", "\"resumed\"", "\"ok\"", "\"ok\""]);

    let out = dir.join("merged");
    let o = run(&["merge", rec.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("32 polygon(s)"), "{}", text(&o));
    assert_eq!(want, products(&out));
    assert!(!want.is_empty());
    // The summary lists the same tiles, as processed.
    let (sa, sb) = (
        json(&b.join("summary.json")),
        json(&out.join("summary.json")),
    );
    assert_eq!(sa["failures"], sb["failures"]);
    assert_eq!(sb["tiles"]["processed"], 4);
    assert_eq!(sb["state"], "complete");
}

#[test]
fn a_lost_attempt_is_redone_and_missing_tiles_are_reported() {
    let dir = tmp("steps-lost");
    let tasks = plan(&dir);
    let rec = dir.join("records");
    let t = tasks.to_str().unwrap();
    let o = bin()
        .args(["run-task", t, "-o", rec.to_str().unwrap()])
        .env("RIVERWATCH_FAIL_ONCE", "songhua-0002")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(70), "{}", text(&o));
    // Tiles before the lost one are done; the lost one has no record.
    assert!(rec.join("tiles/songhua-0001.record.json").exists());
    assert!(!rec.join("tiles/songhua-0002.record.json").exists());
    // A merge now reports the two tiles that never finished, exit 1.
    let early = dir.join("early");
    let o = run(&[
        "merge",
        rec.to_str().unwrap(),
        "-o",
        early.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let s = json(&early.join("summary.json"));
    let failed: Vec<&str> = s["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["tile"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["songhua-0002", "songhua-0003"]);
    assert!(s["failures"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("not processed"));
    // The retry finishes; the output equals batch.
    let o = bin()
        .args(["run-task", t, "-o", rec.to_str().unwrap()])
        .env("RIVERWATCH_FAIL_ONCE", "songhua-0002")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = dir.join("out");
    let o = run(&["merge", rec.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(batch_products(&dir), products(&out));
}

#[test]
fn tasks_and_folders_that_do_not_fit_are_refused() {
    let dir = tmp("steps-bad");
    let tasks = plan(&dir);
    let line = std::fs::read_to_string(&tasks)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let rec = dir.join("records");

    // Broken JSON: exit 2, naming where it came from.
    let o = run_task("{\"plan\": ", &rec, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("<task argument> line 1"), "{}", text(&o));
    // A task whose settings were edited after planning.
    let edited = line.replace("\"min_pixels\":4", "\"min_pixels\":5");
    assert_ne!(edited, line);
    let o = run_task(&edited, &rec, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("the task was edited"), "{}", text(&o));
    // An unknown key.
    let extra = line.replacen("{\"plan\"", "{\"priority\":1,\"plan\"", 1);
    let o = run_task(&extra, &rec, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("priority"), "{}", text(&o));
    // --index past the end.
    let o = run_task(tasks.to_str().unwrap(), &rec, &["--index", "9"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("holds 4 task(s)"), "{}", text(&o));

    // A records folder of another plan (other settings).
    let o = run_task(&line, &rec, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let other = dir.join("other.jsonl");
    let o = run(&[
        "plan",
        manifest().to_str().unwrap(),
        "-o",
        other.to_str().unwrap(),
        "--min-pixels",
        "6",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run_task(other.to_str().unwrap(), &rec, &["--index", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("holds another plan"), "{}", text(&o));

    // merge of a folder that is not a records folder.
    let o = run(&[
        "merge",
        dir.to_str().unwrap(),
        "-o",
        dir.join("m").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("has no plan.json"), "{}", text(&o));
    // merge after the manifest changed.
    let copy = dir.join("sample");
    std::fs::create_dir_all(&copy).unwrap();
    let st = Command::new("cp")
        .args(["-r"])
        .arg(root().join("sample-tiles/."))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(st.success());
    let t2 = dir.join("t2.jsonl");
    let m2 = copy.join("manifest.json");
    let o = run(&["plan", m2.to_str().unwrap(), "-o", t2.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let rec2 = dir.join("records2");
    let o = run_task(t2.to_str().unwrap(), &rec2, &["--index", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut text_m = std::fs::read_to_string(&m2).unwrap();
    text_m.push('\n');
    std::fs::write(&m2, text_m).unwrap();
    let o = run(&[
        "merge",
        rec2.to_str().unwrap(),
        "-o",
        dir.join("m2").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("changed since the plan was made"),
        "{}",
        text(&o)
    );
}

/// Records on GDAL virtual storage: the inputs (manifest, rivers, chiefs,
/// images) and the records folder in `/vsimem/` (what `/vsis3/` or
/// `/vsihdfs/` are on a cluster, in one process), the products on local
/// disk: the same bytes as batch.
#[test]
fn inputs_and_records_on_gdal_virtual_storage() {
    let src = root().join("sample-tiles");
    for rel in files(&src) {
        let vsi = Path::new("/vsimem/steps-in").join(&rel);
        gdal::vsi::create_mem_file(&vsi, std::fs::read(src.join(&rel)).unwrap()).unwrap();
    }
    let m =
        riverwatch::load_manifest_absolute(Path::new("/vsimem/steps-in/manifest.json")).unwrap();
    assert!(m.tiles[0]
        .before
        .image
        .starts_with("/vsimem/steps-in/tiles"));
    let cfg = riverwatch::Config::default();
    let tasks = riverwatch::plan_tasks(&m, &cfg, riverwatch::StreamOptions::default()).unwrap();
    assert!(tasks.iter().all(|t| t.pixels == 384 * 384));
    let rec = Path::new("/vsimem/steps-records");
    tasks[0].plan.install(rec, false).unwrap();
    let (segs, reg) =
        riverwatch::load_rivers_and_chiefs(&tasks[0].plan.rivers, &tasks[0].plan.chiefs, &cfg)
            .unwrap();
    let ctx = riverwatch::Context {
        segments: &segs,
        registry: &reg,
        config: &cfg,
        stream: riverwatch::StreamOptions::default(),
        indexes: &riverwatch::Indexes::default(),
        change_model: None,
    };
    for t in &tasks {
        let o = riverwatch::run_task(t, &ctx, rec, true);
        assert!(matches!(
            o,
            riverwatch::TaskOutcome::Done { resumed: false, .. }
        ));
        // A retry finds the record on the virtual storage and keeps it.
        let o = riverwatch::run_task(t, &ctx, rec, true);
        assert!(matches!(
            o,
            riverwatch::TaskOutcome::Done { resumed: true, .. }
        ));
    }
    let dir = tmp("steps-vsi");
    let out = dir.join("out");
    let r = riverwatch::merge_records(rec, &out, None).unwrap();
    assert_eq!((r.ok, r.failures.len(), r.merged), (4, 0, 32));
    assert_eq!(batch_products(&dir), products(&out));
}
