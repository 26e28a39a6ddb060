#!/usr/bin/python3
# Scenario: the habits a memcached operator brings, each with a real cairn
# process (and, where the habit is memcached's, its Debian configuration):
#   -d        the parent exits only once the daemon serves (0) or failed
#             (non-zero, the daemon's one error line on stderr), and a
#             relative --data-dir means the directory it was started in;
#   -u USER   with a fresh default data directory, started as root: the
#             directory is made for USER, who then runs the node; an
#             existing directory USER cannot write is named in one line;
#   -o        every memcached tuning option in the contract is accepted with
#             one notice line; an unknown one is refused;
#   default data directory: one per client port, so two nodes started with
#             default flags from one directory both run and both come back
#             warm; a ./cairn-data of the old layout is still used;
#   --config  /etc/memcached.conf's format (Debian's own file, rewritten
#             only to use free ports and temporary paths), with command-line
#             overrides and errors naming FILE:LINE;
#   --log-file reopened on SIGHUP (logrotate's move-then-signal).
#
# cairn only: memcached has no data directory, --config or --log-file.
# Needs root for the -u cases (as Debian's init does; CI runs as root).
#
# Run: /usr/bin/python3 test_operator.py --bin PATH

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HOST = harness.HOST
RUN_TIMEOUT = 30 * harness.SLOWDOWN

# The contract's list of memcached -o options cairn accepts and ignores.
IGNORED_OPTIONS = ["modern", "slab_reassign", "slab_automove", "slab_automove=1",
                   "slab_chunk_max=524288", "lru_maintainer", "lru_segmented",
                   "hash_algorithm=murmur3", "maxconns_fast", "idle_timeout=600",
                   "watcher_logbuf_size=256", "worker_logbuf_size=64", "track_sizes",
                   "no_inline_ascii_resp", "temporary_ttl=61"]


