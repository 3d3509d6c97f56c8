"""H.264 evidence streams (verbatim.evidence.h264): each access unit kept byte for byte behind a timestamp SEI NAL
unit; the stream decodes, says when each frame was shown, and gives back exactly what was received."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from verbatim.contracts.recorder import VideoEncoding
from verbatim.evidence.h264 import (
    TIMESTAMP_UUID_TEXT,
    is_key_frame,
    stamped,
    stamped_units,
    strip_timestamps,
    timestamp_nal,
)


def _encoded(frames: int = 20, gop: int = 10) -> list[bytes]:
    codec = av.CodecContext.create("libx264", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width, codec.height, codec.pix_fmt = 64, 48, "yuv420p"
    codec.time_base = Fraction(1, 15)
    codec.options = {"preset": "ultrafast", "x264-params": f"keyint={gop}:min-keyint={gop}:bframes=0:scenecut=0"}
    codec.open()
    units: list[bytes] = []
    for index in range(frames):
        image = np.full((72, 64), (index * 9) % 255, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
        frame.pts = index
        units += [bytes(p) for p in codec.encode(frame)]
    units += [bytes(p) for p in codec.encode(None)]
    return units


def test_the_manifest_names_the_uuid_the_stream_carries() -> None:
    assert VideoEncoding().timestamp_uuid == TIMESTAMP_UUID_TEXT


def test_a_stamped_stream_gives_back_the_received_bytes_and_their_times() -> None:
    units = _encoded()
    stream = b"".join(stamped(unit, 17_000_000_000_000_000 + i * 666_667) for i, unit in enumerate(units))
    assert strip_timestamps(stream) == b"".join(units)
    found = stamped_units(stream)
    assert [u.ticks for u in found] == [17_000_000_000_000_000 + i * 666_667 for i in range(len(units))]
    assert [u.key for u in found] == [is_key_frame(unit) for unit in units]
    assert found[0].key and found[10].key and not found[1].key
    assert sum(u.size for u in found) == len(stream)


def _pictures(stream: bytes) -> list[bytes]:
    decoder = av.CodecContext.create("h264", "r")
    frames = [frame for packet in decoder.parse(stream) for frame in decoder.decode(packet)]
    return [bytes(frame.to_ndarray(format="gray")) for frame in frames]


def test_a_stamped_stream_decodes_like_the_received_one() -> None:
    units = _encoded()
    stream = b"".join(stamped(unit, 1 + i) for i, unit in enumerate(units))
    pictures = _pictures(stream)
    assert len(pictures) >= len(units) - 1  # the parser keeps the last unit until it sees the next start code
    assert pictures == _pictures(b"".join(units))


def test_a_cut_stream_still_says_when_each_whole_unit_was_shown() -> None:
    units = _encoded(6)
    stream = b"".join(stamped(unit, 100 * i) for i, unit in enumerate(units))
    cut = stream[: len(stream) - len(units[-1]) // 2]
    found = stamped_units(cut)
    assert [u.ticks for u in found] == [100 * i for i in range(len(units))]
    assert found[-1].offset + found[-1].size == len(cut)


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_a_timestamp_nal_never_needs_emulation_prevention(ticks: int) -> None:
    nal = timestamp_nal(ticks)[4:]
    assert b"\x00\x00" not in nal
    assert stamped_units(timestamp_nal(ticks))[0].ticks == ticks
