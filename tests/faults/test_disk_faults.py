#!/usr/bin/python3
"""Disk faults: the WAL or the checkpoint cannot write.

Scenario (each test): cairn runs with the fail shim preloaded
(LD_PRELOAD=libcairn_failshim.so, CAIRN_FAIL_DIR=<its data dir>); four
client threads write unique keys (one set per round trip) and record every
answer: STORED = acknowledged, SERVER_ERROR = refused, no answer (connection
closed, or "SERVER_ERROR write-ahead log failed before this write was
durable": it was waiting for its fsync when the WAL failed) = in doubt.
Then a fault is switched on through the shim's control
file, held, and switched off, and the node is restarted without the shim.

WAL faults (--fsync always and everysec; write ENOSPC, fsync EIO):
  - once the fault hits, writes get "SERVER_ERROR write-ahead log
    unavailable: <strerror>", `stats persistence` wal_error and the log say
    why, reads keep being served;
  - when the disk takes writes again the node accepts writes again by itself
    (docs/architecture.md: the writer repairs the log every second);
  - after a restart every acknowledged write is present (acknowledged ==
    acknowledged-and-present), no refused write is present.
  - stopping the node (SIGTERM) while the fault is still on, then starting
    it on a healthy disk: every acknowledged write present.
Slow disk (everysec, WAL writes delayed 600 ms), kill -9: README promises
"none [lost] when only the process dies: every acknowledged write is already
in the kernel" for --fsync everysec.
Checkpoint fault (LMDB ENOSPC, --wal-segment-size 64k): writes keep working,
checkpoint_error says why, the checkpointer retries; when the fault clears
checkpoint_lsn advances; nothing lost after a restart.

Figures ("FIGURE ..." lines) are quoted in docs/reliability.md.
Run: /usr/bin/python3 test_disk_faults.py --bin build/cairn --shim build/tests/faults/libcairn_failshim.so
"""

import os
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib  # noqa: E402
from faultlib import harness  # noqa: E402

ENOSPC_TEXT = "No space left on device"
# node/conn.c: the reply of a write that was waiting for durability when the
# WAL failed (in doubt: either outcome is allowed after a restart)
NOT_DURABLE = b"SERVER_ERROR write-ahead log failed before this write was durable"
EIO_TEXT = "Input/output error"


class Writers:
    """Client threads writing unique keys and recording every outcome."""

    def __init__(self, node, prefix, nthreads=4, value_size=200):
        self.node = node
        self.prefix = prefix
        self.nthreads = nthreads
        self.value_size = value_size
        self.lock = threading.Lock()
        self.acked = {}         # key -> value: answered STORED
        self.refused = {}       # key -> reply: answered SERVER_ERROR
        self.indoubt = {}       # key -> value: no answer (connection lost)
        self.other = {}         # key -> unexpected reply
        self.stop_flag = threading.Event()
        self.threads = []

    def value(self, key):
        head = key + b":"
        return head + b"v" * (self.value_size - len(head))

    def _run(self, tid):
        conn = None
        i = 0
        while not self.stop_flag.is_set():
            if conn is None:
                try:
                    conn = self.node.conn(timeout=10)
                except OSError:
                    time.sleep(0.05)
                    continue
            key = b"%s-%d-%d" % (self.prefix, tid, i)
            i += 1
            val = self.value(key)
            try:
                reply = conn.request(b"set %s 0 0 %d\r\n%s\r\n" % (key, len(val), val))
            except (OSError, harness.ConnClosed, socket.timeout):
                with self.lock:
                    self.indoubt[key] = val
                conn.close()
                conn = None
                continue
            with self.lock:
                if reply == b"STORED\r\n":
                    self.acked[key] = val
                elif reply.startswith(NOT_DURABLE):
                    # parked when the WAL failed: not acknowledged, but the
                    # record may still be written once the disk recovers
                    self.indoubt[key] = val
                elif reply.startswith(b"SERVER_ERROR"):
                    self.refused[key] = reply
                else:
                    self.other[key] = reply
            if reply != b"STORED\r\n":
                time.sleep(0.01)   # refused: do not spin
        if conn is not None:
            conn.close()

    def start(self):
        for t in range(self.nthreads):
            th = threading.Thread(target=self._run, args=(t,), daemon=True)
            th.start()
            self.threads.append(th)
        return self

    def stop(self):
        self.stop_flag.set()
        for th in self.threads:
            th.join(30)

    def counts(self):
        with self.lock:
            return len(self.acked), len(self.refused), len(self.indoubt)

    def wait_acked(self, n, timeout):
        return faultlib.wait_until(lambda: self.counts()[0] >= n, timeout)

    def wait_refused(self, timeout):
        return faultlib.wait_until(lambda: self.counts()[1] > 0, timeout)


