//! `riverwatch cases …` and `riverwatch recheck`: flags to library calls.

use crate::cli::{CasesArgs, CasesCmd, RecheckArgs};
use anyhow::{Context, Result};
use riverwatch::{CaseStatus, CaseStore, ExportFormat, Mark};
use std::process::ExitCode;

fn today() -> String {
    chrono::Local::now().format("%Y-%m-%d").to_string()
}

pub fn cases(a: CasesArgs) -> Result<ExitCode> {
    let Some(db) = &a.cases else {
        anyhow::bail!("give the case store: riverwatch cases --cases DB …");
    };
    match a.cmd {
        CasesCmd::List { status, ids, json } => {
            let store = CaseStore::open_existing(db)?;
            let status = status
                .as_deref()
                .map(CaseStatus::parse)
                .transpose()
                .map_err(|m| anyhow::anyhow!("--status: {m}"))?;
            let rows = store.list(status)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if ids {
                for r in &rows {
                    println!("{}", r.id);
                }
            } else {
                println!(
                    "{:<16} {:<21} {:<13} {:<10} {:<10} {:>9}  {:<10} {:<10}",
                    "case", "status", "class", "city", "county", "area_m2", "first", "last"
                );
                for r in &rows {
                    println!(
                        "{:<16} {:<21} {:<13} {:<10} {:<10} {:>9.0}  {:<10} {:<10}",
                        r.id,
                        r.status.as_str(),
                        r.class.as_str(),
                        r.city.as_deref().unwrap_or("-"),
                        r.county.as_deref().unwrap_or("-"),
                        r.area_m2,
                        r.first_seen,
                        r.last_seen
                    );
                }
                eprintln!("{} case(s)", rows.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        CasesCmd::Show { id, json } => {
            let store = CaseStore::open_existing(db)?;
            let c = store.get(&id)?;
            let obs = store.observations(Some(&id))?;
            let ev = store.events(Some(&id))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"case": c, "observations": obs, "events": ev})
                    )?
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{} · {} ({}) · {} · {} / {}",
                c.id,
                c.status.as_str(),
                c.status.zh(),
                c.class.as_str(),
                c.city.as_deref().unwrap_or("-"),
                c.county.as_deref().unwrap_or("-")
            );
            println!(
                "river {} · chief {} · first seen {} · last seen {} · {:.0} m²",
                c.river.as_deref().unwrap_or("-"),
                c.chief_title.as_deref().unwrap_or("-"),
                c.first_seen,
                c.last_seen,
                c.area_m2
            );
            println!("observations:");
            for o in &obs {
                println!(
                    "  {} {} {} conf {:.2} {:.0} m² tile {}",
                    o.date,
                    o.detection_id,
                    o.class.as_str(),
                    o.confidence,
                    o.area_m2,
                    o.tile
                );
            }
            println!("history:");
            for e in &ev {
                println!(
                    "  {} {:<21} by {}{}{}",
                    e.date,
                    e.status.as_str(),
                    e.by,
                    if e.note.is_empty() { "" } else { ": " },
                    e.note
                );
                if let Some(x) = &e.evidence {
                    println!("      evidence {x}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CasesCmd::Mark {
            ids,
            status,
            by,
            note,
            date,
        } => {
            let to = CaseStatus::parse(&status).map_err(|m| anyhow::anyhow!("--status: {m}"))?;
            let mut store = CaseStore::open_existing(db)?;
            let date = date.unwrap_or_else(today);
            store.mark(
                &ids,
                &Mark {
                    to,
                    by: &by,
                    note: &note,
                    date: &date,
                    evidence: None,
                },
            )?;
            eprintln!("{} case(s) marked {}", ids.len(), to.as_str());
            Ok(ExitCode::SUCCESS)
        }
        CasesCmd::Export { out, format } => {
            let format = match format.as_str() {
                "csv" => ExportFormat::Csv,
                "gpkg" => ExportFormat::Gpkg,
                "all" => ExportFormat::All,
                f => anyhow::bail!("--format {f:?}: one of csv, gpkg, all"),
            };
            let store = CaseStore::open_existing(db)?;
            let files = riverwatch::export_cases(&store, &out, format)
                .with_context(|| format!("exporting into {}", out.display()))?;
            for f in files {
                println!("{}", f.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn recheck(a: RecheckArgs, cfg: &riverwatch::Config) -> Result<ExitCode> {
    let m = riverwatch::load_manifest(&a.manifest)?;
    let mut store = CaseStore::open_existing(&a.cases)?;
    let r = riverwatch::recheck(&m, cfg, &mut store, &a.out, a.truth.as_deref())
        .with_context(|| format!("re-check into {}", a.out.display()))?;
    print!("{}", r.table());
    Ok(ExitCode::SUCCESS)
}
