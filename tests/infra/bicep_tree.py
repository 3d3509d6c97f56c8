"""Reading Bicep through tree-sitter-bicep: syntax problems, declarations and literal values.

Nothing here compiles Bicep (no compiler can be installed); it reads the parse tree so the policy
tests can say what a template declares: parameters with their decorators and defaults, variables,
resources (nested ones with their full type), modules, outputs and the literal parts of values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
# The templates that carry the app settings of each compute tier (keys of the `templates` fixture).
BICEP_FUNCTION_APP = "modules/function-app.bicep"
BICEP_RECORDER = "modules/recorder.bicep"


def bicep_files() -> list[Path]:
    """Every .bicep file under infra/, sorted."""
    return sorted(INFRA.rglob("*.bicep"))


_ESCAPES = {"\\'": "'", "\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t", "\\$": "$"}


@lru_cache(maxsize=1)
def _parser() -> Parser:
    return Parser(Language(tree_sitter_bicep.language()))


@dataclass(frozen=True)
class Expr:
    """A value that is not a literal (a reference, a call, an interpolated string); keeps its text."""

    text: str


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    decorators: tuple[str, ...]
    default: Node | None
    decorator_arguments: tuple[tuple[str, Node | None], ...] = ()

    def decorator_value(self, name: str) -> object:
        """The literal first argument of a decorator (e.g. @allowed([...]) gives the list), or None."""
        for decorator, argument in self.decorator_arguments:
            if decorator == name:
                return value(argument)
        return None

    @property
    def is_secure(self) -> bool:
        return "secure" in self.decorators


@dataclass(frozen=True)
class Resource:
    symbol: str
    type: str  # full type, e.g. Microsoft.Storage/storageAccounts/blobServices
    api_version: str
    existing: bool
    body: Node  # the object literal (inside `for` and `if`)
    loop_variable: str | None
    loop_source: Node | None
    condition: Node | None = None  # the expression of `= if (...)`, None when unconditional

    def get(self, path: str) -> Node | None:
        return prop(self.body, path)


@dataclass(frozen=True)
class Module:
    symbol: str
    source: str
    body: Node


class Bicep:
    """One parsed .bicep file."""

    def __init__(self, source: bytes, path: Path | None = None) -> None:
        self.path = path
        self.source = source
        self.root = _parser().parse(source).root_node

    @classmethod
    def from_text(cls, text: str) -> Bicep:
        return cls(text.encode())

    @classmethod
    def load(cls, path: Path) -> Bicep:
        return cls(path.read_bytes(), path)

    def replaced(self, old: str, new: str) -> Bicep:
        """The same file with one piece of text replaced (it must occur): a template gone wrong."""
        source = self.source.decode()
        assert old in source, f"{old!r} is not in {self.path}"
        return Bicep(source.replace(old, new).encode(), self.path)

    # --- syntax ---------------------------------------------------------------------------

    def syntax_problems(self) -> list[str]:
        """ERROR and MISSING nodes (and known misparses), as 'line N: kind: text'."""
        problems = []
        for node in _walk(self.root):
            if node.type == "ERROR" or node.is_missing:
                kind = "missing " + node.type if node.is_missing else "error"
                text = _text(node)[:60].replace("\n", " ")
                problems.append(f"line {node.start_point[0] + 1}: {kind}: {text!r}")
            elif node.type == "parenthesized_expression" and not node.named_children:
                # Never valid Bicep: tree-sitter-bicep 1.1 misreads `f().x` as an array item inside an
                # object literal this way. Bind the value to a variable so the tree says what Bicep means.
                problems.append(f"line {node.start_point[0] + 1}: ambiguous parse: empty parentheses")
        return problems

    # --- declarations ---------------------------------------------------------------------

    def target_scope(self) -> str | None:
        for node in self.root.named_children:
            if node.type == "target_scope_assignment":
                return string_value(node.named_children[0])
        return None

    def params(self) -> dict[str, Param]:
        found = {}
        arguments = dict(_decorator_arguments(self.root))
        for node, decorators in _declarations(self.root, "parameter_declaration"):
            children = node.named_children
            name = _text(children[0])
            type_node = next((c for c in children[1:] if c.type == "type"), None)
            default = children[-1] if len(children) > 2 else None
            found[name] = Param(
                name, _text(type_node) if type_node else "", decorators, default, arguments.get(node.id, ())
            )
        return found

    def variables(self) -> dict[str, Node]:
        return {
            _text(node.named_children[0]): node.named_children[-1]
            for node, _ in _declarations(self.root, "variable_declaration")
        }

    def outputs(self) -> dict[str, Node]:
        return {
            _text(node.named_children[0]): node.named_children[-1]
            for node, _ in _declarations(self.root, "output_declaration")
        }

    def modules(self) -> list[Module]:
        found = []
        for node, _ in _declarations(self.root, "module_declaration"):
            symbol, source = node.named_children[0], node.named_children[1]
            body, _, _, _ = _unwrap_body(node.named_children[-1])
            found.append(Module(_text(symbol), string_value(source) or _text(source), body))
        return found

    def resources(self) -> list[Resource]:
        return list(_resources(self.root, parent_type=None))

    def resources_of(self, type_: str) -> list[Resource]:
        return [r for r in self.resources() if r.type.lower() == type_.lower() and not r.existing]

    def declared_symbols(self) -> set[str]:
        """Every name a value may refer to: parameters, variables, resources, modules, loop and lambda variables."""
        names = set(self.params()) | set(self.variables()) | {m.symbol for m in self.modules()}
        names |= {r.symbol for r in self.resources()}
        for node in _walk(self.root):
            if node.type in ("loop_variable", "loop_enumerator"):
                names.add(_text(node))
            elif node.type in ("for_statement", "lambda_expression"):
                names.add(_text(node.named_children[0]))
        return names

    def undefined_identifiers(self) -> list[str]:
        """Identifiers used as values that nothing in the file declares (what the compiler calls BCP057)."""
        declared = self.declared_symbols()
        problems = []
        for node in _walk(self.root):
            if node.type != "identifier" or _text(node) in declared or _is_name_position(node):
                continue
            problems.append(f"line {node.start_point[0] + 1}: {_text(node)} is not declared")
        return problems

    def calls(self, function: str) -> list[Node]:
        """Every call of a function (e.g. loadJsonContent) anywhere in the file."""
        return [node for node in _walk(self.root) if node.type == "call_expression" and _callee(node) == function]


# --- values ------------------------------------------------------------------------------------


def prop(node: Node | None, path: str) -> Node | None:
    """The value of a dotted property path in an object literal, or None."""
    for key in path.split("."):
        if node is None or node.type != "object":
            return None
        node = next((value for name, value in object_items(node) if name == key), None)
    return node


def object_items(node: Node) -> Iterator[tuple[str, Node]]:
    """(key, value) of an object literal's properties; nested resource declarations are skipped."""
    for child in node.named_children:
        if child.type != "object_property" or len(child.named_children) < 2:
            continue
        key_node, value = child.named_children[0], child.named_children[-1]
        key = string_value(key_node) if key_node.type == "string" else _text(key_node)
        if key is not None:
            yield key, value