class DiskFaults(unittest.TestCase):
    def setUp(self):
        self.wd = faultlib.Workdir()
        self.nodes = []

    def tearDown(self):
        res = getattr(self._outcome, "result", None)
        failed = res is not None and any(t is self for t, _ in res.failures + res.errors)
        for n in self.nodes:
            if failed:
                sys.stderr.write("---- %s log tail:\n%s\n" % (n.name, n.log_tail(30)))
            n.stop()
        self.wd.cleanup()

    def node(self, name, args):
        n = faultlib.Node(self.wd, name, args, shim=True)
        n.set_fault("")
        self.nodes.append(n)
        return n

    def check_after_restart(self, node, w, label, expect_all_acked=True):
        """Restart on a healthy disk (no shim); compare what is there with
        what was acknowledged.  Returns (acked, acked_present)."""
        if node.alive():
            # A missing key must mean lost, not evicted.
            self.assertEqual(node.stats().get("evictions"), "0", "%s: evictions" % label)
        node.stop()
        node.start(shim=False)
        with node.conn(timeout=30) as c:
            present_acked = faultlib.get_many(c, list(w.acked))
            present_refused = faultlib.get_many(c, list(w.refused))
            present_indoubt = faultlib.get_many(c, list(w.indoubt))
        wrong = [k for k, v in present_acked.items() if v != w.acked[k]]
        missing = [k for k in w.acked if k not in present_acked]
        faultlib.figure("%s acknowledged" % label, len(w.acked))
        faultlib.figure("%s acknowledged and present after restart" % label,
                        len(w.acked) - len(missing))
        faultlib.figure("%s refused (SERVER_ERROR), present after restart" % label,
                        "%d, %d" % (len(w.refused), len(present_refused)))
        faultlib.figure("%s in doubt (connection closed), present after restart" % label,
                        "%d, %d" % (len(w.indoubt), len(present_indoubt)))
        self.assertEqual(wrong, [], "%s: acknowledged keys with a wrong value after restart" % label)
        if expect_all_acked:
            self.assertEqual(missing[:20], [], "%s: %d of %d acknowledged writes missing after restart"
                             % (label, len(missing), len(w.acked)))
        self.assertEqual(sorted(present_refused)[:20], [],
                         "%s: writes answered SERVER_ERROR are present after restart" % label)
        self.assertEqual(w.other, {}, "%s: unexpected replies" % label)
        return len(w.acked), len(w.acked) - len(missing)

    # -- WAL faults, held then cleared ------------------------------------
    def wal_fault(self, policy, spec, errtext, label):
        node = self.node(label.replace(" ", "_"), ["--fsync", policy]).start()
        w = Writers(node, label.replace(" ", "_").encode()).start()
        try:
            self.assertTrue(w.wait_acked(300, 30), "no writes acknowledged before the fault: %r"
                            % (w.counts(),))
            before_fault = dict(w.acked)
            node.set_fault(spec)
            # The fault hits the next WAL write (or the next fsync: at most
            # about a second later with everysec).
            st = node.wait_stat(b"persistence", lambda s: s.get("wal_error", "none") != "none", 15,
                                "wal_error after injecting %s" % spec)
            self.assertEqual(st["wal_error"], errtext)
            self.assertTrue(node.injected(), "the shim injected nothing")
            self.assertTrue(w.wait_refused(15), "writers were never refused during the fault")
            # A write now is refused, with the reason.
            with node.conn() as c:
                reply = c.set(b"probe-during-fault", b"x")
                self.assertTrue(reply.startswith(b"SERVER_ERROR write-ahead log unavailable"), reply)
                self.assertIn(errtext.encode(), reply)
                # Reads go on: everything acknowledged before the fault.
                got = faultlib.get_many(c, list(before_fault))
                self.assertEqual(len(got), len(before_fault), "reads lost keys during the fault")
                self.assertEqual(got, before_fault)
                self.assertIn(b"VERSION", c.request(b"version\r\n"))
            refused_text = sorted(set(v for v in w.refused.values()))
            faultlib.figure("%s refusal text" % label, refused_text[0].decode().strip())
            self.assertIn(errtext, node.log_text(), "the log does not say why")
            time.sleep(1.5)   # held: the writer's repair attempts fail meanwhile
            self.assertNotEqual(node.stats(b"persistence")["wal_error"], "none",
                                "wal_error cleared while the disk still fails")
            acked_during = w.counts()[0]
            # The disk recovers: writes are accepted again without a restart.
            node.set_fault("")
            node.wait_stat(b"persistence", lambda s: s.get("wal_error") == "none", 20,
                           "wal_error to clear after the disk recovered")
            self.assertTrue(w.wait_acked(acked_during + 200, 30),
                            "writes not accepted again after the disk recovered: %r" % (w.counts(),))
            with node.conn() as c:
                self.assertEqual(c.set(b"probe-after-fault", b"y"), b"STORED\r\n")
        finally:
            w.stop()
        acked, present = self.check_after_restart(node, w, label)
        self.assertEqual(acked, present)

    def test_wal_write_enospc_fsync_always(self):
        self.wal_fault("always", "wal:ENOSPC:write", ENOSPC_TEXT, "wal write ENOSPC fsync=always")

    def test_wal_fsync_eio_fsync_always(self):
        self.wal_fault("always", "wal:EIO:fsync", EIO_TEXT, "wal fsync EIO fsync=always")

    def test_wal_write_enospc_fsync_everysec(self):
        self.wal_fault("everysec", "wal:ENOSPC:write", ENOSPC_TEXT, "wal write ENOSPC fsync=everysec")

    def test_wal_fsync_eio_fsync_everysec(self):
        self.wal_fault("everysec", "wal:EIO:fsync", EIO_TEXT, "wal fsync EIO fsync=everysec")

    # -- a binary client during a WAL fault --------------------------------
    def binary_reply(self, c):
        """One binary reply packet: (opcode, opaque, status, body)."""
        head = c.read_exact(24, timeout=15)
        magic, op, keylen, extlen, _, status, bodylen, opaque, _ = struct.unpack(">BBHBBHIIQ", head)
        self.assertEqual((magic, keylen, extlen), (0x81, 0, 0), "not a binary reply: %r" % head)
        return op, opaque, status, c.read_exact(bodylen, timeout=15) if bodylen else b""

    @staticmethod
    def binary_set(op, key, opaque):
        extras = struct.pack(">II", 0, 0)
        return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), 8, 0, 0, 8 + len(key) + 1,
                           opaque, 0) + extras + key + b"v"

    @staticmethod
    def binary_noop(opaque):
        return struct.pack(">BBHBBHIIQ", 0x80, 0x0a, 0, 0, 0, 0, 0, opaque, 0)

    def held_binary_write_fails(self, name, op):
        """The write under way when the fsync fails was held for it: its
        reply is replaced by an error (conn.c), which on a binary connection
        must be a binary packet with the request's opcode and opaque, not
        SERVER_ERROR text in the middle of the stream; a quiet write, which
        answers only failures, must get it too."""
        node = self.node(name, ["--fsync", "always"]).start()
        with harness.Conn(harness.HOST, node.port) as c:
            c.send(self.binary_set(0x01, b"before", 1))
            self.assertEqual(self.binary_reply(c), (0x01, 1, 0, b""))
            node.set_fault("wal:EIO:fsync")
            c.send(self.binary_set(op, b"held", 0x1234) + self.binary_noop(7))
            got_op, opaque, status, body = self.binary_reply(c)
            self.assertTrue(node.injected(), "the shim injected nothing")
            self.assertEqual((got_op, opaque, status), (op, 0x1234, 0x84), body)
            self.assertTrue(body.startswith(b"write-ahead log failed before this write was durable: "),
                            body)
            self.assertIn(EIO_TEXT.encode(), body)
            # The stream is still in step: the NOOP behind it is answered.
            self.assertEqual(self.binary_reply(c), (0x0a, 7, 0, b""))

    def test_wal_fault_answers_a_binary_write_in_binary(self):
        self.held_binary_write_fails("binary_held", 0x01)

    def test_wal_fault_answers_a_binary_quiet_write(self):
        self.held_binary_write_fails("binary_quiet_held", 0x11)

    # -- stopped while the disk still fails --------------------------------
    def stop_during_fault(self, policy, spec, label):
        node = self.node(label.replace(" ", "_"), ["--fsync", policy]).start()
        w = Writers(node, label.replace(" ", "_").encode()).start()
        try:
            self.assertTrue(w.wait_acked(300, 30))
            node.set_fault(spec)
            node.wait_stat(b"persistence", lambda s: s.get("wal_error", "none") != "none", 15,
                           "wal_error after injecting %s" % spec)
            self.assertTrue(w.wait_refused(15))
        finally:
            w.stop()
        # SIGTERM with the disk still failing, then a healthy disk.
        rc = node.stop()
        faultlib.figure("%s exit status of SIGTERM during the fault" % label, rc)
        acked, present = self.check_after_restart(node, w, label, expect_all_acked=False)
        self.assertEqual(acked, present, "%s: %d acknowledged writes lost by a clean stop while "
                         "the disk failed" % (label, acked - present))

    def test_stop_during_wal_fault_fsync_always(self):
        self.stop_during_fault("always", "wal:ENOSPC:write", "SIGTERM during wal ENOSPC fsync=always")

    def test_stop_during_wal_fault_fsync_everysec(self):
        self.stop_during_fault("everysec", "wal:ENOSPC:write", "SIGTERM during wal ENOSPC fsync=everysec")

    # -- a slow disk and kill -9 -------------------------------------------
    def test_kill9_slow_wal_everysec(self):
        """README: with --fsync everysec nothing acknowledged is lost when only
        the process dies (a write is answered once its record is in the kernel).  Make each WAL write() take 600 ms (a slow disk),
        write, kill -9, restart on a healthy disk."""
        label = "kill -9 with slow WAL writes fsync=everysec"
        node = self.node("slowwal", ["--fsync", "everysec"]).start()
        node.set_fault("wal:delay600:write")
        w = Writers(node, b"slow", nthreads=2).start()
        try:
            # Each acknowledgement waits for a 600 ms write(): a few dozen.
            self.assertTrue(w.wait_acked(20, 30), "writes not acknowledged: %r" % (w.counts(),))
        finally:
            node.kill9()
            w.stop()
        self.assertTrue(node.injected() is not None)
        acked, present = self.check_after_restart(node, w, label, expect_all_acked=False)
        self.assertEqual(acked, present, "%s: %d of %d acknowledged writes lost although only the "
                         "process died (README: 'none when only the process dies')"
                         % (label, acked - present, acked))

    # -- checkpoint faults -------------------------------------------------
    def test_checkpoint_enospc(self):
        label = "checkpoint LMDB ENOSPC"
        node = self.node("ckpt", ["-m", "1024", "--fsync", "everysec",
                                  "--wal-segment-size", "64k"]).start()
        w = Writers(node, b"ckpt", nthreads=2, value_size=1000).start()
        try:
            self.assertTrue(w.wait_acked(200, 30))
            node.wait_stat(b"persistence", lambda s: int(s["checkpoint_lsn"]) > 0, 15,
                           "a first checkpoint")
            # Page writes fail (not the meta page: see test_checkpoint_meta_eio).
            node.set_fault("lmdbdata:ENOSPC")
            st = node.wait_stat(b"persistence", lambda s: s.get("checkpoint_error", "none") != "none",
                                15, "checkpoint_error after LMDB ENOSPC")
            self.assertEqual(st["checkpoint_error"], ENOSPC_TEXT)
            self.assertTrue(any(" /" in l and "/lmdb/" in l for l in node.injected()),
                            "the shim injected nothing into LMDB")
            self.assertIn("checkpointer: " + ENOSPC_TEXT, node.log_text())
            # Writes keep working: the WAL keeps the data.
            acked0 = w.counts()[0]
            self.assertTrue(w.wait_acked(acked0 + 500, 30),
                            "writes stalled during the checkpoint fault: %r" % (w.counts(),))
            self.assertEqual(w.counts()[1], 0, "writes refused during a checkpoint fault: %r"
                             % list(w.refused.values())[:3])
            stuck = int(node.stats(b"persistence")["checkpoint_lsn"])
            n_inj = len(node.injected())
            time.sleep(2.5)  # the checkpointer retries every second
            st = node.stats(b"persistence")
            self.assertEqual(int(st["checkpoint_lsn"]), stuck, "checkpoint advanced during the fault")
            self.assertGreater(len(node.injected()), n_inj,
                               "the checkpointer does not retry: injected %r\nlog:\n%s"
                               % (node.injected(), node.log_tail(15)))
            faultlib.figure("%s checkpoint_lsn during the fault / wal_lsn" % label,
                            "%s / %s" % (st["checkpoint_lsn"], st["wal_lsn"]))
            node.set_fault("")
            st = node.wait_stat(b"persistence",
                                lambda s: int(s["checkpoint_lsn"]) > stuck and s["checkpoint_error"] == "none",
                                # a round folds the whole backlog the fault left; an ASan
                                # build is several times slower at it
                                90 if faultlib.sanitized_build() else 20,
                                "checkpoint_lsn to advance after the fault cleared")
            faultlib.figure("%s checkpoint_lsn after the fault cleared" % label, st["checkpoint_lsn"])
            acked1 = w.counts()[0]
            self.assertTrue(w.wait_acked(acked1 + 100, 30))
        finally:
            w.stop()
        acked, present = self.check_after_restart(node, w, label)
        self.assertEqual(acked, present)


    def test_checkpoint_meta_eio(self):
        """One failed write of LMDB's meta page (EIO), then a healthy disk:
        the checkpointer must recover like from any other checkpoint fault."""
        label = "checkpoint LMDB meta-page EIO once"
        node = self.node("ckptmeta", ["-m", "1024", "--fsync", "everysec",
                                      "--wal-segment-size", "64k"]).start()
        w = Writers(node, b"meta", nthreads=2, value_size=1000).start()
        try:
            self.assertTrue(w.wait_acked(200, 30))
            node.wait_stat(b"persistence", lambda s: int(s["checkpoint_lsn"]) > 0, 15,
                           "a first checkpoint")
            node.set_fault("lmdbmeta:EIO:write:1")
            st = node.wait_stat(b"persistence", lambda s: s.get("checkpoint_error", "none") != "none",
                                15, "checkpoint_error after a failed meta-page write")
            stuck = int(st["checkpoint_lsn"])
            faultlib.figure("%s checkpoint_error" % label, st["checkpoint_error"])
            self.assertTrue(node.injected(), "the shim injected nothing")
            # The fault was one write: the disk is healthy again at once.
            st = node.wait_stat(b"persistence",
                                lambda s: int(s["checkpoint_lsn"]) > stuck and s["checkpoint_error"] == "none",
                                90 if faultlib.sanitized_build() else 15,
                                "checkpoint_lsn to advance after one failed meta-page write")
            acked1 = w.counts()[0]
            self.assertTrue(w.wait_acked(acked1 + 100, 30))
        finally:
            w.stop()
        acked, present = self.check_after_restart(node, w, label)
        self.assertEqual(acked, present)


if __name__ == "__main__":
    faultlib.main()
