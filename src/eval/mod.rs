//! Evaluation of predicted polygons against ground truth, per tile, in a
//! metric CRS (the UTM zone of the tile).
//!
//! Object level: one-to-one greedy matching by descending IoU, a pair needing
//! IoU ≥ 0.3, class-agnostic and (separately) class-aware. Obstruction-flag F1
//! and chief accuracy over the class-agnostic pairs. Area level: precision,
//! recall, F1 and IoU of the union of predictions against the union of truth,
//! summed over tiles. 0/0 precision or recall counts as 1.0; an accuracy over
//! no pairs is `null`.

mod pixels;
mod reference;

pub use pixels::{evaluate_change, ChangeReport};
pub use reference::{evaluate_reference, sample_reference, Codes, ReferenceReport};

use crate::domain::class::ChangeClass;
use crate::domain::detection::Detection;
use crate::error::{Error, Result};
use crate::io::crs::{utm_wkt, Transformer};
use crate::io::vector::PolyFeature;
use geo::{unary_union, Area, BooleanOps, BoundingRect, MultiPolygon, Rect};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// What evaluation reads of a prediction or a truth object.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalObject {
    /// Id (predictions; empty for truth without one).
    pub id: String,
    /// Tile.
    pub tile: String,
    /// Class.
    pub class: ChangeClass,
    /// Obstruction flag.
    pub obstructs: bool,
    /// Responsible chief.
    pub chief_id: String,
    /// Geometry, WGS84.
    pub geometry: MultiPolygon<f64>,
}

impl From<&Detection> for EvalObject {
    fn from(d: &Detection) -> Self {
        EvalObject {
            id: d.id.clone(),
            tile: d.tile.clone(),
            class: d.class,
            obstructs: d.obstructs_flood_channel,
            chief_id: d
                .chief
                .as_ref()
                .map(|c| c.chief_id.clone())
                .unwrap_or_default(),
            geometry: d.geometry.clone(),
        }
    }
}

impl EvalObject {
    /// Reads the objects of a prediction or truth file (riverwatch's records,
    /// the truth format, or another program's polygons with the same
    /// properties).
    ///
    /// # Errors
    /// Unreadable or malformed GeoJSON, or a feature without a known `class`.
    pub fn read(path: &Path) -> Result<Vec<EvalObject>> {
        crate::io::vector::read_polygons(path)?
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                EvalObject::of(f).map_err(|m| Error::invalid(path, format!("feature #{i}: {m}")))
            })
            .collect()
    }

    fn of(f: PolyFeature) -> std::result::Result<EvalObject, String> {
        let class = ChangeClass::parse(f.str("class")).ok_or_else(|| {
            format!(
                "class {:?} is not one of occupation, sand_mining, dumping, construction",
                f.str("class")
            )
        })?;
        Ok(EvalObject {
            id: f.str("id").to_string(),
            tile: f.str("tile").to_string(),
            class,
            obstructs: f.flag("obstructs_flood_channel"),
            chief_id: f.str("chief_id").to_string(),
            geometry: f.geometry,
        })
    }
}

/// Minimum IoU for a match.
pub const MIN_IOU: f64 = 0.3;

/// Precision/recall/F1 from counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Prf {
    /// True positives.
    pub tp: usize,
    /// False positives.
    pub fp: usize,
    /// False negatives.
    pub r#fn: usize,
    /// tp / (tp + fp), 1.0 when 0/0.
    pub precision: f64,
    /// tp / (tp + fn), 1.0 when 0/0.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
}

pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        1.0
    } else {
        a / b
    }
}

pub(crate) fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

impl Prf {
    /// Builds the scores from counts.
    pub fn new(tp: usize, fp: usize, fn_: usize) -> Prf {
        let p = ratio(tp as f64, (tp + fp) as f64);
        let r = ratio(tp as f64, (tp + fn_) as f64);
        Prf {
            tp,
            fp,
            r#fn: fn_,
            precision: p,
            recall: r,
            f1: f1(p, r),
        }
    }
    fn add(&mut self, o: Prf) {
        *self = Prf::new(self.tp + o.tp, self.fp + o.fp, self.r#fn + o.r#fn);
    }
}

/// Area-level scores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct AreaScores {
    /// Area of the union of predictions, m².
    pub pred_m2: f64,
    /// Area of the union of truth, m².
    pub truth_m2: f64,
    /// Area of their intersection, m².
    pub intersection_m2: f64,
    /// intersection / pred.
    pub precision: f64,
    /// intersection / truth.
    pub recall: f64,
    /// Harmonic mean.
    pub f1: f64,
    /// intersection / union.
    pub iou: f64,
}

