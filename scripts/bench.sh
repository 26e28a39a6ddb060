#!/usr/bin/env bash
# bench.sh: benchmark cairn against memcached and Redis, side by side, in one
# run, and (sections replication, failover, restart; run by
# scripts/bench_cluster.sh) cairn's replication, failover and warm restart.
#
# Sections: BENCH_SECTIONS="memcached protocols replication failover restart"
# (the default; "all" is the same). The memcached section (about 11.5 min at
# the defaults; the estimate is printed first) is:
#
# Servers, each started once, on free ports on 127.0.0.1, all pinned to the
# same CPU set (taskset), each in its own fresh working directory:
#   memcached         the reference (-t THREADS -m 1024 -c 1024 -U 0)
#   memcached-b       a second, identical memcached: the A/A column (noise floor)
#   cairn-ephemeral   cairn --ephemeral       (plus memcached's flags)
#   cairn-everysec    cairn --fsync everysec  (persistent, the default mode)
#   cairn-always      cairn --fsync always
#   redis-everysec    redis-server --save '' --appendonly yes --appendfsync everysec
#   redis-always      redis-server ... --appendfsync always
# The load tools run on the other CPU set. For each round, every workload is
# run on every server in turn (interleaved; the order rotates by one server
# each round). Redis gets the same cairn-load workloads over RESP (--protocol
# redis); memcaslap runs on BENCH_MEMCASLAP_SERVERS only. Once per round, the
# disk's single-writer fsync rate is probed (cairn-load --fsync-probe, on the
# file system of cairn's data dirs). The report has the medians over the
# rounds with every ratio, p50/p99 latencies, the targets, and the fsync rate
# next to the 50-writer --fsync always figures. A per-item memory
# measurement (VmRSS and RssAnon growth for BENCH_ITEMS 100-byte items) is
# taken on fresh memcached and cairn-everysec instances, with cairn's disk
# footprint (lmdb/data.mdb + wal/*.log) once its checkpoint has caught up.
# See docs/benchmarks.md.
#
# The protocols section (about 2.5 min at the defaults) compares, on a fresh
# memcached and a fresh cairn --ephemeral (the same flags as above), gets of
# 100-byte values (cairn-load --ratio 1:0 --preload, BENCH_CONNS connections)
# over the classic ASCII protocol ("get"), the meta protocol ("mg <key> v
# f") at 1 and 16 in flight, and the binary protocol (GET packets) at 16 in
# flight, and prints the targets: cairn mg / cairn get >= 1 at 1 and at 16
# in flight; cairn binary get / memcached binary get >= 3 at 16 in flight
# (memcached answers pipelined binary gets with one write each). Whether
# cairn serves the binary protocol is probed once (a binary NOOP must get a
# binary reply); if not, its binary rows are skipped with a line saying so.
# Only these rows: BENCH_SECTIONS=protocols scripts/bench.sh
#
# Environment (all optional):
#   BENCH_SECTIONS="memcached protocols replication failover restart"  what to run
#   BENCH_SECONDS=5        seconds per measurement
#   BENCH_ROUNDS=3         rounds (medians are over rounds)
#   BENCH_THREADS=2        server worker threads (-t; memcached and cairn)
#   BENCH_CONNS=32         client connections per measurement
#   BENCH_FSYNC_WRITERS=50 connections (1 set in flight each) of workload d
#   BENCH_KEYS=100000      key space of the throughput workloads
#   BENCH_ITEMS=1000000    items loaded by the memory workload (0 = skip it)
#   BENCH_CAIRN_MODES="ephemeral everysec always"  cairn instances to run
#   BENCH_REDIS=1          0 = no Redis (also skipped, with a warning, when
#                          redis-server is missing and cannot be installed)
#   BENCH_MEMCASLAP_SERVERS="memcached cairn-ephemeral cairn-everysec"  the
#                          servers of the memcaslap rows (add memcached-b for
#                          their A/A; each memcaslap run adds ~1.4 s)
#   BENCH_SERVER_CPUS=0    taskset CPU list for the servers
#   BENCH_CLIENT_CPUS=1    taskset CPU list for the load tools
#   BENCH_PIN=1            0 = no CPU pinning
#   BENCH_OUT=DIR          keep raw outputs here (default: temp dir, removed)
#   BENCH_BIG_ITEMS=1000000  items of the restart, full-sync and failover tests
#   CAIRN_BIN=PATH         cairn binary (default build-release/cairn, built if
#                          missing; also cairnctl from the same directory)
#   CAIRN_ARGS="..."       extra arguments for every cairn instance of the
#                          memcached section (after the mode's own flags)
#   REDIS_ARGS="..."       extra arguments for both redis-server instances
#                          (e.g. "--auto-aof-rewrite-min-size 4gb" to keep AOF
#                          rewrites, which fork and copy the data set, out of
#                          the measurements; by default Redis rewrites)
#   MEMCACHED_BIN=PATH     default /usr/bin/memcached
#   MEMCASLAP_BIN=PATH     default memcaslap
#   REDIS_BIN=PATH         default redis-server (from PATH)
#   LOAD_BIN=PATH          cairn-load binary (default build-release/cairn-load, or
#                          compiled from tests/load/cairn-load.c if missing/stale)
# Options: --cairn-args "ARGS" (same as CAIRN_ARGS), -h/--help.
# Exit status: 0 if every measurement succeeded, 1 otherwise.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/bench_lib.sh
. "$ROOT/scripts/bench_lib.sh"

