#!/usr/bin/python3
"""A replica stopped, killed and restarted again and again under writes.

Scenario: a primary and one replica, both --wal-segment-size 64k
--wal-backlog 0 (segments are deleted as soon as they are checkpointed, so a
returning replica often finds its position gone: partial and full resyncs).
A writer thread on the primary writes continuously (seeded keys, values,
flags, and some deletes; bounded by count and time).  ROUNDS times (seeded
choice) the replica is stopped with SIGTERM or killed with kill -9, then
restarted on its data directory; or ("kill9-while-catching-up") killed,
restarted, and killed again as soon as its link leaves "down" (before it
has caught up, often in the middle of a resync), then restarted.

After each restart:
  - while the writer runs, the replica's lsn must keep moving: the link may
    not be "up" with the lag frozen (a stalled stream) -- checked by polling
    until the replica's lsn has grown past its value at the restart plus
    some new writes, within a deadline;
  - once the writer pauses, the replica's lsn equals the primary's (bounded
    poll).
At the end both hold byte-for-byte the same items: every key ever written is
compared with `gets` on both (value, flags and CAS unique; misses must match).

Run: /usr/bin/python3 tests/replication/test_replica_restarts.py --bin build/cairn
     [env CAIRN_TEST_SEED=N, CAIRN_TEST_ROUNDS=N]
"""

import os
import random
import threading
import time
import unittest

import cluster
from cluster import wait_until

SEED = int(os.environ.get("CAIRN_TEST_SEED", "0") or 0) or int(time.time())
ROUNDS = int(os.environ.get("CAIRN_TEST_ROUNDS", "10"))
print("test_replica_restarts seed %d rounds %d (set CAIRN_TEST_SEED / CAIRN_TEST_ROUNDS to "
      "repeat)" % (SEED, ROUNDS), flush=True)

ARGS = ["--wal-segment-size", "64k", "--wal-backlog", "0"]
N_KEYS = 3000
WRITER_MAX_OPS = 2000000
WRITER_MAX_SECONDS = 600


class Writer(threading.Thread):
    """Pipelined batches of sets/deletes on the primary until stopped;
    pause()/resume() hold it between batches."""

    def __init__(self, node, seed):
        super().__init__(daemon=True)
        self.node = node
        self.rng = random.Random(seed)
        self.stop_ev = threading.Event()
        self.run_ev = threading.Event()
        self.run_ev.set()
        self.idle = threading.Event()
        self.ops = 0
        self.error = None

    def run(self):
        try:
            self._run()
        except Exception as e:
            self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            self.idle.set()

    def _run(self):
        deadline = time.monotonic() + WRITER_MAX_SECONDS
        with self.node.conn(timeout=30) as c:
            while not self.stop_ev.is_set() and self.ops < WRITER_MAX_OPS \
                    and time.monotonic() < deadline:
                if not self.run_ev.is_set():
                    self.idle.set()
                    self.run_ev.wait(1.0)
                    continue
                self.idle.clear()
                req, n = b"", 50
                for _ in range(n):
                    k = b"key%d" % self.rng.randrange(N_KEYS)
                    if self.rng.random() < 0.1:
                        req += b"delete %s noreply\r\n" % k
                    else:
                        v = b"%s-%d-" % (k, self.ops) * self.rng.randrange(1, 120)
                        req += cluster.storage_cmd("set", k, v, self.rng.randrange(1 << 16),
                                                   noreply=True)
                    self.ops += 1
                c.exchange(req, timeout=30)

    def pause(self):
        self.run_ev.clear()
        if not wait_until(lambda: self.idle.is_set(), 30):
            raise AssertionError("writer did not pause")

    def resume(self):
        self.idle.clear()
        self.run_ev.set()


