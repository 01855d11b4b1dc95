//! From-to rules: which changed pixels are candidate encroachments and which
//! are routine (seasonal change, the water level moving), then clean-up of
//! the candidate mask. Every rule here is a claim about real imagery; the
//! reason for each is written next to it.

use super::blocks::Magnitude;
use super::cover::Cover;
use crate::domain::config::{Config, Method};
use crate::kernels::label::label;
use crate::kernels::landcover::{BARE, BUILT, VEG, WATER};
use crate::kernels::morphology::{close, dilate, erode, open, reconstruct, Shape};
use crate::kernels::threshold::hysteresis;
use ndarray::{Array2, ArrayView2, Zip};

/// Codes of the `suppressed` raster: why a changed pixel inside the zone was
/// or was not kept as an encroachment candidate.
pub mod reason {
    // 0: not changed, or outside the zone.
    /// Kept: a candidate encroachment.
    pub const CANDIDATE: u8 = 1;
    /// Water-level change along the earlier shoreline, or land drowned by
    /// the risen water (`rising_water_px`) and wet ground next to it (kept
    /// only where it touches a candidate within `shoreline_px + 1` pixels).
    pub const SHORELINE: u8 = 2;
    /// Land turned (or stayed) vegetated: phenology, crop cycles, regrowth.
    pub const VEGETATION: u8 = 3;
    /// Land turned into dark bare soil: ploughing, moist soil.
    pub const DARK_SOIL: u8 = 4;
    /// Water stayed water: turbidity, sun glint.
    pub const WATER_TO_WATER: u8 = 5;
}

/// Why a change from land cover `b` to `a` (later brightness `br_a`) is
/// routine rather than a change of use: water staying water (turbidity,
/// glint), land turning or staying vegetated (phenology, crop cycles,
/// regrowth), land turning into dark bare soil (ploughing, moist soil).
pub fn seasonal(b: u8, a: u8, br_a: f32, cfg: &Config) -> Option<u8> {
    let wb = b == WATER;
    if wb && a == WATER {
        Some(reason::WATER_TO_WATER)
    } else if !wb && a == VEG {
        Some(reason::VEGETATION)
    } else if a == BARE && !wb && br_a < cfg.dark_soil_brightness {
        Some(reason::DARK_SOIL)
    } else {
        None
    }
}

/// Splits components by the change model's pixel probability
/// (`split_probability`; 0 leaves the mask as it is). In a component with
/// pixels under the cut, those pixels are dropped and each remaining 4-
/// connected piece is kept only when it has a solid core (a pixel whose
/// four neighbours are in the piece; outside the scene counts as inside):
/// a confident site inside a harvested field becomes its own component
/// instead of one whose mean probability is the field's, while the slivers
/// of the field that the model scores high are not reported on their own.
/// Components without such pixels, and components over `max_object_px`
/// (reported as too large whole), are left as they are. The streamed path
/// applies the same rule to each finished component's pixels.
pub fn drop_improbable(mask: &mut Array2<bool>, p: ArrayView2<f32>, cfg: &Config) {
    let cut = cfg.split_probability;
    if cut <= 0.0 {
        return;
    }
    let (orig, comps) = label(mask.view());
    let dropped = Zip::from(mask.view())
        .and(p)
        .map_collect(|&m, &q| m && q < cut);
    // Per component: whether it is split.
    let mut split = vec![false; comps.len() + 1];
    Zip::from(&orig).and(&dropped).for_each(|&l, &d| {
        split[l as usize] |= d;
    });
    for (k, c) in comps.iter().enumerate() {
        split[k + 1] &= c.pixels <= cfg.max_object_px;
    }
    if !split.contains(&true) {
        return;
    }
    let kept = Zip::from(mask.view())
        .and(&orig)
        .and(&dropped)
        .map_collect(|&m, &o, &d| m && !(d && split[o as usize]));
    let core = erode(kept.view(), Shape::Cross, 1);
    let (pieces, pc) = label(kept.view());
    let mut has_core = vec![false; pc.len() + 1];
    Zip::from(&pieces).and(&core).for_each(|&l, &c| {
        has_core[l as usize] |= c;
    });
    Zip::from(mask)
        .and(&orig)
        .and(&pieces)
        .for_each(|m, &o, &k| *m = k > 0 && (!split[o as usize] || has_core[k as usize]));
}

