"""The frame-by-frame Opus encode the access copy's chunk encoder replaced (issue 22): the reference whose packets
`verbatim.evidence.opus.encode_chunk` must equal (tests/unit/test_opus_chunks.py) and the baseline it is measured
against (benchmarks/opus_encode.py)."""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt

from verbatim.evidence import opus


def frame_by_frame(plan: opus.ChunkPlan, samples: npt.NDArray[np.int16]) -> list[bytes]:
    """The encoder as it was fed before: one AudioFrame of 20 ms per call, the tail padded with silence; the
    packets of the plan, [first_packet, end_packet)."""
    context = opus._encoder(opus.DEFAULT_BITRATE)
    packets: list[bytes] = []
    for start in range(0, len(samples), opus.FRAME_SAMPLES):
        chunk = samples[start : start + opus.FRAME_SAMPLES]
        if len(chunk) < opus.FRAME_SAMPLES:
            chunk = np.pad(chunk, (0, opus.FRAME_SAMPLES - len(chunk)))
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = opus.SAMPLE_RATE
        frame.pts = plan.input_start + start
        packets.extend(bytes(packet) for packet in context.encode(frame))
    packets.extend(bytes(packet) for packet in context.encode(None))
    first = plan.input_start // opus.FRAME_SAMPLES
    end = None if plan.end_packet is None else plan.end_packet - first
    return packets[plan.first_packet - first : end]
