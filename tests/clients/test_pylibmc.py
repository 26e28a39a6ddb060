#!/usr/bin/python3
# Scenario: python3-pylibmc (libmemcached) runs every operation it offers
# (pylibmc_ops.py) against memcached (reference) and cairn, once with
# binary=True (the binary protocol) and once over ASCII.
# Run: /usr/bin/python3 tests/clients/test_pylibmc.py --bin build/cairn

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clientlib  # noqa: E402


@clientlib.add_tests
class Pylibmc(clientlib.ClientScriptTest):
    CLIENT = "pylibmc"
    SCRIPT = "pylibmc_ops.py"
    VARIANTS = {"binary": ["binary"], "ascii": ["ascii"]}

    def command(self):
        return ["/usr/bin/python3"]


if __name__ == "__main__":
    clientlib.main()
