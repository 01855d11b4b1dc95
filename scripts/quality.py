#!/usr/bin/env python3
"""Detection quality on synth scenes: the numbers in the README.

For each seed it synthesises a scene (cached under target/quality/), runs
`riverwatch detect` with each method, scores it with `riverwatch eval --json`
and sums the counts over the seeds. Usage:

    cargo build --release
    scripts/quality.py --seeds 1 2 3 --tiles 4 --size 1024 --sensor sentinel2-l2a
"""
import argparse, json, os, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument("--seeds", type=int, nargs="+", required=True)
ap.add_argument("--tiles", type=int, default=4)
ap.add_argument("--size", type=int, default=1024)
ap.add_argument("--sensor", default="sentinel2-l2a")
ap.add_argument("--hard", action="store_true", help="synth --hard scenes (sensor change, strong haze, 2 px shifts, clouds without masks)")
ap.add_argument("--indep", action="store_true",
                help="scenes of scripts/synth_indep.py, the independently written generator no model or threshold saw (run with the fit venv's python)")
ap.add_argument("--pixel-m", type=float, default=10.0, help="with --indep: the pixel size in metres (4 for GF at 4 m)")
ap.add_argument("--methods", nargs="+", default=["rules", "cva-otsu"])
ap.add_argument("--bin", default="target/release/riverwatch")
ap.add_argument("--config", help="TOML settings passed to detect")
ap.add_argument("--pixels", action="store_true", help="also write the rasters and score them with eval-change")
a = ap.parse_args()

def run(*args):
    return subprocess.run([a.bin, *args], check=True, capture_output=True, text=True).stdout

def prf(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)

for method in a.methods:
    tot = {k: [0, 0, 0] for k in ["objects", "class_aware", "obstruction"]}
    mm = {k: [0, 0, 0] for k in ["objects", "class_aware"]}
    mmu = [0, 0]; chief = [0.0, 0]; area = [0.0, 0.0, 0.0]; sizes = {}; pix = {}
    for seed in a.seeds:
        px = f"-{a.pixel_m:g}m" if a.indep and a.pixel_m != 10 else ""
        d = f"target/quality/{'indep-' if a.indep else ''}{a.sensor}{px}{'-hard' if a.hard else ''}-s{seed}-{a.tiles}x{a.size}"
        if a.indep and not os.path.exists(f"{d}/truth.geojson"):
            subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "synth_indep.py"), "-o", d, "--seed", str(seed),
                            "--tiles", str(a.tiles), "--size", str(a.size), "--sensor", a.sensor, "--debug", "--pixel-m", str(a.pixel_m),
                            *(["--hard"] if a.hard else [])], check=True, capture_output=True)
        if not os.path.exists(f"{d}/truth.geojson"):
            run("synth", "-o", d, "--seed", str(seed), "--tiles", str(a.tiles), "--size", str(a.size), "--sensor", a.sensor,
                *(["--hard"] if a.hard else []))
        pred = f"{d}/pred-{method}.geojson"
        rasters = f"{d}/rasters-{method}"
        subprocess.run([a.bin, "detect", f"{d}/manifest.json", "-o", pred, "--method", method, *(["--config", a.config] if a.config else []),
                        *(["--emit-rasters", rasters] if a.pixels else [])], check=True, capture_output=True)
        if a.pixels:
            pc = json.loads(run("eval-change", "--rasters", rasters, "--truth", f"{d}/truth.geojson", "--json"))
            for layer in ["any_change", "reported"]:
                acc = pix.setdefault(layer, [0, 0, 0, 0])
                for i, k in enumerate(["tp", "fp", "fn", "tn"]):
                    acc[i] += pc[layer][k]
        r = json.loads(run("eval", "--pred", pred, "--truth", f"{d}/truth.geojson", "--json"))
        rm = json.loads(run("eval", "--pred", pred, "--truth", f"{d}/truth.geojson", "--json", "--min-truth-m2", "400"))
        for k in mm:
            mm[k][0] += rm[k]["tp"]; mm[k][1] += rm[k]["fp"]; mm[k][2] += rm[k]["fn"]
        for k in tot:
            tot[k][0] += r[k]["tp"]; tot[k][1] += r[k]["fp"]; tot[k][2] += r[k]["fn"]
        for b in r["recall_by_size"]:
            s = sizes.setdefault(b["size"], [0, 0]); s[0] += b["matched"]; s[1] += b["truth"]
        big = [b for b in r["recall_by_size"] if b["size"] != "< 400 m²"]
        mmu[0] += sum(b["matched"] for b in big); mmu[1] += sum(b["truth"] for b in big)
        pairs = r["objects"]["tp"]
        if r["chief_accuracy"] is not None:
            chief[0] += r["chief_accuracy"] * pairs; chief[1] += pairs
        area[0] += r["area"]["pred_m2"]; area[1] += r["area"]["truth_m2"]; area[2] += r["area"]["intersection_m2"]
    o = prf(*tot["objects"]); c = prf(*tot["class_aware"]); ob = prf(*tot["obstruction"])
    ap_, ar = (area[2] / area[0] if area[0] else 1.0), (area[2] / area[1] if area[1] else 1.0)
    print(f"## {'independent generator, ' if a.indep else ''}{a.sensor}{px}{', hard' if a.hard else ''}, method {method}, seeds {a.seeds}, {a.tiles} tiles of {a.size}²")
    om = prf(*mm["objects"]); cm = prf(*mm["class_aware"])
    print("| truth scored | object precision | object recall | object F1 | class-aware F1 | obstruction F1 | chief accuracy | area IoU |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| ≥ 400 m² (mapping unit) | {om[0]:.3f} | {om[1]:.3f} | {om[2]:.3f} | {cm[2]:.3f} | {ob[2]:.3f} | {chief[0] / max(chief[1], 1):.4f} | {area[2] / max(area[0] + area[1] - area[2], 1e-9):.3f} |")
    print(f"| all | {o[0]:.3f} | {o[1]:.3f} | {o[2]:.3f} | {c[2]:.3f} | | | |")
    print("recall by size: " + ", ".join(f"{k}: {v[0]}/{v[1]} = {v[0] / max(v[1], 1):.3f}" for k, v in sizes.items()))
    print(f"counts: TP {tot['objects'][0]}, FP {tot['objects'][1]}, FN {tot['objects'][2]}")
    for layer, (tp, fp, fn, tn) in pix.items():
        n = tp + fp + fn + tn; po = (tp + tn) / n; pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
        p, r, f = prf(tp, fp, fn)
        print(f"pixels in the zone, {layer}: precision {p:.3f}, recall {r:.3f}, F1 {f:.3f}, OA {po:.4f}, kappa {(po - pe) / (1 - pe):.3f}")
    print()
    sys.stdout.flush()
