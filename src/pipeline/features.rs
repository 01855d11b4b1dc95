//! Per-component features: statistics gathered over a component's pixels,
//! and the two feature vectors the models read. The order of each vector is
//! defined once, here, as a table of (name, function); the models'
//! coefficients (`model_coef.rs`) are in this order, and the feature tap
//! writes the names next to the values.

use super::cover::Cover;
use crate::domain::grid::Grid;
use crate::kernels::label::Component;
use crate::kernels::landcover::{BARE, BUILT, VEG, WATER};
use geo::Coord;
use ndarray::{Array2, ArrayView2, ArrayView3};

/// Cap, in pixels, of the distance to the nearest cloud or shadow that the
/// confidence model reads.
pub const CLOUD_CAP: u8 = 30;

/// Per-component statistics (sums over its pixels unless said otherwise).
#[derive(Debug, Default, Clone)]
pub struct Stats {
    n: f64,
    water_b: f64,
    water_a: f64,
    veg_b: f64,
    bare_a: f64,
    built_a: f64,
    br_a: f64,
    br_a2: f64,
    br_b: f64,
    ndvi_b: f64,
    ndvi_a: f64,
    ndwi_b: f64,
    ndwi_a: f64,
    mag: f64,
    /// Mean later-date reflectance per band.
    spec_a: [f64; 5],
    /// Sum of |brightness difference| over 4-adjacent pixel pairs inside the component.
    contrast: f64,
    pairs: f64,
    /// Area over the area of the minimum rotated rectangle.
    pub rectangularity: f64,
    /// Share of pixels that survive one erosion (3 × 3 cross): 0 for lines
    /// and slivers along edges, near 1 for solid blobs.
    pub solidity: f64,
    /// Mean earlier-date reflectance per band.
    spec_b: [f64; 5],
    /// Largest appearance magnitude.
    mag_max: f64,
    /// Sum of disappearance magnitude.
    van: f64,
    /// Sum of the distance (pixels, capped) to the nearest cloud or shadow.
    cloud_d: f64,
    /// Sum of the change model's probability.
    p: f64,
}

impl Stats {
    /// Mean of a summed quantity over the pixels.
    pub fn mean(&self, v: f64) -> f64 {
        v / self.n.max(1.0)
    }
    /// Mean pixel-to-pixel brightness difference relative to mean brightness.
    fn local_contrast(&self) -> f64 {
        if self.pairs == 0.0 {
            0.0
        } else {
            self.contrast / self.pairs / self.mean(self.br_a).max(1e-3)
        }
    }
    fn texture(&self) -> f64 {
        let m = self.mean(self.br_a);
        (self.mean(self.br_a2) - m * m).max(0.0).sqrt()
    }
    fn d(&self, k: usize) -> f64 {
        self.mean(self.spec_a[k] - self.spec_b[k])
    }
    fn a(&self, k: usize) -> f64 {
        self.mean(self.spec_a[k])
    }
    fn b(&self, k: usize) -> f64 {
        self.mean(self.spec_b[k])
    }
    /// Mean change-model probability over the pixels.
    pub fn mean_probability(&self) -> f64 {
        self.mean(self.p)
    }
    fn cloud_dist(&self) -> f64 {
        self.mean(self.cloud_d)
    }
    /// Mean NDVI before, NDVI after, NDWI before, NDWI after, magnitude.
    pub fn evidence_means(&self) -> [f64; 5] {
        [
            self.mean(self.ndvi_b),
            self.mean(self.ndvi_a),
            self.mean(self.ndwi_b),
            self.mean(self.ndwi_a),
            self.mean(self.mag),
        ]
    }
}

