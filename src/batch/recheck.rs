//! `riverwatch recheck`: every case reported rectified whose tile is in the
//! manifest is compared — the manifest's `after` image (the newest) against
//! its `before` image (the reference state) inside the case polygon, and
//! against the image it was detected on — and judged verified or
//! rectification failed. Verdicts and their evidence go to the case store
//! (one transaction per verdict and date); a re-check package per city and
//! county (CSV + printable HTML with before / at-detection / now chips) goes
//! to the output folder.

use crate::domain::case::Status;
use crate::domain::config::Config;
use crate::domain::grid::Grid;
use crate::domain::manifest::{DateImage, Manifest, Tile};
use crate::error::{Error, Result};
use crate::io::crs::Transformer;
use crate::io::write_atomic;
use crate::kernels::polygons::burn;
use crate::pipeline::read_pair;
use crate::pipeline::recheck::{compare, measure, Comparison, SiteMeasure, Verdict};
use crate::sinks::cases::{CaseRow, Mark, Store};
use crate::sinks::dispatch::{chip_png, UNASSIGNED};
use base64::Engine as _;
use geo::{BoundingRect, MultiPolygon};
use ndarray::{s, ArrayView2, ArrayView3};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One re-checked case.
#[derive(Debug, Clone, Serialize)]
pub struct Site {
    /// Case id.
    pub case_id: String,
    /// Tile.
    pub tile: String,
    /// City and county.
    pub city: String,
    /// County.
    pub county: String,
    /// Class at opening.
    pub class: String,
    /// Reference date.
    pub before_date: String,
    /// Date of the latest detection.
    pub detected: String,
    /// Date of the newest image.
    pub now: String,
    /// Measurements and verdict.
    pub measure: SiteMeasure,
    /// Chip files: before, at detection, now.
    pub chips: Vec<String>,
}

/// Verdicts scored against a truth of what became of each site
/// (`recheck --truth`, e.g. synth's `rectification.geojson`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecheckScore {
    /// Rectified sites judged verified.
    pub rectified_verified: usize,
    /// Rectified sites judged failed (a team wrongly accused).
    pub rectified_failed: usize,
    /// Sites still there judged failed (fake rectification caught).
    pub kept_failed: usize,
    /// Sites still there judged verified (fake rectification missed).
    pub kept_verified: usize,
    /// Inconclusive verdicts on sites with a truth object.
    pub inconclusive: usize,
    /// Re-checked cases that match no truth object (false detections).
    pub no_truth: usize,
    /// Share of right verdicts among conclusive ones on sites with truth.
    pub accuracy: Option<f64>,
}

/// What a re-check did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecheckReport {
    /// The score against a truth file, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<RecheckScore>,
    /// Re-checked cases.
    pub sites: Vec<Site>,
    /// Cases reported rectified whose tile is not in the manifest.
    pub not_covered: Vec<String>,
    /// Tiles that could not be read, with the reason.
    pub failures: Vec<(String, String)>,
}

impl RecheckReport {
    /// Count of a verdict.
    pub fn count(&self, v: Verdict) -> usize {
        self.sites.iter().filter(|s| s.measure.verdict == v).count()
    }

