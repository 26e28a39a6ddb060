#!/usr/bin/python3
"""restart_probe.py: watch a memcache server come back after a restart.

Used by the `restart` section of scripts/bench_cluster.sh. Start it *before*
the server is exec'd: it prepares, writes --ready FILE, then tries to connect
to 127.0.0.1:PORT every millisecond. From the moment the port accepts it
issues gets of random keys of the key space cairn-load writes ("key:%08u",
0 <= k < --items, values and flags a pure function of the key number and
--vseed, see tests/load/cairn-load.c), one connection, one request in flight,
and validates every reply byte for byte. Between gets it polls
`stats persistence` on a second connection (every --poll-ms) until the STAT
line `warmup` says `done`; a server without that line (a build that serves
only once everything is loaded) counts as done at the first poll that answers,
and `--stats none` (memcached) means "done at the first correct answer".

Prints one line of key=value words (times are CLOCK_REALTIME nanoseconds, the
clock of bash's EPOCHREALTIME and `date +%s%N`):

  accept_ns first_ns done_ns warmup gets misses wrong errors p50_us p99_us
  max_us warmup_ms warmup_items recovered_items last_recovery_ms curr_items

warmup is done, absent (no such STAT line), none (--stats none) or timeout.
Latencies are those of every get issued before done (the one that was in
flight when done was seen included). Exit status 0 when done was reached and
a correct answer was seen, 1 otherwise (the line is printed either way); the
first errors go to stderr.
"""
import argparse
import random
import socket
import sys
import time

M32 = 0xFFFFFFFF
TMPL_PERIOD = 64


def mix32(x):
    x &= M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    x ^= x >> 16
    return x


