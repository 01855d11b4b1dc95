//! Per-pixel change probability: a gradient-boosted tree ensemble over
//! spectral and neighbourhood features of a normalised pair.
//!
//! The features are the same for any sensor with blue, green, red and NIR
//! (and SWIR1/SWIR2 when present): per-band log ratios, NDVI/NDWI (and
//! NDBI/MNDWI) of both dates and their differences, the change magnitude,
//! the magnitude and index differences averaged over 3, 7 and 15 pixel
//! windows, and the local brightness texture of both dates. A pixel depends
//! only on rows within [`HALO`] of it, so row blocks with that halo give
//! exactly the whole-scene values.
//!
//! The ensemble is data ([`TreeModel`], JSON); riverwatch ships one fitted
//! on real and synthetic pairs (`models/`), and researchers can load their
//! own with the same feature order ([`feature_names`]).

use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, Axis};
use rayon::prelude::*;
use serde::Deserialize;

/// Neighbourhood windows (odd sides, pixels).
pub const WINDOWS: [usize; 3] = [3, 7, 15];
/// How many rows beyond a pixel its features read.
pub const HALO: usize = 7;
/// Rows per internal chunk (features are only held for one chunk).
const CHUNK: usize = 32;
/// Offset inside the log ratio: keeps dark water pixels (reflectance
/// ≈ 0.01) from dominating with noise.
const LOG_EPS: f32 = 0.01;

/// Names of the features, in the order a model reads them, for a pair with
/// `bands` bands (SWIR features from 5 bands on).
pub fn feature_names(bands: usize) -> Vec<String> {
    let nb = bands.min(6);
    let swir = nb > 4;
    let mut v: Vec<String> = (0..nb).map(|k| format!("lr{k}")).collect();
    let mut idx = vec!["ndvi", "ndwi", "br"];
    if swir {
        idx.extend(["ndbi", "mndwi"]);
    }
    for i in &idx {
        v.push(format!("{i}_b"));
        v.push(format!("{i}_a"));
        v.push(format!("d_{i}"));
    }
    v.push("mag".into());
    let ctx: &[&str] = if swir {
        &["mag", "d_ndvi", "d_br", "d_ndbi"]
    } else {
        &["mag", "d_ndvi", "d_br"]
    };
    for w in WINDOWS {
        for c in ctx {
            v.push(format!("{c}_m{w}"));
        }
    }
    v.extend(["std5_b".into(), "std5_a".into(), "d_std5".into()]);
    v
}

#[inline]
fn nd(a: f32, b: f32) -> f32 {
    crate::kernels::indices::nd(a, b)
}

/// The point features of one pixel into `out` (in [`feature_names`]
/// order, up to `mag`); returns (mag, d_ndvi, d_br, d_ndbi, br_b, br_a).
fn point(b: &[f32], a: &[f32], out: &mut Vec<f32>) -> [f32; 6] {
    let nb = b.len();
    let mut ss = 0.0;
    for k in 0..nb {
        let lr = (a[k].max(0.0) + LOG_EPS).ln() - (b[k].max(0.0) + LOG_EPS).ln();
        ss += lr * lr;
        out.push(lr);
    }
    let mag = (ss / nb as f32).sqrt();
    let br = |x: &[f32]| (x[0] + x[1] + x[2]) / 3.0;
    let mut pairs = [(0f32, 0f32); 5];
    pairs[0] = (nd(b[3], b[2]), nd(a[3], a[2]));
    pairs[1] = (nd(b[1], b[3]), nd(a[1], a[3]));
    pairs[2] = (br(b), br(a));
    let np = if nb > 4 {
        pairs[3] = (nd(b[4], b[3]), nd(a[4], a[3]));
        pairs[4] = (nd(b[1], b[4]), nd(a[1], a[4]));
        5
    } else {
        3
    };
    for &(x, y) in &pairs[..np] {
        out.extend([x, y, y - x]);
    }
    out.push(mag);
    let d_ndbi = if nb > 4 { pairs[3].1 - pairs[3].0 } else { 0.0 };
    [
        mag,
        pairs[0].1 - pairs[0].0,
        pairs[2].1 - pairs[2].0,
        d_ndbi,
        pairs[2].0,
        pairs[2].1,
    ]
}

/// Fixed-point scale of the window sums (2⁻²⁴ ≈ 6e-8, under an f32's
/// resolution at the features' magnitudes). Integer sums are exact, so a
/// window's mean does not depend on where the array starts (row blocks
/// and column strips give the whole scene's bits) and running sums can
/// replace a loop over the window.
const FIXED: f64 = (1u64 << 24) as f64;

