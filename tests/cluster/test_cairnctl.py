#!/usr/bin/python3
# cairnctl (node/cairnctl.c) against a real three-node cluster started with
# scripts/cluster.sh.
#   test_commands: `status` on the primary and on a replica prints the role,
#     epoch, lsn (and primary/link on a replica) and exits 0; a closed port
#     exits 1 with a message on stderr; bad usage exits 2 with one line on
#     stderr (naming the usage); --help/-h print the usage on stdout and exit
#     0; --version prints "cairnctl <version>" (cairn's version);
#     `replicaof` a client port (or a closed port) is refused with exit 1
#     and a message naming the replication port to use, and the node keeps
#     following its primary; `replicaof --no-check` skips the probe;
#     `promote` on a primary and `replicaof` the primary already followed are
#     no-ops that exit 0; then a manual switch with cairnctl alone: promote
#     node 3, `replicaof` node 3 on nodes 2 and 1: writes on node 3 reach
#     both, node 1 refuses writes.
#   test_planned_failover: a writer keeps writing distinct keys through node 1
#     while `cairnctl -s node1 failover` runs: it exits 0; every write answered
#     STORED is on the new primary; the writer saw no error other than
#     SERVER_ERROR readonly replica (writes during the pause waited, then hit
#     the demoted node) and those refused writes are nowhere; the old primary
#     and the third node follow the new primary and the old one refuses
#     writes.  Then `failover --to` the third node while it is SIGSTOPped
#     (it cannot catch up) with --timeout-ms 1000: exit 1 with a message,
#     nothing changes, writes go on on the primary, and after SIGCONT the
#     node catches up as a replica.
#
# Run: /usr/bin/python3 test_cairnctl.py --bin build/cairn
#      --cairnctl build/cairnctl --cluster-script scripts/cluster.sh

import os
import re
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402
from clusterlib import poll  # noqa: E402

READONLY = "SERVER_ERROR readonly replica"