while (($#)); do
    case $1 in
    --cairn-args)
        [[ $# -ge 2 ]] || { echo "bench.sh: --cairn-args needs a value" >&2; exit 2; }
        CAIRN_ARGS=$2
        shift 2
        ;;
    --cairn-args=*)
        CAIRN_ARGS=${1#*=}
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "bench.sh: unknown argument '$1' (see --help)" >&2
        exit 2
        ;;
    esac
done

BENCH_SECTIONS=${BENCH_SECTIONS:-all}
BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_THREADS=${BENCH_THREADS:-2}
BENCH_CONNS=${BENCH_CONNS:-32}
BENCH_FSYNC_WRITERS=${BENCH_FSYNC_WRITERS:-50}
BENCH_KEYS=${BENCH_KEYS:-100000}
BENCH_ITEMS=${BENCH_ITEMS:-1000000}
BENCH_CAIRN_MODES=${BENCH_CAIRN_MODES:-ephemeral everysec always}
BENCH_REDIS=${BENCH_REDIS:-1}
BENCH_SERVER_CPUS=${BENCH_SERVER_CPUS:-0}
BENCH_CLIENT_CPUS=${BENCH_CLIENT_CPUS:-1}
BENCH_PIN=${BENCH_PIN:-1}
BENCH_OUT=${BENCH_OUT:-}
CAIRN_BIN=${CAIRN_BIN:-}
CAIRN_ARGS=${CAIRN_ARGS:-}
REDIS_ARGS=${REDIS_ARGS:-}
MEMCACHED_BIN=${MEMCACHED_BIN:-/usr/bin/memcached}
MEMCASLAP_BIN=${MEMCASLAP_BIN:-memcaslap}
REDIS_BIN=${REDIS_BIN:-redis-server}
LOAD_BIN=${LOAD_BIN:-}
BENCH_MEMCASLAP_SERVERS=${BENCH_MEMCASLAP_SERVERS:-memcached cairn-ephemeral cairn-everysec}
SERVER_MEM_MB=1024
SERVER_MAXCONNS=1024
KEY_BYTES=12     # "key:%08u", cairn-load's keys
PROBE_SECONDS=2  # length of each fsync probe

for v in BENCH_SECONDS BENCH_ROUNDS BENCH_THREADS BENCH_CONNS BENCH_FSYNC_WRITERS BENCH_KEYS BENCH_ITEMS; do
    if ! [[ ${!v} =~ ^[0-9]+$ ]]; then
        echo "bench.sh: $v must be a non-negative integer (got '${!v}')" >&2
        exit 2
    fi
done
for v in BENCH_SECONDS BENCH_ROUNDS BENCH_THREADS BENCH_CONNS BENCH_FSYNC_WRITERS BENCH_KEYS; do
    if ((${!v} < 1)); then
        echo "bench.sh: $v must be >= 1" >&2
        exit 2
    fi
done
for m in $BENCH_CAIRN_MODES; do
    case $m in
    ephemeral | everysec | always) ;;
    *)
        echo "bench.sh: unknown cairn mode '$m' in BENCH_CAIRN_MODES (ephemeral everysec always)" >&2
        exit 2
        ;;
    esac
done
[[ $BENCH_REDIS == [01] ]] || { echo "bench.sh: BENCH_REDIS must be 0 or 1 (got '$BENCH_REDIS')" >&2; exit 2; }
read -r -a CAIRN_EXTRA <<<"$CAIRN_ARGS"
read -r -a REDIS_EXTRA <<<"$REDIS_ARGS"
[[ $BENCH_SECTIONS == all ]] && BENCH_SECTIONS="memcached protocols replication failover restart"
RUN_MEMCACHED=0
RUN_PROTOCOLS=0
CLUSTER_SECTIONS=()
for s in $BENCH_SECTIONS; do
    case $s in
    memcached) RUN_MEMCACHED=1 ;;
    protocols) RUN_PROTOCOLS=1 ;;
    persistence | replication | failover | restart) CLUSTER_SECTIONS+=("$s") ;;
    *)
        echo "bench.sh: unknown section '$s' in BENCH_SECTIONS (memcached protocols replication failover restart persistence, or all)" >&2
        exit 2
        ;;
    esac
done

# --------------------------------------------------------------------------
# scratch space, process bookkeeping, cleanup

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench.XXXXXX")
if [[ -n $BENCH_OUT ]]; then
    mkdir -p "$BENCH_OUT"
    OUT=$(cd "$BENCH_OUT" && pwd)
else
    OUT=$WORK
fi
declare -A SERVER_PID=() SERVER_PORT=() SERVER_DIR=()
USED_PORTS=" "
PORT_PICKED=
FAILURES=0
STARTS=0

stop_server() {
    local name=$1 pid
    pid=${SERVER_PID[$name]:-}
    [[ -n $pid ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        local i
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    unset "SERVER_PID[$name]"
}

cleanup() {
    local name
    for name in "${!SERVER_PID[@]}"; do
        stop_server "$name"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


# --------------------------------------------------------------------------
# CPU pinning

PIN_SERVER=()
PIN_CLIENT=()
if [[ $BENCH_PIN == 1 ]]; then
    if command -v taskset >/dev/null 2>&1 &&
        taskset -c "$BENCH_SERVER_CPUS" true 2>/dev/null &&
        taskset -c "$BENCH_CLIENT_CPUS" true 2>/dev/null; then
        PIN_SERVER=(taskset -c "$BENCH_SERVER_CPUS")
        PIN_CLIENT=(taskset -c "$BENCH_CLIENT_CPUS")
    else
        say "warning: cannot pin to CPUs '$BENCH_SERVER_CPUS' / '$BENCH_CLIENT_CPUS'" \
            "(nproc=$(nproc)); running unpinned"
    fi
fi

# --------------------------------------------------------------------------
# binaries

build_cairn() {
    say "== building cairn (Release)"
    show_cmd cmake -S "$ROOT" -B "$ROOT/build-release" -DCMAKE_BUILD_TYPE=Release
    cmake -S "$ROOT" -B "$ROOT/build-release" -DCMAKE_BUILD_TYPE=Release >"$OUT/build.log" 2>&1 ||
        { cat "$OUT/build.log" >&2; return 1; }
    show_cmd cmake --build "$ROOT/build-release" -j2
    cmake --build "$ROOT/build-release" -j2 >>"$OUT/build.log" 2>&1 ||
        { cat "$OUT/build.log" >&2; return 1; }
}

if [[ -z $CAIRN_BIN ]]; then
    CAIRN_BIN=$ROOT/build-release/cairn
    if [[ ! -x $CAIRN_BIN ]]; then
        # shellcheck disable=SC2119 # this script's build_cairn, not deps.sh's
        build_cairn
    fi
    cache=$ROOT/build-release/CMakeCache.txt
    if [[ -f $cache ]]; then
        btype=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$cache")
        if [[ $btype != Release ]]; then
            say "warning: build-release/ is configured as '${btype:-<none>}', not Release; numbers may be pessimistic"
        fi
        if grep -q '^CAIRN_SANITIZE:BOOL=ON' "$cache"; then
            say "warning: build-release/ has CAIRN_SANITIZE=ON; numbers are meaningless for performance"
        fi
    fi
fi
[[ -x $CAIRN_BIN ]] || { echo "bench.sh: cairn binary '$CAIRN_BIN' not found" >&2; exit 1; }
# a memcached binary as CAIRN_BIN (an A/A run of the old layout) gets no
# cairn-only flags
CAIRN_IS_MEMCACHED=0
[[ $(basename "$CAIRN_BIN") == memcached* ]] && CAIRN_IS_MEMCACHED=1

if ((RUN_MEMCACHED || RUN_PROTOCOLS)); then
    [[ -x $MEMCACHED_BIN ]] || { echo "bench.sh: memcached binary '$MEMCACHED_BIN' not found" >&2; exit 1; }
fi
if ((RUN_MEMCACHED)); then
    command -v "$MEMCASLAP_BIN" >/dev/null 2>&1 ||
        { echo "bench.sh: memcaslap ('$MEMCASLAP_BIN') not found (apt-get install libmemcached-tools)" >&2; exit 1; }
    if ((BENCH_REDIS)) && ! command -v "$REDIS_BIN" >/dev/null 2>&1; then
        if [[ $REDIS_BIN == redis-server && $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
            say "== redis-server is missing; installing it (scripts/deps.sh: install_deps test)"
            # shellcheck source=scripts/deps.sh
            (. "$ROOT/scripts/deps.sh" && install_deps test) ||
                say "warning: installing redis-server failed"
        fi
        if ! command -v "$REDIS_BIN" >/dev/null 2>&1; then
            say "warning: redis-server ('$REDIS_BIN') not found; running without Redis" \
                "(apt-get install redis-server, or BENCH_REDIS=0 to silence this)"
            BENCH_REDIS=0
        fi
    fi
    if [[ -n $CAIRN_ARGS && $CAIRN_ARGS =~ (^|[[:space:]])--(ephemeral|fsync|data-dir|repl-port|port)([=[:space:]]|$) ]]; then
        say "warning: CAIRN_ARGS ('$CAIRN_ARGS') sets a flag that every cairn instance gets after its" \
            "own mode flags; the column names may no longer describe the modes (see BENCH_CAIRN_MODES)"
    fi
fi

if [[ -z $LOAD_BIN ]]; then
    src=$ROOT/tests/load/cairn-load.c
    if [[ -x $ROOT/build-release/cairn-load && ! $src -nt $ROOT/build-release/cairn-load ]]; then
        LOAD_BIN=$ROOT/build-release/cairn-load
    else
        LOAD_BIN=$WORK/cairn-load
        show_cmd "${CC:-cc}" -std=c11 -D_GNU_SOURCE -O2 -pthread "$src" -o "$LOAD_BIN"
        "${CC:-cc}" -std=c11 -D_GNU_SOURCE -O2 -pthread "$src" -o "$LOAD_BIN"
    fi
fi
[[ -x $LOAD_BIN ]] || { echo "bench.sh: cairn-load binary '$LOAD_BIN' not found" >&2; exit 1; }

# --------------------------------------------------------------------------
# servers

# pick_port: sets PORT_PICKED to a free port on 127.0.0.1 that no server of
# this run was given
pick_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        # below the usual ephemeral range (32768-60999) of outgoing
        # connections, which could take the port between the check and the bind
        p=$((10000 + RANDOM % 22000))
        [[ $USED_PORTS == *" $p "* ]] && continue
        if ! port_open "$p"; then
            USED_PORTS+="$p "
            PORT_PICKED=$p
            return 0
        fi
    done
    return 1
}

# server_kind NAME: memcached | cairn | redis
server_kind() {
    case $1 in
    memcached*) echo memcached ;;
    cairn-*) echo cairn ;;
    redis-*) echo redis ;;
    *) echo "bench.sh: unknown server '$1'" >&2; return 1 ;;
    esac
}

