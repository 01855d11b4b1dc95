//! River segments: GeoJSON LineStrings in WGS84, each owned by one chief and
//! carrying the half-widths of its management zone and flood channel.

use crate::error::{Error, Result};
use geo::{Coord, LineString, MultiLineString};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

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

fn parse_line(v: &Value) -> std::result::Result<LineString<f64>, String> {
    let pts = v.as_array().ok_or("coordinates are not an array")?;
    let mut out = Vec::with_capacity(pts.len());
    for p in pts {
        let a = p.as_array().ok_or("a position is not an array")?;
        if a.len() < 2 {
            return Err("a position has fewer than 2 numbers".into());
        }
        let x = a[0].as_f64().ok_or("a coordinate is not a number")?;
        let y = a[1].as_f64().ok_or("a coordinate is not a number")?;
        if !x.is_finite()
            || !y.is_finite()
            || !(-180.0..=180.0).contains(&x)
            || !(-90.0..=90.0).contains(&y)
        {
            return Err(format!(
                "position [{x}, {y}] is not a WGS84 longitude/latitude"
            ));
        }
        out.push(Coord { x, y });
    }
    if out.len() < 2 {
        return Err("a LineString needs at least 2 positions".into());
    }
    Ok(LineString(out))
}

/// Parses a GeoJSON geometry object that must be a LineString or MultiLineString.
pub(crate) fn parse_lines(g: &Value) -> std::result::Result<MultiLineString<f64>, String> {
    let ty = g
        .get("type")
        .and_then(Value::as_str)
        .ok_or("geometry has no type")?;
    let coords = g.get("coordinates").ok_or("geometry has no coordinates")?;
    match ty {
        "LineString" => Ok(MultiLineString(vec![parse_line(coords)?])),
        "MultiLineString" => {
            let parts = coords.as_array().ok_or("coordinates are not an array")?;
            if parts.is_empty() {
                return Err("empty MultiLineString".into());
            }
            Ok(MultiLineString(
                parts
                    .iter()
                    .map(parse_line)
                    .collect::<std::result::Result<_, _>>()?,
            ))
        }
        other => Err(format!(
            "geometry is {other}, expected LineString or MultiLineString"
        )),
    }
}

fn width(props: &Value, key: &str, default: f64) -> std::result::Result<f64, String> {
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

/// Reads and validates a river-segment FeatureCollection.
///
/// # Errors
/// [`Error::Json`] for malformed JSON; [`Error::Many`] listing every broken
/// feature by index and `segment_id` (missing properties, bad geometry,
/// non-finite or inverted widths, duplicate ids, empty collection).
pub fn load(path: &Path, defaults: WidthDefaults) -> Result<Vec<Segment>> {
    let v: Value = crate::io::read_json(path)?;
    let f = path.display();
    if v.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
        return Err(Error::invalid(path, "not a GeoJSON FeatureCollection"));
    }
    let feats = v
        .get("features")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid(path, "FeatureCollection has no features array"))?;
    if feats.is_empty() {
        return Err(Error::invalid(
            path,
            "FeatureCollection has no river segments",
        ));
    }
    let mut problems = Vec::new();
    let mut out = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, feat) in feats.iter().enumerate() {
        let props = feat.get("properties").cloned().unwrap_or(Value::Null);
        let sid = props
            .get("segment_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let who = format!(
            "{f}: feature #{i} ({})",
            sid.as_deref().unwrap_or("no segment_id")
        );
        let mut bad = |m: String| problems.push(format!("{who}: {m}"));
        let Some(id) = sid.filter(|s| !s.is_empty()) else {
            bad("missing string property segment_id".into());
            continue;
        };
        let river = props.get("river").and_then(Value::as_str);
        let chief = props
            .get("chief_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        if river.is_none() {
            bad("missing string property river".into());
        }
        if chief.is_none() {
            bad("missing string property chief_id".into());
        }
        let corridor = width(&props, "corridor_m", defaults.corridor_m);
        let channel = width(&props, "channel_m", defaults.channel_m);
        let geom = feat
            .get("geometry")
            .filter(|g| !g.is_null())
            .ok_or_else(|| "feature has no geometry".to_string())
            .and_then(parse_lines);
        if !ids.insert(id.clone()) {
            bad("segment_id is not unique".into());
        }
        match (corridor, channel, geom) {
            (Ok(co), Ok(ch), Ok(lines)) => {
                if ch > co {
                    bad(format!("channel_m {ch} is wider than corridor_m {co}"));
                } else if let (Some(r), Some(c)) = (river, chief) {
                    out.push(Segment {
                        id,
                        river: r.into(),
                        chief_id: c.into(),
                        corridor_m: co,
                        channel_m: ch,
                        lines,
                    });
                }
            }
            (co, ch, g) => {
                for e in [co.err(), ch.err(), g.err()].into_iter().flatten() {
                    bad(e);
                }
            }
        }
    }
    if problems.is_empty() {
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    } else {
        Err(Error::Many(problems))
    }
}
