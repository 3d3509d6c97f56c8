"""The completeness rule, at the service layer with the production defaults: only the recorder's join at each
of the user's joins (a few seconds) and its teardown at each leave (about a second, and never after an
interrupted recording) may go unrecorded; any other gap is partial, and less than a second of audio is
missing. A total allowance judged a recorder that died 4.5 s into a 14 s call `recorded` — a false negative."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devstack.testkit.records import CLIENT, T0, TRADER, call, endpoint, iso, party, recording
from tests.reconciliation.test_reconciler import World
from verbatim.contracts.callrecords import CallRecord, SessionSummary
from verbatim.platform.settings import Settings
from verbatim.reconciliation.evaluate import Tolerance


@pytest.fixture
def world() -> World:
    return World()


def seconds_after(offset: float) -> str:
    return iso(T0 + timedelta(seconds=offset))


def test_a_recorder_that_died_4_5_s_into_a_14_s_call_is_partial_with_the_lost_tail_as_gap(world: World) -> None:
    world.add(recording("r1", "c1", TRADER, seconds=4.5, interrupted=True))
    world.store_call(call("c1", [party(TRADER), party(CLIENT)], seconds=14))

    world.reconciler.reconcile_call("c1")

    verdict = world.verdict("c1")
    assert (verdict.verdict, verdict.reason) == ("partial", "recorder_crashed")
    assert verdict.coverage == pytest.approx(4.5 / 14, abs=1e-3) and verdict.recorded_seconds == 4.5
    assert [(g.start, g.end, g.seconds) for g in verdict.gaps] == [(seconds_after(4.5), seconds_after(14), 9.5)]
    assert "9.5 s" in verdict.reason_detail
    assert world.alerts() == ["reconciliation.partial"]


def test_a_recorder_joining_within_the_join_tolerance_is_recorded(world: World) -> None:
    world.add(recording("r1", "c2", TRADER, start=T0 + timedelta(seconds=2.5), seconds=57.5))
    world.store_call(call("c2", [party(TRADER), party(CLIENT)]))

    world.reconciler.reconcile_call("c2")

    verdict = world.verdict("c2")
    assert (verdict.verdict, verdict.reason, verdict.gaps) == ("recorded", "recorded", [])
    assert verdict.coverage == pytest.approx(57.5 / 60, abs=1e-3)


def test_a_recorder_joining_later_than_the_join_tolerance_is_partial_joined_late(world: World) -> None:
    world.add(recording("r1", "c3", TRADER, start=T0 + timedelta(seconds=5), seconds=55))
    world.store_call(call("c3", [party(TRADER), party(CLIENT)]))

    world.reconciler.reconcile_call("c3")

    verdict = world.verdict("c3")
    assert (verdict.verdict, verdict.reason) == ("partial", "recorder_joined_late")
    assert [(g.start, g.seconds) for g in verdict.gaps] == [(seconds_after(0), 5)]
    assert verdict.reason_detail == "recording started 5.0 s after the user joined"


def test_teardown_within_the_end_tolerance_is_recorded_but_a_longer_early_stop_is_partial(world: World) -> None:
    world.add(recording("r1", "c4", TRADER, seconds=59.5))  # stopped normally, half a second before the end
    later = T0 + timedelta(hours=1)
    world.add(recording("r2", "c5", TRADER, start=later, seconds=57))  # stopped normally, 3 s before the end
    world.store_call(call("c4", [party(TRADER), party(CLIENT)]))
    world.store_call(call("c5", [party(TRADER), party(CLIENT)], start=later))

    for call_id in ("c4", "c5"):
        world.reconciler.reconcile_call(call_id)

    assert (world.verdict("c4").verdict, world.verdict("c4").gaps) == ("recorded", [])
    verdict = world.verdict("c5")
    assert (verdict.verdict, verdict.reason) == ("partial", "recording_ended_early")
    assert [(g.start, g.seconds) for g in verdict.gaps] == [(iso(later + timedelta(seconds=57)), 3)]


def test_an_interrupted_recording_that_ends_before_the_call_is_partial_even_within_teardown(world: World) -> None:
    world.add(recording("r1", "c6", TRADER, seconds=59.5, interrupted=True))
    world.store_call(call("c6", [party(TRADER), party(CLIENT)]))

    world.reconciler.reconcile_call("c6")

    verdict = world.verdict("c6")
    assert (verdict.verdict, verdict.reason) == ("partial", "recorder_crashed")
    assert [g.seconds for g in verdict.gaps] == [0.5]


def test_a_gap_in_the_middle_is_partial_however_short(world: World) -> None:
    world.add(recording("r1", "c7", TRADER, seconds=30))
    world.add(recording("r2", "c7", TRADER, start=T0 + timedelta(seconds=31.5), seconds=28.5))
    world.store_call(call("c7", [party(TRADER), party(CLIENT)]))

    world.reconciler.reconcile_call("c7")

    verdict = world.verdict("c7")
    assert (verdict.verdict, verdict.reason, verdict.recording_ids) == ("partial", "unknown", ["r1", "r2"])
    assert [(g.start, g.end) for g in verdict.gaps] == [(seconds_after(30), seconds_after(31.5))]
    assert "1.5 s in the middle" in verdict.reason_detail


def test_gaps_below_the_measurement_resolution_are_not_gaps(world: World) -> None:
    # Two legs (a re-invite) meeting 40 ms apart, and a normal stop one 20 ms frame before the end.
    world.add(recording("r1", "c8", TRADER, seconds=30))
    world.add(recording("r2", "c8", TRADER, start=T0 + timedelta(seconds=30.04), seconds=29.94))
    world.store_call(call("c8", [party(TRADER), party(CLIENT)]))

    world.reconciler.reconcile_call("c8")

    assert world.verdict("c8").verdict == "recorded"


def test_less_than_a_second_of_audio_is_missing_not_partial(world: World) -> None:
    world.add(recording("r1", "c9", TRADER, start=T0 + timedelta(seconds=1), seconds=0.6, interrupted=True))
    world.store_call(call("c9", [party(TRADER), party(CLIENT)]))

    world.reconciler.reconcile_call("c9")

    verdict = world.verdict("c9")
    assert (verdict.verdict, verdict.reason, verdict.recording_ids) == ("missing", "recorder_crashed", ["r1"])
    assert verdict.recorded_seconds == pytest.approx(0.6) and world.alerts() == ["reconciliation.missing"]


def test_the_join_tolerance_applies_at_each_join_of_a_user_who_left_and_came_back(world: World) -> None:
    first = (T0, T0 + timedelta(minutes=1))
    second = (T0 + timedelta(minutes=2), T0 + timedelta(minutes=3))
    trader = party(TRADER, first[0], second[1])
    meeting = CallRecord(
        id="c10",
        tenant_id=trader.tenant_id,
        version=1,
        type="groupCall",
        start_date_time=iso(first[0]),
        end_date_time=iso(second[1]),
        participants=[trader, party(CLIENT, first[0], second[1])],
        sessions=[
            SessionSummary(id=f"s{n}", start_date_time=iso(a), end_date_time=iso(b), caller=endpoint(trader))
            for n, (a, b) in enumerate((first, second))
        ],
    )
    # The platform invites a recorder at each join: each leg starts a moment after the join.
    world.add(recording("r1", "c10", TRADER, start=first[0] + timedelta(seconds=1), seconds=59, call_type="groupCall"))
    world.add(recording("r2", "c10", TRADER, start=second[0] + timedelta(seconds=2), seconds=58, call_type="groupCall"))
    world.store_call(meeting)

    world.reconciler.reconcile_call("c10")

    verdict = world.verdict("c10")
    assert (verdict.verdict, verdict.recorded_seconds) == ("recorded", 117)

    # The second leg came 6 s after the rejoin: that start is not covered.
    world.add(recording("r2", "c10", TRADER, start=second[0] + timedelta(seconds=6), seconds=54, call_type="groupCall"))
    world.reconciler.reconcile_call("c10")
    verdict = world.verdict("c10")
    assert (verdict.verdict, verdict.reason) == ("partial", "recorder_joined_late")
    assert [(g.start, g.seconds) for g in verdict.gaps] == [(iso(first[0]), 1), (iso(second[0]), 6)]


def test_the_tolerances_are_settings_of_a_few_seconds_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert (defaults.reconciliation_join_tolerance_seconds, defaults.reconciliation_end_tolerance_seconds) == (3, 1)
    assert Tolerance() == Tolerance(join_seconds=3, end_seconds=1)
    monkeypatch.setenv("RECONCILIATION_JOIN_TOLERANCE_SECONDS", "2")
    monkeypatch.setenv("RECONCILIATION_END_TOLERANCE_SECONDS", "0.5")
    assert (Settings().reconciliation_join_tolerance_seconds, Settings().reconciliation_end_tolerance_seconds) == (
        2,
        0.5,
    )
    for name, value in (("RECONCILIATION_JOIN_TOLERANCE_SECONDS", "10"), ("RECONCILIATION_END_TOLERANCE_SECONDS", "3")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError):
            Settings()
        monkeypatch.delenv(name)