/// Recall of truth objects in one size class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeRecall {
    /// Size class label.
    pub size: String,
    /// Truth objects in the class.
    pub truth: usize,
    /// Of those, matched (class-agnostic).
    pub matched: usize,
    /// matched / truth, 1.0 when 0/0.
    pub recall: f64,
}

/// The full evaluation report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Tiles seen (in prediction or truth).
    pub tiles: usize,
    /// Prediction polygons.
    pub predictions: usize,
    /// Truth polygons scored.
    pub truths: usize,
    /// Class-agnostic object scores.
    pub objects: Prf,
    /// Class-agnostic recall over truth objects of at least `mmu_m2`.
    pub recall_at_mmu: f64,
    /// The size used for `recall_at_mmu`, m².
    pub mmu_m2: f64,
    /// Class-aware object scores, all classes.
    pub class_aware: Prf,
    /// Class-aware object scores per class.
    pub per_class: BTreeMap<String, Prf>,
    /// F1 of `obstructs_flood_channel` over class-agnostic pairs.
    pub obstruction: Prf,
    /// Share of class-agnostic pairs whose `chief_id` agrees; null without pairs.
    pub chief_accuracy: Option<f64>,
    /// Area-level scores.
    pub area: AreaScores,
    /// Recall by truth-object size.
    pub recall_by_size: Vec<SizeRecall>,
    /// Per prediction, in input order: its class-agnostic match (written by
    /// `eval --matches`, not part of the JSON report).
    #[serde(skip)]
    pub matches: Vec<Match>,
}

/// How one prediction fared in the class-agnostic matching.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match {
    /// The prediction's `id`.
    pub id: String,
    /// Its tile.
    pub tile: String,
    /// Class of the matched truth object; `None` for a false positive.
    pub truth_class: Option<String>,
    /// IoU with the matched truth object (0 when unmatched).
    pub iou: f64,
}

struct Obj<'a> {
    f: &'a EvalObject,
    g: MultiPolygon<f64>,
    area: f64,
    bb: Option<Rect<f64>>,
}

/// Greedy one-to-one matching by descending IoU over `pairs` (iou, p, t);
/// returns the chosen (p, t, iou).
fn greedy(mut pairs: Vec<(f64, usize, usize)>, np: usize, nt: usize) -> Vec<(usize, usize, f64)> {
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let (mut up, mut ut) = (vec![false; np], vec![false; nt]);
    let mut out = Vec::new();
    for (iou, p, t) in pairs {
        if !up[p] && !ut[t] {
            up[p] = true;
            ut[t] = true;
            out.push((p, t, iou));
        }
    }
    out
}

fn project(feats: &[&EvalObject], t: &Transformer) -> Result<Vec<(MultiPolygon<f64>, f64)>> {
    feats
        .iter()
        .map(|f| {
            let mut g = f.geometry.clone();
            t.apply_geom(&mut g)?;
            let a = g.unsigned_area();
            Ok((g, a))
        })
        .collect()
}

fn objs<'a>(v: &[&'a EvalObject], tr: &Transformer) -> Result<Vec<Obj<'a>>> {
    Ok(v.iter()
        .zip(project(v, tr)?)
        .map(|(f, (g, a))| Obj {
            f,
            bb: g.bounding_rect(),
            g,
            area: a,
        })
        .collect())
}

/// Scores predictions against truth. Features are grouped by their `tile`
/// property. `mmu_m2` sets the size for `recall_at_mmu`.
///
/// # Errors
/// When a coordinate transformation cannot be built.
pub fn evaluate(preds: &[EvalObject], truth: &[EvalObject], mmu_m2: f64) -> Result<Report> {
    evaluate_with(preds, truth, mmu_m2, 0.0)
}

/// Truth-size bins of the recall-by-size lines, m².
const BINS: [(&str, f64, f64); 3] = [
    ("< 400 m²", 0.0, 400.0),
    ("400–2,000 m²", 400.0, 2000.0),
    ("> 2,000 m²", 2000.0, f64::INFINITY),
];

