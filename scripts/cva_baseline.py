#!/usr/bin/python3
"""The plain CVA baseline of the streaming bench: what an analyst writes
with numpy and GDAL's Python bindings instead of riverwatch. Per tile of a
manifest: both dates read whole as float32 reflectance (UInt16 / 10000,
nodata 0), change-vector magnitude, Otsu threshold on the valid pixels,
the changed mask written as a DEFLATE GeoTIFF. No normalisation, clouds,
zones, polygons or linking -- so it is a floor for riverwatch's time, not
a like-for-like rival.

    /usr/bin/python3 scripts/cva_baseline.py MANIFEST.json OUT_DIR

Needs Debian's python3-gdal and python3-numpy.
"""
import json, os, sys
import numpy as np
from osgeo import gdal

gdal.UseExceptions()


def read(path):
    ds = gdal.Open(path)
    x = ds.ReadAsArray().astype(np.float32)
    return ds, x / 10000.0, np.all(x > 0, axis=0)


def otsu(v, bins=256):
    hist, edges = np.histogram(v, bins=bins, range=(0.0, float(v.max()) or 1.0))
    mids = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist); w1 = w0[-1] - w0
    m0 = np.cumsum(hist * mids) / np.maximum(w0, 1)
    m1 = (np.sum(hist * mids) - np.cumsum(hist * mids)) / np.maximum(w1, 1)
    return mids[np.argmax(w0 * w1 * (m0 - m1) ** 2)]


def main(manifest, out):
    os.makedirs(out, exist_ok=True)
    root = os.path.dirname(manifest)
    for t in json.load(open(manifest))["tiles"]:
        ds, b, vb = read(os.path.join(root, t["before"]["image"]))
        _, a, va = read(os.path.join(root, t["after"]["image"]))
        valid = vb & va
        mag = np.sqrt(np.sum((a - b) ** 2, axis=0))
        changed = (mag > otsu(mag[valid])) & valid
        drv = gdal.GetDriverByName("GTiff")
        o = drv.Create(os.path.join(out, f"{t['id']}_cva.tif"), ds.RasterXSize, ds.RasterYSize, 1, gdal.GDT_Byte,
                       ["COMPRESS=DEFLATE", "TILED=YES"])
        o.SetGeoTransform(ds.GetGeoTransform()); o.SetProjection(ds.GetProjection())
        o.GetRasterBand(1).WriteArray(changed.astype(np.uint8))
        o = None
        print(t["id"], f"{changed.sum() / valid.sum():.4f} of valid pixels changed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
