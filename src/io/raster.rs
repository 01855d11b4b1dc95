//! The only module that calls GDAL for rasters and coordinate systems.
//!
//! Orientation: GDAL buffers are addressed (cols, rows) — x first — while
//! riverwatch's ndarray arrays are (rows, cols). A GDAL window read of
//! `w × h` pixels comes back row-major, so it is reshaped directly to
//! `(h, w)`; that conversion happens here and nowhere else.

use super::crs::same_crs;
use crate::domain::grid::Grid;
use crate::domain::manifest::{is_virtual_path, DateImage, MaskKind, Sensor, Tile};
use crate::error::{Error, Result};
use gdal::raster::{GdalType, RasterCreationOptions};
use gdal::{Dataset, DriverManager};
use ndarray::{Array2, Array3, ArrayView2};
use std::ops::Range;
use std::path::{Path, PathBuf};

fn open(path: &Path) -> Result<Dataset> {
    if !is_virtual_path(path) && !path.exists() {
        return Err(Error::invalid(path, "file does not exist"));
    }
    Dataset::open(path).map_err(|e| Error::gdal(path, e))
}

/// An empty in-memory Float32 raster of `n` bands on `grid` (`path` names
/// the input it stands for in messages).
fn mem_on(grid: &Grid, n: usize, path: &Path) -> Result<Dataset> {
    let err = |e: gdal::errors::GdalError| Error::gdal(path, e);
    let drv = DriverManager::get_driver_by_name("MEM").map_err(err)?;
    let mut ds = drv
        .create_with_band_type::<f32, _>("", grid.width, grid.height, n)
        .map_err(err)?;
    ds.set_geo_transform(&grid.gt).map_err(err)?;
    ds.set_projection(&grid.wkt).map_err(err)?;
    Ok(ds)
}

/// A short description of a grid for messages: CRS, pixel size, size.
fn describe(g: &Grid) -> String {
    let crs = gdal::spatial_ref::SpatialRef::from_wkt(&g.wkt)
        .ok()
        .and_then(|s| s.auth_code().ok())
        .map_or_else(|| "a custom CRS".to_string(), |c| format!("EPSG:{c}"));
    format!(
        "{crs}, {} m pixels, {} × {} px from ({:.1}, {:.1})",
        g.gt[1], g.width, g.height, g.gt[0], g.gt[3]
    )
}

/// Whether `g` (in its own CRS) overlaps `target` at all.
fn overlaps(g: &Grid, target: &Grid) -> Result<bool> {
    let t = super::crs::Transformer::new(
        super::crs::Srs::Wkt(&g.wkt),
        super::crs::Srs::Wkt(&target.wkt),
    )?;
    let corners = [
        (0.0, 0.0),
        (g.width as f64, 0.0),
        (0.0, g.height as f64),
        (g.width as f64, g.height as f64),
    ];
    let (mut xs, mut ys): (Vec<f64>, Vec<f64>) =
        corners.iter().map(|&(c, r)| g.to_map(c, r)).unzip();
    t.apply(&mut xs, &mut ys)?;
    let (x0, y1) = target.to_map(0.0, 0.0);
    let (x1, y0) = target.to_map(target.width as f64, target.height as f64);
    let fold = |v: &[f64], f: fn(f64, f64) -> f64, init| v.iter().copied().fold(init, f);
    Ok(fold(&xs, f64::min, f64::MAX) < x1
        && fold(&xs, f64::max, f64::MIN) > x0
        && fold(&ys, f64::min, f64::MAX) < y1
        && fold(&ys, f64::max, f64::MIN) > y0)
}

