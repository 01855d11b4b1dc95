//! The case store: an embedded SQLite database (`--cases DB`) that follows
//! each encroachment site across nights. The schema is versioned
//! (`PRAGMA user_version`, migrations applied in order); the database runs in
//! WAL mode; every write is one `BEGIN IMMEDIATE` transaction, so a kill at
//! any moment leaves either the whole night or none of it, and a re-run of
//! the same night (same detections) changes nothing.
//!
//! Tables: `meta` (prefix, schema notes), `cases` (one row per site: status,
//! class, place, latest geometry), `observations` (every detection of a case:
//! night, geometry, class, confidence, the full record, image and chip
//! paths), `events` (status history: who, when, note, re-check evidence),
//! `runs` (nights already ingested, keyed by a hash of their detections).

use crate::domain::case::{
    assign, check_prefix, days_between, Candidate, CaseId, KnownSite, Listing, Status,
};
use crate::domain::class::ChangeClass;
use crate::domain::detection::{CaseTag, Detection};
use crate::error::{Error, Result};
use crate::io::vector::{collection_bytes, detection_feature, geometry, polygonal};
use geo::{BoundingRect, MultiPolygon};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Schema migrations, applied in order; `user_version` is the number done.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE cases(
       id TEXT PRIMARY KEY, prefix TEXT NOT NULL, year INTEGER NOT NULL, seq INTEGER NOT NULL,
       status TEXT NOT NULL, class TEXT NOT NULL, tile TEXT NOT NULL,
       city TEXT, county TEXT, river TEXT, segment_id TEXT, chief_id TEXT, chief_title TEXT,
       first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, status_date TEXT NOT NULL,
       area_m2 REAL NOT NULL, minx REAL NOT NULL, miny REAL NOT NULL, maxx REAL NOT NULL, maxy REAL NOT NULL,
       geometry TEXT NOT NULL,
       UNIQUE(prefix, year, seq));
     CREATE INDEX cases_x ON cases(minx, maxx);
     CREATE INDEX cases_status ON cases(status);
     CREATE TABLE observations(
       run TEXT NOT NULL, detection_id TEXT NOT NULL, case_id TEXT NOT NULL REFERENCES cases(id),
       date TEXT NOT NULL, before_date TEXT NOT NULL, tile TEXT NOT NULL,
       class TEXT NOT NULL, confidence REAL NOT NULL, area_m2 REAL NOT NULL,
       listing TEXT NOT NULL, status_after TEXT NOT NULL,
       geometry TEXT NOT NULL, record TEXT NOT NULL,
       before_image TEXT, after_image TEXT, after_mask TEXT, after_spec TEXT, chips TEXT,
       PRIMARY KEY(run, detection_id));
     CREATE INDEX observations_case ON observations(case_id, date);
     CREATE TABLE events(
       case_id TEXT NOT NULL REFERENCES cases(id), n INTEGER NOT NULL, date TEXT NOT NULL,
       status TEXT NOT NULL, by TEXT NOT NULL, note TEXT NOT NULL, evidence TEXT,
       PRIMARY KEY(case_id, n));
     CREATE TABLE runs(
       run TEXT PRIMARY KEY, night TEXT NOT NULL, detections INTEGER NOT NULL,
       opened INTEGER NOT NULL, continued INTEGER NOT NULL, reappeared INTEGER NOT NULL,
       suppressed INTEGER NOT NULL);",
];

/// How long a writer waits for another one before giving up with a
/// "locked" error: long enough to ride over a `cases mark` or the commit of
/// a night (well under a second), short enough to fail visibly.
const BUSY_WAIT: Duration = Duration::from_secs(3);

/// Default case id prefix when a store is created without one.
pub const DEFAULT_PREFIX: &str = "RW";

/// An open case store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Images and chips of one detection, recorded with its observation.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// Earlier-date image path.
    pub before_image: Option<String>,
    /// Later-date image path.
    pub after_image: Option<String>,
    /// Later-date mask path, if the manifest gave one.
    pub after_mask: Option<String>,
    /// The later date as the manifest described it (JSON of its
    /// `DateImage`: band files, mask kind, radiometry), for re-checks.
    pub after_spec: Option<String>,
    /// Chip files (before, after).
    pub chips: Option<[String; 2]>,
}

