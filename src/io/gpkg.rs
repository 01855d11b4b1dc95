//! GeoPackage output through GDAL/OGR: plain layers of typed columns, with
//! or without WGS84 geometry, written into a temporary file and renamed, so
//! a reader never sees half a package.

use crate::error::{Error, Result};
use gdal::spatial_ref::{AxisMappingStrategy, SpatialRef};
use gdal::vector::{Feature, LayerAccess, LayerOptions, OGRFieldType, OGRwkbGeometryType, ToGdal};
use gdal::DriverManager;
use geo::MultiPolygon;
use std::path::Path;

/// A column value.
#[derive(Debug, Clone)]
pub enum Val {
    /// Text (null when `None`).
    Str(Option<String>),
    /// Integer.
    Int(i64),
    /// Real.
    Real(f64),
    /// A date, YYYY-MM-DD (null when not a date).
    Date(String),
}

/// Column types.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Text.
    Str,
    /// 64-bit integer.
    Int,
    /// Double.
    Real,
    /// Date.
    Date,
}

/// One layer to write.
pub struct Table<'a> {
    /// Layer name.
    pub name: &'a str,
    /// Column names and types.
    pub fields: &'a [(&'a str, Kind)],
    /// Rows: geometry (WGS84), or `None` for a table without geometry;
    /// values in field order.
    pub rows: Vec<(Option<MultiPolygon<f64>>, Vec<Val>)>,
    /// Whether the layer has a (multi-polygon) geometry column.
    pub spatial: bool,
}

/// Writes `tables` as one GeoPackage at `path` (replacing it). `stamp`
/// (YYYY-MM-DD) is the time written into the package's metadata instead of
/// the clock, so the same content gives the same bytes.
///
/// # Errors
/// GDAL without the GPKG driver, an unwritable folder, a bad geometry.
pub fn write(path: &Path, tables: &[Table<'_>], stamp: &str) -> Result<()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let _ = gdal::config::set_config_option("OGR_CURRENT_DATE", &format!("{stamp}T00:00:00.000Z"));
    let r = write_unlocked(path, tables);
    let _ = gdal::config::clear_config_option("OGR_CURRENT_DATE");
    r
}

fn write_unlocked(path: &Path, tables: &[Table<'_>]) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp{}.gpkg",
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().to_string()),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let res = write_into(&tmp, tables);
    match res {
        Ok(()) => std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_into(tmp: &Path, tables: &[Table<'_>]) -> Result<()> {
    let err = |e: gdal::errors::GdalError| Error::gdal(tmp, e);
    let drv = DriverManager::get_driver_by_name("GPKG").map_err(err)?;
    let mut ds = drv.create_vector_only(tmp).map_err(err)?;
    let mut srs = SpatialRef::from_epsg(4326).map_err(err)?;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut tx = ds.start_transaction().map_err(err)?;
    for t in tables {
        let layer = tx
            .create_layer(LayerOptions {
                name: t.name,
                srs: t.spatial.then_some(&srs),
                ty: if t.spatial {
                    OGRwkbGeometryType::wkbMultiPolygon
                } else {
                    OGRwkbGeometryType::wkbNone
                },
                options: None,
            })
            .map_err(err)?;
        let defs: Vec<(&str, OGRFieldType::Type)> = t
            .fields
            .iter()
            .map(|(n, k)| {
                (
                    *n,
                    match k {
                        Kind::Str => OGRFieldType::OFTString,
                        Kind::Int => OGRFieldType::OFTInteger64,
                        Kind::Real => OGRFieldType::OFTReal,
                        Kind::Date => OGRFieldType::OFTDate,
                    },
                )
            })
            .collect();
        layer.create_defn_fields(&defs).map_err(err)?;
        for (geom, vals) in &t.rows {
            let mut f = Feature::new(layer.defn()).map_err(err)?;
            for (i, v) in vals.iter().enumerate() {
                match v {
                    Val::Str(Some(s)) => f.set_field_string(i, s).map_err(err)?,
                    Val::Str(None) => {}
                    Val::Int(n) => f.set_field_integer64(i, *n).map_err(err)?,
                    Val::Real(x) => f.set_field_double(i, *x).map_err(err)?,
                    Val::Date(d) => {
                        if let Ok(day) = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                            let t = day
                                .and_hms_opt(0, 0, 0)
                                .unwrap_or_default()
                                .and_utc()
                                .fixed_offset();
                            f.set_field_datetime(i, t).map_err(err)?;
                        }
                    }
                }
            }
            if let Some(g) = geom {
                f.set_geometry(g.to_gdal().map_err(err)?).map_err(err)?;
            }
            f.create(&layer).map_err(err)?;
        }
    }
    tx.commit().map_err(err)?;
    Ok(())
}
