//! Re-check of a site reported rectified: the newest image against the
//! reference (before) state inside the case polygon, with the detector's own
//! global pass (clouds, normalisation, shift), land cover and tolerant
//! change magnitude, so "changed" means what it means for detection.

use super::{blocks, cover, global};
use crate::domain::config::Config;
use crate::kernels::landcover;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Zip};
use serde::Serialize;

/// A re-check needs at least half of the site visible (not cloud, shadow or
/// nodata on either date); less says more about the weather than about the
/// site, so the verdict waits for a clearer image.
pub const MIN_USABLE_SHARE: f64 = 0.5;
/// A site is restored when at least 70 % of the pixels that had changed at
/// detection no longer differ from the reference state: the rest allows
/// for mixed edge pixels (the 2-pixel misregistration tolerance) and a bare
/// margin left where a structure or fill was removed.
pub const MIN_RESTORED_SHARE: f64 = 0.7;

/// One date compared with the reference date over a whole tile.
pub struct Comparison {
    /// The later date, normalised and shifted onto the reference.
    pub after: Array3<f32>,
    /// Usable on both dates.
    pub usable: Array2<bool>,
    /// Significant change against the reference (the detector's tolerant
    /// magnitude at its adaptive threshold).
    pub changed: Array2<bool>,
    /// Land cover of the reference date.
    pub lc_before: Array2<u8>,
    /// Land cover of the later date.
    pub lc_after: Array2<u8>,
}

/// Compares `after` with `before` over the whole tile.
pub fn compare(
    before: ArrayView3<f32>,
    after: Array3<f32>,
    valid: Array2<bool>,
    cfg: &Config,
) -> Comparison {
    let g = global::prepare(before.view(), after, valid, true, cfg);
    let all = Array2::from_elem(g.valid.dim(), true);
    let cv = cover::land_cover(&g.cover_input(before.view(), all.view()), cfg);
    let mag = blocks::magnitude(before.view(), g.after.view(), None, cfg);
    let t = blocks::threshold(&mag, g.usable.view(), cfg);
    let changed = Zip::from(&mag.appeared)
        .and(&mag.vanished)
        .and(&g.usable)
        .map_collect(|&a, &v, &u| u && a.max(v) >= t);
    Comparison {
        after: g.after,
        usable: g.usable,
        changed,
        lc_before: cv.lc_before,
        lc_after: cv.lc_after,
    }
}

/// The verdict of a re-check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Restored: at least [`MIN_RESTORED_SHARE`] of the site.
    Verified,
    /// Not restored.
    Failed,
    /// Too little of the site visible ([`MIN_USABLE_SHARE`]); no verdict.
    Inconclusive,
}

/// What a re-check measured inside one case polygon.
#[derive(Debug, Clone, Serialize)]
pub struct SiteMeasure {
    /// Pixels inside the polygon.
    pub pixels: usize,
    /// Share of them usable on the reference and the newest date.
    pub usable_share: f64,
    /// Share of usable pixels changed at detection (when the detection
    /// image was readable).
    pub changed_then_share: Option<f64>,
    /// Share of usable pixels still changed against the reference now.
    pub changed_now_share: f64,
    /// Share of the pixels changed at detection (all usable pixels when the
    /// detection image is missing) that are no longer changed.
    pub restored_share: f64,
    /// Mean spectral distance (reflectance, Euclidean over bands) to the
    /// reference at detection.
    pub distance_then: Option<f64>,
    /// Mean spectral distance to the reference now.
    pub distance_now: f64,
    /// Majority land cover on the reference date, at detection, now.
    pub land_cover: [String; 3],
    /// The verdict.
    pub verdict: Verdict,
}

fn lc_name(c: u8) -> &'static str {
    match c {
        landcover::WATER => "water",
        landcover::VEG => "vegetation",
        landcover::BARE => "bare",
        landcover::BUILT => "built",
        landcover::CLOUD => "cloud",
        landcover::SHADOW => "shadow",
        _ => "nodata",
    }
}

fn majority(lc: ArrayView2<u8>, inside: &[(usize, usize)]) -> String {
    if inside.is_empty() {
        return "-".into();
    }
    let mut n = [0usize; 8];
    for &(r, c) in inside {
        n[(lc[[r, c]] as usize).min(7)] += 1;
    }
    let best = (0..8)
        .max_by_key(|&i| (n[i], std::cmp::Reverse(i)))
        .unwrap_or(0);
    lc_name(best as u8).to_string()
}

fn mean_distance(before: ArrayView3<f32>, after: ArrayView3<f32>, px: &[(usize, usize)]) -> f64 {
    if px.is_empty() {
        return 0.0;
    }
    let nb = before.dim().0;
    let sum: f64 = px
        .iter()
        .map(|&(r, c)| {
            (0..nb)
                .map(|b| {
                    let d = (after[[b, r, c]] - before[[b, r, c]]) as f64;
                    d * d
                })
                .sum::<f64>()
                .sqrt()
        })
        .sum();
    sum / px.len() as f64
}

fn round(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// Measures one site: `inside` is the polygon as a window mask whose first
/// pixel is (`r0`, `c0`) of the tile.
pub fn measure(
    before: ArrayView3<f32>,
    now: &Comparison,
    then: Option<&Comparison>,
    (r0, c0, inside): (usize, usize, ArrayView2<bool>),
) -> SiteMeasure {
    let all: Vec<(usize, usize)> = inside
        .indexed_iter()
        .filter(|(_, &v)| v)
        .map(|((r, c), _)| (r + r0, c + c0))
        .collect();
    let usable: Vec<(usize, usize)> = all
        .iter()
        .copied()
        .filter(|&p| now.usable[p] && then.map_or(true, |t| t.usable[p]))
        .collect();
    let n = usable.len();
    let share = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    let now_changed = usable.iter().filter(|&&p| now.changed[p]).count();
    let (changed_then, restored) = match then {
        Some(t) => {
            let base: Vec<&(usize, usize)> = usable.iter().filter(|&&p| t.changed[p]).collect();
            let back = base.iter().filter(|&&&p| !now.changed[p]).count();
            let restored = if base.is_empty() {
                1.0 - share(now_changed)
            } else {
                back as f64 / base.len() as f64
            };
            (Some(share(base.len())), restored)
        }
        None => (None, 1.0 - share(now_changed)),
    };
    let usable_share = if all.is_empty() {
        0.0
    } else {
        n as f64 / all.len() as f64
    };
    let verdict = if usable_share < MIN_USABLE_SHARE || n == 0 {
        Verdict::Inconclusive
    } else if restored >= MIN_RESTORED_SHARE {
        Verdict::Verified
    } else {
        Verdict::Failed
    };
    SiteMeasure {
        pixels: all.len(),
        usable_share: round(usable_share),
        changed_then_share: changed_then.map(round),
        changed_now_share: round(share(now_changed)),
        restored_share: round(restored),
        distance_then: then.map(|t| round(mean_distance(before, t.after.view(), &usable))),
        distance_now: round(mean_distance(before, now.after.view(), &usable)),
        land_cover: [
            majority(now.lc_before.view(), &usable),
            then.map_or_else(|| "-".to_string(), |t| majority(t.lc_after.view(), &usable)),
            majority(now.lc_after.view(), &usable),
        ],
        verdict,
    }
}
