//! The reflectance sanity check (`riverwatch::kernels::radiometry`) on
//! real imagery: every OSCD development pair (real Sentinel-2) as read, and
//! the same data as it would look with the baseline-04.00 offset left
//! unapplied (+0.1) or applied to data without it (−0.1). The check must
//! pass the first and stop the other two.
//!
//! ```sh
//! cargo run --release --example radiometry_real [-- ../shared/data/oscd-dev]
//! ```

use riverwatch::kernels::radiometry::{pair_problem, problem, stats};
use riverwatch::{Config, DateImage, Sensor, Tile};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    riverwatch::quiet_gdal();
    let data = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "../shared/data/oscd-dev".into()),
    );
    let cfg = Config::default();
    // A manifest instead of the OSCD folder: scan its tiles.
    let (tiles, sensor): (Vec<Tile>, Sensor) =
        if data.extension().is_some_and(|e| e == "json") && !data.ends_with("cities.json") {
            let m = riverwatch::load_manifest(&data)?;
            (m.tiles.clone(), m.sensor.clone())
        } else {
            let cities: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(data.join("cities.json"))?)?;
            let mut v = Vec::new();
            for c in cities.as_array().ok_or("cities.json")? {
                let name = c["city"].as_str().ok_or("city")?;
                let d = data.join(name);
                let img = |f: &str| DateImage {
                    image: d.join(f),
                    date: "2020-01-01".into(),
                    ..Default::default()
                };
                v.push(Tile {
                    id: name.into(),
                    before: img("before.tif"),
                    after: img("after.tif"),
                });
            }
            (v, Sensor::preset("sentinel2-l1c").ok_or("preset")?)
        };
    let (mut pass, mut caught_plus, mut caught_minus, mut n) = (0, 0, 0, 0);
    let (mut pairs, mut pair_ok, mut pair_caught) = (0, 0, 0);
    println!(
        "{:<12} {:<6} {:>7} {:>7} {:>7} {:>6}  as read / +0.1 / −0.1",
        "city", "date", "p1 blue", "p1 NIR", "med NIR", "neg"
    );
    for tile in &tiles {
        let name = tile.id.as_str();
        let pair = riverwatch::read_pair(tile, &sensor, cfg.block_rows)?;
        let pb = pair_problem(
            &stats(pair.before.view(), pair.valid.view()),
            &stats(pair.after.view(), pair.valid.view()),
        );
        let shifted = pair_problem(
            &stats(pair.before.view(), pair.valid.view()),
            &stats(pair.after.mapv(|v| v + 0.1).view(), pair.valid.view()),
        );
        pairs += 1;
        pair_ok += usize::from(pb.is_none());
        pair_caught += usize::from(shifted.is_some());
        for (label, bands) in [("before", &pair.before), ("after", &pair.after)] {
            let s = stats(bands.view(), pair.valid.view());
            let plus = stats(bands.mapv(|v| v + 0.1).view(), pair.valid.view());
            let minus = stats(bands.mapv(|v| v - 0.1).view(), pair.valid.view());
            let verdict = |x: &Option<String>| if x.is_some() { "STOP" } else { "ok" };
            let level = sensor.product();
            let (a, b, m) = (
                problem(&s, level),
                problem(&plus, level),
                problem(&minus, level),
            );
            println!(
                "{name:<12} {label:<6} {:>7.3} {:>7.3} {:>7.3} {:>6.3}  {} / {} / {}",
                s.p1_blue,
                s.p1_nir,
                s.median_nir,
                s.negative_share,
                verdict(&a),
                verdict(&b),
                verdict(&m)
            );
            n += 1;
            pass += usize::from(a.is_none());
            caught_plus += usize::from(b.is_some());
            caught_minus += usize::from(m.is_some());
        }
    }
    println!("{n} dates: passed as read {pass}/{n}; +0.1 stopped {caught_plus}/{n}; −0.1 stopped {caught_minus}/{n}");
    println!("{pairs} pairs: passed as read {pair_ok}/{pairs}; later date +0.1 stopped by the pair rule {pair_caught}/{pairs}");
    Ok(())
}
