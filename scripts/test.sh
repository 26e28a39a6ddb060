#!/usr/bin/env bash
# Install what is missing, build, and run every test with ctest.
#   scripts/test.sh              normal build in build/
#   scripts/test.sh --sanitize   ASan+UBSan build in build-asan/
#   scripts/test.sh --tsan       ThreadSanitizer build (clang) in build-tsan/: every
#                                test but tests/faults (see docs/reliability.md);
#                                extra ctest arguments replace that selection
#   scripts/test.sh --fuzz       clang + libFuzzer build in build-fuzz/: a short
#                                run of each fuzz target and every regression input
# Extra arguments after those go to ctest (e.g. -L unit, -R protocol).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
dir=build
args=()
labels=()
case "${1:-}" in
  --sanitize)
    shift
    dir=build-asan
    args=(-DCAIRN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
    ;;
  --tsan)
    shift
    dir=build-tsan
    args=(-DCAIRN_TSAN=ON -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug)
    # halt_on_error: the first report kills the process with exitcode 66, so
    # the unit test fails and the Python harness sees a server that died
    # (harness.py fails any server that exits non-zero or logs a report).
    # detect_deadlocks=0: TSan's lock-order checker can track at most 64
    # mutexes held by one thread and aborts with "CHECK failed:
    # sanitizer_deadlock_detector.h:67" beyond that, and storage/store.c
    # holds all 1024 writer locks for flush_all (storage/cache.c its 1024
    # stripes for the moment it swaps in a grown table; see
    # docs/reliability.md).  Data-race detection is not affected.
    export TSAN_OPTIONS="halt_on_error=1 exitcode=66 detect_deadlocks=0 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp ${TSAN_OPTIONS:-}"
    export CAIRN_TEST_SLOWDOWN=${CAIRN_TEST_SLOWDOWN:-4}
    # Everything but tests/faults: their figures are RSS bounds, which
    # TSan's shadow memory makes meaningless (docs/reliability.md).
    [ $# -eq 0 ] && labels=(-LE faults)
    ;;
  --fuzz)
    shift
    dir=build-fuzz
    args=(-DCAIRN_FUZZ=ON -DCMAKE_C_COMPILER=clang)
    labels=(-L fuzz)
    ;;
esac
install_deps test
build_cairn "$dir" "${args[@]}"
cd "$dir"
ctest --output-on-failure -j2 --timeout 600 "${labels[@]}" "$@"
