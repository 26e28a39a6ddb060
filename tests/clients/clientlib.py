# Shared runner for the real-client tests in tests/clients/.
#
# Scenario: each test_<client>.py names a client script (Ruby/Dalli,
# PHP/php-memcached, Node/memjs, Python/pylibmc) and the protocol variants
# it runs in.  For every variant the SAME script runs twice: against the
# reference /usr/bin/memcached (which must pass: it proves the script's
# expectations are right) and against cairn (--bin PATH).  Each run starts
# its own server on 127.0.0.1 and a free port (tests/integration/harness.py),
# runs the script as `<interpreter> <script> HOST PORT <variant args>` with a
# bounded timeout, and asserts: exit status 0, the script's final line
# "ALL OK", and the server still running afterwards.  A failure names the
# server (memcached or cairn), the client, the variant and shows the
# client's whole output and the server's stderr.
#
# Client scripts print "ok <operation>" per checked operation and exit
# non-zero with a message at the first wrong result.

import os
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

CLIENT_TIMEOUT = 60.0 * harness.SLOWDOWN    # seconds for one client script
NODE_MODULES = os.path.join(HERE, "node_modules")


def require_tool(path_or_name, hint):
    """The full path of an interpreter, or fail (not skip): scripts/deps.sh
    installs every client, so a missing one is a setup error to fix."""
    found = shutil.which(path_or_name)
    if not found:
        raise AssertionError("%s not found: %s" % (path_or_name, hint))
    return found


def run_client(argv, server, extra=(), env=None, timeout=CLIENT_TIMEOUT):
    """Run argv + [host, port] + extra; returns (exit status or None on
    timeout, combined output)."""
    full = list(argv) + [server.host, str(server.port)] + list(extra)
    try:
        p = subprocess.run(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout, env=env, cwd=HERE)
        return p.returncode, p.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        return None, out + "\n[killed after %.0f s]" % timeout


class ClientScriptTest(unittest.TestCase):
    """Base class: subclasses set CLIENT (a name for messages), SCRIPT
    (file name in tests/clients), VARIANTS ({variant: [script args]}) and
    implement command() (the interpreter argv before the script) and
    optionally env().  add_tests() then creates test_<variant>_memcached
    and test_<variant>_cairn."""

    CLIENT = None
    SCRIPT = None
    VARIANTS = {}

    def command(self):
        raise NotImplementedError

    def env(self):
        return None

    def check(self, variant, which):
        if which == "memcached":
            bin_, label = harness.memcached_bin(), "memcached (reference)"
        else:
            bin_, label = harness.server_bin(), "cairn"
        argv = self.command() + [os.path.join(HERE, self.SCRIPT)]
        srv = harness.Server(bin=bin_, external=False).start()
        try:
            rc, out = run_client(argv, srv, self.VARIANTS[variant], self.env())
            alive = srv.alive()
            err = srv.stderr_text()
        finally:
            srv.stop()
        ok = rc == 0 and alive and out.rstrip().endswith("ALL OK")
        if not ok:
            what = ("timed out" if rc is None else "exit status %d" % rc) + \
                ("" if alive else "; the server died")
            msg = ("%s [%s] FAILED against %s (%s at %s): %s\n--- client output ---\n%s"
                   "\n--- server stderr (last 2000 bytes) ---\n%s"
                   % (self.CLIENT, variant, label, bin_, srv.addr_str, what, out.rstrip(),
                      err[-2000:]))
            sys.stderr.write("\n*** " + msg.split("\n", 1)[0] + "\n")
            self.fail(msg)


def add_tests(cls):
    """Class decorator: one test per (variant, server)."""
    for variant in cls.VARIANTS:
        for which in ("memcached", "cairn"):
            def t(self, variant=variant, which=which):
                self.check(variant, which)
            t.__name__ = "test_%s_%s" % (variant, which)
            t.__doc__ = "%s, %s protocol, against %s" % (cls.CLIENT, variant, which)
            setattr(cls, t.__name__, t)
    return cls


main = harness.main
