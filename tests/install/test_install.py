#!/usr/bin/python3
# `cmake --install` (cmake/install.cmake) of the build tree under test, into
# temporary DESTDIRs; nothing is installed on the host.
#   test_layout: --prefix /usr installs exactly bin/cairn and bin/cairnctl
#     (the binaries just built), the two man pages in share/man/man1, the
#     units cairn.service and cairn@.service in usr/lib/systemd/system and
#     etc/cairn/cairn.conf; the units are Type=notify with ExecStart naming
#     /usr/bin/cairn and /etc/cairn/cairn.conf (no placeholder left), the
#     template runs -p %i --data-dir /var/lib/cairn/%i; the example config
#     has no -d and sets the port, address, memory, data dir and fsync.
#   test_other_prefixes: --prefix /usr/local and /opt/cairn put the binary,
#     units and config where GNUInstallDirs says (usr/local/etc,
#     etc/opt/cairn) and the units name those paths; a second install keeps
#     a config the administrator edited.
#   test_binaries_run: the installed cairn and cairnctl answer --version
#     with the same version; cairnctl --help exits 0.
#   test_man_pages: both pages render with man -l (-Tutf8, and at widths 80
#     and 120 with every groff warning on) and groff -man -ww with no
#     warning; man -M finds them by name; every flag of `cairn --help` is in
#     cairn.1 and every command and option of `cairnctl --help` in
#     cairnctl.1.
#   test_systemd_verify: `systemd-analyze verify --root=ROOT` accepts
#     cairn.service, cairn@.service and cairn@11311.service without a word,
#     where ROOT is the installed tree plus the host's own systemd units and
#     /bin/kill (what the target system provides), and MANPATH the installed
#     man pages (Documentation=man:cairn(1) is checked against them).  The
#     same check refuses a unit whose binary is missing, reports an unknown
#     key, and refuses the units when the man pages are missing.
#   test_units_serve: each unit's ExecStart, run as systemd runs it (the
#     installed binary and config; /var/lib/cairn, the StateDirectory, under
#     the temp dir; cairn@.service's %i and $CAIRN_ARGS from its
#     EnvironmentFile), serves and sends READY=1 (and its MAINPID) on
#     $NOTIFY_SOCKET; the config's settings are in effect; it keeps serving
#     after SIGHUP (ExecReload), exits 0 on SIGTERM, and a restart finds the
#     key written before.
#
# Run: /usr/bin/python3 tests/install/test_install.py --build-dir build
#      --bin build/cairn --cairnctl build/cairnctl

import argparse
import filecmp
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

# reserve_port(): ports no other test process is given.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

HOST = "127.0.0.1"
ARGS = None
POLL_INTERVAL = 0.05
HOST_UNIT_DIR = "/usr/lib/systemd/system"


def run(cmd, timeout=120, **kw):
    return subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def poll(fn, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except OSError as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0f s waiting for %s%s"
                                 % (timeout, what, " (last error: %r)" % last if last else ""))
        time.sleep(POLL_INTERVAL)


def install(destdir, prefix):
    env = dict(os.environ, DESTDIR=destdir)
    p = run(["cmake", "--install", ARGS.build_dir, "--prefix", prefix], env=env)
    if p.returncode != 0:
        raise AssertionError("cmake --install --prefix %s exited %d:\n%s%s"
                             % (prefix, p.returncode, p.stdout, p.stderr))
    return p


def files_under(root):
    out = set()
    for d, _, names in os.walk(root):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def unit_settings(path):
    """{(section, key): [values]} of a unit file."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, _, v = line.partition("=")
            out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def one(settings, section, key):
    vals = settings.get((section, key), [])
    if len(vals) != 1:
        raise AssertionError("[%s] %s= is set %d times: %r" % (section, key, len(vals), vals))
    return vals[0]


def config_flags(path):
    """The flag lines of a memcached.conf-style file: [(flag, value)]."""
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            flag, _, value = line.partition(" ")
            out.append((flag, value.strip()))
    return out


def free_port_pair():
    """A client port whose replication port (+10000) is free too, both
    reserved for this test (harness.reserve_port)."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        port = rng.randrange(12000, 22000)
        if harness.reserve_port(port) and harness.reserve_port(port + 10000):
            return port
    raise RuntimeError("no free port pair")