/// Exact fixed-point sums of layers over any window: one summed-area
/// table per layer (row-major, `(h + 1) × (w + 1)`), plus one of the
/// valid-pixel count. A window's sum is four look-ups, so the features
/// of a few pixels do not pay for a mean over every pixel of the array.
struct Sums {
    h: usize,
    w: usize,
    /// The valid-pixel count's table, then one per layer.
    tables: Vec<Vec<i64>>,
}

impl Sums {
    /// Tables of `layers` (each `h × w`) over the pixels `valid`, each value
    /// taken as `f(x)` in fixed point.
    fn new<'a>(
        layers: impl IntoIterator<Item = (ArrayView2<'a, f32>, fn(f32) -> f32)>,
        valid: ArrayView2<bool>,
    ) -> Sums {
        let (h, w) = valid.dim();
        let table = |q: &dyn Fn(usize, usize) -> i64| {
            let mut t = vec![0i64; (h + 1) * (w + 1)];
            for r in 0..h {
                let mut acc = 0i64;
                let (above, row) = t[r * (w + 1)..(r + 2) * (w + 1)].split_at_mut(w + 1);
                for c in 0..w {
                    if valid[[r, c]] {
                        acc += q(r, c);
                    }
                    row[c + 1] = above[c + 1] + acc;
                }
            }
            t
        };
        let mut tables = vec![table(&|_, _| 1)];
        for (x, f) in layers {
            tables.push(table(&|r, c| {
                (f64::from(f(x[[r, c]])) * FIXED).round() as i64
            }));
        }
        Sums { h, w, tables }
    }

    /// Sum of table `t` over the `(2 rad + 1)²` window around (r, c),
    /// clipped to the array.
    fn sum(&self, t: usize, (r, c): (usize, usize), rad: usize) -> i64 {
        let w1 = self.w + 1;
        let (r0, r1) = (r.saturating_sub(rad), (r + rad + 1).min(self.h));
        let (c0, c1) = (c.saturating_sub(rad), (c + rad + 1).min(self.w));
        let s = &self.tables[t];
        s[r1 * w1 + c1] - s[r0 * w1 + c1] - s[r1 * w1 + c0] + s[r0 * w1 + c0]
    }

    /// Mean of layer `k` over the valid pixels of the window (0 where none
    /// is valid).
    fn mean(&self, k: usize, at: (usize, usize), rad: usize) -> f32 {
        let n = self.sum(0, at, rad);
        if n > 0 {
            (self.sum(k + 1, at, rad) as f64 / FIXED / n as f64) as f32
        } else {
            0.0
        }
    }
}

/// Mean of `x` over the valid pixels of a `(2r+1)²` window around every
/// pixel (the window clipped to the array; 0 where none is valid), from
/// exact fixed-point sums: any row or column window that holds the
/// pixel's neighbours gives the same bits.
#[cfg(test)]
fn box_mean(x: ArrayView2<f32>, v: ArrayView2<bool>, r: usize) -> Array2<f32> {
    let sums = Sums::new([(x, (|x| x) as fn(f32) -> f32)], v);
    Array2::from_shape_fn(x.dim(), |at| sums.mean(0, at, r))
}

/// The neighbourhood of a pair: window sums of the per-pixel values the
/// windows average (magnitude, NDVI, brightness and NDBI differences), and
/// of the brightness of both dates and its square (the texture).
struct Context {
    /// Layers averaged over [`WINDOWS`] (3 without SWIR, 4 with).
    n_ctx: usize,
    sums: Sums,
}

/// Radius of the brightness texture's window (5 × 5).
const TEXTURE_R: usize = 2;

/// The context of a pair (its layers 0 around pixels not `valid`).
fn context(before: ArrayView3<f32>, after: ArrayView3<f32>, valid: ArrayView2<bool>) -> Context {
    let (nb0, h, w) = before.dim();
    let nb = nb0.min(6);
    let mut ctx = Array3::<f32>::zeros((6, h, w));
    ctx.axis_iter_mut(Axis(1))
        .enumerate()
        .for_each(|(r, mut cx)| {
            let mut buf = Vec::with_capacity(64);
            let (mut b, mut a) = (vec![0f32; nb], vec![0f32; nb]);
            for c in 0..w {
                if !valid[[r, c]] {
                    continue;
                }
                for k in 0..nb {
                    b[k] = before[[k, r, c]];
                    a[k] = after[[k, r, c]];
                }
                buf.clear();
                let q = point(&b, &a, &mut buf);
                for (i, x) in q.iter().enumerate() {
                    cx[[i, c]] = *x;
                }
            }
        });
    let n_ctx = if nb > 4 { 4 } else { 3 };
    let id: fn(f32) -> f32 = |x| x;
    let sq: fn(f32) -> f32 = |x| x * x;
    let layer = |i: usize| ctx.index_axis(Axis(0), i);
    // Layers 0..n_ctx, then brightness before, after, and their squares.
    let layers = (0..n_ctx).map(|i| (layer(i), id)).chain([
        (layer(4), id),
        (layer(5), id),
        (layer(4), sq),
        (layer(5), sq),
    ]);
    Context {
        n_ctx,
        sums: Sums::new(layers, valid),
    }
}

