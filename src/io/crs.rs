//! Coordinate systems through GDAL/OSR (PROJ): transformations between a
//! tile's CRS and WGS84, UTM zones, and river segments projected into a
//! tile's CRS.

use crate::domain::rivers::{Projected, Segment};
use crate::error::{Error, Result};
use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};

/// True when two WKT strings describe the same CRS (GDAL's comparison).
pub fn same_crs(a: &str, b: &str) -> bool {
    match (SpatialRef::from_wkt(a), SpatialRef::from_wkt(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn srs(def: Srs<'_>) -> Result<SpatialRef> {
    let mut s = match def {
        Srs::Wkt(w) => SpatialRef::from_wkt(w),
        Srs::Epsg(e) => SpatialRef::from_epsg(e),
    }
    .map_err(|e| Error::gdal("CRS", e))?;
    s.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(s)
}

/// A CRS given as WKT or EPSG code.
#[derive(Debug, Clone, Copy)]
pub enum Srs<'a> {
    /// WKT text.
    Wkt(&'a str),
    /// EPSG code.
    Epsg(u32),
}

/// A coordinate transformation in traditional GIS order (x = longitude/easting).
pub struct Transformer {
    ct: CoordTransform,
}

impl Transformer {
    /// Builds a transformation between two CRSs.
    ///
    /// # Errors
    /// When GDAL cannot build it.
    pub fn new(from: Srs<'_>, to: Srs<'_>) -> Result<Transformer> {
        let ct = CoordTransform::new(&srs(from)?, &srs(to)?)
            .map_err(|e| Error::gdal("coordinate transformation", e))?;
        Ok(Transformer { ct })
    }
    /// From `wkt` to WGS84 longitude/latitude.
    ///
    /// # Errors
    /// When GDAL cannot build it.
    pub fn to_wgs84(wkt: &str) -> Result<Transformer> {
        Transformer::new(Srs::Wkt(wkt), Srs::Epsg(4326))
    }
    /// From WGS84 longitude/latitude to `wkt`.
    ///
    /// # Errors
    /// When GDAL cannot build it.
    pub fn from_wgs84(wkt: &str) -> Result<Transformer> {
        Transformer::new(Srs::Epsg(4326), Srs::Wkt(wkt))
    }
    /// Transforms coordinates in place.
    ///
    /// # Errors
    /// When a point cannot be transformed.
    pub fn apply(&self, xs: &mut [f64], ys: &mut [f64]) -> Result<()> {
        if xs.is_empty() {
            return Ok(());
        }
        self.ct
            .transform_coords(xs, ys, &mut [])
            .map_err(|e| Error::gdal("coordinate transformation", e))
    }
    /// Transforms every coordinate of a geometry in place.
    ///
    /// # Errors
    /// When a point cannot be transformed.
    pub fn apply_geom<G: geo::MapCoordsInPlace<f64> + geo::CoordsIter<Scalar = f64>>(
        &self,
        g: &mut G,
    ) -> Result<()> {
        let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = g.coords_iter().map(|c| (c.x, c.y)).unzip();
        self.apply(&mut xs, &mut ys)?;
        let i = std::cell::Cell::new(0usize);
        let (i, xs, ys) = (&i, &xs, &ys);
        g.map_coords_in_place(move |_| {
            let k = i.get();
            i.set(k + 1);
            geo::Coord { x: xs[k], y: ys[k] }
        });
        Ok(())
    }
}

/// WKT of the UTM zone (WGS84) containing a longitude/latitude.
///
/// # Errors
/// When GDAL has no definition for it.
pub fn utm_wkt(lon: f64, lat: f64) -> Result<String> {
    let zone = (((lon + 180.0) / 6.0).floor() as i64).clamp(0, 59) as u32 + 1;
    let code = if lat >= 0.0 {
        32600 + zone
    } else {
        32700 + zone
    };
    SpatialRef::from_epsg(code)
        .and_then(|s| s.to_wkt())
        .map_err(|e| Error::gdal(format!("EPSG:{code}"), e))
}

/// WKT of an EPSG code.
///
/// # Errors
/// When GDAL has no definition for it.
pub fn epsg_wkt(code: u32) -> Result<String> {
    SpatialRef::from_epsg(code)
        .and_then(|s| s.to_wkt())
        .map_err(|e| Error::gdal(format!("EPSG:{code}"), e))
}

/// Projects segments into the CRS given as WKT.
///
/// # Errors
/// When a coordinate cannot be transformed.
pub fn project(segments: &[Segment], wkt: &str) -> Result<Vec<Projected>> {
    let t = Transformer::from_wgs84(wkt)?;
    segments
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let mut lines = s.lines.clone();
            t.apply_geom(&mut lines)?;
            Ok(Projected {
                index,
                lines,
                corridor_m: s.corridor_m,
                channel_m: s.channel_m,
            })
        })
        .collect()
}

/// Transforms points from the CRS `wkt` to WGS84 longitude/latitude.
///
/// # Errors
/// When the CRS or a point cannot be transformed.
pub fn to_wgs84(wkt: &str, points: &[(f64, f64)]) -> Result<Vec<(f64, f64)>> {
    let t = Transformer::to_wgs84(wkt)?;
    let (mut xs, mut ys): (Vec<f64>, Vec<f64>) = points.iter().copied().unzip();
    t.apply(&mut xs, &mut ys)?;
    Ok(xs.into_iter().zip(ys).collect())
}

/// True when `wkt` is a geographic (longitude/latitude) CRS.
pub fn is_geographic(wkt: &str) -> bool {
    SpatialRef::from_wkt(wkt).is_ok_and(|s| s.is_geographic())
}

/// A north-up metric grid covering a geographic one: the UTM zone of its
/// centre, square pixels of the same ground size (rounded to the
/// centimetre), and the bounds of its edges transformed.
///
/// # Errors
/// When the CRS cannot be transformed.
pub fn utm_grid_for(g: &crate::domain::grid::Grid) -> Result<crate::domain::grid::Grid> {
    let (cx, cy) = g.to_map(g.width as f64 / 2.0, g.height as f64 / 2.0);
    let utm = utm_wkt(cx, cy)?;
    // Ground size of a pixel at the centre (WGS84 ellipsoid, local radii).
    let lat = cy.to_radians();
    let m_per_deg_lat = 111_132.954 - 559.822 * (2.0 * lat).cos();
    let m_per_deg_lon = 111_412.84 * lat.cos();
    let px = ((g.gt[1].abs() * m_per_deg_lon * g.gt[5].abs() * m_per_deg_lat).sqrt() * 100.0)
        .round()
        / 100.0;
    let t = Transformer::new(Srs::Wkt(&g.wkt), Srs::Wkt(&utm))?;
    let n = 20;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for i in 0..=n {
        let f = i as f64 / n as f64;
        for (c, r) in [(f, 0.0), (f, 1.0), (0.0, f), (1.0, f)] {
            let (x, y) = g.to_map(c * g.width as f64, r * g.height as f64);
            xs.push(x);
            ys.push(y);
        }
    }
    t.apply(&mut xs, &mut ys)?;
    let fold = |v: &[f64]| {
        v.iter()
            .fold((f64::MAX, f64::MIN), |a, &x| (a.0.min(x), a.1.max(x)))
    };
    let ((x0, x1), (y0, y1)) = (fold(&xs), fold(&ys));
    let (x0, y1) = ((x0 / px).floor() * px, (y1 / px).ceil() * px);
    Ok(crate::domain::grid::Grid {
        width: ((x1 - x0) / px).ceil() as usize,
        height: ((y1 - y0) / px).ceil() as usize,
        gt: [x0, px, 0.0, y1, 0.0, -px],
        wkt: utm,
    })
}
