"""A GeoTIFF as a numpy array through GDAL's ENVI raw format (no GDAL
Python bindings needed): what the OSCD trial scripts read."""
import os, re, subprocess
import numpy as np


def envi(tif, out):
    """A GeoTIFF as a (bands, rows, cols) array, through ENVI raw at OUT.bin
    (written once, then reused)."""
    if not os.path.exists(out + ".hdr"):
        subprocess.run(["gdal_translate", "-q", "-of", "ENVI", "-co", "INTERLEAVE=BSQ", tif, out + ".bin"], check=True)
    h = open(out + ".hdr").read()
    g = lambda k: int(re.search(k + r"\s*=\s*(\d+)", h).group(1))
    dt = {1: np.uint8, 4: np.float32}[g("data type")]
    return np.fromfile(out + ".bin", dtype=dt).reshape(g("bands"), g("lines"), g("samples"))
