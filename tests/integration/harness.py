# Shared harness for cairn's integration tests.
#
# Scenario: every test file starts the server under test (cairn, or the real
# memcached as the reference) on 127.0.0.1 and a free port, waits until it
# accepts connections (bounded poll loop), talks to it over raw sockets or a
# client library, and stops it with SIGTERM, then SIGKILL after a bounded
# wait.  Every process started here is also killed at interpreter exit.
#
# The binary under test comes from --bin PATH (or env CAIRN_BIN).  For
# debugging, env CAIRN_TEST_ADDR=host:port makes tests that do not need
# special server flags talk to an already running server instead.
#
# Always run with /usr/bin/python3 (Debian's, which has python3-memcache and
# python3-pymemcache).

import atexit
import fcntl
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HOST = "127.0.0.1"
# Sanitizer builds are several times slower (ThreadSanitizer 5-15x):
# scripts/test.sh --tsan sets CAIRN_TEST_SLOWDOWN so that starting and
# stopping a server get longer before they count as a hang.
SLOWDOWN = max(1.0, float(os.environ.get("CAIRN_TEST_SLOWDOWN", "1") or "1"))
DEFAULT_TIMEOUT = 5.0 * SLOWDOWN    # seconds for a single socket read / connect
START_TIMEOUT = 10.0 * SLOWDOWN     # seconds for a server to start accepting
STOP_TIMEOUT = 5.0 * SLOWDOWN       # seconds between SIGTERM and SIGKILL

# A line of stderr that means a sanitizer found a bug, or an invariant
# failed (assert() in Debug and sanitizer builds).  The TSan build runs
# with halt_on_error=1 exitcode=66 (scripts/test.sh --tsan), so a server
# that reported a race also exits with status 66.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer", "ThreadSanitizer: CHECK failed",
                     "ERROR: ThreadSanitizer", "Assertion `")
TSAN_EXITCODE = 66

_BIN = os.environ.get("CAIRN_BIN", "")
_MEMCACHED = os.environ.get("MEMCACHED_BIN", "/usr/bin/memcached")
_live = []                  # every Popen started here and not yet reaped


def server_bin():
    if not _BIN:
        raise RuntimeError("no server binary: pass --bin PATH or set CAIRN_BIN")
    return _BIN


def memcached_bin():
    return _MEMCACHED


def is_memcached(path=None):
    """True when the binary under test is the reference memcached."""
    path = path or _BIN
    return os.path.basename(os.path.realpath(path)).startswith("memcached")


def parse_args(argv=None):
    """Strip --bin/--memcached (both 'opt val' and 'opt=val') from argv,
    store them, and return the remaining argv for unittest."""
    global _BIN, _MEMCACHED
    argv = list(sys.argv if argv is None else argv)
    rest = [argv[0]]
    i = 1
    while i < len(argv):
        a = argv[i]
        for name in ("--bin", "--memcached"):
            if a == name and i + 1 < len(argv):
                val = argv[i + 1]
                i += 1
                break
            if a.startswith(name + "="):
                val = a.split("=", 1)[1]
                break
        else:
            rest.append(a)
            i += 1
            continue
        if name == "--bin":
            _BIN = val
        else:
            _MEMCACHED = val
        i += 1
    return rest


def main():
    """Entry point for every test file: parse --bin, run unittest."""
    rest = parse_args()
    if not _BIN:
        sys.stderr.write("usage: %s --bin PATH [unittest args]"
                         " (or set CAIRN_BIN)\n" % rest[0])
        sys.exit(2)
    unittest.main(argv=rest, verbosity=2)


def sanitizer_report(text):
    """The first sanitizer report in `text` (a server's stderr), with some
    context, or None."""
    for marker in SANITIZER_MARKERS:
        i = text.find(marker)
        if i >= 0:
            return text[max(0, i - 200):i + 4000]
    return None


def tsan_build(path=None):
    """True when the binary under test is a ThreadSanitizer build (clang
    links the TSan runtime statically: look for its entry point)."""
    try:
        with open(path or server_bin(), "rb") as f:
            return b"__tsan_init" in f.read()
    except OSError:
        return False


