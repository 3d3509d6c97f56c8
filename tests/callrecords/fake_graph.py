"""A small in-process Graph for callRecords, subscriptions and the PSTN reports, as an httpx transport.

Unit tests drive the services through the real `GraphClient` against it; faults (429 with Retry-After,
503, "not yet" 404s) are injected per request. The Teams/Graph simulator plays this role in the
integration tests.
"""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

from tests.callrecords.fake_authority import AUTHORITY, FakeAuthority
from verbatim.graph import GraphClient, GraphCredentials, RetryPolicy

BASE = "https://graph.test"
ROOT = f"{BASE}/v1.0"


def call_record(
    record_id: str, version: int = 1, *, users: tuple[str, ...] = ("u1", "u2"), sessions: int = 1
) -> dict[str, Any]:
    """A plausible Graph callRecord (P2P between `users`), `sessions` sessions with one segment each."""
    start, end = "2024-05-01T10:00:00.1234567Z", "2024-05-01T10:05:00Z"
    return {
        "id": record_id,
        "version": version,
        "type": "peerToPeer" if len(users) == 2 else "groupCall",
        "modalities": ["audio"],
        "startDateTime": start,
        "endDateTime": end,
        "lastModifiedDateTime": end,
        "organizer_v2": {"id": users[0], "identity": {"user": {"id": users[0], "displayName": users[0].upper()}}},
        "participants_v2": [{"id": u, "identity": {"user": {"id": u, "displayName": u.upper()}}} for u in users],
        "sessions": [
            {
                "id": f"{record_id}-s{n}",
                "startDateTime": start,
                "endDateTime": end,
                "modalities": ["audio"],
                "caller": {
                    "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
                    "identity": {"user": {"id": users[0]}},
                    "userAgent": {"@odata.type": "#microsoft.graph.callRecords.clientUserAgent", "platform": "windows"},
                },
                "callee": {
                    "@odata.type": "#microsoft.graph.callRecords.participantEndpoint",
                    "identity": {"user": {"id": users[-1]}},
                },
                "segments": [
                    {
                        "id": f"{record_id}-s{n}-g0",
                        "media": [
                            {"label": "main-audio", "streams": [{"audioCodec": "opus", "averageJitter": "PT0.010S"}]}
                        ],
                    }
                ],
            }
            for n in range(sessions)
        ],
    }


@dataclass
class Fault:
    status: int
    retry_after: str | None = None
    matches: Callable[[httpx.Request], bool] = lambda request: True


