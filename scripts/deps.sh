# shellcheck shell=bash
# Debian packages cairn needs; sourced by run.sh, test.sh, bench.sh and .ci/run.
# install_deps [build|test]: installs whatever of the lists is missing
# (test = build + test packages, which include the servers scripts/bench.sh
# compares cairn with: memcached and redis-server).

CAIRN_BUILD_PKGS="cmake gcc make pkg-config libevent-dev liblmdb-dev libprotobuf-c-dev
protobuf-c-compiler check libxxhash-dev libssl-dev libsystemd-dev"
CAIRN_TEST_PKGS="python3 python3-memcache python3-pymemcache libmemcached-tools memcached
lmdb-utils procps clang libclang-rt-14-dev redis-server prometheus man-db systemd"

install_deps() {
  local want="$CAIRN_BUILD_PKGS" missing=() p
  case "${1:-build}" in
    test) want="$want $CAIRN_TEST_PKGS" ;;
  esac
  for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# build_cairn DIR [cmake args...]: configure and build into DIR.
build_cairn() {
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)"
}
