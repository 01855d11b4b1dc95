//! The JSON Schemas of `schemas/`, compiled into the binary and checked at
//! run time: inputs after riverwatch's own checks (so a file the code accepts
//! but the published schema rejects is an error, never a silent drift), and
//! every GeoJSON riverwatch writes before it is written.

use crate::error::{Error, Result};
use std::path::Path;
use std::sync::OnceLock;

/// Which schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `schemas/manifest.schema.json`.
    Manifest,
    /// `schemas/rivers.schema.json`.
    Rivers,
    /// `schemas/chiefs.schema.json`.
    Chiefs,
    /// `schemas/flagged.schema.json`.
    Flagged,
}

const SOURCES: [(Kind, &str, &str); 4] = [
    (
        Kind::Manifest,
        "manifest.schema.json",
        include_str!("../schemas/manifest.schema.json"),
    ),
    (
        Kind::Rivers,
        "rivers.schema.json",
        include_str!("../schemas/rivers.schema.json"),
    ),
    (
        Kind::Chiefs,
        "chiefs.schema.json",
        include_str!("../schemas/chiefs.schema.json"),
    ),
    (
        Kind::Flagged,
        "flagged.schema.json",
        include_str!("../schemas/flagged.schema.json"),
    ),
];

/// The compiled validator of one schema, built on first use (compiling
/// costs memory, so a run only pays for the schemas it uses).
fn compiled(kind: Kind) -> std::result::Result<&'static jsonschema::Validator, String> {
    static CELLS: [OnceLock<std::result::Result<jsonschema::Validator, String>>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let k = SOURCES.iter().position(|(k, _, _)| *k == kind).unwrap_or(0);
    let (_, name, text) = SOURCES[k];
    CELLS[k]
        .get_or_init(|| {
            let v: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("{name}: {e}"))?;
            jsonschema::validator_for(&v).map_err(|e| format!("{name}: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn name(kind: Kind) -> &'static str {
    SOURCES
        .iter()
        .find(|(k, _, _)| *k == kind)
        .map_or("?", |(_, n, _)| n)
}

/// Checks a JSON value against a schema; the error names `path`, the
/// schema, and up to five violations with their JSON pointers.
///
/// # Errors
/// [`Error::Invalid`] listing the violations.
pub fn check(kind: Kind, path: &Path, value: &serde_json::Value) -> Result<()> {
    let v = compiled(kind)
        .map_err(|e| Error::invalid(path, format!("built-in schema does not compile: {e}")))?;
    let problems: Vec<String> = v
        .iter_errors(value)
        .take(5)
        .map(|e| format!("at {:?}: {}", e.instance_path().to_string(), message(&e)))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(
            path,
            format!(
                "does not match schemas/{}: {}",
                name(kind),
                problems.join("; ")
            ),
        ))
    }
}

/// A violation in words; an enum's allowed values are listed in full (the
/// library names two and counts the rest), so the fix is in the message.
fn message(e: &jsonschema::ValidationError<'_>) -> String {
    match e.kind() {
        jsonschema::error::ValidationErrorKind::Enum { options } => {
            format!("{} is not one of {options}", e.instance())
        }
        _ => e.to_string(),
    }
}

/// As [`check`], on JSON text; text that is not JSON passes here (the
/// parser that follows reports it with its position).
///
/// # Errors
/// [`Error::Invalid`] listing the violations.
pub fn check_file(kind: Kind, path: &Path, text: &str) -> Result<()> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => check(kind, path, &v),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_violation_names_the_file_the_schema_and_where() {
        let v = serde_json::json!({"chiefs": [
            {"id": "c1", "level": "duke", "title": "t", "region": "r", "parent": null}
        ]});
        let e = check(Kind::Chiefs, Path::new("reg.json"), &v)
            .expect_err("an unknown level breaks the schema")
            .to_string();
        for want in [
            "reg.json",
            "chiefs.schema.json",
            "/chiefs/0/level",
            r#""duke" is not one of ["province","city","county","township","village"]"#,
        ] {
            assert!(e.contains(want), "{want:?} missing from: {e}");
        }
        let ok = serde_json::json!({"chiefs": [
            {"id": "c1", "level": "city", "title": "t", "region": "r", "parent": null}
        ]});
        assert!(check(Kind::Chiefs, Path::new("reg.json"), &ok).is_ok());
    }

    #[test]
    fn every_schema_compiles() {
        for (k, name, _) in SOURCES {
            assert!(compiled(k).is_ok(), "{name}");
        }
    }
}