/// Sand taken away: a bright bare surface (bar, beach) turned into water or
/// darker wet ground. The new surface often existed nearby (the bar was wet
/// at its edges, the river is next to it), so what counts there is what
/// vanished.
pub fn sand_removal(m: &mut Magnitude, cv: &Cover, cfg: &Config) {
    let (lc_b, lc_a, ixb, ixa) = (&cv.lc_before, &cv.lc_after, &cv.before, &cv.after);
    Zip::indexed(&mut m.appeared)
        .and(&m.vanished)
        .par_for_each(|(r, c), ap, &va| {
            let (b, a) = (lc_b[[r, c]], lc_a[[r, c]]);
            let bright_bare = (b == BARE || b == BUILT)
                && ixb.ndvi[[r, c]] < 0.2
                && ixb.brightness[[r, c]] > cfg.sand_brightness;
            let darker =
                (a == WATER || a == BARE) && ixa.brightness[[r, c]] < ixb.brightness[[r, c]] - 0.03;
            if bright_bare && darker {
                *ap = ap.max(va);
            }
        });
}

/// The candidate mask and, per pixel, the reason code.
pub struct Candidates {
    /// Candidate encroachment pixels after hysteresis and shoreline
    /// reconstruction, before clean-up.
    pub mask: Array2<bool>,
    /// Reason codes (see [`reason`]); all 0 for the CVA baseline.
    pub why: Array2<u8>,
}

/// Inputs of [`candidates`]: only the layers the rules read, so a streamed
/// scene copies these into the rules' window and not the whole land cover.
pub struct RuleInput<'a> {
    /// Appearance magnitude after [`sand_removal`].
    pub appeared: ArrayView2<'a, f32>,
    /// Adaptive change threshold.
    pub threshold: f32,
    /// Land cover before.
    pub lc_before: ArrayView2<'a, u8>,
    /// Land cover after.
    pub lc_after: ArrayView2<'a, u8>,
    /// Brightness after.
    pub brightness_after: ArrayView2<'a, f32>,
    /// Wet ground after ([`wet_after`]).
    pub wet: ArrayView2<'a, bool>,
    /// Valid on both dates.
    pub valid: ArrayView2<'a, bool>,
    /// Usable (valid and cloud-free) on both dates.
    pub usable: ArrayView2<'a, bool>,
    /// Management zone.
    pub zone: ArrayView2<'a, bool>,
}