class Values:
    """cairn-load's deterministic values and flags (tests/load/cairn-load.c)."""

    def __init__(self, size, vseed):
        self.size, self.vseed = size, vseed
        self.tmpl = bytes(33 + (i * 7 + i // 89) % 94 for i in range(TMPL_PERIOD + size))

    def flags(self, k):
        return mix32(k ^ ((self.vseed * 0x9E3779B9) & M32))

    def value(self, k):
        head = b"%08x" % mix32((k * 2654435761 + self.vseed + 1) & M32)
        if self.size <= 8:
            return head[: self.size]
        off = ((k * 13 + self.vseed) & M32) % TMPL_PERIOD
        return head + self.tmpl[off: off + self.size - 8]


class Conn:
    def __init__(self, port, timeout):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def _fill(self):
        d = self.s.recv(262144)
        if not d:
            raise ConnectionError("connection closed by the server")
        self.buf += d

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln, self.buf = self.buf[:i], self.buf[i + 2:]
                return ln
            self._fill()

    def exactly(self, n):
        while len(self.buf) < n:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def stats(self, group):
        self.s.sendall(b"stats " + group + b"\r\n" if group else b"stats\r\n")
        out = {}
        while True:
            ln = self.line()
            if ln == b"END":
                return out
            f = ln.split(b" ", 2)
            if len(f) == 3 and f[0] == b"STAT":
                out[f[1].decode()] = f[2].decode()
            elif ln.endswith(b"ERROR") or ln.startswith(b"SERVER_ERROR") or ln.startswith(b"CLIENT_ERROR"):
                return out


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * q))] if v else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--items", type=int, required=True, help="key space key:00000000.. (all present)")
    ap.add_argument("--size", type=int, default=100, help="value size (cairn-load -d)")
    ap.add_argument("--vseed", type=int, default=0, help="cairn-load --vseed of the data")
    ap.add_argument("--seed", type=int, default=1, help="RNG seed of the key sequence")
    ap.add_argument("--stats", choices=["persistence", "none"], default="persistence",
                    help="poll 'stats persistence' for warmup, or none (done at the first correct answer)")
    ap.add_argument("--poll-ms", type=float, default=5.0, help="stats poll interval during warm-up")
    ap.add_argument("--rate", type=float, default=5000.0,
                    help="gets per second during warm-up (0 = back to back); one in flight")
    ap.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    ap.add_argument("--ready", help="write this file once prepared (before the first connect)")
    a = ap.parse_args()

    vals = Values(a.size, a.vseed)
    rng = random.Random(a.seed)
    end = time.monotonic() + a.timeout
    interval = 1.0 / a.rate if a.rate > 0 else 0.0
    poll = a.poll_ms / 1000.0
    res = dict(accept_ns=0, first_ns=0, done_ns=0, warmup="timeout", gets=0, misses=0, wrong=0,
               errors=0, warmup_ms="", warmup_items="", recovered_items="", last_recovery_ms="",
               curr_items="")
    lat = []
    nerr = [0]

    def complain(msg):
        nerr[0] += 1
        if nerr[0] <= 5:
            print("restart_probe: " + msg, file=sys.stderr)

    def left():
        return max(0.001, end - time.monotonic())

    if a.ready:
        with open(a.ready, "w") as f:
            f.write("ready\n")

    # 1. wait until the port accepts
    gc = None
    while time.monotonic() < end:
        try:
            gc = Conn(a.port, min(0.2, left()))
            res["accept_ns"] = time.time_ns()
            break
        except OSError:
            time.sleep(0.001)
    if gc is None:
        complain("port %d never accepted" % a.port)
        print(" ".join("%s=%s" % kv for kv in res.items()))
        return 1

    sc = None
    next_poll = 0.0   # poll stats right after the first reply
    next_get = time.monotonic()
    done = False
    while time.monotonic() < end:
        # a. one get of a random existing key, validated
        k = rng.randrange(a.items)
        key = b"key:%08d" % k
        t1 = time.perf_counter()
        try:
            gc.s.settimeout(left())
            gc.s.sendall(b"get " + key + b"\r\n")
            ln = gc.line()
            if ln == b"END":
                ok = False
                res["misses"] += 1
                complain("get %s: miss" % key.decode())
            elif ln.startswith(b"VALUE "):
                f = ln.split(b" ")
                n = int(f[3])
                data = gc.exactly(n + 2)
                trailer = gc.line()
                want = vals.value(k)
                ok = (f[1] == key and int(f[2]) == vals.flags(k) and data[:n] == want
                      and data[n:] == b"\r\n" and trailer == b"END")
                if not ok:
                    res["wrong"] += 1
                    complain("get %s: wrong reply %r (flags %s, want %d) %r / want %r" % (
                        key.decode(), ln, f[2].decode(), vals.flags(k), data[:n][:40], want[:40]))
            else:
                ok = False
                res["errors"] += 1
                complain("get %s: unexpected reply %r" % (key.decode(), ln))
        except (OSError, ValueError, IndexError) as e:
            ok = False
            res["errors"] += 1
            complain("get %s: %s" % (key.decode(), e))
            gc.close()
            try:
                gc = Conn(a.port, min(1.0, left()))
            except OSError:
                time.sleep(0.001)
                continue
        t2 = time.perf_counter()
        res["gets"] += 1
        lat.append((t2 - t1) * 1e6)
        if ok and not res["first_ns"]:
            res["first_ns"] = time.time_ns()
            if a.stats == "none":
                res["done_ns"], res["warmup"] = res["first_ns"], "none"

        # b. poll the warm-up state
        now = time.monotonic()
        if a.stats == "persistence" and not res["done_ns"] and now >= next_poll:
            try:
                if sc is None:
                    sc = Conn(a.port, left())
                sc.s.settimeout(left())
                st = sc.stats(b"persistence")
                t = time.time_ns()
                for n in ("warmup_ms", "warmup_items", "recovered_items", "last_recovery_ms"):
                    res[n] = st.get(n, "")
                w = st.get("warmup")
                if w is None:
                    res["done_ns"], res["warmup"] = t, "absent"
                elif w == "done":
                    res["done_ns"], res["warmup"] = t, "done"
                elif w != "loading":
                    complain("stats persistence: warmup=%s" % w)
            except (OSError, ValueError) as e:
                complain("stats persistence: %s" % e)
                if sc is not None:
                    sc.close()
                sc = None
            next_poll = time.monotonic() + poll
        if res["done_ns"] and res["first_ns"]:
            done = True
            break
        if interval:
            next_get = max(next_get + interval, time.monotonic() - interval)
            d = next_get - time.monotonic()
            if d > 0:
                time.sleep(d)

    if done:  # the item count as the server sees it once warm
        try:
            c = sc or Conn(a.port, left())
            c.s.settimeout(left())
            res["curr_items"] = c.stats(b"").get("curr_items", "")
        except (OSError, ValueError) as e:
            complain("stats: %s" % e)
    for c in (gc, sc):
        if c is not None:
            c.close()
    res["p50_us"] = "%.0f" % pct(lat, 0.5)
    res["p99_us"] = "%.0f" % pct(lat, 0.99)
    res["max_us"] = "%.0f" % (max(lat) if lat else 0)
    print(" ".join("%s=%s" % kv for kv in res.items()))
    return 0 if done else 1


if __name__ == "__main__":
    sys.exit(main())
