"""When a speaker spoke, from their own track: the WebRTC voice activity detector over real (espeak-ng) speech placed
at known moments in low noise (verbatim.evidence.speech)."""

from __future__ import annotations

import numpy as np

from devstack.testkit.captures import RATE, speech
from verbatim.evidence.speech import speech_spans


def _track(seconds: float, talks: list[tuple[float, float]]) -> np.ndarray:
    rng = np.random.default_rng(7)
    pcm = rng.integers(-30, 30, int(seconds * RATE)).astype(np.int16)  # a quiet room, not digital silence
    for start, end in talks:
        pcm[int(start * RATE) : int(end * RATE)] = speech(end - start)
    return pcm


def test_the_spans_are_where_the_speaker_spoke_whatever_the_chunking() -> None:
    pcm = _track(9.0, [(1.0, 3.0), (5.5, 7.0)])
    spans = speech_spans(np.array_split(pcm, 37), RATE)
    assert len(spans) == 2, spans
    for span, (start, end) in zip(spans, [(1.0, 3.0), (5.5, 7.0)], strict=True):
        assert abs(span.start_seconds - start) <= 0.2 and abs(span.end_seconds - end) <= 0.3, (span, start, end)
    assert speech_spans([pcm], RATE) == spans  # one chunk or many: the same frames are judged


def test_a_quiet_track_has_no_speech_and_an_offset_moves_the_spans() -> None:
    assert speech_spans([_track(4.0, [])], RATE) == []
    pcm = _track(4.0, [(1.0, 2.5)])
    (plain,) = speech_spans([pcm], RATE)
    (moved,) = speech_spans([pcm], RATE, offset_seconds=60.0)
    assert abs(moved.start_seconds - plain.start_seconds - 60.0) < 1e-6


def test_a_rate_the_detector_does_not_take_gives_no_spans_rather_than_wrong_ones() -> None:
    assert speech_spans([_track(2.0, [(0.5, 1.5)])], 22_050) == []
