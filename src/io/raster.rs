//! The only module that calls GDAL for rasters and coordinate systems.
//!
//! Orientation: GDAL buffers are addressed (cols, rows) — x first — while
//! riverwatch's ndarray arrays are (rows, cols). A GDAL window read of
//! `w × h` pixels comes back row-major, so it is reshaped directly to
//! `(h, w)`; that conversion happens here and nowhere else.

use super::crs::same_crs;
use crate::domain::grid::Grid;
use crate::domain::manifest::{DateImage, Sensor, Tile};
use crate::error::{Error, Result};
use gdal::raster::{GdalType, RasterCreationOptions};
use gdal::{Dataset, DriverManager};
use ndarray::{Array2, Array3, ArrayView2};
use std::ops::Range;
use std::path::{Path, PathBuf};

fn open(path: &Path) -> Result<Dataset> {
    if !path.exists() {
        return Err(Error::invalid(path, "file does not exist"));
    }
    Dataset::open(path).map_err(|e| Error::gdal(path, e))
}

/// Opens a raster in a metric CRS: one in a geographic CRS (longitude and
/// latitude, as OSCD and many products ship) is warped in memory onto the
/// UTM zone of its centre, bilinearly, so areas, corridors and the mapping
/// unit are in metres. Returns what was done, for the log.
fn open_metric(path: &Path) -> Result<(Dataset, Option<String>)> {
    let ds = open(path)?;
    let g = grid_of(&ds, path)?;
    if !super::crs::is_geographic(&g.wkt) {
        return Ok((ds, None));
    }
    let u = super::crs::utm_grid_for(&g)?;
    let n = ds.raster_count();
    let drv = DriverManager::get_driver_by_name("MEM").map_err(|e| Error::gdal(path, e))?;
    let mut dst = drv
        .create_with_band_type::<f32, _>("", u.width, u.height, n)
        .map_err(|e| Error::gdal(path, e))?;
    dst.set_geo_transform(&u.gt)
        .map_err(|e| Error::gdal(path, e))?;
    dst.set_projection(&u.wkt)
        .map_err(|e| Error::gdal(path, e))?;
    for b in 1..=n {
        let nd = ds.rasterband(b).ok().and_then(|x| x.no_data_value());
        if let Some(nd) = nd {
            let mut band = dst.rasterband(b).map_err(|e| Error::gdal(path, e))?;
            band.set_no_data_value(Some(nd))
                .map_err(|e| Error::gdal(path, e))?;
            band.fill(nd, None).map_err(|e| Error::gdal(path, e))?;
        }
    }
    gdal::raster::reproject(&ds, &dst).map_err(|e| Error::gdal(path, e))?;
    let epsg = gdal::spatial_ref::SpatialRef::from_wkt(&u.wkt)
        .ok()
        .and_then(|s| s.auth_code().ok())
        .map_or_else(|| "UTM".to_string(), |c| format!("EPSG:{c}"));
    let note = format!(
        "{}: geographic CRS; warped in memory to {epsg} at {} m ({} x {} px, bilinear)",
        path.display(),
        u.gt[1],
        u.width,
        u.height
    );
    Ok((dst, Some(note)))
}

fn grid_of(ds: &Dataset, path: &Path) -> Result<Grid> {
    let (w, h) = ds.raster_size();
    if w == 0 || h == 0 {
        return Err(Error::invalid(path, "raster is empty (0 pixels)"));
    }
    let gt = ds
        .geo_transform()
        .map_err(|_| Error::invalid(path, "raster has no geotransform"))?;
    let wkt = ds.projection();
    if wkt.is_empty() {
        return Err(Error::invalid(path, "raster has no CRS"));
    }
    let g = Grid {
        width: w,
        height: h,
        gt,
        wkt,
    };
    if !g.is_north_up() {
        return Err(Error::invalid(
            path,
            "raster is rotated or not north-up; warp it first",
        ));
    }
    Ok(g)
}

/// Opens a raster and returns its grid and band count.
///
/// # Errors
/// Missing or unreadable file, empty raster, no georeferencing.
pub fn probe(path: &Path) -> Result<(Grid, usize)> {
    let ds = open(path)?;
    let g = grid_of(&ds, path)?;
    Ok((g, ds.raster_count()))
}

