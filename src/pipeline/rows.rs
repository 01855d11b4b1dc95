//! Row bands of per-pixel layers: the rolling buffers of the streaming
//! path. A [`Buf`] holds rows `r0..r0 + n` of a stage's output; a stage
//! extends it at the bottom (computing the new rows on a window with its
//! halo) and drops rows at the top that no later stage will read again.

use super::blocks::Magnitude;
use super::cover::Cover;
use crate::error::Result;
use crate::kernels::indices::Indices;
use ndarray::{concatenate, s, Array2, Array3, Axis};
use std::ops::Range;

/// Something made of rows: cut a range out, join two bands.
pub trait Rows: Sized {
    /// Number of rows.
    fn n(&self) -> usize;
    /// Rows `r` (relative to the first row) as a new band.
    fn cut(&self, r: Range<usize>) -> Self;
    /// This band followed by `below`.
    fn join(self, below: Self) -> Self;
}

impl<T: Clone> Rows for Array2<T> {
    fn n(&self) -> usize {
        self.nrows()
    }
    fn cut(&self, r: Range<usize>) -> Self {
        self.slice(s![r, ..]).to_owned()
    }
    fn join(self, below: Self) -> Self {
        concatenate(Axis(0), &[self.view(), below.view()]).expect("same width")
    }
}

impl<T: Clone> Rows for Array3<T> {
    fn n(&self) -> usize {
        self.dim().1
    }
    fn cut(&self, r: Range<usize>) -> Self {
        self.slice(s![.., r, ..]).to_owned()
    }
    fn join(self, below: Self) -> Self {
        concatenate(Axis(1), &[self.view(), below.view()]).expect("same bands and width")
    }
}

impl<T: Rows> Rows for Option<T> {
    fn n(&self) -> usize {
        self.as_ref().map_or(0, Rows::n)
    }
    fn cut(&self, r: Range<usize>) -> Self {
        self.as_ref().map(|a| a.cut(r))
    }
    fn join(self, below: Self) -> Self {
        match (self, below) {
            (Some(a), Some(b)) => Some(a.join(b)),
            _ => None,
        }
    }
}

impl<A: Rows, B: Rows> Rows for (A, B) {
    fn n(&self) -> usize {
        self.0.n()
    }
    fn cut(&self, r: Range<usize>) -> Self {
        (self.0.cut(r.clone()), self.1.cut(r))
    }
    fn join(self, below: Self) -> Self {
        (self.0.join(below.0), self.1.join(below.1))
    }
}

impl<A: Rows, B: Rows, C: Rows> Rows for (A, B, C) {
    fn n(&self) -> usize {
        self.0.n()
    }
    fn cut(&self, r: Range<usize>) -> Self {
        (self.0.cut(r.clone()), self.1.cut(r.clone()), self.2.cut(r))
    }
    fn join(self, below: Self) -> Self {
        (
            self.0.join(below.0),
            self.1.join(below.1),
            self.2.join(below.2),
        )
    }
}

impl Rows for Indices {
    fn n(&self) -> usize {
        self.ndvi.nrows()
    }
    fn cut(&self, r: Range<usize>) -> Self {
        Indices {
            ndvi: self.ndvi.cut(r.clone()),
            ndwi: self.ndwi.cut(r.clone()),
            mndwi: self.mndwi.cut(r.clone()),
            ndbi: self.ndbi.cut(r.clone()),
            bsi: self.bsi.cut(r.clone()),
            brightness: self.brightness.cut(r),
        }
    }
    fn join(self, o: Self) -> Self {
        Indices {
            ndvi: self.ndvi.join(o.ndvi),
            ndwi: self.ndwi.join(o.ndwi),
            mndwi: self.mndwi.join(o.mndwi),
            ndbi: self.ndbi.join(o.ndbi),
            bsi: self.bsi.join(o.bsi),
            brightness: self.brightness.join(o.brightness),
        }
    }
}

impl Rows for Cover {
    fn n(&self) -> usize {
        self.lc_before.nrows()
    }
    fn cut(&self, r: Range<usize>) -> Self {
        Cover {
            before: self.before.cut(r.clone()),
            after: self.after.cut(r.clone()),
            lc_before: self.lc_before.cut(r.clone()),
            lc_after: self.lc_after.cut(r.clone()),
            water_threshold: self.water_threshold,
            zone_usable: self.zone_usable.cut(r),
        }
    }
    fn join(self, o: Self) -> Self {
        Cover {
            before: self.before.join(o.before),
            after: self.after.join(o.after),
            lc_before: self.lc_before.join(o.lc_before),
            lc_after: self.lc_after.join(o.lc_after),
            water_threshold: self.water_threshold,
            zone_usable: self.zone_usable.join(o.zone_usable),
        }
    }
}

impl Rows for Magnitude {
    fn n(&self) -> usize {
        self.appeared.nrows()
    }
    fn cut(&self, r: Range<usize>) -> Self {
        Magnitude {
            appeared: self.appeared.cut(r.clone()),
            vanished: self.vanished.cut(r),
        }
    }
    fn join(self, o: Self) -> Self {
        Magnitude {
            appeared: self.appeared.join(o.appeared),
            vanished: self.vanished.join(o.vanished),
        }
    }
}

/// Rows `r0..r0 + n` of one stage's output.
pub struct Buf<T> {
    r0: usize,
    data: Option<T>,
}

impl<T: Rows> Buf<T> {
    /// An empty buffer.
    pub fn new() -> Self {
        Buf { r0: 0, data: None }
    }

    /// One past the last row held.
    pub fn end(&self) -> usize {
        self.r0 + self.data.as_ref().map_or(0, Rows::n)
    }

    /// Rows `r` (absolute), which must be held.
    pub fn get(&self, r: Range<usize>) -> T {
        let d = self.data.as_ref().expect("rows requested from an empty buffer");
        debug_assert!(r.start >= self.r0 && r.end <= self.end(), "rows not held");
        d.cut(r.start - self.r0..r.end - self.r0)
    }

    /// Makes the buffer hold rows `want` (clipped to `height`): computes the
    /// rows it lacks with `f`, which gets the window of rows to compute
    /// (the new rows with `halo` rows on either side, clipped) and the new
    /// rows, and returns the whole window; only the new rows are kept. Rows
    /// above `want` are dropped.
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub fn extend(
        &mut self,
        want: Range<usize>,
        halo: usize,
        height: usize,
        f: impl FnOnce(Range<usize>, Range<usize>) -> Result<T>,
    ) -> Result<()> {
        let want = want.start..want.end.min(height);
        if self.data.is_some() && (self.end() < want.start || self.r0 > want.start) {
            self.data = None;
        }
        if self.data.is_none() {
            self.r0 = want.start;
        }
        let start = self.end();
        if start < want.end {
            let win = start.saturating_sub(halo)..(want.end + halo).min(height);
            let out = f(win.clone(), start..want.end)?;
            let new = out.cut(start - win.start..want.end - win.start);
            self.data = Some(match self.data.take() {
                Some(d) => d.join(new),
                None => new,
            });
        }
        if want.start > self.r0 {
            let d = self.data.take().expect("rows were just computed");
            let n = d.n();
            self.data = Some(d.cut(want.start - self.r0..n));
            self.r0 = want.start;
        }
        Ok(())
    }
}
