#!/usr/bin/env bash
# bench.sh: benchmark cairn against memcached, side by side, in one run, and
# (sections persistence, replication, failover; run by scripts/bench_cluster.sh)
# cairn's persistence, replication and failover.
#
# Sections: BENCH_SECTIONS="memcached persistence replication failover" (the
# default, about 9 minutes; "all" is the same). The memcached section is:
#
# Both servers get the same flags (-t THREADS -m 1024 -c 1024 -U 0 -l 127.0.0.1),
# the same CPU set (taskset), and free ports on 127.0.0.1. The load tools run on
# the other CPU set. For each round, every workload is run on memcached and then
# on cairn; the table reports the median over the rounds and cairn/memcached.
# A per-item memory measurement (RSS growth for 1,000,000 100-byte items) is
# taken once per server on fresh instances. See docs/benchmarks.md.
#
# Environment (all optional):
#   BENCH_SECTIONS="memcached persistence replication failover"  what to run
#   BENCH_SECONDS=5        seconds per measurement
#   BENCH_ROUNDS=3         rounds (medians are over rounds)
#   BENCH_THREADS=2        server worker threads (-t), same for both servers
#   BENCH_CONNS=32         client connections per measurement
#   BENCH_KEYS=100000      key space of the throughput workloads
#   BENCH_ITEMS=1000000    items loaded by the memory workload (0 = skip it)
#   BENCH_SERVER_CPUS=0    taskset CPU list for the servers
#   BENCH_CLIENT_CPUS=1    taskset CPU list for the load tools
#   BENCH_PIN=1            0 = no CPU pinning
#   BENCH_OUT=DIR          keep raw outputs here (default: temp dir, removed)
#   BENCH_BIG_ITEMS=1000000  items of the restart, full-sync and failover tests
#   CAIRN_BIN=PATH         cairn binary (default build-release/cairn, built if
#                          missing; also cairnctl from the same directory)
#   CAIRN_ARGS="..."       extra arguments for cairn only, memcached section (e.g.
#                          --ephemeral; without it cairn persists, fsync everysec)
#   MEMCACHED_BIN=PATH     default /usr/bin/memcached
#   MEMCASLAP_BIN=PATH     default memcaslap
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
BENCH_KEYS=${BENCH_KEYS:-100000}
BENCH_ITEMS=${BENCH_ITEMS:-1000000}
BENCH_SERVER_CPUS=${BENCH_SERVER_CPUS:-0}
BENCH_CLIENT_CPUS=${BENCH_CLIENT_CPUS:-1}
BENCH_PIN=${BENCH_PIN:-1}
BENCH_OUT=${BENCH_OUT:-}
CAIRN_BIN=${CAIRN_BIN:-}
CAIRN_ARGS=${CAIRN_ARGS:-}
MEMCACHED_BIN=${MEMCACHED_BIN:-/usr/bin/memcached}
MEMCASLAP_BIN=${MEMCASLAP_BIN:-memcaslap}
LOAD_BIN=${LOAD_BIN:-}
SERVER_MEM_MB=1024
SERVER_MAXCONNS=1024

for v in BENCH_SECONDS BENCH_ROUNDS BENCH_THREADS BENCH_CONNS BENCH_KEYS BENCH_ITEMS; do
    if ! [[ ${!v} =~ ^[0-9]+$ ]]; then
        echo "bench.sh: $v must be a non-negative integer (got '${!v}')" >&2
        exit 2
    fi
done
for v in BENCH_SECONDS BENCH_ROUNDS BENCH_THREADS BENCH_CONNS BENCH_KEYS; do
    if ((${!v} < 1)); then
        echo "bench.sh: $v must be >= 1" >&2
        exit 2
    fi
done
read -r -a CAIRN_EXTRA <<<"$CAIRN_ARGS"
[[ $BENCH_SECTIONS == all ]] && BENCH_SECTIONS="memcached persistence replication failover"
RUN_MEMCACHED=0
CLUSTER_SECTIONS=()
for s in $BENCH_SECTIONS; do
    case $s in
    memcached) RUN_MEMCACHED=1 ;;
    persistence | replication | failover) CLUSTER_SECTIONS+=("$s") ;;
    *)
        echo "bench.sh: unknown section '$s' in BENCH_SECTIONS (memcached persistence replication failover, or all)" >&2
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
declare -A SERVER_PID=() SERVER_PORT=()
FAILURES=0
STARTS=0

