#!/usr/bin/python3
# Scenario: the README and docs/ link only to files that are in the
# repository (and to anchors that exist in them), and name no file from
# outside it.  Fails listing every broken link.
#
# Run: /usr/bin/python3 tests/docs/check_links.py REPO_ROOT

import os
import re
import sys

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
OUTSIDE = re.compile(r"\.\./shared|DESIGN\.md")


def anchors(path):
    """GitHub-style anchors of the headings in a markdown file."""
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"#+\s+(.*)", line)
            if m:
                a = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
                out.add(a)
    return out


def main():
    root = sys.argv[1]
    docs = [os.path.join(root, "README.md")]
    docs += [os.path.join(root, "docs", n) for n in sorted(os.listdir(os.path.join(root, "docs")))
             if n.endswith(".md")]
    broken = []
    for doc in docs:
        with open(doc, encoding="utf-8") as f:
            text = f.read()
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                broken.append("%s:%d: names a file outside the repository" % (doc, n))
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue          # http:, https:, mailto:
            path, _, anchor = target.partition("#")
            full = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
            if not os.path.exists(full):
                broken.append("%s: link to %s: no such file" % (doc, target))
            elif anchor and full.endswith(".md") and anchor not in anchors(full):
                broken.append("%s: link to %s: no such heading" % (doc, target))
    for b in broken:
        print(b)
    print("%d documents, %d broken links" % (len(docs), len(broken)))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
