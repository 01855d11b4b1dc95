"""The engine-agnostic part of running riverwatch on a cluster.

Both drivers (``riverwatch_spark.py`` and ``riverwatch_dask.py``) run the same
three steps of the ``riverwatch`` binary:

1. ``riverwatch plan MANIFEST -o tasks.jsonl`` on the driver: one
   self-contained task per tile (absolute paths, every setting, the settings
   hash, the tile's pixel count);
2. ``riverwatch run-task - -o RECORDS`` on the workers, a group of tasks on
   standard input: each tile's GeoJSON and completion record land in
   ``RECORDS/tiles/``. It is idempotent (a retry takes finished tiles as they
   are) and atomic (files appear whole or not at all), so the engine may
   retry a group or run it twice at once;
3. ``riverwatch merge RECORDS -o OUT`` on the driver: seams, dispatch
   packages, the case update and the summary, byte-identical to ``batch``.

A tile that fails on its own inputs is not an engine failure: run-task
records why and exits 0, and the summary lists it as ``batch`` does. A
non-zero exit (lost worker, unreadable task, broken rivers or chiefs) raises,
so the engine retries the group.

Only the standard library is used here, so the module ships to any worker.
"""

import json
import os
import shutil
import subprocess
import sys

BINARY_NAME = "riverwatch"


def find_binary(explicit=None, shipped=None):
    """The riverwatch binary: ``explicit``, then ``$RIVERWATCH_BIN``, then a
    shipped copy (``shipped``: a path such as ``SparkFiles.get('riverwatch')``),
    then ``riverwatch`` on PATH, then this checkout's ``target/release``."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [
        explicit,
        os.environ.get("RIVERWATCH_BIN"),
        shipped,
        shutil.which(BINARY_NAME),
        os.path.join(here, "..", "target", "release", BINARY_NAME),
    ]
    for c in candidates:
        if c and os.path.isfile(c):
            if not os.access(c, os.X_OK):
                # Files shipped with --files arrive without the execute bit.
                os.chmod(c, 0o755)
            return os.path.abspath(c)
    raise FileNotFoundError(
        "riverwatch binary not found: pass --bin, set RIVERWATCH_BIN, ship it "
        "with --files, or put it on PATH (build it with `cargo build --release`)"
    )


def make_plan(binary, manifest, tasks_path, plan_args=()):
    """Runs ``riverwatch plan``; returns the task lines (JSON text)."""
    cmd = [binary, "plan", manifest, "-o", tasks_path, *plan_args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(done.stderr.strip() or f"{' '.join(cmd)} exited {done.returncode}")
    with open(tasks_path, encoding="utf-8") as f:
        return [line for line in f.read().splitlines() if line.strip()]


def check_records_folder(records, first_task_line):
    """Refuses (early, on the driver) a records folder that holds another
    plan's records: every task would otherwise fail the same way."""
    path = os.path.join(records, "plan.json")
    if records.startswith("/vsi") or not os.path.exists(path):
        # On GDAL storage run-task makes the same check on every task.
        return
    with open(path, encoding="utf-8") as f:
        there = json.load(f)
    if there != json.loads(first_task_line)["plan"]:
        raise SystemExit(
            f"{path}: holds another plan's records (manifest {there.get('manifest')}, "
            f"settings {there.get('config_hash')}): use an empty records folder"
        )


