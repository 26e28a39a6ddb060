#!/usr/bin/python3
"""cairn-load, the load tool scripts/bench.sh measures with, does what the
benchmarks rely on:

test_memcache_load_is_validated
    Against a cairn node: a preloaded get/set mix ends with no error and
    every get a hit.
test_redis_protocol
    Against Debian's redis-server (--protocol redis: SET/GET over RESP):
    the same mix, no error, every get a hit.  This is how bench.sh drives
    Redis beside cairn and memcached.
test_meta_protocol
    --protocol meta (mg <key> v f / ms) against Debian's memcached and
    against cairn: the same mix, no error, every get a hit.
test_binary_protocol
    --protocol binary (GET/SET packets, 16 in flight, opaque checked)
    against Debian's memcached: the same mix, no error, every get a hit.
test_meta_and_binary_misses
    Gets of keys never set, against memcached: counted as misses, not
    errors (meta "EN", binary status 1).
test_binary_reply_is_validated
    Binary gets of values written with another --vseed: the flags differ,
    which is an error with exit status 1 (the packets really are checked).
test_wrong_protocol_is_an_error
    RESP sent to cairn gets memcache replies: every one is counted as an
    error and the exit status is 1 (the replies really are checked).
test_fsync_probe
    --fsync-probe DIR reports the single-writer fdatasync rate and leaves
    nothing behind in DIR.

Run: /usr/bin/python3 tests/load/test_load_tool.py --bin build/cairn
(cairn-load is taken from the same directory as cairn.)
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


def load_bin():
    return os.path.join(os.path.dirname(os.path.abspath(harness.server_bin())), "cairn-load")


def run_load(args, timeout=60):
    """Run cairn-load; returns (exit status, dict of its summary line)."""
    p = subprocess.run([load_bin()] + args, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    summary = {}
    for line in out.splitlines():
        if re.match(r"^(ops|fsyncs)_per_sec=", line):
            summary = dict(kv.split("=", 1) for kv in line.split())
    return p.returncode, summary, out + p.stderr.decode("utf-8", "replace")


def stop_process(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(10)


MIX = ["-t", "1", "-c", "4", "-P", "8", "-T", "1", "-k", "2000", "--ratio", "1:1",
       "-d", "100", "--preload", "-q"]


class LoadTool(unittest.TestCase):
    def test_memcache_load_is_validated(self):
        with harness.Server(["--ephemeral"]) as srv:
            rc, s, out = run_load(["-s", srv.addr_str] + MIX)
        self.assertEqual(rc, 0, out)
        self.assertEqual(s["errors"], "0", out)
        self.assertGreater(int(s["gets"]), 0, out)
        self.assertEqual(s["hits"], s["gets"], out)

    def test_redis_protocol(self):
        port = harness.free_port()
        d = tempfile.mkdtemp(prefix="cairn-load-redis-")
        self.addCleanup(shutil.rmtree, d, True)
        p = subprocess.Popen([REDIS, "--port", str(port), "--bind", harness.HOST, "--save", "",
                              "--appendonly", "no", "--dir", d],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.addCleanup(stop_process, p)
        self.assertTrue(harness.wait_until(lambda: harness.can_connect(harness.HOST, port), 10),
                        "redis-server did not come up")
        rc, s, out = run_load(["-s", "%s:%d" % (harness.HOST, port), "--protocol", "redis"] + MIX)
        self.assertEqual(rc, 0, out)
        self.assertEqual(s["errors"], "0", out)
        self.assertGreater(int(s["gets"]), 0, out)
        self.assertEqual(s["hits"], s["gets"], out)

    def check_mix(self, srv, protocol):
        # the mix with 16 in flight (a later -P wins)
        rc, s, out = run_load(["-s", srv.addr_str, "--protocol", protocol] + MIX + ["-P", "16"])
        self.assertEqual(rc, 0, out)
        self.assertEqual(s["errors"], "0", out)
        self.assertGreater(int(s["gets"]), 0, out)
        self.assertGreater(int(s["sets"]), 0, out)
        self.assertEqual(s["hits"], s["gets"], out)

    def test_meta_protocol(self):
        with harness.Server(["--ephemeral"]) as srv:
            self.check_mix(srv, "meta")
        with harness.Server(bin=harness.memcached_bin(), external=False) as srv:
            self.check_mix(srv, "meta")

    def test_binary_protocol(self):
        with harness.Server(bin=harness.memcached_bin(), external=False) as srv:
            self.check_mix(srv, "binary")

    def test_meta_and_binary_misses(self):
        with harness.Server(bin=harness.memcached_bin(), external=False) as srv:
            for protocol in ("meta", "binary"):
                rc, s, out = run_load(["-s", srv.addr_str, "--protocol", protocol, "-c", "2",
                                       "-P", "4", "-n", "400", "--ratio", "1:0", "-q"])
                self.assertEqual(rc, 0, out)
                self.assertEqual(s["errors"], "0", out)
                self.assertEqual((s["gets"], s["misses"], s["hits"]), ("400", "400", "0"), out)

    def test_binary_reply_is_validated(self):
        with harness.Server(bin=harness.memcached_bin(), external=False) as srv:
            rc, s, out = run_load(["-s", srv.addr_str, "--protocol", "binary", "-c", "1",
                                   "-k", "5", "-n", "0", "--preload", "-q"])
            self.assertEqual(rc, 0, out)
            rc, s, out = run_load(["-s", srv.addr_str, "--protocol", "binary", "--vseed", "9",
                                   "-c", "1", "-k", "5", "-n", "10", "--ratio", "1:0", "-q"])
        self.assertEqual(rc, 1, out)
        self.assertIn("flags", out)

    def test_wrong_protocol_is_an_error(self):
        with harness.Server(["--ephemeral"]) as srv:
            rc, s, out = run_load(["-s", srv.addr_str, "--protocol", "redis", "-t", "1", "-c", "1",
                                   "-P", "1", "-n", "10", "--ratio", "0:1", "-d", "10", "-q"])
        self.assertEqual(rc, 1, out)
        self.assertIn("expected +OK", out)

    def test_fsync_probe(self):
        d = tempfile.mkdtemp(prefix="cairn-load-probe-")
        self.addCleanup(shutil.rmtree, d, True)
        rc, s, out = run_load(["--fsync-probe", d, "-T", "1", "-q"])
        self.assertEqual(rc, 0, out)
        self.assertGreater(float(s["fsyncs_per_sec"]), 0, out)
        self.assertEqual(os.listdir(d), [], "the probe left its file behind")


if __name__ == "__main__":
    harness.main()