/// A confidence-model input: name and value from the statistics and the
/// change threshold.
pub type ConfFeature = (&'static str, fn(&Stats, f64) -> f64);
/// A class-model input: name and value from the statistics.
pub type ClassFeature = (&'static str, fn(&Stats) -> f64);

/// Number of confidence-model inputs.
pub const N_CONF: usize = 23;

/// The confidence-model inputs, in model order.
pub const CONF_FEATURES: [ConfFeature; N_CONF] = [
    ("log mean magnitude / threshold", |s, t| {
        (s.mean(s.mag) / t).max(1e-6).ln()
    }),
    ("log max magnitude / threshold", |s, t| {
        (s.mag_max / t).max(1e-6).ln()
    }),
    ("log pixels / 4", |s, _| (s.n / 4.0).ln()),
    ("solidity", |s, _| s.solidity),
    ("local contrast", |s, _| s.local_contrast().min(1.0)),
    ("water before", |s, _| s.mean(s.water_b)),
    ("vegetation before", |s, _| s.mean(s.veg_b)),
    ("brightness after", |s, _| s.mean(s.br_a)),
    ("rectangularity", |s, _| s.rectangularity),
    ("water after", |s, _| s.mean(s.water_a)),
    ("bare after", |s, _| s.mean(s.bare_a)),
    ("built after", |s, _| s.mean(s.built_a)),
    ("texture", |s, _| s.texture()),
    ("distance to cloud / 30", |s, _| {
        s.cloud_dist() / f64::from(CLOUD_CAP)
    }),
    ("near cloud", |s, _| {
        f64::from(u8::from(s.cloud_dist() < f64::from(CLOUD_CAP) - 0.1))
    }),
    ("vanished magnitude / threshold", |s, t| s.mean(s.van) / t),
    ("NDVI change", |s, _| s.mean(s.ndvi_a - s.ndvi_b)),
    ("NDWI change", |s, _| s.mean(s.ndwi_a - s.ndwi_b)),
    ("blue change", |s, _| s.d(0)),
    ("green change", |s, _| s.d(1)),
    ("red change", |s, _| s.d(2)),
    ("NIR change", |s, _| s.d(3)),
    ("|blue change - red change|", |s, _| (s.d(0) - s.d(2)).abs()),
];

fn nd(s: f64, n: f64) -> f64 {
    (s - n) / (s + n).max(1e-9)
}

/// Class-model inputs for every band layout, in model order.
pub const CLASS_FEATURES_4: [ClassFeature; 25] = [
    ("water before", |s| s.mean(s.water_b)),
    ("water after", |s| s.mean(s.water_a)),
    ("vegetation before", |s| s.mean(s.veg_b)),
    ("bare after", |s| s.mean(s.bare_a)),
    ("built after", |s| s.mean(s.built_a)),
    ("brightness after", |s| s.mean(s.br_a)),
    ("brightness before", |s| s.mean(s.br_b)),
    ("texture", |s| s.texture()),
    ("local contrast", |s| s.local_contrast().min(1.0)),
    ("solidity", |s| s.solidity),
    ("rectangularity", |s| s.rectangularity),
    ("NDVI after", |s| s.mean(s.ndvi_a)),
    ("NDVI before", |s| s.mean(s.ndvi_b)),
    ("NDWI after", |s| s.mean(s.ndwi_a)),
    ("NDWI before", |s| s.mean(s.ndwi_b)),
    ("red / blue after", |s| s.a(2) / s.a(0).max(1e-6)),
    ("log pixels / 4", |s| (s.n / 4.0).ln()),
    ("blue after", |s| s.a(0)),
    ("green after", |s| s.a(1)),
    ("red after", |s| s.a(2)),
    ("NIR after", |s| s.a(3)),
    ("blue before", |s| s.b(0)),
    ("green before", |s| s.b(1)),
    ("red before", |s| s.b(2)),
    ("NIR before", |s| s.b(3)),
];

/// Further class-model inputs when SWIR is present, after [`CLASS_FEATURES_4`].
pub const CLASS_FEATURES_SWIR: [ClassFeature; 4] = [
    ("SWIR after", |s| s.a(4)),
    ("SWIR before", |s| s.b(4)),
    ("NDBI after", |s| nd(s.a(4), s.a(3))),
    ("NDBI before", |s| nd(s.b(4), s.b(3))),
];

/// The confidence-model input vector.
pub fn conf_features(s: &Stats, threshold: f64) -> [f64; N_CONF] {
    CONF_FEATURES.map(|(_, f)| f(s, threshold))
}

/// The class-model input vector (the SWIR inputs only with SWIR).
pub fn class_features(s: &Stats, swir: bool) -> Vec<f64> {
    let extra: &[ClassFeature] = if swir { &CLASS_FEATURES_SWIR } else { &[] };
    CLASS_FEATURES_4
        .iter()
        .chain(extra)
        .map(|(_, f)| f(s))
        .collect()
}

/// Names of the class-model inputs for a band layout.
pub fn class_feature_names(swir: bool) -> Vec<&'static str> {
    let extra: &[ClassFeature] = if swir { &CLASS_FEATURES_SWIR } else { &[] };
    CLASS_FEATURES_4
        .iter()
        .chain(extra)
        .map(|(n, _)| *n)
        .collect()
}

/// The per-pixel layers the statistics read.
pub struct Layers<'a> {
    /// Component labels.
    pub labels: &'a Array2<u32>,
    /// Indices and land cover.
    pub cover: &'a Cover,
    /// Appearance magnitude.
    pub appeared: &'a Array2<f32>,
    /// Disappearance magnitude.
    pub vanished: &'a Array2<f32>,
    /// Change-model probability, when the method has one.
    pub probability: Option<&'a Array2<f32>>,
    /// Earlier reflectance.
    pub before: ArrayView3<'a, f32>,
    /// Later reflectance (normalised, shifted).
    pub after: ArrayView3<'a, f32>,
    /// Distance to the nearest cloud or shadow, capped at [`CLOUD_CAP`].
    pub cloud_d: ArrayView2<'a, u8>,
}

