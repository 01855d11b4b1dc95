//! Clouds, cloud shadows and thin clouds, found by comparing the two dates.

use super::indices::{BLUE, NIR};
use super::label::label;
use super::landcover::{CLOUD, SHADOW};
use super::morphology::{dilate, reconstruct, Shape};
use ndarray::{s, Array2, ArrayView2, ArrayView3, Axis, Zip};
use rayon::prelude::*;

/// Thresholds of the cloud and shadow tests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CloudParams {
    /// Cloud core: later-date blue reflectance above this...
    pub cloud_blue: f32,
    /// ...and blue brighter than the other date by this much.
    pub cloud_blue_rise: f32,
    /// Cloud cores smaller than this (pixels) are ignored (bright objects).
    pub cloud_min_pixels: usize,
    /// Cloud cores grow by up to this many pixels into connected pixels that
    /// brightened; shadows by half of it.
    pub cloud_grow_px: usize,
    /// Shadow core: red, NIR (and SWIR) darker than this ratio of the other date.
    pub shadow_ratio: f32,
    /// Shadows are only looked for within this many pixels of a cloud.
    pub shadow_search_px: usize,
}

/// Cloud (5) and shadow (6) per date — `(before, after)` — 0 elsewhere, found by comparing
/// the dates: a cloud core is much brighter in blue than the other date and
/// large; it grows into connected pixels that brightened (and whose NIR did
/// not drop). Shadows are the cloud footprint cast along the sun direction
/// (the offset that lays most cloud onto darkened pixels) where red, NIR and
/// SWIR darkened below `shadow_ratio` of the other date. Both are dilated.
pub fn clouds_and_shadows<'a>(
    before: ArrayView3<'a, f32>,
    after: ArrayView3<'a, f32>,
    valid: ArrayView2<bool>,
    p: &CloudParams,
) -> (Array2<u8>, Array2<u8>) {
    let (b, a, _) = clouds_and_shadows_cast(before, after, valid, p, None);
    (b, a)
}

/// The shadow cast offset (columns, rows) per date — `(before, after)` —
/// `None` where no shadow was cast.
pub type Cast = [Option<(isize, isize)>; 2];

/// [`clouds_and_shadows`], also returning the shadow cast offsets; with
/// `cast` given, those offsets are used instead of being estimated (the
/// streaming path estimates them once on a sample of the scene).
pub fn clouds_and_shadows_cast<'a>(
    before: ArrayView3<'a, f32>,
    after: ArrayView3<'a, f32>,
    valid: ArrayView2<bool>,
    p: &CloudParams,
    cast: Option<Cast>,
) -> (Array2<u8>, Array2<u8>, Cast) {
    clouds_from_flags(cloud_flags(before, after, valid, p).view(), p, cast)
}

/// Bits of [`cloud_flags`] for the earlier date (the later date's are
/// these shifted left by [`LATER`]): a cloud core...
pub const CORE: u8 = 1;
/// ...a pixel a cloud may grow into (blue brightened, NIR did not drop)...
pub const RISE: u8 = 2;
/// ...red, NIR (and SWIR) darker than `shadow_ratio` of the other date...
pub const DARK: u8 = 4;
/// ...and darker than 0.85 of it (where a shadow may grow).
pub const DARKER: u8 = 8;
/// Shift of the later date's bits.
pub const LATER: u8 = 4;

