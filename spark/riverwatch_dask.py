"""The riverwatch nightly batch on Dask, for teams without a JVM.

    python spark/riverwatch_dask.py MANIFEST -o OUT                 # a LocalCluster
    python spark/riverwatch_dask.py MANIFEST -o OUT --scheduler tcp://host:8786

The same three steps as the Spark driver (see riverwatch_tasks.py): ``plan``
here, ``run-task`` on the workers (each partition retried up to ``--retries``
times; run-task is idempotent), ``merge`` here. Outputs are byte-identical to
``riverwatch batch``; the exit code is batch's.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import riverwatch_tasks as rt  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    rt.common_arguments(parser)
    parser.add_argument("--scheduler", help="address of a running Dask scheduler")
    parser.add_argument(
        "--workers", type=int, default=2, help="LocalCluster worker processes (default 2)"
    )
    parser.add_argument(
        "--retries", type=int, default=3, help="retries of a failed partition (default 3)"
    )
    args = parser.parse_args(argv)

    from dask.distributed import Client, LocalCluster, as_completed

    def log(msg):
        print(msg, flush=True)

    if args.scheduler:
        client = Client(args.scheduler)
        cluster = None
    else:
        cluster = LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        client = Client(cluster)
    try:
        slots = max(1, sum(client.nthreads().values()))
        binary, records, groups = rt.prepare(args, slots, log)
        client.upload_file(os.path.abspath(rt.__file__))

        def run_partition(lines):
            import riverwatch_tasks as worker_rt

            exe = worker_rt.find_binary(binary if os.path.isfile(binary) else None)
            return worker_rt.run_group(exe, lines, records)

        futures = client.map(run_partition, groups, retries=args.retries, pure=False)
        results = []
        try:
            for n, fut in enumerate(as_completed(futures), 1):
                results.extend(fut.result())
                log(f"riverwatch: {n}/{len(groups)} partitions done ({len(results)} tiles)")
        except Exception as e:  # noqa: BLE001 - whatever the task raised
            log(
                f"riverwatch: a partition failed after {args.retries} retries ({e}); the "
                f"tiles finished so far are recorded in {records}: run the same command "
                "again to finish (tasks are idempotent)"
            )
            return 2
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return rt.finish(binary, records, args, results, log)


if __name__ == "__main__":
    sys.exit(main())
