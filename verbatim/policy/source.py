"""Reading a desired-state file: YAML with the line and column of every value, so each error can point at
the exact place in the file.

YAML 1.1 turns `NO`, `yes` or `off` into booleans (the "Norway problem": a country code list with `NO`
would silently become `false`); here only `true`/`false` are booleans, as in YAML 1.2. Duplicate keys are
errors instead of last-one-wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[str | int, ...]


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


def parse(text: str) -> SourceDocument:
    """Parse one YAML document; raise `SourceError` with a position when it is not valid YAML."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as error:  # a control character, caught before parsing starts
        raise SourceError(f"not valid YAML: {error.reason} (character #x{error.character:04x})", None) from error
    try:
        node = loader.get_single_node()
        if node is None:
            return SourceDocument(data=None)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        position = Position(mark.line + 1, mark.column + 1) if mark else None
        raise SourceError(f"not valid YAML: {error.problem or error.context}", position) from error
    except yaml.YAMLError as error:
        raise SourceError(f"not valid YAML: {error}", None) from error
    finally:
        loader.dispose()
    document = SourceDocument(data=data)
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