/// The per-pixel tests of the cloud and shadow detection for both dates,
/// as bits ([`CORE`], [`RISE`], [`DARK`], [`DARKER`]; 0 where not
/// `valid`). Everything after them reads only these bits, so a streamed
/// scene computes them once per row and runs the rest, which needs a halo
/// of rows, on a byte a pixel instead of both dates' bands.
pub fn cloud_flags<'a>(
    before: ArrayView3<'a, f32>,
    after: ArrayView3<'a, f32>,
    valid: ArrayView2<bool>,
    p: &CloudParams,
) -> Array2<u8> {
    let (nb, _, w) = before.dim();
    let mut out = Array2::<u8>::zeros(valid.dim());
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(r, mut o)| {
            let mut score = vec![0f32; w];
            for (k, (x, y)) in [(before, after), (after, before)].into_iter().enumerate() {
                let row = |a: &ArrayView3<'a, f32>, b: usize| a.slice_move(s![b, r, ..]);
                // Blue and green are left out of the shadow test: in a
                // shadow they are dominated by path radiance (haze), so
                // they darken far less than red and NIR.
                score.fill(0.0);
                for b in super::indices::RED..nb {
                    Zip::from(&mut score[..])
                        .and(row(&x, b))
                        .and(row(&y, b))
                        .for_each(|s, &xb, &yb| *s = s.max(xb / yb.max(1e-4)));
                }
                let shift = LATER * k as u8;
                let (bx, by) = (row(&x, BLUE), row(&y, BLUE));
                let (nx, ny) = (row(&x, NIR), row(&y, NIR));
                let v = valid.row(r);
                for c in 0..w {
                    if !v[c] {
                        continue;
                    }
                    let (rise, nir_kept) = (bx[c] - by[c], nx[c] - ny[c] > -0.02);
                    // Thin cloud brightens blue and does not darken NIR;
                    // new man-made surfaces on vegetation brighten blue
                    // too but lower NIR.
                    let bit = |on: bool, b: u8| if on { b } else { 0 };
                    let core = bx[c] > p.cloud_blue && rise > p.cloud_blue_rise && nir_kept;
                    let bits = bit(core, CORE)
                        | bit(rise > 0.02 && nir_kept, RISE)
                        | bit(score[c] < p.shadow_ratio, DARK)
                        | bit(score[c] < 0.85, DARKER);
                    o[c] |= bits << shift;
                }
            }
        });
    out
}

/// Cloud (5) and shadow (6) per date from the bits of [`cloud_flags`]
/// (see [`clouds_and_shadows_cast`]).
pub fn clouds_from_flags(
    flags: ArrayView2<u8>,
    p: &CloudParams,
    cast: Option<Cast>,
) -> (Array2<u8>, Array2<u8>, Cast) {
    let (h, w) = flags.dim();
    let mut outs = [Array2::<u8>::zeros((h, w)), Array2::<u8>::zeros((h, w))];
    let mut used: Cast = [None, None];
    for (k, out) in outs.iter_mut().enumerate() {
        let bit = |b: u8| flags.mapv(|f| f & (b << (LATER * k as u8)) != 0);
        let core = bit(CORE);
        // No component can be big enough: skip the labelling.
        if core.iter().filter(|&&v| v).count() < p.cloud_min_pixels {
            continue;
        }
        let (lab, comps) = label(core.view());
        let big: Vec<bool> = std::iter::once(false)
            .chain(comps.iter().map(|c| c.pixels >= p.cloud_min_pixels))
            .collect();
        let core = lab.mapv(|l| big[l as usize]);
        if !core.iter().any(|&v| v) {
            continue;
        }
        let cloud = dilate(
            reconstruct(core.view(), bit(RISE).view(), p.cloud_grow_px).view(),
            Shape::Square,
            3,
        );
        // Shadows: the cloud's footprint cast along the sun direction. The
        // offset is the one that lays the most cloud pixels onto darkened
        // pixels; shadows are then that cast footprint where the surface
        // darkened. A darkening that no cloud casts (sand dug away, a pond)
        // is not a shadow.
        let mut dark = bit(DARK);
        Zip::from(&mut dark)
            .and(&cloud)
            .for_each(|d, &c| *d = *d && !c);
        let offset = match cast {
            Some(c) => c[k],
            None => cast_offset(cloud.view(), dark.view(), p.shadow_search_px as isize),
        };
        used[k] = offset;
        let shadow = match offset {
            Some((dx, dy)) => {
                let cast = shift_mask(cloud.view(), dx, dy);
                let core = Zip::from(&cast).and(&dark).map_collect(|&a, &b| a && b);
                let grown = reconstruct(core.view(), bit(DARKER).view(), 4);
                let cast_near = dilate(cast.view(), Shape::Square, 4);
                dilate(
                    Zip::from(&grown)
                        .and(&cast_near)
                        .map_collect(|&g, &n| g && n)
                        .view(),
                    Shape::Square,
                    3,
                )
            }
            None => Array2::from_elem((h, w), false),
        };
        Zip::from(out)
            .and(&cloud)
            .and(&shadow)
            .for_each(|o, &c, &s| {
                if c {
                    *o = CLOUD;
                } else if s && *o == 0 {
                    *o = SHADOW;
                }
            });
    }
    let [b, a] = outs;
    (b, a, used)
}

