#!/usr/bin/python3
# The meta protocol's per-item marks survive a restart: an item invalidated
# with `md I` (mg says X), one whose recache win was handed out (W once,
# then Z), and one stored with a base64 key (ms b: mg k prints it base64,
# with b) read the same, CAS uniques included, after kill -9 when they come
# back from the WAL (replayed), and when they come back from the checkpoint
# (every record folded in before the kill, nothing left to replay).
#
# Run: /usr/bin/python3 tests/durability/test_meta_marks.py --bin build/cairn

import base64
import re
import unittest

import durable
from durable import harness, wait_until

B64 = base64.b64encode(b"\x00bin\xffkey")
KEYS = (b"st", b"wn", B64 + b" b", b"plain")


class MetaMarksRestartTest(unittest.TestCase):
    def setUp(self):
        self.node = durable.Node(["--fsync", "always"])
        self.addCleanup(self.node.cleanup)

    def mark(self):
        with self.node.conn() as c:
            for req, reply in [
                (b"ms st 3\r\nold\r\n", b"HD\r\n"),
                (b"ms wn 1\r\nw\r\n", b"HD\r\n"),
                (b"ms %s 3 b\r\nbin\r\n" % B64, b"HD\r\n"),
                (b"ms plain 1\r\np\r\n", b"HD\r\n"),
                (b"md st I T300\r\n", b"HD\r\n"),
                (b"mg st\r\n", b"HD X W\r\n"),
                (b"touch wn 50\r\n", b"TOUCHED\r\n"),
                (b"mg wn R100\r\n", b"HD W\r\n"),
            ]:
                self.assertEqual(c.exchange(req), reply, req)

    def shown(self):
        with self.node.conn() as c:
            return {k: c.exchange(b"mg %s k c v f\r\n" % k) for k in KEYS}

    def check(self, shown):
        self.assertRegex(shown[b"st"], rb"^VA 3 kst c\d+ f0 Z X\r\nold\r\n$")
        self.assertRegex(shown[b"wn"], rb"^VA 1 kwn c\d+ f0 Z\r\nw\r\n$")
        self.assertRegex(shown[B64 + b" b"],
                         rb"^VA 3 k" + re.escape(B64) + rb" b c\d+ f0\r\nbin\r\n$")
        self.assertRegex(shown[b"plain"], rb"^VA 1 kplain c\d+ f0\r\np\r\n$")

    def test_kill9_wal_replay(self):
        self.node.start()
        self.mark()
        before = self.shown()
        self.check(before)
        self.node.wait_synced()
        self.assertEqual(self.node.restart(kill=True), -9)
        self.assertEqual(self.shown(), before)
        self.assertGreaterEqual(self.node.pstats()["recovered_items"], len(KEYS))

    def test_checkpoint_load(self):
        node = self.node.start()
        self.mark()
        before = self.shown()
        self.check(before)
        lsn = node.wait_synced()["wal_lsn"]
        self.assertTrue(wait_until(lambda: node.pstats()["checkpoint_lsn"] >= lsn,
                                   durable.POLL_TIMEOUT, 0.05),
                        "the checkpoint never folded LSN %d: %r" % (lsn, node.pstats()))
        self.assertEqual(node.restart(kill=True), -9)
        # Nothing to replay: the marks can only come from the checkpoint.
        self.assertTrue(wait_until(lambda: " 0 WAL records replayed" in node.server.stderr_text(),
                                   durable.POLL_TIMEOUT, 0.05), node.server.stderr_text())
        # Read while the warm-up may still be loading (from the checkpoint
        # directly), then once it is done (from memory).
        self.assertEqual(self.shown(), before)
        self.assertTrue(wait_until(lambda: node.pstats()["warmup"] == "done",
                                   durable.POLL_TIMEOUT, 0.05), node.pstats())
        self.assertEqual(self.shown(), before)
        # A win handed out before the restart is not handed out again.
        with node.conn() as c:
            self.assertEqual(c.exchange(b"mg st\r\n"), b"HD Z X\r\n")


if __name__ == "__main__":
    harness.main()
