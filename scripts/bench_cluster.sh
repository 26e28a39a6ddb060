#!/usr/bin/env bash
# bench_cluster.sh: cairn-only benchmarks of replication, failover and
# restart warm-up (the last against memcached's own warm restart).
# Normally run by scripts/bench.sh (BENCH_SECTIONS selects the sections); it
# can also be run on its own:
#
#   scripts/bench_cluster.sh [replication] [failover] [restart]
#
# (no arguments = all three; `persistence` is another name for `restart`:
# the per-write cost of persistence is bench.sh's memcached section). Every server runs on 127.0.0.1 on free ports,
# with data directories under a temp dir; an EXIT trap kills every process
# this script started, and every wait is bounded. See docs/benchmarks.md.
#
# Environment (all optional; the same names as scripts/bench.sh):
#   BENCH_SECONDS=5        seconds per throughput measurement
#   BENCH_ROUNDS=3         interleaved rounds (medians are over rounds)
#   BENCH_THREADS=2        server worker threads (-t)
#   BENCH_CONNS=32         client connections of the throughput measurements
#   BENCH_KEYS=100000      key space of the throughput measurements
#   BENCH_BIG_ITEMS=1000000  items of the restart, full-sync and failover tests
#   BENCH_LAG_SAMPLES=1000 replication-lag samples
#   BENCH_LAG_RATE=half    background load (sets/s) while lag is sampled; "half":
#                          half the rate the primary with two replicas reached
#   BENCH_SERVER_CPUS=0 BENCH_CLIENT_CPUS=1 BENCH_PIN=1   taskset pinning
#   BENCH_OUT=DIR          keep raw outputs and server logs here
#   CAIRN_BIN, CAIRNCTL_BIN, LOAD_BIN   binaries (default build-release/...)
# restart section only:
#   BENCH_HUGE_ITEMS=3000000 BENCH_HUGE_SIZE=200 BENCH_HUGE_MEM_MB=4096
#                          the large kill -9 restart (items, value bytes, -m)
#   BENCH_RESTART_CPUS=    CPUs of the restarted servers (taskset -c LIST);
#                          empty = no pinning, so a warm-up loader thread can
#                          use every core (the probe and load tool run anywhere)
#   BENCH_RESTART_BURST=1  seconds of sets (cairn-load) just before each kill -9
#   BENCH_RESTART_GET_RATE=5000  gets/s of the warm-up probe (one in flight;
#                          0 = back to back, which takes a core from the server)
#   MEMCACHED_BIN=/usr/bin/memcached  memcached for the -e warm restart
#                          comparison (skipped when missing); its memory file
#                          goes to BENCH_SHM_DIR (default /dev/shm, a tmpfs)
#   PYTHON=/usr/bin/python3  interpreter of scripts/restart_probe.py
# Exit status: 0 if every measurement succeeded, 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/bench_lib.sh
. "$ROOT/scripts/bench_lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-5}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_THREADS=${BENCH_THREADS:-2}
BENCH_CONNS=${BENCH_CONNS:-32}
BENCH_KEYS=${BENCH_KEYS:-100000}
BENCH_BIG_ITEMS=${BENCH_BIG_ITEMS:-1000000}
BENCH_LAG_SAMPLES=${BENCH_LAG_SAMPLES:-1000}
BENCH_LAG_RATE=${BENCH_LAG_RATE:-half}
BENCH_HUGE_ITEMS=${BENCH_HUGE_ITEMS:-3000000}
BENCH_HUGE_SIZE=${BENCH_HUGE_SIZE:-200}
BENCH_HUGE_MEM_MB=${BENCH_HUGE_MEM_MB:-4096}
BENCH_RESTART_CPUS=${BENCH_RESTART_CPUS:-}
BENCH_RESTART_BURST=${BENCH_RESTART_BURST:-1}
BENCH_RESTART_GET_RATE=${BENCH_RESTART_GET_RATE:-5000}
BENCH_SHM_DIR=${BENCH_SHM_DIR:-/dev/shm}
MEMCACHED_BIN=${MEMCACHED_BIN:-/usr/bin/memcached}
PYTHON=${PYTHON:-/usr/bin/python3}
FAILOVER_RATE=10000  # sets/s on the primary when it dies (failover section)
[[ $BENCH_LAG_RATE == half ]] || FAILOVER_RATE=$BENCH_LAG_RATE
BENCH_SERVER_CPUS=${BENCH_SERVER_CPUS:-0}
BENCH_CLIENT_CPUS=${BENCH_CLIENT_CPUS:-1}
BENCH_PIN=${BENCH_PIN:-1}
BENCH_OUT=${BENCH_OUT:-}
CAIRN_BIN=${CAIRN_BIN:-$ROOT/build-release/cairn}
CAIRNCTL_BIN=${CAIRNCTL_BIN:-$ROOT/build-release/cairnctl}
LOAD_BIN=${LOAD_BIN:-}
SERVER_MEM_MB=1024

for v in BENCH_SECONDS BENCH_ROUNDS BENCH_THREADS BENCH_CONNS BENCH_KEYS BENCH_BIG_ITEMS \
    BENCH_LAG_SAMPLES BENCH_LAG_RATE BENCH_HUGE_ITEMS BENCH_HUGE_SIZE BENCH_HUGE_MEM_MB \
    BENCH_RESTART_BURST; do
    [[ $v == BENCH_LAG_RATE && ${!v} == half ]] && continue
    if ! [[ ${!v} =~ ^[0-9]+$ ]] || ((${!v} < 1)); then
        echo "bench_cluster.sh: $v must be a positive integer (got '${!v}')" >&2
        exit 2
    fi
done
if ! [[ $BENCH_RESTART_GET_RATE =~ ^[0-9]+$ ]]; then
    echo "bench_cluster.sh: BENCH_RESTART_GET_RATE must be a number >= 0 (got '$BENCH_RESTART_GET_RATE')" >&2
    exit 2
fi

