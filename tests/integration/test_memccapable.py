#!/usr/bin/python3
# Scenario: libmemcached's conformance checker, memccapable.
#
# test_all_ascii_tests_pass: start the server, run `memccapable -a -h
# 127.0.0.1 -p PORT` (ASCII protocol tests only), parse every "<test name>
# [pass|fail|skip]" line and assert that all the expected ascii tests ran and
# passed (memcached 1.6.18 passes all 27).
#
# test_binary_tests_pass_as_memcached: run `memccapable -b` (binary protocol
# tests only) against the reference memcached and against the server under
# test, and assert that every binary test memcached passes (all 27 with
# 1.6.18) also passes on the server under test; the per-test results of both
# and their pass/fail/skip counts are in the failure message.  It fails on a
# cairn that does not serve the binary protocol.
#
# Run: /usr/bin/python3 test_memccapable.py --bin PATH   (or CAIRN_BIN=PATH)

import collections
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MEMCCAPABLE = "/usr/bin/memccapable"

EXPECTED = [
    "version", "quit", "verbosity", "set", "set noreply", "get", "gets",
    "mget", "flush", "flush noreply", "add", "add noreply", "replace",
    "replace noreply", "cas", "cas noreply", "delete", "delete noreply",
    "incr", "incr noreply", "decr", "decr noreply", "append",
    "append noreply", "prepend", "prepend noreply", "stat",
]

EXPECTED_BINARY = [
    "noop", "quit", "quitq", "set", "setq", "flush", "flushq", "add", "addq",
    "replace", "replaceq", "delete", "deleteq", "get", "getq", "getk", "getkq",
    "incr", "incrq", "decr", "decrq", "version", "append", "appendq",
    "prepend", "prependq", "stat",
]

# A result may follow the test name on the same line, or (after an error
# message such as "Errno: 110 Connection timed out") on the next one.
RESULT_RE = re.compile(r"^(ascii|binary) (\S+(?: \S+)?)\s.*?\[(\w+)\]", re.M | re.S)


def run_memccapable(srv, mode_flag, io_timeout):
    """Run memccapable with -a or -b against srv; returns ({(proto, test):
    "pass"|"fail"|"skip"}, output)."""
    p = subprocess.run([MEMCCAPABLE, mode_flag, "-t", str(io_timeout), "-h", srv.host,
                        "-p", str(srv.port)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=240 * harness.SLOWDOWN)
    out = p.stdout.decode("utf-8", "replace")
    results = {(proto, name): r.lower() for proto, name, r in RESULT_RE.findall(out)}
    return results, out, p.returncode


def counts(results):
    return dict(collections.Counter(results.values()))


class MemcCapable(unittest.TestCase):
    def test_all_ascii_tests_pass(self):
        with harness.Server() as srv:
            results, out, rc = run_memccapable(srv, "-a", 10)
            self.assertTrue(srv.alive(), "server died during memccapable")
        results = {name: r for (proto, name), r in results.items() if proto == "ascii"}
        self.assertEqual(sorted(results), sorted(EXPECTED), out)
        failed = [t for t, r in results.items() if r != "pass"]
        self.assertEqual(failed, [], out)
        self.assertIn("All tests passed", out)
        self.assertEqual(rc, 0, out)

    def test_binary_tests_pass_as_memcached(self):
        # -t 3: a server without the binary protocol never answers, and
        # each of the 27 tests then waits this long (about 80 s in all)
        io_timeout = max(3, int(3 * harness.SLOWDOWN))
        with harness.Server(bin=harness.memcached_bin(), external=False) as ref:
            ref_results, ref_out, _ = run_memccapable(ref, "-b", io_timeout)
        ref_bin = {n: r for (p, n), r in ref_results.items() if p == "binary"}
        # the reference itself: every binary test ran (and 1.6.18 passes all)
        self.assertEqual(sorted(ref_bin), sorted(EXPECTED_BINARY),
                         "memcached's memccapable -b output:\n" + ref_out)
        with harness.Server() as srv:
            results, out, _ = run_memccapable(srv, "-b", io_timeout)
            self.assertTrue(srv.alive(), "server died during memccapable -b")
        got = {n: r for (p, n), r in results.items() if p == "binary"}
        missing = [n for n, r in ref_bin.items() if r == "pass" and got.get(n) != "pass"]
        report = ("memcached (reference) %s: %s\n%s %s: %s\n"
                  "binary tests memcached passes that %s does not: %s\n"
                  "--- memccapable -b against %s ---\n%s"
                  % (harness.memcached_bin(), counts(ref_bin), harness.server_bin(),
                     "(under test)", counts(got), harness.server_bin(),
                     ", ".join("%s [%s]" % (n, got.get(n, "not run")) for n in missing),
                     harness.server_bin(), out))
        self.assertEqual(missing, [], report)


if __name__ == "__main__":
    harness.main()