/// Reflectance of a thick cloud (blue, green, red, NIR, SWIR1): the end member
/// of the thin-cloud mixing test.
pub const CLOUD_SPECTRUM: [f32; 5] = [0.42, 0.43, 0.45, 0.48, 0.36];

/// Thin cloud and haze patches (5) per date — `(before, after)` — on
/// radiometrically normalised data: a pixel whose spectrum moved from the
/// other date's spectrum along the straight line towards [`CLOUD_SPECTRUM`]
/// (linear mixing with a cloud, share `α`) is cloud-covered. Patches start
/// where `α > 0.12` over at least `2 × cloud_min_pixels` pixels and grow into
/// connected pixels with `α > 0.04` on the same line. New roofs, waste or
/// fill change the spectrum in other directions and leave the line.
pub fn thin_clouds<'a>(
    before: ArrayView3<'a, f32>,
    after: ArrayView3<'a, f32>,
    valid: ArrayView2<bool>,
    p: &CloudParams,
) -> (Array2<u8>, Array2<u8>) {
    let [a0, a1] = thin_levels(before, after, valid);
    thin_clouds_from_levels([a0.view(), a1.view()], p)
}

/// The per-pixel half of [`thin_clouds`]: each date's mixing share with
/// cloud against the other date, as levels (2 seeds a patch, α > 0.12; 1
/// lets it grow, α > 0.04; 0 neither, or not valid). A pixel's levels
/// depend on that pixel only.
pub fn thin_levels<'a>(
    before: ArrayView3<'a, f32>,
    after: ArrayView3<'a, f32>,
    valid: ArrayView2<bool>,
) -> [Array2<u8>; 2] {
    let (h, w) = valid.dim();
    let nb = before.len_of(Axis(0)).min(5);
    // Both directions in one pass, row by row over band planes; each step
    // of [`mixing_alpha`] over a whole row at once (the same sums in the
    // same band order, so the same bits), which the compiler vectorises.
    let level = |a: f32| u8::from(a > 0.04) + u8::from(a > 0.12);
    let mut alphas = [Array2::<u8>::zeros((h, w)), Array2::<u8>::zeros((h, w))];
    {
        let [a0, a1] = &mut alphas;
        a0.axis_iter_mut(Axis(0))
            .into_par_iter()
            .zip(a1.axis_iter_mut(Axis(0)))
            .enumerate()
            .for_each(|(r, (r0, r1))| {
                let br: Vec<_> = (0..nb).map(|b| before.slice(s![b, r, ..])).collect();
                let ar: Vec<_> = (0..nb).map(|b| after.slice(s![b, r, ..])).collect();
                let vr = valid.row(r);
                let (mut num, mut den, mut res) = (vec![0f32; w], vec![0f32; w], vec![0f32; w]);
                for (xs, ys, mut out) in [(&br, &ar, r0), (&ar, &br, r1)] {
                    num.fill(0.0);
                    den.fill(0.0);
                    res.fill(0.0);
                    for b in 0..nb {
                        let cs = CLOUD_SPECTRUM[b];
                        Zip::from(&mut num[..])
                            .and(&mut den[..])
                            .and(xs[b])
                            .and(ys[b])
                            .for_each(|n, d, &x, &y| {
                                let dd = cs - y;
                                *n += (x - y) * dd;
                                *d += dd * dd;
                            });
                    }
                    // The share (num becomes α).
                    Zip::from(&mut num[..]).and(&den[..]).for_each(|n, &d| {
                        *n = if d > 1e-6 {
                            (*n / d).clamp(0.0, 1.0)
                        } else {
                            0.0
                        };
                    });
                    for b in 0..nb {
                        let cs = CLOUD_SPECTRUM[b];
                        Zip::from(&mut res[..])
                            .and(&num[..])
                            .and(xs[b])
                            .and(ys[b])
                            .for_each(|q, &al, &x, &y| {
                                let v = x - (y + al * (cs - y));
                                *q += v * v;
                            });
                    }
                    Zip::from(&mut out)
                        .and(vr)
                        .and(&num[..])
                        .and(&res[..])
                        .for_each(|o, &v, &al, &q| {
                            // Shares this small neither seed nor grow a
                            // cloud; off the line to the cloud spectrum, -1.
                            let a = if al <= 0.04 {
                                0.0
                            } else if q.sqrt() < 0.02 + 0.08 * al {
                                al
                            } else {
                                -1.0
                            };
                            *o = if v { level(a) } else { 0 };
                        });
                }
            });
    }
    alphas
}

