#!/usr/bin/env python3
"""A second, independently written scene generator: a held-out check.

`riverwatch synth` scenes are the ones the models saw; a detector can learn
a generator's habits. This script shares no code, spectra, shapes or layout
with it. It draws a river plain in south China (UTM 49N, a Xiang-like river):
Voronoi field parcels with their own crop calendars, villages of small roofs,
roads, a meandering river whose width varies, sand bars, riparian trees; and
between the dates the things a river corridor does by itself -- harvest and
green-up, the water level moving the banks by 1-4 px, turbidity, thin haze
over the whole tile, soft-edged clouds with their shadows and no mask, a
sensor's per-band gains, a sub-pixel shift -- plus encroachments of the four
classes (occupation, sand mining, dumping, construction; some filling into the
water), most of them 400-2,000 m2. Spectra are typical surface reflectances
of the five bands (B2, B3, B4, B8, B11) from the literature, not tuned on any
detector output.

It writes what `riverwatch synth` writes (manifest, rivers, chiefs, truth,
tiles), so `riverwatch detect` and `riverwatch eval` run on it unchanged:

    target/fit-venv/bin/python scripts/synth_indep.py -o DIR --seed 1 [--tiles 4] [--size 1024]
        [--sensor sentinel2-l2a|gf-4band] [--pixel-m 10] [--hard]
    scripts/quality.py --indep --seeds 1 2 3 --methods rules

Needs numpy and scipy (the fit venv has them) and the GDAL command-line tools
(gdal_translate, gdaltransform). A seed gives the same scene for the same
numpy and scipy versions (the shipped models' scenes: numpy 2.4, scipy 1.17);
other versions may draw other scenes.
"""
import argparse, json, os, subprocess, tempfile
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

# Surface reflectance, bands blue, green, red, NIR, SWIR1.
SPEC = {
    "water_clear": [0.045, 0.055, 0.035, 0.020, 0.010],
    "water_turbid": [0.075, 0.105, 0.095, 0.050, 0.020],
    "crop_green": [0.030, 0.070, 0.040, 0.360, 0.180],
    "crop_young": [0.050, 0.080, 0.070, 0.240, 0.220],
    "stubble": [0.080, 0.105, 0.130, 0.210, 0.300],
    "ploughed": [0.050, 0.065, 0.080, 0.120, 0.190],
    "paddy_flooded": [0.050, 0.065, 0.055, 0.080, 0.050],
    "grass": [0.045, 0.080, 0.070, 0.280, 0.230],
    "trees": [0.025, 0.050, 0.030, 0.300, 0.140],
    "bare_dry": [0.110, 0.145, 0.185, 0.245, 0.330],
    "sand_dry": [0.150, 0.185, 0.220, 0.270, 0.330],
    "sand_wet": [0.080, 0.100, 0.115, 0.150, 0.150],
    "mud": [0.060, 0.075, 0.085, 0.110, 0.120],
    "roof_grey": [0.110, 0.120, 0.130, 0.170, 0.200],
    "roof_red": [0.070, 0.080, 0.140, 0.200, 0.230],
    "roof_blue": [0.140, 0.130, 0.100, 0.130, 0.140],
    "roof_white": [0.280, 0.300, 0.310, 0.340, 0.310],
    "asphalt": [0.060, 0.070, 0.075, 0.095, 0.120],
    "concrete": [0.200, 0.215, 0.225, 0.260, 0.280],
    "debris_dark": [0.070, 0.075, 0.080, 0.100, 0.130],
    "debris_light": [0.160, 0.165, 0.170, 0.200, 0.240],
    "cloud": [0.420, 0.430, 0.440, 0.470, 0.350],
}
S = {k: np.array(v, np.float32) for k, v in SPEC.items()}
HAZE = np.array([0.050, 0.036, 0.024, 0.010, 0.002], np.float32)  # path radiance per unit haze
EPSG = 32649
X0, Y0 = 672000.0, 3128000.0  # Changsha-ish, UTM 49N


