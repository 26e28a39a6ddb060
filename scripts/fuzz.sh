#!/usr/bin/env bash
# Run the libFuzzer targets of tests/fuzz.
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer flags...]
#     TARGET: proto | wal | wire (or fuzz_proto, ...) | all (each in turn)
#   e.g. scripts/fuzz.sh all 30         scripts/fuzz.sh proto 600 -jobs=2
# Builds build-fuzz/ with clang and -DCAIRN_FUZZ=ON if needed (ASan+UBSan +
# libFuzzer; needs the packages clang and libclang-rt-14-dev), then fuzzes
# each target for SECONDS starting from tests/fuzz/corpus/<target> plus
# tests/fuzz/regressions/<target>.  Everything the run produces stays out of
# the repository, in $CAIRN_FUZZ_WORK (default build-fuzz/fuzz-work)/<target>/:
#   corpus/     the growing corpus (kept between runs; delete it to restart)
#   artifacts/  crash-*, leak-*, timeout-*, oom-* reproducers
#   log         libFuzzer's output of the last run
# Prints executions and exec/s per target.  Exits 1 if any target crashed
# (the reproducer's path is printed: minimize it with
#   build-fuzz/tests/fuzz/fuzz_T -minimize_crash=1 -runs=10000 FILE
# and keep it under tests/fuzz/regressions/fuzz_T/).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 proto|wal|wire|all SECONDS [libFuzzer flags...]" >&2; exit 2; }
[ $# -ge 2 ] || usage
what=${1#fuzz_}
secs=$2
shift 2
[[ $secs =~ ^[0-9]+$ ]] && [ "$secs" -gt 0 ] || usage
case $what in
  all) targets=(proto wal wire) ;;
  proto|wal|wire) targets=("$what") ;;
  *) usage ;;
esac

build=build-fuzz
work=${CAIRN_FUZZ_WORK:-$build/fuzz-work}

if ! grep -q CAIRN_FUZZ CMakeLists.txt; then
  echo "fuzz.sh: the top-level CMakeLists.txt has no CAIRN_FUZZ option yet" \
       "(see tests/fuzz/CMakeLists.txt)" >&2
  exit 2
fi
if ! command -v clang >/dev/null ||
   ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz.sh: needs clang and the libFuzzer runtime (apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
if ! grep -q '^CAIRN_FUZZ:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  CC=clang cmake -S . -B "$build" -DCAIRN_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target fuzz_proto fuzz_wal fuzz_wire >/dev/null

declare -A max_len=([proto]=24576 [wal]=16384 [wire]=16384)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=0
for t in "${targets[@]}"; do
  name=fuzz_$t
  bin=$build/tests/fuzz/$name
  dir=$work/$name
  mkdir -p "$dir/corpus" "$dir/artifacts"
  # Seeds and known crashers start every run (copied, never written back).
  for src in tests/fuzz/corpus/$name tests/fuzz/regressions/$name; do
    [ -d "$src" ] && find "$src" -maxdepth 1 -type f -exec cp -f {} "$dir/corpus/" \;
  done
  echo "== $name: ${secs}s, corpus $dir/corpus ($(find "$dir/corpus" -type f | wc -l) files)"
  set +e
  "$bin" -max_total_time="$secs" -max_len="${max_len[$t]}" -timeout=25 \
         -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
         "$@" "$dir/corpus" >"$dir/log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -1 || true)
  echo "   executions: ${execs:-?}  exec/s: ${rate:-?}  ${cov}  log: $dir/log"
  if [ "$rc" -ne 0 ]; then
    failed=1
    tail -n 60 "$dir/log"
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$dir/log" | tail -1)
    echo "FAIL $name (exit $rc): reproducer: ${crash:-see $dir/log}"
    echo "   replay: $bin ${crash:-FILE}"
  else
    echo "   ok"
  fi
done
exit $failed