SECTIONS=("${@/#persistence/restart}")
((${#SECTIONS[@]})) || SECTIONS=(replication failover restart)
for s in "${SECTIONS[@]}"; do
    case $s in
    replication | failover | restart) ;;
    *)
        echo "bench_cluster.sh: unknown section '$s' (replication, failover, restart or persistence)" >&2
        exit 2
        ;;
    esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-benchc.XXXXXX")
if [[ -n $BENCH_OUT ]]; then
    mkdir -p "$BENCH_OUT"
    OUT=$(cd "$BENCH_OUT" && pwd)
else
    OUT=$WORK
fi
declare -A NODE_PID=() NODE_PORT=() NODE_RPORT=() NODE_DIR=()
declare -a BG_PIDS=()
SHM_WORK= # memcached's memory files (restart section), on a tmpfs
FAILURES=0

fail() {
    say "error: $*"
    FAILURES=$((FAILURES + 1))
}

kill_pid() { # kill_pid PID [SIG]: signal, wait at most 10 s, then SIGKILL
    local pid=$1 sig=${2:-TERM} i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    { wait "$pid"; } 2>/dev/null || true
}

cleanup() {
    local n p
    for p in "${BG_PIDS[@]}"; do kill_pid "$p"; done
    for n in "${!NODE_PID[@]}"; do kill_pid "${NODE_PID[$n]}" KILL; done
    [[ -n $SHM_WORK ]] && rm -rf "$SHM_WORK"
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PIN_SERVER=()
PIN_CLIENT=()
if [[ $BENCH_PIN == 1 ]] && command -v taskset >/dev/null 2>&1 &&
    taskset -c "$BENCH_SERVER_CPUS" true 2>/dev/null && taskset -c "$BENCH_CLIENT_CPUS" true 2>/dev/null; then
    PIN_SERVER=(taskset -c "$BENCH_SERVER_CPUS")
    PIN_CLIENT=(taskset -c "$BENCH_CLIENT_CPUS")
fi

[[ -x $CAIRN_BIN ]] || { echo "bench_cluster.sh: cairn binary '$CAIRN_BIN' not found (build build-release first)" >&2; exit 1; }
[[ -x $CAIRNCTL_BIN ]] || { echo "bench_cluster.sh: cairnctl binary '$CAIRNCTL_BIN' not found" >&2; exit 1; }
if [[ -z $LOAD_BIN ]]; then
    src=$ROOT/tests/load/cairn-load.c
    if [[ -x $ROOT/build-release/cairn-load && ! $src -nt $ROOT/build-release/cairn-load ]]; then
        LOAD_BIN=$ROOT/build-release/cairn-load
    else
        LOAD_BIN=$WORK/cairn-load
        "${CC:-cc}" -std=c11 -D_GNU_SOURCE -O2 -pthread "$src" -o "$LOAD_BIN"
    fi
fi
command -v python3 >/dev/null || { echo "bench_cluster.sh: python3 is needed for the probes" >&2; exit 1; }

# --------------------------------------------------------------------------
# probe helper (memcache text protocol over a plain socket; all waits bounded)

PROBE=$WORK/probe.py
cat >"$PROBE" <<'EOF'
import os, socket, sys, time

def conn(port, timeout=1.0):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def until(s, ends):
    buf = b""
    while not any(buf.endswith(e) for e in ends):
        d = s.recv(65536)
        if not d:
            raise ConnectionError("closed")
        buf += d
    return buf

def stats(port, group):
    s = conn(port)
    try:
        s.sendall(b"stats %s\r\n" % group.encode())
        out = {}
        for line in until(s, [b"END\r\n"]).decode().split("\r\n"):
            f = line.split(" ", 2)
            if len(f) == 3 and f[0] == "STAT":
                out[f[1]] = f[2]
        return out
    finally:
        s.close()

def ms_since(t0):
    return (time.time_ns() - int(t0)) / 1e6

def deadline(timeout):
    return time.monotonic() + float(timeout)

cmd, a = sys.argv[1], sys.argv[2:]
if cmd == "stat":  # stat PORT GROUP NAME...
    st = stats(a[0], a[1])
    print(" ".join(st.get(n, "") for n in a[2:]))
elif cmd == "wait-ge":  # wait-ge PORT GROUP NAME VALUE T0_NS TIMEOUT
    port, group, name, want, t0, end = a[0], a[1], a[2], int(a[3]), a[4], deadline(a[5])
    while time.monotonic() < end:
        try:
            if int(stats(port, group).get(name, "-1")) >= want:
                print("%.1f" % ms_since(t0))
                sys.exit(0)
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    sys.exit(1)
elif cmd == "wait-lsn":  # wait-lsn PRIMARY_PORT REPLICA_PORT T0_NS TIMEOUT: replica lsn == primary lsn
    p, r, t0, end = a[0], a[1], a[2], deadline(a[3])
    while time.monotonic() < end:
        try:
            pl = int(stats(p, "replication")["lsn"])
            rl = int(stats(r, "replication")["lsn"])
            if pl > 0 and rl == pl:
                print("%.1f %d" % (ms_since(t0), pl))
                sys.exit(0)
        except (OSError, KeyError, ValueError):
            pass
        time.sleep(0.005)
    sys.exit(1)
elif cmd == "wait-ckpt":  # wait-ckpt PORT T0_NS TIMEOUT: the checkpoint holds every logged change
    port, t0, end = a[0], a[1], deadline(a[2])
    while time.monotonic() < end:
        try:
            st = stats(port, "persistence")
            if int(st["checkpoint_lsn"]) >= int(st["wal_lsn"]):
                print("%.1f" % ms_since(t0))
                sys.exit(0)
        except (OSError, KeyError, ValueError):
            pass
        time.sleep(0.05)
    sys.exit(1)
elif cmd == "first-write":  # first-write PORT T0_NS TIMEOUT: first STORED
    port, t0, end = a[0], a[1], deadline(a[2])
    tries = 0
    while time.monotonic() < end:
        tries += 1
        try:
            s = conn(port, 0.5)
            s.sendall(b"set failover:probe 0 0 2\r\nok\r\n")
            r = until(s, [b"\r\n"])
            s.close()
            if r == b"STORED\r\n":
                print("%.1f %d" % (ms_since(t0), tries))
                sys.exit(0)
        except OSError:
            pass
        time.sleep(0.001)
    sys.exit(1)
elif cmd == "lag":  # lag PRIMARY REPLICA SAMPLES GAP_MS TIMEOUT_S
    # set a unique key on the primary; from its STORED, poll the replica with
    # get until the key is visible. Prints: samples p50_ms p99_ms max_ms
    # (and, from the send of the set: p50 p99).
    p, r, n, gap, t_end = a[0], a[1], int(a[2]), float(a[3]) / 1000, deadline(a[4])
    sp, sr = conn(p, 5), conn(r, 5)
    acked, sent = [], []
    tag = "%x" % (time.time_ns() & 0xffffffff)
    for i in range(n):
        if time.monotonic() > t_end:
            break
        key = ("lag:%s:%d" % (tag, i)).encode()
        t_send = time.perf_counter()
        sp.sendall(b"set " + key + b" 0 0 1\r\nx\r\n")
        if until(sp, [b"\r\n"]) != b"STORED\r\n":
            sys.exit("lag: set not STORED")
        t_ack = time.perf_counter()
        while True:
            sr.sendall(b"get " + key + b"\r\n")
            if until(sr, [b"END\r\n"]).startswith(b"VALUE"):
                break
            if time.monotonic() > t_end:
                sys.exit("lag: key never reached the replica")
        t_seen = time.perf_counter()
        acked.append((t_seen - t_ack) * 1e3)
        sent.append((t_seen - t_send) * 1e3)
        time.sleep(gap)
    def pct(v, q):
        v = sorted(v)
        return v[min(len(v) - 1, int(len(v) * q))]
    print("%d %.3f %.3f %.3f %.3f %.3f" % (len(acked), pct(acked, .5), pct(acked, .99),
                                           max(acked), pct(sent, .5), pct(sent, .99)))
else:
    sys.exit("probe: unknown command " + cmd)
EOF
probe() { timeout 600 python3 "$PROBE" "$@"; }
now_ns() { date +%s%N; }

# --------------------------------------------------------------------------
# nodes

USED_PORTS=" "
# pick_port NAME: a free port P for node NAME such that P+1 (its replication
# port) is free too; sets NODE_PORT[NAME] and NODE_RPORT[NAME]
pick_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        # below the usual ephemeral range (32768-60999), where outgoing
        # connections could take the port between the check and the bind
        p=$((20000 + RANDOM % 12000))
        [[ $USED_PORTS == *" $p "* || $USED_PORTS == *" $((p + 1)) "* ]] && continue
        if ! port_open "$p" && ! port_open $((p + 1)); then
            USED_PORTS+="$p $((p + 1)) "
            NODE_PORT[$1]=$p
            NODE_RPORT[$1]=$((p + 1))
            return 0
        fi
    done
    echo "bench_cluster.sh: no free port" >&2
    return 1
}

# node_new NAME [cairn args...]: allocate ports and a data dir, then start it
node_new() {
    local name=$1 attempt
    shift
    NODE_DIR[$name]=$WORK/data-$name
    for ((attempt = 0; attempt < 3; attempt++)); do
        pick_port "$name"
        node_start "$name" "$@" && return 0
        node_stop "$name" KILL
        rm -rf "${NODE_DIR[$name]:?}"
        say "warning: node $name did not start on port ${NODE_PORT[$name]}; retrying on other ports"
    done
    return 1
}

# Nodes named here run on the load tools' CPUs (replicas of the replication
# section: the primary keeps its core to itself, as on separate machines).
declare -A NODE_ON_CLIENT_CPUS=()
# Nodes named in NODE_CPUS run on that taskset CPU list instead ("" = not
# pinned); NODE_MEM overrides a node's -m (restart section).
declare -A NODE_CPUS=() NODE_MEM=()

# node_cmd NAME [extra args]: the command line of node NAME (into array CMD)
node_cmd() {
    local name=$1
    shift
    local -a pin=("${PIN_SERVER[@]}")
    [[ -n ${NODE_ON_CLIENT_CPUS[$name]:-} ]] && pin=("${PIN_CLIENT[@]}")
    if [[ -n ${NODE_CPUS[$name]+set} ]]; then
        pin=()
        [[ -n ${NODE_CPUS[$name]} ]] && pin=(taskset -c "${NODE_CPUS[$name]}")
    fi
    CMD=("${pin[@]}" "$CAIRN_BIN" -p "${NODE_PORT[$name]}" -l 127.0.0.1 -U 0
        -t "$BENCH_THREADS" -m "${NODE_MEM[$name]:-$SERVER_MEM_MB}" -c 1024 --repl-port "${NODE_RPORT[$name]}"
        --node-id "$name" --data-dir "${NODE_DIR[$name]}" "$@")
}

# node_start NAME [args]: start (in the background) without waiting
node_spawn() {
    local name=$1
    shift
    node_cmd "$name" "$@"
    show_cmd "${CMD[@]}"
    "${CMD[@]}" >>"$OUT/node-$name.log" 2>&1 &
    NODE_PID[$name]=$!
}

node_start() {
    local name=$1 i
    node_spawn "$@"
    for ((i = 0; i < 300; i++)); do
        kill -0 "${NODE_PID[$name]}" 2>/dev/null || break
        port_open "${NODE_PORT[$name]}" && return 0
        sleep 0.1
    done
    tail -n 5 "$OUT/node-$name.log" >&2 || true
    echo "bench_cluster.sh: node $name did not come up" >&2
    return 1
}

node_stop() { # node_stop NAME [SIG]
    local name=$1 sig=${2:-TERM}
    [[ -n ${NODE_PID[$name]:-} ]] || return 0
    kill_pid "${NODE_PID[$name]}" "$sig"
    unset "NODE_PID[$name]"
}

node_rm() {
    node_stop "$1" KILL
    rm -rf "${NODE_DIR[$1]:?}"
}

stat_of() { # stat_of NODE GROUP NAME...: the values, space-separated
    local n=$1 g=$2
    shift 2
    probe stat "${NODE_PORT[$n]}" "$g" "$@"
}

# load NAME LOGTAG cairn-load args...: runs cairn-load on the client CPU; prints
# its -q line (or ERR); the raw output goes to $OUT/LOGTAG.log
load() {
    local name=$1 tag=$2 line
    shift 2
    local -a cmd=("${PIN_CLIENT[@]}" "$LOAD_BIN" -s "127.0.0.1:${NODE_PORT[$name]}" "$@")
    show_cmd "${cmd[@]}" >&2
    if timeout 900 "${cmd[@]}" >"$OUT/$tag.log" 2>&1 &&
        line=$(grep '^ops_per_sec=' "$OUT/$tag.log" | tail -n 1) && [[ -n $line ]]; then
        echo "$line"
    else
        tail -n 5 "$OUT/$tag.log" >&2 || true
        echo ERR
    fi
}


# load_big NAME: preload BENCH_BIG_ITEMS x 100 B; prints items/s of the load
load_big() {
    local res
    res=$(load "$1" "bigload-$1-$RANDOM" -t 1 -c 4 -P 32 -d 100 -k "$BENCH_BIG_ITEMS" --preload -n 0 -q)
    [[ $res != ERR ]] || return 1
    metric preload_ops_per_sec "$res"
}

# check_all NAME TAG: gets of random keys of the big key space must all hit
check_all() {
    local res
    res=$(load "$1" "check-$2" -t 1 -c 4 -P 16 -d 100 -k "$BENCH_BIG_ITEMS" --ratio 1:0 -n 100000 -q)
    [[ $res != ERR && $(metric misses "$res") == 0 ]]
}

REPORT=()
row() { REPORT+=("$(printf '| %s | %s | %s | %s |' "$1" "$2" "$3" "$4")"); }

MB_PER_ITEM=$(awk -v n="$BENCH_BIG_ITEMS" 'BEGIN {print n * 112 / 1e6}') # 12 B key + 100 B value

# --------------------------------------------------------------------------
# replication

# settle NODE...: wait until each node's checkpoint holds its whole log
settle() {
    local n
    for n in "$@"; do
        probe wait-ckpt "${NODE_PORT[$n]}" "$(now_ns)" 60 >/dev/null ||
            fail "node $n: checkpoint did not catch up with the log within 60 s"
    done
}

section_replication() {
    local r res t0 out
    say "== replication"

    # a. set throughput: primary with two replicas (on the load tools' CPUs)
    # vs the same primary alone
    NODE_ON_CLIENT_CPUS[rrep1]=1
    NODE_ON_CLIENT_CPUS[rrep2]=1
    node_new ralone
    node_new rprim
    node_new rrep1 --replica-of "127.0.0.1:${NODE_RPORT[rprim]}"
    node_new rrep2 --replica-of "127.0.0.1:${NODE_RPORT[rprim]}"
    if ! probe wait-ge "${NODE_PORT[rprim]}" replication connected_replicas 2 "$(now_ns)" 30 >/dev/null; then
        fail "replication: replicas did not attach"
        return
    fi
    local -A ops=()
    local mode
    for ((r = 1; r <= BENCH_ROUNDS; r++)); do
        for mode in ralone rprim; do
            res=$(load "$mode" "repl-set-$mode-$r" -t 1 -c "$BENCH_CONNS" -T "$BENCH_SECONDS" \
                -k "$BENCH_KEYS" -q -P 1 --ratio 0:1 -d 1024)
            # The replicas share the load tool's CPU: let them catch up before
            # the next run, or their catching up slows the load tool during
            # the lone primary's run.  And let every node of this run fold
            # its log into its checkpoint (within 5 s), or that fold runs
            # during the next run, on its CPUs.
            if [[ $mode == rprim ]]; then
                probe wait-lsn "${NODE_PORT[rprim]}" "${NODE_PORT[rrep1]}" "$(now_ns)" 60 >/dev/null ||
                    fail "replication: replica 1 did not catch up after a run"
                probe wait-lsn "${NODE_PORT[rprim]}" "${NODE_PORT[rrep2]}" "$(now_ns)" 60 >/dev/null ||
                    fail "replication: replica 2 did not catch up after a run"
                settle rprim rrep1 rrep2
            else
                settle ralone
            fi
            if [[ $res == ERR ]]; then fail "replication: set load on $mode failed"; continue; fi
            ops[$mode]+="$(metric ops_per_sec "$res") "
            say "   round $r $mode: $(metric ops_per_sec "$res") sets/s"
        done
    done
    local alone prim
    read -r -a v <<<"${ops[ralone]:-}"; alone=$(median "${v[@]}")
    read -r -a v <<<"${ops[rprim]:-}"; prim=$(median "${v[@]}")
    node_rm ralone
    if out=$(probe wait-lsn "${NODE_PORT[rprim]}" "${NODE_PORT[rrep2]}" "$(now_ns)" 60); then
        say "   replicas caught up after the load (lsn $(awk '{print $2}' <<<"$out"))"
    else
        fail "replication: replica 2 did not catch up within 60 s"
    fi
    row "set-only 1 KB, $BENCH_CONNS conns x 1 in flight: primary + 2 replicas / primary alone" \
        "$prim / $alone sets/s = $(ratio "$prim" "$alone")" ">= 0.8" "$(verdict "$(ratio "$prim" "$alone")" ">=" 0.8)"

    # b. replication lag under a steady load (by default half the rate the
    # primary with two replicas reached in a.)
    local lagsecs=$((BENCH_LAG_SAMPLES * 2 / 1000 + 20)) lpid lag_rate=$BENCH_LAG_RATE
    if [[ $lag_rate == half ]]; then
        lag_rate=$(awk -v p="${prim:-0}" 'BEGIN {r = int(p / 2); print (r > 0 ? r : 10000)}')
    fi
    local -a lcmd=("${PIN_CLIENT[@]}" "$LOAD_BIN" -s "127.0.0.1:${NODE_PORT[rprim]}" -t 1 -c 32 -P 1
        --ratio 0:1 -d 100 -k "$BENCH_KEYS" -T "$lagsecs" --rate "$lag_rate" -q)
    show_cmd "${lcmd[@]}"
    "${lcmd[@]}" >"$OUT/lag-load.log" 2>&1 &
    lpid=$!
    BG_PIDS+=("$lpid")
    sleep 1
    show_cmd python3 probe.py lag "${NODE_PORT[rprim]}" "${NODE_PORT[rrep1]}" "$BENCH_LAG_SAMPLES" 1 "$lagsecs"
    if out=$(probe lag "${NODE_PORT[rprim]}" "${NODE_PORT[rrep1]}" "$BENCH_LAG_SAMPLES" 1 "$lagsecs"); then
        read -r n l50 l99 lmax s50 s99 <<<"$out"
        say "   lag: $n samples, from STORED: p50 $l50 ms, p99 $l99 ms, max $lmax ms; from send of the set: p50 $s50 ms, p99 $s99 ms"
        row "replication lag (STORED on primary to visible on replica), $n samples, ${lag_rate} sets/s background" \
            "p50 $l50 ms, p99 $l99 ms, max $lmax ms" "-" "-"
    else
        fail "replication: lag probe failed"
    fi
    kill_pid "$lpid" INT
    res=$(grep '^ops_per_sec=' "$OUT/lag-load.log" || true)
    say "   background load: ${res:-<no summary>}"
    node_rm rrep1
    node_rm rrep2
    node_rm rprim

    # c. full sync of BENCH_BIG_ITEMS x 100 B from a checkpoint (WAL trimmed)
    node_new fprim --wal-segment-size 1m --wal-backlog 0
    local lrate
    lrate=$(load_big fprim) || { fail "replication: load of $BENCH_BIG_ITEMS items failed"; return; }
    # the whole log folded into the checkpoint, so the replica gets it from
    # the snapshot (only the open segment stays in the WAL: backlog 0)
    settle fprim
    local wal ck
    read -r wal ck <<<"$(stat_of fprim persistence wal_lsn checkpoint_lsn)"
    say "   primary: wal_lsn $wal, checkpoint_lsn $ck, wal_bytes $(stat_of fprim persistence wal_bytes)," \
        "checkpoint_bytes $(stat_of fprim persistence checkpoint_bytes)"
    [[ -n $ck && $ck -gt 0 ]] || fail "replication: nothing was checkpointed"
    pick_port fsync
    NODE_DIR[fsync]=$WORK/data-fsync
    t0=$(now_ns)
    node_spawn fsync --replica-of "127.0.0.1:${NODE_RPORT[fprim]}"
    if out=$(probe wait-lsn "${NODE_PORT[fprim]}" "${NODE_PORT[fsync]}" "$t0" 300); then
        local ms bytes full
        ms=$(awk '{print $1}' <<<"$out")
        bytes=$(stat_of fsync replication bytes_received)
        full=$(stat_of fprim replication full_syncs) # counted by the primary
        local ips mbs wmbs
        ips=$(awk -v n="$BENCH_BIG_ITEMS" -v ms="$ms" 'BEGIN {printf "%.0f", n / (ms / 1000)}')
        mbs=$(awk -v b="$MB_PER_ITEM" -v ms="$ms" 'BEGIN {printf "%.1f", b / (ms / 1000)}')
        wmbs=$(awk -v b="$bytes" -v ms="$ms" 'BEGIN {printf "%.1f", b / 1e6 / (ms / 1000)}')
        say "   full sync: ${ms} ms from exec to lsn equal; $ips items/s, $mbs MB/s of key+value, $wmbs MB/s on the wire ($bytes bytes received); primary full_syncs=$full"
        [[ $full -ge 1 ]] || fail "replication: the replica did not do a full sync (full_syncs=$full)"
        check_all fsync fullsync || fail "replication: gets on the fully synced replica missed"
        row "full sync of $BENCH_BIG_ITEMS x 100 B (checkpoint, WAL trimmed): replica exec to lsn equal" \
            "$(printf '%.0f ms: %s items/s, %s MB/s key+value (%s MB/s wire)' "$ms" "$ips" "$mbs" "$wmbs")" "-" "-"
    else
        fail "replication: full sync did not finish within 300 s"
    fi
    node_rm fsync
    node_rm fprim
}

# --------------------------------------------------------------------------
# failover

section_failover() {
    local t0 out ms
    say "== failover"
    node_new fa
    node_new fb --replica-of "127.0.0.1:${NODE_RPORT[fa]}"
    node_new fc --replica-of "127.0.0.1:${NODE_RPORT[fa]}"
    local lrate
    lrate=$(load_big fa) || { fail "failover: load of $BENCH_BIG_ITEMS items failed"; return; }
    probe wait-lsn "${NODE_PORT[fa]}" "${NODE_PORT[fb]}" "$(now_ns)" 120 >/dev/null &&
        probe wait-lsn "${NODE_PORT[fa]}" "${NODE_PORT[fc]}" "$(now_ns)" 120 >/dev/null ||
        { fail "failover: replicas did not catch up"; return; }
    # a steady write load runs on the primary when it dies (same values as the
    # preload, so every key still validates afterwards)
    local lpid
    local -a lcmd=("${PIN_CLIENT[@]}" "$LOAD_BIN" -s "127.0.0.1:${NODE_PORT[fa]}" -t 1 -c 4 -P 1
        --ratio 0:1 -d 100 -k "$BENCH_BIG_ITEMS" -T 60 --rate "$FAILOVER_RATE" -q)
    show_cmd "${lcmd[@]}"
    "${lcmd[@]}" >"$OUT/failover-load.log" 2>&1 &
    lpid=$!
    BG_PIDS+=("$lpid")
    sleep 2
    say "   lsn before the kill: fa $(stat_of fa replication lsn), fb $(stat_of fb replication lsn), fc $(stat_of fc replication lsn)"
    t0=$(now_ns)
    show_cmd kill -9 "${NODE_PID[fa]}"
    node_stop fa KILL
    show_cmd "$CAIRNCTL_BIN" -s "127.0.0.1:${NODE_PORT[fb]}" promote
    timeout 30 "$CAIRNCTL_BIN" -s "127.0.0.1:${NODE_PORT[fb]}" promote >"$OUT/promote.log" 2>&1 ||
        { fail "failover: promote failed: $(cat "$OUT/promote.log")"; }
    local wms
    if out=$(probe first-write "${NODE_PORT[fb]}" "$t0" 30); then
        wms=$(awk '{print $1}' <<<"$out")
        say "   kill -9 to first STORED on the promoted node: ${wms} ms ($(awk '{print $2}' <<<"$out") tries)"
        row "kill -9 primary to first acknowledged write on the promoted replica ($BENCH_BIG_ITEMS items)" "$(printf '%.0f ms' "$wms")" "-" "-"
    else
        fail "failover: no write acknowledged by the promoted node within 30 s"
    fi
    kill_pid "$lpid" INT
    # re-point the other replica
    local t1
    t1=$(now_ns)
    show_cmd "$CAIRNCTL_BIN" -s "127.0.0.1:${NODE_PORT[fc]}" replicaof "127.0.0.1:${NODE_RPORT[fb]}"
    timeout 30 "$CAIRNCTL_BIN" -s "127.0.0.1:${NODE_PORT[fc]}" replicaof "127.0.0.1:${NODE_RPORT[fb]}" \
        >"$OUT/replicaof.log" 2>&1 || fail "failover: replicaof failed: $(cat "$OUT/replicaof.log")"
    if out=$(probe wait-lsn "${NODE_PORT[fb]}" "${NODE_PORT[fc]}" "$t1" 300); then
        ms=$(awk '{print $1}' <<<"$out")
        local fs
        fs=$(stat_of fb replication full_syncs partial_syncs)
        say "   re-pointed replica: lsn equal ${ms} ms after replicaof (lsn $(awk '{print $2}' <<<"$out"));" \
            "new primary's full_syncs/partial_syncs now: $fs"
        row "re-pointed replica (cairnctl replicaof): command to lsn equal" \
            "$(printf '%.0f ms (new primary full/partial syncs so far: %s)' "$ms" "${fs/ //}")" "-" "-"
    else
        fail "failover: re-pointed replica did not catch up within 300 s"
    fi
    # the old primary rejoins as a replica of the new one
    t1=$(now_ns)
    node_spawn fa --replica-of "127.0.0.1:${NODE_RPORT[fb]}"
    if out=$(probe wait-lsn "${NODE_PORT[fb]}" "${NODE_PORT[fa]}" "$t1" 300); then
        ms=$(awk '{print $1}' <<<"$out")
        local rec
        rec=$(stat_of fa persistence recovered_items last_recovery_ms)
        local fs dc
        fs=$(stat_of fb replication full_syncs partial_syncs)
        dc=$(stat_of fa replication discarded_changes)
        say "   old primary rejoined: lsn equal ${ms} ms after exec (lsn $(awk '{print $2}' <<<"$out")); recovered_items/last_recovery_ms: $rec;" \
            "new primary's full_syncs/partial_syncs now: $fs; old primary discarded_changes=$dc"
        row "old primary restarted with --replica-of the new one: exec to lsn equal" \
            "$(printf '%.0f ms (new primary full/partial syncs so far: %s; discarded_changes %s)' "$ms" "${fs/ //}" "$dc")" "-" "-"
    else
        fail "failover: old primary did not catch up within 300 s"
    fi
    local n
    for n in fb fc fa; do
        check_all "$n" "failover-$n" || fail "failover: gets on $n missed after the failover"
    done
    node_rm fa
    node_rm fb
    node_rm fc
}

# --------------------------------------------------------------------------
# restart: how soon a restarted node answers correctly, how it serves while
# it warms up, and when it is fully warm; memcached's own warm restart (-e, a
# memory file on tmpfs) on the same data for comparison

RESTART_PROBE=$ROOT/scripts/restart_probe.py
RESTART_TARGET_FIRST=100 # ms, exec to the first correct get
RESTART_TARGET_P99=1     # ms, gets during warm-up
RESTART_TARGET_MAX=50    # ms, gets during warm-up
RESTART_TARGET_WARM=500  # ms, exec to warmup done, BENCH_BIG_ITEMS x 100 B
RESTART_TARGET_HUGE=2000 # ms, exec to warmup done, BENCH_HUGE_ITEMS x BENCH_HUGE_SIZE B

# epoch_ns: CLOCK_REALTIME in ns (the probe's time.time_ns()); restart_watch
# reads EPOCHREALTIME inline for t0, without the fork of a $(...)
epoch_ns() {
    local t=${EPOCHREALTIME//[.,]/}
    echo "${t}000"
}

# ms_from T_NS T0_NS: T - T0 in ms (one decimal), n/a when T is 0 or empty
ms_from() {
    [[ -n $1 && $1 != 0 ]] || { echo n/a; return; }
    awk -v d="$(($1 - $2))" 'BEGIN {printf "%.1f", d / 1e6}'
}

# us_to_ms US: microseconds as ms with three decimals
us_to_ms() { awk -v u="$1" 'BEGIN {if (u ~ /^[0-9.]+$/) printf "%.3f", u / 1000; else print "n/a"}'; }

# all_met VALUE OP TARGET [VALUE OP TARGET ...]: MISSED if one is missed,
# else n/a if one cannot be judged, else met
all_met() {
    local r=met v
    while (($# >= 3)); do
        v=$(verdict "$1" "$2" "$3")
        shift 3
        if [[ $v == MISSED ]]; then r=MISSED; elif [[ $v == n/a && $r == met ]]; then r=n/a; fi
    done
    echo "$r"
}

bg_forget() { # bg_forget PID: PID was waited for; cleanup must not signal it
    local p
    local -a keep=()
    for p in "${BG_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    BG_PIDS=("${keep[@]}")
}

# stop_timed NAME SIG LIMIT_S: signal node NAME, wait (polling) for its exit;
# sets STOP_MS; after LIMIT_S it is SIGKILLed and the status is 1
stop_timed() {
    local name=$1 sig=$2 limit=$3 pid=${NODE_PID[$1]} t0 i rc=0
    t0=$(epoch_ns)
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < limit * 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.005
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
        rc=1
    fi
    { wait "$pid"; } 2>/dev/null || true
    unset "NODE_PID[$name]"
    STOP_MS=$(ms_from "$(epoch_ns)" "$t0")
    return $rc
}

# mc_spawn NAME FILE: memcached with its item memory in FILE (-e), on node
# NAME's port, with bench.sh's memcached flags; not waited for
mc_spawn() {
    local name=$1 file=$2
    local -a pin=() asroot=()
    [[ -n $BENCH_RESTART_CPUS ]] && pin=(taskset -c "$BENCH_RESTART_CPUS")
    [[ $(id -u) == 0 ]] && asroot=(-u root) # memcached refuses root without -u
    CMD=("${pin[@]}" "$MEMCACHED_BIN" -p "${NODE_PORT[$name]}" -l 127.0.0.1 -U 0 -t "$BENCH_THREADS"
        -m "$SERVER_MEM_MB" -c 1024 -e "$file" -v "${asroot[@]}")
    show_cmd "${CMD[@]}"
    "${CMD[@]}" >>"$OUT/node-$name.log" 2>&1 &
    NODE_PID[$name]=$!
}

# check_items NAME TAG ITEMS SIZE: 100,000 gets of random keys all hit, with
# the right values (cairn-load validates every reply)
check_items() {
    local res
    res=$(load "$1" "check-$2" -t 1 -c 4 -P 16 -d "$4" -k "$3" --ratio 1:0 -n 100000 -q)
    [[ $res != ERR && $(metric misses "$res") == 0 ]]
}

# restart_watch NAME ITEMS SIZE STATS LIMIT_S SPAWN...: starts
# scripts/restart_probe.py on node NAME's port and waits until it is ready;
# then the clock starts (t0) and SPAWN... execs the server. Sets R_LINE (the
# probe's line) and R_ACCEPT, R_FIRST, R_DONE (ms after t0). Status: the probe's.
restart_watch() {
    local name=$1 items=$2 size=$3 stats=$4 limit=$5 tag i t0 pid rc=0
    shift 5
    tag=$name-$RANDOM
    R_LINE='' R_ACCEPT=n/a R_FIRST=n/a R_DONE=n/a
    local -a cmd=("$PYTHON" "$RESTART_PROBE" --port "${NODE_PORT[$name]}" --items "$items" --size "$size"
        --stats "$stats" --rate "$BENCH_RESTART_GET_RATE" --timeout "$limit" --ready "$WORK/ready-$tag")
    show_cmd "${cmd[@]}"
    timeout $((limit + 60)) "${cmd[@]}" >"$OUT/probe-$tag.out" 2>"$OUT/probe-$tag.err" &
    pid=$!
    BG_PIDS+=("$pid")
    for ((i = 0; i < 1000; i++)); do
        [[ -e $WORK/ready-$tag ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    if [[ ! -e $WORK/ready-$tag ]]; then
        kill_pid "$pid"
        bg_forget "$pid"
        cat "$OUT/probe-$tag.err" >&2
        echo "bench_cluster.sh: the restart probe did not start" >&2
        return 1
    fi
    t0=${EPOCHREALTIME//[.,]/}000
    "$@"
    wait "$pid" || rc=$?
    bg_forget "$pid"
    [[ -s $OUT/probe-$tag.err ]] && sed 's/^/   probe: /' "$OUT/probe-$tag.err" | head -n 6
    R_LINE=$(tail -n 1 "$OUT/probe-$tag.out")
    say "   probe: $R_LINE"
    R_ACCEPT=$(ms_from "$(metric accept_ns "$R_LINE")" "$t0")
    R_FIRST=$(ms_from "$(metric first_ns "$R_LINE")" "$t0")
    R_DONE=$(ms_from "$(metric done_ns "$R_LINE")" "$t0")
    return $rc
}

# memcached's warm restart on BENCH_BIG_ITEMS x 100 B: load, SIGUSR1, restart
# with the same -e and -m. Sets MC_FIRST (ms) for the cairn rows. memcached
# restores the whole cache before it binds its port, so its first correct
# answer is also the moment every key is served. (1.6.18 also refuses a
# restart within the wall-clock second it stopped in: "restart incompatible
# due to setting for [stop_time]", and comes up empty.)
restart_memcached() {
    MC_FIRST=n/a
    if [[ ! -x $MEMCACHED_BIN ]]; then
        say "   memcached ('$MEMCACHED_BIN') not found: no comparison"
        return
    fi
    local ver file res st
    ver=$("$MEMCACHED_BIN" -V 2>/dev/null | awk '{print $2}')
    SHM_WORK=$(mktemp -d "$BENCH_SHM_DIR/cairn-benchc-mc.XXXXXX")
    file=$SHM_WORK/memory
    pick_port mcw
    mc_spawn mcw "$file"
    if ! wait_port "${NODE_PID[mcw]}" "${NODE_PORT[mcw]}" 10; then
        fail "restart: memcached did not come up"
        tail -n 5 "$OUT/node-mcw.log" >&2 || true
        node_stop mcw KILL
        return
    fi
    res=$(load_big mcw) || { fail "restart: loading memcached failed"; node_stop mcw KILL; return; }
    st=$(probe stat "${NODE_PORT[mcw]}" "" curr_items)
    say "   memcached $ver -e $file: loaded $BENCH_BIG_ITEMS items ($res sets/s), curr_items $st"
    [[ $st == "$BENCH_BIG_ITEMS" ]] || fail "restart: memcached holds $st items, not $BENCH_BIG_ITEMS (-m $SERVER_MEM_MB too small?)"
    stop_timed mcw USR1 60 || fail "restart: memcached did not exit within 60 s of SIGUSR1"
    local stop_ms=$STOP_MS stop_time i
    stop_time=$(awk '$1 == "Kstop_time" {print $2}' "$file.meta" 2>/dev/null || true)
    [[ -n $stop_time ]] || { fail "restart: memcached wrote no stop_time to $file.meta on SIGUSR1"; return; }
    # memcached refuses a restart in the second it stopped in (its stop-to-
    # start delta must be > 0 whole seconds): wait for the next second
    i=0
    while ((EPOCHSECONDS <= stop_time && i < 300)); do
        sleep 0.01
        i=$((i + 1))
    done
    local waited=$((i * 10))
    say "   memcached stopped (SIGUSR1) in $stop_ms ms; waited ~$waited ms for the next wall-clock second"
    if ! restart_watch mcw "$BENCH_BIG_ITEMS" 100 none 120 mc_spawn mcw "$file"; then
        fail "restart: memcached served no correct get within 120 s of its restart"
        sed -n '/\[restart\]/p' "$OUT/node-mcw.log" | tail -n 4
        node_stop mcw KILL
        return
    fi
    sed -n '/\[restart\]/p' "$OUT/node-mcw.log" | tail -n 3 | sed 's/^/   memcached: /'
    local curr
    curr=$(metric curr_items "$R_LINE")
    say "   memcached restart: port accepting ${R_ACCEPT} ms after exec, first correct get ${R_FIRST} ms, curr_items $curr then"
    [[ $curr == "$BENCH_BIG_ITEMS" ]] || fail "restart: memcached came back with $curr items, not $BENCH_BIG_ITEMS"
    check_items mcw memcached-restart "$BENCH_BIG_ITEMS" 100 || fail "restart: gets on the restarted memcached missed"
    MC_FIRST=$R_FIRST
    row "memcached $ver warm restart (-e on tmpfs, SIGUSR1, same -m), $BENCH_BIG_ITEMS x 100 B: exec to first correct get = all keys served" \
        "$(printf '%.0f ms (port accepting at %.0f ms; %s items when it answered; SIGUSR1 stop %.0f ms, then ~%s ms waited for the next wall-clock second, which memcached needs)' \
            "$R_FIRST" "$R_ACCEPT" "$curr" "$stop_ms" "$waited")" "-" "-"
    node_stop mcw KILL
    rm -rf "$SHM_WORK"
    SHM_WORK=
}

# restart_case NAME HOW ITEMS SIZE WARM_TARGET_MS LIMIT_S MC_MS: stop node NAME
# (HOW = TERM, or KILL right after BENCH_RESTART_BURST s of sets), restart it
# under the probe, check its keys, add the rows; MC_MS: memcached's exec to
# first correct get on the same data for the rows ("" = none)
restart_case() {
    local name=$1 how=$2 items=$3 size=$4 warm_target=$5 limit=$6 mc=$7 what res
    if [[ $how == KILL ]]; then
        settle "$name"
        res=$(load "$name" "burst-$name-$RANDOM" -t 1 -c 4 -P 16 --ratio 0:1 -d "$size" -k "$items" \
            -T "$BENCH_RESTART_BURST" -q)
        node_stop "$name" KILL # at once: the burst's tail of the log is not checkpointed
        [[ $res != ERR ]] || fail "restart: the write burst before kill -9 failed"
        what="kill -9 after ${BENCH_RESTART_BURST} s of sets"
        say "   $what ($(metric ops_per_sec "$res") sets/s, then kill -9 at once)"
    else
        stop_timed "$name" TERM 60 || fail "restart: node $name did not exit within 60 s of SIGTERM"
        what="SIGTERM"
        say "   SIGTERM: exited in $STOP_MS ms"
    fi
    local label="restart after $what, $items x $size B"
    if ! restart_watch "$name" "$items" "$size" persistence "$limit" node_spawn "$name"; then
        fail "restart: node $name was not fully warm with correct answers within $limit s after $how"
    fi
    local w gets misses wrong errors p50 p99 max wms witems ritems rms curr
    w=$(metric warmup "$R_LINE")
    gets=$(metric gets "$R_LINE")
    misses=$(metric misses "$R_LINE")
    wrong=$(metric wrong "$R_LINE")
    errors=$(metric errors "$R_LINE")
    p50=$(us_to_ms "$(metric p50_us "$R_LINE")")
    p99=$(us_to_ms "$(metric p99_us "$R_LINE")")
    max=$(us_to_ms "$(metric max_us "$R_LINE")")
    wms=$(metric warmup_ms "$R_LINE")
    witems=$(metric warmup_items "$R_LINE")
    ritems=$(metric recovered_items "$R_LINE")
    rms=$(metric last_recovery_ms "$R_LINE")
    curr=$(metric curr_items "$R_LINE")
    local note=""
    [[ -n $w ]] || w=none
    if [[ $w == absent ]]; then
        note=" (no warmup STAT: this build serves only once everything is loaded, so done = its first answer)"
        say "   no 'warmup' line in stats persistence: counted as done as soon as it answers"
    fi
    say "   $label: port accepting ${R_ACCEPT} ms after exec, first correct get ${R_FIRST} ms, warmup $w at ${R_DONE} ms" \
        "(server: warmup_ms=${wms:-n/a} warmup_items=${witems:-n/a} recovered_items=${ritems:-n/a} last_recovery_ms=${rms:-n/a}; curr_items $curr)"
    say "   gets until warm: $gets, p50 $p50 ms, p99 $p99 ms, max $max ms; misses $misses, wrong $wrong, errors $errors"
    [[ $curr == "$items" ]] || fail "restart: after $how the node holds $curr items once warm, not $items"
    check_items "$name" "restart-$name-$how" "$items" "$size" || fail "restart: gets missed after $how and warm-up"

    local cmp1="" cmp2=""
    if [[ -n $mc ]]; then
        cmp1="; memcached -e after SIGUSR1: $mc ms"
        cmp2="; memcached -e: every key served at $mc ms"
    fi
    row "$label: exec to first correct get" \
        "$(printf '%s ms (port accepting at %s ms)%s' "$R_FIRST" "$R_ACCEPT" "$cmp1")" "<= $RESTART_TARGET_FIRST ms" \
        "$(verdict "$R_FIRST" "<=" "$RESTART_TARGET_FIRST")"
    row "$label: gets during warm-up (accept to warmup done; 1 conn, 1 in flight, ${BENCH_RESTART_GET_RATE}/s, values checked)" \
        "$gets gets: p50 $p50 ms, p99 $p99 ms, max $max ms; $misses misses, $wrong wrong, $errors errors$note" \
        "p99 <= $RESTART_TARGET_P99 ms, max <= $RESTART_TARGET_MAX ms, 0 misses/wrong" \
        "$(all_met "$p99" "<=" "$RESTART_TARGET_P99" "$max" "<=" "$RESTART_TARGET_MAX" "$misses" "<=" 0 "$wrong" "<=" 0 "$errors" "<=" 0)"
    row "$label: exec to fully warm (warmup done, polled every 5 ms)" \
        "$(printf '%s ms (server warmup_ms %s, warmup_items %s; recovered_items %s, last_recovery_ms %s)%s%s' \
            "$R_DONE" "${wms:-n/a}" "${witems:-n/a}" "${ritems:-n/a}" "${rms:-n/a}" "$cmp2" "$note")" \
        "<= $warm_target ms" "$(verdict "$R_DONE" "<=" "$warm_target")"
}

section_restart() {
    say "== restart"
    [[ -r $RESTART_PROBE ]] || { fail "restart: $RESTART_PROBE not found"; return; }
    [[ -x $PYTHON ]] || { fail "restart: python '$PYTHON' not found"; return; }
    say "   servers $([[ -n $BENCH_RESTART_CPUS ]] && echo "on CPUs $BENCH_RESTART_CPUS" || echo "not pinned");" \
        "probe: ${BENCH_RESTART_GET_RATE} gets/s, one in flight"

    # a. memcached's warm restart, for comparison
    restart_memcached

    # b. BENCH_BIG_ITEMS x 100 B: after SIGTERM, then kill -9 after a write burst
    NODE_CPUS[rbig]=$BENCH_RESTART_CPUS
    if node_new rbig; then
        local lrate
        if lrate=$(load_big rbig); then
            say "   loaded $BENCH_BIG_ITEMS x 100 B ($lrate sets/s)"
            settle rbig
            restart_case rbig TERM "$BENCH_BIG_ITEMS" 100 "$RESTART_TARGET_WARM" 120 "$MC_FIRST"
            restart_case rbig KILL "$BENCH_BIG_ITEMS" 100 "$RESTART_TARGET_WARM" 120 "$MC_FIRST"
        else
            fail "restart: load of $BENCH_BIG_ITEMS items failed"
        fi
        node_rm rbig
    else
        fail "restart: node rbig did not start"
    fi

    # c. BENCH_HUGE_ITEMS x BENCH_HUGE_SIZE B, kill -9 after a write burst
    NODE_CPUS[rhuge]=$BENCH_RESTART_CPUS
    NODE_MEM[rhuge]=$BENCH_HUGE_MEM_MB
    if node_new rhuge; then
        local res
        res=$(load rhuge "hugeload" -t 1 -c 4 -P 32 -d "$BENCH_HUGE_SIZE" -k "$BENCH_HUGE_ITEMS" --preload -n 0 -q)
        if [[ $res != ERR ]]; then
            say "   loaded $BENCH_HUGE_ITEMS x $BENCH_HUGE_SIZE B ($(metric preload_ops_per_sec "$res") sets/s)"
            probe wait-ckpt "${NODE_PORT[rhuge]}" "$(now_ns)" 590 >/dev/null ||
                fail "restart: the checkpoint did not catch up within 590 s"
            restart_case rhuge KILL "$BENCH_HUGE_ITEMS" "$BENCH_HUGE_SIZE" "$RESTART_TARGET_HUGE" 300 ""
        else
            fail "restart: load of $BENCH_HUGE_ITEMS x $BENCH_HUGE_SIZE B failed"
        fi
        node_rm rhuge
    else
        fail "restart: node rhuge did not start"
    fi
}

say "== cairn replication/failover/restart: ${SECTIONS[*]} ($BENCH_ROUNDS rounds x ${BENCH_SECONDS}s, -t $BENCH_THREADS)"
say "   cairn: $CAIRN_BIN; load: $LOAD_BIN; outputs: $OUT${BENCH_OUT:+ (kept)}"
for s in "${SECTIONS[@]}"; do
    "section_$s"
done

say ""
say "== results: cairn ${SECTIONS[*]} (medians of $BENCH_ROUNDS rounds where there are rounds)"
say ""
say "| measurement | result | target | met? |"
say "| --- | --- | --- | --- |"
for line in "${REPORT[@]}"; do say "$line"; done
if ((FAILURES > 0)); then
    say "FAILED: $FAILURES measurement(s) or checks failed (see the errors above)"
    exit 1
fi
