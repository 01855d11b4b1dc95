//! The fitted models that score and classify change components.
//!
//! Both are logistic models over per-component statistics (see
//! `detect.rs`): a binary one for the confidence that a component is a true
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

/// Names of the confidence-model inputs, in order.
pub const CONF_FEATURES: [&str; N_CONF] = [
    "log mean magnitude / threshold",
    "log max magnitude / threshold",
    "log pixels / 4",
    "solidity",
    "local contrast",
    "water before",
    "vegetation before",
    "brightness after",
    "rectangularity",
    "water after",
    "bare after",
    "built after",
    "texture",
    "distance to cloud / 30",
    "near cloud",
    "vanished magnitude / threshold",
    "NDVI change",
    "NDWI change",
    "blue change",
    "green change",
    "red change",
    "NIR change",
    "|blue change - red change|",
];

/// Number of confidence-model inputs.
pub const N_CONF: usize = 23;

/// Names of the class-model inputs, in order; the last four only with SWIR.
pub const CLASS_FEATURES: [&str; 29] = [
    "water before",
    "water after",
    "vegetation before",
    "bare after",
    "built after",
    "brightness after",
    "brightness before",
    "texture",
    "local contrast",
    "solidity",
    "rectangularity",
    "NDVI after",
    "NDVI before",
    "NDWI after",
    "NDWI before",
    "red / blue after",
    "log pixels / 4",
    "blue after",
    "green after",
    "red after",
    "NIR after",
    "blue before",
    "green before",
    "red before",
    "NIR before",
    "SWIR after",
    "SWIR before",
    "NDBI after",
    "NDBI before",
];

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

/// Index into [`crate::detect::CLASSES`] of the most probable class.
pub fn class(x: &[f64], swir: bool) -> usize {
    let (bias, w): ([f64; 4], &[[f64; 4]]) = if swir {
        (coef::CLASS_BIAS_SWIR, &coef::CLASS_W_SWIR)
    } else {
        (coef::CLASS_BIAS_4, &coef::CLASS_W_4)
    };
    let scores: Vec<f64> = (0..4)
        .map(|k| bias[k] + x.iter().zip(w).map(|(x, w)| x * w[k]).sum::<f64>())
        .collect();
    // First maximum: ties resolve to the lower class code, deterministically.
    (0..4).fold(0, |best, k| if scores[k] > scores[best] { k } else { best })
}