# start_server NAME: starts server NAME (see the list at the top) on a free
# port, in a fresh working directory SERVER_DIR[NAME]
start_server() {
    local name=$1 kind attempt port rport pid
    kind=$(server_kind "$name")
    for ((attempt = 0; attempt < 5; attempt++)); do
        pick_port || { echo "bench.sh: no free port" >&2; return 1; }
        port=$PORT_PICKED
        # every start gets a fresh, empty working directory, so a server that
        # persists to a relative path (cairn: ./cairn-data/PORT) starts empty and
        # nothing is written where the script was run from
        STARTS=$((STARTS + 1))
        local dir=$WORK/$name-$STARTS
        mkdir -p "$dir"
        local -a cmd=("${PIN_SERVER[@]}")
        local -a common=(-p "$port" -l 127.0.0.1 -U 0 -t "$BENCH_THREADS" -m "$SERVER_MEM_MB"
            -c "$SERVER_MAXCONNS")
        # memcached refuses to run as root without -u
        local -a asroot=()
        [[ $(id -u) == 0 ]] && asroot=(-u root)
        case $kind in
        memcached)
            cmd+=("$MEMCACHED_BIN" "${common[@]}" "${asroot[@]}")
            ;;
        cairn)
            if ((CAIRN_IS_MEMCACHED)); then
                cmd+=("$CAIRN_BIN" "${common[@]}" "${asroot[@]}" "${CAIRN_EXTRA[@]}")
            else
                pick_port || { echo "bench.sh: no free port" >&2; return 1; }
                rport=$PORT_PICKED
                local -a mode=()
                case $name in
                cairn-ephemeral) mode=(--ephemeral) ;;
                cairn-everysec) mode=(--fsync everysec) ;;
                cairn-always) mode=(--fsync always) ;;
                esac
                cmd+=("$CAIRN_BIN" "${common[@]}" --repl-port "$rport" "${mode[@]}" "${CAIRN_EXTRA[@]}")
            fi
            ;;
        redis)
            cmd+=("$REDIS_BIN" --port "$port" --bind 127.0.0.1 --save '' --appendonly yes
                --appendfsync "${name#redis-}" --dir "$dir" "${REDIS_EXTRA[@]}")
            ;;
        esac
        show_cmd cd "$dir"
        show_cmd "${cmd[@]}"
        (cd "$dir" && exec "${cmd[@]}") >>"$OUT/$name.server.log" 2>&1 &
        pid=$!
        SERVER_PID[$name]=$pid
        SERVER_PORT[$name]=$port
        SERVER_DIR[$name]=$dir
        # cairn opens its client port before its replication port: make sure
        # it is still alive a moment after the client port answered
        if wait_port "$pid" "$port" 10 && sleep 0.3 && kill -0 "$pid" 2>/dev/null; then
            return 0
        fi
        say "warning: $name did not come up on port $port; retrying"
        tail -n 5 "$OUT/$name.server.log" >&2 || true
        stop_server "$name"
    done
    echo "bench.sh: could not start $name" >&2
    return 1
}

# rss_kb PID [FIELD]: VmRSS (or FIELD, e.g. RssAnon) of PID in kB
rss_kb() {
    awk -v f="${2:-VmRSS}:" '$1 == f {print $2}' "/proc/$1/status"
}

# stats_group PORT GROUP: the "name value" lines of a memcache "stats GROUP"
# (every read is bounded; status 1 if the reply did not end with END)
stats_group() {
    local fd line
    exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf 'stats %s\r\n' "$2" >&"$fd"
    while IFS= read -r -t 3 line <&"$fd"; do
        line=${line%$'\r'}
        if [[ $line == END ]]; then
            exec {fd}>&-
            return 0
        fi
        [[ $line == "STAT "* ]] && printf '%s\n' "${line#STAT }"
    done
    exec {fd}>&-
    return 1
}

# file_bytes FILE...: total apparent size of the files that exist
file_bytes() {
    local f total=0
    for f in "$@"; do
        [[ -f $f ]] && total=$((total + $(stat -c %s "$f")))
    done
    echo "$total"
}

# --------------------------------------------------------------------------
# load runs. Each prints a metrics line "ops p50 p99" (or "ERR") on stdout.

MS_GET=$WORK/memcaslap-get.cnf
MS_SET=$WORK/memcaslap-set.cnf
cat >"$MS_GET" <<'EOF'
# 16-byte keys, fixed 100-byte values, 10% set / 90% get
key
16 16 1
value
100 100 1
cmd
0 0.1
1 0.9
EOF
cat >"$MS_SET" <<'EOF'
# 16-byte keys, fixed 1024-byte values, sets only
key
16 16 1
value
1024 1024 1
cmd
0 1
1 0
EOF

# Raw output of each run goes to $OUT/$RUN_TAG-<server>-<tool>.log; RUN_TAG is
# set by the caller (these functions run in command substitutions).
RUN_TAG=run

