#!/usr/bin/python3
"""Model-based durability test: random operations, kill -9, torn tails.

One cairn node (--fsync always, --wal-segment-size 64k), one client, a small
key space (8 keys).  A seeded RNG (--seed N or env CAIRN_TEST_SEED; printed)
picks operations: set add replace append prepend incr decr delete touch cas
(with the right or a wrong unique, from gets) and flush_all.  A model holds
what was ACKNOWLEDGED: every reply is checked against the model's prediction
and the model advances.

Each round ends with a kill -9 at a random point: the client sends 0..4
further writes (pipelined, no reply read: "in flight"), then the process is
killed.  In-flight writes are UNCERTAIN: the node applies requests of one
connection in order and its WAL is replayed as a prefix, so after restart
the contents must equal the model with the first i in-flight writes applied,
for some i in 0..n.  (In-flight batches use only set/add/replace/append/
prepend/delete/touch/flush_all, whose effect the model knows.)

Tail damage between runs, and why it never destroys acknowledged data:
with --fsync always a reply is sent only after the record is written and
fsynced, and only this test's client writes (no TTLs expire, 8 small keys
never evict).  So right after the last acknowledged reply and BEFORE the
in-flight writes are sent, the test records the newest WAL segment and its
size (ack_size): every acknowledged record lies at or before that point.
Bytes after ack_size in that segment, and every byte of segments created
later, belong to in-flight writes only.  The damage is one of:
  - append garbage (random bytes, or a copy of a valid record header with a
    short body: a torn write) to the end of the newest segment;
  - truncate the recorded segment at a random offset >= ack_size, or a
    later segment at a random offset >= its 16-byte header;
  - flip a bit at a random offset >= ack_size of the recorded segment (or
    in a later segment's records).
  - flip a bit anywhere in a closed segment whose every record the LMDB
    checkpoint already holds (the segment's last LSN, i.e. the next
    segment's first LSN - 1, <= checkpoint_lsn read from `stats
    persistence` before the kill): recovery does not need those bytes.
Damage of the truncate/flip kinds may cut in-flight writes, which is allowed (they are
uncertain).  After the restart every key must match an allowed state; the
uncertainty is then resolved to the state found, and the run goes on, so a
node that loses writes acknowledged AFTER a damaged recovery fails at the
next restart.

Bounded by --seconds N (default 35) and --rounds N (default 1000).
Run: /usr/bin/python3 tests/durability/test_model.py --bin build/cairn [--seed N]
     [--seconds N] [--rounds N]
"""

import os
import random
import re
import sys
import time
import unittest

import durable
from durable import harness

KEYS = [b"m%d" % i for i in range(8)]
SEED = None
SECONDS = 35.0
ROUNDS = 1000
HDR = 16


def parse_own_args():
    global SEED, SECONDS, ROUNDS
    argv, rest, i = sys.argv, [], 0
    while i < len(argv):
        a = argv[i]
        for name in ("--seed", "--seconds", "--rounds"):
            if a == name and i + 1 < len(argv):
                val, i = argv[i + 1], i + 2
                break
            if a.startswith(name + "="):
                val, i = a.split("=", 1)[1], i + 1
                break
        else:
            rest.append(a)
            i += 1
            continue
        if name == "--seed":
            SEED = int(val)
        elif name == "--seconds":
            SECONDS = float(val)
        else:
            ROUNDS = int(val)
    sys.argv[:] = rest
    if SEED is None:
        SEED = int(os.environ.get("CAIRN_TEST_SEED", "0") or 0) or int(time.time())


# -- the model --------------------------------------------------------------
# state: {key: (value bytes, flags)}

