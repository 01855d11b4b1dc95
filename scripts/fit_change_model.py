#!/usr/bin/env python3
"""Fits the per-pixel change model (models/change-*.json) on real and
synthetic pairs together, and cross-validates it.

Data:
  * real: the 14 OSCD dev cities (../shared/data/oscd-dev, Sentinel-2 L1C,
    labels = urban change; water, crops and vegetation change are labelled
    unchanged, which is what the product should explain away too);
  * synthetic: `riverwatch synth` scenes of the fit seeds (never 101-105),
    labels = the truth polygons (every encroachment class); everything
    else, including the generator's seasonal and water-level change, is
    unchanged;
  * synthetic from a second generator, scripts/synth_indep.py (seeds
    11-16, GF 11-13; never its check seeds 1-5), labelled the same way.

Features are the ones the binary computes (`detect --emit-rasters DIR
--emit-features`), so training and inference read identical numbers.

Each dataset (city or synthetic seed) is weighted equally, changed and
unchanged pixels half each (so a small city counts as much as a big one).
Models: gradient-boosted trees (scikit-learn HistGradientBoosting), one
for 5-band pairs (with SWIR1) and one for 4-band pairs (VNIR only, fitted
on the same real cities' first four bands and on GF-layout synth).

The confidence stack (`stack`): every city is run at min_confidence 0
with the pixel model fitted without it (out-of-fold change probability),
the synthetic stacking seeds (S2 7-9, GF 5-6, never in the pixel fit)
with the shipped model; their components, labelled changed when at least
half their pixels are, fit sigma(b0 + b1 logit(component score) + b2
logit(mean probability)) into models/ and, per city, a stack without the
city into its fold model.

Folds (`cv`): leave one OSCD city out -- the binary runs with
`--change-model FOLD.json` (pixel model and stack fitted without the
city) at each min_confidence of GRID and `eval-change` scores it; the
synthetic check seeds 101-105 are a seed group no fit ever sees
(scripts/quality.py). Usage (about 40 min on 2 cores):

    cargo build --release
    python3 -m venv target/fit-venv && target/fit-venv/bin/pip install numpy scikit-learn scipy
    target/fit-venv/bin/python scripts/fit_change_model.py prepare   # detect runs, reference rasters
    target/fit-venv/bin/python scripts/fit_change_model.py fit       # writes models/
    cargo build --release                                            # embeds them
    target/fit-venv/bin/python scripts/fit_change_model.py stack     # fold models + the stack
    cargo build --release
    target/fit-venv/bin/python scripts/fit_change_model.py cv        # held-out table
"""
import argparse, json, os, re, subprocess, sys
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("step", choices=["prepare", "fit", "stack", "restack", "cv"])
ap.add_argument("--data", default="../shared/data/oscd-dev")
ap.add_argument("--bin", default="target/release/riverwatch")
ap.add_argument("--work", default="target/changefit")
ap.add_argument("--s2-seeds", default="1-6")
ap.add_argument("--gf-seeds", default="1-4")
ap.add_argument("--hard-seeds", default="11-13",
                help="Sentinel-2 seeds of `synth --hard` scenes (sensor change, haze, shifts, unmasked clouds) in the pixel fit")
ap.add_argument("--indep-seeds", default="11-16",
                help="Sentinel-2 seeds of scripts/synth_indep.py scenes in the pixel fit (the independent generator; "
                     "its seeds 1-5 are its check set and never fitted); empty: none")
ap.add_argument("--indep-gf-seeds", default="11-13", help="the same, GF 4-band scenes")
ap.add_argument("--indep-hard-seeds", default="", help="the same, Sentinel-2 `synth_indep.py --hard` scenes")
ap.add_argument("--stack-indep-seeds", default="",
                help="Sentinel-2 seeds of scripts/synth_indep.py scenes among the confidence stack's synthetic seeds "
                     "(never in the pixel fit); empty: none")
ap.add_argument("--neg", type=int, default=30000, help="unchanged pixels sampled per dataset")
ap.add_argument("--synth-weight", type=float, default=1.0, help="weight of a synthetic seed relative to a city")
ap.add_argument("--stack-synth-weight", type=float, default=30.0,
                help="weight of a synthetic seed's components relative to a city's in the confidence stack")
ap.add_argument("--trees", type=int, default=150)
ap.add_argument("--depth", type=int, default=6)
ap.add_argument("--only", help="cv: comma-separated cities")
ap.add_argument("--folds", default="folds",
                help="stack/restack/cv: the fold models' folder under --work (another name keeps an experiment apart)")
