#!/usr/bin/python3
# Every operation python3-pylibmc (libmemcached) offers, each result checked.
# Usage: pylibmc_ops.py HOST PORT binary|ascii
# Prints "ok <op>" per operation and "ALL OK" at the end; exits 1 at the
# first wrong result.  Run by test_pylibmc.py against memcached and cairn.

import sys

import pylibmc

host, port, mode = sys.argv[1], sys.argv[2], sys.argv[3]
binary = mode == "binary"


def check(name, got, want):
    if got != want:
        print("FAIL %s: got %r, expected %r" % (name, got, want))
        sys.exit(1)
    print("ok %s" % name)


def outcome(f, *args, **kw):
    """f's result, or "NotFound" when it raises pylibmc.NotFound."""
    try:
        return f(*args, **kw)
    except pylibmc.NotFound:
        return "NotFound"


mc = pylibmc.Client(["%s:%s" % (host, port)], binary=binary,
                    behaviors={"cas": True, "tcp_nodelay": True, "connect_timeout": 5000,
                               "receive_timeout": 5000000, "send_timeout": 5000000})
check("binary behavior", mc.binary, binary)
check("flush_all", mc.flush_all(), True)

check("get miss", mc.get("k1"), None)
check("get default", mc.get("k1", "dflt"), "dflt")
check("set", mc.set("k1", "v1"), True)
check("get hit", mc.get("k1"), "v1")
check("set bytes", mc.set("kb", b"\x00\x01\xff"), True)
check("get bytes", mc.get("kb"), b"\x00\x01\xff")
check("set int", mc.set("ki", 42), True)
check("get int (flags kept)", mc.get("ki"), 42)
check("set object (pickled)", mc.set("ko", {"a": [1, 2]}), True)
check("get object", mc.get("ko"), {"a": [1, 2]})
check("set with time", mc.set("kt", "t", time=100), True)
check("get with time", mc.get("kt"), "t")
big = "x" * 200000
check("set big value", mc.set("kbig", big), True)
check("get big value", mc.get("kbig"), big)

check("add existing", mc.add("k1", "other"), False)
check("add new", mc.add("k2", "v2"), True)
check("get added", mc.get("k2"), "v2")
# libmemcached maps the binary NOT_FOUND status of a replace to an error
check("replace missing", outcome(mc.replace, "nokey", "x"), "NotFound" if binary else False)
check("replace existing", mc.replace("k2", "v2b"), True)
check("get replaced", mc.get("k2"), "v2b")

check("delete existing", mc.delete("k2"), True)
check("delete missing", mc.delete("k2"), False)
check("get deleted", mc.get("k2"), None)

check("set counter", mc.set("cnt", "10"), True)
check("incr", mc.incr("cnt"), 11)
check("incr by 5", mc.incr("cnt", 5), 16)
check("decr", mc.decr("cnt"), 15)
check("decr by 20 (floors at 0)", mc.decr("cnt", 20), 0)
check("incr missing", outcome(mc.incr, "nocnt"), "NotFound")
check("incr_multi", mc.incr_multi(["cnt"], delta=3), None)
# (ASCII incr/decr keep the value's length, padding with spaces)
check("get after incr_multi", int(mc.get("cnt")), 3)

check("set for append", mc.set("ap", "mid"), True)
check("append", mc.append("ap", "-end"), True)
check("prepend", mc.prepend("ap", "start-"), True)
check("get appended", mc.get("ap"), "start-mid-end")
check("append missing", mc.append("noap", "x"), False)
check("prepend missing", mc.prepend("noap", "x"), False)

v, cas = mc.gets("k1")
check("gets value", v, "v1")
check("gets cas is an int > 0", isinstance(cas, int) and cas > 0, True)
check("cas with right token", mc.cas("k1", "v1-cas", cas), True)
check("get after cas", mc.get("k1"), "v1-cas")
check("cas with stale token", mc.cas("k1", "stale", cas), False)
check("get after stale cas", mc.get("k1"), "v1-cas")
check("gets miss", mc.gets("nokey"), (None, None))
check("cas missing", outcome(mc.cas, "nokey", "x", cas), "NotFound")

check("touch existing", mc.touch("k1", 100), True)
check("touch missing", mc.touch("nokey", 100), False)
check("get after touch", mc.get("k1"), "v1-cas")

check("set_multi", mc.set_multi({"m1": "a", "m2": "b", "m3": "c"}), [])
check("set_multi with prefix", mc.set_multi({"1": "p1", "2": "p2"}, key_prefix="pre:"), [])
check("get_multi", mc.get_multi(["m1", "m2", "m3", "nokey"]), {"m1": "a", "m2": "b", "m3": "c"})
check("get_multi with prefix", mc.get_multi(["1", "2"], key_prefix="pre:"), {"1": "p1", "2": "p2"})
check("add_multi", mc.add_multi({"m1": "no", "m4": "d"}), ["m1"])
check("get add_multi", mc.get_multi(["m1", "m4"]), {"m1": "a", "m4": "d"})
check("delete_multi", mc.delete_multi(["m1", "m2"]), True)
check("get_multi after delete_multi", mc.get_multi(["m1", "m2", "m3"]), {"m3": "c"})
check("delete_multi with a missing key", mc.delete_multi(["m3", "nokey"]), False)

check("dict-style set", mc.__setitem__("d1", "dv"), None)
check("dict-style get", mc["d1"], "dv")
check("contains", "d1" in mc, True)
check("dict-style delete", mc.__delitem__("d1"), None)
check("not contains", "d1" in mc, False)

stats = mc.get_stats()
check("get_stats: one server", len(stats), 1)
def text(s):
    return s.decode() if isinstance(s, bytes) else s


name, st = stats[0]
st = {text(k): text(v) for k, v in st.items()}
check("get_stats: server name", text(name).startswith("%s:%s" % (host, port)), True)
check("get_stats: has pid, version, curr_items",
      all(k in st for k in ("pid", "version", "curr_items")), True)
check("get_stats: cmd_get counted", int(st["cmd_get"]) > 0, True)

clone = mc.clone()
check("clone get", clone.get("k1"), "v1-cas")
check("flush_all", mc.flush_all(), True)
check("get after flush_all", mc.get("k1"), None)
mc.disconnect_all()
check("get after disconnect_all (reconnects)", mc.get("k1"), None)
print("ALL OK")
