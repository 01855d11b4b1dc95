//! Row bands of per-pixel layers: the rolling buffers of the streaming
//! path. A [`Buf`] holds rows `r0..r0 + n` of a stage's output; a stage
//! extends it at the bottom (computing the new rows on a window with its
//! halo) and drops rows at the top that no later stage will read again.

use super::blocks::Magnitude;
use super::cover::Cover;
use crate::error::Result;
use crate::kernels::indices::Indices;
use ndarray::{concatenate, s, Array2, Array3, Axis};
use std::collections::VecDeque;
use std::ops::Range;

/// Something made of rows: cut a range out, join two bands.
pub trait Rows: Sized {
    /// Number of rows.
    fn n(&self) -> usize;
    /// Rows `r` (relative to the first row) as a new band.
    fn cut(&self, r: Range<usize>) -> Self;
    /// This band followed by `below`.
    fn join(self, below: Self) -> Self;
    /// The bands one after the other (at least one), each row copied once
    /// where the layers allow it.
    fn join_all(parts: Vec<Self>) -> Self {
        let mut it = parts.into_iter();
        let first = it.next().expect("at least one band");
        it.fold(first, Rows::join)
    }
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
    fn join_all(parts: Vec<Self>) -> Self {
        let v: Vec<_> = parts.iter().map(|p| p.view()).collect();
        concatenate(Axis(0), &v).expect("same width")
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
    fn join_all(parts: Vec<Self>) -> Self {
        let v: Vec<_> = parts.iter().map(|p| p.view()).collect();
        concatenate(Axis(1), &v).expect("same bands and width")
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
    fn join_all(parts: Vec<Self>) -> Self {
        let (a, b): (Vec<A>, Vec<B>) = parts.into_iter().unzip();
        (A::join_all(a), B::join_all(b))
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
    fn join_all(parts: Vec<Self>) -> Self {
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        for (x, y, z) in parts {
            a.push(x);
            b.push(y);
            c.push(z);
        }
        (A::join_all(a), B::join_all(b), C::join_all(c))
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
            vanished: self.vanished.cut(r.clone()),
            probability: self.probability.as_ref().map(|p| p.cut(r)),
        }
    }
    fn join(self, o: Self) -> Self {
        let probability = match (self.probability, o.probability) {
            (Some(a), Some(b)) => Some(a.join(b)),
            _ => None,
        };
        Magnitude {
            appeared: self.appeared.join(o.appeared),
            vanished: self.vanished.join(o.vanished),
            probability,
        }
    }
}

/// Rows of one stage's output, kept as the chunks they were computed in
/// (appending and dropping rows copy nothing).
pub struct Buf<T> {
    start: usize,
    chunks: VecDeque<(usize, T)>,
}

impl<T: Rows> Default for Buf<T> {
    fn default() -> Self {
        Buf::new()
    }
}

impl<T: Rows> Buf<T> {
    /// An empty buffer.
    pub fn new() -> Self {
        Buf {
            start: 0,
            chunks: VecDeque::new(),
        }
    }

    /// One past the last row held.
    pub fn end(&self) -> usize {
        self.chunks.back().map_or(self.start, |(r0, d)| r0 + d.n())
    }

    /// Rows `r` (absolute), which must be held, as one band.
    pub fn get(&self, r: Range<usize>) -> T {
        self.get_part(r, |d, rr| d.cut(rr))
    }

    /// Part of rows `r` (absolute), which must be held: `part` cuts what a
    /// stage reads out of one chunk (rows relative to the chunk), so the
    /// layers it does not read are never copied.
    pub fn get_part<U: Rows>(&self, r: Range<usize>, part: impl Fn(&T, Range<usize>) -> U) -> U {
        let mut pieces: Vec<U> = Vec::new();
        for (r0, d) in &self.chunks {
            let (a, b) = (r.start.max(*r0), r.end.min(r0 + d.n()));
            if a < b {
                pieces.push(part(d, a - r0..b - r0));
            }
        }
        assert!(
            !pieces.is_empty(),
            "rows requested that the buffer does not hold"
        );
        let out = if pieces.len() == 1 {
            pieces.pop().expect("one piece")
        } else {
            U::join_all(pieces)
        };
        debug_assert_eq!(out.n(), r.len(), "rows not held");
        out
    }

    /// Makes the buffer hold rows `want` (clipped to `height`): computes the
    /// rows it lacks with `f`, which gets the window of rows to compute
    /// (the new rows with `halo` rows on either side, clipped) and the new
    /// rows, and returns the whole window; only the new rows are kept. New
    /// rows are computed `step` at a time.
    /// Chunks wholly above `want` are dropped; a buffer that already holds
    /// rows goes on from its last row even when it was trimmed past
    /// `want.start`.
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub fn extend(
        &mut self,
        want: Range<usize>,
        halo: usize,
        height: usize,
        step: usize,
        mut f: impl FnMut(Range<usize>, Range<usize>) -> Result<T>,
    ) -> Result<()> {
        let want = want.start..want.end.min(height);
        // A buffer trimmed past `want.start` (see [`Buf::trim`]) is carried
        // on: the rows it dropped are read by no stage again.
        if self.end() < want.start {
            self.chunks.clear();
            self.start = want.start;
        }
        // At most `step` new rows per call of `f`, so a run's first block
        // (which fills every buffer's lead) needs no larger windows than
        // the blocks after it.
        while self.end() < want.end {
            let start = self.end();
            let end = (start + step.max(1)).min(want.end);
            let win = start.saturating_sub(halo)..(end + halo).min(height);
            let out = f(win.clone(), start..end)?;
            // A window of just the new rows (no halo) is kept as it is.
            let new = if win == (start..end) {
                out
            } else {
                out.cut(start - win.start..end - win.start)
            };
            self.chunks.push_back((start, new));
        }
        self.trim(want.start);
        Ok(())
    }

    /// Drops the chunks that end at or before row `first`: the caller knows
    /// no stage reads above it any more. Smaller steps make this finer.
    pub fn trim(&mut self, first: usize) {
        while self
            .chunks
            .front()
            .is_some_and(|(r0, d)| r0 + d.n() <= first)
        {
            // An emptied buffer goes on from where it ended.
            self.start = self.end();
            self.chunks.pop_front();
        }
    }

    /// Rows held, for tests.
    #[cfg(test)]
    fn held(&self) -> Range<usize> {
        self.chunks.front().map_or(self.start, |c| c.0)..self.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row r of the "stage" is the sum of rows r-1..=r+1 of the input.
    fn blurred(input: &Array2<u32>, win: Range<usize>) -> Array2<u32> {
        let h = input.nrows();
        Array2::from_shape_fn((win.len(), input.ncols()), |(i, c)| {
            let r = win.start + i;
            (r.saturating_sub(1)..(r + 2).min(h))
                .filter(|&k| k >= win.start && k < win.end)
                .map(|k| input[[k, c]])
                .sum()
        })
    }

    #[test]
    fn rolling_windows_equal_the_whole() {
        let h = 50;
        let input = Array2::from_shape_fn((h, 3), |(r, c)| (r * 7 + c) as u32 % 11);
        let whole = blurred(&input, 0..h);
        for (b, lead) in [(4, 0), (7, 3), (16, 5)] {
            let mut buf: Buf<Array2<u32>> = Buf::new();
            for a in (10..h).step_by(b) {
                let e = (a + b).min(h);
                buf.extend(a.saturating_sub(lead)..e + lead, 1, h, b, |win, _| {
                    Ok(blurred(&input, win))
                })
                .unwrap();
                assert_eq!(buf.get(a..e), whole.slice(s![a..e, ..]), "block {a} of {b}");
            }
            // Rows far above the last block were dropped.
            assert!(buf.chunks.front().unwrap().0 + 2 * b + lead >= h - b);
        }
    }

    #[test]
    fn a_trimmed_buffer_goes_on_without_recomputing() {
        let h = 40;
        let input = Array2::from_shape_fn((h, 2), |(r, c)| (r * 3 + c) as u32);
        let mut buf: Buf<Array2<u32>> = Buf::new();
        let computed = std::cell::Cell::new(0);
        let f = |win: Range<usize>, new: Range<usize>| {
            computed.set(computed.get() + new.len());
            Ok(blurred(&input, win))
        };
        buf.extend(0..12, 1, h, 4, f).unwrap();
        buf.trim(9);
        assert_eq!(buf.held(), 8..12);
        // Wants rows from 2 again: the trimmed rows are not recomputed.
        buf.extend(2..20, 1, h, 4, f).unwrap();
        assert_eq!(buf.held(), 8..20);
        assert_eq!(computed.get(), 20);
        assert_eq!(buf.get(9..20), blurred(&input, 0..h).slice(s![9..20, ..]));
        // Trimmed empty, it goes on from its end.
        buf.trim(25);
        assert_eq!(buf.held(), 20..20);
        buf.extend(18..24, 1, h, 4, f).unwrap();
        assert_eq!((buf.held(), computed.get()), (20..24, 24));
    }
}
