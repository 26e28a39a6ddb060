#!/usr/bin/python3
# Scenario: listing keys, as libmemcached's memcdump and memcached's admin
# tools do it: `stats cachedump <class> <limit>` (what memcdump 1.1 sends,
# for classes 0..63) and `lru_crawler metadump <all|hash|classes>`, plus the
# other `lru_crawler` subcommands.
#
# Every scenario runs against the server under test (--bin) and, side by
# side, against the reference memcached (--memcached), each started fresh on
# 127.0.0.1 and a free port, and the replies are compared.  What is
# normalised before comparing, and why:
#   - line order: memcached lists cachedump newest first and metadump in LRU
#     (or hash) order; cairn lists in its hash table's order.  Lines are
#     sorted.
#   - times: a cachedump exptime and metadump's exp= (absolute unix times)
#     and la= (last access) depend on the second each server ran the
#     command.  Each is first checked to lie within the seconds the test
#     spent storing (plus the TTL), then replaced by a placeholder.
#   - nothing else: keys, value sizes, CAS uniques (both number them from 1
#     on a fresh server, one per store), fetch=, cls= and size= must match
#     exactly.
# The reference runs with -o no_lru_maintainer: memcached's segmented LRU
# keeps new items in HOT/WARM for a while, and cachedump lists only COLD,
# so without it memcached's answer depends on its background thread's
# timing.  With one LRU per class every item is listed at once, as cairn
# (one LRU) lists it.
#
# Where cairn deliberately differs (docs/protocol.md): it leaves out expired
# and flushed items that memcached still lists until they are reclaimed (for
# memcached the test reclaims them with a get first), `lru_crawler disable`
# and `enable` on a node whose sweeper cannot be switched at run time, and
# commands pipelined after a metadump (answered by cairn, held by memcached).
#
# Run: /usr/bin/python3 test_dump.py --bin PATH --memcached /usr/bin/memcached

import os
import re
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MEMCDUMP = "/usr/bin/memcdump"
REF_ARGS = ["-o", "no_lru_maintainer"]
CAP = 2 * 1024 * 1024             # memcached's cachedump reply cap
BIG_TIMEOUT = 60.0 * harness.SLOWDOWN

# Small items (memcached puts them all in slab class 1, where cairn reports
# every item): key, value, flags, ttl.  The keys need URL-encoding in
# metadump; memcdump prints keys up to their first non-isgraph() byte.
ITEMS = [
    (b"plain", b"x", 0, 0),
    (b"flagged", b"yy", 7, 0),
    (b"ttl", b"abc", 0, 1000),
    (b"a%b", b"1", 0, 0),
    (b"a/b", b"1", 0, 0),
    (b"a+b", b"1", 0, 0),
    (b"a=b&c", b"1", 0, 0),
    (b"k:1", b"1", 0, 0),
    (b"q?r#s", b"1", 0, 0),
    (b"a\"b'c", b"1", 0, 0),
    (b"a~b-c_d.e", b"1", 0, 0),
    (b"<a>\\b|", b"1", 0, 0),
    (b"(x)!*@$,;", b"1", 0, 0),
    (b"\xc3\xa9t\xc3\xa9", b"1", 0, 0),
    (b"q\x01r", b"1", 0, 0),
    (b"d\x7fe", b"1", 0, 0),
]

ITEM_RE = re.compile(rb"^ITEM (\S+) \[(\d+) b; (\d+) s\]$")
META_RE = re.compile(rb"^key=(\S+) exp=(-1|\d+) la=(\d+) cas=(\d+) fetch=(yes|no) "
                     rb"cls=(\d+) size=(\d+)$")


def memcdump_name(key):
    """What memcdump prints for a key: it stops at the first byte that is
    not isgraph() (bytes >= 0x80 included), against memcached too."""
    out = bytearray()
    for b in key:
        if not 0x21 <= b <= 0x7e:
            break
        out.append(b)
    return bytes(out)


