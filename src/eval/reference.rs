//! A change raster scored against a reference change map on any grid (for
//! example OSCD's `reference.tif`, 1 unchanged / 2 changed, in EPSG:4326):
//! the reference is sampled at the centre of every prediction pixel
//! (nearest neighbour, through the CRS transformation), and pixels whose
//! reference code is neither "unchanged" nor "changed" are left out.

use super::pixels::PixelScores;
use crate::domain::grid::Grid;
use crate::error::{Error, Result};
use crate::io::crs::{Srs, Transformer};
use crate::io::raster::read_u8;
use ndarray::Array2;
use serde::Serialize;
use std::path::Path;

/// Which reference codes mean what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codes {
    /// Codes of unchanged pixels.
    pub unchanged: Vec<u8>,
    /// Codes of changed pixels.
    pub changed: Vec<u8>,
}

impl Codes {
    /// Parses `unchanged=1,changed=2` (each name may repeat:
    /// `changed=2,changed=3`).
    ///
    /// # Errors
    /// A message naming the part that is not `unchanged=N` or `changed=N`.
    pub fn parse(s: &str) -> std::result::Result<Codes, String> {
        let mut c = Codes {
            unchanged: Vec::new(),
            changed: Vec::new(),
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not name=code"))?;
            let v: u8 = v
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: code must be 0–255"))?;
            match k.trim() {
                "unchanged" => c.unchanged.push(v),
                "changed" => c.changed.push(v),
                other => return Err(format!("{other:?} is not unchanged or changed")),
            }
        }
        if c.unchanged.is_empty() || c.changed.is_empty() {
            return Err("give at least one unchanged=N and one changed=N".into());
        }
        Ok(c)
    }
}

/// Scores of a change raster against a reference map.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReferenceReport {
    /// Pixel scores (non-zero prediction = changed).
    pub scores: PixelScores,
    /// Pixels scored.
    pub pixels: u64,
    /// Share of scored pixels the prediction flags.
    pub flagged_share: f64,
    /// Share of scored pixels the reference marks changed.
    pub changed_share: f64,
    /// Flagged pixels by prediction value (for `change_class`: 1
    /// occupation, 2 sand mining, 3 dumping, 4 construction): `[tp, fp]`.
    pub flagged_by_value: std::collections::BTreeMap<u8, [u64; 2]>,
}

/// The reference sampled onto `grid`: Some(true) changed, Some(false)
/// unchanged, None outside the reference or with another code.
fn sample(grid: &Grid, rg: &Grid, r: &Array2<u8>, codes: &Codes) -> Result<Array2<Option<bool>>> {
    let t = Transformer::new(Srs::Wkt(&grid.wkt), Srs::Wkt(&rg.wkt))?;
    let (h, w) = (grid.height, grid.width);
    let (mut xs, mut ys) = (Vec::with_capacity(h * w), Vec::with_capacity(h * w));
    for row in 0..h {
        for col in 0..w {
            let (x, y) = grid.to_map(col as f64 + 0.5, row as f64 + 0.5);
            xs.push(x);
            ys.push(y);
        }
    }
    t.apply(&mut xs, &mut ys)?;
    Ok(Array2::from_shape_fn((h, w), |(row, col)| {
        let k = row * w + col;
        let (c, rr) = rg.to_pixel(xs[k], ys[k]);
        if c < 0.0 || rr < 0.0 || c >= rg.width as f64 || rr >= rg.height as f64 {
            return None;
        }
        let v = r[[rr as usize, c as usize]];
        if codes.changed.contains(&v) {
            Some(true)
        } else if codes.unchanged.contains(&v) {
            Some(false)
        } else {
            None
        }
    }))
}

/// A reference change map sampled onto `grid` (nearest neighbour at pixel
/// centres, through the CRS transformation): `Some(true)` changed,
/// `Some(false)` unchanged, `None` outside the map or another code.
///
/// # Errors
/// An unreadable reference or a CRS that cannot be transformed.
pub fn sample_reference(
    grid: &Grid,
    reference: &Path,
    codes: &Codes,
) -> Result<Array2<Option<bool>>> {
    let (rg, r) = read_u8(reference)?;
    sample(grid, &rg, &r, codes)
}

/// Scores the single-band change raster `pred` (non-zero = changed) against
/// the reference map `reference`.
///
/// # Errors
/// Unreadable rasters, a CRS that cannot be transformed, or no pixel of the
/// prediction covered by a known reference code.
pub fn evaluate_reference(pred: &Path, reference: &Path, codes: &Codes) -> Result<ReferenceReport> {
    let (grid, p) = read_u8(pred)?;
    let (rg, r) = read_u8(reference)?;
    let truth = sample(&grid, &rg, &r, codes)?;
    let mut s = PixelScores::default();
    let mut by_value = std::collections::BTreeMap::<u8, [u64; 2]>::new();
    for (&pv, &tv) in p.iter().zip(truth.iter()) {
        if let (true, Some(t)) = (pv != 0, tv) {
            by_value.entry(pv).or_default()[usize::from(!t)] += 1;
        }
        match (pv != 0, tv) {
            (_, None) => {}
            (true, Some(true)) => s.tp += 1,
            (true, Some(false)) => s.fp += 1,
            (false, Some(true)) => s.r#fn += 1,
            (false, Some(false)) => s.tn += 1,
        }
    }
    let n = s.tp + s.fp + s.r#fn + s.tn;
    if n == 0 {
        return Err(Error::invalid(
            reference,
            format!(
                "no pixel of {} falls on a reference pixel coded {:?} or {:?}; check --codes and that both cover the same place",
                pred.display(),
                codes.unchanged,
                codes.changed
            ),
        ));
    }
    Ok(ReferenceReport {
        pixels: n,
        flagged_share: (s.tp + s.fp) as f64 / n as f64,
        changed_share: (s.tp + s.r#fn) as f64 / n as f64,
        flagged_by_value: by_value,
        scores: s.finish(),
    })
}

impl ReferenceReport {
    /// A plain-text table.
    pub fn table(&self) -> String {
        let s = &self.scores;
        let by: Vec<String> = self
            .flagged_by_value
            .iter()
            .map(|(v, [tp, fp])| format!("{v}: {tp} TP / {fp} FP"))
            .collect();
        format!("{}flagged by value: {}\n", self.head(s), by.join(", "))
    }

    fn head(&self, s: &PixelScores) -> String {
        format!(
            "pixels {}  TP {}  FP {}  FN {}  TN {}\nprecision {:.3}  recall {:.3}  F1 {:.3}  OA {:.3}  kappa {:.3}\nflagged share {:.4}  changed share {:.4}\n",
            self.pixels, s.tp, s.fp, s.r#fn, s.tn, s.precision, s.recall, s.f1,
            s.overall_accuracy, s.kappa, self.flagged_share, self.changed_share
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_and_refuse() {
        let c = Codes::parse("unchanged=1,changed=2").unwrap();
        assert_eq!((c.unchanged, c.changed), (vec![1], vec![2]));
        assert!(Codes::parse("unchanged=1").is_err());
        assert!(Codes::parse("same=1,changed=2").is_err());
        assert!(Codes::parse("unchanged=300,changed=2").is_err());
    }
}