def smooth_noise(rng, h, w, scale, octaves=3):
    out = np.zeros((h, w), np.float32)
    amp = 1.0
    for o in range(octaves):
        s = max(scale / 2 ** o, 0.7)
        n = ndimage.gaussian_filter(rng.standard_normal((h, w)).astype(np.float32), s, mode="wrap")
        out += amp * n / (n.std() + 1e-9)
        amp *= 0.5
    return out / out.std()


def polygon_mask(poly, h, w, px):
    """Pixels whose centre is inside the polygon (metric coords relative to the tile's top-left, y down)."""
    (r0, r1, c0, c1), inside = polygon_box(poly, h, w, px)
    m = np.zeros((h, w), bool)
    m[r0:r1, c0:c1] = inside
    return m


def polygon_box(poly, h, w, px):
    """The polygon's pixel box (rows r0..r1, columns c0..c1) and which of its pixel centres are inside."""
    xs, ys = poly[:, 0] / px, poly[:, 1] / px
    c0, c1 = int(max(np.floor(xs.min()), 0)), int(min(np.ceil(xs.max()) + 1, w))
    r0, r1 = int(max(np.floor(ys.min()), 0)), int(min(np.ceil(ys.max()) + 1, h))
    if c0 >= c1 or r0 >= r1:
        return (0, 0, 0, 0), np.zeros((0, 0), bool)
    yy, xx = np.mgrid[r0:r1, c0:c1] + 0.5
    inside = np.zeros(yy.shape, bool)
    n = len(xs)
    for i in range(n):
        x1, y1, x2, y2 = xs[i], ys[i], xs[(i + 1) % n], ys[(i + 1) % n]
        cond = (y1 > yy) != (y2 > yy)
        xint = x1 + (yy - y1) * (x2 - x1) / np.where(y2 == y1, 1e-12, y2 - y1)
        inside ^= cond & (xx < xint)
    return (r0, r1, c0, c1), inside


def blob(rng, cx, cy, area, elong=1.0, rough=0.25, rect=False):
    """An object outline of about `area` m2 around (cx, cy): a rotated rectangle or a rough blob."""
    th = rng.uniform(0, np.pi)
    if rect:
        a = np.sqrt(area * elong)
        b = area / a
        pts = np.array([[-a / 2, -b / 2], [a / 2, -b / 2], [a / 2, b / 2], [-a / 2, b / 2]])
    else:
        k = 24
        ang = np.linspace(0, 2 * np.pi, k, endpoint=False)
        r = 1 + rough * np.convolve(rng.standard_normal(k + 4), np.ones(5) / 5, "valid")[:k] * 2
        r = np.clip(r, 0.45, 1.8)
        pts = np.stack([np.cos(ang) * r * np.sqrt(elong), np.sin(ang) * r / np.sqrt(elong)], 1)
        cur = 0.5 * abs(np.dot(pts[:, 0], np.roll(pts[:, 1], 1)) - np.dot(pts[:, 1], np.roll(pts[:, 0], 1)))
        pts *= np.sqrt(area / cur)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    return pts @ rot.T + [cx, cy]


def river_line(rng, size_m):
    """A meandering centreline crossing the tile, as dense points (metric, y down)."""
    t = np.linspace(-0.1, 1.1, 1200)
    horiz = rng.random() < 0.5
    base = rng.uniform(0.35, 0.65) * size_m
    wig = sum(rng.uniform(0.03, 0.12) * size_m * np.sin(2 * np.pi * (f * t + rng.random()))
              for f in (rng.uniform(0.6, 1.2), rng.uniform(1.5, 3.0), rng.uniform(3.0, 5.0)))
    u, v = t * size_m, base + wig
    return np.stack([u, v] if horiz else [v, u], 1)


