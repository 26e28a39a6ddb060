#!/usr/bin/python3
# Scenario: ruby-dalli (Debian's Dalli 3.0.6, which speaks only the binary
# protocol) runs every operation it offers (dalli_ops.rb) against memcached
# (reference) and cairn.
# Run: /usr/bin/python3 tests/clients/test_dalli.py --bin build/cairn

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clientlib  # noqa: E402


@clientlib.add_tests
class Dalli(clientlib.ClientScriptTest):
    CLIENT = "dalli"
    SCRIPT = "dalli_ops.rb"
    VARIANTS = {"binary": []}

    def command(self):
        return [clientlib.require_tool("ruby", "apt-get install ruby ruby-dalli"
                                       " (scripts/deps.sh installs it)")]


if __name__ == "__main__":
    clientlib.main()