class ReplicaRestarts(unittest.TestCase):
    def setUp(self):
        self.c = cluster.Cluster(1, primary_args=ARGS, replica_args_=ARGS)
        self.primary = self.c.primary
        self.replica = self.c.replicas[0]
        self.writer = None

    def tearDown(self):
        if self.writer is not None:
            self.writer.stop_ev.set()
            self.writer.run_ev.set()
            self.writer.join(40)
        self.c.cleanup()

    def assert_lsn_moves(self, label):
        """While the writer runs, the replica's lsn must pass its current
        value plus what the primary wrote meanwhile (not link up, lag
        frozen)."""
        start = self.replica.lsn()
        target = self.primary.lsn() + 200
        ok = wait_until(lambda: self.writer.error or self.replica.lsn() >= target, 30, 0.05)
        self.assertIsNone(self.writer.error, "writer failed")
        rst = self.replica.rstats()
        self.assertTrue(ok, "%s: replica lsn stuck while the primary writes: was %d, now %d, "
                        "primary %d (link %s, lag_lsn %s)%s" % (label, start, rst["lsn"],
                                                                self.primary.lsn(), rst.get("link"),
                                                                rst.get("lag_lsn"), self.log_tails()))

    def assert_converged(self, label):
        self.writer.pause()
        want = self.primary.lsn()
        ok = wait_until(lambda: self.replica.rstats()["lsn"] == want, 30, 0.05)
        rst = self.replica.rstats()
        self.assertTrue(ok, "%s: replica lsn %d never reached the primary's %d: %r%s"
                        % (label, rst["lsn"], want, rst, self.log_tails()))

    def log_tails(self, lines=25):
        """The end of both nodes' logs, for a failure message."""
        out = []
        for name, node in (("primary", self.primary), ("replica", self.replica)):
            out.append("\n--- %s log (last %d lines) ---\n" % (name, lines))
            out.append("\n".join(node.stderr_text().splitlines()[-lines:]))
        return "".join(out)

    def test_restart_rounds(self):
        rng = random.Random(SEED)
        cluster.wait_link(self.replica, "up")
        self.writer = Writer(self.primary, SEED + 1)
        self.writer.start()
        self.assert_lsn_moves("before the first restart")
        for rnd in range(ROUNDS):
            how = rng.choice(["sigterm", "kill9", "kill9-while-catching-up"])
            # let it run a little while the writer writes (bounded)
            target = self.primary.lsn() + rng.randrange(500, 5000)
            wait_until(lambda: self.writer.error or self.primary.lsn() >= target, 20, 0.05)
            if how == "sigterm":
                rc = self.replica.stop()
                self.assertEqual(rc, 0, "round %d: replica exit status on SIGTERM" % rnd)
            else:
                self.replica.kill9()
            # the primary writes on while the replica is down
            target = self.primary.lsn() + rng.randrange(0, 5000)
            wait_until(lambda: self.writer.error or self.primary.lsn() >= target, 20, 0.05)
            self.replica.start()
            if how == "kill9-while-catching-up":
                # killed again before it has caught up (often mid-resync)
                wait_until(lambda: self.replica.rstats().get("link") != "down", 10, 0.01)
                self.replica.kill9()
                self.replica.start()
            label = "round %d (%s)" % (rnd, how)
            print("%s: primary lsn %d, %d writer ops" % (label, self.primary.lsn(),
                                                         self.writer.ops), flush=True)
            self.assert_lsn_moves(label)
            self.assert_converged(label)
            self.writer.resume()
        self.writer.pause()
        self.assertIsNone(self.writer.error, "writer failed")
        self.assert_converged("end")
        keys = [b"key%d" % i for i in range(N_KEYS)]
        ref = cluster.assert_same(self, [self.primary, self.replica], keys, min_keys=N_KEYS // 2,
                                  cas=True)
        print("identical: %d keys (value, flags, cas) after %d rounds, %d writer ops"
              % (len(ref), ROUNDS, self.writer.ops), flush=True)


if __name__ == "__main__":
    cluster.main()
