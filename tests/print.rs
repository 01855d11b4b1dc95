//! The dispatch page prints on A4: headless Chromium (Debian's `chromium`,
//! installed by `make test`) prints a county's page to PDF, and every page
//! of the PDF is A4 (595 × 842 pt), with the content inside it.

mod util;
use util::*;

#[test]
fn dispatch_page_prints_on_a4_in_headless_chromium() {
    let chromium = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect(
            "headless Chromium is needed for this test: `make test` installs Debian's chromium",
        );
    let dir = tmp("print");
    let out = dir.join("out");
    let o = run(&[
        "batch",
        "sample-tiles/manifest.json",
        "-o",
        out.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let page = out.join("dispatch/哈尔滨市/道里区.html");
    let pdf = dir.join("page.pdf");
    let o = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(pdf.exists(), "no PDF: {}", text(&o));
    let bytes = std::fs::read(&pdf).unwrap();
    let t = String::from_utf8_lossy(&bytes);
    let boxes: Vec<&str> = t
        .match_indices("/MediaBox [")
        .map(|(i, _)| &t[i..i + 40])
        .collect();
    assert!(!boxes.is_empty(), "no pages in the PDF");
    for b in &boxes {
        let nums: Vec<f64> = b["/MediaBox [".len()..]
            .split(']')
            .next()
            .unwrap()
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        assert!(
            (nums[2] - 595.3).abs() < 2.0 && (nums[3] - 841.9).abs() < 2.0,
            "page is not A4: {b}"
        );
    }
    // The county has 10 polygons with four chips each: more than one page,
    // and no polygon split across pages makes a page count of at most one
    // page per polygon plus the overview.
    assert!(
        boxes.len() >= 2 && boxes.len() <= 12,
        "{} pages",
        boxes.len()
    );
}
