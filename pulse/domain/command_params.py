"""Command parameter schemas: the JSON-Schema subset a template declares for a command, and checking params
against it (pure: the templates store checks schemas with it, the commands service checks params)."""
from __future__ import annotations

import math
from typing import Any

_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")
_KEYWORDS = {"type", "properties", "required", "enum", "minimum", "maximum", "additionalProperties", "items",
             "title", "description", "default", "examples", "$schema"}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and math.isfinite(value) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"object": dict, "array": list, "string": str, "boolean": bool,
                              "null": type(None)}[name])


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def validate_params(schema: dict[str, Any], params: Any) -> list[str]:
    """Check params against a command's parameters_schema; -> readable errors (empty: valid).

    Supports type, properties, required, enum, minimum, maximum, additionalProperties (false)
    and items; `schema_errors` keeps other keywords out of stored schemas.
    """
    errors: list[str] = []
    _validate(schema or {}, params, "", errors)
    return errors


def _validate(schema: dict[str, Any], value: Any, path: str, errors: list[str]) -> None:
    where = path or "params"
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is_type(value, k) for k in kinds):
            errors.append(f"{where}: expected {' or '.join(kinds)}")
            return
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        errors.append(f"{where}: must be one of {', '.join(map(repr, schema['enum']))}")
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: must be >= {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: must be <= {schema['maximum']}")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value:
                errors.append(f"{path + '.' if path else ''}{name}: required")
        for name, item in value.items():
            sub = f"{path}.{name}" if path else name
            if name in props:
                _validate(props[name], item, sub, errors)
            elif schema.get("additionalProperties") is False:
                errors.append(f"{sub}: not allowed")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _validate(schema["items"], item, f"{where}[{i}]", errors)


def schema_errors(schema: Any, path: str = "parameters_schema") -> list[str]:
    """Problems with a parameters schema itself: only the subset validate_params understands."""
    if not isinstance(schema, dict):
        return [f"{path}: must be an object"]
    errors = [f"{path}: unsupported keyword {k!r}" for k in schema if k not in _KEYWORDS]
    kinds = schema.get("type")
    if kinds is not None and not all(k in _TYPES for k in (kinds if isinstance(kinds, list) else [kinds])):
        errors.append(f"{path}.type: must be one of {', '.join(_TYPES)}")
    for bound in ("minimum", "maximum"):
        if bound in schema and not _is_type(schema[bound], "number"):
            errors.append(f"{path}.{bound}: must be a number")
    if "enum" in schema and not (isinstance(schema["enum"], list) and schema["enum"]):
        errors.append(f"{path}.enum: must be a non-empty list")
    if "required" in schema and not (isinstance(schema["required"], list)
                                     and all(isinstance(r, str) for r in schema["required"])):
        errors.append(f"{path}.required: must be a list of names")
    if "additionalProperties" in schema and not isinstance(schema["additionalProperties"], bool):
        errors.append(f"{path}.additionalProperties: only true or false is supported")
    props = schema.get("properties", {})
    if not isinstance(props, dict):
        errors.append(f"{path}.properties: must be an object")
    else:
        for name, sub in props.items():
            errors.extend(schema_errors(sub, f"{path}.properties.{name}"))
    if "items" in schema:
        errors.extend(schema_errors(schema["items"], f"{path}.items"))
    return errors
