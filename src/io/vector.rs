//! GeoJSON in and out through the `geojson` crate (RFC 7946: WGS84
//! longitude/latitude, exterior rings counter-clockwise, holes clockwise, at
//! most 7 decimals): river segments, polygon features (truth, predictions)
//! and detection records.

use crate::domain::detection::Detection;
use crate::domain::rivers::{width, Segment, WidthDefaults};
use crate::error::{Error, Result};
use geo::orient::{Direction, Orient};
use geo::{Coord, LineString, MultiLineString, MultiPolygon, Polygon};
use geojson::{Feature, FeatureCollection, Geometry, JsonObject, PolygonType, Position};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// A polygon feature with free-form properties (ground truth, or predictions
/// of another program).
#[derive(Debug, Clone)]
pub struct PolyFeature {
    /// Geometry (one or more polygons), WGS84.
    pub geometry: MultiPolygon<f64>,
    /// Properties object.
    pub props: JsonObject,
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

fn ring_positions(r: &LineString<f64>) -> Vec<Position> {
    r.0.iter().map(|c| vec![round7(c.x), round7(c.y)]).collect()
}

fn polygon_positions(p: &Polygon<f64>) -> PolygonType {
    let mut rings = vec![ring_positions(p.exterior())];
    rings.extend(p.interiors().iter().map(ring_positions));
    rings
}

/// GeoJSON geometry for a (multi)polygon in lon/lat, oriented per RFC 7946.
pub fn geometry(mp: &MultiPolygon<f64>) -> Geometry {
    let mp = mp.orient(Direction::Default);
    let value = if mp.0.len() == 1 {
        geojson::Value::Polygon(polygon_positions(&mp.0[0]))
    } else {
        geojson::Value::MultiPolygon(mp.0.iter().map(polygon_positions).collect())
    };
    Geometry::new(value)
}

/// A GeoJSON Feature of a detection: its serde form as properties.
pub fn detection_feature(d: &Detection) -> Feature {
    let properties = match serde_json::to_value(d) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    };
    Feature {
        bbox: None,
        geometry: Some(geometry(&d.geometry)),
        id: None,
        properties,
        foreign_members: None,
    }
}

/// A GeoJSON Feature of a free-form polygon feature.
pub fn poly_feature(f: &PolyFeature) -> Feature {
    Feature {
        bbox: None,
        geometry: Some(geometry(&f.geometry)),
        id: None,
        properties: Some(f.props.clone()),
        foreign_members: None,
    }
}

/// Serialises features as a FeatureCollection, one feature per line so the
/// files diff well and stream. Keys are written in sorted order (through a
/// JSON object), so files are byte-identical across versions of the
/// `geojson` crate.
pub fn collection_bytes(features: impl IntoIterator<Item = Feature>) -> Vec<u8> {
    let mut s = String::from("{\"type\":\"FeatureCollection\",\"features\":[\n");
    let mut first = true;
    for f in features {
        if !first {
            s.push_str(",\n");
        }
        first = false;
        let v = serde_json::to_value(&f).unwrap_or(Value::Null);
        s.push_str(&v.to_string());
    }
    if !first {
        s.push('\n');
    }
    s.push_str("]}\n");
    s.into_bytes()
}

fn lonlat(p: &Position) -> std::result::Result<Coord<f64>, String> {
    let (Some(&x), Some(&y)) = (p.first(), p.get(1)) else {
        return Err("a position has fewer than 2 numbers".into());
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
    Ok(Coord { x, y })
}

fn ring(r: &[Position]) -> std::result::Result<LineString<f64>, String> {
    let out = r
        .iter()
        .map(lonlat)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if out.len() < 4 || out.first() != out.last() {
        return Err("ring must be closed with at least 4 positions".into());
    }
    Ok(LineString(out))
}

fn polygon(rings: &PolygonType) -> std::result::Result<Polygon<f64>, String> {
    let (ext, holes) = rings.split_first().ok_or("polygon has no rings")?;
    let holes = holes
        .iter()
        .map(|h| ring(h))
        .collect::<std::result::Result<_, _>>()?;
    Ok(Polygon::new(ring(ext)?, holes))
}

fn type_name(v: &geojson::Value) -> &'static str {
    v.type_name()
}

/// Converts a Polygon or MultiPolygon geometry.
///
/// # Errors
/// A message saying what is wrong.
pub fn polygonal(g: &Geometry) -> std::result::Result<MultiPolygon<f64>, String> {
    match &g.value {
        geojson::Value::Polygon(p) => Ok(MultiPolygon(vec![polygon(p)?])),
        geojson::Value::MultiPolygon(ps) => Ok(MultiPolygon(
            ps.iter()
                .map(polygon)
                .collect::<std::result::Result<_, _>>()?,
        )),
        other => Err(format!(
            "geometry is {}, expected Polygon or MultiPolygon",
            type_name(other)
        )),
    }
}

fn line(ps: &[Position]) -> std::result::Result<LineString<f64>, String> {
    let out = ps
        .iter()
        .map(lonlat)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if out.len() < 2 {
        return Err("a LineString needs at least 2 positions".into());
    }
    Ok(LineString(out))
}

/// Converts a LineString or MultiLineString geometry.
///
/// # Errors
/// A message saying what is wrong.
pub fn lines(g: &Geometry) -> std::result::Result<MultiLineString<f64>, String> {
    match &g.value {
        geojson::Value::LineString(l) => Ok(MultiLineString(vec![line(l)?])),
        geojson::Value::MultiLineString(ls) if ls.is_empty() => Err("empty MultiLineString".into()),
        geojson::Value::MultiLineString(ls) => Ok(MultiLineString(
            ls.iter()
                .map(|l| line(l))
                .collect::<std::result::Result<_, _>>()?,
        )),
        other => Err(format!(
            "geometry is {}, expected LineString or MultiLineString",
            type_name(other)
        )),
    }
}

