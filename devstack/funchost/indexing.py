"""Import the app (`function_app:app`) from the script root and index its functions once.

`FunctionApp.get_functions()` may be called only once per app object, so the index is built here, at
startup, and never again. Each function keeps its bindings as in function.json (direction lowercased,
as function.json writes it) and what the invoker needs to call it: the handler and its parameters.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class AppLoadError(RuntimeError):
    """The app module or object cannot be loaded or indexed; the message says which and why."""


@dataclass
class HostedFunction:
    """One function of the app (satisfies `devstack.funchost.extension.IndexedFunction`)."""

    name: str
    trigger_type: str
    trigger: Mapping[str, Any]
    bindings: list[Mapping[str, Any]]
    handler: Callable[..., Any]
    is_async: bool
    parameters: tuple[str, ...]
    annotations: Mapping[str, Any] = field(default_factory=dict)

    @property
    def input_bindings(self) -> list[Mapping[str, Any]]:
        """Input bindings other than the trigger."""
        return [b for b in self.bindings if b.get("direction") == "in" and b is not self.trigger]

    @property
    def output_bindings(self) -> list[Mapping[str, Any]]:
        return [b for b in self.bindings if b.get("direction") in ("out", "inout")]

    @property
    def is_http(self) -> bool:
        return self.trigger_type == "httpTrigger"


def load_app(script_root: Path, spec: str = "function_app:app") -> Any:
    """The app object named by `module:attribute`, imported with the script root first on sys.path."""
    module_name, _, attribute = spec.partition(":")
    attribute = attribute or "app"
    root = str(script_root.resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise AppLoadError(f"cannot import {module_name!r} from {root}: {error!r}") from error
    try:
        return getattr(module, attribute)
    except AttributeError as error:
        raise AppLoadError(f"{module_name!r} has no attribute {attribute!r}") from error


def _annotations(handler: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(handler)
    except Exception:  # forward references the app never resolves: fall back to the raw annotations
        return {name: p.annotation for name, p in inspect.signature(handler).parameters.items()}


def _index_one(function: Any) -> HostedFunction:
    document = json.loads(function.get_function_json())
    bindings: list[dict[str, Any]] = []
    for binding in document.get("bindings", []):
        normalised = dict(binding)
        normalised["direction"] = str(binding.get("direction", "in")).lower()
        bindings.append(normalised)
    trigger_type = str(function.get_trigger().type)  # generic triggers have no binding name, only a type
    trigger = next((b for b in bindings if b.get("type") == trigger_type and b["direction"] == "in"), None)
    if trigger is None:
        raise AppLoadError(f"function {function.get_function_name()!r} has no {trigger_type} binding")
    handler = function.get_user_function()
    return HostedFunction(
        name=function.get_function_name(),
        trigger_type=trigger_type,
        trigger=trigger,
        bindings=list(bindings),
        handler=handler,
        is_async=inspect.iscoroutinefunction(handler),
        parameters=tuple(inspect.signature(handler).parameters),
        annotations=_annotations(handler),
    )


def index_functions(app: Any) -> dict[str, HostedFunction]:
    """Every function of the app by name. Call once per app object."""
    try:
        functions = app.get_functions()
    except Exception as error:
        raise AppLoadError(f"indexing the app failed: {error!r}") from error
    indexed: dict[str, HostedFunction] = {}
    for function in functions:
        hosted = _index_one(function)
        if hosted.name.lower() in (name.lower() for name in indexed):
            raise AppLoadError(f"two functions are named {hosted.name!r}")
        indexed[hosted.name] = hosted
    return indexed
