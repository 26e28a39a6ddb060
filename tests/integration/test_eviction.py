#!/usr/bin/python3
# Scenario: LRU eviction under a small memory limit.  Start the server with
# -m 8 (8 MiB of item memory), then write ~30 MiB of 1000-byte values with
# no TTL while reading a handful of "hot" keys every 50 writes.  Assert:
# stats shows evictions > 0 and bytes <= limit_maxbytes; the most recently
# written keys are all present; the oldest never-read keys are (almost
# all) evicted; every hot key survived (LRU keeps what is read often); and
# the server still accepts new writes.  (memcached's minimum -m with the
# default 1 MiB -I is 2.)
#
# Run: /usr/bin/python3 test_eviction.py --bin PATH   (or CAIRN_BIN=PATH)

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MB = 8
VALUE_SIZE = 1000
TOTAL = 30000          # ~30 MB written into 8 MB
BATCH = 50
HOT = [b"hot%02d" % i for i in range(10)]


def value_for(i):
    head = b"v%d:" % i
    return head + b"." * (VALUE_SIZE - len(head))


class Eviction(unittest.TestCase):
    def test_lru_eviction(self):
        srv = harness.Server(["-m", str(MB)], external=False).start()
        try:
            c = srv.conn(timeout=20)
            for k in HOT:
                self.assertEqual(c.set(k, value_for(0)), b"STORED\r\n")
            for start in range(0, TOTAL, BATCH):
                req = b"".join(b"set key%d 0 0 %d\r\n%s\r\n" % (i, VALUE_SIZE, value_for(i))
                               for i in range(start, start + BATCH))
                c.send(req)
                self.assertEqual(c.read_exact(8 * BATCH), b"STORED\r\n" * BATCH)
                # read the hot keys after every batch of BATCH writes
                c.send(b"get " + b" ".join(HOT) + b"\r\n")
                got = c.read_until(b"END\r\n")
                self.assertEqual(got.count(b"VALUE "), len(HOT),
                                 "hot key missing after %d writes" % (start + BATCH))

            st = c.stats()
            print("stats: evictions=%s bytes=%s curr_items=%s" % (
                st["evictions"], st["bytes"], st["curr_items"]), file=sys.stderr)
            self.assertGreater(int(st["evictions"]), 0)
            self.assertEqual(int(st["limit_maxbytes"]), MB * 1024 * 1024)
            self.assertLessEqual(int(st["bytes"]), int(st["limit_maxbytes"]))
            self.assertLess(int(st["curr_items"]), TOTAL)

            # newest keys present with the right values
            newest = range(TOTAL - 300, TOTAL)
            for i in newest:
                self.assertEqual(c.get(b"key%d" % i), value_for(i), "key%d lost" % i)
            # oldest never-read keys are gone (allow 5% slack)
            c.send(b"get " + b" ".join(b"key%d" % i for i in range(1000)) + b"\r\n")
            hits = c.read_until(b"END\r\n").count(b"VALUE ")
            self.assertLessEqual(hits, 50, "%d of the 1000 oldest keys survived" % hits)
            # hot keys all survived
            for k in HOT:
                self.assertEqual(c.get(k), value_for(0), "hot key %r evicted" % k)
            # still accepting writes
            self.assertEqual(c.set("after", "ok"), b"STORED\r\n")
            self.assertEqual(c.get("after"), b"ok")
            c.close()
        finally:
            srv.stop()


if __name__ == "__main__":
    harness.main()
