"""The access copy of a pair through the compliance API (issue 21, docs/resilience.md): two recorder instances
recorded the same call leg for the same policy user; once both are sealed, the pair's access copy — the union of
what both captured — is sealed into each member's folder and pinned by each `paired` ledger entry. The recording
detail says the recording is one of a pair and links the union copy; `media?copy=pair` serves it only as the
ledger pinned it, to Officers and Auditors with an access reason, and records the read; a recording without a
pair, or whose pair is not sealed yet, gets a problem+json."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

import av

from devstack.testkit.records import T0, TRADER, UPNS
from functions import compliance_api
from tests.api.conftest import request
from tests.api.world import World, seal_recording
from tests.callrecords.helpers import handler
from tests.callrecords.oidc import OpenIdProvider
from verbatim.contracts.recorder import ObservedUser, RecordingStarted
from verbatim.evidence.capture import capture_prefix, manifest_blob_name, track_blob_name
from verbatim.lifecycle import activities
from verbatim.wiring import container_for

detail = handler(compliance_api.get_recording)
media = handler(compliance_api.get_recording_media)
OFFICER = {"roles": ["Compliance.Officer"], "oid": "officer-pair", "name": "Olivia Officer"}
ADMIN = {"roles": ["Recorder.Admin"], "oid": "admin-pair", "name": "Ada Admin"}
REASON = "case 21: both recorders"


def get_media(
    provider: OpenIdProvider, recording_id: str, claims: dict[str, Any], range_header: str = "bytes=0-", **params: str
) -> Any:
    headers = {"Range": range_header, "X-Access-Reason": REASON}
    return media(
        request(
            "v1/recordings/x/media",
            token=provider.mint(**claims),
            route_params={"id": recording_id},
            params={"copy": "pair", **params},
            headers=headers,
        )
    )


def read_detail(provider: OpenIdProvider, recording_id: str) -> Any:
    response = detail(request("v1/recordings/x", token=provider.mint(**OFFICER), route_params={"id": recording_id}))
    assert response.status_code == 200
    return json.loads(response.get_body())


def seconds_of(ogg: bytes) -> float:
    import io

    with av.open(io.BytesIO(ogg)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    return float(samples) / 48000


def test_each_member_of_a_sealed_pair_links_and_serves_the_union_copy_as_the_ledger_pinned_it(
    world: World, provider: OpenIdProvider
) -> None:
    chain = f"call-{uuid.uuid4().hex[:10]}"
    # recorder-1 captured 0-6 s; recorder-2 answered half a second later and captured 0.5-8.5 s: the union is 8.5 s
    first = seal_recording(world.settings, seconds=6.0, chain=chain, instance="recorder-1")
    second = seal_recording(
        world.settings, seconds=8.0, chain=chain, instance="recorder-2", started_at=T0 + timedelta(seconds=0.5)
    )
    ledger = container_for(world.settings).reconciliation.ledger
    copies = set()
    for mine, other in ((first, second), (second, first)):
        found = read_detail(provider, mine.recording_id)
        pair = found["pair"]
        assert pair is not None and pair["manifestIntact"] is True and pair["accessCopy"] is True
        assert {(m["recordingId"], m["recorderInstance"], m["thisRecording"]) for m in pair["members"]} == {
            (mine.recording_id, "recorder-1" if mine is first else "recorder-2", True),
            (other.recording_id, "recorder-2" if mine is first else "recorder-1", False),
        }
        assert abs(pair["unionSeconds"] - 8.5) < 0.05
        assert found["media"]["pair"].endswith("/media?copy=pair") and found["media"]["access"].endswith("copy=access")
        (paired,) = [
            e for e in ledger.entries_for_subject(f"recording:{mine.recording_id}", limit=50) if e.kind == "paired"
        ]
        assert pair["ledgerSeq"] == paired.seq and pair["accessCopySha256"] == paired.details["access_copy"]["sha256"]

        received = bytearray()
        while True:
            part = get_media(provider, mine.recording_id, OFFICER, f"bytes={len(received)}-")
            assert part.status_code == 206 and part.headers["Content-Type"] == "audio/ogg", part.get_body()[:300]
            received += part.get_body()
            if len(received) == int(part.headers["Content-Range"].split("/")[-1]):
                break
        assert hashlib.sha256(received).hexdigest() == paired.details["access_copy"]["sha256"]
        copies.add(bytes(received))
        reads = [
            e
            for e in ledger.entries_for_subject(f"recording:{mine.recording_id}", limit=200)
            if e.kind == "accessed" and e.details["action"] == "media.pair"
        ]
        assert reads and reads[-1].actor == "officer-pair" and reads[-1].details["reason"] == REASON
        assert reads[-1].details["pair_id"] == pair["pairId"]
    (union,) = copies  # the same copy in both folders
    assert abs(seconds_of(union) - 8.5) < 0.1  # longer than either capture: the union of both
    own = seconds_of(first.access_bytes)
    assert abs(own - 6.0) < 0.1  # each recording's own access copy is still its own capture

    assert get_media(provider, first.recording_id, ADMIN).status_code == 403
    bad = get_media(provider, first.recording_id, OFFICER, part="0")
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"


def test_a_union_copy_changed_in_storage_is_never_served(world: World, provider: OpenIdProvider) -> None:
    chain = f"call-{uuid.uuid4().hex[:10]}"
    first = seal_recording(world.settings, seconds=4.0, chain=chain, instance="recorder-1")
    seal_recording(world.settings, seconds=4.0, chain=chain, instance="recorder-2")
    name = read_detail(provider, first.recording_id)["pair"]["manifestBlob"].replace(".json", ".opus")
    blobs = container_for(world.settings).recording_blobs
    data = blobs.read(name)
    blobs.write(name, data[:-64] + bytes(64), overwrite=True)
    response = get_media(provider, first.recording_id, OFFICER)
    assert response.status_code == 409 and response.mimetype == "application/problem+json"


def test_a_recording_without_a_pair_or_with_its_pair_not_sealed_yet_gets_a_problem(
    world: World, provider: OpenIdProvider
) -> None:
    assert world.sealed is not None
    alone = read_detail(provider, world.sealed.recording_id)
    assert alone["pair"] is None and alone["media"]["pair"] is None
    response = get_media(provider, world.sealed.recording_id, OFFICER)
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert "not one of a pair" in json.loads(response.get_body())["detail"]

    # The other recorder of this call is still recording: the pair is not sealed, so neither is its union copy.
    chain = f"call-{uuid.uuid4().hex[:10]}"
    sealed = seal_recording(world.settings, seconds=4.0, chain=chain, instance="recorder-1")
    deps = container_for(world.settings).lifecycle
    recording = f"rec-{uuid.uuid4().hex[:10]}"
    activities.receive_event(
        deps,
        RecordingStarted(
            recording_id=recording,
            call_id="leg-still-recording",
            recorder_instance="recorder-2",
            event_id=uuid.uuid4().hex,
            occurred_at=T0,
            sequence=0,
            call_chain_id=chain,
            tenant_id="tenant-1",
            observed_user=ObservedUser(id=TRADER, upn=UPNS[TRADER], display_name="Tom Trader"),
            participants=[],
            direction="outbound",
            call_type="peerToPeer",
            recorder_app_id="app-recorder",
            recorder_version="1.0.0",
            started_at=T0,
            blob_container=world.settings.captures_container,
            blob_name=track_blob_name(capture_prefix(recording, 0)),
            manifest_blob_name=manifest_blob_name(capture_prefix(recording, 0)),
            heartbeat_interval_seconds=5.0,
        ),
    )
    assert read_detail(provider, sealed.recording_id)["pair"] is None
    pending = get_media(provider, sealed.recording_id, OFFICER)
    assert pending.status_code == 409 and pending.mimetype == "application/problem+json"
    assert "not sealed yet" in json.loads(pending.get_body())["detail"]
