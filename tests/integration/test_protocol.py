#!/usr/bin/python3
# Scenario: the memcached 1.6 ASCII protocol, byte for byte.
#
# A table of raw request byte strings and the EXACT reply bytes the real
# memcached 1.6.18 sends (every value below was observed by running it).
# Each table entry becomes its own test_<name> method: it flushes the
# server, opens a fresh connection, sends each request and compares the
# reply exactly.  After each reply a "version\r\n" sentinel is sent and its
# VERSION line must come next: this proves no extra bytes were sent,
# without waiting for a timeout.
#
# Further hand-written tests cover what a static table cannot: exact CAS
# numbering on a fresh server (memcached's is deterministic: a global
# counter starting at 1, bumped only by successful stores and incr/decr),
# TTL expiry (relative, absolute unix time, the 30-day boundary, negative),
# delayed flush_all, touch/gat changing TTLs, quit closing the connection,
# pipelining, a request split byte by byte, over-size values and -C / -F.
#
# Run: /usr/bin/python3 test_protocol.py --bin PATH   (or CAIRN_BIN=PATH)

import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

K250 = b"k" * 250
K251 = b"k" * 251
CLOSED = object()          # expected "reply": the server closes the connection

BAD_FMT = b"CLIENT_ERROR bad command line format\r\n"
BAD_CHUNK = b"CLIENT_ERROR bad data chunk\r\n"
NON_NUM = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"
BAD_DELTA = b"CLIENT_ERROR invalid numeric delta argument\r\n"
BAD_EXPTIME = b"CLIENT_ERROR invalid exptime argument\r\n"
DEL_USAGE = b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n"
TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"

