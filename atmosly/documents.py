"""YAML and JSON documents read strictly, for every API body and webhook payload.

- A key given twice is refused (JSON: with its field path; YAML: with path, line and column),
  never "the last one wins".
- YAML plain scalars keep their text (`PlainScalar`) until the document schema says what they
  are: a string field gets `on`, `1.10`, `010` or `2024-01-01` exactly as written, where YAML
  1.1's implicit typing would make them True, 1.1, 8 and a date. Numbers, booleans and nulls are
  read where the schema asks for them (`workflows.document.StrictSerializer`), by the YAML 1.2
  core schema's rules (`resolve_plain`) wherever no schema applies.
- Every node's line and column are kept by field path, so a validation error in a YAML body
  can say where it is (`atmosly.api_errors`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import IO, Any

import yaml
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import BaseParser

from atmosly.api_input import MAX_DEPTH, _read_body, check_shape

# The YAML 1.2 core schema (yaml.org/spec/1.2.2/#1032-tag-resolution).
NULL_WORDS = frozenset({"", "~", "null", "Null", "NULL"})
TRUE_WORDS = frozenset({"true", "True", "TRUE"})
FALSE_WORDS = frozenset({"false", "False", "FALSE"})
INT_RE = re.compile(r"^[-+]?[0-9]+$|^0o[0-7]+$|^0x[0-9a-fA-F]+$")
FLOAT_RE = re.compile(
    r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$"
)
Marks = dict[str, tuple[int, int]]


class PlainScalar(str):
    """An unquoted YAML scalar, as written; `resolve_plain` gives its YAML 1.2 core value."""

    @property
    def is_null(self) -> bool:
        return str(self) in NULL_WORDS


def resolve_plain(value: Any) -> Any:
    """A value with every PlainScalar replaced by what the YAML 1.2 core schema makes of it:
    null, true/false, an integer (decimal, 0o, 0x), a float, or the string itself."""
    if isinstance(value, dict):
        return {resolve_plain(k): resolve_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_plain(v) for v in value]
    if not isinstance(value, PlainScalar):
        return value
    text = str(value)
    if text in NULL_WORDS:
        return None
    if text in TRUE_WORDS or text in FALSE_WORDS:
        return text in TRUE_WORDS
    if INT_RE.match(text):
        return int(text, 0) if text[:2] in ("0o", "0x") else int(text)
    if FLOAT_RE.match(text):
        return float(text.replace(".inf", "inf").replace(".nan", "nan").lower())
    return text


def _where(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


class StrictLoader(yaml.SafeLoader):
    """SafeLoader whose plain scalars stay text (PlainScalar); quoted ones are str."""


def _construct_plain_or_str(loader: StrictLoader, node: yaml.ScalarNode) -> str:
    value = loader.construct_scalar(node)
    return PlainScalar(value) if node.style is None else str(value)


# No implicit resolvers at all: every plain scalar is tagged str, then kept as PlainScalar.
StrictLoader.yaml_implicit_resolvers = {}
StrictLoader.add_constructor("tag:yaml.org,2002:str", _construct_plain_or_str)


def _walk(node: yaml.Node, path: str, marks: Marks) -> None:
    """Records where each field path is written and refuses a key given twice."""
    marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Mark] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _yaml_error(path, key_node.start_mark, "a key must be a plain name")
            key = key_node.value
            child = f"{path}.{key}" if path else key
            if key in seen:
                marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                raise _yaml_error(
                    child,
                    key_node.start_mark,
                    f'"{key}" is given twice (first at {_where(seen[key])}); '
                    "remove one: a repeated key is never merged or overridden",
                )
            seen[key] = key_node.start_mark
            marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            _walk(value_node, child, marks)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, f"{path}[{index}]", marks)


def _yaml_error(path: str, mark: yaml.Mark, message: str) -> ValidationError:
    return ValidationError({path: f"{message} ({_where(mark)})"})


def load_yaml(text: str, marks: Marks | None = None) -> tuple[Any, Marks]:
    """The document and where each field path is written (line, column), both 1-based; `marks`
    is filled as it is read, so it holds the place of an error too.

    Raises ValidationError (a key given twice, with path, line and column) or ParseError (not
    YAML). Anchors and aliases are refused, as is more than one document."""
    marks = {} if marks is None else marks
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, marks
        # Aliases first: walking a chain of them would visit every expanded path.
        if "*" in text or "&" in text:
            _refuse_aliases(node)
        _walk(node, "", marks)
        return loader.construct_document(node), marks
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at {_where(mark)}" if mark else ""
        raise ParseError(f"YAML parse error{where}: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise ParseError(f"YAML parse error: {exc}") from exc
    finally:
        loader.dispose()


def _refuse_aliases(node: yaml.Node, seen: set[int] | None = None) -> None:
    """An alias makes one node appear at two paths; a workflow document never needs that, and
    a chain of them can make a small body expand without bound."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        raise ParseError(f"YAML anchors and aliases are not allowed ({_where(node.start_mark)})")
    seen.add(id(node))
    children: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    for child in children:
        _refuse_aliases(child, seen)


