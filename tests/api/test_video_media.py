"""A recording with video through the compliance API: the detail lists its camera and screen-share streams (in the
sealed manifest) and links the MP4 replay copy; the copy is served in bounded ranges to Officers and Auditors with
an access reason, never to an admin, and each read is in the ledger (docs/video.md)."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from devstack.simulator.video import pattern_rgb, read_timecode
from functions import compliance_api
from tests.api.conftest import request
from tests.api.world import World, seal_recording
from tests.callrecords.helpers import handler
from tests.callrecords.oidc import OpenIdProvider
from verbatim.wiring import container_for

detail = handler(compliance_api.get_recording)
media = handler(compliance_api.get_recording_media)
OFFICER = {"roles": ["Compliance.Officer"], "oid": "officer-video", "name": "Olivia Officer"}
ADMIN = {"roles": ["Recorder.Admin"], "oid": "admin-video", "name": "Ada Admin"}


def test_a_recording_with_video_lists_its_streams_and_serves_its_mp4_copy(
    world: World, provider: OpenIdProvider
) -> None:
    sealed = seal_recording(world.settings, seconds=6.0, video=True)
    token = provider.mint(**OFFICER)
    found = json.loads(
        detail(request("v1/recordings/x", token=token, route_params={"id": sealed.recording_id})).get_body()
    )
    (stream,) = found["manifest"]["video"]
    assert (stream["kind"], stream["source_id"], stream["participant_id"]) == ("screenShare", 30_001, "p1")
    assert stream["units"] > 0 and abs(stream["spans"][0]["start_seconds"] - 1.0) < 0.01
    assert found["media"]["video"].endswith("/media?copy=video")
    data = sealed.video_bytes
    assert data[4:8] == b"ftyp"

    def get(claims: dict[str, Any], range_header: str) -> Any:
        headers = {"Range": range_header, "X-Access-Reason": "case 9: screen share review"}
        return media(
            request(
                "v1/recordings/x/media",
                token=provider.mint(**claims),
                route_params={"id": sealed.recording_id},
                params={"copy": "video"},
                headers=headers,
            )
        )

    received = bytearray()
    while len(received) < len(data):
        part = get(OFFICER, f"bytes={len(received)}-")
        assert part.status_code == 206 and part.headers["Content-Type"] == "video/mp4"
        assert part.headers["Content-Disposition"].endswith('.mp4"')
        received += part.get_body()
    assert bytes(received) == data
    assert get(ADMIN, "bytes=0-").status_code == 403
    ledger = container_for(world.settings).reconciliation.ledger
    entries = ledger.entries_for_subject(f"recording:{sealed.recording_id}", limit=50)
    (read,) = [e for e in entries if e.kind == "accessed" and e.details["action"] == "media.video"]
    assert read.actor == "officer-video" and read.details["reason"] == "case 9: screen share review"


CAMERAS = [(30_002, "p1", 0.0, 6.0), (30_003, "p2", 2.0, 5.0)]


def _mp4_streams(data: bytes) -> list[tuple[str, str, int]]:
    with av.open(io.BytesIO(data)) as container:
        return [(s.type, s.codec_context.name, getattr(s.codec_context, "width", 0)) for s in container.streams]


def _first_frame(data: bytes) -> tuple[float, float, npt.NDArray[np.uint8]]:
    """The first decoded frame's time in the MP4, its burned-in timecode and its picture (RGB)."""
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(container.streams.video[0]):
            assert frame.time is not None
            return frame.time, read_timecode(frame.to_ndarray(format="gray")), frame.to_ndarray(format="rgb24")
    raise AssertionError("no video frame")


