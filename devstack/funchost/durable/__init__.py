"""Durable Functions in the local Functions host: the SDK's orchestrators replayed from history in Azurite.

The host loads this package through `create_extension` when the app has orchestration, activity or entity
functions or a durableClient binding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devstack.funchost.durable.extension import DurableExtension
from devstack.funchost.durable.taskhub import DurableOptions, TaskHubConfigError


def create_extension(host_json: Mapping[str, Any], environ: Mapping[str, str]) -> DurableExtension:
    """The extension for an app with host.json `host_json` and app settings `environ`.

    The host creates extensions before it knows whether the app uses them: a durableTask section that cannot be
    resolved (say, `%DURABLE_TASK_HUB_NAME%` unset) is reported when the extension starts, i.e. only for an app
    with durable functions.
    """
    try:
        options: DurableOptions | TaskHubConfigError = DurableOptions.from_host_json(host_json, environ)
    except TaskHubConfigError as error:
        options = error
    return DurableExtension(options, environ)


__all__ = ["DurableExtension", "create_extension"]
