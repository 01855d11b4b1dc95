//! Research mode on a scene in a geographic CRS (as OSCD ships): `detect
//! --scene` warps both dates to UTM, flags the new fill without river
//! segments, and `eval-change --reference` scores it against a reference
//! map on the original longitude/latitude grid.

mod util;
use ndarray::Array2;
use std::path::PathBuf;
use util::*;

const GRASS: [u16; 5] = [400, 800, 500, 3300, 2000];
const FILL: [u16; 5] = [2000, 2200, 2400, 2800, 3200];
const N: usize = 160;

fn inside(r: usize, c: usize) -> bool {
    (60..90).contains(&r) && (70..100).contains(&c)
}

/// A 160 × 160 grid with origin and pixel size `gt` in the CRS `epsg`.
fn grid(gt: [f64; 6], epsg: u32) -> riverwatch::Grid {
    riverwatch::Grid {
        width: N,
        height: N,
        gt,
        wkt: riverwatch::epsg_wkt(epsg).unwrap(),
    }
}

/// Writes the pair (before: grass; after: grass and fill, DN × `k`) into
/// `dir` and returns their paths.
fn pair(dir: &std::path::Path, g: &riverwatch::Grid, k: f32) -> (PathBuf, PathBuf) {
    let (b, a) = (dir.join("b_2025-06-12.tif"), dir.join("a_2026-06-17.tif"));
    write_scaled(&b, false, g, 1.0);
    write_scaled(&a, true, g, k);
    (b, a)
}

fn write_scaled(path: &std::path::Path, fill: bool, grid: &riverwatch::Grid, k: f32) {
    let bands: Vec<Array2<u16>> = (0..5)
        .map(|b| {
            Array2::from_shape_fn((N, N), |(r, c)| {
                let t = ((r * 7 + c * 13) % 11) as u16 * 5;
                let v = (if fill && inside(r, c) {
                    FILL[b]
                } else {
                    GRASS[b]
                }) + t;
                (v as f32 * k) as u16
            })
        })
        .collect();
    let views: Vec<_> = bands.iter().map(|a| a.view()).collect();
    riverwatch::write_geotiff(path, grid, &views, Some(0.0)).unwrap();
}

#[test]
fn geographic_scene_is_warped_detected_and_scored_against_a_reference() {
    let dir = tmp("scene-4326");
    // About 10 m × 10 m at 45.7° N.
    let grid = grid([126.5, 0.000128, 0.0, 45.7, 0.0, -0.00009], 4326);
    let (b, a) = pair(&dir, &grid, 1.0);
    let reference = Array2::from_shape_fn((N, N), |(r, c)| if inside(r, c) { 2u8 } else { 1 });
    let rpath = dir.join("reference.tif");
    riverwatch::write_geotiff(&rpath, &grid, &[reference.view()], None).unwrap();
    let out = dir.join("pred.geojson");
    let rasters = dir.join("r");
    let o = run(&[
        "detect",
        "--scene",
        "--before",
        b.to_str().unwrap(),
        "--after",
        a.to_str().unwrap(),
        "--before-date",
        "2025-06-12",
        "--after-date",
        "2026-06-17",
        "--tile",
        "t",
        "-o",
        out.to_str().unwrap(),
        "--emit-rasters",
        rasters.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("warped in memory to EPSG:32652"),
        "{}",
        text(&o)
    );
    let feats = json(&out)["features"].as_array().unwrap().clone();
    assert_eq!(feats.len(), 1, "{feats:?}");
    let area = feats[0]["properties"]["area_m2"].as_f64().unwrap();
    // 30 × 30 pixels of about 10 m: 90,000 m², give or take the warp.
    assert!((70_000.0..110_000.0).contains(&area), "{area}");
    assert!(feats[0]["properties"].get("chief_id").is_none());
    let pred = rasters.join("t_change_class.tif");
    let o = run(&[
        "eval-change",
        "--reference",
        rpath.to_str().unwrap(),
        "--pred",
        pred.to_str().unwrap(),
        "--codes",
        "unchanged=1,changed=2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r["scores"]["kappa"].as_f64().unwrap() > 0.8, "{r}");
    assert!(r["flagged_share"].as_f64().unwrap() < 0.06, "{r}");
    let o = run(&[
        "eval-change",
        "--reference",
        rpath.to_str().unwrap(),
        "--pred",
        pred.to_str().unwrap(),
        "--codes",
        "unchanged=7,changed=8",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("reference.tif"), "{}", text(&o));
}

#[test]
fn scene_mode_needs_no_rivers_but_normal_mode_does() {
    let o = run(&[
        "detect",
        "--before",
        "x_2025-06-12.tif",
        "--after",
        "y_2026-06-17.tif",
        "-o",
        "z.geojson",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--scene"), "{}", text(&o));
}

#[test]
fn a_date_with_the_wrong_scale_is_reported_as_untrusted() {
    let dir = tmp("scene-scale");
    let g = grid([500_000.0, 10.0, 0.0, 5_070_000.0, 0.0, -10.0], 32652);
    // As if the later date were stored with another scale: DN × 2.
    let (b, a) = pair(&dir, &g, 2.0);
    let out = dir.join("pred.geojson");
    let o = run(&[
        "detect",
        "--scene",
        "--before",
        b.to_str().unwrap(),
        "--after",
        a.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("UNTRUSTED radiometry"), "{}", text(&o));
}