a = ap.parse_args()
CITIES = json.load(open(os.path.join(a.data, "cities.json")))


def seeds(spec):
    out = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    if any(100 < s <= 105 for s in out):
        raise SystemExit("seeds 101-105 are the check set; do not fit on them")
    return out


def indep_seeds(spec):
    out = seeds(spec) if spec else []
    if any(s <= 5 for s in out):
        raise SystemExit("scripts/synth_indep.py seeds 1-5 are its check set; do not fit on them")
    return out


def run(*args, **kw):
    return subprocess.run([str(x) for x in args], check=True, capture_output=True, text=True, **kw)


def envi(tif, out):
    """A GeoTIFF as a (bands, rows, cols) numpy array, through ENVI raw."""
    if not os.path.exists(out + ".hdr") or os.path.getmtime(out + ".hdr") < os.path.getmtime(tif):
        run("gdal_translate", "-q", "-of", "ENVI", "-co", "INTERLEAVE=BSQ", tif, out + ".bin")
    h = open(out + ".hdr").read()
    g = lambda k: int(re.search(k + r"\s*=\s*(\d+)", h).group(1))
    dt = {1: np.uint8, 2: np.int16, 4: np.float32, 12: np.uint16}[g("data type")]
    arr = np.fromfile(out + ".bin", dtype=dt).reshape(g("bands"), g("lines"), g("samples"))
    names = re.search(r"band names\s*=\s*\{([^}]*)\}", h)
    return arr, names


def grid_of(tif):
    info = json.loads(run("gdalinfo", "-json", tif).stdout)
    gt = info["geoTransform"]; w, h = info["size"]
    return gt, w, h, info["coordinateSystem"]["wkt"]


def onto(src, like, out, burn_geojson=False):
    """Rasterises/warps `src` onto the grid of `like` (nearest neighbour)."""
    gt, w, h, wkt = grid_of(like)
    te = [gt[0], gt[3] + gt[5] * h, gt[0] + gt[1] * w, gt[3]]
    open(out + ".wkt", "w").write(wkt)
    if os.path.exists(out):
        os.remove(out)
    if burn_geojson:
        # gdal_rasterize does not reproject: bring the polygons into the
        # grid's CRS first.
        run("ogr2ogr", "-f", "GeoJSON", "-t_srs", out + ".wkt", out + ".geojson", src)
        src = out + ".geojson"
        run("gdal_rasterize", "-q", "-burn", "2", "-init", "1", "-ot", "Byte", "-a_srs", out + ".wkt",
            "-te", *te, "-ts", w, h, src, out)
    else:
        run("gdalwarp", "-q", "-r", "near", "-t_srs", out + ".wkt", "-te", *te, "-ts", w, h, src, out)


def prepare():
    os.makedirs(a.work, exist_ok=True)
    for c in CITIES:
        n = c["city"]; d = os.path.join(a.data, n); o = os.path.join(a.work, "oscd", n)
        if os.path.exists(f"{o}/ref.tif"):
            continue
        os.makedirs(o, exist_ok=True)
        run(a.bin, "detect", "--scene", "--before", f"{d}/before.tif", "--after", f"{d}/after.tif",
            "--before-date", c["before"], "--after-date", c["after"], "--tile", n, "--sensor", "sentinel2-l1c",
            "-o", f"{o}/pred.geojson", "--emit-rasters", o, "--emit-features")
        onto(f"{d}/reference.tif", f"{o}/{n}_change_features.tif", f"{o}/ref.tif")
        print("prepared", n, flush=True)
    for sensor, spec in SYNTH_SETS + STACK_SETS:
        for s in seeds(spec):
            o = synth_dir(sensor, s)
            if os.path.exists(f"{o}/done"):
                continue
            hard = ["--hard"] if sensor.endswith("-hard") else []
            if sensor.startswith("indep-"):
                run(sys.executable, os.path.join(os.path.dirname(__file__), "synth_indep.py"), "-o", o, "--seed", s,
                    "--tiles", 4, "--size", 1024, "--sensor", sensor.removeprefix("indep-").removesuffix("-hard"), *hard)
            else:
                run(a.bin, "synth", "-o", o, "--seed", s, "--tiles", 4, "--size", 1024,
                    "--sensor", sensor.removesuffix("-hard"), *hard)
            run(a.bin, "detect", f"{o}/manifest.json", "-o", f"{o}/pred.geojson", "--emit-rasters", o, "--emit-features")
            man = json.load(open(f"{o}/manifest.json"))
            for t in man["tiles"]:
                tid = t["id"]
                tj = f"{o}/truth_{tid}.geojson"
                truth = json.load(open(f"{o}/truth.geojson"))
                truth["features"] = [f for f in truth["features"] if f["properties"].get("tile") == tid]
                json.dump(truth, open(tj, "w"))
                onto(tj, f"{o}/{tid}_change_features.tif", f"{o}/ref_{tid}.tif", burn_geojson=True)
            open(f"{o}/done", "w").write("")
            print("prepared", sensor, s, flush=True)


