# shellcheck shell=bash
# Helpers shared by bench.sh and bench_cluster.sh (sourced).

say() { printf '%s\n' "$*"; }
show_cmd() { say "+ $(printf '%q ' "$@")"; }

# port_open PORT: does 127.0.0.1:PORT accept connections?
port_open() {
    # shellcheck disable=SC2016 # $1 is expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# wait_port PID PORT LIMIT_S: bounded poll until PORT accepts connections
# (fails at once if PID has exited)
wait_port() {
    local pid=$1 port=$2 i
    for ((i = 0; i < $3 * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        port_open "$port" && return 0
        sleep 0.05
    done
    return 1
}

# metric KEY "k=v k=v ...": the value of KEY in a cairn-load -q line
metric() {
    awk -v k="$1" '{for (i = 1; i <= NF; i++) {split($i, kv, "="); if (kv[1] == k) print kv[2]}}' <<<"$2"
}

# median NUM...: the median of its numeric arguments, or "n/a"
median() {
    printf '%s\n' "$@" | { grep -E '^[0-9.]+$' || true; } | sort -g |
        awk '{a[NR] = $1} END {if (NR == 0) print "n/a";
             else if (NR % 2) print a[(NR + 1) / 2];
             else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

# ratio A B: A / B with two decimals, or "n/a"
ratio() {
    awk -v c="$1" -v m="$2" 'BEGIN {
        if (c !~ /^[0-9.]+$/ || m !~ /^[0-9.]+$/ || m == 0) print "n/a";
        else printf "%.2f", c / m}'
}

# verdict VALUE OP TARGET: met / MISSED / n/a (OP is >= or <=)
verdict() {
    awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
        if (v !~ /^[0-9.]+$/) {print "n/a"; exit}
        ok = (op == "<=") ? (v + 0 <= t + 0) : (v + 0 >= t + 0)
        print ok ? "met" : "MISSED"}'
}