# Test ports come from below the kernel's ephemeral range (32768-60999 on
# Debian), so that no outgoing connection, of this test or of another one
# running beside it under ctest -j, can be given the port between the
# moment it is chosen and the moment the server binds it.  Among the test
# processes themselves, a port is reserved by an flock()ed file held for
# the life of the process that chose it: two tests running at once never
# choose the same port, and a crashed test frees its ports with its fds.
PORT_RANGE = (23000, 32700)
PORT_LOCK_DIR = os.path.join(tempfile.gettempdir(), "cairn-test-ports")
_port_locks = {}                    # port -> open lock file, held until exit


def reserve_port(port):
    """Reserve `port` for this process: True when no other test process
    holds it and nothing listens on 127.0.0.1:port now."""
    if port in _port_locks:
        return False
    os.makedirs(PORT_LOCK_DIR, exist_ok=True)
    f = open(os.path.join(PORT_LOCK_DIR, str(port)), "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return False
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, port))
    except OSError:
        f.close()
        return False
    finally:
        s.close()
    _port_locks[port] = f
    return True


def free_port():
    """A free TCP port on 127.0.0.1 that no other test process will be
    given, outside the range the kernel hands to outgoing connections."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(1000):
        port = rng.randrange(*PORT_RANGE)
        if reserve_port(port):
            return port
    raise RuntimeError("no free port in %d-%d" % PORT_RANGE)


def _kill_proc(p, timeout=STOP_TIMEOUT):
    """SIGTERM, bounded wait, then SIGKILL. Returns the exit status."""
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout)
    if p in _live:
        _live.remove(p)
    return p.returncode


def _kill_all():
    for p in list(_live):
        try:
            if p.poll() is None:
                p.kill()
            p.wait(STOP_TIMEOUT)
        except Exception:
            pass
        if p in _live:
            _live.remove(p)


atexit.register(_kill_all)


def kill_pid(pid, timeout=STOP_TIMEOUT):
    """Stop a process we started but do not hold a Popen for (daemons):
    SIGTERM, poll until gone (bounded), then SIGKILL."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait_until(lambda: not pid_alive(pid), timeout):
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_until(lambda: not pid_alive(pid), timeout)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours still answers kill(0); check /proc
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _threads_stopped(pid):
    """Is every thread of `pid` stopped (state T or t in /proc)?"""
    try:
        tids = os.listdir("/proc/%d/task" % pid)
        for tid in tids:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                # "tid (comm) S ...": the state follows the last ')'.
                if f.read().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
                    return False
    except (OSError, IndexError):
        return False
    return True


def freeze(pid, timeout=START_TIMEOUT):
    """SIGSTOP `pid` and wait until every thread of it has stopped.  kill()
    only posts the signal: one thread is woken to start the group stop, and
    until the scheduler runs it (milliseconds on a loaded machine) the other
    threads go on working, e.g. acknowledge a replicated write.  Raises if
    the process does not stop in time."""
    os.kill(pid, signal.SIGSTOP)
    if not wait_until(lambda: _threads_stopped(pid), timeout, 0.001):
        raise RuntimeError("process %d did not stop within %.0f s" % (pid, timeout))


def read_pid(path):
    """The pid in `path`, or None if missing / not (yet) a number."""
    try:
        with open(path) as f:
            s = f.read().strip()
    except OSError:
        return None
    return int(s) if s.isdigit() else None


def proc_uid(pid):
    """The real uid process `pid` runs as."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    return None


def wait_until(cond, timeout, interval=0.02):
    """Poll cond() until true or timeout; return its last truthy value or False."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def can_connect(host, port, timeout=0.5):
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return False
    s.close()
    return True


def root_user_args(args):
    """memcached (and cairn, which copies it) refuses to run as root without
    -u; add '-u root' when we are root and the caller gave no -u."""
    if os.geteuid() == 0 and "-u" not in args:
        return ["-u", "root"] + list(args)
    return list(args)