def uri_encode(key):
    return b"".join(bytes([b]) if (chr(b).isascii() and chr(b).isalnum()) or b in b"-._~"
                    else b"%%%02X" % b for b in key)


def store_items(conn, items=ITEMS):
    for key, value, flags, ttl in items:
        reply = conn.storage("set", key, value, flags, ttl)
        assert reply == b"STORED\r\n", (key, reply)


def run_memcdump(srv):
    p = subprocess.run([MEMCDUMP, "--servers=%s" % srv.addr_str],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=BIG_TIMEOUT)
    if p.returncode != 0:
        raise AssertionError("memcdump against %s: exit %d, %r"
                             % (srv.bin, p.returncode, p.stderr[-500:]))
    lines = p.stdout.split(b"\n")
    if lines[-1] == b"":
        lines.pop()             # after the last newline
    return sorted(lines)


def read_reply(conn, timeout):
    """Read one lru_crawler reply: lines up to "END\r\n" (a metadump), or a
    single status line.  Only the end is examined on each read: a metadump
    of many items is megabytes long."""
    deadline = time.monotonic() + timeout
    data = bytearray(conn.buf)
    conn.buf = b""
    while True:
        if data.endswith(b"END\r\n") and (len(data) == 5 or data[-6:-5] == b"\n"):
            return bytes(data)
        if data[:1].isupper() and data.find(b"\n") == len(data) - 1 and data.endswith(b"\r\n"):
            return bytes(data)
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out; have %r" % bytes(data[-200:]))
        conn.sock.settimeout(left)
        chunk = conn.sock.recv(1 << 20)
        if not chunk:
            raise harness.ConnClosed("connection closed; have %r" % bytes(data[-200:]))
        data += chunk


def crawler_request(srv, line, timeout=None):
    """Send one lru_crawler line on a fresh connection and read its whole
    reply.  memcached hands a metadump's connection to its crawler thread,
    which holds commands pipelined after it: so no sentinel, one request per
    connection.  A memcached crawler still finishing the last request
    answers BUSY: retried (bounded)."""
    timeout = timeout or harness.DEFAULT_TIMEOUT
    deadline = time.monotonic() + timeout
    while True:
        with srv.conn() as c:
            c.send(line)
            reply = read_reply(c, timeout)
        if not reply.startswith(b"BUSY") or time.monotonic() > deadline:
            return reply
        time.sleep(0.05)


def split_reply(reply):
    """A dump reply without its END (which is checked)."""
    assert reply.endswith(b"END\r\n"), reply[-200:]
    return reply[:-5]


def normalise_cachedump(reply, t0, t1):
    """Sorted ITEM lines with the exptime (checked against the TTLs of
    ITEMS stored between t0 and t1) replaced by EXP."""
    body = split_reply(reply)
    lines = body.split(b"\r\n")[:-1] if body else []
    assert body == b"".join(l + b"\r\n" for l in lines), body[-200:]
    ttls = {k: ttl for k, _, _, ttl in ITEMS}
    out = []
    for line in lines:
        m = ITEM_RE.match(line)
        assert m, line
        exp = int(m.group(3))
        ttl = ttls.get(m.group(1), 0)
        if ttl:
            assert t0 + ttl - 1 <= exp <= t1 + ttl + 1, (line, t0, t1)
            line = line[:m.start(3)] + b"EXP" + line[m.end(3):]
        else:
            assert exp == 0, line
        out.append(line)
    return sorted(out)


def normalise_metadump(reply, t0, t1):
    """Sorted metadump lines with exp= and la= (checked against the times
    the items were stored) replaced by placeholders."""
    body = split_reply(reply)
    assert b"\r" not in body, "metadump lines end in \\n alone: %r" % body[:200]
    lines = body.split(b"\n")[:-1] if body else []
    assert body == b"".join(l + b"\n" for l in lines), body[-200:]
    ttls = {uri_encode(k): ttl for k, _, _, ttl in ITEMS}
    out = []
    for line in lines:
        m = META_RE.match(line)
        assert m, line
        la, exp = int(m.group(3)), int(m.group(2))
        assert t0 - 1 <= la <= t1 + 1, (line, t0, t1)
        ttl = ttls.get(m.group(1), 0)
        if ttl:
            assert t0 + ttl - 1 <= exp <= t1 + ttl + 1, (line, t0, t1)
        else:
            assert exp == -1, line
        line = (line[:m.start(2)] + (b"EXP" if ttl else b"-1") + line[m.end(2):m.start(3)]
                + b"LA" + line[m.end(3):])
        out.append(line)
    return sorted(out)