impl<'a> RuleInput<'a> {
    /// The rules' layers out of a land cover, its wet-ground layer and the
    /// magnitudes.
    pub fn of(
        cv: &'a Cover,
        wet: &'a Array2<bool>,
        m: &'a Magnitude,
        masks: [ArrayView2<'a, bool>; 3],
        threshold: f32,
    ) -> Self {
        let [valid, usable, zone] = masks;
        RuleInput {
            appeared: m.appeared.view(),
            threshold,
            lc_before: cv.lc_before.view(),
            lc_after: cv.lc_after.view(),
            brightness_after: cv.after.brightness.view(),
            wet: wet.view(),
            valid,
            usable,
            zone,
        }
    }
}

/// Wet ground after: water-saturated sediment absorbs SWIR (MNDWI over
/// `wet_mndwi`); without SWIR, NDWI stays closer to 0 than on dry soil
/// (over `wet_ndwi`).
pub fn wet_after(cv: &Cover, cfg: &Config) -> Array2<bool> {
    match &cv.after.mndwi {
        Some(m) => m.mapv(|v| v > cfg.wet_mndwi),
        None => cv.after.ndwi.mapv(|v| v > cfg.wet_ndwi),
    }
}

/// Candidate encroachments: hysteresis on the appearance magnitude (pixels
/// above `hysteresis × threshold` join an object connected to a pixel above
/// the threshold, so edges blurred by resampling and weakly changed parts of
/// a site are kept), minus routine change for the rules method.
pub fn candidates(x: &RuleInput<'_>, cfg: &Config) -> Candidates {
    let weak = x.threshold * cfg.hysteresis;
    let changed = Zip::from(x.appeared)
        .and(x.usable)
        .map_collect(|&m, &u| u && m > weak);
    let (h, w) = changed.dim();
    let mut why = Array2::<u8>::zeros((h, w));
    let mask = match cfg.method {
        Method::Rules => {
            why = reasons(x, changed.view(), cfg);
            let cand = why.mapv(|k| k == reason::CANDIDATE);
            let core = hysteresis(cand.view(), x.appeared, x.threshold);
            let with_shore = why.mapv(|k| k == reason::CANDIDATE || k == reason::SHORELINE);
            reconstruct(core.view(), with_shore.view(), cfg.shoreline_px + 1)
        }
        Method::CvaOtsu => {
            let cand = Zip::from(&changed).and(x.zone).map_collect(|&c, &z| c && z);
            hysteresis(cand.view(), x.appeared, x.threshold)
        }
    };
    Candidates { mask, why }
}

/// The reason code of every changed pixel in the zone.
fn reasons(x: &RuleInput<'_>, changed: ArrayView2<bool>, cfg: &Config) -> Array2<u8> {
    let (lc_b, lc_a, br_a) = (x.lc_before, x.lc_after, x.brightness_after);
    let wb = lc_b.mapv(|c| c == WATER);
    let land_b = Zip::from(&wb).and(x.valid).map_collect(|&w, &v| v && !w);
    // Within k pixels (8-connected, chessboard distance) of land or of
    // water: k dilations with the 3 × 3 square.
    let sh = cfg.shoreline_px;
    let near_land = dilate(land_b.view(), Shape::Square, sh);
    let near_land_bank = dilate(land_b.view(), Shape::Square, cfg.bank_px);
    // Near the earlier water or the water after joined to it.
    let near_water = dilate(
        risen_water(&wb, lc_a, cfg.rising_water_px).view(),
        Shape::Square,
        sh,
    );
    let mut why = Array2::<u8>::zeros(changed.dim());
    Zip::indexed(&mut why).par_for_each(|(r, c), k| {
        if !changed[[r, c]] || !x.zone[[r, c]] {
            return;
        }
        let (b, a) = (lc_b[[r, c]], lc_a[[r, c]]);
        let (wbb, waa) = (b == WATER, a == WATER);
        // Near the earlier shoreline, water turning into wet bare ground
        // (exposed mud, wet sand) or into bank vegetation, or land turning
        // into water or wet ground, is the water level moving (or the bank
        // seen through residual misregistration), not an encroachment (wet
        // ground: see [`wet_after`]). The same holds next to water that
        // joins the earlier water body: the river rose over its bank.
        let near_shore = if wbb {
            near_land[[r, c]]
        } else {
            near_water[[r, c]]
        };
        // Bank vegetation over earlier water is explained by residual
        // misregistration only right at the bank; further out it is
        // reclaimed land.
        let at_bank = wbb && near_land_bank[[r, c]];
        let (wet, bright) = (x.wet[[r, c]], br_a[[r, c]]);
        *k = if let Some(k) = seasonal(b, a, bright, cfg) {
            k
        } else if (near_shore && (waa || (a == BARE && wet && bright < cfg.built_brightness)))
            || (at_bank && a == VEG)
        {
            reason::SHORELINE
        } else {
            reason::CANDIDATE
        };
    });
    if cfg.compact_shore {
        promote_compact_shore(&mut why, cfg.min_pixels);
    }
    why
}

/// The earlier water with the water after that joins it within `reach`
/// pixels (4-connected, through water after): a river that rose drowns the
/// land along its banks in one piece joined to the channel, while a pit dug
/// or a field flooded apart from it does not join (and a compact pit in the
/// joined band is still promoted, [`promote_compact_shore`]).
fn risen_water(wb: &Array2<bool>, lc_a: ArrayView2<u8>, reach: usize) -> Array2<bool> {
    if reach == 0 {
        return wb.clone();
    }
    let wet = Zip::from(wb)
        .and(lc_a)
        .map_collect(|&w, &a| w || a == WATER);
    reconstruct(wb.view(), wet.view(), reach)
}

/// The largest extent (rows or columns) of a shoreline blob promoted to an
/// object: 64 px (640 m at 10 m) is beyond a pond fill or a pit, and a bound
/// keeps the decision local (exact in row blocks with a halo).
pub const COMPACT_SHORE_MAX_PX: usize = 32;

/// A water-level change is a long thin band along the shore; a compact blob
/// in that band (a small pond fill, a pit, at most
/// [`COMPACT_SHORE_MAX_PX`] across) is an object.
fn promote_compact_shore(why: &mut Array2<u8>, min_pixels: usize) {
    let shore = why.mapv(|k| k == reason::SHORELINE);
    let (lab, comps) = label(shore.view());
    let mut promote = vec![false; comps.len() + 1];
    for c in &comps {
        let (bh, bw) = (c.r1 - c.r0, c.c1 - c.c0);
        let compact = bh.max(bw) <= 2 * bh.min(bw)
            && bh.max(bw) <= COMPACT_SHORE_MAX_PX
            && c.pixels * 2 >= bh * bw
            && c.pixels >= min_pixels;
        promote[c.label as usize] = compact;
    }
    Zip::from(why).and(&lab).for_each(|k, &l| {
        if l != 0 && promote[l as usize] {
            *k = reason::CANDIDATE;
        }
    });
}

/// Clean-up: closing (and opening, when configured) with the 3 × 3 cross,
/// then only what is in the zone and usable.
pub fn clean(
    candidates: ArrayView2<bool>,
    zone: ArrayView2<bool>,
    usable: ArrayView2<bool>,
    cfg: &Config,
) -> Array2<bool> {
    let mut mask = close(candidates, Shape::Cross, cfg.close_iterations);
    if cfg.open_iterations > 0 {
        mask = open(mask.view(), Shape::Cross, cfg.open_iterations);
    }
    Zip::from(&mut mask)
        .and(zone)
        .and(usable)
        .for_each(|m, &z, &u| *m = *m && z && u);
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confident_site_is_split_from_its_field_and_the_field_slivers_go() {
        // A field (rows 2-17, cols 2-29, p 0.1) holding a 5 x 5 site
        // (p 0.9) and a one-pixel line the model scores 0.8; apart from it,
        // a thin strip with nothing under the cut (p 0.6: left as it is,
        // sliver or not).
        let (h, w) = (20, 40);
        let mut mask = Array2::from_elem((h, w), false);
        let mut p = Array2::<f32>::zeros((h, w));
        for r in 2..18 {
            for c in 2..30 {
                mask[[r, c]] = true;
                p[[r, c]] = 0.1;
            }
        }
        for r in 5..10 {
            for c in 5..10 {
                p[[r, c]] = 0.9;
            }
        }
        for c in 15..28 {
            p[[14, c]] = 0.8;
        }
        for r in 2..18 {
            mask[[r, 35]] = true;
            p[[r, 35]] = 0.6;
        }
        let off = Config {
            split_probability: 0.0,
            ..Config::default()
        };
        let mut same = mask.clone();
        drop_improbable(&mut same, p.view(), &off);
        assert_eq!(same, mask, "split_probability 0 keeps every pixel");
        let cfg = Config::default();
        assert_eq!(cfg.split_probability, 0.5);
        drop_improbable(&mut mask, p.view(), &cfg);
        let (_, comps) = label(mask.view());
        let sizes: Vec<usize> = comps.iter().map(|c| c.pixels).collect();
        assert_eq!(sizes, [16, 25], "the strip and the site, not the sliver");
        assert!(!mask[[14, 20]]);
    }

    /// A river (rows 0–9) that rose by 6 px along the whole tile, beyond
    /// the 3 px shoreline band, and a field flooded apart from it.
    fn risen_scene() -> (Array2<u8>, Array2<u8>) {
        let (h, w) = (60, 80);
        let before = Array2::from_shape_fn((h, w), |(r, _)| if r < 10 { WATER } else { VEG });
        let after = Array2::from_shape_fn((h, w), |(r, c)| {
            let pond = (40..48).contains(&r) && (30..38).contains(&c);
            if r < 16 || pond {
                WATER
            } else {
                VEG
            }
        });
        (before, after)
    }

    fn why_with(reach: usize) -> Array2<u8> {
        let (before, after) = risen_scene();
        let dim = before.dim();
        let appeared = Array2::from_elem(dim, 1.0f32);
        let bright = Array2::from_elem(dim, 0.05f32);
        let (no, yes) = (Array2::from_elem(dim, false), Array2::from_elem(dim, true));
        let changed = Zip::from(&before).and(&after).map_collect(|&b, &a| b != a);
        let x = RuleInput {
            appeared: appeared.view(),
            threshold: 0.05,
            lc_before: before.view(),
            lc_after: after.view(),
            brightness_after: bright.view(),
            wet: no.view(),
            valid: yes.view(),
            usable: yes.view(),
            zone: yes.view(),
        };
        let cfg = Config {
            rising_water_px: reach,
            ..Config::default()
        };
        reasons(&x, changed.view(), &cfg)
    }

    #[test]
    fn risen_river_is_the_water_level_and_a_flooded_field_is_not() {
        let why = why_with(10);
        // The drowned bank, 6 px deep along the whole river: water level.
        for r in 10..16 {
            assert!(
                why.row(r).iter().all(|&k| k == reason::SHORELINE),
                "row {r}"
            );
        }
        // The pond apart from the river stays a candidate (a pit, a pond).
        assert_eq!(why[[44, 34]], reason::CANDIDATE);
        // Without the rule only the 3 px band is explained.
        let old = why_with(0);
        assert_eq!(old[[12, 40]], reason::SHORELINE);
        assert_eq!(old[[14, 40]], reason::CANDIDATE);
    }
}