/// Counts summed over tiles.
#[derive(Default)]
struct Tally {
    objects: Prf,
    class_aware: Prf,
    per_class: BTreeMap<String, Prf>,
    obstruction: (usize, usize, usize),
    chief_ok: usize,
    pairs: usize,
    area: AreaScores,
    sizes: [(usize, usize); 3],
    mmu: (usize, usize),
    truths: usize,
    matches: Vec<Match>,
}

/// Metric CRS for a tile: the UTM zone of its features' mean centre.
fn tile_crs(ps: &[&EvalObject], ts: &[&EvalObject]) -> Result<Transformer> {
    let all: Vec<geo::Coord<f64>> = ps
        .iter()
        .chain(ts.iter())
        .filter_map(|f| f.geometry.bounding_rect())
        .map(|r| r.center())
        .collect();
    let (lon, lat) = all.iter().fold((0.0, 0.0), |a, c| (a.0 + c.x, a.1 + c.y));
    let n = all.len().max(1) as f64;
    Transformer::from_wgs84(&utm_wkt(lon / n, lat / n)?)
}

/// Candidate pairs (iou, p, t) with IoU ≥ [`MIN_IOU`].
fn candidate_pairs(po: &[Obj<'_>], to: &[Obj<'_>]) -> Vec<(f64, usize, usize)> {
    let mut pairs = Vec::new();
    for (i, p) in po.iter().enumerate() {
        for (j, t) in to.iter().enumerate() {
            if !crate::domain::grid::rects_meet(p.bb, t.bb) {
                continue;
            }
            let inter = p.g.intersection(&t.g).unsigned_area();
            let iou = inter / (p.area + t.area - inter).max(1e-12);
            if iou >= MIN_IOU {
                pairs.push((iou, i, j));
            }
        }
    }
    pairs
}

impl Tally {
    /// Scores one tile.
    fn add_tile(&mut self, po: &[Obj<'_>], to: &[Obj<'_>], mmu_m2: f64) {
        let pairs = candidate_pairs(po, to);
        let agn = greedy(pairs.clone(), po.len(), to.len());
        self.record_matches(po, to, &agn);
        self.objects.add(Prf::new(
            agn.len(),
            po.len() - agn.len(),
            to.len() - agn.len(),
        ));
        let mut matched_t = vec![false; to.len()];
        for &(i, j, _) in &agn {
            matched_t[j] = true;
            let (pf, tf) = (po[i].f, to[j].f);
            match (pf.obstructs, tf.obstructs) {
                (true, true) => self.obstruction.0 += 1,
                (true, false) => self.obstruction.1 += 1,
                (false, true) => self.obstruction.2 += 1,
                _ => {}
            }
            self.pairs += 1;
            self.chief_ok += usize::from(pf.chief_id == tf.chief_id);
        }
        for (j, t) in to.iter().enumerate() {
            let k = BINS
                .iter()
                .position(|b| t.area >= b.1 && t.area < b.2)
                .unwrap_or(2);
            self.sizes[k].0 += 1;
            self.sizes[k].1 += usize::from(matched_t[j]);
            if t.area >= mmu_m2 {
                self.mmu.0 += 1;
                self.mmu.1 += usize::from(matched_t[j]);
            }
        }
        self.add_class_aware(po, to, pairs);
        self.truths += to.len();
        let up = unary_union(po.iter().map(|o| &o.g));
        let ut = unary_union(to.iter().map(|o| &o.g));
        self.area.pred_m2 += up.unsigned_area();
        self.area.truth_m2 += ut.unsigned_area();
        self.area.intersection_m2 += up.intersection(&ut).unsigned_area();
    }

    fn record_matches(&mut self, po: &[Obj<'_>], to: &[Obj<'_>], agn: &[(usize, usize, f64)]) {
        let mut m: Vec<Match> = po
            .iter()
            .map(|p| Match {
                id: p.f.id.clone(),
                tile: p.f.tile.clone(),
                truth_class: None,
                iou: 0.0,
            })
            .collect();
        for &(i, j, iou) in agn {
            m[i].truth_class = Some(to[j].f.class.as_str().to_string());
            m[i].iou = iou;
        }
        self.matches.extend(m);
    }

