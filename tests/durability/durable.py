# Helpers shared by the durability tests (test_kill9.py, test_restart.py).
#
# They reuse ../integration/harness.py (imported through sys.path, never
# edited): harness.Server starts cairn on 127.0.0.1 and a free port and
# stop() sends SIGTERM (SIGKILL after a bounded wait); Server.proc is the
# Popen, so kill -9 is proc.kill().  A Node here is one data directory that
# outlives the processes started on it: start / stop (SIGTERM) / kill9 /
# restart on the SAME directory (a new port each time is fine).
#
# Every data directory is a fresh tempfile.mkdtemp() removed by cleanup();
# every process is killed (harness also kills leftovers at exit).

import glob
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "integration"))

import harness  # noqa: E402

HOST = harness.HOST
wait_until = harness.wait_until
main = harness.main

POLL_TIMEOUT = 20.0     # seconds for any polled condition


def make_data_dir(prefix="cairn-dur-"):
    return tempfile.mkdtemp(prefix=prefix)


def remove_dir(path):
    shutil.rmtree(path, ignore_errors=True)


class Node:
    """One data directory and the cairn process (if any) serving it."""

    def __init__(self, args=(), data_dir=None):
        self.own_dir = data_dir is None
        self.data_dir = data_dir or make_data_dir()
        self.args = list(args)
        self.server = None
        self.last_stderr = ""

    # -- lifecycle -------------------------------------------------------

    def start(self, extra=()):
        assert self.server is None, "already running"
        s = harness.Server(args=["--data-dir", self.data_dir] + self.args + list(extra),
                           external=False)
        s.start()
        self.server = s
        return self

    def stop(self):
        """SIGTERM (clean stop); returns the exit status."""
        s, self.server = self.server, None
        self.last_stderr = s.stderr_text()
        return s.stop()

    def kill9(self):
        """SIGKILL, reap, clean up; returns the exit status (-9)."""
        s, self.server = self.server, None
        s.proc.kill()
        rc = s.proc.wait(harness.STOP_TIMEOUT)
        self.last_stderr = s.stderr_text()
        s.stop()    # already dead: just forgets it and removes the stderr file
        return rc

    def restart(self, extra=(), kill=False):
        rc = self.kill9() if kill else self.stop()
        self.start(extra)
        return rc

    def cleanup(self):
        """kill -9 the process, remove the data dir; raises if the process
        logged a sanitizer report or a failed assertion (harness.Server.stop),
        or had died on its own with a non-zero status."""
        try:
            if self.server is not None:
                s, self.server = self.server, None
                died = s.proc.poll() if s.proc is not None else None
                if s.proc is not None and died is None:
                    s.proc.kill()
                    s.proc.wait(harness.STOP_TIMEOUT)
                log = s.stderr_text()
                s.stop()
                if died is not None and died != 0:
                    raise AssertionError("the server died on its own (status %r); its log:\n%s"
                                         % (died, log[-4000:]))
        finally:
            if self.own_dir:
                remove_dir(self.data_dir)

    # -- talking to it -----------------------------------------------------

    def conn(self, timeout=harness.DEFAULT_TIMEOUT):
        return self.server.conn(timeout)

    def stats(self, sub=b""):
        with self.conn() as c:
            return c.stats(sub)

    def pstats(self):
        """`stats persistence` with the numeric values as ints."""
        d = self.stats(b"persistence")
        for k, v in list(d.items()):
            if v.lstrip("-").isdigit():
                d[k] = int(v)
        return d

    def wait_synced(self, timeout=POLL_TIMEOUT):
        """Poll until every appended record is on disk (wal_synced_lsn >=
        wal_lsn); returns the stats, or raises."""
        def synced():
            st = self.pstats()
            return st if st["wal_synced_lsn"] >= st["wal_lsn"] else None
        st = wait_until(synced, timeout, 0.05)
        if not st:
            raise AssertionError("wal_synced_lsn never reached wal_lsn: %r" % self.pstats())
        return st

    def wal_segments(self):
        return sorted(glob.glob(os.path.join(self.data_dir, "wal", "*.log")))

    @property
    def port(self):
        return self.server.port


WAL_SEGMENT_HDR = 16


def wal_records_in(data):
    """[(offset, end, lsn)] of the complete records in a segment's bytes
    (format in docs/formats.md: a 16-byte header, then records of 8 + length
    bytes).  Stops at the first incomplete one, or at the zero bytes a
    segment may hold after its last record (blocks allocated ahead)."""
    out, off = [], WAL_SEGMENT_HDR
    while off + 8 <= len(data):
        (length,) = struct.unpack_from("<I", data, off)
        end = off + 8 + length
        if length < 13 or end > len(data):
            break
        (lsn,) = struct.unpack_from("<Q", data, off + 8)
        out.append((off, end, lsn))
        off = end
    return out


def wal_records(path):
    with open(path, "rb") as f:
        return wal_records_in(f.read())


def wal_records_end(path):
    """Offset just after the last complete record of a segment file."""
    recs = wal_records(path)
    return recs[-1][1] if recs else WAL_SEGMENT_HDR


def run_to_exit(args, timeout=15.0):
    """Run cairn with `args` (plus -l/-p on a free port and -u root as
    needed) expecting it to exit on its own.  Returns (status, stderr).
    If it is still running after `timeout`, it is killed and status is None."""
    port = harness.free_port()
    cmd = [harness.server_bin()] + harness.root_user_args(
        ["-l", HOST, "-p", str(port)] + list(args))
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=err)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(harness.STOP_TIMEOUT)
            rc = None
        err.seek(0)
        return rc, err.read().decode("utf-8", "replace")


def get_many(conn, keys, batch=100):
    """Multi-get: {key(bytes): (value, flags, cas)} for the present keys."""
    out = {}
    keys = [k.encode() if isinstance(k, str) else k for k in keys]
    for i in range(0, len(keys), batch):
        part = keys[i:i + batch]
        conn.send(b"gets " + b" ".join(part) + b"\r\n")
        while True:
            line = conn.readline()
            if line == b"END\r\n":
                break
            f = line.split()
            if f[0] != b"VALUE":
                raise AssertionError("unexpected reply to gets: %r" % line)
            n = int(f[3])
            data = conn.read_exact(n + 2)[:-2]
            out[f[1]] = (data, int(f[2]), int(f[4]))
    return out