def make_tile(rng, size, px, hard, nb):
    h = w = size
    size_m = size * px
    yy, xx = (np.mgrid[0:h, 0:w] + 0.5) * px
    line = river_line(rng, size_m)
    tree = cKDTree(line)
    dist, near = tree.query(np.stack([xx.ravel(), yy.ravel()], 1))
    dist = dist.reshape(h, w).astype(np.float32)
    near = near.reshape(h, w)
    # half-width varies along the river; the water level moves it between the dates
    hw_line = rng.uniform(60, 220) * (1 + 0.35 * np.sin(np.linspace(0, rng.uniform(2, 6) * np.pi, len(line)) + rng.random() * 6))
    hw = hw_line[near].astype(np.float32)
    level = rng.uniform(0.04, 0.18) * rng.choice([-1, 1]) * (1.6 if hard else 1.0)
    bank_noise = 0.06 * smooth_noise(rng, h, w, 6 / px * 10)
    water_b = dist < hw * (1 + bank_noise)
    water_a = dist < hw * (1 + level + bank_noise)
    bars = (smooth_noise(rng, h, w, 40 / px * 10) > 1.3) & (dist < hw * 0.8)
    bars_a = bars & (smooth_noise(rng, h, w, 20 / px * 10) > (0.3 if level > 0 else -0.6))

    # land: Voronoi parcels with types
    npar = int(size_m * size_m / rng.uniform(2.5e4, 6e4))
    seeds = rng.uniform(0, size_m, (npar, 2))
    _, parcel = cKDTree(seeds).query(np.stack([xx.ravel(), yy.ravel()], 1))
    parcel = parcel.reshape(h, w)
    kinds = rng.choice(["crop", "paddy", "grass", "trees", "bare", "village"], npar, p=[0.36, 0.14, 0.14, 0.14, 0.06, 0.16])
    before = np.zeros((nb, h, w), np.float32)
    after = np.zeros((nb, h, w), np.float32)
    tex = 1 + 0.06 * smooth_noise(rng, h, w, 1.5) + 0.03 * rng.standard_normal((h, w)).astype(np.float32)
    season = {"crop": [("crop_green", "stubble"), ("crop_young", "crop_green"), ("stubble", "ploughed"),
                       ("crop_green", "crop_green"), ("ploughed", "crop_young")],
              "paddy": [("paddy_flooded", "crop_young"), ("crop_green", "stubble"), ("crop_young", "paddy_flooded")],
              "grass": [("grass", "crop_young"), ("grass", "grass"), ("crop_young", "grass")],
              "trees": [("trees", "trees")], "bare": [("bare_dry", "bare_dry"), ("bare_dry", "crop_young")],
              "village": [("grass", "grass")]}
    roofs = ["roof_grey", "roof_red", "roof_blue", "roof_white", "concrete"]
    pick = [season[k][rng.integers(len(season[k]))] for k in kinds]
    jit = rng.uniform(0.9, 1.1, (npar, nb)).astype(np.float32)
    spec_b = np.stack([S[b][:nb] for b, _ in pick]) * jit
    spec_a = np.stack([S[a][:nb] for _, a in pick]) * jit * rng.uniform(0.95, 1.05, (npar, nb)).astype(np.float32)
    before[:] = np.moveaxis(spec_b[parcel], 2, 0) * tex
    after[:] = np.moveaxis(spec_a[parcel], 2, 0) * tex
    # villages: small roofs on village parcels, the same on both dates
    vil = np.isin(parcel, np.nonzero(kinds == "village")[0]) & (dist > hw * 1.3 + 60)
    n_roofs = int(vil.sum() * px * px / 400)
    ys, xs = np.nonzero(vil)
    for _ in range(n_roofs):
        j = rng.integers(len(ys))
        poly = blob(rng, (xs[j] + 0.5) * px, (ys[j] + 0.5) * px, rng.uniform(80, 500), rng.uniform(1, 3), rect=True)
        (r0, r1, c0, c1), inside = polygon_box(poly, h, w, px)
        m = inside & vil[r0:r1, c0:c1]
        sp = S[roofs[rng.integers(len(roofs))]][:nb] * rng.uniform(0.85, 1.15)
        before[:, r0:r1, c0:c1][:, m] = sp[:, None]
        after[:, r0:r1, c0:c1][:, m] = sp[:, None]
    # roads
    for _ in range(rng.integers(1, 4)):
        p0, ang = rng.uniform(0, size_m, 2), rng.uniform(0, np.pi)
        d = np.abs((xx - p0[0]) * np.sin(ang) - (yy - p0[1]) * np.cos(ang))
        m = d < rng.uniform(4, 9)
        before[:, m] = S["asphalt"][:nb, None]
        after[:, m] = S["asphalt"][:nb, None]
    # riparian strip, banks, bars, water
    rip = (dist < hw * 1.1 + rng.uniform(20, 60)) & ~vil
    for img in (before, after):
        img[:, rip] = S["trees"][:nb, None] * tex[rip] * rng.uniform(0.9, 1.1)
    # riverbed the falling water exposed is mud and wet sand, not the riparian strip
    exposed = water_b & ~water_a
    mix = (smooth_noise(rng, h, w, 3) > 0)[exposed]
    after[:, exposed] = np.where(mix[None, :], S["mud"][:nb, None], S["sand_wet"][:nb, None]) * tex[exposed]
    for img, wat, bar in ((before, water_b, bars), (after, water_a, bars_a)):
        edge = ndimage.binary_dilation(wat, iterations=max(1, int(round(15 / px)))) & ~wat
        img[:, edge] = S["mud"][:nb, None] * tex[edge]
        turb = np.clip(0.5 + 0.5 * smooth_noise(rng, h, w, 30) * rng.uniform(0.3, 1.0) + rng.uniform(-0.3, 0.3), 0, 1)
        wsp = S["water_clear"][:nb, None] * (1 - turb[wat]) + S["water_turbid"][:nb, None] * turb[wat]
        img[:, wat] = wsp * (1 + 0.02 * rng.standard_normal(wat.sum())).astype(np.float32)
        wb = bar & wat
        img[:, wb] = S["sand_wet"][:nb, None] * tex[wb]
    return dict(before=before, after=after, dist=dist, near=near, line=line, water_b=water_b, water_a=water_a,
                bars=bars, vil=vil, tex=tex, hw=hw)