@dataclass
class FakeGraph:
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    pstn_rows: list[dict[str, Any]] = field(default_factory=list)
    direct_routing_rows: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    session_page: int = 2
    participant_page: int = 2
    list_page: int = 3
    report_page: int = 2
    requests: list[tuple[str, str]] = field(default_factory=list)
    authority: FakeAuthority = field(default_factory=FakeAuthority)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- test controls ------------------------------------------------------------------------------
    def publish(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.records[record["id"]] = record

    def fail_next(self, count: int, status: int, retry_after: str | None = None, path: str | None = None) -> None:
        for _ in range(count):
            self.faults.append(Fault(status, retry_after, (lambda r: path in r.url.path) if path else lambda r: True))

    def client(self, tenant_id: str = "tenant-1", **retry: Any) -> GraphClient:
        credentials = GraphCredentials(
            client_id="app", client_secret="s3cret", authority_host=AUTHORITY, transport=self.authority.transport()
        )
        return GraphClient(
            base_url=BASE,
            tenant_id=tenant_id,
            credentials=credentials,
            http=httpx.Client(transport=httpx.MockTransport(self.handler)),
            retry=RetryPolicy(base_delay=0.001, max_delay=0.002, **retry),
            sleep=lambda seconds: None,
        )

    def count(self, method: str, pattern: str) -> int:
        return sum(1 for m, p in self.requests if m == method and re.search(pattern, p))

    # -- the API --------------------------------------------------------------------------------------
    def handler(self, request: httpx.Request) -> httpx.Response:
        path = unquote(request.url.path).removeprefix("/v1.0")
        with self._lock:
            self.requests.append((request.method, path))
            for fault in self.faults:
                if fault.matches(request):
                    self.faults.remove(fault)
                    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    return _error(fault.status, "Injected", headers)
        params = request.url.params
        if match := re.fullmatch(
            r"/communications/callRecords/getPstnCalls\(fromDateTime=([^,]+),toDateTime=([^)]+)\)", path
        ):
            return self._report(self.pstn_rows, match.group(1), match.group(2), True, request)
        if match := re.fullmatch(
            r"/communications/callRecords/getDirectRoutingCalls\(fromDateTime=([^,]+),toDateTime=([^)]+)\)", path
        ):
            return self._report(self.direct_routing_rows, match.group(1), match.group(2), False, request)
        if path == "/communications/callRecords" and request.method == "GET":
            return self._list(params)
        if match := re.fullmatch(r"/communications/callRecords/([^/]+)/sessions", path):
            return self._sessions(match.group(1), int(params.get("$skip", "0")))
        if match := re.fullmatch(r"/communications/callRecords/([^/]+)/participants_v2", path):
            return self._participants(match.group(1), int(params.get("$skip", "0")))
        if match := re.fullmatch(r"/communications/callRecords/([^/]+)", path):
            return self._record(match.group(1), params.get("$expand"))
        if path == "/subscriptions":
            return self._subscriptions(request)
        if match := re.fullmatch(r"/subscriptions/([^/]+)", path):
            return self._subscription(request, match.group(1))
        return _error(404, "UnknownPath")

    def _record(self, record_id: str, expand: str | None) -> httpx.Response:
        record = self.records.get(record_id)
        if record is None:
            return _error(404, "NotFound")
        body = {k: v for k, v in record.items() if k not in {"sessions", "participants_v2"}}
        if expand == "sessions($expand=segments)":
            sessions = record.get("sessions", [])
            body["sessions"] = sessions[: self.session_page]
            if len(sessions) > self.session_page:
                body["sessions@odata.nextLink"] = (
                    f"{ROOT}/communications/callRecords/{record_id}/sessions?$expand=segments&$skip={self.session_page}"
                )
        return httpx.Response(200, json=body)

    def _sessions(self, record_id: str, skip: int) -> httpx.Response:
        sessions = self.records.get(record_id, {}).get("sessions", [])
        return self._page(
            sessions,
            skip,
            self.session_page,
            f"{ROOT}/communications/callRecords/{record_id}/sessions?$expand=segments",
        )

    def _participants(self, record_id: str, skip: int) -> httpx.Response:
        if record_id not in self.records:
            return _error(404, "NotFound")
        participants = self.records[record_id].get("participants_v2", [])
        return self._page(
            participants,
            skip,
            self.participant_page,
            f"{ROOT}/communications/callRecords/{record_id}/participants_v2?x=1",
        )

    def _list(self, params: httpx.QueryParams) -> httpx.Response:
        rows = sorted(self.records.values(), key=lambda r: r["id"])
        flt = params.get("$filter", "")
        if match := re.fullmatch(r"startDateTime ge (\S+)", flt):
            rows = [r for r in rows if r["startDateTime"][:19] >= match.group(1)[:19]]
        items = [{k: v for k, v in r.items() if k not in {"sessions", "participants_v2"}} for r in rows]
        skip = int(params.get("$skip", "0"))
        return self._page(items, skip, self.list_page, f"{ROOT}/communications/callRecords?$filter={flt}")

    def _report(
        self, rows: list[dict[str, Any]], start: str, end: str, inclusive: bool, request: httpx.Request
    ) -> httpx.Response:
        chosen = [
            r
            for r in rows
            if start[:19] <= r["startDateTime"][:19]
            and (r["startDateTime"][:19] <= end[:19] if inclusive else r["startDateTime"][:19] < end[:19])
        ]
        skip = int(request.url.params.get("$skip", "0"))
        return self._page(chosen, skip, self.report_page, str(request.url.copy_with(params=None)) + "?x=1")

    def _page(self, items: list[Any], skip: int, size: int, link: str) -> httpx.Response:
        body: dict[str, Any] = {"value": items[skip : skip + size]}
        if skip + size < len(items):
            body["@odata.nextLink"] = f"{link}&$skip={skip + size}"
        return httpx.Response(200, json=body)

    def _subscriptions(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"value": list(self.subscriptions.values())})
        body = _json(request)
        subscription = {"id": str(uuid.uuid4()), **body, "applicationId": "app"}
        self.subscriptions[subscription["id"]] = subscription
        return httpx.Response(201, json=subscription)

    def _subscription(self, request: httpx.Request, subscription_id: str) -> httpx.Response:
        if subscription_id not in self.subscriptions:
            return _error(404, "ResourceNotFound")
        if request.method == "DELETE":
            del self.subscriptions[subscription_id]
            return httpx.Response(204)
        if request.method == "PATCH":
            self.subscriptions[subscription_id].update(_json(request))
        return httpx.Response(200, json=self.subscriptions[subscription_id])


def _json(request: httpx.Request) -> dict[str, Any]:
    import json

    body: dict[str, Any] = json.loads(request.content)
    return body


_ids = itertools.count()


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        json={"error": {"code": code, "message": code, "innerError": {"request-id": f"r{next(_ids)}"}}},
        headers=headers,
    )
