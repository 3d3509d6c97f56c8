"""The retention HTTP triggers, called as the Functions host calls them, with bearer tokens from a real OpenID
provider: legal holds with four-eyes release, extension (and the refusal to shorten), deletion refused early or
under hold with the reason, the admin sweep and the timer, and the auditor's reports — roles enforced."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from functions import holds as hold_triggers
from functions import retention as triggers
from tests.callrecords.oidc import OpenIdProvider
from tests.retention.world import SALES, T0, TRADER, RetentionWorld, user_participant
from verbatim.contracts.evidence import EntryKind
from verbatim.contracts.retention import HoldRequest, Officer
from verbatim.wiring import use_container


def handler(builder: Any) -> Callable[[func.HttpRequest], func.HttpResponse]:
    function: Callable[[func.HttpRequest], func.HttpResponse] = builder._function.get_user_function()
    return function


def call(
    builder: Any,
    route: str,
    *,
    token: str | None,
    method: str = "GET",
    body: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
) -> func.HttpResponse:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    if body is not None:
        headers["content-type"] = "application/json"
    request = func.HttpRequest(
        method=method,
        url=f"http://localhost/api/{route}",
        headers=headers,
        params=params or {},
        route_params=route_params or {},
        body=json.dumps(body).encode() if body is not None else b"",
    )
    return handler(builder)(request)


def payload(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())


@pytest.fixture(autouse=True)
def _world_runtime(world: RetentionWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The triggers use the process's runtime: make it the test world's (simulated clock, capturing transport).
    use_container(world.container)
    yield
    use_container(None)


@pytest.fixture
def tokens(provider: OpenIdProvider) -> dict[str, str]:
    return {
        "officer_a": provider.mint(oid="officer-a", name="Olivia Officer", roles=["Compliance.Officer"]),
        "officer_b": provider.mint(oid="officer-b", name="Oscar Officer", roles=["Compliance.Officer"]),
        "auditor": provider.mint(oid="auditor-1", name="Ada Auditor", roles=["Compliance.Auditor"]),
        "admin": provider.mint(oid="admin-1", name="Rex Admin", roles=["Recorder.Admin"]),
    }


def test_four_eyes_release_of_a_legal_hold(world: RetentionWorld, tokens: dict[str, str]) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    only_trader = world.seal()
    with_sales = world.seal(others=[user_participant("p2", SALES[0], SALES[1])])
    world.clock.set(T0 + timedelta(days=5))
    create = hold_triggers.create_hold
    body = {"matterId": "M-7", "description": "Rates probe", "custodians": [TRADER[1]]}

    assert call(create, "v1/holds", token=tokens["auditor"], method="POST", body=body).status_code == 403
    no_scope = call(create, "v1/holds", token=tokens["officer_a"], method="POST", body={**body, "custodians": []})
    assert no_scope.status_code == 400 and no_scope.mimetype == "application/problem+json"
    first = payload(call(create, "v1/holds", token=tokens["officer_a"], method="POST", body=body))
    second = payload(
        call(
            create,
            "v1/holds",
            token=tokens["officer_b"],
            method="POST",
            body={**body, "matterId": "M-8", "custodians": [SALES[0]]},
        )
    )
    hold_id = first["hold"]["id"]
    assert sorted(first["application"]["newlyHeld"]) == sorted([only_trader.id, with_sales.id])
    assert second["application"]["newlyHeld"] == [with_sales.id]

    listed = payload(call(hold_triggers.list_holds, "v1/holds", token=tokens["auditor"], params={"status": "active"}))
    assert {h["id"] for h in listed["items"]} == {hold_id, second["hold"]["id"]}
    held = payload(call(hold_triggers.hold_recordings, "x", token=tokens["officer_a"], route_params={"id": hold_id}))
    assert sorted(r["recordingId"] for r in held["items"]) == sorted([only_trader.id, with_sales.id])

    release = {"reason": "matter closed"}
    route = {"id": hold_id}
    asked = call(
        hold_triggers.request_hold_release,
        "x",
        token=tokens["officer_a"],
        method="POST",
        body=release,
        route_params=route,
    )
    assert asked.status_code == 202 and payload(asked)["hold"]["status"] == "active"
    again = call(
        hold_triggers.request_hold_release,
        "x",
        token=tokens["officer_b"],
        method="POST",
        body=release,
        route_params=route,
    )
    assert again.status_code == 409
    own = call(
        hold_triggers.approve_hold_release,
        "x",
        token=tokens["officer_a"],
        method="POST",
        body=release,
        route_params=route,
    )
    assert own.status_code == 403 and "four-eyes" in payload(own)["detail"]
    assert world.runtime.holds.get(hold_id).status == "active"

    world.transport.requests.clear()
    approved = call(
        hold_triggers.approve_hold_release,
        "x",
        token=tokens["officer_b"],
        method="POST",
        body=release,
        route_params=route,
    )
    assert approved.status_code == 200
    result = payload(approved)
    assert result["hold"]["status"] == "released" and result["hold"]["releasedBy"]["subject"] == "officer-b"
    assert result["release"]["lifted"] == [only_trader.id]
    assert list(result["release"]["stillHeld"]) == [with_sales.id]
    # The blob legal hold is cleared only where no other hold applies.
    cleared = world.worm_requests(only_trader.id)
    assert len(cleared) == 3 and {r.headers["x-ms-legal-hold"] for r in cleared} == {"false"}
    assert world.worm_requests(with_sales.id) == []

    ledger = world.runtime.ledger
    entries = ledger.entries_for_subject(f"hold:{hold_id}")
    assert [e.kind for e in entries if e.kind == "accessed"] == ["accessed"]  # the officer's read of its recordings
    trail = [e for e in entries if e.kind != "accessed"]
    assert [e.kind for e in trail] == [EntryKind.HOLD_PLACED, "hold.release_requested", EntryKind.HOLD_RELEASED]
    assert trail[1].actor == "officer-a" and trail[2].actor == "officer-b"
    assert trail[2].details["requested_by"] == "officer-a" and trail[2].details["approved_by"] == "officer-b"
    assert TRADER[1] not in json.dumps(trail[0].details)  # custodians are committed to by hash only

    world.clock.set(T0 + timedelta(days=31))
    sweep = payload(call(triggers.run_retention_sweep, "x", token=tokens["admin"], method="POST"))
    assert sweep["deleted"] == [only_trader.id] and sweep["held"] == 1


def test_a_hold_on_listed_recordings_through_the_api_is_validated_and_released_by_four_eyes(
    world: RetentionWorld, tokens: dict[str, str]
) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    chosen, other = world.seal(), world.seal()
    world.clock.set(T0 + timedelta(days=5))
    create = hold_triggers.create_hold
    body = {"matterId": "M-ids", "description": "Two calls of a complaint", "recordingIds": [chosen.id]}
    before = len(world.runtime.holds.find())

    unknown = call(
        create,
        "v1/holds",
        token=tokens["officer_a"],
        method="POST",
        body={**body, "recordingIds": [chosen.id, "no-such-rec"]},
    )
    assert unknown.status_code == 400 and unknown.mimetype == "application/problem+json"
    assert "no-such-rec" in payload(unknown)["detail"] and payload(unknown)["unknownRecordingIds"] == ["no-such-rec"]
    for bad in (["has space"], [chosen.id, chosen.id], "not-a-list", [""]):
        refused = call(create, "v1/holds", token=tokens["officer_a"], method="POST", body={**body, "recordingIds": bad})
        assert refused.status_code == 400 and refused.mimetype == "application/problem+json", bad
    assert call(create, "v1/holds", token=tokens["auditor"], method="POST", body=body).status_code == 403
    assert len(world.runtime.holds.find()) == before  # nothing was placed by a refused request

    placed = call(create, "v1/holds", token=tokens["officer_a"], method="POST", body=body)
    assert placed.status_code == 201
    result = payload(placed)
    hold_id = result["hold"]["id"]
    assert result["hold"]["recordingIds"] == [chosen.id] and result["application"]["newlyHeld"] == [chosen.id]
    (placed_entry,) = [
        e for e in world.runtime.ledger.entries_for_subject(f"hold:{hold_id}") if e.kind == EntryKind.HOLD_PLACED
    ]
    assert placed_entry.details["recordings_by_id"] == 1 and placed_entry.details["custodians"] == 0

    route = {"id": hold_id}
    release = {"reason": "complaint closed"}
    asked = call(
        hold_triggers.request_hold_release,
        "x",
        token=tokens["officer_a"],
        method="POST",
        body=release,
        route_params=route,
    )
    assert asked.status_code == 202
    own = call(
        hold_triggers.approve_hold_release,
        "x",
        token=tokens["officer_a"],
        method="POST",
        body=release,
        route_params=route,
    )
    assert own.status_code == 403 and "four-eyes" in payload(own)["detail"]
    approved = call(
        hold_triggers.approve_hold_release,
        "x",
        token=tokens["officer_b"],
        method="POST",
        body=release,
        route_params=route,
    )
    assert approved.status_code == 200 and payload(approved)["release"]["lifted"] == [chosen.id]
    assert other.id not in json.dumps(payload(approved))


def test_extension_sends_the_immutability_request_and_shortening_is_refused(
    world: RetentionWorld, tokens: dict[str, str]
) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal()
    route = {"id": record.id}
    extend = triggers.extend_recording_retention
    later = (T0 + timedelta(days=400)).isoformat()
    world.transport.requests.clear()

    assert (
        call(
            extend,
            "x",
            token=tokens["auditor"],
            method="POST",
            body={"until": later, "reason": "r"},
            route_params=route,
        ).status_code
        == 403
    )
    done = call(
        extend,
        "x",
        token=tokens["officer_a"],
        method="POST",
        body={"until": later, "reason": "regulator asked"},
        route_params=route,
    )
    assert done.status_code == 200 and payload(done)["worm"] == "emulator-not-enforced"
    sent = world.worm_requests(record.id)
    assert len(sent) == 3 and all("comp=immutabilityPolicies" in r.url for r in sent)
    assert {r.headers["x-ms-immutability-policy-until-date"] for r in sent} == {"Tue, 07 Apr 2026 09:00:00 GMT"}
    assert {r.headers["x-ms-immutability-policy-mode"] for r in sent} == {"Unlocked"}
    assert world.record(record.id).seal.retention_until == T0 + timedelta(days=400)  # type: ignore[union-attr]

    earlier = (T0 + timedelta(days=100)).isoformat()
    refused = call(
        extend,
        "x",
        token=tokens["officer_a"],
        method="POST",
        body={"until": earlier, "reason": "oops"},
        route_params=route,
    )
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    assert "can only be extended" in payload(refused)["detail"]
    ledger = world.runtime.ledger
    kinds = [e.kind for e in ledger.entries_for_subject(f"recording:{record.id}")]
    assert kinds == [EntryKind.SEALED, EntryKind.RETENTION_EXTENDED]

    # A whole class: lengthened (its recordings follow, with the requests), never shortened.
    other = world.seal(started_at=T0 + timedelta(hours=2))
    world.transport.requests.clear()
    extend_class = triggers.extend_retention_class
    name = {"name": "cftc-oral"}
    shorter = call(
        extend_class, "x", token=tokens["officer_a"], method="POST", body={"days": 20, "reason": "x"}, route_params=name
    )
    assert shorter.status_code == 409 and "can only be extended" in payload(shorter)["detail"]
    longer = payload(
        call(
            extend_class,
            "x",
            token=tokens["officer_a"],
            method="POST",
            body={"days": 60, "reason": "CFTC asked"},
            route_params=name,
        )
    )
    assert longer["previousDays"] == 30 and longer["days"] == 60 and longer["recordingsExtended"] == 1
    assert world.record(other.id).seal.retention_until == T0 + timedelta(hours=2, days=60)  # type: ignore[union-attr]
    assert {r.headers["x-ms-immutability-policy-until-date"] for r in world.worm_requests(other.id)} == {
        "Fri, 02 May 2025 11:00:00 GMT"
    }
    classes = payload(call(triggers.list_retention_classes, "x", token=tokens["auditor"]))
    assert {c["name"]: c["days"] for c in classes["items"]}["cftc-oral"] == 60
    # Settings can no longer shorten it either.
    outcome = world.runtime.catalog.sync([c for c in world.settings.retention_classes])
    assert "cftc-oral" in outcome.refused and world.runtime.catalog.get("cftc-oral").days == 60

    world.clock.set(T0 + timedelta(days=31))
    report = payload(call(triggers.run_retention_sweep, "x", token=tokens["admin"], method="POST"))
    assert report["deleted"] == [] and world.record(record.id).status == world.record(other.id).status == "sealed"


def test_deleting_early_or_under_hold_is_refused_with_the_reason(world: RetentionWorld, tokens: dict[str, str]) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    world.assign_class(SALES[0], "cftc-oral")
    record = world.seal()
    held = world.seal(user=SALES)
    world.runtime.holds.create(
        HoldRequest(matter_id="M-9", description="d", custodians=[SALES[0]]), Officer(subject="officer-b")
    )
    delete = triggers.delete_recording
    body = {"reason": "client asked"}

    early = call(delete, "x", token=tokens["officer_a"], method="POST", body=body, route_params={"id": record.id})
    assert early.status_code == 409
    problem = payload(early)
    assert problem["title"] == "Refused by retention or legal hold"
    assert "retained until 2025-04-02T09:00:00.000000Z under retention class 'cftc-oral'" in problem["detail"]
    assert problem["decision"] == "retained"

    world.clock.set(T0 + timedelta(days=31))
    under_hold = call(delete, "x", token=tokens["officer_a"], method="POST", body=body, route_params={"id": held.id})
    assert under_hold.status_code == 409 and "under legal hold" in payload(under_hold)["detail"]
    assert (
        call(delete, "x", token=tokens["auditor"], method="POST", body=body, route_params={"id": record.id}).status_code
        == 403
    )

    status = payload(call(triggers.recording_retention, "x", token=tokens["auditor"], route_params={"id": record.id}))
    assert status["deletable"] is True and status["retentionClass"] == "cftc-oral"
    deleted = payload(
        call(delete, "x", token=tokens["officer_a"], method="POST", body=body, route_params={"id": record.id})
    )
    assert deleted["status"] == "deleted" and deleted["deletion"]["reason"] == "officer_request"
    assert "client asked" in deleted["deletion"]["rule"] and world.blobs_of(record.id) == []
    assert world.record(held.id).status == "sealed"


def test_auditors_read_the_retention_reports_and_officers_do_not(world: RetentionWorld, tokens: dict[str, str]) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    world.assign_class(SALES[0], "mifid2-extended")
    short = [world.seal(started_at=T0 + timedelta(days=i)) for i in range(3)]
    world.seal(user=SALES)
    world.runtime.holds.create(
        HoldRequest(matter_id="M-1", description="d", custodians=[TRADER[0]], until=T0 + timedelta(hours=12)),
        Officer(subject="officer-a"),
    )
    world.clock.set(T0 + timedelta(days=15))

    assert call(triggers.expiring_report, "x", token=tokens["officer_a"]).status_code == 403
    expiring = payload(call(triggers.expiring_report, "x", token=tokens["auditor"], params={"days": "17"}))
    assert [c["retentionClass"] for c in expiring["classes"]] == ["cftc-oral"]
    cftc = expiring["classes"][0]
    assert cftc["count"] == 2 and cftc["held"] == 1  # days 30 and 31 fall in [15, 32); day 32 does not
    assert [r["recordingId"] for r in cftc["recordings"]] == [short[0].id, short[1].id]
    assert call(triggers.expiring_report, "x", token=tokens["auditor"], params={"days": "0"}).status_code == 400

    holds = payload(call(triggers.holds_report, "x", token=tokens["auditor"]))
    assert holds["matters"][0]["matterId"] == "M-1" and holds["matters"][0]["recordingsHeld"] == 1

    world.clock.set(T0 + timedelta(days=40))
    call(triggers.run_retention_sweep, "x", token=tokens["admin"], method="POST")
    deletions = payload(
        call(
            triggers.deletions_report,
            "x",
            token=tokens["auditor"],
            params={"from": "2025-04-01T00:00:00Z", "to": "2025-05-01T00:00:00Z", "period": "day"},
        )
    )
    assert deletions["total"] == 2
    assert deletions["buckets"] == [
        {"periodStart": "2025-04-12", "count": 2, "byClass": {"cftc-oral": 2}, "byReason": {"retention_expired": 2}}
    ]
    assert call(triggers.deletions_report, "x", token=tokens["auditor"], params={"from": "x"}).status_code == 400


def test_the_sweep_timer_and_the_admin_trigger(world: RetentionWorld, tokens: dict[str, str]) -> None:
    world.assign_class(TRADER[0], "cftc-oral")
    record = world.seal()
    world.clock.set(T0 + timedelta(days=31))
    assert call(triggers.run_retention_sweep, "x", token=tokens["officer_a"], method="POST").status_code == 403
    preview = payload(
        call(triggers.run_retention_sweep, "x", token=tokens["admin"], method="POST", params={"dryRun": "true"})
    )
    assert preview["deleted"] == [record.id] and world.record(record.id).status == "sealed"

    timer = triggers.retention_sweep._function.get_user_function()
    timer(TimerRequest(past_due=False))
    assert world.record(record.id).status == "deleted"