/// The neighbourhood half of [`thin_clouds`], from the levels of
/// [`thin_levels`]: seeds in patches of at least `2 × cloud_min_pixels`
/// pixels, grown into connected pixels of level 1, then dilated.
pub fn thin_clouds_from_levels(
    levels: [ArrayView2<u8>; 2],
    p: &CloudParams,
) -> (Array2<u8>, Array2<u8>) {
    let (h, w) = levels[0].dim();
    let mut outs = [Array2::<u8>::zeros((h, w)), Array2::<u8>::zeros((h, w))];
    for (k, alpha) in levels.iter().enumerate() {
        let core = alpha.mapv(|a| a == 2);
        // No component can be big enough: skip the labelling.
        if core.iter().filter(|&&v| v).count() < 2 * p.cloud_min_pixels {
            continue;
        }
        let (lab, comps) = label(core.view());
        let big: Vec<bool> = std::iter::once(false)
            .chain(comps.iter().map(|c| c.pixels >= 2 * p.cloud_min_pixels))
            .collect();
        let core = lab.mapv(|l| big[l as usize]);
        if !core.iter().any(|&v| v) {
            continue;
        }
        let grow = alpha.mapv(|a| a >= 1);
        let cloud = dilate(
            reconstruct(core.view(), grow.view(), p.cloud_grow_px).view(),
            Shape::Square,
            2,
        );
        Zip::from(&mut outs[k]).and(&cloud).for_each(|o, &c| {
            if c {
                *o = CLOUD;
            }
        });
    }
    let [b, a] = outs;
    (b, a)
}

/// Share of cloud in `x` when `x` lies on the line from `y` to the cloud
/// spectrum; -1 when it is off that line (not a cloud mixture). The
/// definition [`thin_levels`] computes a row at a time.
#[cfg(test)]
fn mixing_alpha(x: &[f32; 5], y: &[f32; 5], nb: usize) -> f32 {
    let (mut num, mut den) = (0f32, 0f32);
    for b in 0..nb {
        let d = CLOUD_SPECTRUM[b] - y[b];
        num += (x[b] - y[b]) * d;
        den += d * d;
    }
    let al = if den > 1e-6 {
        (num / den).clamp(0.0, 1.0)
    } else {
        0.0
    };
    // Shares this small neither seed nor grow a cloud (see the callers'
    // 0.12 and 0.04): skip the residual.
    if al <= 0.04 {
        return 0.0;
    }
    let mut res = 0f32;
    for b in 0..nb {
        let v = x[b] - (y[b] + al * (CLOUD_SPECTRUM[b] - y[b]));
        res += v * v;
    }
    if res.sqrt() < 0.02 + 0.08 * al {
        al
    } else {
        -1.0
    }
}

/// `m` moved by (dx, dy) pixels: out(r + dy, c + dx) = m(r, c).
fn shift_mask(m: ArrayView2<bool>, dx: isize, dy: isize) -> Array2<bool> {
    let (h, w) = m.dim();
    Array2::from_shape_fn((h, w), |(r, c)| {
        let (sr, sc) = (r as isize - dy, c as isize - dx);
        sr >= 0
            && sc >= 0
            && (sr as usize) < h
            && (sc as usize) < w
            && m[[sr as usize, sc as usize]]
    })
}