/// One night's detections for [`Store::ingest`].
pub struct Night<'a> {
    /// Merged detections, in output order.
    pub detections: &'a [Detection],
    /// Per detection id: images and chips.
    pub evidence: &'a BTreeMap<String, Evidence>,
    /// Days after which an open case is overdue.
    pub overdue_days: i64,
}

/// What a night did to the store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ingest {
    /// This night's detections were already in the store: nothing changed.
    pub already: bool,
    /// Cases opened.
    pub opened: usize,
    /// Detections that continued an open case.
    pub continued: usize,
    /// Verified or closed cases that reappeared.
    pub reappeared: usize,
    /// Detections at false-alarm sites (recorded, not dispatched).
    pub suppressed: usize,
    /// The night's date (latest after date).
    pub night: String,
    /// Case tag per detection, in the order given.
    #[serde(skip)]
    pub tags: Vec<CaseTag>,
}

/// One case as listed.
#[derive(Debug, Clone, Serialize)]
pub struct CaseRow {
    /// Case id.
    pub id: String,
    /// Status.
    pub status: Status,
    /// Class at opening.
    pub class: ChangeClass,
    /// Tile of the latest detection.
    pub tile: String,
    /// City (region of the city chief), if known.
    pub city: Option<String>,
    /// County, if known.
    pub county: Option<String>,
    /// River.
    pub river: Option<String>,
    /// Responsible chief id.
    pub chief_id: Option<String>,
    /// Responsible chief title.
    pub chief_title: Option<String>,
    /// First detection date.
    pub first_seen: String,
    /// Latest detection date.
    pub last_seen: String,
    /// Date of the latest status change.
    pub status_date: String,
    /// Area of the latest geometry, m².
    pub area_m2: f64,
    /// Latest geometry, WGS84.
    #[serde(skip)]
    pub geometry: MultiPolygon<f64>,
}

/// One observation of a case.
#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    /// Case id.
    pub case_id: String,
    /// Detection id in that night's output.
    pub detection_id: String,
    /// Night (after date).
    pub date: String,
    /// Before date of the pair.
    pub before_date: String,
    /// Tile.
    pub tile: String,
    /// Class detected that night.
    pub class: ChangeClass,
    /// Confidence that night.
    pub confidence: f64,
    /// Area that night, m².
    pub area_m2: f64,
    /// How that night's package listed it.
    pub listing: Listing,
    /// Earlier-date image.
    pub before_image: Option<String>,
    /// Later-date image.
    pub after_image: Option<String>,
    /// Later-date mask.
    pub after_mask: Option<String>,
    /// The later date's manifest entry (JSON).
    #[serde(skip)]
    pub after_spec: Option<String>,
    /// Chip files, JSON list.
    pub chips: Option<String>,
    /// Geometry, WGS84.
    #[serde(skip)]
    pub geometry: MultiPolygon<f64>,
}

/// One entry of a case's status history.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Case id.
    pub case_id: String,
    /// Order within the case, from 1.
    pub n: i64,
    /// Date, YYYY-MM-DD.
    pub date: String,
    /// Status set.
    pub status: Status,
    /// Who: a team, `riverwatch batch` or `riverwatch recheck`.
    pub by: String,
    /// Free text.
    pub note: String,
    /// Re-check evidence (JSON), when a re-check set it.
    pub evidence: Option<String>,
}

/// Counts per city and county for the supervision list (督办单).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Rollup {
    /// City.
    pub city: String,
    /// County (`(all)` for the city total).
    pub county: String,
    /// Open cases (new, dispatched, reappeared, reported, failed).
    pub open: usize,
    /// Open longer than the deadline.
    pub overdue: usize,
    /// Reported rectified, waiting for a re-check.
    pub reported: usize,
    /// Verified or closed.
    pub rectified: usize,
    /// Failed re-checks (current status).
    pub failed_rechecks: usize,
    /// False alarms.
    pub false_alarms: usize,
}

fn store_err(path: &Path, e: &rusqlite::Error) -> Error {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked, NotADatabase, ReadOnly};
    let msg = match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked) => "case store is locked by another writer (a batch, recheck or `cases mark` is writing to it); wait for it to finish and run again".to_string(),
        Some(NotADatabase) => "not a riverwatch case store (not an SQLite database); give a new file name to create one".to_string(),
        Some(ReadOnly) => "case store is read-only; check the file's permissions".to_string(),
        _ => format!("case store: {e}"),
    };
    Error::invalid(path, msg)
}

