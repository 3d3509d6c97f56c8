"""A recording with video through the compliance API: the detail lists its camera and screen-share streams (in the
sealed manifest) and links the MP4 replay copy; the copy is served in bounded ranges to Officers and Auditors with
an access reason, never to an admin, and each read is in the ledger (docs/video.md)."""

from __future__ import annotations

import json
from typing import Any

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