class PairCase(unittest.TestCase):
    """Each test gets the server under test and the reference memcached."""

    subject_args = ()
    ref_args = ()

    def start_pair(self, subject_args=None, ref_args=None):
        args = list(self.subject_args if subject_args is None else subject_args)
        if harness.is_memcached():
            args = REF_ARGS + args      # memcached as the subject: same footing
        subject = harness.Server(args=args, external=False)
        ref = harness.Server(bin=harness.memcached_bin(), external=False,
                             args=REF_ARGS + list(self.ref_args if ref_args is None
                                                  else ref_args))
        subject.start()
        self.addCleanup(subject.stop)
        ref.start()
        self.addCleanup(ref.stop)
        return subject, ref

    def setUp(self):
        self.subject_is_memcached = harness.is_memcached()

    def populate(self, *servers):
        """Store ITEMS on each server, then read one key and touch another
        (fetch=yes).  Returns the unix seconds around it."""
        t0 = int(time.time())
        for srv in servers:
            with srv.conn() as c:
                store_items(c)
                self.assertEqual(c.get("plain"), b"x")
                self.assertEqual(c.request(b"touch a/b 0\r\n"), b"TOUCHED\r\n")
        return t0, int(time.time()) + 1


class Memcdump(PairCase):
    def test_memcdump_lists_exactly_the_stored_keys(self):
        subject, ref = self.start_pair()
        self.populate(subject, ref)
        want = sorted(memcdump_name(k) for k, _, _, _ in ITEMS)
        got_ref = run_memcdump(ref)
        self.assertEqual(got_ref, want, "the reference memcached disagrees with the test")
        self.assertEqual(run_memcdump(subject), want)

    def test_deleted_and_expired_keys_are_not_listed(self):
        subject, ref = self.start_pair()
        keep = [b"keep%d" % i for i in range(5)]
        gone = [b"del%d" % i for i in range(3)]
        dead = [b"dead%d" % i for i in range(3)]      # stored already expired
        ttl = [b"ttl%d" % i for i in range(2)]        # expire after 1 s
        for srv in (subject, ref):
            with srv.conn() as c:
                for k in keep + gone:
                    self.assertEqual(c.set(k, b"v"), b"STORED\r\n")
                for k in dead:
                    self.assertEqual(c.set(k, b"v", exptime=-1), b"STORED\r\n")
                for k in ttl:
                    self.assertEqual(c.set(k, b"v", exptime=1), b"STORED\r\n")
                for k in gone:
                    self.assertEqual(c.request(b"delete " + k + b"\r\n"), b"DELETED\r\n")
        want = sorted(keep)

        def listing(srv, reclaim):
            if reclaim:
                with srv.conn() as c:
                    for k in dead + ttl:
                        c.get(k)
            return run_memcdump(srv) == want

        # cairn: no read needed, an expired item is not listed.  memcached
        # lists an expired item until it is reclaimed: a get reclaims it.
        # Poll until the 1 s TTLs have run out.
        for srv, reclaim in ((subject, self.subject_is_memcached), (ref, True)):
            self.assertTrue(harness.wait_until(lambda: listing(srv, reclaim),
                                               10.0 * harness.SLOWDOWN, interval=0.2),
                            "%s: memcdump lists %r, want %r" % (srv.bin, run_memcdump(srv), want))


