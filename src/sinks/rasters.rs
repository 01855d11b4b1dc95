//! The raster tap of `detect --emit-rasters DIR`: per tile, GeoTIFFs of land
//! cover, change magnitude, class, confidence, the change model's pixel
//! probability (on the flagged pixels), the any-change layer,
//! suppression reasons, zones and the indices of both dates. It observes the
//! pipeline and derives its whole-tile layers itself (the pipeline computes
//! the magnitude only inside the zone), so polygons never depend on it.

use crate::error::Result;
use crate::io::raster::write_geotiff;
use crate::kernels::changeprob::features;
use crate::kernels::indices::indices_with;
use crate::kernels::label::label;
use crate::kernels::morphology::{close, Shape};
use crate::pipeline::blocks::magnitude;
use crate::pipeline::rules::{sand_removal, seasonal};
use crate::pipeline::taps::{SceneLayers, Tap};
use ndarray::{Array2, Zip};
use std::path::PathBuf;

/// Writes the layers of every scene it observes into a folder.
pub struct RasterWriter {
    /// Output folder.
    pub dir: PathBuf,
    /// Also write the change model's per-pixel features
    /// (`{tile}_change_features.tif`, one float band per feature, named in
    /// the band descriptions): what `scripts/fit_change_model.py` reads.
    pub features: bool,
}

impl Tap for RasterWriter {
    fn wants_scene(&self) -> bool {
        true
    }
    fn scene(&mut self, s: &SceneLayers<'_>) -> Result<()> {
        let p = |name: &str| self.dir.join(format!("{}_{name}.tif", s.info.tile));
        let cfg = s.config;
        let (lc_b, lc_a) = (&s.cover.lc_before, &s.cover.lc_after);
        let mut m = magnitude(s.before, s.after, None, cfg);
        if cfg.method == crate::domain::config::Method::Rules {
            sand_removal(&mut m, s.cover, cfg);
        }
        let mag = Zip::from(&m.appeared)
            .and(&m.vanished)
            .map_collect(|&a, &b| a.max(b));
        write_geotiff(&p("landcover_before"), s.grid, &[lc_b.view()], None)?;
        write_geotiff(&p("landcover_after"), s.grid, &[lc_a.view()], None)?;
        write_geotiff(&p("change_magnitude"), s.grid, &[mag.view()], None)?;
        let class_raster = s.labels.mapv(|l| s.reported[l as usize].0);
        let conf_raster = s.labels.mapv(|l| s.reported[l as usize].1);
        write_geotiff(&p("change_class"), s.grid, &[class_raster.view()], None)?;
        write_geotiff(&p("confidence"), s.grid, &[conf_raster.view()], None)?;
        if let Some(prob) = s.probability {
            write_geotiff(&p("change_probability"), s.grid, &[prob.view()], None)?;
        }
        // Indices per date: NDVI, NDWI and, with SWIR, MNDWI, NDBI, BSI.
        for (name, bands) in [("indices_before", s.before), ("indices_after", s.after)] {
            let ix = indices_with(bands, true);
            let mut v = vec![ix.ndvi.view(), ix.ndwi.view()];
            v.extend(
                [&ix.mndwi, &ix.ndbi, &ix.bsi]
                    .into_iter()
                    .flatten()
                    .map(|a| a.view()),
            );
            write_geotiff(&p(name), s.grid, &v, None)?;
        }
        let any = any_change(s, &mag);
        write_geotiff(&p("any_change"), s.grid, &[any.mapv(u8::from).view()], None)?;
        write_geotiff(&p("suppressed"), s.grid, &[s.why], None)?;
        if self.features {
            let f = features(s.before, s.after, s.usable);
            let bands: Vec<_> = f.outer_iter().collect();
            write_geotiff(&p("change_features"), s.grid, &bands, None)?;
        }
        let zones_u8 = Zip::from(s.zone)
            .and(s.channel)
            .map_collect(|&z, &c| u8::from(z) + u8::from(c));
        write_geotiff(&p("zones"), s.grid, &[zones_u8.view()], None)
    }
}

/// Any change, over the whole tile: every usable pixel above the threshold
/// that is not a seasonal change (phenology, ploughing, turbidity), closed,
/// in patches of at least the mapping unit. It keeps what the rules chose
/// not to report for other reasons (water-level change, low confidence,
/// outside the zone).
fn any_change(s: &SceneLayers<'_>, mag: &Array2<f32>) -> Array2<bool> {
    let cfg = s.config;
    let (lc_b, lc_a, br) = (
        &s.cover.lc_before,
        &s.cover.lc_after,
        &s.cover.after.brightness,
    );
    let any = Zip::indexed(mag)
        .and(s.usable)
        .par_map_collect(|(r, c), &m, &u| {
            u && m > s.threshold && seasonal(lc_b[[r, c]], lc_a[[r, c]], br[[r, c]], cfg).is_none()
        });
    let closed = close(any.view(), Shape::Cross, cfg.close_iterations);
    let (alab, acomps) = label(closed.view());
    let big: Vec<bool> = std::iter::once(false)
        .chain(acomps.iter().map(|c| c.pixels >= cfg.min_pixels))
        .collect();
    Zip::from(&alab)
        .and(s.usable)
        .map_collect(|&l, &u| u && big[l as usize])
}
