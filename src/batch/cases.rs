//! The reduce step's last part when a case store is kept (`--cases DB`):
//! tonight's merged records become observations of cases (one transaction),
//! get their case tag, and the packages list cases — tonight's new and
//! reappeared ones first, then every case still open.

use crate::domain::detection::Detection;
use crate::domain::manifest::Manifest;
use crate::error::Result;
use crate::sinks::cases::{Evidence, Ingest, Night, Rollup, Store};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Case store settings of a batch.
#[derive(Debug, Clone)]
pub struct CaseOptions {
    /// The SQLite file (created when missing).
    pub db: PathBuf,
    /// Case id prefix for a new store (an existing one keeps its own).
    pub prefix: Option<String>,
    /// Days after the first detection when an open case is overdue. A
    /// policy setting (整改时限), not a claim about imagery; 30 days is the
    /// common deadline of river-chief rectification notices.
    pub overdue_days: i64,
}

/// What the case step hands to the sinks.
pub struct CaseUpdate {
    /// What the night did to the store.
    pub ingest: Ingest,
    /// Records for the packages: tonight's (not false alarms) and the open
    /// cases not seen tonight, all tagged.
    pub package: Vec<Detection>,
    /// Supervision roll-up per city and county.
    pub rollup: Vec<Rollup>,
}

/// Images and chip paths of each record, as the observation keeps them.
fn evidence(merged: &[Detection], m: &Manifest, out: &Path) -> BTreeMap<String, Evidence> {
    let out = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    let abs = |p: &Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    merged
        .iter()
        .map(|d| {
            let t = m.tiles.iter().find(|t| t.id == d.tile);
            let spec = t.and_then(|t| {
                let mut a = t.after.clone();
                if !a.image.as_os_str().is_empty()
                    && !crate::domain::manifest::is_virtual_path(&a.image)
                {
                    a.image = std::path::absolute(&a.image).unwrap_or(a.image);
                }
                if let Some(b) = &mut a.bands {
                    for p in [&mut b.blue, &mut b.green, &mut b.red, &mut b.nir] {
                        *p = std::path::absolute(&*p).unwrap_or_else(|_| p.clone());
                    }
                    b.swir1 = b
                        .swir1
                        .as_ref()
                        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()));
                }
                a.mask = a
                    .mask
                    .as_ref()
                    .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()));
                serde_json::to_string(&a).ok()
            });
            let [b, a] = crate::sinks::dispatch::chip_paths(&out, &d.id);
            (
                d.id.clone(),
                Evidence {
                    before_image: t.map(|t| abs(t.before.label())),
                    after_image: t.map(|t| abs(t.after.label())),
                    after_mask: t.and_then(|t| t.after.mask.as_deref().map(abs)),
                    after_spec: spec,
                    chips: Some([b.display().to_string(), a.display().to_string()]),
                },
            )
        })
        .collect()
}

/// Records tonight in the store and tags `merged` with its cases.
///
/// # Errors
/// A locked or broken store.
pub fn update(
    store: &mut Store,
    merged: &mut [Detection],
    m: &Manifest,
    out: &Path,
    o: &CaseOptions,
) -> Result<CaseUpdate> {
    let ev = evidence(merged, m, out);
    let ingest = store.ingest(&Night {
        detections: merged,
        evidence: &ev,
        overdue_days: o.overdue_days,
    })?;
    for (d, t) in merged.iter_mut().zip(&ingest.tags) {
        d.case = Some(t.clone());
    }
    let night = if ingest.night.is_empty() {
        m.tiles
            .iter()
            .map(|t| t.after.date.clone())
            .max()
            .unwrap_or_default()
    } else {
        ingest.night.clone()
    };
    let mut package = merged.to_vec();
    package.extend(store.open_unseen(&ingest.tags, &night, o.overdue_days)?);
    let rollup = store.rollup(&night, o.overdue_days)?;
    Ok(CaseUpdate {
        ingest,
        package,
        rollup,
    })
}