impl Context {
    /// The window means and the texture at `at`, in the model's order.
    fn features_at(&self, at: (usize, usize), out: &mut Vec<f32>) {
        for win in WINDOWS {
            out.extend((0..self.n_ctx).map(|i| self.sums.mean(i, at, win / 2)));
        }
        // Local brightness texture (5 × 5 standard deviation) of both dates.
        let sd = [0, 1].map(|d| {
            let m = self.sums.mean(self.n_ctx + d, at, TEXTURE_R);
            let m2 = self.sums.mean(self.n_ctx + 2 + d, at, TEXTURE_R);
            (m2 - m * m).max(0.0).sqrt()
        });
        out.extend([sd[0], sd[1], sd[1] - sd[0]]);
    }
}

/// The feature vector of valid pixel (r, c) into `out` (cleared first), in
/// [`feature_names`] order.
fn pixel_features(
    before: ArrayView3<f32>,
    after: ArrayView3<f32>,
    cx: &Context,
    (r, c): (usize, usize),
    scratch: &mut [Vec<f32>; 2],
    out: &mut Vec<f32>,
) {
    let nb = before.len_of(Axis(0)).min(6);
    let [b, a] = scratch;
    b.clear();
    a.clear();
    for k in 0..nb {
        b.push(before[[k, r, c]]);
        a.push(after[[k, r, c]]);
    }
    out.clear();
    point(b, a, out);
    cx.features_at((r, c), out);
}

/// The feature stack `(features, rows, cols)` of a normalised pair, 0 at
/// pixels not `valid`. Rows within [`HALO`] of the array's edge see a
/// clipped window, as at the scene's edge.
pub fn features(
    before: ArrayView3<f32>,
    after: ArrayView3<f32>,
    valid: ArrayView2<bool>,
) -> Array3<f32> {
    let (_, h, w) = before.dim();
    let nf = feature_names(before.len_of(Axis(0))).len();
    let cx = context(before, after, valid);
    let mut f = Array3::<f32>::zeros((nf, h, w));
    f.axis_iter_mut(Axis(1))
        .into_par_iter()
        .enumerate()
        .for_each(|(r, mut fr)| {
            let mut scratch = [Vec::new(), Vec::new()];
            let mut x = Vec::with_capacity(nf);
            for c in 0..w {
                if valid[[r, c]] {
                    pixel_features(before, after, &cx, (r, c), &mut scratch, &mut x);
                    fr.column_mut(c).assign(&ndarray::ArrayView1::from(&x[..]));
                }
            }
        });
    f
}

/// One regression tree in flat arrays: node `i` is a leaf when
/// `leaf[i]`, else it goes `left[i]` when feature `feature[i]` ≤
/// `threshold[i]` and `right[i]` otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    /// Feature index per node.
    pub feature: Vec<u32>,
    /// Split threshold per node.
    pub threshold: Vec<f64>,
    /// Left child per node.
    pub left: Vec<u32>,
    /// Right child per node.
    pub right: Vec<u32>,
    /// Leaf value (log-odds) per node.
    pub value: Vec<f64>,
    /// Whether the node is a leaf.
    pub leaf: Vec<bool>,
}

/// A boosted tree ensemble with a logistic link.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeModel {
    /// `"riverwatch-change-model/1"`.
    pub format: String,
    /// Feature names, which must equal [`feature_names`] for the pair.
    pub features: Vec<String>,
    /// Starting log-odds.
    pub baseline: f64,
    /// The trees.
    pub trees: Vec<Tree>,
    /// How a component's confidence combines the component model's score
    /// with its mean change probability (see [`Stack`]); without it the
    /// confidence is the mean probability.
    #[serde(default)]
    pub confidence: Option<Stack>,
    /// Where the model came from (data, folds, date).
    #[serde(default)]
    pub provenance: serde_json::Value,
    /// The trees as one flat node array (built on first use; a model is
    /// not meant to be changed after it has scored a pixel).
    #[serde(skip)]
    flat: std::sync::OnceLock<Flat>,
}

