"""A recording deleted under retention is read through the API as deleted: its media answers 404 problem+json
saying so, its detail names the deletion certificate — and neither reports its absent objects as tampering (no
`evidence.tampered` security event), which they were before."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from devstack.testkit.records import T0
from functions import compliance_api
from tests.api.conftest import request
from tests.api.world import World, seal_recording
from tests.callrecords.helpers import handler
from tests.callrecords.oidc import OpenIdProvider
from verbatim.platform import layout
from verbatim.wiring import Container, container_for

detail = handler(compliance_api.get_recording)
media = handler(compliance_api.get_recording_media)
AUDITOR = {"roles": ["Compliance.Auditor"], "oid": "auditor-deleted", "name": "Avery Auditor"}


def security_events(world: World, recording_id: str) -> list[dict[str, Any]]:
    audit = container_for(world.settings).cosmos(layout.AUDIT)
    return list(
        audit.query_items(
            "SELECT * FROM c WHERE c.category = 'security' AND c.action = 'evidence.tampered' AND c.target = @t",
            parameters=[{"name": "@t", "value": f"recording:{recording_id}"}],
            enable_cross_partition_query=True,
        )
    )


def test_a_deleted_recording_answers_as_deleted_not_as_tampered(world: World, provider: OpenIdProvider) -> None:
    sealed = seal_recording(world.settings, seconds=3.0, started_at=T0 + timedelta(hours=7))
    rid = sealed.recording_id
    later = Container(world.settings, clock=lambda: T0 + timedelta(days=1828))  # past the default class's 1,827 days
    outcome = later.retention.deleter.delete(rid, reason="retention_expired", actor="retention-sweep:test")
    assert outcome.certificate is not None
    token = provider.mint(**AUDITOR)
    headers = {"X-Access-Reason": "case 8: deleted recording"}

    for copy in ("access", "evidence"):
        answer = media(
            request(
                "v1/recordings/x/media", token=token, route_params={"id": rid}, params={"copy": copy}, headers=headers
            )
        )
        assert answer.status_code == 404 and answer.mimetype == "application/problem+json"
        assert "deleted under retention" in json.loads(answer.get_body())["detail"]

    shown = detail(request("v1/recordings/x", token=token, route_params={"id": rid}, headers=headers))
    assert shown.status_code == 200
    body = json.loads(shown.get_body())
    assert body["recording"]["status"] == "deleted" and body["integrity"] != "tampered"
    assert f"deleted under retention (deletion certificate: ledger entry {outcome.certificate.seq})" in body["problems"]
    assert security_events(world, rid) == []
