"""Streaming lossless encoder: 16 kHz 16-bit mono PCM in, a native FLAC byte stream out, piece by piece.

The stream starts with `fLaC` and the encoder's initial STREAMINFO, which carries no totals (total samples
0 = unknown, MD5 all zero): it never has to be rewritten, so the bytes can be staged as they are produced
and every prefix that ends on a FLAC frame decodes. FLAC frames are independent, have sync codes and CRCs,
and carry their position, which is what makes a cut stream (a crashed recorder) still playable.

A whole block's PCM goes to the codec in one call (PyAV cuts it into FLAC frames of `frame_samples`), so the
cost per block is one trip into C, not one per FLAC frame; the bytes are the same as frame by frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import av
import numpy as np

SAMPLE_RATE = 16000
BYTES_PER_SAMPLE = 2
STREAMINFO_HEADER = bytes([0x80, 0x00, 0x00, 0x22])  # last metadata block, type STREAMINFO, 34 bytes


@dataclass(frozen=True, slots=True)
class EncodedPiece:
    """Encoded bytes and the span of samples they carry."""

    data: bytes
    start_sample: int
    samples: int


class FlacStreamEncoder:
    def __init__(self, *, sample_rate: int = SAMPLE_RATE, compression_level: int = 5) -> None:
        codec = av.CodecContext.create("flac", "w")
        assert isinstance(codec, av.AudioCodecContext)
        codec.sample_rate = sample_rate
        codec.format = "s16"
        codec.layout = "mono"
        codec.options = {"compression_level": str(compression_level)}
        codec.open()
        self._codec: av.AudioCodecContext | None = codec
        self._frame_size = codec.frame_size or 1152
        extradata = codec.extradata
        if extradata is None or len(extradata) != 34:
            raise RuntimeError("the FLAC encoder did not provide a STREAMINFO block")
        self.header = b"fLaC" + STREAMINFO_HEADER + bytes(extradata)
        self._pending = bytearray()  # PCM not yet handed to the encoder (< one FLAC frame)
        self._fed = 0  # samples handed to the encoder
        self._finished = False

    @property
    def frame_samples(self) -> int:
        return self._frame_size

    @property
    def buffered_samples(self) -> int:
        return len(self._pending) // BYTES_PER_SAMPLE

    def encode(self, pcm: bytes) -> list[EncodedPiece]:
        """Add PCM (little-endian int16); returns the FLAC frames completed by it. One codec call for all the
        whole FLAC frames it completes (the codec cuts them); a partial frame waits for the next call."""
        if self._finished:
            raise RuntimeError("encoder already finished")
        step = self._frame_size * BYTES_PER_SAMPLE
        if self._pending:
            self._pending += pcm
            whole = len(self._pending) // step * step
            if not whole:
                return []
            ready = bytes(self._pending[:whole])
            del self._pending[:whole]
        else:
            whole = len(pcm) // step * step
            ready = pcm[:whole] if whole < len(pcm) else pcm
            if whole < len(pcm):
                self._pending += pcm[whole:]
            if not whole:
                return []
        return self._encode_samples(ready)

    def finish(self) -> list[EncodedPiece]:
        """Encode what is left (a short last frame) and flush; the stream is complete afterwards."""
        pieces: list[EncodedPiece] = []
        if self._pending:
            pieces.extend(self._encode_samples(bytes(self._pending)))
            self._pending.clear()
        pieces.extend(self._wrap(self._live().encode(None)))
        self._finished = True
        return pieces

    def close(self) -> None:
        """Free the codec now; nothing more can be encoded. libavcodec's FLAC encoder context is ~7 MiB of native
        memory (sized for 8 channels of 65,535-sample blocks), which the garbage collector neither sees nor counts:
        a capture's objects refer to one another (callbacks), so they are freed only by a full collection, and
        until then every ended call's encoder stayed allocated and a recorder's RSS grew with each call."""
        self._codec = None
        self._pending = bytearray()
        self._finished = True

    def _encode_samples(self, pcm: bytes) -> list[EncodedPiece]:
        codec = self._live()
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = codec.sample_rate
        frame.pts = self._fed
        self._fed += samples.shape[1]
        return self._wrap(codec.encode(frame))

    def _live(self) -> av.AudioCodecContext:
        if self._codec is None:
            raise RuntimeError("encoder already closed")
        return self._codec

    @staticmethod
    def _wrap(packets: list[Any]) -> list[EncodedPiece]:
        return [
            EncodedPiece(bytes(packet), int(packet.pts or 0), int(packet.duration or 0))
            for packet in packets
            if packet.size
        ]
