#!/usr/bin/python3
# Scenario: concurrent clients.  8 client threads, each with its own
# connection, run 2000 mixed operations on their own keys (set/get/append/
# incr/decr/delete/add, with a local model of what each key must hold) and
# interleave shared updates: incr on shared counters, append on one shared
# key, and an optimistic gets/cas loop on a shared counter.  At the end
# every thread-private key must match its model exactly, each shared counter
# must equal the exact sum of all increments, the shared append key must
# have exactly one byte per append, and the cas counter must equal the
# number of successful cas operations.  The server runs with -t 4.
#
# Run: /usr/bin/python3 test_threads.py --bin PATH   (or CAIRN_BIN=PATH)

import os
import random
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

THREADS = 8
OPS = 2000
COUNTERS = [b"ctr%d" % i for i in range(4)]


class Worker(threading.Thread):
    def __init__(self, server, tid):
        super().__init__(daemon=True)
        self.server, self.tid = server, tid
        self.model = {}
        self.incr_sums = {k: 0 for k in COUNTERS}
        self.appends = 0
        self.cas_ok = 0
        self.error = None

    def check(self, got, want, what):
        if got != want:
            raise AssertionError("thread %d %s: got %r want %r" % (self.tid, what, got, want))

    def run(self):
        try:
            self._run()
        except BaseException as e:       # reported by the main thread
            self.error = "%s: %s" % (type(e).__name__, e)

    def _run(self):
        rnd = random.Random(self.tid)
        c = self.server.conn(timeout=30)
        keys = [b"t%d:k%d" % (self.tid, i) for i in range(50)]
        for op in range(OPS):
            k = rnd.choice(keys)
            r = rnd.random()
            if r < 0.25:
                v = b"%d-%d" % (self.tid, op)
                self.check(c.set(k, v), b"STORED\r\n", "set")
                self.model[k] = v
            elif r < 0.45:
                self.check(c.get(k), self.model.get(k), "get %r" % k)
            elif r < 0.52:
                got = c.storage("append", k, b"+")
                if k in self.model:
                    self.check(got, b"STORED\r\n", "append")
                    self.model[k] += b"+"
                else:
                    self.check(got, b"NOT_STORED\r\n", "append missing")
            elif r < 0.60:
                got = c.storage("add", k, b"100")
                if k in self.model:
                    self.check(got, b"NOT_STORED\r\n", "add existing")
                else:
                    self.check(got, b"STORED\r\n", "add")
                    self.model[k] = b"100"
            elif r < 0.67:
                got = c.request(b"delete " + k + b"\r\n")
                self.check(got, b"DELETED\r\n" if k in self.model else b"NOT_FOUND\r\n",
                           "delete")
                self.model.pop(k, None)
            elif r < 0.72:
                self.check(c.set(k, b"1000"), b"STORED\r\n", "set num")
                self.check(c.request(b"incr " + k + b" 5\r\n"), b"1005\r\n", "incr")
                self.check(c.request(b"decr " + k + b" 10\r\n"), b"995\r\n", "decr")
                self.model[k] = b"995 "                       # in place, padded
            elif r < 0.90:
                ctr = rnd.choice(COUNTERS)
                d = rnd.randint(1, 1000)
                got = c.request(b"incr " + ctr + b" %d\r\n" % d)
                if not got.rstrip(b"\r\n").isdigit():
                    raise AssertionError("incr %r -> %r" % (ctr, got))
                self.incr_sums[ctr] += d
            elif r < 0.95:
                self.check(c.storage("append", b"shared:append", b"%d" % (self.tid % 10)),
                           b"STORED\r\n", "shared append")
                self.appends += 1
            else:
                for _attempt in range(1000):            # bounded optimistic loop
                    val, cas = c.gets(b"shared:cas")
                    new = b"%d" % (int(val) + 1)
                    got = c.request(b"cas shared:cas 0 0 %d %d\r\n%s\r\n" % (len(new), cas, new))
                    if got == b"STORED\r\n":
                        self.cas_ok += 1
                        break
                    self.check(got, b"EXISTS\r\n", "cas")
                else:
                    raise AssertionError("cas loop never succeeded")
        # final check of this thread's private keys
        for k in keys:
            self.check(c.get(k), self.model.get(k), "final %r" % k)
        c.close()


class Threads(unittest.TestCase):
    def test_concurrent_clients_exact_results(self):
        srv = harness.Server(["-t", "4"], external=False).start()
        try:
            with srv.conn() as c:
                for k in COUNTERS:
                    self.assertEqual(c.set(k, b"0"), b"STORED\r\n")
                self.assertEqual(c.set(b"shared:append", b""), b"STORED\r\n")
                self.assertEqual(c.set(b"shared:cas", b"0"), b"STORED\r\n")
            workers = [Worker(srv, t) for t in range(THREADS)]
            for w in workers:
                w.start()
            for w in workers:
                w.join(120)
            self.assertFalse(any(w.is_alive() for w in workers), "worker hung")
            errors = [w.error for w in workers if w.error]
            self.assertEqual(errors, [])
            with srv.conn() as c:
                for k in COUNTERS:
                    want = sum(w.incr_sums[k] for w in workers)
                    self.assertGreater(want, 0)
                    self.assertEqual(int(c.get(k)), want, "counter %r" % k)
                appended = c.get(b"shared:append")
                self.assertEqual(len(appended), sum(w.appends for w in workers))
                for t in range(THREADS):
                    want = sum(w.appends for w in workers if w.tid % 10 == t)
                    self.assertEqual(appended.count(b"%d" % t), want)
                self.assertEqual(int(c.get(b"shared:cas")), sum(w.cas_ok for w in workers))
                st = c.stats()
                self.assertGreaterEqual(int(st["total_connections"]), THREADS + 2)
        finally:
            srv.stop()


if __name__ == "__main__":
    harness.main()