class Cachedump(PairCase):
    def test_cachedump_matches_memcached(self):
        subject, ref = self.start_pair()
        t0, t1 = self.populate(subject, ref)
        replies = {}
        for name, srv in (("subject", subject), ("memcached", ref)):
            with srv.conn() as c:
                replies[name] = c.exchange(b"stats cachedump 1 0\r\n")
        want = normalise_cachedump(replies["memcached"], t0, t1)
        self.assertEqual(len(want), len(ITEMS))
        self.assertEqual(normalise_cachedump(replies["subject"], t0, t1), want)
        # Raw keys, not encoded: one line as memcached wrote it.
        self.assertIn(b"ITEM \xc3\xa9t\xc3\xa9 [1 b; 0 s]\r\n", replies["subject"])

    def test_cachedump_limit_and_other_classes(self):
        subject, ref = self.start_pair()
        t0, t1 = self.populate(subject, ref)
        for srv in (subject, ref):
            with srv.conn() as c:
                full = normalise_cachedump(c.exchange(b"stats cachedump 1 0\r\n"), t0, t1)
                some = normalise_cachedump(c.exchange(b"stats cachedump 1 3\r\n"), t0, t1)
                self.assertEqual(len(some), 3, srv.bin)
                self.assertTrue(set(some) <= set(full), (srv.bin, some))
                # memcached reads the ids as 32-bit: 4294967297 is class 1.
                self.assertEqual(normalise_cachedump(
                    c.exchange(b"stats cachedump 4294967297 0\r\n"), t0, t1), full)
                for cls in (b"0", b"2", b"63"):
                    self.assertEqual(c.exchange(b"stats cachedump " + cls + b" 0\r\n"),
                                     b"END\r\n", (srv.bin, cls))

    def test_cachedump_is_capped_at_2mb_and_metadump_is_not(self):
        subject, ref = self.start_pair()
        n = 90000   # 26-byte lines: 80659 fit under the cap
        for srv in (subject, ref):
            with srv.conn(timeout=BIG_TIMEOUT) as c:
                for start in range(0, n, 5000):
                    c.send(b"".join(b"set k%07d 0 0 1 noreply\r\nx\r\n" % i
                                    for i in range(start, min(n, start + 5000))))
                    c.exchange(b"")
                self.assertEqual(c.stats()["curr_items"], str(n), srv.bin)
        counts = {}
        for srv in (subject, ref):
            with srv.conn(timeout=BIG_TIMEOUT) as c:
                reply = c.exchange(b"stats cachedump 1 0\r\n", timeout=BIG_TIMEOUT)
            self.assertLess(len(reply), CAP, srv.bin)
            lines = reply[:-5].split(b"\r\n")[:-1]
            keys = set()
            for line in lines:
                m = ITEM_RE.match(line)
                self.assertTrue(m and re.match(rb"^k\d{7}$", m.group(1)), line)
                keys.add(m.group(1))
            self.assertEqual(len(keys), len(lines), "a key listed twice")
            counts[srv.bin] = (len(lines), len(reply))
            meta = crawler_request(srv, b"lru_crawler metadump all\r\n", BIG_TIMEOUT)
            self.assertEqual(meta.count(b"\n"), n + 1, "metadump of %s not complete" % srv.bin)
        self.assertEqual(counts[subject.bin], counts[ref.bin])
        self.assertEqual(counts[ref.bin][0], 80659)


