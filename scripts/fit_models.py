#!/usr/bin/env python3
"""Fits the confidence and class models of src/pipeline/models.rs and writes
src/pipeline/model_coef.rs.

For each band layout it synthesises scenes (cached under target/quality/),
runs `riverwatch detect` with `min_confidence = 0` and `--features F.jsonl`,
which writes the model inputs of every component (first line: their names,
in model order, as defined once in src/pipeline/features.rs), and labels each component
with `riverwatch eval --matches` (true when matched to a truth object at
IoU >= 0.3, with that object's class). Then it fits

* confidence: L2-regularised logistic regression (IRLS, standardised inputs),
* class: L2-regularised softmax regression over the true components,

reports 5-fold cross-validation grouped by seed, and writes the coefficients.
Needs python3 with numpy. Never pass the check seeds (101-105) here.

    cargo build --release
    scripts/fit_models.py --s2-seeds 1-6 11-40 --gf-seeds 1-3 11-24
    cargo build --release   # with the new coefficients
"""
import argparse, json, os, subprocess, tempfile
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--s2-seeds", nargs="+", required=True, help="seeds or ranges a-b")
ap.add_argument("--gf-seeds", nargs="+", required=True)
ap.add_argument("--tiles", type=int, default=4)
ap.add_argument("--size", type=int, default=1024)
ap.add_argument("--bin", default="target/release/riverwatch")
ap.add_argument("--out", default="src/pipeline/model_coef.rs")
a = ap.parse_args()
CLASSES = ["occupation", "sand_mining", "dumping", "construction"]


def seeds(spec):
    out = []
    for s in spec:
        lo, _, hi = s.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    if set(out) & set(range(101, 106)):
        raise SystemExit("seeds 101-105 are the check set; do not fit on them")
    return out


def collect(sensor, seed_list):
    cfg = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    cfg.write("min_confidence = 0.0\n")
    cfg.close()
    rows = []
    for seed in seed_list:
        d = f"target/quality/{sensor}-s{seed}-{a.tiles}x{a.size}"
        if not os.path.exists(f"{d}/truth.geojson"):
            subprocess.run([a.bin, "synth", "-o", d, "--seed", str(seed), "--tiles", str(a.tiles), "--size", str(a.size), "--sensor", sensor], check=True, capture_output=True)
        pred = f"{d}/pred-fit.geojson"
        feats = f"{d}/features-fit.jsonl"
        subprocess.run([a.bin, "detect", f"{d}/manifest.json", "-o", pred, "--config", cfg.name, "--features", feats], check=True, capture_output=True)
        dbg = {}
        with open(feats) as fh:
            names = json.loads(fh.readline())
            for line in fh:
                j = json.loads(line)
                dbg[j["id"]] = {"xc": j["conf_features"], "xk": j["class_features"]}
        m = f"{d}/matches-fit.jsonl"
        subprocess.run([a.bin, "eval", "--pred", pred, "--truth", f"{d}/truth.geojson", "--matches", m], check=True, capture_output=True)
        for line in open(m):
            mt = json.loads(line)
            j = dbg[mt["id"]]
            rows.append((seed, j["xc"], j["xk"], mt["truth_class"]))
    os.unlink(cfg.name)
    return rows


def standardise(X):
    mu, sd = X.mean(0), X.std(0) + 1e-9
    return np.c_[np.ones(len(X)), (X - mu) / sd], mu, sd


def logistic(X, y, lam=1.0):
    w = np.zeros(X.shape[1])
    reg = lam * np.r_[0.0, np.ones(X.shape[1] - 1)]
    for _ in range(100):
        p = 1 / (1 + np.exp(-(X @ w)))
        H = (X * (p * (1 - p))[:, None]).T @ X + np.diag(reg)
        step = np.linalg.solve(H, X.T @ (p - y) + reg * w)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


