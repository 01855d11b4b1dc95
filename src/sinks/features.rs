//! The feature tap of `detect --features FILE.jsonl`: one JSON line per
//! reported component with the inputs of both models, in model order. The
//! first line names the inputs (`{"conf_names": [...], "class_names": {...}}`);
//! `scripts/fit_models.py` reads this file.

use crate::error::Result;
use crate::pipeline::taps::{ComponentRecord, Tap};
use std::path::PathBuf;

/// Collects component records and writes them when finished.
pub struct FeatureWriter {
    path: PathBuf,
    lines: Vec<String>,
}

impl FeatureWriter {
    /// A writer for `path` (written by [`FeatureWriter::finish`]).
    pub fn new(path: PathBuf) -> Self {
        let header = serde_json::json!({
            "conf_names": ComponentRecord::conf_names(),
            "class_names": {
                "swir": ComponentRecord::class_names(true),
                "four_band": ComponentRecord::class_names(false),
            },
        });
        FeatureWriter {
            path,
            lines: vec![header.to_string()],
        }
    }

    /// Writes the file atomically.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn finish(self) -> Result<()> {
        let mut text = self.lines.join("\n");
        text.push('\n');
        crate::io::write_atomic(&self.path, text.as_bytes())
    }
}

impl Tap for FeatureWriter {
    /// Lines come in label order only from the whole-scene path.
    fn wants_scene(&self) -> bool {
        true
    }
    fn component(&mut self, c: &ComponentRecord) {
        // A record of strings and finite numbers always serialises; a
        // failure would still leave a line naming the component.
        let line = serde_json::to_string(c).unwrap_or_else(|e| {
            serde_json::json!({"id": c.id, "error": e.to_string()}).to_string()
        });
        self.lines.push(line);
    }
}
