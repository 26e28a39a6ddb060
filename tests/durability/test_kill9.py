#!/usr/bin/python3
# Durability under kill -9 with --fsync always: a reply to a write is sent
# only after its record is fsynced, so every acknowledged write must survive
# a SIGKILL at any moment.
#
# Scenario (ROUNDS rounds on ONE data directory, --wal-segment-size 64k so
# segments rotate and the checkpointer folds them into LMDB between rounds):
#   WRITERS threads, each with its own keys and its own connection, do
#   random set / incr / delete / append and record every acknowledged reply
#   (STORED / DELETED / NOT_FOUND / the number).  Once enough writes are
#   acknowledged, the server is killed with SIGKILL mid-stream; the writers
#   see the connection die.  It is restarted on the same directory and every
#   key is read back: it must hold its latest acknowledged value, except that
#   the one write each writer had in flight (sent, not acknowledged) may or
#   may not have happened.  What was read becomes the model for the next
#   round.  `stats persistence` recovered_items must equal the number of keys
#   found (no TTLs, no evictions here).
#
# Run: /usr/bin/python3 tests/durability/test_kill9.py --bin build/cairn

import random
import socket
import threading
import unittest

import durable
from durable import harness

ROUNDS = 5
WRITERS = 4
KEYS_PER_WRITER = 40
ACKS_PER_ROUND = 600        # kill once this many writes are acknowledged
MISSING = None


