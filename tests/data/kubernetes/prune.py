#!/usr/bin/env python3
"""Copies the strict JSON schemas of the kinds contrib/kubernetes uses out of a
kubernetes-validate wheel (kubernetes-json-schema/<version>-local-strict), keeping only the
definitions they reach and dropping descriptions, so the test data stays small.

Usage: prune.py SCHEMA_DIR OUT_DIR KIND_FILE...   (e.g. daemonset-apps-v1.json)
"""
import json
import sys
from pathlib import Path

# Kind files refer to the definitions file, definitions to each other.
PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/")


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def refs(node, out):
    if isinstance(node, dict):
        ref = node.get("$ref")
        for prefix in PREFIXES:
            if isinstance(ref, str) and ref.startswith(prefix):
                out.add(ref[len(prefix):])
        for v in node.values():
            refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def main():
    src, dst, kinds = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
    defs = json.loads((src / "_definitions.json").read_text())
    dst.mkdir(parents=True, exist_ok=True)
    todo = set()
    for kind in kinds:
        doc = json.loads((src / kind).read_text())
        refs(doc, todo)
        (dst / kind).write_text(json.dumps(strip(doc), indent=1, sort_keys=True) + "\n")
    keep = {}
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep[name] = defs["$defs"][name]
        refs(keep[name], todo)
    defs["$defs"] = keep
    (dst / "_definitions.json").write_text(
        json.dumps(strip(defs), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
