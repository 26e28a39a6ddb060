#!/usr/bin/python3
# Scenario: convenience runner.  Runs every test_*.py in this directory as
# its own process against one server binary and prints a summary; exit
# status 0 only if all passed.  Same as `ctest -L integration` but works
# without a build tree, e.g. against the reference server:
#   /usr/bin/python3 tests/integration/run_all.py --bin /usr/bin/memcached
# (test_flags.py is cairn-specific: against memcached it only checks the
# behaviour both servers share.)

import glob
import os
import subprocess
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
if not any(a == "--bin" or a.startswith("--bin=") for a in args) and not os.environ.get("CAIRN_BIN"):
    sys.exit("usage: run_all.py --bin PATH [--memcached PATH]")
results = []
for path in sorted(glob.glob(os.path.join(here, "test_*.py"))):
    t0 = time.monotonic()
    try:
        rc = subprocess.run(["/usr/bin/python3", path] + args, timeout=300).returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    results.append((os.path.basename(path), rc, time.monotonic() - t0))
print()
for name, rc, dt in results:
    print("%-24s %-8s %5.1fs" % (name, "ok" if rc == 0 else "FAIL(%s)" % rc, dt))
sys.exit(0 if all(rc == 0 for _, rc, _ in results) else 1)