CLASSES = ["occupation", "sand_mining", "dumping", "construction"]


def paint_object(rng, t, cls, poly_mask, nb):
    a = t["after"]
    m = poly_mask
    n = m.sum()
    if cls == "occupation":
        sp = S[["roof_white", "roof_blue", "roof_grey", "roof_red"][rng.integers(4)]][:nb]
        a[:, m] = sp[:, None] * (1 + 0.04 * rng.standard_normal(n)).astype(np.float32)
    elif cls == "construction":
        mix = rng.random(n) < rng.uniform(0.3, 0.7)
        vals = np.where(mix[None, :], S["concrete"][:nb, None], S["bare_dry"][:nb, None] * 0.9)
        a[:, m] = vals * (1 + 0.06 * rng.standard_normal(n)).astype(np.float32)
    elif cls == "dumping":
        f = rng.random(n)
        vals = S["debris_dark"][:nb, None] * (1 - f) + S["debris_light"][:nb, None] * f
        a[:, m] = vals * (1 + 0.10 * rng.standard_normal(n)).astype(np.float32)
    else:  # sand mining: pits of turbid water among disturbed wet and dry sand
        pit = rng.random(n) < 0.35
        sand = np.where(rng.random(n) < 0.5, S["sand_wet"][:nb, None], S["sand_dry"][:nb, None])
        vals = np.where(pit[None, :], S["water_turbid"][:nb, None] * 1.1, sand)
        a[:, m] = vals * (1 + 0.05 * rng.standard_normal(n)).astype(np.float32)