def synth_dir(sensor, s):
    return os.path.join(a.work, "synth", f"{sensor}-s{s}")


def datasets():
    """(name, group, X, y, swir) per dataset; X float32 (n, features)."""
    out = []
    for c in CITIES:
        n = c["city"]; o = os.path.join(a.work, "oscd", n)
        X, _ = envi(f"{o}/{n}_change_features.tif", f"{o}/feat")
        r, _ = envi(f"{o}/ref.tif", f"{o}/refr")
        X = X.reshape(X.shape[0], -1).T; r = r.ravel()
        keep = (r > 0) & np.any(X != 0, axis=1)
        out.append((n, "oscd:" + n, X[keep], r[keep] == 2, True))
    for sensor, spec in SYNTH_SETS:
        for s in seeds(spec):
            o = synth_dir(sensor, s)
            man = json.load(open(f"{o}/manifest.json"))
            Xs, ys = [], []
            for t in man["tiles"]:
                tid = t["id"]
                X, _ = envi(f"{o}/{tid}_change_features.tif", f"{o}/feat_{tid}")
                r, _ = envi(f"{o}/ref_{tid}.tif", f"{o}/refr_{tid}")
                X = X.reshape(X.shape[0], -1).T; r = r.ravel()
                keep = np.any(X != 0, axis=1)
                Xs.append(X[keep]); ys.append(r[keep] == 2)
            out.append((f"{sensor}-s{s}", f"synth:{sensor}:{(s - 1) % 3}", np.concatenate(Xs), np.concatenate(ys),
                        not sensor.endswith("gf-4band")))
    return out


def names(bands):
    """The feature names of kernels::changeprob::feature_names (the binary
    refuses a model whose list differs)."""
    nb = min(bands, 6); swir = nb > 4
    v = [f"lr{k}" for k in range(nb)]
    idx = ["ndvi", "ndwi", "br"] + (["ndbi", "mndwi"] if swir else [])
    for i in idx:
        v += [f"{i}_b", f"{i}_a", f"d_{i}"]
    v.append("mag")
    ctx = ["mag", "d_ndvi", "d_br"] + (["d_ndbi"] if swir else [])
    for w in (3, 7, 15):
        v += [f"{c}_m{w}" for c in ctx]
    return v + ["std5_b", "std5_a", "d_std5"]


def sample(ds, swir, rng):
    """Training rows: changed pixels (capped at `neg`) and `neg` unchanged
    ones per dataset; weights give each dataset's two classes half its
    weight each. The SWIR model reads only datasets with SWIR; the VNIR
    model reads every dataset's VNIR features."""
    Xs, ys, ws = [], [], []
    for (n, g, X, y, has_swir) in ds:
        if swir and not has_swir:
            continue
        if not swir and has_swir:
            X = X[:, VNIR_COLS]
        pos = np.nonzero(y)[0]; neg = np.nonzero(~y)[0]
        if len(pos) == 0:
            continue
        pos = rng.choice(pos, min(len(pos), a.neg), replace=False)
        # Half the unchanged sample from the pixels that changed most
        # (top 10 % of the 3 × 3 magnitude): seasonal change, water level,
        # haze. They are what the model must tell apart; a uniform sample
        # is mostly trivial pixels.
        mag = X[neg, (F5 if X.shape[1] == len(F5) else F4).index("mag_m3")]
        hard = neg[mag >= np.quantile(mag, 0.9)]
        k = min(len(neg), a.neg) // 2
        neg = np.concatenate([rng.choice(neg, k, replace=False), rng.choice(hard, min(k, len(hard)), replace=False)])
        idx = np.concatenate([pos, neg])
        Xs.append(X[idx]); ys.append(y[idx])
        dw = 1.0 if g.startswith("oscd:") else a.synth_weight
        ws.append(np.concatenate([np.full(len(pos), 0.5 / len(pos)), np.full(len(neg), 0.5 / len(neg))]) * dw)
    w = np.concatenate(ws)
    # Mean weight 1: the trees' L2 penalty and leaf sizes are in units of
    # one sample's hessian.
    return np.concatenate(Xs), np.concatenate(ys), w * (len(w) / w.sum())