run_memcaslap() {
    local server=$1 cfgfile=$2 port=${SERVER_PORT[$1]} log tps
    log=$OUT/$RUN_TAG-$server-memcaslap.log
    # -T 1: memcaslap pins its threads itself when -T > 1, escaping taskset
    local -a cmd=("${PIN_CLIENT[@]}" "$MEMCASLAP_BIN" -s "127.0.0.1:$port" -F "$cfgfile"
        -t "${BENCH_SECONDS}s" -T 1 -c "$BENCH_CONNS")
    show_cmd "${cmd[@]}" >&2
    if timeout $((BENCH_SECONDS + 60)) "${cmd[@]}" >"$log" 2>&1; then
        tps=$(sed -n 's/.*TPS: \([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
    else
        tps=
    fi
    if [[ -z $tps ]]; then
        say "error: memcaslap against $server failed; see below" >&2
        tail -n 5 "$log" >&2 || true
        echo ERR
        return 0
    fi
    echo "$tps - -"
}

# run_load SERVER cairn-load args...: over RESP for a Redis server
run_load() {
    local server=$1 port=${SERVER_PORT[$1]} log line
    shift
    log=$OUT/$RUN_TAG-$server-cairn-load.log
    local -a proto=()
    [[ $(server_kind "$server") == redis ]] && proto=(--protocol redis)
    local -a cmd=("${PIN_CLIENT[@]}" "$LOAD_BIN" -s "127.0.0.1:$port" "${proto[@]}" "$@")
    show_cmd "${cmd[@]}" >&2
    if timeout $((BENCH_SECONDS + 120)) "${cmd[@]}" >"$log" 2>&1 &&
        line=$(grep '^ops_per_sec=' "$log" | tail -n 1) && [[ -n $line ]]; then
        awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); m[kv[1]] = kv[2]}
              printf "%s %s %s\n", m["ops_per_sec"], m["p50_us"], m["p99_us"]}' <<<"$line"
    else
        say "error: cairn-load against $server failed; see below" >&2
        tail -n 5 "$log" >&2 || true
        echo ERR
    fi
}

# run_fsync_probe DIR: single-writer append + fdatasync rate of DIR's file
# system; prints "fsyncs/s p50 p99" (or ERR)
run_fsync_probe() {
    local log=$OUT/$RUN_TAG-fsync-probe.log line
    local -a cmd=("${PIN_CLIENT[@]}" "$LOAD_BIN" --fsync-probe "$1" -T "$PROBE_SECONDS" -q)
    show_cmd "${cmd[@]}" >&2
    if timeout $((PROBE_SECONDS + 60)) "${cmd[@]}" >"$log" 2>&1 &&
        line=$(grep '^fsyncs_per_sec=' "$log" | tail -n 1) && [[ -n $line ]]; then
        echo "$(metric fsyncs_per_sec "$line") $(metric p50_us "$line") $(metric p99_us "$line")"
    else
        say "error: the fsync probe in $1 failed; see below" >&2
        tail -n 5 "$log" >&2 || true
        echo ERR
    fi
}

# --------------------------------------------------------------------------
# servers and workloads

# every server the section knows, in table order
ALL_SERVERS=(memcached memcached-b cairn-ephemeral cairn-everysec cairn-always redis-everysec redis-always)
declare -A SHORT=(
    [memcached]=memcached [memcached-b]=mc-b [cairn-ephemeral]=eph [cairn-everysec]=everysec
    [cairn-always]=always [redis-everysec]=redis-es [redis-always]=redis-al
)
# ratio columns: "header numerator denominator"
RATIOS=(
    "A/A mc-b/mc|memcached-b|memcached"
    "eph/mc|cairn-ephemeral|memcached"
    "es/mc|cairn-everysec|memcached"
    "es/eph|cairn-everysec|cairn-ephemeral"
    "al/mc|cairn-always|memcached"
    "r-es/mc|redis-everysec|memcached"
    "r-al/mc|redis-always|memcached"
    "es/r-es|cairn-everysec|redis-everysec"
    "al/r-al|cairn-always|redis-always"
)

# the servers this run starts
SERVERS=(memcached memcached-b)
for m in ephemeral everysec always; do
    [[ " $BENCH_CAIRN_MODES " == *" $m "* ]] && SERVERS+=("cairn-$m")
done
((BENCH_REDIS)) && SERVERS+=(redis-everysec redis-always)

WL_IDS=(get_slap get_load set_slap set_load pget_load pset_load always_50w)
declare -A WL_TITLE=(
    [get_slap]="a. get 9:1, 100 B, 1 in flight"
    [get_load]="a. get 9:1, 100 B, 1 in flight"
    [set_slap]="b. set only, 1 KB, 1 in flight"
    [set_load]="b. set only, 1 KB, 1 in flight"
    [pget_load]="c. get 9:1, 100 B, 16 in flight"
    [pset_load]="c. set only, 1 KB, 16 in flight"
    [always_50w]="d. set 1 KB, $BENCH_FSYNC_WRITERS writers x 1 in flight"
)
declare -A WL_TOOL=(
    [get_slap]=memcaslap [set_slap]=memcaslap
    [get_load]=cairn-load [set_load]=cairn-load [pget_load]=cairn-load [pset_load]=cairn-load
    [always_50w]=cairn-load
)
LOAD_COMMON=(-t 1 -T "$BENCH_SECONDS" -k "$BENCH_KEYS" -q)
declare -A WL_ARGS=(
    [get_load]="-c $BENCH_CONNS -P 1 --ratio 9:1 -d 100 --preload"
    [set_load]="-c $BENCH_CONNS -P 1 --ratio 0:1 -d 1024"
    [pget_load]="-c $BENCH_CONNS -P 16 --ratio 9:1 -d 100 --preload"
    [pset_load]="-c $BENCH_CONNS -P 16 --ratio 0:1 -d 1024"
    [always_50w]="-c $BENCH_FSYNC_WRITERS -P 1 --ratio 0:1 -d 1024"
)

# wl_servers WL: the running servers workload WL is measured on: memcaslap
# only on BENCH_MEMCASLAP_SERVERS (memcache servers; each run costs ~1.4 s on
# top of its -t, so the default leaves out the A/A and cairn-always, which
# the cairn-load rows cover), cairn-load on all
wl_servers() {
    local s
    for s in "${SERVERS[@]}"; do
        if [[ ${WL_TOOL[$1]} == memcaslap ]]; then
            [[ $(server_kind "$s") != redis && " $BENCH_MEMCASLAP_SERVERS " == *" $s "* ]] || continue
        fi
        echo "$s"
    done
}

run_workload() {
    local wl=$1 server=$2
    local -a args=()
    case $wl in
    get_slap) run_memcaslap "$server" "$MS_GET" ;;
    set_slap) run_memcaslap "$server" "$MS_SET" ;;
    *)
        read -r -a args <<<"${WL_ARGS[$wl]}"
        run_load "$server" "${LOAD_COMMON[@]}" "${args[@]}"
        ;;
    esac
}

# the file system the fsync probe measures: where cairn keeps its data
probe_dir() {
    local s
    for s in cairn-always cairn-everysec; do
        [[ -n ${SERVER_DIR[$s]:-} ]] && { echo "${SERVER_DIR[$s]}"; return; }
    done
    echo "$WORK"
}

# --------------------------------------------------------------------------
# report helpers

# med ARRAY_NAME KEY: the median of the space-separated list ARRAY[KEY]
med() {
    local -n arr=$1
    local -a v
    read -r -a v <<<"${arr[$2]:-}"
    median "${v[@]}"
}

# fmt_int N: a number rounded to an integer, with thousands separators; a
# non-number unchanged
fmt_int() {
    if [[ $1 =~ ^[0-9]+(\.[0-9]*)?$ ]]; then
        printf '%.0f\n' "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'
    else
        printf '%s' "$1"
    fi
}

# md_row WIDTH1 WIDTH CELL...: a markdown row, first cell left-aligned in
# WIDTH1 columns, the others right-aligned in WIDTH columns
md_row() {
    local w1=$1 w=$2 out c
    shift 2
    out="| $(printf "%-${w1}s" "$1") |"
    shift
    for c in "$@"; do out+=" $(printf "%${w}s" "$c") |"; done
    say "$out"
}