# name -> list of (request bytes, exact expected reply bytes)
TABLE = {
    # --- unknown / malformed commands ---------------------------------
    "unknown_command": [(b"bogus\r\n", b"ERROR\r\n")],
    "empty_line": [(b"\r\n", b"ERROR\r\n")],
    "two_empty_lines": [(b"\r\n\r\n", b"ERROR\r\nERROR\r\n")],
    "bare_lf_empty_line": [(b"\n", b"ERROR\r\n")],
    "command_is_case_sensitive": [(b"GET a\r\n", b"ERROR\r\n")],
    "binary_junk_line": [(b"\x00\x01\x02\xff\r\n", b"ERROR\r\n")],
    "tab_is_not_a_separator": [(b"set tab\t0 0 1\r\nx\r\n", b"ERROR\r\nERROR\r\n")],

    # --- set / get -------------------------------------------------------
    "set_then_get": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                     (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n")],
    "get_miss": [(b"get nokey\r\n", b"END\r\n")],
    "get_no_key": [(b"get\r\n", b"ERROR\r\n")],
    "gets_no_key": [(b"gets\r\n", b"ERROR\r\n")],
    "gets_only_spaces": [(b"gets  \r\n", b"ERROR\r\n")],
    "get_multi_with_miss_and_duplicate": [
        (b"set a 1 0 1\r\nx\r\nset b 2 0 2\r\nyy\r\n", b"STORED\r\nSTORED\r\n"),
        (b"get a nokey b a\r\n",
         b"VALUE a 1 1\r\nx\r\nVALUE b 2 2\r\nyy\r\nVALUE a 1 1\r\nx\r\nEND\r\n")],
    "get_extra_spaces": [
        (b"set a 0 0 1\r\nx\r\nset b 0 0 1\r\ny\r\n", b"STORED\r\nSTORED\r\n"),
        (b" get a  b \r\n", b"VALUE a 0 1\r\nx\r\nVALUE b 0 1\r\ny\r\nEND\r\n")],
    "set_extra_spaces": [(b"set sp  0  0  1\r\nx\r\n", b"STORED\r\n"),
                         (b"get sp\r\n", b"VALUE sp 0 1\r\nx\r\nEND\r\n")],
    "bare_lf_line_endings": [(b"set lf 0 0 1\nx\r\n", b"STORED\r\n"),
                             (b"get lf\n", b"VALUE lf 0 1\r\nx\r\nEND\r\n")],
    "flags_max_u32": [(b"set f 4294967295 0 1\r\nx\r\n", b"STORED\r\n"),
                      (b"get f\r\n", b"VALUE f 4294967295 1\r\nx\r\nEND\r\n")],
    "flags_negative": [(b"set f -1 0 1\r\nx\r\n", BAD_FMT + b"ERROR\r\n")],
    "flags_overflow_u64": [(b"set f 99999999999999999999 0 1\r\nx\r\n",
                            BAD_FMT + b"ERROR\r\n")],
    "flags_not_numeric": [(b"set f abc 0 1\r\nx\r\n", BAD_FMT + b"ERROR\r\n")],
    "exptime_not_numeric": [(b"set f 0 abc 1\r\nx\r\n", BAD_FMT + b"ERROR\r\n")],
    "length_not_numeric": [(b"set k 0 0 abc\r\n", BAD_FMT)],
    "length_negative": [(b"set k 0 0 -1\r\n", BAD_FMT)],
    "length_int_max": [(b"set k 0 0 2147483647\r\n", BAD_FMT)],
    "length_above_int_max": [(b"set k 0 0 2147483648\r\n", BAD_FMT)],
    "numbers_with_leading_zeros_and_plus": [
        (b"set a 0 00 01\r\nx\r\nset b 0 0 +1\r\ny\r\n", b"STORED\r\nSTORED\r\n"),
        (b"get a b\r\n", b"VALUE a 0 1\r\nx\r\nVALUE b 0 1\r\ny\r\nEND\r\n")],
    "set_missing_length": [(b"set k 0 0\r\n", b"ERROR\r\n")],
    "set_missing_everything": [(b"set k\r\n", b"ERROR\r\n"), (b"set\r\n", b"ERROR\r\n")],
    "set_too_many_tokens": [(b"set a 0 0 1 junk junk\r\nx\r\n", b"ERROR\r\nERROR\r\n")],
    "set_sixth_token_not_noreply_still_replies": [
        (b"set a 0 0 1 junk\r\nx\r\n", b"STORED\r\n"),
        (b"set a 0 0 1 norepl\r\ny\r\n", b"STORED\r\n"),
        (b"get a\r\n", b"VALUE a 0 1\r\ny\r\nEND\r\n")],
    "data_chunk_too_long": [(b"set a 0 0 5\r\ntoolongvalue\r\n", BAD_CHUNK + b"ERROR\r\n")],
    "data_chunk_one_byte_too_long": [(b"set a 0 0 1\r\nxy\r\n", BAD_CHUNK + b"ERROR\r\n")],
    "bad_chunk_keeps_old_value": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"set a 0 0 1\r\nxyz\r\n", BAD_CHUNK + b"ERROR\r\n"),
        (b"append a 0 0 1\r\nxy\r\n", BAD_CHUNK + b"ERROR\r\n"),
        (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n")],
    "data_not_terminated_by_crlf": [(b"set a 0 0 1\r\nx\nz", BAD_CHUNK)],
    "value_containing_crlf": [(b"set e 0 0 4\r\na\r\nb\r\n", b"STORED\r\n"),
                              (b"get e\r\n", b"VALUE e 0 4\r\na\r\nb\r\nEND\r\n")],
    "value_that_looks_like_commands": [
        (b"set e 0 0 14\r\nget a\r\nEND\r\n\r\n\r\n", b"STORED\r\n"),
        (b"get e\r\n", b"VALUE e 0 14\r\nget a\r\nEND\r\n\r\n\r\nEND\r\n")],
    "value_binary_bytes": [
        (b"set bin 0 0 4\r\n\x00\xff\r\x80\r\n", b"STORED\r\n"),
        (b"get bin\r\n", b"VALUE bin 0 4\r\n\x00\xff\r\x80\r\nEND\r\n")],
    "empty_value": [(b"set e 0 0 0\r\n\r\n", b"STORED\r\n"),
                    (b"get e\r\n", b"VALUE e 0 0\r\n\r\nEND\r\n")],
    "set_overwrites_flags_and_value": [
        (b"set a 1 0 3\r\nabc\r\nset a 2 0 1\r\nz\r\n", b"STORED\r\nSTORED\r\n"),
        (b"get a\r\n", b"VALUE a 2 1\r\nz\r\nEND\r\n")],

    # --- key length ---------------------------------------------------------
    "key_250_bytes_ok": [
        (b"set " + K250 + b" 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"get " + K250 + b"\r\n", b"VALUE " + K250 + b" 0 1\r\nx\r\nEND\r\n"),
        (b"delete " + K250 + b"\r\n", b"DELETED\r\n")],
    "key_251_set": [(b"set " + K251 + b" 0 0 1\r\nx\r\n", BAD_FMT + b"ERROR\r\n")],
    "key_251_get": [(b"get " + K251 + b"\r\n", BAD_FMT)],
    "key_251_in_multiget_suppresses_hits": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"get a " + K251 + b"\r\n", BAD_FMT),
        (b"get " + K251 + b" a\r\n", BAD_FMT)],
    "key_251_delete": [(b"delete " + K251 + b"\r\n", BAD_FMT)],
    "key_251_incr": [(b"incr " + K251 + b" 1\r\n", BAD_FMT)],
    "key_251_touch": [(b"touch " + K251 + b" 1\r\n", BAD_FMT)],
    "key_251_gat": [(b"gat 10 " + K251 + b"\r\n", BAD_FMT)],
    "long_line_with_newline": [(b"x" * 5000 + b"\r\n", b"ERROR\r\n")],
    "long_get_key_with_newline": [(b"get " + b"x" * 5000 + b"\r\n", BAD_FMT)],
    "large_multiget": [(b"get " + b" ".join([b"k" * 200] * 100) + b"\r\n", b"END\r\n")],

    # --- add / replace / append / prepend ------------------------------------
    "add_new_then_existing": [
        (b"add a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"add a 0 0 1\r\ny\r\n", b"NOT_STORED\r\n"),
        (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n")],
    "replace_missing_then_existing": [
        (b"replace a 0 0 1\r\nx\r\n", b"NOT_STORED\r\n"),
        (b"get a\r\n", b"END\r\n"),
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"replace a 3 0 2\r\nyz\r\n", b"STORED\r\n"),
        (b"get a\r\n", b"VALUE a 3 2\r\nyz\r\nEND\r\n")],
    "append_prepend_missing": [
        (b"append a 0 0 1\r\nx\r\n", b"NOT_STORED\r\n"),
        (b"prepend a 0 0 1\r\nx\r\n", b"NOT_STORED\r\n"),
        (b"get a\r\n", b"END\r\n")],
    "append_prepend_keep_original_flags": [
        (b"set a 5 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"append a 7 0 1\r\ny\r\n", b"STORED\r\n"),
        (b"prepend a 9 0 1\r\nz\r\n", b"STORED\r\n"),
        (b"get a\r\n", b"VALUE a 5 3\r\nzxy\r\nEND\r\n")],
    "append_empty": [(b"set a 0 0 0\r\n\r\nappend a 0 0 0\r\n\r\n", b"STORED\r\nSTORED\r\n"),
                     (b"get a\r\n", b"VALUE a 0 0\r\n\r\nEND\r\n")],
    "storage_commands_missing_args": [
        (b"add\r\n", b"ERROR\r\n"), (b"cas\r\n", b"ERROR\r\n"),
        (b"append\r\n", b"ERROR\r\n"), (b"replace k 0 0\r\n", b"ERROR\r\n"),
        (b"prepend k\r\n", b"ERROR\r\n")],

    # --- cas ------------------------------------------------------------------
    "cas_missing_key": [(b"cas zz 0 0 1 1\r\nx\r\n", b"NOT_FOUND\r\n")],
    "cas_mismatch": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                     (b"cas a 0 0 1 999999\r\ny\r\n", b"EXISTS\r\n"),
                     (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n")],
    "cas_missing_unique": [(b"cas a 0 0 1\r\ny\r\n", b"ERROR\r\nERROR\r\n")],
    "cas_unique_not_numeric": [(b"cas a 0 0 1 abc\r\nx\r\n", BAD_FMT + b"ERROR\r\n")],
    "cas_unique_negative": [(b"cas a 0 0 1 -1\r\nx\r\n", BAD_FMT + b"ERROR\r\n")],

    # --- noreply on every command ------------------------------------------------
    "noreply_set": [(b"set a 0 0 1 noreply\r\nx\r\n", b""),
                    (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n")],
    "noreply_add_success_and_failure": [
        (b"add a 0 0 1 noreply\r\nx\r\n", b""),
        (b"add a 0 0 1 noreply\r\ny\r\n", b""),
        (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n")],
    "noreply_replace_success_and_failure": [
        (b"replace a 0 0 1 noreply\r\nx\r\n", b""),
        (b"get a\r\n", b"END\r\n"),
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"replace a 3 0 1 noreply\r\ny\r\n", b""),
        (b"get a\r\n", b"VALUE a 3 1\r\ny\r\nEND\r\n")],
    "noreply_append_prepend": [
        (b"append a 0 0 1 noreply\r\nx\r\n", b""),
        (b"prepend a 0 0 1 noreply\r\nx\r\n", b""),
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"append a 0 0 1 noreply\r\ny\r\nprepend a 0 0 1 noreply\r\nz\r\n", b""),
        (b"get a\r\n", b"VALUE a 0 3\r\nzxy\r\nEND\r\n")],
    "noreply_cas_missing_and_mismatch": [
        (b"cas zz 0 0 1 1 noreply\r\nx\r\n", b""),
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"cas a 0 0 1 999999 noreply\r\ny\r\n", b""),
        (b"get a zz\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n")],
    "noreply_delete": [(b"delete a noreply\r\n", b""),
                       (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                       (b"delete a noreply\r\n", b""),
                       (b"get a\r\n", b"END\r\n")],
    "noreply_incr_decr": [
        (b"incr zz 1 noreply\r\ndecr zz 1 noreply\r\n", b""),
        (b"set n 0 0 2\r\n10\r\n", b"STORED\r\n"),
        (b"incr n 5 noreply\r\ndecr n 2 noreply\r\n", b""),
        (b"incr n abc noreply\r\n", b""),   # noreply silences errors too
        (b"get n\r\n", b"VALUE n 0 2\r\n13\r\nEND\r\n")],
    "noreply_touch": [(b"touch zz 10 noreply\r\n", b""),
                      (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                      (b"touch a 10 noreply\r\n", b""),
                      (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n")],
    "noreply_flush_all": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                          (b"flush_all noreply\r\n", b""),
                          (b"get a\r\n", b"END\r\n"),
                          (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                          (b"flush_all 0 noreply\r\n", b""),
                          (b"get a\r\n", b"END\r\n")],
    "noreply_verbosity": [(b"verbosity 1 noreply\r\n", b""),
                          (b"verbosity 0 noreply\r\n", b"")],
    "noreply_silences_errors": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"incr a 1 noreply\r\ntouch a abc noreply\r\nflush_all abc noreply\r\n"
         b"verbosity abc noreply\r\nincr a -1 noreply\r\ndelete a 5 noreply\r\n", b""),
        (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n")],
    # the suppressed error does not swallow the data line, which then
    # fails as a command of its own (and that ERROR is sent)
    "noreply_bad_storage_line_then_data_is_a_command": [
        (b"set " + K251 + b" 0 0 1 noreply\r\nx\r\n", b"ERROR\r\n"),
        (b"set a 0 0 1 noreply\r\nxy\r\n", b"ERROR\r\n"),
        (b"get a\r\n", b"END\r\n")],
    "noreply_mixed_pipeline": [
        (b"set a 0 0 1 noreply\r\nx\r\nset b 0 0 1\r\ny\r\nadd a 0 0 1 noreply\r\nz\r\n"
         b"get a b\r\n",
         b"STORED\r\nVALUE a 0 1\r\nx\r\nVALUE b 0 1\r\ny\r\nEND\r\n")],

    # --- delete ---------------------------------------------------------------
    "delete_existing_and_missing": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"delete a\r\n", b"DELETED\r\n"),
        (b"delete a\r\n", b"NOT_FOUND\r\n"),
        (b"get a\r\n", b"END\r\n")],
    "delete_legacy_zero_time": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"delete a 0\r\n", b"DELETED\r\n"),
        (b"delete a 0\r\n", b"NOT_FOUND\r\n")],
    "delete_nonzero_time_rejected": [(b"delete a 10\r\n", DEL_USAGE)],
    "delete_too_many_tokens": [(b"delete a b c\r\n", DEL_USAGE),
                               (b"delete a noreply extra\r\n", DEL_USAGE)],
    "delete_no_key": [(b"delete\r\n", b"ERROR\r\n")],

    # --- incr / decr ------------------------------------------------------------
    "incr_decr_basic": [(b"set n 0 0 2\r\n10\r\n", b"STORED\r\n"),
                        (b"incr n 5\r\n", b"15\r\n"),
                        (b"decr n 3\r\n", b"12\r\n"),
                        (b"incr n 0\r\n", b"12\r\n"),
                        (b"get n\r\n", b"VALUE n 0 2\r\n12\r\nEND\r\n")],
    "incr_decr_missing_key": [(b"incr zz 1\r\n", b"NOT_FOUND\r\n"),
                              (b"decr zz 1\r\n", b"NOT_FOUND\r\n")],
    "incr_non_numeric_value": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                               (b"incr a 1\r\n", NON_NUM), (b"decr a 1\r\n", NON_NUM),
                               (b"incr a 18446744073709551615\r\n", NON_NUM)],
    "incr_value_with_trailing_garbage": [(b"set n 0 0 3\r\n12a\r\n", b"STORED\r\n"),
                                         (b"incr n 1\r\n", NON_NUM)],
    "incr_negative_value": [(b"set n 0 0 3\r\n-12\r\n", b"STORED\r\n"),
                            (b"incr n 1\r\n", NON_NUM)],
    "incr_empty_value": [(b"set n 0 0 0\r\n\r\n", b"STORED\r\n"),
                         (b"incr n 1\r\n", NON_NUM)],
    "incr_value_above_u64": [(b"set n 0 0 20\r\n18446744073709551616\r\n", b"STORED\r\n"),
                             (b"incr n 1\r\n", NON_NUM)],
    "incr_invalid_delta": [(b"set n 0 0 1\r\n5\r\n", b"STORED\r\n"),
                           (b"incr n abc\r\n", BAD_DELTA),
                           (b"incr n -1\r\n", BAD_DELTA),
                           (b"incr n 0x10\r\n", BAD_DELTA),
                           (b"incr n 18446744073709551616\r\n", BAD_DELTA),
                           (b"decr n abc\r\n", BAD_DELTA),
                           (b"decr n -1\r\n", BAD_DELTA),
                           (b"get n\r\n", b"VALUE n 0 1\r\n5\r\nEND\r\n")],
    "incr_delta_forms_accepted": [(b"set n 0 0 1\r\n0\r\n", b"STORED\r\n"),
                                  (b"incr n 00001\r\n", b"1\r\n"),
                                  (b"incr n +5\r\n", b"6\r\n"),
                                  (b"incr n  3\r\n", b"9\r\n")],
    "incr_missing_delta": [(b"incr n\r\n", b"ERROR\r\n"), (b"decr n\r\n", b"ERROR\r\n"),
                           (b"incr\r\n", b"ERROR\r\n"), (b"decr\r\n", b"ERROR\r\n")],
    "incr_third_arg_not_noreply_ignored": [(b"set n 0 0 1\r\n1\r\n", b"STORED\r\n"),
                                           (b"incr n 1 2\r\n", b"2\r\n"),
                                           (b"incr n 1 noreply extra\r\n", b"ERROR\r\n")],
    "incr_wraps_at_2_64": [
        (b"set m 0 0 20\r\n18446744073709551615\r\n", b"STORED\r\n"),
        (b"incr m 1\r\n", b"0\r\n"),
        (b"set n 0 0 1\r\n1\r\n", b"STORED\r\n"),
        (b"incr n 18446744073709551615\r\n", b"0\r\n"),
        (b"incr n 18446744073709551615\r\n", b"18446744073709551615\r\n")],
    "decr_floors_at_zero": [(b"set n 0 0 1\r\n5\r\n", b"STORED\r\n"),
                            (b"decr n 1000\r\n", b"0\r\n"),
                            (b"decr n 1\r\n", b"0\r\n"),
                            (b"get n\r\n", b"VALUE n 0 1\r\n0\r\nEND\r\n")],
    # memcached rewrites a shorter result in place, padding with spaces
    "decr_shorter_result_is_space_padded": [
        (b"set n 0 0 3\r\n100\r\n", b"STORED\r\n"),
        (b"decr n 91\r\n", b"9\r\n"),
        (b"get n\r\n", b"VALUE n 0 3\r\n9  \r\nEND\r\n"),
        (b"incr n 1\r\n", b"10\r\n"),
        (b"get n\r\n", b"VALUE n 0 3\r\n10 \r\nEND\r\n")],
    "incr_leading_zeros_result_is_space_padded": [
        (b"set n 0 0 4\r\n0012\r\n", b"STORED\r\n"),
        (b"incr n 1\r\n", b"13\r\n"),
        (b"get n\r\n", b"VALUE n 0 4\r\n13  \r\nEND\r\n")],
    "incr_leading_and_trailing_space": [
        (b"set n 0 0 3\r\n 12\r\n", b"STORED\r\n"),
        (b"incr n 1\r\n", b"13\r\n"),
        (b"set m 0 0 2\r\n1 \r\n", b"STORED\r\n"),
        (b"incr m 1\r\n", b"2\r\n"),
        (b"get n m\r\n", b"VALUE n 0 3\r\n13 \r\nVALUE m 0 2\r\n2 \r\nEND\r\n")],
    "incr_longer_result_grows_value_keeps_flags": [
        (b"set n 3 0 2\r\n99\r\n", b"STORED\r\n"),
        (b"incr n 1\r\n", b"100\r\n"),
        (b"get n\r\n", b"VALUE n 3 3\r\n100\r\nEND\r\n")],

    # --- touch / gat / gats ------------------------------------------------------
    "touch_existing_and_missing": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                                   (b"touch a 100\r\n", b"TOUCHED\r\n"),
                                   (b"touch zz 100\r\n", b"NOT_FOUND\r\n"),
                                   (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n")],
    "touch_bad_args": [(b"touch\r\n", b"ERROR\r\n"), (b"touch a\r\n", b"ERROR\r\n"),
                       (b"touch a abc\r\n", BAD_EXPTIME)],
    "touch_third_arg_ignored": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                                (b"touch a 1000 2\r\n", b"TOUCHED\r\n")],
    "touch_negative_expires": [(b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                               (b"touch a -1\r\n", b"TOUCHED\r\n"),
                               (b"get a\r\n", b"END\r\n")],
    "gat_hit_miss_multi": [(b"set a 0 0 1\r\nx\r\nset b 4 0 2\r\nyy\r\n", b"STORED\r\nSTORED\r\n"),
                           (b"gat 100 a zz b\r\n",
                            b"VALUE a 0 1\r\nx\r\nVALUE b 4 2\r\nyy\r\nEND\r\n"),
                           (b"gat 100 zz\r\n", b"END\r\n")],
    "gat_bad_args": [(b"gat\r\n", b"ERROR\r\n"), (b"gats\r\n", b"ERROR\r\n"),
                     (b"gat abc a\r\n", BAD_EXPTIME), (b"gats abc a\r\n", BAD_EXPTIME)],
    "gat_without_keys": [(b"gat 10\r\n", b"END\r\n"), (b"gats 1\r\n", b"END\r\n")],
    "gat_negative_returns_then_expires": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"gat -1 a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n"),
        (b"get a\r\n", b"END\r\n")],

    # --- TTL (no waiting needed) -----------------------------------------------
    "ttl_negative_is_expired": [(b"set e 0 -1 1\r\nx\r\n", b"STORED\r\n"),
                                (b"get e\r\n", b"END\r\n")],
    "ttl_30_days_relative_vs_absolute": [
        (b"set b 0 2592000 1\r\nb\r\n", b"STORED\r\n"),
        (b"set c 0 2592001 1\r\nc\r\n", b"STORED\r\n"),   # unix time 1970+30d: past
        (b"get b c\r\n", b"VALUE b 0 1\r\nb\r\nEND\r\n")],

    # --- flush_all -----------------------------------------------------------------
    "flush_all_plain": [(b"set a 0 0 1\r\nx\r\nset b 0 100 1\r\ny\r\n", b"STORED\r\nSTORED\r\n"),
                        (b"flush_all\r\n", b"OK\r\n"),
                        (b"get a b\r\n", b"END\r\n"),
                        (b"set a 0 0 1\r\nz\r\n", b"STORED\r\n"),
                        (b"get a\r\n", b"VALUE a 0 1\r\nz\r\nEND\r\n")],
    "flush_all_zero_and_negative_are_immediate": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"flush_all 0\r\n", b"OK\r\n"),
        (b"get a\r\n", b"END\r\n"),
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"flush_all -1\r\n", b"OK\r\n"),
        (b"get a\r\n", b"END\r\n")],
    "flush_all_bad_args": [(b"flush_all abc\r\n", BAD_EXPTIME),
                           (b"flush_all 1 2 3\r\n", b"ERROR\r\n")],
    "flush_all_delay_keeps_items_for_now": [
        (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
        (b"flush_all 100\r\n", b"OK\r\n"),
        (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n"),
        (b"flush_all 0\r\n", b"OK\r\n")],

    # --- verbosity / version / stats -------------------------------------------------
    "verbosity": [(b"verbosity 1\r\n", b"OK\r\n"), (b"verbosity 0\r\n", b"OK\r\n"),
                  (b"verbosity 1 2\r\n", b"OK\r\n"), (b"verbosity 0\r\n", b"OK\r\n")],
    "verbosity_bad_args": [(b"verbosity\r\n", b"ERROR\r\n"),
                           (b"verbosity abc\r\n", BAD_FMT),
                           (b"verbosity -1\r\n", BAD_FMT),
                           (b"verbosity 1 2 3\r\n", b"ERROR\r\n")],
    "stats_unknown_subcommand": [(b"stats bogus\r\n", b"ERROR\r\n")],
    "stats_reset": [(b"stats reset\r\n", b"RESET\r\n")],

    # --- quit / pipelining --------------------------------------------------------------
    "quit_closes": [(b"quit\r\n", CLOSED)],
    "quit_with_argument_closes": [(b"quit extra\r\n", CLOSED)],
    "quit_in_pipeline_stops_processing": [
        (b"set a 0 0 1\r\nx\r\nget a\r\nquit\r\nget a\r\nset b 0 0 1\r\ny\r\n",
         (b"STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n", CLOSED))],

    "pipelined_requests_in_one_send": [
        (b"set b 0 0 1\r\n1\r\nincr b 1\r\nget b\r\ndelete b\r\nget b\r\n"
         b"add c 5 0 3\r\nabc\r\nappend c 0 0 1\r\nd\r\ntouch c 100\r\nget c\r\n",
         b"STORED\r\n2\r\nVALUE b 0 1\r\n2\r\nEND\r\nDELETED\r\nEND\r\n"
         b"STORED\r\nSTORED\r\nTOUCHED\r\nVALUE c 5 4\r\nabcd\r\nEND\r\n")],
}


class ProtocolTable(harness.SharedServerTest):
    """One test method per TABLE entry (generated below)."""

    def setUp(self):
        with self.server.conn() as c:
            self.assertEqual(c.request(b"flush_all\r\n"), b"OK\r\n")

    def run_steps(self, steps):
        c = self.server.conn()
        try:
            for i, (req, expect) in enumerate(steps):
                if req:
                    c.send(req)
                if isinstance(expect, tuple):      # (reply, CLOSED)
                    self.assertEqual(c.read_exact(len(expect[0])), expect[0])
                    expect = expect[1]
                if expect is CLOSED:
                    rest = c.read_to_eof()
                    self.assertEqual(rest, b"", "step %d: bytes before close" % i)
                    return
                got = c.read_exact(len(expect)) if expect else b""
                self.assertEqual(got, expect, "step %d reply to %r" % (i, req[:80]))
                # sentinel: the next bytes must be our VERSION reply
                line = c.request(b"version\r\n")
                self.assertTrue(line.startswith(b"VERSION "),
                                "step %d: extra bytes after reply to %r: %r"
                                % (i, req[:80], line))
        finally:
            c.close()


def _make(steps):
    def t(self):
        self.run_steps(steps)
    return t


for _name, _steps in TABLE.items():
    setattr(ProtocolTable, "test_" + _name, _make(_steps))


def expire_poll(conn, keys, timeout=8.0):
    """Bounded poll until every key in `keys` misses; returns True if so."""
    return harness.wait_until(
        lambda: all(conn.get(k) is None for k in keys), timeout, interval=0.1)


class ProtocolDynamic(harness.SharedServerTest):
    """Cases that need computed bytes or waiting for the clock."""

    def setUp(self):
        self.c = self.server.conn()
        self.assertEqual(self.c.request(b"flush_all\r\n"), b"OK\r\n")

    def tearDown(self):
        self.c.close()

    def test_version_format(self):
        line = self.c.request(b"version\r\n")
        self.assertRegex(line, rb"^VERSION [0-9A-Za-z.\-_+]+\r\n$")
        self.assertEqual(self.c.request(b"version extra\r\n"), line)

    def test_request_split_byte_by_byte(self):
        req = (b"set split 7 0 5\r\nab\r\nc\r\nget split\r\nincr nosuch 1\r\n"
               b"gets nosuch\r\n")
        for i in range(len(req)):
            self.c.send(req[i:i + 1])
        expect = b"STORED\r\nVALUE split 7 5\r\nab\r\nc\r\nEND\r\nNOT_FOUND\r\nEND\r\n"
        self.assertEqual(self.c.read_exact(len(expect)), expect)
        self.assertTrue(self.c.request(b"version\r\n").startswith(b"VERSION "))

    def test_cr_then_lf_in_separate_sends(self):
        self.c.send(b"get a\r")
        self.c.send(b"\n")
        self.assertEqual(self.c.read_exact(5), b"END\r\n")

    def test_many_pipelined_sets_and_gets(self):
        n = 500
        req = b"".join(b"set p%d %d 0 %d\r\n%s\r\n" % (i, i, len(b"v%d" % i), b"v%d" % i)
                       for i in range(n))
        req += b"get " + b" ".join(b"p%d" % i for i in range(n)) + b"\r\n"
        self.c.send(req)
        expect = b"STORED\r\n" * n + b"".join(
            b"VALUE p%d %d %d\r\nv%d\r\n" % (i, i, len(b"v%d" % i), i)
            for i in range(n)) + b"END\r\n"
        self.assertEqual(self.c.read_exact(len(expect), timeout=20), expect)

    def test_large_value_roundtrip(self):
        val = bytes(range(256)) * 4000            # 1,024,000 bytes < 1m default -I
        self.assertEqual(self.c.storage("set", "big", val), b"STORED\r\n")
        self.assertEqual(self.c.get("big"), val)

    def test_object_too_large_set_deletes_old_value(self):
        # memcached replies only after swallowing the whole data block
        self.assertEqual(self.c.set("a", "x"), b"STORED\r\n")
        big = b"y" * (1024 * 1024 + 1)
        self.c.send(b"set a 0 0 %d\r\n" % len(big) + big + b"\r\nget a\r\n")
        expect = TOO_LARGE + b"END\r\n"
        self.assertEqual(self.c.read_exact(len(expect), timeout=20), expect)
        self.assertTrue(self.c.request(b"version\r\n").startswith(b"VERSION "))

    def test_object_too_large_2mb_split_sends(self):
        self.assertEqual(self.c.set("a", "x"), b"STORED\r\n")
        self.c.send(b"set a 0 0 2000000\r\n")
        self.c.send(b"y" * 2000000)
        self.c.send(b"\r\n")
        self.assertEqual(self.c.readline(timeout=20), TOO_LARGE)
        self.assertIsNone(self.c.get("a"))

    def test_object_too_large_add_keeps_old_value(self):
        self.assertEqual(self.c.set("a", "x"), b"STORED\r\n")
        big = b"y" * 2000000
        self.c.send(b"add a 0 0 %d\r\n" % len(big) + big + b"\r\nget a\r\n")
        expect = TOO_LARGE + b"VALUE a 0 1\r\nx\r\nEND\r\n"
        self.assertEqual(self.c.read_exact(len(expect), timeout=20), expect)

    def test_object_too_large_noreply_is_silent(self):
        self.assertEqual(self.c.set("a", "x"), b"STORED\r\n")
        big = b"y" * 2000000
        self.c.send(b"set a 0 0 %d noreply\r\n" % len(big) + big + b"\r\nget a\r\n")
        self.assertEqual(self.c.read_exact(5, timeout=20), b"END\r\n")
        self.assertTrue(self.c.request(b"version\r\n").startswith(b"VERSION "))

    def test_ttl_relative_expires(self):
        self.assertEqual(self.c.set("short", "x", exptime=1), b"STORED\r\n")
        self.assertEqual(self.c.set("long", "y", exptime=1000), b"STORED\r\n")
        self.assertEqual(self.c.set("never", "z", exptime=0), b"STORED\r\n")
        self.assertTrue(expire_poll(self.c, ["short"]), "TTL 1 never expired")
        self.assertEqual(self.c.get("long"), b"y")
        self.assertEqual(self.c.get("never"), b"z")

    def test_ttl_absolute_unix_time(self):
        now = int(time.time())
        self.assertEqual(self.c.set("future", "x", exptime=now + 1000), b"STORED\r\n")
        self.assertEqual(self.c.set("past", "x", exptime=now - 1000), b"STORED\r\n")
        self.assertEqual(self.c.set("soon", "x", exptime=now + 2), b"STORED\r\n")
        self.assertIsNone(self.c.get("past"))
        self.assertEqual(self.c.get("future"), b"x")
        self.assertTrue(expire_poll(self.c, ["soon"]), "absolute TTL never expired")
        self.assertEqual(self.c.get("future"), b"x")

    def test_touch_shortens_and_extends_ttl(self):
        for k in ("shorten", "control", "extend", "gatext", "gatsext"):
            exp = 1000 if k == "shorten" else 2
            self.assertEqual(self.c.set(k, "v", exptime=exp), b"STORED\r\n")
        self.assertEqual(self.c.request(b"touch shorten 1\r\n"), b"TOUCHED\r\n")
        self.assertEqual(self.c.request(b"touch extend 0\r\n"), b"TOUCHED\r\n")
        self.assertEqual(self.c.request(b"gat 1000 gatext\r\n", b"END\r\n"),
                         b"VALUE gatext 0 1\r\nv\r\nEND\r\n")
        r = self.c.request(b"gats 0 gatsext\r\n", b"END\r\n")
        self.assertRegex(r, rb"^VALUE gatsext 0 1 \d+\r\nv\r\nEND\r\n$")
        self.assertTrue(expire_poll(self.c, ["shorten", "control"]))
        self.assertEqual(self.c.get("extend"), b"v")
        self.assertEqual(self.c.get("gatext"), b"v")
        self.assertEqual(self.c.get("gatsext"), b"v")

    def test_flush_all_with_delay(self):
        self.assertEqual(self.c.set("a", "x"), b"STORED\r\n")
        self.assertEqual(self.c.request(b"flush_all 3\r\n"), b"OK\r\n")
        self.assertEqual(self.c.get("a"), b"x")
        self.assertTrue(expire_poll(self.c, ["a"], timeout=10),
                        "delayed flush_all never took effect")
        # the flush is one-shot: an item set after it has taken effect is
        # kept (memcached may still drop one set in the flush's own second,
        # so poll set+get until the item stays)
        self.assertTrue(harness.wait_until(
            lambda: self.c.set("b", "y") == b"STORED\r\n" and
            self.c.get("b") == b"y", 10, interval=0.1))
        self.assertEqual(self.c.get("b"), b"y")

    def test_flush_all_delay_noreply(self):
        self.assertEqual(self.c.set("a", "x"), b"STORED\r\n")
        self.c.send(b"flush_all 2 noreply\r\n")
        self.assertEqual(self.c.get("a"), b"x")
        self.assertTrue(expire_poll(self.c, ["a"], timeout=10))

    def test_commands_after_quit_in_pipeline_not_run(self):
        self.c.send(b"set a 0 0 1\r\nx\r\nquit\r\nset b 0 0 1\r\ny\r\n")
        self.assertEqual(self.c.read_exact(8), b"STORED\r\n")
        self.assertTrue(self.c.is_closed())
        with self.server.conn() as other:
            self.assertEqual(other.get("a"), b"x")
            self.assertIsNone(other.get("b"))
        self.c = self.server.conn()

    def test_other_connection_unaffected_by_quit(self):
        with self.server.conn() as other:
            self.assertEqual(other.set("q", "1"), b"STORED\r\n")
            self.c.send(b"quit\r\n")
            self.assertTrue(self.c.is_closed())
            self.assertEqual(other.get("q"), b"1")
        self.c = self.server.conn()


class ProtocolCasNumbering(unittest.TestCase):
    """memcached's CAS ids are deterministic on a fresh server: one global
    counter from 1, taken by every successful store / incr / decr (not by
    failed stores, touch, gat or delete).  Needs its own fresh server."""

    def test_exact_cas_sequence_on_fresh_server(self):
        srv = harness.Server(external=False).start()
        try:
            c = srv.conn()
            steps = [
                (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
                (b"add a 0 0 1\r\ny\r\n", b"NOT_STORED\r\n"),
                (b"set b 0 0 1\r\nx\r\n", b"STORED\r\n"),
                (b"gets a b\r\n", b"VALUE a 0 1 1\r\nx\r\nVALUE b 0 1 2\r\nx\r\nEND\r\n"),
                (b"replace c 0 0 1\r\nx\r\n", b"NOT_STORED\r\n"),
                (b"set c 0 0 1\r\nx\r\n", b"STORED\r\n"),
                (b"gets c\r\n", b"VALUE c 0 1 3\r\nx\r\nEND\r\n"),
                (b"cas c 0 0 1 99\r\ny\r\n", b"EXISTS\r\n"),
                (b"set d 0 0 1\r\nx\r\n", b"STORED\r\n"),
                (b"gets d\r\n", b"VALUE d 0 1 4\r\nx\r\nEND\r\n"),
                (b"cas d 0 0 1 4\r\nz\r\n", b"STORED\r\n"),
                (b"cas d 0 0 1 4\r\nw\r\n", b"EXISTS\r\n"),
                (b"gets d\r\n", b"VALUE d 0 1 5\r\nz\r\nEND\r\n"),
                (b"prepend d 0 0 1\r\np\r\n", b"STORED\r\n"),
                (b"gets d\r\n", b"VALUE d 0 2 6\r\npz\r\nEND\r\n"),
                (b"set n 0 0 1\r\n1\r\n", b"STORED\r\n"),
                (b"decr n 1\r\n", b"0\r\n"),
                (b"gets n\r\n", b"VALUE n 0 1 8\r\n0\r\nEND\r\n"),
                (b"touch n 0\r\n", b"TOUCHED\r\n"),
                (b"gats 0 n\r\n", b"VALUE n 0 1 8\r\n0\r\nEND\r\n"),
                (b"gat 0 n\r\n", b"VALUE n 0 1\r\n0\r\nEND\r\n"),
                (b"delete d\r\n", b"DELETED\r\n"),
                (b"set e 0 0 1\r\ne\r\n", b"STORED\r\n"),
                (b"gets e\r\n", b"VALUE e 0 1 9\r\ne\r\nEND\r\n"),
                (b"set " + K251 + b" 0 0 1\r\nx\r\n", BAD_FMT + b"ERROR\r\n"),
                (b"set f 0 0 1\r\nf\r\n", b"STORED\r\n"),
                (b"gets f\r\n", b"VALUE f 0 1 10\r\nf\r\nEND\r\n"),
                (b"incr n 1 noreply\r\n", b""),
                (b"gets n\r\n", b"VALUE n 0 1 11\r\n1\r\nEND\r\n"),
                (b"cas zz 0 0 1 11\r\nx\r\n", b"NOT_FOUND\r\n"),
                (b"append n 0 0 1\r\n0\r\n", b"STORED\r\n"),
                (b"gets n\r\n", b"VALUE n 0 2 12\r\n10\r\nEND\r\n"),
            ]
            for req, expect in steps:
                c.send(req)
                got = c.read_exact(len(expect)) if expect else b""
                self.assertEqual(got, expect, "reply to %r" % req[:60])
            self.assertTrue(c.request(b"version\r\n").startswith(b"VERSION "))
            c.close()
        finally:
            srv.stop()

    def test_cas_roundtrip_uses_gets_value(self):
        srv = harness.Server().start()
        try:
            with srv.conn() as c:
                self.assertEqual(c.set("cr", "v1"), b"STORED\r\n")
                _, cas1 = c.gets("cr")
                self.assertEqual(c.request(b"cas cr 3 0 2 %d\r\nv2\r\n" % cas1), b"STORED\r\n")
                val, cas2 = c.gets("cr")
                self.assertEqual(val, b"v2")
                self.assertNotEqual(cas1, cas2)
                self.assertEqual(c.request(b"cas cr 0 0 2 %d\r\nv3\r\n" % cas1), b"EXISTS\r\n")
                # gats reports the same unique as gets; touch does not change it
                r = c.request(b"gats 100 cr\r\n", b"END\r\n")
                self.assertEqual(r, b"VALUE cr 3 2 %d\r\nv2\r\nEND\r\n" % cas2)
                self.assertEqual(c.request(b"cas cr 0 0 2 %d noreply\r\nv4\r\n" % cas2
                                           + b"get cr\r\n", b"END\r\n"),
                                 b"VALUE cr 0 2\r\nv4\r\nEND\r\n")
        finally:
            srv.stop()


class ProtocolServerOptions(unittest.TestCase):
    """-C (no CAS) and -F (no flush_all) change replies; own servers."""

    def run_steps(self, args, steps):
        srv = harness.Server(args, external=False).start()
        try:
            with srv.conn() as c:
                for req, expect in steps:
                    c.send(req)
                    got = c.read_exact(len(expect)) if expect else b""
                    self.assertEqual(got, expect, "reply to %r" % req)
                self.assertTrue(c.request(b"version\r\n").startswith(b"VERSION "))
        finally:
            srv.stop()

    def test_disable_cas_reports_zero_and_cas_fails(self):
        self.run_steps(["-C"], [
            (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
            (b"gets a\r\n", b"VALUE a 0 1 0\r\nx\r\nEND\r\n"),
            (b"gats 0 a\r\n", b"VALUE a 0 1 0\r\nx\r\nEND\r\n"),
            (b"cas a 0 0 1 0\r\ny\r\n", b"EXISTS\r\n"),
            (b"cas a 0 0 1 1\r\ny\r\n", b"EXISTS\r\n"),
            (b"cas zz 0 0 1 0\r\ny\r\n", b"NOT_FOUND\r\n"),
            (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n")])

    def test_disable_flush_all(self):
        self.run_steps(["-F"], [
            (b"set a 0 0 1\r\nx\r\n", b"STORED\r\n"),
            (b"flush_all\r\n", b"CLIENT_ERROR flush_all not allowed\r\n"),
            (b"flush_all 0\r\n", b"CLIENT_ERROR flush_all not allowed\r\n"),
            (b"flush_all noreply\r\n", b""),
            (b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n")])


class ProtocolStats(unittest.TestCase):
    """stats / stats settings / stats items / stats slabs: structure and the
    counters that follow deterministically from the commands sent."""

    def test_stats_counters(self):
        srv = harness.Server(["-m", "32", "-c", "500", "-t", "4"],
                             external=False).start()
        try:
            with srv.conn() as c:
                c.send(b"set a 0 0 1\r\nx\r\nset b 0 0 2\r\nyy\r\nget a b zz\r\n"
                       b"incr zz 1\r\ndelete zz\r\ntouch a 10\r\n")
                c.read_until(b"TOUCHED\r\n")
                st = c.stats()
                for k in ("pid", "uptime", "time", "version", "curr_connections",
                          "total_connections", "cmd_get", "cmd_set", "get_hits",
                          "get_misses", "curr_items", "total_items", "bytes",
                          "evictions", "limit_maxbytes", "threads"):
                    self.assertIn(k, st)
                self.assertEqual(int(st["pid"]), srv.proc.pid)
                self.assertEqual(st["cmd_get"], "3")
                self.assertEqual(st["get_hits"], "2")
                self.assertEqual(st["get_misses"], "1")
                self.assertEqual(st["cmd_set"], "2")
                self.assertEqual(st["curr_items"], "2")
                self.assertEqual(st["total_items"], "2")
                self.assertEqual(st["incr_misses"], "1")
                self.assertEqual(st["delete_misses"], "1")
                self.assertEqual(st["cmd_touch"], "1")
                self.assertEqual(st["touch_hits"], "1")
                self.assertEqual(st["evictions"], "0")
                self.assertEqual(st["limit_maxbytes"], str(32 * 1024 * 1024))
                self.assertEqual(st["max_connections"], "500")
                self.assertEqual(st["threads"], "4")
                self.assertGreater(int(st["bytes"]), 0)
                self.assertAlmostEqual(int(st["time"]), time.time(), delta=5)
                self.assertGreaterEqual(int(st["curr_connections"]), 1)
                # raw format: every line "STAT <name> <value>\r\n", then END
                c.send(b"stats\r\n")
                raw = c.read_until(b"END\r\n")
                self.assertRegex(raw, rb"^(STAT [a-z_0-9:]+ [^\r\n]*\r\n)+END\r\n$")
                self.assertEqual(c.request(b"stats reset\r\n"), b"RESET\r\n")
                st = c.stats()
                self.assertEqual(st["cmd_get"], "0")
                self.assertEqual(st["get_hits"], "0")
                self.assertEqual(st["curr_items"], "2")   # not a counter
        finally:
            srv.stop()

    def test_stats_settings(self):
        srv = harness.Server(["-m", "16", "-c", "321", "-t", "3", "-I", "2m"],
                             external=False).start()
        try:
            with srv.conn() as c:
                st = c.stats(b"settings")
                self.assertEqual(st["maxbytes"], str(16 * 1024 * 1024))
                self.assertEqual(st["maxconns"], "321")
                self.assertEqual(st["tcpport"], str(srv.port))
                self.assertEqual(st["num_threads"], "3")
                self.assertEqual(st["item_size_max"], str(2 * 1024 * 1024))
                self.assertEqual(st["cas_enabled"], "yes")
                self.assertEqual(st["flush_enabled"], "yes")
                self.assertEqual(st["evictions"], "on")
        finally:
            srv.stop()

    def test_stats_items_and_slabs_format(self):
        srv = harness.Server(external=False).start()
        try:
            with srv.conn() as c:
                self.assertEqual(c.request(b"stats items\r\n"), b"END\r\n")
                self.assertEqual(c.set("a", "x"), b"STORED\r\n")
                c.send(b"stats items\r\n")
                raw = c.read_until(b"END\r\n")
                self.assertRegex(raw, rb"^(STAT items:\d+:[a-z_]+ \d+\r\n)+END\r\n$")
                self.assertIn(b":number 1\r\n", raw)
                c.send(b"stats slabs\r\n")
                raw = c.read_until(b"END\r\n")
                self.assertRegex(raw, rb"^(STAT [a-z0-9_:]+ \d+\r\n)+END\r\n$")
                self.assertIn(b"STAT active_slabs 1\r\n", raw)
                self.assertRegex(raw, rb"STAT \d+:used_chunks 1\r\n")
        finally:
            srv.stop()


if __name__ == "__main__":
    harness.main()
