"""Encoding the access copy: Opus at speech bitrate, in chunks that can run in parallel and still join into
one seamless stream.

Every packet of a single-pass encode has a fixed place: packet n decodes to the audio of input frame n,
delayed by the encoder's pre-skip. A chunk encoder started at a frame boundary therefore produces packets
that take exactly the places of the single-pass packets; it starts a little early (warm-up) so its first
kept packet is coded with a settled encoder state, and the packets of the warm-up are dropped.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000
FRAME_SAMPLES = 320  # 20 ms: the frame duration the encoder is set to
DEFAULT_BITRATE = 16_000  # speech: ~7 MB per recorded hour, well under the 12 MB budget
WARMUP_FRAMES = 10
_CHUNK_MAGIC = b"VOPK1"


@dataclass(frozen=True)
class ChunkPlan:
    """One chunk of the access copy: the packets [first_packet, end_packet) it must produce (end None =
    to the end of the stream), and the input samples [input_start, input_end) it encodes for that."""

    index: int
    first_packet: int
    end_packet: int | None
    input_start: int
    input_end: int


def plan_chunks(total_samples: int, chunk_seconds: int) -> list[ChunkPlan]:
    """Split a recording of `total_samples` into chunks of about `chunk_seconds` each."""
    per_chunk = max(1, chunk_seconds * SAMPLE_RATE // FRAME_SAMPLES)
    frames = max(1, math.ceil(total_samples / FRAME_SAMPLES))
    count = math.ceil(frames / per_chunk)
    plans = []
    for index in range(count):
        first = index * per_chunk
        last_chunk = index == count - 1
        end = None if last_chunk else first + per_chunk
        input_start = max(0, (first - WARMUP_FRAMES) * FRAME_SAMPLES)
        # One extra frame past the end: the packets we keep are then never the encoder's last ones.
        input_end = total_samples if end is None else min(total_samples, (end + 1) * FRAME_SAMPLES)
        plans.append(ChunkPlan(index, first, end, input_start, input_end))
    return plans


@dataclass(frozen=True)
class EncodedChunk:
    index: int
    first_packet: int
    pre_skip: int  # at 48 kHz, from the encoder's OpusHead
    packets: list[bytes]


def _encoder(bitrate: int) -> av.AudioCodecContext:
    context = av.CodecContext.create("libopus", "w")
    assert isinstance(context, av.AudioCodecContext)
    context.sample_rate = SAMPLE_RATE
    context.layout = "mono"
    context.format = "s16"
    context.bit_rate = bitrate
    # Constrained VBR keeps every hour close to the budget whatever the content.
    context.options = {"application": "voip", "frame_duration": "20", "vbr": "constrained"}
    context.open()
    return context


def encode_chunk(plan: ChunkPlan, samples: npt.NDArray[np.int16], *, bitrate: int = DEFAULT_BITRATE) -> EncodedChunk:
    """Encode `samples` (= input samples plan.input_start .. plan.input_end) and keep the plan's packets."""
    if plan.input_start % FRAME_SAMPLES:
        raise ValueError("a chunk must start on a frame boundary")
    context = _encoder(bitrate)
    packet_index = plan.input_start // FRAME_SAMPLES
    kept: list[bytes] = []

    def keep(packets: Iterable[av.Packet[Any]]) -> None:
        nonlocal packet_index
        for packet in packets:
            if packet_index >= plan.first_packet and (plan.end_packet is None or packet_index < plan.end_packet):
                kept.append(bytes(packet))
            packet_index += 1

    # One encoder call for the whole chunk: PyAV cuts the frame into the encoder's 20-ms frames itself (the
    # packets are the same as when it is fed frame by frame), without a Python iteration and an AudioFrame per
    # 20 ms. The tail is padded to a whole frame, as the encoder would otherwise be given a short last frame;
    # the end trim removes the padding again.
    tail = len(samples) % FRAME_SAMPLES
    if tail:
        samples = np.pad(samples, (0, FRAME_SAMPLES - tail))
    if len(samples):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = plan.input_start
        keep(context.encode(frame))
    keep(context.encode(None))
    extradata = bytes(context.extradata or b"")
    pre_skip = struct.unpack_from("<H", extradata, 10)[0] if extradata.startswith(b"OpusHead") else 312
    expected = None if plan.end_packet is None else plan.end_packet - plan.first_packet
    if expected is not None and len(kept) != expected:
        raise RuntimeError(f"chunk {plan.index}: encoded {len(kept)} packets, expected {expected}")
    return EncodedChunk(plan.index, plan.first_packet, pre_skip, kept)


def pack_chunk(chunk: EncodedChunk) -> bytes:
    """The chunk as bytes for scratch storage between the chunk activities and the concatenation."""
    header = _CHUNK_MAGIC + struct.pack("<IQHI", chunk.index, chunk.first_packet, chunk.pre_skip, len(chunk.packets))
    return header + b"".join(struct.pack("<H", len(p)) + p for p in chunk.packets)


def unpack_chunk(data: bytes) -> EncodedChunk:
    if not data.startswith(_CHUNK_MAGIC):
        raise ValueError("not an encoded access-copy chunk")
    position = len(_CHUNK_MAGIC)
    index, first_packet, pre_skip, count = struct.unpack_from("<IQHI", data, position)
    position += struct.calcsize("<IQHI")
    packets = []
    for _ in range(count):
        (length,) = struct.unpack_from("<H", data, position)
        packets.append(data[position + 2 : position + 2 + length])
        position += 2 + length
    return EncodedChunk(index, first_packet, pre_skip, packets)
