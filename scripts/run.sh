#!/usr/bin/env bash
# Install what is missing, build, and run one persistent cairn node in the
# foreground on 127.0.0.1:11211 with ./cairn-data/11211.  Extra arguments go to
# cairn (e.g. scripts/run.sh -m 1024 -t 2).  Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
install_deps build
build_cairn build
exec ./build/cairn -l 127.0.0.1 -p 11211 "$@"
