#!/usr/bin/env python3
"""Regenerates the deliberately broken inputs in this folder.

Run from this folder after `riverwatch synth -o /tmp/small --seed 3 --tiles 1 --size 64`.
Each case is a folder with a manifest.json and an expect.txt: one substring per
line that `riverwatch validate` (and `detect`) must print, exit code 2.
"""
import json, os, shutil, subprocess, sys

src = sys.argv[1] if len(sys.argv) > 1 else "/tmp/small"
base = "common"
shutil.rmtree(base, ignore_errors=True)
os.makedirs(base)
shutil.copy(f"{src}/tiles/songhua-0000_2025-06-12.tif", f"{base}/before.tif")
shutil.copy(f"{src}/tiles/songhua-0000_2026-06-17.tif", f"{base}/after.tif")
rivers = json.load(open(f"{src}/rivers.geojson"))
rivers["features"] = rivers["features"][:2]
json.dump(rivers, open(f"{base}/rivers.geojson", "w"), ensure_ascii=False)
chiefs = json.load(open(f"{src}/chiefs.json"))
json.dump(chiefs, open(f"{base}/chiefs.json", "w"), ensure_ascii=False, indent=1)

def gdal(*args):
    subprocess.run(list(args), check=True, stdout=subprocess.DEVNULL)

def manifest(**over):
    m = {"version": 1, "sensor": "sentinel2-l2a", "rivers": "../common/rivers.geojson", "chiefs": "../common/chiefs.json",
         "tiles": [{"id": "t1", "before": {"image": "../common/before.tif", "date": "2025-06-12"},
                    "after": {"image": "../common/after.tif", "date": "2026-06-17"}}]}
    for k, v in over.items():
        if k.startswith("tile_"):
            m["tiles"][0][k[5:]] = v
        else:
            m[k] = v
    return m

def case(name, expect, m=None, files=None, raw=None):
    shutil.rmtree(name, ignore_errors=True)
    os.makedirs(name)
    if raw is not None:
        open(f"{name}/manifest.json", "w").write(raw)
    else:
        json.dump(m or manifest(), open(f"{name}/manifest.json", "w"), ensure_ascii=False, indent=1)
    for fname, content in (files or {}).items():
        if callable(content):
            content(f"{name}/{fname}")
        elif isinstance(content, bytes):
            open(f"{name}/{fname}", "wb").write(content)
        else:
            open(f"{name}/{fname}", "w").write(content if isinstance(content, str) else json.dumps(content, ensure_ascii=False))
    open(f"{name}/expect.txt", "w").write("\n".join(expect) + "\n")