def place_objects(rng, t, size, px, corridor_m, nb):
    h = w = size
    taken = np.zeros((h, w), bool)
    objs = []
    want = rng.integers(12, 22)
    tries = 0
    while len(objs) < want and tries < 400:
        tries += 1
        cls = CLASSES[rng.integers(4)]
        area = float(np.exp(rng.uniform(np.log(300), np.log(2200)))) if rng.random() < 0.7 else float(np.exp(rng.uniform(np.log(2200), np.log(25000))))
        dist, hw = t["dist"], t["hw"]
        if cls == "sand_mining":
            cand = t["bars"] | ((dist > hw * 0.9) & (dist < hw * 1.3 + 40))
        elif rng.random() < 0.35:  # fill into the water from the bank
            cand = (dist > hw * 0.85) & (dist < hw * 1.05)
        else:
            cand = (dist > hw * 1.1) & (dist < corridor_m - 80) & ~t["vil"]
        ys, xs = np.nonzero(cand)
        if len(ys) == 0:
            continue
        j = rng.integers(len(ys))
        poly = blob(rng, (xs[j] + 0.5) * px, (ys[j] + 0.5) * px, area, rng.uniform(1, 3),
                    rough=rng.uniform(0.1, 0.35), rect=cls in ("occupation", "construction") and rng.random() < 0.6)
        if poly.min() < 2 * px or poly.max() > (size - 2) * px:
            continue
        m = polygon_mask(poly, h, w, px)
        if m.sum() < 2 or (ndimage.binary_dilation(m, iterations=3) & taken).any():
            continue
        if (t["dist"][m] > corridor_m - 20).any():
            continue
        taken |= m
        paint_object(rng, t, cls, m, nb)
        objs.append((cls, poly, m))
    return objs


def clouds(rng, h, w, px, n):
    """Opacity (0-1) of soft-edged clouds and the shadow darkening factor; no mask is written."""
    op = np.zeros((h, w), np.float32)
    for _ in range(n):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(15, 60) * 10 / px
        yy, xx = np.mgrid[0:h, 0:w]
        d = np.hypot(yy - cy, xx - cx) / r
        core = np.clip(1.2 - d + 0.35 * smooth_noise(rng, h, w, r / 3), 0, 1)
        op = np.maximum(op, core)
    op = ndimage.gaussian_filter(op, 1.5)
    sh_off = rng.uniform(8, 25, 2) * 10 / px
    shadow = ndimage.shift(op, sh_off, order=1, mode="constant") * rng.uniform(0.45, 0.6)
    return op, np.clip(1 - shadow, 0.3, 1)


def write_tif(path, img, px, scale, tmp, x0, y0):
    nb, h, w = img.shape
    dn = np.clip(np.round(img / scale), 1, 65535).astype("<u2")
    raw = os.path.join(tmp, "x.bin")
    dn.tofile(raw)
    with open(raw[:-4] + ".hdr", "w") as f:
        f.write(f"ENVI\nsamples = {w}\nlines = {h}\nbands = {nb}\nheader offset = 0\nfile type = ENVI Standard\n"
                f"data type = 12\ninterleave = bsq\nbyte order = 0\n")
    subprocess.run(["gdal_translate", "-q", "-of", "GTiff", "-co", "COMPRESS=DEFLATE", "-co", "TILED=YES",
                    "-a_srs", f"EPSG:{EPSG}", "-a_ullr", str(x0), str(y0), str(x0 + w * px), str(y0 - h * px),
                    "-a_nodata", "0", raw, path], check=True)


def to_lonlat(pts_list, tile_x0, tile_y0):
    """Metric tile coordinates (y down) to lon/lat with gdaltransform, one call for all points."""
    flat = np.concatenate(pts_list)
    inp = "\n".join(f"{tile_x0 + x:.3f} {tile_y0 - y:.3f}" for x, y in flat)
    out = subprocess.run(["gdaltransform", "-s_srs", f"EPSG:{EPSG}", "-t_srs", "EPSG:4326", "-output_xy"],
                         input=inp, capture_output=True, text=True, check=True).stdout.split()
    ll = np.array(out, float).reshape(-1, 2)
    res, k = [], 0
    for p in pts_list:
        res.append(ll[k:k + len(p)])
        k += len(p)
    return res


