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

/// Something made of rows: its height, and a range of rows cut out.
pub trait Rows: Sized {
    /// Number of rows.
    fn n(&self) -> usize;
    /// Rows `r` (relative to the first row) as a new band.
    fn cut(&self, r: Range<usize>) -> Self;
}

/// Borrowed layers of a buffered chunk (a reference, or a tuple of them)
/// that rows can be gathered from: a range of each of several chunks, one
/// after the other, copied once into one owned band. A stage projects what
/// it reads out of the chunks first, so layers it does not read are never
/// copied.
pub trait Part: Sized {
    /// The owned band.
    type Owned;
    /// Rows `r` of each part (relative to it), in order, as one band.
    fn gather(parts: Vec<(Self, Range<usize>)>) -> Self::Owned;
}

impl<T: Clone> Rows for Array2<T> {
    fn n(&self) -> usize {
        self.nrows()
    }
    fn cut(&self, r: Range<usize>) -> Self {
        self.slice(s![r, ..]).to_owned()
    }
}

impl<T: Clone> Part for &Array2<T> {
    type Owned = Array2<T>;
    fn gather(parts: Vec<(Self, Range<usize>)>) -> Array2<T> {
        if let [(a, r)] = &parts[..] {
            return a.cut(r.clone());
        }
        let w = parts[0].0.ncols();
        let n: usize = parts.iter().map(|(_, r)| r.len()).sum();
        let mut out = Vec::with_capacity(n * w);
        for (a, r) in &parts {
            match a.as_slice() {
                // Rows of a standard-layout array are one run of memory.
                Some(x) if a.ncols() == w => out.extend_from_slice(&x[r.start * w..r.end * w]),
                _ => {
                    let v: Vec<_> = parts
                        .iter()
                        .map(|(a, r)| a.slice(s![r.clone(), ..]))
                        .collect();
                    return concatenate(Axis(0), &v)
                        .expect("chunks of one buffer have the same width");
                }
            }
        }
        Array2::from_shape_vec((n, w), out).expect("rows × width values")
    }
}

impl<T: Clone> Rows for Array3<T> {
    fn n(&self) -> usize {
        self.dim().1
    }
    fn cut(&self, r: Range<usize>) -> Self {
        self.slice(s![.., r, ..]).to_owned()
    }
}

impl<T: Clone> Part for &Array3<T> {
    type Owned = Array3<T>;
    fn gather(parts: Vec<(Self, Range<usize>)>) -> Array3<T> {
        if let [(a, r)] = &parts[..] {
            return a.cut(r.clone());
        }
        let (nb, _, w) = parts[0].0.dim();
        let n: usize = parts.iter().map(|(_, r)| r.len()).sum();
        let standard = parts
            .iter()
            .all(|(a, _)| a.is_standard_layout() && a.dim().0 == nb && a.dim().2 == w);
        if !standard {
            let v: Vec<_> = parts
                .iter()
                .map(|(a, r)| a.slice(s![.., r.clone(), ..]))
                .collect();
            return concatenate(Axis(1), &v)
                .expect("chunks of one buffer have the same bands and width");
        }
        // Band by band, each part's rows are one run of memory.
        let mut out = Vec::with_capacity(nb * n * w);
        for k in 0..nb {
            for (a, r) in &parts {
                let x = a.as_slice().expect("standard layout");
                let base = k * a.dim().1 * w;
                out.extend_from_slice(&x[base + r.start * w..base + r.end * w]);
            }
        }
        Array3::from_shape_vec((nb, n, w), out).expect("bands × rows × width values")
    }
}

impl<T: Rows> Rows for Option<T> {
    fn n(&self) -> usize {
        self.as_ref().map_or(0, Rows::n)
    }
    fn cut(&self, r: Range<usize>) -> Self {
        self.as_ref().map(|a| a.cut(r))
    }
}

