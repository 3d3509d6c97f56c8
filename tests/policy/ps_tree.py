"""Reading generated PowerShell through tree-sitter-powershell: syntax errors and the commands a script runs.

PowerShell itself cannot be installed here, so the generated scripts are checked by parsing: no ERROR or
missing nodes, and every command that changes the tenant sits inside an `if ($PSCmdlet.ShouldProcess(...))`.
"""

from __future__ import annotations

import re
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
class Argument:
    """A value written after a parameter (or alone, positionally), classified as far as the text tells."""

    kind: str  # bool, null, int, string, array, bareword, variable or expression
    text: str
    value: str | int | bool | None = None  # for bool, int and verbatim strings
    colon: bool = False  # bound as -Name:value


@dataclass(frozen=True)
class ParameterName:
    name: str  # without the hyphen
    colon: bool  # written -Name:value


@dataclass(frozen=True)
class Command:
    name: str
    parameters: tuple[str, ...]
    guarded: bool  # inside an `if` whose condition calls $PSCmdlet.ShouldProcess
    line: int
    elements: tuple[ParameterName | Argument, ...] = ()


def _argument(node: Node, colon: bool) -> Argument:
    text = (node.text or b"").decode()
    if node.type == "generic_token":
        return Argument("bareword", text, text, colon)
    if node.type == "array_literal_expression" and sum(c.type == "unary_expression" for c in node.children) > 1:
        return Argument("array", text, None, colon)
    inner = node
    while inner.type in ("array_literal_expression", "unary_expression") and inner.named_child_count == 1:
        inner = inner.named_children[0]
    if inner.type == "variable":
        lowered = text.casefold()
        if lowered in ("$true", "$false"):
            return Argument("bool", text, lowered == "$true", colon)
        return Argument("null" if lowered == "$null" else "variable", text, None, colon)
    if inner.type == "integer_literal" or re.fullmatch(r"-?[0-9]+", text):
        return Argument("int", text, int(text), colon)
    if inner.type == "string_literal":
        if inner.named_children and inner.named_children[0].type == "verbatim_string_characters":
            return Argument("string", text, text[1:-1].replace("''", "'"), colon)
        return Argument("string", text, None, colon)  # expandable: its value is known only when it runs
    if inner.type == "array_expression":
        return Argument("array", text, None, colon)
    return Argument("expression", text, None, colon)


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
                elements_node = next((c for c in node.children if c.type == "command_elements"), None)
                children = elements_node.children if elements_node else []
                elements: list[ParameterName | Argument] = []
                for index, child in enumerate(children):
                    if child.type == "command_argument_sep":
                        continue
                    colon = index > 0 and (children[index - 1].text or b"").strip() == b":"
                    if child.type == "command_parameter":
                        following = children[index + 1] if index + 1 < len(children) else None
                        bound = following is not None and (following.text or b"").strip() == b":"
                        elements.append(ParameterName((child.text or b"").decode().lstrip("-").rstrip(":"), bound))
                    else:
                        elements.append(_argument(child, colon))
                parameters = tuple("-" + e.name for e in elements if isinstance(e, ParameterName))
                found.append(
                    Command(
                        (name_node.text or b"").decode(),
                        parameters,
                        guarded(node),
                        node.start_point[0] + 1,
                        tuple(elements),
                    )
                )
        for child in node.children:
            walk(child)

    walk(parse(text))
    return found


def functions(text: str) -> set[str]:
    """The names of the functions a script defines."""
    found: set[str] = set()

    def walk(node: Node) -> None:
        if node.type == "function_statement":
            name = next((c for c in node.children if c.type == "function_name"), None)
            if name is not None:
                found.add((name.text or b"").decode())
        for child in node.children:
            walk(child)

    walk(parse(text))
    return found


def member_reads(text: str) -> list[tuple[int, str]]:
    """Every property read as `$object.Name` (line, Name); method calls are not reads."""
    found: list[tuple[int, str]] = []

    def walk(node: Node) -> None:
        if node.type == "member_access":
            name = next((c for c in node.children if c.type == "member_name"), None)
            if name is not None:
                found.append((node.start_point[0] + 1, (name.text or b"").decode()))
        for child in node.children:
            walk(child)

    walk(parse(text))
    return found


def mutating(text: str) -> list[Command]:
    """Commands that change the tenant: Teams cmdlets (`*-Cs*`) with a changing verb."""
    return [c for c in commands(text) if c.name.startswith(MUTATING_VERBS) and "-Cs" in c.name]
