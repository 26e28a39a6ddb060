#!/usr/bin/python3
"""A TCP proxy for the replication link that misbehaves on command.

Sits between a replica and its primary (start the replica with
--replica-of 127.0.0.1:<proxy.port>) and forwards bytes both ways.  Modes,
switched at any time:

  pass()        forward everything (the default)
  stall()       stop forwarding in both directions; the connections stay
                open and nothing is read from them, so the sender's kernel
                buffers fill and TCP pushes back (a hung peer or network)
  cut()         close both sides of every current connection (a dropped
                link); new connections are accepted and forwarded unless
                refuse(True) is also set
  refuse(on)    accept new connections and close them at once
  slow(bps)     forward at most bps bytes per second in each direction

Byte counters (to_replica / to_primary, totals since start) let a test act
"mid-snapshot": wait_bytes(n) waits until n bytes went primary -> replica.

Use from a test:
    p = Proxy(("127.0.0.1", primary_repl_port)).start()
    ... p.stall(); ...; p.pass_(); ...; p.stop()

Or standalone, with a line-based control socket (commands: pass, stall,
cut, refuse on|off, slow BPS, stats):
    /usr/bin/python3 proxy.py --listen 0 --target 127.0.0.1:21211 --control 0
It prints "proxy PORT control PORT" once listening.

Threads only (no asyncio) so that it runs inside unittest without an event
loop; every socket operation is bounded (poll with a short timeout) so the
mode is re-checked at least every POLL seconds.
"""

import argparse
import select
import socket
import sys
import threading
import time

HOST = "127.0.0.1"
POLL = 0.05
CHUNK = 65536


class _Pair:
    """One client connection and its upstream connection."""

    def __init__(self, proxy, down, up):
        self.proxy = proxy
        self.down = down          # the replica side
        self.up = up              # the primary side
        self.closed = False
        self.lock = threading.Lock()

    def close(self):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.down, self.up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def pump(self, src, dst, to_replica):
        p = self.proxy
        try:
            while not self.closed and not p._stopping:
                mode, bps = p._mode, p._bps
                if mode == "stall":
                    time.sleep(POLL)
                    continue
                try:
                    r, _, _ = select.select([src], [], [], POLL)
                except (OSError, ValueError):
                    break
                if not r:
                    continue
                want = CHUNK
                if mode == "slow" and bps > 0:
                    want = max(1, min(CHUNK, int(bps * POLL)))
                try:
                    data = src.recv(want)
                except OSError:
                    break
                if not data:
                    break
                # Send everything, re-checking for stall/cut in between.
                view = memoryview(data)
                while view and not self.closed and not p._stopping:
                    if p._mode == "stall":
                        time.sleep(POLL)
                        continue
                    try:
                        _, w, _ = select.select([], [dst], [], POLL)
                    except (OSError, ValueError):
                        self.close()
                        return
                    if not w:
                        continue
                    try:
                        n = dst.send(view)
                    except OSError:
                        self.close()
                        return
                    view = view[n:]
                    with p._lock:
                        if to_replica:
                            p.to_replica += n
                        else:
                            p.to_primary += n
                if mode == "slow" and bps > 0:
                    time.sleep(len(data) / float(bps))
        finally:
            self.close()


class Proxy:
    def __init__(self, target, listen_port=0):
        self.target = target
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((HOST, listen_port))
        self._lsock.listen(16)
        self.port = self._lsock.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs = []
        self._threads = []
        self._mode = "pass"
        self._bps = 0
        self._refuse = False
        self._stopping = False
        self.to_replica = 0
        self.to_primary = 0
        self.accepted = 0

    # -- control --------------------------------------------------------
    def pass_(self):
        self._mode, self._bps = "pass", 0

    def stall(self):
        self._mode = "stall"

    def slow(self, bps):
        self._bps = int(bps)
        self._mode = "slow"

    def refuse(self, on=True):
        self._refuse = bool(on)

    def cut(self):
        """Close every current connection (both sides)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.close()
        if self._mode == "stall":
            self._mode = "pass"

    def connections(self):
        with self._lock:
            self._pairs = [p for p in self._pairs if not p.closed]
            return len(self._pairs)

    def wait_bytes(self, n, timeout):
        """Wait until n bytes went primary -> replica; True if they did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.to_replica >= n:
                return True
            time.sleep(0.01)
        return self.to_replica >= n

    # -- lifecycle ------------------------------------------------------
    def start(self):
        t = threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def _accept_loop(self):
        self._lsock.settimeout(POLL)
        while not self._stopping:
            try:
                down, _ = self._lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            if self._refuse:
                down.close()
                continue
            try:
                up = socket.create_connection(self.target, timeout=2)
            except OSError:
                down.close()
                continue
            for s in (down, up):
                s.setblocking(True)
                s.settimeout(None)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(self, down, up)
            with self._lock:
                self._pairs.append(pair)
                self.accepted += 1
            for src, dst, to_rep in ((up, down, True), (down, up, False)):
                t = threading.Thread(target=pair.pump, args=(src, dst, to_rep),
                                     name="proxy-pump", daemon=True)
                t.start()
                self._threads.append(t)

    def stop(self):
        self._stopping = True
        try:
            self._lsock.close()
        except OSError:
            pass
        self.cut()
        for t in self._threads:
            t.join(2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _serve_control(proxy, port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, port))
    ls.listen(4)
    print("proxy %d control %d" % (proxy.port, ls.getsockname()[1]), flush=True)
    while True:
        c, _ = ls.accept()
        f = c.makefile("rwb")
        for line in f:
            words = line.decode("ascii", "replace").split()
            if not words:
                continue
            cmd, reply = words[0], "OK"
            if cmd == "pass":
                proxy.pass_()
            elif cmd == "stall":
                proxy.stall()
            elif cmd == "cut":
                proxy.cut()
            elif cmd == "refuse" and len(words) == 2:
                proxy.refuse(words[1] == "on")
            elif cmd == "slow" and len(words) == 2:
                proxy.slow(int(words[1]))
            elif cmd == "stats":
                reply = "mode=%s to_replica=%d to_primary=%d connections=%d" % (
                    proxy._mode, proxy.to_replica, proxy.to_primary, proxy.connections())
            else:
                reply = "ERROR"
            f.write((reply + "\n").encode())
            f.flush()
        c.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", type=int, default=0)
    ap.add_argument("--target", required=True, help="HOST:PORT of the primary's replication port")
    ap.add_argument("--control", type=int, default=0)
    a = ap.parse_args()
    host, port = a.target.rsplit(":", 1)
    proxy = Proxy((host, int(port)), a.listen).start()
    try:
        _serve_control(proxy, a.control)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()


if __name__ == "__main__":
    sys.exit(main())
