"""Issue 22: the evidence is sealed (and the verdict decided from it) before the access copy is made. Until the
access copy is sealed in its own right the API serves nothing of it: the media route answers 409 problem+json
with Retry-After and the detail says the copy is not ready; once sealed, the same request is served, checked
against the access-copy manifest's hashes."""

from __future__ import annotations

import json
from typing import Any

from functions import compliance_api
from tests.api.conftest import request
from tests.api.world import World, seal_access_copy, seal_recording
from tests.callrecords.helpers import handler
from tests.callrecords.oidc import OpenIdProvider

detail = handler(compliance_api.get_recording)
media = handler(compliance_api.get_recording_media)
OFFICER = {"roles": ["Compliance.Officer"], "oid": "officer-pending", "name": "Olivia Officer"}


def test_the_access_copy_answers_409_until_it_is_sealed_then_200(world: World, provider: OpenIdProvider) -> None:
    sealed = seal_recording(world.settings, seconds=6.0, access_copy=False)
    token = provider.mint(**OFFICER)

    def get() -> Any:
        return media(
            request(
                "v1/recordings/x/media",
                token=token,
                route_params={"id": sealed.recording_id},
                params={"copy": "access"},
                headers={"X-Access-Reason": "case 22: replay"},
            )
        )

    def links() -> dict[str, Any]:
        found = json.loads(
            detail(request("v1/recordings/x", token=token, route_params={"id": sealed.recording_id})).get_body()
        )
        assert found["integrity"] == "intact", found["integrityProblems"]
        media_links: dict[str, Any] = found["media"]
        return media_links

    before = links()
    assert before["accessReady"] is False and before["access"].endswith("/media?copy=access")
    pending = get()
    assert pending.status_code == 409
    assert pending.mimetype == "application/problem+json"
    assert pending.headers["Retry-After"] == "30"
    problem = json.loads(pending.get_body())
    assert problem["title"] == "Access copy not ready" and "being made" in problem["detail"]

    seal_access_copy(world.settings, sealed)

    after = links()
    assert after["accessReady"] is True
    served = get()
    assert served.status_code == 200 and served.headers["Content-Type"] == "audio/ogg"
    assert served.get_body() == sealed.access_bytes and sealed.access_bytes[:4] == b"OggS"