    fn add_class_aware(&mut self, po: &[Obj<'_>], to: &[Obj<'_>], pairs: Vec<(f64, usize, usize)>) {
        let same: Vec<_> = pairs
            .into_iter()
            .filter(|&(_, i, j)| po[i].f.class == to[j].f.class)
            .collect();
        let aware = greedy(same, po.len(), to.len());
        self.class_aware.add(Prf::new(
            aware.len(),
            po.len() - aware.len(),
            to.len() - aware.len(),
        ));
        let classes: std::collections::BTreeSet<&str> = po
            .iter()
            .chain(to.iter())
            .map(|o| o.f.class.as_str())
            .collect();
        for c in classes {
            let tp = aware
                .iter()
                .filter(|&&(i, _, _)| po[i].f.class.as_str() == c)
                .count();
            let np = po.iter().filter(|o| o.f.class.as_str() == c).count();
            let nt = to.iter().filter(|o| o.f.class.as_str() == c).count();
            self.per_class
                .entry(c.to_string())
                .or_insert_with(|| Prf::new(0, 0, 0))
                .add(Prf::new(tp, np - tp, nt - tp));
        }
    }

    fn report(mut self, tiles: usize, predictions: usize, mmu_m2: f64) -> Report {
        let a = &mut self.area;
        a.precision = ratio(a.intersection_m2, a.pred_m2);
        a.recall = ratio(a.intersection_m2, a.truth_m2);
        a.f1 = f1(a.precision, a.recall);
        a.iou = ratio(
            a.intersection_m2,
            a.pred_m2 + a.truth_m2 - a.intersection_m2,
        );
        let (otp, ofp, ofn) = self.obstruction;
        Report {
            tiles,
            predictions,
            truths: self.truths,
            objects: self.objects,
            recall_at_mmu: ratio(self.mmu.1 as f64, self.mmu.0 as f64),
            mmu_m2,
            class_aware: self.class_aware,
            per_class: self.per_class,
            obstruction: Prf::new(otp, ofp, ofn),
            chief_accuracy: (self.pairs > 0).then(|| self.chief_ok as f64 / self.pairs as f64),
            area: self.area,
            recall_by_size: BINS
                .iter()
                .zip(self.sizes)
                .map(|(b, (t, m))| SizeRecall {
                    size: b.0.to_string(),
                    truth: t,
                    matched: m,
                    recall: ratio(m as f64, t as f64),
                })
                .collect(),
            matches: self.matches,
        }
    }
}

/// As [`evaluate`], scoring only truth objects of at least `min_truth_m2`
/// (a prediction that matches nothing else counts as a false positive).
///
/// # Errors
/// When a coordinate transformation cannot be built.
pub fn evaluate_with(
    preds: &[EvalObject],
    truth: &[EvalObject],
    mmu_m2: f64,
    min_truth_m2: f64,
) -> Result<Report> {
    let mut tiles: BTreeMap<&str, (Vec<&EvalObject>, Vec<&EvalObject>)> = BTreeMap::new();
    for p in preds {
        tiles.entry(p.tile.as_str()).or_default().0.push(p);
    }
    for t in truth {
        tiles.entry(t.tile.as_str()).or_default().1.push(t);
    }
    let mut tally = Tally {
        objects: Prf::new(0, 0, 0),
        class_aware: Prf::new(0, 0, 0),
        ..Tally::default()
    };
    for (ps, ts) in tiles.values() {
        let tr = tile_crs(ps, ts)?;
        let (po, mut to) = (objs(ps, &tr)?, objs(ts, &tr)?);
        to.retain(|o| o.area >= min_truth_m2);
        tally.add_tile(&po, &to, mmu_m2);
    }
    Ok(tally.report(tiles.len(), preds.len(), mmu_m2))
}

