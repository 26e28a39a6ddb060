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
# to 11210.  Data in ./cluster-data/nodeN, log in ./cluster-data/nodeN.log.
# On the first start node 1 is the primary and nodes 2 and 3 its replicas;
# later starts keep each node's role (it is stored with its data).
# CAIRN_ARGS adds flags to every node (e.g. CAIRN_ARGS="--sync-replicas 1").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
base=${CAIRN_BASE_PORT:-11210}
data=${CAIRN_CLUSTER_DIR:-./cluster-data}
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

# Print the value of STAT NAME from `stats replication` on node N.
repl_stat() {
  local line value=""
  exec 3<>"/dev/tcp/127.0.0.1/$(client_port "$1")" || return 1
  printf 'stats replication\r\nquit\r\n' >&3
  while IFS= read -r -t 2 line <&3; do
    line=${line%$'\r'}
    [[ $line == "STAT $2 "* ]] && value=${line#"STAT $2 "}
  done
  exec 3<&-
  echo "$value"
}

wait_ready() {
  local i
  for ((i = 0; i < 100; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$(client_port "$1")") 2>/dev/null; then return 0; fi
    if [ -z "$(node_pid "$1")" ]; then break; fi
    sleep 0.1
  done
  echo "cluster.sh: node $1 did not start; see $data/node$1.log" >&2
  tail -n 5 "$data/node$1.log" >&2 || true
  return 1
}

# start_node N [extra flags...]
start_node() {
  local n=$1; shift
  if [ -n "$(node_pid "$n")" ]; then
    echo "node $n already running (pid $(node_pid "$n"))"
    return 0
  fi
  mkdir -p "$data"
  setsid "$bin" -l 127.0.0.1 -p "$(client_port "$n")" --repl-port "$(repl_port "$n")" \
    --data-dir "$data/node$n" --node-id "node$n" "${extra[@]}" "$@" \
    >>"$data/node$n.log" 2>&1 </dev/null &
  echo $! >"$(pid_file "$n")"
  wait_ready "$n"
  echo "node $n started (pid $!, clients 127.0.0.1:$(client_port "$n"), replication $(repl_port "$n"))"
}

# The live node that says it is primary, other than $1.
current_primary() {
  local m
  for m in 1 2 3; do
    [ "$m" = "${1:-}" ] && continue
    [ -n "$(node_pid "$m")" ] || continue
    if [ "$(repl_stat "$m" role 2>/dev/null)" = primary ]; then echo "$m"; return 0; fi
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
        start_node "$n"
      else
        start_node "$n" --replica-of "127.0.0.1:$(repl_port 1)"
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
      role=$(repl_stat "$n" role || echo "?")
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
      start_node "$2" --replica-of "127.0.0.1:$(repl_port "$p")"
      echo "node $2 follows node $p"
    else
      start_node "$2"
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
  *)
    echo "usage: scripts/cluster.sh start|stop|status|kill N|restart N|promote N" >&2
    exit 2
    ;;
esac
