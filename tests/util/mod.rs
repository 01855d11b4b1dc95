//! Shared helpers for integration tests: run the built binary, read JSON,
//! validate against the schemas in `schemas/`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_riverwatch"))
}

pub fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .current_dir(root())
        .output()
        .expect("run riverwatch")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Validates `doc` against `schemas/<name>.schema.json`, panicking with every error.
pub fn check_schema(name: &str, doc: &serde_json::Value) {
    let schema = json(&root().join("schemas").join(format!("{name}.schema.json")));
    let v = jsonschema::validator_for(&schema).expect("schema compiles");
    let errs: Vec<String> = v
        .iter_errors(doc)
        .take(10)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errs.is_empty(), "{name}: {errs:#?}");
}

/// A fresh temporary folder under target/.
pub fn tmp(name: &str) -> PathBuf {
    let p = root()
        .join("target")
        .join("test-tmp")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("mkdir");
    p
}

/// Every file under `dir`, relative, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).expect("prefix").to_path_buf());
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

/// Waits until `dir/tiles` holds `n` tile records, the child exits, `stop`
/// says so, or a minute passes (then the caller kills the child).
pub fn wait_for_records(
    dir: &Path,
    n: usize,
    child: &mut std::process::Child,
    stop: impl Fn() -> bool,
) {
    let t0 = std::time::Instant::now();
    loop {
        let have = std::fs::read_dir(dir.join("tiles"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".record.json"))
                    .count()
            })
            .unwrap_or(0);
        if have >= n
            || stop()
            || t0.elapsed() > std::time::Duration::from_secs(60)
            || child.try_wait().unwrap().is_some()
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