def test_each_video_stream_has_its_own_sealed_mp4_with_the_audio_served_by_stream_and_audited(
    world: World, provider: OpenIdProvider
) -> None:
    sealed = seal_recording(world.settings, seconds=6.0, video=True, cameras=CAMERAS)
    token = provider.mint(**OFFICER)
    found = json.loads(
        detail(request("v1/recordings/x", token=token, route_params={"id": sealed.recording_id})).get_body()
    )
    links = found["media"]["videoStreams"]
    # Screen shares first (the default picture), then the cameras.
    assert [(link["track"], link["kind"], link["participantId"]) for link in links] == [
        ("screen-30001", "screenShare", "p1"),
        ("video-30002", "camera", "p1"),
        ("video-30003", "camera", "p2"),
    ]
    # The copies are sealed after the evidence, by the access-copy manifest (recording manifest v2).
    assert found["manifest"]["video_access_copy"] is None
    copies = {copy["track"]: copy for copy in found["accessManifest"]["video_access_copy"]["streams"]}
    assert set(copies) == {"screen-30001", "video-30002", "video-30003"}
    # Its ledger entry names each stream copy's hash (what `verbatim verify` and exports check).
    entries = container_for(world.settings).reconciliation.ledger.entries_for_subject(
        f"recording:{sealed.recording_id}", limit=50
    )
    (access_sealed,) = [e for e in entries if e.kind == "access_copy.sealed"]
    sealed_streams = access_sealed.details["video_access_copy"]["streams"]  # type: ignore[index,call-overload]
    assert {s["track"]: s["sha256"] for s in sealed_streams} == {t: c["sha256"] for t, c in copies.items()}
    spans = {video["track"]: video["spans"][0] for video in found["manifest"]["video"]}

    def get(url: str, range_header: str = "bytes=0-", reason: str = "case 12: who was on camera") -> Any:
        _, _, query = url.partition("?")
        return media(
            request(
                "v1/recordings/x/media",
                token=token,
                route_params={"id": sealed.recording_id},
                params=dict(item.split("=", 1) for item in query.split("&")),
                headers={"Range": range_header, "X-Access-Reason": reason},
            )
        )

    for link in links:
        assert link["url"].endswith(f"/media?copy=video&stream={link['track']}")
        received = bytearray()
        while True:
            part = get(link["url"], f"bytes={len(received)}-")
            assert part.status_code == 206 and part.headers["Content-Type"] == "video/mp4"
            assert part.headers["Content-Disposition"].endswith(f'-{link["track"]}.mp4"')
            received += part.get_body()
            if len(received) >= copies[link["track"]]["bytes"]:
                break
        data = bytes(received)
        assert hashlib.sha256(data).hexdigest() == copies[link["track"]]["sha256"]
        # The call's audio and this one stream, nothing else: a browser plays exactly this picture.
        width = 1280 if link["kind"] == "screenShare" else 320
        assert _mp4_streams(data) == [("audio", "opus", 0), ("video", "h264", width)]
        # Its first picture is this stream's (its pattern's colour: the source it was burned in for) at the moment
        # it is placed at on the call's timeline.
        at, shown, picture = _first_frame(data)
        assert abs(at - spans[link["track"]]["start_seconds"]) < 0.01
        assert abs(shown - at) < 0.05, (shown, at)
        screen = link["kind"] == "screenShare"
        expected = np.array(pattern_rgb(f"source {link['sourceId']}", screen=screen), dtype=float)
        corner = picture[-8:, -8:].reshape(-1, 3).mean(axis=0)  # below and right of the moving bar's reach
        assert np.abs(corner - expected).max() < 12, (link["track"], corner, expected)
    ledger = container_for(world.settings).reconciliation.ledger
    entries = ledger.entries_for_subject(f"recording:{sealed.recording_id}", limit=100)
    reads = [e for e in entries if e.kind == "accessed" and e.details["action"] == "media.video"]
    assert {e.details.get("stream") for e in reads} == {"screen-30001", "video-30002", "video-30003"}
    assert all(e.details["reason"] == "case 12: who was on camera" for e in reads)

    # A stream the recording does not have: 404; a malformed one, or a stream of another copy: 400 (problem+json).
    base = f"/api/v1/recordings/{sealed.recording_id}/media"
    missing = get(f"{base}?copy=video&stream=video-99999")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    assert "video-30002" in json.loads(missing.get_body())["detail"]
    for query in ("copy=video&stream=..%2Fmanifest.json", "copy=video&stream=mixed", "copy=access&stream=video-30002"):
        bad = get(f"{base}?{query}")
        assert bad.status_code == 400 and bad.mimetype == "application/problem+json", query
