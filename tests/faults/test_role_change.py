#!/usr/bin/python3
"""promote and replicaof never make a worker wait for the disk.

Both write the node's identity (history, epoch, whom it follows) in one LMDB
transaction.  That commit is done by the replication thread; the client
that asked waits for its reply, parked, while its worker goes on serving
everyone else.

test_promote_does_not_block_other_clients
    A replica with one worker thread (-t 1, so every connection shares it),
    LMDB's fsyncs slowed by 3 s with the fail shim ("lmdb:delay3000:fsync").
    Client A sends `promote`; then client B, on the same worker, sends a
    `get`.  B must be answered while A's promote is still being committed:
    B's reply arrives first, A's `OK` later, and then the node is a primary
    that accepts writes.  (When the worker itself made the commit, B waited
    behind it and A was answered first.)

test_failed_promote_reports_and_keeps_the_role
    The same replica with LMDB writes failing (ENOSPC): `promote` answers
    `SERVER_ERROR role change failed: ...`, the node stays a replica (writes
    refused as before), and the connection stays usable.  Once the disk
    works again, `promote` succeeds.

Run: /usr/bin/python3 tests/faults/test_role_change.py --bin build/cairn \\
       --shim build/tests/faults/libcairn_failshim.so
"""

import os
import select
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib  # noqa: E402
from faultlib import harness  # noqa: E402


def replies_pending(conn):
    """True if nothing has arrived on conn yet (a zero-timeout poll)."""
    if conn.buf:
        return False
    r, _, _ = select.select([conn.sock], [], [], 0)
    return not r


class RoleChange(unittest.TestCase):
    def setUp(self):
        self.work = faultlib.Workdir()
        self.addCleanup(self.work.cleanup)
        self.primary = faultlib.Node(self.work, "primary", ["-t", "1"]).start()
        self.addCleanup(self.primary.stop)
        self.replica = faultlib.Node(
            self.work, "replica",
            ["-t", "1", "--replica-of", "%s:%d" % (faultlib.HOST, self.primary.repl_port)],
            shim=True).start()
        self.addCleanup(self.replica.stop)
        with self.primary.conn() as c:
            self.assertEqual(c.request(b"set k 0 0 1\r\nv\r\n"), b"STORED\r\n")
        want = self.primary.stats(b"replication")["lsn"]
        self.replica.wait_stat(b"replication",
                               lambda st: st.get("link") == "up" and st.get("lsn") == want, 30,
                               "the replica to catch up with LSN %s" % want)

    def role(self):
        return self.replica.stats(b"replication").get("role")

    def test_promote_does_not_block_other_clients(self):
        self.replica.set_fault("lmdb:delay3000:fsync")
        with self.replica.conn() as a, self.replica.conn() as b:
            a.send(b"promote\r\n")
            # B's get goes through the same (only) worker.
            self.assertEqual(b.request(b"get k\r\n", b"END\r\n"), b"VALUE k 0 1\r\nv\r\nEND\r\n")
            self.assertTrue(replies_pending(a),
                            "promote was answered before a get sent after it: the worker "
                            "made the slow LMDB commit itself")
            self.assertEqual(a.readline(), b"OK\r\n")
        self.assertTrue(any("lmdb" in line for line in self.replica.injected()),
                        "the slow-disk rule never fired")
        self.replica.set_fault("")
        self.assertEqual(self.role(), "primary")
        with self.replica.conn() as c:
            self.assertEqual(c.request(b"set after 0 0 1\r\nx\r\n"), b"STORED\r\n")

    def test_failed_promote_reports_and_keeps_the_role(self):
        self.replica.set_fault("lmdb:ENOSPC:write")
        with self.replica.conn() as c:
            out = c.request(b"promote\r\n")
            self.assertTrue(out.startswith(b"SERVER_ERROR role change failed: "), out)
            self.assertEqual(self.role(), "replica")
            self.assertEqual(c.request(b"set no 0 0 1\r\nx\r\n"),
                             b"SERVER_ERROR readonly replica\r\n")
            self.assertEqual(c.request(b"get k\r\n", b"END\r\n"), b"VALUE k 0 1\r\nv\r\nEND\r\n")
            self.replica.set_fault("")
            self.assertEqual(c.request(b"promote\r\n"), b"OK\r\n")
            self.assertEqual(c.request(b"set yes 0 0 1\r\nx\r\n"), b"STORED\r\n")
        self.assertEqual(self.role(), "primary")


if __name__ == "__main__":
    faultlib.main()
