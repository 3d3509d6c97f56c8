"""On Windows the recorder's warnings also go to the Application log, under the source the collection rule reads."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from recorder_vm.deploy.windows_service import SERVICE_NAME
from recorder_vm.event_log import EVENT_SOURCE, add_event_log_handler


class FakeEventLog(logging.Handler):
    def __init__(self, appname: str) -> None:
        super().__init__()
        self.appname = appname
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def root_handlers() -> Iterator[None]:
    before = list(logging.getLogger().handlers)
    yield
    logging.getLogger().handlers = before


@pytest.mark.usefixtures("root_handlers")
def test_warnings_reach_the_application_log_under_the_service_source() -> None:
    handler = add_event_log_handler("WARNING", platform="win32", handler_factory=FakeEventLog)
    assert isinstance(handler, FakeEventLog)
    assert handler.appname == EVENT_SOURCE == SERVICE_NAME

    log = logging.getLogger("recorder_vm.test")
    log.warning("storage unavailable", extra={"call_id": "c1"})
    log.info("answered")

    [line] = handler.lines
    assert json.loads(line)["message"] == "storage unavailable"


@pytest.mark.usefixtures("root_handlers")
def test_nothing_is_added_off_windows_or_when_turned_off() -> None:
    assert add_event_log_handler("WARNING", platform="linux", handler_factory=FakeEventLog) is None
    assert add_event_log_handler("", platform="win32", handler_factory=FakeEventLog) is None
