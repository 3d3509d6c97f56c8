"""The access copy's chunk encoder gives the encoder the whole chunk in one call (issue 22: the per-20-ms
Python loop was a tenth of the access copy's CPU). The packets must be exactly those of the frame-by-frame
encode it replaced, so the chunked copy still joins into the single-pass stream: checked here against a
frame-by-frame reference built on the same encoder settings, for a chunk that starts at 0 and one that starts
after a warm-up, with and without a partial last frame."""

from __future__ import annotations

import pytest

from devstack.testkit.captures import speech
from devstack.testkit.opus_reference import frame_by_frame
from verbatim.evidence import opus


@pytest.mark.parametrize("seconds", [7.0, 7.0 + 123 / opus.SAMPLE_RATE])
def test_one_call_encode_gives_the_packets_of_the_frame_by_frame_encode(seconds: float) -> None:
    pcm = speech(seconds)
    plans = opus.plan_chunks(len(pcm), 3)
    assert len(plans) == 3 and plans[1].input_start > 0  # a chunk with a warm-up, and a last one with the tail
    for plan in plans:
        samples = pcm[plan.input_start : plan.input_end]
        encoded = opus.encode_chunk(plan, samples)
        reference = frame_by_frame(plan, samples)
        assert encoded.packets == reference, f"chunk {plan.index}"
        assert len(encoded.packets) > 0
