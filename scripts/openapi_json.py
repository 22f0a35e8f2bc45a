#!/usr/bin/env python3
"""docs/openapi.yaml to JSON at build time (python3-yaml), so no request ever parses YAML.

    openapi_json.py IN.yaml OUT.json

Refuses what JSON cannot hold (YAML dates, binary, non-string keys) instead of guessing, and
writes OUT through a temporary file renamed into place, so a failed run leaves no half file.
"""
import datetime
import json
import os
import sys

import yaml


def check(node, where):
    """Raises ValueError at the first value that is not plain JSON."""
    if isinstance(node, dict):
        for k, v in node.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: key {k!r} is not a string (quote it)")
            check(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            check(v, f"{where}/{i}")
    elif isinstance(node, (datetime.date, datetime.datetime, bytes)):
        raise ValueError(f"{where}: {node!r} is a YAML {type(node).__name__}, quote it")
    elif isinstance(node, float) and node != node or node in (float("inf"), float("-inf")):
        raise ValueError(f"{where}: {node!r} is not a JSON number")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: openapi_json.py IN.yaml OUT.json")
    src, out = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    try:
        check(doc, "#")
    except ValueError as e:
        sys.exit(f"{src}: {e}")
    if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3.1"):
        sys.exit(f"{src}: not an OpenAPI 3.1 document")
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