/// Reads band 1 of a single-band byte raster (the class layers detect
/// writes) with its grid.
///
/// # Errors
/// Missing or unreadable file, empty raster, no georeferencing.
pub fn read_u8(path: &Path) -> Result<(Grid, Array2<u8>)> {
    let ds = open(path)?;
    let g = grid_of(&ds, path)?;
    let band = ds.rasterband(1).map_err(|e| Error::gdal(path, e))?;
    let buf = band
        .read_as::<u8>((0, 0), (g.width, g.height), (g.width, g.height), None)
        .map_err(|e| Error::gdal(path, e))?;
    let (_, data) = buf.into_shape_and_vec();
    let a = Array2::from_shape_vec((g.height, g.width), data).map_err(|e| Error::gdal(path, e))?;
    Ok((g, a))
}

/// A block of rows of one date: reflectance per band and a validity mask.
#[derive(Debug, Clone)]
pub struct Block {
    /// Reflectance, shape (bands, rows, cols), bands in order blue, green, red, nir and (optionally) swir1.
    pub bands: Array3<f32>,
    /// True where every band holds data and the mask (if any) says usable.
    pub valid: Array2<bool>,
}

/// Reader of one date's bands and mask.
pub struct DateReader {
    path: PathBuf,
    ds: Dataset,
    bands: Vec<usize>,
    nodata: Vec<Option<f64>>,
    scale: f32,
    offset: f32,
    mask: Option<(PathBuf, Dataset)>,
    /// What was done to make the raster usable (a warp), for the log.
    note: Option<String>,
}

impl DateReader {
    fn open(
        img: &DateImage,
        sensor: &Sensor,
        tile: &str,
        grid: Option<&Grid>,
    ) -> Result<(DateReader, Grid)> {
        let (ds, note) = open_metric(&img.image)?;
        let g = grid_of(&ds, &img.image)?;
        let bands = sensor.bands.order();
        let need = bands.iter().copied().max().unwrap_or(1);
        if ds.raster_count() < need {
            return Err(Error::BandCount {
                path: img.image.clone(),
                need,
                have: ds.raster_count(),
            });
        }
        if let Some(ref_grid) = grid {
            if let Some(what) = ref_grid.mismatch(&g, same_crs) {
                return Err(Error::GridMismatch {
                    tile: tile.into(),
                    a: PathBuf::from("before image"),
                    b: img.image.clone(),
                    what,
                });
            }
        }
        let mut nodata = Vec::new();
        for &b in &bands {
            let band = ds.rasterband(b).map_err(|e| Error::gdal(&img.image, e))?;
            nodata.push(sensor.nodata.or(band.no_data_value()));
        }
        let mask = match &img.mask {
            None => None,
            Some(m) => {
                let (mds, _) = open_metric(m)?;
                let mg = grid_of(&mds, m)?;
                if let Some(what) = g.mismatch(&mg, same_crs) {
                    return Err(Error::GridMismatch {
                        tile: tile.into(),
                        a: img.image.clone(),
                        b: m.clone(),
                        what,
                    });
                }
                if mds.raster_count() != 1 {
                    return Err(Error::invalid(
                        m,
                        format!(
                            "a mask must have 1 band, this one has {}",
                            mds.raster_count()
                        ),
                    ));
                }
                Some((m.clone(), mds))
            }
        };
        Ok((
            DateReader {
                path: img.image.clone(),
                ds,
                bands,
                nodata,
                scale: sensor.scale as f32,
                offset: sensor.offset as f32,
                mask,
                note,
            },
            g,
        ))
    }

    /// Reads rows `rows` of every band as reflectance with the validity mask.
    ///
    /// # Errors
    /// GDAL read failures (for example a truncated file), naming the file.
    pub fn read_rows(&self, rows: Range<usize>, width: usize) -> Result<Block> {
        self.read_window(rows, 0..width)
    }

    /// Reads a window (rows × cols) of every band as reflectance with the
    /// validity mask.
    ///
    /// # Errors
    /// GDAL read failures (for example a truncated file), naming the file.
    pub fn read_window(&self, rows: Range<usize>, cols: Range<usize>) -> Result<Block> {
        let (h, width) = (rows.len(), cols.len());
        let mut out = Array3::<f32>::zeros((self.bands.len(), h, width));
        let mut valid = Array2::from_elem((h, width), true);
        self.read_into(rows, cols, out.view_mut(), valid.view_mut())?;
        Ok(Block { bands: out, valid })
    }