class Writer(threading.Thread):
    """Writes its own keys over one connection until the server dies or
    stop is set.  model[key] is the acknowledged value (bytes) or MISSING;
    pending is (key, set of values the key may hold) for the write in flight."""

    def __init__(self, idx, port, model, seed, acks):
        super().__init__(daemon=True)
        self.idx = idx
        self.port = port
        self.model = model
        self.rng = random.Random(seed)
        self.acks = acks            # shared [count], under acks_lock
        self.pending = None
        self.error = None
        self.stop = False

    def keys(self):
        return [b"w%d-k%03d" % (self.idx, j) for j in range(KEYS_PER_WRITER)]

    def run(self):
        try:
            conn = harness.Conn(durable.HOST, self.port, timeout=10)
        except OSError as e:
            self.error = "connect: %r" % e
            return
        try:
            while not self.stop:
                self.one_op(conn)
        except (harness.ConnClosed, ConnectionError, socket.timeout, OSError):
            pass    # the server was killed: self.pending stays uncertain
        except AssertionError as e:
            self.error = str(e)
        finally:
            conn.close()

    def one_op(self, conn):
        key = self.rng.choice(self.keys())
        old = self.model[key]
        r = self.rng.random()
        if r < 0.45 or old is None:
            size = self.rng.choice([10, 200, 1500, 4000])
            if self.rng.random() < 0.3:
                val = b"%d" % self.rng.randrange(0, 10 ** 6)
            else:
                tag = b"%s-%d-" % (key, self.rng.randrange(1 << 30))
                val = (tag * (size // len(tag) + 1))[:size]
            self.pending = (key, {old, val})
            conn.send(b"set %s %d 0 %d\r\n%s\r\n" % (key, self.idx, len(val), val))
            reply = conn.readline()
            if reply != b"STORED\r\n":
                raise AssertionError("set %r: %r" % (key, reply))
            self.ack(key, val)
        elif r < 0.7:
            if old.isdigit():
                new = b"%d" % (int(old) + 7)
            else:
                new = None      # NON_NUMERIC: nothing changes
            self.pending = (key, {old, new} if new else {old})
            conn.send(b"incr %s 7\r\n" % key)
            reply = conn.readline()
            if new is None:
                if not reply.startswith(b"CLIENT_ERROR"):
                    raise AssertionError("incr on %r: %r" % (old[:20], reply))
                self.ack(key, old, logged=False)
            else:
                if reply != new + b"\r\n":
                    raise AssertionError("incr %r (was %r): %r" % (key, old, reply))
                self.ack(key, new)
        elif r < 0.85:
            self.pending = (key, {old, MISSING})
            conn.send(b"delete %s\r\n" % key)
            reply = conn.readline()
            if reply != b"DELETED\r\n":
                raise AssertionError("delete %r: %r" % (key, reply))
            self.ack(key, MISSING)
        else:
            new = old + b"+app"
            self.pending = (key, {old, new})
            conn.send(b"append %s 0 0 4\r\n+app\r\n" % key)
            reply = conn.readline()
            if reply != b"STORED\r\n":
                raise AssertionError("append %r: %r" % (key, reply))
            self.ack(key, new)

    def ack(self, key, value, logged=True):
        self.model[key] = value
        self.pending = None
        with self.acks[1]:
            self.acks[0] += 1
            self.acks[2] += logged     # acknowledged changes: one record each


class Kill9Test(unittest.TestCase):
    def setUp(self):
        self.node = durable.Node(["--fsync", "always", "--wal-segment-size", "64k", "-t", "4"])

    def tearDown(self):
        self.node.cleanup()

    def check_state(self, model, allowed):
        """Read every key; compare with model / allowed; return what was read."""
        keys = list(model)
        with self.node.conn() as c:
            got = durable.get_many(c, keys)
        for k in keys:
            have = got[k][0] if k in got else MISSING
            ok = allowed.get(k, {model[k]})
            if have not in ok:
                self.fail("key %r: after restart holds %r, acknowledged %r (allowed %r)"
                          % (k, None if have is None else have[:40],
                             None if model[k] is None else model[k][:40],
                             [None if v is None else v[:40] for v in ok]))
            if have is not MISSING:
                idx = int(k[1:k.index(b"-")])
                self.assertEqual(got[k][1], idx, "flags of %r" % k)
        return {k: (got[k][0] if k in got else MISSING) for k in keys}

    def test_kill9_rounds(self):
        model = {b"w%d-k%03d" % (i, j): MISSING
                 for i in range(WRITERS) for j in range(KEYS_PER_WRITER)}
        rng = random.Random(1234)
        node = self.node
        node.start()
        checkpointed = 0
        last_lsn = 0
        for rnd in range(ROUNDS):
            ckpt_at_start = node.pstats()["checkpoint_lsn"]
            acks = [0, threading.Lock(), 0]
            writers = [Writer(i, node.port, model, rng.randrange(1 << 30), acks)
                       for i in range(WRITERS)]
            for w in writers:
                w.start()
            target = ACKS_PER_ROUND + rng.randrange(ACKS_PER_ROUND // 2)
            reached = harness.wait_until(
                lambda: acks[0] >= target or not any(w.is_alive() for w in writers),
                60, 0.005)
            self.assertTrue(reached, "round %d: writers stalled at %d acks" % (rnd, acks[0]))
            if rnd % 2 == 1:
                # Odd rounds: also let the checkpointer fold segments while
                # the writers go on, so recovery needs LMDB + the WAL tail.
                start_ckpt = ckpt_at_start
                folded = harness.wait_until(
                    lambda: node.pstats()["checkpoint_lsn"] > start_ckpt
                    or not any(w.is_alive() for w in writers), durable.POLL_TIMEOUT, 0.05)
                self.assertTrue(folded, "round %d: checkpoint_lsn stayed at %d"
                                % (rnd, start_ckpt))
            rc = node.kill9()                    # mid-stream
            self.assertEqual(rc, -9)
            for w in writers:
                w.join(15)
                self.assertFalse(w.is_alive(), "writer %d did not stop" % w.idx)
                self.assertIsNone(w.error, "round %d writer %d: %s" % (rnd, w.idx, w.error))
            self.assertGreaterEqual(acks[0], target, "writers died early")
            allowed = {}
            for w in writers:
                if w.pending is not None:
                    allowed[w.pending[0]] = w.pending[1]

            node.start()
            model = self.check_state(model, allowed)
            present = sum(1 for v in model.values() if v is not MISSING)
            st = node.pstats()
            self.assertEqual(st["enabled"], "yes")
            self.assertEqual(st["fsync"], "always")
            self.assertEqual(st["wal_error"], "none")
            self.assertEqual(st["recovered_items"], present,
                             "round %d: recovered_items %d, keys present %d; %r; its log:\n%s"
                             % (rnd, st["recovered_items"], present, st,
                                node.server.stderr_text()[-3000:]))
            self.assertEqual(int(node.stats()["curr_items"]), present)
            # every acknowledged change is a record: the LSN moved at least that far
            self.assertGreaterEqual(st["wal_lsn"], last_lsn + acks[2],
                                    "round %d: wal_lsn %d after %d + %d acknowledged changes"
                                    % (rnd, st["wal_lsn"], last_lsn, acks[2]))
            last_lsn = st["wal_lsn"]
            checkpointed = max(checkpointed, st["checkpoint_lsn"])
        # Several MB went through 64k segments: the checkpointer must have
        # folded some of them at some point.
        st = node.pstats()
        self.assertGreater(max(checkpointed, st["checkpoint_lsn"]), 0, repr(st))


if __name__ == "__main__":
    durable.main()