impl<'a, T> Part for &'a Option<T>
where
    &'a T: Part,
{
    type Owned = Option<<&'a T as Part>::Owned>;
    /// `None` when any part is (a layer its stage did not compute).
    fn gather(parts: Vec<(Self, Range<usize>)>) -> Self::Owned {
        let some: Option<Vec<_>> = parts
            .into_iter()
            .map(|(a, r)| a.as_ref().map(|a| (a, r)))
            .collect();
        some.map(<&T>::gather)
    }
}

impl<A: Rows, B: Rows> Rows for (A, B) {
    fn n(&self) -> usize {
        self.0.n()
    }
    fn cut(&self, r: Range<usize>) -> Self {
        (self.0.cut(r.clone()), self.1.cut(r))
    }
}

impl<A: Part, B: Part> Part for (A, B) {
    type Owned = (A::Owned, B::Owned);
    fn gather(parts: Vec<(Self, Range<usize>)>) -> Self::Owned {
        let n = parts.len();
        let (mut a, mut b) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for ((x, y), r) in parts {
            a.push((x, r.clone()));
            b.push((y, r));
        }
        (A::gather(a), B::gather(b))
    }
}

impl<'a, A, B> Part for &'a (A, B)
where
    &'a A: Part,
    &'a B: Part,
{
    type Owned = (<&'a A as Part>::Owned, <&'a B as Part>::Owned);
    fn gather(parts: Vec<(Self, Range<usize>)>) -> Self::Owned {
        <(&A, &B)>::gather(parts.into_iter().map(|(x, r)| ((&x.0, &x.1), r)).collect())
    }
}

impl<A: Rows, B: Rows, C: Rows> Rows for (A, B, C) {
    fn n(&self) -> usize {
        self.0.n()
    }
    fn cut(&self, r: Range<usize>) -> Self {
        (self.0.cut(r.clone()), self.1.cut(r.clone()), self.2.cut(r))
    }
}

impl<A: Part, B: Part, C: Part> Part for (A, B, C) {
    type Owned = (A::Owned, B::Owned, C::Owned);
    fn gather(parts: Vec<(Self, Range<usize>)>) -> Self::Owned {
        let n = parts.len();
        let mut a = Vec::with_capacity(n);
        let mut b = Vec::with_capacity(n);
        let mut c = Vec::with_capacity(n);
        for ((x, y, z), r) in parts {
            a.push((x, r.clone()));
            b.push((y, r.clone()));
            c.push((z, r));
        }
        (A::gather(a), B::gather(b), C::gather(c))
    }
}

impl<'a, A, B, C> Part for &'a (A, B, C)
where
    &'a A: Part,
    &'a B: Part,
    &'a C: Part,
{
    type Owned = (
        <&'a A as Part>::Owned,
        <&'a B as Part>::Owned,
        <&'a C as Part>::Owned,
    );
    fn gather(parts: Vec<(Self, Range<usize>)>) -> Self::Owned {
        <(&A, &B, &C)>::gather(
            parts
                .into_iter()
                .map(|(x, r)| ((&x.0, &x.1, &x.2), r))
                .collect(),
        )
    }
}

/// Gathers one field `f` of every part.
fn field<'a, S, F: Part>(parts: &[(&'a S, Range<usize>)], f: impl Fn(&'a S) -> F) -> F::Owned {
    F::gather(parts.iter().map(|(x, r)| (f(x), r.clone())).collect())
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
}

