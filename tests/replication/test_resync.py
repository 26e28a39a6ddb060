# Resynchronisation:
#  (a) a replica restarted (SIGTERM, and separately kill -9) within the
#      backlog resyncs partially: the primary's partial_syncs goes up,
#      full_syncs does not, and the contents end identical;
#  (b) a replica started empty after the primary trimmed its old WAL
#      segments (--wal-segment-size 64k --wal-backlog 0) gets a full sync
#      while a writer keeps writing, and ends identical (CAS uniques too);
#      a stale replica (stopped, then trimmed past) is resynced in full and
#      keeps none of the keys deleted meanwhile, then restarts partially;
#      a replica killed -9 in the middle of a snapshot resyncs in full again;
#  (c) link cut and restored: the replica SIGSTOPped for ~7 s (longer than
#      the 5 s heartbeat timeout) reconnects by itself after SIGCONT and
#      converges; the primary killed and restarted on the same data dir: the
#      replica's link goes down, comes back up, resyncs partially, converges.

import os
import random
import threading
import time
import unittest

import cluster
from cluster import (Node, assert_same, load, replica_args, wait_caught_up,
                     wait_link, wait_until)

POLL = cluster.POLL_TIMEOUT
SIGSTOP_SECONDS = 7.0


def items(prefix, n, rng, size=(1, 200)):
    return {b"%s:%d" % (prefix, i): (bytes(rng.getrandbits(8) for _ in range(rng.randint(*size))),
                                     rng.getrandbits(32))
            for i in range(n)}


class ResyncTest(unittest.TestCase):
    def setUp(self):
        self.rng = random.Random(7)
        self.c = cluster.Cluster(1, primary_args=["-t", "2"], replica_args_=["-t", "2"])
        self.addCleanup(self.c.cleanup)
        self.p, self.r = self.c.primary, self.c.replicas[0]
        self.keys = set()

    def write(self, prefix, n):
        it = items(prefix, n, self.rng)
        load(self.p, it)
        self.keys.update(it)
        return it

    def mutate(self, n):
        """Overwrites, deletes and appends on keys already written."""
        ks = sorted(self.keys)
        with self.p.conn() as c:
            cmds = []
            for k in self.rng.sample(ks, min(n, len(ks))):
                op = self.rng.random()
                if op < 0.4:
                    cmds.append(cluster.storage_cmd("set", k, b"new-%d" % self.rng.getrandbits(40), 77))
                elif op < 0.7:
                    cmds.append(b"delete %s\r\n" % k)
                else:
                    cmds.append(cluster.storage_cmd("append", k, b"+tail"))
            out = c.exchange(b"".join(cmds))
            self.assertNotIn(b"ERROR", out)

    def restart_replica_partially(self, kill):
        p, r = self.p, self.r
        self.write(b"a", 2000)
        wait_caught_up(p, [r])
        before = p.rstats()
        if kill:
            self.assertEqual(r.kill9(), -9)
        else:
            self.assertEqual(r.stop(), 0, "replica did not stop cleanly on SIGTERM:\n"
                             + r.last_stderr[-2000:])
        # While it is away: more writes, overwrites and deletes.
        self.write(b"b", 2000)
        self.mutate(500)
        r.start()
        wait_caught_up(p, [r])
        after = p.rstats()
        self.assertEqual(after["full_syncs"], before["full_syncs"], after)
        self.assertGreaterEqual(after["partial_syncs"], before["partial_syncs"] + 1, after)
        assert_same(self, [p, r], self.keys, min_keys=3000)
        # And it keeps following.
        self.write(b"c", 300)
        wait_caught_up(p, [r])
        assert_same(self, [p, r], self.keys, min_keys=3000)

    def test_a1_sigterm_restart_resyncs_partially(self):
        self.restart_replica_partially(kill=False)

    def test_a2_kill9_restart_resyncs_partially(self):
        self.restart_replica_partially(kill=True)

    def test_c1_sigstop_longer_than_heartbeat_timeout(self):
        p, r = self.p, self.r
        self.write(b"a", 1000)
        wait_caught_up(p, [r])
        r.sigstop()
        try:
            # The scenario itself: the replica is silent for longer than the
            # link timeout while the primary keeps taking writes.
            deadline = time.monotonic() + SIGSTOP_SECONDS
            i = 0
            while time.monotonic() < deadline:
                self.write(b"s%d" % i, 100)
                i += 1
                time.sleep(0.25)
        finally:
            r.sigcont()
        self.mutate(300)
        wait_caught_up(p, [r], timeout=POLL)
        assert_same(self, [p, r], self.keys, min_keys=1000)
        self.write(b"after", 200)
        wait_caught_up(p, [r])
        assert_same(self, [p, r], self.keys, min_keys=1000)

    def test_c2_primary_killed_and_restarted(self):
        p, r = self.p, self.r
        self.write(b"a", 2000)
        wait_caught_up(p, [r])
        lsn = p.lsn()
        self.assertEqual(p.kill9(), -9)
        wait_link(r, "down")
        # Reads go on on the replica meanwhile.
        self.assertEqual(len(cluster.dump(r, self.keys)), len(self.keys))
        p.start()       # same data dir, same replication port
        self.assertGreaterEqual(p.lsn(), lsn)
        wait_caught_up(p, [r])
        st = p.rstats()
        self.assertEqual(st["full_syncs"], 0, st)
        self.assertGreaterEqual(st["partial_syncs"], 1, st)
        self.write(b"b", 1000)
        self.mutate(300)
        wait_caught_up(p, [r])
        assert_same(self, [p, r], self.keys, min_keys=2000)


