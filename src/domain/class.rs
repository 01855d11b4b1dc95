//! The four disorders (四乱) as one enum, and the one obstruction rule.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Class of a flagged change. Raster code = index + 1 (0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeClass {
    /// 乱占: water or wetland turned into land (reclamation, dikes, fish ponds).
    Occupation,
    /// 乱采: sand bars, vegetation or shallow water turned into pits.
    SandMining,
    /// 乱堆: vegetation or bank turned into bare mounds of soil or waste.
    Dumping,
    /// 乱建: buildings, sheds, roads, hard standing.
    Construction,
}

/// Share of a polygon's area that must lie in the flood channel for it to
/// obstruct flood flow (DESIGN.md: "at least half").
pub const OBSTRUCTION_SHARE: f64 = 0.5;

impl ChangeClass {
    /// Every class, in code order.
    pub const ALL: [ChangeClass; 4] = [
        ChangeClass::Occupation,
        ChangeClass::SandMining,
        ChangeClass::Dumping,
        ChangeClass::Construction,
    ];

    /// The name used in files (`occupation`, `sand_mining`, `dumping`, `construction`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeClass::Occupation => "occupation",
            ChangeClass::SandMining => "sand_mining",
            ChangeClass::Dumping => "dumping",
            ChangeClass::Construction => "construction",
        }
    }

    /// The Chinese name (乱占, 乱采, 乱堆, 乱建).
    pub fn zh(self) -> &'static str {
        match self {
            ChangeClass::Occupation => "乱占",
            ChangeClass::SandMining => "乱采",
            ChangeClass::Dumping => "乱堆",
            ChangeClass::Construction => "乱建",
        }
    }

    /// Code in class rasters: 1–4.
    pub fn code(self) -> u8 {
        self.index() as u8 + 1
    }

    /// Position in [`ChangeClass::ALL`] (the class models' output order).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The class at position `i` of [`ChangeClass::ALL`].
    pub fn from_index(i: usize) -> Option<ChangeClass> {
        ChangeClass::ALL.get(i).copied()
    }

    /// Parses a file name of a class.
    pub fn parse(s: &str) -> Option<ChangeClass> {
        ChangeClass::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Fill and structures block flow; open pits do not.
    pub fn blocks_flow(self) -> bool {
        !matches!(self, ChangeClass::SandMining)
    }

    /// The obstruction rule: a class that blocks flow with at least
    /// half (`OBSTRUCTION_SHARE`) of its area inside its segment's flood
    /// channel. The share is only computed for classes that block flow.
    pub fn obstructs(self, channel_share: impl FnOnce() -> f64) -> bool {
        self.blocks_flow() && channel_share() >= OBSTRUCTION_SHARE
    }
}

impl fmt::Display for ChangeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_codes_and_rule() {
        for (i, c) in ChangeClass::ALL.into_iter().enumerate() {
            assert_eq!(ChangeClass::parse(c.as_str()), Some(c));
            assert_eq!(ChangeClass::from_index(i), Some(c));
            assert_eq!(c.code() as usize, i + 1);
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
        assert!(ChangeClass::Dumping.obstructs(|| 0.5));
        assert!(!ChangeClass::Dumping.obstructs(|| 0.49));
        assert!(!ChangeClass::SandMining.obstructs(|| 1.0));
        assert_eq!(ChangeClass::parse("pond"), None);
    }
}
