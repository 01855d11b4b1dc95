//! Pixel-level change/no-change scores of the rasters `detect
//! --emit-rasters` writes, against truth polygons (pixel centres inside).

use super::{f1, ratio, EvalObject};
use crate::domain::grid::Grid;
use crate::error::Result;
use crate::io::crs::Transformer;
use crate::kernels::landcover;
use geo::BoundingRect;
use ndarray::Array2;
use serde::Serialize;

/// Pixel-level change/no-change scores of one binary layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PixelScores {
    /// Changed in both.
    pub tp: u64,
    /// Flagged, not changed in the truth.
    pub fp: u64,
    /// Changed in the truth, not flagged.
    pub r#fn: u64,
    /// Unchanged in both.
    pub tn: u64,
    /// tp / (tp + fp).
    pub precision: f64,
    /// tp / (tp + fn).
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// (tp + tn) / all.
    pub overall_accuracy: f64,
    /// Cohen's kappa: agreement beyond chance.
    pub kappa: f64,
}

impl PixelScores {
    pub(crate) fn finish(mut self) -> PixelScores {
        let (tp, fp, fn_, tn) = (
            self.tp as f64,
            self.fp as f64,
            self.r#fn as f64,
            self.tn as f64,
        );
        let n = tp + fp + fn_ + tn;
        self.precision = ratio(tp, tp + fp);
        self.recall = ratio(tp, tp + fn_);
        self.f1 = f1(self.precision, self.recall);
        self.overall_accuracy = ratio(tp + tn, n);
        let pe = if n > 0.0 {
            ((tp + fp) * (tp + fn_) + (fn_ + tn) * (fp + tn)) / (n * n)
        } else {
            0.0
        };
        self.kappa = if pe < 1.0 {
            (self.overall_accuracy - pe) / (1.0 - pe)
        } else {
            1.0
        };
        self
    }
}

/// Pixel-level report of the rasters `detect --emit-rasters` writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeReport {
    /// Tiles scored.
    pub tiles: usize,
    /// Pixels scored: inside the management zone, valid and free of cloud and
    /// shadow on both dates.
    pub pixels: u64,
    /// Truth pixels among them.
    pub truth_pixels: u64,
    /// The `any_change` layer (everything above the change threshold,
    /// including what the rules chose not to report).
    pub any_change: PixelScores,
    /// The reported changes (`change_class` > 0).
    pub reported: PixelScores,
}

