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
        // The Feature `id` member too (RFC 7946 § 3.2), so GIS tools key
        // features by it.
        id: Some(geojson::feature::Id::String(d.id.clone())),
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
    load_rivers_noted(path, defaults).map(|(s, _)| s)
}

/// A GeoJSON `crs` member naming something other than WGS84 lon/lat.
fn foreign_crs(v: &Value) -> Option<String> {
    let name = v.get("crs")?.get("properties")?.get("name")?.as_str()?;
    let wgs = [
        "urn:ogc:def:crs:OGC:1.3:CRS84",
        "urn:ogc:def:crs:OGC::CRS84",
        "EPSG:4326",
        "urn:ogc:def:crs:EPSG::4326",
    ];
    (!wgs.contains(&name)).then(|| name.to_string())
}

/// A GeoJSON document's coordinates transformed from the CRS `name` to
/// WGS84 longitude/latitude; the `crs` member is dropped.
fn reproject_json(path: &Path, mut v: Value, name: &str) -> Result<Value> {
    use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
    let err = |e: gdal::errors::GdalError| Error::invalid(path, format!("its CRS {name}: {e}"));
    let mut from = SpatialRef::from_definition(name).map_err(err)?;
    from.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let mut wgs = SpatialRef::from_epsg(4326).map_err(err)?;
    wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let tr = CoordTransform::new(&from, &wgs).map_err(err)?;
    fn walk(
        c: &mut Value,
        tr: &CoordTransform,
    ) -> std::result::Result<(), gdal::errors::GdalError> {
        let Some(a) = c.as_array_mut() else {
            return Ok(());
        };
        if a.len() >= 2 && a.iter().all(Value::is_number) {
            let (mut x, mut y) = (
                [a[0].as_f64().unwrap_or(0.0)],
                [a[1].as_f64().unwrap_or(0.0)],
            );
            tr.transform_coords(&mut x, &mut y, &mut [])?;
            a[0] = Value::from(x[0]);
            a[1] = Value::from(y[0]);
            a.truncate(2);
            return Ok(());
        }
        a.iter_mut().try_for_each(|x| walk(x, tr))
    }
    if let Some(obj) = v.as_object_mut() {
        obj.remove("crs");
    }
    if let Some(fs) = v.get_mut("features").and_then(Value::as_array_mut) {
        for f in fs {
            if let Some(c) = f.get_mut("geometry").and_then(|g| g.get_mut("coordinates")) {
                walk(c, &tr).map_err(err)?;
            }
        }
    }
    Ok(v)
}

/// Any OGR vector file (GeoPackage, Shapefile, GeoJSON with a `crs`, …) as
/// a GeoJSON FeatureCollection in WGS84 longitude/latitude: the first layer,
/// geometries reprojected from the layer's CRS, fields as properties.
fn ogr_collection(path: &Path) -> Result<(Value, String)> {
    use gdal::spatial_ref::{AxisMappingStrategy, CoordTransform, SpatialRef};
    use gdal::vector::{FieldValue, LayerAccess};
    let err = |e: gdal::errors::GdalError| Error::gdal(path, e);
    let ds = gdal::Dataset::open_ex(
        path,
        gdal::DatasetOptions {
            open_flags: gdal::GdalOpenFlags::GDAL_OF_VECTOR,
            ..Default::default()
        },
    )
    .map_err(|e| Error::invalid(path, format!("not a vector file GDAL/OGR can read ({e}); rivers may be GeoJSON, GeoPackage, Shapefile or any OGR format")))?;
    if ds.layer_count() == 0 {
        return Err(Error::invalid(path, "no vector layer"));
    }
    let mut layer = ds.layer(0).map_err(err)?;
    let mut srs = layer.spatial_ref().ok_or_else(|| {
        Error::invalid(
            path,
            "the layer has no CRS; assign one (ogr2ogr -a_srs EPSG:…)",
        )
    })?;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let from = srs
        .auth_code()
        .map(|c| format!("EPSG:{c}"))
        .unwrap_or_else(|_| srs.name().unwrap_or_else(|| "its CRS".into()));
    let mut wgs = SpatialRef::from_epsg(4326).map_err(err)?;
    wgs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let tr = CoordTransform::new(&srs, &wgs).map_err(err)?;
    let mut feats = Vec::new();
    for f in layer.features() {
        let geometry = match f.geometry() {
            Some(g) => {
                let g = g.transform(&tr).map_err(err)?;
                serde_json::from_str::<Value>(&g.json().map_err(err)?).unwrap_or(Value::Null)
            }
            None => Value::Null,
        };
        let mut props = serde_json::Map::new();
        for (k, v) in f.fields() {
            let v = match v {
                None => continue,
                Some(FieldValue::IntegerValue(n)) => Value::from(n),
                Some(FieldValue::Integer64Value(n)) => Value::from(n),
                Some(FieldValue::RealValue(x)) => Value::from(x),
                Some(FieldValue::StringValue(s)) => Value::from(s),
                Some(other) => Value::from(format!("{other:?}")),
            };
            props.insert(k, v);
        }
        feats.push(
            serde_json::json!({"type": "Feature", "properties": props, "geometry": geometry}),
        );
    }
    Ok((
        serde_json::json!({"type": "FeatureCollection", "features": feats}),
        from,
    ))
}

/// As [`load_rivers`], with notes on what was done (a reprojection).
///
/// # Errors
/// As [`load_rivers`].
pub fn load_rivers_noted(
    path: &Path,
    defaults: WidthDefaults,
) -> Result<(Vec<Segment>, Vec<String>)> {
    let json_ext = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("geojson") || e.eq_ignore_ascii_case("json"));
    let mut notes = Vec::new();
    let value: Value = if json_ext {
        let v: Value = crate::io::read_json(path)?;
        match foreign_crs(&v) {
            None => v,
            Some(name) => {
                let v = reproject_json(path, v, &name)?;
                notes.push(format!(
                    "{}: declares the CRS {name}; GeoJSON is WGS84 longitude/latitude by RFC 7946 (the `crs` member was dropped from the standard), so the segments were reprojected from {name}. To avoid this, write the file with: ogr2ogr -t_srs EPSG:4326 rivers.geojson {}",
                    path.display(),
                    path.display()
                ));
                v
            }
        }
    } else {
        let (v, from) = ogr_collection(path)?;
        if from != "EPSG:4326" {
            notes.push(format!(
                "{}: segments reprojected from {from} to WGS84",
                path.display()
            ));
        }
        v
    };
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
        Ok((out, notes))
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
