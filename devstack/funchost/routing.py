"""HTTP trigger route templates (ASP.NET Core syntax) and the router that picks a function for a request.

Supported: literal segments (case-insensitive), `{id}`, optional `{id?}`, defaults `{id=5}`, constraints
`{id:int}` (int, long, bool, guid, datetime, decimal, double, float, alpha, min, max, range, length,
minlength, maxlength, regex, required, chained with `:`), catch-all `{*rest}` / `{**rest}`, and several
parameters in one segment (`{name}.{ext}`). Templates compile once, at indexing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar
from urllib.parse import unquote

T = TypeVar("T")
Constraint = Callable[[str], bool]

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_INTEGER = re.compile(r"^[+-]?\d+$")


class RouteTemplateError(ValueError):
    """A route template this host cannot read; the message names the template."""


def _integer_in(bounds: tuple[int, int]) -> Constraint:
    return lambda value: bool(_INTEGER.match(value)) and bounds[0] <= int(value) <= bounds[1]


def _parses(parse: Callable[[str], object]) -> Constraint:
    def check(value: str) -> bool:
        try:
            parse(value)
        except (ValueError, OverflowError):
            return False
        return True

    return check


def _numbers(args: str, count: int, name: str) -> list[int]:
    parts = [part.strip() for part in args.split(",")] if args else []
    if len(parts) != count or not all(_INTEGER.match(part) for part in parts):
        raise RouteTemplateError(f"constraint {name} needs {count} integer argument(s), got ({args})")
    return [int(part) for part in parts]


def _constraint(spec: str) -> Constraint:
    name, _, rest = spec.partition("(")
    name = name.strip().lower()
    args = rest[:-1] if rest.endswith(")") else rest
    simple: dict[str, Constraint] = {
        "int": _integer_in(_INT32),
        "long": _integer_in(_INT64),
        "bool": lambda value: value.lower() in ("true", "false"),
        "guid": _parses(uuid.UUID),
        "datetime": _parses(datetime.fromisoformat),
        "decimal": _parses(float),
        "double": _parses(float),
        "float": _parses(float),
        "alpha": lambda value: value.isascii() and value.isalpha(),
        "required": lambda value: value != "",
    }
    if name in simple:
        return simple[name]
    if name == "regex":
        pattern = re.compile(args, re.IGNORECASE)
        return lambda value: pattern.search(value) is not None
    if name in ("min", "max"):
        (bound,) = _numbers(args, 1, name)
        if name == "min":
            return lambda value: bool(_INTEGER.match(value)) and int(value) >= bound
        return lambda value: bool(_INTEGER.match(value)) and int(value) <= bound
    if name == "range":
        low, high = _numbers(args, 2, name)
        return lambda value: bool(_INTEGER.match(value)) and low <= int(value) <= high
    if name in ("minlength", "maxlength"):
        (size,) = _numbers(args, 1, name)
        return (lambda value: len(value) >= size) if name == "minlength" else (lambda value: len(value) <= size)
    if name == "length":
        sizes = _numbers(args, args.count(",") + 1, name)
        if len(sizes) == 1:
            return lambda value: len(value) == sizes[0]
        if len(sizes) == 2:
            return lambda value: sizes[0] <= len(value) <= sizes[1]
    raise RouteTemplateError(f"unknown route constraint {spec!r}")


@dataclass(frozen=True)
class Parameter:
    name: str
    constraints: tuple[Constraint, ...] = ()
    optional: bool = False
    default: str | None = None
    catch_all: bool = False


def _split_outside_parentheses(text: str, separator: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == separator and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _parse_parameter(body: str, template: str) -> Parameter:
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    default: str | None = None
    optional = False
    pieces = _split_outside_parentheses(body, "=")
    if len(pieces) > 1:
        body, default = pieces[0], "=".join(pieces[1:])
    name, *constraint_specs = _split_outside_parentheses(body, ":")
    # Braces inside a parameter (e.g. a regex quantifier) are written doubled in the template.
    constraint_specs = [spec.replace("{{", "{").replace("}}", "}") for spec in constraint_specs]
    if default is None and constraint_specs and constraint_specs[-1].endswith("?"):
        constraint_specs[-1] = constraint_specs[-1][:-1]
        optional = True
    elif default is None and name.endswith("?"):
        name, optional = name[:-1], True
    if not name or not re.fullmatch(r"\w+", name):
        raise RouteTemplateError(f"bad parameter name {name!r} in route {template!r}")
    return Parameter(
        name=name,
        constraints=tuple(_constraint(spec) for spec in constraint_specs),
        optional=optional or default is not None,
        default=default,
        catch_all=catch_all,
    )


def _parse_segment(segment: str, template: str) -> list[str | Parameter]:
    """A segment as literal strings and parameters; `{{` and `}}` are literal braces."""
    parts: list[str | Parameter] = []
    literal, index = "", 0
    while index < len(segment):
        char = segment[index]
        if segment.startswith("{{", index) or segment.startswith("}}", index):
            literal += char
            index += 2
        elif char == "{":
            depth, end = 0, index + 1
            while end < len(segment) and not (segment[end] == "}" and depth == 0):
                depth += {"(": 1, ")": -1}.get(segment[end], 0)
                end += 1
            if end == len(segment):
                raise RouteTemplateError(f"unclosed '{{' in route {template!r}")
            if literal:
                parts.append(literal)
                literal = ""
            parts.append(_parse_parameter(segment[index + 1 : end], template))
            index = end + 1
        elif char == "}":
            raise RouteTemplateError(f"unmatched '}}' in route {template!r}")
        else:
            literal += char
            index += 1
    if literal:
        parts.append(literal)
    return parts


@dataclass(frozen=True)
class RouteTemplate:
    """One compiled template: its regex (prefix included), parameters and precedence."""

    template: str
    pattern: re.Pattern[str]
    parameters: tuple[Parameter, ...]
    precedence: tuple[int, ...]

    @classmethod
    def compile(cls, template: str, prefix: str = "") -> RouteTemplate:
        segments = [segment for segment in f"{prefix.strip('/')}/{template.strip('/')}".split("/") if segment]
        regex = ""
        parameters: list[Parameter] = []
        precedence: list[int] = []
        for position, segment in enumerate(segments):
            parts = _parse_segment(segment, template)
            if len(parts) == 1 and isinstance(parts[0], Parameter):
                parameter = parts[0]
                group = f"p{len(parameters)}"
                parameters.append(parameter)
                if parameter.catch_all:
                    if position != len(segments) - 1:
                        raise RouteTemplateError(f"a catch-all must be the last segment of route {template!r}")
                    regex += f"(?:/(?P<{group}>.*))?"
                    precedence.append(5)
                elif parameter.optional:
                    regex += f"(?:/(?P<{group}>[^/]+))?"
                    precedence.append(4)
                else:
                    regex += f"/(?P<{group}>[^/]+)"
                    precedence.append(3 if parameter.constraints else 4)
                continue
            regex += "/"
            for part in parts:
                if isinstance(part, str):
                    regex += re.escape(part)
                else:
                    if part.catch_all or part.optional:
                        raise RouteTemplateError(f"segment {segment!r} of route {template!r} mixes text and an "
                                                 "optional or catch-all parameter")  # fmt: skip
                    regex += f"(?P<p{len(parameters)}>[^/]+?)"
                    parameters.append(part)
            precedence.append(1 if all(isinstance(part, str) for part in parts) else 2)
        return cls(
            template=template,
            pattern=re.compile(f"^{regex}/?$", re.IGNORECASE),
            parameters=tuple(parameters),
            precedence=tuple(precedence),
        )

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for a raw (percent-encoded) path, or None when it does not match."""
        found = self.pattern.match(path)
        if found is None:
            return None
        values: dict[str, str] = {}
        for index, parameter in enumerate(self.parameters):
            raw = found.group(f"p{index}")
            if raw is None or raw == "":
                if parameter.default is not None:
                    values[parameter.name] = parameter.default
                continue
            value = unquote(raw)
            if not all(check(value) for check in parameter.constraints):
                return None
            values[parameter.name] = value
        return values


