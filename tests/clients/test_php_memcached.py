#!/usr/bin/python3
# Scenario: php-memcached (libmemcached) runs every server method it offers
# (php_memcached_ops.php) against memcached (reference) and cairn, once with
# Memcached::OPT_BINARY_PROTOCOL and once over ASCII.
# Run: /usr/bin/python3 tests/clients/test_php_memcached.py --bin build/cairn

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clientlib  # noqa: E402


@clientlib.add_tests
class PhpMemcached(clientlib.ClientScriptTest):
    CLIENT = "php-memcached"
    SCRIPT = "php_memcached_ops.php"
    VARIANTS = {"binary": ["binary"], "ascii": ["ascii"]}

    def command(self):
        return [clientlib.require_tool("php", "apt-get install php-cli php-memcached"
                                       " (scripts/deps.sh installs them)")]


if __name__ == "__main__":
    clientlib.main()
