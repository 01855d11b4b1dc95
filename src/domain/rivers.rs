//! River segments: GeoJSON LineStrings in WGS84, each owned by one chief and
//! carrying the half-widths of its management zone and flood channel.

use geo::MultiLineString;
use serde_json::Value;

/// One river segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Unique id.
    pub id: String,
    /// River name.
    pub river: String,
    /// Lowest-level chief directly responsible.
    pub chief_id: String,
    /// Half-width of the management zone (河道管理范围), metres.
    pub corridor_m: f64,
    /// Half-width of the flood channel (行洪通道), metres.
    pub channel_m: f64,
    /// Centreline, longitude/latitude.
    pub lines: MultiLineString<f64>,
}

/// Default half-widths used when a segment does not give its own.
#[derive(Debug, Clone, Copy)]
pub struct WidthDefaults {
    /// Default `corridor_m`.
    pub corridor_m: f64,
    /// Default `channel_m`.
    pub channel_m: f64,
}

impl Default for WidthDefaults {
    fn default() -> Self {
        WidthDefaults {
            corridor_m: 500.0,
            channel_m: 200.0,
        }
    }
}

/// A width property: absent or null gives `default`; otherwise a positive
/// finite number.
///
/// # Errors
/// A message naming the key.
pub fn width(props: &Value, key: &str, default: f64) -> std::result::Result<f64, String> {
    match props.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => {
            let x = v.as_f64().ok_or_else(|| format!("{key} is not a number"))?;
            if !x.is_finite() || x <= 0.0 {
                Err(format!("{key} = {x} must be a positive finite number"))
            } else {
                Ok(x)
            }
        }
    }
}

/// A segment projected into a tile's CRS.
#[derive(Debug, Clone)]
pub struct Projected {
    /// Index into the segment list it came from.
    pub index: usize,
    /// Centreline in the tile CRS.
    pub lines: MultiLineString<f64>,
    /// Management-zone half-width, metres.
    pub corridor_m: f64,
    /// Flood-channel half-width, metres.
    pub channel_m: f64,
}