def apply(state, op):
    """Apply a write op to a copy of state; return (new_state, expected reply)."""
    st = dict(state)
    kind = op[0]
    if kind == "flush_all":
        return {}, b"OK\r\n"
    k = op[1]
    if kind in ("set", "add", "replace"):
        _, _, v, f = op
        if (kind == "add" and k in st) or (kind == "replace" and k not in st):
            return st, b"NOT_STORED\r\n"
        st[k] = (v, f)
        return st, b"STORED\r\n"
    if kind in ("append", "prepend"):
        _, _, v, _f = op
        if k not in st:
            return st, b"NOT_STORED\r\n"
        old, f = st[k]
        st[k] = (old + v if kind == "append" else v + old, f)
        return st, b"STORED\r\n"
    if kind == "delete":
        if k not in st:
            return st, b"NOT_FOUND\r\n"
        del st[k]
        return st, b"DELETED\r\n"
    if kind == "touch":
        return st, (b"TOUCHED\r\n" if k in st else b"NOT_FOUND\r\n")
    raise ValueError(kind)


def encode(op):
    kind = op[0]
    if kind == "flush_all":
        return b"flush_all\r\n"
    k = op[1]
    if kind in ("set", "add", "replace", "append", "prepend"):
        _, _, v, f = op
        return b"%s %s %d 0 %d\r\n%s\r\n" % (kind.encode(), k, f, len(v), v)
    if kind == "delete":
        return b"delete %s\r\n" % k
    if kind == "touch":
        return b"touch %s 86400\r\n" % k
    raise ValueError(kind)


