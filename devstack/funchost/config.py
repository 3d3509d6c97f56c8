"""What the host reads before it indexes the app: host.json, the app settings, and `%setting%` expressions.

host.json keys are looked up case-insensitively, as the real host's configuration binder does; the
defaults are the real host's (Storage Queues extension 5.x, HTTP `routePrefix` "api").
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<hours>\d+):(?P<minutes>\d+)(?::(?P<seconds>\d+(?:\.\d+)?))?$")
_SETTING_EXPRESSION = re.compile(r"%([^%]+)%")
# host.json's log levels (Microsoft.Extensions.Logging) as Python's; "None" turns a category off.
_LOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "information": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "none": logging.CRITICAL + 10,
}


class HostConfigError(ValueError):
    """host.json, local.settings.json or a binding expression cannot be used; the message says why."""


def parse_timespan(value: str | int | float) -> timedelta:
    """A .NET TimeSpan as host.json writes it (`hh:mm:ss`, `d.hh:mm:ss`, fractional seconds).

    Bare numbers are milliseconds, as in the v1 host.json schema some apps still carry.
    """
    if isinstance(value, bool):
        raise HostConfigError(f"not a time span: {value!r}")
    if isinstance(value, int | float):
        return timedelta(milliseconds=value)
    match = _TIMESPAN.match(value.strip())
    if match is None:
        raise HostConfigError(f"not a time span (expected hh:mm:ss): {value!r}")
    hours, minutes = int(match["hours"]), int(match["minutes"])
    if hours > 23 or minutes > 59 or float(match["seconds"] or 0) >= 60:
        raise HostConfigError(f"time span out of range: {value!r}")
    return timedelta(days=int(match["days"] or 0), hours=hours, minutes=minutes, seconds=float(match["seconds"] or 0))


def _get(section: Mapping[str, Any], key: str, default: Any = None) -> Any:
    lowered = key.lower()
    for name, value in section.items():
        if name.lower() == lowered:
            return value
    return default


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues` of host.json (seconds for the time spans)."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_polling_interval: float = 60.0
    visibility_timeout: float = 0.0
    max_dequeue_count: int = 5
    message_encoding: str = "base64"

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> QueueOptions:
        batch_size = int(_get(section, "batchSize", 16))
        if not 1 <= batch_size <= 32:
            raise HostConfigError(f"extensions.queues.batchSize must be 1..32 (Azure's limit), not {batch_size}")
        # The real default is N * batchSize / 2 with N the vCPUs of a dedicated plan; 1 on Consumption.
        threshold = int(_get(section, "newBatchThreshold", batch_size // 2))
        polling = parse_timespan(_get(section, "maxPollingInterval", "00:01:00")).total_seconds()
        encoding = str(_get(section, "messageEncoding", "base64")).lower()
        if encoding not in ("base64", "none"):
            raise HostConfigError(f"extensions.queues.messageEncoding must be base64 or none, not {encoding!r}")
        return cls(
            batch_size=batch_size,
            new_batch_threshold=max(threshold, 0),
            max_polling_interval=max(polling, 0.1),
            visibility_timeout=parse_timespan(_get(section, "visibilityTimeout", "00:00:00")).total_seconds(),
            max_dequeue_count=int(_get(section, "maxDequeueCount", 5)),
            message_encoding=encoding,
        )


@dataclass(frozen=True)
class HostConfig:
    """The parts of host.json this host acts on, plus the whole document for extensions."""

    raw: Mapping[str, Any] = field(default_factory=dict)
    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)
    function_timeout: float | None = None
    # logging.logLevel by category (e.g. "Function", "Function.<name>"), "default" left out.
    log_levels: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> HostConfig:
        extensions = _get(document, "extensions", {}) or {}
        http = _get(extensions, "http", {}) or {}
        timeout = _get(document, "functionTimeout")
        levels = _get(_get(document, "logging", {}) or {}, "logLevel", {}) or {}
        log_levels = {}
        for category, level in levels.items():
            if str(level).lower() not in _LOG_LEVELS:
                raise HostConfigError(f"logging.logLevel.{category} is not a log level: {level!r}")
            if category.lower() != "default":
                log_levels[category] = _LOG_LEVELS[str(level).lower()]
        return cls(
            raw=document,
            route_prefix=str(_get(http, "routePrefix", "api")).strip("/"),
            queues=QueueOptions.from_section(_get(extensions, "queues", {}) or {}),
            function_timeout=parse_timespan(timeout).total_seconds() if timeout not in (None, "-1") else None,
            log_levels=log_levels,
        )


def load_host_config(script_root: Path) -> HostConfig:
    path = script_root / "host.json"
    if not path.exists():
        raise HostConfigError(f"{path} is missing: the script root must hold the app's host.json")
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise HostConfigError(f"{path} is not valid JSON: {error}") from error
    return HostConfig.from_json(document)


def load_app_settings(script_root: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`Values` of local.settings.json (when present) overlaid by the environment, which wins."""
    settings: dict[str, str] = {}
    local = script_root / "local.settings.json"
    if local.exists():
        try:
            values = json.loads(local.read_text(encoding="utf-8-sig")).get("Values", {}) or {}
        except json.JSONDecodeError as error:
            raise HostConfigError(f"{local} is not valid JSON: {error}") from error
        settings.update({str(key): str(value) for key, value in values.items() if value is not None})
    settings.update(os.environ if environ is None else environ)
    return settings


def resolve_setting_expressions(value: str, settings: Mapping[str, str]) -> str:
    """Replace `%NAME%` with the app setting NAME, as binding expressions in the real host do."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in settings:
            raise HostConfigError(f"app setting {name!r} (used as %{name}%) is not set")
        return settings[name]

    return _SETTING_EXPRESSION.sub(replace, value)