/// Reads a FeatureCollection file.
///
/// # Errors
/// [`Error::Json`] when not JSON, [`Error::Invalid`] when not a GeoJSON
/// FeatureCollection.
pub fn read_collection(path: &Path) -> Result<FeatureCollection> {
    collection_of(path, crate::io::read_json(path)?)
}

fn collection_of(path: &Path, v: Value) -> Result<FeatureCollection> {
    if v.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
        return Err(Error::invalid(path, "not a GeoJSON FeatureCollection"));
    }
    FeatureCollection::try_from(v)
        .map_err(|e| Error::invalid(path, format!("not a valid GeoJSON FeatureCollection: {e}")))
}

/// Reads a FeatureCollection of polygon features.
///
/// # Errors
/// [`Error::Json`] when malformed, [`Error::Invalid`] naming the feature when a
/// geometry is not a valid polygon.
pub fn read_polygons(path: &Path) -> Result<Vec<PolyFeature>> {
    read_collection(path)?
        .features
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let g = f
                .geometry
                .as_ref()
                .ok_or_else(|| Error::invalid(path, format!("feature #{i}: no geometry")))?;
            let geometry =
                polygonal(g).map_err(|m| Error::invalid(path, format!("feature #{i}: {m}")))?;
            Ok(PolyFeature {
                geometry,
                props: f.properties.unwrap_or_default(),
            })
        })
        .collect()
}

/// Reads detection records written by riverwatch (`detect`, `batch`).
///
/// # Errors
/// As `read_polygons`, and [`Error::Invalid`] naming the feature whose
/// properties are not a detection record.
pub fn read_detections(path: &Path) -> Result<Vec<Detection>> {
    read_polygons(path)?
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let mut d: Detection = serde_json::from_value(Value::Object(f.props))
                .map_err(|e| Error::invalid(path, format!("feature #{i}: {e}")))?;
            d.geometry = f.geometry;
            Ok(d)
        })
        .collect()
}

/// Reads and validates a river-segment FeatureCollection.
///
/// # Errors
/// [`Error::Json`] for malformed JSON; [`Error::Many`] listing every broken
/// feature by index and `segment_id` (missing properties, bad geometry,
/// non-finite or inverted widths, duplicate ids, empty collection).
pub fn load_rivers(path: &Path, defaults: WidthDefaults) -> Result<Vec<Segment>> {
    let value: Value = crate::io::read_json(path)?;
    let fc = collection_of(path, value.clone())?;
    if fc.features.is_empty() {
        return Err(Error::invalid(
            path,
            "FeatureCollection has no river segments",
        ));
    }
    let mut problems = Vec::new();
    let mut out = Vec::new();
    let mut ids = BTreeSet::new();
    for (i, feat) in fc.features.iter().enumerate() {
        match segment(feat, defaults, &mut ids) {
            Ok(s) => out.push(s),
            Err(msgs) => {
                let sid = feat.property("segment_id").and_then(Value::as_str);
                let who = format!(
                    "{}: feature #{i} ({})",
                    path.display(),
                    sid.unwrap_or("no segment_id")
                );
                problems.extend(msgs.into_iter().map(|m| format!("{who}: {m}")));
            }
        }
    }
    if problems.is_empty() {
        out.sort_by(|a, b| a.id.cmp(&b.id));
        crate::schema::check(crate::schema::Kind::Rivers, path, &value)?;
        Ok(out)
    } else {
        Err(Error::Many(problems))
    }
}

/// One river segment from its feature, or every problem it has.
fn segment(
    feat: &Feature,
    defaults: WidthDefaults,
    ids: &mut BTreeSet<String>,
) -> std::result::Result<Segment, Vec<String>> {
    let props = feat
        .properties
        .as_ref()
        .map_or(Value::Null, |p| Value::Object(p.clone()));
    let str_prop = |k: &str| {
        props
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let Some(id) = str_prop("segment_id") else {
        return Err(vec!["missing string property segment_id".into()]);
    };
    let mut bad = Vec::new();
    let river = props.get("river").and_then(Value::as_str);
    let chief = str_prop("chief_id");
    if river.is_none() {
        bad.push("missing string property river".to_string());
    }
    if chief.is_none() {
        bad.push("missing string property chief_id".to_string());
    }
    if !ids.insert(id.to_string()) {
        bad.push("segment_id is not unique".into());
    }
    let corridor = width(&props, "corridor_m", defaults.corridor_m);
    let channel = width(&props, "channel_m", defaults.channel_m);
    let geom = feat
        .geometry
        .as_ref()
        .ok_or_else(|| "feature has no geometry".to_string())
        .and_then(lines);
    match (corridor, channel, geom) {
        (Ok(co), Ok(ch), Ok(lines)) => {
            if ch > co {
                bad.push(format!("channel_m {ch} is wider than corridor_m {co}"));
            }
            match (river, chief) {
                (Some(r), Some(c)) if bad.is_empty() => Ok(Segment {
                    id: id.into(),
                    river: r.into(),
                    chief_id: c.into(),
                    corridor_m: co,
                    channel_m: ch,
                    lines,
                }),
                _ => Err(bad),
            }
        }
        (co, ch, g) => {
            bad.extend([co.err(), ch.err(), g.err()].into_iter().flatten());
            Err(bad)
        }
    }
}