class Metadump(PairCase):
    def test_metadump_matches_memcached(self):
        subject, ref = self.start_pair()
        t0, t1 = self.populate(subject, ref)
        for arg in (b"all", b"1", b"hash", b"1,2", b"01", b"4294967297"):
            line = b"lru_crawler metadump " + arg + b"\r\n"
            want = normalise_metadump(crawler_request(ref, line), t0, t1)
            self.assertEqual(len(want), len(ITEMS), arg)
            self.assertEqual(normalise_metadump(crawler_request(subject, line), t0, t1), want,
                             arg)
        for arg in (b"2", b"63", b"2,3"):
            line = b"lru_crawler metadump " + arg + b"\r\n"
            self.assertEqual(crawler_request(ref, line), b"END\r\n", arg)
            self.assertEqual(crawler_request(subject, line), b"END\r\n", arg)

    def test_metadump_encodes_keys_as_memcached(self):
        subject, ref = self.start_pair()
        self.populate(subject, ref)
        for srv in (ref, subject):
            reply = crawler_request(srv, b"lru_crawler metadump all\r\n")
            keys = sorted(m.group(1) for m in re.finditer(rb"(?m)^key=(\S+) ", reply))
            self.assertEqual(keys, sorted(uri_encode(k) for k, _, _, _ in ITEMS), srv.bin)
            for enc in (b"key=a%25b ", b"key=%C3%A9t%C3%A9 ", b"key=q%01r ", b"key=d%7Fe ",
                        b"key=a~b-c_d.e ", b"key=a%22b%27c "):
                self.assertIn(enc, reply, srv.bin)


# Requests whose replies must be byte-identical, on an empty server.  All
# are answered synchronously by memcached too (no crawl is started), so a
# version sentinel proves nothing else was sent.
SAME_REPLY = [
    b"stats cachedump", b"stats cachedump 1", b"stats cachedump x 0", b"stats cachedump 1 x",
    b"stats cachedump -1 0", b"stats cachedump 1 -1", b"stats cachedump 1 1x",
    b"stats cachedump 1 18446744073709551616", b"stats cachedump 64 0",
    b"stats cachedump 200 0", b"stats cachedump 4294967295 0", b"stats cachedump 1 0",
    b"stats cachedump 0 0", b"stats cachedump 63 0", b"stats cachedump 1 0 extra",
    b"stats cachedump 1 +1", b"stats cachedump 1 -0", b"stats  cachedump  1  1 ",
    b"lru_crawler", b"lru_crawler metadump", b"lru_crawler metadump all extra",
    b"lru_crawler bogus", b"lru_crawler bogus x", b"lru_crawler mgdump all",
    b"lru_crawler mgdump hash", b"lru_crawler ENABLE", b"lru_crawler enable extra",
    b"lru_crawler disable extra",
    b"lru_crawler metadump 0", b"lru_crawler metadump 64", b"lru_crawler metadump 200",
    b"lru_crawler metadump x", b"lru_crawler metadump all,1", b"lru_crawler metadump 1,all",
    b"lru_crawler metadump ALL", b"lru_crawler metadump 2,x", b"lru_crawler metadump 1,64",
    b"lru_crawler metadump -1",
    b"lru_crawler crawl 0", b"lru_crawler crawl 64", b"lru_crawler crawl x",
    b"lru_crawler crawl -1", b"lru_crawler crawl 1,0", b"lru_crawler crawl hash",
    b"lru_crawler crawl", b"lru_crawler crawl all extra",
    b"lru_crawler sleep x", b"lru_crawler sleep -1", b"lru_crawler sleep 1x",
    b"lru_crawler sleep 18446744073709551616", b"lru_crawler sleep 1000001",
    b"lru_crawler sleep 5000000000", b"lru_crawler sleep", b"lru_crawler sleep 1 extra",
    b"lru_crawler sleep 4294967296", b"lru_crawler sleep 1000000", b"lru_crawler sleep 0",
    b"lru_crawler tocrawl x", b"lru_crawler tocrawl -1", b"lru_crawler tocrawl",
    b"lru_crawler tocrawl 18446744073709551616", b"lru_crawler tocrawl 4294967296",
    b"lru_crawler tocrawl 10",
    # memcached's own answer while its crawler runs (it always does here).
    b"lru_crawler enable",
    # Leave the reference's crawler as it was (defaults: 100 us, no cap).
    b"lru_crawler sleep 100", b"lru_crawler tocrawl 0",
]