/// Statistics of one component, and its pixel centres in map coordinates
/// (area samples for the flood-channel share).
pub fn stats(comp: &Component, l: &Layers<'_>, grid: &Grid) -> (Stats, Vec<Coord<f64>>) {
    let lab = l.labels;
    let mut st = Stats::default();
    let mut pts = Vec::with_capacity(comp.pixels);
    for r in comp.r0..comp.r1 {
        for c in comp.c0..comp.c1 {
            if lab[[r, c]] != comp.label {
                continue;
            }
            let v = PixelValues::at(l, r, c);
            add(&mut st, &v);
            for (rr, cc) in [(r, c + 1), (r + 1, c)] {
                if rr < lab.nrows() && cc < lab.ncols() && lab[[rr, cc]] == comp.label {
                    add_contrast(&mut st, v.br_a, l.cover.after.brightness[[rr, cc]]);
                }
            }
            let (x, y) = grid.to_map(c as f64 + 0.5, r as f64 + 0.5);
            pts.push(Coord { x, y });
        }
    }
    (st, pts)
}

/// The values of one pixel that the statistics read, so a component can be
/// measured from pixels kept aside (the streaming path) exactly as from the
/// layers.
#[derive(Debug, Clone, Copy, Default)]
pub struct PixelValues {
    /// Land cover before / after.
    pub lc: [u8; 2],
    /// Brightness before / after.
    pub br_b: f32,
    /// Brightness after.
    pub br_a: f32,
    /// NDVI before / after.
    pub ndvi: [f32; 2],
    /// NDWI before / after.
    pub ndwi: [f32; 2],
    /// Appearance magnitude.
    pub appeared: f32,
    /// Disappearance magnitude.
    pub vanished: f32,
    /// Distance to cloud, capped.
    pub cloud_d: u8,
    /// Change-model probability (0 without a model).
    pub p: f32,
    /// Bands in use.
    pub bands: u8,
    /// Reflectance before.
    pub spec_b: [f32; 5],
    /// Reflectance after.
    pub spec_a: [f32; 5],
}

