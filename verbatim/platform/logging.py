"""Structured JSON logging with correlation ids (call id, recording id, trace id) carried in context."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

_correlation: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "verbatim_correlation", default=MappingProxyType({})
)

# Attributes every LogRecord has; anything else passed through `extra=` is emitted as a field.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


@contextmanager
def correlation(**ids: str | None) -> Iterator[None]:
    """Attach correlation ids (e.g. call_id=..., recording_id=...) to every log line inside the block."""
    merged = {**_correlation.get(), **{key: value for key, value in ids.items() if value}}
    token = _correlation.set(merged)
    try:
        yield
    finally:
        _correlation.reset(token)


def current_correlation() -> dict[str, str]:
    return dict(_correlation.get())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlation ids and `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_correlation.get())
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key[0] != "_":
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Route the root logger to JSON lines on stderr (idempotent)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.handlers = [h for h in root.handlers if not isinstance(h.formatter, JsonFormatter)]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The JSON lines carry neither the caller's file/line nor process/thread details: skip collecting them
    # on every record (the logging module's documented switches; they matter on the webhook's hot path).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # no findCaller() walk per record
    # The Azure SDKs log every HTTP request at INFO, headers included: keep them quiet.
    logging.getLogger("azure").setLevel(logging.WARNING)
