"""Synthetic camera and screen-share video for simulated calls, encoded once per scenario with a real H.264 encoder
(libx264 through PyAV) and replayed on the call's media timeline (MEDIA_PROTOCOL.md, section 6).

What the platform delivers with `VideoColorFormat.H264` is whole access units in Annex-B form, SPS/PPS with every
IDR, no B-frames and no SEI (the media library's reference; docs/video.md): the encoder runs with `repeat-headers`,
no B-frames, and the SEI x264 writes about itself is removed.

Each frame is a test pattern: a colour of its own per participant, a bar that moves with time, and a **timecode
strip** along the top edge: 24 black/white cells giving the frame's position on the call's media timeline in
hundredths of a second, most significant bit first. `read_timecode` reads it back from a decoded frame, so a test can
check that a frame sampled from a recording shows the moment it claims to be; `pattern_rgb` gives the colour a
participant's pattern is painted in (seeded by their display name), so a test can tell whose picture it shows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

import av
import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from .calls.specs import ScenarioSpec

VideoKind = Literal["video", "vbss"]
TIMECODE_BITS = 24
MAX_CLIP_SECONDS = 600.0  # an open-ended camera or share (a call until hang-up) loops after this much


@dataclass(frozen=True)
class Profile:
    width: int
    height: int
    fps: Fraction
    gop_frames: int


# A camera at 320x180 (VideoFormat.H264_320x180_15Fps) with a key frame every second; a screen share at the frame
# rate Microsoft's sample requires for VBSS (1.875 fps; it asks for VideoFormat.H264_1920x1080_1_875Fps), at 1280x720
# here to keep the simulator's encoding cheap. A subscription starts at the sender's next key frame (MEDIA_PROTOCOL.md
# 6.3): a camera's come every second, and every screen-share frame is one, so a share is received from its start.
CAMERA = Profile(320, 180, Fraction(15), 15)
SCREEN = Profile(1280, 720, Fraction(15, 8), 1)


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    seconds: float  # position on the call's media timeline
    data: bytes  # one access unit, Annex B
    key: bool


@dataclass
class VideoClip:
    """One participant's camera or screen share over one interval of the call."""

    party: str
    kind: VideoKind
    start: float
    end: float
    frames: list[EncodedFrame] = field(default_factory=list)


def _colour(name: str) -> tuple[int, int, int]:
    digest = hashlib.sha256(name.encode()).digest()
    return (64 + digest[0] % 128, 64 + digest[1] % 128, 64 + digest[2] % 128)


def pattern_rgb(name: str, *, screen: bool) -> tuple[int, int, int]:
    """The background colour of a participant's camera (or screen share) pattern: whose picture a frame is."""
    return _colour(name + (":screen" if screen else ""))


