"""Reading generated PowerShell through tree-sitter-powershell: syntax errors and the commands a script runs.

PowerShell itself cannot be installed here, so the generated scripts are checked by parsing: no ERROR or
missing nodes, and every command that changes the tenant sits inside an `if ($PSCmdlet.ShouldProcess(...))`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

MUTATING_VERBS = ("New-", "Set-", "Remove-", "Grant-", "Sync-")


@lru_cache(maxsize=1)
def _parser() -> Parser:
    return Parser(Language(tree_sitter_powershell.language()))


def parse(text: str) -> Node:
    return _parser().parse(text.encode("utf-8")).root_node


def syntax_errors(text: str) -> list[str]:
    """Each ERROR or missing node as 'line:column: text'."""
    found: list[str] = []

    def walk(node: Node) -> None:
        if node.type == "ERROR" or node.is_missing:
            row, column = node.start_point
            snippet = (node.text or b"").decode("utf-8", "replace")[:60]
            found.append(f"{row + 1}:{column + 1}: {node.type} {snippet!r}")
        for child in node.children:
            walk(child)

    walk(parse(text))
    return found


@dataclass(frozen=True)
class Command:
    name: str
    parameters: tuple[str, ...]
    guarded: bool  # inside an `if` whose condition calls $PSCmdlet.ShouldProcess
    line: int


def commands(text: str) -> list[Command]:
    found: list[Command] = []

    def guarded(node: Node) -> bool:
        parent = node.parent
        while parent is not None:
            if parent.type == "if_statement":
                condition = next((c for c in parent.children if c.type == "pipeline"), None)
                if condition is not None and b"$PSCmdlet.ShouldProcess(" in (condition.text or b""):
                    return True
            parent = parent.parent
        return False

    def walk(node: Node) -> None:
        if node.type == "command":
            name_node = next((c for c in node.children if c.type == "command_name"), None)
            if name_node is not None:
                elements = next((c for c in node.children if c.type == "command_elements"), None)
                parameters = tuple(
                    (c.text or b"").decode()
                    for c in (elements.children if elements else [])
                    if c.type == "command_parameter"
                )
                found.append(
                    Command((name_node.text or b"").decode(), parameters, guarded(node), node.start_point[0] + 1)
                )
        for child in node.children:
            walk(child)

    walk(parse(text))
    return found


def mutating(text: str) -> list[Command]:
    """Commands that change the tenant: Teams cmdlets (`*-Cs*`) with a changing verb."""
    return [c for c in commands(text) if c.name.startswith(MUTATING_VERBS) and "-Cs" in c.name]