impl Report {
    /// A plain-text table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let row = |s: &mut String, name: &str, p: &Prf| {
            s.push_str(&format!(
                "{name:<22} {:>5} {:>5} {:>5}  {:>9.3} {:>7.3} {:>6.3}\n",
                p.tp, p.fp, p.r#fn, p.precision, p.recall, p.f1
            ))
        };
        s.push_str(&format!(
            "tiles {}  predictions {}  truth {}\n\n",
            self.tiles, self.predictions, self.truths
        ));
        s.push_str(&format!(
            "{:<22} {:>5} {:>5} {:>5}  {:>9} {:>7} {:>6}\n",
            "objects (IoU ≥ 0.3)", "TP", "FP", "FN", "precision", "recall", "F1"
        ));
        row(&mut s, "class-agnostic", &self.objects);
        row(&mut s, "class-aware", &self.class_aware);
        for (c, p) in &self.per_class {
            row(&mut s, &format!("  {c}"), p);
        }
        row(&mut s, "obstruction flag", &self.obstruction);
        s.push_str(&format!(
            "\nrecall over truth ≥ {} m²: {:.3}\n",
            self.mmu_m2, self.recall_at_mmu
        ));
        for b in &self.recall_by_size {
            s.push_str(&format!(
                "recall {:<14} {:>4}/{:<4} {:.3}\n",
                b.size, b.matched, b.truth, b.recall
            ));
        }
        s.push_str(&format!(
            "chief accuracy: {}\n",
            self.chief_accuracy
                .map_or("n/a (no matched pairs)".into(), |a| format!("{a:.4}"))
        ));
        let a = &self.area;
        s.push_str(&format!(
            "area: pred {:.0} m², truth {:.0} m², overlap {:.0} m²; precision {:.3} recall {:.3} F1 {:.3} IoU {:.3}\n",
            a.pred_m2, a.truth_m2, a.intersection_m2, a.precision, a.recall, a.f1, a.iou
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use geo::polygon;

    fn sq(
        tile: &str,
        class: &str,
        x: f64,
        y: f64,
        d: f64,
        obstructs: bool,
        chief: &str,
    ) -> EvalObject {
        let p = polygon![(x: x, y: y), (x: x + d, y: y), (x: x + d, y: y + d), (x: x, y: y + d)];
        EvalObject {
            id: String::new(),
            tile: tile.into(),
            class: ChangeClass::parse(class).unwrap(),
            obstructs,
            chief_id: chief.into(),
            geometry: MultiPolygon(vec![p]),
        }
    }

    #[test]
    fn truth_against_itself_is_perfect() {
        let t = vec![
            sq("a", "dumping", 126.6, 45.8, 0.001, true, "c1"),
            sq("a", "construction", 126.61, 45.8, 0.002, false, "c2"),
            sq("b", "occupation", 126.7, 45.8, 0.001, false, "c1"),
        ];
        let r = evaluate(&t, &t, 400.0).unwrap();
        assert_eq!(r.objects, Prf::new(3, 0, 0));
        assert_eq!(r.class_aware.f1, 1.0);
        assert_eq!(r.obstruction.f1, 1.0);
        assert_eq!(r.chief_accuracy, Some(1.0));
        assert!((r.area.iou - 1.0).abs() < 1e-9);
    }

    #[test]
    fn empty_prediction_has_zero_recall() {
        let t = vec![sq("a", "dumping", 126.6, 45.8, 0.001, true, "c1")];
        let r = evaluate(&[], &t, 400.0).unwrap();
        assert_eq!(r.objects.recall, 0.0);
        assert_eq!(r.objects.precision, 1.0);
        assert_eq!(r.chief_accuracy, None);
        assert_eq!(r.area.recall, 0.0);
    }

    #[test]
    fn known_counts() {
        // Truth: A, B, C. Predictions: A exact (right class, right chief),
        // B shifted by a third (IoU 0.5, wrong class, wrong chief), one false
        // alarm far away, and one in another tile. C is missed.
        let d = 0.001;
        let truth = vec![
            sq("t", "dumping", 126.6, 45.8, d, true, "c1"),
            sq("t", "construction", 126.61, 45.8, d, true, "c1"),
            sq("t", "occupation", 126.62, 45.8, d, false, "c1"),
        ];
        let preds = vec![
            sq("t", "dumping", 126.6, 45.8, d, true, "c1"),
            sq("t", "dumping", 126.61 + d / 3.0, 45.8, d, false, "c9"),
            sq("t", "sand_mining", 126.65, 45.8, d, false, "c1"),
            sq("u", "sand_mining", 126.65, 45.8, d, false, "c1"),
        ];
        let r = evaluate(&preds, &truth, 400.0).unwrap();
        assert_eq!((r.objects.tp, r.objects.fp, r.objects.r#fn), (2, 2, 1));
        assert_eq!(
            (r.class_aware.tp, r.class_aware.fp, r.class_aware.r#fn),
            (1, 3, 2)
        );
        assert_eq!(
            (r.obstruction.tp, r.obstruction.fp, r.obstruction.r#fn),
            (1, 0, 1)
        );
        assert_eq!(r.chief_accuracy, Some(0.5));
        assert_eq!(r.per_class["dumping"].tp, 1);
        assert_eq!(r.per_class["construction"].r#fn, 1);
        assert_eq!(r.tiles, 2);
    }
}
