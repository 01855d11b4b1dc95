"""The riverwatch nightly batch on Spark.

    spark-submit --master 'local[2]' spark/riverwatch_spark.py MANIFEST -o OUT

On a cluster (YARN or standalone), ship the binary and this folder's helper
module, and put the inputs, OUT and the records on storage every node sees:

    spark-submit --master yarn --deploy-mode client \\
        --files target/release/riverwatch \\
        --py-files spark/riverwatch_tasks.py \\
        --conf spark.task.maxFailures=4 \\
        spark/riverwatch_spark.py /shared/night/manifest.json -o /shared/night/out

The driver runs ``riverwatch plan``, packs the tasks into partitions by pixel
count, runs ``riverwatch run-task`` on the executors (Spark retries a failed
partition; run-task is idempotent, so a retry redoes only unfinished tiles),
and runs ``riverwatch merge`` on the driver. flagged.geojson, flagged.gpkg and
dispatch/ are byte-identical to ``riverwatch batch`` on the same manifest; the
exit code is batch's (0, or 1 when tiles failed; the summary says why).
"""

import argparse
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import riverwatch_tasks as rt  # noqa: E402


def progress(sc, stop, log):
    """Logs partition progress every few seconds (the Spark UI shows the same)."""
    last = None
    while not stop.wait(3.0):
        tracker = sc.statusTracker()
        for sid in tracker.getActiveStageIds():
            info = tracker.getStageInfo(sid)
            if info is None:
                continue
            now = (info.numCompletedTasks, info.numTasks, info.numFailedTasks)
            if now != last:
                last = now
                log(
                    f"riverwatch: {info.numCompletedTasks}/{info.numTasks} partitions done, "
                    f"{info.numActiveTasks} running, {info.numFailedTasks} attempt(s) failed"
                )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    rt.common_arguments(parser)
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("riverwatch").getOrCreate()
    sc = spark.sparkContext

    def log(msg):
        print(msg, flush=True)

    binary, records, groups = rt.prepare(args, sc.defaultParallelism, log)
    # Executors use the binary shipped with --files when there is one, else
    # the driver's path or PATH; the helper module ships with the job.
    shipped_name = os.path.basename(binary)
    sc.addPyFile(os.path.abspath(rt.__file__))
    driver_binary = binary

    def run_partition(items):
        import riverwatch_tasks as worker_rt
        from pyspark import SparkFiles

        shipped = None
        try:
            shipped = SparkFiles.get(shipped_name)
        except Exception:  # noqa: BLE001 - no SparkFiles outside a task
            shipped = None
        exe = worker_rt.find_binary(
            driver_binary if os.path.isfile(driver_binary) else None, shipped
        )
        for lines in items:
            yield from worker_rt.run_group(exe, lines, records)

    sc.setJobDescription(f"riverwatch run-task: {sum(len(g) for g in groups)} tiles")
    stop = threading.Event()
    watcher = threading.Thread(target=progress, args=(sc, stop, log), daemon=True)
    watcher.start()
    try:
        results = sc.parallelize(groups, len(groups)).mapPartitions(run_partition).collect()
    except Exception as e:  # noqa: BLE001 - Py4JJavaError and friends
        lines = [ln.strip() for ln in str(e).splitlines() if "run-task exited" in ln]
        first = lines[0] if lines else type(e).__name__
        log(
            f"riverwatch: the Spark job failed after its retries ({first}); the tiles "
            f"finished so far are recorded in {records}: run the same command again to "
            "finish (tasks are idempotent)"
        )
        return 2
    finally:
        stop.set()
        spark.stop()
    return rt.finish(binary, records, args, results, log)


if __name__ == "__main__":
    sys.exit(main())
