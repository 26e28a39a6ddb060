#!/usr/bin/python3
# Story: "nodes crash or are restarted, and the cache comes back warm."
#  1. kill -9 replica 2 (cluster.sh kill 2), keep writing on the primary,
#     cluster.sh restart 2: node 2 follows node 1 again, resumes with a
#     PARTIAL resync (node 1's full_syncs stays 0) and holds every key with
#     its exact value (also the keys written while it was down).
#  2. wait until the primary fsynced its WAL and both replicas hold its LSN,
#     kill -9 the primary (cluster.sh kill 1), cluster.sh restart 1.  No other
#     node is primary, so the script starts node 1 without --replica-of and it
#     takes its stored role: it is primary again (same history), its contents
#     are intact, nodes 2 and 3 reconnect to it by themselves and new writes
#     reach them.
#  3. cluster.sh stop (SIGTERM) and start: every node keeps its role and
#     serves every key with its value straight from its own data.
#
# Run: /usr/bin/python3 test_story_restart.py --bin build/cairn
#      --cairnctl build/cairnctl --cluster-script scripts/cluster.sh

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402


def put(test, mc, data):
    for k, v in data.items():
        ok, err = mc.set_checked(k, v)
        test.assertTrue(ok, "set %s: %s" % (k, err))


class StoryRestart(clusterlib.ClusterTest):
    def test_restart_story(self):
        c = self.cluster
        c.sh_ok("start")
        for n in (2, 3):
            c.wait_replica_up(n, 1)
        expected = {}

        mc = c.client(1)
        batch = {"a:%d" % i: "alpha-%d-%s" % (i, "v" * (i % 50)) for i in range(300)}
        put(self, mc, batch)
        expected.update(batch)
        c.wait_caught_up((2, 3), 1)

        # --- 1. crash a replica, write more, restart it: it catches up.
        old_pid2 = c.pid(2)
        p = c.sh_ok("kill", 2)
        self.assertIn("node 2 killed", p.stdout)
        self.assertIsNone(c.pid(2))
        self.assertFalse(c._alive(old_pid2))
        full_before = int(c.stats(1)["full_syncs"])
        batch = {"b:%d" % i: "beta-%d" % i for i in range(300)}
        batch.update({"a:%d" % i: "alpha-rewritten-%d" % i for i in range(0, 300, 3)})
        put(self, mc, batch)
        self.assertEqual(mc.delete("a:1"), 1)
        expected.update(batch)
        del expected["a:1"]
        p = c.sh_ok("restart", 2)
        self.assertIn("node 2 follows node 1", p.stdout)
        c.wait_replica_up(2, 1)
        c.wait_caught_up((2, 3), 1)
        for n in (2, 3):
            c.wait_values(n, expected)
            self.assertEqual(c.get_all(n, ["a:1"]), {}, "deleted key still on node %d" % n)
        self.assertEqual(int(c.stats(1)["full_syncs"]), full_before,
                         "the restarted replica was warm: its resync must be partial")

        # --- 2. crash the primary after everything is synced, restart it.
        put(self, mc, {"c:%d" % i: "gamma-%d" % i for i in range(100)})
        expected.update({"c:%d" % i: "gamma-%d" % i for i in range(100)})
        mc.disconnect_all()
        c.wait_caught_up((2, 3), 1)
        c.wait_synced(1)
        hist = c.stats(1)["history_id"]
        lsn = int(c.stats(1)["lsn"])
        epoch = c.stats(1)["epoch"]
        c.sh_ok("kill", 1)
        self.assertIsNone(c.pid(1))
        p = c.sh_ok("restart", 1)
        # No live primary: the script starts node 1 with its stored role.
        self.assertNotIn("follows", p.stdout)
        st = c.stats(1)
        self.assertEqual(st["role"], "primary", "node 1 must come back in its stored role")
        self.assertEqual((st["history_id"], st["epoch"]), (hist, epoch))
        self.assertEqual(int(st["lsn"]), lsn)
        c.wait_values(1, expected, timeout=5)
        self.assertEqual(c.get_all(1, ["a:1"]), {})
        # The replicas reconnect by themselves (backoff <= 5 s).
        for n in (2, 3):
            c.wait_replica_up(n, 1, timeout=30)
        mc = c.client(1)
        put(self, mc, {"d:%d" % i: "delta-%d" % i for i in range(50)})
        expected.update({"d:%d" % i: "delta-%d" % i for i in range(50)})
        mc.disconnect_all()
        for n in (2, 3):
            c.wait_values(n, expected)

        # --- 3. clean stop and start: everything intact everywhere.
        c.wait_caught_up((2, 3), 1)
        p = c.sh("stop")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(all(c.pid(n) is None for n in (1, 2, 3)))
        c.sh_ok("start")
        # Straight from each node's own data (no waiting for replication).
        for n in (1, 2, 3):
            got = c.get_all(n, expected)
            wrong = [k for k, v in expected.items() if got.get(k) != v]
            self.assertEqual(wrong, [], "node %d after SIGTERM restart: %d keys wrong or missing"
                             % (n, len(wrong)))
            self.assertEqual(c.get_all(n, ["a:1"]), {})
        self.assertEqual(c.stats(1)["role"], "primary")
        for n in (2, 3):
            c.wait_replica_up(n, 1, timeout=30)
        mc = c.client(1)
        put(self, mc, {"e:1": "epsilon"})
        mc.disconnect_all()
        for n in (2, 3):
            c.wait_values(n, {"e:1": "epsilon"})


if __name__ == "__main__":
    clusterlib.main()