/// Scores the `any_change` and `change_class` rasters in `dir` (written by
/// `detect --emit-rasters`) pixel by pixel against truth polygons, per tile
/// (`<tile>_any_change.tif` with the tile's truth features), over the pixels
/// of the management zone that are valid and cloud-free on both dates. A
/// truth pixel is one whose centre lies in a truth polygon.
///
/// # Errors
/// No `*_any_change.tif` in `dir`; unreadable rasters; rasters of a tile on
/// different grids; coordinate transformation failures.
pub fn evaluate_change(dir: &std::path::Path, truth: &[EvalObject]) -> Result<ChangeReport> {
    use crate::error::Error;
    use crate::io::raster::read_u8;
    use geo::Contains;
    if !dir.is_dir() {
        return Err(Error::invalid(dir, "folder does not exist"));
    }
    let mut tiles: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix("_any_change.tif"))
                .map(str::to_string)
        })
        .collect();
    tiles.sort();
    if tiles.is_empty() {
        return Err(Error::invalid(
            dir,
            "no <tile>_any_change.tif here; run detect with --emit-rasters DIR",
        ));
    }
    let (mut any, mut rep) = (PixelScores::default(), PixelScores::default());
    let (mut pixels, mut truth_pixels) = (0u64, 0u64);
    for t in &tiles {
        let layer = |name: &str| -> Result<(Grid, Array2<u8>)> {
            read_u8(&dir.join(format!("{t}_{name}.tif")))
        };
        let (grid, ac) = layer("any_change")?;
        let mut rest = Vec::new();
        for name in [
            "change_class",
            "zones",
            "landcover_before",
            "landcover_after",
        ] {
            let (g, a) = layer(name)?;
            if let Some(m) = grid.mismatch(&g, crate::io::crs::same_crs) {
                return Err(Error::invalid(
                    dir.join(format!("{t}_{name}.tif")),
                    format!("grid differs from {t}_any_change.tif: {m}"),
                ));
            }
            rest.push(a);
        }
        let [cls, zones, lcb, lca] =
            <[Array2<u8>; 4]>::try_from(rest).map_err(|_| Error::invalid(dir, "missing layers"))?;
        // Truth mask: pixel centres inside the tile's truth polygons.
        let mut tm = Array2::from_elem(ac.dim(), false);
        let tr = Transformer::from_wgs84(&grid.wkt)?;
        for f in truth.iter().filter(|f| &f.tile == t) {
            let mut g = f.geometry.clone();
            tr.apply_geom(&mut g)?;
            let Some(bb) = g.bounding_rect() else {
                continue;
            };
            let (c0, r0) = grid.to_pixel(bb.min().x, bb.max().y);
            let (c1, r1) = grid.to_pixel(bb.max().x, bb.min().y);
            let clampr = |v: f64| (v.max(0.0) as usize).min(grid.height);
            let clampc = |v: f64| (v.max(0.0) as usize).min(grid.width);
            for r in clampr(r0.min(r1).floor())..clampr(r0.max(r1).ceil() + 1.0) {
                for c in clampc(c0.min(c1).floor())..clampc(c0.max(c1).ceil() + 1.0) {
                    let (x, y) = grid.to_map(c as f64 + 0.5, r as f64 + 0.5);
                    if g.contains(&geo::Point::new(x, y)) {
                        tm[[r, c]] = true;
                    }
                }
            }
        }
        let usable =
            |v: u8| v != landcover::NODATA && v != landcover::CLOUD && v != landcover::SHADOW;
        for (idx, &z) in zones.indexed_iter() {
            if z == 0 || !usable(lcb[idx]) || !usable(lca[idx]) {
                continue;
            }
            pixels += 1;
            let truth = tm[idx];
            truth_pixels += u64::from(truth);
            for (s, flagged) in [(&mut any, ac[idx] != 0), (&mut rep, cls[idx] != 0)] {
                match (flagged, truth) {
                    (true, true) => s.tp += 1,
                    (true, false) => s.fp += 1,
                    (false, true) => s.r#fn += 1,
                    (false, false) => s.tn += 1,
                }
            }
        }
    }
    Ok(ChangeReport {
        tiles: tiles.len(),
        pixels,
        truth_pixels,
        any_change: any.finish(),
        reported: rep.finish(),
    })
}

impl ChangeReport {
    /// A plain-text table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "tiles {}  pixels scored {}  truth pixels {}\n\n",
            self.tiles, self.pixels, self.truth_pixels
        );
        s.push_str(&format!(
            "{:<14} {:>9} {:>9} {:>9} {:>11}  {:>9} {:>7} {:>6} {:>7} {:>6}\n",
            "layer", "TP", "FP", "FN", "TN", "precision", "recall", "F1", "OA", "kappa"
        ));
        for (name, p) in [
            ("any_change", &self.any_change),
            ("reported", &self.reported),
        ] {
            s.push_str(&format!(
                "{name:<14} {:>9} {:>9} {:>9} {:>11}  {:>9.3} {:>7.3} {:>6.3} {:>7.4} {:>6.3}\n",
                p.tp, p.fp, p.r#fn, p.tn, p.precision, p.recall, p.f1, p.overall_accuracy, p.kappa
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_scores_kappa_on_a_known_confusion_matrix() {
        let p = PixelScores {
            tp: 20,
            fp: 10,
            r#fn: 5,
            tn: 65,
            ..Default::default()
        }
        .finish();
        assert!((p.overall_accuracy - 0.85).abs() < 1e-12);
        // Chance agreement (30·25 + 70·75) / 100² = 0.6.
        assert!((p.kappa - 0.625).abs() < 1e-12, "{p:?}");
        assert!((p.precision - 20.0 / 30.0).abs() < 1e-12 && (p.recall - 0.8).abs() < 1e-12);
        let perfect = PixelScores {
            tp: 7,
            tn: 93,
            ..Default::default()
        }
        .finish();
        assert_eq!((perfect.f1, perfect.kappa), (1.0, 1.0));
    }
}
