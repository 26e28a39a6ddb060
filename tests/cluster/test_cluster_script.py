#!/usr/bin/python3
# scripts/cluster.sh itself: start must fail loudly, clusters on different
# base ports must not share a data directory, stop must clean up.
#   test_start_fails_loudly: with node 1's client port held by a listening
#     socket of ours (it accepts connections but is not a cairn node),
#     `start` exits 1 naming node 1 and showing its log ("Address already in
#     use"), never says "node 1 started", leaves no process and no pid file,
#     and `status` shows every node down.  Once the port is free, `start`
#     brings all three up; then with node 2's port held, `restart 2` exits 1
#     naming node 2, `status` shows node 2 down and the others up, and
#     `stop` leaves nothing running.
#   test_two_base_ports: two clusters with different CAIRN_BASE_PORT started
#     from one directory both come up, in ./cluster-data-BASE1 and
#     ./cluster-data-BASE2, each node's `stats persistence` data_dir inside
#     its own cluster's directory, each replica following its own primary,
#     a key written to one cluster absent from the other; `stop` on each
#     stops exactly its three nodes (ports free, pid files gone).
#   test_directory_choice: which pid files `stop` reads: ./cluster-data for
#     the default base port (unset or 11210), ./cluster-data-BASE for another
#     one, $CAIRN_CLUSTER_DIR when set (checked with `sleep` stand-ins, so
#     no port is touched); `--help` documents both variables on stdout.
#
# Run: /usr/bin/python3 test_cluster_script.py --bin build/cairn
#      --cairnctl build/cairnctl --cluster-script scripts/cluster.sh

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clusterlib  # noqa: E402
from clusterlib import HOST, poll  # noqa: E402


def cluster_ports(base):
    return [base + n for n in (1, 2, 3)] + [base + 10000 + n for n in (1, 2, 3)]


