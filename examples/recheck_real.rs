//! How far the re-check's pixel decision can be trusted on real imagery.
//!
//! `recheck` calls a site restored when the pixels that had changed no
//! longer differ from the reference date, where "differ" is
//! [`riverwatch::compare_dates`]: the detector's global pass and tolerant
//! change magnitude at its adaptive threshold. There is no public archive of
//! reported rectifications with verified outcomes, so this measures the part
//! that real data can test: that decision on the OSCD development set (real
//! Sentinel-2 pairs with reference maps of change), as pixel kappa and as
//! site verdicts — every reference change region of ≥ 10 pixels is a site
//! that was *not* restored (it should come out "failed"), and the same
//! shape moved onto unchanged ground is a site where nothing is left (it
//! should come out "verified").
//!
//! ```sh
//! cargo run --release --example recheck_real [-- ../shared/data/oscd-dev]
//! ```

use riverwatch::kernels::label::label;
use riverwatch::{compare_dates, measure_site, Config, DateImage, Sensor, Tile, Verdict};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    riverwatch::quiet_gdal();
    let data = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "../shared/data/oscd-dev".into()),
    );
    let cities: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("cities.json"))?)?;
    let cfg = Config::default();
    let sensor = Sensor::preset("sentinel2-l1c").ok_or("no preset")?;
    let work = PathBuf::from("target/recheck-real");
    std::fs::create_dir_all(&work)?;
    let codes = riverwatch::Codes::parse("unchanged=1,changed=2")?;
    println!(
        "{:<12} {:>6} {:>6}  {:>9} {:>9}",
        "city", "kappa", "sites", "failed ok", "verif. ok"
    );
    let (mut k_sum, mut n_city, mut f_ok, mut f_n, mut v_ok, mut v_n) = (0.0, 0, 0, 0, 0, 0);
    for c in cities.as_array().ok_or("cities.json: not a list")? {
        let name = c["city"].as_str().ok_or("city")?;
        let d = data.join(name);
        let date = |k: &str| c[k].as_str().unwrap_or("").to_string();
        let tile = Tile {
            id: name.into(),
            before: DateImage {
                image: d.join("before.tif"),
                date: date("before"),
                mask: None,
                ..Default::default()
            },
            after: DateImage {
                image: d.join("after.tif"),
                date: date("after"),
                mask: None,
                ..Default::default()
            },
        };
        let pair = riverwatch::read_pair(&tile, &sensor, cfg.block_rows)?;
        let grid = pair.grid.clone();
        let before = pair.before.clone();
        let cmp = compare_dates(before.view(), pair.after, pair.valid, &cfg);
        // The pixel decision against the reference, on the reference's grid.
        let pred = work.join(format!("{name}_changed.tif"));
        let layer = cmp.changed.mapv(u8::from);
        riverwatch::write_geotiff(&pred, &grid, &[layer.view()], None)?;
        let r = riverwatch::evaluate_reference(&pred, &d.join("reference.tif"), &codes)?;
        let reference = riverwatch::sample_reference(&grid, &d.join("reference.tif"), &codes)?;
        let changed_ref = reference.mapv(|v| v == Some(true));
        let (lab, comps) = label(changed_ref.view());
        let (h, w) = changed_ref.dim();
        let (mut fo, mut fn_, mut vo, mut vn) = (0, 0, 0, 0);
        for comp in comps.iter().filter(|k| k.pixels >= 10) {
            let (r0, r1, c0, c1) = (comp.r0, comp.r1, comp.c0, comp.c1);
            let shape = lab
                .slice(ndarray::s![r0..r1, c0..c1])
                .mapv(|l| l == comp.label);
            let m = measure_site(before.view(), &cmp, None, (r0, c0, shape.view()));
            if m.verdict != Verdict::Inconclusive {
                fn_ += 1;
                fo += usize::from(m.verdict == Verdict::Failed);
            }
            // The same shape on unchanged ground nearby: first offset (in
            // steps of the shape's size) where the reference is unchanged.
            let (sh, sw) = (r1 - r0, c1 - c0);
            let spot = (1..6)
                .flat_map(|k| {
                    [
                        (k as isize, 0isize),
                        (-(k as isize), 0),
                        (0, k as isize),
                        (0, -(k as isize)),
                    ]
                })
                .map(|(dr, dc)| {
                    (
                        r0 as isize + dr * (sh as isize + 5),
                        c0 as isize + dc * (sw as isize + 5),
                    )
                })
                .find(|&(r, c)| {
                    r >= 0
                        && c >= 0
                        && r as usize + sh <= h
                        && c as usize + sw <= w
                        && shape.indexed_iter().all(|((i, j), &v)| {
                            !v || reference[[r as usize + i, c as usize + j]] == Some(false)
                        })
                });
            if let Some((r, c)) = spot {
                let m = measure_site(
                    before.view(),
                    &cmp,
                    None,
                    (r as usize, c as usize, shape.view()),
                );
                if m.verdict != Verdict::Inconclusive {
                    vn += 1;
                    vo += usize::from(m.verdict == Verdict::Verified);
                }
            }
        }
        println!(
            "{name:<12} {:>6.3} {:>6}  {:>9} {:>9}",
            r.scores.kappa,
            fn_,
            format!("{fo}/{fn_}"),
            format!("{vo}/{vn}")
        );
        k_sum += r.scores.kappa;
        n_city += 1;
        (f_ok, f_n, v_ok, v_n) = (f_ok + fo, f_n + fn_, v_ok + vo, v_n + vn);
    }
    println!(
        "mean pixel kappa {:.3} over {n_city} cities; not-restored sites judged failed {f_ok}/{f_n} ({:.3}); clean sites judged verified {v_ok}/{v_n} ({:.3}); balanced accuracy {:.3}",
        k_sum / n_city.max(1) as f64,
        f_ok as f64 / f_n.max(1) as f64,
        v_ok as f64 / v_n.max(1) as f64,
        (f_ok as f64 / f_n.max(1) as f64 + v_ok as f64 / v_n.max(1) as f64) / 2.0
    );
    Ok(())
}