stop_server() {
    local name=$1 pid
    pid=${SERVER_PID[$name]:-}
    [[ -n $pid ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        local i
        for ((i = 0; i < 50; i++)); do
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
if ((RUN_MEMCACHED)); then
    [[ -x $MEMCACHED_BIN ]] || { echo "bench.sh: memcached binary '$MEMCACHED_BIN' not found" >&2; exit 1; }
    command -v "$MEMCASLAP_BIN" >/dev/null 2>&1 ||
        { echo "bench.sh: memcaslap ('$MEMCASLAP_BIN') not found (apt-get install libmemcached-tools)" >&2; exit 1; }
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


pick_port() {
    local p i used
    for ((i = 0; i < 100; i++)); do
        # 10000-21999: cairn's default replication port (port + 10000) then
        # stays below the ephemeral range (32768-60999) of outgoing connections
        p=$((10000 + RANDOM % 12000))
        used=0
        for q in "${SERVER_PORT[@]}"; do [[ $q == "$p" ]] && used=1; done
        if ((!used)) && ! port_open "$p"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# wait_port PID PORT: bounded poll (10 s) until PORT accepts connections
wait_port() {
    local pid=$1 port=$2 i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        port_open "$port" && return 0
        sleep 0.1
    done
    return 1
}

# start_server NAME: starts memcached or cairn with the common flags
start_server() {
    local name=$1 bin attempt port pid
    local -a extra=()
    if [[ $name == memcached ]]; then
        bin=$MEMCACHED_BIN
    else
        bin=$CAIRN_BIN
        extra=("${CAIRN_EXTRA[@]}")
    fi
    # memcached refuses to run as root without -u
    if [[ $(basename "$bin") == memcached && $(id -u) == 0 ]]; then
        extra+=(-u root)
    fi
    for ((attempt = 0; attempt < 5; attempt++)); do
        port=$(pick_port) || { echo "bench.sh: no free port" >&2; return 1; }
        # every start gets a fresh, empty working directory, so a server that
        # persists to a relative path (cairn: ./cairn-data) starts empty and
        # nothing is written where the script was run from
        STARTS=$((STARTS + 1))
        local dir=$WORK/$name-$STARTS
        mkdir -p "$dir"
        local -a cmd=("${PIN_SERVER[@]}" "$bin" -p "$port" -l 127.0.0.1 -U 0
            -t "$BENCH_THREADS" -m "$SERVER_MEM_MB" -c "$SERVER_MAXCONNS" "${extra[@]}")
        show_cmd cd "$dir"
        show_cmd "${cmd[@]}"
        (cd "$dir" && exec "${cmd[@]}") >>"$OUT/$name.server.log" 2>&1 &
        pid=$!
        SERVER_PID[$name]=$pid
        SERVER_PORT[$name]=$port
        # cairn opens its client port before its replication port: make sure
        # it is still alive a moment after the client port answered
        if wait_port "$pid" "$port" && sleep 0.3 && kill -0 "$pid" 2>/dev/null; then
            return 0
        fi
        say "warning: $name did not come up on port $port; retrying"
        tail -n 5 "$OUT/$name.server.log" >&2 || true
        stop_server "$name"
    done
    echo "bench.sh: could not start $name" >&2
    return 1
}

rss_kb() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
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

run_load() {
    local server=$1 port=${SERVER_PORT[$1]} log line
    shift
    log=$OUT/$RUN_TAG-$server-cairn-load.log
    local -a cmd=("${PIN_CLIENT[@]}" "$LOAD_BIN" -s "127.0.0.1:$port" "$@")
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

# --------------------------------------------------------------------------
# workloads: id | title | tool | arguments

WL_IDS=(get_slap get_load set_slap set_load pget_load pset_load)
declare -A WL_TITLE=(
    [get_slap]="a. get 9:1, 100 B, 1 in flight"
    [get_load]="a. get 9:1, 100 B, 1 in flight"
    [set_slap]="b. set only, 1 KB, 1 in flight"
    [set_load]="b. set only, 1 KB, 1 in flight"
    [pget_load]="c. get 9:1, 100 B, 16 in flight"
    [pset_load]="c. set only, 1 KB, 16 in flight"
)
declare -A WL_TOOL=(
    [get_slap]=memcaslap [set_slap]=memcaslap
    [get_load]=cairn-load [set_load]=cairn-load [pget_load]=cairn-load [pset_load]=cairn-load
)
LOAD_COMMON=(-t 1 -c "$BENCH_CONNS" -T "$BENCH_SECONDS" -k "$BENCH_KEYS" -q)
declare -A WL_ARGS=(
    [get_load]="-P 1 --ratio 9:1 -d 100 --preload"
    [set_load]="-P 1 --ratio 0:1 -d 1024"
    [pget_load]="-P 16 --ratio 9:1 -d 100 --preload"
    [pset_load]="-P 16 --ratio 0:1 -d 1024"
)

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

memcached_section() {
declare -A R_OPS=() R_P50=() R_P99=()

say "== cairn vs memcached: $BENCH_ROUNDS rounds x ${BENCH_SECONDS}s per measurement"
say "   memcached: $MEMCACHED_BIN ($("$MEMCACHED_BIN" -V 2>/dev/null || echo '?'))"
say "   cairn:     $CAIRN_BIN${CAIRN_ARGS:+ (extra args: $CAIRN_ARGS)}"
say "   load:      $LOAD_BIN, $("$MEMCASLAP_BIN" -V 2>/dev/null | head -n 1 || echo memcaslap)"
if ((${#PIN_SERVER[@]})); then
    say "   pinning:   servers on CPU(s) $BENCH_SERVER_CPUS, load tools on CPU(s) $BENCH_CLIENT_CPUS"
else
    say "   pinning:   none"
fi
say "   outputs:   $OUT${BENCH_OUT:+ (kept)}"

start_server memcached
start_server cairn

for ((round = 1; round <= BENCH_ROUNDS; round++)); do
    say "== round $round/$BENCH_ROUNDS"
    for wl in "${WL_IDS[@]}"; do
        for server in memcached cairn; do
            if ! kill -0 "${SERVER_PID[$server]}" 2>/dev/null; then
                say "error: $server is no longer running"
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

stop_server memcached
stop_server cairn

# --------------------------------------------------------------------------
# per-item memory

declare -A M_BEFORE=() M_AFTER=() M_BPI=()
if ((BENCH_ITEMS > 0)); then
    say "== memory: $BENCH_ITEMS items x 100 B on fresh servers (-m $SERVER_MEM_MB)"
    for server in memcached cairn; do
        start_server "$server"
        pid=${SERVER_PID[$server]}
        sleep 0.5
        before=$(rss_kb "$pid")
        RUN_TAG=memory-load
        res=$(run_load "$server" -t 1 -c 4 -P 32 -d 100 -k "$BENCH_ITEMS" --preload -n 0 -q)
        after=$(rss_kb "$pid")
        # every item must still be there (no eviction): gets only, misses counted
        check_log=$OUT/memcheck-$server.log
        check_cmd=("${PIN_CLIENT[@]}" "$LOAD_BIN" -s "127.0.0.1:${SERVER_PORT[$server]}" -t 1 -c 4 -P 16
            -d 100 -k "$BENCH_ITEMS" --ratio 1:0 -n 200000 -q)
        show_cmd "${check_cmd[@]}"
        misses=ERR
        if timeout 120 "${check_cmd[@]}" >"$check_log" 2>&1; then
            misses=$(metric misses "$(grep '^ops_per_sec=' "$check_log" | tail -n 1)")
        fi
        stop_server "$server"
        if [[ $res == ERR || $misses != 0 ]]; then
            say "   $server: load or check failed (misses=$misses); see $check_log"
            FAILURES=$((FAILURES + 1))
            continue
        fi
        M_BEFORE[$server]=$before
        M_AFTER[$server]=$after
        M_BPI[$server]=$(awk -v a="$after" -v b="$before" -v n="$BENCH_ITEMS" \
            'BEGIN {printf "%.1f", (a - b) * 1024 / n}')
        say "   $server: VmRSS ${before} kB -> ${after} kB, ${M_BPI[$server]} bytes/item"
    done
fi

# --------------------------------------------------------------------------
# report



say ""
say "== results: medians of $BENCH_ROUNDS rounds, ${BENCH_SECONDS}s each, server -t $BENCH_THREADS," \
    "$BENCH_CONNS connections"
say ""
printf '| %-32s | %-10s | %14s | %14s | %11s | %17s | %17s |\n' \
    workload tool "memcached op/s" "cairn op/s" "cairn/mc" "p50 us mc/cairn" "p99 us mc/cairn"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..34})" "$(printf -- '-%.0s' {1..12})" \
    "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..13})" \
    "$(printf -- '-%.0s' {1..19})" "$(printf -- '-%.0s' {1..19})"
for wl in "${WL_IDS[@]}"; do
    read -r -a v <<<"${R_OPS[$wl.memcached]:-}"
    mo=$(median "${v[@]}")
    read -r -a v <<<"${R_OPS[$wl.cairn]:-}"
    co=$(median "${v[@]}")
    lat50=- lat99=-
    if [[ ${WL_TOOL[$wl]} == cairn-load ]]; then
        read -r -a v <<<"${R_P50[$wl.memcached]:-}"
        m50=$(median "${v[@]}")
        read -r -a v <<<"${R_P50[$wl.cairn]:-}"
        c50=$(median "${v[@]}")
        read -r -a v <<<"${R_P99[$wl.memcached]:-}"
        m99=$(median "${v[@]}")
        read -r -a v <<<"${R_P99[$wl.cairn]:-}"
        c99=$(median "${v[@]}")
        lat50="$m50 / $c50"
        lat99="$m99 / $c99"
    fi
    printf '| %-32s | %-10s | %14s | %14s | %11s | %17s | %17s |\n' \
        "${WL_TITLE[$wl]}" "${WL_TOOL[$wl]}" "$mo" "$co" "$(ratio "$co" "$mo")" "$lat50" "$lat99"
done
if ((BENCH_ITEMS > 0)); then
    say ""
    printf '| %-32s | %14s | %14s | %11s |\n' "memory ($BENCH_ITEMS x 100 B)" memcached cairn cairn/mc
    printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..34})" "$(printf -- '-%.0s' {1..16})" \
        "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..13})"
    printf '| %-32s | %14s | %14s | %11s |\n' "VmRSS before (kB)" \
        "${M_BEFORE[memcached]:-n/a}" "${M_BEFORE[cairn]:-n/a}" "-"
    printf '| %-32s | %14s | %14s | %11s |\n' "VmRSS after (kB)" \
        "${M_AFTER[memcached]:-n/a}" "${M_AFTER[cairn]:-n/a}" "-"
    printf '| %-32s | %14s | %14s | %11s |\n' "bytes per item" \
        "${M_BPI[memcached]:-n/a}" "${M_BPI[cairn]:-n/a}" \
        "$(ratio "${M_BPI[cairn]:-x}" "${M_BPI[memcached]:-x}")"
fi
say ""
say "op/s ratio > 1 means cairn is faster; latency is per request (send to reply), cairn-load only."
}

if ((RUN_MEMCACHED)); then
    memcached_section
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
        BENCH_SERVER_CPUS="$BENCH_SERVER_CPUS" BENCH_CLIENT_CPUS="$BENCH_CLIENT_CPUS" \
        "$ROOT/scripts/bench_cluster.sh" "${CLUSTER_SECTIONS[@]}"; then
        FAILURES=$((FAILURES + 1))
    fi
fi

if ((FAILURES > 0)); then
    say "FAILED: $FAILURES measurement(s) failed (see the errors above)"
    exit 1
fi