impl Part for &Indices {
    type Owned = Indices;
    fn gather(parts: Vec<(Self, Range<usize>)>) -> Indices {
        Indices {
            ndvi: field(&parts, |x| &x.ndvi),
            ndwi: field(&parts, |x| &x.ndwi),
            mndwi: field(&parts, |x| &x.mndwi),
            ndbi: field(&parts, |x| &x.ndbi),
            bsi: field(&parts, |x| &x.bsi),
            brightness: field(&parts, |x| &x.brightness),
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
}

impl Part for &Cover {
    type Owned = Cover;
    fn gather(parts: Vec<(Self, Range<usize>)>) -> Cover {
        Cover {
            before: field(&parts, |x| &x.before),
            after: field(&parts, |x| &x.after),
            lc_before: field(&parts, |x| &x.lc_before),
            lc_after: field(&parts, |x| &x.lc_after),
            water_threshold: parts[0].0.water_threshold,
            zone_usable: field(&parts, |x| &x.zone_usable),
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
}

impl Part for &Magnitude {
    type Owned = Magnitude;
    fn gather(parts: Vec<(Self, Range<usize>)>) -> Magnitude {
        Magnitude {
            appeared: field(&parts, |x| &x.appeared),
            vanished: field(&parts, |x| &x.vanished),
            probability: field(&parts, |x| &x.probability),
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
    pub fn get<'a>(&'a self, r: Range<usize>) -> T
    where
        &'a T: Part<Owned = T>,
    {
        self.get_part(r, |d| d)
    }

    /// The chunk holding row `r` (absolute, which must be held) and the
    /// row's index in it: a row read where it is, without a copy.
    pub fn row(&self, r: usize) -> (&T, usize) {
        self.chunks
            .iter()
            .find(|(r0, d)| (*r0..r0 + d.n()).contains(&r))
            .map(|(r0, d)| (d, r - r0))
            .expect("a row the buffer holds")
    }

    /// Part of rows `r` (absolute), which must be held: `part` projects
    /// the layers a stage reads out of a chunk, and only those rows of
    /// those layers are copied, once.
    pub fn get_part<'a, P: Part>(&'a self, r: Range<usize>, part: impl Fn(&'a T) -> P) -> P::Owned {
        let mut pieces = Vec::new();
        let mut held = 0;
        for (r0, d) in &self.chunks {
            let (a, b) = (r.start.max(*r0), r.end.min(r0 + d.n()));
            if a < b {
                pieces.push((part(d), a - r0..b - r0));
                held += b - a;
            }
        }
        assert!(
            !pieces.is_empty() && held == r.len(),
            "rows requested that the buffer does not hold"
        );
        P::gather(pieces)
    }

    /// Makes the buffer hold rows `want` (clipped to `height`): computes the
    /// rows it lacks with `f`, which gets the window of rows to compute
    /// (the new rows with `halo` rows on either side, clipped) and the new
    /// rows, and returns the whole window or just the new rows; only the
    /// new rows are kept. New
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
            // What `f` returns for just the new rows (or for a window of
            // only them) is kept as it is.
            let new = if out.n() == end - start {
                out
            } else {
                out.cut(start - win.start..end - win.start)
            };
            self.chunks.push_back((start, new));
        }
        self.trim(want.start);
        Ok(())
    }

    /// Appends rows computed elsewhere, starting at row `start`: the row
    /// after the last one held, or any later row (a buffer that ends
    /// before `start` goes on from there, as [`Buf::extend`] does: no
    /// stage reads the rows between).
    pub fn push(&mut self, start: usize, rows: T) {
        if self.end() < start {
            self.chunks.clear();
            self.start = start;
        }
        assert_eq!(start, self.end(), "rows pushed out of order");
        self.chunks.push_back((start, rows));
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
    fn pushed_rows_go_on_after_a_gap() {
        let mut buf: Buf<Array2<u32>> = Buf::new();
        let rows = |r: Range<usize>| {
            Array2::from_shape_fn((r.len(), 2), |(i, c)| (r.start + i) as u32 * 10 + c as u32)
        };
        buf.push(4, rows(4..8));
        buf.push(8, rows(8..12));
        assert_eq!((buf.held(), buf.get(6..10)), (4..12, rows(6..10)));
        // A gap (the rows between read by nobody): it goes on from there.
        buf.push(20, rows(20..24));
        assert_eq!((buf.held(), buf.get(20..24)), (20..24, rows(20..24)));
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