def string_value(node: Node | None) -> str | None:
    """A string literal's value (escapes decoded); None for interpolated strings and non-strings."""
    if node is None or node.type != "string":
        return None
    parts = []
    for child in node.named_children:
        if child.type == "interpolation":
            return None
        if child.type == "escape_sequence":
            parts.append(_ESCAPES.get(_text(child), _text(child)))
        else:
            parts.append(_text(child))
    return "".join(parts)


def template_string(node: Node, placeholder: str = "{}") -> str:
    """A string's text with escapes decoded and each ${...} interpolation replaced by a placeholder."""
    assert node.type == "string", node.type
    parts = []
    for child in node.named_children:
        if child.type == "interpolation":
            parts.append(placeholder)
        elif child.type == "escape_sequence":
            parts.append(_ESCAPES.get(_text(child), _text(child)))
        else:
            parts.append(_text(child))
    return "".join(parts)


def value(node: Node | None) -> object:
    """A literal as Python data (str, int, bool, None, list, dict); anything else as Expr."""
    if node is None:
        return None
    if node.type == "string":
        literal = string_value(node)
        return literal if literal is not None else Expr(_text(node))
    if node.type == "number":
        return int(_text(node))
    if node.type == "boolean":
        return _text(node) == "true"
    if node.type == "null":
        return None
    if node.type == "array":
        return [value(child) for child in node.named_children if child.type != "comment"]
    if node.type == "object":
        return {key: value(item) for key, item in object_items(node)}
    return Expr(_text(node))


def identifiers(node: Node) -> set[str]:
    """Every identifier used inside an expression."""
    return {_text(n) for n in _walk(node) if n.type == "identifier"}


def text(node: Node) -> str:
    return _text(node)


def walk(node: Node) -> Iterator[Node]:
    return _walk(node)


# --- internals ---------------------------------------------------------------------------------


