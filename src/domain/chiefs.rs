//! The river-chief registry (河湖长制): five levels from province to village,
//! each chief pointing at the chief above.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Administrative level of a chief, top down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// 省级
    Province,
    /// 市级
    City,
    /// 县级
    County,
    /// 乡级
    Township,
    /// 村级
    Village,
}

impl Level {
    /// The lowercase name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::City => "city",
            Level::County => "county",
            Level::Township => "township",
            Level::Village => "village",
        }
    }
}

/// One chief position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chief {
    /// Unique id.
    pub id: String,
    /// Level.
    pub level: Level,
    /// Title of the position (not a person).
    pub title: String,
    /// Region the chief is responsible for; becomes a folder name in dispatch.
    pub region: String,
    /// The chief one level up, `None` for a province.
    pub parent: Option<String>,
}

#[derive(Deserialize)]
struct ChiefsFile {
    chiefs: Vec<serde_json::Value>,
}

/// A validated registry: every parent exists, is of a higher level, no cycles.
#[derive(Debug, Clone)]
pub struct Registry {
    /// Where it was read from.
    pub path: PathBuf,
    chiefs: BTreeMap<String, Chief>,
}

/// Checks a region name for use as a folder name.
pub fn region_problem(region: &str) -> Option<&'static str> {
    if region.trim().is_empty() {
        Some("is empty")
    } else if region.contains('/') || region.contains('\\') {
        Some("contains a path separator")
    } else if region == "." || region == ".." || region.contains("..") {
        Some("contains '..'")
    } else if region.chars().any(|c| c.is_control()) {
        Some("contains a control character")
    } else {
        None
    }
}

impl Registry {
    /// Parses and validates a registry from its JSON text; `path` names the
    /// file in messages.
    ///
    /// # Errors
    /// [`Error::Json`] for malformed JSON, [`Error::Many`] listing every broken
    /// chief (missing or unknown parent, level out of order, cycle, duplicate id).
    pub fn from_json(path: &Path, text: &str) -> Result<Registry> {
        let file: ChiefsFile = super::parse_json(path, text)?;
        let mut problems = Vec::new();
        let mut chiefs = BTreeMap::new();
        for (i, v) in file.chiefs.into_iter().enumerate() {
            let id_hint = v
                .get("id")
                .and_then(|x| x.as_str())
                .unwrap_or("?")
                .to_string();
            match serde_json::from_value::<Chief>(v) {
                Ok(c) => {
                    if let Some(p) = region_problem(&c.region) {
                        problems.push(format!(
                            "{}: chief {:?}: region {:?} {p}",
                            path.display(),
                            c.id,
                            c.region
                        ));
                    }
                    if c.id.is_empty() {
                        problems.push(format!("{}: chief #{i}: empty id", path.display()));
                    }
                    if chiefs.contains_key(&c.id) {
                        problems.push(format!(
                            "{}: chief {:?} appears twice",
                            path.display(),
                            c.id
                        ));
                    }
                    chiefs.insert(c.id.clone(), c);
                }
                Err(e) => problems.push(format!("{}: chief #{i} ({id_hint}): {e}", path.display())),
            }
        }
        let reg = Registry {
            path: path.to_path_buf(),
            chiefs,
        };
        problems.extend(reg.structure_problems());
        if problems.is_empty() {
            Ok(reg)
        } else {
            Err(Error::Many(problems))
        }
    }

    /// Builds a registry from chiefs already in memory (used by synth and tests).
    ///
    /// # Errors
    /// As [`Registry::from_json`].
    pub fn from_chiefs(path: &Path, list: Vec<Chief>) -> Result<Registry> {
        let reg = Registry {
            path: path.to_path_buf(),
            chiefs: list.into_iter().map(|c| (c.id.clone(), c)).collect(),
        };
        let p = reg.structure_problems();
        if p.is_empty() {
            Ok(reg)
        } else {
            Err(Error::Many(p))
        }
    }

