#!/usr/bin/python3
# Scenario: --metrics-port, the HTTP endpoint for Prometheus (docs/metrics.md).
#
#   * /metrics after sets, gets, misses, deletes, incr and cas says what
#     `stats`, `stats persistence` and `stats replication` say over the
#     memcache port, under memcached_exporter's names, and passes
#     `promtool check metrics` (Debian's prometheus package) with no
#     problem;
#   * with --ephemeral, no persistence or replication family appears;
#   * Debian's real Prometheus server scrapes the node every second, and
#     its HTTP API answers memcached_current_items with the node's count;
#   * /health: 200 "serving" on a primary and on a streaming replica; once
#     the replica's primary is killed, 503 "replica link down";
#   * another path is 404, another method 405, HEAD has no body;
#   * a bad --metrics-port value is refused (exit 2, one line naming it),
#     and so is a port in use.
#
# CAIRN-SPECIFIC: memcached has no HTTP endpoint: against memcached
# (--bin /usr/bin/memcached) every test is skipped.
#
# Every process is started on 127.0.0.1 and free ports, killed at the end
# (and at interpreter exit), and every wait is a bounded poll.
#
# Run: /usr/bin/python3 test_metrics.py --bin PATH   (or CAIRN_BIN=PATH)

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
HTTP_TIMEOUT = harness.DEFAULT_TIMEOUT
# A replica notices a dead primary at once (the socket closes) or, without
# a FIN, after ~5 s of silence; Prometheus needs a few seconds to start and
# scrape.  Both are polled, bounded by these.
LINK_DOWN_TIMEOUT = 30.0 * harness.SLOWDOWN
PROMETHEUS_TIMEOUT = 60.0 * harness.SLOWDOWN
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def http(port, path, method="GET"):
    """(status, headers, body) of one request to 127.0.0.1:port."""
    req = urllib.request.Request("http://%s:%d%s" % (harness.HOST, port, path),
                                 method=method)
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as r:
            return r.status, r.headers, r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8")
        e.close()
        return e.code, e.headers, body


