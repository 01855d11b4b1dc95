//! The house in layers, checked: domain types and kernels never touch GDAL,
//! files or the io layer; only `src/io/` names GDAL.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Lines of code (comments dropped) that mention any of `needles`.
fn offending(dir: &str, needles: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    for f in rust_files(&src().join(dir)) {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if needles.iter().any(|n| code.contains(n)) {
                bad.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    bad
}

#[test]
fn kernels_and_domain_use_neither_gdal_nor_io_nor_files() {
    let needles = ["gdal", "crate::io", "std::fs", "File::"];
    let bad: Vec<String> = ["kernels", "domain"]
        .iter()
        .flat_map(|d| offending(d, &needles))
        .collect();
    assert!(bad.is_empty(), "layer violations:\n{}", bad.join("\n"));
}

#[test]
fn kernels_do_not_see_the_whole_config() {
    let bad = offending("kernels", &["Config"]);
    assert!(
        bad.is_empty(),
        "kernels take their own parameter structs:\n{}",
        bad.join("\n")
    );
}

#[test]
fn only_io_calls_gdal() {
    let mut bad = Vec::new();
    for f in rust_files(&src()) {
        if f.starts_with(src().join("io")) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("gdal::") || code.contains("use gdal") {
                bad.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "GDAL outside src/io:\n{}", bad.join("\n"));
}

/// The command's own files (main.rs, cli.rs, *_cmd.rs): the binary, not the
/// library. Only they may read the environment (a test hook of run-task).
fn is_binary_file(line: &str) -> bool {
    let path = line.split(':').next().unwrap_or("");
    let name = path.rsplit('/').next().unwrap_or("");
    name == "main.rs" || name == "cli.rs" || name.ends_with("_cmd.rs")
}

#[test]
fn the_library_reads_no_environment_variables() {
    let bad: Vec<String> = offending("", &["std::env::var", "env::var_os"])
        .into_iter()
        .filter(|l| !is_binary_file(l))
        .collect();
    assert!(bad.is_empty(), "side channels:\n{}", bad.join("\n"));
}
