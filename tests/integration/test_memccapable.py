#!/usr/bin/python3
# Scenario: libmemcached's conformance checker.  Start the server, run
# `memccapable -a -h 127.0.0.1 -p PORT` (ASCII protocol tests only), parse
# every "<test name>  [pass|fail|skip]" line and assert that all the
# expected ascii tests ran and passed (memcached 1.6.18 passes all 27).
#
# Run: /usr/bin/python3 test_memccapable.py --bin PATH   (or CAIRN_BIN=PATH)

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


class MemcCapable(unittest.TestCase):
    def test_all_ascii_tests_pass(self):
        with harness.Server() as srv:
            p = subprocess.run([MEMCCAPABLE, "-a", "-t", "10", "-h", srv.host,
                                "-p", str(srv.port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=120)
            out = p.stdout.decode("utf-8", "replace")
            self.assertTrue(srv.alive(), "server died during memccapable")
        results = dict(re.findall(r"^ascii (.+?)\s+\[(\w+)\]\s*$", out, re.M))
        self.assertEqual(sorted(results), sorted(EXPECTED), out)
        failed = [t for t, r in results.items() if r != "pass"]
        self.assertEqual(failed, [], out)
        self.assertIn("All tests passed", out)
        self.assertEqual(p.returncode, 0, out)


if __name__ == "__main__":
    harness.main()
