//! The fitted models that score and classify change components.
//!
//! Both are logistic models over per-component statistics (see
//! `features.rs`): a binary one for the score that a component is a true
//! encroachment, and a four-class (softmax) one for its class. Their
//! coefficients live in `model_coef.rs`, written by `scripts/fit_models.py`
//! from the components the detector finds in synth scenes whose seeds are
//! listed there; seeds 101–105 are never used for fitting and serve as the
//! check. There is one pair of models per band layout: with SWIR
//! (Sentinel-2, Landsat) and four-band (GF).
//!
//! The reported confidence is not that score alone: [`change_model`] (a
//! per-pixel tree ensemble fitted on real OSCD pairs and synth scenes
//! together) carries a stack that combines the score with the component's
//! mean change probability, fitted on real and synthetic components.

#[rustfmt::skip]
mod coef {
    include!("model_coef.rs");
}

use super::features::N_CONF;
use crate::domain::class::ChangeClass;
use crate::kernels::changeprob::TreeModel;
use std::sync::OnceLock;

/// The built-in per-pixel change model for a pair with `bands` bands: the
/// SWIR model from 5 bands on, else the VNIR one. Both are fitted by
/// `scripts/fit_change_model.py` on the OSCD dev cities (real Sentinel-2)
/// and synth scenes together; their provenance is in the files.
pub fn change_model(bands: usize) -> &'static TreeModel {
    static SWIR: OnceLock<TreeModel> = OnceLock::new();
    static VNIR: OnceLock<TreeModel> = OnceLock::new();
    let parse = |s: &str| -> TreeModel {
        // Compiled-in JSON; `built_in_change_models_parse` checks it.
        serde_json::from_str(s).expect("built-in change model is valid JSON")
    };
    if bands > 4 {
        SWIR.get_or_init(|| parse(include_str!("../../models/change-swir.json")))
    } else {
        VNIR.get_or_init(|| parse(include_str!("../../models/change-vnir.json")))
    }
}

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

#[cfg(test)]
mod change_model_tests {
    #[test]
    fn built_in_change_models_parse() {
        for bands in [4, 5] {
            super::change_model(bands).check(bands).unwrap();
        }
    }
}
