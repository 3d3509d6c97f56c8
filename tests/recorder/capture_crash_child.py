"""A process that captures several calls in real time until it is killed (`test_capture_pipeline`'s crash case).

    python -m tests.recorder.capture_crash_child CONNECTION_STRING CONTAINER STATE_DIR CALLS

Writes `STATE_DIR/calls.json` (each capture's names) and `STATE_DIR/source.npy` (the audio of call 0; call i
hears it rolled by `i * ROLL` samples) once the captures have started, then every 20 ms `STATE_DIR/status.json`:
frames delivered to each call so far, and the samples of each call known to be staged on its blob.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from devstack.testkit.audio import speech, with_silence
from recorder_vm.media.base import FRAME_SAMPLES, FRAME_TICKS, AudioFrame
from tests.recorder.capture_rig import CaptureRig, now_ticks

ROLL = 1997


def _write_json(path: Path, value: object) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(value))
    temporary.replace(path)


def main(connection_string: str, container: str, state_dir: str, calls: int) -> None:
    state = Path(state_dir)
    line = speech("Buy two thousand at forty two, and confirm the fill before the close of the market today.")
    source = with_silence(line, 0.4, line, 0.4, line, 0.4, line)
    np.save(state / "source.npy", source)
    rig = CaptureRig(connection_string, container, state / "spill")
    captures = [rig.capture() for _ in range(calls)]
    audio = [np.roll(source, call * ROLL).tobytes() for call in range(calls)]
    start = now_ticks()
    for capture in captures:
        capture.start(allowed_from_ticks=start)
    _write_json(
        state / "calls.json",
        [
            {
                "recording_id": c.recording_id,
                "call_id": c.call_id,
                "blob_name": c.blob_name,
                "manifest_blob_name": c.manifest_blob_name,
            }
            for c in captures
        ],
    )
    frame_bytes = FRAME_SAMPLES * 2
    frames = len(source) // FRAME_SAMPLES
    began = time.perf_counter()
    for n in range(frames):
        wait = began + n * 0.02 - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        for capture, pcm in zip(captures, audio, strict=True):
            capture.on_audio(AudioFrame(0, start + n * FRAME_TICKS, pcm[n * frame_bytes : (n + 1) * frame_bytes]))
        staged = [c.mixed.staged_samples if c.mixed is not None else 0 for c in captures]
        _write_json(state / "status.json", {"sent": n + 1, "staged_samples": staged})
    time.sleep(3600)  # the test kills the process before the audio runs out


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
