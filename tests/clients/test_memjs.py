#!/usr/bin/python3
# Scenario: memjs (npm, pinned by package-lock.json; binary protocol only)
# runs every operation it offers (memjs_ops.js) against memcached
# (reference) and cairn.  memjs lives in tests/clients/node_modules:
# scripts/deps.sh installs it there (npm ci).
# Run: /usr/bin/python3 tests/clients/test_memjs.py --bin build/cairn

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clientlib  # noqa: E402


@clientlib.add_tests
class Memjs(clientlib.ClientScriptTest):
    CLIENT = "memjs"
    SCRIPT = "memjs_ops.js"
    VARIANTS = {"binary": []}

    def command(self):
        if not os.path.isfile(os.path.join(clientlib.NODE_MODULES, "memjs", "package.json")):
            self.fail("memjs is not installed in %s: run `npm ci` there"
                      " (scripts/deps.sh: install_deps test does)" % clientlib.NODE_MODULES)
        return [clientlib.require_tool("node", "apt-get install nodejs npm"
                                       " (scripts/deps.sh installs them)")]

    def env(self):
        return dict(os.environ, NODE_PATH=clientlib.NODE_MODULES)


if __name__ == "__main__":
    clientlib.main()
