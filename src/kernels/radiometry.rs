//! A sanity check of reflectance: a scene whose radiometry was decoded with
//! the wrong scale or offset (for example Sentinel-2 L2A from processing
//! baseline 04.00, stored as DN = 10000 × reflectance + 1000, read with
//! offset 0) looks wrong in ways real surfaces do not: no dark pixels at
//! all, or many below zero, or values far outside 0–1.

use ndarray::{ArrayView2, ArrayView3};

/// What the reflectance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// Surface reflectance (Sentinel-2 L2A, Landsat C2 L2): dark water and
    /// shadow come out near zero.
    Surface,
    /// Top-of-atmosphere reflectance (Sentinel-2 L1C): the atmosphere adds
    /// several hundredths, most in blue.
    TopOfAtmosphere,
}

/// Statistics of one date's reflectance over its valid pixels (every 3rd
/// row and column).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Stats {
    /// Pixels sampled.
    pub samples: usize,
    /// 1st percentile of blue.
    pub p1_blue: f32,
    /// 1st percentile of NIR.
    pub p1_nir: f32,
    /// Median NIR.
    pub median_nir: f32,
    /// 99th percentile of NIR.
    pub p99_nir: f32,
    /// Share of samples with blue, green or red below −0.02.
    pub negative_share: f32,
}

fn pct(v: &mut [f32], q: f64) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    let k = ((v.len() - 1) as f64 * q).round() as usize;
    let (_, x, _) = v.select_nth_unstable_by(k, f32::total_cmp);
    *x
}

/// Samples `bands` (blue, green, red, NIR, …) where `valid`.
pub fn stats(bands: ArrayView3<f32>, valid: ArrayView2<bool>) -> Stats {
    let (_, h, w) = bands.dim();
    let (mut blue, mut nir) = (Vec::new(), Vec::new());
    let mut neg = 0usize;
    for r in (0..h).step_by(3) {
        for c in (0..w).step_by(3) {
            if !valid[[r, c]] {
                continue;
            }
            blue.push(bands[[0, r, c]]);
            nir.push(bands[[3, r, c]]);
            neg += usize::from((0..3).any(|b| bands[[b, r, c]] < -0.02));
        }
    }
    let n = blue.len();
    Stats {
        samples: n,
        p1_blue: pct(&mut blue, 0.01),
        p1_nir: pct(&mut nir, 0.01),
        median_nir: pct(&mut nir, 0.5),
        p99_nir: pct(&mut nir, 0.99),
        negative_share: if n == 0 { 0.0 } else { neg as f32 / n as f32 },
    }
}

/// What is implausible about `s`, with what to set; `None` when it looks
/// like reflectance. The limits, and why:
/// - more than 2 % of pixels below −0.02 in a visible band: real surfaces
///   are not negative, and noise and atmospheric over-correction stay within
///   a few thousandths; an offset applied to data that has none (a pre-04.00
///   product read as 04.00) pushes the dark tenth of a scene below zero;
/// - surface reflectance: 1st percentile of blue *and* of NIR above 0.10.
///   Water, shadow and dense vegetation put the darkest percent of an
///   atmospherically corrected scene below about 0.05 in blue and water
///   below 0.05 in NIR; the sample tiles' is 0.02–0.04 / 0.02–0.03 and
///   rises to 0.12–0.14 with the offset left unapplied. (No real L2A scene
///   is at hand to measure this on: a claim to check on the first one.)
/// - top-of-atmosphere: 1st percentile of blue above 0.16 *and* of NIR above 0.12: on the 28
///   dates of the OSCD set (real top-of-atmosphere Sentinel-2, which is
///   brighter in blue than L2A) the darkest percent of blue reaches at most
///   0.147 (Abu Dhabi, a desert city, whose NIR percentile is 0.19), so both
///   together never trip there, while the 04.00 offset left unapplied (+0.1)
///   trips on all 28 (`examples/radiometry_real.rs`);
/// - median NIR above 1.2 or the 99th percentile of NIR below 0.01: the
///   scale is off by a factor (DN read as reflectance, or scaled twice).
pub fn problem(s: &Stats, product: Product) -> Option<String> {
    if s.samples < 100 {
        return None;
    }
    if s.negative_share > 0.02 {
        return Some(format!(
            "{:.0} % of pixels are below zero (−0.02) in a visible band: the offset is too negative. Sentinel-2 products before processing baseline 04.00 (before 25 January 2022) have no offset: set \"baseline\": \"03.01\" or \"offset\": 0 for this date",
            s.negative_share * 100.0
        ));
    }
    if s.median_nir > 1.2 || s.p99_nir < 0.01 {
        return Some(format!(
            "median NIR reflectance {:.3} and 99th percentile {:.3} are not reflectance: the scale is wrong (set \"scale\" for this date, e.g. 0.0001 for Sentinel-2 DN, 2.75e-5 for Landsat C2 L2)",
            s.median_nir, s.p99_nir
        ));
    }
    let (tb, tn) = match product {
        Product::TopOfAtmosphere => (0.16, 0.12),
        Product::Surface => (0.10, 0.10),
    };
    if s.p1_blue > tb && s.p1_nir > tn {
        return Some(format!(
            "no dark pixels (1st percentile of blue {:.3}, of NIR {:.3}; water, shadow and vegetation are darker): an offset was not applied. Sentinel-2 L2A from processing baseline 04.00 on (from 25 January 2022) stores reflectance + 0.1: set \"baseline\": \"04.00\" (or \"offset\": -0.1) for this date",
            s.p1_blue, s.p1_nir
        ));
    }
    None
}

/// What is implausible about a pair: the dark ends of the two dates differ
/// by more than 0.07 in both blue and NIR, in the same direction — one date
/// decoded with another offset (a 2021 product without the 04.00 offset
/// beside a 2023 product with it). Real pairs differ far less there: at
/// most 0.024 in blue over the 14 OSCD pairs (seasons, haze and all).
pub fn pair_problem(before: &Stats, after: &Stats) -> Option<String> {
    if before.samples < 100 || after.samples < 100 {
        return None;
    }
    let db = after.p1_blue - before.p1_blue;
    let dn = after.p1_nir - before.p1_nir;
    if db.abs() > 0.07 && dn.abs() > 0.07 && db.signum() == dn.signum() {
        let (brighter, darker) = if db > 0.0 {
            ("later", "earlier")
        } else {
            ("earlier", "later")
        };
        return Some(format!(
            "the {brighter} date is {:.2} brighter than the {darker} at its darkest pixels in blue and NIR alike: the two dates are decoded with different offsets. For a Sentinel-2 pair across processing baseline 04.00 (25 January 2022), set \"baseline\" on each date (e.g. \"03.01\" and \"04.00\")",
            db.abs().max(dn.abs())
        ));
    }
    None
}
