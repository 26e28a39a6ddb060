#!/usr/bin/python3
# Durability across restarts: clean stops, kill -9 after the log is synced,
# what each kind of change leaves behind, damaged WAL tails, a damaged
# checkpoint, the data directory lock, and checkpointing / segment deletion.
#
# Every test has its own temp data directory (durable.Node), removed in
# tearDown, and every process it starts is killed.  Conditions are polled
# (`stats persistence`, the port, the clock) with a bound, never slept for.
#
# Run: /usr/bin/python3 tests/durability/test_restart.py --bin build/cairn

import os
import re
import time
import unittest

import durable
from durable import harness, wait_until


def kv(i, size=50):
    tag = b"val-%d-" % i
    return (tag * (size // len(tag) + 1))[:size]


class RestartTest(unittest.TestCase):
    ARGS = ["--fsync", "everysec"]

    def setUp(self):
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            n.cleanup()

    def node(self, args=None):
        n = durable.Node(self.ARGS if args is None else args)
        self.nodes.append(n)
        return n

    def set_many(self, node, n, prefix=b"key", size=50, flags=0):
        with node.conn() as c:
            for i in range(n):
                v = kv(i, size)
                r = c.request(b"set %s%d %d 0 %d\r\n%s\r\n" % (prefix, i, flags, len(v), v))
                self.assertEqual(r, b"STORED\r\n")

    def assert_all(self, node, n, prefix=b"key", size=50, flags=0):
        keys = [b"%s%d" % (prefix, i) for i in range(n)]
        with node.conn() as c:
            got = durable.get_many(c, keys)
        missing = [k for k in keys if k not in got]
        self.assertEqual(missing[:10], [], "%d of %d keys lost" % (len(missing), n))
        for i, k in enumerate(keys):
            self.assertEqual(got[k][0], kv(i, size), "value of %r" % k)
            self.assertEqual(got[k][1], flags, "flags of %r" % k)

    # -- clean stop and synced kill -9 -----------------------------------

    def test_sigterm_everysec_loses_nothing(self):
        node = self.node().start()
        self.set_many(node, 2000, flags=42)
        lsn = node.pstats()["wal_lsn"]
        self.assertEqual(lsn, 2000)
        rc = node.stop()                       # SIGTERM: flush + fsync, exit 0
        self.assertEqual(rc, 0, "exit status after SIGTERM; stderr:\n" + node.last_stderr)
        node.start()
        self.assert_all(node, 2000, flags=42)
        st = node.pstats()
        self.assertEqual(st["recovered_items"], 2000)
        self.assertEqual(st["wal_dropped_bytes"], 0)
        self.assertEqual(st["wal_lsn"], lsn)   # the log continues where it stopped
        with node.conn() as c:
            self.assertEqual(c.set("one-more", "x"), b"STORED\r\n")
        self.assertEqual(node.pstats()["wal_lsn"], lsn + 1)
        self.assertEqual(node.stop(), 0)

    def test_kill9_everysec_after_synced_loses_nothing(self):
        node = self.node().start()
        self.set_many(node, 2000)
        st = node.wait_synced()               # poll wal_synced_lsn >= wal_lsn
        self.assertGreaterEqual(st["wal_synced_lsn"], 2000)
        self.assertEqual(node.kill9(), -9)
        node.start()
        self.assert_all(node, 2000)
        st = node.pstats()
        self.assertEqual(st["recovered_items"], 2000)
        self.assertEqual(st["wal_dropped_bytes"], 0)

    # -- what each kind of change leaves -----------------------------------

    def test_flags_cas_exptime_survive(self):
        node = self.node().start()
        with node.conn() as c:
            self.assertEqual(c.set("f-max", "a", flags=4294967295), b"STORED\r\n")
            self.assertEqual(c.set("f-ttl", "b", flags=7, exptime=3600), b"STORED\r\n")
            self.assertEqual(c.set("f-abs", "c", flags=1, exptime=int(time.time()) + 3600),
                             b"STORED\r\n")
            before = {k: c.gets(k) for k in ("f-max", "f-ttl", "f-abs")}
        for kill in (False, True):
            if kill:
                node.wait_synced()
            node.restart(kill=kill)
            with node.conn() as c:
                for k, (val, cas) in before.items():
                    self.assertEqual(c.gets(k), (val, cas), "gets %s after restart" % k)
                got = durable.get_many(c, list(before))
                self.assertEqual(got[b"f-max"][1], 4294967295)
                self.assertEqual(got[b"f-ttl"][1], 7)
                self.assertEqual(got[b"f-abs"][1], 1)
        with node.conn() as c:
            # the old unique still works for cas ...
            val, cas = before["f-ttl"]
            self.assertEqual(c.storage("cas", "f-ttl", "new", 7, 3600, b" %d" % cas),
                             b"STORED\r\n")
            # ... and new uniques never reuse old ones
            _, newcas = c.gets("f-ttl")
            self.assertGreater(newcas, max(cas for _, cas in before.values()))
            self.assertEqual(c.storage("cas", "f-max", "z", 0, 0, b" %d" % (cas + 999999)),
                             b"EXISTS\r\n")

    def test_ttl_expires_after_restart(self):
        node = self.node().start()
        with node.conn() as c:
            self.assertEqual(c.set("short", "s", exptime=2), b"STORED\r\n")
            self.assertEqual(c.set("long", "l", exptime=3600), b"STORED\r\n")
            self.assertEqual(c.set("never", "n"), b"STORED\r\n")
        node.restart()
        def gone():
            with node.conn() as c:
                return c.get("short") is None
        self.assertTrue(wait_until(gone, 10, 0.1), "TTL 2 s item still there after 10 s")
        with node.conn() as c:
            self.assertEqual(c.get("long"), b"l")
            self.assertEqual(c.get("never"), b"n")
        node.restart()
        with node.conn() as c:
            self.assertIsNone(c.get("short"))
            self.assertEqual(c.get("long"), b"l")

    def test_ttl_is_absolute_across_downtime(self):
        # The deadline passes while the server is down: it must not come back
        # (a TTL re-counted from the restart would bring it back).
        node = self.node().start()
        with node.conn() as c:
            self.assertEqual(c.set("brief", "b", exptime=2), b"STORED\r\n")
            self.assertEqual(c.get("brief"), b"b")
        deadline = time.time() + 3
        self.assertEqual(node.stop(), 0)
        self.assertTrue(wait_until(lambda: time.time() >= deadline, 10, 0.05))
        node.start()
        with node.conn() as c:
            self.assertIsNone(c.get("brief"))

    def test_delete_and_flush_survive(self):
        node = self.node().start()
        with node.conn() as c:
            for k in ("a", "b", "c"):
                self.assertEqual(c.set(k, k * 3), b"STORED\r\n")
            self.assertEqual(c.request(b"delete b\r\n"), b"DELETED\r\n")
        node.restart()
        with node.conn() as c:
            self.assertEqual(c.get("a"), b"aaa")
            self.assertIsNone(c.get("b"))
            self.assertEqual(c.get("c"), b"ccc")
            self.assertEqual(c.request(b"flush_all\r\n"), b"OK\r\n")
            self.assertEqual(c.set("d", "after-flush"), b"STORED\r\n")
        node.restart()
        with node.conn() as c:
            self.assertIsNone(c.get("a"))
            self.assertIsNone(c.get("b"))
            self.assertIsNone(c.get("c"))
            self.assertEqual(c.get("d"), b"after-flush")
        node.wait_synced()
        node.restart(kill=True)
        with node.conn() as c:
            self.assertIsNone(c.get("a"))
            self.assertIsNone(c.get("b"))
            self.assertEqual(c.get("d"), b"after-flush")

    def test_recovered_items_counts_live_items(self):
        # recovered_items is "items in memory after recovery": the items a
        # client can get.  Items replayed from the WAL that a later FLUSH
        # killed, or whose TTL passed while the server was down, are not
        # items the node serves (the checkpoint load already skips expired
        # ones, so the count must not depend on what was checkpointed).
        node = self.node().start()
        with node.conn() as c:
            for k in ("a", "b", "c"):
                self.assertEqual(c.set(k, k), b"STORED\r\n")
            self.assertEqual(c.request(b"flush_all\r\n"), b"OK\r\n")
            self.assertEqual(c.set("live", "x"), b"STORED\r\n")
            self.assertEqual(c.set("ttl", "t", exptime=1), b"STORED\r\n")
        due = time.time() + 2
        self.assertEqual(node.stop(), 0)
        self.assertTrue(wait_until(lambda: time.time() >= due, 10, 0.05))
        node.start()
        with node.conn() as c:
            got = durable.get_many(c, [b"a", b"b", b"c", b"live", b"ttl"])
        self.assertEqual(sorted(got), [b"live"])
        self.assertEqual(node.pstats()["recovered_items"], len(got),
                         "recovered_items counts flushed/expired items replayed from the WAL")

    def test_recovered_items_counts_a_touched_checkpoint_item_once(self):
        # A touch in the WAL tail of an item only the checkpoint holds: the
        # replay brings the checkpoint's item in to change its exptime, so
        # it is in memory after the replay; the warm-up must not count it a
        # second time.  The checkpointer folds the first records at once
        # and then waits CKPT_MAX_DELAY (5 s) or 65536 records: the touch,
        # sent milliseconds after key1 is folded, stays in the tail (the
        # test checks that it did, from the recovery's log line).
        node = self.node(["--fsync", "always"]).start()
        n = 200
        self.set_many(node, n)
        self.assertTrue(wait_until(lambda: node.pstats()["checkpoint_lsn"] >= 2,
                                   durable.POLL_TIMEOUT, 0.01),
                        "key1 never checkpointed: %r" % node.pstats())
        with node.conn() as c:
            self.assertEqual(c.request(b"touch key1 3600\r\n"), b"TOUCHED\r\n")
        touch_lsn = node.pstats()["wal_lsn"]
        self.assertEqual(node.restart(kill=True), -9)
        self.assert_all(node, n)
        log = node.server.stderr_text()
        m = re.search(r"checkpoint at LSN (\d+), \d+ WAL records replayed up to LSN %d" % touch_lsn,
                      log)
        self.assertTrue(m and 2 <= int(m.group(1)) < touch_lsn,
                        "key1 is not in the checkpoint, or the touch not in the tail:\n" + log)
        st = node.pstats()
        self.assertEqual(st["recovered_items"], n, "%r\n%s" % (st, log))

    def test_delayed_flush_survives_restart(self):
        # flush_all <delay> was acknowledged with OK: after its time every
        # item stored before it must be gone, restart or not.
        node = self.node().start()
        with node.conn() as c:
            self.assertEqual(c.set("old", "o"), b"STORED\r\n")
            self.assertEqual(c.request(b"flush_all 2\r\n"), b"OK\r\n")
        due = time.time() + 3
        self.assertEqual(node.stop(), 0)
        node.start()
        self.assertTrue(wait_until(lambda: time.time() >= due, 10, 0.05))
        with node.conn() as c:
            self.assertIsNone(c.get("old"),
                              "item stored before an acknowledged 'flush_all 2' is still "
                              "there after the flush time (the restart lost the flush)")

    def test_incr_append_survive(self):
        node = self.node().start()
        with node.conn() as c:
            self.assertEqual(c.set("n", "10"), b"STORED\r\n")
            self.assertEqual(c.request(b"incr n 5\r\n"), b"15\r\n")
            self.assertEqual(c.request(b"incr n 100\r\n"), b"115\r\n")
            self.assertEqual(c.set("p", "100"), b"STORED\r\n")
            self.assertEqual(c.request(b"decr p 95\r\n"), b"5\r\n")   # rewritten in place
            self.assertEqual(c.set("s", "mid"), b"STORED\r\n")
            self.assertEqual(c.storage("append", "s", "-end"), b"STORED\r\n")
            self.assertEqual(c.storage("prepend", "s", "start-"), b"STORED\r\n")
            p_before = c.get("p")
        for kill in (False, True):
            if kill:
                node.wait_synced()
            node.restart(kill=kill)
            with node.conn() as c:
                self.assertEqual(c.get("n"), b"115")
                self.assertEqual(c.get("p"), p_before)
                self.assertEqual(int(c.get("p").strip()), 5)
                self.assertEqual(c.get("s"), b"start-mid-end")
        with node.conn() as c:
            self.assertEqual(c.request(b"incr n 1\r\n"), b"116\r\n")

    def test_evictions_under_small_memory(self):
        size = 1000
        n = 4000                       # ~4 MB through a 1 MB cache
        node = self.node(["--fsync", "everysec", "-m", "1"]).start()
        self.set_many(node, n, prefix=b"ev", size=size)
        stats = node.stats()
        self.assertGreater(int(stats["evictions"]), 0)
        fits = int(stats["limit_maxbytes"]) // size
        keys = [b"ev%d" % i for i in range(n)]
        with node.conn() as c:
            before = durable.get_many(c, keys)
        self.assertLessEqual(len(before), fits)
        for kill in (False, True):
            if kill:
                node.wait_synced()
            node.restart(kill=kill)
            with node.conn() as c:
                after = durable.get_many(c, keys)
            self.assertGreater(len(after), 0)
            self.assertLessEqual(len(after), fits)
            self.assertLessEqual(int(node.stats()["curr_items"]), fits)
            for k, (v, _, _) in after.items():
                i = int(k[2:])
                self.assertEqual(v, kv(i, size), "value of %r" % k)
                # nothing comes back that was evicted before the restart
                self.assertIn(k, before, "%r was evicted before the restart" % k)

    # -- damaged WAL tails ---------------------------------------------------

    def write_sequence(self, node, n):
        with node.conn() as c:
            for i in range(n):
                v = kv(i, 100)
                self.assertEqual(c.request(b"set seq%d 0 0 %d\r\n%s\r\n" % (i, len(v), v)),
                                 b"STORED\r\n")

    def present_prefix(self, node, n):
        keys = [b"seq%d" % i for i in range(n)]
        with node.conn() as c:
            got = durable.get_many(c, keys)
        present = [int(k[3:]) for k in got]
        m = len(present)
        self.assertEqual(sorted(present), list(range(m)),
                         "after recovery the keys are not a prefix of the writes")
        for k, (v, _, _) in got.items():
            self.assertEqual(v, kv(int(k[3:]), 100))
        return m

    def test_truncated_last_segment(self):
        node = self.node(["--fsync", "always"]).start()
        self.write_sequence(node, 300)
        self.assertEqual(node.kill9(), -9)
        seg = node.wal_segments()[-1]
        size = durable.wal_records_end(seg)   # blocks allocated ahead may follow
        with open(seg, "r+b") as f:
            f.truncate(size - 5)              # tear the last record
        node.start()
        m = self.present_prefix(node, 300)
        self.assertEqual(m, 299, "torn last record: expected the 299 complete ones")
        st = node.pstats()
        self.assertGreater(st["wal_dropped_bytes"], 0)
        self.assertEqual(st["wal_lsn"], 299)
        self.assertEqual(st["recovered_items"], 299)
        # the repaired log takes new writes and survives another restart
        with node.conn() as c:
            self.assertEqual(c.set("seq299", kv(299, 100)), b"STORED\r\n")
        node.restart()
        self.assertEqual(self.present_prefix(node, 300), 300)
        self.assertEqual(node.pstats()["wal_dropped_bytes"], 0)

    def test_bitflipped_last_segment(self):
        node = self.node(["--fsync", "always"]).start()
        self.write_sequence(node, 300)
        self.assertEqual(node.kill9(), -9)
        seg = node.wal_segments()[-1]
        size = durable.wal_records_end(seg)
        with open(seg, "r+b") as f:
            f.seek(size // 2)
            b = f.read(1)
            f.seek(size // 2)
            f.write(bytes([b[0] ^ 0x04]))
        node.start()
        m = self.present_prefix(node, 300)
        self.assertGreater(m, 0)
        self.assertLess(m, 300, "a record with a flipped bit was replayed")
        st = node.pstats()
        self.assertGreater(st["wal_dropped_bytes"], 0)
        self.assertEqual(st["recovered_items"], m)
        # Cut after its last valid record; or, when the checkpoint already
        # held the records the damage took (the 300 writes outlasted the
        # checkpointer's first fold, a second in), set aside as covered.
        covered = os.path.exists(seg + ".covered")
        self.assertTrue(covered or os.path.getsize(seg) < size,
                        "damaged segment neither truncated nor set aside as covered")

    # -- the data directory and the checkpoint ---------------------------------

    def test_second_server_refused(self):
        node = self.node().start()
        with node.conn() as c:
            self.assertEqual(c.set("mine", "1"), b"STORED\r\n")
        rc, err = durable.run_to_exit(["--data-dir", node.data_dir, "--fsync", "everysec"])
        self.assertIsNotNone(rc, "second server on the same data dir kept running")
        self.assertEqual(rc, 1, "second server exit status; stderr:\n" + err)
        self.assertIn("in use", err)
        self.assertTrue(node.server.alive())
        with node.conn() as c:
            self.assertEqual(c.get("mine"), b"1")
            self.assertEqual(c.set("mine", "2"), b"STORED\r\n")
        node.restart()
        with node.conn() as c:
            self.assertEqual(c.get("mine"), b"2")

    def test_garbage_checkpoint_refused(self):
        # a fresh dir whose lmdb/data.mdb is garbage
        d = durable.make_data_dir()
        try:
            os.makedirs(os.path.join(d, "lmdb"))
            with open(os.path.join(d, "lmdb", "data.mdb"), "wb") as f:
                f.write(b"this is not an LMDB file\n" * 4000)
            rc, err = durable.run_to_exit(["--data-dir", d])
            self.assertEqual(rc, 1, "exit status with a garbage data.mdb (negative = "
                             "killed by a signal); stderr:\n" + err)
            self.assertIn("lmdb", err)
            self.assertIn("unusable", err)
        finally:
            durable.remove_dir(d)

    def test_damaged_checkpoint_refused(self):
        # a real checkpoint whose first pages were overwritten
        node = self.node(["--fsync", "everysec", "--wal-segment-size", "64k"]).start()
        self.set_many(node, 500, size=500)
        self.assertTrue(wait_until(lambda: node.pstats()["checkpoint_lsn"] > 0,
                                   durable.POLL_TIMEOUT, 0.1))
        self.assertEqual(node.stop(), 0)
        with open(os.path.join(node.data_dir, "lmdb", "data.mdb"), "r+b") as f:
            f.write(b"\xa5" * 16384)
        rc, err = durable.run_to_exit(["--data-dir", node.data_dir])
        self.assertEqual(rc, 1, "exit status with a damaged data.mdb; stderr:\n" + err)
        self.assertIn("unusable", err)

    def test_checkpoint_advances_and_segments_deleted(self):
        node = self.node(["--fsync", "everysec", "--wal-segment-size", "64k",
                          "--wal-backlog", "0"]).start()
        n, size = 1500, 1000                  # ~1.5 MB: ~25 segments of 64k
        self.set_many(node, n, size=size)
        last = node.pstats()["wal_lsn"]

        def folded():
            st = node.pstats()
            segs = node.wal_segments()
            # every closed segment folded and deleted: the active one is left
            if st["checkpoint_lsn"] > 0 and len(segs) <= 2:
                return st, segs
            return None
        res = wait_until(folded, durable.POLL_TIMEOUT, 0.1)
        self.assertTrue(res, "segments never folded/deleted: %r, %d segments"
                        % (node.pstats(), len(node.wal_segments())))
        st, segs = res
        self.assertGreater(st["checkpoint_lsn"], last // 2)
        self.assertLessEqual(st["checkpoint_lsn"], last)
        first = int(os.path.basename(segs[0])[:16], 16)
        self.assertLessEqual(first, st["checkpoint_lsn"] + 1,
                             "a segment with unfolded records was deleted")
        self.assertGreater(st["checkpoint_bytes"], 0)
        self.assertLess(st["wal_bytes"], 3 * 65536 + size * 4)
        # recovery = checkpoint + the WAL tail
        node.wait_synced()
        node.restart(kill=True)
        self.assert_all(node, n, size=size)
        st2 = node.pstats()
        self.assertEqual(st2["recovered_items"], n)
        self.assertGreaterEqual(st2["checkpoint_lsn"], st["checkpoint_lsn"])
        self.assertEqual(st2["wal_lsn"], last)


if __name__ == "__main__":
    durable.main()
