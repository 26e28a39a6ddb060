#!/usr/bin/env bash
# Install what is missing, build, and run every test with ctest.
#   scripts/test.sh              normal build in build/
#   scripts/test.sh --sanitize   ASan+UBSan build in build-asan/
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
