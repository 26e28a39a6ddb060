# shellcheck shell=bash
# Debian packages cairn needs; sourced by run.sh, test.sh, bench.sh and .ci/run.
# install_deps [build|test]: installs whatever of the lists is missing
# (test = build + test packages, which include the servers scripts/bench.sh
# compares cairn with: memcached and redis-server, and the real clients of
# tests/clients: ruby-dalli, python3-pylibmc, php-memcached and, from npm
# into tests/clients/node_modules, memjs).

CAIRN_BUILD_PKGS="cmake gcc make pkg-config libevent-dev liblmdb-dev libprotobuf-c-dev
protobuf-c-compiler check libxxhash-dev libssl-dev libsystemd-dev"
CAIRN_TEST_PKGS="python3 python3-memcache python3-pymemcache libmemcached-tools memcached
lmdb-utils procps clang libclang-rt-14-dev redis-server prometheus man-db systemd
ruby ruby-dalli python3-pylibmc php-cli php-memcached"
# Node.js and npm for memjs; skipped when node and npm are already on PATH
# (e.g. NodeSource's nodejs, which bundles npm and conflicts with Debian's).
CAIRN_NODE_PKGS="nodejs npm"

install_deps() {
  local want="$CAIRN_BUILD_PKGS" missing=() p
  case "${1:-build}" in
    test)
      want="$want $CAIRN_TEST_PKGS"
      command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
        want="$want $CAIRN_NODE_PKGS"
      ;;
  esac
  for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  case "${1:-build}" in
    test) install_node_clients ;;
  esac
}

# install_node_clients: memjs (tests/clients/package-lock.json) into
# tests/clients/node_modules with `npm ci`, unless that exact version is
# there already.  Fails loudly (status 1) when npm cannot fetch it.
install_node_clients() {
  local dir want have
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/clients"
  want=$(sed -n '/"node_modules\/memjs"/,/}/s/.*"version": "\([^"]*\)".*/\1/p' "$dir/package-lock.json")
  have=$(sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$dir/node_modules/memjs/package.json" 2>/dev/null || true)
  [ -n "$want" ] && [ "$want" = "$have" ] && return 0
  echo "installing memjs $want into $dir/node_modules (npm ci)" >&2
  if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2); then
    echo "deps.sh: ERROR: npm ci in $dir failed (is the npm registry reachable?);" \
      "tests/clients/test_memjs.py cannot run without memjs" >&2
    return 1
  fi
}

# build_cairn DIR [cmake args...]: configure and build into DIR.
build_cairn() {
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)"
}
