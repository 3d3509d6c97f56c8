"""The invitation-storm benchmark's platform with Graph in a process of its own (`--platform graph-process`): the
same platform to the recorder (its key set, its Graph, over TLS), each answer stamped by the Graph process and
reported to the driver, which establishes the call on the answer's callbackUri until its recording status."""

from __future__ import annotations

from pathlib import Path

from benchmarks.invitation_storm import Driver, recorders, storm
from tests.conftest import Azurite


def test_a_storm_against_graph_in_its_own_process_is_answered_established_and_stamped_there(
    azurite_service: Azurite, tmp_path: Path
) -> None:
    driver = Driver(tmp_path / "platform")
    driver.start()
    try:
        assert driver.graph_pid is not None
        with recorders(2, driver, azurite_service.connection_string, tmp_path, 20, None) as running:
            result = storm(driver, running, 6)
    finally:
        driver.stop()
    assert (result.rejected, result.unanswered, len(result.latencies)) == (0, 0, 6)
    assert result.recording == 6  # established on each answer's callbackUri, updateRecordingStatus reported back
    answered = [record for record in driver.calls.values() if record.answered_at is not None]
    assert len(answered) == 6
    # Stamped in the Graph process, before this process's loop learnt of the answer.
    assert all(record.answered_at <= driver.seen_at[record.call_id] for record in answered)  # type: ignore[operator]
    assert all(record.answer is not None and record.answer["callbackUri"] for record in answered)
    assert result.recorder_p99 is not None and result.platform_cpu > 0
    assert driver._graph is not None and driver._graph.poll() is not None  # stopped with the platform
