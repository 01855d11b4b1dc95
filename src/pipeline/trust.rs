//! What to distrust in a tile's result, said in its report instead of
//! passed over: a normalisation that could not be fitted or whose gains are
//! implausible, and a result that flags far more than real scenes change.

use crate::domain::config::{Config, Method};
use crate::kernels::normalize::{self, Fit};

/// Notes on the radiometric normalisation.
pub fn normalisation(fit: &Fit, cfg: &Config) -> Vec<String> {
    if cfg.method != Method::Rules || !cfg.normalize {
        return Vec::new();
    }
    if fit.samples == 0 {
        return vec![
            "UNTRUSTED radiometry: too few usable pixels to fit the normalisation; the later date was compared as it is".into(),
        ];
    }
    let mut out: Vec<String> = fit
        .rejected
        .iter()
        .map(|&(b, g)| {
            let why = if g.is_nan() {
                "the unchanged pixels have no spread to fit".to_string()
            } else {
                format!("the fitted gain {g:.2} is implausible (the residual fit accepts 0.5–2, IR-MAD 0.1–10)")
            };
            format!(
                "UNTRUSTED radiometry: band {} left unnormalised: {why}",
                b + 1
            )
        })
        .collect();
    out.extend(fit.weak.iter().map(|&(b, r)| {
        format!(
            "UNTRUSTED radiometry: band {}: its unchanged pixels correlate at r = {r:.2} between the dates (below {}), so its mean and spread were matched instead of fitting a line",
            b + 1,
            normalize::MIN_CORRELATION
        )
    }));
    if !fit.irmad_weak.is_empty() {
        out.push(format!(
            "UNTRUSTED radiometry: the residual fit's gains left {}–{}, but over IR-MAD's unchanged pixels {} (below {}): a season rather than a sensor change, so the residual fit was kept",
            cfg.trust_gain_range[0],
            cfg.trust_gain_range[1],
            band_values(&fit.irmad_weak, "r ="),
            normalize::MIN_CORRELATION
        ));
    }
    if let Some(q) = &fit.quality {
        if !q.replaced.is_empty() {
            let [lo, hi] = cfg.trust_gain_range;
            out.push(format!(
                "radiometry: the residual fit gave {}, outside {lo}–{hi} (a sensor change?); IR-MAD chose the unchanged pixels instead, which no gain or offset between the dates can mislead",
                band_values(&q.replaced, "gain")
            ));
        }
        if !q.irmad {
            out.push(
                "UNTRUSTED radiometry: IR-MAD could not separate changed from unchanged pixels (singular band statistics); the bands were fitted on every sample pixel, change included".into(),
            );
        } else if !q.converged {
            out.push(format!(
                "radiometry: IR-MAD had not settled after {} iterations; the unchanged pixels the fit used may include change",
                q.iterations
            ));
        }
    }
    let [lo, hi] = cfg.trust_gain_range;
    let odd: Vec<String> = fit
        .gain
        .iter()
        .enumerate()
        .filter(|(_, &g)| g < lo || g > hi)
        .map(|(b, g)| format!("band {} gain {g:.2}", b + 1))
        .collect();
    if !odd.is_empty() {
        out.push(format!(
            "UNTRUSTED radiometry: normalisation {} outside {lo}–{hi} (sensor change, thick haze, or wrong scale/offset for a date)",
            odd.join(", ")
        ));
    }
    out
}

/// "band 2 gain 0.45, band 4 gain 0.61": per-band values, 1-based.
fn band_values(v: &[(usize, f64)], what: &str) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|(b, x)| format!("band {} {what} {x:.2}", b + 1))
        .collect();
    parts.join(", ")
}

/// A note when the reported pixels are an implausible share of the usable
/// zone.
pub fn flagged_share(reported_px: usize, zone_usable_px: usize, cfg: &Config) -> Option<String> {
    let share = reported_px as f64 / zone_usable_px.max(1) as f64;
    (share > cfg.trust_max_flagged_share).then(|| {
        format!(
            "UNTRUSTED result: {:.1} % of the usable zone reported (more than {:.0} %); real scenes change far less, so check the radiometry and masks",
            share * 100.0,
            cfg.trust_max_flagged_share * 100.0
        )
    })
}

/// A note on the flagged regions over `max_object_px` (pixel counts, any
/// order), which were not reported.
pub fn too_large(px: &[usize], pixel_area_m2: f64, cfg: &Config) -> Option<String> {
    if px.is_empty() {
        return None;
    }
    let mut px = px.to_vec();
    px.sort_unstable_by(|a, b| b.cmp(a));
    let sizes: Vec<String> = px
        .iter()
        .map(|&n| format!("{n} px, {:.2} km²", n as f64 * pixel_area_m2 / 1e6))
        .collect();
    Some(format!(
        "UNTRUSTED result: {} flagged region(s) larger than max_object_px = {} were not reported ({}): no encroachment is that large; check the radiometry, the masks and the change threshold",
        px.len(),
        cfg.max_object_px,
        sizes.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implausible_gains_and_shares_are_said() {
        let cfg = Config::default();
        let ok = Fit {
            gain: vec![0.95, 1.05, 1.0, 0.9, 1.1],
            offset: vec![0.0; 5],
            samples: 5000,
            rejected: Vec::new(),
            weak: Vec::new(),
            irmad_weak: Vec::new(),
            quality: None,
        };
        assert!(normalisation(&ok, &cfg).is_empty());
        let odd = Fit {
            gain: vec![0.5, 1.0, 1.0, 1.0, 1.6],
            ..ok.clone()
        };
        let n = normalisation(&odd, &cfg);
        assert!(
            n[0].contains("band 1 gain 0.50") && n[0].contains("band 5 gain 1.60"),
            "{n:?}"
        );
        // A season kept on the residual fit says which band and why.
        let season = Fit {
            gain: vec![0.95, 1.05, 1.0, 0.5, 1.1],
            irmad_weak: vec![(3, 0.36)],
            ..ok.clone()
        };
        let n = normalisation(&season, &cfg);
        assert!(
            n.iter()
                .any(|m| m.contains("band 4 r = 0.36") && m.contains("residual fit was kept")),
            "{n:?}"
        );
        assert!(normalisation(&Fit::identity(5), &cfg)[0].contains("too few"));
        assert!(flagged_share(10, 100, &cfg).is_none());
        assert!(too_large(&[], 100.0, &cfg).is_none());
        let t = too_large(&[2_000_000, 3_000_000], 100.0, &cfg).unwrap();
        assert!(
            t.contains("2 flagged region(s)") && t.contains("(3000000 px, 300.00 km²; 2000000 px"),
            "{t}"
        );
        assert!(flagged_share(20, 100, &cfg).is_some_and(|s| s.contains("20.0 %")));
    }
}
