# Cluster secret (--cluster-secret-file): a replica holding the primary's
# secret replicates; one with a wrong secret, or with none, is refused (its
# link never comes up, it receives no data, and the primary logs
# "authentication failed"), and the primary keeps serving clients and its
# good replica throughout.

import os
import random
import unittest

import cluster
from cluster import (Node, assert_same, dump, load, replica_args, wait_caught_up,
                     wait_link, wait_until)

POLL = cluster.POLL_TIMEOUT


class AuthTest(cluster.SecretNodes, unittest.TestCase):
    def setUp(self):
        self.make_tmp("cairn-repl-secret-")
        self.secret = self.secret_file("good", b"correct horse battery staple\n")
        self.wrong = self.secret_file("wrong", b"correct horse battery stapler\n")
        self.nodes = []
        self.p = self.node("primary", ["--cluster-secret-file", self.secret])

    def test_secret(self):
        p = self.p
        rng = random.Random(3)
        data = {b"k:%d" % i: (bytes(rng.getrandbits(8) for _ in range(50)), i) for i in range(500)}
        load(p, data)

        good = self.node("good", replica_args(p, ["--cluster-secret-file", self.secret]))
        wait_caught_up(p, [good])
        assert_same(self, [p, good], data, min_keys=500)

        wrong = self.node("wrong", replica_args(p, ["--cluster-secret-file", self.wrong]))
        none = self.node("nosecret", replica_args(p))

        # Both are turned away, more than once (they retry with backoff).
        def refused_twice():
            log = p.stderr_text()
            return all(log.count("refused %s" % n) >= 2 for n in ("wrong", "nosecret"))
        self.assertTrue(wait_until(refused_twice, POLL, 0.05), p.stderr_text()[-3000:])
        log = p.stderr_text()
        for name in ("wrong", "nosecret"):
            lines = [l for l in log.splitlines() if "refused %s" % name in l]
            self.assertTrue(lines and all("authentication failed" in l for l in lines), lines)

        # The primary serves clients and its good replica meanwhile.
        more = {b"m:%d" % i: (b"more-%d" % i, 1) for i in range(300)}
        load(p, more)
        data.update(more)
        with p.conn() as c:
            self.assertEqual(c.get(b"m:7"), b"more-7")
        wait_caught_up(p, [good])
        assert_same(self, [p, good], data, min_keys=800)

        # The refused ones never came up and hold nothing.
        for n in (wrong, none):
            st = n.rstats()
            self.assertEqual(st["role"], "replica", st)
            self.assertNotEqual(st["link"], "up", st)
            self.assertEqual(st["lsn"], 0, st)
            self.assertEqual(dump(n, data), {})
        st = p.rstats()
        self.assertEqual(sum(1 for k in st if k.startswith("replica")), 1, st)
        self.assertIn("id=good,", st["replica0"])

    def test_same_secret_other_line_ending(self):
        # Same secret, other file, with trailing newlines dropped: accepted.
        same = self.secret_file("same", b"correct horse battery staple\r\n\n")
        r = self.node("same", replica_args(self.p, ["--cluster-secret-file", same]))
        load(self.p, {b"x": (b"y", 5)})
        wait_caught_up(self.p, [r])
        assert_same(self, [self.p, r], [b"x"], min_keys=1)
        wait_link(r, "up")


if __name__ == "__main__":
    cluster.main()