    /// A table for the terminal.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<16} {:<14} {:>6} {:>7} {:>7} {:>8}  {:<24} verdict\n",
            "case", "tile", "usable", "then", "now", "restored", "land cover ref/then/now"
        );
        for x in &self.sites {
            let m = &x.measure;
            let _ = writeln!(
                s,
                "{:<16} {:<14} {:>6.2} {:>7} {:>7.2} {:>8.2}  {:<24} {}",
                x.case_id,
                x.tile,
                m.usable_share,
                m.changed_then_share
                    .map_or_else(|| "-".to_string(), |v| format!("{v:.2}")),
                m.changed_now_share,
                m.restored_share,
                m.land_cover.join("/"),
                verdict_str(m.verdict)
            );
        }
        let _ = writeln!(
            s,
            "{} re-checked: {} verified, {} rectification failed, {} inconclusive (too little visible); {} not covered by this manifest; {} tile(s) unreadable",
            self.sites.len(),
            self.count(Verdict::Verified),
            self.count(Verdict::Failed),
            self.count(Verdict::Inconclusive),
            self.not_covered.len(),
            self.failures.len()
        );
        for (t, why) in &self.failures {
            let _ = writeln!(s, "  tile {t}: {why}");
        }
        if let Some(x) = &self.score {
            let _ = writeln!(
                s,
                "against the truth: accuracy {} — rectified: {} verified, {} failed; still there: {} failed, {} verified; {} inconclusive, {} without a truth object",
                x.accuracy.map_or_else(|| "-".into(), |a| format!("{a:.3}")),
                x.rectified_verified,
                x.rectified_failed,
                x.kept_failed,
                x.kept_verified,
                x.inconclusive,
                x.no_truth
            );
        }
        s
    }
}

fn verdict_str(v: Verdict) -> &'static str {
    match v {
        Verdict::Verified => "verified",
        Verdict::Failed => "rectification_failed",
        Verdict::Inconclusive => "inconclusive",
    }
}

/// Re-checks every case reported rectified that the manifest covers.
///
/// # Errors
/// A locked or broken store, an unwritable output folder. An unreadable
/// tile is recorded in the report and its cases stay as they are.
pub fn recheck(
    m: &Manifest,
    cfg: &Config,
    store: &mut Store,
    out: &Path,
    truth: Option<&Path>,
) -> Result<RecheckReport> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut report = RecheckReport::default();
    let mut by_tile: BTreeMap<String, Vec<CaseRow>> = BTreeMap::new();
    for c in store.list(Some(Status::ReportedRectified))? {
        if m.tiles.iter().any(|t| t.id == c.tile) {
            by_tile.entry(c.tile.clone()).or_default().push(c);
        } else {
            report.not_covered.push(c.id);
        }
    }
    let mut pngs: BTreeMap<String, [Vec<u8>; 3]> = BTreeMap::new();
    for (tile_id, cases) in &by_tile {
        let Some(tile) = m.tiles.iter().find(|t| &t.id == tile_id) else {
            continue;
        };
        match recheck_tile(m, tile, cases, store, cfg, out) {
            Ok(sites) => {
                for (site, png) in sites {
                    pngs.insert(site.case_id.clone(), png);
                    report.sites.push(site);
                }
            }
            Err(e) => report.failures.push((tile_id.clone(), e.to_string())),
        }
    }
    if let Some(t) = truth {
        report.score = Some(score(&report, store, t)?);
    }
    record(store, &report)?;
    write_packages(out, &report, &pngs)?;
    let json = serde_json::to_string_pretty(&report).map_err(|e| Error::Json {
        path: out.join("recheck.json"),
        msg: e.to_string(),
    })?;
    write_atomic(&out.join("recheck.json"), format!("{json}\n").as_bytes())?;
    Ok(report)
}

/// Scores verdicts against polygons whose `fate` is `rectified` or `kept`:
/// a case takes the fate of the truth polygon it overlaps best (the
/// case-matching rule).
fn score(report: &RecheckReport, store: &Store, truth: &Path) -> Result<RecheckScore> {
    use crate::domain::case::Overlap;
    let truth = crate::io::vector::read_polygons(truth)?;
    let mut x = RecheckScore::default();
    for site in &report.sites {
        let g = store.get(&site.case_id)?.geometry;
        let fate = truth
            .iter()
            .map(|t| (Overlap::of(&g, &t.geometry), t.str("fate")))
            .filter(|(o, _)| o.same_site())
            .max_by(|a, b| a.0.iou.total_cmp(&b.0.iou))
            .map(|(_, f)| f);
        match (fate, site.measure.verdict) {
            (None, _) => x.no_truth += 1,
            (Some(_), Verdict::Inconclusive) => x.inconclusive += 1,
            (Some("rectified"), Verdict::Verified) => x.rectified_verified += 1,
            (Some("rectified"), Verdict::Failed) => x.rectified_failed += 1,
            (Some(_), Verdict::Failed) => x.kept_failed += 1,
            (Some(_), Verdict::Verified) => x.kept_verified += 1,
        }
    }
    let n = x.rectified_verified + x.rectified_failed + x.kept_failed + x.kept_verified;
    x.accuracy = (n > 0).then(|| {
        ((x.rectified_verified + x.kept_failed) as f64 / n as f64 * 1000.0).round() / 1000.0
    });
    Ok(x)
}

