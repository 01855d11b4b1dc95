#!/usr/bin/env python3
"""Detection quality on real Sentinel-2 pairs: the OSCD development set.

For each city of ../shared/data/oscd-dev (real Sentinel-2 L1C pairs in
EPSG:4326 with reference maps of urban change) it runs

    riverwatch detect --scene --before B --after A --emit-rasters DIR

(whole-scene research mode: every pixel in the zone, no chief linking; the
geographic input is warped to UTM in memory) and scores the reported layer
(`change_class` > 0) and the `any_change` layer against `reference.tif` with

    riverwatch eval-change --reference REF --pred P --codes unchanged=1,changed=2

then prints a per-city table and the means. Usage:

    cargo build --release
    scripts/oscd.py [--data ../shared/data/oscd-dev] [--methods rules cva-otsu] [--json out.json]
"""
import argparse, json, os, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument("--data", default="../shared/data/oscd-dev")
ap.add_argument("--bin", default="target/release/riverwatch")
ap.add_argument("--methods", nargs="+", default=["rules", "cva-otsu"])
ap.add_argument("--work", default="target/oscd")
ap.add_argument("--json", help="also write the rows as JSON here")
ap.add_argument("--config", help="TOML settings passed to detect")
ap.add_argument("--quiet", action="store_true", help="only the mean lines")
a = ap.parse_args()

cities = json.load(open(os.path.join(a.data, "cities.json")))
rows = []
for method in a.methods:
    for c in cities:
        name = c["city"]
        d = os.path.join(a.data, name)
        out = os.path.join(a.work, method, name)
        os.makedirs(out, exist_ok=True)
        p = subprocess.run([a.bin, "detect", "--scene", "--before", f"{d}/before.tif", "--after", f"{d}/after.tif",
                            "--before-date", c["before"], "--after-date", c["after"], "--tile", name, "--sensor", "sentinel2-l1c",
                            "--method", method, "-o", f"{out}/pred.geojson", "--emit-rasters", out,
                            *(["--config", a.config] if a.config else [])],
                           capture_output=True, text=True)
        if p.returncode != 0:
            print(f"{method} {name}: detect failed: {p.stderr.strip()}", file=sys.stderr)
            continue
        row = {"method": method, "city": name, "split": c.get("split"), "polygons": len(json.load(open(f"{out}/pred.geojson"))["features"]),
               "untrusted": [l.strip()[6:] for l in p.stderr.splitlines() if "UNTRUSTED" in l]}
        for layer, f in [("reported", "change_class"), ("any_change", "any_change")]:
            e = subprocess.run([a.bin, "eval-change", "--reference", f"{d}/reference.tif", "--pred", f"{out}/{name}_{f}.tif",
                                "--json"], check=True, capture_output=True, text=True)
            r = json.loads(e.stdout)
            row[layer] = {"kappa": r["scores"]["kappa"], "f1": r["scores"]["f1"], "precision": r["scores"]["precision"],
                          "recall": r["scores"]["recall"], "flagged": r["flagged_share"], "changed": r["changed_share"]}
        rows.append(row)

for method in a.methods:
    rs = [r for r in rows if r["method"] == method]
    if not rs:
        continue
    print(f"\n{method}: {len(rs)} cities")
    print(f"{'city':<14} {'changed':>8} | {'reported: kappa':>15} {'F1':>6} {'P':>6} {'R':>6} {'flagged':>8} | {'any_change: kappa':>17} {'flagged':>8}")
    for r in ([] if a.quiet else rs):
        x, y = r["reported"], r["any_change"]
        print(f"{r['city']:<14} {x['changed']:>8.4f} | {x['kappa']:>15.3f} {x['f1']:>6.3f} {x['precision']:>6.3f} {x['recall']:>6.3f} {x['flagged']:>8.4f} | {y['kappa']:>17.3f} {y['flagged']:>8.4f}")
    mean = lambda layer, k: sum(r[layer][k] for r in rs) / len(rs)
    print(f"{'mean':<14} {mean('reported','changed'):>8.4f} | {mean('reported','kappa'):>15.3f} {mean('reported','f1'):>6.3f} "
          f"{mean('reported','precision'):>6.3f} {mean('reported','recall'):>6.3f} {mean('reported','flagged'):>8.4f} | "
          f"{mean('any_change','kappa'):>17.3f} {mean('any_change','flagged'):>8.4f}")
    print(f"min kappa (reported): {min(r['reported']['kappa'] for r in rs):.3f}")
    for r in rs:
        for u in r["untrusted"]:
            print(f"  {r['city']}: {u}")
if a.json:
    json.dump(rows, open(a.json, "w"), indent=1)
