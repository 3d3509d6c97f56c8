"""Reading a desired-state file: YAML with the line and column of every value, so each error can point at
the exact place in the file.

YAML 1.1 turns `NO`, `yes` or `off` into booleans (the "Norway problem": a country code list with `NO`
would silently become `false`); here only `true`/`false` are booleans, as in YAML 1.2. Duplicate keys are
errors instead of last-one-wins.

The work is bounded before anything is built: anchors and aliases are refused (a few hundred bytes of nested
aliases expand to gigabytes once walked, and an alias of its own ancestor never ends), and so is a text longer
than `MAX_TEXT_CHARS`, nesting deeper than `MAX_DEPTH` or more than `MAX_NODES` values. A desired state needs
none of them: it is a short list of instances, policies and assignments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]

MAX_TEXT_CHARS = 1024 * 1024  # the HTTP routes' body limit
MAX_DEPTH = 32  # the schema nests six levels
MAX_NODES = 50_000  # scalars, mappings and sequences


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class SourceDocument:
    """The parsed document, where each path (of keys and list indexes) came from, and YAML-level problems."""

    data: Any
    positions: dict[Path, Position] = field(default_factory=dict)
    key_positions: dict[Path, Position] = field(default_factory=dict)
    duplicate_keys: list[tuple[Path, Position]] = field(default_factory=list)

    def position(self, path: Path) -> Position | None:
        """The position of the value at `path`, or of its nearest enclosing value."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return None

    def key_position(self, path: Path) -> Position | None:
        return self.key_positions.get(path)


class SourceError(ValueError):
    """The text is not YAML (or not a single document); carries where the parser gave up."""

    def __init__(self, message: str, position: Position | None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


class SourceLimitExceeded(SourceError):
    """The text uses what a desired state never needs and an attacker would: aliases, huge size or depth."""


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans only."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _position(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _check_limits(text: str) -> None:
    """Walk the parser's events (no nodes are built) and refuse what `SourceLimitExceeded` describes."""
    depth = nodes = 0
    loader = _Loader(text)
    try:
        while loader.check_event():
            event = loader.get_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.AliasEvent) or (isinstance(event, yaml.NodeEvent) and event.anchor is not None):
                raise SourceLimitExceeded(
                    "anchors and aliases are not allowed in a desired state (write each value out)",
                    _mark(event.start_mark),
                )
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise SourceLimitExceeded(
                        f"the document is nested deeper than {MAX_DEPTH} levels", _mark(event.start_mark)
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            if isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent):
                nodes += 1
                if nodes > MAX_NODES:
                    raise SourceLimitExceeded(f"the document has more than {MAX_NODES} values", _mark(event.start_mark))
    finally:
        loader.dispose()


def check_data(data: Any) -> None:
    """The same depth and node limits for a document that arrived already parsed (a JSON body)."""
    nodes = 0
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise SourceLimitExceeded(f"the document has more than {MAX_NODES} values", None)
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise SourceLimitExceeded(f"the document is nested deeper than {MAX_DEPTH} levels", None)
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)


def _mark(mark: Any) -> Position | None:  # yaml.error.Mark, or the C loader's
    return Position(mark.line + 1, mark.column + 1) if mark is not None else None


def parse(text: str) -> SourceDocument:
    """Parse one YAML document; raise `SourceError` with a position when it is not valid YAML, and
    `SourceLimitExceeded` when it is too long, too deep, too large or uses anchors and aliases."""
    if len(text) > MAX_TEXT_CHARS:
        raise SourceLimitExceeded(f"the document is longer than {MAX_TEXT_CHARS} characters", None)
    try:
        _check_limits(text)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as error:  # a control character, caught before parsing starts
        raise SourceError(f"not valid YAML: {error.reason} (character #x{error.character:04x})", None) from error
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise SourceError(f"not valid YAML: {error.problem or error.context}", _mark(mark)) from error
    except yaml.YAMLError as error:
        raise SourceError(f"not valid YAML: {error}", None) from error
    document = SourceDocument(data=data)
    if node is not None:
        _walk(node, (), document)
    return document


def _walk(node: yaml.Node, path: Path, document: SourceDocument) -> None:
    document.positions[path] = _position(node)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*path, key)
            if key in seen:
                document.duplicate_keys.append((child, _position(key_node)))
                continue
            seen.add(key)
            document.key_positions[child] = _position(key_node)
            _walk(value_node, child, document)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), document)


def format_path(path: Path) -> str:
    """`recordingPolicies[0].recorders[1].pairedWith`; the empty path is the document itself."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"
