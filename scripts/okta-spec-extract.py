#!/usr/bin/env python3
"""Extract the Okta Management API operations the transmitter may call from Okta's OpenAPI spec.

Writes ``tests/fixtures/okta-operations.json`` (used by ``tests/api/okta_contract.rs``): for every
path under ``/api/v1/users``, ``/api/v1/groups``, ``/api/v1/idps`` and
``/api/v1/security-events-providers`` (sub-paths included), each HTTP method (upper case) maps to

    {"query": {name: {"enum": [...] | null, "type": "string" | "boolean" | ...}},
     "body_properties": [top-level property names] | null}

``$ref``s are resolved for parameters and request-body schemas; ``allOf`` / ``oneOf`` / ``anyOf``
contribute the union of their top-level properties. ``body_properties`` is null when the
operation takes no JSON body. Path-level parameters apply to every method of the path, and an
operation's own parameter of the same name and location overrides them.

The spec is Okta's ``management-minimal.yaml`` (OpenAPI 3, published in
https://github.com/okta/okta-management-openapi-spec). Regenerate with:

    python3 scripts/okta-spec-extract.py path/to/management-minimal.yaml \
        [-o tests/fixtures/okta-operations.json]

Needs PyYAML (``pip install pyyaml``). The output is deterministic (sorted keys), so a diff of the
fixture shows exactly what changed in the spec.
"""

import argparse
import json
import os
import sys

import yaml

PREFIXES = [
    "/api/v1/users",
    "/api/v1/groups",
    "/api/v1/idps",
    "/api/v1/security-events-providers",
]
METHODS = ["get", "put", "post", "delete", "patch", "head", "options"]


def resolve(spec, node, seen=()):
    """Follows ``$ref`` (local ``#/...`` only) until a concrete node."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise SystemExit(f"unsupported non-local $ref: {ref}")
        if ref in seen:
            raise SystemExit(f"$ref cycle at {ref}")
        seen = seen + (ref,)
        target = spec
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            target = target[part]
        node = target
    return node


def schema_type(spec, schema, depth=0):
    """The schema's ``type`` (through ``$ref`` / ``allOf``); None when it has none."""
    schema = resolve(spec, schema or {})
    if "type" in schema:
        return schema["type"]
    if depth < 10:
        for key in ("allOf", "oneOf", "anyOf"):
            for sub in schema.get(key, []):
                t = schema_type(spec, sub, depth + 1)
                if t:
                    return t
    return None


def schema_enum(spec, schema, depth=0):
    """The allowed values (for arrays, of the items); None when unrestricted."""
    schema = resolve(spec, schema or {})
    if "enum" in schema:
        return [v for v in schema["enum"] if v is not None]
    if schema.get("type") == "array" and "items" in schema:
        return schema_enum(spec, schema["items"], depth + 1)
    if depth < 10:
        values = None
        for key in ("allOf", "oneOf", "anyOf"):
            for sub in schema.get(key, []):
                e = schema_enum(spec, sub, depth + 1)
                if e is not None:
                    values = sorted(set(values or []) | set(e), key=str)
        return values
    return None


def properties(spec, schema, seen=()):
    """Union of the top-level property names of a schema (through ``$ref``, ``allOf``,
    ``oneOf``, ``anyOf``)."""
    if isinstance(schema, dict) and "$ref" in schema:
        if schema["$ref"] in seen:
            return set()
        seen = seen + (schema["$ref"],)
    schema = resolve(spec, schema or {})
    names = set(schema.get("properties", {}).keys())
    for key in ("allOf", "oneOf", "anyOf"):
        for sub in schema.get(key, []):
            names |= properties(spec, sub, seen)
    return names


def body_properties(spec, operation):
    body = operation.get("requestBody")
    if body is None:
        return None
    body = resolve(spec, body)
    content = body.get("content", {})
    json_types = [t for t in content if t == "application/json" or t.endswith("+json")]
    if not json_types:
        return None
    names = set()
    for t in json_types:
        names |= properties(spec, content[t].get("schema", {}))
    return sorted(names)


def query_params(spec, path_item, operation):
    params = {}
    for p in path_item.get("parameters", []) + operation.get("parameters", []):
        p = resolve(spec, p)
        params[(p["name"], p["in"])] = p
    out = {}
    for (name, location), p in sorted(params.items()):
        if location != "query":
            continue
        schema = p.get("schema", {})
        out[name] = {"enum": schema_enum(spec, schema), "type": schema_type(spec, schema)}
    return out


def in_scope(path):
    return any(path == p or path.startswith(p + "/") for p in PREFIXES)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "tests", "fixtures", "okta-operations.json")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="Okta's management-minimal.yaml")
    parser.add_argument("-o", "--output", default=default_out, help="fixture to write")
    args = parser.parse_args()

    with open(args.spec, encoding="utf-8") as f:
        spec = yaml.safe_load(f)

    paths = {}
    for path, item in sorted(spec.get("paths", {}).items()):
        if not in_scope(path):
            continue
        item = resolve(spec, item)
        ops = {}
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            ops[method.upper()] = {
                "query": query_params(spec, item, op),
                "body_properties": body_properties(spec, op),
            }
        paths[path] = ops

    info = spec.get("info", {})
    fixture = {
        "source": {
            "file": os.path.basename(args.spec),
            "title": info.get("title"),
            "version": info.get("version"),
            "openapi": spec.get("openapi"),
            "generated_by": "scripts/okta-spec-extract.py",
        },
        "prefixes": PREFIXES,
        "paths": paths,
    }
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(fixture, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
    operations = sum(len(ops) for ops in paths.values())
    print(f"{args.output}: {len(paths)} paths, {operations} operations "
          f"(spec {info.get('version')})", file=sys.stderr)


if __name__ == "__main__":
    main()