def _cell(width: int) -> int:
    return max(4, width // (TIMECODE_BITS + 2))


def _background(profile: Profile, name: str, *, screen: bool) -> npt.NDArray[np.uint8]:
    """The still part of the pattern as one yuv420p plane stack (luma rows, then the chroma rows)."""
    height, width = profile.height, profile.width
    r, g, b = pattern_rgb(name, screen=screen)
    luma = int(0.257 * r + 0.504 * g + 0.098 * b + 16)
    cb = int(-0.148 * r - 0.291 * g + 0.439 * b + 128)
    cr = int(0.439 * r - 0.368 * g - 0.071 * b + 128)
    planes = np.empty((height * 3 // 2, width), dtype=np.uint8)
    planes[:height] = luma
    chroma = planes[height:].reshape(-1)
    chroma[: width * height // 4] = cb
    chroma[width * height // 4 :] = cr
    if screen:  # a "document": a few light lines
        for row in range(height // 3, height - 8, max(8, height // 12)):
            planes[row : row + 2, width // 10 : width * 9 // 10] = 200
    return planes


def pattern(
    profile: Profile, name: str, seconds: float, *, screen: bool, background: npt.NDArray[np.uint8] | None = None
) -> npt.NDArray[np.uint8]:
    """One yuv420p test-pattern frame at `seconds` into the call (luma plane on top, as PyAV's yuv420p arrays)."""
    height, width = profile.height, profile.width
    image = (background if background is not None else _background(profile, name, screen=screen)).copy()
    bar = max(4, width // 16)
    x = int((seconds * width / 4) % (width - bar))
    image[height // 3 : height, x : x + bar] = 235 if screen else 32
    cell = _cell(width)
    value = round(seconds * 100)
    for bit in range(TIMECODE_BITS):
        on = (value >> (TIMECODE_BITS - 1 - bit)) & 1
        image[0 : cell * 2, cell * (bit + 1) : cell * (bit + 2)] = 235 if on else 16
    return image


def read_timecode(luma: npt.NDArray[np.uint8]) -> float:
    """The timecode strip of a decoded frame's luma plane (height x width), in seconds."""
    width = luma.shape[1]
    cell = _cell(width)
    value = 0
    for bit in range(TIMECODE_BITS):
        centre = luma[cell // 2 : cell * 3 // 2, cell * (bit + 1) + cell // 4 : cell * (bit + 2) - cell // 4]
        value = (value << 1) | int(float(centre.mean()) > 128)
    return value / 100


def _strip_sei(unit: bytes) -> bytes:
    """Drop SEI NAL units (x264 writes one about itself; Teams' buffers carry none)."""
    out = bytearray()
    position = unit.find(b"\x00\x00\x01")
    starts: list[int] = []
    while position != -1:
        starts.append(position - 1 if position > 0 and unit[position - 1] == 0 else position)
        position = unit.find(b"\x00\x00\x01", position + 3)
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(unit)
        header = unit.find(b"\x00\x00\x01", start) + 3
        if unit[header] & 0x1F != 6:
            out += unit[start:end]
    return bytes(out)


def encode(profile: Profile, name: str, start: float, end: float, *, screen: bool) -> list[EncodedFrame]:
    """The frames of [start, end) of the call, encoded as one H.264 stream starting with a key frame."""
    codec = av.CodecContext.create("libx264", "w")
    assert isinstance(codec, av.VideoCodecContext)
    codec.width, codec.height = profile.width, profile.height
    codec.pix_fmt = "yuv420p"
    codec.time_base = 1 / profile.fps
    codec.framerate = profile.fps
    codec.gop_size = profile.gop_frames
    codec.max_b_frames = 0
    codec.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "x264-params": (
            f"keyint={profile.gop_frames}:min-keyint={profile.gop_frames}:scenecut=0:repeat-headers=1:bframes=0"
        ),
    }
    codec.open()
    count = max(1, int((min(end, start + MAX_CLIP_SECONDS) - start) * profile.fps))
    frames: list[EncodedFrame] = []
    packets: list[Any] = []
    background = _background(profile, name, screen=screen)
    for index in range(count):
        seconds = start + float(index / profile.fps)
        image = pattern(profile, name, seconds, screen=screen, background=background)
        frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
        frame.pts = index
        packets.extend(codec.encode(frame))
    packets.extend(codec.encode(None))
    for packet in packets:
        seconds = start + float((packet.pts or 0) / profile.fps)
        frames.append(EncodedFrame(seconds, _strip_sei(bytes(packet)), bool(packet.is_keyframe)))
    frames.sort(key=lambda f: f.seconds)
    return frames


def render_video(spec: ScenarioSpec, duration: float | None) -> list[VideoClip]:
    """Every camera and screen-share interval of a scenario, encoded (run it in a thread: it takes a moment)."""
    end_of_call = duration if duration is not None else MAX_CLIP_SECONDS
    clips: list[VideoClip] = []
    for party in spec.participants:
        name = party.display_name or party.user or party.guest or party.key
        for kind, intervals, profile in (("video", party.camera, CAMERA), ("vbss", party.screen_share, SCREEN)):
            for interval in intervals:
                end = min(interval.until if interval.until is not None else end_of_call, end_of_call)
                if end <= interval.at:
                    continue
                clip = VideoClip(party.key, kind, interval.at, end)  # type: ignore[arg-type]
                clip.frames = encode(profile, name, interval.at, end, screen=kind == "vbss")
                clips.append(clip)
    return clips
