#!/usr/bin/env python3
"""How far the current detector design can go on OSCD: ceilings measured
with the held-out (leave-one-city-out) fold models.

Reads what `scripts/fit_change_model.py prepare`, `stack` and `cv` left
under target/changefit (the per-pixel features of every city, the reference
on that grid, the fold models, and the held-out runs at min_confidence 0
and 0.25) and prints, per city and on the mean:

  * product      -- the reported layer held out at min_confidence 0.25 (as
                    the README's table);
  * oracle conf  -- the component confidence thresholded at the best value
                    for that city (run at min_confidence 0; an upper bound
                    no threshold rule can beat);
  * pixel LOCO   -- the fold's pixel model (the gradient-boosted trees)
                    on every pixel, its probability averaged over 5 x 5
                    pixels and thresholded at the value the other 13 cities
                    prefer: detection without the rules' candidates;
  * union LOCO   -- the reported layer OR that pixel layer, the threshold
                    again chosen on the other cities.

Usage (numpy and python3-gdal; about a minute):

    /usr/bin/python3 scripts/oscd_ceiling.py [--folds folds-indep]
"""
import argparse, json, os
import numpy as np
from osgeo import gdal
from numpy.lib.stride_tricks import sliding_window_view

ap = argparse.ArgumentParser()
ap.add_argument("--data", default="../shared/data/oscd-dev")
ap.add_argument("--work", default="target/changefit")
ap.add_argument("--folds", default="folds-indep")
a = ap.parse_args()
CITIES = [c["city"] for c in json.load(open(os.path.join(a.data, "cities.json")))]
PIXEL_T = [0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
CONF_T = np.round(np.arange(0.05, 0.951, 0.05), 2)


def raster(path):
    ds = gdal.Open(path)
    if ds is None:
        raise SystemExit(f"{path}: missing; run scripts/fit_change_model.py prepare, stack and cv first")
    return ds.ReadAsArray()


def kappa(pred, ref):
    n = ref.size
    tp = np.sum(pred & ref); fp = np.sum(pred & ~ref); fn = np.sum(~pred & ref); tn = n - tp - fp - fn
    po = (tp + tn) / n
    pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / n / n
    return float((po - pe) / (1 - pe)) if pe < 1 else 0.0


def probability(model, x):
    """The tree ensemble's change probability for the rows of `x` (left when
    x <= threshold, NaN right, as riverwatch evaluates it)."""
    s = np.full(x.shape[0], model["baseline"])
    for t in model["trees"]:
        f, th = np.array(t["feature"]), np.array(t["threshold"])
        left, right, val, leaf = (np.array(t[k]) for k in ("left", "right", "value", "leaf"))
        leaf = leaf.astype(bool)
        node = np.zeros(x.shape[0], int)
        while True:
            idx = np.nonzero(~leaf[node])[0]
            if idx.size == 0:
                break
            nd = node[idx]
            node[idx] = np.where(x[idx, f[nd]] <= th[nd], left[nd], right[nd])
        s += val[node]
    return 1 / (1 + np.exp(-s))


def box(p, k):
    q = np.pad(p, k // 2, mode="edge")
    return sliding_window_view(q, (k, k)).mean(axis=(2, 3))


def loco(table):
    """Per city, the score at the threshold with the best mean over the
    other cities."""
    k = np.array([table[c] for c in CITIES])
    return {c: k[i, np.argmax(np.delete(k, i, 0).mean(0))] for i, c in enumerate(CITIES)}


prod, oracle, pix, union = {}, {}, {}, {}
for c in CITIES:
    o = os.path.join(a.work, "oscd", c)
    fold = os.path.join(a.work, a.folds, c)
    ref = raster(f"{o}/ref.tif")
    feats = raster(f"{o}/{c}_change_features.tif").astype(np.float32)
    model = json.load(open(os.path.join(a.work, a.folds, f"{c}-swir.json")))
    nb, h, w = feats.shape
    p = np.nan_to_num(probability(model, feats.reshape(nb, -1).T).reshape(h, w))
    m, r = ref > 0, ref == 2
    rep = raster(f"{fold}/c0.25/{c}_change_class.tif") > 0
    conf = raster(f"{fold}/zero/{c}_confidence.tif").astype(float)
    q = box(p, 5)
    prod[c] = kappa(rep[m], r[m])
    oracle[c] = max(kappa((conf >= t)[m], r[m]) for t in CONF_T)
    pix[c] = [kappa((q > t)[m], r[m]) for t in PIXEL_T]
    union[c] = [kappa((rep | (q > t))[m], r[m]) for t in PIXEL_T]
pix_h, union_h = loco(pix), loco(union)
print(f"{'city':<14} {'product':>8} {'oracle conf':>12} {'pixel LOCO':>11} {'union LOCO':>11}")
for c in CITIES:
    print(f"{c:<14} {prod[c]:>8.3f} {oracle[c]:>12.3f} {pix_h[c]:>11.3f} {union_h[c]:>11.3f}")
for name, d in [("mean", np.mean), ("min", np.min)]:
    print(f"{name:<14} {d(list(prod.values())):>8.3f} {d(list(oracle.values())):>12.3f} "
          f"{d(list(pix_h.values())):>11.3f} {d(list(union_h.values())):>11.3f}")
