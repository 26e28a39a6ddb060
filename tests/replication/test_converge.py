# Replication convergence: a primary and two replicas; 100k mixed writes on
# the primary (set/add/replace/append/prepend/incr/decr/delete/touch/gat/cas,
# one flush_all early, some noreply), pipelined over a raw socket; both
# replicas reach the primary's LSN and every key reads byte-identical (value
# and flags) on all three nodes.  Writes sent to a replica are refused and
# change nothing.

import random
import unittest

import cluster
from cluster import assert_same, storage_cmd, wait_caught_up

N_OPS = 100000
N_KEYS = 3000
BATCH = 1000
SEED = 20240601


def rand_value(rng):
    r = rng.random()
    if r < 0.01:
        n = rng.randint(20000, 200000)          # crosses WAL batch boundaries
    elif r < 0.1:
        n = 0
    else:
        n = rng.randint(1, 300)
    # Arbitrary bytes, CR/LF included: values are length-delimited.
    return bytes(rng.getrandbits(8) for _ in range(min(n, 64))) * (n // 64) + \
        bytes(rng.getrandbits(8) for _ in range(n % 64))


class ConvergeTest(unittest.TestCase):
    def setUp(self):
        self.c = cluster.Cluster(2, primary_args=["-t", "2"], replica_args_=["-t", "2"])
        self.addCleanup(self.c.cleanup)

    def gets_cas(self, conn, keys):
        conn.send(b"gets " + b" ".join(keys) + b"\r\n")
        out = {}
        while True:
            line = conn.readline()
            if line == b"END\r\n":
                return out
            f = line.split()
            conn.read_exact(int(f[3]) + 2)
            out[f[1]] = int(f[4])

    def make_batch(self, rng, keys, counters, cas_known):
        cmds = []
        for _ in range(BATCH):
            op = rng.random()
            noreply = rng.random() < 0.1
            if op < 0.08:
                k = rng.choice(counters)
                cmds.append(b"%s %s %d%s\r\n" % (rng.choice([b"incr", b"decr"]), k,
                                                 rng.randint(0, 1 << 40),
                                                 b" noreply" if noreply else b""))
                continue
            k = rng.choice(keys)
            flags = rng.choice([0, 1, 0xffffffff, rng.getrandbits(32)])
            exptime = rng.choice([0, 0, 0, 100000])
            if op < 0.40:
                cmds.append(storage_cmd("set", k, rand_value(rng), flags, exptime, noreply=noreply))
            elif op < 0.48:
                cmds.append(storage_cmd("add", k, rand_value(rng), flags, exptime, noreply=noreply))
            elif op < 0.56:
                cmds.append(storage_cmd("replace", k, rand_value(rng), flags, exptime, noreply=noreply))
            elif op < 0.64:
                cmds.append(storage_cmd("append", k, rand_value(rng)[:50], noreply=noreply))
            elif op < 0.72:
                cmds.append(storage_cmd("prepend", k, rand_value(rng)[:50], noreply=noreply))
            elif op < 0.80:
                cmds.append(b"delete %s%s\r\n" % (k, b" noreply" if noreply else b""))
            elif op < 0.86:
                cmds.append(b"touch %s %d%s\r\n" % (k, rng.choice([0, 100000]),
                                                    b" noreply" if noreply else b""))
            elif op < 0.90:
                cmds.append(b"%s %d %s\r\n" % (rng.choice([b"gat", b"gats"]),
                                               rng.choice([0, 100000]), k))
            else:
                if cas_known and rng.random() < 0.7:
                    ck = rng.choice(list(cas_known))
                    cas = cas_known.pop(ck)
                else:
                    ck, cas = k, rng.randint(1, 1 << 40)
                cmds.append(storage_cmd("cas", ck, rand_value(rng), flags, exptime, cas=cas,
                                        noreply=noreply))
        return cmds

    def test_mixed_writes_converge(self):
        p, r1, r2 = self.c.nodes
        rng = random.Random(SEED)
        keys = [b"k:%d" % i for i in range(N_KEYS)]
        counters = [b"n:%d" % i for i in range(200)]
        all_keys = keys + counters
        done = 0
        with p.conn(timeout=60.0) as c:
            while done < N_OPS:
                if done == 5 * BATCH:
                    self.assertEqual(c.exchange(b"flush_all\r\n"), b"OK\r\n")
                # Counters start numeric; some get clobbered by text later
                # (incr on them is then a CLIENT_ERROR, which is fine).
                if done % (10 * BATCH) == 0:
                    c.exchange(b"".join(storage_cmd("set", k, b"%d" % rng.randint(0, 1 << 62),
                                                    noreply=True) for k in counters))
                cas_known = self.gets_cas(c, rng.sample(keys, 20))
                cmds = self.make_batch(rng, keys, counters, cas_known)
                out = c.exchange(b"".join(cmds))
                for line in out.split(b"\r\n"):
                    if line.startswith(b"SERVER_ERROR") or line == b"ERROR":
                        self.fail("primary answered %r" % line)
                done += len(cmds)
        lsn = wait_caught_up(p, [r1, r2], timeout=60.0)

        # The primary's view: both replicas streaming, acked up to its LSN.
        def acked():
            st = p.rstats()
            lines = sorted(v for k, v in st.items() if k.startswith("replica"))
            return (st["connected_replicas"] == 2 and len(lines) == 2 and
                    all("acked_lsn=%d,lag=0,state=streaming" % lsn in v for v in lines) and
                    lines)
        lines = cluster.wait_until(acked, cluster.POLL_TIMEOUT, 0.05)
        self.assertTrue(lines, p.rstats())
        self.assertIn("id=replica1,addr=127.0.0.1:%d," % r1.port, lines[0])
        self.assertIn("id=replica2,addr=127.0.0.1:%d," % r2.port, lines[1])
        for r in (r1, r2):
            st = r.rstats()
            self.assertEqual((st["role"], st["primary"], st["link"]),
                             ("replica", p.repl_addr, "up"), st)
            self.assertEqual((st["epoch"], st["history_id"]),
                             (p.rstats()["epoch"], p.rstats()["history_id"]), st)
            self.assertGreater(st["bytes_received"], 1000000, st)
        ref = assert_same(self, [p, r1, r2], all_keys, min_keys=N_KEYS // 4)
        # The values are not all alike.
        self.assertGreater(len(set(v for v, _ in ref.values())), N_KEYS // 10)
        # Replicas keep the primary's CAS uniques (a client's gets/cas pair
        # stays valid across a failover).
        assert_same(self, [p, r1, r2], all_keys, min_keys=N_KEYS // 4, cas=True)

        # Writes on a replica are refused and change nothing.
        k = ref and next(iter(ref))
        with r1.conn() as c:
            for cmd in (storage_cmd("set", k, b"bad"), storage_cmd("add", b"new:key", b"x"),
                        b"delete %s\r\n" % k, b"incr %s 1\r\n" % counters[0],
                        b"touch %s 1\r\n" % k, b"flush_all\r\n"):
                self.assertEqual(c.exchange(cmd), cluster.READONLY, cmd[:40])
        self.assertEqual(r1.lsn(), p.lsn())
        assert_same(self, [p, r1, r2], all_keys + [b"new:key"], min_keys=N_KEYS // 4)


if __name__ == "__main__":
    cluster.main()