# md_sep NCELLS: the separator row (first column left, the others right)
md_sep() {
    local out="|---|" i
    for ((i = 1; i < $1; i++)); do out+="---:|"; done
    say "$out"
}

# estimate_seconds: prints "MEASUREMENTS_PER_ROUND SECONDS", the section's
# expected run time: per measurement the load time plus what the tools add
# (memcaslap ~1.4 s, cairn-load ~0.15 s, ~0.4 s with --preload), per round the
# fsync probe, ~1 s per server start, and for the memory workload ~5 s plus
# ~15 s per million items (load, check, checkpoint settling)
estimate_seconds() {
    local n=0 ms=0 wl k
    for wl in "${WL_IDS[@]}"; do
        k=$(wl_servers "$wl" | wc -l)
        n=$((n + k))
        case $wl in
        *_slap) ms=$((ms + k * 1400)) ;;
        *get_load) ms=$((ms + k * 400)) ;;
        *) ms=$((ms + k * 150)) ;;
        esac
    done
    local per_round=$((n * BENCH_SECONDS + ms / 1000 + PROBE_SECONDS))
    local mem=0
    ((BENCH_ITEMS > 0)) && mem=$((5 + BENCH_ITEMS * 15 / 1000000))
    echo "$n $((BENCH_ROUNDS * per_round + mem + ${#SERVERS[@]}))"
}

# settle_checkpoint NAME: poll "stats persistence" of cairn server NAME (every
# 0.5 s, at most 120 s) until the checkpoint has caught up with the WAL
# (checkpoint_lsn == wal_lsn) and the WAL's size has stopped changing, or
# nothing has moved for 8 s. Prints "seconds state wal_lsn checkpoint_lsn
# wal_bytes checkpoint_bytes data_dir" (state: caught-up, stalled, timeout).
settle_checkpoint() {
    local port=${SERVER_PORT[$1]} i st prev="" same=0 state=timeout
    local wal="?" ck="?" wb="?" cb="?" dd="?"
    local t0=$SECONDS
    for ((i = 0; i < 240; i++)); do
        st=$(stats_group "$port" persistence) || { sleep 0.5; continue; }
        wal=$(awk '$1 == "wal_lsn" {print $2}' <<<"$st")
        ck=$(awk '$1 == "checkpoint_lsn" {print $2}' <<<"$st")
        wb=$(awk '$1 == "wal_bytes" {print $2}' <<<"$st")
        cb=$(awk '$1 == "checkpoint_bytes" {print $2}' <<<"$st")
        dd=$(awk '$1 == "data_dir" {print $2}' <<<"$st")
        if [[ "$wal $ck $wb $cb" == "$prev" ]]; then same=$((same + 1)); else same=0; fi
        prev="$wal $ck $wb $cb"
        if [[ -n $wal && $wal == "$ck" ]] && ((same >= 2)); then
            state=caught-up
            break
        fi
        if ((same >= 16)); then
            state=stalled
            break
        fi
        sleep 0.5
    done
    echo "$((SECONDS - t0)) $state ${wal:-?} ${ck:-?} ${wb:-?} ${cb:-?} ${dd:-?}"
}