def _text(node: Node) -> str:
    return node.text.decode() if node.text is not None else ""


_DECLARATIONS = (
    "parameter_declaration",
    "variable_declaration",
    "resource_declaration",
    "module_declaration",
    "output_declaration",
    "type_declaration",
    "user_defined_function",
    "import_declaration",
)


def _is_name_position(node: Node) -> bool:
    """Whether an identifier names something (a key, a declaration, a function) instead of using a value."""
    parent = node.parent
    if parent is None:
        return True
    first = parent.named_children[0].id == node.id if parent.named_children else False
    if parent.type in _DECLARATIONS or parent.type == "object_property":
        return first  # the declared name, or an object key
    if parent.type == "call_expression":
        return first  # a function's name
    if parent.type == "resource_expression":
        return not first  # a nested resource's name after `::`
    if parent.type in ("for_statement", "lambda_expression"):
        return first  # the loop or lambda variable itself
    return parent.type in ("decorator", "type", "property_identifier")


def _callee(call: Node) -> str:
    """The called function's name: `f(...)`, `sys.f(...)` and `resource.f(...)` all give `f`."""
    head = call.named_children[0]
    if head.type == "member_expression":
        head = head.named_children[-1]
    return _text(head)


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _declarations(root: Node, kind: str) -> Iterator[tuple[Node, tuple[str, ...]]]:
    """Top-level declarations of one kind with the names of the decorators just before them."""
    pending: tuple[str, ...] = ()
    for node in root.named_children:
        if node.type == "decorators":
            pending = tuple(_decorator_name(d) for d in node.named_children if d.type == "decorator")
            continue
        if node.type == kind:
            yield node, pending
        if node.type != "comment":
            pending = ()


def _decorator_arguments(root: Node) -> Iterator[tuple[int, tuple[tuple[str, Node | None], ...]]]:
    """(declaration node id, ((decorator name, first argument), ...)) for every decorated declaration."""
    pending: tuple[tuple[str, Node | None], ...] = ()
    for node in root.named_children:
        if node.type == "decorators":
            found = []
            for decorator in (d for d in node.named_children if d.type == "decorator"):
                call = decorator.named_children[0]
                argument = None
                if call.type == "call_expression" and len(call.named_children) > 1:
                    arguments = [c for c in call.named_children[1].named_children if c.type != "comment"]
                    argument = arguments[0] if arguments else None
                found.append((_decorator_name(decorator), argument))
            pending = tuple(found)
            continue
        if node.type != "comment":
            if pending:
                yield node.id, pending
            pending = ()


def _decorator_name(decorator: Node) -> str:
    call = decorator.named_children[0]
    head = call.named_children[0] if call.type == "call_expression" else call
    return _text(head).split(".")[-1]


def _unwrap_body(node: Node) -> tuple[Node, str | None, Node | None, Node | None]:
    """The object of a resource/module body, through `if (...)` and `[for x in y: ...]`, with the loop
    variable, the loop source and the condition (the expression inside `if (...)`)."""
    loop_variable = loop_source = condition = None
    if node.type == "for_statement":
        parts = [c for c in node.named_children if c.type != "comment"]
        loop_variable, loop_source = _text(parts[0]), parts[1]
        node = parts[-1]
    if node.type == "if_statement":
        condition = node.named_children[0]
        if condition.type == "parenthesized_expression" and condition.named_children:
            condition = condition.named_children[0]
        node = node.named_children[-1]
    return node, loop_variable, loop_source, condition


def _resources(scope: Node, parent_type: str | None) -> Iterator[Resource]:
    for node in _walk_resource_declarations(scope):
        children = node.named_children
        symbol = _text(children[0])
        type_and_version = string_value(children[1]) or ""
        type_, _, api_version = type_and_version.partition("@")
        if parent_type is not None and "." not in type_.split("/", 1)[0]:
            type_ = f"{parent_type}/{type_}"  # nested: the type is relative to the parent's
        existing = any(c.type == "existing" for c in node.children)
        body, loop_variable, loop_source, condition = _unwrap_body(children[-1])
        yield Resource(symbol, type_, api_version, existing, body, loop_variable, loop_source, condition)
        yield from _resources(body, parent_type=type_)


def _walk_resource_declarations(scope: Node) -> Iterator[Node]:
    """Resource declarations directly in this scope (top level, or nested in a resource body)."""
    for child in scope.named_children:
        if child.type == "resource_declaration":
            yield child
        elif child.type == "object_property":
            yield from (c for c in child.named_children if c.type == "resource_declaration")
