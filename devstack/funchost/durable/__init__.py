"""Durable Functions in the local Functions host: the SDK's orchestrators replayed from history in Azurite.

The host loads this package through `create_extension` when the app has orchestration, activity or entity
functions or a durableClient binding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devstack.funchost.durable.extension import DurableExtension
from devstack.funchost.durable.taskhub import DurableOptions


def create_extension(host_json: Mapping[str, Any], environ: Mapping[str, str]) -> DurableExtension:
    """The extension for an app with host.json `host_json` and app settings `environ`."""
    return DurableExtension(DurableOptions.from_host_json(host_json, environ), environ)


__all__ = ["DurableExtension", "create_extension"]