memcached_section() {
    declare -A R_OPS=() R_P50=() R_P99=() PROBE=()
    local n_meas est
    read -r n_meas est <<<"$(estimate_seconds)"

    say "== cairn vs memcached and Redis: $BENCH_ROUNDS rounds x ${BENCH_SECONDS}s per measurement," \
        "$n_meas measurements per round"
    say "   estimated time: about $(awk -v s="$est" 'BEGIN {printf "%.1f", s / 60}') min"
    say "   servers:   ${SERVERS[*]}"
    say "   memcached: $MEMCACHED_BIN ($("$MEMCACHED_BIN" -V 2>/dev/null || echo '?'))"
    say "   cairn:     $CAIRN_BIN${CAIRN_ARGS:+ (extra args: $CAIRN_ARGS)}"
    if ((BENCH_REDIS)); then
        say "   redis:     $(command -v "$REDIS_BIN") ($("$REDIS_BIN" --version 2>/dev/null | awk '{print $3}' || echo '?'))${REDIS_ARGS:+ (extra args: $REDIS_ARGS)}"
    else
        say "   redis:     not run"
    fi
    say "   load:      $LOAD_BIN, $("$MEMCASLAP_BIN" -V 2>/dev/null | head -n 1 || echo memcaslap)"
    if ((${#PIN_SERVER[@]})); then
        say "   pinning:   servers on CPU(s) $BENCH_SERVER_CPUS, load tools on CPU(s) $BENCH_CLIENT_CPUS"
    else
        say "   pinning:   none"
    fi
    say "   outputs:   $OUT${BENCH_OUT:+ (kept)}"
    local load_start
    load_start=$(cut -d' ' -f1-3 /proc/loadavg)
    say "   load average before the section: $load_start (anything well above 0 means other work shares the CPUs)"
    local t_start=$SECONDS

    local server wl round res ops p50 p99 rot
    local -a wl_on=()
    for server in "${SERVERS[@]}"; do
        start_server "$server"
    done

    for ((round = 1; round <= BENCH_ROUNDS; round++)); do
        say "== round $round/$BENCH_ROUNDS"
        for wl in "${WL_IDS[@]}"; do
            if [[ $wl == always_50w ]]; then
                RUN_TAG=round$round
                res=$(run_fsync_probe "$(probe_dir)")
                if [[ $res == ERR ]]; then
                    FAILURES=$((FAILURES + 1))
                    say "   fsync probe: ERROR"
                else
                    read -r ops p50 p99 <<<"$res"
                    PROBE[ops]+="$ops "
                    say "   fsync probe: $ops fdatasync/s (1 KB appends, 1 writer)  p50 ${p50} us  p99 ${p99} us"
                fi
            fi
            # the servers in turn, starting one further each round, so no
            # server is always the first (or last) after a workload change
            mapfile -t wl_on < <(wl_servers "$wl")
            rot=$(((round - 1) % ${#wl_on[@]}))
            wl_on=("${wl_on[@]:rot}" "${wl_on[@]:0:rot}")
            for server in "${wl_on[@]}"; do
                if ! kill -0 "${SERVER_PID[$server]}" 2>/dev/null; then
                    say "error: $server is no longer running; its log:"
                    tail -n 10 "$OUT/$server.server.log" || true
                    exit 1
                fi
                RUN_TAG=round$round-$wl
                res=$(run_workload "$wl" "$server")
                if [[ $res == ERR ]]; then
                    FAILURES=$((FAILURES + 1))
                    say "   $wl $server: ERROR"
                    continue
                fi
                read -r ops p50 p99 <<<"$res"
                R_OPS[$wl.$server]+="$ops "
                R_P50[$wl.$server]+="$p50 "
                R_P99[$wl.$server]+="$p99 "
                if [[ $p50 == - ]]; then
                    say "   $wl $server: $ops ops/s"
                else
                    say "   $wl $server: $ops ops/s  p50 ${p50} us  p99 ${p99} us"
                fi
            done
        done
    done

    for server in "${SERVERS[@]}"; do
        stop_server "$server"
    done
    local t_load=$SECONDS

    # ----------------------------------------------------------------------
    # per-item memory, and cairn's disk footprint

    declare -A M_BEFORE=() M_AFTER=() M_BPI=() M_SETTLED=() M_ANON0=() M_ANON=() M_BPI_ANON=()
    local disk_state="" disk_lmdb="" disk_wal="" disk_nwal="" live_bytes=""
    if ((BENCH_ITEMS > 0)); then
        say "== memory: $BENCH_ITEMS items x 100 B on fresh servers (-m $SERVER_MEM_MB)"
        local pid before after misses check_log
        for server in memcached cairn-everysec; do
            start_server "$server"
            pid=${SERVER_PID[$server]}
            sleep 0.5
            before=$(rss_kb "$pid")
            M_ANON0[$server]=$(rss_kb "$pid" RssAnon)
            RUN_TAG=memory-load
            res=$(run_load "$server" -t 1 -c 4 -P 32 -d 100 -k "$BENCH_ITEMS" --preload -n 0 -q)
            after=$(rss_kb "$pid")
            M_ANON[$server]=$(rss_kb "$pid" RssAnon)
            # every item must still be there (no eviction): gets only, misses counted
            check_log=$OUT/memcheck-$server.log
            local -a check_cmd=("${PIN_CLIENT[@]}" "$LOAD_BIN" -s "127.0.0.1:${SERVER_PORT[$server]}" -t 1
                -c 4 -P 16 -d 100 -k "$BENCH_ITEMS" --ratio 1:0 -n 200000 -q)
            show_cmd "${check_cmd[@]}"
            misses=ERR
            if timeout 120 "${check_cmd[@]}" >"$check_log" 2>&1; then
                misses=$(metric misses "$(grep '^ops_per_sec=' "$check_log" | tail -n 1)")
            fi
            if [[ $res == ERR || $misses != 0 ]]; then
                say "   $server: load or check failed (misses=$misses); see $check_log"
                FAILURES=$((FAILURES + 1))
                stop_server "$server"
                continue
            fi
            M_BEFORE[$server]=$before
            M_AFTER[$server]=$after
            M_BPI[$server]=$(awk -v a="$after" -v b="$before" -v n="$BENCH_ITEMS" \
                'BEGIN {printf "%.1f", (a - b) * 1024 / n}')
            M_BPI_ANON[$server]=$(awk -v a="${M_ANON[$server]}" -v b="${M_ANON0[$server]}" -v n="$BENCH_ITEMS" \
                'BEGIN {printf "%.1f", (a - b) * 1024 / n}')
            say "   $server: VmRSS ${before} kB -> ${after} kB, ${M_BPI[$server]} bytes/item;" \
                "RssAnon ${M_ANON0[$server]} kB -> ${M_ANON[$server]} kB, ${M_BPI_ANON[$server]} bytes/item"
            if [[ $server == cairn-everysec ]] && ((!CAIRN_IS_MEMCACHED)); then
                local secs state wal ck wb cb dd ddir
                read -r secs state wal ck wb cb dd <<<"$(settle_checkpoint "$server")"
                M_SETTLED[$server]=$(rss_kb "$pid")
                say "   $server: checkpoint $state after ${secs}s: wal_lsn $wal, checkpoint_lsn $ck," \
                    "wal_bytes $wb, checkpoint_bytes $cb (stats persistence); VmRSS ${M_SETTLED[$server]} kB"
                if [[ $dd == "?" ]]; then
                    say "   $server: no stats persistence; disk footprint not measured"
                    FAILURES=$((FAILURES + 1))
                else
                    [[ $dd == /* ]] && ddir=$dd || ddir=${SERVER_DIR[$server]}/$dd
                    local -a wal_files=()
                    shopt -s nullglob
                    wal_files=("$ddir"/wal/*.log)
                    shopt -u nullglob
                    disk_state="$state after ${secs}s (wal_lsn $wal, checkpoint_lsn $ck)"
                    disk_lmdb=$(file_bytes "$ddir/lmdb/data.mdb")
                    disk_wal=$(file_bytes "${wal_files[@]}")
                    disk_nwal=${#wal_files[@]}
                    live_bytes=$((BENCH_ITEMS * (KEY_BYTES + 100)))
                    say "   $server: $ddir: lmdb/data.mdb $disk_lmdb bytes, wal/*.log $disk_wal bytes" \
                        "($disk_nwal files); live items $live_bytes bytes"
                    [[ $state == caught-up ]] ||
                        say "   warning: the checkpoint did not catch up with the WAL ($state)"
                fi
            fi
            stop_server "$server"
        done
    fi
    local t_end=$SECONDS

    # ----------------------------------------------------------------------
    # report

    local -a row hdr
    local rspec num den
    say ""
    say "== results: medians of $BENCH_ROUNDS rounds, ${BENCH_SECONDS}s each, server -t $BENCH_THREADS," \
        "$BENCH_CONNS connections (workload d: $BENCH_FSYNC_WRITERS); section took" \
        "$(((t_end - t_start) / 60)) min $(((t_end - t_start) % 60)) s" \
        "(throughput $(((t_load - t_start) / 60)) min $(((t_load - t_start) % 60)) s);" \
        "load average before/after: $load_start / $(cut -d' ' -f1-3 /proc/loadavg)"
    say ""
    say "Throughput (op/s) and ratios. Servers: memcached, mc-b = a second memcached (A/A);" \
        "eph / everysec / always = cairn --ephemeral / --fsync everysec / --fsync always;" \
        "redis-es / redis-al = redis-server AOF appendfsync everysec / always." \
        "Ratios: es = cairn everysec, al = cairn always, r-es / r-al = Redis."
    say ""
    hdr=(workload tool)
    for server in "${ALL_SERVERS[@]}"; do hdr+=("${SHORT[$server]}"); done
    for rspec in "${RATIOS[@]}"; do hdr+=("${rspec%%|*}"); done
    md_row 38 11 "${hdr[@]}"
    md_sep "${#hdr[@]}"
    declare -A MED=()
    for wl in "${WL_IDS[@]}"; do
        row=("${WL_TITLE[$wl]}" "${WL_TOOL[$wl]}")
        for server in "${ALL_SERVERS[@]}"; do
            MED[$wl.$server]=$(med R_OPS "$wl.$server")
            if [[ -z ${R_OPS[$wl.$server]:-} ]] && ! wl_servers "$wl" | grep -qx "$server"; then
                row+=("-")
            else
                row+=("$(fmt_int "${MED[$wl.$server]}")")
            fi
        done
        for rspec in "${RATIOS[@]}"; do
            IFS="|" read -r _ num den <<<"$rspec"
            row+=("$(ratio "${MED[$wl.$num]}" "${MED[$wl.$den]}")")
        done
        md_row 38 11 "${row[@]}"
    done
    local aa noisy=""
    for wl in "${WL_IDS[@]}"; do
        aa=$(ratio "${MED[$wl.memcached-b]}" "${MED[$wl.memcached]}")
        if [[ $aa != n/a ]] && awk -v r="$aa" 'BEGIN {exit !(r < 0.9 || r > 1.1)}'; then
            noisy+=" ${WL_TITLE[$wl]%%.*}/${WL_TOOL[$wl]} ($aa)"
        fi
    done
    if [[ -n $noisy ]]; then
        say ""
        say "warning: the A/A ratio (memcached against itself) is outside 0.90-1.10 on rows:$noisy;" \
            "differences of that size between servers are noise in this run"
    fi

    say ""
    say "Latency per request, cairn-load (send to reply), p50 / p99 in us:"
    say ""
    hdr=(workload)
    for server in "${ALL_SERVERS[@]}"; do hdr+=("${SHORT[$server]}"); done
    md_row 38 17 "${hdr[@]}"
    md_sep "${#hdr[@]}"
    for wl in "${WL_IDS[@]}"; do
        [[ ${WL_TOOL[$wl]} == cairn-load ]] || continue
        row=("${WL_TITLE[$wl]}")
        for server in "${ALL_SERVERS[@]}"; do
            if [[ -z ${R_P50[$wl.$server]:-} ]]; then
                row+=("-")
            else
                row+=("$(med R_P50 "$wl.$server") / $(med R_P99 "$wl.$server")")
            fi
        done
        md_row 38 17 "${row[@]}"
    done

    # targets
    local probe_med al_nw ral_nw
    probe_med=$(med PROBE ops)
    al_nw=${MED[always_50w.cairn-always]}
    ral_nw=${MED[always_50w.redis-always]}
    say ""
    say "Targets (cairn-load rows):"
    say ""
    md_row 70 40 target measured "met?"
    md_sep 3
    local label
    for wl in set_load pset_load get_load pget_load; do
        label="${WL_TITLE[$wl]#?. }"
        num=${MED[$wl.cairn-everysec]}
        den=${MED[$wl.cairn-ephemeral]}
        md_row 70 40 "cairn everysec / ephemeral >= 0.9: $label" \
            "$(fmt_int "$num") / $(fmt_int "$den") = $(ratio "$num" "$den")" \
            "$(verdict "$(ratio "$num" "$den")" ">=" 0.9)"
    done
    for wl in set_load pset_load get_load pget_load; do
        label="${WL_TITLE[$wl]#?. }"
        num=${MED[$wl.cairn-everysec]}
        den=${MED[$wl.memcached]}
        md_row 70 40 "cairn everysec / memcached: $label" \
            "$(fmt_int "$num") / $(fmt_int "$den") = $(ratio "$num" "$den")" "-"
    done
    md_row 70 40 "cairn always, $BENCH_FSYNC_WRITERS writers / single-writer fsync rate >= 20" \
        "$(fmt_int "$al_nw") / $(fmt_int "$probe_med") = $(ratio "$al_nw" "$probe_med")" \
        "$(verdict "$(ratio "$al_nw" "$probe_med")" ">=" 20)"
    num=${MED[pset_load.cairn-always]}
    den=${MED[pset_load.redis-always]}
    md_row 70 40 "cairn always / Redis appendfsync always: set 1 KB, 16 in flight" \
        "$(fmt_int "$num") / $(fmt_int "$den") = $(ratio "$num" "$den")" "-"
    say ""
    say "fsync probe: $(fmt_int "$probe_med") fsync/s single writer (pwrite 1 KB appended + fdatasync," \
        "${PROBE_SECONDS}s, median of $BENCH_ROUNDS rounds, on $(df -PT "$WORK" | awk 'NR == 2 {print $2 " " $1}'));" \
        "cairn always $BENCH_FSYNC_WRITERS writers: $(fmt_int "$al_nw") op/s = $(ratio "$al_nw" "$probe_med")x the fsync rate"
    say "fsync probe: $(fmt_int "$probe_med") fsync/s single writer;" \
        "redis-always $BENCH_FSYNC_WRITERS writers: $(fmt_int "$ral_nw") op/s = $(ratio "$ral_nw" "$probe_med")x the fsync rate"

    if ((BENCH_ITEMS > 0)); then
        say ""
        md_row 34 16 "memory ($BENCH_ITEMS x 100 B)" memcached "cairn everysec" "cairn/mc"
        md_sep 4
        md_row 34 16 "VmRSS before (kB)" "${M_BEFORE[memcached]:-n/a}" "${M_BEFORE[cairn-everysec]:-n/a}" "-"
        md_row 34 16 "VmRSS after the load (kB)" "${M_AFTER[memcached]:-n/a}" "${M_AFTER[cairn-everysec]:-n/a}" "-"
        md_row 34 16 "bytes per item" "${M_BPI[memcached]:-n/a}" "${M_BPI[cairn-everysec]:-n/a}" \
            "$(ratio "${M_BPI[cairn-everysec]:-x}" "${M_BPI[memcached]:-x}")"
        md_row 34 16 "bytes per item, RssAnon only" "${M_BPI_ANON[memcached]:-n/a}" \
            "${M_BPI_ANON[cairn-everysec]:-n/a}" \
            "$(ratio "${M_BPI_ANON[cairn-everysec]:-x}" "${M_BPI_ANON[memcached]:-x}")"
        md_row 34 16 "VmRSS, checkpoint settled (kB)" "-" "${M_SETTLED[cairn-everysec]:-n/a}" "-"
        say ""
        if [[ -n $live_bytes ]]; then
            say "Disk, cairn everysec after the load; checkpoint $disk_state:"
            say ""
            md_row 48 16 "disk ($BENCH_ITEMS x 100 B)" bytes "/ live bytes"
            md_sep 3
            md_row 48 16 "live items: $BENCH_ITEMS x ($KEY_BYTES B key + 100 B value)" \
                "$(fmt_int "$live_bytes")" "1.00"
            md_row 48 16 "LMDB checkpoint (lmdb/data.mdb)" "$(fmt_int "$disk_lmdb")" \
                "$(ratio "$disk_lmdb" "$live_bytes")"
            md_row 48 16 "WAL (wal/*.log; segment files: $disk_nwal)" "$(fmt_int "$disk_wal")" \
                "$(ratio "$disk_wal" "$live_bytes")"
            md_row 48 16 "total (LMDB + WAL)" "$(fmt_int "$((disk_lmdb + disk_wal))")" \
                "$(ratio "$((disk_lmdb + disk_wal))" "$live_bytes")"
        else
            say "Disk: not measured (see above)."
        fi
    fi
    say ""
    say "op/s ratio > 1 means the numerator is faster; latency is per request (send to reply), cairn-load only."
}

if ((RUN_MEMCACHED)); then
    memcached_section
fi

# --------------------------------------------------------------------------
# meta and binary protocols

# binary_served PORT: does the server on PORT answer a binary NOOP (24-byte
# request header, magic 0x80, opcode 0x0a) with a binary reply (magic 0x81,
# opcode 0x0a)? A server without the binary protocol answers ERROR, closes,
# or says nothing (the read is bounded by timeout).
binary_served() {
    local reply
    # shellcheck disable=SC2016 # $1 is expanded by the inner bash
    reply=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "\x80\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00" >&3
        head -c 24 <&3 | od -An -tx1' _ "$1" 2>/dev/null | tr -d ' \n') || true
    [[ $reply == 810a* ]]
}

protocols_section() {
    declare -A P_OPS=() P_P50=() P_P99=()
    local -a servers=(memcached cairn-ephemeral) rows=(get_p1 mg_p1 get_p16 mg_p16 bget_p16)
    declare -A TITLE=(
        [get_p1]="get (ASCII), 1 in flight" [mg_p1]="mg <key> v f (meta), 1 in flight"
        [get_p16]="get (ASCII), 16 in flight" [mg_p16]="mg <key> v f (meta), 16 in flight"
        [bget_p16]="binary GET, 16 in flight"
    )
    declare -A ARGS=(
        [get_p1]="--protocol memcache -P 1" [mg_p1]="--protocol meta -P 1"
        [get_p16]="--protocol memcache -P 16" [mg_p16]="--protocol meta -P 16"
        [bget_p16]="--protocol binary -P 16"
    )
    local n=$((${#rows[@]} * ${#servers[@]}))
    say ""
    say "== meta and binary protocols: $BENCH_ROUNDS rounds x ${BENCH_SECONDS}s per measurement," \
        "$n measurements per round (gets only, 100 B values, $BENCH_CONNS connections, preloaded)"
    say "   estimated time: about $(awk -v s="$((BENCH_ROUNDS * n * (BENCH_SECONDS + 1) + 4))" \
        'BEGIN {printf "%.1f", s / 60}') min"
    local server
    for server in "${servers[@]}"; do
        start_server "$server"
    done
    local cairn_binary=1
    if ! binary_served "${SERVER_PORT[cairn-ephemeral]}"; then
        cairn_binary=0
        say "   binary protocol not served by this cairn ($CAIRN_BIN: no binary reply to a binary NOOP);" \
            "its binary rows are skipped"
    fi
    binary_served "${SERVER_PORT[memcached]}" ||
        say "   warning: memcached did not answer a binary NOOP; its binary row will fail"

    local round row res ops p50 p99 rot
    local -a args on
    for ((round = 1; round <= BENCH_ROUNDS; round++)); do
        say "== protocols round $round/$BENCH_ROUNDS"
        for row in "${rows[@]}"; do
            on=("${servers[@]}")
            rot=$(((round - 1) % ${#on[@]}))
            on=("${on[@]:rot}" "${on[@]:0:rot}")
            for server in "${on[@]}"; do
                if [[ $row == bget_* && $server == cairn-* ]] && ((!cairn_binary)); then
                    continue
                fi
                if ! kill -0 "${SERVER_PID[$server]}" 2>/dev/null; then
                    say "error: $server is no longer running; its log:"
                    tail -n 10 "$OUT/$server.server.log" || true
                    exit 1
                fi
                read -r -a args <<<"${ARGS[$row]}"
                RUN_TAG=protocols-round$round-$row
                res=$(run_load "$server" -t 1 -T "$BENCH_SECONDS" -k "$BENCH_KEYS" -q -c "$BENCH_CONNS" \
                    --ratio 1:0 -d 100 --preload "${args[@]}")
                if [[ $res == ERR ]]; then
                    FAILURES=$((FAILURES + 1))
                    say "   $row $server: ERROR"
                    continue
                fi
                read -r ops p50 p99 <<<"$res"
                P_OPS[$row.$server]+="$ops "
                P_P50[$row.$server]+="$p50 "
                P_P99[$row.$server]+="$p99 "
                say "   $row $server: $ops ops/s  p50 ${p50} us  p99 ${p99} us"
            done
        done
    done
    for server in "${servers[@]}"; do
        stop_server "$server"
    done

    declare -A M=()
    say ""
    say "== protocols: medians of $BENCH_ROUNDS rounds, ${BENCH_SECONDS}s each, server -t $BENCH_THREADS," \
        "$BENCH_CONNS connections, gets of 100 B values (all hits)"
    say ""
    md_row 36 20 "gets (cairn-load)" "memcached op/s" "cairn eph op/s" "cairn/mc" "mc p50/p99 us" "cairn p50/p99 us"
    md_sep 6
    for row in "${rows[@]}"; do
        local -a cells=("${TITLE[$row]}")
        for server in "${servers[@]}"; do
            M[$row.$server]=$(med P_OPS "$row.$server")
            if [[ $row == bget_* && $server == cairn-* ]] && ((!cairn_binary)); then
                cells+=("not served")
            else
                cells+=("$(fmt_int "${M[$row.$server]}")")
            fi
        done
        cells+=("$(ratio "${M[$row.cairn-ephemeral]}" "${M[$row.memcached]}")")
        for server in "${servers[@]}"; do
            if [[ -z ${P_P50[$row.$server]:-} ]]; then
                cells+=("-")
            else
                cells+=("$(med P_P50 "$row.$server") / $(med P_P99 "$row.$server")")
            fi
        done
        md_row 36 20 "${cells[@]}"
    done
    say ""
    say "Targets:"
    say ""
    md_row 62 34 target measured "met?"
    md_sep 3
    local num den
    for n in 1 16; do
        num=${M[mg_p$n.cairn-ephemeral]}
        den=${M[get_p$n.cairn-ephemeral]}
        md_row 62 34 "cairn mg / cairn get >= 1.0, $n in flight" \
            "$(fmt_int "$num") / $(fmt_int "$den") = $(ratio "$num" "$den")" \
            "$(verdict "$(ratio "$num" "$den")" ">=" 1.0)"
    done
    den=${M[bget_p16.memcached]}
    if ((cairn_binary)); then
        num=${M[bget_p16.cairn-ephemeral]}
        md_row 62 34 "cairn binary get / memcached binary get >= 3, 16 in flight" \
            "$(fmt_int "$num") / $(fmt_int "$den") = $(ratio "$num" "$den")" \
            "$(verdict "$(ratio "$num" "$den")" ">=" 3)"
    else
        md_row 62 34 "cairn binary get / memcached binary get >= 3, 16 in flight" \
            "- / $(fmt_int "$den") (binary not served)" "pending"
    fi
    for n in 1 16; do
        num=${M[mg_p$n.memcached]}
        den=${M[get_p$n.memcached]}
        md_row 62 34 "for reference: memcached mg / memcached get, $n in flight" \
            "$(fmt_int "$num") / $(fmt_int "$den") = $(ratio "$num" "$den")" "-"
    done
}

if ((RUN_PROTOCOLS)); then
    protocols_section
fi

# --------------------------------------------------------------------------
# persistence, replication, failover (cairn only)

if ((${#CLUSTER_SECTIONS[@]})); then
    say ""
    cdir=$(dirname "$CAIRN_BIN")
    ctl=${CAIRNCTL_BIN:-$cdir/cairnctl}
    copt=()
    [[ -n $BENCH_OUT ]] && copt=(BENCH_OUT="$OUT/cluster")
    if ! env "${copt[@]}" CAIRN_BIN="$CAIRN_BIN" CAIRNCTL_BIN="$ctl" LOAD_BIN="$LOAD_BIN" \
        BENCH_SECONDS="$BENCH_SECONDS" BENCH_ROUNDS="$BENCH_ROUNDS" BENCH_THREADS="$BENCH_THREADS" \
        BENCH_CONNS="$BENCH_CONNS" BENCH_KEYS="$BENCH_KEYS" BENCH_PIN="$BENCH_PIN" \
        BENCH_FSYNC_WRITERS="$BENCH_FSYNC_WRITERS" \
        BENCH_SERVER_CPUS="$BENCH_SERVER_CPUS" BENCH_CLIENT_CPUS="$BENCH_CLIENT_CPUS" \
        "$ROOT/scripts/bench_cluster.sh" "${CLUSTER_SECTIONS[@]}"; then
        FAILURES=$((FAILURES + 1))
    fi
fi

if ((FAILURES > 0)); then
    say "FAILED: $FAILURES measurement(s) failed (see the errors above)"
    exit 1
fi
