"""The MP4 replay copies of a recording with video: what one MP4 per stream (the player's camera switch: the call's
audio with that stream alone) costs beside the one MP4 of every stream that was made before, both remuxed by PyAV
without decoding or encoding (`verbatim.evidence.video`).

A `--seconds` call with a screen share (for its middle half) and `--cameras` cameras (all of it) is staged as the
recorder leaves it (real FLAC speech, real H.264 from libx264 with the simulator's test patterns, timestamp NAL units,
blocks) in memory, finalised, given its Opus access copy; then, alternated in this process so both see the same
machine, each run remuxes the combined MP4 alone (the baseline, what sealing did before) and the combined MP4 plus
one MP4 per stream (what it does now). Prints per run the CPU time (this process) of each, then the median and
spread of each as x real time per core and of the added CPU in %, the bytes of each copy per recorded hour, and the
load average.

    .venv/bin/python benchmarks/video_remux.py [--seconds 300] [--cameras 4] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devstack.testkit.captures import speech, stage_capture, stage_video
from verbatim.contracts.evidence import VideoEvidenceTrack
from verbatim.evidence import access_copy
from verbatim.evidence.finalise import finalise
from verbatim.evidence.video import _mux_to_bytes, finalise_video, ticks_of
from verbatim.platform.blobs import InMemoryBlobStore

RECORDING = "bench-remux"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    captures, recordings, scratch = InMemoryBlobStore("captures"), InMemoryBlobStore("recordings"), InMemoryBlobStore()
    started = time.monotonic()
    staged = stage_capture(captures, RECORDING, speech(args.seconds))
    staged = stage_video(captures, staged, start=args.seconds / 4, end=args.seconds * 3 / 4)
    for camera in range(args.cameras):
        staged = stage_video(
            captures, staged, kind="camera", source_id=40_000 + camera, participant_id=f"p{camera}", end=args.seconds
        )
    manifest = staged.manifest
    assert manifest.started_at is not None
    origin = ticks_of(manifest.started_at)
    (mixed,) = finalise(captures, recordings, manifest, recording_id=RECORDING)
    plans = access_copy.plan_access_copy(mixed, 600)
    chunks = [access_copy.encode_access_chunk(recordings, scratch, RECORDING, mixed, plan) for plan in plans]
    audio = access_copy.assemble_access_copy(recordings, scratch, RECORDING, mixed, chunks)
    videos = finalise_video(
        captures, recordings, manifest.video_tracks, recording_id=RECORDING, generation=0, part=0, origin_ticks=origin
    )
    groups: list[list[VideoEvidenceTrack]] = [[video] for video in videos]  # screen share first, as sealing orders
    print(
        f"staged and finalised {args.seconds:.0f} s: audio + screen share + {args.cameras} cameras "
        f"in {time.monotonic() - started:.1f} s"
    )

    combined_cpu: list[float] = []
    both_cpu: list[float] = []
    sizes: dict[str, int] = {}
    for run in range(args.runs):
        for what in ("combined", "combined+streams") if run % 2 == 0 else ("combined+streams", "combined"):
            before = time.process_time()
            body, _ = _mux_to_bytes(recordings, groups, audio, origin)
            sizes["combined"] = len(body)
            if what == "combined+streams":
                for group in groups:
                    stream_body, _ = _mux_to_bytes(recordings, [group], audio, origin)
                    sizes[group[0].track] = len(stream_body)
            spent = time.process_time() - before
            (combined_cpu if what == "combined" else both_cpu).append(spent)
            print(f"run {run + 1} {what:>17}: {spent * 1000:7.1f} ms CPU")

    def spread(values: list[float]) -> str:
        return f"{statistics.median(values):.0f}x ({min(values):.0f}-{max(values):.0f})"

    print(f"\nrecorded call: {args.seconds:.0f} s, {len(groups)} video streams, Opus access copy {audio.bytes} bytes")
    print(f"combined MP4 alone (before):         {spread([args.seconds / c for c in combined_cpu])} real time per core")
    print(f"combined + one MP4 per stream (now): {spread([args.seconds / c for c in both_cpu])} real time per core")
    added = [100 * (b - c) / c for b, c in zip(both_cpu, combined_cpu, strict=True)]
    print(f"added CPU: {statistics.median(added):.0f} % ({min(added):.0f}-{max(added):.0f})")
    hour = 3600 / args.seconds
    for name, size in sizes.items():
        print(f"  {name:>14}: {size * hour / 1e6:7.1f} MB per recorded hour")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
