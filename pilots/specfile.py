"""Read programme (and pilot) YAML files strictly, with every mistake at ``file:line:column``.

PyYAML on its own keeps the last of two duplicate keys, reads ``NO`` as ``False`` and
``0123`` as 83. This module reads YAML the YAML 1.2 way and stricter:

* a duplicate key in a mapping is an error naming both lines;
* only ``true`` / ``false`` are booleans; ``yes``, ``no``, ``on``, ``off``, ``y``, ``n`` stay
  text (a strict model then rejects them where a number or a mapping is expected);
* integers are plain decimals (``0``, ``12``, ``-3``); ``0123``, ``0o17``, ``0x1F``, ``0b101``
  and ``1_000`` stay text and are reported as ambiguous wherever they appear ("looks like
  an octal number; quote it"), because other YAML readers turn them into numbers;
* floats follow YAML 1.2 (``1e-3`` is a number); dates ``YYYY-MM-DD`` are dates.

:func:`load_model` validates the data with a strict pydantic model and raises one
:class:`SpecError` listing every problem at once, one per line::

    gift.yaml:7:3: earn.welcom_bonus: unknown key 'welcom_bonus' (did you mean 'welcome_bonus'?)
    gift.yaml:9:26: rewards.0.points: must be greater than 0, got 0

The first line is what the command line prints after ``Error:``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from loyalty_pilot.pilots.errors import UserError
from loyalty_pilot.simulator.programme import ID_PATTERN, Programme

__all__ = [
    "LineMap",
    "SpecError",
    "SpecIssue",
    "format_path",
    "json_schema",
    "load_model",
    "load_programme",
    "load_yaml",
    "parse_yaml",
    "programme_json_schema",
    "validate_data",
]

Path_ = tuple[Any, ...]
M = TypeVar("M", bound=BaseModel)

_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"

#: Plain scalars that other YAML readers turn into numbers: kept as text, reported.
_AMBIGUOUS = (
    (re.compile(r"^[-+]?0[0-9]+$"), "looks like an octal number"),
    (re.compile(r"^[-+]?0[oO][0-7]+$"), "looks like an octal number"),
    (re.compile(r"^[-+]?0[xX][0-9a-fA-F]+$"), "looks like a hexadecimal number"),
    (re.compile(r"^[-+]?0[bB][01]+$"), "looks like a binary number"),
    (re.compile(r"^[-+]?[0-9][0-9_]*_[0-9_]*(?:\.[0-9_]*)?$"), "uses '_' between digits"),
)
_YES_NO = {"yes", "no", "on", "off", "y", "n"}
_PATTERNS = {
    ID_PATTERN: "must be a name of letters, digits, '_', '.' or '-' (no spaces), "
    "starting with a letter or digit",
    r"^[A-Z]{3}$": "must be a three-letter upper-case currency code such as EUR",
}


class SpecIssue(NamedTuple):
    """One problem in a spec file; ``line`` and ``col`` count from 1 (None: the whole file)."""

    file: str
    line: int | None
    col: int | None
    path: Path_
    reason: str

    def format(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.col}"
        key = format_path(self.path)
        text = f"{where}: {key}: {self.reason}" if key else f"{where}: {self.reason}"
        return " ".join(text.splitlines())


class SpecError(UserError):
    """Every problem found in one spec file; the message has one problem per line."""

    def __init__(self, errors: Iterable[SpecIssue]) -> None:
        self.errors: list[SpecIssue] = list(errors)
        super().__init__("\n".join(issue.format() for issue in self.errors))


@dataclass(frozen=True)
class LineMap:
    """Where each mapping key and sequence item of a YAML file starts (1-based line, column).

    Keys are key paths such as ``('rewards', 0, 'points')``; ``()`` is the top-level node.
    ``ambiguous`` holds the plain scalars kept as text because they look like numbers
    (``0123``), with the reason.
    """

    file: str
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    ambiguous: dict[Path_, str] = field(default_factory=dict)

    def __getitem__(self, path: Path_) -> tuple[int, int]:
        return self.positions[tuple(path)]

    def __contains__(self, path: object) -> bool:
        return path in self.positions

    def locate(self, path: Path_) -> tuple[int, int]:
        """Position of the deepest node of ``path`` that exists in the file."""
        path = tuple(path)
        for end in range(len(path), -1, -1):
            if path[:end] in self.positions:
                return self.positions[path[:end]]
        return (1, 1)


def format_path(path: Path_) -> str:
    """``('rewards', 0, 'points')`` -> ``rewards.0.points``; odd keys are quoted."""
    parts = []
    for part in path:
        text = str(part)
        if not isinstance(part, int) and (not text or re.search(r"[\s.:'\"]", text)):
            text = repr(text)
        parts.append(text)
    return ".".join(parts)


# --------------------------------------------------------------------------- YAML reading


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and numbers (no octal, no sexagesimal, no ``yes``)."""

    yaml_implicit_resolvers: typing.ClassVar[dict] = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _INT_TAG, _FLOAT_TAG)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_yaml_timestamp(self, node: ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a valid date ({exc})", node.start_mark
            ) from None


