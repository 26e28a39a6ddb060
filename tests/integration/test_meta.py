#!/usr/bin/python3
# Scenario: memcached's meta protocol (mg, ms, md, ma, mn, me), byte for byte.
#
# A table of raw request byte strings and the EXACT reply bytes the real
# memcached 1.6.18 (Debian 12) sends; every reply below was observed by
# running it.  Each table entry becomes its own test_<name> method: it
# flushes the server, opens a fresh connection, sends each request and
# compares the reply.  After each reply a "version\r\n" sentinel is sent and
# its VERSION line must come next: this proves no extra bytes were sent,
# without waiting for a timeout.
#
# Replies are compared byte for byte except for two things that cannot be
# the same on every run, written as placeholders in the expected bytes:
#
#   {{cas:A}}   a CAS unique (digits).  The first use binds the name A to
#               the digits seen; every later {{cas:A}} must be the same
#               number, and two different names must be different numbers.
#               A request may use {{A}} (or {{A+1}}, {{A-1}}) to send the
#               bound number back, e.g. "ms k 1 C{{A}}".
#   {{ttl:N}}   a remaining TTL in seconds that was N when set: N-2 .. N.
#   {{nttl:N}}  memcached 1.6.18's "me" exp= field, which is the negated
#               remaining TTL: -N .. -N+2.
#   {{la:N}}    seconds since last access (mg l, me la=): 0 .. N.
#
# Everything else -- flag order, spacing, error strings, which replies the
# q flag hides -- is compared exactly.  Exact CAS numbering on a fresh
# server, expiry, values larger than the item size limit, splitting a
# request byte by byte and long pipelines are in the hand-written classes
# after the table.
#
# memcached 1.6.18 is what cairn must match.  Features that protocol.txt
# documents only for later versions (mg/ms/md/ma E, ms s and N, md x) are
# refused or ignored by 1.6.18 and served by cairn as protocol.txt says:
# those steps expect NEWER(1.6.18's reply, cairn's reply), the first
# checked against memcached, the second against cairn.  Elsewhere an
# example of an invalid flag is one both refuse (K, S, Y).
#
# Run: /usr/bin/python3 test_meta.py --bin PATH   (or CAIRN_BIN=PATH)

import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, "/work/main/tests/integration")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

K250 = b"k" * 250
K251 = b"k" * 251
CLOSED = object()          # expected "reply": the server closes the connection

BAD_FMT = b"CLIENT_ERROR bad command line format\r\n"
BAD_TOKEN = b"CLIENT_ERROR bad token in command line format\r\n"
BAD_CHUNK = b"CLIENT_ERROR bad data chunk\r\n"
INVALID_FLAG = b"CLIENT_ERROR invalid flag\r\n"
DUP_FLAG = b"CLIENT_ERROR duplicate flag\r\n"
INV_OR_DUP = b"CLIENT_ERROR invalid or duplicate flag\r\n"     # md, ma
OPAQUE_LONG = b"CLIENT_ERROR opaque token too long\r\n"
DECODE_KEY = b"CLIENT_ERROR error decoding key\r\n"
MG_TOO_MANY = b"CLIENT_ERROR options flags are too long\r\n"   # mg
TOO_MANY = b"CLIENT_ERROR options flags too long\r\n"          # ms, md, ma
MS_BAD_MODE = b"CLIENT_ERROR invalid mode for ms M token\r\n"
MA_BAD_MODE = b"CLIENT_ERROR invalid mode for ma M token\r\n"
M_LENGTH = b"CLIENT_ERROR incorrect length for M token\r\n"
BAD_DELTA = b"CLIENT_ERROR invalid numeric delta value\r\n"
BAD_INITIAL = b"CLIENT_ERROR invalid numeric initial value\r\n"
NON_NUM = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"

# 17 flag tokens: the most mg, md and ma take (ms: 16, as its length is a
# token too).  memcached counts command, key, [length], flags and its own
# end marker and refuses more than 20.
FLAGS16 = b"k s t c f h l u v O1 P L T0 N0 R0 I"
FLAGS17 = FLAGS16 + b" C1"


class NEWER:
    """A step whose reply differs on purpose: memcached 1.6.18 lacks the
    feature (first reply), cairn has it as protocol.txt describes it."""

    def __init__(self, memcached_reply, cairn_reply):
        self.memcached_reply, self.cairn_reply = memcached_reply, cairn_reply

    def pick(self):
        return self.memcached_reply if harness.is_memcached() else self.cairn_reply


def CAS(name):
    return b"{{cas:" + name.encode() + b"}}"


def E(name, n):
    """An E flag: the CAS bound to `name` plus n (above every CAS handed out
    so far, so above the cut of the last flush_all)."""
    return b"E{{%s+%d}}" % (name.encode(), n)


def CASIS(name, n):
    """A CAS that must be the one bound to `name` plus n."""
    return b"{{casis:%s+%d}}" % (name.encode(), n)


BASE = (b"set base 0 0 1\r\nb\r\ngets base\r\n",
        b"STORED\r\nVALUE base 0 1 {{cas:B}}\r\nb\r\nEND\r\n")


def TTL(n):
    return b"{{ttl:%d}}" % n


def NTTL(n):
    return b"{{nttl:%d}}" % n


def LA(n=2):
    return b"{{la:%d}}" % n


def REF(name, delta=0):
    if delta:
        return b"{{%s%+d}}" % (name.encode(), delta)
    return b"{{" + name.encode() + b"}}"


def ME(key, size, cas="A", fetch=b"no", exp=b"-1", la=2):
    """memcached 1.6.18's me reply for a small item (slab class 1)."""
    return (b"ME " + key + b" exp=" + exp + b" la=" + LA(la) + b" cas=" + CAS(cas) +
            b" fetch=" + fetch + b" cls=1 size=%d\r\n" % size)