class Server:
    """A server process on 127.0.0.1:<free port>.  Use as a context manager
    or call start()/stop().  With external=True (the default) and env
    CAIRN_TEST_ADDR set, no process is started and that address is used."""

    def __init__(self, args=(), bin=None, external=True, stderr=None):
        self.bin = bin or server_bin()
        self.args = list(args)
        self.proc = None
        self.host = HOST
        self.port = None
        self.external = False
        self.stderr_path = None
        ext = os.environ.get("CAIRN_TEST_ADDR") if external else None
        if ext:
            h, p = ext.rsplit(":", 1)
            self.host, self.port, self.external = h, int(p), True

    @property
    def addr(self):
        return (self.host, self.port)

    @property
    def addr_str(self):
        return "%s:%d" % (self.host, self.port)

    def start(self):
        if self.external:
            if not can_connect(self.host, self.port, DEFAULT_TIMEOUT):
                raise RuntimeError("CAIRN_TEST_ADDR %s not reachable" % self.addr_str)
            return self
        port = free_port()
        args = root_user_args(["-l", HOST, "-p", str(port)] + self.args)
        # Protocol tests run cairn without persistence unless they ask
        # for it; a data dir in the test's cwd would be shared.
        if not is_memcached(self.bin) and not any(
                a in ("--ephemeral", "--data-dir") or a.startswith("--data-dir=")
                for a in self.args):
            args.append("--ephemeral")
        # A persistent node also listens on its replication port, by
        # default port + 10000, which nobody checked was free: another
        # process on it made the node exit after recovery, once its
        # client port had already accepted the test's connection.
        if (not is_memcached(self.bin) and "--ephemeral" not in args and
                not any(a.startswith("--repl-port") for a in args)):
            args += ["--repl-port", str(free_port())]
        fd, self.stderr_path = tempfile.mkstemp(prefix="cairn-it-", suffix=".err")
        errf = os.fdopen(fd, "wb")
        p = subprocess.Popen([self.bin] + args, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=errf)
        errf.close()
        _live.append(p)
        ok = wait_until(lambda: p.poll() is not None or can_connect(HOST, port),
                        START_TIMEOUT)
        if ok and p.poll() is None:
            self.proc, self.port = p, port
            return self
        _kill_proc(p)
        raise RuntimeError("server %s %s did not start: %s"
                           % (self.bin, " ".join(self.args), self.stderr_text()))

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""

    def alive(self):
        if self.external:
            return can_connect(self.host, self.port)
        return self.proc is not None and self.proc.poll() is None

    def stop(self, check=True):
        """SIGTERM (SIGKILL after STOP_TIMEOUT); returns the exit status.
        With check (the default) raise AssertionError when the server logged
        a sanitizer report, exited with the TSan exit code, or was running
        and did not exit 0 on SIGTERM: a server that dies at shutdown, or
        with a race report, fails the test that stopped it."""
        rc = None
        was_running = False
        if self.proc is not None:
            was_running = self.proc.poll() is None
            rc = _kill_proc(self.proc)
            self.proc = None
        problem = None
        if check and not self.external:
            report = sanitizer_report(self.stderr_text())
            if report is not None:
                problem = "sanitizer report (exit status %r):\n%s" % (rc, report)
            elif rc == TSAN_EXITCODE or (was_running and rc != 0):
                problem = ("server exited with status %r on SIGTERM; stderr:\n%s"
                           % (rc, self.stderr_text()[-3000:]))
        if self.stderr_path:
            try:
                os.unlink(self.stderr_path)
            except OSError:
                pass
            self.stderr_path = None
        if problem is not None:
            raise AssertionError("%s %s: %s" % (self.bin, " ".join(self.args), problem))
        return rc

    def conn(self, timeout=DEFAULT_TIMEOUT):
        return Conn(self.host, self.port, timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SharedServerTest(unittest.TestCase):
    """A test class whose tests share one server (default flags), started
    once for the class and stopped after it: `self.server`."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server().start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()


class ConnClosed(Exception):
    pass


class Conn:
    """Raw socket helper.  All reads are bounded by a timeout."""

    def __init__(self, host, port, timeout=DEFAULT_TIMEOUT):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out; have %r" % self.buf[-200:])
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise ConnClosed("connection closed; have %r" % self.buf[-200:])
        self.buf += chunk

    def read_exact(self, n, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_until(self, term, timeout=None):
        """Read until `term` (bytes, or a compiled bytes regex matched
        against the whole buffer) appears; return everything up to and
        including it."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            if isinstance(term, bytes):
                i = self.buf.find(term)
                if i >= 0:
                    end = i + len(term)
                    out, self.buf = self.buf[:end], self.buf[end:]
                    return out
            else:
                m = term.search(self.buf)
                if m:
                    out, self.buf = self.buf[:m.end()], self.buf[m.end():]
                    return out
            self._fill(deadline)

    def readline(self, timeout=None):
        return self.read_until(b"\r\n", timeout)

    def read_to_eof(self, timeout=None):
        """Read until the peer closes; returns everything read."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                self._fill(deadline)
            except ConnClosed:
                out, self.buf = self.buf, b""
                return out

    def is_closed(self, timeout=None):
        """True if the peer closes the connection (EOF/reset) within timeout
        and sends nothing more."""
        try:
            rest = self.read_to_eof(timeout)
        except socket.timeout:
            return False
        return rest == b""

    def request(self, data, term=b"\r\n", timeout=None):
        self.send(data)
        return self.read_until(term, timeout)

    # Sentinel: append "version\r\n" to a request and read up to the VERSION
    # line; everything before it is the complete reply to `data`.  This
    # proves there are no extra bytes without waiting for a timeout.
    _VERSION_RE = re.compile(rb"VERSION [^\r\n]*\r\n")

    def exchange(self, data, timeout=None):
        self.send(data + b"version\r\n")
        out = self.read_until(self._VERSION_RE, timeout)
        m = list(self._VERSION_RE.finditer(out))[-1]
        return out[:m.start()]

    def storage(self, cmd, key, value, flags=0, exptime=0, extra=b""):
        if isinstance(key, str):
            key = key.encode()
        if isinstance(value, str):
            value = value.encode()
        line = b"%s %s %d %d %d%s\r\n" % (cmd.encode(), key, flags, exptime,
                                         len(value), extra)
        return self.request(line + value + b"\r\n")

    def set(self, key, value, flags=0, exptime=0):
        return self.storage("set", key, value, flags, exptime)

    def get(self, key):
        """Return the value bytes, or None on a miss."""
        if isinstance(key, str):
            key = key.encode()
        self.send(b"get " + key + b"\r\n")
        return self.read_get_reply()

    def read_get_reply(self):
        """Read one get's reply (for pipelined gets): the value or None."""
        line = self.readline()
        if line == b"END\r\n":
            return None
        parts = line.split()
        if parts[0] != b"VALUE":
            raise AssertionError("unexpected reply to get: %r" % line)
        n = int(parts[3])
        data = self.read_exact(n + 2)
        end = self.readline()
        if end != b"END\r\n":
            raise AssertionError("missing END after value: %r" % end)
        return data[:-2]

    def gets(self, key):
        """Return (value, cas) or None."""
        if isinstance(key, str):
            key = key.encode()
        self.send(b"gets " + key + b"\r\n")
        line = self.readline()
        if line == b"END\r\n":
            return None
        parts = line.split()
        n = int(parts[3])
        data = self.read_exact(n + 2)
        if self.readline() != b"END\r\n":
            raise AssertionError("missing END")
        return data[:-2], int(parts[4])

    def stats(self, sub=b""):
        cmd = b"stats" + ((b" " + sub) if sub else b"") + b"\r\n"
        self.send(cmd)
        out = self.read_until(b"END\r\n")
        d = {}
        for line in out.split(b"\r\n"):
            if line.startswith(b"STAT "):
                _, k, v = line.split(b" ", 2)
                d[k.decode()] = v.decode()
        return d


def stats(server):
    with server.conn() as c:
        return c.stats()