class FullSyncTest(unittest.TestCase):
    """(b): the primary trimmed the records a new replica would need."""

    def setUp(self):
        self.rng = random.Random(11)
        self.p = Node("primary", ["-t", "2", "-m", "256", "--wal-segment-size", "64k", "--wal-backlog", "0"])
        self.addCleanup(self.p.cleanup)
        self.p.start()

    def test_b_full_sync_under_writes(self):
        p = self.p
        keys = set()
        it = items(b"a", 6000, self.rng, size=(50, 400))   # ~1.3 MB: ~20 segments
        load(p, it)
        keys.update(it)
        first = "%016x.log" % 1

        def trimmed():
            st = p.pstats()
            segs = p.wal_segments()
            return st["checkpoint_lsn"] > 0 and segs and first not in segs
        self.assertTrue(wait_until(trimmed, POLL, 0.1),
                        "the primary never trimmed its first WAL segment: %r %r"
                        % (p.pstats(), p.wal_segments()))
        self.assertGreater(p.pstats()["checkpoint_lsn"], 1)

        stop = threading.Event()
        written = set()
        errors = []

        def writer():
            wr = random.Random(5)
            i = 0
            try:
                with p.conn(timeout=30.0) as c:
                    while not stop.is_set():
                        batch = {}
                        for _ in range(50):
                            k = b"w:%d" % wr.randint(0, 3000)
                            batch[k] = (b"v%d-" % i + bytes(wr.getrandbits(8) for _ in range(100)),
                                        wr.getrandbits(32))
                            i += 1
                        out = c.exchange(b"".join(cluster.storage_cmd("set", k, v, f)
                                                  for k, (v, f) in batch.items()))
                        if out != b"STORED\r\n" * len(batch):
                            errors.append(out[:200])
                            return
                        written.update(batch)
            except Exception as e:     # reported by the main thread
                errors.append(repr(e))

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        r = Node("replica1", replica_args(p, ["-t", "2"]))
        self.addCleanup(r.cleanup)
        try:
            self.assertTrue(wait_until(lambda: len(written) > 500, POLL, 0.05), errors)
            r.start()
            # Let it sync while the writer goes on, then stop writing.
            wait_link(r, "up")
            self.assertTrue(wait_until(lambda: len(written) > 2500, POLL, 0.05), errors)
        finally:
            stop.set()
            t.join(30)
        self.assertFalse(errors)
        keys.update(written)
        wait_caught_up(p, [r])
        st = p.rstats()
        self.assertGreaterEqual(st["full_syncs"], 1, st)
        assert_same(self, [p, r], keys, min_keys=6000, cas=True)
        self.assertIn("full resync", r.stderr_text())

    def test_b3_replica_killed_during_full_sync(self):
        """kill -9 while the snapshot is arriving: restarted, the replica is
        resynced in full again and ends identical (no half snapshot kept
        as if complete)."""
        p = self.p
        rng = random.Random(13)
        blob = bytes(rng.getrandbits(8) for _ in range(4096))
        data = {b"bulk:%d" % i: (blob[i % 2048:] + b"%d" % i, i) for i in range(12000)}
        load(p, data, batch=200)      # ~25 MB: the snapshot takes a while
        self.assertTrue(wait_until(lambda: "%016x.log" % 1 not in p.wal_segments(), POLL, 0.1))
        r = Node("replica1", replica_args(p, ["-t", "2", "-m", "256"]))
        self.addCleanup(r.cleanup)
        r.start()
        def midway():
            link = r.rstats().get("link")
            if link == "up":
                return "up"
            if link == "syncing" and int(r.stats().get("curr_items", 0)) > 1000:
                return "syncing"
            return None
        state = wait_until(midway, POLL, 0.002)
        self.assertEqual(r.kill9(), -9)
        before = p.rstats()
        r.start()
        wait_caught_up(p, [r])
        st = p.rstats()
        if state == "syncing":
            self.assertGreaterEqual(st["full_syncs"], before["full_syncs"] + 1, st)
        assert_same(self, [p, r], data, min_keys=12000)

    def test_b2_stale_replica_full_sync_then_restart(self):
        """A replica that holds old data is resynced in full: keys deleted on
        the primary meanwhile do not survive; restarted afterwards, it
        resumes partially from the snapshot's LSN."""
        p = self.p
        r = Node("replica1", replica_args(p, ["-t", "2"]))
        self.addCleanup(r.cleanup)
        r.start()
        old = items(b"old", 2000, self.rng)
        load(p, old)
        wait_caught_up(p, [r])
        r_lsn = r.lsn()
        self.assertEqual(r.stop(), 0)

        gone = sorted(old)[:500]
        with p.conn() as c:
            self.assertEqual(c.exchange(b"".join(b"delete %s\r\n" % k for k in gone)),
                             b"DELETED\r\n" * len(gone))
        changed = {k: (b"changed", 9) for k in sorted(old)[500:1000]}
        load(p, changed)
        new = items(b"new", 6000, self.rng, size=(50, 400))
        new.update({b"big:%d" % i: (bytes([i]) * 400000, i) for i in range(4)})
        load(p, new)

        def trimmed_past_replica():
            segs = p.wal_segments()
            return segs and int(segs[0][:16], 16) > r_lsn + 1
        self.assertTrue(wait_until(trimmed_past_replica, POLL, 0.1),
                        "the primary kept LSN %d: %r %r" % (r_lsn + 1, p.wal_segments(), p.pstats()))
        before = p.rstats()
        r.start()
        wait_caught_up(p, [r])
        st = p.rstats()
        self.assertGreaterEqual(st["full_syncs"], before["full_syncs"] + 1, st)
        keys = set(old) | set(new)
        got = assert_same(self, [p, r], keys, min_keys=7000)
        assert_same(self, [p, r], keys, min_keys=7000, cas=True)
        for k in gone:
            self.assertNotIn(k, got)
        self.assertEqual(got[b"big:3"], (b"\x03" * 400000, 3))

        # Restarted after the full sync: partial from where it is.
        self.assertEqual(r.stop(), 0)
        load(p, {b"after:%d" % i: (b"a%d" % i, i) for i in range(100)})
        before = p.rstats()
        r.start()
        wait_caught_up(p, [r])
        st = p.rstats()
        self.assertEqual(st["full_syncs"], before["full_syncs"], st)
        self.assertEqual(st["partial_syncs"], before["partial_syncs"] + 1, st)
        assert_same(self, [p, r], keys | {b"after:%d" % i for i in range(100)}, min_keys=7100)


if __name__ == "__main__":
    cluster.main()