# name -> list of steps; a step is (request, expected) or
# (request, expected, False) for a request whose data block is still
# incomplete, so no version sentinel may follow it.
TABLE = {
    # --- mn ------------------------------------------------------------------
    "mn": [(b"mn\r\n", b"MN\r\n")],
    "mn_ignores_arguments": [(b"mn foo bar\r\n", b"MN\r\n")],
    "mn_after_classic_pipeline": [
        (b"set a 0 0 1\r\nx\r\nget a\r\nmn\r\n", b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\nMN\r\n")],

    # --- unknown / malformed meta commands -----------------------------------
    "unknown_meta_command": [(b"mz foo\r\n", b"ERROR\r\n"), (b"mx a\r\n", b"ERROR\r\n"),
                             (b"mA a\r\n", b"ERROR\r\n")],
    "meta_command_is_case_sensitive": [(b"MG a v\r\n", b"ERROR\r\n"), (b"MN\r\n", b"ERROR\r\n")],
    "meta_command_three_letters": [(b"mgx a v\r\n", b"ERROR\r\n"), (b"mnn\r\n", b"ERROR\r\n")],
    "single_m": [(b"m\r\n", b"ERROR\r\n")],
    "meta_commands_without_key": [
        (b"mg\r\n", b"ERROR\r\n"), (b"ms\r\n", b"ERROR\r\n"), (b"md\r\n", b"ERROR\r\n"),
        (b"ma\r\n", b"ERROR\r\n"), (b"me\r\n", BAD_FMT), (b"mg  \r\n", b"ERROR\r\n")],
    "meta_key_251_bytes": [
        (b"mg " + K251 + b" v\r\n", BAD_FMT), (b"md " + K251 + b"\r\n", BAD_FMT),
        (b"ma " + K251 + b"\r\n", BAD_FMT), (b"me " + K251 + b"\r\n", BAD_FMT),
        # ms: the line is refused before the length is read, so the data
        # line is parsed as a command of its own
        (b"ms " + K251 + b" 1\r\nx\r\n", BAD_FMT + b"ERROR\r\n")],
    "meta_key_250_bytes": [
        (b"ms " + K250 + b" 1 k\r\nx\r\n", b"HD k" + K250 + b"\r\n"),
        (b"mg " + K250 + b" v\r\n", b"VA 1\r\nx\r\n"),
        (b"ma " + K250 + b" v\r\n", NON_NUM),
        (b"md " + K250 + b" q\r\nmn\r\n", b"MN\r\n"),
        (b"me " + K250 + b"\r\n", b"EN\r\n")],

    # --- mg: hits, misses, the value -----------------------------------------
    "mg_miss": [(b"mg nokey v\r\n", b"EN\r\n"), (b"mg nokey\r\n", b"EN\r\n")],
    "mg_hit_without_flags_is_HD": [(b"set a 0 0 3\r\nabc\r\n", b"STORED\r\n"),
                                   (b"mg a\r\n", b"HD\r\n")],
    "mg_v": [(b"set a 0 0 3\r\nabc\r\n", b"STORED\r\n"),
             (b"mg a v\r\n", b"VA 3\r\nabc\r\n")],
    "mg_v_empty_value": [(b"set e 0 0 0\r\n\r\n", b"STORED\r\n"),
                         (b"mg e v s\r\n", b"VA 0 s0\r\n\r\n")],
    "mg_v_binary_value_with_crlf": [
        (b"set b 0 0 6\r\n\x00\r\n\xff\r\n\r\n", b"STORED\r\n"),
        (b"mg b v\r\n", b"VA 6\r\n\x00\r\n\xff\r\n\r\n")],
    "mg_s": [(b"set a 0 0 3\r\nabc\r\n", b"STORED\r\n"), (b"mg a s\r\n", b"HD s3\r\n")],
    "mg_f": [(b"set a 7 0 1\r\nx\r\nset b 0 0 1\r\nx\r\nset c 4294967295 0 1\r\nx\r\n",
              b"STORED\r\nSTORED\r\nSTORED\r\n"),
             (b"mg a f\r\n", b"HD f7\r\n"), (b"mg b f\r\n", b"HD f0\r\n"),
             (b"mg c f\r\n", b"HD f4294967295\r\n")],
    "mg_t_unlimited_and_ttl": [
        (b"set a 0 0 1\r\nx\r\nset b 0 100 1\r\nx\r\n", b"STORED\r\nSTORED\r\n"),
        (b"mg a t\r\n", b"HD t-1\r\n"), (b"mg b t\r\n", b"HD t" + TTL(100) + b"\r\n")],
    "mg_k": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"), (b"mg a k\r\n", b"HD ka\r\n")],
    "mg_k_ignores_its_token": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                               (b"mg a kfoo\r\n", b"HD ka\r\n"),
                               (b"mg a vxyz\r\n", b"VA 1\r\nx\r\n")],
    "mg_c_equals_gets_cas": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"gets a\r\n", b"VALUE a 0 1 " + CAS("A") + b"\r\nx\r\nEND\r\n"),
        (b"mg a c\r\n", b"HD c" + CAS("A") + b"\r\n"),
        (b"set a 0 0 1\r\ny\r\n", b"STORED\r\n"),
        (b"mg a c v\r\n", b"VA 1 c" + CAS("B") + b"\r\ny\r\n"),
        (b"gets a\r\n", b"VALUE a 0 1 " + CAS("B") + b"\r\ny\r\nEND\r\n")],
    "mg_h_hit_before": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a h\r\n", b"HD h0\r\n"),
        (b"mg a h\r\n", b"HD h1\r\n"),
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a h v\r\n", b"VA 1 h0\r\nx\r\n")],
    "mg_h_after_classic_get": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                               (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n"),
                               (b"mg a h\r\n", b"HD h1\r\n")],
    "mg_l_last_access": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                         (b"mg a l\r\n", b"HD l" + LA() + b"\r\n"),
                         (b"mg a h l\r\n", b"HD h1 l" + LA() + b"\r\n")],
    "mg_u_does_not_mark_fetched": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a u h l\r\n", b"HD h0 l" + LA() + b"\r\n"),
        (b"mg a u h v\r\n", b"VA 1 h0\r\nx\r\n"),
        (b"mg a h\r\n", b"HD h0\r\n"),
        (b"mg a h u\r\n", b"HD h1\r\n")],
    "mg_reply_flags_in_request_order": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a s v f t c k O9 h\r\n", b"VA 1 s1 f0 t-1 c" + CAS("A") + b" ka O9 h0\r\nx\r\n"),
        (b"mg a O9 k c t f v s h\r\n", b"VA 1 O9 ka c" + CAS("A") + b" t-1 f0 s1 h1\r\nx\r\n")],
    "mg_17_flags_is_the_limit": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a " + FLAGS17 + b"\r\n",
         b"VA 1 ka s1 t-1 c" + CAS("A") + b" f0 h0 l" + LA() + b" O1\r\nx\r\n"),
        (b"mg a " + FLAGS17 + b" q\r\n", MG_TOO_MANY),
        (b"mg zz " + FLAGS17 + b" q\r\n", MG_TOO_MANY)],
    "mg_P_and_L_ignored": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                           (b"mg a P/x Lpath v\r\n", b"VA 1\r\nx\r\n"),
                           (b"mg a P L k\r\n", b"HD ka\r\n")],
    "mg_flags_of_other_commands_accepted": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a C5 I F5 MS D5 J5 v\r\n", b"VA 1\r\nx\r\n"),
        (b"mg a M5 v\r\n", b"VA 1\r\nx\r\n")],

    # --- mg: opaque ----------------------------------------------------------
    "mg_opaque_hit_and_miss": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a O123 v\r\n", b"VA 1 O123\r\nx\r\n"),
        (b"mg zz O123 v\r\n", b"EN O123\r\n"),
        (b"mg zz k O123 v\r\n", b"EN kzz O123\r\n"),
        (b"mg zz O123 k\r\n", b"EN O123 kzz\r\n")],
    "mg_opaque_empty_and_any_bytes": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a O\r\n", b"HD O\r\n"),
        (b"mg a Oa-b_c.d/e\r\n", b"HD Oa-b_c.d/e\r\n")],
    "mg_opaque_31_bytes_ok_32_too_long": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a O" + b"9" * 31 + b"\r\n", b"HD O" + b"9" * 31 + b"\r\n"),
        (b"mg a O" + b"9" * 32 + b"\r\n", OPAQUE_LONG),
        (b"mg zz O" + b"9" * 32 + b"\r\n", OPAQUE_LONG),
        (b"mg zz O" + b"9" * 32 + b" q\r\n", OPAQUE_LONG)],

    # --- mg: quiet mode ------------------------------------------------------
    "mg_q_hides_miss_only": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg zz q v\r\nmn\r\n", b"MN\r\n"),
        (b"mg zz q k O1\r\nmn\r\n", b"MN\r\n"),
        (b"mg a q\r\nmn\r\n", b"HD\r\nMN\r\n"),
        (b"mg a q v k O2\r\nmn\r\n", b"VA 1 ka O2\r\nx\r\nMN\r\n")],
    "mg_q_errors_still_sent": [
        (b"mg a Y q\r\nmg zz Y q\r\nmg zz q q\r\nmn\r\n",
         INVALID_FLAG + INVALID_FLAG + DUP_FLAG + b"MN\r\n")],
    "mg_q_pipeline_with_opaques": [
        (b"set a 0 0 1\r\n1\r\nset c 5 0 2\r\n33\r\n", b"STORED\r\nSTORED\r\n"),
        (b"mg a q v O1\r\nmg b q v O2\r\nmg c q v f O3\r\nmg d q v O4\r\nmn\r\n",
         b"VA 1 O1\r\n1\r\nVA 2 f5 O3\r\n33\r\nMN\r\n")],

    # --- mg: TTL changes (T) -------------------------------------------------
    "mg_T_sets_ttl": [
        (b"set a 0 100 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a T30\r\n", b"HD\r\n"),
        (b"mg a t\r\n", b"HD t" + TTL(30) + b"\r\n"),
        (b"mg a T0 v\r\n", b"VA 1\r\nx\r\n"),
        (b"mg a t\r\n", b"HD t-1\r\n")],
    "mg_t_before_T_reports_old_ttl": [
        (b"set a 0 100 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a t T200\r\n", b"HD t" + TTL(100) + b"\r\n"),
        (b"mg a T300 t\r\n", b"HD t300\r\n"),
        (b"mg a T0 t\r\n", b"HD t-1\r\n")],
    "mg_T_negative_expires": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                              (b"mg a T-1\r\n", b"HD\r\n"),
                              (b"mg a v\r\n", b"EN\r\n")],
    "mg_T_miss": [(b"mg zz T30\r\n", b"EN\r\n"), (b"mg zz T30 q\r\nmn\r\n", b"MN\r\n")],
    "mg_t_after_touch_and_gat": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"touch a 50\r\n", b"TOUCHED\r\n"),
        (b"mg a t\r\n", b"HD t" + TTL(50) + b"\r\n"),
        (b"gat 70 a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n"),
        (b"mg a t\r\n", b"HD t" + TTL(70) + b"\r\n")],

    # --- mg: vivify (N), recache (R), W / Z ----------------------------------
    "mg_N_vivifies_and_wins_once": [
        (b"mg n N30 v c t s f\r\n", b"VA 0 c" + CAS("A") + b" t" + TTL(30) + b" s0 f0 W\r\n\r\n"),
        (b"mg n N30 v c t\r\n", b"VA 0 c" + CAS("A") + b" t" + TTL(30) + b" Z\r\n\r\n"),
        (b"mg n v\r\n", b"VA 0 Z\r\n\r\n"),
        (b"get n\r\n", b"VALUE n 0 0\r\n\r\nEND\r\n")],
    "mg_N_without_v_is_HD_W": [(b"mg n N30\r\n", b"HD W\r\n"), (b"mg n N30\r\n", b"HD Z\r\n")],
    "mg_N0_never_expires": [(b"mg n N0 t\r\n", b"HD t-1 W\r\n"), (b"mg n t\r\n", b"HD t-1 Z\r\n")],
    "mg_N_on_hit_no_W": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                         (b"mg a N30 v t\r\n", b"VA 1 t-1\r\nx\r\n")],
    "mg_N_then_ms_clears_Z": [
        (b"mg n N30\r\n", b"HD W\r\n"),
        (b"ms n 3 T60\r\nnew\r\n", b"HD\r\n"),
        (b"mg n N30 v t\r\n", b"VA 3 t" + TTL(60) + b"\r\nnew\r\n")],
    "mg_N_q_still_sends_hit": [
        (b"mg n2 N30 q k O1\r\nmn\r\n", b"HD kn2 O1 W\r\nMN\r\n"),
        (b"mg n2 N30 q k O1\r\nmn\r\n", b"HD kn2 O1 Z\r\nMN\r\n")],
    "mg_N_bad_token": [(b"mg n Nx\r\n", BAD_TOKEN), (b"mg n N\r\n", BAD_TOKEN),
                       (b"mg n v\r\n", b"EN\r\n")],
    "mg_R_no_win_above_ttl": [(b"set r 0 100 1\r\nx\r\n", b"STORED\r\n"),
                              (b"mg r R30 t\r\n", b"HD t" + TTL(100) + b"\r\n")],
    "mg_R_wins_below_ttl_once": [
        (b"set r 0 100 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg r R200 t\r\n", b"HD t" + TTL(100) + b" W\r\n"),
        (b"mg r R200 t\r\n", b"HD t" + TTL(100) + b" Z\r\n"),
        (b"mg r t v\r\n", b"VA 1 t" + TTL(100) + b" Z\r\nx\r\n")],
    "mg_R_never_wins_without_ttl": [(b"set r 0 0 1\r\nx\r\n", b"STORED\r\n"),
                                    (b"mg r R200 t\r\n", b"HD t-1\r\n")],
    "mg_R_miss": [(b"mg r R30 v\r\n", b"EN\r\n")],
    "mg_N_and_R_on_miss": [(b"mg r N30 R30 v\r\n", b"VA 0 W\r\n\r\n"),
                           (b"mg r N30 R30 v\r\n", b"VA 0 Z\r\n\r\n")],

    # --- mg: stale items (X) -------------------------------------------------
    "mg_stale_after_md_I": [
        (b"ms s 3 T100\r\nold\r\n", b"HD\r\n"),
        (b"mg s c\r\n", b"HD c" + CAS("A") + b"\r\n"),
        (b"md s I T30\r\n", b"HD\r\n"),
        (b"mg s v c t\r\n", b"VA 3 c" + CAS("B") + b" t" + TTL(30) + b" X W\r\nold\r\n"),
        (b"mg s v c t\r\n", b"VA 3 c" + CAS("B") + b" t" + TTL(30) + b" Z X\r\nold\r\n"),
        (b"md s I\r\n", b"HD\r\n"),
        (b"mg s c\r\n", b"HD c" + CAS("C") + b" X W\r\n"),
        (b"mg s c\r\n", b"HD c" + CAS("C") + b" Z X\r\n")],

    # --- mg: base64 keys (b) -------------------------------------------------
    "mg_b_roundtrip": [
        (b"ms bWVvdw== 1 b k c\r\nx\r\n", b"HD kbWVvdw== b c" + CAS("A") + b"\r\n"),
        (b"mg bWVvdw== b k v\r\n", b"VA 1 kbWVvdw== b\r\nx\r\n"),
        (b"get meow\r\n", b"VALUE meow 0 1\r\nx\r\nEND\r\n"),
        (b"gets meow\r\n", b"VALUE meow 0 1 " + CAS("A") + b"\r\nx\r\nEND\r\n")],
    # the item remembers it was stored with a binary key: k is base64 even
    # when it is read by its plain name
    "mg_b_item_keeps_binary_key_flag": [
        (b"ms bWVvdw== 1 b\r\nx\r\n", b"HD\r\n"),
        (b"mg meow k v\r\n", b"VA 1 kbWVvdw== b\r\nx\r\n")],
    "mg_b_plain_item_read_with_b": [(b"set ab 0 0 1\r\nx\r\n", b"STORED\r\n"),
                                    (b"mg YWI= b k v\r\n", b"VA 1 kab\r\nx\r\n")],
    "mg_b_binary_bytes_key": [
        (b"ms AAEC/w== 2 b k\r\nbb\r\n", b"HD kAAEC/w== b\r\n"),
        (b"mg AAEC/w== b k v s\r\n", b"VA 2 kAAEC/w== b s2\r\nbb\r\n"),
        (b"ms IGEgYg== 1 b k\r\nx\r\n", b"HD kIGEgYg== b\r\n"),
        (b"mg IGEgYg== b s k\r\n", b"HD s1 kIGEgYg== b\r\n")],
    "mg_b_miss": [(b"mg bm9wZQ== b k v O1\r\n", b"EN kbm9wZQ== b O1\r\n"),
                  (b"mg bm9wZQ== b k v q\r\nmn\r\n", b"MN\r\n")],
    "mg_b_invalid_base64": [
        (b"mg ### b\r\n", DECODE_KEY), (b"mg YQ b v\r\n", DECODE_KEY),
        (b"mg YQ= b v\r\n", DECODE_KEY), (b"mg = b v\r\n", DECODE_KEY),
        (b"mg ==== b v\r\n", DECODE_KEY), (b"mg zz b k v O1\r\n", DECODE_KEY),
        (b"mg ### b q\r\nmn\r\n", DECODE_KEY + b"MN\r\n")],
    # decoding stops at the first padding: YWI=YWI= is the key "ab"
    "mg_b_bytes_after_padding_ignored": [
        (b"ms YWI=YWI= 1 b k\r\nx\r\n", b"HD kYWI= b\r\n"),
        (b"mg ab v\r\n", b"VA 1\r\nx\r\n")],

    # --- mg: errors ----------------------------------------------------------
    "mg_invalid_flags": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a Y\r\n", INVALID_FLAG), (b"mg a 1\r\n", INVALID_FLAG),
        (b"mg a -\r\n", INVALID_FLAG), (b"mg a S5 v\r\n", INVALID_FLAG),
        (b"mg a K v\r\n", INVALID_FLAG), (b"mg zz Y\r\n", INVALID_FLAG),
        (b"mg a noreply\r\n", INVALID_FLAG)],
    # E: the CAS of what mg changes, i.e. an item N vivifies; x is md's
    "mg_E_and_x_added_after_1_6_18": [
        BASE,
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a E5 v\r\n", NEWER(INVALID_FLAG, b"VA 1\r\nx\r\n")),
        (b"mg a x v\r\n", NEWER(INVALID_FLAG, b"VA 1\r\nx\r\n")),
        (b"mg vv N30 " + E("B", 1000) + b" c\r\n",
         NEWER(INVALID_FLAG, b"HD c" + CASIS("B", 1000) + b" W\r\n")),
        (b"mg vv c\r\n", NEWER(b"EN\r\n", b"HD c" + CASIS("B", 1000) + b" Z\r\n")),
        (b"mg a E5 c\r\n", NEWER(INVALID_FLAG, b"HD c" + CAS("A") + b"\r\n"))],
    "mg_duplicate_flags": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a v v\r\n", DUP_FLAG), (b"mg a O1 O2\r\n", DUP_FLAG),
        (b"mg a P1 P2\r\n", DUP_FLAG), (b"mg a k q k\r\n", DUP_FLAG),
        (b"mg zz t t\r\n", DUP_FLAG)],
    # a flag byte >= 127 is reported as a duplicate
    "mg_flag_byte_over_127": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                              (b"mg a \xff\r\n", DUP_FLAG), (b"mg a \x80v\r\n", DUP_FLAG)],
    "mg_bad_numeric_tokens": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a Tx\r\n", BAD_TOKEN), (b"mg a T\r\n", BAD_TOKEN),
        (b"mg a Rx\r\n", BAD_TOKEN), (b"mg a Cx v\r\n", BAD_TOKEN),
        (b"mg a Fx v\r\n", BAD_FMT), (b"mg a Dx v\r\n", BAD_DELTA),
        (b"mg a Jx v\r\n", BAD_INITIAL), (b"mg a M v\r\n", M_LENGTH),
        (b"mg a MSS v\r\n", M_LENGTH),
        (b"mg a t\r\n", b"HD t-1\r\n")],
    # numeric token errors: the last one wins, an unknown or duplicate flag
    # stops at once; F sets no message of its own (the default one, or an
    # earlier token's); the ms mode is checked after the opaque's length
    "error_precedence": [
        (b"mg a Tx Dx\r\n", BAD_DELTA), (b"mg a Dx Tx\r\n", BAD_TOKEN),
        (b"mg a Tx Y\r\n", INVALID_FLAG), (b"mg a Tx v v\r\n", DUP_FLAG),
        (b"ms a 1 Tx Fx\r\nx\r\n", BAD_TOKEN), (b"ms a 1 Fx Tx\r\nx\r\n", BAD_TOKEN),
        (b"ms a 1 Fx MX\r\nx\r\n", BAD_FMT),
        (b"ms a 1 MX O" + b"1" * 32 + b"\r\nx\r\n", MS_BAD_MODE),
        (b"md a Tx Y\r\n", INV_OR_DUP), (b"ma a MX Dx\r\n", INV_OR_DUP)],
    "mg_whitespace": [
        (b"set c 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg c  v\r\n", b"VA 1\r\nx\r\n"), (b"mg  c v\r\n", b"VA 1\r\nx\r\n"),
        (b" mg c v\r\n", b"VA 1\r\nx\r\n"), (b"mg c v \r\n", b"VA 1\r\nx\r\n"),
        (b"mg c v\n", b"VA 1\r\nx\r\n"),
        (b"mg c\tv\r\n", b"EN\r\n")],        # a tab is part of the key

    # --- ms: basics ----------------------------------------------------------
    "ms_basic_then_get": [(b"ms a 2\r\nhi\r\n", b"HD\r\n"),
                          (b"get a\r\n", b"VALUE a 0 2\r\nhi\r\nEND\r\n"),
                          (b"mg a v f t\r\n", b"VA 2 f0 t-1\r\nhi\r\n")],
    "ms_overwrites_flags_and_ttl": [
        (b"set a 5 100 1\r\nx\r\n", b"STORED\r\n"),
        (b"ms a 2\r\nhi\r\n", b"HD\r\n"),
        (b"mg a v f t\r\n", b"VA 2 f0 t-1\r\nhi\r\n")],
    "ms_empty_value": [(b"ms a 0\r\n\r\n", b"HD\r\n"),
                       (b"get a\r\n", b"VALUE a 0 0\r\n\r\nEND\r\n")],
    "ms_value_containing_crlf": [(b"ms a 4\r\na\r\nb\r\n", b"HD\r\n"),
                                 (b"mg a v\r\n", b"VA 4\r\na\r\nb\r\n")],
    "ms_bare_lf_command_line": [(b"ms a 2\nhi\r\n", b"HD\r\n"),
                                (b"mg a v\n", b"VA 2\r\nhi\r\n")],
    "ms_length_forms": [(b"ms a 01\r\nx\r\n", b"HD\r\n"), (b"ms b +1\r\ny\r\n", b"HD\r\n"),
                        (b"get a b\r\n", b"VALUE a 0 1\r\nx\r\nVALUE b 0 1\r\ny\r\nEND\r\n")],
    "ms_waits_for_whole_data_block": [
        (b"ms m 3\r\ng\r\n", b"", False),
        (b"\r\n", b"HD\r\n"),
        (b"mg m v\r\n", b"VA 3\r\ng\r\n\r\n")],
    "ms_F_client_flags": [
        (b"ms a 1 F4294967295\r\ng\r\n", b"HD\r\n"),
        (b"mg a f v\r\n", b"VA 1 f4294967295\r\ng\r\n"),
        (b"ms a 1 F+5\r\ng\r\n", b"HD\r\n"), (b"mg a f\r\n", b"HD f5\r\n"),
        (b"ms a 1 F00012\r\ng\r\n", b"HD\r\n"), (b"mg a f\r\n", b"HD f12\r\n"),
        (b"get a\r\n", b"VALUE a 12 1\r\ng\r\nEND\r\n")],
    # F is read as a 64-bit number and truncated to 32 bits
    "ms_F_above_32_bits_truncated": [
        (b"ms a 1 F4294967296\r\ng\r\n", b"HD\r\n"), (b"mg a f\r\n", b"HD f0\r\n"),
        (b"ms a 1 F4294967297\r\ng\r\n", b"HD\r\n"), (b"mg a f\r\n", b"HD f1\r\n")],
    "ms_F_invalid_swallows_data": [
        (b"ms a 1 F-1\r\ng\r\n", BAD_FMT), (b"ms a 1 Fx\r\ng\r\n", BAD_FMT),
        (b"ms a 1 F\r\ng\r\n", BAD_FMT), (b"mg a v\r\n", b"EN\r\n")],
    "ms_T_ttl": [
        (b"ms a 1 T100\r\nx\r\n", b"HD\r\n"), (b"mg a t\r\n", b"HD t" + TTL(100) + b"\r\n"),
        (b"ms a 1 T0\r\nx\r\n", b"HD\r\n"), (b"mg a t\r\n", b"HD t-1\r\n"),
        (b"ms a 1 T2592000\r\nx\r\n", b"HD\r\n"),
        (b"mg a t\r\n", b"HD t" + TTL(2592000) + b"\r\n")],
    "ms_T_negative_or_past_absolute_expires": [
        (b"ms a 1 T-1\r\nx\r\n", b"HD\r\n"), (b"mg a v\r\n", b"EN\r\n"),
        (b"ms a 1 T2592001\r\nx\r\n", b"HD\r\n"), (b"mg a v\r\n", b"EN\r\n")],
    "ms_T_invalid_swallows_data": [
        (b"ms a 1 T\r\ng\r\n", BAD_TOKEN), (b"ms a 1 Tx\r\ng\r\n", BAD_TOKEN),
        (b"mg a v\r\n", b"EN\r\n")],

    # --- ms: returned flags (c, k, O, b) -------------------------------------
    "ms_c_k_O_in_request_order": [
        (b"ms m 1 k O5 c\r\na\r\n", b"HD km O5 c" + CAS("A") + b"\r\n"),
        (b"ms m 1 c O5 k\r\na\r\n", b"HD c" + CAS("B") + b" O5 km\r\n"),
        (b"gets m\r\n", b"VALUE m 0 1 " + CAS("B") + b"\r\na\r\nEND\r\n")],
    "ms_c_is_zero_on_failure": [
        (b"ms m 1\r\na\r\n", b"HD\r\n"),
        (b"ms m 1 ME k O5 c\r\na\r\n", b"NS km O5 c0\r\n"),
        (b"ms m 1 C1 k O5 c\r\na\r\n", b"EX km O5 c0\r\n"),
        (b"ms nf 1 C1 k O5 c\r\na\r\n", b"NF knf O5 c0\r\n")],
    "ms_opaque_31_bytes_ok_32_too_long_swallowed": [
        (b"ms a 1 O" + b"1" * 31 + b"\r\nx\r\n", b"HD O" + b"1" * 31 + b"\r\n"),
        (b"ms a 1 O" + b"1" * 32 + b"\r\ny\r\n", OPAQUE_LONG),
        (b"mg a v\r\n", b"VA 1\r\nx\r\n")],
    "ms_b_key": [(b"ms YWJj 1 b k\r\nx\r\n", b"HD kYWJj b\r\n"),
                 (b"get abc\r\n", b"VALUE abc 0 1\r\nx\r\nEND\r\n"),
                 (b"mg abc k\r\n", b"HD kYWJj b\r\n")],
    "ms_b_invalid_swallows_data": [
        (b"ms ### 1 b\r\nx\r\n", DECODE_KEY), (b"ms YQ 1 b\r\nx\r\n", DECODE_KEY),
        (b"ms ==== 1 b q\r\nx\r\n", DECODE_KEY)],

    # --- ms: modes (M) -------------------------------------------------------
    "ms_ME_add": [(b"ms m 1 ME\r\na\r\n", b"HD\r\n"), (b"ms m 1 ME\r\nb\r\n", b"NS\r\n"),
                  (b"mg m v\r\n", b"VA 1\r\na\r\n")],
    "ms_MA_MP_append_prepend": [
        (b"ms m 1\r\na\r\n", b"HD\r\n"),
        (b"ms m 1 MA\r\nc\r\n", b"HD\r\n"), (b"ms m 1 MP\r\nd\r\n", b"HD\r\n"),
        (b"mg m v\r\n", b"VA 3\r\ndac\r\n")],
    "ms_MA_MP_MR_missing_is_NS": [
        (b"ms zz 1 MR\r\ne\r\n", b"NS\r\n"), (b"ms zz 1 MA\r\ne\r\n", b"NS\r\n"),
        (b"ms zz 1 MP\r\ne\r\n", b"NS\r\n"), (b"mg zz v\r\n", b"EN\r\n")],
    "ms_MR_replace": [(b"set m 0 0 1\r\nx\r\n", b"STORED\r\n"),
                      (b"ms m 1 MR F3\r\ne\r\n", b"HD\r\n"),
                      (b"get m\r\n", b"VALUE m 3 1\r\ne\r\nEND\r\n")],
    "ms_MS_explicit_set": [(b"ms m 1 MS\r\nf\r\n", b"HD\r\n"), (b"mg m v\r\n", b"VA 1\r\nf\r\n")],
    "ms_MA_keeps_flags_and_ttl": [
        (b"set x 5 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"ms x 1 MA F9 T100\r\ny\r\n", b"HD\r\n"),
        (b"mg x v f t\r\n", b"VA 2 f5 t-1\r\nxy\r\n")],
    "ms_bad_mode_swallows_data": [
        (b"ms m 1 Ms\r\nf\r\n", MS_BAD_MODE), (b"ms m 1 Ma\r\nf\r\n", MS_BAD_MODE),
        (b"ms m 1 MX\r\nf\r\n", MS_BAD_MODE), (b"ms m 1 M\r\nf\r\n", M_LENGTH),
        (b"ms m 1 MSS\r\nf\r\n", M_LENGTH), (b"ms m 1 MI\r\nf\r\n", MS_BAD_MODE),
        (b"mg m v\r\n", b"EN\r\n")],

    # --- ms: compare-and-swap (C) and invalidation (I) -----------------------
    "ms_C_compare": [
        (b"ms a 1 c\r\nx\r\n", b"HD c" + CAS("A") + b"\r\n"),
        (b"ms a 1 C" + REF("A", 1000) + b" c\r\ny\r\n", b"EX c0\r\n"),
        (b"ms a 1 C" + REF("A") + b" c\r\ny\r\n", b"HD c" + CAS("B") + b"\r\n"),
        (b"ms a 1 C" + REF("A") + b"\r\nz\r\n", b"EX\r\n"),
        (b"mg a v c\r\n", b"VA 1 c" + CAS("B") + b"\r\ny\r\n")],
    "ms_C_missing_is_NF": [(b"ms zz 1 C1 c\r\ns\r\n", b"NF c0\r\n"),
                           (b"ms zz 1 C0\r\ns\r\n", b"NF\r\n")],
    "ms_C0_on_existing_is_EX": [(b"ms a 1\r\nx\r\n", b"HD\r\n"), (b"ms a 1 C0\r\ny\r\n", b"EX\r\n")],
    "ms_C_with_gets_cas": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"gets a\r\n", b"VALUE a 0 1 " + CAS("A") + b"\r\nx\r\nEND\r\n"),
        (b"ms a 1 C" + REF("A") + b" F2\r\ny\r\n", b"HD\r\n"),
        (b"get a\r\n", b"VALUE a 2 1\r\ny\r\nEND\r\n")],
    "ms_C_with_append_prepend": [
        (b"ms a 1 c\r\ny\r\n", b"HD c" + CAS("A") + b"\r\n"),
        (b"ms a 1 C1 MA c\r\nz\r\n", b"EX c0\r\n"),
        (b"ms a 1 C" + REF("A") + b" MA c\r\nz\r\n", b"HD c" + CAS("B") + b"\r\n"),
        (b"ms a 1 C" + REF("B") + b" MP c\r\nw\r\n", b"HD c" + CAS("C") + b"\r\n"),
        (b"mg a v c\r\n", b"VA 3 c" + CAS("C") + b"\r\nwyz\r\n"),
        (b"ms zz 1 C1 MA c\r\ns\r\n", b"NS c0\r\n"),
        (b"ms zz 1 C1 MP c\r\ns\r\n", b"NS c0\r\n")],
    "ms_C_with_add_and_replace": [
        (b"ms a 1 c\r\ny\r\n", b"HD c" + CAS("A") + b"\r\n"),
        (b"ms a 1 C1 ME c\r\nq\r\n", b"NS c0\r\n"),
        (b"ms b 1 C1 ME c\r\nq\r\n", b"HD c" + CAS("B") + b"\r\n"),
        (b"ms a 1 C" + REF("A") + b" MR c\r\nr\r\n", b"HD c" + CAS("C") + b"\r\n"),
        (b"ms zz 1 C1 MR c\r\ns\r\n", b"NF c0\r\n")],
    "ms_I_with_older_cas_stores_stale": [
        (b"ms a 1 c\r\n1\r\n", b"HD c" + CAS("A") + b"\r\n"),
        (b"ms a 1 c\r\n2\r\n", b"HD c" + CAS("B") + b"\r\n"),
        (b"ms a 1 C" + REF("A") + b" I c\r\n3\r\n", b"HD c" + CAS("C") + b"\r\n"),
        (b"mg a v c\r\n", b"VA 1 c" + CAS("C") + b" X W\r\n3\r\n"),
        (b"mg a v c\r\n", b"VA 1 c" + CAS("C") + b" Z X\r\n3\r\n"),
        # again: still stale, and the win already sent carries over
        (b"ms a 1 C" + REF("A") + b" I c\r\n4\r\n", b"HD c" + CAS("D") + b"\r\n"),
        (b"mg a v c\r\n", b"VA 1 c" + CAS("D") + b" Z X\r\n4\r\n")],
    "ms_I_with_newer_cas_is_EX": [
        (b"ms a 1 c\r\n1\r\n", b"HD c" + CAS("A") + b"\r\n"),
        (b"ms a 1 C" + REF("A", 1000) + b" I\r\n3\r\n", b"EX\r\n"),
        (b"mg a v\r\n", b"VA 1\r\n1\r\n")],
    "ms_I_with_matching_cas_is_a_plain_store": [
        (b"ms a 1 c\r\n1\r\n", b"HD c" + CAS("A") + b"\r\n"),
        (b"ms a 1 C" + REF("A") + b" I\r\n2\r\n", b"HD\r\n"),
        (b"mg a v\r\n", b"VA 1\r\n2\r\n")],
    # I only works where C turns the store into a compare-and-swap (modes
    # S and R); append with an older C is just EX
    "ms_I_in_replace_mode_not_append": [
        (b"ms a 1 c\r\nx\r\n", b"HD c" + CAS("A") + b"\r\n"),
        (b"ms a 1 c\r\ny\r\n", b"HD c" + CAS("B") + b"\r\n"),
        (b"ms a 1 C" + REF("A") + b" I MA c\r\nz\r\n", b"EX c0\r\n"),
        (b"ms a 1 C" + REF("A") + b" I MR c\r\nz\r\n", b"HD c" + CAS("C") + b"\r\n"),
        (b"mg a v c\r\n", b"VA 1 c" + CAS("C") + b" X W\r\nz\r\n"),
        (b"ms b 1 C1 I MR c\r\nz\r\n", b"NF c0\r\n"),
        (b"ms b 1 C1 I c\r\nz\r\n", b"NF c0\r\n")],
    "ms_I_without_C_is_a_plain_store": [
        (b"ms a 1\r\nx\r\n", b"HD\r\n"), (b"ms a 1 I\r\ny\r\n", b"HD\r\n"),
        (b"mg a v\r\n", b"VA 1\r\ny\r\n")],
    "ms_after_stale_clears_it": [
        (b"ms a 1\r\nx\r\n", b"HD\r\n"), (b"md a I\r\n", b"HD\r\n"),
        (b"ms a 1\r\ny\r\n", b"HD\r\n"), (b"mg a v\r\n", b"VA 1\r\ny\r\n")],

    # --- ms: quiet mode ------------------------------------------------------
    "ms_q_hides_HD_only": [
        (b"ms m 1 q k O5 c\r\na\r\nmn\r\n", b"MN\r\n"),
        (b"ms m 1 ME q k O5 c\r\na\r\nmn\r\n", b"NS km O5 c0\r\nMN\r\n"),
        (b"ms m 1 C1 q\r\na\r\nmn\r\n", b"EX\r\nMN\r\n"),
        (b"ms nf 1 C1 q k\r\na\r\nmn\r\n", b"NF knf\r\nMN\r\n"),
        (b"ms zz 1 MA q\r\na\r\nmn\r\n", b"NS\r\nMN\r\n")],
    "ms_q_errors_still_sent": [
        (b"ms m 1 Y q\r\nz\r\n", INVALID_FLAG),
        (b"ms m 1 MX q\r\nz\r\n", MS_BAD_MODE),
        (b"ms m 1 q\r\ngg\r\n", BAD_CHUNK + b"ERROR\r\n")],

    # --- ms: bad lines and data blocks ---------------------------------------
    "ms_missing_length": [(b"ms m\r\n", BAD_FMT), (b"ms\r\n", b"ERROR\r\n")],
    "ms_length_not_a_number_data_is_a_command": [
        (b"ms m x\r\ng\r\n", BAD_FMT + b"ERROR\r\n"),
        (b"ms foo S2\r\nhi\r\n", BAD_FMT + b"ERROR\r\n")],
    "ms_length_negative_or_too_big": [
        (b"ms m -1\r\n", BAD_FMT), (b"ms m 2147483646\r\n", BAD_FMT),
        (b"ms m 2147483647\r\n", BAD_FMT), (b"ms m 2147483648\r\n", BAD_FMT)],
    "ms_bad_data_chunk_keeps_old_value": [
        (b"ms m 1\r\ng\r\n", b"HD\r\n"),
        (b"ms m 1\r\ngg\r\n", BAD_CHUNK + b"ERROR\r\n"),
        (b"ms m 1 MA\r\ngg\r\n", BAD_CHUNK + b"ERROR\r\n"),
        (b"mg m v\r\n", b"VA 1\r\ng\r\n")],
    "ms_data_not_terminated_by_crlf": [(b"ms a 1\r\nx\nz", BAD_CHUNK),
                                       (b"mg a v\r\n", b"EN\r\n")],
    "ms_invalid_flag_swallows_data": [
        (b"ms m 1 Y\r\ng\r\n", INVALID_FLAG), (b"ms m 1 noreply\r\nx\r\n", INVALID_FLAG),
        (b"ms m 1 2\r\nx\r\n", INVALID_FLAG), (b"ms m 1 F 5\r\ng\r\n", INVALID_FLAG),
        (b"mg m v\r\n", b"EN\r\n")],
    # E: the stored item's CAS; S is no flag in either.  The E values are
    # above every CAS handed out so far (E()): one below the cut of the
    # last flush_all counts as flushed (memcached's flush compares CAS
    # values the same way)
    "ms_E_added_after_1_6_18": [
        BASE,
        (b"ms a 1 " + E("B", 1000) + b" c\r\ny\r\n",
         NEWER(INVALID_FLAG, b"HD c" + CASIS("B", 1000) + b"\r\n")),
        (b"mg a c v\r\n", NEWER(b"EN\r\n", b"VA 1 c" + CASIS("B", 1000) + b"\r\ny\r\n")),
        (b"ms a 1 MA " + E("B", 2000) + b" c\r\nz\r\n",
         NEWER(INVALID_FLAG, b"HD c" + CASIS("B", 2000) + b"\r\n")),
        (b"gets a\r\n", NEWER(b"END\r\n",
                                b"VALUE a 0 2 " + CASIS("B", 2000) + b"\r\nyz\r\nEND\r\n")),
        (b"ms a 1 S5\r\ny\r\n", INVALID_FLAG),
        # cairn bounds E at 2^63 - 1: later uniques continue above it, and
        # near 2^64 the counter would wrap
        (b"ms a 1 E9223372036854775808\r\ny\r\n", NEWER(INVALID_FLAG, BAD_TOKEN)),
        (b"mg a v\r\n", NEWER(b"EN\r\n", b"VA 2\r\nyz\r\n"))],
    # 1.6.18 ignores ms s (the stored size) and N (append/prepend vivify)
    "ms_s_and_N_added_after_1_6_18": [
        (b"ms a 1 s\r\ny\r\n", NEWER(b"HD\r\n", b"HD s1\r\n")),
        (b"ms a 2 MA s\r\nzz\r\n", NEWER(b"HD\r\n", b"HD s3\r\n")),
        (b"ms zz 1 MA N30 s\r\ny\r\n", NEWER(b"NS\r\n", b"HD s1\r\n")),
        (b"mg zz v t\r\n", NEWER(b"EN\r\n", b"VA 1 t{{ttl:30}}\r\ny\r\n")),
        (b"ms zp 1 MP N0\r\np\r\n", NEWER(b"NS\r\n", b"HD\r\n")),
        (b"mg zp v t\r\n", NEWER(b"EN\r\n", b"VA 1 t-1\r\np\r\n")),
        (b"ms none 1 MR s\r\ny\r\n", b"NS\r\n")],
    "ms_other_commands_flags_accepted": [
        (b"ms m 1 v\r\ng\r\nms m 1 t\r\ng\r\nms m 1 N30\r\ng\r\nms m 1 R30\r\ng\r\n"
         b"ms m 1 D5 J5\r\ng\r\nms m 1 h l u f\r\ng\r\n",
         b"HD\r\nHD\r\nHD\r\nHD\r\nHD\r\nHD\r\n")],
    "ms_duplicate_flag": [(b"ms m 1 T1 T2\r\ng\r\n", DUP_FLAG), (b"mg m v\r\n", b"EN\r\n")],
    "ms_16_flags_is_the_limit": [
        (b"ms a 1 " + FLAGS16 + b"\r\n1\r\n",
         NEWER(b"HD ka c" + CAS("A") + b" O1\r\n", b"HD ka s1 c" + CAS("A") + b" O1\r\n")),
        # refused before the length is read: the data line is a command
        (b"ms a 1 " + FLAGS17 + b"\r\n1\r\n", TOO_MANY + b"ERROR\r\n")],

    # --- md ------------------------------------------------------------------
    "md_hit_and_miss": [(b"set d 0 0 1\r\nx\r\n", b"STORED\r\n"),
                        (b"md d\r\n", b"HD\r\n"), (b"md d\r\n", b"NF\r\n"),
                        (b"get d\r\n", b"END\r\n")],
    "md_k_O": [(b"md d k O2\r\n", b"NF kd O2\r\n"),
               (b"set d 0 0 1\r\nx\r\n", b"STORED\r\n"),
               (b"md d O2 k\r\n", b"HD O2 kd\r\n")],
    "md_q": [(b"set d 0 0 1\r\nx\r\n", b"STORED\r\n"),
             (b"md d q\r\nmn\r\n", b"MN\r\n"),
             (b"md d q\r\nmn\r\n", b"NF\r\nMN\r\n"),
             (b"md zz q k O4\r\nmn\r\n", b"NF kzz O4\r\nMN\r\n")],
    "md_C": [(b"set d 0 0 1\r\nx\r\n", b"STORED\r\n"),
             (b"mg d c\r\n", b"HD c" + CAS("A") + b"\r\n"),
             (b"md d C" + REF("A", 1000) + b" k O3\r\n", b"EX kd O3\r\n"),
             (b"md d C" + REF("A", 1000) + b" q\r\nmn\r\n", b"EX\r\nMN\r\n"),
             (b"mg d c\r\n", b"HD c" + CAS("A") + b"\r\n"),
             (b"md d C" + REF("A") + b"\r\n", b"HD\r\n"),
             (b"md d C" + REF("A") + b"\r\n", b"NF\r\n")],
    "md_I_marks_stale": [
        (b"set d 0 100 1\r\nx\r\n", b"STORED\r\n"),
        (b"gets d\r\n", b"VALUE d 0 1 " + CAS("A") + b"\r\nx\r\nEND\r\n"),
        (b"md d I\r\n", b"HD\r\n"),
        (b"mg d t v c\r\n", b"VA 1 t" + TTL(100) + b" c" + CAS("B") + b" X W\r\nx\r\n"),
        (b"get d\r\n", b"VALUE d 0 1\r\nx\r\nEND\r\n"),
        (b"gets d\r\n", b"VALUE d 0 1 " + CAS("B") + b"\r\nx\r\nEND\r\n")],
    "md_I_T_sets_ttl": [
        (b"set d 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"md d I T30\r\n", b"HD\r\n"),
        (b"mg d t\r\n", b"HD t" + TTL(30) + b" X W\r\n"),
        (b"md d I T0\r\n", b"HD\r\n"),
        (b"mg d t\r\n", b"HD t-1 X W\r\n")],
    "md_T_without_I_just_deletes": [(b"set d 0 0 1\r\nx\r\n", b"STORED\r\n"),
                                    (b"md d T30\r\n", b"HD\r\n"), (b"mg d t\r\n", b"EN\r\n")],
    "md_I_miss": [(b"md d I\r\n", b"NF\r\n"), (b"md d I q\r\nmn\r\n", b"NF\r\nMN\r\n")],
    "md_I_q": [(b"set d 0 0 1\r\nx\r\n", b"STORED\r\n"), (b"md d I q\r\nmn\r\n", b"MN\r\n"),
               (b"mg d\r\n", b"HD X W\r\n")],
    "md_I_with_C": [
        (b"set d 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg d c\r\n", b"HD c" + CAS("A") + b"\r\n"),
        (b"md d I C" + REF("A", 1000) + b"\r\n", b"EX\r\n"),
        (b"mg d c\r\n", b"HD c" + CAS("A") + b"\r\n"),
        (b"md d C" + REF("A") + b" I\r\n", b"HD\r\n"),
        (b"mg d c\r\n", b"HD c" + CAS("B") + b" X W\r\n")],
    "md_deletes_a_stale_item": [(b"set d 0 0 1\r\nx\r\n", b"STORED\r\n"),
                                (b"md d I\r\n", b"HD\r\n"), (b"md d\r\n", b"HD\r\n"),
                                (b"mg d v\r\n", b"EN\r\n")],
    "md_b": [(b"ms bm9wZQ== 1 b\r\nx\r\n", b"HD\r\n"),
             (b"md bm9wZQ== b k O1\r\n", b"HD kbm9wZQ== b O1\r\n"),
             (b"md bm9wZQ== b k O1\r\n", b"NF kbm9wZQ== b O1\r\n"),
             (b"md ### b\r\n", INV_OR_DUP)],
    "md_errors": [
        (b"set d 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"md d Y\r\n", INV_OR_DUP), (b"md d Cx\r\n", INV_OR_DUP),
        (b"md d T\r\n", INV_OR_DUP), (b"md d I I\r\n", INV_OR_DUP),
        (b"md d M\r\n", INV_OR_DUP), (b"md d Ex\r\n", INV_OR_DUP),
        (b"md d O" + b"1" * 32 + b"\r\n", OPAQUE_LONG),
        (b"md d Y q\r\nmn\r\n", INV_OR_DUP + b"MN\r\n"),
        (b"get d\r\n", b"VALUE d 0 1\r\nx\r\nEND\r\n")],
    # x empties the value and keeps the item (client flags from F); E is
    # the CAS of the item x or I leaves
    "md_x_and_E_added_after_1_6_18": [
        BASE,
        (b"set d 5 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"md d x\r\n", NEWER(INV_OR_DUP, b"HD\r\n")),
        (b"mg d v f\r\n", NEWER(b"VA 1 f5\r\nx\r\n", b"VA 0 f0\r\n\r\n")),
        (b"md d x F7 " + E("B", 1000) + b"\r\n", NEWER(INV_OR_DUP, b"HD\r\n")),
        (b"mg d c f s v\r\n", NEWER(b"VA 1 c" + CAS("A") + b" f5 s1\r\nx\r\n",
                                     b"VA 0 c" + CASIS("B", 1000) + b" f7 s0\r\n\r\n")),
        (b"md d I " + E("B", 2000) + b"\r\n", NEWER(INV_OR_DUP, b"HD\r\n")),
        (b"mg d c\r\n", NEWER(b"HD c" + CAS("A") + b"\r\n",
                               b"HD c" + CASIS("B", 2000) + b" X W\r\n")),
        (b"md none x\r\n", NEWER(INV_OR_DUP, b"NF\r\n"))],
    "md_other_commands_flags_accepted": [(b"set d 0 0 1\r\nx\r\n", b"STORED\r\n"),
                                         (b"md d f h l u t N5 R5 D5 J5 F5 MS v c s\r\n",
                                          b"HD\r\n"),
                                         (b"md d v\r\n", b"NF\r\n")],
    "md_17_flags_is_the_limit": [
        (b"set a 0 0 1\r\n1\r\n", b"STORED\r\n"),
        (b"md a " + FLAGS17 + b"\r\n", b"EX ka O1\r\n"),
        (b"md a " + FLAGS17 + b" D1\r\n", TOO_MANY)],

    # --- ma ------------------------------------------------------------------
    "ma_miss": [(b"ma n\r\n", b"NF\r\n"), (b"ma n v\r\n", b"NF\r\n"),
                (b"ma n q\r\nmn\r\n", b"NF\r\nMN\r\n"),
                (b"ma n k O1 v\r\n", b"NF kn O1\r\n")],
    "ma_N_vivify_then_incr": [
        (b"ma n N0\r\n", b"HD\r\n"), (b"mg n v\r\n", b"VA 1\r\n0\r\n"),
        (b"ma n\r\n", b"HD\r\n"), (b"ma n v\r\n", b"VA 1\r\n2\r\n")],
    "ma_delta_and_modes": [
        (b"set n 0 0 1\r\n2\r\n", b"STORED\r\n"),
        (b"ma n v D10\r\n", b"VA 2\r\n12\r\n"), (b"ma n v MD D3\r\n", b"VA 1\r\n9\r\n"),
        (b"ma n v M- D3\r\n", b"VA 1\r\n6\r\n"), (b"ma n v M+ D3\r\n", b"VA 1\r\n9\r\n"),
        (b"ma n v MI\r\n", b"VA 2\r\n10\r\n"), (b"ma n v D0\r\n", b"VA 2\r\n10\r\n")],
    "ma_decr_floors_at_zero_space_padded": [
        (b"set n 0 0 2\r\n10\r\n", b"STORED\r\n"),
        (b"ma n v MD D1000\r\n", b"VA 1\r\n0\r\n"),
        (b"mg n v\r\n", b"VA 2\r\n0 \r\n"),
        (b"ma n v MD\r\n", b"VA 1\r\n0\r\n")],
    "ma_incr_wraps_at_2_64": [
        (b"set big 0 0 20\r\n18446744073709551615\r\n", b"STORED\r\n"),
        (b"ma big v\r\n", b"VA 1\r\n0\r\n"),
        (b"mg big v\r\n", b"VA 20\r\n0                   \r\n"),
        (b"ma big v D18446744073709551615\r\n", b"VA 20\r\n18446744073709551615\r\n")],
    "ma_result_longer_than_value": [
        (b"ms n 2\r\n99\r\n", b"HD\r\n"), (b"ma n v\r\n", b"VA 3\r\n100\r\n"),
        (b"mg n v s\r\n", b"VA 3 s3\r\n100\r\n")],
    "ma_J_initial": [
        (b"ma j N0 J42 v\r\n", b"VA 2\r\n42\r\n"), (b"ma j N0 J42 v\r\n", b"VA 2\r\n43\r\n"),
        (b"ma j2 J42 v\r\n", b"NF\r\n"),
        (b"ma j3 N0 J18446744073709551615 v\r\n", b"VA 20\r\n18446744073709551615\r\n"),
        (b"ma j3 v\r\n", b"VA 1\r\n0\r\n")],
    "ma_N_J_t_T_in_request_order": [
        (b"ma j N100 J5 v t\r\n", b"VA 1 t100\r\n5\r\n"),
        (b"ma j v t T50\r\n", b"VA 1 t" + TTL(100) + b"\r\n6\r\n"),
        (b"ma j v t\r\n", b"VA 1 t" + TTL(50) + b"\r\n7\r\n"),
        (b"ma j v T0 t\r\n", b"VA 1 t-1\r\n8\r\n")],
    "ma_c_k_O": [
        (b"set n 0 0 1\r\n9\r\n", b"STORED\r\n"),
        (b"ma n c v k O7\r\n", b"VA 2 c" + CAS("A") + b" kn O7\r\n10\r\n"),
        (b"mg n c v\r\n", b"VA 2 c" + CAS("A") + b"\r\n10\r\n"),
        (b"gets n\r\n", b"VALUE n 0 2 " + CAS("A") + b"\r\n10\r\nEND\r\n"),
        (b"ma n O7 k c\r\n", b"HD O7 kn c" + CAS("B") + b"\r\n")],
    "ma_C_compare": [
        (b"set c 0 0 1\r\n5\r\n", b"STORED\r\n"),
        (b"mg c c\r\n", b"HD c" + CAS("A") + b"\r\n"),
        (b"ma c C" + REF("A", 1000) + b" v c\r\n", b"EX\r\n"),
        (b"ma c C" + REF("A", 1000) + b" q k O1\r\nmn\r\n", b"EX kc O1\r\nMN\r\n"),
        (b"ma c C" + REF("A") + b" v c\r\n", b"VA 1 c" + CAS("B") + b"\r\n6\r\n"),
        (b"ma c C" + REF("A") + b" v\r\n", b"EX\r\n")],
    # on a miss the compare is not made: N vivifies anyway
    "ma_C_on_miss": [(b"ma zz C1 v c\r\n", b"NF\r\n"),
                     (b"ma zz C1 N0 v c\r\n", b"VA 1 c" + CAS("A") + b"\r\n0\r\n")],
    "ma_q_hides_success": [
        (b"set n 0 0 1\r\n1\r\n", b"STORED\r\n"),
        (b"ma n q\r\nma n q v\r\nma n q v c t k O1\r\nmn\r\n", b"MN\r\n"),
        (b"mg n v\r\n", b"VA 1\r\n4\r\n")],
    # ...but not the reply to an item it has just created
    "ma_q_shows_vivified_item": [
        (b"ma n N0 J9 q v k O3\r\nmn\r\n", b"VA 1 kn O3\r\n9\r\nMN\r\n"),
        (b"ma n N0 J9 q v k O3\r\nmn\r\n", b"MN\r\n")],
    "ma_non_numeric": [
        (b"set s 0 0 1\r\nx\r\nset neg 0 0 2\r\n-1\r\nset e 0 0 0\r\n\r\n",
         b"STORED\r\nSTORED\r\nSTORED\r\n"),
        (b"ma s\r\n", NON_NUM), (b"ma s q\r\nmn\r\n", NON_NUM + b"MN\r\n"),
        (b"ma neg\r\n", NON_NUM), (b"ma e v\r\n", NON_NUM)],
    "ma_leading_space_value": [(b"set sp 0 0 3\r\n 12\r\n", b"STORED\r\n"),
                               (b"ma sp v\r\n", b"VA 2\r\n13\r\n"),
                               (b"get sp\r\n", b"VALUE sp 0 3\r\n13 \r\nEND\r\n")],
    "ma_b": [
        (b"ma bm9wZQ== b k O1\r\n", b"NF kbm9wZQ== b O1\r\n"),
        (b"ma bm9wZQ== b k O1 N0 v\r\n", b"VA 1 kbm9wZQ== b O1\r\n0\r\n"),
        # an item ma created is not marked binary: mg k prints it plain
        (b"mg bm9wZQ== b k v\r\n", b"VA 1 knope\r\n0\r\n"),
        (b"get nope\r\n", b"VALUE nope 0 1\r\n0\r\nEND\r\n"),
        (b"ma ### b\r\n", INV_OR_DUP)],
    "ma_bad_mode": [(b"set n 0 0 1\r\n1\r\n", b"STORED\r\n"),
                    (b"ma n v Md\r\n", MA_BAD_MODE), (b"ma n v MX\r\n", MA_BAD_MODE),
                    (b"ma n v MA\r\n", MA_BAD_MODE),
                    (b"ma n v M\r\n", INV_OR_DUP), (b"ma n v MII\r\n", INV_OR_DUP),
                    (b"mg n v\r\n", b"VA 1\r\n1\r\n")],
    # E: the CAS of the result, also of an item N creates
    "ma_E_added_after_1_6_18": [
        BASE,
        (b"set n 0 0 1\r\n1\r\n", b"STORED\r\n"),
        (b"ma n " + E("B", 1000) + b" c v\r\n",
         NEWER(INV_OR_DUP, b"VA 1 c" + CASIS("B", 1000) + b"\r\n2\r\n")),
        (b"gets n\r\n", NEWER(b"VALUE n 0 1 " + CAS("A") + b"\r\n1\r\nEND\r\n",
                                b"VALUE n 0 1 " + CASIS("B", 1000) + b"\r\n2\r\nEND\r\n")),
        (b"ma nn N0 J5 " + E("B", 2000) + b" c v\r\n",
         NEWER(INV_OR_DUP, b"VA 1 c" + CASIS("B", 2000) + b"\r\n5\r\n"))],
    "ma_bad_tokens": [
        (b"set n 0 0 1\r\n1\r\n", b"STORED\r\n"),
        (b"ma n v D18446744073709551616\r\n", INV_OR_DUP), (b"ma n v D-1\r\n", INV_OR_DUP),
        (b"ma n v Dx\r\n", INV_OR_DUP), (b"ma n v D\r\n", INV_OR_DUP),
        (b"ma n N0 Jx v\r\n", INV_OR_DUP), (b"ma n Nx\r\n", INV_OR_DUP),
        (b"ma n T\r\n", INV_OR_DUP), (b"ma n Cx\r\n", INV_OR_DUP),
        (b"ma n Y\r\n", INV_OR_DUP), (b"ma n Ex\r\n", INV_OR_DUP),
        (b"ma n v v\r\n", INV_OR_DUP),
        (b"ma zz O" + b"1" * 32 + b"\r\n", OPAQUE_LONG),
        (b"mg n v\r\n", b"VA 1\r\n1\r\n")],
    # mg and ma check the opaque's length while writing the reply, after
    # the item was changed: the increment, the new TTL, the vivified item
    # stay (but no win is recorded); md and ms check it first
    "opaque_too_long_after_side_effects": [
        (b"set n 0 0 1\r\n1\r\n", b"STORED\r\n"),
        (b"ma n O" + b"1" * 32 + b"\r\n", OPAQUE_LONG),
        (b"ma n q O" + b"1" * 32 + b"\r\n", OPAQUE_LONG),
        (b"mg n v\r\n", b"VA 1\r\n3\r\n"),
        (b"ma zz N0 O" + b"1" * 32 + b"\r\n", OPAQUE_LONG),
        (b"mg zz v\r\n", b"VA 1\r\n0\r\n"),
        (b"mg t T100 O" + b"1" * 32 + b"\r\n", OPAQUE_LONG),
        (b"mg t v\r\n", b"EN\r\n"),
        (b"set t 0 0 1\r\n1\r\n", b"STORED\r\n"),
        (b"mg t T100 O" + b"1" * 32 + b"\r\n", OPAQUE_LONG),
        (b"mg t t\r\n", b"HD t" + TTL(100) + b"\r\n"),
        (b"mg v N30 O" + b"1" * 32 + b"\r\n", OPAQUE_LONG),
        (b"mg v v N30\r\n", b"VA 0\r\n\r\n"),
        (b"md t O" + b"1" * 32 + b"\r\n", OPAQUE_LONG),
        (b"mg t v\r\n", b"VA 1\r\n1\r\n")],
    "ma_other_commands_flags_accepted": [
        (b"set c 0 0 1\r\n5\r\n", b"STORED\r\n"),
        (b"ma c s\r\nma c f\r\nma c h l u\r\nma c I\r\nma c F5\r\nma c R30\r\n",
         b"HD\r\nHD\r\nHD\r\nHD\r\nHD\r\nHD\r\n"),
        (b"mg c v\r\n", b"VA 2\r\n11\r\n")],
    "ma_17_flags_is_the_limit": [
        (b"set a 0 0 1\r\n1\r\n", b"STORED\r\n"),
        (b"ma a " + FLAGS17 + b"\r\n", b"EX ka O1\r\n"),
        (b"ma a " + FLAGS17 + b" D1\r\n", TOO_MANY)],

    # --- me ------------------------------------------------------------------
    # item size as memcached counts it: 48-byte header, key + NUL,
    # value + CRLF, 4 bytes of client flags when non-zero, 8 bytes of CAS
    "me_hit": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
               (b"me a\r\n", ME(b"a", 61)),
               (b"me a\r\n", ME(b"a", 61))],
    "me_fetch_after_get": [(b"set foo 0 0 2\r\nhi\r\n", b"STORED\r\n"),
                           (b"get foo\r\n", b"VALUE foo 0 2\r\nhi\r\nEND\r\n"),
                           (b"me foo\r\n", ME(b"foo", 64, fetch=b"yes"))],
    "me_flags_add_4_bytes": [(b"set a 7 0 3\r\nabc\r\n", b"STORED\r\n"),
                             (b"me a\r\n", ME(b"a", 67))],
    # memcached 1.6.18 prints exp as (now - expiry): negative for a live item
    "me_exp_is_negated_remaining_ttl": [(b"set t 0 1000 1\r\nx\r\n", b"STORED\r\n"),
                                        (b"me t\r\n", ME(b"t", 61, exp=NTTL(1000)))],
    "me_cas_matches_gets": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"gets a\r\n", b"VALUE a 0 1 " + CAS("A") + b"\r\nx\r\nEND\r\n"),
        (b"me a\r\n", ME(b"a", 61, fetch=b"yes"))],
    "me_miss": [(b"me zz\r\n", b"EN\r\n"), (b"me YQ== b\r\n", b"EN\r\n")],
    "me_b": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
             (b"me YQ== b\r\n", ME(b"a", 61)),
             (b"me a b\r\n", BAD_FMT),             # "a" is not base64
             (b"me YQ== b c\r\n", ME(b"a", 61)),
             (b"me YQ== c b\r\n", b"EN\r\n")],     # b counts only right after the key
    "me_binary_key_item": [(b"ms bWVvdw== 1 b\r\nx\r\n", b"HD\r\n"),
                           (b"me bWVvdw== b\r\n", ME(b"bWVvdw==", 64)),
                           (b"me meow\r\n", ME(b"bWVvdw==", 64))],
    "me_other_flags_ignored": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                               (b"me a x\r\n", ME(b"a", 61)),
                               (b"me a q\r\n", ME(b"a", 61))],

    # --- meta and classic commands together ----------------------------------
    "set_then_mg": [(b"set a 5 0 3\r\nabc\r\n", b"STORED\r\n"),
                    (b"mg a v f s t k\r\n", b"VA 3 f5 s3 t-1 ka\r\nabc\r\n")],
    "ms_then_get_and_gets": [
        (b"ms a 3 F9 T0 c\r\nabc\r\n", b"HD c" + CAS("A") + b"\r\n"),
        (b"get a\r\n", b"VALUE a 9 3\r\nabc\r\nEND\r\n"),
        (b"gets a\r\n", b"VALUE a 9 3 " + CAS("A") + b"\r\nabc\r\nEND\r\n")],
    "classic_cas_with_mg_c": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg a c\r\n", b"HD c" + CAS("A") + b"\r\n"),
        (b"cas a 0 0 1 " + REF("A") + b"\r\ny\r\n", b"STORED\r\n"),
        (b"cas a 0 0 1 " + REF("A") + b"\r\nz\r\n", b"EXISTS\r\n"),
        (b"mg a v\r\n", b"VA 1\r\ny\r\n")],
    "md_I_then_classic_get_gets_touch": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"md a I\r\n", b"HD\r\n"),
        (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n"),
        (b"touch a 100\r\n", b"TOUCHED\r\n"),
        (b"mg a v t\r\n", b"VA 1 t" + TTL(100) + b" X W\r\nx\r\n")],
    "classic_set_clears_stale": [(b"set a 0 0 1\r\n1\r\n", b"STORED\r\n"),
                                 (b"md a I\r\n", b"HD\r\n"),
                                 (b"set a 0 0 1\r\n2\r\n", b"STORED\r\n"),
                                 (b"mg a v\r\n", b"VA 1\r\n2\r\n")],
    "classic_append_clears_stale": [(b"set a 0 0 1\r\n4\r\n", b"STORED\r\n"),
                                    (b"md a I\r\n", b"HD\r\n"),
                                    (b"append a 0 0 1\r\n0\r\n", b"STORED\r\n"),
                                    (b"mg a v\r\n", b"VA 2\r\n40\r\n")],
    "classic_delete_removes_stale": [(b"set a 0 0 1\r\n1\r\n", b"STORED\r\n"),
                                     (b"md a I\r\n", b"HD\r\n"),
                                     (b"delete a\r\n", b"DELETED\r\n"),
                                     (b"mg a v\r\n", b"EN\r\n"), (b"md a I\r\n", b"NF\r\n")],
    # incr/ma rewrite a number in place when the result is not longer: the
    # item, and its stale and win-sent marks, stay
    "incr_and_ma_in_place_keep_stale": [
        (b"set a 0 0 1\r\n2\r\n", b"STORED\r\n"),
        (b"md a I\r\n", b"HD\r\n"),
        (b"incr a 1\r\n", b"3\r\n"),
        (b"mg a v\r\n", b"VA 1 X W\r\n3\r\n"),
        (b"ma a v\r\n", b"VA 1\r\n4\r\n"),
        (b"mg a v\r\n", b"VA 1 Z X\r\n4\r\n")],
    "incr_result_longer_clears_stale": [(b"set a 0 0 1\r\n9\r\n", b"STORED\r\n"),
                                        (b"md a I\r\n", b"HD\r\n"),
                                        (b"incr a 1\r\n", b"10\r\n"),
                                        (b"mg a v\r\n", b"VA 2\r\n10\r\n")],
    "ma_and_incr_mixed": [(b"ms n 2\r\n10\r\n", b"HD\r\n"), (b"ma n v\r\n", b"VA 2\r\n11\r\n"),
                          (b"incr n 1\r\n", b"12\r\n"), (b"decr n 2\r\n", b"10\r\n"),
                          (b"ma n v MD\r\n", b"VA 1\r\n9\r\n"),
                          (b"get n\r\n", b"VALUE n 0 2\r\n9 \r\nEND\r\n")],
    "mg_N_item_seen_by_classic_commands": [
        (b"mg n N30\r\n", b"HD W\r\n"),
        (b"get n\r\n", b"VALUE n 0 0\r\n\r\nEND\r\n"),
        (b"append n 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"mg n v\r\n", b"VA 1\r\nx\r\n")],
    "flush_all_then_meta": [
        (b"ms a 1\r\nx\r\n", b"HD\r\n"), (b"flush_all\r\n", b"OK\r\n"),
        (b"mg a v\r\n", b"EN\r\n"), (b"md a\r\n", b"NF\r\n"), (b"ma a\r\n", b"NF\r\n"),
        (b"me a\r\n", b"EN\r\n"), (b"ms a 1 MR\r\nx\r\n", b"NS\r\n")],
    "classic_add_on_meta_item": [(b"ms a 1\r\nx\r\n", b"HD\r\n"),
                                 (b"add a 0 0 1\r\ny\r\n", b"NOT_STORED\r\n"),
                                 (b"replace a 3 0 1\r\ny\r\n", b"STORED\r\n"),
                                 (b"mg a v f\r\n", b"VA 1 f3\r\ny\r\n")],
    "noreply_classic_and_quiet_meta_pipeline": [
        (b"set a 0 0 1 noreply\r\nx\r\nms b 1 q\r\ny\r\nmg a q v\r\nmg c q v\r\n"
         b"md b q\r\nmd b q\r\ndelete a noreply\r\nmg a q v\r\nmn\r\n",
         b"VA 1\r\nx\r\nNF\r\nMN\r\n")],
    "pipeline_mixed_meta_replies": [
        (b"ms a 1 O1\r\nx\r\nmg a v O2\r\nmg zz v O3\r\nma n N0 J5 v O4\r\n"
         b"md a O5\r\nmg a O6\r\nmn\r\n",
         b"HD O1\r\nVA 1 O2\r\nx\r\nEN O3\r\nVA 1 O4\r\n5\r\nHD O5\r\nEN O6\r\nMN\r\n")],
}


_PH_RE = re.compile(rb"\{\{(cas|casis|ttl|nttl|la):([A-Za-z0-9_+]+)\}\}")
_REF_RE = re.compile(rb"\{\{([A-Za-z_]\w*)([+-]\d+)?\}\}")


class Template:
    """Expected reply bytes with {{kind:arg}} placeholders (see the file
    header), compiled to a regex plus checks on the captured numbers."""

    def __init__(self, expect):
        self.raw = expect
        parts, self.kinds, pos = [], [], 0
        for m in _PH_RE.finditer(expect):
            parts.append(re.escape(expect[pos:m.start()]))
            kind, arg = m.group(1).decode(), m.group(2).decode()
            parts.append(rb"(\d+)" if kind in ("cas", "la") else rb"(-?\d+)")
            self.kinds.append((kind, arg))
            pos = m.end()
        parts.append(re.escape(expect[pos:]))
        self.rx = re.compile(b"".join(parts), re.S)

    def check(self, m, ctx):
        """Validate the captured numbers; bind CAS names in ctx (a dict
        name -> int).  Returns None if fine, else a message."""
        for (kind, arg), txt in zip(self.kinds, m.groups()):
            v = int(txt)
            if kind == "cas":
                if arg in ctx:
                    if ctx[arg] != v:
                        return "cas %s: expected %d (bound earlier), got %d" % (arg, ctx[arg], v)
                else:
                    for other, ov in ctx.items():
                        if ov == v:
                            return "cas %s = %d equals cas %s" % (arg, v, other)
                    ctx[arg] = v
            elif kind == "casis":
                name, plus = arg.split("+")
                if ctx.get(name, -1) + int(plus) != v:
                    return "cas %d is not %s+%s" % (v, name, plus)
            elif kind == "ttl":
                n = int(arg)
                if not n - 2 <= v <= n:
                    return "ttl %d not within [%d, %d]" % (v, n - 2, n)
            elif kind == "nttl":
                n = int(arg)
                if not -n <= v <= -n + 2:
                    return "me exp %d not within [%d, %d]" % (v, -n, -n + 2)
            elif kind == "la":
                if not 0 <= v <= int(arg):
                    return "last access %d not within [0, %s]" % (v, arg)
        return None


def substitute(req, ctx):
    """Replace {{A}} / {{A+n}} / {{A-n}} in a request with bound CAS values."""
    def rep(m):
        name = m.group(1).decode()
        if name not in ctx:
            raise AssertionError("request uses unbound CAS name %s" % name)
        return b"%d" % (ctx[name] + int(m.group(2) or b"0"))
    return _REF_RE.sub(rep, req)


def read_template(conn, expect, ctx, timeout=None):
    """Read a reply matching `expect` (bytes, possibly with placeholders)
    from conn; returns (ok, got, message)."""
    tpl = Template(expect)
    deadline = time.monotonic() + (timeout or conn.timeout)
    need_crlf = expect.count(b"\r\n")
    while True:
        m = tpl.rx.match(conn.buf)
        if m:
            got, conn.buf = conn.buf[:m.end()], conn.buf[m.end():]
            msg = tpl.check(m, ctx)
            return msg is None, got, msg
        # the reply ends at its need_crlf-th CRLF: once that many have
        # arrived without a match, no later byte can make it match
        if need_crlf and conn.buf.count(b"\r\n") >= need_crlf:
            return False, conn.buf, "reply differs"
        try:
            conn._fill(deadline)
        except (socket.timeout, harness.ConnClosed) as e:
            return False, conn.buf, "incomplete reply (%s)" % e.__class__.__name__


class MetaTable(harness.SharedServerTest):
    """One test method per TABLE entry (generated below)."""

    def setUp(self):
        with self.server.conn() as c:
            self.assertEqual(c.request(b"flush_all\r\n"), b"OK\r\n")

    def run_steps(self, steps):
        c = self.server.conn()
        ctx = {}
        try:
            for i, step in enumerate(steps):
                req, expect = step[0], step[1]
                if isinstance(expect, NEWER):
                    expect = expect.pick()
                sentinel = step[2] if len(step) > 2 else True
                req = substitute(req, ctx)
                if req:
                    c.send(req)
                if expect is CLOSED:
                    self.assertEqual(c.read_to_eof(), b"", "step %d: bytes before close" % i)
                    return
                if expect:
                    ok, got, msg = read_template(c, expect, ctx)
                    self.assertTrue(ok, "step %d reply to %r: %s\n  expected %r\n  got      %r"
                                    % (i, req[:100], msg, expect, got))
                if sentinel:
                    line = c.request(b"version\r\n")
                    self.assertTrue(line.startswith(b"VERSION "),
                                    "step %d: extra bytes after reply to %r: %r"
                                    % (i, req[:100], line))
        finally:
            c.close()


def _make(steps):
    def t(self):
        self.run_steps(steps)
    return t


for _name, _steps in TABLE.items():
    setattr(MetaTable, "test_" + _name, _make(_steps))


class MetaCasNumbering(unittest.TestCase):
    """memcached's CAS uniques on a fresh server are deterministic: one
    global counter from 1, taken by every successful store (ms, set, ...),
    by ma / incr / decr, by an item mg N creates, by md I, and by flush_all;
    not by a failed store, mg, md, touch or mg T.  Needs its own server."""

    def test_exact_cas_sequence_on_fresh_server(self):
        srv = harness.Server(external=False).start()
        try:
            c = srv.conn()
            steps = [
                (b"ms a 1 c\r\nx\r\n", b"HD c1\r\n"),
                (b"ms a 1 c ME\r\nx\r\n", b"NS c0\r\n"),
                (b"mg a c\r\n", b"HD c1\r\n"),
                (b"mg b N30 c\r\n", b"HD c2 W\r\n"),
                (b"mg b N30 c\r\n", b"HD c2 Z\r\n"),
                (b"md b I\r\n", b"HD\r\n"),
                (b"mg b c\r\n", b"HD c3 X W\r\n"),
                (b"ma n N0 c\r\n", b"HD c4\r\n"),
                (b"ma n c\r\n", b"HD c5\r\n"),
                (b"ma n C1 c\r\n", b"EX\r\n"),
                (b"md a C2\r\n", b"EX\r\n"),
                (b"md zz\r\n", b"NF\r\n"),
                (b"gets a b n\r\n", b"VALUE a 0 1 1\r\nx\r\nVALUE b 0 0 3\r\n\r\n"
                                    b"VALUE n 0 1 5\r\n1\r\nEND\r\n"),
                (b"flush_all\r\n", b"OK\r\n"),               # takes 6
                (b"ms a 1 c\r\nx\r\n", b"HD c7\r\n"),
                (b"mg a T30 c\r\n", b"HD c7\r\n"),
                (b"touch a 40\r\n", b"TOUCHED\r\n"),
                (b"ms a 1 MA c\r\ny\r\n", b"HD c8\r\n"),
                (b"ms a 1 C99 c\r\ny\r\n", b"EX c0\r\n"),
                (b"ms a 1 C7 I c\r\nz\r\n", b"HD c9\r\n"),
                (b"mg a c v\r\n", b"VA 1 c9 X W\r\nz\r\n"),
                (b"set s 0 0 1\r\n5\r\n", b"STORED\r\n"),
                (b"incr s 1\r\n", b"6\r\n"),
                (b"ma s MD c\r\n", b"HD c12\r\n"),
                (b"gets s\r\n", b"VALUE s 0 1 12\r\n5\r\nEND\r\n"),
                (b"me s\r\n", None),                          # checked below
            ]
            for req, expect in steps:
                c.send(req)
                if expect is None:
                    line = c.readline()
                    self.assertRegex(line, rb"^ME s exp=-1 la=\d+ cas=12 fetch=yes "
                                           rb"cls=1 size=61\r\n$")
                    continue
                got = c.read_exact(len(expect)) if expect else b""
                self.assertEqual(got, expect, "reply to %r" % req[:60])
            self.assertTrue(c.request(b"version\r\n").startswith(b"VERSION "))
            c.close()
        finally:
            srv.stop()

    def test_cas_disabled(self):
        """With -C every CAS is 0: mg c says c0, ms c says c0, and a
        compare against an existing item is EX."""
        srv = harness.Server(["-C"], external=False).start()
        try:
            with srv.conn() as c:
                for req, expect in [
                        (b"ms a 1 c\r\nx\r\n", b"HD c0\r\n"),
                        (b"mg a c v\r\n", b"VA 1 c0\r\nx\r\n"),
                        (b"ms a 1 C0 c\r\ny\r\n", b"EX c0\r\n"),
                        (b"ma n N0 J1 c v\r\n", b"VA 1 c0\r\n1\r\n"),
                        (b"md a I\r\n", b"HD\r\n"),
                        (b"mg a c\r\n", b"HD c0 X W\r\n"),
                        (b"me a\r\n", None)]:
                    c.send(req)
                    if expect is None:
                        self.assertRegex(c.readline(), rb"^ME a exp=-1 la=\d+ cas=0 "
                                                       rb"fetch=yes cls=1 size=53\r\n$")
                        continue
                    self.assertEqual(c.read_exact(len(expect)), expect, "reply to %r" % req)
        finally:
            srv.stop()


def expire_poll(conn, keys, timeout=8.0):
    """Bounded poll until every key in `keys` misses (mg); True if so."""
    def gone():
        for k in keys:
            conn.send(b"mg " + k + b"\r\n")
            if conn.readline() != b"EN\r\n":
                return False
        return True
    return harness.wait_until(gone, timeout, interval=0.1)


class MetaDynamic(harness.SharedServerTest):
    """Cases that need computed bytes, waiting for the clock, or more than
    one connection."""

    def setUp(self):
        self.c = self.server.conn()
        self.assertEqual(self.c.request(b"flush_all\r\n"), b"OK\r\n")

    def tearDown(self):
        self.c.close()

    def req(self, data, expect):
        self.c.send(data)
        self.assertEqual(self.c.read_exact(len(expect)), expect, "reply to %r" % data[:80])

    def test_ms_T_expires(self):
        self.req(b"ms short 1 T1\r\nx\r\nms long 1 T1000\r\ny\r\n", b"HD\r\nHD\r\n")
        self.assertTrue(expire_poll(self.c, [b"short"]), "ms T1 never expired")
        self.req(b"mg long v\r\n", b"VA 1\r\ny\r\n")

    def test_ms_T_absolute_unix_time(self):
        now = int(time.time())
        self.req(b"ms f 1 T%d\r\nx\r\n" % (now + 1000), b"HD\r\n")
        self.req(b"ms p 1 T%d\r\nx\r\n" % (now - 1000), b"HD\r\n")
        self.c.send(b"mg f t\r\n")
        line = self.c.readline()
        m = re.match(rb"^HD t(\d+)\r\n$", line)
        self.assertTrue(m, line)
        # memcached's clock ticks once a second and lags the wall clock, so
        # an absolute time can read up to 2 s long
        self.assertTrue(995 <= int(m.group(1)) <= 1002, line)
        self.req(b"mg p v\r\n", b"EN\r\n")

    def test_mg_T_shortens_and_expires(self):
        self.req(b"ms a 1 T1000\r\nx\r\n", b"HD\r\n")
        self.req(b"mg a T1 v\r\n", b"VA 1\r\nx\r\n")
        self.assertTrue(expire_poll(self.c, [b"a"]), "mg T1 never expired")

    def test_mg_N_vivified_item_expires_then_wins_again(self):
        self.req(b"mg n N1\r\n", b"HD W\r\n")
        self.req(b"mg n N1\r\n", b"HD Z\r\n")
        self.assertTrue(expire_poll(self.c, [b"n"]), "vivified item never expired")
        self.req(b"mg n N30 t\r\n", b"HD t30 W\r\n")

    def test_md_I_T_expires(self):
        self.req(b"ms a 1\r\nx\r\n", b"HD\r\n")
        self.req(b"md a I T1\r\n", b"HD\r\n")
        self.assertTrue(expire_poll(self.c, [b"a"]), "md I T1 never expired")

    def test_ma_N_ttl_expires(self):
        self.req(b"ma n N1 J7 v\r\n", b"VA 1\r\n7\r\n")
        self.assertTrue(expire_poll(self.c, [b"n"]), "ma N1 item never expired")
        self.req(b"ma n v\r\n", b"NF\r\n")

    def test_mg_R_wins_as_ttl_falls(self):
        # TTL 4, recache below 3: no win now, a win once a second or two
        # has passed (bounded poll), and only once
        self.req(b"ms r 1 T4\r\nx\r\n", b"HD\r\n")
        self.req(b"mg r R2\r\n", b"HD\r\n")

        def won():
            self.c.send(b"mg r R3\r\n")
            return self.c.readline() == b"HD W\r\n"
        self.assertTrue(harness.wait_until(won, 4, interval=0.1), "R never won")
        self.req(b"mg r R3\r\n", b"HD Z\r\n")

    def test_mg_l_counts_seconds_since_access(self):
        self.req(b"ms a 1\r\nx\r\n", b"HD\r\n")
        time.sleep(2.2)
        self.c.send(b"mg a l h\r\n")
        line = self.c.readline()
        m = re.match(rb"^HD l(\d+) h0\r\n$", line)
        self.assertTrue(m, line)
        self.assertTrue(1 <= int(m.group(1)) <= 4, line)
        # the access above reset it (a bump happens at most once a minute
        # in memcached, but l reports the time of the last bump or store)
        self.c.send(b"mg a h\r\n")
        self.assertEqual(self.c.readline(), b"HD h1\r\n")

    def test_stats_counters(self):
        # 1.6.18's cmd_meta counts me requests; mg counts as a get, ms as a
        # set, md as a delete, ma as an incr.
        names = ("cmd_meta", "cmd_get", "get_hits", "get_misses", "cmd_set",
                 "delete_hits", "delete_misses", "incr_hits", "incr_misses")
        before = self.c.stats()
        self.c.send(b"me zz\r\nme zz\r\nmn\r\nmg zz v\r\nms zz 1\r\nx\r\nmg zz v\r\n"
                    b"ma zz\r\nmd zz\r\nmd zz\r\nma zz\r\nmn\r\n")
        self.assertEqual(self.c.read_exact(len(b"EN\r\nEN\r\nMN\r\nEN\r\nHD\r\nVA 1\r\nx\r\n"
                                               b"CLIENT_ERROR cannot increment or decrement "
                                               b"non-numeric value\r\nHD\r\nNF\r\nNF\r\nMN\r\n")),
                         b"EN\r\nEN\r\nMN\r\nEN\r\nHD\r\nVA 1\r\nx\r\n"
                         b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
                         b"HD\r\nNF\r\nNF\r\nMN\r\n")
        after = self.c.stats()
        self.assertEqual([int(after[n]) - int(before[n]) for n in names],
                         [2, 2, 1, 1, 1, 1, 1, 0, 1], names)

    def test_two_clients_one_wins(self):
        with self.server.conn() as other:
            self.req(b"mg k N30 v\r\n", b"VA 0 W\r\n\r\n")
            other.send(b"mg k N30 v\r\n")
            self.assertEqual(other.read_exact(10), b"VA 0 Z\r\n\r\n")
            other.send(b"ms k 3 T60\r\nnew\r\n")
            self.assertEqual(other.readline(), b"HD\r\n")
        self.req(b"mg k N30 v\r\n", b"VA 3\r\nnew\r\n")

    def test_ms_request_split_byte_by_byte(self):
        req = (b"ms split 5 F7 T0 k O1\r\nab\r\nc\r\nmg split v f\r\nmg nosuch v q\r\n"
               b"md split q\r\nmn\r\n")
        for i in range(len(req)):
            self.c.send(req[i:i + 1])
        expect = b"HD ksplit O1\r\nVA 5 f7\r\nab\r\nc\r\nMN\r\n"
        self.assertEqual(self.c.read_exact(len(expect)), expect)
        self.assertTrue(self.c.request(b"version\r\n").startswith(b"VERSION "))

    def test_many_pipelined_quiet_gets_with_opaque(self):
        n = 300
        sets = b"".join(b"ms p%d %d q F%d\r\n%s\r\n" % (i, len(b"v%d" % i), i, b"v%d" % i)
                        for i in range(0, n, 2))
        gets = b"".join(b"mg p%d v f q O%d\r\n" % (i, i) for i in range(n))
        self.c.send(sets + gets + b"mn\r\n")
        expect = b"".join(b"VA %d f%d O%d\r\nv%d\r\n" % (len(b"v%d" % i), i, i, i)
                          for i in range(0, n, 2)) + b"MN\r\n"
        self.assertEqual(self.c.read_exact(len(expect), timeout=20), expect)

    def test_ms_too_large_deletes_old_value_in_every_mode(self):
        # memcached swallows the data, answers SERVER_ERROR and, unlike
        # classic add, drops the old item whatever the mode
        big = b"y" * 2000000
        for mode in (b"", b" MS", b" ME", b" MA", b" MP", b" MR"):
            self.req(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n")
            self.c.send(b"ms a %d%s q k O1\r\n" % (len(big), mode) + big + b"\r\nmg a v\r\n")
            self.assertEqual(self.c.read_exact(len(TOO_LARGE) + 4, timeout=20),
                             TOO_LARGE + b"EN\r\n", "mode %r" % mode)

    def test_ms_just_over_item_size_limit(self):
        self.req(b"ms a 1\r\nx\r\n", b"HD\r\n")
        v = b"z" * (1024 * 1024 + 1)
        self.c.send(b"ms a %d\r\n" % len(v) + v + b"\r\nmg a v\r\n")
        self.assertEqual(self.c.read_exact(len(TOO_LARGE) + 4, timeout=20), TOO_LARGE + b"EN\r\n")

    def test_ms_large_value_roundtrip(self):
        v = bytes(range(256)) * 4000                  # 1,024,000 bytes
        self.c.send(b"ms big %d\r\n" % len(v) + v + b"\r\n")
        self.assertEqual(self.c.readline(timeout=20), b"HD\r\n")
        self.c.send(b"mg big v s\r\n")
        head = b"VA %d s%d\r\n" % (len(v), len(v))
        self.assertEqual(self.c.read_exact(len(head) + len(v) + 2, timeout=20), head + v + b"\r\n")

    def test_ms_invalid_flag_swallows_large_block(self):
        big = b"y" * 2000000
        self.c.send(b"ms a %d Y\r\n" % len(big) + big + b"\r\nmn\r\n")
        self.assertEqual(self.c.read_exact(len(INVALID_FLAG) + 4, timeout=20),
                         INVALID_FLAG + b"MN\r\n")

    def test_long_meta_line_without_newline_closes(self):
        self.c.send(b"mg " + b"x" * 3000)
        self.assertTrue(self.c.is_closed(), "connection not closed")
        self.c.close()
        self.c = self.server.conn()

    def test_opaque_and_key_echo_on_every_reply_code(self):
        """O and k are echoed on HD, VA, EN, NF, NS, EX alike."""
        self.req(b"ms a 1 O1 k\r\nx\r\n", b"HD O1 ka\r\n")
        self.req(b"ms a 1 ME O2 k\r\nx\r\n", b"NS O2 ka\r\n")
        self.req(b"ms a 1 C1 O3 k\r\nx\r\n", b"EX O3 ka\r\n")
        self.req(b"ms b 1 C1 O4 k\r\nx\r\n", b"NF O4 kb\r\n")
        self.req(b"mg a v O5 k\r\n", b"VA 1 O5 ka\r\nx\r\n")
        self.req(b"mg b O6 k\r\n", b"EN O6 kb\r\n")
        self.req(b"md b O7 k\r\n", b"NF O7 kb\r\n")
        self.req(b"md a C1 O8 k\r\n", b"EX O8 ka\r\n")
        self.req(b"ma a O9 k\r\n", NON_NUM)
        self.req(b"ma b O10 k\r\n", b"NF O10 kb\r\n")


if __name__ == "__main__":
    harness.main()
