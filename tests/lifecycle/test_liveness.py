"""The salvage rule (verbatim.lifecycle.liveness): heartbeats silent make the recorder suspect, never dead; its own
answer decides, and without one only a silence longer than a live recorder's heartbeat can take through a slow
store (2 intervals + the Table service's 30 s server timeout). And the lifecycle only ever calls the recorders'
own host with its token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from verbatim.lifecycle.liveness import LivenessAnswer, control_url_allowed, judge, silence_threshold, suspect_after

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_the_threshold_is_derived_from_the_storage_timeout_not_a_count_of_heartbeats() -> None:
    assert silence_threshold(5.0) == 40.0  # Azure: 5 s heartbeats
    assert silence_threshold(2.0) == 34.0  # the local stack
    assert suspect_after(5.0) == 15.0


@pytest.mark.parametrize(
    ("age", "answer", "salvage"),
    [
        (10, "unreachable", False),  # fresh: nobody is asked
        (15, "capturing", False),
        (15, "ending", False),
        (15, "not_held", True),  # the process that captured is gone: salvage at once
        (15, "unreachable", False),  # "unreachable" is not "silent"
        (39, "unreachable", False),
        (40, "unreachable", True),
        (40, "not_asked", True),
        (3600, "capturing", False),  # a live recorder is never salvaged, whatever the store does
    ],
)
def test_the_recorders_answer_decides_once_the_heartbeat_is_suspect(age: int, answer: str, salvage: bool) -> None:
    asked: list[bool] = []

    def ask() -> LivenessAnswer:
        asked.append(True)
        return LivenessAnswer(answer, answer)  # type: ignore[arg-type]

    judgement = judge(
        now=T0 + timedelta(seconds=age),
        last_heard=T0,
        heartbeat_seconds=5.0,
        server_timeout_seconds=30.0,
        ask=ask,
    )
    assert judgement.salvage is salvage
    assert bool(asked) is (age >= 15)
    assert judgement.evidence["heartbeat_age_ms"] == age * 1000
    assert judgement.evidence["silence_threshold_ms"] == 40_000
    assert "30 s server timeout" in str(judgement.evidence["threshold_basis"])
    if asked:
        assert judgement.evidence["recorder"]["answer"] == answer  # type: ignore[index]
    if not salvage:
        assert judgement.wait_seconds > 0


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://recorder.contoso.com:20001", True),
        ("https://RECORDER.contoso.com:20001/", True),
        ("http://recorder.contoso.com:20001", False),  # plain http only on a loopback address
        ("https://evil.example:443", False),
        ("https://recorder.contoso.com.evil.example", False),
        ("https://user:pw@recorder.contoso.com", False),
        ("https://recorder.contoso.com:20001?x=1", False),
        ("http://127.0.0.1:9441", True),
        ("http://169.254.169.254", False),  # the metadata service: never
        ("https://recorder.contoso.com:99999", False),
        ("file:///etc/passwd", False),
    ],
)
def test_only_urls_on_the_recorders_host_are_ever_called(url: str, allowed: bool) -> None:
    assert control_url_allowed(url, frozenset({"recorder.contoso.com", "127.0.0.1"})) is allowed