def fit(X, y, w):
    from sklearn.ensemble import HistGradientBoostingClassifier
    return HistGradientBoostingClassifier(max_iter=a.trees, max_depth=a.depth, learning_rate=0.1,
                                          l2_regularization=1.0, min_samples_leaf=200, random_state=0).fit(X, y, sample_weight=w)


def export(m, feats, path, provenance):
    trees = []
    for it in m._predictors:
        nd = it[0].nodes
        trees.append({"feature": [int(v) for v in nd["feature_idx"]],
                      "threshold": [float(v) for v in nd["num_threshold"]],
                      "left": [int(v) for v in nd["left"]], "right": [int(v) for v in nd["right"]],
                      "value": [float(v) for v in nd["value"]], "leaf": [bool(v) for v in nd["is_leaf"]]})
    base = float(np.ravel(m._baseline_prediction)[0])
    json.dump({"format": "riverwatch-change-model/1", "features": feats, "baseline": base, "trees": trees,
               "provenance": provenance}, open(path, "w"), separators=(",", ":"))


def fit_models(ds, path5, path4, leave_out, rng):
    keep = [d for d in ds if d[1] not in leave_out]
    prov = {"fitted_by": "scripts/fit_change_model.py", "datasets": [d[0] for d in keep],
            "trees": a.trees, "depth": a.depth, "neg_per_dataset": a.neg,
            "synth_weight": a.synth_weight}
    if path5:
        export(fit(*sample(keep, True, rng)), F5, path5, prov)
    if path4:
        export(fit(*sample(keep, False, rng)), F4, path4, prov)


