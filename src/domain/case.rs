//! Cases: one encroachment site followed across nights, from its first
//! detection to a verified rectification (or a false alarm). Plain types and
//! rules, no database: the lifecycle, the matching rule between a night's
//! detections and the cases already open, and the case id.
//!
//! Lifecycle (system steps in brackets, the rest set by teams or `recheck`):
//!
//! ```text
//! [new] ─► [dispatched] ─► reported_rectified ─► verified ─► closed
//!                ▲                 │                 │          │
//!                │                 ▼                 ▼          ▼
//!                └──── rectification_failed     [reappeared] ◄──┘
//! any open status ─► false_alarm   (never dispatched again at that place)
//! ```

use super::class::ChangeClass;
use geo::{Area, BooleanOps, BoundingRect, MultiPolygon, Rect};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Opened by tonight's detection, not yet in a package.
    New,
    /// Sent to the responsible team in a dispatch package.
    Dispatched,
    /// The team reports the site rectified; waits for a re-check.
    ReportedRectified,
    /// A re-check found the site restored.
    Verified,
    /// A re-check found the site not restored (虚假整改 when it was reported).
    RectificationFailed,
    /// Done: verified and closed by the supervising office.
    Closed,
    /// A verified or closed site changed again.
    Reappeared,
    /// Marked by a team as not a violation; never dispatched again there.
    FalseAlarm,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 8] = [
        Status::New,
        Status::Dispatched,
        Status::ReportedRectified,
        Status::Verified,
        Status::RectificationFailed,
        Status::Closed,
        Status::Reappeared,
        Status::FalseAlarm,
    ];

    /// The name used in the store, on the command line and in exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Dispatched => "dispatched",
            Status::ReportedRectified => "reported_rectified",
            Status::Verified => "verified",
            Status::RectificationFailed => "rectification_failed",
            Status::Closed => "closed",
            Status::Reappeared => "reappeared",
            Status::FalseAlarm => "false_alarm",
        }
    }

    /// Chinese label for printed lists.
    pub fn zh(self) -> &'static str {
        match self {
            Status::New => "新发现",
            Status::Dispatched => "已交办",
            Status::ReportedRectified => "已报整改",
            Status::Verified => "复核通过",
            Status::RectificationFailed => "整改不到位",
            Status::Closed => "已销号",
            Status::Reappeared => "反弹",
            Status::FalseAlarm => "误报",
        }
    }

    /// Parses a status name.
    ///
    /// # Errors
    /// An unknown name, with the list of known ones.
    pub fn parse(s: &str) -> Result<Status, String> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status {s:?}; one of {}",
                    Status::ALL.map(Status::as_str).join(", ")
                )
            })
    }

    /// Still needs work from a team: counts as open in roll-ups and
    /// appears in every night's package until it leaves these states.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Status::New
                | Status::Dispatched
                | Status::Reappeared
                | Status::RectificationFailed
                | Status::ReportedRectified
        )
    }

    /// Whether a person (`cases mark`) or a re-check may move a case from
    /// `self` to `to`. `new`, `dispatched` and `reappeared` are set by the
    /// batch only.
    ///
    /// # Errors
    /// The move is not part of the lifecycle; the message lists the moves
    /// that are.
    pub fn check_mark(self, to: Status) -> Result<(), String> {
        let ok = self.check_mark_quiet(to);
        if ok {
            return Ok(());
        }
        let allowed: Vec<&str> = Status::ALL
            .into_iter()
            .filter(|&t| t != to && self.check_mark_quiet(t))
            .map(Status::as_str)
            .collect();
        Err(format!(
            "a {} case cannot be marked {}; from {} it can go to: {}",
            self.as_str(),
            to.as_str(),
            self.as_str(),
            if allowed.is_empty() {
                "nothing (final)".to_string()
            } else {
                allowed.join(", ")
            }
        ))
    }

    fn check_mark_quiet(self, to: Status) -> bool {
        use Status::*;
        match to {
            ReportedRectified => matches!(self, Dispatched | Reappeared | RectificationFailed),
            Verified | RectificationFailed => self == ReportedRectified,
            Closed => self == Verified,
            FalseAlarm => self.is_open(),
            New | Dispatched | Reappeared => false,
        }
    }

    /// What a new detection at the site does to the case: the status after
    /// it, and how tonight's package lists it.
    pub fn on_detection(self) -> (Status, Listing) {
        match self {
            Status::Verified | Status::Closed => (Status::Reappeared, Listing::Reappeared),
            Status::FalseAlarm => (Status::FalseAlarm, Listing::Suppressed),
            s => (s, Listing::Open),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a case appears in tonight's dispatch package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Listing {
    /// Opened tonight: listed first.
    New,
    /// A verified or closed site changed again: listed with the new ones.
    Reappeared,
    /// Already known and still open: listed after them, with its age.
    Open,
    /// A false alarm: recorded, never dispatched.
    Suppressed,
}

impl Listing {
    /// Section heading (bilingual) of the package.
    pub fn heading(self) -> &'static str {
        match self {
            Listing::New => "新发现 New",
            Listing::Reappeared => "反弹 Reappeared",
            Listing::Open => "未销号 Still open",
            Listing::Suppressed => "误报 False alarm",
        }
    }
}

