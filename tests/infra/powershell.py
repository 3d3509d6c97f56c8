"""Reading PowerShell through tree-sitter-powershell: what a script expects to find and run.

No PowerShell can be installed here, so the installer's expectations are read from its parse tree: the
files it joins onto `$PackageRoot` (or `$PSScriptRoot`), the Python modules it runs with `-m`, and the
string values of its assignments (`$Name = '...'`, hashtables `@{ Key = '...' }`, `'{0}' -f $Var`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser


@lru_cache(maxsize=1)
def _parser() -> Parser:
    return Parser(Language(tree_sitter_powershell.language()))


def _text(node: Node) -> str:
    return (node.text or b"").decode()


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _string(node: Node) -> str | None:
    """A string literal's value: single-quoted ('' is a quote), or double-quoted without `$`/backtick."""
    if node.type != "string_literal":
        return None
    raw = _text(node)
    if raw.startswith("'") and raw.endswith("'"):
        return raw[1:-1].replace("''", "'")
    if raw.startswith('"') and raw.endswith('"') and "$" not in raw and "`" not in raw:
        return raw[1:-1]
    return None


def _unwrap(node: Node) -> Node:
    """Through the single-child wrapper nodes the grammar nests expressions in."""
    while len(node.named_children) == 1 and node.type not in ("string_literal", "variable", "hash_literal_expression"):
        node = node.named_children[0]
    return node


@dataclass
class Script:
    source: str

    def __post_init__(self) -> None:
        self.root = _parser().parse(self.source.encode()).root_node

    def problems(self) -> list[str]:
        return [
            f"line {n.start_point[0] + 1}: {_text(n)[:60]!r}"
            for n in _walk(self.root)
            if n.type == "ERROR" or n.is_missing
        ]

    # --- values ----------------------------------------------------------------------------

    def assignments(self) -> dict[str, Node]:
        """`$name = <value>` at any depth (the last one wins), by variable name without `$`."""
        found: dict[str, Node] = {}
        for node in _walk(self.root):
            if node.type != "assignment_expression":
                continue
            variables = [n for n in _walk(node.named_children[0]) if n.type == "variable"]
            if variables and len(node.named_children) >= 3:
                found[_text(variables[0]).lstrip("$")] = node.named_children[-1]
        return found

    def string_values(self) -> dict[str, str]:
        """Variables assigned a plain string literal."""
        found = {}
        for name, value in self.assignments().items():
            literal = _string(_unwrap(value))
            if literal is not None:
                found[name] = literal
        return found

    def hashtable(self, name: str) -> dict[str, str]:
        """The string entries of `$name = @{ Key = '...' }`."""
        value = self.assignments().get(name)
        table = next((n for n in _walk(value) if n.type == "hash_literal_expression"), None) if value else None
        if table is None:
            return {}
        found = {}
        for entry in (n for n in _walk(table) if n.type == "hash_entry"):
            key = next(n for n in entry.named_children if n.type == "key_expression")
            literal = next((_string(n) for n in _walk(entry) if n.type == "string_literal"), None)
            if literal is not None:
                found[_text(key)] = literal
        return found

    def evaluate(self, node: Node) -> str | None:
        """A string literal, a variable holding one, or `'<format>' -f $a, $b` over such variables."""
        node = _unwrap(node)
        literal = _string(node)
        if literal is not None:
            return literal
        if node.type == "variable":
            return self.string_values().get(_text(node).lstrip("$"))
        if node.type == "format_expression" or "-f" in _text(node):
            parts = [n for n in _walk(node) if n.type in ("string_literal", "variable")]
            if parts and _string(parts[0]) is not None:
                arguments = [self.evaluate(p) for p in parts[1:]]
                if all(a is not None for a in arguments):
                    return _string(parts[0]).format(*arguments)  # type: ignore[union-attr]
        return None

    # --- what the script expects -----------------------------------------------------------

    def joined_paths(self, base: str = "$PackageRoot") -> list[str]:
        """Every `Join-Path <base> <child>` whose child evaluates to a string, as written (backslashes)."""
        found = []
        for command in (n for n in _walk(self.root) if n.type == "command"):
            name = next((c for c in command.named_children if c.type == "command_name"), None)
            if name is None or _text(name) != "Join-Path":
                continue
            elements = next((c for c in command.named_children if c.type == "command_elements"), None)
            children = elements.named_children if elements else []
            arguments = [c for c in children if c.type not in ("command_argument_sep", "command_parameter")]
            if len(arguments) >= 2 and _text(_unwrap(arguments[0])) == base:
                child = self.evaluate(arguments[1])
                if child is not None:
                    found.append(child)
        return found

    def python_modules(self) -> list[str]:
        """Modules run with `-m <module>`, as a command parameter (`& $py -m x`) or in an argument array."""
        found = []
        tokens = [n for n in _walk(self.root) if n.type in ("string_literal", "command_parameter", "generic_token")]
        for token, following in itertools.pairwise(tokens):
            is_m = _string(token) == "-m" or (token.type == "command_parameter" and _text(token) == "-m")
            if is_m:
                module = _string(following) if following.type == "string_literal" else _text(following)
                if module:
                    found.append(module)
        return found
