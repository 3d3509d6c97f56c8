"""The Graph client and the ingestion service against the Teams/Graph simulator: MSAL over the
simulator's TLS authority, paging of sessions (60) and participants_v2 (130), injected 429 / 503,
and Microsoft's documented call record ingested as Graph serves it."""

from __future__ import annotations

import copy
from typing import Any

from tests.callrecords.conftest import Simulator
from tests.callrecords.fixtures import documented_record
from tests.callrecords.helpers import drain
from verbatim.callrecords.fetch import fetch_call_record
from verbatim.contracts.callrecords import CallRecordNotification
from verbatim.graph import GraphNotFound
from verbatim.platform.settings import Settings
from verbatim.platform.times import format_datetime, utcnow
from verbatim.wiring import container_for


def big_meeting(record_id: str, people: int, sessions: int) -> dict[str, Any]:
    users = [f"00000000-0000-0000-0000-{n:012d}" for n in range(people)]
    return {
        "id": record_id,
        "version": 1,
        "type": "groupCall",
        "modalities": ["audio", "video"],
        "startDateTime": "2024-05-01T09:00:00Z",
        "endDateTime": "2024-05-01T10:00:00Z",
        "organizer_v2": {"id": users[0], "identity": {"user": {"id": users[0]}}},
        "participants_v2": [
            {"id": u, "identity": {"user": {"id": u, "displayName": f"User {n}"}}} for n, u in enumerate(users)
        ],
        "sessions": [
            {
                "id": f"{record_id}-{n}",
                "caller": {
                    "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
                    "identity": {"user": {"id": users[n % people]}},
                },
                "callee": {
                    "@odata.type": "#microsoft.graph.callRecords.serviceEndpoint",
                    "userAgent": {
                        "@odata.type": "#microsoft.graph.callRecords.serviceUserAgent",
                        "role": "conferencingServer",
                    },
                },
                "startDateTime": "2024-05-01T09:00:00Z",
                "endDateTime": "2024-05-01T10:00:00Z",
                "segments": [{"id": f"{record_id}-{n}-0", "media": []}],
            }
            for n in range(sessions)
        ],
    }


def test_the_graph_client_pages_sessions_and_participants_of_a_large_meeting(
    sim_env: Settings, simulator: Simulator
) -> None:
    simulator.put_record(big_meeting("meeting-300", people=300, sessions=130))
    graph = container_for(sim_env).callrecords.graph_for(simulator.tenant_id)

    raw = fetch_call_record(graph, "meeting-300")

    assert len(raw["sessions"]) == 130  # 60 + 60 + 10, via sessions@odata.nextLink
    assert len(raw["participants_v2"]) == 300  # 130 + 130 + 40
    assert len({p["identity"]["user"]["id"] for p in raw["participants_v2"]}) == 300
    assert graph.credentials.acquisitions == 1  # one token (MSAL over the simulator's TLS authority)


def test_injected_throttling_and_outages_are_retried_with_retry_after(sim_env: Settings, simulator: Simulator) -> None:
    simulator.put_record(big_meeting("busy", people=3, sessions=2))
    simulator.fault(
        kind="http", path="/v1.0/communications/callRecords/busy*", status=429, retryAfterSeconds=1, count=2
    )
    simulator.fault(kind="http", path="/v1.0/communications/callRecords/busy*", status=503, count=1)
    graph = container_for(sim_env).callrecords.graph_for(simulator.tenant_id)
    before = graph.retries

    raw = fetch_call_record(graph, "busy")

    assert raw["id"] == "busy" and len(raw["sessions"]) == 2
    assert graph.retries - before == 3


def test_an_unknown_record_is_graph_not_found(sim_env: Settings, simulator: Simulator) -> None:
    graph = container_for(sim_env).callrecords.graph_for(simulator.tenant_id)
    try:
        fetch_call_record(graph, "does-not-exist")
    except GraphNotFound as error:
        assert error.status == 404 and error.code == "NotFound"
    else:
        raise AssertionError("expected GraphNotFound")


def test_the_documented_call_record_served_by_the_simulator_is_ingested_and_handed_off(
    sim_env: Settings, simulator: Simulator
) -> None:
    documented = copy.deepcopy(documented_record())
    simulator.put_record(documented)
    drain(sim_env, "reconciliation-requests")
    runtime = container_for(sim_env).callrecords
    message = CallRecordNotification(
        call_record_id=documented["id"], tenant_id=simulator.tenant_id, first_seen_at=format_datetime(utcnow())
    )

    outcome = runtime.ingestor.ingest(message)

    assert (outcome.status, outcome.version, outcome.handed_off) == ("stored", 1, True)
    stored = runtime.store.get(documented["id"])
    assert stored is not None
    assert stored.organizer is not None and stored.organizer.display_name == "Abbie Wilkins"
    assert {p.display_name for p in stored.participants} == {"Abbie Wilkins", "Owen Franklin"}
    assert stored.sessions[0].quality.stream_count == 2 and stored.sessions[0].callee.feedback_rating == "poor"  # type: ignore[union-attr]
    (handoff,) = drain(sim_env, "reconciliation-requests")
    assert (handoff["schema"], handoff["callRecordId"], handoff["version"]) == (
        "callrecord.stored",
        documented["id"],
        1,
    )


def test_the_admin_trigger_pulls_pstn_and_direct_routing_rows_and_alerts_on_emergency_calls(
    sim_env: Settings, simulator: Simulator
) -> None:
    import json

    import azure.functions as func

    from functions import callrecords
    from tests.callrecords.fixtures import load
    from tests.callrecords.helpers import cosmos_items, handler

    pstn, dr = load("pstn-calls.json")["value"][0], load("direct-routing-calls.json")["value"][0]
    emergency = {**pstn, "id": "pstn-emergency", "calleeNumber": "+112", "startDateTime": "2019-11-20T10:00:00Z"}
    simulator.sim("POST", "/sim/pstnCalls", json={"value": [pstn, emergency]})
    simulator.sim("POST", "/sim/directRoutingCalls", json={"value": [dr]})
    pull = handler(callrecords.admin_pull_pstn)

    def request(token: str) -> func.HttpRequest:
        body = json.dumps({"from": "2019-11-01", "to": "2019-12-01"}).encode()
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        return func.HttpRequest(
            method="POST", url="http://localhost/api/v1/admin/pstn/pull", headers=headers, body=body
        )

    assert pull(request(simulator.user_token("Compliance.Officer"))).status_code == 403
    response = pull(request(simulator.user_token("Recorder.Admin")))

    assert response.status_code == 200, response.get_body()
    (result,) = json.loads(response.get_body())["results"]
    assert (result["pstn_rows"], result["direct_routing_rows"], result["emergency_alerts"]) == (2, 1, 1)
    rows = {row["id"]: row for row in cosmos_items(sim_env, "pstn_calls")}
    assert rows["pstn-pstn-emergency"]["emergency"] is True and rows["pstn-pstn-emergency"]["day"] == "2019-11-20"
    (alert,) = cosmos_items(sim_env, "audit", "SELECT * FROM c WHERE c.category = 'alert'")
    assert alert["action"] == "pstn.emergency-call" and alert["detail"]["calleeNumber"] == "+112"