fn to_json_geom(g: &MultiPolygon<f64>) -> String {
    serde_json::to_string(&geometry(g)).unwrap_or_default()
}

fn from_json_geom(path: &Path, s: &str) -> Result<MultiPolygon<f64>> {
    let g: geojson::Geometry = s
        .parse::<geojson::GeoJson>()
        .ok()
        .and_then(|gj| geojson::Geometry::try_from(gj).ok())
        .ok_or_else(|| Error::invalid(path, "case store: a stored geometry is not GeoJSON"))?;
    polygonal(&g).map_err(|m| Error::invalid(path, format!("case store: {m}")))
}

fn listing_of(s: &str) -> Listing {
    match s {
        "new" => Listing::New,
        "reappeared" => Listing::Reappeared,
        "suppressed" => Listing::Suppressed,
        _ => Listing::Open,
    }
}

fn listing_str(l: Listing) -> &'static str {
    match l {
        Listing::New => "new",
        Listing::Reappeared => "reappeared",
        Listing::Open => "open",
        Listing::Suppressed => "suppressed",
    }
}

fn status_of(path: &Path, s: &str) -> Result<Status> {
    Status::parse(s).map_err(|m| Error::invalid(path, format!("case store: {m}")))
}

fn class_of(path: &Path, s: &str) -> Result<ChangeClass> {
    serde_json::from_value(serde_json::Value::from(s))
        .map_err(|_| Error::invalid(path, format!("case store: unknown class {s:?}")))
}

