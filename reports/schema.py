"""The JSON Schema (draft 2020-12) of the decision document, and a validator for it.

The schema is derived from the dataclasses of :mod:`reports.document` by their type
hints (``str`` -> string, ``float`` -> number, ``X | None`` -> nullable, ``list[X]`` ->
array, ``dict[str, X]`` -> object, a dataclass -> a ``$defs`` entry with every field
required and no other property), plus the code lists the document defines (verdicts,
reason and risk codes, quality checks, stages...) as enums, so a document the renderer
has no wording for fails validation.

:func:`validate` checks the subset of JSON Schema this schema uses (type, enum, const,
properties, required, additionalProperties, items, anyOf, local ``$ref``) and raises a
ValueError naming the path of the first problem, e.g. ``$.decision.reasons[0].code``.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any

from . import document as d
from .i18n import QUALITY_CODES

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:loyalty-pilot:decision-document:" + d.SCHEMA_VERSION
_PRIMITIVES = {str: "string", int: "integer", float: "number", bool: "boolean"}

#: (dataclass, field) -> allowed values
ENUMS: dict[tuple[str, str], tuple[Any, ...]] = {
    ("Decision", "verdict"): d.VERDICTS,
    ("Decision", "threshold_source"): ("break_even", "min_uplift"),
    ("Decision", "rule"): ("expected_profit", "interval"),
    ("Reason", "code"): tuple(d.REASON_CODES),
    ("Risk", "code"): tuple(d.RISK_CODES),
    ("QualityCheck", "code"): QUALITY_CODES,
    ("ForestRow", "group"): ("arm", "head_to_head", "region", "segment"),
    ("SmartLetter", "letter"): tuple("SMART"),
    ("SmartLetter", "unit"): ("count", "per_100", "share", "days"),
    ("SmartCard", "verdict"): ("pass", "fail", "incomplete"),
    ("GuardrailRow", "kind"): ("absolute", "relative"),
    ("AssumptionRow", "parameter"): ("visit_uplift", "basket_uplift", "churn_reduction"),
    ("SensitivityRow", "label"): ("pilot_low", "pilot_estimate", "pilot_high", "break_even"),
    ("RolloutSummary", "stage"): ("not_frozen", "before_test", "running", "complete"),
    ("DecisionDocument", "schema_version"): (d.SCHEMA_VERSION,),
}


@functools.cache
def json_schema() -> dict[str, Any]:
    """The document's JSON Schema (a fresh copy is not made: do not mutate it)."""
    defs: dict[str, Any] = {}
    root = _dataclass(d.DecisionDocument, defs)
    return {
        "$schema": DIALECT,
        "$id": SCHEMA_ID,
        "title": "Loyalty pilot decision document",
        "$ref": root["$ref"],
        "$defs": defs,
    }


def _dataclass(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    name = cls.__name__
    if name not in defs:
        defs[name] = {}  # placeholder against recursion
        hints = typing.get_type_hints(cls)
        props = {}
        for f in dataclasses.fields(cls):
            schema = _type(hints[f.name], defs)
            allowed = ENUMS.get((name, f.name))
            if allowed is not None:
                schema = _with_enum(schema, allowed)
            props[f.name] = schema
        defs[name] = {
            "type": "object",
            "description": (cls.__doc__ or name).strip().splitlines()[0],
            "properties": props,
            "required": [f.name for f in dataclasses.fields(cls)],
            "additionalProperties": False,
        }
    return {"$ref": f"#/$defs/{name}"}


def _with_enum(schema: dict[str, Any], allowed: tuple[Any, ...]) -> dict[str, Any]:
    values = list(allowed)
    if "null" in (schema.get("type") or []):
        values.append(None)
    return {**schema, "enum": values}


def _type(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    if hint is Any or hint is object:
        return {}
    if hint is type(None):
        return {"type": "null"}
    if dataclasses.is_dataclass(hint):
        return _dataclass(hint, defs)
    if hint in _PRIMITIVES:
        return {"type": _PRIMITIVES[hint]}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_type(a, defs) for a in args]
        plain = [o.get("type") for o in options]
        if all(isinstance(t, str) and len(o) == 1 for t, o in zip(plain, options, strict=True)):
            return {"type": plain}
        return {"anyOf": options}
    if origin is list:
        return {"type": "array", "items": _type(args[0], defs) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type(args[1], defs) if args else {}}
    raise TypeError(f"no JSON Schema for the type {hint!r}")


def validate(data: Any, schema: dict[str, Any] | None = None) -> None:
    """ValueError naming the path of the first place ``data`` breaks the schema."""
    root = schema or json_schema()
    _check(data, root, root, "$")


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str) -> None:
    if "$ref" in schema:
        _check(value, _resolve(schema["$ref"], root), root, path)
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                _check(value, option, root, path)
                break
            except ValueError as exc:
                errors.append(str(exc))
        else:
            raise ValueError(min(errors, key=lambda e: -len(e.split(":")[0])))
    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, k) for k in kinds):
            raise ValueError(f"{path}: {_show(value)} is not of type {' or '.join(kinds)}")
    if "const" in schema and value != schema["const"]:
        raise ValueError(f"{path}: {_show(value)} must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise ValueError(f"{path}: {_show(value)} is not one of {schema['enum']}")
    if isinstance(value, dict):
        _check_object(value, schema, root, path)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(item, schema["items"], root, f"{path}[{i}]")


def _check_object(
    value: dict[str, Any], schema: dict[str, Any], root: dict[str, Any], path: str
) -> None:
    props = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            raise ValueError(f"{path}: the required property {name!r} is missing")
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        where = f"{path}.{key}" if str(key).isidentifier() else f"{path}[{key!r}]"
        if key in props:
            _check(item, props[key], root, where)
        elif extra is False:
            raise ValueError(f"{where}: unknown property")
        elif isinstance(extra, dict):
            _check(item, extra, root, where)


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"only local references are supported, not {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _is(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    raise ValueError(f"unknown JSON type {kind!r}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
