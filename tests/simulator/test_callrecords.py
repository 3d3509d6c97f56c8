"""Call records as Graph serves them: delayed publication on the simulated clock, Microsoft's documented
shapes, $expand with 60/130 paging, the list $filter, 30-day expiry, later versions, records stored as-is,
and the PSTN / Direct Routing reports with their range rule and 1,000-row pages."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.simulator.odata import parse_datetime
from tests.simulator.harness import NED, TARA, TOM, UNA, Recorder, SimClient
from tests.simulator.shapes import DOCUMENTED, extra_names, fixture, missing_or_mistyped

pytestmark = pytest.mark.integration
Run = Callable[[Callable[[SimClient], Any]], None]
BASE = "/v1.0/communications/callRecords"
# client telemetry that a first version may not carry yet (Graph's FAQ: later versions add data)
TELEMETRY = frozenset({"feedback", "averageJitter", "averageAudioDegradation", "receivedSignalLevel"})


async def finished_call(sim: SimClient, scenario: dict[str, Any]) -> dict[str, Any]:
    async with Recorder(sim):
        call = await sim.place(scenario)
        return await sim.wait_call(call["id"], lambda s: s["state"] == "ended")


P2P = {
    "type": "peerToPeer",
    "mediaPace": "fast",
    "durationSeconds": 2,
    "participants": [{"key": "tom", "user": TOM}, {"key": "una", "user": UNA}],
}


def test_a_finished_call_publishes_a_graph_shaped_record_after_the_delay_and_later_versions(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        await sim.configure(callRecordDelaySeconds=60)
        state = await finished_call(sim, {**P2P, "callRecord": {"laterVersions": [900]}})
        rid = state["conversations"][0]["callRecordId"]
        assert (await sim.graph("GET", f"{BASE}/{rid}"))[0] == 404  # not yet published
        await sim.advance(59)
        assert (await sim.graph("GET", f"{BASE}/{rid}"))[0] == 404
        await sim.advance(2)
        status, record, _ = await sim.graph("GET", f"{BASE}/{rid}", params={"$expand": "sessions($expand=segments)"})
        assert status == 200 and record["version"] == 1 and record["type"] == "peerToPeer"
        expected = fixture("callrecords/callrecord-get-expanded.json")
        assert missing_or_mistyped(record, expected, optional=TELEMETRY) == []
        assert extra_names(record, expected) <= DOCUMENTED
        status, with_participants, _ = await sim.graph("GET", f"{BASE}/{rid}", params={"$expand": "participants_v2"})
        expected = fixture("callrecords/callrecord-get-participants-v2.json")
        assert missing_or_mistyped(with_participants, expected) == []
        assert {p["id"] for p in with_participants["participants_v2"]} == {TOM, UNA}
        # version 1 lacks the quality telemetry; version 2 adds it
        stream = record["sessions"][0]["segments"][0]["media"][0]["streams"][0]
        assert "averageJitter" not in stream
        await sim.advance(900)
        _, v2, _ = await sim.graph("GET", f"{BASE}/{rid}", params={"$expand": "sessions($expand=segments)"})
        assert v2["version"] == 2
        assert missing_or_mistyped(v2, fixture("callrecords/callrecord-get-expanded.json")) == []
        status, sessions, _ = await sim.graph("GET", f"{BASE}/{rid}/sessions", params={"$expand": "segments"})
        expected = fixture("callrecords/callrecord-list-sessions-expanded.json")
        assert missing_or_mistyped(sessions, expected) == []
        assert extra_names(sessions, expected) <= DOCUMENTED
        assert v2["sessions"][0]["segments"][0]["media"][0]["streams"][0]["averageJitter"].startswith("PT")

    run(body)


def _synthetic(rid: str, start: datetime, sessions: int, participants: int, member: str = TOM) -> dict[str, Any]:
    people = [{"id": member, "identity": {"user": {"id": member, "displayName": "Tom", "tenantId": "t"}}}]
    people += [
        {"id": f"p-{i}", "identity": {"user": {"id": f"p-{i}", "displayName": f"P {i}", "tenantId": "t"}}}
        for i in range(participants - 1)
    ]
    return {
        "id": rid,
        "version": 1,
        "type": "groupCall",
        "modalities": ["audio"],
        "lastModifiedDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDateTime": (start + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "organizer_v2": people[0],
        "participants_v2": people,
        "sessions": [
            {"id": f"s-{i}", "modalities": ["audio"], "segments": [{"id": f"g-{i}"}]} for i in range(sessions)
        ],
    }


def test_expanded_sessions_and_participants_page_at_60_and_130(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        await sim.ok("PUT", "/sim/callRecords/big", json=_synthetic("big", datetime(2030, 1, 1, tzinfo=UTC), 130, 300))
        status, record, _ = await sim.graph(
            "GET", f"{BASE}/big", params={"$expand": "sessions($expand=segments),participants_v2"}
        )
        assert status == 200 and len(record["sessions"]) == 60 and len(record["participants_v2"]) == 130
        sessions = list(record["sessions"])
        link = record["sessions@odata.nextLink"]
        while link:
            _, page, _ = await sim.graph("GET", link)
            assert len(page["value"]) <= 60 and all("segments" in s for s in page["value"])
            sessions += page["value"]
            link = page.get("@odata.nextLink")
        assert [s["id"] for s in sessions] == [f"s-{i}" for i in range(130)]
        people = list(record["participants_v2"])
        link = record["participants_v2@odata.nextLink"]
        while link:
            _, page, _ = await sim.graph("GET", link)
            people += page["value"]
            link = page.get("@odata.nextLink")
        assert len(people) == 300 and len({p["id"] for p in people}) == 300
        # Prefer: odata.maxpagesize lowers the page size, never raises it past the maximum
        _, small, _ = await sim.graph("GET", f"{BASE}/big/sessions", headers={"Prefer": "odata.maxpagesize=7"})
        assert len(small["value"]) == 7 and "segments" not in small["value"][0]
        _, capped, _ = await sim.graph("GET", f"{BASE}/big/sessions", headers={"Prefer": "odata.maxpagesize=500"})
        assert len(capped["value"]) == 60

    run(body)


def test_the_list_filters_on_start_time_and_participant_and_pages_at_60(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        start = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
        for i in range(70):
            member = TARA if i % 10 == 0 else TOM
            record = _synthetic(f"r-{i:02d}", start + timedelta(minutes=i), 1, 2, member)
            await sim.ok("PUT", f"/sim/callRecords/r-{i:02d}", json=record)
        _, page, _ = await sim.graph("GET", BASE)
        assert len(page["value"]) == 60 and "sessions" not in page["value"][0]
        _, rest, _ = await sim.graph("GET", page["@odata.nextLink"])
        assert len(rest["value"]) == 10 and "@odata.nextLink" not in rest
        window = "startDateTime ge 2030-03-01T09:10:00Z and startDateTime lt 2030-03-01T09:20:00Z"
        _, filtered, _ = await sim.graph("GET", BASE, params={"$filter": window})
        assert [r["id"] for r in filtered["value"]] == [f"r-{i:02d}" for i in range(10, 20)]
        _, tara, _ = await sim.graph("GET", BASE, params={"$filter": f"participants_v2/any(p:p/id eq '{TARA}')"})
        assert [r["id"] for r in tara["value"]] == [f"r-{i:02d}" for i in range(0, 70, 10)]
        status, error, _ = await sim.graph("GET", BASE, params={"$filter": "version gt 1"})
        assert status == 400 and "Unsupported $filter" in error["error"]["message"]
        assert (
            missing_or_mistyped(
                {"value": [{**r, "version": 2} for r in page["value"][:1]]},
                {
                    "value": [
                        {k: v for k, v in fixture("callrecords-list.json")["value"][0].items() if k != "organizer"}
                    ]
                },
            )
            == []
        )

    run(body)


def test_records_expire_after_30_days_on_the_simulated_clock(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        await sim.ok("PUT", "/sim/callRecords/old", json=_synthetic("old", datetime(2030, 1, 1, tzinfo=UTC), 1, 2))
        await sim.advance(days=29, hours=23)
        assert (await sim.graph("GET", f"{BASE}/old"))[0] == 200
        await sim.advance(hours=2)
        assert (await sim.graph("GET", f"{BASE}/old"))[0] == 404
        _, listing, _ = await sim.graph("GET", BASE)
        assert listing["value"] == []

    run(body)


def test_a_documented_record_is_stored_as_is_and_served_back(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        example = fixture("callrecords/callrecord-get-expanded.json")
        rid = example["id"]
        created = await sim.ok("PUT", f"/sim/callRecords/{rid}", expect=201, json=example)
        assert created["change"] == "created"
        _, record, _ = await sim.graph("GET", f"{BASE}/{rid}", params={"$expand": "sessions($expand=segments)"})
        for key in ("version", "type", "modalities", "startDateTime", "endDateTime", "organizer_v2"):
            assert record[key] == example[key]
        assert record["sessions"] == example["sessions"]
        newer = {**copy.deepcopy(example), "version": 2}
        updated = await sim.ok("PUT", f"/sim/callRecords/{rid}", expect=200, json=newer)
        assert updated["change"] == "updated"
        status, _, _ = await sim.request("PUT", "/sim/callRecords/other-id", json=example)
        assert status == 400  # the body's id must match the URL

    run(body)


def test_pstn_and_direct_routing_calls_produce_documented_rows(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        await sim.configure(callRecordDelaySeconds=1)
        inbound = {
            "type": "pstnInbound",
            "mediaPace": "fast",
            "durationSeconds": 3,
            "participants": [{"key": "ext", "phone": "+14255550199"}, {"key": "tom", "user": TOM}],
        }
        outbound = {
            "type": "pstnOutbound",
            "mediaPace": "fast",
            "durationSeconds": 3,
            "participants": [{"key": "tara", "user": TARA}, {"key": "ext", "phone": "+442079460999"}],
        }
        await finished_call(sim, inbound)
        await finished_call(sim, outbound)
        await sim.advance(2)
        now = parse_datetime((await sim.ok("GET", "/sim/clock"))["now"])
        window = f"fromDateTime={(now - timedelta(days=1)).date()},toDateTime={(now + timedelta(days=1)).date()}"
        _, pstn, _ = await sim.graph("GET", f"{BASE}/getPstnCalls({window})")
        assert missing_or_mistyped(pstn, fixture("callrecords/pstn-calls.json")) == []
        row = pstn["value"][0]
        assert (row["callType"], row["callerNumber"], row["calleeNumber"], row["userId"]) == (
            "user_in",
            "+14255550199",
            "+442079460101",
            TOM,
        )
        _, direct, _ = await sim.graph("GET", f"{BASE}/getDirectRoutingCalls({window})")
        assert missing_or_mistyped(direct, fixture("callrecords/direct-routing-calls.json")) == []
        assert direct["value"][0]["callType"] == "ByotOut" and direct["value"][0]["userId"] == TARA
        status, error, _ = await sim.graph("GET", f"{BASE}/getPstnCalls(fromDateTime=2030-01-01,toDateTime=2030-04-02)")
        assert status == 400 and "90 days" in error["error"]["message"]
        # the recorder's app lacks CallRecord-PstnCalls.Read.All and CallRecords.Read.All
        async with Recorder(sim) as bot:
            assert (await bot.graph("GET", f"{BASE}/getPstnCalls({window})"))[0] == 403

    run(body)


def test_report_rows_page_at_1000_and_honour_inclusive_and_exclusive_ends(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        start = datetime(2030, 5, 1, tzinfo=UTC)
        rows = [
            {"id": f"row-{i}", "startDateTime": (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")}
            for i in range(2500)
        ]
        await sim.ok("POST", "/sim/pstnCalls", json={"value": rows})
        await sim.ok("POST", "/sim/directRoutingCalls", json={"value": rows})
        window = (
            "fromDateTime=2030-05-01T00:00:00Z,toDateTime=2030-05-02T17:39:00Z"  # row 2499 starts exactly at the end
        )
        pages, link = [], f"{BASE}/getPstnCalls({window})"
        while link:
            _, page, _ = await sim.graph("GET", link)
            assert page["@odata.count"] == len(page["value"])
            pages.append(len(page["value"]))
            link = page.get("@odata.nextLink")
        assert pages == [1000, 1000, 500]  # getPstnCalls: toDateTime inclusive
        total, link = 0, f"{BASE}/getDirectRoutingCalls({window})"
        while link:
            _, page, _ = await sim.graph("GET", link)
            total += len(page["value"])
            link = page.get("@odata.nextLink")
        assert total == 2499  # getDirectRoutingCalls: toDateTime exclusive

    run(body)


def test_a_blocked_call_still_leaves_a_record_with_a_setup_failure(run: Run) -> None:
    async def body(sim: SimClient) -> None:
        await sim.configure(callRecordDelaySeconds=0)
        async with Recorder(sim, behaviour="reject"):
            call = await sim.place({**P2P, "participants": [{"key": "tom", "user": TOM}, {"key": "ned", "user": NED}]})
            state = await sim.wait_call(call["id"], lambda s: s["state"] == "ended")
        assert state["outcome"] == "blockedByPolicy"
        await sim.advance(0.1)
        _, record, _ = await sim.graph(
            "GET", f"{BASE}/{state['conversations'][0]['callRecordId']}", params={"$expand": "sessions"}
        )
        assert record["sessions"][0]["failureInfo"]["stage"] == "callSetup"

    run(body)