def service_user():
    """memcached's Debian user (the memcached package makes it), else nobody."""
    for name in ("memcache", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise unittest.SkipTest("no unprivileged user to run as")


def read_text(path):
    """The file's text, or "" while it does not exist."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


class Node:
    """One cairn process on free ports, started from `cwd` (Popen, so the
    test holds it; daemons are tracked by pid instead)."""

    def __init__(self, cwd, args=(), port=None):
        self.cwd = cwd
        self.port = port or harness.free_port()
        self.repl_port = harness.free_port()
        self.args = ["-l", HOST, "-p", str(self.port), "--repl-port", str(self.repl_port)] + list(args)
        self.proc = None
        self.err_path = os.path.join(cwd, "node-%d.err" % self.port)

    def start(self):
        errf = open(self.err_path, "ab")
        self.proc = subprocess.Popen([harness.server_bin()] + self.args, cwd=self.cwd,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=errf)
        errf.close()
        harness._live.append(self.proc)
        up = harness.wait_until(lambda: self.proc.poll() is not None or
                                harness.can_connect(HOST, self.port), harness.START_TIMEOUT)
        if not up or self.proc.poll() is not None:
            raise AssertionError("node did not start: %s" % self.stderr())
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(harness.STOP_TIMEOUT * 4)
            assert rc == 0, "exit status %d: %s" % (rc, self.stderr())
        self.proc = None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stderr(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def conn(self):
        return harness.Conn(HOST, self.port)


def run_cairn(args, cwd, timeout=RUN_TIMEOUT):
    return subprocess.run([harness.server_bin()] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


class OperatorTest(unittest.TestCase):
    def setUp(self):
        if harness.is_memcached():
            self.skipTest("cairn's own flags")
        self.dir = tempfile.mkdtemp(prefix="cairn-op-")
        os.chmod(self.dir, 0o755)
        self.nodes = []
        self.daemons = []

    def tearDown(self):
        for n in self.nodes:
            n.kill()
        for pid in self.daemons:
            if harness.pid_alive(pid):
                harness.kill_pid(pid)
        shutil.rmtree(self.dir, ignore_errors=True)

    def node(self, args=(), cwd=None, port=None):
        n = Node(cwd or self.dir, args, port)
        self.nodes.append(n)
        return n

    def daemon_args(self, port, repl_port, pidfile, extra=()):
        return harness.root_user_args(["-d", "-l", HOST, "-p", str(port), "--repl-port",
                                       str(repl_port), "-P", pidfile] + list(extra))

    # ---- -d ----

    def test_daemon_parent_exits_once_the_node_serves(self):
        port, repl_port = harness.free_port(), harness.free_port()
        pidfile = os.path.join(self.dir, "cairn.pid")
        p = run_cairn(self.daemon_args(port, repl_port, pidfile, ["--data-dir", "rel-data"]),
                      cwd=self.dir)
        pid = harness.read_pid(pidfile)
        if pid:
            self.daemons.append(pid)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"")
        self.assertEqual(p.stderr, b"", "a daemon that started says nothing")
        # No polling: when the parent has exited, the daemon serves.
        self.assertIsNotNone(pid, "pid file not written before the parent exited")
        self.assertTrue(harness.pid_alive(pid))
        with harness.Conn(HOST, port) as c:
            self.assertEqual(c.set("k", "v"), b"STORED\r\n")
            self.assertEqual(int(c.stats()["pid"]), pid)
            persistence = c.stats(b"persistence")
        # The relative data dir is where the daemon was started, not /.
        want = os.path.join(self.dir, "rel-data")
        self.assertEqual(persistence["data_dir"], want)
        self.assertTrue(os.path.isdir(os.path.join(want, "wal")), os.listdir(self.dir))
        self.assertFalse(os.path.exists("/rel-data"))

    def test_daemon_that_cannot_start_fails_loudly_and_keeps_the_pid_file(self):
        port, repl_port = harness.free_port(), harness.free_port()
        pidfile = os.path.join(self.dir, "cairn.pid")
        data = os.path.join(self.dir, "data")
        first = run_cairn(self.daemon_args(port, repl_port, pidfile, ["--data-dir", data]),
                          cwd=self.dir)
        self.assertEqual(first.returncode, 0, first.stderr)
        first_pid = harness.read_pid(pidfile)
        self.daemons.append(first_pid)
        for extra in ([], ["--log-file", os.path.join(self.dir, "second.log")]):
            with self.subTest(extra=extra):
                port2, repl2 = harness.free_port(), harness.free_port()
                p = run_cairn(self.daemon_args(port2, repl2, pidfile, ["--data-dir", data] + extra),
                              cwd=self.dir)
                err = p.stderr.decode("utf-8", "replace")
                self.assertNotEqual(p.returncode, 0, err)
                lines = err.splitlines()
                self.assertEqual(len(lines), 1, "want the one error line: %r" % err)
                self.assertIn("in use by another cairn process", lines[0])
                self.assertIn(data, lines[0])
                self.assertFalse(harness.can_connect(HOST, port2))
                # The running daemon's pid file is untouched.
                self.assertEqual(harness.read_pid(pidfile), first_pid)
        self.assertTrue(harness.pid_alive(first_pid))

    # ---- -u ----

    def test_user_flag_with_a_fresh_default_data_dir(self):
        self.assertEqual(os.geteuid(), 0, "this test needs root (Debian's init runs as root)")
        pw = service_user()
        # /etc/memcached.conf's command line, plus a free port.
        n = self.node(["-u", pw.pw_name, "-m", "64", "-c", "1024"]).start()
        self.assertTrue(harness.wait_until(lambda: harness.proc_uid(n.proc.pid) == pw.pw_uid, 5))
        data = os.path.join(self.dir, "cairn-data", str(n.port))
        self.assertEqual(os.stat(data).st_uid, pw.pw_uid, "data dir not made for %s" % pw.pw_name)
        with n.conn() as c:
            self.assertEqual(c.set("warm", "yes"), b"STORED\r\n")
        n.stop()
        n.start()
        with n.conn() as c:
            self.assertEqual(c.get("warm"), b"yes")
        n.stop()

    def test_user_flag_names_user_and_dir_it_cannot_write(self):
        self.assertEqual(os.geteuid(), 0, "this test needs root")
        pw = service_user()
        data = os.path.join(self.dir, "root-only")
        os.mkdir(data, 0o755)   # root's, not the user's
        n = Node(self.dir, ["-u", pw.pw_name, "--data-dir", data])
        p = run_cairn(n.args, cwd=self.dir)
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 1, err)
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn(pw.pw_name, lines[0])
        self.assertIn(data, lines[0])
        self.assertIn("not writable", lines[0])

    # ---- -o ----

    def test_memcached_tuning_options_accepted_with_one_notice(self):
        n = self.node(["--ephemeral", "-o", ",".join(IGNORED_OPTIONS + ["hashpower=20"])])
        n.start()
        with n.conn() as c:
            self.assertEqual(c.stats(b"settings")["hashpower_init"], "20")
        err = n.stderr()
        notices = [l for l in err.splitlines() if "accepted for memcached compatibility" in l]
        self.assertEqual(len(notices), 1, err)
        for opt in IGNORED_OPTIONS:
            self.assertIn(opt.split("=")[0], notices[0])
        self.assertNotIn("hashpower", notices[0], "hashpower is honoured, not ignored")
        n.stop()
        for bad, name in ((["-o", "modern,bogus_option"], "bogus_option"),
                          (["-o", "slab_chunk_max"], "slab_chunk_max"),
                          (["-o", "modern=1"], "modern")):
            with self.subTest(bad=bad):
                p = run_cairn(["--ephemeral", "-p", str(harness.free_port())] + bad, cwd=self.dir)
                lines = p.stderr.decode().splitlines()
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(len(lines), 1, p.stderr)
                self.assertIn(name, lines[0])

    # ---- the default data directory ----

    def test_two_default_nodes_in_one_directory_both_come_back_warm(self):
        a = self.node().start()
        b = self.node().start()
        with a.conn() as c:
            self.assertEqual(c.set("who", "a"), b"STORED\r\n")
        with b.conn() as c:
            self.assertEqual(c.set("who", "b"), b"STORED\r\n")
        for n in (a, b):
            self.assertTrue(os.path.isdir(os.path.join(self.dir, "cairn-data", str(n.port), "wal")))
            n.stop()
        for n, want in ((a, b"a"), (b, b"b")):
            n.start()
            with n.conn() as c:
                self.assertEqual(c.get("who"), want)
            n.stop()

    def test_data_dir_of_the_old_layout_is_still_used(self):
        legacy = os.path.join(self.dir, "cairn-data")
        old = self.node(["--data-dir", legacy]).start()
        with old.conn() as c:
            self.assertEqual(c.set("upgraded", "warm"), b"STORED\r\n")
        old.stop()
        n = self.node().start()          # default flags, same directory
        with n.conn() as c:
            self.assertEqual(c.get("upgraded"), b"warm")
            self.assertEqual(c.stats(b"persistence")["data_dir"], legacy)
        n.stop()

    # ---- --config ----

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_config_file_with_command_line_overrides(self):
        port = harness.free_port()
        log = os.path.join(self.dir, "cairn.log")
        conf = self.write("cairn.conf", "# a comment\n\n"
                          "-m 32\n"
                          "-p %d\n"
                          "   --fsync always  \n"
                          "-o modern\n"
                          "logfile %s\n" % (port, log))
        n = Node(self.dir, ["--config", conf, "-m", "48"], port=port)
        self.nodes.append(n)
        n.start()
        with n.conn() as c:
            self.assertEqual(c.stats(b"settings")["maxbytes"], str(48 << 20))
            self.assertEqual(c.stats(b"persistence")["fsync"], "always")
        self.assertTrue(harness.wait_until(lambda: "serving on" in read_text(log), 5))
        n.stop()

    def test_config_errors_name_the_file_and_line(self):
        for text, want in (("-m 32\n-p notaport\n", ":2: -p"),
                           ("-m 32\nport 11211\n", ":2: 'port' is not a flag"),
                           ("--config other.conf\n", ":1: --config")):
            with self.subTest(text=text):
                conf = self.write("bad.conf", text)
                p = run_cairn(["--config", conf], cwd=self.dir)
                lines = p.stderr.decode().splitlines()
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(len(lines), 1, p.stderr)
                self.assertIn(conf + want, lines[0])
        p = run_cairn(["--config", os.path.join(self.dir, "missing.conf")], cwd=self.dir)
        self.assertEqual(p.returncode, 2)
        self.assertIn("missing.conf", p.stderr.decode())

    def test_debian_memcached_conf_runs_as_is(self):
        """Debian's /etc/memcached.conf (-d, logfile, -u memcache, -P), with
        only its port, log and pid paths pointed at free/temporary ones."""
        self.assertEqual(os.geteuid(), 0, "this test needs root")
        src = "/etc/memcached.conf"
        if not os.path.exists(src):
            self.skipTest("no %s (memcached package)" % src)
        port = harness.free_port()
        log = os.path.join(self.dir, "memcached.log")
        pidfile = os.path.join(self.dir, "memcached.pid")
        out = []
        with open(src) as f:
            for line in f:
                word = line.split()[0] if line.split() else ""
                if word == "-p":
                    line = "-p %d\n" % port
                elif word == "logfile":
                    line = "logfile %s\n" % log
                elif word == "-P":
                    line = "-P %s\n" % pidfile
                out.append(line)
        text = "".join(out)
        self.assertIn("\n-d\n", "\n" + text)
        conf = self.write("memcached.conf", text)
        p = run_cairn(["--config", conf, "--repl-port", str(harness.free_port())], cwd=self.dir)
        pid = harness.read_pid(pidfile)
        if pid:
            self.daemons.append(pid)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIsNotNone(pid)
        self.assertEqual(harness.proc_uid(pid), service_user().pw_uid)
        with harness.Conn(HOST, port) as c:
            self.assertEqual(c.set("debian", "conf"), b"STORED\r\n")
        with open(log) as f:
            self.assertIn("serving on 127.0.0.1:%d" % port, f.read())

    # ---- --log-file and SIGHUP ----

    def test_log_file_is_reopened_on_sighup(self):
        log = os.path.join(self.dir, "cairn.log")
        n = self.node(["--ephemeral", "-v", "--log-file", log]).start()
        self.assertTrue(harness.wait_until(lambda: "serving on" in read_text(log), 5))
        rotated = log + ".1"
        os.rename(log, rotated)
        n.proc.send_signal(signal.SIGHUP)
        self.assertTrue(harness.wait_until(lambda: os.path.exists(log), 5), "not reopened")
        self.assertTrue(harness.wait_until(lambda: "log file reopened" in read_text(log), 5))
        with n.conn() as c:             # still serving: SIGHUP did not stop it
            self.assertEqual(c.set("after", "hup"), b"STORED\r\n")
        n.stop()
        with open(log) as f:
            self.assertIn("stopped", f.read())
        with open(rotated) as f:
            old = f.read()
        self.assertIn("serving on", old)
        self.assertNotIn("stopped", old)
        # After startup, the lines go to the file only.
        self.assertNotIn("stopped", n.stderr())


if __name__ == "__main__":
    harness.main()
