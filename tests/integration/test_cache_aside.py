#!/usr/bin/python3
# Scenario: an application using python-memcached (`memcache.Client`, Debian
# python3-memcache) against the server.  First the cache-aside pattern from
# the mission: look a user up in the cache; on a miss "read the database"
# (a dict, counting reads) and store the row with a TTL; repeat for many
# uids, then read them all again and check every one is now a hit served
# from the cache with no further db reads.  Then every command the client
# offers, each with its result asserted: set/get/get_multi/set_multi/add/
# replace/append/prepend/gets+cas (cache_cas=True)/delete/delete_multi/
# incr/decr/touch/flush_all/get_stats, including pickled Python objects.
#
# Run: /usr/bin/python3 test_cache_aside.py --bin PATH   (or CAIRN_BIN=PATH)

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import memcache  # noqa: E402  (python3-memcache, only in /usr/bin/python3)


class FakeDB:
    def __init__(self, n):
        self.rows = {uid: {"uid": uid, "name": "user%d" % uid, "score": uid * 7}
                     for uid in range(n)}
        self.reads = 0

    def get_user(self, uid):
        self.reads += 1
        return dict(self.rows[uid])


def get_user(mc, db, uid):
    key = "user:%d" % uid
    row = mc.get(key)
    if row is None:
        row = db.get_user(uid)
        mc.set(key, row, time=300)
    return row


