//! The fitted models that score and classify change components.
//!
//! Both are logistic models over per-component statistics (see
//! `features.rs`): a binary one for the confidence that a component is a true
//! encroachment, and a four-class (softmax) one for its class. Their
//! coefficients live in `model_coef.rs`, written by `scripts/fit_models.py`
//! from the components the detector finds in synth scenes whose seeds are
//! listed there; seeds 101–105 are never used for fitting and serve as the
//! check. There is one pair of models per band layout: with SWIR
//! (Sentinel-2, Landsat) and four-band (GF).

#[rustfmt::skip]
mod coef {
    include!("model_coef.rs");
}

use super::features::N_CONF;
use crate::domain::class::ChangeClass;

/// Probability that a component is a true change.
pub fn confidence(x: &[f64; N_CONF], swir: bool) -> f64 {
    let (b, w) = if swir {
        (coef::CONF_BIAS_SWIR, &coef::CONF_W_SWIR)
    } else {
        (coef::CONF_BIAS_4, &coef::CONF_W_4)
    };
    let z = b + x.iter().zip(w.iter()).map(|(x, w)| x * w).sum::<f64>();
    1.0 / (1.0 + (-z).exp())
}

/// The most probable class.
pub fn class(x: &[f64], swir: bool) -> ChangeClass {
    let (bias, w): ([f64; 4], &[[f64; 4]]) = if swir {
        (coef::CLASS_BIAS_SWIR, &coef::CLASS_W_SWIR)
    } else {
        (coef::CLASS_BIAS_4, &coef::CLASS_W_4)
    };
    let scores: Vec<f64> = (0..4)
        .map(|k| bias[k] + x.iter().zip(w).map(|(x, w)| x * w[k]).sum::<f64>())
        .collect();
    // First maximum: ties resolve to the lower class code, deterministically.
    let best = (0..4).fold(0, |best, k| if scores[k] > scores[best] { k } else { best });
    ChangeClass::ALL[best]
}
