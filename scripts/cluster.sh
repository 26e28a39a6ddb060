#!/usr/bin/env bash
# A local three-node cairn cluster on 127.0.0.1.
#
#   scripts/cluster.sh start       start the nodes that are not running
#   scripts/cluster.sh stop        stop every node cleanly (SIGTERM)
#   scripts/cluster.sh status      one line per node: pid, role, LSN, link
#   scripts/cluster.sh kill N      kill -9 node N (a crash)
#   scripts/cluster.sh restart N   (re)start node N as a replica of the current primary
#   scripts/cluster.sh promote N   promote node N; the other live nodes follow it
#
# Node N (1..3) serves clients on 127.0.0.1:$((CAIRN_BASE_PORT + N)) and
# replication on $((CAIRN_BASE_PORT + 10000 + N)); CAIRN_BASE_PORT defaults
# to 11210.  Data in DIR/nodeN, log in DIR/nodeN.log, pid in DIR/nodeN.pid,
# where DIR is $CAIRN_CLUSTER_DIR if set, else ./cluster-data for the default
# base port and ./cluster-data-BASE for any other (so two clusters with
# different base ports run side by side from one directory).
# On the first start node 1 is the primary and nodes 2 and 3 its replicas;
# later starts keep each node's role (it is stored with its data).
# CAIRN_ARGS adds flags to every node (e.g. CAIRN_ARGS="--sync-replicas 1").
#
# `start` (and `restart`) wait until each node answers on its client port
# (its `stats` names the pid we started), at most CAIRN_START_TIMEOUT
# seconds (default 10); a node that dies or does not answer in time is
# reported with the tail of its log, and the script exits 1 at once.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/cluster.sh start|stop|status|kill N|restart N|promote N
  start       start the nodes that are not running (node 1 primary, 2 and 3
              its replicas on the first start); exits 1 if a node fails
  stop        stop every node cleanly (SIGTERM)
  status      one line per node: pid, role, epoch, LSN, primary / link
  kill N      kill -9 node N (a crash)
  restart N   (re)start node N as a replica of the current primary
  promote N   promote node N; the other live nodes follow it
Node N (1..3): clients on 127.0.0.1:BASE+N, replication on BASE+10000+N.
Environment:
  CAIRN_BASE_PORT     BASE (default 11210)
  CAIRN_CLUSTER_DIR   where data, logs and pid files go (default
                      ./cluster-data for base 11210, else ./cluster-data-BASE)
  CAIRN_ARGS          extra cairn flags for every node
  CAIRN_START_TIMEOUT seconds a node may take to answer (default 10)
USAGE
}