class CacheAside(harness.SharedServerTest):
    def setUp(self):
        self.mc = memcache.Client([self.server.addr_str], cache_cas=True,
                                  socket_timeout=5)
        self.mc.flush_all()
        # (curr_items is not checked after flush_all: memcached reclaims
        # flushed items lazily, so its count lags)

    def tearDown(self):
        self.mc.disconnect_all()

    def test_cache_aside_many_uids(self):
        n = 500
        db = FakeDB(n)
        for uid in range(n):
            self.assertEqual(get_user(self.mc, db, uid), db.rows[uid])
        self.assertEqual(db.reads, n)              # every first read missed
        for uid in range(n):
            self.assertEqual(get_user(self.mc, db, uid), db.rows[uid])
        self.assertEqual(db.reads, n)              # every second read hit
        self.assertEqual(self.mc.get_multi(["user:%d" % u for u in range(n)]),
                         {"user:%d" % u: db.rows[u] for u in range(n)})
        # an update invalidates: delete, next read goes to the db again
        db.rows[3]["name"] = "renamed"
        self.assertTrue(self.mc.delete("user:3"))
        self.assertEqual(get_user(self.mc, db, 3)["name"], "renamed")
        self.assertEqual(db.reads, n + 1)

    def test_set_get_types(self):
        self.assertTrue(self.mc.set("s", "text"))
        self.assertTrue(self.mc.set("b", b"\x00\xffbytes\r\n"))
        self.assertTrue(self.mc.set("i", 42))
        self.assertTrue(self.mc.set("o", {"a": [1, 2, (3, 4)]}))
        self.assertEqual(self.mc.get("s"), "text")
        self.assertEqual(self.mc.get("b"), b"\x00\xffbytes\r\n")
        self.assertEqual(self.mc.get("i"), 42)
        self.assertEqual(self.mc.get("o"), {"a": [1, 2, (3, 4)]})
        self.assertIsNone(self.mc.get("missing"))

    def test_set_multi_get_multi_delete_multi(self):
        data = {"m%d" % i: "v%d" % i for i in range(50)}
        self.assertEqual(self.mc.set_multi(data, time=100), [])
        got = self.mc.get_multi(list(data) + ["nope1", "nope2"])
        self.assertEqual(got, data)
        self.assertEqual(self.mc.set_multi({"a": 1, "b": 2}, key_prefix="pfx:"), [])
        self.assertEqual(self.mc.get_multi(["a", "b"], key_prefix="pfx:"),
                         {"a": 1, "b": 2})
        self.assertEqual(self.mc.get("pfx:a"), 1)
        self.assertEqual(self.mc.delete_multi(["m1", "m2"]), 1)
        self.assertEqual(self.mc.get_multi(["m1", "m2", "m3"]), {"m3": "v3"})

    def test_add_replace(self):
        self.assertTrue(self.mc.add("k", "first"))
        self.assertFalse(self.mc.add("k", "second"))
        self.assertEqual(self.mc.get("k"), "first")
        self.assertFalse(self.mc.replace("absent", "x"))
        self.assertIsNone(self.mc.get("absent"))
        self.assertTrue(self.mc.replace("k", "third"))
        self.assertEqual(self.mc.get("k"), "third")

    def test_append_prepend(self):
        self.assertFalse(self.mc.append("absent", "x"))
        self.assertFalse(self.mc.prepend("absent", "x"))
        self.assertTrue(self.mc.set("k", "mid"))
        self.assertTrue(self.mc.append("k", "-end"))
        self.assertTrue(self.mc.prepend("k", "start-"))
        self.assertEqual(self.mc.get("k"), "start-mid-end")

    def test_gets_cas(self):
        self.assertTrue(self.mc.set("c", "v1"))
        self.assertEqual(self.mc.gets("c"), "v1")
        self.assertTrue(self.mc.cas("c", "v2"))          # unique from gets
        self.assertEqual(self.mc.get("c"), "v2")
        # a second client changes it between our gets and cas
        self.assertEqual(self.mc.gets("c"), "v2")
        other = memcache.Client([self.server.addr_str], socket_timeout=5)
        self.assertTrue(other.set("c", "theirs"))
        other.disconnect_all()
        self.assertFalse(self.mc.cas("c", "mine"))      # EXISTS
        self.assertEqual(self.mc.get("c"), "theirs")
        # cas on a key deleted after gets: NOT_FOUND -> False
        self.assertEqual(self.mc.gets("c"), "theirs")
        self.assertTrue(self.mc.delete("c"))
        self.assertFalse(self.mc.cas("c", "again"))
        self.assertIsNone(self.mc.get("c"))

    def test_delete(self):
        self.assertTrue(self.mc.set("d", 1))
        self.assertEqual(self.mc.delete("d"), 1)
        # python-memcached reports NOT_FOUND as success too
        self.assertEqual(self.mc.delete("d"), 1)
        self.assertIsNone(self.mc.get("d"))

    def test_incr_decr(self):
        self.assertIsNone(self.mc.incr("ctr"))          # NOT_FOUND
        self.assertTrue(self.mc.set("ctr", "10"))
        self.assertEqual(self.mc.incr("ctr"), 11)
        self.assertEqual(self.mc.incr("ctr", 9), 20)
        self.assertEqual(self.mc.decr("ctr", 5), 15)
        self.assertEqual(self.mc.decr("ctr", 100), 0)
        self.assertEqual(self.mc.incr("ctr", 2 ** 64 - 1), 2 ** 64 - 1)
        self.assertEqual(self.mc.incr("ctr", 1), 0)     # wraps
        # the value is rewritten in place, space-padded to its old length
        # (20 digits), and the client then returns it as a str
        self.assertEqual(self.mc.get("ctr"), "0" + " " * 19)
        self.assertEqual(self.mc.incr("ctr", 5), 5)

    def test_touch(self):
        self.assertTrue(self.mc.set("t", "v", time=1000))
        self.assertTrue(self.mc.touch("t", 0))
        self.assertFalse(self.mc.touch("absent", 10))
        self.assertTrue(self.mc.touch("t", -1))         # expires now
        self.assertIsNone(self.mc.get("t"))

    def test_ttl_expiry(self):
        self.assertTrue(self.mc.set("ttl", "v", time=1))
        self.assertTrue(self.mc.set("keep", "v", time=1000))
        self.assertTrue(harness.wait_until(lambda: self.mc.get("ttl") is None, 8, 0.1))
        self.assertEqual(self.mc.get("keep"), "v")

    def test_flush_all(self):
        self.assertTrue(self.mc.set("f1", 1))
        self.assertTrue(self.mc.set("f2", 2))
        self.mc.flush_all()
        self.assertEqual(self.mc.get_multi(["f1", "f2"]), {})
        self.assertTrue(self.mc.set("f3", 3))
        self.assertEqual(self.mc.get("f3"), 3)

    def test_get_stats(self):
        before = self.mc.get_stats()[0][1]
        self.assertTrue(self.mc.set("s1", "x"))
        self.assertEqual(self.mc.get("s1"), "x")
        self.assertIsNone(self.mc.get("nope"))
        stats = self.mc.get_stats()
        self.assertEqual(len(stats), 1)
        name, st = stats[0]
        self.assertIn("127.0.0.1:%d" % self.server.port, name)
        self.assertEqual(int(st["get_hits"]) - int(before["get_hits"]), 1)
        self.assertEqual(int(st["get_misses"]) - int(before["get_misses"]), 1)
        self.assertEqual(int(st["cmd_set"]) - int(before["cmd_set"]), 1)
        self.assertIn("version", st)
        settings = self.mc.get_stats("settings")[0][1]
        self.assertIn("maxbytes", settings)

    def test_key_too_long_rejected_by_client(self):
        with self.assertRaises(memcache.Client.MemcachedKeyLengthError):
            self.mc.set("k" * 251, "v")
        self.assertTrue(self.mc.set("k" * 250, "v"))
        self.assertEqual(self.mc.get("k" * 250), "v")

    def test_large_value(self):
        val = "x" * (900 * 1024)
        self.assertTrue(self.mc.set("big", val))
        self.assertEqual(self.mc.get("big"), val)


if __name__ == "__main__":
    harness.main()
