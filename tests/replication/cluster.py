# Helpers shared by the replication tests (test_*.py in this directory).
#
# They reuse ../integration/harness.py (imported through sys.path, never
# edited): harness.Server starts cairn on 127.0.0.1 and a free client port.
# A Node here is one data directory plus a replication port that both outlive
# the processes started on them, so a node can be stopped (SIGTERM), killed
# (SIGKILL), frozen (SIGSTOP/SIGCONT) and restarted on the same directory and
# the same replication port (its client port changes on each start).
#
# Cluster(n_replicas) starts a primary and N replicas (--replica-of the
# primary's replication port), each with its own temp data dir, free client
# port and free replication port.  cleanup() SIGCONTs and kills every process
# and removes every directory.
#
# Every wait is a bounded poll (harness.wait_until); nothing sleeps where a
# condition can be polled.

import os
import shutil
import signal
import sys
import tempfile

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "integration"))

import harness  # noqa: E402

HOST = harness.HOST
wait_until = harness.wait_until
main = harness.main

POLL_TIMEOUT = 30.0      # seconds for any polled condition
READONLY = b"SERVER_ERROR readonly replica\r\n"
SANITIZER_MARKERS = harness.SANITIZER_MARKERS

def make_dir(prefix="cairn-repl-"):
    return tempfile.mkdtemp(prefix=prefix)


