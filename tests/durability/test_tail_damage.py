#!/usr/bin/python3
"""Damaged WAL segments and what is acknowledged afterwards.

test_torn_tail_then_new_writes_survive_kill9
    --fsync always, 10,000 sets (all STORED), kill -9, truncate the newest
    segment DATA/wal/<16 hex>.log in the middle of a record (a torn write),
    restart: a prefix of the writes is served.  Then 100 more sets, each
    answered STORED (so on disk, --fsync always), kill -9 again, restart:
    every one of the 100 new keys must be there with its value.  (A node
    that appends its new records behind the torn bytes, or that keeps the
    torn record in front of them, loses them at the second recovery.)

test_torn_tail_the_checkpoint_covers_then_new_writes_survive_kill9
    The same after the checkpoint has folded every record, so the log
    continues from the checkpoint's LSN past a gap the checkpoint covers.

test_bitflip_in_checkpointed_segment_loses_nothing
    --fsync always, --wal-segment-size 64k, --wal-backlog 64m (so closed
    segments are kept after they are checkpointed): write until several
    segments exist, wait until `stats persistence` checkpoint_lsn has passed
    the end of the OLDEST segment, kill -9, flip one bit in the middle of that
    oldest segment (its records are all in the LMDB checkpoint), restart:
    every acknowledged key must be served with its value.  The damage is in
    data recovery does not need; it must not make the node drop the newer
    segments that the checkpoint does not cover.

Every data directory is a temp dir removed in tearDown; every process is
killed (durable.Node / harness); all waits are bounded polls.
Run: /usr/bin/python3 tests/durability/test_tail_damage.py --bin build/cairn
"""

import os
import random
import time
import unittest

import durable
from durable import wait_until

SEED = int(os.environ.get("CAIRN_TEST_SEED", "0") or 0) or int(time.time())
print("test_tail_damage seed %d (set CAIRN_TEST_SEED to repeat)" % SEED, flush=True)


