"""Shared harness for the cluster story tests (tests/cluster/test_*.py).

Every test drives a real three-node cluster through scripts/cluster.sh, in a
temporary working directory (cluster.sh keeps ./cluster-data in the cwd) and
on a CAIRN_BASE_PORT whose six ports (base+1..3, base+10001..10003) were
free when probed.  Clients are python-memcached (`memcache.Client`, only in
/usr/bin/python3) plus raw sockets for `stats` and admin commands.

cluster.sh runs $root/build/cairn and $root/build/cairnctl where $root is
the directory above the script.  When --bin/--cairnctl are not those files
(e.g. the ASan build in build-asan/), the harness builds a small shim root
in the temp dir: shim/scripts/cluster.sh is a symlink to the real script and
shim/build/cairn, shim/build/cairnctl link to the binaries under test, so the
unmodified script drives the binaries that ctest built.

Cleanup (always, also on failure): SIGCONT anything we stopped,
`cluster.sh stop`, then kill -9 every node pid we ever saw that is still
alive and still ours (its command line names our temp dir), then remove the
temp dir.  On failure the tail of every node log is printed first.
"""

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings

import memcache  # python3-memcache (Debian), only under /usr/bin/python3

# freeze(): SIGSTOP that waits until the process has stopped; reserve_port().
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

HOST = "127.0.0.1"
POLL_INTERVAL = 0.05


def parse_args():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.abspath(os.path.join(here, "..", ".."))
    ap.add_argument("--bin", default=os.environ.get("CAIRN_BIN", os.path.join(root, "build", "cairn")))
    ap.add_argument("--cairnctl", default=os.environ.get("CAIRNCTL", os.path.join(root, "build", "cairnctl")))
    ap.add_argument("--cluster-script", default=os.path.join(root, "scripts", "cluster.sh"))
    args, rest = ap.parse_known_args()
    return args, [sys.argv[0]] + rest


ARGS = None


def main():
    global ARGS
    ARGS, rest = parse_args()
    unittest.main(argv=rest, verbosity=2)


def poll(fn, timeout, what):
    """Call fn() until it returns a truthy value; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last_exc = None
        except (OSError, ValueError, KeyError) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0f s waiting for %s%s" %
                                 (timeout, what, " (last error: %r)" % last_exc if last_exc else ""))
        time.sleep(POLL_INTERVAL)


def pick_base_port():
    # Below the ephemeral range (32768+) so outgoing connections do not take
    # the ports between the probe and the start; each port reserved through
    # harness.reserve_port so that no other test process is given it.
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        base = rng.randrange(12000, 22700, 10)
        ports = [base + n for n in (1, 2, 3)] + [base + 10000 + n for n in (1, 2, 3)]
        if all(harness.reserve_port(p) for p in ports):
            return base
    raise RuntimeError("no free CAIRN_BASE_PORT found")


def raw_command(port, line, end=None, timeout=10):
    """Send one command line; return the reply (one line, or up to `end`)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(line.encode() + b"\r\n")
        buf = b""
        while True:
            if end is None and b"\r\n" in buf:
                return buf.split(b"\r\n", 1)[0].decode()
            if end is not None and (buf.endswith(end.encode() + b"\r\n") or
                                    buf.startswith((b"ERROR", b"SERVER_ERROR", b"CLIENT_ERROR")) and b"\r\n" in buf):
                return buf.decode()
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("connection closed by 127.0.0.1:%d after %r" % (port, buf))
            buf += chunk


def raw_set(port, key, value, exptime=0):
    """A `set` through a raw socket: the exact reply line."""
    data = value.encode()
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.sendall(b"set %s 0 %d %d\r\n%s\r\n" % (key.encode(), exptime, len(data), data))
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise OSError("connection closed")
            buf += chunk
        return buf.split(b"\r\n", 1)[0].decode()


def stats(port, which="replication"):
    reply = raw_command(port, ("stats " + which).strip(), end="END")
    out = {}
    for line in reply.split("\r\n"):
        if line.startswith("STAT "):
            parts = line.split(" ", 2)
            out[parts[1]] = parts[2] if len(parts) > 2 else ""
    if not out and not reply.startswith("END"):
        raise OSError("stats %s on %d: %r" % (which, port, reply))
    return out


def replica_lines(st):
    """The replica<i> lines of a primary's stats, as dicts."""
    res = []
    for k, v in st.items():
        if k.startswith("replica") and k[7:].isdigit():
            res.append(dict(kv.split("=", 1) for kv in v.split(",") if "=" in kv))
    return res


class CaptureClient(memcache.Client):
    """memcache.Client that remembers the unexpected replies and connection
    errors python-memcached would only log (debug mode), e.g.
    'SERVER_ERROR readonly replica'.  set() returns True only on STORED."""

    def __init__(self, addr, **kw):
        kw.setdefault("socket_timeout", 10)
        kw.setdefault("dead_retry", 0)
        super().__init__([addr], debug=1, **kw)
        self.last_error = None
        for h in self.servers:
            h.debuglog = self._capture

    def _capture(self, msg):
        self.last_error = msg

    def set_checked(self, key, value, time=0):
        """(True, None) on STORED, else (False, what python-memcached saw)."""
        self.last_error = None
        ok = self.set(key, value, time=time)
        if ok is True:
            return True, None
        return False, self.last_error or ("set returned %r" % (ok,))