/// One node of the flattened ensemble (16 bytes, so a tree sits in a few
/// cache lines): a split on `feature` at `threshold` with absolute child
/// indices, or a leaf (`feature` = `u32::MAX`) whose value is
/// `Flat::values[left]`.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// The largest f32 not above the model's f64 threshold: for any f32 x,
    /// `x <= threshold` exactly when `f64::from(x) <=` the f64 threshold.
    threshold: f32,
    feature: u32,
    left: u32,
    right: u32,
}

/// The flattened ensemble, tree by tree in the model's order: trees up to
/// [`PERFECT_DEPTH`] deep are padded to perfect binary trees and walked
/// without branches (a leaf above the bottom becomes splits that always go
/// left, over copies of its value); deeper ones are walked node by node.
#[derive(Debug, Clone, Default)]
struct Flat {
    trees: Vec<Layout>,
    /// Walked trees' nodes.
    nodes: Vec<Node>,
    /// Perfect trees' splits (2^depth − 1 per tree, in heap order: node
    /// `i` has children `2i + 1` and `2i + 2`), threshold and feature.
    splits: Vec<(f32, u32)>,
    /// Leaf values (f64, summed in tree order): walked trees' leaves and
    /// perfect trees' 2^depth bottom nodes.
    values: Vec<f64>,
}

/// Where one tree of [`Flat`] lives.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// A perfect tree `depth` deep: splits from `splits`, leaves from
    /// `leaves`.
    Perfect {
        depth: u32,
        splits: u32,
        leaves: u32,
    },
    /// A tree walked node by node from `root`.
    Walk { root: u32 },
}

/// Trees at most this deep are laid out as perfect trees (2^10 leaves; the
/// shipped models are 6 deep).
const PERFECT_DEPTH: usize = 10;

/// Vectors walked through a perfect tree together (independent chains the
/// processor overlaps).
const LANES: usize = 8;

/// Depth of `t` (0 for a lone leaf), children before parents: `check` has
/// made every child come after its parent.
fn depth_of(t: &Tree) -> usize {
    let mut d = vec![0usize; t.leaf.len()];
    for j in (0..t.leaf.len()).rev() {
        if !t.leaf[j] {
            d[j] = 1 + d[t.left[j] as usize].max(d[t.right[j] as usize]);
        }
    }
    d.first().copied().unwrap_or(0)
}

/// Fills the perfect tree `depth` deep at heap position `i` (level `level`)
/// from node `j` of `t`.
fn fill_perfect(
    t: &Tree,
    j: usize,
    i: usize,
    level: usize,
    depth: usize,
    splits: &mut [(f32, u32)],
    leaves: &mut [f64],
) {
    if level == depth {
        leaves[i + 1 - (1 << depth)] = t.value[j];
        return;
    }
    let (l, r) = if t.leaf[j] {
        // Always left (NaN goes right, to the same value).
        splits[i] = (f32::INFINITY, 0);
        (j, j)
    } else {
        splits[i] = (f32_at_or_below(t.threshold[j]), t.feature[j]);
        (t.left[j] as usize, t.right[j] as usize)
    };
    fill_perfect(t, l, 2 * i + 1, level + 1, depth, splits, leaves);
    fill_perfect(t, r, 2 * i + 2, level + 1, depth, splits, leaves);
}

/// The largest f32 not above `t` (see [`Node::threshold`]).
fn f32_at_or_below(t: f64) -> f32 {
    let c = t as f32;
    if f64::from(c) > t {
        f32_step(c, false)
    } else {
        c
    }
}

/// The next f32 above (`up`) or below `c` (`f32::next_up`/`next_down`,
/// which need Rust 1.86; the crate builds from 1.80).
fn f32_step(c: f32, up: bool) -> f32 {
    if c.is_nan() || c == if up { f32::INFINITY } else { f32::NEG_INFINITY } {
        return c;
    }
    if c == 0.0 {
        let tiny = f32::from_bits(1);
        return if up { tiny } else { -tiny };
    }
    let b = c.to_bits();
    // Away from zero is one more in the magnitude bits.
    f32::from_bits(if (c > 0.0) == up { b + 1 } else { b - 1 })
}

/// A logistic stack of two component scores: confidence =
/// σ(bias + component · logit(s) + probability · logit(p̄)), where `s` is
/// the component model's score and `p̄` the component's mean change
/// probability; fitted on real and synthetic components together.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    /// Intercept.
    pub bias: f64,
    /// Weight of the component model's log-odds.
    pub component: f64,
    /// Weight of the mean probability's log-odds.
    pub probability: f64,
}

