#!/bin/sh
# soak.sh: long runs of the randomized tests, to find rare failures.
#
#   scripts/soak.sh [--model-seconds N] [--seeds "S1 S2 ..."] [--suite N] [--build DIR]
#
#   --model-seconds N   run tests/durability/test_model.py for N seconds per
#                       seed (default 600); 0 skips it
#   --seeds "..."       seeds for test_model.py (default: 5 seeds from the
#                       clock, printed so that a failing one can be rerun with
#                       test_model.py --seed S)
#   --suite N           then run the whole ctest suite N times in a row
#                       (default 0); e.g. `scripts/soak.sh --suite 5`
#                       (with --suite alone the model runs are skipped unless
#                       --model-seconds is given too)
#   --build DIR         build directory (default ./build; built first, -j2)
#
# Prints one PASS/FAIL line per run and a final "soak: P passed, F failed"
# count; exits 1 if anything failed.  Logs of failed runs are kept under
# $TMPDIR/cairn-soak.XXXXXX (printed).  Every run is bounded by `timeout`.
# Runs one thing at a time (-j2 at most for the build): the machine may be
# shared.
set -u

cd "$(dirname "$0")/.." || exit 2
BUILD=build
MODEL_SECONDS=
SEEDS=
SUITE=0
while [ $# -gt 0 ]; do
    case "$1" in
    --model-seconds) MODEL_SECONDS=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --suite) SUITE=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$MODEL_SECONDS" ]; then
    if [ "$SUITE" -gt 0 ]; then MODEL_SECONDS=0; else MODEL_SECONDS=600; fi
fi
if [ -z "$SEEDS" ]; then
    base=$(date +%s)
    SEEDS="$base $((base + 1)) $((base + 2)) $((base + 3)) $((base + 4))"
fi

cmake -S . -B "$BUILD" >/dev/null && cmake --build "$BUILD" -j2 >/dev/null || {
    echo "soak.sh: build failed" >&2; exit 2; }
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/cairn-soak.XXXXXX")
pass=0
fail=0

record() {  # name status logfile
    if [ "$2" -eq 0 ]; then
        pass=$((pass + 1)); echo "PASS $1"; rm -f "$3"
    else
        fail=$((fail + 1)); echo "FAIL $1 (status $2, log $3)"
    fi
}

if [ "$MODEL_SECONDS" -gt 0 ]; then
    for seed in $SEEDS; do
        log="$LOGS/model-$seed.log"
        timeout $((MODEL_SECONDS + 300)) /usr/bin/python3 tests/durability/test_model.py \
            --bin "$BUILD/cairn" --seed "$seed" --seconds "$MODEL_SECONDS" --rounds 1000000 \
            >"$log" 2>&1
        record "test_model.py --seed $seed --seconds $MODEL_SECONDS" $? "$log"
    done
fi

i=1
while [ "$i" -le "$SUITE" ]; do
    log="$LOGS/suite-$i.log"
    (cd "$BUILD" && timeout 7200 ctest --output-on-failure) >"$log" 2>&1
    record "ctest suite run $i/$SUITE" $? "$log"
    i=$((i + 1))
done

if [ "$fail" -eq 0 ]; then
    rmdir "$LOGS" 2>/dev/null
    echo "soak: $pass passed, 0 failed"
    exit 0
fi
echo "soak: $pass passed, $fail failed (logs in $LOGS)"
exit 1
