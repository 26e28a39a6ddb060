#!/usr/bin/python3
"""Disk full while several clients write: every refused write gets an answer.

Scenario (--fsync always, then --fsync everysec): cairn runs with the fail
shim (LD_PRELOAD libcairn_failshim.so, see failshim.c).  Six clients write:
three send one set per round trip, three send pipelined batches that mix
sets with gets of a key acknowledged before the fault.  Then WAL writes fail
with ENOSPC ("wal:ENOSPC:write").  Writes that were waiting for their record
to become durable when the WAL failed (parked connections) and writes sent
afterwards must each be answered with one `SERVER_ERROR ...` line, the gets
in the same batch must keep their replies (the acknowledged value), and the
connection must stay open: after the fault each client's `get` is answered
on the same connection.  A client whose connection is closed, or that gets
anything but STORED / SERVER_ERROR for a set, fails the test.

Run: /usr/bin/python3 tests/faults/test_disk_full.py --bin build/cairn \
       --shim build/tests/faults/libcairn_failshim.so
"""

import os
import random
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib  # noqa: E402
from faultlib import harness  # noqa: E402

SEED = int(os.environ.get("CAIRN_TEST_SEED", "0") or 0) or int(time.time())
print("test_disk_full seed %d (set CAIRN_TEST_SEED to repeat)" % SEED, flush=True)

RUN_LIMIT = 20.0          # seconds a client keeps writing at most
MAX_ROUNDS = 100000       # requests/batches a client sends at most


class Client(threading.Thread):
    def __init__(self, node, name, pipelined, anchor, seed, fault_on, stop):
        super().__init__(daemon=True)
        self.node, self.name, self.pipelined = node, name, pipelined
        self.anchor = anchor              # (key, value) acknowledged before the fault
        self.rng = random.Random(seed)
        self.fault_on, self.stop = fault_on, stop
        self.stored = self.refused = 0
        self.refused_after_fault = 0
        self.problems = []
        self.refusals = set()

    def run(self):
        try:
            self._run()
        except Exception as e:  # recorded, the test asserts on it
            self.problems.append("%s: %s: %s" % (self.name, type(e).__name__, e))

    def _set_reply(self, line):
        if line == b"STORED\r\n":
            self.stored += 1
        elif line.startswith(b"SERVER_ERROR ") and line.endswith(b"\r\n"):
            self.refused += 1
            self.refusals.add(line.strip().decode())
            if self.fault_on.is_set():
                self.refused_after_fault += 1
        else:
            raise AssertionError("unexpected reply to set: %r" % line)

    def _run(self):
        akey, aval = self.anchor
        deadline = time.monotonic() + RUN_LIMIT
        with self.node.conn(timeout=15) as c:
            for i in range(MAX_ROUNDS):
                if self.stop.is_set() or time.monotonic() > deadline:
                    break
                if not self.pipelined:
                    v = b"%s-%d" % (self.name.encode(), i)
                    c.send(b"set %s-%d 0 0 %d\r\n%s\r\n" % (self.name.encode(), i, len(v), v))
                    try:
                        self._set_reply(c.readline())
                    except harness.ConnClosed as e:
                        raise AssertionError("connection closed after a set (round %d): %s" % (i, e))
                    continue
                n = self.rng.randrange(2, 12)
                ops, req = [], b""
                for j in range(n):
                    if self.rng.random() < 0.3:
                        ops.append("get")
                        req += b"get %s\r\n" % akey
                    else:
                        v = b"%s-%d-%d" % (self.name.encode(), i, j)
                        ops.append("set")
                        req += b"set %s-%d-%d 0 0 %d\r\n%s\r\n" % (self.name.encode(), i, j, len(v), v)
                c.send(req)
                try:
                    for op in ops:
                        if op == "set":
                            self._set_reply(c.readline())
                        else:
                            got = c.read_get_reply()
                            if got != aval:
                                raise AssertionError("get %r in a batch answered %r" % (akey, got))
                except harness.ConnClosed as e:
                    raise AssertionError("connection closed in a pipelined batch of %d (round %d):"
                                         " %s" % (n, i, e))
            # after the fault: the same connection still answers
            try:
                got = c.get(akey)
            except (harness.ConnClosed, socket.timeout, OSError) as e:
                raise AssertionError("get on the same connection after the fault failed: %s" % e)
            if got != aval:
                raise AssertionError("get %r after the fault answered %r" % (akey, got))


class DiskFull(unittest.TestCase):
    def setUp(self):
        self.wd = faultlib.Workdir()
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            n.stop()
        self.wd.cleanup()

    def run_policy(self, policy):
        node = faultlib.Node(self.wd, "full_" + policy, ["--fsync", policy], shim=True)
        self.nodes.append(node)
        node.set_fault("")
        node.start()
        anchor = (b"anchor", b"anchor-value-" + policy.encode())
        with node.conn() as c:
            self.assertEqual(c.set(anchor[0], anchor[1]), b"STORED\r\n")
        fault_on, stop = threading.Event(), threading.Event()
        clients = [Client(node, "c%d" % i, i % 2 == 1, anchor, SEED * 100 + i, fault_on, stop)
                   for i in range(6)]
        try:
            for cl in clients:
                cl.start()
            ok = harness.wait_until(lambda: all(cl.stored >= 20 or cl.problems for cl in clients),
                                    20, 0.05)
            self.assertTrue(ok, "clients never got going: %r" % [(cl.stored, cl.problems)
                                                                 for cl in clients])
            node.set_fault("wal:ENOSPC:write")
            fault_on.set()
            node.wait_stat(b"persistence", lambda s: s.get("wal_error", "none") != "none", 15,
                           "wal_error after ENOSPC")
            # every client has been refused at least once (or has failed)
            harness.wait_until(lambda: all(cl.refused_after_fault > 0 or cl.problems
                                           or not cl.is_alive() for cl in clients), 15, 0.05)
        finally:
            stop.set()
            for cl in clients:
                cl.join(RUN_LIMIT + 20)
        problems = [p for cl in clients for p in cl.problems]
        summary = [(cl.name, "pipelined" if cl.pipelined else "one-by-one", cl.stored, cl.refused)
                   for cl in clients]
        print("fsync=%s clients (name, mode, stored, refused): %r; refusals %r"
              % (policy, summary, sorted(set().union(*(cl.refusals for cl in clients)))),
              flush=True)
        self.assertEqual(problems, [], "fsync=%s: clients were not answered while the disk was "
                         "full:\n%s\nlog:\n%s" % (policy, "\n".join(problems), node.log_tail(15)))
        self.assertTrue(all(cl.refused_after_fault > 0 for cl in clients),
                        "a client was never refused: %r" % summary)
        self.assertTrue(node.alive(), "the node died")

    def test_enospc_fsync_always(self):
        self.run_policy("always")

    def test_enospc_fsync_everysec(self):
        self.run_policy("everysec")


if __name__ == "__main__":
    faultlib.main()