/// Verdicts into the store, grouped by verdict and date (one transaction
/// each); inconclusive sites keep their status.
fn record(store: &mut Store, report: &RecheckReport) -> Result<()> {
    let mut groups: BTreeMap<(Status, String), Vec<String>> = BTreeMap::new();
    let mut evidence: BTreeMap<String, String> = BTreeMap::new();
    for s in &report.sites {
        let to = match s.measure.verdict {
            Verdict::Verified => Status::Verified,
            Verdict::Failed => Status::RectificationFailed,
            Verdict::Inconclusive => continue,
        };
        groups
            .entry((to, s.now.clone()))
            .or_default()
            .push(s.case_id.clone());
        evidence.insert(
            s.case_id.clone(),
            serde_json::to_string(&serde_json::json!({"measure": s.measure, "chips": s.chips}))
                .unwrap_or_default(),
        );
    }
    let ev = |id: &str| evidence.get(id).cloned();
    for ((to, date), ids) in &groups {
        let note = format!(
            "re-check on {date}: {}",
            if *to == Status::Verified {
                "site restored"
            } else {
                "site not restored"
            }
        );
        store.mark(
            ids,
            &Mark {
                to: *to,
                by: "riverwatch recheck",
                note: &note,
                date,
                evidence: Some(&ev),
            },
        )?;
    }
    Ok(())
}

/// Reads the detection-date image of a case on the tile's grid.
fn detection_pair(
    tile: &Tile,
    obs: &crate::sinks::cases::Observation,
    m: &Manifest,
    cfg: &Config,
) -> Option<Comparison> {
    let after = match &obs.after_spec {
        Some(spec) => serde_json::from_str::<DateImage>(spec).ok()?,
        None => DateImage {
            image: PathBuf::from(obs.after_image.as_ref()?),
            date: obs.date.clone(),
            mask: obs.after_mask.as_ref().map(PathBuf::from),
            ..DateImage::default()
        },
    };
    let t = Tile {
        id: tile.id.clone(),
        before: tile.before.clone(),
        after,
    };
    let pair = read_pair(&t, &m.sensor, cfg.block_rows).ok()?;
    Some(compare(pair.before.view(), pair.after, pair.valid, cfg))
}

type SiteOut = (Site, [Vec<u8>; 3]);

/// The observation the team answered: the latest (largest that night)
/// detection on or before the latest "reported rectified" event; the first
/// detection when the report predates them all.
fn detection_before_report(
    store: &Store,
    id: &str,
) -> Result<Option<crate::sinks::cases::Observation>> {
    let reported = store
        .events(Some(id))?
        .into_iter()
        .filter(|e| e.status == Status::ReportedRectified)
        .map(|e| e.date)
        .max();
    let mut obs = store.observations(Some(id))?;
    obs.sort_by(|a, b| a.date.cmp(&b.date).then(a.area_m2.total_cmp(&b.area_m2)));
    let answered = obs
        .iter()
        .rev()
        .find(|o| reported.as_ref().map_or(true, |r| &o.date <= r))
        .cloned();
    Ok(answered.or_else(|| obs.first().cloned()))
}

