"""The recorder's log lines in the Windows Application log, where the Azure Monitor Agent collects them.

The service wrapper starts the recorder as a child process whose stderr nobody keeps; the data collection rule in
infra/modules/recorder.bicep collects Application-log events of the provider `VerbatimRecorder` (the service's own
source, under which pywin32's service framework already logs starts and stops) and sends them to Log Analytics
(https://learn.microsoft.com/azure/azure-monitor/vm/data-collection-windows-events). Warnings and errors by default:
enough to diagnose an instance from the workspace without turning the event log into a trace.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Callable

from verbatim.platform.logging import JsonFormatter

EVENT_SOURCE = "VerbatimRecorder"  # recorder_vm.deploy.windows_service.SERVICE_NAME; the DCR's provider name


def add_event_log_handler(
    level: str,
    *,
    platform: str = sys.platform,
    handler_factory: Callable[[str], logging.Handler] = logging.handlers.NTEventLogHandler,
) -> logging.Handler | None:
    """Send records at `level` and above to the Application log (Windows only; an empty level turns it off)."""
    if platform != "win32" or not level:
        return None
    handler = handler_factory(EVENT_SOURCE)
    handler.setLevel(level.upper())
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    return handler