    /// Reads a window into `out` (bands × rows × cols) and `valid`, straight
    /// into each band plane when its rows are contiguous.
    fn read_into(
        &self,
        rows: Range<usize>,
        cols: Range<usize>,
        mut out: ndarray::ArrayViewMut3<f32>,
        mut valid: ndarray::ArrayViewMut2<bool>,
    ) -> Result<()> {
        let (h, width) = (rows.len(), cols.len());
        let origin = (cols.start as isize, rows.start as isize);
        let mut buf: Vec<f32> = Vec::new();
        valid.fill(true);
        let (s, o) = (self.scale, self.offset);
        for (i, &b) in self.bands.iter().enumerate() {
            let band = self
                .ds
                .rasterband(b)
                .map_err(|e| Error::gdal(&self.path, e))?;
            let err = |e: gdal::errors::GdalError| {
                Error::gdal(
                    &self.path,
                    format!("band {b}, rows {}..{}: {e}", rows.start, rows.end),
                )
            };
            let nd = self.nodata[i].map(|v| v as f32);
            let mut plane = out.index_axis_mut(ndarray::Axis(0), i);
            if let Some(dst) = plane.as_slice_mut() {
                band.read_into_slice::<f32>(origin, (width, h), (width, h), dst, None)
                    .map_err(err)?;
                ndarray::Zip::from(&mut plane)
                    .and(&mut valid)
                    .for_each(|p, v| {
                        *v &= p.is_finite() && Some(*p) != nd;
                        *p = *p * s + o;
                    });
            } else {
                buf.resize(width * h, 0.0);
                band.read_into_slice::<f32>(origin, (width, h), (width, h), &mut buf, None)
                    .map_err(err)?;
                let src = ArrayView2::from_shape((h, width), &buf[..])
                    .map_err(|e| Error::gdal(&self.path, e))?;
                ndarray::Zip::from(&mut plane)
                    .and(&mut valid)
                    .and(src)
                    .for_each(|p, v, &dn| {
                        *v &= dn.is_finite() && Some(dn) != nd;
                        *p = dn * s + o;
                    });
            }
        }
        if let Some((mp, mds)) = &self.mask {
            let band = mds.rasterband(1).map_err(|e| Error::gdal(mp, e))?;
            buf.resize(width * h, 0.0);
            band.read_into_slice::<f32>(origin, (width, h), (width, h), &mut buf, None)
                .map_err(|e| Error::gdal(mp, e))?;
            ndarray::Zip::from(&mut valid)
                .and(ArrayView2::from_shape((h, width), &buf[..]).map_err(|e| Error::gdal(mp, e))?)
                .for_each(|v, &m| *v &= m == 0.0);
        }
        // Bands are kept finite so kernels need no NaN branches; invalid pixels
        // are excluded by the mask, not by their values.
        for mut plane in out.outer_iter_mut() {
            ndarray::Zip::from(&mut plane)
                .and(&valid)
                .for_each(|p, &v| {
                    if !v {
                        *p = 0.0;
                    }
                });
        }
        Ok(())
    }

    /// Reads the whole raster in blocks of `block_rows` rows, straight into
    /// the returned arrays.
    ///
    /// # Errors
    /// As [`DateReader::read_window`].
    pub fn read_all(&self, height: usize, width: usize, block_rows: usize) -> Result<Block> {
        let mut bands = Array3::<f32>::zeros((self.bands.len(), height, width));
        let mut valid = Array2::from_elem((height, width), false);
        for start in (0..height).step_by(block_rows.max(1)) {
            let end = (start + block_rows).min(height);
            self.read_into(
                start..end,
                0..width,
                bands.slice_mut(ndarray::s![.., start..end, ..]),
                valid.slice_mut(ndarray::s![start..end, ..]),
            )?;
        }
        Ok(Block { bands, valid })
    }
}

/// Both dates of a tile, opened and checked to share a grid.
pub struct TileReader {
    /// The shared grid.
    pub grid: Grid,
    /// Earlier date.
    pub before: DateReader,
    /// Later date.
    pub after: DateReader,
}

