#!/usr/bin/env python3
"""Trial: does a small convolutional network over the shipped per-pixel
features beat the gradient-boosted pixel model on real imagery? OSCD
cities only, leave one city out, same protocol as
`scripts/edge_features_trial.py` (probability averaged over 5 x 5 px, one
threshold chosen on the other 13 cities' held-out maps).

The network: four 3 x 3 convolutions (dilations 1, 2, 4, 8; receptive
field 31 px) of WIDTH channels with ReLU, then a 1 x 1 output, plus a
linear path from the 36 inputs; inputs standardised on the training
cities; class-balanced cross-entropy per city; random 96 px crops with
flips and quarter turns. JAX on the CPU (`pip install jax` in the fit
venv). Reads the rasters `scripts/fit_change_model.py prepare` wrote
under target/changefit/oscd:

    target/fit-venv/bin/python scripts/cnn_trial.py [--width 16] [--steps 500] [--seed 0]
"""
import argparse, json, os, re, subprocess, sys, time
import numpy as np
from scipy import ndimage
import jax, jax.numpy as jnp

ap = argparse.ArgumentParser()
ap.add_argument("--width", type=int, default=16)
ap.add_argument("--steps", type=int, default=500)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--crop", type=int, default=96)
ap.add_argument("--batch", type=int, default=8)
ap.add_argument("--only", nargs="*", default=None, help="held-out cities to run (default all)")
ap.add_argument("--save", default=None, help="directory for held-out probability maps (.npy)")
args = ap.parse_args()


from envi import envi  # noqa: E402 (scripts/envi.py)


def kappa(p, r):
    n = r.size; tp = np.sum(p & r); fp = np.sum(p & ~r); fn = np.sum(~p & r); tn = n - tp - fp - fn
    po = (tp + tn) / n; pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / n / n
    return (po - pe) / (1 - pe) if pe < 1 else 0.0


cities = [c["city"] for c in json.load(open("../shared/data/oscd-dev/cities.json"))]
W = "target/changefit/oscd"
data = {}
for c in cities:
    o = f"{W}/{c}"
    F = np.nan_to_num(envi(f"{o}/{c}_change_features.tif", f"{o}/feat"))
    ref = envi(f"{o}/ref.tif", f"{o}/refr")[0]
    valid = (ref > 0) & np.any(F != 0, axis=0)
    data[c] = (F, ref, valid)
NF = data[cities[0]][0].shape[0]
Wd = args.width
DIL = (1, 2, 4, 8)


def init(key):
    ks = jax.random.split(key, 6)
    p = {}
    cin = NF
    for i, d in enumerate(DIL):
        p[f"w{i}"] = jax.random.normal(ks[i], (Wd, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))
        p[f"b{i}"] = jnp.zeros((Wd,))
        cin = Wd
    p["wo"] = jax.random.normal(ks[4], (1, Wd, 1, 1)) * np.sqrt(1.0 / Wd)
    p["wl"] = jnp.zeros((1, NF, 1, 1))
    p["bo"] = jnp.zeros((1,))
    return p


def forward(p, x):
    h = x
    for i, d in enumerate(DIL):
        h = jax.lax.conv_general_dilated(h, p[f"w{i}"], (1, 1), "SAME", rhs_dilation=(d, d))
        h = jax.nn.relu(h + p[f"b{i}"][None, :, None, None])
    o = jax.lax.conv_general_dilated(h, p["wo"], (1, 1), "SAME")
    o = o + jax.lax.conv_general_dilated(x, p["wl"], (1, 1), "SAME")
    return o[:, 0] + p["bo"][0]


def loss(p, x, y, w):
    z = forward(p, x)
    l = jnp.logaddexp(0.0, z) - y * z
    return jnp.sum(l * w) / jnp.maximum(jnp.sum(w), 1e-6)