def command(port, line, end=None, timeout=10):
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(line.encode() + b"\r\n")
        buf = b""
        while not (buf.endswith(b"\r\n") and (end is None or buf.endswith(end.encode() + b"\r\n") or
                                              buf.startswith((b"ERROR", b"SERVER_ERROR", b"CLIENT_ERROR")))):
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("connection closed after %r" % buf)
            buf += chunk
        return buf.decode()


def stats(port, which=""):
    out = {}
    for line in command(port, ("stats " + which).strip(), end="END").split("\r\n"):
        if line.startswith("STAT "):
            parts = line.split(" ", 2)
            out[parts[1]] = parts[2] if len(parts) > 2 else ""
    return out


def documented(word, page):
    """Is `word` (a flag such as -p or --data-dir, or a command) in the man
    page's source as a word of its own?  There a flag's hyphens are \\-,
    and -p must not be found inside \\-\\-port or -pp."""
    escaped = re.escape(word.replace("-", "\\-"))
    return re.search(r"(?<!\\-)(?<![A-Za-z0-9_])%s(?![A-Za-z0-9_]|\\-)" % escaped, page) is not None


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="cairn-install-")
        cls.dest = os.path.join(cls.tmp, "root")
        cls.install_out = install(cls.dest, "/usr")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(30)

    def path(self, rel):
        return os.path.join(self.dest, rel)

    # ---- layout
    def test_layout(self):
        expected = {
            "usr/bin/cairn", "usr/bin/cairnctl",
            "usr/share/man/man1/cairn.1", "usr/share/man/man1/cairnctl.1",
            "usr/lib/systemd/system/cairn.service", "usr/lib/systemd/system/cairn@.service",
            "etc/cairn/cairn.conf",
        }
        self.assertEqual(files_under(self.dest), expected)
        for name, built in (("cairn", ARGS.bin), ("cairnctl", ARGS.cairnctl)):
            self.assertTrue(os.access(self.path("usr/bin/" + name), os.X_OK))
            self.assertTrue(filecmp.cmp(self.path("usr/bin/" + name), built, shallow=False),
                            "installed %s differs from the one built" % name)

        units = self.path("usr/lib/systemd/system")
        for unit in ("cairn.service", "cairn@.service"):
            with open(os.path.join(units, unit)) as f:
                text = f.read()
            self.assertNotRegex(text, r"@[A-Z_]+@", "%s: placeholder left" % unit)
            u = unit_settings(os.path.join(units, unit))
            self.assertEqual(one(u, "Service", "Type"), "notify", unit)
            self.assertEqual(one(u, "Service", "ExecReload"), "/bin/kill -HUP $MAINPID", unit)
            self.assertEqual(one(u, "Service", "Restart"), "on-failure", unit)
            self.assertEqual(one(u, "Service", "DynamicUser"), "yes", unit)
            self.assertEqual(one(u, "Service", "User"), "cairn", unit)
            self.assertEqual(one(u, "Service", "ProtectSystem"), "strict", unit)
            self.assertEqual(one(u, "Service", "NoNewPrivileges"), "yes", unit)
            self.assertEqual(one(u, "Service", "LogsDirectory"), "cairn", unit)
            self.assertGreaterEqual(int(one(u, "Service", "LimitNOFILE")), 1024 + 64, unit)
            self.assertGreaterEqual(int(one(u, "Service", "TimeoutStopSec")), 60, unit)
            self.assertEqual(one(u, "Install", "WantedBy"), "multi-user.target", unit)
        u = unit_settings(os.path.join(units, "cairn.service"))
        self.assertEqual(one(u, "Service", "ExecStart"), "/usr/bin/cairn --config /etc/cairn/cairn.conf")
        self.assertEqual(one(u, "Service", "StateDirectory"), "cairn")
        u = unit_settings(os.path.join(units, "cairn@.service"))
        self.assertEqual(one(u, "Service", "ExecStart"),
                         "/usr/bin/cairn --config /etc/cairn/cairn.conf -p %i --data-dir /var/lib/cairn/%i"
                         " $CAIRN_ARGS")
        self.assertEqual(one(u, "Service", "StateDirectory"), "cairn/%i")
        self.assertEqual(one(u, "Service", "EnvironmentFile"), "-/etc/cairn/cairn@%i.env")

        flags = dict(config_flags(self.path("etc/cairn/cairn.conf")))
        for daemon in ("-d", "--daemon"):
            self.assertNotIn(daemon, flags, "the example config daemonizes: systemd would lose it")
        self.assertEqual(flags.get("-p"), "11211")
        self.assertEqual(flags.get("-l"), "127.0.0.1")
        self.assertEqual(flags.get("-m"), "64")
        self.assertEqual(flags.get("--data-dir"), "/var/lib/cairn")
        self.assertEqual(flags.get("--fsync"), "everysec")
        with open(self.path("etc/cairn/cairn.conf")) as f:
            self.assertRegex(f.read(), r"(?m)^# --metrics-port \d+$")

    def test_other_prefixes(self):
        for n, (prefix, bindir, unitdir, confdir) in enumerate((
                ("/usr/local", "usr/local/bin", "usr/local/lib/systemd/system", "usr/local/etc/cairn"),
                ("/opt/cairn", "opt/cairn/bin", "opt/cairn/lib/systemd/system", "etc/opt/cairn/cairn"))):
            dest = os.path.join(self.tmp, "prefix%d" % n)
            install(dest, prefix)
            expected = {bindir + "/cairn", bindir + "/cairnctl",
                        unitdir + "/cairn.service", unitdir + "/cairn@.service",
                        confdir + "/cairn.conf"}
            got = files_under(dest)
            self.assertTrue(expected <= got, "prefix %s: missing %s" % (prefix, sorted(expected - got)))
            u = unit_settings(os.path.join(dest, unitdir, "cairn.service"))
            self.assertEqual(one(u, "Service", "ExecStart"),
                             "/%s/cairn --config /%s/cairn.conf" % (bindir, confdir))

        # A config the administrator edited survives a new install.
        conf = self.path("etc/cairn/cairn.conf")
        dest = os.path.join(self.tmp, "again")
        shutil.copytree(self.dest, dest, symlinks=True)
        edited = os.path.join(dest, "etc/cairn/cairn.conf")
        with open(edited, "a") as f:
            f.write("-m 128\n")
        p = install(dest, "/usr")
        with open(edited) as f:
            self.assertTrue(f.read().endswith("-m 128\n"), "the edited config was overwritten")
        self.assertIn("Kept: %s" % edited, p.stdout)
        self.assertTrue(filecmp.cmp(conf, os.path.join(ARGS.source_dir, "scripts/systemd/cairn.conf"),
                                    shallow=False))

    # ---- binaries
    def test_binaries_run(self):
        p = run([self.path("usr/bin/cairn"), "--version"])
        self.assertEqual(p.returncode, 0, p)
        m = re.fullmatch(r"cairn (\d+\.\d+\.\d+)\n", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        p = run([self.path("usr/bin/cairnctl"), "--version"])
        self.assertEqual((p.returncode, p.stdout), (0, "cairnctl %s\n" % m.group(1)), p)
        p = run([self.path("usr/bin/cairnctl"), "--help"])
        self.assertEqual(p.returncode, 0, p)
        self.assertIn("usage: cairnctl", p.stdout)

    # ---- man pages
    def test_man_pages(self):
        mandir = self.path("usr/share/man")
        for page in ("cairn", "cairnctl"):
            path = os.path.join(mandir, "man1", page + ".1")
            p = run(["man", "-l", "-Tutf8", path])
            self.assertEqual((p.returncode, p.stderr), (0, ""), "man -l -Tutf8 %s" % path)
            text = re.sub(".\x08", "", p.stdout)  # overstrike (bold, underline)
            for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "SEE ALSO"):
                self.assertRegex(text, r"(?m)^%s$" % section, "%s(1) has no %s section" % (page, section))
            for width in ("80", "120"):
                env = dict(os.environ, MANWIDTH=width, LC_ALL="C.UTF-8")
                p = run(["man", "--warnings=all", "-l", path], env=env)
                self.assertEqual((p.returncode, p.stderr), (0, ""), "man --warnings=all at width %s" % width)
            p = run(["groff", "-man", "-ww", "-z", path])
            self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""), "groff -man -ww -z %s" % path)
            p = run(["man", "-M", mandir, "-w", page])
            self.assertEqual((p.returncode, p.stdout.strip()), (0, path), "man -M does not find %s(1)" % page)

        with open(os.path.join(mandir, "man1", "cairn.1")) as f:
            cairn_1 = f.read()
        with open(os.path.join(mandir, "man1", "cairnctl.1")) as f:
            cairnctl_1 = f.read()
        version = run([self.path("usr/bin/cairn"), "--version"]).stdout.split()[-1]
        for page, text in (("cairn", cairn_1), ("cairnctl", cairnctl_1)):
            self.assertRegex(text, r'(?m)^\.TH %s 1 \S+ "cairn %s"' % (page.upper(), re.escape(version)),
                             "%s(1)'s .TH line does not name cairn %s" % (page, version))
        help_text = run([self.path("usr/bin/cairn"), "--help"]).stdout
        longs = sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", help_text)))
        shorts = sorted(set(re.findall(r"(?<![\w-])-[a-zA-Z](?![\w-])", help_text)))
        self.assertGreater(len(longs), 20, help_text)
        missing = [f for f in longs + shorts if not documented(f, cairn_1)]
        self.assertEqual(missing, [], "flags of cairn --help that cairn(1) does not document")

        help_text = run([self.path("usr/bin/cairnctl"), "--help"]).stdout
        words = set(re.findall(r"(?<![\w-])--?[a-zA-Z][a-z-]*", help_text))
        words |= {"status", "promote", "replicaof", "failover"}
        missing = sorted(w for w in words if not documented(w, cairnctl_1))
        self.assertEqual(missing, [], "cairnctl --help words that cairnctl(1) does not document")

    # ---- systemd-analyze verify
    def verify_root(self):
        """The installed tree, plus what the target system provides: the
        host's own units (sysinit.target, ...) and the commands our units
        run that we do not install (/bin/kill)."""
        root = os.path.join(self.tmp, "verify-root")
        if os.path.isdir(root):
            return root
        shutil.copytree(HOST_UNIT_DIR, os.path.join(root, HOST_UNIT_DIR.lstrip("/")), symlinks=True)
        shutil.copytree(self.dest, root, symlinks=True, dirs_exist_ok=True)
        for unit in ("cairn.service", "cairn@.service"):
            u = unit_settings(os.path.join(root, "usr/lib/systemd/system", unit))
            for (section, key), values in u.items():
                if section != "Service" or not key.startswith("Exec"):
                    continue
                for v in values:
                    exe = shlex.split(v.lstrip("-@:+!"))[0]
                    target = os.path.join(root, exe.lstrip("/"))
                    if not os.path.lexists(target):
                        self.assertTrue(os.access(exe, os.X_OK), "%s: the host has no %s" % (unit, exe))
                        os.makedirs(os.path.dirname(target), exist_ok=True)
                        shutil.copy2(os.path.realpath(exe), target)
        return root

    def verify(self, root, *units, manpath=None):
        env = dict(os.environ, MANPATH=manpath or self.path("usr/share/man"))
        return run(["systemd-analyze", "verify", "--root=" + root] + list(units), env=env, cwd=self.tmp)

    def test_systemd_verify(self):
        self.assertIsNotNone(shutil.which("systemd-analyze"), "systemd-analyze is missing (scripts/deps.sh)")
        root = self.verify_root()
        for units in (["cairn.service", "cairn@.service", "cairn@11311.service"],):
            p = self.verify(root, *units)
            self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""),
                             "systemd-analyze verify %s" % " ".join(units))

        # The same check bites: a missing binary, an unknown key, no man page.
        unitdir = os.path.join(root, "usr/lib/systemd/system")
        with open(os.path.join(unitdir, "cairn.service")) as f:
            text = f.read()
        with open(os.path.join(unitdir, "cairnx-nobin.service"), "w") as f:
            f.write(text.replace("ExecStart=/usr/bin/cairn ", "ExecStart=/usr/bin/cairn-missing "))
        with open(os.path.join(unitdir, "cairnx-badkey.service"), "w") as f:
            f.write(text.replace("[Service]\n", "[Service]\nTypo=notify\n"))
        try:
            p = self.verify(root, "cairnx-nobin.service")
            self.assertNotEqual(p.returncode, 0, p)
            self.assertIn("/usr/bin/cairn-missing", p.stdout + p.stderr)
            p = self.verify(root, "cairnx-badkey.service")
            self.assertIn("Typo", p.stdout + p.stderr)
            empty = os.path.join(self.tmp, "no-man")
            os.makedirs(empty, exist_ok=True)
            p = self.verify(root, "cairn.service", manpath=empty)
            self.assertNotEqual(p.returncode, 0, p)
            self.assertIn("cairn(1)", p.stdout + p.stderr)
        finally:
            os.unlink(os.path.join(unitdir, "cairnx-nobin.service"))
            os.unlink(os.path.join(unitdir, "cairnx-badkey.service"))

    # ---- the units' ExecStart, run as systemd runs them
    def exec_start(self, unit, instance=None, env_vars=None, state_dir=None):
        """argv of the unit's ExecStart as systemd builds it: %i replaced,
        $VAR split on whitespace (gone when unset), installed paths under
        DESTDIR, /var/lib/cairn (the StateDirectory) at state_dir."""
        u = unit_settings(self.path("usr/lib/systemd/system/" + unit))
        argv = []
        for word in shlex.split(one(u, "Service", "ExecStart")):
            if instance is not None:
                word = word.replace("%i", str(instance))
            if word.startswith("$"):
                argv += (env_vars or {}).get(word[1:], "").split()
                continue
            if word.startswith(("/usr/", "/etc/")):
                word = self.path(word.lstrip("/"))
            elif word.startswith("/var/lib/cairn"):
                word = state_dir + word[len("/var/lib/cairn"):]
            argv.append(word)
        return argv

    def start(self, argv, log):
        """Run argv with $NOTIFY_SOCKET; returns (Popen, the notify message)."""
        sock_path = os.path.join(self.tmp, "notify-%d.sock" % len(self.procs))
        if os.path.exists(sock_path):
            os.unlink(sock_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.settimeout(POLL_INTERVAL)
        try:
            env = dict(os.environ, NOTIFY_SOCKET=sock_path)
            with open(log, "ab") as logf:
                p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=self.tmp)
            self.procs.append(p)
            msgs = []

            def ready():
                if p.poll() is not None:
                    raise AssertionError("%s exited %d before READY=1:\n%s" % (argv, p.returncode, self.tail(log)))
                try:
                    msgs.append(sock.recv(4096).decode())
                except socket.timeout:
                    return None
                return next((m for m in msgs if "READY=1" in m.split("\n")), None)
            msg = poll(ready, 30, "READY=1 on $NOTIFY_SOCKET from %s" % argv)
        finally:
            sock.close()
            os.unlink(sock_path)
        return p, msg

    @staticmethod
    def tail(log):
        try:
            with open(log, errors="replace") as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return ""

    def stop(self, p, log):
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(60)
        except subprocess.TimeoutExpired:
            raise AssertionError("no exit within 60 s of SIGTERM:\n" + self.tail(log))
        self.assertEqual(rc, 0, "exit status after SIGTERM:\n" + self.tail(log))

    def test_units_serve(self):
        help_text = run([self.path("usr/bin/cairn"), "--help"]).stdout
        self.assertIn("--config", help_text, "cairn has no --config: the units cannot start it")
        state = os.path.join(self.tmp, "var-lib-cairn")
        os.makedirs(state, exist_ok=True)

        # cairn.service: the admin changed only the port and data directory.
        port = free_port_pair()
        conf = self.path("etc/cairn/cairn.conf")
        with open(conf) as f:
            text = f.read()
        self.assertIn("\n-p 11211\n", text)
        self.assertIn("\n--data-dir /var/lib/cairn\n", text)
        with open(conf, "w") as f:
            f.write(text.replace("\n-p 11211\n", "\n-p %d\n" % port)
                    .replace("\n--data-dir /var/lib/cairn\n", "\n--data-dir %s\n" % state))
        try:
            argv = self.exec_start("cairn.service")
            self.assertEqual(argv, [self.path("usr/bin/cairn"), "--config", conf])
            log = os.path.join(self.tmp, "cairn.service.log")
            p, msg = self.start(argv, log)
            self.assertIn("MAINPID=%d" % p.pid, msg.split("\n"))
            self.assertTrue(command(port, "version").startswith("VERSION "))
            st = stats(port, "settings")
            self.assertEqual((st["maxbytes"], st["inter"], st["tcpport"]), (str(64 << 20), HOST, str(port)))
            st = stats(port, "persistence")
            self.assertEqual((st["fsync"], os.path.realpath(st["data_dir"])), ("everysec", os.path.realpath(state)))
            self.assertEqual(command(port, "set unit-key 0 0 3\r\nabc"), "STORED\r\n")
            # ExecReload
            p.send_signal(signal.SIGHUP)
            poll(lambda: command(port, "get unit-key", end="END") == "VALUE unit-key 0 3\r\nabc\r\nEND\r\n",
                 10, "the node to serve after SIGHUP")
            self.assertIsNone(p.poll(), "SIGHUP stopped the node")
            self.stop(p, log)
            # Restarted: the key is back.
            p, msg = self.start(argv, log)
            self.assertEqual(command(port, "get unit-key", end="END"), "VALUE unit-key 0 3\r\nabc\r\nEND\r\n")
            self.stop(p, log)
        finally:
            with open(conf, "w") as f:
                f.write(text)

        # cairn@PORT.service: the shared config as installed, the instance's
        # flags, and $CAIRN_ARGS from its EnvironmentFile.
        port = free_port_pair()
        env_file = self.path("etc/cairn/cairn@%d.env" % port)
        with open(env_file, "w") as f:
            f.write('CAIRN_ARGS="--node-id inst-%d -t 2"\n' % port)
        try:
            env_vars = {}
            with open(env_file) as f:
                for line in f:
                    k, _, v = line.strip().partition("=")
                    env_vars[k] = " ".join(shlex.split(v))
            argv = self.exec_start("cairn@.service", instance=port, env_vars=env_vars, state_dir=state)
            self.assertEqual(argv, [self.path("usr/bin/cairn"), "--config", conf, "-p", str(port),
                                    "--data-dir", "%s/%d" % (state, port), "--node-id", "inst-%d" % port,
                                    "-t", "2"])
            os.makedirs("%s/%d" % (state, port))  # StateDirectory=cairn/%i
            log = os.path.join(self.tmp, "cairn@.service.log")
            p, msg = self.start(argv, log)
            self.assertIn("MAINPID=%d" % p.pid, msg.split("\n"))
            st = stats(port, "settings")
            self.assertEqual((st["tcpport"], st["num_threads"]), (str(port), "2"))
            st = stats(port, "replication")
            self.assertEqual((st["node_id"], st["repl_addr"]), ("inst-%d" % port, "%s:%d" % (HOST, port + 10000)))
            st = stats(port, "persistence")
            self.assertEqual(os.path.realpath(st["data_dir"]), os.path.realpath("%s/%d" % (state, port)))
            self.stop(p, log)
        finally:
            os.unlink(env_file)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--cairnctl", required=True)
    ap.add_argument("--source-dir", default=os.path.abspath(os.path.join(here, "..", "..")))
    ARGS, rest = ap.parse_known_args()
    ARGS.build_dir = os.path.abspath(ARGS.build_dir)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
