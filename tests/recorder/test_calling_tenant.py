"""Finding 7 of issue 13: the recorder answers only calls of the tenants it is configured for. The Teams
platform signs every tenant's calling notifications with the same keys, so a valid signature alone says
nothing about whose call it is: the token's `tid` must be one of the configured tenants (GRAPH_TENANT_ID,
and RECORDER_TENANT_IDS for a recorder that serves several)."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx

from devstack.testkit.teams_platform import TENANT, CallRecord, FakePlatform
from tests.recorder.conftest import RecorderFactory, log_of

OTHER_TENANT = "0e1f2a3b-0000-4000-8000-00000000beef"


def _invite_with(platform: FakePlatform, url: str, token: str) -> tuple[int, CallRecord]:
    call_id = str(uuid.uuid4())
    record = platform._record(call_id)

    async def invite() -> int:
        return await platform.post(f"{url}/api/calling", platform.incoming_notification(call_id), token=token)

    status = platform.run(invite())
    return status, record


def test_a_validly_signed_invitation_of_another_tenant_is_refused_and_not_answered(
    platform: FakePlatform, start_recorder: RecorderFactory
) -> None:
    recorder = start_recorder()
    status, record = _invite_with(platform, recorder.url, platform.token(tid=OTHER_TENANT))
    assert status == 403
    # Nothing is answered or rejected on the foreign tenant's behalf, and nothing is recorded.
    platform.run(asyncio.sleep(1.0))
    assert record.answer is None and record.rejected is None
    assert not [r for r in platform.graph_requests if record.call_id in r]
    assert recorder.health().json()["active_calls"] == 0
    assert recorder.events() == []
    assert "calling token of a tenant this recorder does not serve" in log_of(recorder)
    assert OTHER_TENANT in log_of(recorder)  # the tenant is named, the token never


def test_the_configured_tenant_is_still_answered(platform: FakePlatform, start_recorder: RecorderFactory) -> None:
    recorder = start_recorder()
    status, record = _invite_with(platform, recorder.url, platform.token(tid=TENANT))
    assert status == 202
    platform.run(asyncio.wait_for(record.answer_event.wait(), 5.0))
    assert record.answer is not None


def test_recorder_tenant_ids_adds_tenants_and_the_tenant_claim_may_be_the_long_form(
    platform: FakePlatform, start_recorder: RecorderFactory
) -> None:
    recorder = start_recorder(RECORDER_TENANT_IDS=f"{OTHER_TENANT.upper()}, {TENANT}")
    claim = "http://schemas.microsoft.com/identity/claims/tenantid"
    status, record = _invite_with(platform, recorder.url, platform.token(tid=None, **{claim: OTHER_TENANT}))
    assert status == 202
    platform.run(asyncio.wait_for(record.answer_event.wait(), 5.0))
    assert record.answer is not None


def test_without_any_configured_tenant_every_call_is_refused(
    platform: FakePlatform, start_recorder: RecorderFactory
) -> None:
    recorder = start_recorder(GRAPH_TENANT_ID="")
    status, record = _invite_with(platform, recorder.url, platform.token())
    assert status == 403
    assert record.answer is None
    body = httpx.get(f"{recorder.url}/health", timeout=5).json()
    assert body["status"] == "not_ready" and body["checks"]["tenants"] == "none configured"
    assert json.dumps(body).count(TENANT) == 0