def parse_exposition(text):
    """The text format into ({(name, labels): value}, {name: type},
    {name: help}), labels as a sorted tuple of (key, value)."""
    samples, types, helps = {}, {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
        elif line.startswith("# HELP "):
            _, _, name, text_ = line.split(" ", 3)
            helps[name] = text_
        elif line and not line.startswith("#"):
            m = _SAMPLE_RE.match(line)
            if m is None:
                raise AssertionError("not a sample line: %r" % line)
            labels = tuple(sorted((k, v.replace('\\"', '"').replace("\\n", "\n")
                                   .replace("\\\\", "\\"))
                                  for k, v in _LABEL_RE.findall(m.group(3) or "")))
            key = (m.group(1), labels)
            if key in samples:
                raise AssertionError("duplicate sample %r" % (key,))
            samples[key] = float(m.group(4))
    return samples, types, helps


def value(samples, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    if key not in samples:
        raise AssertionError("no sample %s%r in the scrape" % (name, labels))
    return samples[key]


class MetricsTest(unittest.TestCase):
    def setUp(self):
        if harness.is_memcached():
            self.skipTest("memcached has no --metrics-port")
        self.servers = []
        self.dirs = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)

    def tmpdir(self):
        d = tempfile.mkdtemp(prefix="cairn-metrics-")
        self.dirs.append(d)
        return d

    def start(self, args, persistent=True):
        """A node with --metrics-port; returns (server, metrics port)."""
        for _attempt in range(5):       # a free port can be taken meanwhile
            mport = harness.free_port()
            extra = ["--metrics-port", str(mport)]
            if persistent and "--data-dir" not in args:
                extra += ["--data-dir", os.path.join(self.tmpdir(), "data")]
            srv = harness.Server(list(args) + extra, external=False)
            try:
                srv.start()
            except RuntimeError:
                continue
            self.servers.append(srv)
            # The client port accepts before the node serves: until then
            # /health says "recovering" (and memcached_up is 0).
            self.assertTrue(harness.wait_until(
                lambda: http(mport, "/health")[2] != "recovering\n", harness.START_TIMEOUT),
                "/health still says recovering")
            return srv, mport
        self.fail("could not start cairn with --metrics-port")

    def scrape(self, port):
        status, headers, body = http(port, "/metrics")
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["Content-Type"], CONTENT_TYPE)
        return body

    def promtool_check(self, text):
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        self.assertEqual((p.returncode, p.stdout.decode()), (0, ""))

    def traffic(self, c):
        """Known traffic: 3 items left, hits, misses, a delete, an incr and
        each outcome of cas."""
        for i in range(4):
            self.assertEqual(c.set("k%d" % i, "v%d" % i), b"STORED\r\n")
        self.assertEqual(c.set("n", "5"), b"STORED\r\n")
        self.assertEqual(c.get("k0"), b"v0")
        self.assertEqual(c.get("k1"), b"v1")
        self.assertIsNone(c.get("nope"))
        self.assertEqual(c.request(b"delete k3\r\n"), b"DELETED\r\n")
        self.assertEqual(c.request(b"delete k3\r\n"), b"NOT_FOUND\r\n")
        self.assertEqual(c.request(b"incr n 2\r\n"), b"7\r\n")
        self.assertEqual(c.request(b"delete n\r\n"), b"DELETED\r\n")
        _, cas = c.gets("k2")
        self.assertEqual(c.storage("cas", "k2", "w", extra=b" %d" % (cas + 1000)), b"EXISTS\r\n")
        self.assertEqual(c.storage("cas", "k2", "w", extra=b" %d" % cas), b"STORED\r\n")
        self.assertEqual(c.storage("cas", "gone", "w", extra=b" 1"), b"NOT_FOUND\r\n")

    def test_metrics_match_stats(self):
        srv, mport = self.start([])
        with srv.conn() as c:
            self.traffic(c)
            # Wait for the WAL to have every write (it appends after the
            # reply with --fsync everysec), so that both reads agree.
            lsn = int(c.stats(b"persistence")["wal_lsn"])
            self.assertTrue(harness.wait_until(
                lambda: int(c.stats(b"persistence")["wal_synced_lsn"]) >= lsn, 10 * harness.SLOWDOWN))
            text = self.scrape(mport)
            st = c.stats()
            sp = c.stats(b"persistence")
            sr = c.stats(b"replication")
        self.promtool_check(text)
        samples, types, helps = parse_exposition(text)
        for name, _labels in samples:
            self.assertIn(name, types, "no # TYPE for %s" % name)
            self.assertIn(name, helps, "no # HELP for %s" % name)

        self.assertEqual(value(samples, "memcached_up"), 1)
        self.assertEqual(value(samples, "memcached_version", version=st["version"]), 1)
        for stat, name in [("curr_items", "memcached_current_items"),
                           ("total_items", "memcached_items_total"),
                           ("bytes", "memcached_current_bytes"),
                           ("limit_maxbytes", "memcached_limit_bytes"),
                           ("max_connections", "memcached_max_connections"),
                           ("curr_connections", "memcached_current_connections"),
                           ("total_connections", "memcached_connections_total"),
                           ("rejected_connections", "memcached_connections_rejected_total"),
                           ("evictions", "memcached_items_evicted_total"),
                           ("reclaimed", "memcached_items_reclaimed_total"),
                           ("store_too_large", "memcached_item_too_large_total"),
                           ("store_no_memory", "memcached_item_no_memory_total"),
                           ("threads", "cairn_threads"),
                           ("hash_power_level", "cairn_hash_power_level")]:
            with self.subTest(stat=stat):
                self.assertEqual(value(samples, name), int(st[stat]))
        self.assertEqual(value(samples, "memcached_current_items"), 3)
        for cmd in ("get", "delete", "incr", "decr", "cas", "touch"):
            for status, suffix in (("hit", "_hits"), ("miss", "_misses")):
                with self.subTest(cmd=cmd, status=status):
                    self.assertEqual(value(samples, "memcached_commands_total",
                                           command=cmd, status=status),
                                     int(st[cmd + suffix]))
        self.assertEqual(value(samples, "memcached_commands_total", command="cas",
                               status="badval"), int(st["cas_badval"]))
        self.assertEqual(value(samples, "memcached_commands_total", command="flush",
                               status="hit"), int(st["cmd_flush"]))
        # memcached_exporter's "set" excludes the cas commands cmd_set counts.
        self.assertEqual(value(samples, "memcached_commands_total", command="set", status="hit"), 5)
        self.assertEqual((value(samples, "memcached_commands_total", command="get", status="hit"),
                          value(samples, "memcached_commands_total", command="get", status="miss"),
                          value(samples, "memcached_commands_total", command="cas", status="badval")),
                         (3, 1, 1))
        # The scrape came before these `stats` requests, which count too.
        self.assertLessEqual(value(samples, "memcached_read_bytes_total"), int(st["bytes_read"]))
        self.assertGreater(value(samples, "memcached_read_bytes_total"), 0)
        self.assertLessEqual(value(samples, "memcached_written_bytes_total"), int(st["bytes_written"]))
        self.assertLessEqual(value(samples, "memcached_uptime_seconds"), int(st["uptime"]))
        self.assertAlmostEqual(value(samples, "memcached_time_seconds"), int(st["time"]), delta=5)
        self.assertLessEqual(value(samples, "memcached_process_user_cpu_seconds_total"),
                             float(st["rusage_user"]))
        self.assertEqual(value(samples, "memcached_slab_current_items", slab="1"), 3)
        self.assertEqual(types["memcached_commands_total"], "counter")
        self.assertEqual(types["memcached_current_items"], "gauge")

        # stats persistence
        for stat, name in [("wal_lsn", "cairn_wal_lsn"),
                           ("wal_synced_lsn", "cairn_wal_synced_lsn"),
                           ("recovered_items", "cairn_recovered_items"),
                           ("warmup_items", "cairn_warmup_items"),
                           ("wal_dropped_bytes", "cairn_wal_dropped_bytes"),
                           ("wal_tail_max_records", "cairn_wal_tail_max_records"),
                           ("wal_tail_max_bytes", "cairn_wal_tail_max_bytes")]:
            with self.subTest(stat=stat):
                self.assertEqual(value(samples, name), int(sp[stat]))
        self.assertGreater(value(samples, "cairn_wal_lsn"), 0)
        self.assertEqual(value(samples, "cairn_warmup_loading"), 0)
        self.assertEqual(value(samples, "cairn_wal_error"), 0)
        self.assertEqual(value(samples, "cairn_checkpoint_error"), 0)
        self.assertEqual(value(samples, "cairn_persistence_info",
                               data_dir=sp["data_dir"], fsync=sp["fsync"]), 1)
        self.assertEqual(value(samples, "cairn_last_recovery_seconds"),
                         int(sp["last_recovery_ms"]) / 1000.0)

        # stats replication
        self.assertEqual(value(samples, "cairn_replication_role", role="primary"), 1)
        self.assertEqual(value(samples, "cairn_replication_role", role="replica"), 0)
        self.assertEqual(value(samples, "cairn_replication_epoch"), int(sr["epoch"]))
        self.assertEqual(value(samples, "cairn_replication_lsn"), int(sr["lsn"]))
        self.assertEqual(value(samples, "cairn_replication_connected_replicas"), 0)
        info = [k for k in samples if k[0] == "cairn_replication_info"]
        self.assertEqual(len(info), 1)
        self.assertIn(("node_id", sr["node_id"]), info[0][1])
        self.assertIn(("history_id", sr["history_id"]), info[0][1])

    def test_ephemeral_has_only_the_memcached_families(self):
        srv, mport = self.start(["--ephemeral"], persistent=False)
        with srv.conn() as c:
            self.traffic(c)
        text = self.scrape(mport)
        self.promtool_check(text)
        samples, types, _ = parse_exposition(text)
        self.assertEqual(value(samples, "memcached_current_items"), 3)
        others = sorted(n for n in types
                        if not n.startswith("memcached_")
                        and n not in ("cairn_threads", "cairn_hash_power_level", "cairn_hash_bytes"))
        self.assertEqual(others, [])

    def test_prometheus_scrapes_the_node(self):
        if not os.access(PROMETHEUS, os.X_OK):
            self.skipTest("no %s (Debian package prometheus)" % PROMETHEUS)
        srv, mport = self.start([])
        with srv.conn() as c:
            for i in range(7):
                self.assertEqual(c.set("p%d" % i, "x" * i), b"STORED\r\n")
        d = self.tmpdir()
        cfg = os.path.join(d, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n"
                    "  scrape_interval: 1s\n"
                    "  scrape_timeout: 1s\n"
                    "scrape_configs:\n"
                    "  - job_name: cairn\n"
                    "    static_configs:\n"
                    "      - targets: ['%s:%d']\n" % (harness.HOST, mport))
        for _attempt in range(5):
            pport = harness.free_port()
            log = open(os.path.join(d, "prometheus.log"), "wb")
            p = subprocess.Popen([PROMETHEUS, "--config.file=" + cfg,
                                  "--storage.tsdb.path=" + os.path.join(d, "tsdb"),
                                  "--web.listen-address=%s:%d" % (harness.HOST, pport)],
                                 cwd=d, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            log.close()
            harness._live.append(p)
            if harness.wait_until(lambda: p.poll() is not None or harness.can_connect(harness.HOST, pport),
                                  PROMETHEUS_TIMEOUT) and p.poll() is None:
                break
            harness._kill_proc(p)
        else:
            self.fail("prometheus did not start")
        try:
            def api(path):
                try:
                    status, _, body = http(pport, path)
                except OSError:
                    return None
                return json.loads(body) if status == 200 else None

            def target_up():
                r = api("/api/v1/targets")
                return r is not None and any(t.get("health") == "up"
                                             for t in r["data"]["activeTargets"])

            def current_items():
                r = api("/api/v1/query?query=memcached_current_items")
                if r is None or not r["data"]["result"]:
                    return None
                return r["data"]["result"][0]["value"][1]

            if not harness.wait_until(target_up, PROMETHEUS_TIMEOUT, 0.25):
                with open(os.path.join(d, "prometheus.log"), "rb") as f:
                    self.fail("prometheus never scraped the node: %r" % f.read()[-2000:])
            self.assertEqual(harness.wait_until(lambda: current_items() == "7" and "7",
                                                PROMETHEUS_TIMEOUT, 0.25), "7")
            r = api("/api/v1/query?query=cairn_replication_role%7Brole%3D%22primary%22%7D")
            self.assertEqual(r["data"]["result"][0]["value"][1], "1")
        finally:
            harness._kill_proc(p)

    def test_health(self):
        primary, pmport = self.start(["--repl-port", str(harness.free_port())])
        status, headers, body = http(pmport, "/health")
        self.assertEqual((status, body), (200, "serving\n"))
        repl_port = int(primary.args[primary.args.index("--repl-port") + 1])
        with primary.conn() as c:
            self.assertEqual(c.set("a", "1"), b"STORED\r\n")
        replica, rmport = self.start(["--replica-of", "%s:%d" % (harness.HOST, repl_port)])

        def link():
            with replica.conn() as c:
                return c.stats(b"replication").get("link")

        self.assertTrue(harness.wait_until(lambda: link() == "up", LINK_DOWN_TIMEOUT, 0.05))
        status, _, body = http(rmport, "/health")
        self.assertEqual((status, body), (200, "serving\n"))
        samples, _, _ = parse_exposition(self.scrape(rmport))
        self.assertEqual(value(samples, "cairn_replication_role", role="replica"), 1)
        self.assertEqual(value(samples, "cairn_replication_link_up"), 1)
        samples, _, _ = parse_exposition(self.scrape(pmport))
        self.assertEqual(value(samples, "cairn_replication_connected_replicas"), 1)
        rid = [dict(k[1])["replica"] for k in samples if k[0] == "cairn_replication_replica_acked_lsn"]
        self.assertEqual(len(rid), 1)

        # The primary dies: the replica is no longer fit for reads.
        primary.proc.kill()
        primary.proc.wait(harness.STOP_TIMEOUT)
        self.servers.remove(primary)
        primary.stop(check=False)
        got = harness.wait_until(lambda: http(rmport, "/health")[0] == 503, LINK_DOWN_TIMEOUT, 0.1)
        self.assertTrue(got, "replica /health still 200 after its primary died")
        status, headers, body = http(rmport, "/health")
        self.assertEqual(status, 503)
        self.assertIn(body, ("replica link down\n", "replica link syncing\n"))
        self.assertTrue(headers["Content-Type"].startswith("text/plain"))
        samples, _, _ = parse_exposition(self.scrape(rmport))
        self.assertEqual(value(samples, "cairn_replication_link_up"), 0)

    def test_health_wal_error(self):
        # The fault-injection shim (tests/faults/failshim.c) makes the WAL's
        # writes fail with ENOSPC; it is built next to the binary.
        shim = os.environ.get("CAIRN_FAILSHIM") or os.path.join(
            os.path.dirname(os.path.abspath(harness.server_bin())),
            "tests", "faults", "libcairn_failshim.so")
        if not os.path.exists(shim):
            self.skipTest("no fail shim at %s" % shim)
        d = self.tmpdir()
        data, ctl = os.path.join(d, "data"), os.path.join(d, "failctl")
        env = {"LD_PRELOAD": shim, "CAIRN_FAIL_DIR": data, "CAIRN_FAIL_CTL": ctl,
               "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)      # harness.Server passes its environment on
        try:
            srv, mport = self.start(["--data-dir", data, "--fsync", "always"])
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.assertEqual(http(mport, "/health")[:3:2], (200, "serving\n"))
        with open(ctl + ".tmp", "w") as f:
            f.write("wal:ENOSPC\n")
        os.rename(ctl + ".tmp", ctl)
        with srv.conn() as c:
            self.assertTrue(c.set("k", "v").startswith(b"SERVER_ERROR"))
        self.assertTrue(harness.wait_until(lambda: http(mport, "/health")[0] == 503,
                                           10 * harness.SLOWDOWN, 0.05))
        status, _, body = http(mport, "/health")
        self.assertEqual((status, body), (503, "wal error: No space left on device\n"))
        samples, _, _ = parse_exposition(self.scrape(mport))
        self.assertEqual(value(samples, "cairn_wal_error"), 1)

    def test_paths_and_methods(self):
        _srv, mport = self.start([], persistent=False)
        self.assertEqual(http(mport, "/")[0], 404)
        self.assertEqual(http(mport, "/metricsx")[0], 404)
        self.assertEqual(http(mport, "/health/")[0], 404)
        status, headers, _ = http(mport, "/metrics", method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "GET, HEAD")
        self.assertEqual(http(mport, "/health", method="DELETE")[0], 405)
        status, headers, body = http(mport, "/metrics", method="HEAD")
        self.assertEqual((status, body), (200, ""))
        self.assertEqual(headers["Content-Type"], CONTENT_TYPE)
        # A query string does not change the path.
        self.assertEqual(http(mport, "/health?x=1")[0], 200)
        # Keep-alive: several requests on one connection (Prometheus does).
        s = socket.create_connection((harness.HOST, mport), timeout=HTTP_TIMEOUT)
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
            buf, deadline = b"", time.monotonic() + HTTP_TIMEOUT
            while buf.count(b"serving\n") < 2 and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            self.assertEqual(buf.count(b"HTTP/1.1 200 OK"), 2, buf)
        finally:
            s.close()

    def test_bad_metrics_port_rejected(self):
        port = harness.free_port()
        for bad in ("0", "abc", "70000", "-1", str(port)):
            with self.subTest(value=bad):
                p = subprocess.run([harness.server_bin()] + harness.root_user_args(
                    ["-l", harness.HOST, "-p", str(port), "--ephemeral", "--metrics-port", bad]),
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    timeout=10 * harness.SLOWDOWN)
                err = p.stderr.decode("utf-8", "replace")
                self.assertEqual(p.returncode, 2, err)
                lines = err.splitlines()
                self.assertEqual(len(lines), 1, err)
                self.assertIn("--metrics-port", lines[0])

    def test_metrics_port_in_use_refused(self):
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind((harness.HOST, 0))
        holder.listen(1)
        try:
            mport = holder.getsockname()[1]
            p = subprocess.run([harness.server_bin()] + harness.root_user_args(
                ["-l", harness.HOST, "-p", str(harness.free_port()), "--ephemeral",
                 "--metrics-port", str(mport)]),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                timeout=10 * harness.SLOWDOWN)
        finally:
            holder.close()
        err = p.stderr.decode("utf-8", "replace")
        self.assertNotEqual(p.returncode, 0, err)
        self.assertIn("--metrics-port", err)
        self.assertIn(str(mport), err)


if __name__ == "__main__":
    harness.main()
