#!/usr/bin/python3
"""Derives the Firecracker API contract that the fake firecracker enforces
(tests/integration/fake_firecracker.py) from Firecracker's own swagger file.

For every path and method: the request body schema with every $ref resolved
(required fields, property names and types, enums, bounds, nested objects,
additionalProperties), path parameters, and the response codes with their
schemas. The output is deterministic (sorted keys, no timestamps, no host
paths) so it can be committed and compared in a drift test.

Usage: derive_contract.py [SWAGGER_YAML] [-o OUT | --stdout]
Defaults: ../shared/reference/firecracker-api-v1.16.1.yaml (next to the
repository) -> tests/data/firecracker-contract.json.
Needs PyYAML (Debian: apt-get install python3-yaml).
"""
import argparse
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_YAML = ROOT.parent / "shared" / "reference" / "firecracker-api-v1.16.1.yaml"
DEFAULT_OUT = ROOT / "tests" / "data" / "firecracker-contract.json"
METHODS = ("get", "put", "patch", "post", "delete")
# Firecracker deserializes bodies with serde's deny_unknown_fields, so an
# object schema without additionalProperties admits no other fields (JSON
# Schema's permissive default would hide typos like "vcpus").
NOTES = ("Derived by tests/firecracker/derive_contract.py; do not edit by hand. "
         "Objects without additionalProperties in the swagger admit no unknown fields "
         "(Firecracker uses serde deny_unknown_fields).")


class Loader(yaml.SafeLoader):
    """YAML 1.1 reads Off/On/Yes/No as booleans: the logger's level enum has
    "Off", so only true/false are booleans here."""


Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                             list("tTfF"))


def resolve(node, defs, stack=()):
    """A schema with $refs inlined and descriptions dropped."""
    if "$ref" in node:  # swagger 2.0 ignores siblings of $ref
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in stack:
            raise SystemExit(f"recursive schema {' -> '.join(stack + (name,))}: not supported")
        if name not in defs:
            raise SystemExit(f"unknown $ref {node['$ref']}")
        out = resolve(defs[name], defs, stack + (name,))
        out["definition"] = name
        return out
    out = {}
    typ = node.get("type") or ("object" if "properties" in node else None)
    if typ:
        out["type"] = typ
    for key in ("enum", "minimum", "maximum", "format", "default"):
        if key in node:
            out[key] = node[key]
    if typ == "object":
        props = node.get("properties") or {}
        out["properties"] = {k: resolve(v, defs, stack) for k, v in props.items()}
        out["required"] = sorted(node.get("required") or [])
        extra = node.get("additionalProperties", False)
        out["additionalProperties"] = resolve(extra, defs, stack) if isinstance(extra, dict) else bool(extra)
    if typ == "array":
        out["items"] = resolve(node.get("items") or {}, defs, stack)
    return out


def derive(doc):
    defs = doc.get("definitions") or {}
    paths = {}
    for path, item in (doc.get("paths") or {}).items():
        ops = {}
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            entry = {"operation_id": op.get("operationId"), "path_params": {}, "body": None}
            for p in op.get("parameters") or []:
                if p.get("in") == "path":
                    entry["path_params"][p["name"]] = {"type": p.get("type", "string"),
                                                       "required": bool(p.get("required"))}
                elif p.get("in") == "body":
                    entry["body"] = {"required": bool(p.get("required")),
                                     "schema": resolve(p.get("schema") or {}, defs)}
            responses = {}
            for code, resp in (op.get("responses") or {}).items():
                r = {}
                if isinstance(resp, dict) and resp.get("schema"):
                    r["schema"] = resolve(resp["schema"], defs)
                responses[str(code)] = r
            entry["responses"] = responses
            ops[method.upper()] = entry
        paths[path] = ops
    info = doc.get("info") or {}
    return {"source": "firecracker swagger (src/firecracker/swagger/firecracker.yaml)",
            "version": str(info.get("version")), "base_path": doc.get("basePath", "/"),
            "notes": NOTES, "paths": paths}


def render(contract):
    return json.dumps(contract, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("yaml", nargs="?", default=str(DEFAULT_YAML))
    ap.add_argument("-o", "--output", default=str(DEFAULT_OUT))
    ap.add_argument("--stdout", action="store_true", help="print instead of writing the file")
    args = ap.parse_args()
    with open(args.yaml, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=Loader)
    text = render(derive(doc))
    if args.stdout:
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output} ({len(doc.get('paths') or {})} paths)", file=sys.stderr)


if __name__ == "__main__":
    main()
