#!/usr/bin/python3
# Story: "the primary dies; I promote a replica and lose no acknowledged write."
# Cluster started with CAIRN_ARGS="--sync-replicas 1", so STORED means a
# replica holds the write in its WAL.  A writer thread writes distinct keys
# through node 1 and records every STORED; node 1 is killed with -9 in the
# middle of the stream.  Then, as the design says ("promote the replica with
# the highest lsn"), the more advanced replica is promoted -- node 2 unless
# node 3 is strictly ahead -- with `cluster.sh promote N` (retried until it
# answers OK), and:
#   - every write acknowledged STORED before the kill is on the new primary
#     with its value;
#   - the other replica follows the new primary (its `primary` is the new
#     primary's replication port, link up) after a PARTIAL resync: the new
#     primary counts partial_syncs >= 1 and full_syncs == 0;
#   - new writes on the new primary reach the other replica;
#   - cluster.sh restart 1: node 1 comes back as a replica of the new
#     primary, converges to exactly its contents over the whole key set the
#     writer ever sent (node 1's own last writes that never reached the new
#     primary are gone), and refuses writes (SERVER_ERROR readonly replica).
#
# Run: /usr/bin/python3 test_story_failover.py --bin build/cairn
#      --cairnctl build/cairnctl --cluster-script scripts/cluster.sh

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402
from clusterlib import poll  # noqa: E402


class StoryFailover(clusterlib.ClusterTest):
    cairn_args = "--sync-replicas 1"

    def test_failover_story(self):
        c = self.cluster
        c.sh_ok("start")
        for n in (2, 3):
            c.wait_replica_up(n, 1)
        self.assertEqual(c.stats(1).get("sync_replicas"), "1")

        w = clusterlib.Writer(c, 1, "fo")
        w.start()
        try:
            poll(lambda: w.n_stored() >= 300 or w.n_failed() > 0, 60,
                 "300 acknowledged writes through node 1")
            self.assertEqual(w.n_failed(), 0, "writes failed before the kill: %r"
                             % list(w.failed.items())[:3])
            with w.lock:
                acked_before_kill = dict(w.stored)
            c.sh_ok("kill", 1)
            # The writer goes on against the dead node for a moment.
            poll(lambda: w.n_failed() > 0, 30, "the writer to notice node 1 is gone")
        finally:
            w.stop()
        # A STORED that arrived after kill -9 is impossible, but count any
        # late one as acknowledged too.
        acked = dict(w.stored)
        self.assertTrue(set(acked_before_kill) <= set(acked))

        # Promote the replica with the highest lsn (node 2 on a tie).
        lsn = {n: int(c.stats(n)["lsn"]) for n in (2, 3)}
        new, other = (3, 2) if lsn[3] > lsn[2] else (2, 3)
        sys.stderr.write("lsn after the kill: %r; promoting node %d\n" % (lsn, new))

        def promoted():
            p = c.sh("promote", new)
            return p.returncode == 0 and "is primary" in p.stdout
        poll(promoted, 30, "cluster.sh promote %d to answer OK" % new)
        st = c.stats(new)
        self.assertEqual(st["role"], "primary")
        self.assertEqual(st["epoch"], "2")

        # No acknowledged write is lost.
        got = c.get_all(new, acked)
        lost = sorted(k for k, v in acked.items() if got.get(k) != v)
        self.assertEqual(lost, [], "%d acknowledged writes missing or wrong on node %d"
                         % (len(lost), new))

        # The other replica follows the new primary after a partial resync.
        c.wait_replica_up(other, new)
        st = c.stats(new)
        self.assertGreaterEqual(int(st["partial_syncs"]), 1, st)
        self.assertEqual(int(st["full_syncs"]), 0, st)
        self.assertEqual(st["connected_replicas"], "1")

        # New writes on the new primary reach the other replica.
        mc = c.client(new)
        fresh = {"after:%d" % i: "after-%d" % i for i in range(100)}
        for k, v in fresh.items():
            ok, err = mc.set_checked(k, v)
            self.assertTrue(ok, "set %s on the new primary: %s" % (k, err))
        mc.disconnect_all()
        c.wait_values(other, fresh)

        # The old primary rejoins as a replica and converges exactly.
        p = c.sh_ok("restart", 1)
        self.assertIn("node 1 follows node %d" % new, p.stdout)
        c.wait_replica_up(1, new, timeout=30)
        c.wait_caught_up((1, other), new)
        keys = list(w.attempted) + list(fresh)
        ref = c.get_all(new, keys)

        def converged():
            return all(c.get_all(n, keys) == ref for n in (1, other))
        poll(converged, 20, "nodes 1 and %d to hold exactly node %d's contents" % (other, new))
        n1 = c.stats(1)
        sys.stderr.write("node 1 after rejoin: lsn=%s discarded_changes=%s; %d keys written, "
                         "%d acked, %d on the new primary\n"
                         % (n1["lsn"], n1.get("discarded_changes"), len(w.attempted),
                            len(acked), len(ref) - len(fresh)))
        self.assertEqual(clusterlib.raw_set(c.port(1), "fo:0", "from-old-primary"),
                         "SERVER_ERROR readonly replica")
        mc = c.client(1)
        ok, err = mc.set_checked("late", "x")
        mc.disconnect_all()
        self.assertFalse(ok)
        self.assertIn("SERVER_ERROR readonly replica", err or "")
        self.assertEqual(c.get_all(1, ["fo:0", "late"]), {k: v for k, v in ref.items() if k == "fo:0"})


if __name__ == "__main__":
    clusterlib.main()