class Cairnctl(clusterlib.ClusterTest):
    def start_cluster(self):
        c = self.cluster
        c.sh_ok("start")
        for n in (2, 3):
            c.wait_replica_up(n, 1)
        return c

    def ctl_ok(self, *args):
        p = self.cluster.ctl(*args)
        self.assertEqual(p.returncode, 0, "cairnctl %s: exit %d\nstdout: %s\nstderr: %s"
                         % (" ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
        return p

    def test_commands(self):
        c = self.start_cluster()
        mc = c.client(1)
        for i in range(20):
            self.assertTrue(mc.set("k%d" % i, "v%d" % i))
        mc.disconnect_all()
        c.wait_caught_up((2, 3), 1)
        lsn = c.stats(1)["lsn"]

        # status on the primary and on a replica.
        out = self.ctl_ok("-s", c.addr(1), "status").stdout
        self.assertRegex(out, r"(?m)^node\s+node1 \(127\.0\.0\.1:%d\)$" % c.port(1))
        self.assertRegex(out, r"(?m)^role\s+primary, epoch 1, history [0-9a-f]+$")
        self.assertRegex(out, r"(?m)^lsn\s+%s$" % lsn)
        self.assertRegex(out, r"(?m)^replicas\s+2 connected$")
        self.assertRegex(out, r"(?m)^items\s+20 ")
        out = self.ctl_ok("-s", c.addr(2), "status").stdout
        self.assertRegex(out, r"(?m)^role\s+replica, epoch 1, history [0-9a-f]+$")
        self.assertRegex(out, r"(?m)^lsn\s+%s$" % lsn)
        self.assertRegex(out, r"(?m)^primary\s+%s, link up, 0 records behind$" % re.escape(c.repl_addr(1)))

        # A closed port: exit 1, a message on stderr.
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        p = c.ctl("-s", "127.0.0.1:%d" % closed, "status")
        self.assertEqual(p.returncode, 1, p)
        self.assertRegex(p.stderr, r"^cairnctl: .*%d" % closed)
        self.assertEqual(p.stdout, "")
        p = c.ctl("-s", "127.0.0.1:%d" % closed, "promote")
        self.assertEqual(p.returncode, 1, p)
        self.assertTrue(p.stderr.startswith("cairnctl: "), p.stderr)

        # Bad usage: exit 2 with one line on stderr naming the usage, nothing done.
        for args in ([], ["bogus"], ["status", "extra"], ["-s", "nocolon", "status"], ["-s"],
                     ["-s", c.addr(3), "replicaof"], ["-s", c.addr(3), "replicaof", "127.0.0.1"],
                     ["-s", c.addr(3), "replicaof", "127.0.0.1:port"],
                     ["-s", c.addr(3), "replicaof", "--no-check"],
                     ["-s", c.addr(3), "replicaof", c.repl_addr(1), "extra"],
                     ["-s", c.addr(1), "failover", "--timeout-ms", "0"],
                     ["-s", c.addr(1), "failover", "--to"],
                     ["-s", c.addr(1), "failover", "--bogus", "1"],
                     ["--help", "status"], ["--version", "extra"]):
            p = c.ctl(*args)
            self.assertEqual(p.returncode, 2, "cairnctl %s: %r" % (args, p))
            self.assertRegex(p.stderr, r"\Acairnctl: [^\n]*usage: cairnctl [^\n]*\n\Z", args)
            self.assertEqual(p.stdout, "", args)
        self.assertEqual(c.stats(3)["primary"], c.repl_addr(1))
        self.assertEqual(c.stats(1)["role"], "primary")

        # --help and -h: the usage on stdout, exit 0; --version and -V.
        for flag in ("--help", "-h"):
            p = c.ctl(flag)
            self.assertEqual((p.returncode, p.stderr), (0, ""), "cairnctl %s: %r" % (flag, p))
            for cmd in ("status", "promote", "replicaof", "failover", "--to", "--timeout-ms",
                        "--no-check", "--version"):
                self.assertIn(cmd, p.stdout, "cairnctl %s does not mention %s" % (flag, cmd))
            self.assertRegex(p.stdout, r"(?m)^usage: cairnctl ")
        server_version = subprocess.run([c.args.bin, "--version"], stdout=subprocess.PIPE,
                                        text=True, timeout=30).stdout.split()[-1]
        for flag in ("--version", "-V"):
            p = c.ctl(flag)
            self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "cairnctl %s\n" % server_version, ""),
                             "cairnctl %s" % flag)

        # replicaof a client port: refused before the node is asked, with the
        # replication port to use; node 3 keeps following node 1.
        p = c.ctl("-s", c.addr(3), "replicaof", c.addr(1))
        self.assertEqual(p.returncode, 1, p)
        self.assertEqual(p.stderr, "cairnctl: %s is a client port, not a replication port (try %s)\n"
                         % (c.addr(1), c.repl_addr(1)))
        self.assertEqual(p.stdout, "")
        # A closed port: refused too (the node would never reach it).
        p = c.ctl("-s", c.addr(3), "replicaof", "127.0.0.1:%d" % closed)
        self.assertEqual(p.returncode, 1, p)
        self.assertRegex(p.stderr, r"\Acairnctl: cannot connect to 127\.0\.0\.1:%d: .*--no-check" % closed)
        st = c.stats(3)
        self.assertEqual((st["role"], st["primary"], st["link"]), ("replica", c.repl_addr(1), "up"))
        self.assertEqual(c.stats(1)["connected_replicas"], "2")
        # --no-check skips the probe (here: the primary already followed, a no-op).
        p = self.ctl_ok("-s", c.addr(3), "replicaof", "--no-check", c.repl_addr(1))
        self.assertIn("now follows %s" % c.repl_addr(1), p.stdout)

        # No-ops: promote a primary, replicaof the primary already followed.
        p = self.ctl_ok("-s", c.addr(1), "promote")
        self.assertIn("is primary", p.stdout)
        self.assertEqual((c.stats(1)["role"], c.stats(1)["epoch"]), ("primary", "1"))
        p = self.ctl_ok("-s", c.addr(3), "replicaof", c.repl_addr(1))
        self.assertIn("now follows %s" % c.repl_addr(1), p.stdout)
        c.wait_replica_up(3, 1)

        # A switch by hand: promote node 3, point 2 and then 1 at it.
        p = self.ctl_ok("-s", c.addr(3), "promote")
        st = c.stats(3)
        self.assertEqual((st["role"], st["epoch"]), ("primary", "2"))
        self.ctl_ok("-s", c.addr(2), "replicaof", c.repl_addr(3))
        self.ctl_ok("-s", c.addr(1), "replicaof", c.repl_addr(3))
        for n in (1, 2):
            c.wait_replica_up(n, 3)
            self.assertRegex(self.ctl_ok("-s", c.addr(n), "status").stdout,
                             r"(?m)^primary\s+%s, link up" % re.escape(c.repl_addr(3)))
        self.assertEqual(c.stats(3)["connected_replicas"], "2")
        mc = c.client(3)
        self.assertTrue(mc.set("after-switch", "yes"))
        mc.disconnect_all()
        expected = {"k%d" % i: "v%d" % i for i in range(20)}
        expected["after-switch"] = "yes"
        for n in (1, 2):
            c.wait_values(n, expected)
            self.assertEqual(clusterlib.raw_set(c.port(n), "k0", "nope"), READONLY)

    def test_planned_failover(self):
        c = self.start_cluster()
        w = clusterlib.Writer(c, 1, "pf")
        w.start()
        try:
            poll(lambda: w.n_stored() >= 200 or w.n_failed() > 0, 60, "200 writes through node 1")
            self.assertEqual(w.n_failed(), 0, list(w.failed.items())[:3])
            p = c.ctl("-s", c.addr(1), "failover")
            self.assertEqual(p.returncode, 0, "failover: %r" % p)
            # Keep writing to the old primary until it refuses (it is a replica now).
            poll(lambda: w.n_failed() > 0, 30, "the writer to be refused by the demoted node 1")
        finally:
            w.stop()
        m = re.search(r"(?m)^promoted 127\.0\.0\.1:(\d+): epoch 2$", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        new = int(m.group(1)) - c.base
        self.assertIn(new, (2, 3))
        other = 5 - new
        self.assertIn("is now a replica of 127.0.0.1:%d; failover done" % c.port(new), p.stdout)

        # The writer saw no error but "readonly replica" (pauses delay, never refuse).
        errors = {k: e for k, (_, e) in w.failed.items() if READONLY not in (e or "")}
        self.assertEqual(errors, {}, "writes refused other than readonly")
        # No acknowledged write is lost; refused ones are nowhere.
        got = c.get_all(new, list(w.attempted))
        lost = sorted(k for k, v in w.stored.items() if got.get(k) != v)
        self.assertEqual(lost, [], "%d acknowledged writes missing on node %d" % (len(lost), new))
        leaked = sorted(k for k in w.failed if k in got)
        self.assertEqual(leaked, [], "writes refused with readonly were applied anyway")

        # The old primary and the third node follow the new primary.
        for n in (1, other):
            c.wait_replica_up(n, new)
        self.assertEqual(c.stats(new)["role"], "primary")
        self.assertEqual(clusterlib.raw_set(c.port(1), "pf:0", "x"), READONLY)
        c.wait_values(1, w.stored)
        c.wait_values(other, w.stored)

        # --- failover --to a node that cannot catch up: aborted, nothing changes.
        pid = c.sigstop(other)
        try:
            mc = c.client(new)
            for i in range(10):
                ok, err = mc.set_checked("behind:%d" % i, "b%d" % i)
                self.assertTrue(ok, err)
            p = c.ctl("-s", c.addr(new), "failover", "--to", c.addr(other), "--timeout-ms", "1000")
            # Writes go on on the primary (they may wait out a pause first).
            ok, err = mc.set_checked("resumed", "yes")
            mc.disconnect_all()
        finally:
            c.sigcont(pid)
        self.assertEqual(p.returncode, 1, "failover to a stopped node: %r" % p)
        self.assertTrue(p.stderr.startswith("cairnctl: "), p.stderr)
        self.assertTrue(ok, "write on the primary after the aborted failover: %s" % err)
        self.assertEqual(c.stats(new)["role"], "primary")
        self.assertEqual(c.stats(new)["epoch"], "2")
        for n in (1, other):
            c.wait_replica_up(n, new, timeout=30)
        expected = {"behind:%d" % i: "b%d" % i for i in range(10)}
        expected["resumed"] = "yes"
        for n in (1, other):
            c.wait_values(n, expected)
        # The documented abort path: "failover aborted: ... writes resumed",
        # within --timeout-ms, with writes resumed by cairnctl itself.
        self.assertIn("failover aborted", p.stderr,
                      "cairnctl did not take its abort path (which resumes writes) within "
                      "--timeout-ms; it exited with: %r" % p.stderr)


if __name__ == "__main__":
    clusterlib.main()