class Cluster:
    def __init__(self, cairn_args=""):
        self.args = ARGS
        self.tmp = tempfile.mkdtemp(prefix="cairn-cluster-")
        self.base = pick_base_port()
        self.cairn_args = cairn_args
        self.seen_pids = set()
        self.stopped_pids = set()
        self.script = self._script_path()
        self.cairnctl_path = os.path.abspath(self.args.cairnctl)

    def _script_path(self):
        script = os.path.abspath(self.args.cluster_script)
        root = os.path.dirname(os.path.dirname(script))
        want_bin = os.path.realpath(self.args.bin)
        want_ctl = os.path.realpath(self.args.cairnctl)
        if (os.path.realpath(os.path.join(root, "build", "cairn")) == want_bin and
                os.path.realpath(os.path.join(root, "build", "cairnctl")) == want_ctl):
            return script
        shim = os.path.join(self.tmp, "shim")
        os.makedirs(os.path.join(shim, "scripts"))
        os.makedirs(os.path.join(shim, "build"))
        os.symlink(script, os.path.join(shim, "scripts", "cluster.sh"))
        os.symlink(want_bin, os.path.join(shim, "build", "cairn"))
        os.symlink(want_ctl, os.path.join(shim, "build", "cairnctl"))
        return os.path.join(shim, "scripts", "cluster.sh")

    # ---- ports and paths
    def port(self, n):
        return self.base + n

    def repl_port(self, n):
        return self.base + 10000 + n

    def addr(self, n):
        return "%s:%d" % (HOST, self.port(n))

    def repl_addr(self, n):
        return "%s:%d" % (HOST, self.repl_port(n))

    def data_dir(self):
        return os.path.join(self.tmp, "cluster-data")

    def pid(self, n):
        """The pid in nodeN.pid if that process is alive, else None."""
        try:
            with open(os.path.join(self.data_dir(), "node%d.pid" % n)) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        self.seen_pids.add(pid)
        return pid if self._alive(pid) else None

    @staticmethod
    def _alive(pid):
        try:
            with open("/proc/%d/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            return state != "Z"
        except (OSError, IndexError):
            return False

    def _ours(self, pid):
        """Is pid a node of this cluster (not a recycled pid)?  cluster.sh
        starts the nodes in our temp dir, with relative --data-dir."""
        try:
            if os.path.realpath(os.readlink("/proc/%d/cwd" % pid)) == os.path.realpath(self.tmp):
                return True
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                return self.tmp.encode() in f.read()
        except OSError:
            return False

    # ---- running things
    def env(self):
        env = dict(os.environ)
        env["CAIRN_BASE_PORT"] = str(self.base)
        env["CAIRN_ARGS"] = self.cairn_args
        env["CAIRN_CLUSTER_DIR"] = self.data_dir()
        return env

    def sh(self, *args, timeout=90):
        """Run cluster.sh in the temp dir; returns CompletedProcess (text)."""
        p = subprocess.run([self.script] + [str(a) for a in args], cwd=self.tmp, env=self.env(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        for n in (1, 2, 3):
            self.pid(n)  # remember every pid we see
        return p

    def sh_ok(self, *args, timeout=90):
        p = self.sh(*args, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError("cluster.sh %s exited %d\nstdout:\n%s\nstderr:\n%s" %
                                 (" ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
        return p

    def ctl(self, *args, timeout=60):
        return subprocess.run([self.cairnctl_path] + [str(a) for a in args], cwd=self.tmp,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def client(self, n, **kw):
        return CaptureClient(self.addr(n), **kw)

    def stats(self, n, which="replication"):
        return stats(self.port(n), which)

    def sigstop(self, n):
        pid = self.pid(n)
        self.stopped_pids.add(pid)
        harness.freeze(pid)
        return pid

    def sigcont(self, pid):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        self.stopped_pids.discard(pid)

    # ---- waiting
    def wait_replica_up(self, n, primary, timeout=20):
        want = self.repl_addr(primary)

        def ok():
            st = self.stats(n)
            return (st.get("role") == "replica" and st.get("primary") == want and
                    st.get("link") == "up")
        return poll(ok, timeout, "node %d to follow node %d with link up" % (n, primary))

    def wait_caught_up(self, nodes, primary, timeout=20):
        """Poll until every node in `nodes` applied the primary's LSN."""
        def ok():
            plsn = int(self.stats(primary)["lsn"])
            return all(int(self.stats(n)["lsn"]) >= plsn for n in nodes)
        return poll(ok, timeout, "nodes %s to reach node %d's lsn" % (list(nodes), primary))

    def wait_synced(self, n, timeout=10):
        """Poll until node n's WAL is fsynced up to its last record."""
        def ok():
            st = self.stats(n, "persistence")
            return int(st["wal_synced_lsn"]) >= int(st["wal_lsn"])
        return poll(ok, timeout, "node %d to fsync its WAL" % n)

    def wait_values(self, n, expected, timeout=20):
        """Poll until node n serves every key of `expected` with its value."""
        mc = self.client(n)
        missing = {}

        def ok():
            missing.clear()
            keys = list(expected)
            got = {}
            for i in range(0, len(keys), 100):
                got.update(mc.get_multi(keys[i:i + 100]))
            for k, v in expected.items():
                if got.get(k) != v:
                    missing[k] = (v, got.get(k))
            return not missing
        try:
            poll(ok, timeout, "node %d to hold %d keys" % (n, len(expected)))
        except AssertionError as e:
            sample = list(missing.items())[:5]
            raise AssertionError("%s; %d wrong or missing, e.g. %r" % (e, len(missing), sample))
        finally:
            mc.disconnect_all()

    def get_all(self, n, keys):
        mc = self.client(n)
        got = {}
        keys = list(keys)
        for i in range(0, len(keys), 100):
            got.update(mc.get_multi(keys[i:i + 100]))
        mc.disconnect_all()
        return got

    # ---- teardown
    def dump_logs(self):
        for n in (1, 2, 3):
            path = os.path.join(self.data_dir(), "node%d.log" % n)
            try:
                with open(path, errors="replace") as f:
                    lines = f.readlines()[-25:]
            except OSError:
                continue
            sys.stderr.write("---- tail of node%d.log ----\n%s" % (n, "".join(lines)))

    def cleanup(self, failed=False):
        if failed:
            self.dump_logs()
        for pid in list(self.stopped_pids):
            self.sigcont(pid)
        for n in (1, 2, 3):
            self.pid(n)
        try:
            self.sh("stop", timeout=60)
        except Exception as e:  # keep cleaning up
            sys.stderr.write("cluster.sh stop failed during cleanup: %r\n" % e)
        for pid in self.seen_pids:
            if self._alive(pid) and self._ours(pid):
                try:
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        reports = self.sanitizer_reports()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if reports:
            raise AssertionError("sanitizer reports in the node logs:\n" + "\n".join(reports))

    def sanitizer_reports(self):
        """Lines around every ASan/LSan/UBSan/TSan report in the node logs."""
        out = []
        for n in (1, 2, 3):
            path = os.path.join(self.data_dir(), "node%d.log" % n)
            try:
                with open(path, errors="replace") as f:
                    lines = f.readlines()
            except OSError:
                continue
            for i, ln in enumerate(lines):
                if ("ERROR: AddressSanitizer" in ln or "ERROR: LeakSanitizer" in ln or
                        "runtime error:" in ln or "ThreadSanitizer" in ln):
                    out.append("node%d.log:\n%s" % (n, "".join(lines[i:i + 30])))
        return out


class ClusterTest(unittest.TestCase):
    """Base: self.cluster is a fresh (not yet started) cluster per test."""

    cairn_args = ""

    def setUp(self):
        # python-memcached leaks a socket per failed reconnect; not our bug.
        warnings.filterwarnings("ignore", category=ResourceWarning)
        self.cluster = Cluster(self.cairn_args)

    def tearDown(self):
        # (unittest reports a failure to the result as soon as it happens)
        result = getattr(getattr(self, "_outcome", None), "result", None)
        failed = result is None or any(
            t is self for t, _ in list(getattr(result, "failures", [])) + list(getattr(result, "errors", [])))
        self.cluster.cleanup(failed=failed)


class Writer(threading.Thread):
    """Writes distinct keys prefix:i -> value through one node, as fast as
    the node answers, and records every outcome."""

    def __init__(self, cluster, node, prefix, size=64):
        super().__init__(daemon=True)
        self.mc = cluster.client(node)
        self.prefix = prefix
        self.pad = "x" * size
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.stored = {}       # key -> value, answered STORED
        self.failed = {}       # key -> (value, error text)
        self.attempted = {}    # key -> value, every set sent
        self.i = 0

    def value(self, i):
        return "%s-%d-%s" % (self.prefix, i, self.pad)

    def run(self):
        while not self.stop_ev.is_set():
            key = "%s:%d" % (self.prefix, self.i)
            val = self.value(self.i)
            with self.lock:
                self.attempted[key] = val
            ok, err = self.mc.set_checked(key, val)
            with self.lock:
                if ok:
                    self.stored[key] = val
                else:
                    self.failed[key] = (val, err)
            self.i += 1

    def n_stored(self):
        with self.lock:
            return len(self.stored)

    def n_failed(self):
        with self.lock:
            return len(self.failed)

    def stop(self):
        self.stop_ev.set()
        self.join(30)
        self.mc.disconnect_all()
        assert not self.is_alive(), "writer thread did not stop"