def val(prefix, i, size=60):
    tag = b"%s-%d-" % (prefix, i)
    return (tag * (size // len(tag) + 1))[:size]


class TailDamage(unittest.TestCase):
    def setUp(self):
        self.nodes = []
        self.rng = random.Random(SEED)

    def tearDown(self):
        for n in self.nodes:
            n.cleanup()

    def node(self, args):
        n = durable.Node(args)
        self.nodes.append(n)
        return n

    def set_pipelined(self, node, prefix, n, batch=100, size=60):
        with node.conn(timeout=30) as c:
            for i in range(0, n, batch):
                idx = range(i, min(n, i + batch))
                req = b"".join(b"set %s%d 0 0 %d\r\n%s\r\n" % (prefix, j, size, val(prefix, j, size))
                               for j in idx)
                out = c.exchange(req, timeout=30)
                self.assertEqual(out, b"STORED\r\n" * len(idx), "sets %d.. not all STORED" % i)

    def present(self, node, prefix, n, size=60):
        with node.conn(timeout=30) as c:
            got = durable.get_many(c, [b"%s%d" % (prefix, i) for i in range(n)])
        wrong = [k for k, (v, _, _) in got.items()
                 if v != val(prefix, int(k[len(prefix):]), size)]
        self.assertEqual(wrong[:10], [], "keys served with a wrong value")
        return got

    def kill9_and_tear_the_tail(self, node):
        """kill -9, then cut the newest segment inside one of its last
        records (not at a record boundary): a torn write."""
        self.assertEqual(node.kill9(), -9)
        seg = node.wal_segments()[-1]
        recs = durable.wal_records(seg)
        self.assertGreater(len(recs), 10, "newest segment %s holds too few records" % seg)
        off, end, lsn = recs[-1 - self.rng.randrange(5)]
        cut = self.rng.randrange(off + 1, end)
        with open(seg, "r+b") as f:
            f.truncate(cut)
        print("cut %s at %d (record lsn %d spans %d..%d)" % (os.path.basename(seg), cut, lsn,
                                                            off, end), flush=True)

    def new_writes_survive_kill9(self, node):
        """100 new writes, each acknowledged (so fsynced: --fsync always),
        kill -9, restart: every one is there."""
        with node.conn() as c:
            for i in range(100):
                v = val(b"new", i)
                self.assertEqual(c.request(b"set new%d 0 0 %d\r\n%s\r\n" % (i, len(v), v)),
                                 b"STORED\r\n", "new%d" % i)
        self.assertEqual(node.kill9(), -9)
        node.start()
        got = self.present(node, b"new", 100)
        missing = [i for i in range(100) if b"new%d" % i not in got]
        self.assertEqual(missing, [], "%d of 100 acknowledged writes made after the torn tail "
                         "was cut are lost after kill -9 and restart (stats persistence %r)"
                         % (len(missing), node.pstats()))

    def test_torn_tail_then_new_writes_survive_kill9(self):
        node = self.node(["--fsync", "always"]).start()
        self.set_pipelined(node, b"old", 10000)
        self.kill9_and_tear_the_tail(node)
        node.start()
        got = self.present(node, b"old", 10000)
        present = sorted(int(k[3:]) for k in got)
        self.assertEqual(present, list(range(len(present))), "not a prefix of the writes")
        self.assertGreater(len(present), 9000)
        self.assertLess(len(present), 10000, "the torn record was replayed")
        self.new_writes_survive_kill9(node)
        got_old = self.present(node, b"old", 10000)
        self.assertEqual(len(got_old), len(present), "the recovered prefix changed")

    def test_torn_tail_the_checkpoint_covers_then_new_writes_survive_kill9(self):
        """As the issue saw it: the checkpoint has folded the records that the
        torn tail cuts from the WAL, so after the restart the log continues
        from the checkpoint's LSN, past a gap the checkpoint covers; the next
        recovery must not read that gap as damage and cut the new writes."""
        node = self.node(["--fsync", "always"]).start()
        self.set_pipelined(node, b"old", 10000)
        st = wait_until(lambda: (lambda s: s if s["checkpoint_lsn"] >= s["wal_lsn"] else None)(
            node.pstats()), timeout=30)
        self.assertTrue(st, "the checkpoint never caught up: %r" % (node.pstats(),))
        self.kill9_and_tear_the_tail(node)
        node.start()
        self.assertEqual(len(self.present(node, b"old", 10000)), 10000,
                         "the checkpoint holds every old write")
        self.new_writes_survive_kill9(node)
        self.assertEqual(len(self.present(node, b"old", 10000)), 10000)

    def test_bitflip_in_checkpointed_segment_loses_nothing(self):
        node = self.node(["--fsync", "always", "--wal-segment-size", "64k",
                          "--wal-backlog", "64m"]).start()
        n = 0
        deadline = time.monotonic() + 60
        while len(node.wal_segments()) < 5 and time.monotonic() < deadline and n < 40000:
            with node.conn(timeout=30) as c:
                req = b"".join(b"set k%d 0 0 60\r\n%s\r\n" % (j, val(b"k", j))
                               for j in range(n, n + 500))
                self.assertEqual(c.exchange(req, timeout=30), b"STORED\r\n" * 500)
            n += 500
        segs = node.wal_segments()
        self.assertGreaterEqual(len(segs), 5, "too few segments after %d sets" % n)
        oldest = segs[0]
        last_lsn_oldest = durable.wal_records(oldest)[-1][2]
        st = wait_until(lambda: (lambda s: s if s["checkpoint_lsn"] > last_lsn_oldest else None)(
            node.pstats()), 60, 0.1)
        self.assertTrue(st, "checkpoint_lsn never passed %d: %r" % (last_lsn_oldest, node.pstats()))
        self.assertIn(oldest, node.wal_segments(), "the backlog did not keep the oldest segment")
        # more acknowledged writes, in the open segment the checkpoint does not cover
        with node.conn(timeout=30) as c:
            req = b"".join(b"set k%d 0 0 60\r\n%s\r\n" % (j, val(b"k", j))
                           for j in range(n, n + 300))
            self.assertEqual(c.exchange(req, timeout=30), b"STORED\r\n" * 300)
        n += 300
        st = node.pstats()
        self.assertLess(st["checkpoint_lsn"], st["wal_lsn"], "nothing left outside the checkpoint")
        self.assertEqual(node.kill9(), -9)
        size = os.path.getsize(oldest)
        pos = 16 + self.rng.randrange(size // 4, size // 2)
        with open(oldest, "r+b") as f:
            f.seek(pos)
            b = f.read(1)
            f.seek(pos)
            f.write(bytes([b[0] ^ (1 << self.rng.randrange(8))]))
        print("flipped a bit at %d of %s (checkpoint_lsn %d > its last lsn %d); %d sets"
              % (pos, os.path.basename(oldest), st["checkpoint_lsn"], last_lsn_oldest, n),
              flush=True)
        node.start()
        got = self.present(node, b"k", n)
        missing = sorted(int(k[1:]) for k in (b"k%d" % i for i in range(n)) if k not in got)
        self.assertEqual(missing[:10], [], "%d of %d acknowledged keys lost after a bit flip in a "
                         "checkpointed segment (stats persistence %r)"
                         % (len(missing), n, node.pstats()))


if __name__ == "__main__":
    durable.main()