fn recheck_tile(
    m: &Manifest,
    tile: &Tile,
    cases: &[CaseRow],
    store: &Store,
    cfg: &Config,
    out: &Path,
) -> Result<Vec<SiteOut>> {
    let pair = read_pair(tile, &m.sensor, cfg.block_rows)?;
    let grid = pair.grid.clone();
    let before = pair.before;
    let valid_ref = pair.valid.clone();
    let now = compare(before.view(), pair.after, pair.valid, cfg);
    let tr = Transformer::from_wgs84(&grid.wkt)?;
    let mut then_cache: BTreeMap<String, Option<Comparison>> = BTreeMap::new();
    let mut sites = Vec::new();
    for c in cases {
        let Some(last) = detection_before_report(store, &c.id)? else {
            continue;
        };
        let last = &last;
        let key = last.after_image.clone().unwrap_or_default();
        let then = then_cache
            .entry(key)
            .or_insert_with(|| detection_pair(tile, last, m, cfg));
        // The site as the team was told about it.
        let mut g = last.geometry.clone();
        tr.apply_geom(&mut g)?;
        let Some((r0, c0, inside)) = burn(&grid, &g) else {
            continue;
        };
        let mm = measure(before.view(), &now, then.as_ref(), (r0, c0, inside.view()));
        let city = c.city.clone().unwrap_or_else(|| UNASSIGNED.into());
        let county = c.county.clone().unwrap_or_else(|| UNASSIGNED.into());
        let png = chips3(
            &grid,
            &g,
            before.view(),
            valid_ref.view(),
            then.as_ref(),
            &now,
        );
        let dir = out.join(&city).join("chips");
        let mut paths = Vec::new();
        for (name, bytes) in ["before", "detection", "now"].iter().zip(&png) {
            if bytes.is_empty() {
                continue;
            }
            let p = dir.join(format!("{}_{name}.png", c.id));
            write_atomic(&p, bytes)?;
            paths.push(std::path::absolute(&p).unwrap_or(p).display().to_string());
        }
        sites.push((
            Site {
                case_id: c.id.clone(),
                tile: tile.id.clone(),
                city,
                county,
                class: c.class.as_str().to_string(),
                before_date: tile.before.date.clone(),
                detected: last.date.clone(),
                now: tile.after.date.clone(),
                measure: mm,
                chips: paths,
            },
            png,
        ));
    }
    Ok(sites)
}

