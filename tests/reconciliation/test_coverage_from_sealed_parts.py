"""Issue 14: a verdict's coverage comes from what the sealed evidence holds (each sealed part's time range, its
duration measured by decoding it), never from what the recorder said it captured. A storage stall made the
lifecycle salvage 7.56 s of a 39 s call while the recorder went on capturing; the verdict said `recorded`,
coverage 1.0. Sealed evidence shorter than the user's presence is `partial` with its reason, and a recording
whose continuation is not sealed yet is `pending`."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devstack.testkit.records import CLIENT, T0, TRADER, call, iso, party, recording
from tests.reconciliation.test_reconciler import World
from verbatim.contracts.lifecycle import Continuation, RecordingRecord, SealedPartIndex

RATE = 16_000


@pytest.fixture
def world() -> World:
    return World()


def sealed_in_parts(
    recording_id: str, chain: str, parts: list[tuple[float, float, bool]], *, reported_seconds: float
) -> RecordingRecord:
    """A sealed recording whose parts are (start in the recording, sealed seconds, interrupted); the record's own
    duration is what the recorder reported capturing, which coverage must not use."""
    record = recording(recording_id, chain, TRADER, seconds=reported_seconds)
    assert record.seal is not None
    seal = record.seal.model_copy(
        update={
            "duration_seconds": reported_seconds,
            "interrupted": parts[-1][2],
            "parts": [
                SealedPartIndex(
                    part=n,
                    manifest_blob=f"{recording_id}/part-{n}/manifest.json" if n else f"{recording_id}/manifest.json",
                    manifest_sha256=f"{n:064x}",
                    ledger_seq=10 + n,
                    first_sample=round(start * RATE),
                    sample_rate=RATE,
                    duration_seconds=seconds,
                    interrupted=interrupted,
                    sealed_at=T0 + timedelta(minutes=5),
                )
                for n, (start, seconds, interrupted) in enumerate(parts)
            ],
        }
    )
    return record.model_copy(update={"seal": seal})


def test_a_salvaged_fifth_of_a_call_is_partial_whatever_the_recorder_reported(world: World) -> None:
    # The run: 7.56 s sealed (salvaged) of a 39 s call; the recorder had reported 39 s captured.
    world.add(sealed_in_parts("r1", "c1", [(0.0, 7.56, True)], reported_seconds=39.0))
    world.store_call(call("c1", [party(TRADER), party(CLIENT)], seconds=39))

    world.reconciler.reconcile_call("c1")

    verdict = world.verdict("c1")
    assert (verdict.verdict, verdict.reason) == ("partial", "recorder_crashed")
    assert verdict.coverage == pytest.approx(7.56 / 39, abs=1e-3)
    assert verdict.recorded_seconds == pytest.approx(7.56, abs=1e-3)
    assert [(g.start, g.end) for g in verdict.gaps] == [
        (iso(T0 + timedelta(seconds=7.56)), iso(T0 + timedelta(seconds=39)))
    ]


def test_a_continuation_sealed_after_the_salvage_covers_the_rest_of_the_call(world: World) -> None:
    # Part 0 salvaged at 7.56 s; the recorder, alive, went on: part 1 from 7.56 s to the end, nothing missing.
    world.add(sealed_in_parts("r1", "c2", [(0.0, 7.56, True), (7.56, 31.44, False)], reported_seconds=39.0))
    world.store_call(call("c2", [party(TRADER), party(CLIENT)], seconds=39))

    world.reconciler.reconcile_call("c2")

    verdict = world.verdict("c2")
    assert (verdict.verdict, verdict.gaps) == ("recorded", [])
    assert verdict.coverage == pytest.approx(1.0, abs=1e-3)


def test_what_the_salvage_could_not_keep_between_the_parts_is_a_gap(world: World) -> None:
    # The fenced generation kept 6 s; the continuation starts at 8 s: 2 s in the middle were never sealed.
    world.add(sealed_in_parts("r1", "c3", [(0.0, 6.0, True), (8.0, 31.0, False)], reported_seconds=39.0))
    world.store_call(call("c3", [party(TRADER), party(CLIENT)], seconds=39))

    world.reconciler.reconcile_call("c3")

    verdict = world.verdict("c3")
    assert verdict.verdict == "partial"
    assert [(g.start, g.end) for g in verdict.gaps] == [
        (iso(T0 + timedelta(seconds=6)), iso(T0 + timedelta(seconds=8)))
    ]
    assert verdict.coverage == pytest.approx(37 / 39, abs=1e-3)


def test_a_recording_whose_continuation_is_still_being_captured_is_pending(world: World) -> None:
    record = sealed_in_parts("r1", "c4", [(0.0, 7.56, True)], reported_seconds=39.0)
    world.add(
        record.model_copy(update={"continuations": [Continuation(generation=1, first_sample=round(7.56 * RATE))]})
    )
    world.store_call(call("c4", [party(TRADER), party(CLIENT)], seconds=39))

    world.reconciler.reconcile_call("c4")

    verdict = world.verdict("c4")
    assert verdict.verdict == "pending"
    assert "being continued" in verdict.reason_detail
