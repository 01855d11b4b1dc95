//! Real products in: radiometry per date (the Sentinel-2 04.00 offset),
//! band-per-file layouts at mixed resolutions with an SCL mask, a later date
//! on another grid, `/vsizip/` paths, rivers in a GeoPackage in EPSG:3857.
//! Every input is made here from the sample tiles.

mod util;
use gdal::raster::Buffer;
use gdal::{Dataset, DriverManager};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use util::*;

fn sample() -> PathBuf {
    root().join("sample-tiles")
}

/// Writes `src` to `dst` as UInt16 with `f(band, dn)` applied to every
/// non-nodata DN; `bands` picks source bands (1-based); `scale` > 1 averages
/// `scale` × `scale` blocks (a coarser band, e.g. 20 m SWIR).
fn rewrite(src: &Path, dst: &Path, bands: &[usize], scale: usize, f: impl Fn(usize, f64) -> f64) {
    rewrite_as(src, dst, bands, scale, true, f);
}

/// As [`rewrite`]; with `nodata` false, 0 is a value like any other (masks).
fn rewrite_as(
    src: &Path,
    dst: &Path,
    bands: &[usize],
    scale: usize,
    nodata: bool,
    f: impl Fn(usize, f64) -> f64,
) {
    let ds = Dataset::open(src).unwrap();
    let (w, h) = ds.raster_size();
    let (ow, oh) = (w / scale, h / scale);
    let mut gt = ds.geo_transform().unwrap();
    gt[1] *= scale as f64;
    gt[5] *= scale as f64;
    let drv = DriverManager::get_driver_by_name("GTiff").unwrap();
    let mut out = drv
        .create_with_band_type::<u16, _>(dst, ow, oh, bands.len())
        .unwrap();
    out.set_geo_transform(&gt).unwrap();
    out.set_projection(&ds.projection()).unwrap();
    for (i, &b) in bands.iter().enumerate() {
        let buf = ds
            .rasterband(b)
            .unwrap()
            .read_as::<f64>((0, 0), (w, h), (w, h), None)
            .unwrap();
        let (_, v) = buf.into_shape_and_vec();
        let mut o = vec![0u16; ow * oh];
        for r in 0..oh {
            for c in 0..ow {
                let mut sum = 0.0;
                let mut zero = false;
                for dr in 0..scale {
                    for dc in 0..scale {
                        let x = v[(r * scale + dr) * w + c * scale + dc];
                        zero |= nodata && x == 0.0;
                        sum += x;
                    }
                }
                let dn = sum / (scale * scale) as f64;
                o[r * ow + c] = if zero {
                    0
                } else {
                    f(b, dn).round().clamp(0.0, 65535.0) as u16
                };
            }
        }
        let mut band = out.rasterband(i + 1).unwrap();
        if nodata {
            band.set_no_data_value(Some(0.0)).unwrap();
        }
        band.write((0, 0), (ow, oh), &mut Buffer::new((ow, oh), o))
            .unwrap();
    }
}

/// The sample manifest with every date passed through `date(tile, which, entry)`.
fn manifest_like(dir: &Path, name: &str, date: impl Fn(&str, &str, &Value) -> Value) -> PathBuf {
    let mut m = json(&sample().join("manifest.json"));
    m["rivers"] = json!(sample().join("rivers.geojson"));
    m["chiefs"] = json!(sample().join("chiefs.json"));
    for t in m["tiles"].as_array_mut().unwrap() {
        let id = t["id"].as_str().unwrap().to_string();
        for which in ["before", "after"] {
            let mut e = t[which].clone();
            for k in ["image", "mask"] {
                if let Some(p) = e[k].as_str() {
                    e[k] = json!(sample().join(p));
                }
            }
            t[which] = date(&id, which, &e);
        }
    }
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    p
}

fn batch(manifest: &Path, out: &Path) -> std::process::Output {
    run(&[
        "batch",
        manifest.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--jobs",
        "2",
        "--no-progress",
    ])
}

/// The polygons of a batch, without the fields that name input files.
fn polygons(out: &Path) -> Vec<u8> {
    std::fs::read(out.join("flagged.geojson")).unwrap()
}

fn reference(dir: &Path) -> Vec<u8> {
    let m = manifest_like(dir, "plain.json", |_, _, e| e.clone());
    let o = batch(&m, &dir.join("plain"));
    assert!(o.status.success(), "{}", text(&o));
    polygons(&dir.join("plain"))
}