/// Where one row's values are: each layer with the row in it (the
/// streaming path's buffers hold a row at different offsets in different
/// chunks, and read it where it is instead of copying the rows out).
pub struct RowSources<'a> {
    /// Indices and land cover, and the row.
    pub cover: (&'a Cover, usize),
    /// Appearance and disappearance magnitudes, and the row.
    pub magnitude: (&'a Array2<f32>, &'a Array2<f32>, usize),
    /// Earlier reflectance, and the row.
    pub before: (ArrayView3<'a, f32>, usize),
    /// Later reflectance (normalised, shifted), and the row.
    pub after: (ArrayView3<'a, f32>, usize),
    /// Distance to cloud, and the row.
    pub cloud_d: (ArrayView2<'a, u8>, usize),
    /// Change-model probability and the row, when the method has one.
    pub probability: Option<(ArrayView2<'a, f32>, usize)>,
}

impl PixelValues {
    /// The values at row `r`, column `c` of the layers.
    pub fn at(l: &Layers<'_>, r: usize, c: usize) -> PixelValues {
        let src = RowSources {
            cover: (l.cover, r),
            magnitude: (l.appeared, l.vanished, r),
            before: (l.before, r),
            after: (l.after, r),
            cloud_d: (l.cloud_d, r),
            probability: l.probability.map(|p| (p.view(), r)),
        };
        PixelValues::in_row(&src, c)
    }

    /// The values at column `c` of a row's sources.
    pub fn in_row(x: &RowSources<'_>, c: usize) -> PixelValues {
        let (cv, r) = x.cover;
        let (ixb, ixa) = (&cv.before, &cv.after);
        let (ap, va, rm) = x.magnitude;
        let ((before, rb), (after, ra)) = (x.before, x.after);
        let nb = after.dim().0.min(5);
        let mut v = PixelValues {
            lc: [cv.lc_before[[r, c]], cv.lc_after[[r, c]]],
            br_b: ixb.brightness[[r, c]],
            br_a: ixa.brightness[[r, c]],
            ndvi: [ixb.ndvi[[r, c]], ixa.ndvi[[r, c]]],
            ndwi: [ixb.ndwi[[r, c]], ixa.ndwi[[r, c]]],
            appeared: ap[[rm, c]],
            vanished: va[[rm, c]],
            cloud_d: x.cloud_d.0[[x.cloud_d.1, c]],
            p: x.probability.map_or(0.0, |(p, rp)| p[[rp, c]]),
            bands: nb as u8,
            ..PixelValues::default()
        };
        for k in 0..nb {
            v.spec_b[k] = before[[k, rb, c]];
            v.spec_a[k] = after[[k, ra, c]];
        }
        v
    }
}

/// Adds one pixel to the statistics (without its contrast pairs).
pub fn add(st: &mut Stats, v: &PixelValues) {
    let [b, a] = v.lc;
    let bra = v.br_a as f64;
    st.n += 1.0;
    st.water_b += f64::from(u8::from(b == WATER));
    st.water_a += f64::from(u8::from(a == WATER));
    st.veg_b += f64::from(u8::from(b == VEG));
    st.bare_a += f64::from(u8::from(a == BARE));
    st.built_a += f64::from(u8::from(a == BUILT));
    st.br_a += bra;
    st.br_a2 += bra * bra;
    st.br_b += v.br_b as f64;
    st.ndvi_b += v.ndvi[0] as f64;
    st.ndvi_a += v.ndvi[1] as f64;
    st.ndwi_b += v.ndwi[0] as f64;
    st.ndwi_a += v.ndwi[1] as f64;
    let m = v.appeared as f64;
    st.mag += m;
    let nb = usize::from(v.bands);
    for (k, s) in st.spec_a.iter_mut().enumerate().take(nb) {
        *s += v.spec_a[k] as f64;
    }
    for (k, s) in st.spec_b.iter_mut().enumerate().take(nb) {
        *s += v.spec_b[k] as f64;
    }
    st.mag_max = st.mag_max.max(m);
    st.van += v.vanished as f64;
    st.cloud_d += v.cloud_d as f64;
    st.p += v.p as f64;
}

/// Adds the brightness contrast between a pixel (brightness after `bra`)
/// and its right or lower neighbour in the same component.
pub fn add_contrast(st: &mut Stats, bra: f32, other: f32) {
    st.contrast += (bra as f64 - other as f64).abs();
    st.pairs += 1.0;
}