impl TileReader {
    /// Opens both dates (and masks) of a tile.
    ///
    /// # Errors
    /// Missing/unreadable files, too few bands, empty rasters, grids that differ.
    pub fn open(tile: &Tile, sensor: &Sensor) -> Result<TileReader> {
        let (before, grid) = DateReader::open(&tile.before, sensor, &tile.id, None)?;
        let (after, _) =
            DateReader::open(&tile.after, sensor, &tile.id, Some(&grid)).map_err(|e| match e {
                Error::GridMismatch {
                    tile: t, b, what, ..
                } if b == tile.after.image => Error::GridMismatch {
                    tile: t,
                    a: tile.before.image.clone(),
                    b,
                    what,
                },
                other => other,
            })?;
        Ok(TileReader {
            grid,
            before,
            after,
        })
    }

    /// What was done to the inputs on the fly (warps), for the log.
    pub fn notes(&self) -> Vec<String> {
        [&self.before.note, &self.after.note]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Reads the same rows of both dates.
    ///
    /// # Errors
    /// As [`DateReader::read_rows`].
    pub fn read_rows(&self, rows: Range<usize>) -> Result<(Block, Block)> {
        Ok((
            self.before.read_rows(rows.clone(), self.grid.width)?,
            self.after.read_rows(rows, self.grid.width)?,
        ))
    }

    /// Reads both dates whole, each on its own thread (GDAL decoding is
    /// single-threaded per file), in blocks of `block_rows` rows.
    ///
    /// # Errors
    /// As [`DateReader::read_window`].
    pub fn read_both(self, block_rows: usize) -> Result<(Block, Block)> {
        let (h, w) = (self.grid.height, self.grid.width);
        let TileReader { before, after, .. } = self;
        std::thread::scope(|s| {
            let a = s.spawn(move || after.read_all(h, w, block_rows));
            let b = before.read_all(h, w, block_rows);
            let a = a
                .join()
                .map_err(|_| Error::gdal(Path::new("later image"), "reader thread panicked"))?;
            Ok((b?, a?))
        })
    }
}

/// Writes bands to a tiled, DEFLATE-compressed GeoTIFF through a temporary
/// file and a rename.
///
/// # Errors
/// GDAL failures naming `path`.
pub fn write_geotiff<T: GdalType + Copy>(
    path: &Path,
    grid: &Grid,
    bands: &[ArrayView2<T>],
    nodata: Option<f64>,
) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = crate::io::tmp_path(path);
    {
        let drv = DriverManager::get_driver_by_name("GTiff").map_err(|e| Error::gdal(path, e))?;
        let mut opts = RasterCreationOptions::new();
        for (k, v) in [
            ("TILED", "YES"),
            ("COMPRESS", "DEFLATE"),
            ("BLOCKXSIZE", "256"),
            ("BLOCKYSIZE", "256"),
        ] {
            opts.set_name_value(k, v)
                .map_err(|e| Error::gdal(path, e))?;
        }
        if T::datatype().is_integer() {
            opts.set_name_value("PREDICTOR", "2")
                .map_err(|e| Error::gdal(path, e))?;
        }
        if bands.len() > 1 {
            opts.set_name_value("INTERLEAVE", "PIXEL")
                .map_err(|e| Error::gdal(path, e))?;
        }
        let mut ds = drv
            .create_with_band_type_with_options::<T, _>(
                &tmp,
                grid.width,
                grid.height,
                bands.len(),
                &opts,
            )
            .map_err(|e| Error::gdal(path, e))?;
        ds.set_geo_transform(&grid.gt)
            .map_err(|e| Error::gdal(path, e))?;
        ds.set_projection(&grid.wkt)
            .map_err(|e| Error::gdal(path, e))?;
        for (i, b) in bands.iter().enumerate() {
            let mut band = ds.rasterband(i + 1).map_err(|e| Error::gdal(path, e))?;
            if let Some(nd) = nodata {
                band.set_no_data_value(Some(nd))
                    .map_err(|e| Error::gdal(path, e))?;
            }
            let data: Vec<T> = b.iter().copied().collect();
            let mut buf = gdal::raster::Buffer::new((grid.width, grid.height), data);
            band.write((0, 0), (grid.width, grid.height), &mut buf)
                .map_err(|e| Error::gdal(path, e))?;
        }
        ds.close().map_err(|e| Error::gdal(path, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