#[test]
fn baseline_04_00_copies_give_the_same_polygons() {
    let dir = tmp("inputs-baseline");
    let want = reference(&dir);
    // Every image stored as Sentinel-2 L2A from baseline 04.00 stores it:
    // DN + 1000.
    let shifted = |id: &str, which: &str, e: &Value| {
        let src = PathBuf::from(e["image"].as_str().unwrap());
        let dst = dir.join(format!("{id}_{which}_n0400.tif"));
        if !dst.exists() {
            rewrite(&src, &dst, &[1, 2, 3, 4, 5], 1, |_, dn| dn + 1000.0);
        }
        let mut e = e.clone();
        e["image"] = json!(dst);
        e
    };
    // All dates with the new offset, declared.
    let m = manifest_like(&dir, "n0400.json", |id, w, e| {
        let mut e = shifted(id, w, e);
        e["baseline"] = json!("04.00");
        e
    });
    let o = batch(&m, &dir.join("n0400"));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        polygons(&dir.join("n0400")) == want,
        "04.00 copy differs from the original"
    );
    // A mixed pair: 2021-style before, 2023-style after, each declared.
    let m = manifest_like(&dir, "mixed.json", |id, w, e| {
        if w == "after" {
            let mut e = shifted(id, w, e);
            e["baseline"] = json!("04.00");
            e
        } else {
            let mut e = e.clone();
            e["baseline"] = json!("03.01");
            e
        }
    });
    let o = batch(&m, &dir.join("mixed"));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        polygons(&dir.join("mixed")) == want,
        "mixed pair differs from the original"
    );
    // Undeclared, the new offset is caught on every tile with what to set.
    let m = manifest_like(&dir, "undeclared.json", |id, w, e| {
        if w == "after" {
            shifted(id, w, e)
        } else {
            e.clone()
        }
    });
    let o = batch(&m, &dir.join("undeclared"));
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert_eq!(t.matches("  failed: songhua").count(), 4, "{t}");
    assert!(
        t.contains("implausible reflectance on the later date"),
        "{t}"
    );
    assert!(t.contains("\"baseline\": \"04.00\""), "{t}");
    // A per-date offset in the manifest says the same as the baseline.
    let m = manifest_like(&dir, "offset.json", |id, w, e| {
        let mut e = shifted(id, w, e);
        e["offset"] = json!(-0.1);
        e
    });
    let o = batch(&m, &dir.join("offset"));
    assert!(o.status.success(), "{}", text(&o));
    assert!(polygons(&dir.join("offset")) == want);
    // Both is ambiguous.
    let m = manifest_like(&dir, "both.json", |id, w, e| {
        let mut e = shifted(id, w, e);
        e["offset"] = json!(-0.1);
        e["baseline"] = json!("04.00");
        e
    });
    let o = run(&["validate", m.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("not both"), "{}", text(&o));
}

#[test]
fn band_per_file_with_20m_swir_and_an_scl_mask_runs() {
    let dir = tmp("inputs-bands");
    let want = reference(&dir);
    let m = manifest_like(&dir, "bands.json", |id, w, e| {
        let src = PathBuf::from(e["image"].as_str().unwrap());
        let name = |b: &str| dir.join(format!("{id}_{w}_{b}.tif"));
        for (i, b) in ["B02", "B03", "B04", "B08"].iter().enumerate() {
            rewrite(&src, &name(b), &[i + 1], 1, |_, dn| dn);
        }
        // SWIR at 20 m, as Sentinel-2 ships B11.
        rewrite(&src, &name("B11"), &[5], 2, |_, dn| dn);
        let mut e = json!({
            "date": e["date"],
            "bands": {"blue": name("B02"), "green": name("B03"), "red": name("B04"),
                      "nir": name("B08"), "swir1": name("B11")},
        });
        // The binary cloud mask as a 20 m SCL layer: 9 (cloud) where any
        // of the four 10 m pixels is cloud, else 4 (vegetation).
        let bin = src.with_file_name(format!(
            "{}_cloud.tif",
            src.file_stem().unwrap().to_string_lossy()
        ));
        if bin.exists() {
            let scl = dir.join(format!("{id}_{w}_SCL.tif"));
            rewrite_as(
                &bin,
                &scl,
                &[1],
                2,
                false,
                |_, v| if v > 0.0 { 9.0 } else { 4.0 },
            );
            e["mask"] = json!(scl);
            e["mask_kind"] = json!("scl");
        }
        e
    });
    let o = batch(&m, &dir.join("bands"));
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let s = json(&dir.join("bands/summary.json"));
    let notes = s["per_tile"].to_string();
    assert!(
        notes.contains("B11.tif: band resampled on the fly"),
        "{notes}"
    );
    assert!(
        notes.contains("SCL.tif: mask resampled on the fly"),
        "{notes}"
    );
    // Same scene, so close to the original result: the 20 m SWIR and the
    // coarser mask move a few edges, not the sites.
    let count = |b: &[u8]| String::from_utf8_lossy(b).matches("\"Feature\"").count() as i64;
    let (n, n0) = (count(&polygons(&dir.join("bands"))), count(&want));
    eprintln!("band files + 20 m SWIR + SCL: {n} polygons; stacked original: {n0}");
    assert!(
        (n - n0).abs() <= 3,
        "{n} polygons vs {n0} from the stacked files"
    );
}

