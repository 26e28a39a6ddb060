#!/usr/bin/python3
"""No lock that a reader can wait for is held across a wait for the disk.

test_get_answered_while_a_writer_waits_for_the_wal
    Writers on one worker fill the WAL's append buffer while every WAL
    write() is stalled until the test releases it (fail shim
    "wal:hold:write"), so that worker's next append waits for buffer space.
    A get of the same key, on the other worker, must be answered while the
    write is still stalled.  (When the key's cache stripe lock was held across
    that wait, the get waited for the disk.)

test_requests_sent_while_parked_are_answered_in_order,
test_client_that_stops_sending_still_gets_its_reply
    A parked connection (its set waits for a slowed fsync) keeps reading:
    requests sent meanwhile are answered in order once it resumes, and a
    client that shuts down its sending side still gets its STORED.

promote and replicaof write the node's identity (history, epoch, whom it
follows) in one LMDB transaction.  That commit is done by the replication
thread; the client that asked waits for its reply, parked, while its worker
goes on serving everyone else.

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
    refused as before) with the same epoch and history, also after a restart
    (the identity is written in one transaction: all of it or none), and the
    connection stays usable.  Once the disk works again, `promote` succeeds.

Run: /usr/bin/python3 tests/faults/test_lock_waits.py --bin build/cairn \\
       --shim build/tests/faults/libcairn_failshim.so
"""

import os
import select
import socket
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib  # noqa: E402
from faultlib import harness  # noqa: E402


WRITERS = 20   # x 512 KiB: more than the WAL's 8 MiB append buffer


def send_quietly(conn, data):
    """sendall that gives up quietly (the test closes the connection)."""
    try:
        conn.send(data)
    except OSError:
        pass


def replies_pending(conn):
    """True if nothing has arrived on conn yet (a zero-timeout poll)."""
    if conn.buf:
        return False
    r, _, _ = select.select([conn.sock], [], [], 0)
    return not r


class SlowWal(unittest.TestCase):
    def setUp(self):
        self.work = faultlib.Workdir()
        self.addCleanup(self.work.cleanup)
        self.node = faultlib.Node(self.work, "node", ["-t", "2", "-m", "256", "--fsync", "everysec"],
                                  shim=True).start()
        self.addCleanup(self.node.stop)

    def test_get_answered_while_a_writer_waits_for_the_wal(self):
        value = b"x" * (512 << 10)
        # Connections go to the two workers in turn: the even ones of 2N
        # consecutive connections share one worker, the odd ones the other.
        conns = [self.node.conn() for _ in range(2 * WRITERS)]
        for c in conns:
            self.addCleanup(c.close)
        writers, r = conns[0::2], conns[1]
        self.assertEqual(r.request(b"set hot 0 0 1\r\nv\r\n"), b"STORED\r\n")
        ok = faultlib.wait_until(lambda: (lambda s: s["wal_synced_lsn"] == s["wal_lsn"])(
            r.stats(b"persistence")), 10)
        self.assertTrue(ok, "the WAL was not synced before the fault")
        start = int(r.stats(b"persistence")["wal_lsn"])
        self.node.set_fault("wal:hold:write")
        # 10 MiB of sets to the key, more than the 8 MiB append buffer, all
        # on the writers' worker (sent from threads: it stops reading).
        for w in writers:
            t = threading.Thread(target=send_quietly, daemon=True,
                                 args=(w, b"set hot 0 0 %d\r\n%s\r\n" % (len(value), value)))
            t.start()
            self.addCleanup(t.join, 30)
        # That worker appends until the buffer is full, then waits for space.
        # (Asked on r: a new connection may land on the waiting worker.)
        ok = faultlib.wait_until(
            lambda: int(r.stats(b"persistence")["wal_appends_waiting"]) >= 1, 30)
        self.assertTrue(ok, "no append ever waited for WAL buffer space: %r"
                        % r.stats(b"persistence"))
        self.assertTrue(any("delay" in l for l in self.node.injected()),
                        "the stalled-disk rule never fired")
        # Every WAL write() waits until the rule is removed: nothing the
        # writers sent can be written meanwhile, and the get must still be
        # answered.
        got = r.request(b"get hot\r\n", b"END\r\n")
        self.assertTrue(got.startswith(b"VALUE hot 0 "), got[:80])
        st = r.stats(b"persistence")
        self.node.set_fault("")
        self.assertEqual(int(st["wal_synced_lsn"]), start, "a stalled write completed: %r" % st)


class ParkedConnection(unittest.TestCase):
    """A connection whose write waits for its fsync (--fsync always, every
    WAL fsync slowed by 300 ms with the fail shim) is parked; it keeps its
    read event (node/conn.c: parking costs no epoll_ctl), so what the client
    sends meanwhile is read then, and parsed once the write is durable."""

    def setUp(self):
        self.work = faultlib.Workdir()
        self.addCleanup(self.work.cleanup)
        self.node = faultlib.Node(self.work, "node", ["-t", "1", "--fsync", "always"],
                                  shim=True).start()
        self.addCleanup(self.node.stop)
        self.node.set_fault("wal:delay300:fsync")

    def test_requests_sent_while_parked_are_answered_in_order(self):
        with self.node.conn() as c:
            c.send(b"set k1 0 0 2\r\nv1\r\n")
            self.assertTrue(replies_pending(c), "answered before its fsync")
            # Sent while the set waits for its fsync: read, held, then parsed.
            c.send(b"get k1\r\nset k2 0 0 2\r\nv2\r\nget k2\r\n")
            want = (b"STORED\r\nVALUE k1 0 2\r\nv1\r\nEND\r\n"
                    b"STORED\r\nVALUE k2 0 2\r\nv2\r\nEND\r\n")
            self.assertEqual(c.read_exact(len(want), timeout=10), want)
        self.assertTrue(any("delay" in l for l in self.node.injected()),
                        "the slowed fsync never happened")

    def test_client_that_stops_sending_still_gets_its_reply(self):
        s = socket.create_connection((faultlib.HOST, self.node.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(b"set k3 0 0 2\r\nv3\r\n")
        s.shutdown(socket.SHUT_WR)   # end of input while the set is parked
        got = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        self.assertEqual(got, b"STORED\r\n")
        with self.node.conn() as c:
            self.assertEqual(c.request(b"get k3\r\n", b"END\r\n"), b"VALUE k3 0 2\r\nv3\r\nEND\r\n")


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

    def identity(self):
        st = self.replica.stats(b"replication")
        return (st.get("role"), st.get("epoch"), st.get("history_id"))

    def test_failed_promote_reports_and_keeps_the_role(self):
        before = self.identity()
        self.replica.set_fault("lmdb:ENOSPC:write")
        with self.replica.conn() as c:
            out = c.request(b"promote\r\n")
            self.assertTrue(out.startswith(b"SERVER_ERROR role change failed: "), out)
            self.assertEqual(self.identity(), before)
            self.assertEqual(c.request(b"set no 0 0 1\r\nx\r\n"),
                             b"SERVER_ERROR readonly replica\r\n")
            self.assertEqual(c.request(b"get k\r\n", b"END\r\n"), b"VALUE k 0 1\r\nv\r\nEND\r\n")
        self.replica.set_fault("")
        self.replica.restart()
        self.assertEqual(self.identity(), before, "the identity changed across a restart")
        with self.replica.conn() as c:
            self.assertEqual(c.request(b"promote\r\n"), b"OK\r\n")
            self.assertEqual(c.request(b"set yes 0 0 1\r\nx\r\n"), b"STORED\r\n")
        self.assertEqual(self.role(), "primary")


if __name__ == "__main__":
    faultlib.main()