_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    _INT_TAG, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|(?:0|[1-9][0-9]*)(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


_SKIP = object()  # a key that is not a scalar (already reported)


def _pos(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _describe_node(node: Node) -> str:
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, ScalarNode):
        return "an empty value" if node.tag.endswith(":null") else f"the value {node.value!r}"
    return "a mapping"


class _Walker:
    """Records key positions, duplicate keys and ambiguous scalars of a composed document."""

    def __init__(self, loader: _Loader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.positions: dict[Path_, tuple[int, int]] = {}
        self.ambiguous: dict[Path_, str] = {}
        self.issues: list[SpecIssue] = []
        self._seen: set[int] = set()

    def walk(self, node: Node, path: Path_) -> None:
        if id(node) in self._seen:  # an alias: already walked where its anchor is
            return
        self._seen.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self._key(key_node, path)
                if key is _SKIP:
                    continue
                line, col = _pos(key_node)
                if key in first:
                    self.issues.append(
                        SpecIssue(
                            self.file,
                            line,
                            col,
                            (*path, key),
                            f"duplicate key {key!r} (first on line {first[key]}); keep only one",
                        )
                    )
                    continue
                first[key] = line
                self.positions[(*path, key)] = (line, col)
                self.walk(value_node, (*path, key))
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                self.positions[(*path, index)] = _pos(item)
                self.walk(item, (*path, index))
        elif node.tag == _STR_TAG and node.style is None:
            for pattern, what in _AMBIGUOUS:
                if pattern.match(node.value):
                    self.ambiguous[path] = _ambiguous_reason(node.value, what)
                    break

    def _key(self, key_node: Node, path: Path_) -> Any:
        if isinstance(key_node, ScalarNode):
            return self.loader.construct_object(key_node, deep=True)
        line, col = _pos(key_node)
        self.issues.append(
            SpecIssue(
                self.file,
                line,
                col,
                path,
                f"a key must be a plain name, not {_describe_node(key_node)}",
            )
        )
        return _SKIP


def _ambiguous_reason(text: str, what: str) -> str:
    if "'_'" in what:
        return f"{text} {what}; write {text.replace('_', '')} (or quote it if it is text)"
    if "octal" in what and text.lstrip("+-")[1:].isdigit():
        return (
            f"{text} {what}; quote it ('{text}') if it is a name or a code, "
            f"or drop the leading zero if it is a number"
        )
    return f"{text} {what}; quote it ('{text}') if it is text, or write the number in decimal"


def _syntax_issue(file: str, exc: yaml.YAMLError) -> SpecIssue:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    context_mark = getattr(exc, "context_mark", None)
    syntax = not isinstance(exc, yaml.constructor.ConstructorError)
    reason = f"YAML syntax error: {problem}" if syntax else str(problem)
    if context and context.startswith("while scanning for the next token"):
        context = None
    if "'\\t'" in problem:
        reason += " (a tab: indent with spaces, never tabs)"
    if context and context_mark is not None and context_mark is not mark:
        reason += f" ({context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
    elif context:
        reason += f" ({context})"
    if mark is None:
        return SpecIssue(file, None, None, (), reason)
    return SpecIssue(file, mark.line + 1, mark.column + 1, (), reason)


def parse_yaml(text: str, file: str = "<string>") -> tuple[Any, LineMap]:
    """Parse YAML text strictly (see the module doc); the top level must be a mapping.

    Returns the data and its :class:`LineMap`. Raises :class:`SpecError` for an empty file,
    a syntax error, duplicate keys or a top level that is not a mapping.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            only_comments = any(line.strip() for line in text.splitlines())
            reason = "the file is empty" + (" (it has only comments)" if only_comments else "")
            raise SpecError([SpecIssue(file, 1, 1, (), reason)])
        if not isinstance(node, MappingNode):
            line, col = _pos(node)
            got = _describe_node(node)
            reason = f"the top level must be a mapping of 'key: value' lines, not {got}"
            raise SpecError([SpecIssue(file, line, col, (), reason)])
        walker = _Walker(loader, file)
        walker.walk(node, ())
        if walker.issues:
            raise SpecError(walker.issues)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise SpecError([_syntax_issue(file, exc)]) from None
    finally:
        loader.dispose()
    positions = {(): _pos(node), **walker.positions}
    return data, LineMap(file, positions, walker.ambiguous)


def _read_text(path: Path) -> str:
    file = str(path)
    if not path.exists():
        raise SpecError([SpecIssue(file, None, None, (), "no such file")])
    if path.is_dir():
        raise SpecError([SpecIssue(file, None, None, (), "is a folder, not a file")])
    try:
        raw = path.read_bytes()
    except OSError as exc:
        reason = f"cannot be read: {exc.strerror or exc}"
        raise SpecError([SpecIssue(file, None, None, (), reason)]) from None
    try:
        return raw.decode("utf-8")  # PyYAML drops a byte-order mark
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        byte = raw[exc.start]
        reason = f"not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8"
        raise SpecError([SpecIssue(file, line, col, (), reason)]) from None


def load_yaml(path: str | Path) -> tuple[Any, LineMap]:
    """Read a YAML file strictly: ``(data, line map)``; see :func:`parse_yaml`."""
    path = Path(path)
    return parse_yaml(_read_text(path), str(path))


# --------------------------------------------------------------------------- validation


def load_model(path: str | Path, model_cls: type[M]) -> M:
    """Read ``path`` and validate it with the strict pydantic model ``model_cls``.

    Raises :class:`SpecError` with every problem of the file (one per line, in file order).
    """
    data, lines = load_yaml(path)
    return validate_data(data, lines, model_cls)


def validate_data(data: Any, lines: LineMap, model_cls: type[M]) -> M:
    """Validate parsed data (from :func:`parse_yaml`) with ``model_cls``; see :func:`load_model`."""
    issues = [
        SpecIssue(lines.file, *lines.locate(path), path, reason)
        for path, reason in lines.ambiguous.items()
    ]
    try:
        model = model_cls.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            issue = _issue(error, data, lines, model_cls)
            shadowed = issue.path in lines.ambiguous and error["type"] != "extra_forbidden"
            if not shadowed and issue not in issues:
                issues.append(issue)
    else:
        if not issues:
            return model
    issues.sort(key=lambda issue: (issue.line or 0, issue.col or 0))
    raise SpecError(issues)


def load_programme(path: str | Path) -> Programme:
    """Read and validate one programme variant file."""
    return load_model(path, Programme)


def programme_json_schema() -> dict[str, Any]:
    """JSON schema of the programme YAML, for editor completion and checks."""
    return json_schema(Programme, "loyalty-pilot programme variant")


def json_schema(model_cls: type[BaseModel], title: str) -> dict[str, Any]:
    """``model_cls``'s JSON schema with ``$schema`` and ``title`` set."""
    schema = model_cls.model_json_schema()
    schema.pop("title", None)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, **schema}


def _data_path(data: Any, loc: tuple, missing: bool) -> tuple[Path_, bool]:
    """Turn a pydantic ``loc`` into a path in the data, dropping union tags.

    Returns the path and whether its last element is a key missing from the data.
    """
    path: list[Any] = []
    node = data
    for index, part in enumerate(loc):
        in_dict = isinstance(node, dict) and part in node
        if in_dict or (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            path.append(part)
            node = node[part]
        elif missing and index == len(loc) - 1 and isinstance(node, dict):
            path.append(part)
            return tuple(path), True
        # anything else is a union tag ('cash_voucher', '[key]', 'function-after[...]')
    return tuple(path), False


def _get(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


def _unwrap(annotation: Any, value: Any) -> Iterator[Any]:
    """The types ``annotation`` may validate ``value`` as, outermost first."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _unwrap(typing.get_args(annotation)[0], value)
    elif origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        kind = value.get("kind") if isinstance(value, dict) else None
        chosen = [m for m in members if kind is not None and kind in _kinds(m)]
        for member in chosen or members:
            yield from _unwrap(member, value)
    else:
        yield annotation


def _kinds(cls: Any) -> tuple[Any, ...]:
    if isinstance(cls, type) and issubclass(cls, BaseModel) and "kind" in cls.model_fields:
        annotation = cls.model_fields["kind"].annotation
        if typing.get_origin(annotation) is typing.Literal:
            return typing.get_args(annotation)
    return ()


def _model_at(model_cls: type[BaseModel], data: Any, path: Path_) -> Any:
    """The type expected at ``path`` in ``data`` (a model class, a list type ...), or None."""
    current: Any = model_cls
    node = data
    for part in path:
        target = None
        for candidate in _unwrap(current, node):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                fields = candidate.model_fields
                if isinstance(part, str) and part in fields:
                    target = fields[part].annotation
            elif typing.get_origin(candidate) is list and isinstance(part, int):
                target = typing.get_args(candidate)[0]
            elif typing.get_origin(candidate) is dict:
                target = typing.get_args(candidate)[1]
            if target is not None:
                break
        if target is None:
            return None
        current = target
        node = node[part] if isinstance(node, dict | list) else None
    return current


def _model_class(expected: Any, value: Any) -> type[BaseModel] | None:
    for candidate in _unwrap(expected, value):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _allowed_kinds(expected: Any) -> list[str]:
    kinds: list[str] = []
    for candidate in _unwrap(expected, None):
        kinds += [str(k) for k in _kinds(candidate)]
    return kinds


def _describe(value: Any) -> str:
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the text {shown!r}"
    if isinstance(value, dt.datetime):
        return f"the date and time {value.isoformat(sep=' ')}"
    if isinstance(value, dt.date):
        return f"the date {value.isoformat()}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _number(value: Any) -> str:
    """A bound as the user would write it: ``0`` rather than ``0.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _type_hint(value: Any, wanted: str) -> str:
    """Extra advice for a value of the wrong type."""
    if isinstance(value, str) and value.strip().lower() in _YES_NO:
        if wanted == "bool":
            return "; yes/no/on/off are text in these files: write true or false"
        return "; yes/no/on/off are text in these files, not true/false"
    if wanted == "number" and isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return "; remove the quotes"
    if wanted == "text" and not isinstance(value, str | list | dict) and value is not None:
        return "; quote it if it is meant as text"
    return ""


def _suggest(word: Any, allowed: list[str]) -> str:
    text = str(word)
    lowered = {a.lower(): a for a in allowed}
    if text.lower() in lowered:
        return lowered[text.lower()]
    close = difflib.get_close_matches(text, allowed, n=1, cutoff=0.6)
    return close[0] if close else ""


def _field_names(cls: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in cls.model_fields.items()]


_TYPE_WORDS = {
    "int_type": ("expected a whole number", "number"),
    "int_parsing": ("expected a whole number", "number"),
    "int_from_float": ("expected a whole number", "number"),
    "float_type": ("expected a number", "number"),
    "float_parsing": ("expected a number", "number"),
    "string_type": ("expected text", "text"),
    "bool_type": ("expected true or false", "bool"),
    "bool_parsing": ("expected true or false", "bool"),
    "list_type": ("expected a list", "list"),
    "date_type": ("expected a date (YYYY-MM-DD)", "date"),
    "date_from_datetime_inexact": ("expected a date (YYYY-MM-DD) without a time", "date"),
    "date_parsing": ("expected a date (YYYY-MM-DD)", "date"),
    "datetime_type": ("expected a date and time", "date"),
}
_BOUNDS = {
    "greater_than": ("gt", "must be greater than"),
    "greater_than_equal": ("ge", "must be at least"),
    "less_than": ("lt", "must be less than"),
    "less_than_equal": ("le", "must be at most"),
}


def _reason(error: dict, expected: Any, path: Path_, missing: bool) -> str:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    got = _describe(value)
    if kind == "missing":
        return f"missing key {path[-1]!r}" if missing else "a required value is missing"
    if kind == "extra_forbidden":
        return f"unknown key {path[-1]!r}"  # completed by the caller
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        kinds = _allowed_kinds(expected)
        allowed = ", ".join(kinds) or str(ctx.get("expected_tags", ""))
        if kind == "union_tag_not_found":
            return f"missing key 'kind' (one of: {allowed})"
        tag = ctx.get("tag", value)
        hint = _suggest(tag, kinds)
        did = f" (did you mean {hint!r}?)" if hint else ""
        return f"unknown kind {tag!r}{did}; allowed kinds: {allowed}"
    if kind == "invalid_key":
        return f"a key must be text, got {got}; quote it"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        kinds = _allowed_kinds(expected)
        if kinds:
            return f"expected a mapping with a key 'kind' (one of: {', '.join(kinds)}), got {got}"
        cls = _model_class(expected, value)
        keys = f" with keys such as {', '.join(_field_names(cls)[:4])}" if cls else ""
        return f"expected a mapping{keys}, got {got}" + _type_hint(value, "mapping")
    if kind in _TYPE_WORDS:
        words, wanted = _TYPE_WORDS[kind]
        return f"{words}, got {got}" + _type_hint(value, wanted)
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"{words} {_number(ctx.get(key))}, got {value!r}"
    if kind == "finite_number":
        return f"must be a finite number, got {value!r}"
    if kind == "too_short":
        n = ctx.get("min_length")
        what = "an empty list" if value == [] else f"{ctx.get('actual_length')}"
        return f"must have at least {n} item{'s' if n != 1 else ''}, got {what}"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} items, got {ctx.get('actual_length')}"
    if kind == "string_pattern_mismatch":
        words = _PATTERNS.get(ctx.get("pattern"), f"must match the pattern {ctx.get('pattern')}")
        return f"{words}, got {value!r}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}, got {got}"
    if kind in ("value_error", "assertion_error"):
        error_obj = ctx.get("error")
        return str(error_obj) if error_obj is not None else error["msg"]
    message = str(error["msg"]).replace("Input should be", "must be")
    return f"{message}, got {got}"


def _refine(path: Path_, data: Any, reason: str) -> Path_:
    """Point a validator's message at the key or item it quotes, when it quotes one."""
    node = _get(data, path)
    for quoted in re.findall(r"'([^']*)'", reason):
        if isinstance(node, dict) and quoted in node:
            return (*path, quoted)
        if isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, dict) and item.get("name") == quoted:
                    return (*path, index)
    return path


def _anchor(data: Any, reason: str) -> Path_:
    """The top-level key a whole-model message is about ("expiry applies ..." -> expiry)."""
    if not isinstance(data, dict):
        return ()
    keys = {k for k in data if isinstance(k, str)}
    for word in re.findall(r"[A-Za-z_]+", reason):
        for key in (word, word + "s"):
            if key in keys:
                return (key,)
    return ()


def _issue(error: dict, data: Any, lines: LineMap, model_cls: type[BaseModel]) -> SpecIssue:
    kind = error["type"]
    path, missing = _data_path(data, tuple(error["loc"]), missing=kind == "missing")
    expected = _model_at(model_cls, data, path[:-1] if missing else path)
    reason = _reason(error, expected, path, missing)
    if kind == "extra_forbidden":
        parent = _model_class(_model_at(model_cls, data, path[:-1]), _get(data, path[:-1]))
        allowed = _field_names(parent) if parent else []
        hint = _suggest(path[-1], allowed)
        if hint:
            reason += f" (did you mean {hint!r}?)"
        elif allowed:
            reason += f"; allowed keys: {', '.join(allowed)}"
    elif kind in ("value_error", "assertion_error"):
        if not path:
            path = _anchor(data, reason)
        path = _refine(path, data, reason)
    elif kind == "invalid_key":
        node = _get(data, path)
        if (
            isinstance(node, dict)
            and path[-1:] != (error.get("input"),)
            and error.get("input") in node
        ):
            path = (*path, error["input"])
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        node = _get(data, path)
        if isinstance(node, dict) and "kind" in node:
            path = (*path, "kind")
    line, col = lines.locate(path)  # a missing key: its parent
    return SpecIssue(lines.file, line, col, path, reason)