impl Stack {
    /// The stacked confidence of a component.
    pub fn confidence(&self, component: f64, mean_probability: f64) -> f64 {
        let logit = |p: f64| {
            let p = p.clamp(1e-6, 1.0 - 1e-6);
            (p / (1.0 - p)).ln()
        };
        let z = self.bias
            + self.component * logit(component)
            + self.probability * logit(mean_probability);
        1.0 / (1.0 + (-z).exp())
    }
}

impl TreeModel {
    /// Checks the format, the feature list against a pair with `bands`
    /// bands and that every node points inside its tree.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn check(&self, bands: usize) -> Result<(), String> {
        if self.format != "riverwatch-change-model/1" {
            return Err(format!(
                "format is {:?}, expected \"riverwatch-change-model/1\"",
                self.format
            ));
        }
        let want = feature_names(bands);
        if self.features != want {
            return Err(format!(
                "its {} features do not match the {} computed for a {bands}-band pair ({})",
                self.features.len(),
                want.len(),
                want.join(",")
            ));
        }
        for (i, t) in self.trees.iter().enumerate() {
            let n = t.leaf.len();
            let ok = [
                t.feature.len(),
                t.threshold.len(),
                t.left.len(),
                t.right.len(),
                t.value.len(),
            ]
            .iter()
            .all(|&l| l == n)
                && n > 0
                && (0..n).all(|j| {
                    t.leaf[j]
                        || ((t.feature[j] as usize) < want.len()
                            && (t.left[j] as usize) < n
                            && (t.right[j] as usize) < n
                            && t.left[j] as usize > j
                            && t.right[j] as usize > j)
                });
            if !ok {
                return Err(format!("tree {i} is malformed"));
            }
        }
        Ok(())
    }

    /// The trees laid out for scoring (see [`Flat`]).
    fn flat(&self) -> &Flat {
        self.flat.get_or_init(|| {
            let mut f = Flat::default();
            for t in &self.trees {
                let depth = depth_of(t);
                if depth <= PERFECT_DEPTH {
                    let (s0, v0) = (f.splits.len(), f.values.len());
                    f.splits.resize(s0 + (1 << depth) - 1, (0.0, 0));
                    f.values.resize(v0 + (1 << depth), 0.0);
                    fill_perfect(t, 0, 0, 0, depth, &mut f.splits[s0..], &mut f.values[v0..]);
                    f.trees.push(Layout::Perfect {
                        depth: depth as u32,
                        splits: s0 as u32,
                        leaves: v0 as u32,
                    });
                    continue;
                }
                let base = f.nodes.len() as u32;
                f.trees.push(Layout::Walk { root: base });
                for j in 0..t.leaf.len() {
                    f.nodes.push(if t.leaf[j] {
                        f.values.push(t.value[j]);
                        Node {
                            threshold: 0.0,
                            feature: u32::MAX,
                            left: (f.values.len() - 1) as u32,
                            right: 0,
                        }
                    } else {
                        Node {
                            threshold: f32_at_or_below(t.threshold[j]),
                            feature: t.feature[j],
                            left: base + t.left[j],
                            right: base + t.right[j],
                        }
                    });
                }
            }
            f
        })
    }

    /// Log-odds of change for one feature vector.
    pub fn raw(&self, x: &[f32]) -> f64 {
        let mut s = [0f64];
        self.raw_batch(x, x.len(), &mut s);
        s[0]
    }

    /// Log-odds of change for `out.len()` feature vectors of `nf` values
    /// each, one after the other in `xs`. Tree by tree over the batch (a
    /// tree stays in cache); each vector's sum runs in tree order, so the
    /// bits equal [`TreeModel::raw`]'s.
    pub fn raw_batch(&self, xs: &[f32], nf: usize, out: &mut [f64]) {
        let f = self.flat();
        out.fill(self.baseline);
        for &tree in &f.trees {
            match tree {
                Layout::Perfect {
                    depth,
                    splits,
                    leaves,
                } => {
                    let sp = &f.splits[splits as usize..];
                    let lv = &f.values[leaves as usize..];
                    let bottom = (1usize << depth) - 1;
                    let mut s_lanes = out.chunks_mut(LANES);
                    for xg in xs.chunks(nf * LANES) {
                        let Some(sg) = s_lanes.next() else { break };
                        let mut at = [0usize; LANES];
                        let n = sg.len();
                        for _ in 0..depth {
                            for (k, a) in at.iter_mut().enumerate().take(n) {
                                let (t, ft) = sp[*a];
                                // Left when x ≤ t, as the stored trees; NaN goes right.
                                #[allow(clippy::neg_cmp_op_on_partial_ord)]
                                let right = !(xg[k * nf + ft as usize] <= t);
                                *a = 2 * *a + 1 + usize::from(right);
                            }
                        }
                        for (s, a) in sg.iter_mut().zip(at) {
                            *s += lv[a - bottom];
                        }
                    }
                }
                Layout::Walk { root } => {
                    for (s, x) in out.iter_mut().zip(xs.chunks_exact(nf)) {
                        let mut n = f.nodes[root as usize];
                        while n.feature != u32::MAX {
                            let next = if x[n.feature as usize] <= n.threshold {
                                n.left
                            } else {
                                n.right
                            };
                            n = f.nodes[next as usize];
                        }
                        *s += f.values[n.left as usize];
                    }
                }
            }
        }
    }

    /// Probability of change for one feature vector.
    pub fn probability(&self, x: &[f32]) -> f32 {
        logistic(self.raw(x))
    }
}