@dataclass(frozen=True)
class Route(Generic[T]):
    template: RouteTemplate
    methods: frozenset[str] | None  # None: every method
    target: T


@dataclass(frozen=True)
class RouteMatch(Generic[T]):
    target: T
    route_params: dict[str, str]


@dataclass(frozen=True)
class MethodNotAllowed:
    allowed: frozenset[str]


@dataclass
class Router(Generic[T]):
    """Routes in ASP.NET precedence order: literals before constrained before free parameters."""

    routes: list[Route[T]] = field(default_factory=list)

    def add(self, template: RouteTemplate, methods: Iterable[str] | None, target: T) -> None:
        method_set = frozenset(method.upper() for method in methods) if methods else None
        self.routes.append(Route(template, method_set, target))
        self.routes.sort(key=lambda route: (route.template.precedence, route.template.template.lower()))

    def match(self, method: str, path: str) -> RouteMatch[T] | MethodNotAllowed | None:
        allowed: set[str] = set()
        for route in self.routes:
            values = route.template.match(path)
            if values is None:
                continue
            if route.methods is None or method in route.methods:
                return RouteMatch(route.target, values)
            allowed |= route.methods
        return MethodNotAllowed(frozenset(allowed)) if allowed else None

    @property
    def templates(self) -> Sequence[str]:
        return [route.template.template for route in self.routes]