def oscd_run(c, model, o, settings, features=False):
    """Runs the binary on one OSCD city with a model and settings; returns
    eval-change's scores of the reported layer."""
    n = c["city"]; d = os.path.join(a.data, n)
    os.makedirs(o, exist_ok=True)
    open(f"{o}/settings.toml", "w").write(settings)
    r = subprocess.run([a.bin, "detect", "--scene", "--before", f"{d}/before.tif", "--after", f"{d}/after.tif",
                        "--before-date", c["before"], "--after-date", c["after"], "--tile", n,
                        "--sensor", "sentinel2-l1c", "--change-model", model, "--config", f"{o}/settings.toml",
                        "-o", f"{o}/pred.geojson", "--emit-rasters", o,
                        *(["--features", f"{o}/components.jsonl"] if features else [])], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{n}: detect failed: {r.stderr.strip()}")
    e = json.loads(run(a.bin, "eval-change", "--reference", f"{d}/reference.tif", "--pred",
                       f"{o}/{n}_change_class.tif", "--json").stdout)
    s = e["scores"]
    return {"kappa": s["kappa"], "f1": s["f1"], "precision": s["precision"], "recall": s["recall"],
            "flagged": e["flagged_share"], "changed": e["changed_share"]}


def components(o, tile, ref_tif):
    """(component score, mean probability, pixels, changed pixels) of every
    component of a min_confidence 0 run, labelled with a reference raster
    on the run's grid (changed = 2)."""
    from scipy.ndimage import label
    recs = {}
    with open(f"{o}/components.jsonl") as fh:
        fh.readline()
        for line in fh:
            j = json.loads(line); recs[j["id"]] = j
    cls, _ = envi(f"{o}/{tile}_change_class.tif", f"{o}/cls_{tile}")
    ref, _ = envi(ref_tif, f"{o}/refc_{tile}")
    lab, n = label(cls[0] > 0)  # 4-connected, as the binary labels
    out = []
    if n == 0:
        return out
    idx = np.arange(lab.size).reshape(lab.shape)
    first = np.full(n + 1, lab.size); np.minimum.at(first, lab.ravel(), idx.ravel())
    pix = np.bincount(lab.ravel(), minlength=n + 1)
    chg = np.bincount(lab.ravel(), weights=(ref[0] == 2).ravel(), minlength=n + 1)
    lab_ok = np.bincount(lab.ravel(), weights=(ref[0] > 0).ravel(), minlength=n + 1)
    for k in range(1, n + 1):
        r, c = divmod(int(first[k]), lab.shape[1])
        j = recs.get(f"{tile}-r{r:05d}c{c:05d}")
        if j is None or lab_ok[k] == 0:
            continue
        out.append((j["component_score"], j["mean_probability"], lab_ok[k], chg[k]))
    return out


def logit(p):
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_stack(real, synthetic):
    """Logistic fit of changed-or-not (>= half its pixels) on the two
    log-odds; components weighted by pixels, each city alike and each
    synthetic seed `--stack-synth-weight` times a city (30: the weight at
    which synthetic precision holds at >= 0.93 while the held-out OSCD
    kappa stays level; see the README quality section)."""
    X, y, w = [], [], []
    for comps, dw in [(c, 1.0) for c in real] + [(c, a.stack_synth_weight) for c in synthetic]:
        if not comps:
            continue
        tot = sum(c[2] for c in comps)
        for cs, mp, px, ch in comps:
            X.append([1.0, logit(cs), logit(mp)]); y.append(1.0 if ch >= 0.5 * px else 0.0); w.append(dw * px / tot)
    X, y, w = np.array(X), np.array(y), np.array(w); w *= len(w) / w.sum()
    b = np.zeros(3); reg = np.array([0.0, 1.0, 1.0])
    for _ in range(50):
        p = 1 / (1 + np.exp(-X @ b)); W = w * p * (1 - p) + 1e-9
        b -= np.linalg.solve(X.T @ (X * W[:, None]) + np.diag(reg), X.T @ (w * (p - y)) + reg * b)
    return {"bias": float(b[0]), "component": float(b[1]), "probability": float(b[2])}


def with_stack(path, stack):
    m = json.load(open(path)); m["confidence"] = stack
    json.dump(m, open(path, "w"), separators=(",", ":"))


STACK_S2, STACK_GF = "7-9", "5-6"
# The pixel fit's synthetic sets: ordinary Sentinel-2 and GF scenes, and
# `synth --hard` Sentinel-2 scenes (suffix "-hard") when --hard-seeds is
# not empty.
SYNTH_SETS = [("sentinel2-l2a", a.s2_seeds), ("gf-4band", a.gf_seeds)] + \
    ([("sentinel2-l2a-hard", a.hard_seeds)] if a.hard_seeds else []) + \
    ([("indep-sentinel2-l2a", a.indep_seeds)] if a.indep_seeds else []) + \
    ([("indep-gf-4band", a.indep_gf_seeds)] if a.indep_gf_seeds else []) + \
    ([("indep-sentinel2-l2a-hard", a.indep_hard_seeds)] if a.indep_hard_seeds else [])
indep_seeds(a.indep_seeds), indep_seeds(a.indep_gf_seeds), indep_seeds(a.indep_hard_seeds)  # refuses the independent generator's check seeds
# The confidence stack's synthetic seeds (never in the pixel fit).
STACK_SETS = [("sentinel2-l2a", STACK_S2), ("gf-4band", STACK_GF)] + \
    ([("indep-sentinel2-l2a", a.stack_indep_seeds)] if a.stack_indep_seeds else [])
if set(indep_seeds(a.stack_indep_seeds)) & set(indep_seeds(a.indep_seeds)):
    raise SystemExit("--stack-indep-seeds must not be in the pixel fit's --indep-seeds")
ZERO = "min_confidence = 0.0\n"


def synth_components(model5, model4, tag):
    """Components of the stacking seeds (never in the pixel fit)."""
    rows = []
    for sensor, spec in STACK_SETS:
        model = model4 if sensor.endswith("gf-4band") else model5
        for s in seeds(spec):
            o = os.path.join(a.work, "synth", f"{sensor}-s{s}")
            if not os.path.exists(f"{o}/done"):
                raise SystemExit(f"run `prepare` first ({o})")
            r = os.path.join(o, tag); os.makedirs(r, exist_ok=True)
            open(f"{r}/settings.toml", "w").write(ZERO)
            run(a.bin, "detect", f"{o}/manifest.json", "--change-model", model, "--config", f"{r}/settings.toml",
                "-o", f"{r}/pred.geojson", "--emit-rasters", r, "--features", f"{r}/components.jsonl")
            man = json.load(open(f"{o}/manifest.json"))
            comps = []
            for t in man["tiles"]:
                comps += components(r, t["id"], f"{o}/ref_{t['id']}.tif")
            rows.append(comps)
    return rows


def stack_step():
    """Out-of-fold components of every city (each city run with the pixel
    model fitted without it) and of the stacking seeds; fits the stack
    into models/ and, per city, a stack without that city into its fold."""
    fold_dir = os.path.join(a.work, a.folds); os.makedirs(fold_dir, exist_ok=True)
    oscd = {}
    for c in CITIES:
        n = c["city"]; p5 = f"{fold_dir}/{n}-swir.json"
        if not os.path.exists(p5):
            fit_models(ds, p5, None, {"oscd:" + n}, rng)
        o = os.path.join(fold_dir, n, "zero")
        oscd_run(c, p5, o, ZERO, features=True)
        oscd[n] = components(o, n, os.path.join(a.work, "oscd", n, "ref.tif"))
        print("components", n, len(oscd[n]), flush=True)
    syn = synth_components("models/change-swir.json", "models/change-vnir.json", "stack")
    json.dump({"oscd": oscd, "synth": syn}, open(os.path.join(fold_dir, "components.json"), "w"), default=float)
    restack(oscd, syn)


def restack(oscd, syn):
    """Fits the stack into models/ and, per city, one without it into the
    city's fold model."""
    fold_dir = os.path.join(a.work, a.folds)
    st = fit_stack(list(oscd.values()), syn)
    for path in ("models/change-swir.json", "models/change-vnir.json"):
        with_stack(path, st)
    print("stack", st)
    for n in oscd:
        with_stack(f"{fold_dir}/{n}-swir.json", fit_stack([v for k, v in oscd.items() if k != n], syn))


GRID = [0.1, 0.15, 0.2, 0.25, 0.3]


def cv():
    """Leave one city out. The held-out city runs with the pixel model and
    stack fitted without it at each min_confidence of GRID; its setting is
    the one with the best mean held-out kappa over the *other* cities."""
    fold_dir = os.path.join(a.work, a.folds)
    res = {}
    for c in CITIES:
        n = c["city"]
        res[n] = {g: oscd_run(c, f"{fold_dir}/{n}-swir.json", os.path.join(fold_dir, n, f"c{g}"),
                              f"min_confidence = {g}\n") for g in GRID}
        print(n, " ".join(f"{g}:{res[n][g]['kappa']:.3f}" for g in GRID), flush=True)
    print(f"\n{'city':<14} {'min_conf':>8} {'kappa':>6} {'F1':>6} {'P':>6} {'R':>6} {'flagged':>8} {'changed':>8}")
    rows = []
    for n in res:
        g = max(GRID, key=lambda g: np.mean([res[m][g]["kappa"] for m in res if m != n]))
        r = res[n][g]; rows.append(r)
        print(f"{n:<14} {g:>8} {r['kappa']:>6.3f} {r['f1']:>6.3f} {r['precision']:>6.3f} {r['recall']:>6.3f} "
              f"{r['flagged']:>8.4f} {r['changed']:>8.4f}")
    m = lambda k: np.mean([r[k] for r in rows])
    print(f"{'mean':<14} {'':>8} {m('kappa'):>6.3f} {m('f1'):>6.3f} {m('precision'):>6.3f} {m('recall'):>6.3f} "
          f"{m('flagged'):>8.4f} {m('changed'):>8.4f}   min kappa {min(r['kappa'] for r in rows):.3f}")
    for g in GRID:
        print(f"min_confidence {g}: mean held-out kappa {np.mean([res[n][g]['kappa'] for n in res]):.3f}")


if a.step == "prepare":
    prepare()
    sys.exit(0)

F5, F4 = names(5), names(4)
VNIR_COLS = [F5.index(f) for f in F4]
rng = np.random.default_rng(0)
ds = datasets() if a.step in ("fit", "stack") else []
if a.step == "fit":
    os.makedirs("models", exist_ok=True)
    fit_models(ds, "models/change-swir.json", "models/change-vnir.json", set(), rng)
    print("wrote models/change-swir.json, models/change-vnir.json")
elif a.step == "stack":
    stack_step()
elif a.step == "restack":
    d = json.load(open(os.path.join(a.work, a.folds, "components.json")))
    restack(d["oscd"], d["synth"])
else:
    cv()