class SecretNodes:
    """For tests whose nodes share cluster secrets: secret files in a temp
    dir (self.tmp, removed at the end) and nodes stopped at cleanup."""

    def make_tmp(self, prefix):
        self.tmp = make_dir(prefix)
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def secret_file(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def node(self, name, args):
        n = Node(name, ["-t", "2"] + list(args))
        self.addCleanup(n.cleanup)
        n.start()
        return n


class Node:
    """One data directory and replication port, and the cairn process (if
    any) serving them."""

    def __init__(self, name, args=(), data_dir=None):
        self.name = name
        self.own_dir = data_dir is None
        self.data_dir = data_dir or make_dir("cairn-repl-%s-" % name)
        self.args = list(args)
        self.repl_port = None
        self.server = None
        self.stopped = False         # SIGSTOPped
        self.last_stderr = ""
        self.logs = []               # stderr of every finished process

    # -- lifecycle -------------------------------------------------------

    def start(self, extra=()):
        assert self.server is None, "already running"
        if self.repl_port is None:
            self.repl_port = harness.free_port()
        self.server = harness.Server(args=["--data-dir", self.data_dir,
                                           "--repl-port", str(self.repl_port),
                                           "--node-id", self.name]
                                     + self.args + list(extra), external=False).start()
        self.stopped = False
        return self

    def _forget(self, s):
        self.last_stderr = s.stderr_text()
        self.logs.append(self.last_stderr)

    def stop(self):
        """SIGTERM (clean stop; SIGKILL after a bounded wait).  Returns the
        exit status."""
        s, self.server = self.server, None
        if self.stopped:
            s.proc.send_signal(signal.SIGCONT)
            self.stopped = False
        rc = harness._kill_proc(s.proc)
        self._forget(s)
        s.stop()
        return rc

    def kill9(self):
        s, self.server = self.server, None
        s.proc.kill()
        rc = s.proc.wait(harness.STOP_TIMEOUT)
        self.stopped = False
        self._forget(s)
        s.stop()
        return rc

    def sigstop(self):
        harness.freeze(self.server.proc.pid)
        self.stopped = True

    def sigcont(self):
        self.server.proc.send_signal(signal.SIGCONT)
        self.stopped = False

    def cleanup(self):
        """Stop the process (SIGCONT first if frozen, then SIGTERM), remove
        the data dir, and raise if the process did not exit cleanly or any
        process of this node reported a sanitizer error."""
        problems = []
        if self.server is not None:
            s, self.server = self.server, None
            if s.proc is not None and s.proc.poll() is None:
                try:
                    s.proc.send_signal(signal.SIGCONT)
                except (ProcessLookupError, OSError):
                    pass
            self.stopped = False
            rc = harness._kill_proc(s.proc)      # SIGTERM, bounded wait, SIGKILL
            self._forget(s)                      # the whole log, exit included
            s.stop(check=False)                  # checked below, with every log
            if rc != 0:
                problems.append("%s exited with status %r on SIGTERM" % (self.name, rc))
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        for log in self.logs:
            for marker in SANITIZER_MARKERS:
                if marker in log:
                    i = log.index(marker)
                    problems.append("%s: %s" % (self.name, log[max(0, i - 200):i + 3000]))
                    break
        self.logs = []
        if problems:
            raise AssertionError("\n".join(problems))

    def stderr_text(self):
        """Everything this node logged so far (all its processes)."""
        cur = self.server.stderr_text() if self.server is not None else ""
        return "".join(self.logs) + cur

    # -- talking to it -----------------------------------------------------

    @property
    def repl_addr(self):
        return "%s:%d" % (HOST, self.repl_port)

    @property
    def port(self):
        return self.server.port

    def conn(self, timeout=harness.DEFAULT_TIMEOUT):
        return self.server.conn(timeout)

    def stats(self, sub=b""):
        with self.conn() as c:
            return c.stats(sub)

    def rstats(self):
        """`stats replication`, numbers as ints."""
        d = self.stats(b"replication")
        for k, v in list(d.items()):
            if v.isdigit():
                d[k] = int(v)
        return d

    def pstats(self):
        d = self.stats(b"persistence")
        for k, v in list(d.items()):
            if v.isdigit():
                d[k] = int(v)
        return d

    def lsn(self):
        return self.rstats()["lsn"]

    def wal_segments(self):
        d = os.path.join(self.data_dir, "wal")
        try:
            return sorted(f for f in os.listdir(d) if f.endswith(".log"))
        except OSError:
            return []


def replica_args(primary, extra=()):
    return ["--replica-of", primary.repl_addr] + list(extra)


def cleanup_all(things):
    """Call cleanup() on each (every one, even after a failure), then raise
    one AssertionError with every failure's message."""
    errors = []
    for t in things:
        try:
            t.cleanup()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        raise AssertionError("\n".join(errors))


class Cluster:
    """A primary and n replicas, started on construction."""

    def __init__(self, n_replicas, primary_args=(), replica_args_=(), start=True):
        self.primary = Node("primary", primary_args)
        self.replicas = []
        self.nodes = [self.primary]
        try:
            self.primary.start()
            for i in range(n_replicas):
                r = Node("replica%d" % (i + 1), replica_args(self.primary, replica_args_))
                self.replicas.append(r)
                self.nodes.append(r)
                if start:
                    r.start()
        except Exception:
            self.cleanup()
            raise

    def add(self, node):
        self.nodes.append(node)
        return node

    def cleanup(self):
        cleanup_all(self.nodes)


# -- waiting -----------------------------------------------------------------

def wait_link(replica, state="up", timeout=POLL_TIMEOUT):
    ok = wait_until(lambda: replica.rstats().get("link") == state, timeout, 0.05)
    if not ok:
        raise AssertionError("%s: link never became %s: %r" % (replica.name, state,
                                                               replica.rstats()))


def wait_caught_up(primary, replicas, timeout=POLL_TIMEOUT):
    """Poll until every replica's lsn equals the primary's (re-read each
    round) and its link is up.  Returns that lsn or raises."""
    def done():
        want = primary.lsn()
        for r in replicas:
            st = r.rstats()
            if st.get("link") != "up" or st["lsn"] != want:
                return False
        return want or True
    ok = wait_until(done, timeout, 0.05)
    if not ok:
        raise AssertionError("replicas did not catch up with the primary (lsn %d): %s"
                             % (primary.lsn(), ["%s: %r" % (r.name, r.rstats())
                                                for r in replicas]))
    return ok


def wait_streaming(primary, n=1, timeout=POLL_TIMEOUT):
    """Poll until the primary has n replicas in state=streaming."""
    def done():
        st = primary.rstats()
        return sum(1 for k, v in st.items()
                   if k.startswith("replica") and "state=streaming" in str(v)) >= n
    if not wait_until(done, timeout, 0.05):
        raise AssertionError("primary never had %d streaming replicas: %r" % (n, primary.rstats()))


# -- contents ------------------------------------------------------------------

def get_many(conn, keys, batch=200, cas=False):
    """Multi-gets: {key(bytes): (value, flags)} for the present keys, or
    (value, flags, cas) with cas=True (then `gets`)."""
    out = {}
    keys = [k.encode() if isinstance(k, str) else k for k in keys]
    for i in range(0, len(keys), batch):
        part = keys[i:i + batch]
        conn.send((b"gets " if cas else b"get ") + b" ".join(part) + b"\r\n")
        while True:
            line = conn.readline()
            if line == b"END\r\n":
                break
            f = line.split()
            if f[0] != b"VALUE" or len(f) != (5 if cas else 4):
                raise AssertionError("unexpected reply to get: %r" % line)
            n = int(f[3])
            data = conn.read_exact(n + 2)
            if data[-2:] != b"\r\n":
                raise AssertionError("value of %r not followed by CRLF" % f[1])
            out[f[1]] = (data[:-2], int(f[2])) + ((int(f[4]),) if cas else ())
    return out


def dump(node, keys, cas=False):
    with node.conn(timeout=15.0) as c:
        return get_many(c, keys, cas=cas)


def assert_same(tc, nodes, keys, min_keys=0, cas=False):
    """Every key reads byte-identical (value and flags, and with cas=True
    the CAS unique too) on every node.  Returns the first node's dump."""
    keys = sorted(set(k.encode() if isinstance(k, str) else k for k in keys))
    ref = dump(nodes[0], keys, cas)
    tc.assertGreaterEqual(len(ref), min_keys, "%s holds too few keys" % nodes[0].name)
    for n in nodes[1:]:
        got = dump(n, keys, cas)
        if got != ref:
            missing = [k for k in ref if k not in got][:5]
            extra = [k for k in got if k not in ref][:5]
            differ = [k for k in ref if k in got and got[k] != ref[k]][:5]
            tc.fail("%s differs from %s: %d vs %d keys; missing %r, extra %r, differ %r"
                    % (n.name, nodes[0].name, len(got), len(ref), missing, extra,
                       [(k, ref[k][1:], got[k][1:], ref[k][0][:40], got[k][0][:40])
                        for k in differ]))
    return ref


def storage_cmd(cmd, key, value, flags=0, exptime=0, cas=None, noreply=False):
    if isinstance(key, str):
        key = key.encode()
    line = b"%s %s %d %d %d" % (cmd.encode(), key, flags, exptime, len(value))
    if cas is not None:
        line += b" %d" % cas
    if noreply:
        line += b" noreply"
    return line + b"\r\n" + value + b"\r\n"


def load(node, items, batch=500):
    """Pipelined sets of {key: (value, flags)}; every reply must be STORED."""
    items = list(items.items()) if isinstance(items, dict) else list(items)
    with node.conn(timeout=30.0) as c:
        for i in range(0, len(items), batch):
            part = items[i:i + batch]
            out = c.exchange(b"".join(storage_cmd("set", k, v, f) for k, (v, f) in part))
            if out != b"STORED\r\n" * len(part):
                raise AssertionError("load on %s: %r" % (node.name, out[:300]))