class _Pairs(dict):
    """A JSON object that remembers the keys it was given more than once."""

    duplicates: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> _Pairs:
    obj = _Pairs()
    obj.duplicates = []
    for key, value in pairs:
        if key in obj and key not in obj.duplicates:
            obj.duplicates.append(key)
        obj[key] = value
    return obj


def _first_duplicate(value: Any, path: str = "") -> str | None:
    if isinstance(value, _Pairs):
        if value.duplicates:
            key = value.duplicates[0]
            return f"{path}.{key}" if path else key
        for key, child in value.items():
            found = _first_duplicate(child, f"{path}.{key}" if path else key)
            if found:
                return found
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found = _first_duplicate(child, f"{path}[{index}]")
            if found:
                return found
    return None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def load_json(text: str | bytes) -> Any:
    """JSON as RFC 8259 reads it, refusing what parsers disagree on: a key given twice (with
    its field path) and NaN/Infinity. Raises ValueError (not JSON) or DuplicateKey."""
    value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    path = _first_duplicate(value)
    if path is not None:
        raise DuplicateKey(path)
    return _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class DuplicateKey(ValueError):
    def __init__(self, path: str):
        self.path = path
        key = path.rsplit(".", 1)[-1]
        super().__init__(f'"{key}" is given twice; remove one: a repeated key is never merged')


class StrictJSONParser(BaseParser):
    """JSON bodies read with `load_json`: a repeated key is a 400 naming its path, NaN and
    Infinity are refused; the body is capped per view (413) and the document's depth and size
    are bounded (`atmosly.api_input`), so no body can exhaust the parser."""

    media_type = "application/json"

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        raw = _read_body(stream, parser_context)
        try:
            data = load_json(raw)
        except DuplicateKey as exc:
            raise ValidationError({exc.path: str(exc)}) from exc
        except RecursionError as exc:
            raise ParseError(f"The document is nested more than {MAX_DEPTH} levels deep.") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
        return check_shape(data)


class YAMLParser(BaseParser):
    """`application/yaml` bodies, read with `load_yaml`; the field marks go on the request so
    that validation errors can say the line and column."""

    media_type = "application/yaml"

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            text = _read_body(stream, parser_context).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"YAML parse error: the body is not UTF-8 ({exc})") from exc
        marks: Marks = {}
        request = (parser_context or {}).get("request")
        if request is not None:
            request.yaml_marks = marks
        try:
            data, _ = load_yaml(text, marks)
        except RecursionError as exc:
            raise ParseError(f"The document is nested more than {MAX_DEPTH} levels deep.") from exc
        return check_shape(data if data is not None else {})


class TextYAMLParser(YAMLParser):
    media_type = "text/yaml"
