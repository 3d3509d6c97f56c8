"""Log lines are JSON objects carrying the correlation ids of the context they were written in."""

from __future__ import annotations

import io
import json
import logging

from verbatim.platform.logging import configure_logging, correlation, current_correlation


def _capture() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    return stream


def test_log_lines_are_json_with_correlation_ids_and_extra_fields() -> None:
    stream = _capture()
    with correlation(call_id="call-1"), correlation(recording_id="rec-9"):
        logging.getLogger("verbatim.test").info("sealed %s", "rec-9", extra={"blocks": 3})

    entry = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert entry["message"] == "sealed rec-9"
    assert entry["call_id"] == "call-1"
    assert entry["recording_id"] == "rec-9"
    assert entry["blocks"] == 3
    assert entry["level"] == "INFO"


def test_correlation_ids_do_not_leak_out_of_their_block() -> None:
    with correlation(call_id="inner"):
        assert current_correlation() == {"call_id": "inner"}
    assert "call_id" not in current_correlation()


def test_configuring_twice_does_not_duplicate_lines() -> None:
    _capture()
    stream = _capture()
    logging.getLogger("verbatim.test").warning("once")

    assert stream.getvalue().count("once") == 1
