# --sync-replicas 1: a write is answered only once a replica holds it in its
# WAL (the replica applies to memory before it logs, so the value is readable
# on the replica as soon as the primary answers).  With the only replica
# frozen (SIGSTOP) a write answers SERVER_ERROR replication timeout after
# about --sync-timeout-ms and stays applied on the primary; after SIGCONT
# writes are STORED again; noreply writes get no reply either way.

import struct
import unittest

import cluster
from cluster import storage_cmd, wait_caught_up, wait_streaming

TIMEOUT_MS = 1000
TIMEOUT_REPLY = b"SERVER_ERROR replication timeout\r\n"


class SyncReplicasTest(unittest.TestCase):
    def setUp(self):
        self.c = cluster.Cluster(1, primary_args=["-t", "2", "--sync-replicas", "1",
                                                  "--sync-timeout-ms", str(TIMEOUT_MS)],
                                 replica_args_=["-t", "2"])
        self.addCleanup(self.c.cleanup)
        self.p, self.r = self.c.primary, self.c.replicas[0]
        wait_streaming(self.p, 1)

    def test_reply_waits_for_the_replica(self):
        p, r = self.p, self.r
        self.assertEqual(p.rstats()["sync_replicas"], 1)
        with p.conn() as pc, r.conn() as rc:
            for i in range(300):
                k = b"sync:%d" % i
                v = b"value-%d-" % i + b"x" * (i % 50)
                self.assertEqual(pc.request(storage_cmd("set", k, v, flags=i)), b"STORED\r\n")
                plsn = p.lsn()
                self.assertEqual(rc.get(k), v, "STORED before the replica held %r" % k)
                self.assertGreaterEqual(r.lsn(), plsn)
            # Other writes wait too.
            self.assertEqual(pc.request(b"delete sync:0\r\n"), b"DELETED\r\n")
            self.assertIsNone(rc.get(b"sync:0"))
            self.assertEqual(pc.request(storage_cmd("set", b"n", b"41")), b"STORED\r\n")
            self.assertEqual(pc.request(b"incr n 1\r\n"), b"42\r\n")
            self.assertEqual(rc.get(b"n"), b"42")
            self.assertEqual(pc.request(storage_cmd("append", b"n", b"!")), b"STORED\r\n")
            self.assertEqual(rc.get(b"n"), b"42!")
            # Pipelined writes: every reply, in order, each after its ack.
            out = pc.exchange(b"".join(storage_cmd("set", b"pipe:%d" % i, b"p%d" % i)
                                       for i in range(50)))
            self.assertEqual(out, b"STORED\r\n" * 50)
            self.assertEqual(rc.get(b"pipe:49"), b"p49")
            # noreply: nothing comes back, and the write is replicated.
            self.assertEqual(pc.exchange(storage_cmd("set", b"nr", b"quiet", noreply=True)), b"")
            self.assertTrue(cluster.wait_until(lambda: rc.get(b"nr") == b"quiet",
                                               cluster.POLL_TIMEOUT, 0.02))

    def test_timeout_when_the_replica_is_frozen(self):
        p, r = self.p, self.r
        with p.conn(timeout=15.0) as pc:
            self.assertEqual(pc.request(storage_cmd("set", b"before", b"1")), b"STORED\r\n")
            r.sigstop()
            try:
                self.assertEqual(pc.request(storage_cmd("set", b"frozen", b"2")), TIMEOUT_REPLY)
                # The write stays applied on the primary.
                self.assertEqual(pc.get(b"frozen"), b"2")
                self.assertEqual(pc.request(b"delete before\r\n"), TIMEOUT_REPLY)
                self.assertIsNone(pc.get(b"before"))
                # noreply: no reply at all, not even the timeout.
                self.assertEqual(pc.exchange(storage_cmd("set", b"nr1", b"3", noreply=True)), b"")
                self.assertEqual(pc.get(b"nr1"), b"3")
                # Another client is not blocked from reading meanwhile.
                with p.conn() as other:
                    self.assertEqual(other.get(b"frozen"), b"2")
            finally:
                r.sigcont()
            wait_caught_up(p, [r])
            wait_streaming(p, 1)
            self.assertEqual(pc.request(storage_cmd("set", b"thawed", b"4")), b"STORED\r\n")
            self.assertEqual(pc.exchange(storage_cmd("set", b"nr2", b"5", noreply=True)), b"")
        with r.conn() as rc:
            self.assertEqual(rc.get(b"thawed"), b"4")
            for k, v in ((b"frozen", b"2"), (b"nr1", b"3"), (b"nr2", b"5")):
                self.assertTrue(cluster.wait_until(lambda: rc.get(k) == v, cluster.POLL_TIMEOUT),
                                k)
            self.assertIsNone(rc.get(b"before"))

    def test_binary_timeout_is_a_binary_error(self):
        # A binary write's timeout is an error packet with its opcode and
        # opaque (not SERVER_ERROR text in the stream), and a quiet write,
        # which answers only failures, gets one too.
        def packet(op, opaque, key=b"", extras=b"", value=b""):
            return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0,
                               len(extras) + len(key) + len(value), opaque, 0) + \
                extras + key + value

        def read_reply(c):
            head = c.read_exact(24, timeout=15)
            magic, op, keylen, extlen, _, status, bodylen, opaque, _ = \
                struct.unpack(">BBHBBHIIQ", head)
            self.assertEqual(magic, 0x81, head)
            return op, opaque, status, c.read_exact(bodylen, timeout=15) if bodylen else b""

        p, r = self.p, self.r
        flags_ttl = struct.pack(">II", 0, 0)
        with p.conn(timeout=15.0) as pc:
            pc.send(packet(0x01, 1, b"bin-before", flags_ttl, b"1"))
            self.assertEqual(read_reply(pc)[:3], (0x01, 1, 0))
            r.sigstop()
            try:
                pc.send(packet(0x01, 2, b"bin-frozen", flags_ttl, b"2"))
                self.assertEqual(read_reply(pc), (0x01, 2, 0x84, b"replication timeout"))
                pc.send(packet(0x11, 3, b"bin-quiet", flags_ttl, b"3") + packet(0x0a, 4))
                self.assertEqual(read_reply(pc), (0x11, 3, 0x84, b"replication timeout"))
                self.assertEqual(read_reply(pc), (0x0a, 4, 0, b""))
                with p.conn() as other:  # applied, as any timed-out write
                    self.assertEqual(other.get(b"bin-quiet"), b"3")
            finally:
                r.sigcont()
            wait_caught_up(p, [r])
            wait_streaming(p, 1)
            pc.send(packet(0x11, 5, b"bin-thawed", flags_ttl, b"4") + packet(0x0a, 6))
            self.assertEqual(read_reply(pc), (0x0a, 6, 0, b""))


if __name__ == "__main__":
    cluster.main()
