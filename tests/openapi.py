"""Venice's published OpenAPI document (vendored whole in tests/contracts/) as JSON schemas.

The document is OpenAPI 3.0 written as YAML 1.2. Two things stand between it and jsonschema:
PyYAML reads YAML 1.1, where `16:9` is a base-60 integer (969) and `on`/`no` are booleans,
so the loader below keeps YAML 1.2's plain scalars; and OpenAPI 3.0's `nullable: true` is
not JSON Schema, so it becomes a `null` alternative of the type (and the enum).
"""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

DOCUMENT = Path(__file__).parent / "contracts" / "venice-openapi-2026-08-14.yaml"


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2's core schema for booleans, integers and floats."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
                           "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"))
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"))


@cache
def document() -> dict[str, Any]:
    with DOCUMENT.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=Yaml12Loader)  # noqa: S506 (a SafeLoader subclass)


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema object → JSON Schema (draft 4): `nullable` made explicit."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_schema(value) for key, value in node.items()
           if key not in ("nullable", "example", "description")}
    if node.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


@cache
def _components() -> dict[str, Any]:
    return _json_schema(copy.deepcopy(document()["components"]))


def validator(schema: dict[str, Any]) -> jsonschema.Draft4Validator:
    """A validator for an OpenAPI schema object; its `$ref`s resolve in the document."""
    root = {**_json_schema(schema), "components": _components()}
    return jsonschema.Draft4Validator(root)


def component(name: str) -> jsonschema.Draft4Validator:
    return validator({"$ref": f"#/components/schemas/{name}"})


def operation(path: str, method: str = "post") -> dict[str, Any]:
    return document()["paths"][path][method]


def request_schema(path: str) -> jsonschema.Draft4Validator:
    content = operation(path)["requestBody"]["content"]["application/json"]
    return validator(content["schema"])


def response_schema(path: str, status: int, method: str = "post",
                    media: str = "application/json") -> jsonschema.Draft4Validator:
    return validator(operation(path, method)["responses"][str(status)]["content"][media]
                     ["schema"])


def errors(check: jsonschema.Draft4Validator, instance: Any) -> list[str]:
    """Every way `instance` breaks the schema, one line each (empty: it passes)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in check.iter_errors(instance)]
