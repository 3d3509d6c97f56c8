"""When a speaker spoke: voice activity in a speaker's own track (unmixed audio), for the recording's timeline.

The WebRTC voice activity detector (`webrtcvad`, Google's WebRTC VAD) judges each 30 ms frame of the 16 kHz evidence
that is louder than -50 dBFS;
speech frames are joined into spans where the pauses between them are shorter than `JOIN_SECONDS`, and a span
shorter than `MIN_SECONDS` (a click, a cough) is dropped. The spans describe the evidence; they are sealed with the
track in the manifest and never used to cut or change it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from verbatim.contracts.evidence import SpeechSpan

FRAME_SECONDS = 0.03
JOIN_SECONDS = 0.6
MIN_SECONDS = 0.2
AGGRESSIVENESS = 2  # 0 (most speech) .. 3 (least): 2 keeps breath pauses out without losing quiet speech
RATES = (8000, 16000, 32000, 48000)  # what the detector takes
# Quieter than -50 dBFS is not speech whatever the detector says: it adapts to the level it hears, and after a
# talker stops it can call a quiet room speech for seconds.
GATE_RMS = 32768 * 10 ** (-50 / 20)


def speech_spans(
    chunks: Iterable[npt.NDArray[np.int16]], sample_rate: int, *, offset_seconds: float = 0.0
) -> list[SpeechSpan]:
    """The spans of speech in a mono int16 stream given in chunks of any size (seconds from its first sample, plus
    `offset_seconds`); none for a rate the detector does not take."""
    if sample_rate not in RATES:
        return []
    # Imported here: only speakers' own tracks need it, so a checkout whose environment predates the pin still
    # finalises mixed recordings (make setup installs it).
    import webrtcvad

    detector = webrtcvad.Vad(AGGRESSIVENESS)
    frame = int(sample_rate * FRAME_SECONDS)
    spans: list[SpeechSpan] = []
    pending = np.empty(0, dtype=np.int16)
    position = 0  # frames judged so far
    for chunk in chunks:
        pending = np.concatenate([pending, chunk]) if pending.size else np.asarray(chunk, dtype=np.int16)
        whole = len(pending) // frame
        frames = pending[: whole * frame].reshape(whole, frame)
        loud = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) >= GATE_RMS
        for index in np.flatnonzero(loud):
            if detector.is_speech(frames[index].tobytes(), sample_rate):
                start = offset_seconds + (position + index) * FRAME_SECONDS
                end = start + FRAME_SECONDS
                if spans and start - spans[-1].end_seconds < JOIN_SECONDS:
                    spans[-1].end_seconds = round(end, 3)
                else:
                    spans.append(SpeechSpan(start_seconds=round(start, 3), end_seconds=round(end, 3)))
        position += whole
        pending = pending[whole * frame :]
    return [span for span in spans if span.end_seconds - span.start_seconds >= MIN_SECONDS]
