# A replica is read-only: every write command answers SERVER_ERROR readonly
# replica (the data block of a refused storage command is consumed, not run)
# and changes nothing; get/gets are served.  Admin commands: `promote` on a
# replica answers OK and makes it a primary (epoch + 1, new history id, the
# old one remembered with the fork LSN) that accepts writes; `promote` on a
# primary is a no-op answering OK; `replicaof HOST PORT` naming the primary
# already followed is a no-op answering OK.  Also: after a promotion, new CAS
# uniques exceed the replicated ones; the old primary re-pointed at the
# promoted node follows it (partially; when it had diverged, its writes past
# the fork are discarded); a replica re-pointed at an unrelated primary ends
# with exactly that primary's data.

import unittest

import cluster
from cluster import READONLY, assert_same, dump, load, storage_cmd, wait_caught_up

KEYS = [b"k:%d" % i for i in range(50)]


class ReadonlyTest(unittest.TestCase):
    def setUp(self):
        self.c = cluster.Cluster(1, primary_args=["-t", "2"], replica_args_=["-t", "2"])
        self.addCleanup(self.c.cleanup)
        self.p, self.r = self.c.primary, self.c.replicas[0]
        data = {k: (b"v-" + k, i) for i, k in enumerate(KEYS)}
        data[b"num"] = (b"10", 3)
        load(self.p, data)
        self.keys = list(data)
        wait_caught_up(self.p, [self.r])

    def test_writes_refused_reads_served(self):
        p, r = self.p, self.r
        before = dump(r, self.keys + [b"new"])
        lsn = r.lsn()
        with r.conn() as c:
            cas = c.gets(b"k:1")[1]
            big = b"get k:2\r\n" * 20000          # a refused value is skipped whole
            writes = [
                storage_cmd("set", b"k:1", b"get k:2"),
                storage_cmd("set", b"new", big),
                storage_cmd("add", b"new", b"x"),
                storage_cmd("replace", b"k:1", b"x"),
                storage_cmd("append", b"k:1", b"x"),
                storage_cmd("prepend", b"k:1", b"x"),
                storage_cmd("cas", b"k:1", b"x", cas=cas),
                b"delete k:1\r\n",
                b"incr num 1\r\n",
                b"decr num 1\r\n",
                b"touch k:1 100\r\n",
                b"gat 100 k:1\r\n",
                b"gats 100 k:1 k:2\r\n",
                b"flush_all\r\n",
                b"flush_all 10\r\n",
            ]
            for w in writes:
                self.assertEqual(c.exchange(w), READONLY, w[:40])
            # All at once, pipelined: one refusal each, nothing else.
            self.assertEqual(c.exchange(b"".join(writes)), READONLY * len(writes))
            # Reads are served.
            self.assertEqual(c.get(b"k:1"), b"v-k:1")
            self.assertEqual(c.gets(b"k:1"), (b"v-k:1", cas))
            out = c.exchange(b"get k:1 k:2 missing\r\n")
            self.assertEqual(out, b"VALUE k:1 1 5\r\nv-k:1\r\nVALUE k:2 2 5\r\nv-k:2\r\nEND\r\n")
            self.assertTrue(c.exchange(b"stats\r\n").endswith(b"END\r\n"))
        self.assertEqual(r.lsn(), lsn)
        self.assertEqual(dump(r, self.keys + [b"new"]), before)
        assert_same(self, [p, r], self.keys + [b"new"], min_keys=len(self.keys))
        self.assertEqual(r.rstats()["role"], "replica")

    def test_replicaof_same_primary_is_noop(self):
        p, r = self.p, self.r
        before = p.rstats()
        with r.conn() as c:
            self.assertEqual(c.exchange(b"replicaof 127.0.0.1 %d\r\n" % p.repl_port), b"OK\r\n")
        st = r.rstats()
        self.assertEqual(st["role"], "replica")
        self.assertEqual(st["primary"], p.repl_addr)
        # Had it reconnected, the primary would count another handshake.
        load(p, {b"after": (b"a", 0)})
        wait_caught_up(p, [r])
        after = p.rstats()
        self.assertEqual((after["partial_syncs"], after["full_syncs"]),
                         (before["partial_syncs"], before["full_syncs"]), after)
        self.assertEqual(r.rstats()["link"], "up")
        self.assertNotIn("now a replica of", r.stderr_text())

    def test_admin_usage_errors(self):
        p, r = self.p, self.r
        with r.conn() as c:
            self.assertTrue(c.exchange(b"replicaof\r\n").startswith(b"CLIENT_ERROR"))
            self.assertTrue(c.exchange(b"replicaof 127.0.0.1\r\n").startswith(b"CLIENT_ERROR"))
            for port in (b"0", b"65536", b"x"):
                self.assertTrue(c.exchange(b"replicaof 127.0.0.1 %s\r\n" % port)
                                .startswith(b"CLIENT_ERROR"), port)
        st = r.rstats()
        self.assertEqual((st["role"], st["primary"]), ("replica", p.repl_addr), st)
        # `replicaof no one` is promote.
        with r.conn() as c:
            self.assertEqual(c.exchange(b"replicaof no one\r\n"), b"OK\r\n")
            self.assertEqual(c.exchange(storage_cmd("set", b"k:1", b"w")), b"STORED\r\n")
        self.assertEqual(r.rstats()["role"], "primary")

    def test_promote_on_primary_is_noop(self):
        p = self.p
        before = p.rstats()
        with p.conn() as c:
            self.assertEqual(c.exchange(b"promote\r\n"), b"OK\r\n")
        after = p.rstats()
        for k in ("role", "epoch", "history_id", "lsn"):
            self.assertEqual(after[k], before[k], k)
        self.assertNotIn("prev_history_id", after)
        self.assertEqual(after["role"], "primary")

    def test_promote_replica(self):
        p, r = self.p, self.r
        pst, rst = p.rstats(), r.rstats()
        self.assertEqual(rst["epoch"], pst["epoch"])
        self.assertEqual(rst["history_id"], pst["history_id"])
        with p.conn() as c:      # CAS uniques the primary handed out
            for _ in range(20):
                c.exchange(storage_cmd("set", b"k:0", b"bump"))
            stale = c.gets(b"k:0")[1]
        wait_caught_up(p, [r])
        rst = r.rstats()
        with r.conn() as c:
            self.assertEqual(c.gets(b"k:0"), (b"bump", stale))
            self.assertEqual(c.exchange(b"promote\r\n"), b"OK\r\n")
        st = r.rstats()
        self.assertEqual(st["role"], "primary", st)
        self.assertEqual(st["epoch"], pst["epoch"] + 1, st)
        self.assertNotEqual(st["history_id"], pst["history_id"])
        self.assertEqual(st["prev_history_id"], pst["history_id"])
        self.assertEqual(st["fork_lsn"], rst["lsn"])
        self.assertNotIn("link", st)
        with r.conn() as c:
            self.assertEqual(c.exchange(storage_cmd("set", b"k:1", b"mine", 9)), b"STORED\r\n")
            self.assertEqual(c.exchange(b"incr num 5\r\n"), b"15\r\n")
            self.assertEqual(c.exchange(b"delete k:2\r\n"), b"DELETED\r\n")
            self.assertEqual(c.get(b"k:1"), b"mine")
            # New CAS uniques are above every replicated one: a client's
            # stale token from before the failover cannot match.
            self.assertGreater(c.gets(b"k:1")[1], stale)
            self.assertEqual(c.exchange(storage_cmd("set", b"k:0", b"after")), b"STORED\r\n")
            self.assertGreater(c.gets(b"k:0")[1], stale)
            self.assertEqual(c.exchange(storage_cmd("cas", b"k:0", b"stale", cas=stale)),
                             b"EXISTS\r\n")
        self.assertEqual(r.lsn(), rst["lsn"] + 4)
        # Promoting again is a no-op.
        with r.conn() as c:
            self.assertEqual(c.exchange(b"promote\r\n"), b"OK\r\n")
        self.assertEqual(r.rstats()["epoch"], pst["epoch"] + 1)
        # The old primary is untouched by the promotion.
        with p.conn() as c:
            self.assertEqual(c.get(b"k:1"), b"v-k:1")

    def promote_and_repoint(self, diverge):
        """Promote the replica, then point the old primary at it.  With
        diverge, the old primary first takes writes the new one never saw."""
        p, r = self.p, self.r
        with r.conn() as c:
            self.assertEqual(c.exchange(b"promote\r\n"), b"OK\r\n")
        if diverge:
            load(p, {b"k:3": (b"lost", 1), b"only-old": (b"lost", 2)})
        load(r, {b"k:1": (b"new-primary", 5), b"fresh": (b"f", 6)})
        rst = r.rstats()
        with p.conn() as c:
            self.assertEqual(c.exchange(b"replicaof 127.0.0.1 %d\r\n" % r.repl_port), b"OK\r\n")
            self.assertEqual(c.exchange(storage_cmd("set", b"k:4", b"x")), READONLY)
        st = p.rstats()
        self.assertEqual(st["role"], "replica", st)
        self.assertEqual(st["primary"], r.repl_addr, st)
        wait_caught_up(r, [p])
        st, after = p.rstats(), r.rstats()
        self.assertEqual(st["epoch"], rst["epoch"], st)
        self.assertEqual(st["history_id"], rst["history_id"], st)
        keys = self.keys + [b"fresh", b"only-old"]
        got = assert_same(self, [r, p], keys, min_keys=len(self.keys))
        self.assertEqual(got[b"k:1"], (b"new-primary", 5))
        self.assertEqual(got[b"k:3"], (b"v-k:3", 3))
        self.assertNotIn(b"only-old", got)
        return after

    def test_old_primary_follows_promoted_replica(self):
        st = self.promote_and_repoint(diverge=False)
        # Its log is a prefix of the new primary's: partial, via the
        # previous history id.
        self.assertEqual((st["full_syncs"], st["partial_syncs"]), (0, 1), st)

    def test_diverged_old_primary_follows_promoted_replica(self):
        st = self.promote_and_repoint(diverge=True)
        # Its writes past the fork are discarded: in place (counted in its
        # discarded_changes) or by a full resync.
        mine = self.p.rstats()
        self.assertTrue(st["full_syncs"] >= 1 or mine.get("discarded_changes", 0) >= 2,
                        (st, mine))

    def test_replicaof_other_primary(self):
        """Re-pointed at an unrelated primary (another history), the replica
        is resynced in full: it ends holding exactly that primary's data."""
        p, r = self.p, self.r
        other = self.c.add(cluster.Node("other", ["-t", "2"]))
        other.start()
        theirs = {b"k:1": (b"other-k1", 11), b"o:1": (b"o", 12)}
        load(other, theirs)
        with r.conn() as c:
            self.assertEqual(c.exchange(b"replicaof 127.0.0.1 %d\r\n" % other.repl_port),
                             b"OK\r\n")
        wait_caught_up(other, [r])
        st = other.rstats()
        self.assertEqual((st["full_syncs"], st["partial_syncs"]), (1, 0), st)
        self.assertEqual(r.rstats()["primary"], other.repl_addr)
        got = assert_same(self, [other, r], self.keys + list(theirs), min_keys=2)
        self.assertEqual(sorted(got), sorted(theirs))
        # Writes on the old primary no longer reach it.
        load(p, {b"o:1": (b"from-old", 1)})
        load(other, {b"o:2": (b"from-other", 2)})
        wait_caught_up(other, [r])
        with r.conn() as c:
            self.assertEqual(c.get(b"o:1"), b"o")
            self.assertEqual(c.get(b"o:2"), b"from-other")
        self.assertTrue(cluster.wait_until(lambda: "replica0" not in p.rstats(),
                                           cluster.POLL_TIMEOUT, 0.05), p.rstats())


if __name__ == "__main__":
    cluster.main()