root=$(cd "$(dirname "$0")/.." && pwd)
base=${CAIRN_BASE_PORT:-11210}
if ! [[ $base =~ ^[0-9]{1,5}$ ]] || ((10#$base < 1 || 10#$base + 10003 > 65535)); then
  echo "cluster.sh: CAIRN_BASE_PORT must be a number from 1 to 55532 (got '$base')" >&2
  exit 2
fi
base=$((10#$base))
if [ "$base" = 11210 ]; then
  data=${CAIRN_CLUSTER_DIR:-./cluster-data}
else
  data=${CAIRN_CLUSTER_DIR:-./cluster-data-$base}
fi
start_timeout=${CAIRN_START_TIMEOUT:-10}
if ! [[ $start_timeout =~ ^[0-9]{1,4}$ ]] || ((10#$start_timeout == 0)); then
  echo "cluster.sh: CAIRN_START_TIMEOUT must be a positive number of seconds (got '$start_timeout')" >&2
  exit 2
fi
start_timeout=$((10#$start_timeout))
bin=$root/build/cairn
read -r -a extra <<<"${CAIRN_ARGS:-}"

client_port() { echo $((base + $1)); }
repl_port() { echo $((base + 10000 + $1)); }
pid_file() { echo "$data/node$1.pid"; }

check_node() {
  [[ ${1:-} =~ ^[123]$ ]] || { echo "cluster.sh: node must be 1, 2 or 3" >&2; exit 2; }
}

ensure_built() {
  if [ ! -x "$bin" ]; then
    (cd "$root" && . scripts/deps.sh && install_deps build && build_cairn build) >&2
  fi
}

node_pid() {
  local f
  f=$(pid_file "$1")
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"
}

# node_stat N GROUP NAME: the value of STAT NAME in `stats GROUP` on node N's
# client port ("" for the general stats); fails if the port does not answer.
node_stat() {
  local line value="" found=""
  exec 3<>"/dev/tcp/127.0.0.1/$(client_port "$1")" || return 1
  printf 'stats %s\r\nquit\r\n' "$2" >&3
  while IFS= read -r -t 2 line <&3; do
    line=${line%$'\r'}
    [[ $line == "STAT $3 "* ]] && { value=${line#"STAT $3 "}; found=1; }
  done
  exec 3<&-
  [ -n "$found" ] || return 1
  echo "$value"
}

# Print the value of STAT NAME from `stats replication` on node N.
repl_stat() {
  node_stat "$1" replication "$2" 2>/dev/null || true
}

# wait_ready N PID: poll until node N answers on its client port as PID (a
# port some other process holds does not count), at most start_timeout s.
# If PID dies or never answers: the log tail on stderr, PID killed, the pid
# file removed, return 1.
wait_ready() {
  local n=$1 pid=$2 why deadline=$((SECONDS + start_timeout))
  while :; do
    if exited "$pid"; then
      why="exited"
      break
    fi
    if [ "$(node_stat "$n" "" pid 2>/dev/null)" = "$pid" ]; then return 0; fi
    if ((SECONDS >= deadline)); then
      why="did not answer on 127.0.0.1:$(client_port "$n") within ${start_timeout} s"
      break
    fi
    sleep 0.1
  done
  if ! exited "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    wait_exit "$pid" 100 || true
  fi
  rm -f "$(pid_file "$n")"
  echo "cluster.sh: node $n failed to start (pid $pid $why); tail of $data/node$n.log:" >&2
  tail -n 15 "$data/node$n.log" 2>/dev/null | sed 's/^/  /' >&2 || true
  return 1
}

# start_node N [extra flags...]
start_node() {
  local n=$1 pid; shift
  if [ -n "$(node_pid "$n")" ]; then
    echo "node $n already running (pid $(node_pid "$n"))"
    return 0
  fi
  mkdir -p "$data"
  setsid "$bin" -l 127.0.0.1 -p "$(client_port "$n")" --repl-port "$(repl_port "$n")" \
    --data-dir "$data/node$n" --node-id "node$n" "${extra[@]}" "$@" \
    >>"$data/node$n.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$(pid_file "$n")"
  wait_ready "$n" "$pid" || return 1
  echo "node $n started (pid $pid, clients 127.0.0.1:$(client_port "$n"), replication $(repl_port "$n"))"
}

# The live node that says it is primary, other than $1.
current_primary() {
  local m
  for m in 1 2 3; do
    [ "$m" = "${1:-}" ] && continue
    [ -n "$(node_pid "$m")" ] || continue
    if [ "$(repl_stat "$m" role)" = primary ]; then echo "$m"; return 0; fi
  done
  return 1
}

# exited PID: the process is gone or a zombie (its ports, files and data
# directory lock are released either way)
exited() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  st=${st##*) }
  [ "${st%% *}" = Z ]
}

# wait_exit PID TENTHS: poll until PID has exited, at most TENTHS x 0.1 s
wait_exit() {
  local i
  for ((i = 0; i < $2; i++)); do
    exited "$1" && return 0
    sleep 0.1
  done
  exited "$1"
}

stop_node() {
  local pid
  pid=$(node_pid "$1") || return 0
  kill -TERM "$pid"
  if ! wait_exit "$pid" 100; then
    kill -KILL "$pid"
    wait_exit "$pid" 100 || echo "cluster.sh: node $1 (pid $pid) did not exit" >&2
  fi
  rm -f "$(pid_file "$1")"
  echo "node $1 stopped"
}

cmd=${1:-}
case "$cmd" in
  start)
    ensure_built
    for n in 1 2 3; do
      if [ -d "$data/node$n" ] || [ "$n" = 1 ]; then
        args=()
      else
        args=(--replica-of "127.0.0.1:$(repl_port 1)")
      fi
      if ! start_node "$n" "${args[@]}"; then
        echo "cluster.sh: start stopped at node $n; nodes started before it keep running (scripts/cluster.sh stop)" >&2
        exit 1
      fi
    done
    ;;
  stop)
    for n in 1 2 3; do stop_node "$n"; done
    ;;
  status)
    printf '%-5s %-8s %-7s %-8s %-10s %s\n' node pid role epoch lsn "primary / link"
    for n in 1 2 3; do
      pid=$(node_pid "$n") || pid=""
      if [ -z "$pid" ]; then
        printf '%-5s %-8s %s\n' "$n" - down
        continue
      fi
      role=$(repl_stat "$n" role)
      role=${role:-?}
      extra_info=""
      [ "$role" = replica ] && extra_info="$(repl_stat "$n" primary) $(repl_stat "$n" link)"
      [ "$role" = primary ] && extra_info="$(repl_stat "$n" connected_replicas) replicas"
      printf '%-5s %-8s %-7s %-8s %-10s %s\n' "$n" "$pid" "$role" "$(repl_stat "$n" epoch)" \
        "$(repl_stat "$n" lsn)" "$extra_info"
    done
    ;;
  kill)
    check_node "${2:-}"
    pid=$(node_pid "$2") || { echo "node $2 is not running"; exit 0; }
    kill -KILL "$pid"
    # SIGKILL is delivered at once, but the exit (unmapping the memory, which
    # takes a while under ASan) is not: a restart must not meet the old one.
    wait_exit "$pid" 100 || echo "cluster.sh: node $2 (pid $pid) did not exit" >&2
    rm -f "$(pid_file "$2")"
    echo "node $2 killed (kill -9 $pid)"
    ;;
  restart)
    check_node "${2:-}"
    ensure_built
    stop_node "$2"
    if p=$(current_primary "$2"); then
      start_node "$2" --replica-of "127.0.0.1:$(repl_port "$p")" || exit 1
      echo "node $2 follows node $p"
    else
      start_node "$2" || exit 1
    fi
    ;;
  promote)
    check_node "${2:-}"
    [ -n "$(node_pid "$2")" ] || { echo "cluster.sh: node $2 is not running" >&2; exit 1; }
    "$root/build/cairnctl" -s "127.0.0.1:$(client_port "$2")" promote
    for m in 1 2 3; do
      [ "$m" = "$2" ] && continue
      [ -n "$(node_pid "$m")" ] || continue
      "$root/build/cairnctl" -s "127.0.0.1:$(client_port "$m")" replicaof "127.0.0.1:$(repl_port "$2")"
    done
    ;;
  help | -h | --help)
    usage
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
