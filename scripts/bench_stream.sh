#!/usr/bin/env bash
# Whole-scene bench: wall time and peak memory of `riverwatch detect` on a
# 2048² and a 10980² Sentinel-2 synth pair, against a GDAL read-only pass
# over the same files (`gdalinfo -checksum`, both dates in parallel, as
# riverwatch reads them), riverwatch's own CVA baseline and a plain numpy
# CVA (scripts/cva_baseline.py, needs python3-gdal and python3-numpy), in
# one run so the ratios hold whatever the machine's speed that day.
#
# The 10980² pair is a 5490² synth scene resampled ×2 with gdal_translate
# (nearest; 5 m pixels, 256 × 256 DEFLATE tiles like synth's own); it is
# made once in $WORK and not committed. SCENES="s2048" runs one size only.
#
#   cargo build --release && scripts/bench_stream.sh
set -euo pipefail
BIN=${BIN:-target/release/riverwatch}
WORK=${WORK:-target/bench-stream}
mkdir -p "$WORK"
[ -f "$WORK/s2048/manifest.json" ] || "$BIN" synth --seed 77 --tiles 1 --size 2048 -o "$WORK/s2048" >/dev/null
[ -f "$WORK/s5490/manifest.json" ] || "$BIN" synth --seed 77 --tiles 1 --size 5490 -o "$WORK/s5490" >/dev/null
if [ ! -f "$WORK/s10980/ready" ]; then
    mkdir -p "$WORK/s10980/tiles"
    cp "$WORK"/s5490/{chiefs.json,rivers.geojson,manifest.json} "$WORK/s10980/"
    for f in "$WORK"/s5490/tiles/*.tif; do
        gdal_translate -q -outsize 200% 200% -r nearest -co TILED=YES -co COMPRESS=DEFLATE \
            -co BLOCKXSIZE=256 -co BLOCKYSIZE=256 "$f" "$WORK/s10980/tiles/$(basename "$f")"
    done
    touch "$WORK/s10980/ready"
fi

# Prints "seconds peak_MB" of a command: the median wall time and the
# largest peak of $REPS runs (5 on the 2048² pair, whose sub-second runs
# move by a fifth from one run to the next on a shared machine; 1 on the
# 10980² pair).
measure() {
    : >"$WORK/times.txt"
    for _ in $(seq "$REPS"); do
        /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/err.txt" || { cat "$WORK/err.txt"; exit 1; }
        cat "$WORK/time.txt" >>"$WORK/times.txt"
    done
    sort -n "$WORK/times.txt" | awk '{t[NR] = $1; if ($2 > m) m = $2} END {printf "%.2f %.0f\n", t[int((NR + 1) / 2)], m / 1024}'
}

read_only() {
    for f in "$1"/tiles/*.tif; do gdalinfo -checksum "$f" >/dev/null & done
    wait
}
export -f read_only

printf "%-8s %-28s %9s %9s %8s\n" scene run seconds peak_MB "× read"
for s in ${SCENES:-s2048 s10980}; do
    d="$WORK/$s"
    case $s in s2048) REPS=${REPS_SMALL:-5} ;; *) REPS=1 ;; esac
    # One unmeasured pass first: the files then come from the page cache
    # for every run, as they do for the detect runs after it.
    read_only "$d"
    read -r rt rm < <(measure bash -c "read_only $d")
    printf "%-8s %-28s %9s %9s %8s\n" "$s" "GDAL read-only (2 in parallel)" "$rt" "$rm" "1.00"
    for run in "auto" "always" "always --strips 1" "cva-otsu" "always --block-rows 256"; do
        case $run in
            auto) args=() ;;
            cva-otsu) args=(--method cva-otsu) ;;
            *) read -ra args <<<"--stream $run" ;;
        esac
        read -r t m < <(measure "$BIN" detect "$d/manifest.json" -o "$WORK/$s.geojson" "${args[@]}")
        printf "%-8s %-28s %9s %9s %8.2f\n" "$s" "detect ${args[*]:-(auto)}" "$t" "$m" "$(echo "$t / $rt" | bc -l)"
    done
    if /usr/bin/python3 -c "import numpy, osgeo" 2>/dev/null; then
        read -r t m < <(measure /usr/bin/python3 scripts/cva_baseline.py "$d/manifest.json" "$WORK/cva-$s")
        printf "%-8s %-28s %9s %9s %8.2f\n" "$s" "plain numpy CVA (baseline)" "$t" "$m" "$(echo "$t / $rt" | bc -l)"
    else
        echo "(plain numpy CVA skipped: apt-get install python3-gdal python3-numpy)"
    fi
    # The read again at the end: how much the machine's speed moved
    # during the run (ratios above are against the first).
    read -r rt2 rm2 < <(measure bash -c "read_only $d")
    printf "%-8s %-28s %9s %9s %8.2f\n" "$s" "GDAL read-only (again)" "$rt2" "$rm2" "$(echo "$rt2 / $rt" | bc -l)"
done