# Requests that start a crawl on memcached (a request while one runs is
# answered BUSY: crawler_request retries), or wedge it: after NOTSTARTED,
# memcached 1.6.18 answers every later crawl with "ERROR an unknown error
# happened", so NOTSTARTED comes last, once per fresh server.
CRAWL_GROUPS = [
    [b"lru_crawler crawl all", b"lru_crawler crawl 1,2,63", b"lru_crawler crawl 01",
     b"lru_crawler crawl 1,", b"lru_crawler crawl ,1", b"lru_crawler crawl 2",
     b"lru_crawler crawl 4294967297", b"lru_crawler metadump ,"],
    [b"lru_crawler crawl ,"],
]


class Replies(PairCase):
    def exchange_all(self, srv, requests):
        with srv.conn() as c:
            return [c.exchange(r + b"\r\n") for r in requests]

    def test_error_and_admin_replies_match_memcached(self):
        subject, ref = self.start_pair()
        want = self.exchange_all(ref, SAME_REPLY)
        got = self.exchange_all(subject, SAME_REPLY)
        for req, w, g in zip(SAME_REPLY, want, got):
            self.assertEqual(g, w, req)
        # Spot checks that the table says what the test believes.
        table = dict(zip(SAME_REPLY, want))
        self.assertEqual(table[b"stats cachedump"], b"CLIENT_ERROR bad command line\r\n")
        self.assertEqual(table[b"stats cachedump 64 0"], b"CLIENT_ERROR Illegal slab id\r\n")
        self.assertEqual(table[b"lru_crawler metadump x"], b"BADCLASS invalid class id\r\n")
        self.assertEqual(table[b"lru_crawler mgdump all"], b"ERROR\r\n")

    def test_crawl_replies_match_memcached(self):
        for group in CRAWL_GROUPS:
            subject, ref = self.start_pair()
            for req in group:
                want = crawler_request(ref, req + b"\r\n")
                self.assertNotEqual(want[:4], b"BUSY", req)
                self.assertEqual(crawler_request(subject, req + b"\r\n"), want, req)
            subject.stop()
            ref.stop()

    def test_enable_and_disable(self):
        subject, ref = self.start_pair()
        for srv in (subject, ref):
            self.assertEqual(crawler_request(srv, b"lru_crawler enable\r\n"),
                             b"ERROR failed to start lru crawler thread\r\n", srv.bin)
        self.assertEqual(crawler_request(ref, b"lru_crawler disable\r\n"), b"OK\r\n")
        if not self.subject_is_memcached:
            # The sweeper is set at start: cairn says it cannot stop it.
            self.assertEqual(crawler_request(subject, b"lru_crawler disable\r\n"),
                             b"ERROR failed to stop lru crawler thread\r\n")

    def test_replies_with_the_crawler_off_match_memcached(self):
        subject, ref = self.start_pair(["-o", "no_lru_crawler"], ["-o", "no_lru_crawler"])
        requests = [b"lru_crawler metadump all", b"lru_crawler metadump hash",
                    b"lru_crawler metadump x", b"lru_crawler crawl all", b"lru_crawler crawl x",
                    b"lru_crawler sleep 10", b"lru_crawler tocrawl x", b"stats cachedump 1 0",
                    b"lru_crawler disable"]
        want = self.exchange_all(ref, requests)
        self.assertEqual(want[0], b"CLIENT_ERROR lru crawler disabled\r\n")
        self.assertEqual(self.exchange_all(subject, requests), want)
        self.assertEqual(crawler_request(ref, b"lru_crawler enable\r\n"), b"OK\r\n")
        if not self.subject_is_memcached:
            # cairn cannot start its sweeper at run time.
            self.assertEqual(crawler_request(subject, b"lru_crawler enable\r\n"),
                             b"ERROR failed to start lru crawler thread\r\n")


