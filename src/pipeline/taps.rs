//! Taps: observers of the pipeline's stages. A tap sees what a stage
//! produced (stage times, every reported component with its model inputs,
//! the scene's layers at the end) and never changes what is computed; the
//! raster and feature writers in `sinks` are taps.

use super::cover::Cover;
use super::features::{class_feature_names, CONF_FEATURES};
use super::SceneInfo;
use crate::domain::class::ChangeClass;
use crate::domain::config::Config;
use crate::domain::grid::Grid;
use crate::error::Result;
use ndarray::{Array2, ArrayView2, ArrayView3};
use serde::Serialize;

/// One reported component with the inputs the models read, in model order
/// (names: [`ComponentRecord::conf_names`], [`ComponentRecord::class_names`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentRecord {
    /// The detection id it became.
    pub id: String,
    /// Tile.
    pub tile: String,
    /// Pixels.
    pub pixels: usize,
    /// Predicted class.
    pub class: ChangeClass,
    /// Predicted confidence (unrounded).
    pub confidence: f64,
    /// The component model's score (an input of the confidence).
    pub component_score: f64,
    /// Mean change-model probability over the component (0 without one).
    pub mean_probability: f64,
    /// Confidence-model inputs.
    pub conf_features: Vec<f64>,
    /// Class-model inputs.
    pub class_features: Vec<f64>,
}

impl ComponentRecord {
    /// Names of the confidence-model inputs, in order.
    pub fn conf_names() -> Vec<&'static str> {
        CONF_FEATURES.iter().map(|(n, _)| *n).collect()
    }
    /// Names of the class-model inputs, in order, for a band layout.
    pub fn class_names(swir: bool) -> Vec<&'static str> {
        class_feature_names(swir)
    }
}

/// The layers of a scene once its objects are known.
pub struct SceneLayers<'a> {
    /// Tile id and dates.
    pub info: &'a SceneInfo,
    /// Grid.
    pub grid: &'a Grid,
    /// Earlier reflectance.
    pub before: ArrayView3<'a, f32>,
    /// Later reflectance, normalised and shifted.
    pub after: ArrayView3<'a, f32>,
    /// Usable on both dates.
    pub usable: ArrayView2<'a, bool>,
    /// Management zone.
    pub zone: ArrayView2<'a, bool>,
    /// Flood channel.
    pub channel: ArrayView2<'a, bool>,
    /// Indices and land cover of both dates.
    pub cover: &'a Cover,
    /// Change threshold.
    pub threshold: f32,
    /// Reason codes (see `rules::reason`).
    pub why: ArrayView2<'a, u8>,
    /// Component labels of the cleaned mask.
    pub labels: &'a Array2<u32>,
    /// Per label: reported (class code, confidence), (0, 0) otherwise.
    pub reported: &'a [(u8, f32)],
    /// The change model's per-pixel probability on the cleaned mask (0
    /// elsewhere); `None` without a model (`cva-otsu`).
    pub probability: Option<&'a Array2<f32>>,
    /// Settings.
    pub config: &'a Config,
}

/// An observer of the pipeline. Every method has a no-op default.
pub trait Tap {
    /// A stage finished after `seconds` of wall time.
    fn stage(&mut self, _name: &str, _seconds: f64) {}
    /// A component was reported.
    fn component(&mut self, _c: &ComponentRecord) {}
    /// The scene is done.
    ///
    /// # Errors
    /// Whatever the tap's own output fails with.
    fn scene(&mut self, _s: &SceneLayers<'_>) -> Result<()> {
        Ok(())
    }
    /// Whether this tap needs [`Tap::scene`] (whole-scene layers): such a
    /// run reads the scene whole instead of streaming it.
    fn wants_scene(&self) -> bool {
        false
    }
}

/// The tap that observes nothing.
pub struct NoTap;

impl Tap for NoTap {}

/// Collects stage times.
#[derive(Debug, Default, Clone)]
pub struct StageTimes(pub Vec<(String, f64)>);

impl Tap for StageTimes {
    fn stage(&mut self, name: &str, seconds: f64) {
        self.0.push((name.to_string(), seconds));
    }
}

/// Several taps as one.
pub struct Taps<'a>(pub Vec<&'a mut dyn Tap>);

impl Tap for Taps<'_> {
    fn stage(&mut self, name: &str, seconds: f64) {
        self.0.iter_mut().for_each(|t| t.stage(name, seconds));
    }
    fn component(&mut self, c: &ComponentRecord) {
        self.0.iter_mut().for_each(|t| t.component(c));
    }
    fn scene(&mut self, s: &SceneLayers<'_>) -> Result<()> {
        self.0.iter_mut().try_for_each(|t| t.scene(s))
    }
    fn wants_scene(&self) -> bool {
        self.0.iter().any(|t| t.wants_scene())
    }
}
