#!/usr/bin/env bash
# Engines bench: the same 16 synth tiles (512², Sentinel-2 layout) through
# `riverwatch batch --jobs 2`, Spark local[2] and a Dask LocalCluster of two
# worker processes, in one run so the ratios hold whatever the machine's
# speed that day. Prints wall time and the overhead per task against batch
# ((engine wall − batch wall) / tasks), and checks every engine's
# flagged.geojson and dispatch/ against batch byte for byte.
#
#   make scale-deps && cargo build --release && scripts/bench_engines.sh
set -euo pipefail
BIN=$(realpath "${BIN:-target/release/riverwatch}")
PY=${PY:-target/scale-venv/bin/python}
WORK=${WORK:-target/bench-engines}
TILES=${TILES:-16}
SIZE=${SIZE:-512}
export SPARK_LOCAL_IP=127.0.0.1 RIVERWATCH_BIN="$BIN" PYSPARK_PYTHON="$PY"
rm -rf "$WORK/out-"*
[ -f "$WORK/data/manifest.json" ] || "$BIN" synth --seed 21 --tiles "$TILES" --size "$SIZE" -o "$WORK/data" >/dev/null
M=$(realpath "$WORK/data/manifest.json")

now() { date +%s.%N; }
t0=$(now); "$BIN" batch "$M" -o "$WORK/out-batch" --jobs 2 --no-progress 2>/dev/null; t1=$(now)
batch=$(awk "BEGIN{print $t1 - $t0}")
t0=$(now)
"$(dirname "$PY")/spark-submit" --master 'local[2]' --conf spark.ui.enabled=false \
    spark/riverwatch_spark.py "$M" -o "$WORK/out-spark" >/dev/null 2>&1
t1=$(now); spark=$(awk "BEGIN{print $t1 - $t0}")
t0=$(now); "$PY" spark/riverwatch_dask.py "$M" -o "$WORK/out-dask" --workers 2 >/dev/null 2>&1; t1=$(now)
dask=$(awk "BEGIN{print $t1 - $t0}")

same() {
    cmp -s "$WORK/out-batch/flagged.geojson" "$1/flagged.geojson" && diff -rq "$WORK/out-batch/dispatch" "$1/dispatch" >/dev/null && echo yes || echo NO
}
printf '| run | wall s | overhead per task s | same bytes as batch |\n|---|---|---|---|\n'
printf '| batch --jobs 2 | %.1f | — | — |\n' "$batch"
printf '| Spark local[2] | %.1f | %.2f | %s |\n' "$spark" "$(awk "BEGIN{print ($spark - $batch) / $TILES}")" "$(same "$WORK/out-spark")"
printf '| Dask LocalCluster, 2 workers | %.1f | %.2f | %s |\n' "$dask" "$(awk "BEGIN{print ($dask - $batch) / $TILES}")" "$(same "$WORK/out-dask")"
