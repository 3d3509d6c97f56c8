"""Back-fill (records we lack or hold at a lower version are enqueued; the watermark moves) and the
PSTN / Direct Routing pulls (documented rows, 90-day windows, paging, idempotent, emergency alerts)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from tests.callrecords.fake_graph import FakeGraph, call_record
from tests.callrecords.fixtures import load
from tests.callrecords.helpers import cosmos_items
from verbatim.callrecords.backfill import Backfiller, CosmosWatermarks, InMemoryWatermarks, watermark_key
from verbatim.callrecords.normalise import normalise
from verbatim.callrecords.pstn import CosmosRowStore, EmergencyNumbers, InMemoryRowStore, PstnReports, windows
from verbatim.callrecords.store import InMemoryCallRecordStore
from verbatim.contracts.callrecords import CallRecordNotification
from verbatim.platform import clients
from verbatim.platform.audit import CosmosAuditLog, InMemoryAuditLog
from verbatim.platform.errors import InvalidInput
from verbatim.platform.queues import InMemoryQueue
from verbatim.platform.settings import Settings

NOW = datetime(2024, 5, 3, 12, 0, tzinfo=UTC)


def record_at(record_id: str, version: int, start: str) -> dict[str, object]:
    raw = call_record(record_id, version)
    raw["startDateTime"] = start
    return raw


def test_backfill_enqueues_records_we_lack_or_hold_at_a_lower_version_and_moves_the_watermark() -> None:
    graph, store, queue, marks = FakeGraph(), InMemoryCallRecordStore(), InMemoryQueue(), InMemoryWatermarks()
    for raw in (
        record_at("held-same", 2, "2024-05-03T08:00:00Z"),
        record_at("held-older", 3, "2024-05-03T08:10:00Z"),
        record_at("missing", 1, "2024-05-03T09:00:00Z"),
        record_at("before-window", 1, "2024-05-01T00:00:00Z"),
    ):
        graph.publish(raw)
    for rid, version in (("held-same", 2), ("held-older", 1)):
        raw = record_at(rid, version, "2024-05-03T08:00:00Z")
        store.save_if_newer(normalise(raw), raw)
    marks.save(watermark_key("t1"), NOW - timedelta(hours=6))
    filler = Backfiller(
        graph_for=lambda t: graph.client(),
        store=store,
        notifications=queue,
        watermarks=marks,
        overlap=timedelta(hours=12),
        clock=lambda: NOW,
    )

    result = filler.run("t1")

    assert result.listed_from == "2024-05-02T18:00:00.000000Z"  # watermark 06:00 minus 12 h overlap
    messages = [CallRecordNotification.model_validate_json(b) for b in queue.bodies()]
    assert sorted((m.call_record_id, m.known_version, m.source) for m in messages) == [
        ("held-older", 3, "backfill"),
        ("missing", 1, "backfill"),
    ]
    assert (result.listed, result.enqueued) == (3, 2)
    assert marks.load(watermark_key("t1")) == NOW
    assert graph.count("GET", r"^/communications/callRecords$") == 1  # 3 listed, page size 3


def test_backfill_never_reaches_past_the_30_day_retention() -> None:
    marks = InMemoryWatermarks()
    filler = Backfiller(
        graph_for=lambda t: FakeGraph().client(),
        store=InMemoryCallRecordStore(),
        notifications=InMemoryQueue(),
        watermarks=marks,
        clock=lambda: NOW,
    )
    assert filler.window_start("t1", since=NOW - timedelta(days=90)) == NOW - timedelta(days=30) + timedelta(hours=1)
    assert filler.window_start("t1") == NOW - timedelta(days=2)  # first run: the initial look-back


def test_cosmos_watermarks_only_move_forward(stack_env: Settings) -> None:
    marks = CosmosWatermarks(clients.cosmos_database(stack_env).get_container_client("control"))
    marks.save("w", NOW)
    marks.save("w", NOW - timedelta(hours=1))
    assert marks.load("w") == NOW
    marks.save("w", NOW + timedelta(hours=1))
    assert marks.load("w") == NOW + timedelta(hours=1)


def test_range_windows_are_at_most_90_days_and_cover_the_range_exactly() -> None:
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 8, 1, tzinfo=UTC)
    cuts = list(windows(start, end))
    assert cuts[0][0] == start and cuts[-1][1] == end
    assert all(b - a <= timedelta(days=90) for a, b in cuts) and len(cuts) == 3
    assert all(cuts[i][1] == cuts[i + 1][0] for i in range(len(cuts) - 1))
    with pytest.raises(InvalidInput):
        list(windows(end, start))


def test_emergency_numbers_match_on_digits() -> None:
    numbers = EmergencyNumbers(["+41 144"])
    assert numbers.matches("911") and numbers.matches("+911") and numbers.matches("1-1-2") and numbers.matches("41144")
    assert not numbers.matches("+1234567890") and not numbers.matches("+01234567***") and not numbers.matches(None)


def documented_rows() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    return load("pstn-calls.json")["value"], load("direct-routing-calls.json")["value"]


def test_documented_pstn_and_direct_routing_rows_are_stored_idempotently_in_cosmos(stack_env: Settings) -> None:
    graph = FakeGraph()
    graph.pstn_rows, graph.direct_routing_rows = documented_rows()
    database = clients.cosmos_database(stack_env)
    reports = PstnReports(
        graph_for=lambda t: graph.client(),
        rows=CosmosRowStore(database.get_container_client("pstn_calls")),
        audit=CosmosAuditLog(database.get_container_client("audit")),
    )
    span = (datetime(2019, 11, 1, tzinfo=UTC), datetime(2019, 12, 1, tzinfo=UTC))

    first = reports.pull("t1", *span)
    again = reports.pull("t1", *span)

    assert (first.pstn_rows, first.direct_routing_rows, first.emergency_alerts) == (1, 1, 0)
    assert again == first
    rows = {r["id"]: r for r in cosmos_items(stack_env, "pstn_calls")}
    assert set(rows) == {
        "pstn-9c4984c7-6c3c-427d-a30c-bd0b2eacee90",
        "directRouting-9e8bba57-dc14-533a-a7dd-f0da6575eed1",
    }
    pstn = rows["pstn-9c4984c7-6c3c-427d-a30c-bd0b2eacee90"]
    assert (pstn["day"], pstn["startDateTime"], pstn["durationSeconds"], pstn["callType"]) == (
        "2019-11-01",
        "2019-11-01T00:00:08.258993Z",
        219,
        "user_in",
    )
    assert pstn["callId"] == "1835317186_112562680@61.221.3.176" and pstn["emergency"] is False
    dr = rows["directRouting-9e8bba57-dc14-533a-a7dd-f0da6575eed1"]
    assert dr["failureDateTime"] is None  # Graph's 0001-01-01 means "no failure"
    assert (dr["callId"], dr["successfulCall"], dr["calleeNumber"]) == (
        "c98e1515-a937-4b81-b8a8-3992afde64e0",
        True,
        "+01234567***",
    )


def test_a_long_range_is_pulled_in_90_day_windows_with_paging_and_emergency_calls_alert_once() -> None:
    graph = FakeGraph(report_page=2)
    pstn_template, dr_template = documented_rows()
    for n in range(5):
        row = copy.deepcopy(pstn_template[0])
        row.update(
            {
                "id": f"p{n}",
                "startDateTime": f"2024-0{n + 1}-15T10:00:00Z",
                "calleeNumber": "911" if n == 3 else "+1234567890",
            }
        )
        graph.pstn_rows.append(row)
    dr = copy.deepcopy(dr_template[0])
    dr.update({"id": "d1", "startDateTime": "2024-02-01T00:00:00Z", "calleeNumber": "+999"})
    graph.direct_routing_rows.append(dr)
    rows, audit = InMemoryRowStore(), InMemoryAuditLog()
    reports = PstnReports(graph_for=lambda t: graph.client(), rows=rows, audit=audit)

    result = reports.pull("t1", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC))
    reports.pull("t1", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC))

    assert result.windows == 3 and (result.pstn_rows, result.direct_routing_rows, result.emergency_alerts) == (5, 1, 2)
    assert len(rows.documents) == 6
    assert sorted(e.detail["rowId"] for e in audit.events) == ["d1", "p3"]  # once each, despite the second pull
    assert all(e.category == "alert" and e.action == "pstn.emergency-call" for e in audit.events)
    requested = [p for m, p in graph.requests if "getPstnCalls" in p]
    assert any("fromDateTime=2024-01-01T00:00:00Z,toDateTime=2024-03-31T00:00:00Z" in p for p in requested)