/// `ds` on `target`: itself when the grids match, else warped in memory
/// (bilinear) onto `target`, with a note for the log. Refuses rasters that
/// do not overlap `target`, with the gdalwarp command that would align them.
fn on_grid(
    ds: Dataset,
    path: &Path,
    target: &Grid,
    what: &str,
) -> Result<(Dataset, Option<String>)> {
    let g = grid_of(&ds, path)?;
    if target.mismatch(&g, same_crs).is_none() {
        return Ok((ds, None));
    }
    if !overlaps(&g, target)? {
        let epsg = gdal::spatial_ref::SpatialRef::from_wkt(&target.wkt)
            .ok()
            .and_then(|s| s.auth_code().ok())
            .map_or_else(
                || "<the reference CRS>".to_string(),
                |c| format!("EPSG:{c}"),
            );
        let (x0, y1) = target.to_map(0.0, 0.0);
        let (x1, y0) = target.to_map(target.width as f64, target.height as f64);
        return Err(Error::invalid(
            path,
            format!(
                "does not overlap the reference grid ({}); this raster is {}. If it is the right file, align it with: gdalwarp -t_srs {epsg} -te {x0} {y0} {x1} {y1} -ts {} {} -r bilinear {} aligned.tif",
                describe(target),
                describe(&g),
                target.width,
                target.height,
                path.display()
            ),
        ));
    }
    let n = ds.raster_count();
    let dst = mem_on(target, n, path)?;
    for b in 1..=n {
        let src = ds.rasterband(b).map_err(|e| Error::gdal(path, e))?;
        let mut band = dst.rasterband(b).map_err(|e| Error::gdal(path, e))?;
        // Outside the source: nodata (NaN when the source has none), so
        // it is never taken for data.
        let nd = src.no_data_value().unwrap_or(f64::NAN);
        band.set_no_data_value(Some(nd))
            .map_err(|e| Error::gdal(path, e))?;
        band.fill(nd, None).map_err(|e| Error::gdal(path, e))?;
        if let (Some(sc), Some(of)) = (src.scale(), src.offset()) {
            let _ = band.set_scale(sc);
            let _ = band.set_offset(of);
        }
    }
    gdal::raster::reproject(&ds, &dst).map_err(|e| Error::gdal(path, e))?;
    let note = format!(
        "{}: {what} resampled on the fly onto the reference grid ({} → {}, bilinear)",
        path.display(),
        describe(&g),
        describe(target)
    );
    Ok((dst, Some(note)))
}

/// A mask on `target` as 0 (usable) / 1 (unusable): read at its own
/// resolution, decoded by `kind`, then resampled; a target pixel touched by
/// any unusable source pixel is unusable.
fn mask_on_grid(
    ds: Dataset,
    path: &Path,
    target: &Grid,
    kind: MaskKind,
) -> Result<(Dataset, Option<String>)> {
    let g = grid_of(&ds, path)?;
    if target.mismatch(&g, same_crs).is_none() {
        return Ok((ds, None));
    }
    let band = ds.rasterband(1).map_err(|e| Error::gdal(path, e))?;
    let buf = band
        .read_as::<f64>((0, 0), (g.width, g.height), (g.width, g.height), None)
        .map_err(|e| Error::gdal(path, e))?;
    let (_, data) = buf.into_shape_and_vec();
    let decoded: Vec<f32> = data
        .iter()
        .map(|&v| f32::from(u8::from(kind.unusable(v))))
        .collect();
    let src = mem_on(&g, 1, path)?;
    let mut b = gdal::raster::Buffer::new((g.width, g.height), decoded);
    src.rasterband(1)
        .map_err(|e| Error::gdal(path, e))?
        .write((0, 0), (g.width, g.height), &mut b)
        .map_err(|e| Error::gdal(path, e))?;
    let (dst, note) = on_grid(src, path, target, "mask")?;
    Ok((
        dst,
        note.map(|n| format!("{n}; any unusable source pixel makes the target pixel unusable")),
    ))
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
    let dst = mem_on(&u, n, path)?;
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
    /// Open rasters: the multi-band image, or one per band file.
    sources: Vec<(PathBuf, Dataset)>,
    /// Per output band: (source index, band number).
    bands: Vec<(usize, usize)>,
    nodata: Vec<Option<f64>>,
    scale: Vec<f64>,
    offset: Vec<f64>,
    mask: Option<(PathBuf, Dataset, MaskKind)>,
    /// What was done on the fly (warps, resampling, radiometry), for the log.
    notes: Vec<String>,
}

