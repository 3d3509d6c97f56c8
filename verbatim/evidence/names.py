"""Where everything of a recording lives, derived on the server from the recording id and the layout — never
taken from a message.

Two containers of the recordings account:

- `captures` (`CAPTURES_CONTAINER`): the recorder's staging area, the only container its identity may write.
  One folder per recording and **capture generation**: `<recording id>/g<generation>/audio.flac` (the mixed
  track), `source-<id>.flac` (unmixed tracks), `capture.json` (the recorder's capture manifest). Generation 0
  is the first capture; when the lifecycle salvages a generation it fences it (breaks the recorder's blob
  leases), and a recorder that was alive after all writes what follows into generation 1, and so on.
- `recordings` (`RECORDINGS_CONTAINER`): the sealed evidence, WORM in Azure, written only by the Function
  App, each name once. Part 0 (the first capture) directly under `<recording id>/`, each continuation under
  `<recording id>/part-<n>/`: `audio.flac`, `source-<id>.flac`, `capture.json` (the capture manifest that was
  sealed), `access.opus` (the replay copy of the whole recording so far) and `manifest.json`.

Recorder events still name their blobs (contract v1); the lifecycle only checks that those names are the
recording's own (`check_event_paths`) and rejects the event otherwise. The container an event names is ignored.
"""

from __future__ import annotations

import re

from verbatim.platform.errors import InvalidInput

MIXED_TRACK = "mixed"
MIXED_FILE = "audio.flac"
CAPTURE_MANIFEST = "capture.json"
# Written by the lifecycle into a capture generation before it salvages it: a recorder taking a new lease there
# finds it and goes on in the next generation (recorder_vm.capture.storage).
FENCE_MARKER = "fenced"
SEALED_MANIFEST = "manifest.json"
ACCESS_COPY = "access.opus"
PAIR_MANIFEST_PREFIX = "pair-"
MAX_GENERATION = 999

RECORDING_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
TRACK = re.compile(r"^(mixed|source-[0-9]{1,10}|video-[0-9]{1,10}|screen-[0-9]{1,10})$")
# Video streams (camera: `video-<source id>`, screen share: `screen-<source id>`) are H.264 byte streams.
VIDEO_TRACK = re.compile(r"^(video|screen)-[0-9]{1,10}$")
VIDEO_SUFFIX = ".h264"
ACCESS_VIDEO = "access.mp4"
# The access-copy manifest: the part's access copies, sealed after its evidence (recording manifest v2).
ACCESS_MANIFEST = "access.json"
# Recordings sealed before the captures container: `<yyyy>/<mm>/<dd>/<recording id>/<file>`.
_LEGACY_FOLDER = re.compile(r"^(?P<folder>[0-9]{4}/[0-9]{2}/[0-9]{2}/(?P<id>[A-Za-z0-9][A-Za-z0-9-]{0,63})/)[^/]+$")


class ForeignPath(InvalidInput):
    """A message named a blob that is not the recording's own."""

    title = "Path outside the recording"


def check_recording_id(recording_id: str) -> str:
    """The id, when it can name a folder (letters, digits, hyphens; no separators, no dots)."""
    if not RECORDING_ID.fullmatch(recording_id):
        raise ForeignPath(f"{recording_id[:80]!r} is not a recording id", recording_id=recording_id[:80])
    return recording_id


def check_generation(generation: int) -> int:
    if not 0 <= generation <= MAX_GENERATION:
        raise ForeignPath(f"capture generation {generation} is out of range")
    return generation


def is_video_track(track: str) -> bool:
    return VIDEO_TRACK.fullmatch(track) is not None


def video_track(kind: str, source_id: int) -> str:
    """The track name of a camera (`video-<source id>`) or screen-share (`screen-<source id>`) stream."""
    return f"{'screen' if kind == 'screenShare' else 'video'}-{int(source_id)}"


def _file(track: str) -> str:
    if not TRACK.fullmatch(track):
        raise ForeignPath(f"{track[:40]!r} is not a track name")
    if track == MIXED_TRACK:
        return MIXED_FILE
    return f"{track}{VIDEO_SUFFIX}" if is_video_track(track) else f"{track}.flac"


# --- captures: the recorder's staging container -------------------------------------------------------------


def capture_folder(recording_id: str) -> str:
    """`<recording id>/`: every generation of the recording's capture."""
    return f"{check_recording_id(recording_id)}/"


def capture_prefix(recording_id: str, generation: int) -> str:
    """`<recording id>/g<generation>`: one capture generation."""
    return f"{check_recording_id(recording_id)}/g{check_generation(generation)}"


def capture_track_name(recording_id: str, generation: int, track: str = MIXED_TRACK) -> str:
    return f"{capture_prefix(recording_id, generation)}/{_file(track)}"


def capture_manifest_name(recording_id: str, generation: int) -> str:
    return f"{capture_prefix(recording_id, generation)}/{CAPTURE_MANIFEST}"


def capture_fence_name(recording_id: str, generation: int) -> str:
    return f"{capture_prefix(recording_id, generation)}/{FENCE_MARKER}"


