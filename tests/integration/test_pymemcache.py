#!/usr/bin/python3
# Scenario: an application using pymemcache (pymemcache.client.base.Client,
# Debian python3-pymemcache 3.5) against the server.  Every command the
# client offers, in both noreply=True (fire and forget; the effect is then
# checked with a read) and noreply=False (the server's reply is checked)
# variants: set/get/get_many/set_many/add/replace/append/prepend/gets/cas/
# delete/delete_many/incr/decr/touch/flush_all (with and without delay)/
# stats/stats settings/version/quit, plus a cache-aside loop and error
# replies surfaced as client exceptions.
#
# Run: /usr/bin/python3 test_pymemcache.py --bin PATH   (or CAIRN_BIN=PATH)

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from pymemcache.client.base import Client  # noqa: E402
from pymemcache import exceptions as pexc  # noqa: E402


class PyMemcache(harness.SharedServerTest):
    def setUp(self):
        self.c = Client(self.server.addr, connect_timeout=5, timeout=5,
                        default_noreply=False, no_delay=True)
        self.assertTrue(self.c.flush_all(noreply=False))

    def tearDown(self):
        self.c.close()

    def test_set_get_noreply_variants(self):
        self.assertTrue(self.c.set("a", b"1", noreply=False))
        self.assertTrue(self.c.set("b", b"2", noreply=True))
        self.assertEqual(self.c.get("a"), b"1")
        self.assertEqual(self.c.get("b"), b"2")
        self.assertIsNone(self.c.get("missing"))
        self.assertEqual(self.c.get("missing", default=b"dflt"), b"dflt")

    def test_flags_roundtrip_raw(self):
        # flags are carried verbatim: read the raw reply via gets+flags
        self.assertTrue(self.c.set("f", b"v", noreply=False, flags=4294967295))
        with self.server.conn() as raw:
            self.assertEqual(raw.request(b"get f\r\n", b"END\r\n"),
                             b"VALUE f 4294967295 1\r\nv\r\nEND\r\n")

    def test_set_many_get_many(self):
        data = {"k%d" % i: b"v%d" % i for i in range(100)}
        self.assertEqual(self.c.set_many(data, noreply=False), [])
        self.assertEqual(self.c.set_many({"x": b"1", "y": b"2"}, noreply=True), [])
        got = self.c.get_many(list(data) + ["x", "y", "zz"])
        want = dict(data, x=b"1", y=b"2")
        self.assertEqual(got, want)

    def test_add(self):
        self.assertTrue(self.c.add("a", b"1", noreply=False))
        self.assertFalse(self.c.add("a", b"2", noreply=False))
        self.assertTrue(self.c.add("a", b"3", noreply=True))   # no reply: True
        self.assertTrue(self.c.add("n", b"4", noreply=True))
        self.assertEqual(self.c.get_many(["a", "n"]), {"a": b"1", "n": b"4"})

    def test_replace(self):
        self.assertFalse(self.c.replace("a", b"1", noreply=False))
        self.assertIsNone(self.c.get("a"))
        self.c.set("a", b"0")
        self.assertTrue(self.c.replace("a", b"1", noreply=False))
        self.assertTrue(self.c.replace("a", b"2", noreply=True))
        self.assertEqual(self.c.get("a"), b"2")

    def test_append_prepend(self):
        self.assertFalse(self.c.append("a", b"x", noreply=False))
        self.assertFalse(self.c.prepend("a", b"x", noreply=False))
        self.assertIsNone(self.c.get("a"))
        self.c.set("a", b"mid")
        self.assertTrue(self.c.append("a", b">", noreply=False))
        self.assertTrue(self.c.prepend("a", b"<", noreply=False))
        self.assertTrue(self.c.append("a", b"]", noreply=True))
        self.assertTrue(self.c.prepend("a", b"[", noreply=True))
        self.assertEqual(self.c.get("a"), b"[<mid>]")

    def test_gets_cas(self):
        self.assertEqual(self.c.gets("a"), (None, None))
        self.assertIsNone(self.c.cas("a", b"v", b"1", noreply=False))   # NOT_FOUND
        self.c.set("a", b"v1")
        val, cas = self.c.gets("a")
        self.assertEqual(val, b"v1")
        self.assertTrue(cas.isdigit())
        self.assertTrue(self.c.cas("a", b"v2", cas, noreply=False))
        self.assertFalse(self.c.cas("a", b"v3", cas, noreply=False))    # EXISTS
        val2, cas2 = self.c.gets("a")
        self.assertEqual(val2, b"v2")
        self.assertNotEqual(cas, cas2)
        self.assertTrue(self.c.cas("a", b"v4", cas2, noreply=True))
        self.assertEqual(self.c.get("a"), b"v4")
        many = self.c.gets_many(["a", "zz"])
        self.assertEqual(list(many), ["a"])
        self.assertEqual(many["a"][0], b"v4")

    def test_delete(self):
        self.c.set("a", b"1")
        self.c.set("b", b"1")
        self.assertTrue(self.c.delete("a", noreply=False))
        self.assertFalse(self.c.delete("a", noreply=False))
        self.assertTrue(self.c.delete("b", noreply=True))
        self.assertIsNone(self.c.get("b"))
        self.c.set_many({"c": b"1", "d": b"1"})
        self.assertTrue(self.c.delete_many(["c", "d", "nope"], noreply=False))
        self.assertEqual(self.c.get_many(["c", "d"]), {})

    def test_incr_decr(self):
        self.assertIsNone(self.c.incr("n", 1, noreply=False))
        self.assertIsNone(self.c.decr("n", 1, noreply=False))
        self.c.set("n", b"5")
        self.assertEqual(self.c.incr("n", 10, noreply=False), 15)
        self.assertEqual(self.c.decr("n", 3, noreply=False), 12)
        self.assertIsNone(self.c.incr("n", 100, noreply=True))
        self.assertIsNone(self.c.decr("n", 2, noreply=True))
        self.assertEqual(self.c.get("n"), b"110")
        self.assertEqual(self.c.decr("n", 1000, noreply=False), 0)
        self.assertEqual(self.c.get("n"), b"0  ")              # space padded
        self.assertEqual(self.c.incr("n", 2 ** 64 - 1, noreply=False), 2 ** 64 - 1)
        self.assertEqual(self.c.incr("n", 2, noreply=False), 1)
        self.c.set("s", b"abc")
        with self.assertRaises(pexc.MemcacheClientError) as cm:
            self.c.incr("s", 1, noreply=False)
        self.assertIn(b"cannot increment or decrement non-numeric value",
                      str(cm.exception).encode())

    def test_touch(self):
        self.assertFalse(self.c.touch("a", 10, noreply=False))
        self.c.set("a", b"1", expire=1000)
        self.assertTrue(self.c.touch("a", 0, noreply=False))
        self.assertTrue(self.c.touch("a", 2000, noreply=True))
        self.assertEqual(self.c.get("a"), b"1")
        self.assertTrue(self.c.touch("a", -1, noreply=False))
        self.assertIsNone(self.c.get("a"))

    def test_expire(self):
        self.c.set("short", b"1", expire=1)
        self.c.set("long", b"1", expire=1000)
        self.assertTrue(harness.wait_until(lambda: self.c.get("short") is None, 8, 0.1))
        self.assertEqual(self.c.get("long"), b"1")

    def test_flush_all(self):
        self.c.set("a", b"1")
        self.assertTrue(self.c.flush_all(noreply=False))
        self.assertIsNone(self.c.get("a"))
        self.c.set("a", b"1")
        self.assertTrue(self.c.flush_all(noreply=True))
        self.assertIsNone(self.c.get("a"))
        self.c.set("a", b"1")
        self.assertTrue(self.c.flush_all(delay=2, noreply=False))
        self.assertEqual(self.c.get("a"), b"1")
        self.assertTrue(harness.wait_until(lambda: self.c.get("a") is None, 10, 0.1))

    def test_stats(self):
        before = self.c.stats()
        self.c.set("a", b"1")
        self.c.get("a")
        self.c.get("zz")
        st = self.c.stats()
        self.assertEqual(st[b"get_hits"] - before[b"get_hits"], 1)
        self.assertEqual(st[b"get_misses"] - before[b"get_misses"], 1)
        self.assertEqual(st[b"cmd_set"] - before[b"cmd_set"], 1)
        self.assertGreaterEqual(st[b"curr_connections"], 1)
        self.assertIn(b"limit_maxbytes", st)
        settings = self.c.stats("settings")
        self.assertIn(b"maxconns", settings)
        self.assertIn(b"item_size_max", settings)

    def test_version(self):
        v = self.c.version()
        self.assertRegex(v, rb"^[0-9A-Za-z.\-_+]+$")
        if harness.is_memcached():
            self.assertEqual(v, b"1.6.18")

    def test_quit_then_reconnect(self):
        self.c.set("q", b"1")
        self.c.quit()
        self.assertEqual(self.c.get("q"), b"1")      # client reconnects

    def test_key_errors(self):
        with self.assertRaises(pexc.MemcacheIllegalInputError):
            self.c.set("k" * 251, b"v")
        with self.assertRaises(pexc.MemcacheIllegalInputError):
            self.c.set("bad key", b"v")
        self.assertTrue(self.c.set("k" * 250, b"v", noreply=False))
        self.assertEqual(self.c.get("k" * 250), b"v")

    def test_too_large_value_is_server_error(self):
        with self.assertRaises(pexc.MemcacheServerError) as cm:
            self.c.set("big", b"x" * (2 * 1024 * 1024), noreply=False)
        self.assertIn("object too large for cache", str(cm.exception))
        self.assertTrue(self.c.set("after", b"ok", noreply=False))
        self.assertEqual(self.c.get("after"), b"ok")

    def test_cache_aside(self):
        db = {uid: ("name%d" % uid).encode() for uid in range(300)}
        reads = []

        def lookup(uid):
            key = "u:%d" % uid
            v = self.c.get(key)
            if v is None:
                reads.append(uid)
                v = db[uid]
                self.c.set(key, v, expire=300, noreply=True)
            return v

        for _ in range(2):
            for uid in db:
                self.assertEqual(lookup(uid), db[uid])
        self.assertEqual(sorted(reads), sorted(db))    # each uid missed once


if __name__ == "__main__":
    harness.main()