/// The scale and offset of one band: this date's own (manifest), else the
/// raster's scale/offset metadata when it has any, else the sensor's.
fn radiometry(
    band: &gdal::raster::RasterBand<'_>,
    own: (Option<f64>, Option<f64>),
    sensor: &Sensor,
) -> (f64, f64, Option<&'static str>) {
    let meta = match (band.scale(), band.offset()) {
        (Some(s), o) if s != 1.0 || o.is_some_and(|o| o != 0.0) => Some((s, o.unwrap_or(0.0))),
        (None, Some(o)) if o != 0.0 => Some((1.0, o)),
        _ => None,
    };
    match (own, meta) {
        ((Some(s), Some(o)), _) => (s, o, None),
        ((s, o), Some((ms, mo))) if s.is_none() && o.is_none() => (ms, mo, Some("raster metadata")),
        ((s, o), _) => (s.unwrap_or(sensor.scale), o.unwrap_or(sensor.offset), None),
    }
}

impl DateReader {
    fn open(
        img: &DateImage,
        sensor: &Sensor,
        tile: &str,
        grid: Option<&Grid>,
    ) -> Result<(DateReader, Grid)> {
        let label = img.label().to_path_buf();
        let mut notes = Vec::new();
        // The reference grid: the earlier date's (blue band's) own grid,
        // warped to UTM when geographic; the later date is aligned onto it.
        let (first, note) = match grid {
            None => open_metric(&label)?,
            Some(_) => (open(&label)?, None),
        };
        notes.extend(note);
        let g = match grid {
            Some(r) => r.clone(),
            None => grid_of(&first, &label)?,
        };
        let what = if grid.is_some() { "later date" } else { "band" };
        let mut sources = Vec::new();
        let mut bands = Vec::new();
        let mut first = Some(first);
        match &img.bands {
            None => {
                let ds = first
                    .take()
                    .ok_or_else(|| Error::invalid(&label, "not opened"))?;
                let (ds, note) = on_grid(ds, &label, &g, what)?;
                notes.extend(note);
                let need = sensor.bands.order().into_iter().max().unwrap_or(1);
                if ds.raster_count() < need {
                    return Err(Error::BandCount {
                        path: label.clone(),
                        need,
                        have: ds.raster_count(),
                    });
                }
                sources.push((label.clone(), ds));
                bands = sensor.bands.order().into_iter().map(|b| (0, b)).collect();
            }
            Some(files) => {
                for (i, f) in files.order().into_iter().enumerate() {
                    let ds = match first.take() {
                        Some(d) if i == 0 => d,
                        _ => open(f)?,
                    };
                    let (ds, note) = on_grid(ds, f, &g, what)?;
                    notes.extend(note);
                    sources.push((f.to_path_buf(), ds));
                    bands.push((i, 1));
                }
            }
        }
        let own = img
            .radiometry(sensor.scale)
            .map_err(|m| Error::invalid(&label, m))?;
        let (mut nodata, mut scale, mut offset) = (Vec::new(), Vec::new(), Vec::new());
        let mut from_meta = false;
        for &(si, b) in &bands {
            let (p, ds) = &sources[si];
            let band = ds.rasterband(b).map_err(|e| Error::gdal(p, e))?;
            let nd = band.no_data_value().filter(|v| !v.is_nan());
            nodata.push(sensor.nodata.or(nd));
            let (sc, of, src) = radiometry(&band, own, sensor);
            from_meta |= src.is_some();
            scale.push(sc);
            offset.push(of);
        }
        if from_meta {
            notes.push(format!(
                "{}: reflectance scale/offset from the raster's own metadata (scale {}, offset {})",
                label.display(),
                scale[0],
                offset[0]
            ));
        }
        if own.1.is_some_and(|o| o != sensor.offset) || own.0.is_some_and(|s| s != sensor.scale) {
            notes.push(format!(
                "{}: reflectance = DN × {} + {} (set for this date)",
                label.display(),
                scale[0],
                offset[0]
            ));
        }
        let mask = match &img.mask {
            None => None,
            Some(m) => {
                let kind = img.mask_kind.unwrap_or_default();
                let mds = open(m)?;
                if mds.raster_count() != 1 {
                    return Err(Error::invalid(
                        m,
                        format!(
                            "a mask must have 1 band, this one has {}",
                            mds.raster_count()
                        ),
                    ));
                }
                let (mds, note) = mask_on_grid(mds, m, &g, kind)?;
                let kind = if note.is_some() {
                    MaskKind::Binary
                } else {
                    kind
                };
                notes.extend(note);
                Some((m.clone(), mds, kind))
            }
        };
        let _ = tile;
        Ok((
            DateReader {
                path: label,
                sources,
                bands,
                nodata,
                scale,
                offset,
                mask,
                notes,
            },
            g,
        ))
    }