@jax.jit
def step(p, m, v, t, x, y, w):
    g = jax.grad(loss)(p, x, y, w)
    lr = 3e-3 * jnp.minimum(1.0, (args.steps - t) / (0.3 * args.steps) + 0.05)
    m = jax.tree.map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
    v = jax.tree.map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
    mh = jax.tree.map(lambda a: a / (1 - 0.9 ** (t + 1)), m)
    vh = jax.tree.map(lambda a: a / (1 - 0.999 ** (t + 1)), v)
    p = jax.tree.map(lambda a, b, c: a - lr * b / (jnp.sqrt(c) + 1e-8), p, mh, vh)
    return p, m, v


pred = jax.jit(lambda p, x: jax.nn.sigmoid(forward(p, x)))


def fit(train, seed):
    rng = np.random.default_rng(seed)
    X = np.concatenate([data[c][0][:, data[c][2]] for c in train], axis=1)
    mu, sd = X.mean(1), X.std(1) + 1e-6
    norm = {c: np.clip((data[c][0] - mu[:, None, None]) / sd[:, None, None], -6, 6).astype(np.float32) for c in cities}
    wts = {}
    for c in train:
        F, ref, valid = data[c]
        pos = valid & (ref == 2); neg = valid & (ref == 1)
        wmap = np.where(pos, 0.5 / max(pos.sum(), 1), 0.0) + np.where(neg, 0.5 / max(neg.sum(), 1), 0.0)
        wts[c] = (wmap * valid.sum()).astype(np.float32)
    p = init(jax.random.PRNGKey(seed))
    m = jax.tree.map(jnp.zeros_like, p); v = jax.tree.map(jnp.zeros_like, p)
    C = args.crop
    for t in range(args.steps):
        xs, ys, ws = [], [], []
        for _ in range(args.batch):
            c = train[rng.integers(len(train))]
            F = norm[c]; ref = data[c][1]
            H, Wi = ref.shape
            r0 = rng.integers(0, max(H - C, 0) + 1); c0 = rng.integers(0, max(Wi - C, 0) + 1)
            x = np.zeros((NF, C, C), np.float32); y = np.zeros((C, C), np.float32); w = np.zeros((C, C), np.float32)
            hh = min(C, H - r0); ww = min(C, Wi - c0)
            x[:, :hh, :ww] = F[:, r0:r0 + hh, c0:c0 + ww]
            y[:hh, :ww] = ref[r0:r0 + hh, c0:c0 + ww] == 2
            w[:hh, :ww] = wts[c][r0:r0 + hh, c0:c0 + ww]
            k = rng.integers(4)
            x = np.rot90(x, k, (1, 2)); y = np.rot90(y, k); w = np.rot90(w, k)
            if rng.integers(2):
                x = x[:, :, ::-1]; y = y[:, ::-1]; w = w[:, ::-1]
            xs.append(np.ascontiguousarray(x)); ys.append(np.ascontiguousarray(y)); ws.append(np.ascontiguousarray(w))
        p, m, v = step(p, m, v, t, jnp.array(np.stack(xs)), jnp.array(np.stack(ys)), jnp.array(np.stack(ws)))
    return p, norm


T = [0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9]
K = {}
run = args.only or cities
t0 = time.time()
for c in run:
    train = [o for o in cities if o != c]
    p, norm = fit(train, args.seed)
    F, ref, valid = data[c]
    prob = np.asarray(pred(p, jnp.array(norm[c][None])))[0]
    if args.save:
        os.makedirs(args.save, exist_ok=True)
        np.save(f"{args.save}/{c}.npy", prob)
    q = ndimage.uniform_filter(prob, 5); mm = ref > 0; r = (ref == 2)[mm]
    K[c] = [kappa((q > t)[mm], r) for t in T]
    print(f"{c}: best {max(K[c]):.3f} at 0.5 {K[c][2]:.3f}  ({time.time() - t0:.0f} s)", flush=True)
if len(run) == len(cities):
    A = np.array([K[c] for c in cities])
    held = [A[i, np.argmax(np.delete(A, i, 0).mean(0))] for i in range(len(cities))]
    print("cnn width %d steps %d seed %d: LOCO mean %.3f min %.3f" % (Wd, args.steps, args.seed, np.mean(held), np.min(held)))
    print(" ".join(f"{c}:{h:.3f}" for c, h in zip(cities, held)))
