"""The compliance API through its triggers, against the emulators and a real sealed recording: search with
filters and paging, recording detail with the sealed manifest and its ledger proof, media with HTTP Range,
verdicts, signed reports, ledger and audit; roles enforced and every read recorded in the ledger."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from openapi_spec_validator import validate

from devstack.testkit.records import SALES, TRADER
from functions import calls_api, compliance_api, exports, reconciliation
from tests.api.conftest import request
from tests.api.world import PSTN, World
from tests.callrecords.helpers import handler
from tests.callrecords.oidc import OpenIdProvider
from verbatim.api.openapi import openapi_document
from verbatim.contracts.policy import CoverageReport, PolicyUser
from verbatim.ledger.log.service import TransparencyLog
from verbatim.platform import clients
from verbatim.policy.coverage import CoverageState
from verbatim.policy.stores import CosmosCoverageStateStore
from verbatim.wiring import container_for

search = handler(compliance_api.search_recordings)
detail = handler(compliance_api.get_recording)
media = handler(compliance_api.get_recording_media)
verdicts = handler(compliance_api.search_verdicts)
reports = handler(compliance_api.list_reports)
report = handler(compliance_api.get_report)
ledger_read = handler(compliance_api.read_ledger)
audit_read = handler(compliance_api.read_audit)
openapi = handler(compliance_api.openapi)
me = handler(compliance_api.me)
live = handler(compliance_api.live_calls)
coverage_users = handler(compliance_api.coverage_users)
run_report = handler(reconciliation.run_completeness_report)

OFFICER = {"roles": ["Compliance.Officer"], "oid": "officer-1", "name": "Olivia Officer"}
AUDITOR = {"roles": ["Compliance.Auditor"], "oid": "auditor-1", "name": "Adam Auditor"}
ADMIN = {"roles": ["Recorder.Admin"], "oid": "admin-1", "name": "Ada Admin"}


def body(response: Any) -> Any:
    return json.loads(response.get_body())


def ledger(world: World) -> TransparencyLog:
    return container_for(world.settings).reconciliation.ledger


def accessed(world: World, subject: str) -> list[Any]:
    entries = ledger(world).entries_for_subject(subject, limit=200)
    return [e for e in entries if e.kind == "accessed"]


def test_an_officer_finds_the_recording_by_phone_number_upn_and_verdict(world: World, provider: OpenIdProvider) -> None:
    token = provider.mint(**OFFICER)
    assert world.sealed is not None

    by_phone = body(search(request("v1/recordings", token=token, params={"participant": PSTN})))
    by_upn = body(search(request("v1/recordings", token=token, params={"observedUser": "Trader@Contoso.com"})))
    partial = body(search(request("v1/recordings", token=token, params={"verdict": "partial", "observedUser": SALES})))

    assert [item["id"] for item in by_phone["items"]] == [world.sealed.recording_id]
    assert [item["id"] for item in by_upn["items"]] == [world.sealed.recording_id]
    item = by_phone["items"][0]
    assert (item["verdict"], item["status"], item["hasAccessCopy"], item["direction"]) == (
        "recorded",
        "sealed",
        True,
        "outbound",
    )
    assert {i["id"] for i in partial["items"]} == {"syn-0", "syn-3"}  # the interrupted ones
    assert all(i["verdictReason"] == "recorder_crashed" for i in partial["items"])


def test_search_pages_with_continuation_tokens_newest_first_over_filters(
    world: World, provider: OpenIdProvider
) -> None:
    token = provider.mint(**OFFICER)
    params = {
        "observedUser": SALES,
        "from": "2025-03-03T00:00:00Z",
        "to": "2025-03-04T00:00:00Z",
        "callType": "peerToPeer",
        "limit": "2",
    }
    seen: list[str] = []
    pages = 0
    continuation = None
    while True:
        page = body(
            search(
                request(
                    "v1/recordings",
                    token=token,
                    params={**params, **({"continuation": continuation} if continuation else {})},
                )
            )
        )
        seen += [item["id"] for item in page["items"]]
        pages += 1
        continuation = page["continuation"]
        if not continuation:
            break
    assert seen == ["syn-4", "syn-3", "syn-2", "syn-1", "syn-0"] and pages >= 3  # syn-5 is a group call
    inbound = body(
        search(request("v1/recordings", token=token, params={**params, "direction": "inbound", "limit": "50"}))
    )
    assert [i["id"] for i in inbound["items"]] == ["syn-3", "syn-1"]
    bad = search(request("v1/recordings", token=token, params={"verdict": "great"}))
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"


def test_the_recording_detail_has_the_sealed_manifest_verdict_and_a_ledger_proof(
    world: World, provider: OpenIdProvider
) -> None:
    assert world.sealed is not None
    token = provider.mint(**OFFICER)
    response = detail(
        request(
            "v1/recordings/x",
            token=token,
            route_params={"id": world.sealed.recording_id},
            headers={"X-Access-Reason": "case 7"},
        )
    )

    assert response.status_code == 200
    found = body(response)
    assert found["proofStatus"] == "proven" and found["manifestMatchesLedger"] is True
    assert found["manifest"]["recording_id"] == world.sealed.recording_id
    assert found["sealedEntry"]["kind"] == "sealed" and found["proof"]["treeSize"] > found["sealedEntry"]["index"]
    assert found["proof"]["index"] == found["sealedEntry"]["index"] and found["proof"]["hashes"]
    (verdict,) = found["verdicts"]
    assert (verdict["userId"], verdict["verdict"]) == (TRADER, "recorded")
    assert found["media"]["access"].endswith("/media?copy=access") and found["media"]["evidence"] is None
    (entry,) = [
        e for e in accessed(world, f"recording:{world.sealed.recording_id}") if e.details["action"] == "recording.read"
    ]
    assert (entry.actor, entry.details["reason"], entry.details["actor_name"]) == (
        "officer-1",
        "case 7",
        "Olivia Officer",
    )
    missing = detail(request("v1/recordings/x", token=token, route_params={"id": "no-such-recording"}))
    assert missing.status_code == 404


def test_media_is_served_in_bounded_ranges_with_an_access_reason_and_recorded_once_per_hour(
    world: World, provider: OpenIdProvider
) -> None:
    assert world.sealed is not None
    rid, data = world.sealed.recording_id, world.sealed.access_bytes
    token = provider.mint(**{**OFFICER, "oid": "officer-media"})

    def get(range_header: str | None, reason: str | None = "case 7 replay", copy: str = "access") -> Any:
        headers = {k: v for k, v in {"Range": range_header, "X-Access-Reason": reason}.items() if v is not None}
        return media(
            request(
                "v1/recordings/x/media", token=token, route_params={"id": rid}, params={"copy": copy}, headers=headers
            )
        )

    no_reason = get("bytes=0-", reason=None)
    assert no_reason.status_code == 400 and "X-Access-Reason" in body(no_reason)["detail"]

    first = get("bytes=0-99")
    assert first.status_code == 206 and first.get_body() == data[:100]
    assert first.headers["Content-Range"] == f"bytes 0-99/{len(data)}" and first.headers["Content-Type"] == "audio/ogg"
    assert first.headers["Accept-Ranges"] == "bytes"

    rest = bytearray()
    offset = 0
    while offset < len(data):
        part = get(f"bytes={offset}-")
        assert part.status_code == 206 and len(part.get_body()) <= 8 * 1024
        rest += part.get_body()
        offset += len(part.get_body())
    assert bytes(rest) == data and rest[:4] == b"OggS"

    suffix = get("bytes=-10")
    assert suffix.get_body() == data[-10:]
    beyond = get(f"bytes={len(data)}-")
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(data)}"
    whole = get(None)
    assert whole.status_code == 200 and whole.get_body() == data  # small enough to send whole

    entries = [
        e
        for e in accessed(world, f"recording:{rid}")
        if e.actor == "officer-media" and e.details["action"] == "media.access"
    ]
    assert len(entries) == 1 and entries[0].details["reason"] == "case 7 replay"  # one per reader, reason and hour
    database = clients.cosmos_database(world.settings)
    records = list(
        database.get_container_client("audit").query_items(
            "SELECT * FROM c WHERE c.actor = 'officer-media' AND c.action = 'media.access'",
            enable_cross_partition_query=True,
        )
    )
    assert len(records) >= 4 and {r["detail"]["ledgerSeq"] for r in records} == {entries[0].seq}


def test_only_auditors_get_the_lossless_evidence_and_admins_get_no_media(
    world: World, provider: OpenIdProvider
) -> None:
    assert world.sealed is not None
    rid = world.sealed.recording_id

    def get(claims: dict[str, Any], copy: str) -> Any:
        headers = {"Range": "bytes=0-", "X-Access-Reason": "audit sample"}
        return media(
            request(
                "v1/recordings/x/media",
                token=provider.mint(**claims),
                route_params={"id": rid},
                params={"copy": copy},
                headers=headers,
            )
        )

    assert get(OFFICER, "evidence").status_code == 403
    evidence = get(AUDITOR, "evidence")
    assert evidence.status_code == 206 and evidence.headers["Content-Type"] == "audio/flac"
    assert evidence.get_body() == world.sealed.evidence_bytes[: len(evidence.get_body())]
    assert get(AUDITOR, "access").status_code == 206
    assert get(ADMIN, "access").status_code == 403 and get(ADMIN, "evidence").status_code == 403
    unauthenticated = media(request("v1/recordings/x/media", route_params={"id": rid}))
    assert unauthenticated.status_code == 401


def test_verdicts_list_the_call_nobody_recorded(world: World, provider: OpenIdProvider) -> None:
    token = provider.mint(**OFFICER)
    page = body(verdicts(request("v1/verdicts", token=token, params={"verdict": "missing"})))
    (missing,) = page["items"]
    assert (missing["callId"], missing["userId"], missing["reason"]) == (world.missing_call, SALES, "no_invitation")


def test_auditors_read_signed_reports_the_ledger_and_the_audit_trail_officers_do_not(
    world: World, provider: OpenIdProvider
) -> None:
    auditor, officer = provider.mint(**AUDITOR), provider.mint(**OFFICER)
    listed = body(reports(request("v1/reports/completeness", token=auditor)))
    assert listed["items"][0]["day"] == "2025-03-03"
    view = body(report(request("v1/reports/completeness/x", token=auditor, route_params={"day": "2025-03-03"})))
    counts = view["report"]["counts"]
    assert view["signatureValid"] is True and view["ledgerEntry"]["kind"] == "report.completeness"
    assert counts == {
        "expected": 8,
        "recorded": 5,
        "partial": 2,
        "missing": 1,
        "pending": 0,
        "explained": 0,
        "unexplained": 3,
    }
    assert {e["callId"] for e in view["report"]["exceptions"]} == {"syn-call-0", "syn-call-3", world.missing_call}

    assert (
        report(request("v1/reports/completeness/x", token=officer, route_params={"day": "2025-03-03"})).status_code
        == 403
    )
    assert report(request("v1/reports/completeness/x", token=auditor, route_params={"day": "March"})).status_code == 400

    page = body(ledger_read(request("v1/ledger", token=auditor, params={"subject": "report:completeness:2025-03-03"})))
    # The report was written, then read once by the auditor (the denied officer's attempt read nothing).
    assert [e["kind"] for e in page["entries"]] == ["report.completeness", "accessed"] and page["checkpoint"]
    assert page["entries"][1]["actor"] == "auditor-1"
    ranged = body(ledger_read(request("v1/ledger", token=auditor, params={"from": "1", "to": "3"})))
    assert [e["index"] for e in ranged["entries"]] == [1, 2, 3]
    today = datetime.now(UTC).date().isoformat()  # alerts are recorded when reconciliation ran
    trail = body(audit_read(request("v1/audit", token=auditor, params={"day": today, "category": "alert"})))
    assert {r["action"] for r in trail["items"]} == {"reconciliation.partial", "reconciliation.missing"}
    assert ledger_read(request("v1/ledger", token=officer)).status_code == 403


def test_a_report_changed_in_storage_no_longer_verifies(world: World, provider: OpenIdProvider) -> None:
    runtime = container_for(world.settings).reconciliation
    run = runtime.reporter.run(date(2025, 3, 4))
    stored = json.loads(runtime.reports.download_blob(run.blob).readall())
    stored["counts"]["recorded"] = 99  # someone improves the figures
    runtime.reports.upload_blob(run.blob, json.dumps(stored), overwrite=True)

    view = body(
        report(request("v1/reports/completeness/x", token=provider.mint(**AUDITOR), route_params={"day": "2025-03-04"}))
    )
    assert view["signatureValid"] is False


def test_admins_run_the_report_now_and_others_may_not(world: World, provider: OpenIdProvider) -> None:
    denied = run_report(request("v1/admin/reports/completeness", token=provider.mint(**AUDITOR), method="POST"))
    assert denied.status_code == 403
    done = run_report(
        request(
            "v1/admin/reports/completeness", token=provider.mint(**ADMIN), params={"day": "2025-03-03"}, method="POST"
        )
    )
    assert done.status_code == 201
    run = body(done)
    assert run["counts"]["expected"] == 8 and run["reevaluatedCalls"] == 3
    entry = ledger(world).entry(run["ledgerSeq"])
    assert entry is not None and entry.actor == "admin-1"


def test_me_names_the_token_and_its_roles_and_reads_nothing(world: World, provider: OpenIdProvider) -> None:
    before = ledger(world).size()
    answer = me(request("v1/me", token=provider.mint(**AUDITOR)))
    assert answer.status_code == 200
    assert body(answer) == {
        "subject": "auditor-1",
        "name": "Adam Auditor",
        "roles": ["Compliance.Auditor"],
        "application": False,
    }
    assert me(request("v1/me")).status_code == 401
    assert ledger(world).size() == before  # nothing appended: no read happened


def test_live_is_for_officers_and_auditors_recorded_and_bad_paging_is_a_400(
    world: World, provider: OpenIdProvider
) -> None:
    page = live(request("v1/live", token=provider.mint(**OFFICER), headers={"X-Access-Reason": "floor check"}))
    assert page.status_code == 200 and body(page)["items"] == [] and body(page)["checkedAt"]
    assert live(request("v1/live", token=provider.mint(**ADMIN))).status_code == 403
    bad = live(request("v1/live", token=provider.mint(**OFFICER), params={"limit": "²"}))
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"
    (entry,) = [e for e in accessed(world, "recordings:live") if e.actor == "officer-1"]
    assert (entry.details["action"], entry.details["reason"]) == ("live.read", "floor check")


def test_the_openapi_document_is_valid_and_names_every_v1_read_route(world: World) -> None:
    document = body(openapi(request("v1/openapi.json")))
    validate(document)
    assert document == json.loads(json.dumps(openapi_document()))
    routes = set()
    for module in (compliance_api, calls_api, reconciliation, exports):
        for name in dir(module):
            builder = getattr(module, name)
            function = getattr(builder, "_function", None)
            trigger = getattr(function, "_trigger", None) if function else None
            route = getattr(trigger, "route", None)
            if route and route.startswith("v1/") and route not in ("v1/openapi.json", "v1/dev/token"):
                # OpenAPI has no catch-all parameter: `{*path}` is documented as `{path}`.
                routes.add(route.removeprefix("v1").replace("{*", "{"))
    documented = set(document["paths"]) - set()
    assert routes - {"/admin/reconciliation/calls/{id}"} <= documented
    assert document["paths"]["/recordings/{id}/media"]["get"]["x-roles"] == ["Compliance.Officer", "Compliance.Auditor"]


def test_the_coverage_list_names_each_policy_user_with_their_calls_is_audited_and_refuses_bad_filters(
    world: World, provider: OpenIdProvider
) -> None:
    """The last audit's policy users beside the world's verdicts: the trader's call was recorded, the sales user's
    calls have gaps (interrupted recordings, a call nobody recorded), a third user had no call."""
    control = clients.cosmos_database(world.settings).get_container_client("control")
    states = CosmosCoverageStateStore(control)

    def member(user_id: str, upn: str) -> PolicyUser:
        return PolicyUser(
            user_id=user_id, user_principal_name=upn, must_record=True, groups=["g"], policy_name="P", records=True
        )

    audited = CoverageReport(
        audited_at=datetime(2025, 3, 4, tzinfo=UTC),
        source="test",
        must_record_groups=["g"],
        must_record_users=3,
        recorded_users=3,
        users=[member(SALES, "sales@contoso.com"), member(TRADER, "trader@contoso.com"), member("u-q", "q@x.com")],
    )
    states.save(CoverageState(last_run=audited.audited_at, last_report=audited))
    window = {"from": "2025-03-01T00:00:00Z", "to": "2025-03-08T00:00:00Z"}
    token = provider.mint(**OFFICER)

    answer = coverage_users(
        request("v1/policy/coverage/users", token=token, params=window, headers={"X-Access-Reason": "supervision"})
    )

    assert answer.status_code == 200
    page = body(answer)
    states_of = {item["userId"]: item["state"] for item in page["items"]}
    assert states_of == {SALES: "not_recorded", TRADER: "recorded", "u-q": "no_calls"}
    sales = next(item for item in page["items"] if item["userId"] == SALES)
    assert sales["gapCalls"] >= 1 and world.missing_call in [g["callId"] for g in sales["gaps"]]
    trader = next(item for item in page["items"] if item["userId"] == TRADER)
    assert world.sealed is not None and trader["lastRecording"]["recordingId"] == world.sealed.recording_id
    quiet = {**window, "state": "no_calls"}
    only = body(coverage_users(request("v1/policy/coverage/users", token=token, params=quiet)))
    assert [item["userId"] for item in only["items"]] == ["u-q"] and only["counts"] == page["counts"]

    (entry, *_) = [e for e in accessed(world, "policy:coverage") if e.actor == "officer-1"]
    assert (entry.details["action"], entry.details["reason"]) == ("coverage.users.read", "supervision")
    assert sorted(entry.details["results"]) == sorted([SALES, TRADER, "u-q"])

    assert coverage_users(request("v1/policy/coverage/users", token=provider.mint(**ADMIN))).status_code == 403
    for bad in ({"state": "asleep"}, {"from": "yesterday"}, {"from": "2025-01-01T00:00:00Z", **{"to": window["to"]}}):
        refused = coverage_users(request("v1/policy/coverage/users", token=token, params=bad))
        assert refused.status_code == 400 and refused.mimetype == "application/problem+json", bad
        assert body(refused)["detail"]
