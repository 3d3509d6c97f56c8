"""The composition root: the one place where the process's object graph is built (`Container`) and kept.

Entry points (triggers in functions/, the CLI) ask `current()` (the container of `get_settings()`) for what they
call; nothing
below this package builds its own collaborators from settings. One container per settings object: a test that
reloads the settings gets a new graph, and `use_container` puts a hand-built one (with fakes) in its place.
"""

from __future__ import annotations

import threading

from verbatim.platform.settings import Settings, get_settings
from verbatim.wiring.container import Container, build_ledger, build_signer

__all__ = ["Container", "build_ledger", "build_signer", "container_for", "current", "use_container"]

_current: Container | None = None
_lock = threading.Lock()


def container_for(settings: Settings) -> Container:
    """The process's container for these settings (built on first use, rebuilt when the settings object changes)."""
    global _current
    with _lock:
        if _current is None or _current.settings is not settings:
            _current = Container(settings)
        return _current


def current() -> Container:
    """The container for the process's settings as they are now (what triggers call)."""
    return container_for(get_settings())


def use_container(container: Container | None) -> None:
    """Make `container` the process's (tests); None forgets it."""
    global _current
    with _lock:
        _current = container
