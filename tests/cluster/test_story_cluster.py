#!/usr/bin/python3
# Story: "I run a three-node cluster and use it as a cache."
# scripts/cluster.sh start -> status shows node 1 primary, nodes 2 and 3 its
# replicas with link up; the cache-aside pattern through node 1 with
# python-memcached (get -> miss -> read the "database" (a dict, counting
# reads) -> set with TTL 1800 -> the next get is a hit with no db read);
# the same rows are readable from both replicas; writes on a replica are
# refused (SERVER_ERROR readonly replica, nothing changes); cluster.sh stop
# exits 0 and every node process is gone.
#
# Run: /usr/bin/python3 test_story_cluster.py --bin build/cairn
#      --cairnctl build/cairnctl --cluster-script scripts/cluster.sh

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402
from clusterlib import poll  # noqa: E402


class FakeDB:
    def __init__(self, n):
        self.rows = {uid: {"uid": uid, "name": "user%d" % uid, "score": uid * 7}
                     for uid in range(n)}
        self.reads = 0

    def get_user(self, uid):
        self.reads += 1
        return dict(self.rows[uid])


def get_user(mc, db, uid):
    key = "user:%d" % uid
    row = mc.get(key)
    if row is None:
        row = db.get_user(uid)
        assert mc.set(key, row, time=1800) is True, "set %s was not STORED" % key
    return row


class StoryCluster(clusterlib.ClusterTest):
    def test_cluster_story(self):
        c = self.cluster
        p = c.sh_ok("start")
        for n in (1, 2, 3):
            self.assertIn("node %d started" % n, p.stdout)
            self.assertIsNotNone(c.pid(n), "node %d has no live pid after start" % n)

        # status: node 1 primary, 2 and 3 replicas of node 1 with link up.
        def status_ok():
            out = c.sh_ok("status").stdout.splitlines()
            rows = {ln.split()[0]: ln.split() for ln in out[1:] if ln.strip()}
            return (rows["1"][2] == "primary" and
                    all(rows[n][2] == "replica" and rows[n][5] == c.repl_addr(1) and
                        rows[n][6] == "up" for n in ("2", "3")) and
                    " ".join(rows["1"][5:]) == "2 replicas")
        poll(status_ok, 20, "cluster.sh status to show 1 primary, 2 and 3 replicas up")
        st1 = c.stats(1)
        self.assertEqual(st1["role"], "primary")
        self.assertEqual(st1["node_id"], "node1")
        self.assertEqual(st1["connected_replicas"], "2")
        self.assertEqual(sorted(r["id"] for r in clusterlib.replica_lines(st1)), ["node2", "node3"])
        for n in (2, 3):
            st = c.stats(n)
            self.assertEqual((st["role"], st["primary"], st["link"]), ("replica", c.repl_addr(1), "up"))
            self.assertEqual(st["history_id"], st1["history_id"])

        # Cache-aside through node 1.
        mc = c.client(1)
        db = FakeDB(200)
        first = {uid: get_user(mc, db, uid) for uid in range(200)}
        self.assertEqual(db.reads, 200, "every first lookup must miss and read the db")
        self.assertEqual(first, db.rows)
        again = {uid: get_user(mc, db, uid) for uid in range(200)}
        self.assertEqual(db.reads, 200, "second lookups must all be cache hits")
        self.assertEqual(again, db.rows)
        mc.disconnect_all()

        # The same rows from both replicas (replication is asynchronous: poll).
        expected = {"user:%d" % uid: row for uid, row in db.rows.items()}
        for n in (2, 3):
            c.wait_values(n, expected)
            # A replica is a cache too: cache-aside reads through it are hits.
            rdb = FakeDB(200)
            rmc = c.client(n)
            for uid in range(200):
                self.assertEqual(get_user(rmc, rdb, uid), db.rows[uid])
            self.assertEqual(rdb.reads, 0)
            rmc.disconnect_all()

        # Writes on a replica are refused and change nothing.
        for n in (2, 3):
            self.assertEqual(clusterlib.raw_set(c.port(n), "user:1", "overwritten"),
                             "SERVER_ERROR readonly replica")
            self.assertEqual(clusterlib.raw_command(c.port(n), "delete user:2"),
                             "SERVER_ERROR readonly replica")
            self.assertEqual(clusterlib.raw_command(c.port(n), "incr user:3 1"),
                             "SERVER_ERROR readonly replica")
            self.assertEqual(clusterlib.raw_command(c.port(n), "flush_all"),
                             "SERVER_ERROR readonly replica")
            rmc = c.client(n)
            ok, err = rmc.set_checked("fresh:%d" % n, "x")
            self.assertFalse(ok)
            self.assertIn("SERVER_ERROR readonly replica", err or "")
            rmc.disconnect_all()
        for n in (1, 2, 3):
            got = c.get_all(n, ["user:1", "user:2", "fresh:2", "fresh:3"])
            self.assertEqual(got, {"user:1": db.rows[1], "user:2": db.rows[2]},
                             "node %d changed after refused replica writes" % n)

        # Clean stop: exit 0, every node gone.
        pids = [c.pid(n) for n in (1, 2, 3)]
        p = c.sh("stop")
        self.assertEqual(p.returncode, 0, p.stderr)
        for n in (1, 2, 3):
            self.assertIn("node %d stopped" % n, p.stdout)
            self.assertIsNone(c.pid(n))
        for pid in pids:
            self.assertFalse(c._alive(pid), "pid %d still alive after cluster.sh stop" % pid)
        st = c.sh_ok("status").stdout
        self.assertEqual([ln.split()[1:] for ln in st.splitlines()[1:]], [["-", "down"]] * 3)


if __name__ == "__main__":
    clusterlib.main()
