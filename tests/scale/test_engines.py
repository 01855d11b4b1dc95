"""The nightly batch on real engines: Spark (local[2], with Java) and Dask
(a LocalCluster), against `riverwatch batch` on the same manifest.

Sixteen synth tiles, two of them broken (one unreadable image, one with too
few bands): every engine must write flagged.geojson, flagged.gpkg and
dispatch/ byte-identical to batch, and report the same per-tile failures. A
task whose first attempt dies half-way (RIVERWATCH_FAIL_ONCE) is retried by
the engine and the output is still identical.

Run by `make test` (which installs Java 17, pyspark and dask when missing):
    python -m unittest discover -s tests/scale -v
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, "target", "release", "riverwatch")
SPARK_SUBMIT = shutil.which("spark-submit", path=os.path.dirname(sys.executable)) or "spark-submit"
BROKEN = {"songhua-0003", "songhua-0009"}
FAIL_ONCE = "songhua-0005"


def run(cmd, env=None, ok=(0,)):
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode not in ok:
        raise AssertionError(
            f"{' '.join(cmd)} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def offline_env(**extra):
    """Settings that work without a network (and keep Spark quiet)."""
    env = dict(os.environ)
    env.update(SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable, RIVERWATCH_BIN=BIN)
    env.pop(FAIL_ONCE_VAR, None)
    env.update(extra)
    return env


FAIL_ONCE_VAR = "RIVERWATCH_FAIL_ONCE"


def tree(folder):
    """Every file under `folder` with its bytes."""
    out = {}
    for base, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(base, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = fh.read()
    return out


def summary_tiles(out):
    """What the summary says about each tile (status and reason) and the failures."""
    with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
        s = json.load(f)
    per_tile = [
        (t.get("tile"), t.get("status"), t.get("reason")) for t in s["per_tile"]
    ]
    return s["failures"], per_tile, s["state"]


class Engines(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
        cls.tmp = tempfile.mkdtemp(prefix="scale-", dir=os.path.join(ROOT, "target"))
        data = os.path.join(cls.tmp, "data")
        run([BIN, "synth", "-o", data, "--tiles", "16", "--size", "256", "--seed", "11"])
        cls.manifest = os.path.join(data, "manifest.json")
        with open(cls.manifest, encoding="utf-8") as f:
            m = json.load(f)
        tiles = {t["id"]: t for t in m["tiles"]}
        # An image that is not a raster at all.
        with open(os.path.join(data, tiles["songhua-0003"]["after"]["image"]), "wb") as f:
            f.write(b"this is not a GeoTIFF\n")
        # An image with three bands where the sensor needs five.
        img = os.path.join(data, tiles["songhua-0009"]["before"]["image"])
        three = img.replace(".tif", "_3band.tif")
        run(["gdal_translate", "-q", "-b", "1", "-b", "2", "-b", "3", img, three])
        os.replace(three, img)
        cls.batch = os.path.join(cls.tmp, "batch")
        run([BIN, "batch", cls.manifest, "-o", cls.batch, "--jobs", "2", "--no-progress"], ok=(1,))
        cls.expected = {
            k: v
            for k, v in tree(cls.batch).items()
            if k in ("flagged.geojson", "flagged.gpkg") or k.startswith("dispatch")
        }
        cls.failures, cls.per_tile, _ = summary_tiles(cls.batch)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assert_same_as_batch(self, out):
        got = {
            k: v
            for k, v in tree(out).items()
            if k in ("flagged.geojson", "flagged.gpkg") or k.startswith("dispatch")
        }
        self.assertEqual(sorted(got), sorted(self.expected))
        for k in self.expected:
            self.assertEqual(got[k], self.expected[k], f"{k} differs from batch")
        failures, per_tile, state = summary_tiles(out)
        self.assertEqual(state, "complete")
        self.assertEqual(failures, self.failures)
        self.assertEqual(per_tile, self.per_tile)
        self.assertEqual({f["tile"] for f in failures}, BROKEN)

    def test_batch_itself(self):
        # The reference run: 14 tiles flagged something, the 2 broken ones
        # failed with a reason naming the file.
        self.assertEqual({f["tile"] for f in self.failures}, BROKEN)
        reasons = {f["tile"]: f["reason"] for f in self.failures}
        self.assertIn("songhua-0003_2026-06-17.tif", reasons["songhua-0003"])
        self.assertIn("band", reasons["songhua-0009"])
        self.assertGreater(len(self.expected["flagged.geojson"]), 1000)

    def spark(self, name, master, **env):
        out = os.path.join(self.tmp, name)
        done = run(
            [
                SPARK_SUBMIT,
                "--master",
                master,
                "--conf",
                "spark.ui.enabled=false",
                "--conf",
                "spark.driver.host=127.0.0.1",
                os.path.join(ROOT, "spark", "riverwatch_spark.py"),
                self.manifest,
                "-o",
                out,
            ],
            env=offline_env(**env),
            ok=(1,),
        )
        return out, done

    def test_spark_local_identical_to_batch(self):
        out, done = self.spark("spark", "local[2]")
        self.assert_same_as_batch(out)
        self.assertIn("FAILED", done.stdout)

    def test_readme_command_on_the_sample_tiles(self):
        # The command the README gives, from the repository root, against
        # `riverwatch batch` on the same manifest.
        out = os.path.join(self.tmp, "spark-sample")
        ref = os.path.join(self.tmp, "batch-sample")
        done = subprocess.run(
            [BIN, "batch", "sample-tiles/manifest.json", "-o", ref, "--no-progress"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        done = subprocess.run(
            [
                SPARK_SUBMIT,
                "--master",
                "local[2]",
                "--conf",
                "spark.ui.enabled=false",
                "spark/riverwatch_spark.py",
                "sample-tiles/manifest.json",
                "-o",
                out,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=offline_env(),
        )
        self.assertEqual(done.returncode, 0, done.stdout[-2000:] + done.stderr[-2000:])
        got, want = tree(out), tree(ref)
        shared = [
            k for k in want if k in ("flagged.geojson", "flagged.gpkg") or k.startswith("dispatch")
        ]
        self.assertGreater(len(shared), 5)
        for k in shared:
            self.assertEqual(got.get(k), want[k], f"{k} differs from batch")

    def test_spark_retries_a_lost_task(self):
        # local[2,2]: two threads, a task may fail twice (local mode's
        # default is one attempt).
        out, done = self.spark("spark-retry", "local[2,2]", **{FAIL_ONCE_VAR: FAIL_ONCE})
        self.assertTrue(os.path.exists(os.path.join(out, f".failed-once-{FAIL_ONCE}")))
        self.assertIn("injected failure", done.stdout + done.stderr)
        self.assert_same_as_batch(out)
        leftovers = [f for f in os.listdir(os.path.join(out, "tiles")) if f.endswith(".rwtmp")]
        # The half-written file of the lost attempt is never taken for output.
        self.assertLessEqual(len(leftovers), 1)

    def test_dask_local_cluster_with_a_retry(self):
        out = os.path.join(self.tmp, "dask")
        done = run(
            [
                sys.executable,
                os.path.join(ROOT, "spark", "riverwatch_dask.py"),
                self.manifest,
                "-o",
                out,
                "--workers",
                "2",
            ],
            env=offline_env(**{FAIL_ONCE_VAR: FAIL_ONCE}),
            ok=(1,),
        )
        self.assertTrue(os.path.exists(os.path.join(out, f".failed-once-{FAIL_ONCE}")))
        self.assertIn("FAILED", done.stdout)
        self.assert_same_as_batch(out)


if __name__ == "__main__":
    unittest.main()