/// The offset within `±reach` that casts the most cloud pixels onto dark
/// pixels (sampled every third pixel, 2-pixel steps then 1-pixel refinement);
/// `None` when under a fifth of the cast cloud lands on dark pixels.
fn cast_offset(
    cloud: ArrayView2<bool>,
    dark: ArrayView2<bool>,
    reach: isize,
) -> Option<(isize, isize)> {
    let (h, w) = cloud.dim();
    let pts: Vec<(isize, isize)> = (0..h)
        .step_by(3)
        .flat_map(|r| (0..w).step_by(3).map(move |c| (r, c)))
        .filter(|&(r, c)| cloud[[r, c]])
        .map(|(r, c)| (r as isize, c as isize))
        .collect();
    if pts.len() < 10 {
        return None;
    }
    let hits = |dx: isize, dy: isize| -> usize {
        pts.iter()
            .filter(|&&(r, c)| {
                let (rr, cc) = (r + dy, c + dx);
                rr >= 0
                    && cc >= 0
                    && (rr as usize) < h
                    && (cc as usize) < w
                    && dark[[rr as usize, cc as usize]]
            })
            .count()
    };
    let best = |cands: Vec<(isize, isize)>| -> (usize, (isize, isize)) {
        cands
            .into_par_iter()
            .map(|(dx, dy)| (hits(dx, dy), (dx, dy)))
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .unwrap_or((0, (0, 0)))
    };
    let coarse: Vec<(isize, isize)> = (-reach..=reach)
        .step_by(2)
        .flat_map(|dx| (-reach..=reach).step_by(2).map(move |dy| (dx, dy)))
        .filter(|&(dx, dy)| dx != 0 || dy != 0)
        .collect();
    let (_, (cx, cy)) = best(coarse);
    let fine: Vec<(isize, isize)> = (-1..=1)
        .flat_map(|i| (-1..=1).map(move |j| (cx + i, cy + j)))
        .collect();
    let (n, off) = best(fine);
    (n * 5 >= pts.len()).then_some(off)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn row_wise_levels_equal_the_per_pixel_mixing_share() {
        let (h, w) = (7, 23);
        for nb in [4, 5] {
            let before = Array3::from_shape_fn((nb, h, w), |(b, r, c)| {
                0.03 + 0.01 * b as f32 + 0.002 * ((r * 13 + c * 7) % 17) as f32
            });
            // Cloud mixed in with shares 0 to 0.45, and every fifth pixel
            // moved off the line to the cloud spectrum.
            let after = Array3::from_shape_fn((nb, h, w), |(b, r, c)| {
                let al = 0.05 * ((r * 5 + c) % 10) as f32;
                let y = before[[b, r, c]];
                let off = if (r + c) % 5 == 0 {
                    0.08 * (b % 2) as f32
                } else {
                    0.0
                };
                y + al * (CLOUD_SPECTRUM[b] - y) + off
            });
            let valid = Array2::from_shape_fn((h, w), |(r, c)| (r * w + c) % 11 != 3);
            let [l0, l1] = thin_levels(before.view(), after.view(), valid.view());
            let level = |a: f32| u8::from(a > 0.04) + u8::from(a > 0.12);
            let mut seen = [0usize; 3];
            for r in 0..h {
                for c in 0..w {
                    let (mut x, mut y) = ([0f32; 5], [0f32; 5]);
                    for b in 0..nb {
                        x[b] = before[[b, r, c]];
                        y[b] = after[[b, r, c]];
                    }
                    let v = valid[[r, c]];
                    let want = |p: &[f32; 5], q: &[f32; 5]| {
                        if v {
                            level(mixing_alpha(p, q, nb))
                        } else {
                            0
                        }
                    };
                    assert_eq!(l0[[r, c]], want(&x, &y), "before at {r} {c}");
                    assert_eq!(l1[[r, c]], want(&y, &x), "after at {r} {c}");
                    seen[usize::from(l1[[r, c]])] += 1;
                }
            }
            // Every level occurs, so the comparison means something.
            assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
        }
    }
}