/// The key of a night: SHA-256 of its detections as GeoJSON, so the same
/// detections (a re-run, a resumed run) are recognised.
pub fn run_key(dets: &[Detection]) -> String {
    let bytes = collection_bytes(dets.iter().map(detection_feature));
    let h = Sha256::digest(&bytes);
    h.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Opens (or creates) a store and brings its schema up to date. `prefix`
    /// is the case id prefix for a new store; an existing store keeps its
    /// own, and a different `prefix` is an error.
    ///
    /// # Errors
    /// Not an SQLite file, a store from a newer riverwatch, locked, a
    /// different prefix, an unwritable folder.
    pub fn open(path: &Path, prefix: Option<&str>) -> Result<Store> {
        if let Some(p) = prefix {
            check_prefix(p).map_err(Error::Config)?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(Error::invalid(
                    path,
                    format!(
                        "folder {} does not exist; create it or give another --cases path",
                        dir.display()
                    ),
                ));
            }
        }
        let conn = Connection::open(path).map_err(|e| store_err(path, &e))?;
        conn.busy_timeout(BUSY_WAIT)
            .map_err(|e| store_err(path, &e))?;
        let mut s = Store {
            conn,
            path: path.to_path_buf(),
        };
        s.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| store_err(path, &e))?;
        s.conn
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| store_err(path, &e))?;
        s.migrate(prefix)?;
        Ok(s)
    }

    /// Opens an existing store (for `cases` and `recheck`).
    ///
    /// # Errors
    /// As [`Store::open`], and a missing file.
    pub fn open_existing(path: &Path) -> Result<Store> {
        if !path.is_file() {
            return Err(Error::invalid(
                path,
                "no such case store; a store is created by `riverwatch batch … --cases DB`",
            ));
        }
        Store::open(path, None)
    }

    fn migrate(&mut self, prefix: Option<&str>) -> Result<()> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| store_err(&path, &e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if version as usize > MIGRATIONS.len() {
            return Err(Error::invalid(
                &path,
                format!(
                    "case store schema version {version} is newer than this riverwatch knows ({}); use a newer riverwatch",
                    MIGRATIONS.len()
                ),
            ));
        }
        if version == 0 {
            let n: i64 = tx
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
                .map_err(err)?;
            if n > 0 {
                return Err(Error::invalid(
                    &path,
                    "an SQLite database, but not a riverwatch case store; give a new file name to create one",
                ));
            }
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(m).map_err(err)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(err)?;
        }
        let stored: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'prefix'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)?;
        match (stored, prefix) {
            (None, p) => {
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES ('prefix', ?1)",
                    [p.unwrap_or(DEFAULT_PREFIX)],
                )
                .map_err(err)?;
            }
            (Some(s), Some(p)) if s != p => {
                return Err(Error::invalid(
                    &path,
                    format!("this store numbers cases with prefix {s:?}, not {p:?}; leave out --case-prefix or use another store"),
                ));
            }
            _ => {}
        }
        tx.commit().map_err(err)
    }

    /// The case id prefix of this store.
    ///
    /// # Errors
    /// An unreadable store.
    pub fn prefix(&self) -> Result<String> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'prefix'", [], |r| {
                r.get(0)
            })
            .map_err(|e| store_err(&self.path, &e))
    }

    /// Records one night: every detection continues a known case (see
    /// the case-matching rule) or opens a new one; verified and closed sites reappear;
    /// false-alarm sites are recorded but not dispatched. New cases are
    /// marked dispatched, reappeared ones stay `reappeared` (both are in the
    /// package written right after).
    /// One transaction; a night already recorded changes nothing and returns
    /// the tags it had.
    ///
    /// # Errors
    /// A locked or broken store.
    pub fn ingest(&mut self, night: &Night<'_>) -> Result<Ingest> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| store_err(&path, &e);
        let dets = night.detections;
        let key = run_key(dets);
        let date = dets
            .iter()
            .map(|d| d.after_date.as_str())
            .max()
            .unwrap_or("")
            .to_string();
        let prefix = self.prefix()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let done: Option<String> = tx
            .query_row("SELECT night FROM runs WHERE run = ?1", [&key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)?;
        if done.is_some() {
            drop(tx);
            let mut ing = self.tags_of_run(&key, dets, night.overdue_days)?;
            ing.already = true;
            ing.night = date;
            return Ok(ing);
        }
        // Known sites near tonight's detections.
        let known = {
            let mut bb = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
            for d in dets {
                if let Some(r) = d.geometry.bounding_rect() {
                    bb = [
                        bb[0].min(r.min().x),
                        bb[1].min(r.min().y),
                        bb[2].max(r.max().x),
                        bb[3].max(r.max().y),
                    ];
                }
            }
            let mut st = tx
                .prepare(
                    "SELECT id, class, geometry FROM cases
                     WHERE maxx >= ?1 AND minx <= ?3 AND maxy >= ?2 AND miny <= ?4 ORDER BY id",
                )
                .map_err(err)?;
            let rows = st
                .query_map(params![bb[0], bb[1], bb[2], bb[3]], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(err)?;
            let mut known = Vec::new();
            for row in rows {
                let (id, class, g) = row.map_err(err)?;
                known.push(KnownSite {
                    id,
                    class: class_of(&path, &class)?,
                    geometry: from_json_geom(&path, &g)?,
                });
            }
            known
        };
        let cands: Vec<Candidate<'_>> = dets
            .iter()
            .map(|d| Candidate {
                class: d.class,
                geometry: &d.geometry,
            })
            .collect();
        let matched = assign(&known, &cands);
        let mut ing = Ingest {
            night: date.clone(),
            ..Ingest::default()
        };
        // Per case: its status before tonight and tonight's listing.
        let mut touched: BTreeMap<String, (Status, Listing)> = BTreeMap::new();
        let mut tags = Vec::with_capacity(dets.len());
        for (d, m) in dets.iter().zip(&matched) {
            let (case_id, listing, status) = match m {
                Some(i) => {
                    let id = known[*i].id.clone();
                    let (status, listing) = match touched.get(&id) {
                        Some(&(s, l)) => (s, l),
                        None => {
                            let before: String = tx
                                .query_row("SELECT status FROM cases WHERE id = ?1", [&id], |r| {
                                    r.get(0)
                                })
                                .map_err(err)?;
                            let before = status_of(&path, &before)?;
                            let (after, listing) = before.on_detection();
                            if after != before {
                                add_event(&tx, &path, &id, &d.after_date, after, "riverwatch batch", "the site changed again after verification; in tonight's dispatch package")?;
                                ing.reappeared += 1;
                            }
                            touched.insert(id.clone(), (after, listing));
                            (after, listing)
                        }
                    };
                    match listing {
                        Listing::Suppressed => ing.suppressed += 1,
                        _ => ing.continued += 1,
                    }
                    (id, listing, status)
                }
                None => {
                    let year: i32 = d
                        .after_date
                        .get(..4)
                        .and_then(|y| y.parse().ok())
                        .unwrap_or(0);
                    let seq: i64 = tx
                        .query_row(
                            "SELECT coalesce(max(seq), 0) + 1 FROM cases WHERE prefix = ?1 AND year = ?2",
                            params![prefix, year],
                            |r| r.get(0),
                        )
                        .map_err(err)?;
                    let id = CaseId {
                        prefix: prefix.clone(),
                        year,
                        seq: seq as u32,
                    }
                    .to_string();
                    insert_case(&tx, &path, &id, &prefix, year, seq, d)?;
                    add_event(
                        &tx,
                        &path,
                        &id,
                        &d.after_date,
                        Status::New,
                        "riverwatch batch",
                        "first detected",
                    )?;
                    add_event(
                        &tx,
                        &path,
                        &id,
                        &d.after_date,
                        Status::Dispatched,
                        "riverwatch batch",
                        "in tonight's dispatch package",
                    )?;
                    touched.insert(id.clone(), (Status::Dispatched, Listing::New));
                    ing.opened += 1;
                    (id, Listing::New, Status::Dispatched)
                }
            };
            let ev = night.evidence.get(&d.id).cloned().unwrap_or_default();
            tx.execute(
                "INSERT INTO observations(run, detection_id, case_id, date, before_date, tile, class, confidence,
                   area_m2, listing, status_after, geometry, record, before_image, after_image, after_mask, after_spec, chips)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                params![
                    key,
                    d.id,
                    case_id,
                    d.after_date,
                    d.before_date,
                    d.tile,
                    d.class.as_str(),
                    d.confidence,
                    d.area_m2,
                    listing_str(listing),
                    status.as_str(),
                    to_json_geom(&d.geometry),
                    serde_json::to_string(d).unwrap_or_default(),
                    ev.before_image,
                    ev.after_image,
                    ev.after_mask,
                    ev.after_spec,
                    ev.chips.map(|c| serde_json::to_string(&c).unwrap_or_default()),
                ],
            )
            .map_err(err)?;
            tags.push((case_id, listing, status));
        }
        // Latest geometry per case: its largest detection tonight.
        let mut latest: BTreeMap<&str, &Detection> = BTreeMap::new();
        for (d, (id, _, _)) in dets.iter().zip(&tags) {
            let e = latest.entry(id.as_str()).or_insert(d);
            if d.area_m2 > e.area_m2 {
                *e = d;
            }
        }
        for (id, d) in &latest {
            let (status, _) = touched[*id];
            update_case(&tx, &path, id, d, status)?;
        }
        tx.execute(
            "INSERT INTO runs(run, night, detections, opened, continued, reappeared, suppressed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                key,
                date,
                dets.len() as i64,
                ing.opened as i64,
                ing.continued as i64,
                ing.reappeared as i64,
                ing.suppressed as i64
            ],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        ing.tags = self.tags_from(dets, &tags, night.overdue_days)?;
        Ok(ing)
    }

    fn tags_from(
        &self,
        dets: &[Detection],
        tags: &[(String, Listing, Status)],
        overdue_days: i64,
    ) -> Result<Vec<CaseTag>> {
        let mut out = Vec::with_capacity(tags.len());
        for (d, (id, listing, status)) in dets.iter().zip(tags) {
            let first: String = self
                .conn
                .query_row("SELECT first_seen FROM cases WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .map_err(|e| store_err(&self.path, &e))?;
            out.push(tag(
                id,
                *status,
                *listing,
                &first,
                &d.after_date,
                overdue_days,
            ));
        }
        Ok(out)
    }

    fn tags_of_run(&self, key: &str, dets: &[Detection], overdue_days: i64) -> Result<Ingest> {
        let path = &self.path;
        let err = |e: rusqlite::Error| store_err(path, &e);
        let (opened, continued, reappeared, suppressed): (i64, i64, i64, i64) = self
            .conn
            .query_row(
                "SELECT opened, continued, reappeared, suppressed FROM runs WHERE run = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(err)?;
        let mut tags = Vec::new();
        for d in dets {
            let (id, listing, status): (String, String, String) = self
                .conn
                .query_row(
                    "SELECT case_id, listing, status_after FROM observations WHERE run = ?1 AND detection_id = ?2",
                    [key, d.id.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(err)?;
            tags.push((id, listing_of(&listing), status_of(path, &status)?));
        }
        Ok(Ingest {
            already: true,
            opened: opened as usize,
            continued: continued as usize,
            reappeared: reappeared as usize,
            suppressed: suppressed as usize,
            night: String::new(),
            tags: self.tags_from(dets, &tags, overdue_days)?,
        })
    }

    /// Cases, optionally only those of one status, ordered by id.
    ///
    /// # Errors
    /// An unreadable store.
    pub fn list(&self, status: Option<Status>) -> Result<Vec<CaseRow>> {
        let path = &self.path;
        let err = |e: rusqlite::Error| store_err(path, &e);
        let mut st = self
            .conn
            .prepare(
                "SELECT id, status, class, tile, city, county, river, chief_id, chief_title,
                        first_seen, last_seen, status_date, area_m2, geometry
                 FROM cases WHERE ?1 IS NULL OR status = ?1 ORDER BY id",
            )
            .map_err(err)?;
        let rows = st
            .query_map([status.map(Status::as_str)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, String>(9)?,
                    r.get::<_, String>(10)?,
                    r.get::<_, String>(11)?,
                    r.get::<_, f64>(12)?,
                    r.get::<_, String>(13)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let r = row.map_err(err)?;
            out.push(CaseRow {
                id: r.0,
                status: status_of(path, &r.1)?,
                class: class_of(path, &r.2)?,
                tile: r.3,
                city: r.4,
                county: r.5,
                river: r.6,
                chief_id: r.7,
                chief_title: r.8,
                first_seen: r.9,
                last_seen: r.10,
                status_date: r.11,
                area_m2: r.12,
                geometry: from_json_geom(path, &r.13)?,
            });
        }
        Ok(out)
    }

    /// One case.
    ///
    /// # Errors
    /// No such case (the message says how to list them).
    pub fn get(&self, id: &str) -> Result<CaseRow> {
        self.list(None)?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| {
                Error::invalid(
                    &self.path,
                    format!("no case {id:?} in this store; `riverwatch cases list --cases {}` lists them", self.path.display()),
                )
            })
    }

    /// Every observation (of one case, or of all), by case then date.
    ///
    /// # Errors
    /// An unreadable store.
    pub fn observations(&self, case: Option<&str>) -> Result<Vec<Observation>> {
        let path = &self.path;
        let err = |e: rusqlite::Error| store_err(path, &e);
        let mut st = self
            .conn
            .prepare(
                "SELECT case_id, detection_id, date, before_date, tile, class, confidence, area_m2,
                        listing, before_image, after_image, chips, geometry, after_mask, after_spec
                 FROM observations WHERE ?1 IS NULL OR case_id = ?1
                 ORDER BY case_id, date, detection_id",
            )
            .map_err(err)?;
        let rows = st
            .query_map([case], |r| {
                Ok((
                    (
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                    ),
                    (
                        r.get::<_, f64>(6)?,
                        r.get::<_, f64>(7)?,
                        r.get::<_, String>(8)?,
                        r.get::<_, Option<String>>(9)?,
                        r.get::<_, Option<String>>(10)?,
                        r.get::<_, Option<String>>(11)?,
                        r.get::<_, String>(12)?,
                        r.get::<_, Option<String>>(13)?,
                        r.get::<_, Option<String>>(14)?,
                    ),
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (a, b) = row.map_err(err)?;
            out.push(Observation {
                case_id: a.0,
                detection_id: a.1,
                date: a.2,
                before_date: a.3,
                tile: a.4,
                class: class_of(path, &a.5)?,
                confidence: b.0,
                area_m2: b.1,
                listing: listing_of(&b.2),
                before_image: b.3,
                after_image: b.4,
                after_mask: b.7,
                after_spec: b.8,
                chips: b.5,
                geometry: from_json_geom(path, &b.6)?,
            });
        }
        Ok(out)
    }

    /// The latest detection record of a case (as the night's output had it).
    ///
    /// # Errors
    /// An unreadable store.
    pub fn latest_record(&self, id: &str) -> Result<Option<Detection>> {
        let path = &self.path;
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT record, geometry FROM observations WHERE case_id = ?1
                 ORDER BY date DESC, area_m2 DESC, detection_id LIMIT 1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| store_err(path, &e))?;
        let Some((rec, g)) = row else {
            return Ok(None);
        };
        let mut d: Detection = serde_json::from_str(&rec)
            .map_err(|e| Error::invalid(path, format!("case store: a stored record: {e}")))?;
        d.geometry = from_json_geom(path, &g)?;
        Ok(Some(d))
    }

    /// Status history (of one case, or of all), by case then order.
    ///
    /// # Errors
    /// An unreadable store.
    pub fn events(&self, case: Option<&str>) -> Result<Vec<Event>> {
        let path = &self.path;
        let err = |e: rusqlite::Error| store_err(path, &e);
        let mut st = self
            .conn
            .prepare(
                "SELECT case_id, n, date, status, by, note, evidence FROM events
                 WHERE ?1 IS NULL OR case_id = ?1 ORDER BY case_id, n",
            )
            .map_err(err)?;
        let rows = st
            .query_map([case], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let r = row.map_err(err)?;
            out.push(Event {
                case_id: r.0,
                n: r.1,
                date: r.2,
                status: status_of(path, &r.3)?,
                by: r.4,
                note: r.5,
                evidence: r.6,
            });
        }
        Ok(out)
    }

    /// Moves cases to `to` (a team's report, a false alarm, a closure, or a
    /// re-check verdict with its evidence). All or none: one transaction.
    ///
    /// # Errors
    /// An unknown case, a move outside the lifecycle (the message lists the
    /// allowed ones), a locked store.
    pub fn mark(&mut self, ids: &[String], m: &Mark<'_>) -> Result<()> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| store_err(&path, &e);
        chrono::NaiveDate::parse_from_str(m.date, "%Y-%m-%d").map_err(|_| {
            Error::Config(format!("--date {:?} is not a date (YYYY-MM-DD)", m.date))
        })?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        for id in ids {
            let now: Option<String> = tx
                .query_row("SELECT status FROM cases WHERE id = ?1", [id], |r| r.get(0))
                .optional()
                .map_err(err)?;
            let Some(now) = now else {
                return Err(Error::invalid(
                    &path,
                    format!("no case {id:?} in this store; `riverwatch cases list --cases {}` lists them", path.display()),
                ));
            };
            status_of(&path, &now)?
                .check_mark(m.to)
                .map_err(|msg| Error::invalid(&path, format!("case {id}: {msg}")))?;
            add_event(&tx, &path, id, m.date, m.to, m.by, m.note)?;
            if let Some(ev) = m.evidence.and_then(|f| f(id)) {
                tx.execute(
                    "UPDATE events SET evidence = ?2 WHERE case_id = ?1 AND n = (SELECT max(n) FROM events WHERE case_id = ?1)",
                    params![id, ev],
                )
                .map_err(err)?;
            }
            tx.execute(
                "UPDATE cases SET status = ?2, status_date = ?3 WHERE id = ?1",
                params![id, m.to.as_str(), m.date],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Open cases with their latest record, for tonight's packages: those
    /// not among `seen` (tonight's cases), tagged as still open.
    ///
    /// # Errors
    /// An unreadable store.
    pub fn open_unseen(
        &self,
        seen: &[CaseTag],
        night: &str,
        overdue_days: i64,
    ) -> Result<Vec<Detection>> {
        let seen: std::collections::BTreeSet<&str> =
            seen.iter().map(|t| t.case_id.as_str()).collect();
        let mut out = Vec::new();
        for c in self.list(None)? {
            if !c.status.is_open() || seen.contains(c.id.as_str()) {
                continue;
            }
            if let Some(mut d) = self.latest_record(&c.id)? {
                d.case = Some(tag(
                    &c.id,
                    c.status,
                    Listing::Open,
                    &c.first_seen,
                    night,
                    overdue_days,
                ));
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Counts per county and per city (county `(all)`), for the supervision
    /// list. `overdue_days` as for the packages, counted to `night`.
    ///
    /// # Errors
    /// An unreadable store.
    pub fn rollup(&self, night: &str, overdue_days: i64) -> Result<Vec<Rollup>> {
        let unassigned = super::dispatch::UNASSIGNED;
        let mut m: BTreeMap<(String, String), Rollup> = BTreeMap::new();
        for c in self.list(None)? {
            let city = c.city.clone().unwrap_or_else(|| unassigned.into());
            let county = c.county.clone().unwrap_or_else(|| unassigned.into());
            let overdue = is_overdue(c.status, &c.first_seen, night, overdue_days);
            for key in [(city.clone(), county), (city.clone(), "(all)".to_string())] {
                let r = m.entry(key.clone()).or_insert_with(|| Rollup {
                    city: key.0.clone(),
                    county: key.1.clone(),
                    ..Rollup::default()
                });
                r.open += usize::from(c.status.is_open());
                r.overdue += usize::from(overdue);
                r.reported += usize::from(c.status == Status::ReportedRectified);
                r.rectified += usize::from(matches!(c.status, Status::Verified | Status::Closed));
                r.failed_rechecks += usize::from(c.status == Status::RectificationFailed);
                r.false_alarms += usize::from(c.status == Status::FalseAlarm);
            }
        }
        Ok(m.into_values().collect())
    }
}

/// Evidence (JSON) for a case id, if any.
pub type EvidenceFn<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// A status change for [`Store::mark`].
pub struct Mark<'a> {
    /// New status.
    pub to: Status,
    /// Who (a team name, `riverwatch recheck`).
    pub by: &'a str,
    /// Note.
    pub note: &'a str,
    /// Date, YYYY-MM-DD.
    pub date: &'a str,
    /// Evidence (JSON) per case id, for re-check verdicts.
    pub evidence: Option<&'a EvidenceFn<'a>>,
}

fn is_overdue(status: Status, first_seen: &str, night: &str, overdue_days: i64) -> bool {
    status.is_open()
        && status != Status::ReportedRectified
        && days_between(first_seen, night).is_some_and(|d| d > overdue_days)
}

fn tag(
    id: &str,
    status: Status,
    listing: Listing,
    first: &str,
    night: &str,
    overdue_days: i64,
) -> CaseTag {
    CaseTag {
        case_id: id.to_string(),
        case_status: status,
        case_listing: listing,
        first_seen: first.to_string(),
        age_days: days_between(first, night).unwrap_or(0),
        overdue: is_overdue(status, first, night, overdue_days),
    }
}

fn add_event(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    id: &str,
    date: &str,
    status: Status,
    by: &str,
    note: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO events(case_id, n, date, status, by, note)
         VALUES (?1, (SELECT coalesce(max(n), 0) + 1 FROM events WHERE case_id = ?1), ?2, ?3, ?4, ?5)",
        params![id, date, status.as_str(), by, note],
    )
    .map(|_| ())
    .map_err(|e| store_err(path, &e))
}

fn bbox(g: &MultiPolygon<f64>) -> [f64; 4] {
    g.bounding_rect()
        .map_or([0.0; 4], |r| [r.min().x, r.min().y, r.max().x, r.max().y])
}

fn insert_case(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    id: &str,
    prefix: &str,
    year: i32,
    seq: i64,
    d: &Detection,
) -> Result<()> {
    let chief = d.chief.clone().unwrap_or_default();
    let seg = d.segment.clone().unwrap_or_default();
    let b = bbox(&d.geometry);
    tx.execute(
        "INSERT INTO cases(id, prefix, year, seq, status, class, tile, city, county, river, segment_id,
           chief_id, chief_title, first_seen, last_seen, status_date, area_m2, minx, miny, maxx, maxy, geometry)
         VALUES (?1, ?2, ?3, ?4, 'dispatched', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        params![
            id,
            prefix,
            year,
            seq,
            d.class.as_str(),
            d.tile,
            chief.city,
            chief.county,
            d.segment.as_ref().map(|_| seg.river.clone()),
            d.segment.as_ref().map(|_| seg.segment_id.clone()),
            d.chief.as_ref().map(|_| chief.chief_id.clone()),
            d.chief.as_ref().map(|_| chief.chief_title.clone()),
            d.after_date,
            d.area_m2,
            b[0],
            b[1],
            b[2],
            b[3],
            to_json_geom(&d.geometry),
        ],
    )
    .map(|_| ())
    .map_err(|e| store_err(path, &e))
}

fn update_case(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    id: &str,
    d: &Detection,
    status: Status,
) -> Result<()> {
    let b = bbox(&d.geometry);
    tx.execute(
        "UPDATE cases SET last_seen = max(last_seen, ?2), tile = ?3, area_m2 = ?4, geometry = ?5,
           minx = ?6, miny = ?7, maxx = ?8, maxy = ?9,
           status_date = CASE WHEN status = ?10 THEN status_date ELSE ?2 END, status = ?10
         WHERE id = ?1",
        params![
            id,
            d.after_date,
            d.tile,
            d.area_m2,
            to_json_geom(&d.geometry),
            b[0],
            b[1],
            b[2],
            b[3],
            status.as_str()
        ],
    )
    .map(|_| ())
    .map_err(|e| store_err(path, &e))
}