def ring(ll):
    r = [[round(x, 7), round(y, 7)] for x, y in ll]
    # counter-clockwise exterior (RFC 7946)
    a = sum(r[i][0] * r[(i + 1) % len(r)][1] - r[(i + 1) % len(r)][0] * r[i][1] for i in range(len(r)))
    if a < 0:
        r.reverse()
    return r + [r[0]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--tiles", type=int, default=4)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--sensor", default="sentinel2-l2a", choices=["sentinel2-l2a", "gf-4band"])
    ap.add_argument("--pixel-m", type=float, default=10.0)
    ap.add_argument("--debug", action="store_true", help="also write DIR/debug-TILE.npz (distance to the river, water masks, cloud) for looking at failures")
    ap.add_argument("--hard", action="store_true", help="sensor change between dates, heavy haze and clouds, up to 2 px shift")
    a = ap.parse_args()
    rng = np.random.default_rng(10_000 + a.seed)
    nb = 5 if a.sensor == "sentinel2-l2a" else 4
    px, size = a.pixel_m, a.size
    os.makedirs(os.path.join(a.o, "tiles"), exist_ok=True)
    chiefs = [{"id": "hn", "level": "province", "parent": None, "region": "湖南省", "title": "湖南省总河长 Hunan provincial river chief"},
              {"id": "hn-cs", "level": "city", "parent": "hn", "region": "长沙市", "title": "长沙市河长 Changsha city river chief"}]
    rivers, truth, tiles, meta = [], [], [], []
    corridor = 500.0
    tmp = tempfile.mkdtemp()
    for ti in range(a.tiles):
        tid = f"xiang-{a.seed:03d}-{ti}"
        tx0, ty0 = X0 + ti * size * px * 1.5, Y0
        t = make_tile(rng, size, px, a.hard, nb)
        objs = place_objects(rng, t, size, px, corridor, nb)
        h = w = size
        # sensor, haze, clouds, shift, noise
        imgs = {}
        cloud_any = np.zeros((h, w), bool)
        for date in ("before", "after"):
            img = t[date]
            haze = np.clip(rng.uniform(0.0, 0.5 if not a.hard else 1.2) + 0.4 * smooth_noise(rng, h, w, 80), 0, None)
            img = img + HAZE[:nb, None, None] * haze
            ncl = rng.integers(0, 3) + (2 if a.hard else 0)
            if ncl:
                op, shade = clouds(rng, h, w, px, ncl)
                img = img * shade + (S["cloud"][:nb, None, None] - img) * op
                cloud_any |= (op > 0.15) | (shade < 0.9)
            if date == "after":
                gains = rng.uniform(0.55, 0.7, nb) if a.hard and rng.random() < 0.5 else rng.uniform(0.92, 1.08, nb)
                img = img * gains[:, None, None].astype(np.float32) + rng.uniform(-0.005, 0.005, nb)[:, None, None]
                sh = rng.uniform(-1, 1, 2) * (2 if a.hard else 1)
                img = np.stack([ndimage.shift(b, sh, order=1, mode="nearest") for b in img])
            img = img + 0.004 * rng.standard_normal(img.shape).astype(np.float32)
            imgs[date] = np.clip(img, 0.0005, 1.5)
        dates = {"before": f"2025-{rng.integers(4, 7):02d}-{rng.integers(1, 28):02d}",
                 "after": f"2026-{rng.integers(8, 11):02d}-{rng.integers(1, 28):02d}"}
        paths = {}
        for date in ("before", "after"):
            rel = f"tiles/{tid}_{dates[date]}.tif"
            write_tif(os.path.join(a.o, rel), imgs[date], px, 1e-4, tmp, tx0, ty0)
            paths[date] = rel
        tiles.append({"id": tid, "before": {"date": dates["before"], "image": paths["before"]},
                      "after": {"date": dates["after"], "image": paths["after"]}})
        # segments: the centreline cut in pieces inside the tile (plus a margin)
        line = t["line"]
        inside = (line[:, 0] > -200) & (line[:, 0] < size * px + 200) & (line[:, 1] > -200) & (line[:, 1] < size * px + 200)
        idx = np.nonzero(inside)[0]
        cuts = np.array_split(idx, 3)
        seg_pts, seg_ids = [], []
        county = f"hn-cs-{ti}"
        chiefs.append({"id": county, "level": "county", "parent": "hn-cs", "region": f"望城区{ti + 1}片",
                       "title": f"望城区{ti + 1}片河长 Wangcheng district part {ti + 1} river chief"})
        for k, c in enumerate(cuts):
            c = np.arange(c[0], min(c[-1] + 2, len(line)))[::6]
            seg_pts.append(line[c])
            sid = f"XJ-{a.seed:03d}-{ti}-{k}"
            seg_ids.append(sid)
            chiefs.append({"id": f"{county}-t{k}", "level": "township", "parent": county, "region": f"{ti + 1}片第{k + 1}镇",
                           "title": f"{ti + 1}片第{k + 1}镇河长 township {k + 1} river chief"})
        seg_tree = cKDTree(np.concatenate(seg_pts))
        seg_of = np.concatenate([[k] * len(p) for k, p in enumerate(seg_pts)])
        keep = []
        for cls, poly, m in objs:
            if (cloud_any & m).sum() > 0.3 * m.sum():
                continue  # hidden by cloud or shadow on a date: not in the truth
            yy, xx = np.nonzero(m)
            _, nn = seg_tree.query(np.stack([(xx + 0.5) * px, (yy + 0.5) * px], 1))
            k = np.bincount(seg_of[nn]).argmax()
            in_channel = (t["dist"][m] <= 200).mean() >= 0.5
            keep.append((cls, poly, m, k, in_channel and cls != "sand_mining"))
        lls = to_lonlat([p for p in seg_pts] + [k[1] for k in keep], tx0, ty0)
        for k, sid in enumerate(seg_ids):
            rivers.append({"type": "Feature", "properties": {"segment_id": sid, "river": "湘江 Xiang", "chief_id": f"{county}-t{k}",
                                                             "corridor_m": corridor, "channel_m": 200},
                           "geometry": {"type": "LineString", "coordinates": [[round(x, 7), round(y, 7)] for x, y in lls[k]]}})
        for (cls, poly, m, k, obs), ll in zip(keep, lls[len(seg_pts):]):
            truth.append({"type": "Feature", "properties": {"tile": tid, "class": cls, "obstructs_flood_channel": bool(obs),
                                                            "segment_id": seg_ids[k], "chief_id": f"{county}-t{k}", "pixels": int(m.sum())},
                          "geometry": {"type": "Polygon", "coordinates": [ring(ll)]}})
        if a.debug:
            np.savez_compressed(os.path.join(a.o, f"debug-{tid}.npz"), dist=t["dist"], hw=t["hw"], water_b=t["water_b"],
                                water_a=t["water_a"], cloud=cloud_any, vil=t["vil"])
        meta.append({"tile": tid, "objects": len(objs), "truth": len(keep), "mean_half_width_m": float(t["hw"].mean())})
    json.dump({"version": 1, "sensor": a.sensor, "rivers": "rivers.geojson", "chiefs": "chiefs.json", "tiles": tiles},
              open(os.path.join(a.o, "manifest.json"), "w"), ensure_ascii=False, indent=1)
    json.dump({"type": "FeatureCollection", "features": rivers}, open(os.path.join(a.o, "rivers.geojson"), "w"), ensure_ascii=False)
    json.dump({"chiefs": chiefs}, open(os.path.join(a.o, "chiefs.json"), "w"), ensure_ascii=False, indent=1)
    json.dump({"type": "FeatureCollection", "features": truth}, open(os.path.join(a.o, "truth.geojson"), "w"), ensure_ascii=False)
    json.dump({"generator": "synth_indep.py", "seed": a.seed, "hard": a.hard, "pixel_m": px, "tiles": meta},
              open(os.path.join(a.o, "synth.json"), "w"), indent=1)
    print(f"wrote {a.tiles} tiles, {len(rivers)} segments, {len(truth)} truth polygons to {a.o}")


if __name__ == "__main__":
    main()
