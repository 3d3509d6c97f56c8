"""Who spoke when in mixed audio: the platform's dominant-speaker changes, as spans on the mixed track.

Mixed audio carries no per-speaker signal; the platform says who is loudest instead. Microsoft's Real-time Media
Platform raises `AudioSocket.DominantSpeakerChanged` with `DominantSpeakerChangedEventArgs.CurrentDominantSpeaker`,
"the MediaSourceId (MSI) of the dominant speaker", `None` (0xFFFFFFFF) when there is none, and no time of its own:
https://microsoftgraph.github.io/microsoft-graph-comms-samples/docs/bot_media/Microsoft.Skype.Bots.Media.DominantSpeakerChangedEventArgs.html
The recorder keeps each change on the audio frames' timeline (`CaptureManifest.dominant_speakers`). Here each change
opens a span for its source until the next change or the end of the track. The spans say what the platform named,
not what was heard (`basis` "dominant-speaker"); the roster's audio source ids say who the source is.
"""

from __future__ import annotations

from collections.abc import Sequence

from verbatim.contracts.evidence import SpeechSpan
from verbatim.contracts.recorder import DominantSpeakerChange

TICKS = 10_000_000  # 100-ns ticks per second


def dominant_speaker_spans(
    changes: Sequence[DominantSpeakerChange], *, origin_ticks: int, duration_seconds: float
) -> list[SpeechSpan]:
    """Spans of the track that starts at `origin_ticks` and lasts `duration_seconds`, one per stretch in which one
    source was the dominant speaker (seconds from the track's first sample), clipped to the track."""
    spans: list[SpeechSpan] = []
    ordered = sorted(changes, key=lambda change: change.ticks)
    for index, change in enumerate(ordered):
        if change.source_id is None:
            continue
        start = max(0.0, (change.ticks - origin_ticks) / TICKS)
        following = ordered[index + 1].ticks if index + 1 < len(ordered) else None
        end = duration_seconds if following is None else min(duration_seconds, (following - origin_ticks) / TICKS)
        if end <= start:
            continue
        if spans and spans[-1].source_id == change.source_id and spans[-1].end_seconds >= round(start, 3):
            spans[-1].end_seconds = round(end, 3)
            continue
        spans.append(
            SpeechSpan(
                start_seconds=round(start, 3),
                end_seconds=round(end, 3),
                basis="dominant-speaker",
                source_id=change.source_id,
            )
        )
    return spans
