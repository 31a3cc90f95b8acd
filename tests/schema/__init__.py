"""Validation of what a server answers against the schemas of ``openapi.yaml`` (ACP 0.2).

The spec is OpenAPI 3.1 with some 3.0-isms: ``nullable: true`` is translated into allowing ``null``.
Formats are checked: ``uuid``, ``uri`` (absolute, with a scheme) and ``date-time``, which must be RFC 3339
in UTC with a ``Z`` suffix (the TypeScript client rejects offsets such as ``+00:00``).

Two validators of the same schemas: jsonschema-rs answers whether an instance is valid (the contract
suite validates tens of thousands of answers and events, and python-jsonschema took about half of its
time), and python-jsonschema, the reference, decides every instance jsonschema-rs rejects and gives
the readable errors. Both check the same formats with the same functions; an instance is valid when
jsonschema-rs accepts it or python-jsonschema finds no error.

``openapi.yaml`` is read from ``../shared/acp/openapi.yaml`` relative to the repository root (CI runs in a
fresh clone with a copy of ``shared/`` beside it), or from ``$ACP_OPENAPI`` if set.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import yaml
from jsonschema.exceptions import ValidationError

__all__ = ["SchemaError", "assert_valid", "fast_validator", "openapi_path", "schema_errors", "validator"]

REPO_ROOT = Path(__file__).resolve().parents[2]
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]*$")


class SchemaError(AssertionError):
    """An answer does not validate against the spec."""


def openapi_path() -> Path:
    """Where ``openapi.yaml`` is; fails with an explanation if it is not there."""
    path = Path(os.environ.get("ACP_OPENAPI") or REPO_ROOT.parent / "shared" / "acp" / "openapi.yaml")
    if not path.is_file():
        raise FileNotFoundError(
            f"ACP spec not found at {path}: the tests validate every answer against it. Put a copy of "
            "shared/acp/openapi.yaml beside the repository (../shared/acp/openapi.yaml) or set ACP_OPENAPI."
        )
    return path


def _translate(node: Any) -> Any:
    """OpenAPI 3.0-isms to JSON Schema 2020-12: ``nullable`` and ``#/components/schemas`` references."""
    if isinstance(node, list):
        return [_translate(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _translate(value) for key, value in node.items() if key not in ("nullable", "example")}
    if "$ref" in out:
        out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/$defs/")
    if node.get("nullable") is True:
        if isinstance(out.get("type"), str) and "$ref" not in out and "oneOf" not in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            description = out.pop("description", None)
            out = {"anyOf": [out, {"type": "null"}]}
            if description is not None:
                out["description"] = description
    return out


def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value[:-1])
    except ValueError:
        return False
    return True


def _uuid(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _uri(value: object) -> bool:
    return not isinstance(value, str) or bool(_URI.match(value))


@cache
def _schemas() -> dict[str, Any]:
    spec = yaml.safe_load(openapi_path().read_text())
    return {name: _translate(schema) for name, schema in spec["components"]["schemas"].items()}


@cache
def validator(name: str) -> jsonschema.protocols.Validator:
    """A validator of the component schema ``name`` (``"Run"``, ``"Event"``, ``"Error"``...)."""
    schemas = _schemas()
    if name not in schemas:
        raise KeyError(f"no schema {name!r} in {openapi_path()}")
    checker = jsonschema.FormatChecker(formats=())
    checker.checks("date-time")(_date_time)
    checker.checks("uuid")(_uuid)
    checker.checks("uri")(_uri)
    schema = _document(name)
    cls = jsonschema.Draft202012Validator
    cls.check_schema(schema)
    return cls(schema, format_checker=checker)


def _document(name: str) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": _schemas(),
        "$ref": f"#/$defs/{name}",
    }


def _formats(node: Any) -> set[str]:
    """Every ``format`` named in a schema."""
    if isinstance(node, list):
        return set().union(*(_formats(item) for item in node))
    if not isinstance(node, dict):
        return set()
    own = {node["format"]} if isinstance(node.get("format"), str) else set()
    return own.union(*(_formats(value) for value in node.values()))


def _accept(value: object) -> bool:
    return True


@cache
def fast_validator(name: str) -> jsonschema_rs.Validator:
    """jsonschema-rs's validator of ``name``, checking the formats :func:`validator` checks, with the
    same functions, and no other (jsonschema-rs would check ``email``, say, which the reference does not)."""
    schema = _document(name)
    formats: dict[str, Any] = dict.fromkeys(_formats(schema), _accept)
    formats.update({"date-time": _date_time, "uuid": _uuid, "uri": _uri})
    return jsonschema_rs.validator_for(schema, formats=formats, validate_formats=True)


def schema_errors(instance: Any, name: str) -> list[str]:
    """Every way ``instance`` fails the schema ``name``, as readable lines (empty when it validates)."""
    if fast_validator(name).is_valid(instance):
        return []
    errors: list[ValidationError] = sorted(validator(name).iter_errors(instance), key=lambda e: list(e.path))
    lines = []
    for error in errors:
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        lines.append(f"{where}: {error.message}")
        for sub in error.context or ():
            sub_where = "/".join(str(part) for part in sub.absolute_path) or "(root)"
            lines.append(f"    {sub_where}: {sub.message}")
    return lines


def assert_valid(instance: Any, name: str) -> None:
    """Raise :class:`SchemaError` unless ``instance`` validates against the schema ``name``."""
    errors = schema_errors(instance, name)
    if errors:
        shown = repr(instance)
        shown = shown if len(shown) < 3000 else shown[:3000] + "..."
        raise SchemaError(f"not a valid {name}:\n  " + "\n  ".join(errors) + f"\ninstance: {shown}")