def softmax(X, Y, lam=1.0, it=4000):
    W = np.zeros((X.shape[1], Y.shape[1]))
    v = np.zeros_like(W)
    for _ in range(it):
        Z = X @ W
        Z -= Z.max(1, keepdims=True)
        P = np.exp(Z)
        P /= P.sum(1, keepdims=True)
        G = X.T @ (P - Y) / len(X)
        G[1:] += lam * W[1:] / len(X)
        v = 0.9 * v - 0.5 * G
        W += v
    return W


def raw(w, mu, sd):
    """Coefficients on the unstandardised inputs."""
    w = np.asarray(w)
    if w.ndim == 1:
        return w[0] - np.sum(w[1:] * mu / sd), w[1:] / sd
    return w[0] - ((w[1:] * (mu / sd)[:, None]).sum(0)), w[1:] / sd[:, None]


def fit(sensor, seed_list):
    rows = collect(sensor, seed_list)
    sd_ = np.array([r[0] for r in rows])
    Xc = np.array([r[1] for r in rows], float)
    y = np.array([r[3] is not None for r in rows], float)
    Xs, mu, sd = standardise(Xc)
    folds = [sorted(set(sd_))[i::5] for i in range(5)]
    pred = np.zeros(len(y))
    for f in folds:
        te = np.isin(sd_, f)
        pred[te] = 1 / (1 + np.exp(-(Xs[te] @ logistic(Xs[~te], y[~te]))))
    print(f"## {sensor}: {len(rows)} components, {int(y.sum())} true, seeds {seed_list}")
    print("cross-validated confidence (threshold: precision, true kept of true found, false kept)")
    for th in [0.3, 0.4, 0.45, 0.5, 0.6]:
        k = pred >= th
        print(f"  {th:.2f}: {y[k].mean():.3f}, {y[k].sum() / y.sum():.3f}, {int((1 - y[k]).sum())}")
    conf = raw(logistic(Xs, y), mu, sd)
    t = y == 1
    Xk = np.array([r[2] for r in rows], float)[t]
    lab = np.array([CLASSES.index(r[3]) for r in rows if r[3] is not None])
    Y = np.eye(4)[lab]
    Ks, kmu, ksd = standardise(Xk)
    cls_pred = np.zeros(len(lab), int)
    for f in folds:
        te = np.isin(sd_[t], f)
        cls_pred[te] = (Ks[te] @ softmax(Ks[~te], Y[~te])).argmax(1)
    print(f"cross-validated class accuracy on true components: {(cls_pred == lab).mean():.3f}")
    for i, c in enumerate(CLASSES):
        print(f"  {c:13}" + " ".join(f"{int(((lab == i) & (cls_pred == j)).sum()):5}" for j in range(4)))
    cls = raw(softmax(Ks, Y), kmu, ksd)
    return conf, cls


def arr(v):
    return "[" + ", ".join(f"{x:.6e}" for x in v) + "]"


s2 = fit("sentinel2-l2a", seeds(a.s2_seeds))
gf = fit("gf-4band", seeds(a.gf_seeds))
out = ["// Written by scripts/fit_models.py; do not edit by hand.",
       f"// Fitted on synth seeds {a.s2_seeds} (sentinel2-l2a) and {a.gf_seeds} (gf-4band),",
       f"// {a.tiles} tiles of {a.size}² each; seeds 101-105 are the check set."]
for name, (conf, cls) in [("SWIR", s2), ("4", gf)]:
    out.append(f"pub(crate) const CONF_BIAS_{name}: f64 = {conf[0]:.6e};")
    out.append(f"pub(crate) const CONF_W_{name}: [f64; {len(conf[1])}] = {arr(conf[1])};")
    out.append(f"pub(crate) const CLASS_BIAS_{name}: [f64; 4] = {arr(cls[0])};")
    out.append(f"pub(crate) const CLASS_W_{name}: [[f64; 4]; {len(cls[1])}] = [")
    out.extend(f"    {arr(r)}," for r in cls[1])
    out.append("];")
with open(a.out + ".tmp", "w") as f:
    f.write("\n".join(out) + "\n")
os.replace(a.out + ".tmp", a.out)
print(f"wrote {a.out}")
