//! Validated pipeline settings: built-in defaults, overridden by a TOML file
//! (`--config`) and command-line flags. Every threshold lives here.

use crate::error::{Error, Result};
use crate::rivers::WidthDefaults;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// All pipeline settings. See the README's configuration table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Default management-zone half-width for segments without `corridor_m`, metres.
    pub corridor_m: f64,
    /// Default flood-channel half-width for segments without `channel_m`, metres.
    pub channel_m: f64,
    /// Minimum mapping unit: polygon area, m².
    pub min_area_m2: f64,
    /// Minimum mapping unit: pixel count.
    pub min_pixels: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { corridor_m: 500.0, channel_m: 200.0, min_area_m2: 100.0, min_pixels: 4 }
    }
}

impl Config {
    /// Reads a TOML file over the defaults.
    ///
    /// # Errors
    /// [`Error::Config`] naming the file and the bad key or value.
    pub fn from_toml(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let c: Config = toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        c.check()?;
        Ok(c)
    }

    /// Checks ranges.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad value.
    pub fn check(&self) -> Result<()> {
        let pos = [("corridor_m", self.corridor_m), ("channel_m", self.channel_m), ("min_area_m2", self.min_area_m2)];
        for (k, v) in pos {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::Config(format!("{k} = {v} must be a finite non-negative number")));
            }
        }
        if self.channel_m > self.corridor_m {
            return Err(Error::Config("channel_m must not exceed corridor_m".into()));
        }
        Ok(())
    }

    /// Width defaults for loading river segments.
    pub fn widths(&self) -> WidthDefaults {
        WidthDefaults { corridor_m: self.corridor_m, channel_m: self.channel_m }
    }
}