class CairnOnly(unittest.TestCase):
    """Where cairn is meant to differ from memcached."""

    def setUp(self):
        if harness.is_memcached():
            self.skipTest("cairn behaviour")

    def test_dead_items_are_not_listed_before_they_are_reclaimed(self):
        # No sweeper: dead items stay linked until read (curr_items says so).
        with harness.Server(args=["-o", "no_lru_crawler"], external=False) as srv:
            with srv.conn() as c:
                self.assertEqual(c.set("live", "v"), b"STORED\r\n")
                self.assertEqual(c.set("dead", "v", exptime=-1), b"STORED\r\n")
                self.assertEqual(c.exchange(b"stats cachedump 1 0\r\n"),
                                 b"ITEM live [1 b; 0 s]\r\nEND\r\n")
                self.assertEqual(c.stats()["curr_items"], "2")
                self.assertEqual(c.request(b"flush_all\r\n"), b"OK\r\n")
                self.assertEqual(c.set("after", "v"), b"STORED\r\n")
                self.assertEqual(c.exchange(b"stats cachedump 1 0\r\n"),
                                 b"ITEM after [1 b; 0 s]\r\nEND\r\n")
                self.assertEqual(c.stats()["curr_items"], "3")
        with harness.Server(external=False) as srv:
            with srv.conn() as c:
                self.assertEqual(c.set("dead", "v", exptime=-1), b"STORED\r\n")
                self.assertEqual(c.set("live", "v"), b"STORED\r\n")
                reply = crawler_request(srv, b"lru_crawler metadump all\r\n")
                self.assertRegex(reply, rb"^key=live exp=-1 la=\d+ cas=2 fetch=no cls=1 "
                                        rb"size=64\nEND\r\n$")

    def test_commands_pipelined_around_a_metadump_are_answered(self):
        with harness.Server(external=False) as srv:
            with srv.conn() as c:
                self.assertEqual(c.set("k", "v"), b"STORED\r\n")
                # memcached answers "ERROR cannot pipeline other commands
                # before metadump" to the first (when the get's reply is
                # still queued) and holds the get after the second.
                reply = c.exchange(b"get k\r\nlru_crawler metadump all\r\n"
                                   b"lru_crawler metadump all\r\nget k\r\n")
                value = b"VALUE k 0 1\r\nv\r\nEND\r\n"
                meta = re.compile(rb"key=k exp=-1 la=\d+ cas=1 fetch=yes cls=1 size=61\nEND\r\n")
                self.assertRegex(reply, rb"^" + re.escape(value) + meta.pattern + meta.pattern
                                 + re.escape(value) + rb"$")

    def test_metadump_larger_than_the_output_limit_is_streamed(self):
        # ~9 MB of lines, over a connection's 4 MB output limit: the dump
        # goes out in slices as the client reads, and the request pipelined
        # behind it is answered after its END.
        n = 80000
        with harness.Server(external=False) as srv:
            with srv.conn(timeout=BIG_TIMEOUT) as c:
                for start in range(0, n, 5000):
                    c.send(b"".join(b"set streamed-key-%060d 0 0 1 noreply\r\nx\r\n" % i
                                    for i in range(start, min(n, start + 5000))))
                    c.exchange(b"")
                self.assertEqual(c.stats()["curr_items"], str(n))
                c.send(b"lru_crawler metadump all\r\nmn\r\n")
                reply = c.read_until(b"END\r\nMN\r\n", timeout=BIG_TIMEOUT)
        self.assertGreater(len(reply), 8 << 20)
        keys = re.findall(rb"^key=streamed-key-(\d{60}) ", reply, re.M)
        self.assertEqual(len(keys), n)
        self.assertEqual(len(set(keys)), n, "a key listed twice")

    def test_cas_is_zero_with_C(self):
        with harness.Server(args=["-C"], external=False) as srv:
            with srv.conn() as c:
                self.assertEqual(c.set("k", "v"), b"STORED\r\n")
                reply = crawler_request(srv, b"lru_crawler metadump all\r\n")
                # memcached -C: no CAS, and 8 bytes fewer per item.
                self.assertRegex(reply, rb"^key=k exp=-1 la=\d+ cas=0 fetch=no cls=1 "
                                        rb"size=53\nEND\r\n$")


if __name__ == "__main__":
    harness.main()
