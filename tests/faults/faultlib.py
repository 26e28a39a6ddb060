"""Shared helpers for the fault-injection and abuse tests (tests/faults/).

Builds on tests/integration/harness.py (imported, not copied): its Conn
(bounded raw-socket client), free_port, wait_until, can_connect and its
kill-everything-at-exit list.  Adds what these tests need on top:

  Node     a cairn process with its own data dir, log file, fixed client and
           replication ports (so it can be restarted in place), optional
           LD_PRELOAD of the fail shim, kill -9, VmRSS.
  Workdir  a temporary directory removed at the end (also on failure).
  set_many / get_many   pipelined bulk writes and reads.
  figure() prints "FIGURE name: value" lines; docs/reliability.md quotes them.

Command line of every test file: --bin PATH (cairn) [--shim PATH
(libcairn_failshim.so)] [unittest args].  Run with /usr/bin/python3.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

HOST = harness.HOST
SHIM = os.environ.get("CAIRN_FAILSHIM", "")


def sanitized_build():
    """True when the server under test is an ASan build (its memory figures
    then include ASan's shadow memory, redzones and quarantine)."""
    try:
        out = subprocess.run(["ldd", harness.server_bin()], capture_output=True, text=True).stdout
    except OSError:
        return False
    return "libasan" in out


def main():
    """Strip --shim, let the harness take --bin, run unittest."""
    global SHIM
    argv, rest, i = sys.argv, [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--shim" and i + 1 < len(argv):
            SHIM = argv[i + 1]
            i += 2
            continue
        if a.startswith("--shim="):
            SHIM = a.split("=", 1)[1]
            i += 1
            continue
        rest.append(a)
        i += 1
    rest = harness.parse_args(rest)
    if not harness._BIN:
        sys.stderr.write("usage: %s --bin PATH [--shim PATH] [unittest args]\n" % rest[0])
        sys.exit(2)
    if SHIM:
        SHIM = os.path.abspath(SHIM)
    unittest.main(argv=rest, verbosity=2)


def figure(name, value):
    """One measured figure, in a form docs/reliability.md quotes."""
    line = "FIGURE %s: %s" % (name, value)
    print(line, flush=True)
    path = os.environ.get("CAIRN_FIGURES_OUT")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


class Workdir:
    def __init__(self, prefix="cairn-faults-"):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def sub(self, *parts):
        return os.path.join(self.path, *parts)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def rss_kb(pid, field="VmRSS"):
    """VmRSS (or RssAnon: heap only, without mapped files such as LMDB's
    data.mdb) of a process in KiB (0 if it is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Node:
    """cairn on 127.0.0.1 with a data dir under `workdir`.  The client and
    replication ports are picked once and kept across restarts."""

    def __init__(self, workdir, name, args=(), shim=False, fail_ctl=None, port=None):
        self.name = name
        self.data_dir = workdir.sub(name + "-data")
        self.log_path = workdir.sub(name + ".log")
        self.inj_log = workdir.sub(name + ".injected")
        self.fail_ctl = fail_ctl or workdir.sub(name + ".failctl")
        self.args = list(args)
        self.shim = shim
        self.port = port or harness.free_port()
        self.repl_port = harness.free_port()
        self.proc = None
        os.makedirs(self.data_dir, exist_ok=True)

    # -- lifecycle ------------------------------------------------------
    def start(self, args=None, shim=None, timeout=30.0):
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("%s already running" % self.name)
        use_shim = self.shim if shim is None else shim
        env = dict(os.environ)
        # For an ASan build: the shim wraps only libc calls, so ASan's runtime
        # need not come first; and a small quarantine keeps memory figures
        # about the server rather than about ASan.
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":verify_asan_link_order=0:quarantine_size_mb=16")
        if use_shim:
            if not SHIM or not os.path.exists(SHIM):
                raise AssertionError("this test needs the fail shim: pass --shim PATH "
                                     "(libcairn_failshim.so); got %r" % SHIM)
            env["LD_PRELOAD"] = SHIM
            env["CAIRN_FAIL_DIR"] = self.data_dir
            env["CAIRN_FAIL_CTL"] = self.fail_ctl
            env["CAIRN_FAIL_LOG"] = self.inj_log
        cmd = [harness.server_bin(), "-l", HOST, "-p", str(self.port),
               "--repl-port", str(self.repl_port), "--data-dir", self.data_dir]
        cmd += list(self.args if args is None else args)
        with open(self.log_path, "ab") as logf:
            logf.write(b"==== start %s\n" % " ".join(cmd).encode())
            logf.flush()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf, env=env)
        harness._live.append(self.proc)
        p = self.proc
        ok = harness.wait_until(lambda: p.poll() is not None or harness.can_connect(HOST, self.port),
                                timeout)
        if not ok or p.poll() is not None:
            self.stop()
            raise AssertionError("%s did not start (%s); log:\n%s" % (
                self.name, "exited %s" % p.returncode if p.poll() is not None else "timeout",
                self.log_tail()))
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15.0):
        """SIGTERM, bounded wait, then SIGKILL.  Returns the exit status."""
        if self.proc is None:
            return None
        rc = harness._kill_proc(self.proc, timeout)
        self.proc = None
        return rc

    def kill9(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self.proc in harness._live:
            harness._live.remove(self.proc)
        self.proc = None

    def restart(self, **kw):
        self.stop()
        return self.start(**kw)

    # -- faults ---------------------------------------------------------
    def set_fault(self, spec):
        """Write the shim's control file ("" switches faults off).  Written
        to a temp file and renamed, so the shim never reads half a rule."""
        tmp = self.fail_ctl + ".tmp"
        with open(tmp, "w") as f:
            f.write(spec + "\n" if spec else "")
        os.rename(tmp, self.fail_ctl)

    def injected(self):
        """Lines the shim logged for failures it injected."""
        try:
            with open(self.inj_log) as f:
                return f.read().splitlines()
        except OSError:
            return []

    # -- observation ----------------------------------------------------
    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])

    def rss_kb(self, field="VmRSS"):
        return rss_kb(self.pid, field) if self.alive() else 0

    def conn(self, timeout=10.0):
        return harness.Conn(HOST, self.port, timeout)

    def stats(self, sub=b""):
        with self.conn() as c:
            return c.stats(sub)

    def wait_stat(self, sub, pred, timeout, what):
        last = {}

        def probe():
            nonlocal last
            try:
                last = self.stats(sub)
            except (OSError, harness.ConnClosed):
                return False
            return pred(last)

        if not harness.wait_until(probe, timeout, 0.1):
            raise AssertionError("timed out after %.0f s waiting for %s; last stats %s: %r\nlog:\n%s"
                                 % (timeout, what, sub.decode() or "general", last, self.log_tail()))
        return last


# -- bulk traffic -----------------------------------------------------------

def set_many(conn, items, batch=100, noreply=False):
    """Pipelined sets; returns the list of reply lines (one per item)."""
    replies = []
    items = list(items)
    for i in range(0, len(items), batch):
        chunk = items[i:i + batch]
        req = b"".join(b"set %s 0 0 %d%s\r\n%s\r\n" % (k, len(v), b" noreply" if noreply else b"", v)
                       for k, v in chunk)
        conn.send(req)
        if noreply:
            continue
        for _ in chunk:
            replies.append(conn.readline())
    if noreply:
        conn.exchange(b"")   # a round trip: everything before it was processed
    return replies


_VALUE_RE = re.compile(rb"VALUE (\S+) (\d+) (\d+)\r\n")


def get_many(conn, keys, batch=100):
    """Pipelined multi-gets; returns {key: value} for the hits."""
    out = {}
    keys = list(keys)
    for i in range(0, len(keys), batch):
        chunk = keys[i:i + batch]
        conn.send(b"get " + b" ".join(chunk) + b"\r\n")
        while True:
            line = conn.readline()
            if line == b"END\r\n":
                break
            m = _VALUE_RE.match(line)
            if not m:
                raise AssertionError("unexpected reply to get: %r" % line[:200])
            n = int(m.group(3))
            data = conn.read_exact(n + 2)
            out[m.group(1)] = data[:-2]
    return out


def wait_until(cond, timeout, interval=0.05):
    return harness.wait_until(cond, timeout, interval)
