#!/usr/bin/python3
"""Replication link faults, through tests/faults/proxy.py.

Scenario: one primary (--wal-segment-size 64k --wal-backlog 0, so that a
new replica needs a full sync) loaded with 50,000 items of 1 KB; each test
starts a fresh replica that follows the primary through the proxy
(--replica-of 127.0.0.1:<proxy>), then misbehaves the link:
  - cut mid-snapshot, stall mid-snapshot (longer than the 5 s link timeout),
  - cut and stall mid-stream while the primary keeps writing,
  - stall while the primary takes ~100 MB of writes: the primary's VmRSS
    must grow by less than 64 MB (REPL_OUTPUT_LIMIT is 8 MB per replica),
  - kill -9 the replica during a full sync, restart it.
Every time the replica must resume and converge: same LSN, link up, every
key with the same value as on the primary (all keys compared).
Run: /usr/bin/python3 test_link_faults.py --bin build/cairn
"""

import hashlib
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib  # noqa: E402
from proxy import Proxy  # noqa: E402

N_ITEMS = 50000
VALUE_SIZE = 1024
RSS_GROWTH_BOUND_MB = 200  # the fixed buffers that fill while writes go on (WAL append,
                           # spare and unsynced copy, 8 MiB of replica output, one LMDB
                           # transaction's dirty pages, reader buffers) and malloc's arenas;
                           # the stall lasts ~200 MB of writes, so memory that grew with
                           # them (on top of the 50-150 MB base) would cross it
CONVERGE_TIMEOUT = 90


def key(i):
    return b"item%06d" % i


def value(i, gen=0):
    head = b"%d:%d:" % (i, gen)
    return head + b"x" * (VALUE_SIZE - len(head))


def digest(node, keys):
    """(count, sha256) of key=value for every key present on node."""
    with node.conn(timeout=30) as c:
        got = faultlib.get_many(c, keys, batch=200)
    h = hashlib.sha256()
    for k in sorted(got):
        h.update(k + b"=" + got[k] + b"\n")
    return len(got), h.hexdigest()


class LinkFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wd = faultlib.Workdir()
        try:
            cls._load_primary()
        except BaseException:
            # tearDownClass does not run when setUpClass fails.
            if getattr(cls, "primary", None) is not None:
                sys.stderr.write("---- primary log tail:\n%s\n" % cls.primary.log_tail(25))
                cls.primary.stop()
            cls.wd.cleanup()
            raise

    @classmethod
    def _load_primary(cls):
        cls.primary = faultlib.Node(cls.wd, "primary",
                                    ["-m", "1024", "--wal-segment-size", "64k", "--wal-backlog", "0"])
        cls.primary.start()
        cls.keys = [key(i) for i in range(N_ITEMS)]
        cls.gen = 0
        with cls.primary.conn(timeout=60) as c:
            faultlib.set_many(c, [(key(i), value(i)) for i in range(N_ITEMS)], batch=500, noreply=True)
            st = c.stats()
            # A pipelined load lands in one big segment; one more write
            # closes it, so that the checkpointer folds (and trims) it all.
            c.set(b"rotate", b"1")
        assert int(st["curr_items"]) == N_ITEMS, st["curr_items"]
        # Let the checkpointer fold and trim, so a new replica needs a full
        # sync (each probe writes once more, closing the segment before).
        def folded(s):
            with cls.primary.conn() as c:
                c.set(b"rotate", b"1")
            return int(s["checkpoint_lsn"]) >= N_ITEMS
        cls.primary.wait_stat(b"persistence", folded, 30, "the primary's checkpoint")

    @classmethod
    def tearDownClass(cls):
        cls.primary.stop()
        cls.wd.cleanup()

    def setUp(self):
        self.proxy = Proxy(("127.0.0.1", self.primary.repl_port)).start()
        self.replicas = []

    def tearDown(self):
        res = getattr(self._outcome, "result", None)
        failed = res is not None and any(t is self for t, _ in res.failures + res.errors)
        for r in self.replicas:
            if failed:
                sys.stderr.write("---- %s log tail:\n%s\n" % (r.name, r.log_tail(25)))
            r.stop()
        if failed:
            sys.stderr.write("---- primary log tail:\n%s\n" % self.primary.log_tail(25))
        self.proxy.stop()

    def replica(self, name):
        r = faultlib.Node(self.wd, name, ["-m", "1024", "--replica-of",
                                          "127.0.0.1:%d" % self.proxy.port])
        self.replicas.append(r)
        return r

    def write_more(self, n, keys_from=0, noreply=True):
        """Overwrite n existing keys on the primary (new generation)."""
        type(self).gen += 1
        g = self.gen
        with self.primary.conn(timeout=60) as c:
            replies = faultlib.set_many(c, [(key(i), value(i, g)) for i in range(keys_from, keys_from + n)],
                                        batch=500 if noreply else 50, noreply=noreply)
        if not noreply:
            assert replies == [b"STORED\r\n"] * n, set(replies)

    def assert_converges(self, replica, what):
        def same_lsn():
            p = self.primary.stats(b"replication")
            r = replica.stats(b"replication")
            return r.get("link") == "up" and r.get("lsn") == p.get("lsn")
        if not faultlib.wait_until(same_lsn, CONVERGE_TIMEOUT, 0.2):
            self.fail("%s: replica did not converge in %d s: primary %r replica %r" % (
                what, CONVERGE_TIMEOUT, self.primary.stats(b"replication"),
                replica.stats(b"replication")))
        dp = digest(self.primary, self.keys)
        dr = digest(replica, self.keys)
        self.assertEqual(dp[0], N_ITEMS)
        self.assertEqual(dr, dp, "%s: replica's keys differ from the primary's" % what)
        return replica.stats(b"replication")

    # -- snapshot --------------------------------------------------------
    def test_cut_mid_snapshot(self):
        full0 = int(self.primary.stats(b"replication")["full_syncs"])
        self.proxy.slow(8 << 20)           # ~6 s for the 50 MB snapshot
        r = self.replica("cutsnap").start()
        self.assertTrue(self.proxy.wait_bytes(10 << 20, 30), "snapshot did not start")
        self.assertEqual(r.stats(b"replication").get("link"), "syncing")
        self.proxy.cut()
        self.proxy.pass_()
        self.assert_converges(r, "cut mid-snapshot")
        full = int(self.primary.stats(b"replication")["full_syncs"]) - full0
        faultlib.figure("link cut mid-snapshot: full syncs to converge", full)
        self.assertGreaterEqual(full, 2)

    def test_stall_mid_snapshot(self):
        self.proxy.slow(8 << 20)
        r = self.replica("stallsnap").start()
        self.assertTrue(self.proxy.wait_bytes(10 << 20, 30), "snapshot did not start")
        self.proxy.stall()
        time.sleep(7)                       # longer than the 5 s link timeout
        self.proxy.pass_()
        self.assert_converges(r, "stall mid-snapshot")

    def test_kill9_replica_during_full_sync(self):
        self.proxy.slow(8 << 20)
        r = self.replica("killsnap").start()
        self.assertTrue(self.proxy.wait_bytes(15 << 20, 30), "snapshot did not start")
        r.kill9()
        self.proxy.pass_()
        r.start()
        self.assertIn(r.stats(b"replication").get("role"), ("replica",))
        self.assert_converges(r, "replica kill -9 during a full sync")

    # -- stream ----------------------------------------------------------
    def test_cut_and_stall_mid_stream(self):
        r = self.replica("stream").start()
        self.assert_converges(r, "initial sync")
        writer = threading.Thread(target=self.write_more, args=(20000,))
        writer.start()
        time.sleep(0.3)
        self.proxy.cut()                    # while the primary writes
        writer.join(120)
        self.assert_converges(r, "cut mid-stream")
        writer = threading.Thread(target=self.write_more, args=(20000, 10000))
        writer.start()
        self.proxy.stall()
        writer.join(120)
        time.sleep(6)                       # past the link timeout
        self.proxy.pass_()
        st = self.assert_converges(r, "stall mid-stream")
        faultlib.figure("link faults mid-stream: replica link after resume", st.get("link"))

    def test_primary_rss_bounded_while_replica_stalled(self):
        r = self.replica("rss").start()
        self.assert_converges(r, "initial sync")
        # Warm up with the same traffic and a healthy link, so that buffers
        # that grow once to their working size (WAL, malloc arenas) have.
        self.write_more(N_ITEMS, noreply=False)
        self.write_more(N_ITEMS, noreply=False)
        self.assert_converges(r, "warm-up")
        self.proxy.stall()
        time.sleep(0.5)
        before = self.primary.rss_kb()
        before_anon = self.primary.rss_kb("RssAnon")
        peak = [before]
        peak_anon = [before_anon]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], self.primary.rss_kb())
                peak_anon[0] = max(peak_anon[0], self.primary.rss_kb("RssAnon"))
                time.sleep(0.05)

        t = threading.Thread(target=sample)
        t.start()
        try:
            # ~200 MB of changes the stalled replica needs (more than the
            # bound: memory that grew with them would fail); overwrites, so
            # the item memory itself does not grow.
            # (half of it on an ASan build, which is several times slower)
            for _ in range(2 if faultlib.sanitized_build() else 4):
                self.write_more(N_ITEMS, noreply=False)
            time.sleep(1)
        finally:
            stop.set()
            t.join()
        growth_mb = (peak[0] - before) / 1024.0
        anon_mb = (peak_anon[0] - before_anon) / 1024.0
        faultlib.figure("primary VmRSS with a stalled replica: before, peak, growth (MB) "
                        "after ~200 MB of writes", "%.0f, %.0f, %.1f" % (before / 1024.0, peak[0] / 1024.0,
                                                                         growth_mb))
        faultlib.figure("primary RssAnon (heap, without LMDB's mapped file) with a stalled replica: "
                        "before, peak, growth (MB)", "%.0f, %.0f, %.1f" % (
                            before_anon / 1024.0, peak_anon[0] / 1024.0, anon_mb))
        # VmRSS also counts LMDB's data.mdb pages the checkpointer touches
        # (file-backed, reclaimable); the heap is what a stalled replica
        # could grow.
        self.assertLess(anon_mb, RSS_GROWTH_BOUND_MB,
                        "primary heap (RssAnon) grew by %.1f MB while a replica was stalled" % anon_mb)
        self.proxy.pass_()
        self.assert_converges(r, "after a long stall")


if __name__ == "__main__":
    faultlib.main()