/// The logistic link of log-odds `z`.
fn logistic(z: f64) -> f32 {
    (1.0 / (1.0 + (-z).exp())) as f32
}

/// The change probability of every pixel where `need` is true (0
/// elsewhere), computing features in row chunks (in parallel) so only the
/// chunks' features are held. Any row window with [`HALO`] rows on each
/// side of the rows used gives exactly the whole-scene values.
pub fn probability(
    before: ArrayView3<f32>,
    after: ArrayView3<f32>,
    valid: ArrayView2<bool>,
    need: ArrayView2<bool>,
    model: &TreeModel,
) -> Array2<f32> {
    let (_, h, w) = before.dim();
    let mut p = Array2::<f32>::zeros((h, w));
    p.axis_chunks_iter_mut(Axis(0), CHUNK)
        .into_par_iter()
        .enumerate()
        .for_each(|(k, mut out)| {
            let start = k * CHUNK;
            let end = start + out.nrows();
            let (h0, h1) = (start.saturating_sub(HALO), (end + HALO).min(h));
            let mut scratch = [Vec::new(), Vec::new()];
            let mut x = Vec::with_capacity(64);
            let (mut xs, mut cols_at, mut raw) = (Vec::new(), Vec::new(), Vec::new());
            // Features only over the columns a needed pixel's window
            // reaches (the same halo argument as for rows).
            for cols in spans(need.slice(s![start..end, ..]), HALO) {
                let (c0, c1) = (cols.start, cols.end);
                let (b, a, v) = (
                    before.slice(s![.., h0..h1, c0..c1]),
                    after.slice(s![.., h0..h1, c0..c1]),
                    valid.slice(s![h0..h1, c0..c1]),
                );
                let cx = context(b, a, v);
                for r in start..end {
                    cols_at.clear();
                    xs.clear();
                    for c in c0..c1 {
                        if need[[r, c]] && valid[[r, c]] {
                            pixel_features(b, a, &cx, (r - h0, c - c0), &mut scratch, &mut x);
                            xs.extend_from_slice(&x);
                            cols_at.push(c);
                        }
                    }
                    if cols_at.is_empty() {
                        continue;
                    }
                    raw.resize(cols_at.len(), 0.0);
                    model.raw_batch(&xs, x.len(), &mut raw);
                    for (&c, &z) in cols_at.iter().zip(&raw) {
                        out[[r - start, c]] = logistic(z);
                    }
                }
            }
        });
    p
}

