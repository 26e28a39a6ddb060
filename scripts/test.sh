#!/usr/bin/env bash
# Install what is missing, build, and run every test with ctest.
#   scripts/test.sh              normal build in build/
#   scripts/test.sh --sanitize   ASan+UBSan build in build-asan/
# Extra arguments after those go to ctest (e.g. -L unit, -R protocol).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
dir=build
args=()
if [ "${1:-}" = --sanitize ]; then
  shift
  dir=build-asan
  args=(-DCAIRN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
fi
install_deps test
build_cairn "$dir" "${args[@]}"
cd "$dir"
ctest --output-on-failure -j2 --timeout 600 "$@"