after = {"image": "after.tif", "date": "2026-06-17"}
case("missing-file", ["nothere.tif", "does not exist"], manifest(tile_after={"image": "nothere.tif", "date": "2026-06-17"}))
data = open(f"{base}/after.tif", "rb").read()
case("truncated-tiff", ["after.tif"], manifest(tile_after=after), {"after.tif": data[: len(data) // 3]})
case("wrong-band-count", ["after.tif", "has 3 band(s)", "needs band 5"], manifest(tile_after=after),
     {"after.tif": lambda p: gdal("gdal_translate", "-q", "-b", "1", "-b", "2", "-b", "3", f"{base}/after.tif", p)})
case("grids-differ", ["after.tif", "does not overlap the reference grid", "gdalwarp -t_srs EPSG:32652"], manifest(tile_after=after),
     {"after.tif": lambda p: gdal("gdal_translate", "-q", "-a_ullr", "300000", "5070000", "300640", "5069360", f"{base}/after.tif", p)})
# A later date on another grid that overlaps is aligned on the fly (tests/inputs.rs), not refused.
case("crs-differs", ["after.tif", "does not overlap the reference grid", "EPSG:32651", "gdalwarp"], manifest(tile_after=after),
     {"after.tif": lambda p: gdal("gdal_translate", "-q", "-a_srs", "EPSG:32651", f"{base}/after.tif", p)})
case("mask-two-bands", ["mask.tif", "1 band"], manifest(tile_after={**after, "image": "../common/after.tif", "mask": "mask.tif"}),
     {"mask.tif": lambda p: gdal("gdal_translate", "-q", "-b", "1", "-b", "2", f"{base}/after.tif", p)})
case("bad-json", ["manifest.json", "not valid JSON", "line"], raw='{"version": 1, "sensor": "sentinel2-l2a",\n "tiles": [}\n')
case("unknown-sensor", ["manifest.json", "unknown sensor preset", "worldview"], manifest(sensor="worldview"))
case("bad-tile-id", ["manifest.json", "../evil", "may only contain"], manifest(tile_id="../evil"))
case("dates-reversed", ["manifest.json", "not earlier"], manifest(tile_before={"image": "../common/before.tif", "date": "2027-01-01"}))
r = json.loads(json.dumps(rivers))
del r["features"][0]["properties"]["chief_id"]
case("segment-without-chief", ["rivers.geojson", "SH-001", "chief_id"], manifest(rivers="rivers.geojson"), {"rivers.geojson": r})
r = json.loads(json.dumps(rivers)); r["features"][0]["properties"]["chief_id"] = "nobody"
case("segment-chief-unknown", ["rivers.geojson", "SH-001", "nobody", "chiefs.json"], manifest(rivers="rivers.geojson"), {"rivers.geojson": r})
r = json.loads(json.dumps(rivers)); r["features"][1]["properties"]["corridor_m"] = float("nan")
case("nan-width", ["rivers.geojson", "NaN"], manifest(rivers="rivers.geojson"), {"rivers.geojson": json.dumps(r, ensure_ascii=False)})
r = json.loads(json.dumps(rivers)); r["features"][0]["properties"].update(corridor_m=100, channel_m=300)
case("channel-wider-than-corridor", ["rivers.geojson", "SH-001", "wider than corridor_m"], manifest(rivers="rivers.geojson"), {"rivers.geojson": r})
case("empty-featurecollection", ["rivers.geojson", "no river segments"], manifest(rivers="rivers.geojson"), {"rivers.geojson": {"type": "FeatureCollection", "features": []}})
r = json.loads(json.dumps(rivers)); r["features"][0]["geometry"] = {"type": "Polygon", "coordinates": [[[126.4, 45.7], [126.5, 45.7], [126.5, 45.8], [126.4, 45.7]]]}
case("river-not-a-line", ["rivers.geojson", "SH-001", "Polygon"], manifest(rivers="rivers.geojson"), {"rivers.geojson": r})
r = json.loads(json.dumps(rivers)); r["features"][1]["properties"]["segment_id"] = r["features"][0]["properties"]["segment_id"]
case("duplicate-segment-id", ["rivers.geojson", "not unique"], manifest(rivers="rivers.geojson"), {"rivers.geojson": r})
c = json.loads(json.dumps(chiefs)); c["chiefs"] = [x for x in c["chiefs"] if x["id"] != "hrb-daoli-t1"]
case("chief-parent-missing", ["chiefs.json", "hrb-daoli-t1", "does not exist"], manifest(chiefs="chiefs.json"), {"chiefs.json": c})
c = json.loads(json.dumps(chiefs))
for x in c["chiefs"]:
    if x["id"] == "hlj":
        x["parent"] = "hrb-daoli"; x["level"] = "province"
case("parent-cycle", ["chiefs.json", "cycle"], manifest(chiefs="chiefs.json"), {"chiefs.json": c})
c = json.loads(json.dumps(chiefs))
for x in c["chiefs"]:
    if x["id"] == "hrb-daoli":
        x["level"] = "village"
case("level-out-of-order", ["chiefs.json", "hrb-daoli", "not higher"], manifest(chiefs="chiefs.json"), {"chiefs.json": c})
c = json.loads(json.dumps(chiefs)); c["chiefs"][1]["region"] = "../哈尔滨市"
case("region-with-path", ["chiefs.json", "region"], manifest(chiefs="chiefs.json"), {"chiefs.json": c})
case("rivers-broken-geojson", ["rivers.geojson", "not valid JSON"], manifest(rivers="rivers.geojson"), {"rivers.geojson": '{"type": "FeatureCollection", "features": [{"type": "Feature",'})
case("not-a-raster", ["after.tif", "GDAL"], manifest(tile_after=after), {"after.tif": "this is not a TIFF\n"})
print("cases:", len([d for d in os.listdir('.') if os.path.isdir(d) and d != 'common']))