def nobody_listens(port):
    """No socket listens on port (TIME_WAIT leftovers of closed connections
    do not count: SO_REUSEADDR, as cairn binds)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((HOST, port))
        s.listen(1)
        return True
    except OSError:
        return False
    finally:
        s.close()


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class ClusterScript(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="cairn-cluster-script-")
        self.script = self._script_path()
        self.bases = []
        self.helpers = []  # Popen of the `sleep` stand-ins
        self.sockets = []

    def tearDown(self):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        failed = result is None or any(
            t is self for t, _ in list(getattr(result, "failures", [])) + list(getattr(result, "errors", [])))
        if failed:
            self.dump_logs()
        for s in self.sockets:
            s.close()
        for base in self.bases:
            try:
                self.sh(base, "stop", timeout=60)
            except Exception as e:  # keep cleaning up
                sys.stderr.write("cluster.sh stop failed during cleanup: %r\n" % e)
        for pid in self.our_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.helpers:
            if p.poll() is None:
                p.kill()
            p.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- helpers
    def _script_path(self):
        """cluster.sh runs ROOT/build/cairn: a shim root whose build/ links
        to the binaries under test (as clusterlib does)."""
        args = clusterlib.ARGS
        shim = os.path.join(self.tmp, "shim")
        os.makedirs(os.path.join(shim, "scripts"))
        os.makedirs(os.path.join(shim, "build"))
        os.symlink(os.path.abspath(args.cluster_script), os.path.join(shim, "scripts", "cluster.sh"))
        os.symlink(os.path.realpath(args.bin), os.path.join(shim, "build", "cairn"))
        os.symlink(os.path.realpath(args.cairnctl), os.path.join(shim, "build", "cairnctl"))
        return os.path.join(shim, "scripts", "cluster.sh")

    def pick_base(self):
        base = clusterlib.pick_base_port()
        while base in self.bases or any(abs(base - b) < 10 for b in self.bases):
            base = clusterlib.pick_base_port()
        self.bases.append(base)
        return base

    def env(self, base=None, cluster_dir=None):
        env = dict(os.environ)
        env.pop("CAIRN_CLUSTER_DIR", None)
        env.pop("CAIRN_BASE_PORT", None)
        env.pop("CAIRN_ARGS", None)
        if base is not None:
            env["CAIRN_BASE_PORT"] = str(base)
        if cluster_dir is not None:
            env["CAIRN_CLUSTER_DIR"] = cluster_dir
        return env

    def sh(self, base, *args, timeout=90, cluster_dir=None):
        return subprocess.run([self.script] + [str(a) for a in args], cwd=self.tmp,
                              env=self.env(base, cluster_dir), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def sh_ok(self, base, *args, **kw):
        p = self.sh(base, *args, **kw)
        self.assertEqual(p.returncode, 0, "cluster.sh %s (base %s) exited %d\nstdout:\n%s\nstderr:\n%s"
                         % (" ".join(map(str, args)), base, p.returncode, p.stdout, p.stderr))
        return p

    def data_dir(self, base):
        return os.path.join(self.tmp, "cluster-data-%d" % base)

    def pid(self, base, n):
        try:
            with open(os.path.join(self.data_dir(base), "node%d.pid" % n)) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def our_pids(self):
        """Live processes started in our temp dir (the nodes run there)."""
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == os.getpid():
                continue
            try:
                if os.path.realpath(os.readlink("/proc/%s/cwd" % d)) != os.path.realpath(self.tmp):
                    continue
            except OSError:
                continue
            if alive(int(d)):
                out.append(int(d))
        return out

    def status_rows(self, base):
        out = self.sh_ok(base, "status").stdout.splitlines()
        return {ln.split()[0]: ln.split() for ln in out[1:] if ln.strip()}

    def hold_port(self, port):
        """A listening socket on port that accepts (the kernel queues the
        connection) but never answers: not a cairn node."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, port))
        s.listen(16)
        self.sockets.append(s)
        return s

    def dump_logs(self):
        for base in self.bases:
            for n in (1, 2, 3):
                path = os.path.join(self.data_dir(base), "node%d.log" % n)
                try:
                    with open(path, errors="replace") as f:
                        lines = f.readlines()[-20:]
                except OSError:
                    continue
                sys.stderr.write("---- tail of %s ----\n%s" % (path, "".join(lines)))

    # ---- tests
    def test_start_fails_loudly(self):
        base = self.pick_base()
        held = self.hold_port(base + 1)
        t0 = time.monotonic()
        p = self.sh(base, "start")
        self.assertEqual(p.returncode, 1, "start with node 1's port taken: %r" % p)
        self.assertLess(time.monotonic() - t0, 30, "start took too long to give up")
        self.assertNotIn("node 1 started", p.stdout)
        self.assertRegex(p.stderr, r"node 1 failed to start")
        self.assertIn("Address already in use", p.stderr, "the log tail is not shown")
        self.assertEqual(self.our_pids(), [], "processes left behind by a failed start")
        self.assertIsNone(self.pid(base, 1), "pid file left behind")
        rows = self.status_rows(base)
        self.assertEqual([rows[n][1:] for n in ("1", "2", "3")], [["-", "down"]] * 3)

        # Port free again: all three come up.
        held.close()
        self.sockets.remove(held)
        p = self.sh_ok(base, "start")
        for n in (1, 2, 3):
            self.assertIn("node %d started" % n, p.stdout)
            self.assertTrue(alive(self.pid(base, n)))

        # A node that fails later: restart 2 with its port held.
        self.sh_ok(base, "kill", 2)
        held = self.hold_port(base + 2)
        p = self.sh(base, "restart", 2)
        self.assertEqual(p.returncode, 1, "restart 2 with its port taken: %r" % p)
        self.assertRegex(p.stderr, r"node 2 failed to start")
        self.assertNotIn("node 2 started", p.stdout)
        rows = self.status_rows(base)
        self.assertEqual(rows["2"][1:], ["-", "down"])
        self.assertEqual(rows["1"][2], "primary")
        self.assertEqual(rows["3"][2], "replica")
        held.close()
        self.sockets.remove(held)

        pids = [self.pid(base, n) for n in (1, 3)]
        p = self.sh_ok(base, "stop")
        for pid in pids:
            self.assertFalse(alive(pid), "pid %d alive after stop" % pid)
        self.assertEqual(self.our_pids(), [], "processes left after stop")
        for n in (1, 2, 3):
            self.assertIsNone(self.pid(base, n))
        self.assertTrue(all(nobody_listens(pt) for pt in cluster_ports(base)), "ports still taken after stop")

    def test_two_base_ports(self):
        b1, b2 = self.pick_base(), self.pick_base()
        self.sh_ok(b1, "start")
        self.sh_ok(b2, "start")
        pids = {}
        for base in (b1, b2):
            self.assertTrue(os.path.isdir(self.data_dir(base)), "no %s" % self.data_dir(base))
            for n in (1, 2, 3):
                pid = self.pid(base, n)
                self.assertTrue(pid is not None and alive(pid), "base %d node %d not running" % (base, n))
                pids[(base, n)] = pid
                st = clusterlib.stats(base + n, "persistence")
                d = os.path.realpath(os.path.join(self.tmp, st["data_dir"]))
                self.assertEqual(d, os.path.join(os.path.realpath(self.data_dir(base)), "node%d" % n))
                self.assertTrue(os.path.isfile(os.path.join(self.data_dir(base), "node%d.log" % n)))
        self.assertEqual(len(set(pids.values())), 6)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "cluster-data")),
                         "a non-default base port used ./cluster-data")

        for base in (b1, b2):
            def ok(base=base):
                rows = self.status_rows(base)
                return (rows["1"][2] == "primary" and
                        all(rows[n][2] == "replica" and rows[n][5] == "%s:%d" % (HOST, base + 10001) and
                            rows[n][6] == "up" for n in ("2", "3")))
            poll(ok, 20, "cluster on base %d: node 1 primary, 2 and 3 its replicas" % base)

        self.assertEqual(clusterlib.raw_set(b1 + 1, "only-in-b1", "yes"), "STORED")
        poll(lambda: "VALUE only-in-b1" in clusterlib.raw_command(b1 + 2, "get only-in-b1", end="END"),
             20, "the key to reach cluster b1's replica")
        for n in (1, 2, 3):
            self.assertEqual(clusterlib.raw_command(b2 + n, "get only-in-b1", end="END"), "END\r\n")

        # stop on b1 stops exactly b1's nodes.
        p = self.sh_ok(b1, "stop")
        for n in (1, 2, 3):
            self.assertIn("node %d stopped" % n, p.stdout)
            self.assertFalse(alive(pids[(b1, n)]))
            self.assertTrue(alive(pids[(b2, n)]), "stopping base %d stopped base %d's node %d" % (b1, b2, n))
            self.assertIsNone(self.pid(b1, n))
        self.sh_ok(b2, "stop")
        for n in (1, 2, 3):
            self.assertFalse(alive(pids[(b2, n)]))
        self.assertEqual(self.our_pids(), [], "processes left after stop")
        self.assertTrue(all(nobody_listens(pt) for pt in cluster_ports(b1) + cluster_ports(b2)))

    def test_directory_choice(self):
        other = 13370
        dirs = {
            "default": os.path.join(self.tmp, "cluster-data"),
            "other": os.path.join(self.tmp, "cluster-data-%d" % other),
            "custom": os.path.join(self.tmp, "elsewhere"),
        }
        stand_ins = {}
        for name, d in dirs.items():
            os.makedirs(d)
            p = subprocess.Popen(["sleep", "300"], cwd=self.tmp)
            self.helpers.append(p)
            with open(os.path.join(d, "node1.pid"), "w") as f:
                f.write("%d\n" % p.pid)
            stand_ins[name] = p

        def stop_reads(expect, base, cluster_dir=None):
            p = self.sh(base, "stop", cluster_dir=cluster_dir, timeout=60)
            self.assertEqual(p.returncode, 0, p)
            self.assertIn("node 1 stopped", p.stdout)
            poll(lambda: stand_ins[expect].poll() is not None, 10, "the %s stand-in to be stopped" % expect)
            for name, sp in stand_ins.items():
                if name != expect and sp.returncode is None:
                    self.assertIsNone(sp.poll(), "stop (base %s, dir %s) stopped the %s stand-in"
                                      % (base, cluster_dir, name))
            self.assertFalse(os.path.exists(os.path.join(dirs[expect], "node1.pid")))

        stop_reads("custom", other, cluster_dir=dirs["custom"])
        stop_reads("other", other)
        stop_reads("default", None)
        # An explicit CAIRN_BASE_PORT=11210 is the default too.
        p = subprocess.Popen(["sleep", "300"], cwd=self.tmp)
        self.helpers.append(p)
        stand_ins["default"] = p
        with open(os.path.join(dirs["default"], "node1.pid"), "w") as f:
            f.write("%d\n" % p.pid)
        stop_reads("default", 11210)

        p = self.sh(None, "--help")
        self.assertEqual((p.returncode, p.stderr), (0, ""), p)
        for word in ("CAIRN_BASE_PORT", "CAIRN_CLUSTER_DIR", "cluster-data-BASE", "start", "promote"):
            self.assertIn(word, p.stdout)
        p = self.sh(None, "bogus")
        self.assertEqual(p.returncode, 2, p)
        self.assertIn("usage: scripts/cluster.sh", p.stderr)
        p = self.sh("12x", "status")
        self.assertEqual(p.returncode, 2, p)
        self.assertIn("CAIRN_BASE_PORT", p.stderr)


if __name__ == "__main__":
    clusterlib.main()
