# Replication state churns while every node answers `stats` (written for the
# ThreadSanitizer build, useful on any build).
#
# Scenario: a primary with a cluster secret, a replica with the right secret
# taking writes, and an intruder with a wrong secret.  For a few seconds, at
# once:
#   - a client writes to the primary without pause;
#   - one client per node asks `stats replication` and `stats` in a loop
#     (worker threads read what the replication thread writes);
#   - the replica is re-pointed between two spellings of the primary's
#     address (`replicaof 127.0.0.1 P` / `replicaof 127.1 P`), so it drops
#     the link and handshakes again each time (partial resyncs);
#   - the intruder is re-pointed the same way, so the primary refuses it
#     ("authentication failed") over and over.
# Then the replica is left on the primary and must converge on it.  Every
# node must stop cleanly on SIGTERM (exit 0) and log no sanitizer report:
# Cluster.cleanup checks both, and on the TSan build a race report stops the
# node with exit status 66.

import os
import threading
import time
import unittest

import cluster
from cluster import Node, assert_same, load, replica_args, wait_caught_up, wait_link

CHURN_SECONDS = 6.0 * cluster.harness.SLOWDOWN ** 0.5


class Looper(threading.Thread):
    """Runs fn(conn) against a node until stopped; counts rounds, keeps the
    first exception."""

    def __init__(self, node, fn):
        super().__init__(daemon=True)
        self.node, self.fn = node, fn
        self.halt = threading.Event()
        self.rounds = 0
        self.error = None

    def run(self):
        try:
            with self.node.conn(timeout=30.0) as c:
                while not self.halt.is_set():
                    self.fn(c, self.rounds)
                    self.rounds += 1
        except Exception as e:          # reported by the test
            self.error = e

    def stop(self):
        self.halt.set()
        self.join(60)


def ask_stats(c, _i):
    c.stats(b"replication")
    c.stats()


def repoint(port):
    def fn(c, i):
        host = b"127.0.0.1" if i % 2 else b"127.1"
        out = c.request(b"replicaof %s %d\r\n" % (host, port))
        if out != b"OK\r\n":
            raise AssertionError("replicaof: %r" % out)
        time.sleep(0.05)
    return fn


def write(c, i):
    out = c.set(b"churn:%d" % (i % 500), b"v%d" % i)
    if out != b"STORED\r\n":
        raise AssertionError("set: %r" % out)


class ChurnTest(cluster.SecretNodes, unittest.TestCase):
    def setUp(self):
        self.make_tmp("cairn-repl-churn-")
        good = self.secret_file("good", b"right secret\n")
        bad = self.secret_file("bad", b"wrong secret\n")
        self.p = self.node("primary", ["--cluster-secret-file", good])
        self.r = self.node("replica", replica_args(self.p, ["--cluster-secret-file", good]))
        self.x = self.node("intruder", replica_args(self.p, ["--cluster-secret-file", bad]))

    def test_churn(self):
        p, r, x = self.p, self.r, self.x
        load(p, {b"k:%d" % i: (b"v%d" % i, i) for i in range(200)})
        wait_caught_up(p, [r])
        port = p.repl_port
        loops = [Looper(p, write)]
        loops += [Looper(n, ask_stats) for n in (p, r, x)]
        loops += [Looper(r, repoint(port)), Looper(x, repoint(port))]
        for t in loops:
            t.start()
        time.sleep(CHURN_SECONDS)
        for t in loops:
            t.stop()
        for t in loops:
            self.assertIsNone(t.error, "%s: %r" % (t.node.name, t.error))
            self.assertGreater(t.rounds, 0, t.node.name)

        with r.conn() as c:
            self.assertEqual(c.request(b"replicaof 127.0.0.1 %d\r\n" % port), b"OK\r\n")
        wait_link(r, "up")
        wait_caught_up(p, [r])
        keys = [b"k:%d" % i for i in range(200)] + [b"churn:%d" % i for i in range(500)]
        assert_same(self, [p, r], keys, min_keys=200)
        self.assertIn("authentication failed", p.stderr_text())
        self.assertNotEqual(x.rstats().get("link"), "up")


if __name__ == "__main__":
    cluster.main()