class Model(unittest.TestCase):
    def setUp(self):
        self.node = None

    def tearDown(self):
        if self.node is not None:
            self.node.cleanup()

    # -- helpers ------------------------------------------------------------
    def rand_op(self, rng, write_only=False):
        kinds = ["set", "add", "replace", "append", "prepend", "delete", "touch", "flush_all"]
        if not write_only:
            kinds += ["incr", "decr", "cas", "cas", "get"]
        w = {"set": 6, "flush_all": 0.3}
        kind = rng.choices(kinds, [w.get(x, 1.5) for x in kinds])[0]
        k = rng.choice(KEYS)
        if kind in ("set", "add", "replace"):
            v = (b"%d" % rng.randrange(1000)) if rng.random() < 0.4 else \
                b"v%d-" % rng.randrange(10 ** 6) * rng.randrange(1, 30)
            return (kind, k, v, rng.randrange(1 << 16))
        if kind in ("append", "prepend"):
            return (kind, k, b"%s%d" % (b"ap" if kind == "append" else b"pp", rng.randrange(100)), 0)
        if kind in ("incr", "decr"):
            return (kind, k, rng.randrange(1, 1000))
        if kind == "cas":
            return (kind, k, rng.random() < 0.7)
        if kind == "flush_all":
            return (kind,)
        return (kind, k)

    def gets_all(self, c):
        return {k: (v, f) for k, (v, f, _cas) in durable.get_many(c, KEYS).items()}

    def run_op(self, c, op, label):
        kind = op[0]
        if kind == "get":
            got = c.get(op[1])
            want = self.model.get(op[1])
            self.assertEqual(got, want[0] if want else None, "%s: get %r" % (label, op[1]))
            return
        if kind in ("incr", "decr"):
            _, k, d = op
            r = c.request(b"%s %s %d\r\n" % (kind.encode(), k, d))
            if k not in self.model:
                self.assertEqual(r, b"NOT_FOUND\r\n", "%s: %r" % (label, op))
                return
            old, f = self.model[k]
            # memcached's safe_strtoull: leading digits followed by
            # whitespace or the end of the value
            m = re.match(rb"\s*(\d+)", old)
            n = None
            if m and (m.end() == len(old) or old[m.end():m.end() + 1] in b" \t\r\n\v\f"):
                n = int(m.group(1))
                if n >= 1 << 64:
                    n = None
            if n is None:
                self.assertTrue(r.startswith(b"CLIENT_ERROR"), "%s: %r on %r -> %r"
                                % (label, op, old, r))
                return
            want = (n + d) % (1 << 64) if kind == "incr" else max(0, n - d)
            self.assertEqual(r, b"%d\r\n" % want, "%s: %r on %r" % (label, op, old))
            # memcached may pad a shorter number with spaces: take the stored
            # bytes, after checking they are the number
            stored = c.get(k)
            self.assertEqual(int(stored.strip()), want, "%s: stored %r" % (label, stored))
            self.model[k] = (stored, f)
            return
        if kind == "cas":
            _, k, right = op
            g = c.gets(k)
            if k not in self.model:
                self.assertIsNone(g, "%s: gets %r" % (label, k))
                r = c.storage("cas", k, b"c", 1, 0, extra=b" 12345")
                self.assertEqual(r, b"NOT_FOUND\r\n", "%s: cas on a missing key" % label)
                return
            self.assertIsNotNone(g, "%s: gets %r missing" % (label, k))
            self.assertEqual(g[0], self.model[k][0], "%s: gets %r" % (label, k))
            unique = g[1] if right else g[1] + 1000003
            v = b"cas%d" % unique
            r = c.storage("cas", k, v, 7, 0, extra=b" %d" % unique)
            if right:
                self.assertEqual(r, b"STORED\r\n", "%s: cas with the right unique" % label)
                self.model[k] = (v, 7)
            else:
                self.assertEqual(r, b"EXISTS\r\n", "%s: cas with a wrong unique" % label)
            return
        new, want = apply(self.model, op)
        r = c.request(encode(op))
        self.assertEqual(r, want, "%s: %r" % (label, op[:2]))
        self.model = new

    def damage(self, rng, mark):
        """Damage only bytes past the acknowledged data (see the docstring).
        Returns a description."""
        segs = self.node.wal_segments()
        if not segs:
            return "no segments"
        rec_name, ack_size = mark
        newest = segs[-1]
        later = [s for s in segs if os.path.basename(s) > rec_name]
        choice = rng.choice(["garbage", "torn", "truncate", "flip", "flip-checkpointed"])
        if choice == "flip-checkpointed":
            covered = [segs[i] for i in range(len(segs) - 1)
                       if int(os.path.basename(segs[i + 1])[:16], 16) - 1 <= self.ckpt_lsn]
            if not covered:
                choice = "flip"
            else:
                target = rng.choice(covered)
                size = os.path.getsize(target)
                pos = rng.randrange(HDR, size)
                with open(target, "r+b") as f:
                    f.seek(pos)
                    b = f.read(1)
                    f.seek(pos)
                    f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))
                return ("flip a bit at %d of %s, a segment the checkpoint covers (checkpoint_lsn "
                        "%d)" % (pos, os.path.basename(target), self.ckpt_lsn))
        with open(newest, "rb") as f:
            data = f.read()
        if choice in ("truncate", "flip"):
            if later:
                target = rng.choice(later)
                floor = HDR
            else:
                target = os.path.join(os.path.dirname(newest), rec_name)
                floor = ack_size
            size = os.path.getsize(target)
            if size <= floor:
                choice = "garbage"
            elif choice == "truncate":
                cut = rng.randrange(floor, size)
                with open(target, "r+b") as f:
                    f.truncate(cut)
                return "truncate %s from %d to %d (floor %d)" % (os.path.basename(target), size,
                                                                 cut, floor)
            else:
                pos = rng.randrange(floor, size)
                with open(target, "r+b") as f:
                    f.seek(pos)
                    b = f.read(1)
                    f.seek(pos)
                    f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))
                return "flip a bit at %d of %s (floor %d, size %d)" % (pos, os.path.basename(target),
                                                                       floor, size)
        if choice == "torn":
            recs = durable.wal_records_in(data)
            if recs:
                s, e, _ = rng.choice(recs)
                tail = data[s:s + rng.randrange(1, e - s)]
            else:
                tail = b"\x40\x00\x00\x00"
        else:
            tail = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        with open(newest, "ab") as f:
            f.write(tail)
        return "%s: appended %d bytes to %s" % (choice, len(tail), os.path.basename(newest))

    def newest_mark(self):
        segs = self.node.wal_segments()
        return (os.path.basename(segs[-1]), os.path.getsize(segs[-1])) if segs else ("", 0)

    # -- the test -------------------------------------------------------------
    def test_model(self):
        print("test_model seed %d seconds %g rounds %d (repeat with --seed %d)"
              % (SEED, SECONDS, ROUNDS, SEED), flush=True)
        rng = random.Random(SEED)
        self.node = durable.Node(["--fsync", "always", "--wal-segment-size", "64k"])
        self.node.start()
        self.model = {}
        deadline = time.monotonic() + SECONDS
        nops = ndamage = 0
        kinds = {}
        for rnd in range(ROUNDS):
            if time.monotonic() > deadline:
                break
            with self.node.conn() as c:
                for i in range(rng.randrange(5, 150)):
                    op = self.rand_op(rng)
                    self.run_op(c, op, "round %d op %d" % (rnd, i))
                    nops += 1
                # everything so far is acknowledged: mark the WAL, then send
                # the in-flight writes and kill -9 without reading replies
                mark = self.newest_mark()
                if rng.random() < 0.25 and len(self.node.wal_segments()) > 1:
                    # let the checkpointer fold the closed segments (bounded,
                    # not asserted), so that "flip-checkpointed" has targets
                    first = int(mark[0][:16], 16)
                    harness.wait_until(lambda: self.node.pstats()["checkpoint_lsn"] >= first - 1,
                                       5, 0.05)
                self.ckpt_lsn = self.node.pstats()["checkpoint_lsn"]
                inflight = [self.rand_op(rng, write_only=True) for _ in range(rng.randrange(0, 5))]
                if inflight:
                    c.send(b"".join(encode(op) for op in inflight))
                    # sometimes give the node time to handle them (bounded)
                    if rng.random() < 0.5:
                        want = len(inflight)
                        harness.wait_until(lambda: c.buf.count(b"\r\n") >= want or
                                           self._peek(c), 0.5, 0.01)
                self.node.kill9()
            desc = "none"
            if rng.random() < 0.7:
                desc = self.damage(rng, mark)
                ndamage += 1
                kind = desc.split(" ")[0].rstrip(":")
                kinds[kind] = kinds.get(kind, 0) + 1
            self.node.start()
            allowed = [self.model]
            for op in inflight:
                allowed.append(apply(allowed[-1], op)[0])
            try:
                with self.node.conn() as c:
                    got = self.gets_all(c)
            except (OSError, harness.ConnClosed) as e:
                self.fail("round %d (seed %d): after kill -9, damage [%s] and restart the node "
                          "did not answer (%s); its log:\n%s"
                          % (rnd, SEED, desc, e, self.node.server.stderr_text()[-4000:]))
            match = [i for i, st in enumerate(allowed) if st == got]
            if not match:
                diff = {k: (self.model.get(k), got.get(k)) for k in KEYS
                        if self.model.get(k) != got.get(k)}
                self.fail("round %d (seed %d): after kill -9, damage [%s] and restart the "
                          "contents match no allowed state (%d in-flight writes %r); "
                          "key: (acknowledged model, found): %r"
                          % (rnd, SEED, desc, len(inflight), [op[:2] for op in inflight], diff))
            self.model = allowed[match[-1]]
        print("seed %d: %d rounds, %d operations, %d damaged tails %r"
              % (SEED, rnd + 1, nops, ndamage, sorted(kinds.items())), flush=True)

    @staticmethod
    def _peek(c):
        """Read what has arrived (non-blocking-ish); never raises."""
        try:
            c.sock.settimeout(0.01)
            chunk = c.sock.recv(65536)
            if chunk:
                c.buf += chunk
        except OSError:
            pass
        return False


if __name__ == "__main__":
    parse_own_args()
    durable.main()
