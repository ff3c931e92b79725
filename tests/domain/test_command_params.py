"""The JSON-Schema subset command parameters are checked against."""
from __future__ import annotations

from pulse.domain.command_params import schema_errors, validate_params


def test_validate_params_covers_the_schema_subset():
    schema = {"type": "object", "properties": {
        "level": {"type": "string", "enum": ["info", "debug"]},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "flag": {"type": "boolean", "enum": [True]},
        "ids": {"type": "array", "items": {"type": "integer", "maximum": 9}},
        "nested": {"type": "object", "properties": {"n": {"type": ["integer", "null"]}}, "required": ["n"]},
    }}
    assert validate_params(schema, {"level": "info", "ratio": 0.5, "flag": True, "ids": [1, 2],
                                    "nested": {"n": None}, "extra": "allowed"}) == []
    errors = validate_params(schema, {"level": "trace", "ratio": 2, "flag": 1, "ids": [1, 10, "x"],
                                      "nested": {}})
    assert errors == ["level: must be one of 'info', 'debug'", "ratio: must be <= 1", "flag: expected boolean",
                      "ids[1]: must be <= 9", "ids[2]: expected integer", "nested.n: required"]
    assert validate_params({"type": "object"}, []) == ["params: expected object"]
    assert validate_params({}, {"anything": 1}) == []
    assert schema_errors(schema) == []
    assert schema_errors({"type": "object", "properties": {"a": {"minimum": "0"}}}) == [
        "parameters_schema.properties.a.minimum: must be a number"]