def group_tasks(lines, slots, target_pixels=None):
    """Groups task lines, in plan order, into partitions of about
    ``target_pixels`` each (default: the total over three partitions per
    slot, and never less than the largest tile), so that small tiles share a
    process (rivers and chiefs load once per group) and big ones go alone."""
    pixels = [max(1, json.loads(line).get("pixels", 0)) for line in lines]
    if not lines:
        return []
    if target_pixels is None:
        target_pixels = max(max(pixels), sum(pixels) // max(1, 3 * slots))
    groups, cur, acc = [], [], 0
    for line, px in zip(lines, pixels):
        if cur and acc + px > target_pixels:
            groups.append(cur)
            cur, acc = [], 0
        cur.append(line)
        acc += px
    if cur:
        groups.append(cur)
    return groups


def run_group(binary, lines, records):
    """The map step for a group of tasks on this worker: returns one dict per
    task (tile, status, polygons, seconds, reason); raises when run-task
    exits non-zero, so the engine retries."""
    done = subprocess.run(
        [binary, "run-task", "-", "-o", records],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"riverwatch run-task exited {done.returncode}: {tail}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def describe(result):
    """One log line per tile, as ``batch`` prints them."""
    tile = result["tile"]
    if result["status"] == "failed":
        return f"tile {tile}: FAILED: {result.get('reason')}"
    if result["status"] == "resumed":
        return f"tile {tile}: resumed ({result['polygons']} polygons)"
    secs = max(result["seconds"], 1e-9)
    return (
        f"tile {tile}: {result['polygons']} polygons in {result['seconds']:.1f} s "
        f"({result['pixels'] / 1e6 / secs:.1f} MPix/s)"
    )


def merge(binary, records, out, merge_args=()):
    """Runs ``riverwatch merge`` on the driver; its exit code (0, or 1 when
    tiles failed, as ``batch``)."""
    done = subprocess.run([binary, "merge", records, "-o", out, *merge_args])
    return done.returncode


def common_arguments(parser):
    """The options both drivers take."""
    parser.add_argument("manifest", help="manifest JSON (on storage every worker sees)")
    parser.add_argument("-o", "--out", required=True, help="output folder")
    parser.add_argument(
        "--records",
        help="records folder on shared storage (default: the output folder)",
    )
    parser.add_argument("--bin", help="riverwatch binary on the driver (and workers)")
    parser.add_argument("--config", help="TOML settings file")
    parser.add_argument("--method", help="rules or cva-otsu")
    parser.add_argument(
        "--partition-mpx",
        type=float,
        help="megapixels per partition (default: about three partitions per slot)",
    )
    parser.add_argument("--cases", help="case store (SQLite) updated by the merge")
    parser.add_argument("--case-prefix", help="case id prefix for a new store")


def plan_arguments(args):
    """``plan`` flags from the driver options."""
    out = []
    if args.config:
        out += ["--config", args.config]
    if args.method:
        out += ["--method", args.method]
    return out


def merge_arguments(args):
    """``merge`` flags from the driver options."""
    out = []
    if args.cases:
        out += ["--cases", args.cases]
        if args.case_prefix:
            out += ["--case-prefix", args.case_prefix]
    return out


def prepare(args, slots, log=print):
    """Plan on the driver: returns (binary, records, task groups)."""
    binary = find_binary(args.bin)
    os.makedirs(args.out, exist_ok=True)
    records = args.records or args.out
    if not records.startswith("/vsi"):
        # A GDAL path (/vsis3/, /vsihdfs/ …) is created by run-task itself.
        records = os.path.abspath(records)
        os.makedirs(records, exist_ok=True)
    lines = make_plan(
        binary, args.manifest, os.path.join(args.out, "tasks.jsonl"), plan_arguments(args)
    )
    if not lines:
        raise SystemExit(f"{args.manifest}: no tiles")
    check_records_folder(records, lines[0])
    target = int(args.partition_mpx * 1e6) if args.partition_mpx else None
    groups = group_tasks(lines, slots, target)
    log(f"riverwatch: {len(lines)} task(s) in {len(groups)} partition(s), records in {records}")
    return binary, records, groups


def finish(binary, records, args, results, log=print):
    """Logs every tile, then merges on the driver; returns the exit code."""
    for r in sorted(results, key=lambda r: r["index"]):
        log(describe(r))
    sys.stdout.flush()
    return merge(binary, records, args.out, merge_arguments(args))
