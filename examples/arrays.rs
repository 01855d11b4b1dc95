//! Detection on arrays already in memory: no image files, no manifest.
//!
//! A researcher's own arrays go in as a [`ScenePair`] (reflectance stacks of
//! shape bands × rows × cols, bands blue, green, red, NIR and optionally
//! SWIR1) on a [`Grid`]; river segments and chiefs are built in code. The
//! scene here is a 200 × 200 pixel stretch of floodplain at 10 m in UTM zone
//! 52N with a river along the middle; on the later date a 20 × 15 pixel patch
//! of grass beside the river has become bright bare fill (dumping).
//!
//! ```sh
//! cargo run --release --example arrays
//! ```

use geo::{Coord, LineString, MultiLineString};
use ndarray::{Array2, Array3};
use riverwatch::{
    detect_scene, Chief, Config, Context, Grid, Level, NoTap, Registry, SceneInfo, ScenePair,
    Segment,
};
use std::path::Path;

/// Reflectance (blue, green, red, NIR, SWIR1) of the surfaces in the scene.
const WATER: [f32; 5] = [0.07, 0.095, 0.085, 0.04, 0.015];
const GRASS: [f32; 5] = [0.04, 0.08, 0.05, 0.33, 0.2];
const FILL: [f32; 5] = [0.2, 0.22, 0.24, 0.28, 0.32];

fn scene(size: usize, fill: bool) -> Array3<f32> {
    Array3::from_shape_fn((5, size, size), |(b, r, c)| {
        // A little texture so the scene is not perfectly flat.
        let t = ((r * 7 + c * 13) % 11) as f32 * 0.001;
        let s = if (90..110).contains(&r) {
            WATER
        } else if fill && (60..80).contains(&r) && (80..95).contains(&c) {
            FILL
        } else {
            GRASS
        };
        s[b] + t
    })
}

fn main() -> riverwatch::Result<()> {
    riverwatch::quiet_gdal();
    let size = 200;
    let (x0, y0) = (500_000.0, 5_070_000.0);
    let grid = Grid {
        width: size,
        height: size,
        gt: [x0, 10.0, 0.0, y0, 0.0, -10.0],
        wkt: riverwatch::epsg_wkt(32652)?,
    };
    // The river centreline in WGS84, from the grid's middle row.
    let mid = grid.to_map(0.0, 100.0).1;
    let line = riverwatch::to_wgs84(&grid.wkt, &[(x0, mid), (x0 + 2000.0, mid)])?;
    let segments = vec![Segment {
        id: "R-001".into(),
        river: "Example river".into(),
        chief_id: "v1".into(),
        corridor_m: 500.0,
        channel_m: 200.0,
        lines: MultiLineString(vec![LineString(
            line.into_iter().map(|(x, y)| Coord { x, y }).collect(),
        )]),
    }];
    let chief = |id: &str, level, parent: Option<&str>| Chief {
        id: id.into(),
        level,
        title: format!("{id} river chief"),
        region: id.to_uppercase(),
        parent: parent.map(Into::into),
    };
    let registry = Registry::from_chiefs(
        Path::new("(in memory)"),
        vec![
            chief("p", Level::Province, None),
            chief("c", Level::City, Some("p")),
            chief("k", Level::County, Some("c")),
            chief("t", Level::Township, Some("k")),
            chief("v1", Level::Village, Some("t")),
        ],
    )?;
    let config = Config::default();
    let ctx = Context {
        segments: &segments,
        registry: &registry,
        config: &config,
        stream: Default::default(),
        indexes: &Default::default(),
        change_model: None,
    };
    let pair = ScenePair {
        before: scene(size, false),
        after: scene(size, true),
        valid: Array2::from_elem((size, size), true),
        grid,
        notes: Vec::new(),
    };
    let info = SceneInfo {
        tile: "example".into(),
        before_date: "2025-06-12".into(),
        after_date: "2026-06-17".into(),
    };
    let result = detect_scene(pair, &info, &ctx, &mut NoTap)?;
    for d in &result.detections {
        let (Some(seg), Some(chief)) = (&d.segment, &d.chief) else {
            continue;
        };
        println!(
            "{} {} {:.0} m² confidence {:.2}, {} m from {} → {} (chain {})",
            d.id,
            d.class,
            d.area_m2,
            d.confidence,
            seg.distance_m,
            seg.segment_id,
            chief.chief_title,
            chief.chain.join(" > ")
        );
    }
    if result.detections.is_empty() {
        eprintln!("no detection: the example scene should have one");
        std::process::exit(1);
    }
    Ok(())
}