/// A case id: `<PREFIX>-<year>-<6-digit sequence>`, e.g. `HLJ-2026-000123`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseId {
    /// Configurable prefix (letters, digits).
    pub prefix: String,
    /// Year of the first detection.
    pub year: i32,
    /// Sequence within prefix and year, from 1.
    pub seq: u32,
}

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:06}", self.prefix, self.year, self.seq)
    }
}

/// Checks a case id prefix: 1–12 ASCII letters or digits (it becomes part
/// of ids people type and read out on the phone).
///
/// # Errors
/// Anything else, with the rule.
pub fn check_prefix(p: &str) -> Result<(), String> {
    if (1..=12).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(format!(
            "case id prefix {p:?} must be 1–12 ASCII letters or digits, e.g. \"HLJ\""
        ))
    }
}

/// A pair of polygons matches (same site) at IoU ≥ 0.3 — the object
/// matching rule of `eval` — or when ≥ 50 % of the smaller one lies in the
/// other: a site that grew or shrank between nights, or was cut in two by
/// the seam merge or a cloud, stays one case.
pub const MIN_IOU: f64 = 0.3;
/// See [`MIN_IOU`].
pub const MIN_SHARE_OF_SMALLER: f64 = 0.5;

/// Classes a site may change between nights and stay one case. The fill
/// classes (occupation, dumping, construction) are confused with each other
/// on real data (issue 9's class confusion) and a dump often becomes a
/// building; sand mining (pits, open water) only matches sand mining.
pub fn compatible(a: ChangeClass, b: ChangeClass) -> bool {
    let fill = |c: ChangeClass| c != ChangeClass::SandMining;
    a == b || (fill(a) && fill(b))
}

/// How much two polygons overlap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overlap {
    /// Intersection over union.
    pub iou: f64,
    /// Intersection over the smaller area.
    pub of_smaller: f64,
}

impl Overlap {
    /// Overlap of two polygons in one CRS. Both ratios are invariant under
    /// affine maps, so WGS84 degrees serve as well as metres over the few
    /// hundred metres of a site.
    pub fn of(a: &MultiPolygon<f64>, b: &MultiPolygon<f64>) -> Overlap {
        let none = Overlap {
            iou: 0.0,
            of_smaller: 0.0,
        };
        if !rects_touch(a.bounding_rect(), b.bounding_rect()) {
            return none;
        }
        let (aa, ab) = (a.unsigned_area(), b.unsigned_area());
        if aa <= 0.0 || ab <= 0.0 {
            return none;
        }
        let inter = a.intersection(b).unsigned_area();
        let union = aa + ab - inter;
        Overlap {
            iou: if union > 0.0 { inter / union } else { 0.0 },
            of_smaller: inter / aa.min(ab),
        }
    }

    /// The matching rule ([`MIN_IOU`], [`MIN_SHARE_OF_SMALLER`]).
    pub fn same_site(self) -> bool {
        self.iou >= MIN_IOU || self.of_smaller >= MIN_SHARE_OF_SMALLER
    }
}

use super::grid::rects_meet as rects_touch;

/// A known case as the matcher sees it.
#[derive(Debug, Clone)]
pub struct KnownSite {
    /// Case id.
    pub id: String,
    /// Class of the case.
    pub class: ChangeClass,
    /// Latest geometry, WGS84.
    pub geometry: MultiPolygon<f64>,
}

