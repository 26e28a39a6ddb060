#!/usr/bin/python3
# The meta protocol's per-item marks on a replica and after a promotion: an
# item invalidated with `md I` (stale: mg says X), whose recache win was
# handed out (the first mg says W, later ones Z), and an item stored with a
# base64 key (ms b: mg k prints it base64 with b) read the same on the
# primary, on its replica, and on the replica once promoted, with the same
# CAS uniques: a CAS taken on the primary is valid on the promoted node.
# Both ways a replica receives changes are covered: the WAL stream, and a
# full sync (a snapshot of the primary's checkpoint).  A replica hands out
# no wins of its own (it cannot be written to): a stale item whose win is
# still to take is Z there, and stays to take on the primary.

import base64
import re
import unittest

import cluster
from cluster import load, wait_caught_up, wait_link, wait_until

BKEY = b"\x00bin\xffkey"
B64 = base64.b64encode(BKEY)


def mg(node, key, flags):
    with node.conn() as c:
        return c.exchange(b"mg %s %s\r\n" % (key, flags))


def cas_of(reply):
    return int(re.search(rb" c(\d+)", reply).group(1))


class MetaMarksTest(unittest.TestCase):
    def setUp(self, primary_args=(), start=True):
        self.c = cluster.Cluster(1, primary_args=["-t", "2"] + list(primary_args),
                                 replica_args_=["-t", "2"], start=start)
        self.addCleanup(self.c.cleanup)
        self.p, self.r = self.c.primary, self.c.replicas[0]

    def mark(self, node):
        """Marks on `node`: returns {key: what mg k c v t shows}."""
        with node.conn() as c:
            self.assertEqual(c.exchange(b"ms st 3\r\nold\r\n"), b"HD\r\n")
            self.assertEqual(c.exchange(b"ms wn 1\r\nw\r\n"), b"HD\r\n")
            self.assertEqual(c.exchange(b"ms %s 3 b\r\nbin\r\n" % B64), b"HD\r\n")
            self.assertEqual(c.exchange(b"ms plain 1\r\np\r\n"), b"HD\r\n")
            before = cas_of(c.exchange(b"mg st c\r\n"))
            self.assertEqual(c.exchange(b"md st I T300\r\n"), b"HD\r\n")
            first = c.exchange(b"mg st c v\r\n")
            self.assertRegex(first, rb"^VA 3 c\d+ X W\r\nold\r\n$")
            self.assertGreater(cas_of(first), before)
            self.assertRegex(c.exchange(b"mg st c\r\n"), rb"^HD c\d+ Z X\r\n$")
            # A recache win on a live item (R: TTL below 100 s).
            self.assertEqual(c.exchange(b"touch wn 50\r\n"), b"TOUCHED\r\n")
            self.assertEqual(c.exchange(b"mg wn R100\r\n"), b"HD W\r\n")
        return self.shown(node)

    def shown(self, node):
        out = {}
        for key in (b"st", b"wn", B64 + b" b", b"plain"):
            out[key] = mg(node, key, b"k c v f s")
        # A second read changes nothing: the reply is the same.
        for key, reply in out.items():
            self.assertEqual(mg(node, key, b"k c v f s"), reply, key)
        return out

    def check_shown(self, shown):
        self.assertRegex(shown[b"st"], rb"^VA 3 kst c\d+ f0 s3 Z X\r\nold\r\n$")
        self.assertRegex(shown[b"wn"], rb"^VA 1 kwn c\d+ f0 s1 Z\r\nw\r\n$")
        self.assertRegex(shown[B64 + b" b"],
                         rb"^VA 3 k" + re.escape(B64) + rb" b c\d+ f0 s3\r\nbin\r\n$")
        self.assertRegex(shown[b"plain"], rb"^VA 1 kplain c\d+ f0 s1\r\np\r\n$")

    def promote_and_use(self, shown):
        p, r = self.p, self.r
        p.kill9()
        with r.conn() as c:
            self.assertEqual(c.exchange(b"promote\r\n"), b"OK\r\n")
        self.assertEqual(r.rstats()["role"], "primary")
        self.assertEqual(self.shown(r), shown)
        cas = {k: cas_of(v) for k, v in shown.items()}
        with r.conn() as c:
            # CAS uniques taken on the primary are valid here.
            self.assertEqual(c.exchange(b"ms st 3 C%d\r\nnew\r\n" % cas[b"st"]), b"HD\r\n")
            self.assertEqual(c.exchange(b"mg st v\r\n"), b"VA 3\r\nnew\r\n")
            self.assertEqual(c.exchange(b"cas wn 0 0 1 %d\r\nW\r\n" % cas[b"wn"]),
                             b"STORED\r\n")
            self.assertEqual(c.exchange(b"ms %s 3 b C%d\r\nBIN\r\n" % (B64, cas[B64 + b" b"])),
                             b"HD\r\n")
            self.assertEqual(c.exchange(b"mg %s b k v\r\n" % B64),
                             b"VA 3 k" + B64 + b" b\r\nBIN\r\n")

    def test_stream_and_promotion(self):
        p, r = self.p, self.r
        wait_link(r)
        shown = self.mark(p)
        self.check_shown(shown)
        wait_caught_up(p, [r])
        self.assertEqual(self.shown(r), shown)
        self.promote_and_use(shown)

    def test_full_sync_and_promotion(self):
        # A replica that starts after the primary trimmed its first segment
        # is brought up by a snapshot of the checkpoint, which holds the
        # marked items (the filler after them pushes them into it).
        self.c.cleanup()
        self.setUp(["--wal-segment-size", "64k", "--wal-backlog", "0"], start=False)
        p, r = self.p, self.r
        shown = self.mark(p)
        self.check_shown(shown)
        load(p, {b"fill:%d" % i: (b"f" * 400, 0) for i in range(600)})

        def trimmed():
            return p.pstats()["checkpoint_lsn"] > 0 and "%016x.log" % 1 not in p.wal_segments()
        self.assertTrue(wait_until(trimmed, cluster.POLL_TIMEOUT, 0.1), p.pstats())
        r.start()
        wait_link(r)
        wait_caught_up(p, [r])
        self.assertGreaterEqual(p.rstats()["full_syncs"], 1, p.rstats())
        self.assertEqual(self.shown(r), shown)
        self.promote_and_use(shown)

    def test_replica_hands_out_no_win(self):
        p, r = self.p, self.r
        wait_link(r)
        with p.conn() as c:
            self.assertEqual(c.exchange(b"ms st 1\r\nx\r\n"), b"HD\r\n")
            self.assertEqual(c.exchange(b"md st I\r\n"), b"HD\r\n")
        wait_caught_up(p, [r])
        lsn = r.lsn()
        self.assertEqual(mg(r, b"st", b""), b"HD Z X\r\n")
        self.assertEqual(mg(r, b"st", b""), b"HD Z X\r\n")
        self.assertEqual(r.lsn(), lsn)
        # The win is still the primary's to hand out, once.
        self.assertEqual(mg(p, b"st", b""), b"HD X W\r\n")
        self.assertEqual(mg(p, b"st", b""), b"HD Z X\r\n")
        wait_caught_up(p, [r])
        self.assertEqual(mg(r, b"st", b""), b"HD Z X\r\n")


if __name__ == "__main__":
    cluster.main()