def track_of_capture_name(recording_id: str, generation: int, name: str) -> str | None:
    """The track a capture blob of this generation holds (None for a name that is not one of its tracks)."""
    prefix = capture_prefix(recording_id, generation) + "/"
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix) :]
    if rest == MIXED_FILE:
        return MIXED_TRACK
    if rest.endswith(VIDEO_SUFFIX):
        stem = rest.removesuffix(VIDEO_SUFFIX)
        return stem if is_video_track(stem) else None
    stem = rest.removesuffix(".flac")
    return (
        stem
        if rest.endswith(".flac") and TRACK.fullmatch(stem) and stem != MIXED_TRACK and not is_video_track(stem)
        else None
    )


# --- recordings: the sealed evidence ------------------------------------------------------------------------


def sealed_folder(recording_id: str) -> str:
    """`<recording id>/`: every sealed part of the recording (what retention, holds and deletion act on)."""
    return f"{check_recording_id(recording_id)}/"


def sealed_prefix(recording_id: str, part: int) -> str:
    check_generation(part)
    base = check_recording_id(recording_id)
    return base if part == 0 else f"{base}/part-{part}"


def sealed_track_name(recording_id: str, part: int, track: str = MIXED_TRACK) -> str:
    return f"{sealed_prefix(recording_id, part)}/{_file(track)}"


def sealed_capture_manifest_name(recording_id: str, part: int) -> str:
    return f"{sealed_prefix(recording_id, part)}/{CAPTURE_MANIFEST}"


def sealed_manifest_name(recording_id: str, part: int) -> str:
    return f"{sealed_prefix(recording_id, part)}/{SEALED_MANIFEST}"


def access_copy_name(recording_id: str, part: int) -> str:
    return f"{sealed_prefix(recording_id, part)}/{ACCESS_COPY}"


def pair_manifest_name(recording_id: str, revision: str) -> str:
    """`<recording id>/pair-<revision>.json`: a pair manifest (verbatim.lifecycle.pairs) sealed beside the
    recording's own parts, so retention, holds and deletion treat it as the recording's."""
    if not re.fullmatch(r"[0-9a-f]{16}", revision):
        raise ForeignPath(f"{revision[:40]!r} is not a pair manifest revision")
    return f"{sealed_folder(recording_id)}{PAIR_MANIFEST_PREFIX}{revision}.json"


def pair_access_copy_name(recording_id: str, revision: str) -> str:
    """`<recording id>/pair-<revision>.opus`: the access copy of a pair's union of coverage (verbatim.lifecycle.
    pair_access), beside the pair manifest of the same revision in each member's folder."""
    if not re.fullmatch(r"[0-9a-f]{16}", revision):
        raise ForeignPath(f"{revision[:40]!r} is not a pair manifest revision")
    return f"{sealed_folder(recording_id)}{PAIR_MANIFEST_PREFIX}{revision}.opus"


def access_manifest_name(recording_id: str, part: int) -> str:
    """The access-copy manifest (`AccessCopyManifest`) of a part whose evidence was sealed without its copies."""
    return f"{sealed_prefix(recording_id, part)}/{ACCESS_MANIFEST}"


def video_access_copy_name(recording_id: str, part: int) -> str:
    """The MP4 replay copy (audio with the video streams) of a recording that has video."""
    return f"{sealed_prefix(recording_id, part)}/{ACCESS_VIDEO}"


def video_stream_copy_name(recording_id: str, part: int, track: str) -> str:
    """The MP4 replay copy of one video stream with the audio: `access-<track>.mp4` (`access-screen-<id>.mp4`,
    `access-video-<id>.mp4`) beside the part's evidence."""
    if not is_video_track(track):
        raise ForeignPath(f"{track[:40]!r} is not a video track name")
    return f"{sealed_prefix(recording_id, part)}/access-{track}.mp4"


def recording_folders(recording_id: str, sealed_names: list[str]) -> list[str]:
    """The folders that hold the recording's sealed objects: its own `<recording id>/`, and the date folder of a
    recording sealed before the captures container (`<yyyy>/<mm>/<dd>/<recording id>/`) when a sealed name of
    that exact shape, for this id, says so. Anything else a record names is ignored, never turned into a
    folder."""
    folders = [sealed_folder(recording_id)]
    for name in sealed_names:
        legacy = _LEGACY_FOLDER.fullmatch(name)
        if legacy and legacy.group("id") == recording_id and legacy.group("folder") not in folders:
            folders.append(legacy.group("folder"))
    return folders


# --- checking what messages say -----------------------------------------------------------------------------


def check_capture_name(recording_id: str, generation: int, name: str | None, *, what: str) -> None:
    """`ForeignPath` unless `name` (when given) is a blob of this recording's capture generation."""
    if name is None:
        return
    prefix = capture_prefix(recording_id, generation) + "/"
    if not name.startswith(prefix) or "/" in name[len(prefix) :] or name.endswith("/"):
        raise ForeignPath(
            f"{what} {name[:200]!r} is outside capture {prefix} of recording {recording_id}",
            recording_id=recording_id,
            blob=name[:200],
        )