#[test]
fn a_later_date_on_another_grid_is_aligned_and_said() {
    let dir = tmp("inputs-align");
    // The later date of tile 0 cut 4 columns narrower and shifted by one
    // pixel: another grid that overlaps.
    let src = sample().join("tiles/songhua-0000_2026-06-17.tif");
    let cut = dir.join("after-cut.tif");
    let o = std::process::Command::new("gdal_translate")
        .args(["-q", "-srcwin", "1", "0", "380", "384"])
        .arg(&src)
        .arg(&cut)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let m = manifest_like(&dir, "m.json", |id, w, e| {
        let mut e = e.clone();
        if id == "songhua-0000" && w == "after" {
            e["image"] = json!(cut);
        }
        e
    });
    let o = run(&[
        "detect",
        m.to_str().unwrap(),
        "--tile",
        "songhua-0000",
        "-o",
        dir.join("f.geojson").to_str().unwrap(),
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("later date resampled on the fly onto the reference grid"),
        "{t}"
    );
}

/// A ZIP archive of `files` stored without compression (what `/vsizip/`
/// reads), written here so the test needs no zip tool.
fn zip_stored(path: &Path, files: &[(&str, Vec<u8>)]) {
    fn crc32(d: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in d {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0xEDB8_8320
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in files {
        let (crc, n, off) = (crc32(data), data.len() as u32, out.len() as u32);
        let head = |sig: u32, central: bool| {
            let mut h = sig.to_le_bytes().to_vec();
            if central {
                h.extend(20u16.to_le_bytes());
            }
            for v in [20u16, 0, 0, 0, 0] {
                h.extend(v.to_le_bytes());
            }
            h.extend(crc.to_le_bytes());
            h.extend(n.to_le_bytes());
            h.extend(n.to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes());
            if central {
                for v in [0u16, 0, 0] {
                    h.extend(v.to_le_bytes());
                }
                h.extend(0u32.to_le_bytes());
                h.extend(off.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(head(0x0403_4b50, false));
        out.extend(data);
        central.extend(head(0x0201_4b50, true));
    }
    let (cd_off, cd_len) = (out.len() as u32, central.len() as u32);
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    for v in [0u16, 0, files.len() as u16, files.len() as u16] {
        out.extend(v.to_le_bytes());
    }
    out.extend(cd_len.to_le_bytes());
    out.extend(cd_off.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    std::fs::write(path, out).unwrap();
}

#[test]
fn vsizip_paths_and_a_geopackage_in_epsg_3857_for_rivers() {
    let dir = tmp("inputs-vsizip");
    let want = reference(&dir);
    let mut files = Vec::new();
    for e in std::fs::read_dir(sample().join("tiles")).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        files.push((n, std::fs::read(e.path()).unwrap()));
    }
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
    zip_stored(&dir.join("tiles.zip"), &refs);
    // Rivers as a GeoPackage in Web Mercator.
    let gpkg = dir.join("rivers.gpkg");
    let o = std::process::Command::new("ogr2ogr")
        .args(["-t_srs", "EPSG:3857", "-f", "GPKG"])
        .arg(&gpkg)
        .arg(sample().join("rivers.geojson"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let mut m = json(&sample().join("manifest.json"));
    m["rivers"] = json!(gpkg);
    m["chiefs"] = json!(sample().join("chiefs.json"));
    for t in m["tiles"].as_array_mut().unwrap() {
        for w in ["before", "after"] {
            for k in ["image", "mask"] {
                if let Some(p) = t[w][k].as_str() {
                    let name = Path::new(p)
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .to_string();
                    t[w][k] = json!(format!(
                        "/vsizip/{}/{name}",
                        dir.join("tiles.zip").display()
                    ));
                }
            }
        }
    }
    let mp = dir.join("m.json");
    std::fs::write(&mp, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let o = batch(&mp, &dir.join("zip"));
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("reprojected from EPSG:3857"), "{t}");
    // Same sites, same segments and chiefs (coordinates of the segments
    // went through Web Mercator and back).
    let ids = |b: &[u8]| {
        let v: Value = serde_json::from_slice(b).unwrap();
        let mut k: Vec<String> = v["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{} {} {}",
                    f["properties"]["id"],
                    f["properties"]["segment_id"],
                    f["properties"]["chief_id"]
                )
            })
            .collect();
        k.sort();
        k
    };
    assert_eq!(ids(&polygons(&dir.join("zip"))), ids(&want));
    // A GeoJSON that declares another CRS is explained and reprojected.
    let gj = dir.join("rivers-3857.geojson");
    let o = std::process::Command::new("ogr2ogr")
        .args(["-t_srs", "EPSG:3857", "-f", "GeoJSON", "-lco", "RFC7946=NO"])
        .arg(&gj)
        .arg(sample().join("rivers.geojson"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    m["rivers"] = json!(gj);
    std::fs::write(&mp, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let o = run(&["validate", mp.to_str().unwrap()]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
}

/// The README recipe for Landsat 8/9 Collection 2 Level 2: one file per
/// band (SR_B2 … SR_B6) and QA_PIXEL as the mask, made here from the sample
/// tiles' reflectance.
#[test]
fn recipe_landsat_c2_l2_with_qa_pixel() {
    let dir = tmp("inputs-landsat");
    let want = reference(&dir);
    let m = manifest_like(&dir, "landsat.json", |id, w, e| {
        let src = PathBuf::from(e["image"].as_str().unwrap());
        let name = |b: &str| dir.join(format!("{id}_{w}_{b}.TIF"));
        // Landsat C2 L2: reflectance = DN × 2.75e-5 − 0.2.
        for (i, b) in ["SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6"]
            .iter()
            .enumerate()
        {
            rewrite(&src, &name(b), &[i + 1], 1, |_, dn| {
                (dn * 1e-4 + 0.2) / 2.75e-5
            });
        }
        let mut e2 = json!({
            "date": e["date"],
            "bands": {"blue": name("SR_B2"), "green": name("SR_B3"), "red": name("SR_B4"),
                      "nir": name("SR_B5"), "swir1": name("SR_B6")},
        });
        if let Some(mask) = e["mask"].as_str() {
            // Cloud: bits 3 (cloud) and 1 (dilated); clear: bit 6 (21824).
            rewrite_as(
                Path::new(mask),
                &name("QA_PIXEL"),
                &[1],
                1,
                false,
                |_, v| if v > 0.0 { 22280.0 } else { 21824.0 },
            );
            e2["mask"] = json!(name("QA_PIXEL"));
            e2["mask_kind"] = json!("qa_pixel");
        }
        e2
    });
    let mut v = json(&m);
    v["sensor"] = json!("landsat-c2l2");
    std::fs::write(&m, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let o = batch(&m, &dir.join("landsat"));
    assert!(o.status.success(), "{}", text(&o));
    let count = |b: &[u8]| String::from_utf8_lossy(b).matches("\"Feature\"").count() as i64;
    let (n, n0) = (count(&polygons(&dir.join("landsat"))), count(&want));
    eprintln!("Landsat C2 L2 layout: {n} polygons; original: {n0}");
    assert!((n - n0).abs() <= 2, "{n} polygons vs {n0}");
}

/// The README recipe for GF-1/GF-2/GF-6: one 4-band stack (blue, green,
/// red, NIR), no SWIR.
#[test]
fn recipe_gf_four_bands() {
    let dir = tmp("inputs-gf");
    let m = manifest_like(&dir, "gf.json", |id, w, e| {
        let src = PathBuf::from(e["image"].as_str().unwrap());
        let dst = dir.join(format!("{id}_{w}_gf.tif"));
        rewrite(&src, &dst, &[1, 2, 3, 4], 1, |_, dn| dn);
        let mut e = e.clone();
        e["image"] = json!(dst);
        e
    });
    let mut v = json(&m);
    v["sensor"] = json!("gf-4band");
    std::fs::write(&m, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let o = batch(&m, &dir.join("gf"));
    assert!(o.status.success(), "{}", text(&o));
    let n = String::from_utf8_lossy(&polygons(&dir.join("gf")))
        .matches("\"Feature\"")
        .count();
    eprintln!("GF 4-band layout: {n} polygons");
    assert!(n >= 15, "{n} polygons from the 4-band layout");
}

/// The README recipe for a STAC Item: each date of tile 0 as an Item whose
/// assets are band files found by `eo:bands` common name, stored with the
/// 04.00 offset that the Item's `raster:bands` declares, and the date from
/// `properties.datetime`. Same polygons as the original tile.
#[test]
fn recipe_stac_items() {
    let dir = tmp("inputs-stac");
    let plain = manifest_like(&dir, "plain.json", |_, _, e| e.clone());
    let o = run(&[
        "detect",
        plain.to_str().unwrap(),
        "--tile",
        "songhua-0000",
        "-o",
        dir.join("plain.geojson").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let m = manifest_like(&dir, "stac.json", |id, w, e| {
        let src = PathBuf::from(e["image"].as_str().unwrap());
        let folder = dir.join(format!("{id}_{w}"));
        std::fs::create_dir_all(&folder).unwrap();
        let mut assets = serde_json::Map::new();
        for (i, (key, common)) in [
            ("B02", "blue"),
            ("B03", "green"),
            ("B04", "red"),
            ("B08", "nir"),
            ("B11", "swir16"),
        ]
        .into_iter()
        .enumerate()
        {
            rewrite(
                &src,
                &folder.join(format!("{key}.tif")),
                &[i + 1],
                1,
                |_, dn| dn + 1000.0,
            );
            assets.insert(
                key.into(),
                json!({"href": format!("./{key}.tif"), "type": "image/tiff; application=geotiff",
                       "eo:bands": [{"name": key, "common_name": common}],
                       "raster:bands": [{"scale": 0.0001, "offset": -0.1, "nodata": 0}]}),
            );
        }
        let item = json!({"type": "Feature", "stac_version": "1.0.0", "id": format!("{id}_{w}"),
            "properties": {"datetime": format!("{}T02:30:00Z", e["date"].as_str().unwrap())},
            "geometry": null, "links": [], "assets": assets});
        std::fs::write(folder.join("item.json"), item.to_string()).unwrap();
        json!({"stac": folder.join("item.json")})
    });
    let o = run(&[
        "detect",
        m.to_str().unwrap(),
        "--tile",
        "songhua-0000",
        "-o",
        dir.join("stac.geojson").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        std::fs::read(dir.join("stac.geojson")).unwrap()
            == std::fs::read(dir.join("plain.geojson")).unwrap(),
        "the STAC Items give other polygons than the stacked files"
    );
}

#[test]
fn flagged_gpkg_has_typed_fields_and_keeps_chinese() {
    let dir = tmp("inputs-gpkg");
    let _ = reference(&dir);
    let o = std::process::Command::new("ogrinfo")
        .args(["-al", "-so"])
        .arg(dir.join("plain/flagged.gpkg"))
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    for want in [
        "Layer name: flagged",
        "Geometry: Multi Polygon",
        "Feature Count: 32",
        "before_date: Date",
        "after_date: Date",
        "area_m2: Real",
        "confidence: Real",
        "obstructs_flood_channel: Integer64",
        "pixels: Integer64",
        "chief_title: String",
    ] {
        assert!(t.contains(want), "{want:?} not in:\n{t}");
    }
    let o = std::process::Command::new("ogrinfo")
        .args(["-al", "-q", "-where", "county = '道里区'"])
        .arg(dir.join("plain/flagged.gpkg"))
        .output()
        .unwrap();
    assert!(text(&o).contains("哈尔滨市"), "{}", text(&o));
}