    /// Rows of the tallest storage block among the bands read (1 when GDAL
    /// cannot tell): reading any row of a block decodes all of its rows.
    pub fn block_height(&self) -> usize {
        self.bands
            .iter()
            .filter_map(|&(si, b)| self.sources[si].1.rasterband(b).ok())
            .map(|band| band.block_size().1)
            .max()
            .unwrap_or(1)
            .max(1)
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
        // The buffer is the output's size: the window itself, or smaller
        // for a sample (GDAL picks the nearest pixel).
        let (bh, bw) = valid.dim();
        let origin = (cols.start as isize, rows.start as isize);
        let mut buf: Vec<f32> = Vec::new();
        let mut dn16: Vec<u16> = Vec::new();
        valid.fill(true);
        for (i, &(si, b)) in self.bands.iter().enumerate() {
            let (s64, o64) = (self.scale[i], self.offset[i]);
            let (s, o) = (s64 as f32, o64 as f32);
            // An offset that is a whole number of DN (the Sentinel-2 04.00
            // offset: −1000 × 1e-4) is applied to the DN before scaling, so
            // a product stored with it decodes to exactly the reflectance of
            // the same product stored without it.
            let k = o64 / s64;
            let shift = ((k - k.round()).abs() < 1e-6).then_some(k.round() as f32);
            let to_refl = move |dn: f32| match shift {
                Some(k) => (dn + k) * s,
                None => dn * s + o,
            };
            let (path, ds) = &self.sources[si];
            let band = ds.rasterband(b).map_err(|e| Error::gdal(path, e))?;
            let err = |e: gdal::errors::GdalError| {
                Error::gdal(
                    path,
                    format!("band {b}, rows {}..{}: {e}", rows.start, rows.end),
                )
            };
            let nd = self.nodata[i].map(|v| v as f32);
            let mut plane = out.index_axis_mut(ndarray::Axis(0), i);
            if band.band_type() == gdal::raster::GdalDataType::UInt16 {
                // 16-bit DN (Sentinel-2, Landsat, GF products) are read as
                // they are stored and converted here: GDAL then copies two
                // bytes a pixel instead of converting each to f32 itself
                // (the same values: every u16 is exact in f32).
                dn16.resize(bw * bh, 0);
                band.read_into_slice::<u16>(origin, (width, h), (bw, bh), &mut dn16, None)
                    .map_err(err)?;
                let src = ArrayView2::from_shape((bh, bw), &dn16[..])
                    .map_err(|e| Error::gdal(&self.path, e))?;
                ndarray::Zip::from(&mut plane)
                    .and(&mut valid)
                    .and(src)
                    .for_each(|p, v, &dn| {
                        let dn = f32::from(dn);
                        *v &= Some(dn) != nd;
                        *p = to_refl(dn);
                    });
            } else if let Some(dst) = plane.as_slice_mut() {
                band.read_into_slice::<f32>(origin, (width, h), (bw, bh), dst, None)
                    .map_err(err)?;
                ndarray::Zip::from(&mut plane)
                    .and(&mut valid)
                    .for_each(|p, v| {
                        *v &= p.is_finite() && Some(*p) != nd;
                        *p = to_refl(*p);
                    });
            } else {
                buf.resize(bw * bh, 0.0);
                band.read_into_slice::<f32>(origin, (width, h), (bw, bh), &mut buf, None)
                    .map_err(err)?;
                let src = ArrayView2::from_shape((bh, bw), &buf[..])
                    .map_err(|e| Error::gdal(&self.path, e))?;
                ndarray::Zip::from(&mut plane)
                    .and(&mut valid)
                    .and(src)
                    .for_each(|p, v, &dn| {
                        *v &= dn.is_finite() && Some(dn) != nd;
                        *p = to_refl(dn);
                    });
            }
        }
        if let Some((mp, mds, kind)) = &self.mask {
            let band = mds.rasterband(1).map_err(|e| Error::gdal(mp, e))?;
            buf.resize(bw * bh, 0.0);
            band.read_into_slice::<f32>(origin, (width, h), (bw, bh), &mut buf, None)
                .map_err(|e| Error::gdal(mp, e))?;
            ndarray::Zip::from(&mut valid)
                .and(ArrayView2::from_shape((bh, bw), &buf[..]).map_err(|e| Error::gdal(mp, e))?)
                .for_each(|v, &m| *v &= !kind.unusable(m as f64));
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

    /// Reads the whole raster at a reduced size of at most `max_side`
    /// pixels per side (nearest pixel), for checks that need a sample.
    ///
    /// # Errors
    /// As [`DateReader::read_window`].
    pub fn read_sample(&self, height: usize, width: usize, max_side: usize) -> Result<Block> {
        let step = height.max(width).div_ceil(max_side.max(1)).max(1);
        let (bh, bw) = (height.div_ceil(step), width.div_ceil(step));
        let mut bands = Array3::<f32>::zeros((self.bands.len(), bh, bw));
        let mut valid = Array2::from_elem((bh, bw), true);
        self.read_into(0..height, 0..width, bands.view_mut(), valid.view_mut())?;
        Ok(Block { bands, valid })
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

/// Bounds GDAL's block cache to 96 MB unless `GDAL_CACHEMAX` is configured:
/// its default, 5 % of the machine's memory (1.2 GB on a 24 GiB box), fills
/// with blocks a streamed scene never reads again, while 96 MB holds a full
/// row of 256 × 256 blocks of ten 16-bit bands of a 10980-pixel-wide pair
/// (measured: 250 MB less peak memory on a 5490² pair, same time). Takes
/// effect before the first raster block is read.
fn bound_block_cache() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if gdal::config::get_config_option("GDAL_CACHEMAX", "")
            .unwrap_or_default()
            .is_empty()
        {
            let _ = gdal::config::set_config_option("GDAL_CACHEMAX", "96");
        }
    });
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
        bound_block_cache();
        let (before, grid) = DateReader::open(&tile.before, sensor, &tile.id, None)?;
        let (after, _) = DateReader::open(&tile.after, sensor, &tile.id, Some(&grid))?;
        Ok(TileReader {
            grid,
            before,
            after,
        })
    }

    /// What was done to the inputs on the fly (warps), for the log.
    pub fn notes(&self) -> Vec<String> {
        self.before
            .notes
            .iter()
            .chain(&self.after.notes)
            .cloned()
            .collect()
    }

    /// Rows of the tallest storage block of either date.
    pub fn block_height(&self) -> usize {
        self.before.block_height().max(self.after.block_height())
    }

    /// Reads the same rows of both dates.
    ///
    /// # Errors
    /// As [`DateReader::read_rows`].
    pub fn read_rows(&self, rows: Range<usize>) -> Result<(Block, Block)> {
        self.read_window(rows, 0..self.grid.width)
    }

    /// Reads the same window (rows × columns) of both dates.
    ///
    /// # Errors
    /// As [`DateReader::read_window`].
    pub fn read_window(&self, rows: Range<usize>, cols: Range<usize>) -> Result<(Block, Block)> {
        Ok((
            self.before.read_window(rows.clone(), cols.clone())?,
            self.after.read_window(rows, cols)?,
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