/// A detection as the matcher sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Class.
    pub class: ChangeClass,
    /// Geometry, WGS84.
    pub geometry: &'a MultiPolygon<f64>,
}

/// For every detection, the index of the known site it continues, if any:
/// the compatible site with the highest IoU (then share of the smaller, then
/// the lower case id) among those that pass [`Overlap::same_site`]. Several
/// detections may continue one site (it fragmented); a detection continues
/// at most one site. Deterministic for the same inputs.
pub fn assign(known: &[KnownSite], dets: &[Candidate<'_>]) -> Vec<Option<usize>> {
    let rects: Vec<Option<Rect<f64>>> = known.iter().map(|k| k.geometry.bounding_rect()).collect();
    dets.iter()
        .map(|d| {
            let dr = d.geometry.bounding_rect();
            let mut best: Option<(f64, f64, usize)> = None;
            for (i, k) in known.iter().enumerate() {
                if !rects_touch(dr, rects[i]) || !compatible(k.class, d.class) {
                    continue;
                }
                let o = Overlap::of(d.geometry, &k.geometry);
                if !o.same_site() {
                    continue;
                }
                let better = match best {
                    None => true,
                    Some((iou, sm, j)) => {
                        (o.iou, o.of_smaller) > (iou, sm)
                            || ((o.iou, o.of_smaller) == (iou, sm) && k.id < known[j].id)
                    }
                };
                if better {
                    best = Some((o.iou, o.of_smaller, i));
                }
            }
            best.map(|b| b.2)
        })
        .collect()
}

/// Days from `from` to `to` (both YYYY-MM-DD); `None` when either is not a
/// date.
pub fn days_between(from: &str, to: &str) -> Option<i64> {
    let p = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    Some((p(to)? - p(from)?).num_days())
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    fn sq(x: f64, y: f64, s: f64) -> MultiPolygon<f64> {
        MultiPolygon(vec![
            polygon![(x: x, y: y), (x: x + s, y: y), (x: x + s, y: y + s), (x: x, y: y + s), (x: x, y: y)],
        ])
    }

    #[test]
    fn lifecycle_moves() {
        use Status::*;
        assert!(Dispatched.check_mark(ReportedRectified).is_ok());
        assert!(ReportedRectified.check_mark(Verified).is_ok());
        assert!(Verified.check_mark(Closed).is_ok());
        assert!(New.check_mark(Verified).is_err());
        assert!(Closed.check_mark(FalseAlarm).is_err());
        let e = Dispatched.check_mark(Verified).unwrap_err();
        assert!(e.contains("reported_rectified, false_alarm"), "{e}");
        assert_eq!(Verified.on_detection(), (Reappeared, Listing::Reappeared));
        assert_eq!(FalseAlarm.on_detection(), (FalseAlarm, Listing::Suppressed));
        assert_eq!(Dispatched.on_detection(), (Dispatched, Listing::Open));
        assert_eq!(Status::parse("verified"), Ok(Verified));
        assert!(Status::parse("done").is_err());
    }

    #[test]
    fn matching_rule() {
        let known = vec![
            KnownSite {
                id: "A-2026-000001".into(),
                class: ChangeClass::Dumping,
                geometry: sq(0.0, 0.0, 10.0),
            },
            KnownSite {
                id: "A-2026-000002".into(),
                class: ChangeClass::SandMining,
                geometry: sq(100.0, 0.0, 10.0),
            },
        ];
        let grown = sq(0.0, 0.0, 20.0); // IoU 0.25, but the old site lies inside
        let shifted = sq(5.0, 0.0, 10.0); // IoU 1/3
        let far = sq(50.0, 50.0, 10.0);
        let pit_as_dump = sq(100.0, 0.0, 10.0);
        let d = |g| Candidate {
            class: ChangeClass::Construction,
            geometry: g,
        };
        let got = assign(&known, &[d(&grown), d(&shifted), d(&far), d(&pit_as_dump)]);
        assert_eq!(got, vec![Some(0), Some(0), None, None]);
        assert_eq!(
            CaseId {
                prefix: "HLJ".into(),
                year: 2026,
                seq: 123
            }
            .to_string(),
            "HLJ-2026-000123"
        );
        assert!(check_prefix("HLJ").is_ok() && check_prefix("H-J").is_err());
        assert_eq!(days_between("2026-06-17", "2026-07-22"), Some(35));
    }
}
