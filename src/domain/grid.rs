//! The raster grid every array of a tile lives on: size, affine
//! geotransform and CRS (as WKT text; only `io` interprets it).

use std::ops::Range;

/// A raster grid: size, affine geotransform and CRS.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// GDAL geotransform: x = gt0 + col·gt1 + row·gt2, y = gt3 + col·gt4 + row·gt5.
    pub gt: [f64; 6],
    /// CRS as WKT.
    pub wkt: String,
}

impl Grid {
    /// Map coordinates of a pixel-lattice point (col, row), corners at integers.
    #[inline]
    pub fn to_map(&self, col: f64, row: f64) -> (f64, f64) {
        let g = &self.gt;
        (
            g[0] + col * g[1] + row * g[2],
            g[3] + col * g[4] + row * g[5],
        )
    }
    /// Fractional (col, row) of a map coordinate (north-up grids).
    #[inline]
    pub fn to_pixel(&self, x: f64, y: f64) -> (f64, f64) {
        ((x - self.gt[0]) / self.gt[1], (y - self.gt[3]) / self.gt[5])
    }
    /// Area of one pixel in CRS units².
    pub fn pixel_area(&self) -> f64 {
        (self.gt[1] * self.gt[5] - self.gt[2] * self.gt[4]).abs()
    }
    /// Side of a (square) pixel in CRS units.
    pub fn pixel_size(&self) -> f64 {
        self.pixel_area().sqrt()
    }
    /// A sub-grid of rows `rows` (same columns).
    pub fn rows(&self, rows: Range<usize>) -> Grid {
        let (x, y) = self.to_map(0.0, rows.start as f64);
        Grid {
            width: self.width,
            height: rows.len(),
            gt: [x, self.gt[1], self.gt[2], y, self.gt[4], self.gt[5]],
            wkt: self.wkt.clone(),
        }
    }
    /// What differs from `other`, if anything (size, geotransform, CRS).
    /// `same_crs` decides whether two differently written WKTs are one CRS
    /// (the io layer passes GDAL's comparison).
    pub fn mismatch(&self, other: &Grid, same_crs: impl Fn(&str, &str) -> bool) -> Option<String> {
        if (self.width, self.height) != (other.width, other.height) {
            return Some(format!(
                "size {}×{} vs {}×{}",
                self.width, self.height, other.width, other.height
            ));
        }
        let tol = 1e-6 * self.gt[1].abs().max(1e-9);
        if self
            .gt
            .iter()
            .zip(&other.gt)
            .any(|(a, b)| (a - b).abs() > tol.max(1e-9 * a.abs()))
        {
            return Some(format!("geotransform {:?} vs {:?}", self.gt, other.gt));
        }
        if self.wkt != other.wkt && !same_crs(&self.wkt, &other.wkt) {
            return Some("CRS differs".into());
        }
        None
    }
    /// True for a north-up grid without rotation.
    pub fn is_north_up(&self) -> bool {
        self.gt[2] == 0.0 && self.gt[4] == 0.0 && self.gt[1] > 0.0 && self.gt[5] < 0.0
    }
}

/// Whether two bounding rectangles meet (touching counts); `None` (an empty
/// geometry) meets nothing.
pub fn rects_meet(a: Option<geo::Rect<f64>>, b: Option<geo::Rect<f64>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a.min().x <= b.max().x
                && b.min().x <= a.max().x
                && a.min().y <= b.max().y
                && b.min().y <= a.max().y
        }
        _ => false,
    }
}
