//! Spectral indices. Each is a normalised difference `(a − b) / (a + b)`,
//! defined as 0 where `a + b ≤ 0` so kernels never branch on NaN.
//!
//! | index | formula | reference |
//! |---|---|---|
//! | NDVI  | (NIR − red) / (NIR + red) | Rouse et al. 1974 |
//! | NDWI  | (green − NIR) / (green + NIR) | McFeeters 1996 |
//! | MNDWI | (green − SWIR1) / (green + SWIR1) | Xu 2006 |
//! | NDBI  | (SWIR1 − NIR) / (SWIR1 + NIR) | Zha et al. 2003 |
//! | BSI   | ((SWIR1 + red) − (NIR + blue)) / ((SWIR1 + red) + (NIR + blue)) | Rikimaru et al. 2002 |
//!
//! Values stay in [−1, 1] for non-negative reflectance.

use ndarray::{Array2, ArrayView2, ArrayView3, Axis, Zip};

/// Band positions in riverwatch's internal order.
pub const BLUE: usize = 0;
/// Green band position.
pub const GREEN: usize = 1;
/// Red band position.
pub const RED: usize = 2;
/// NIR band position.
pub const NIR: usize = 3;
/// SWIR1 band position (when present).
pub const SWIR1: usize = 4;

/// Normalised difference of one pixel.
#[inline]
pub fn nd(a: f32, b: f32) -> f32 {
    let s = a + b;
    if s > 1e-6 {
        ((a - b) / s).clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// Normalised difference of two bands, in parallel.
///
/// # Examples
/// ```
/// use ndarray::array;
/// let nir = array![[0.4f32, 0.0]];
/// let red = array![[0.1f32, 0.0]];
/// let v = riverwatch::kernels::indices::normalized_difference(nir.view(), red.view());
/// assert!((v[[0, 0]] - 0.6).abs() < 1e-6);
/// assert_eq!(v[[0, 1]], 0.0);
/// ```
pub fn normalized_difference(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f32> {
    Zip::from(&a).and(&b).par_map_collect(|&a, &b| nd(a, b))
}

/// Per-date indices used by land cover and evidence.
#[derive(Debug, Clone)]
pub struct Indices {
    /// NDVI.
    pub ndvi: Array2<f32>,
    /// NDWI (McFeeters).
    pub ndwi: Array2<f32>,
    /// MNDWI, when SWIR is present.
    pub mndwi: Option<Array2<f32>>,
    /// NDBI, when SWIR is present.
    pub ndbi: Option<Array2<f32>>,
    /// BSI, when SWIR is present.
    pub bsi: Option<Array2<f32>>,
    /// Mean of blue, green and red reflectance.
    pub brightness: Array2<f32>,
}

/// Computes every index available from `bands` (bands, rows, cols).
pub fn indices(bands: ArrayView3<f32>) -> Indices {
    indices_with(bands, true)
}

/// As [`indices`]; NDBI and BSI only when `all` (land cover does not read
/// them, so detection computes them only for the rasters it writes).
pub fn indices_with(bands: ArrayView3<f32>, all: bool) -> Indices {
    let b = |i: usize| bands.index_axis(Axis(0), i);
    let swir = bands.len_of(Axis(0)) > SWIR1;
    let brightness = Zip::from(&b(BLUE))
        .and(&b(GREEN))
        .and(&b(RED))
        .par_map_collect(|&x, &y, &z| (x + y + z) / 3.0);
    Indices {
        ndvi: normalized_difference(b(NIR), b(RED)),
        ndwi: normalized_difference(b(GREEN), b(NIR)),
        mndwi: swir.then(|| normalized_difference(b(GREEN), b(SWIR1))),
        ndbi: (swir && all).then(|| normalized_difference(b(SWIR1), b(NIR))),
        bsi: (swir && all).then(|| {
            Zip::from(&b(SWIR1))
                .and(&b(RED))
                .and(&b(NIR))
                .and(&b(BLUE))
                .par_map_collect(|&s, &r, &n, &bl| nd(s + r, n + bl))
        }),
        brightness,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn indices_stay_in_range(a in 0f32..2.0, b in 0f32..2.0) {
            let v = nd(a, b);
            prop_assert!((-1.0..=1.0).contains(&v));
        }
    }

    #[test]
    fn water_and_vegetation_signs() {
        // Turbid water and grass reflectance (blue, green, red, NIR, SWIR1).
        let water = [0.07f32, 0.095, 0.085, 0.04, 0.015];
        let grass = [0.04f32, 0.08, 0.05, 0.33, 0.2];
        assert!(nd(water[1], water[3]) > 0.3);
        assert!(nd(grass[3], grass[2]) > 0.6);
        assert!(nd(grass[1], grass[3]) < 0.0);
    }
}