/// Column ranges holding every column with a `true` in `need`, each grown
/// by `halo` (clipped to the array); ranges closer than that are merged.
fn spans(need: ArrayView2<bool>, halo: usize) -> Vec<std::ops::Range<usize>> {
    let w = need.ncols();
    let cols: Vec<usize> = (0..w)
        .filter(|&c| need.column(c).iter().any(|&n| n))
        .collect();
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for c in cols {
        let (a, b) = (c.saturating_sub(halo), (c + halo + 1).min(w));
        match out.last_mut() {
            Some(last) if a <= last.end + halo => last.end = last.end.max(b),
            _ => out.push(a..b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(h: usize, w: usize, bands: usize) -> (Array3<f32>, Array3<f32>) {
        let b = Array3::from_shape_fn((bands, h, w), |(k, r, c)| {
            0.05 + 0.01 * k as f32 + 0.002 * ((r * 7 + c * 3) % 11) as f32
        });
        let mut a = b.clone();
        for k in 0..bands {
            for r in 10..14 {
                for c in 5..9 {
                    a[[k, r, c]] = 0.3;
                }
            }
        }
        (b, a)
    }

    #[test]
    fn names_match_the_stack() {
        for bands in [4, 6] {
            let (b, a) = pair(20, 16, bands);
            let v = Array2::from_elem((20, 16), true);
            let f = features(b.view(), a.view(), v.view());
            assert_eq!(f.len_of(Axis(0)), feature_names(bands).len());
        }
    }

    #[test]
    fn row_windows_with_the_halo_give_the_whole_scene_values() {
        let (b, a) = pair(40, 16, 6);
        let mut v = Array2::from_elem((40, 16), true);
        v[[12, 6]] = false;
        let whole = features(b.view(), a.view(), v.view());
        let (r0, r1) = (9, 20);
        let part = features(
            b.slice(s![.., r0 - HALO..r1 + HALO, ..]),
            a.slice(s![.., r0 - HALO..r1 + HALO, ..]),
            v.slice(s![r0 - HALO..r1 + HALO, ..]),
        );
        assert_eq!(
            whole.slice(s![.., r0..r1, ..]),
            part.slice(s![.., HALO..HALO + (r1 - r0), ..])
        );
        // The change shows in the magnitude and its neighbourhood means.
        let names = feature_names(6);
        let mag = names.iter().position(|n| n == "mag").unwrap();
        assert!(whole[[mag, 11, 6]] > 1.0 && whole[[mag, 30, 10]] == 0.0);
        assert!(whole.slice(s![.., 12, 6]).iter().all(|&x| x == 0.0));
    }

    #[test]
    fn window_means_are_the_direct_means_and_do_not_depend_on_the_array_start() {
        let (h, w, r) = (23, 31, 3);
        let x = Array2::from_shape_fn((h, w), |(i, j)| {
            ((i * 31 + j * 17) % 13) as f32 * 0.37 - 1.1
        });
        let v = Array2::from_shape_fn((h, w), |(i, j)| (i * 7 + j * 3) % 5 != 0);
        let m = box_mean(x.view(), v.view(), r);
        for ((i, j), &got) in m.indexed_iter() {
            let (mut s, mut n) = (0f64, 0f64);
            for ii in i.saturating_sub(r)..(i + r + 1).min(h) {
                for jj in j.saturating_sub(r)..(j + r + 1).min(w) {
                    if v[[ii, jj]] {
                        s += f64::from(x[[ii, jj]]);
                        n += 1.0;
                    }
                }
            }
            assert!((f64::from(got) - s / n).abs() < 1e-6, "{i},{j}");
        }
        // A window cut out with the radius around it: the same bits.
        let part = box_mean(x.slice(s![4..20, 5..30]), v.slice(s![4..20, 5..30]), r);
        assert_eq!(
            part.slice(s![r..16 - r, r..25 - r]),
            m.slice(s![4 + r..20 - r, 5 + r..30 - r])
        );
    }

    #[test]
    fn probability_on_a_few_pixels_equals_probability_everywhere() {
        let (b, a) = pair(150, 90, 5);
        let v = Array2::from_elem((150, 90), true);
        let m = crate::pipeline::models::change_model(5);
        let all = probability(b.view(), a.view(), v.view(), v.view(), m);
        let mut some = Array2::from_elem((150, 90), false);
        for (r, c) in [
            (0, 0),
            (11, 6),
            (12, 40),
            (70, 89),
            (149, 3),
            (100, 20),
            (100, 60),
        ] {
            some[[r, c]] = true;
        }
        let part = probability(b.view(), a.view(), v.view(), some.view(), m);
        for ((r, c), &n) in some.indexed_iter() {
            assert_eq!(part[[r, c]], if n { all[[r, c]] } else { 0.0 }, "{r},{c}");
        }
        assert!(
            all[[12, 6]] > all[[100, 60]],
            "the changed square scores higher"
        );
    }

    /// The trees walked as stored (f64 thresholds), one vector at a time.
    fn reference_raw(m: &TreeModel, x: &[f32]) -> f64 {
        let mut s = m.baseline;
        for t in &m.trees {
            let mut j = 0;
            while !t.leaf[j] {
                j = if f64::from(x[t.feature[j] as usize]) <= t.threshold[j] {
                    t.left[j] as usize
                } else {
                    t.right[j] as usize
                };
            }
            s += t.value[j];
        }
        s
    }

    #[test]
    fn the_flat_batch_gives_the_stored_trees_bits() {
        let m = crate::pipeline::models::change_model(5);
        let nf = m.features.len();
        // Vectors on, just under and just over the model's own thresholds,
        // and spread values.
        let mut xs = Vec::new();
        for (i, t) in m.trees.iter().take(40).enumerate() {
            for j in (0..t.leaf.len()).filter(|&j| !t.leaf[j]).take(3) {
                let th = t.threshold[j] as f32;
                for v in [th, f32_step(th, false), f32_step(th, true)] {
                    let mut x: Vec<f32> = (0..nf)
                        .map(|k| ((i * 7 + k * 13) % 17) as f32 * 0.05 - 0.3)
                        .collect();
                    x[t.feature[j] as usize] = v;
                    xs.extend(x);
                }
            }
        }
        let n = xs.len() / nf;
        let mut out = vec![0f64; n];
        m.raw_batch(&xs, nf, &mut out);
        for (i, x) in xs.chunks_exact(nf).enumerate() {
            assert_eq!(
                out[i].to_bits(),
                reference_raw(m, x).to_bits(),
                "vector {i}"
            );
            assert_eq!(m.raw(x).to_bits(), out[i].to_bits());
        }
        assert!(
            f64::from(f32_at_or_below(0.1)) <= 0.1
                && f64::from(f32_step(f32_at_or_below(0.1), true)) > 0.1
        );
        assert_eq!(f32_at_or_below(f64::MAX), f32::MAX);
        assert_eq!(f32_step(-1.0, false), -f32_step(1.0, true));
        assert!(f32_step(-0.0, false) < 0.0 && f32_step(1.0, false) < 1.0);
    }

    #[test]
    fn deep_and_lopsided_trees_give_the_stored_trees_bits() {
        // A chain 12 splits deep (walked node by node) after a lopsided
        // 3-deep tree (padded to a perfect one), over 13 vectors (not a
        // multiple of the lanes), NaN included.
        let nf = feature_names(4).len();
        let chain = |n: usize| {
            let mut t = Tree {
                feature: vec![],
                threshold: vec![],
                left: vec![],
                right: vec![],
                value: vec![],
                leaf: vec![],
            };
            for k in 0..n {
                // node 2k splits; its left is a leaf 2k+1, right goes on.
                t.feature.extend([(k % nf) as u32, 0]);
                t.threshold.extend([k as f64 * 0.1 - 0.5, 0.0]);
                t.left.extend([(2 * k + 1) as u32, 0]);
                t.right.extend([(2 * k + 2) as u32, 0]);
                t.value.extend([0.0, k as f64 * 0.25 - 1.0]);
                t.leaf.extend([false, true]);
            }
            t.feature.push(0);
            t.threshold.push(0.0);
            t.left.push(0);
            t.right.push(0);
            t.value.push(3.0);
            t.leaf.push(true);
            t
        };
        let m = TreeModel {
            format: "riverwatch-change-model/1".into(),
            features: feature_names(4),
            baseline: 0.125,
            trees: vec![chain(3), chain(12), chain(1)],
            confidence: None,
            provenance: serde_json::Value::Null,
            flat: Default::default(),
        };
        assert!(m.check(4).is_ok());
        let layouts: Vec<bool> = m
            .flat()
            .trees
            .iter()
            .map(|t| matches!(t, Layout::Perfect { .. }))
            .collect();
        assert_eq!(layouts, [true, false, true]);
        let mut xs: Vec<f32> = (0..13 * nf)
            .map(|i| ((i * 37) % 23) as f32 * 0.1 - 1.1)
            .collect();
        xs[5] = f32::NAN;
        xs[nf] = f32::NAN;
        let mut out = vec![0f64; 13];
        m.raw_batch(&xs, nf, &mut out);
        for (i, x) in xs.chunks_exact(nf).enumerate() {
            assert_eq!(
                out[i].to_bits(),
                reference_raw(&m, x).to_bits(),
                "vector {i}"
            );
        }
    }

    #[test]
    fn a_stump_splits_on_its_feature_and_bad_models_are_refused() {
        let n = feature_names(4).len();
        let mut m = TreeModel {
            format: "riverwatch-change-model/1".into(),
            features: feature_names(4),
            baseline: 0.0,
            trees: vec![Tree {
                feature: vec![0, 0, 0],
                threshold: vec![0.5, 0.0, 0.0],
                left: vec![1, 0, 0],
                right: vec![2, 0, 0],
                value: vec![0.0, -2.0, 2.0],
                leaf: vec![false, true, true],
            }],
            confidence: None,
            provenance: serde_json::Value::Null,
            flat: Default::default(),
        };
        assert!(m.check(4).is_ok());
        let mut x = vec![0f32; n];
        assert!(m.probability(&x) < 0.2);
        x[0] = 1.0;
        assert!(m.probability(&x) > 0.8);
        assert!(m.check(6).is_err());
        m.trees[0].left[0] = 0;
        assert!(m.check(4).unwrap_err().contains("tree 0"));
        let s = Stack {
            bias: 0.0,
            component: 1.0,
            probability: 1.0,
        };
        assert!((s.confidence(0.5, 0.5) - 0.5).abs() < 1e-9);
        assert!(s.confidence(0.9, 0.9) > 0.98 && s.confidence(0.1, 0.1) < 0.02);
    }
}
