//! GeoJSON in and out (RFC 7946: WGS84 longitude/latitude, exterior rings
//! counter-clockwise, holes clockwise, at most 7 decimals).

use crate::error::{Error, Result};
use geo::orient::{Direction, Orient};
use geo::{Coord, LineString, MultiPolygon, Polygon};
use serde_json::{json, Map, Value};
use std::path::Path;

/// A polygon feature: geometry plus free-form properties.
#[derive(Debug, Clone)]
pub struct PolyFeature {
    /// Geometry (one or more polygons).
    pub geometry: MultiPolygon<f64>,
    /// Properties object.
    pub props: Map<String, Value>,
}

impl PolyFeature {
    /// A string property, or "" when absent.
    pub fn str(&self, key: &str) -> &str {
        self.props.get(key).and_then(Value::as_str).unwrap_or("")
    }
    /// A boolean property, false when absent.
    pub fn flag(&self, key: &str) -> bool {
        self.props
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// Rounds to 7 decimals (≈1 cm), the precision RFC 7946 output keeps.
#[inline]
pub fn round7(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
}

/// Rounds every coordinate to 7 decimals in place.
pub fn round_geometry(g: &mut MultiPolygon<f64>) {
    use geo::MapCoordsInPlace;
    g.map_coords_in_place(|c| Coord {
        x: round7(c.x),
        y: round7(c.y),
    });
}

fn ring_json(r: &LineString<f64>) -> Value {
    Value::Array(
        r.0.iter()
            .map(|c| json!([round7(c.x), round7(c.y)]))
            .collect(),
    )
}

fn polygon_json(p: &Polygon<f64>) -> Value {
    let mut rings = vec![ring_json(p.exterior())];
    rings.extend(p.interiors().iter().map(ring_json));
    Value::Array(rings)
}

/// GeoJSON geometry object for a (multi)polygon in lon/lat, oriented per RFC 7946.
pub fn geometry_json(mp: &MultiPolygon<f64>) -> Value {
    let mp = mp.orient(Direction::Default);
    if mp.0.len() == 1 {
        json!({"type": "Polygon", "coordinates": polygon_json(&mp.0[0])})
    } else {
        json!({"type": "MultiPolygon", "coordinates": Value::Array(mp.0.iter().map(polygon_json).collect())})
    }
}

/// Serialises features as a FeatureCollection, one feature per line so the
/// files diff well and stream.
pub fn collection_bytes(features: &[PolyFeature]) -> Vec<u8> {
    let mut s = String::from("{\"type\":\"FeatureCollection\",\"features\":[\n");
    for (i, f) in features.iter().enumerate() {
        let v = json!({"type": "Feature", "properties": Value::Object(f.props.clone()), "geometry": geometry_json(&f.geometry)});
        s.push_str(&v.to_string());
        if i + 1 < features.len() {
            s.push(',');
        }
        s.push('\n');
    }
    s.push_str("]}\n");
    s.into_bytes()
}

/// Writes a FeatureCollection atomically.
///
/// # Errors
/// When the file cannot be written.
pub fn write_collection(path: &Path, features: &[PolyFeature]) -> Result<()> {
    crate::io::write_atomic(path, &collection_bytes(features))
}

fn parse_ring(v: &Value) -> std::result::Result<LineString<f64>, String> {
    let pts = v.as_array().ok_or("ring is not an array")?;
    let mut out = Vec::with_capacity(pts.len());
    for p in pts {
        let a = p
            .as_array()
            .filter(|a| a.len() >= 2)
            .ok_or("position is not [x, y]")?;
        let (Some(x), Some(y)) = (a[0].as_f64(), a[1].as_f64()) else {
            return Err("coordinate is not a number".into());
        };
        if !x.is_finite()
            || !y.is_finite()
            || !(-180.0..=180.0).contains(&x)
            || !(-90.0..=90.0).contains(&y)
        {
            return Err(format!(
                "position [{x}, {y}] is not WGS84 longitude/latitude"
            ));
        }
        out.push(Coord { x, y });
    }
    if out.len() < 4 || out.first() != out.last() {
        return Err("ring must be closed with at least 4 positions".into());
    }
    Ok(LineString(out))
}

fn parse_polygon(v: &Value) -> std::result::Result<Polygon<f64>, String> {
    let rings = v
        .as_array()
        .filter(|r| !r.is_empty())
        .ok_or("polygon has no rings")?;
    let ext = parse_ring(&rings[0])?;
    let holes = rings[1..]
        .iter()
        .map(parse_ring)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Polygon::new(ext, holes))
}

/// Parses a Polygon or MultiPolygon geometry object.
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_polygonal(g: &Value) -> std::result::Result<MultiPolygon<f64>, String> {
    let ty = g
        .get("type")
        .and_then(Value::as_str)
        .ok_or("geometry has no type")?;
    let c = g.get("coordinates").ok_or("geometry has no coordinates")?;
    match ty {
        "Polygon" => Ok(MultiPolygon(vec![parse_polygon(c)?])),
        "MultiPolygon" => Ok(MultiPolygon(
            c.as_array()
                .ok_or("coordinates are not an array")?
                .iter()
                .map(parse_polygon)
                .collect::<std::result::Result<_, _>>()?,
        )),
        other => Err(format!(
            "geometry is {other}, expected Polygon or MultiPolygon"
        )),
    }
}

/// Reads a FeatureCollection of polygon features.
///
/// # Errors
/// [`Error::Json`] when malformed, [`Error::Invalid`] naming the feature when a
/// geometry is not a valid polygon.
pub fn read_collection(path: &Path) -> Result<Vec<PolyFeature>> {
    let v: Value = crate::io::read_json(path)?;
    if v.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
        return Err(Error::invalid(path, "not a GeoJSON FeatureCollection"));
    }
    let feats = v
        .get("features")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid(path, "FeatureCollection has no features array"))?;
    feats
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let props = f
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let g = f
                .get("geometry")
                .filter(|g| !g.is_null())
                .ok_or_else(|| Error::invalid(path, format!("feature #{i}: no geometry")))?;
            let geometry = parse_polygonal(g)
                .map_err(|m| Error::invalid(path, format!("feature #{i}: {m}")))?;
            Ok(PolyFeature { geometry, props })
        })
        .collect()
}