/// Before, at-detection and now chips (empty when not available).
fn chips3(
    grid: &Grid,
    g: &MultiPolygon<f64>,
    before: ArrayView3<f32>,
    valid: ArrayView2<bool>,
    then: Option<&Comparison>,
    now: &Comparison,
) -> [Vec<u8>; 3] {
    let Some(bb) = g.bounding_rect() else {
        return Default::default();
    };
    let (c0, r0) = grid.to_pixel(bb.min().x, bb.max().y);
    let (c1, r1) = grid.to_pixel(bb.max().x, bb.min().y);
    let pad = 12.0;
    let cs = (c0.floor() - pad).max(0.0) as usize;
    let rs = (r0.floor() - pad).max(0.0) as usize;
    let ce = ((c1.ceil() + pad).max(0.0) as usize).min(grid.width);
    let re = ((r1.ceil() + pad).max(0.0) as usize).min(grid.height);
    if ce <= cs || re <= rs {
        return Default::default();
    }
    let k = (180 / (ce - cs).max(re - rs)).clamp(1, 12) as u32;
    let chip = |bands: ArrayView3<f32>, v: ArrayView2<bool>| {
        chip_png(
            bands.slice(s![.., rs..re, cs..ce]),
            v.slice(s![rs..re, cs..ce]),
            g,
            grid,
            (cs, rs),
            k,
            crate::sinks::dispatch::View::TrueColour,
        )
        .unwrap_or_default()
    };
    [
        chip(before, valid),
        then.map_or_else(Vec::new, |t| chip(t.after.view(), t.usable.view())),
        chip(now.after.view(), now.usable.view()),
    ]
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Per city and county: a CSV and a printable HTML page.
fn write_packages(
    out: &Path,
    r: &RecheckReport,
    pngs: &BTreeMap<String, [Vec<u8>; 3]>,
) -> Result<()> {
    let mut groups: BTreeMap<(&str, &str), Vec<&Site>> = BTreeMap::new();
    for s in &r.sites {
        groups.entry((&s.city, &s.county)).or_default().push(s);
    }
    for ((city, county), sites) in groups {
        let dir = out.join(city);
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::from("\u{feff}".as_bytes()));
        let header = [
            "case_id",
            "verdict",
            "tile",
            "class",
            "before_date",
            "detected",
            "now",
            "usable_share",
            "changed_then_share",
            "changed_now_share",
            "restored_share",
            "distance_then",
            "distance_now",
            "land_cover_before",
            "land_cover_then",
            "land_cover_now",
        ];
        let csv_err =
            |e: csv::Error| Error::invalid(dir.join(format!("{county}.csv")), e.to_string());
        w.write_record(header).map_err(csv_err)?;
        let num =
            |v: Option<f64>| v.map_or_else(String::new, |x| serde_json::Value::from(x).to_string());
        for s in &sites {
            let m = &s.measure;
            w.write_record([
                s.case_id.clone(),
                verdict_str(m.verdict).to_string(),
                s.tile.clone(),
                s.class.clone(),
                s.before_date.clone(),
                s.detected.clone(),
                s.now.clone(),
                num(Some(m.usable_share)),
                num(m.changed_then_share),
                num(Some(m.changed_now_share)),
                num(Some(m.restored_share)),
                num(m.distance_then),
                num(Some(m.distance_now)),
                m.land_cover[0].clone(),
                m.land_cover[1].clone(),
                m.land_cover[2].clone(),
            ])
            .map_err(csv_err)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| csv_err(csv::Error::from(e.into_error())))?;
        write_atomic(&dir.join(format!("{county}.csv")), &bytes)?;
        let mut h = format!("<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{c} {k} 整改复核</title><style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse}} td,th{{border:1px solid #bbb;padding:3px 6px;text-align:left}} .item{{break-inside:avoid;border-top:2px solid #444;margin-top:1em;padding-top:.5em}} .chips img{{width:31%;image-rendering:pixelated;border:1px solid #666;margin-right:1%}} .failed{{color:#b00;font-weight:bold}} .verified{{color:#070;font-weight:bold}}</style></head><body><h1>{c} · {k} — 整改复核 re-check of reported rectifications</h1><p>Chips: true colour, reference date (left), at detection (middle), now (right), outline in yellow. A site is verified when ≥ 70 % of the pixels changed at detection match the reference again.</p>", c = esc(city), k = esc(county));
        for s in &sites {
            let m = &s.measure;
            let v = verdict_str(m.verdict);
            let _ = write!(h, "<div class=\"item\"><h3>{id} — <span class=\"{cls}\">{v}</span></h3><table><tr><th>Tile</th><td>{tile}</td><th>Class</th><td>{class}</td></tr><tr><th>Dates</th><td>{b} → {d} → {n}</td><th>Visible</th><td>{u:.0} %</td></tr><tr><th>Restored</th><td>{r:.0} % of the pixels changed at detection</td><th>Land cover</th><td>{lc}</td></tr></table><div class=\"chips\">",
                id = esc(&s.case_id), cls = if m.verdict == Verdict::Failed { "failed" } else { "verified" },
                tile = esc(&s.tile), class = esc(&s.class), b = esc(&s.before_date), d = esc(&s.detected), n = esc(&s.now),
                u = m.usable_share * 100.0, r = m.restored_share * 100.0, lc = esc(&m.land_cover.join(" → ")));
            if let Some(p) = pngs.get(&s.case_id) {
                for (name, bytes) in ["reference", "at detection", "now"].iter().zip(p) {
                    if bytes.is_empty() {
                        let _ = write!(h, "<em>{name}: image not readable</em> ");
                    } else {
                        let _ = write!(
                            h,
                            "<img alt=\"{name}\" src=\"data:image/png;base64,{}\">",
                            base64::engine::general_purpose::STANDARD.encode(bytes)
                        );
                    }
                }
            }
            h.push_str("</div></div>");
        }
        h.push_str("</body></html>\n");
        write_atomic(&dir.join(format!("{county}.html")), h.as_bytes())?;
    }
    Ok(())
}
