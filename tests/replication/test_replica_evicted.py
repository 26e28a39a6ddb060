#!/usr/bin/python3
"""A replica with less memory than its primary evicts; changes to keys it
has evicted must not break the stream.

Scenario: a primary with -m 64 and a replica with -m 4 (--replica-of the
primary's replication port).  ~1,500 values of 10 KB go to the primary
(~15 MB: the primary keeps them all, the replica evicts most).  Then, on the
primary, a seeded random mix, interleaved with new 10 KB sets: delete,
touch and overwrite keys the replica has evicted and keys it still holds.

The replica must converge and stay healthy:
  - its `stats replication` lsn reaches the primary's lsn (bounded poll);
  - its link is `up`, and it did not flap: no "link ... down" line in its
    log and full_syncs + partial_syncs did not grow after the initial sync;
  - it never serves a deleted or an old value: for every key ever written,
    the replica answers a miss (it may have evicted it) or exactly the
    primary's current value and flags.
The primary must not evict (else "current value" is ambiguous): checked.

Run: /usr/bin/python3 tests/replication/test_replica_evicted.py --bin build/cairn
"""

import os
import random
import time
import unittest

import cluster
from cluster import wait_until

SEED = int(os.environ.get("CAIRN_TEST_SEED", "0") or 0) or int(time.time())
print("test_replica_evicted seed %d (set CAIRN_TEST_SEED to repeat)" % SEED, flush=True)

VALUE_SIZE = 10 * 1024
N_INITIAL = 1500
N_OPS = 3000


def value(key, gen):
    head = b"%s:%d:" % (key, gen)
    return (head * (VALUE_SIZE // len(head) + 1))[:VALUE_SIZE]


class ReplicaEvicted(unittest.TestCase):
    def setUp(self):
        self.c = cluster.Cluster(1, primary_args=["-m", "64"], replica_args_=["-m", "4"])
        self.primary = self.c.primary
        self.replica = self.c.replicas[0]

    def tearDown(self):
        self.c.cleanup()

    def link_downs(self):
        return self.replica.stderr_text().count("replication: link to ")

    def syncs(self):
        st = self.replica.rstats()
        return st["full_syncs"] + st["partial_syncs"]

    def test_changes_to_evicted_keys(self):
        rng = random.Random(SEED)
        cluster.wait_link(self.replica, "up")
        gen = {}                      # key -> generation written last (None: deleted)
        with self.primary.conn(timeout=30) as c:
            for i in range(N_INITIAL):
                k = b"k%d" % i
                gen[k] = 0
                self.assertEqual(c.set(k, value(k, 0), flags=i % 7), b"STORED\r\n")
        cluster.wait_caught_up(self.primary, [self.replica], timeout=60)
        rst = self.replica.stats()
        self.assertGreater(int(rst["evictions"]), 0, "the replica did not evict: %r" % rst)
        downs0, syncs0 = self.link_downs(), self.syncs()
        held = set(cluster.dump(self.replica, list(gen)))
        evicted = [k for k in gen if k not in held]
        print("replica holds %d of %d keys, evicted %d" % (len(held), len(gen), len(evicted)),
              flush=True)
        self.assertGreater(len(evicted), 100)
        held, evicted = sorted(held), sorted(evicted)
        flags = {k: int(k[1:]) % 7 for k in gen}
        counts = {}
        nxt = N_INITIAL
        with self.primary.conn(timeout=30) as c:
            for _ in range(N_OPS):
                pool = evicted if rng.random() < 0.7 else held
                k = rng.choice(pool)
                op = rng.choice(["delete", "touch", "set", "append", "new"])
                counts[op] = counts.get(op, 0) + 1
                if op == "new":
                    k = b"k%d" % nxt
                    nxt += 1
                    gen[k], flags[k] = 0, 3
                    self.assertEqual(c.set(k, value(k, 0), flags=3), b"STORED\r\n")
                elif op == "delete":
                    r = c.request(b"delete %s\r\n" % k)
                    self.assertIn(r, (b"DELETED\r\n", b"NOT_FOUND\r\n"))
                    gen[k] = None
                elif op == "touch":
                    r = c.request(b"touch %s 3600\r\n" % k)
                    self.assertIn(r, (b"TOUCHED\r\n", b"NOT_FOUND\r\n"))
                elif op == "set":
                    g = (gen[k] or 0) + 1
                    gen[k] = g
                    flags[k] = g % 5
                    self.assertEqual(c.set(k, value(k, g), flags=g % 5), b"STORED\r\n")
                else:  # append a short tail: keeps the value distinct from any older one
                    if gen[k] is None:
                        continue
                    r = c.storage("append", k, b"+")
                    self.assertEqual(r, b"STORED\r\n")
        print("ops %r" % sorted(counts.items()), flush=True)
        self.assertEqual(self.primary.stats().get("evictions"), "0", "the primary evicted")
        # converge
        want = self.primary.lsn()
        ok = wait_until(lambda: self.replica.rstats()["lsn"] >= want, 60, 0.05)
        rst = self.replica.rstats()
        self.assertTrue(ok, "replica lsn %d never reached the primary's %d: %r"
                        % (rst["lsn"], want, rst))
        self.assertEqual(rst["lsn"], self.primary.lsn(), "replica lsn differs from the primary's")
        self.assertEqual(rst["link"], "up", "link not up: %r" % rst)
        self.assertEqual(self.link_downs(), downs0, "the replica's link went down:\n%s"
                         % self.replica.stderr_text()[-2000:])
        self.assertEqual(self.syncs(), syncs0, "the replica reconnected (full_syncs + "
                         "partial_syncs grew): %r" % rst)
        # every key: miss, or exactly the primary's current value and flags
        keys = sorted(gen)
        prim = cluster.dump(self.primary, keys)
        rep = cluster.dump(self.replica, keys)
        bad = []
        for k in keys:
            if k in rep and rep[k] != prim.get(k):
                bad.append((k, "primary has %r" % (prim[k][0][:30],) if k in prim else "deleted",
                            rep[k][0][:30], rep[k][1]))
        self.assertEqual(bad[:10], [], "%d keys served by the replica with a value the primary "
                         "no longer has" % len(bad))
        deleted = [k for k in keys if gen[k] is None]
        self.assertTrue(deleted and all(k not in prim for k in deleted))


if __name__ == "__main__":
    cluster.main()