    fn structure_problems(&self) -> Vec<String> {
        let f = self.path.display();
        let mut out = Vec::new();
        for c in self.chiefs.values() {
            match (&c.parent, c.level) {
                (None, Level::Province) => {}
                (None, l) => out.push(format!(
                    "{f}: chief {:?} ({}) has no parent; only a province may be top",
                    c.id,
                    l.as_str()
                )),
                (Some(p), _) => match self.chiefs.get(p) {
                    None => out.push(format!(
                        "{f}: chief {:?}: parent {:?} does not exist",
                        c.id, p
                    )),
                    Some(pc) if pc.level >= c.level => out.push(format!(
                        "{f}: chief {:?} ({}) has parent {:?} of level {}, which is not higher",
                        c.id,
                        c.level.as_str(),
                        p,
                        pc.level.as_str()
                    )),
                    Some(_) => {}
                },
            }
            // Cycle check: walk up at most len steps.
            let mut cur = c.parent.as_deref();
            let mut steps = 0;
            while let Some(p) = cur {
                if p == c.id {
                    out.push(format!(
                        "{f}: chief {:?} is its own ancestor (parent cycle)",
                        c.id
                    ));
                    break;
                }
                steps += 1;
                if steps > self.chiefs.len() {
                    break;
                }
                cur = self.chiefs.get(p).and_then(|x| x.parent.as_deref());
            }
        }
        out
    }

    /// Looks up a chief.
    pub fn get(&self, id: &str) -> Option<&Chief> {
        self.chiefs.get(id)
    }

    /// All chiefs in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Chief> {
        self.chiefs.values()
    }

    /// Number of chiefs.
    pub fn len(&self) -> usize {
        self.chiefs.len()
    }

    /// True when there are no chiefs.
    pub fn is_empty(&self) -> bool {
        self.chiefs.is_empty()
    }

    /// The chain of chiefs from `id` up to the province (inclusive).
    pub fn chain(&self, id: &str) -> Vec<&Chief> {
        let mut out = Vec::new();
        let mut cur = self.chiefs.get(id);
        while let Some(c) = cur {
            out.push(c);
            if out.len() > self.chiefs.len() {
                break;
            }
            cur = c.parent.as_deref().and_then(|p| self.chiefs.get(p));
        }
        out
    }

    /// Region of the chief of `level` in the chain of `id`, if any.
    pub fn region_at(&self, id: &str, level: Level) -> Option<String> {
        self.chain(id)
            .into_iter()
            .find(|c| c.level == level)
            .map(|c| c.region.clone())
    }

    /// The chief properties every polygon carries, for the chief `chief_id`.
    pub fn link(&self, chief_id: &str) -> ChiefLink {
        let chain = self.chain(chief_id);
        let c = chain.first();
        ChiefLink {
            chief_id: chief_id.to_string(),
            chief_level: c.map(|c| c.level.as_str().to_string()).unwrap_or_default(),
            chief_title: c.map(|c| c.title.clone()).unwrap_or_default(),
            chain: chain.iter().map(|c| c.id.clone()).collect(),
            city: self.region_at(chief_id, Level::City),
            county: self.region_at(chief_id, Level::County),
        }
    }
}

/// The chief properties every polygon carries: the one place they are built
/// ([`Registry::link`]) and the one shape they are written in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChiefLink {
    /// Responsible chief.
    pub chief_id: String,
    /// Its level.
    pub chief_level: String,
    /// Its title.
    pub chief_title: String,
    /// Chief ids from the responsible chief up to the province.
    pub chain: Vec<String>,
    /// Region of the city-level chief in the chain.
    pub city: Option<String>,
    /// Region of the county-level chief in the chain.
    pub county: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chief(id: &str, level: Level, parent: Option<&str>) -> Chief {
        Chief {
            id: id.into(),
            level,
            title: id.into(),
            region: id.into(),
            parent: parent.map(Into::into),
        }
    }

    #[test]
    fn chain_goes_to_province() {
        let r = Registry::from_chiefs(
            Path::new("x"),
            vec![
                chief("p", Level::Province, None),
                chief("c", Level::City, Some("p")),
                chief("v", Level::Village, Some("c")),
            ],
        )
        .unwrap();
        let ids: Vec<_> = r.chain("v").iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["v", "c", "p"]);
        assert_eq!(r.region_at("v", Level::City).as_deref(), Some("c"));
        assert_eq!(r.region_at("v", Level::County), None);
    }

    #[test]
    fn rejects_cycles_missing_parents_and_order() {
        let e = Registry::from_chiefs(
            Path::new("x"),
            vec![
                chief("a", Level::City, Some("b")),
                chief("b", Level::County, Some("a")),
                chief("c", Level::Village, Some("zz")),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("cycle"), "{e}");
        assert!(e.contains("\"zz\" does not exist"), "{e}");
        assert!(e.contains("not higher"), "{e}");
    }
}
