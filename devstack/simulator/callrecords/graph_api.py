"""The Graph call-records API: get a record with ``$expand`` and ``$select``, its sessions and
``participants_v2`` with ``@odata.nextLink`` paging (60 / 130 per page), the list with ``$filter`` (60 per
page), and ``getPstnCalls`` / ``getDirectRoutingCalls`` with their 90-day range and 1,000-row pages."""

from __future__ import annotations

import copy
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..odata import bad_request, base_url, decode_skiptoken, encode_skiptoken, page_size, parse_datetime
from .query import parse_expand, parse_list_filter

if TYPE_CHECKING:
    from .store import CallRecords

READ = ("CallRecords.Read.All",)
PSTN_READ = ("CallRecord-PstnCalls.Read.All", "CallRecords.Read.All")
SESSION_PAGE = 60
PARTICIPANT_PAGE = 130
LIST_PAGE = 60
PSTN_PAGE = 1000
PSTN_MAX_RANGE = timedelta(days=90)


class GraphCallRecordsApi:
    def __init__(self, store: CallRecords) -> None:
        self.store = store
        self.identity = store.identity

    def routes(self) -> list[web.RouteDef]:
        prefix = "/v1.0/communications/callRecords"
        return [
            web.get(prefix, self.list_records),
            web.get(prefix + "/{rid}", self.get_record),
            web.get(prefix + "/{rid}/sessions", self.list_sessions),
            web.get(prefix + "/{rid}/participants_v2", self.list_participants),
        ]

    async def get_record(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        for name, rows, inclusive_end in (
            ("getPstnCalls", self.store.pstn_rows, True),
            ("getDirectRoutingCalls", self.store.dr_rows, False),
        ):
            if rid.startswith((name + "(", f"microsoft.graph.callRecords.{name}(")):
                return await self._pstn(request, rid, rows, inclusive_end, name)
        self.identity.authorize(request, *READ)
        record = self.store.get_visible(rid)
        expand = parse_expand(request.query.get("$expand"))
        base = base_url(request)
        data = record.data
        body: dict[str, Any] = {"@odata.context": f"{base}/v1.0/$metadata#communications/callRecords/$entity"}
        select = request.query.get("$select")
        wanted = {s.strip() for s in select.split(",")} | {"id"} if select else None
        for key, value in data.items():
            if key in {"sessions", "participants_v2"}:
                continue
            if wanted is not None and key not in wanted:
                continue
            body[key] = copy.deepcopy(value)
        rid_q = f"('{rid}')"
        if "organizer_v2" in data:
            body["organizer_v2@odata.context"] = (
                f"{base}/v1.0/$metadata#communications/callRecords{rid_q}/organizer_v2/$entity"
            )
        body["participants_v2@odata.context"] = (
            f"{base}/v1.0/$metadata#communications/callRecords{rid_q}/participants_v2/$entity"
        )
        if "participants_v2" in expand:
            items = data.get("participants_v2") or []
            size = page_size(request, PARTICIPANT_PAGE, PARTICIPANT_PAGE)
            body["participants_v2"] = copy.deepcopy(items[:size])
            if len(items) > size:
                token = encode_skiptoken({"offset": size})
                body["participants_v2@odata.nextLink"] = (
                    f"{base}/v1.0/communications/callRecords/{rid}/participants_v2?$skiptoken={token}"
                )
        if "sessions" in expand:
            items = data.get("sessions") or []
            size = page_size(request, SESSION_PAGE, SESSION_PAGE)
            with_segments = "segments" in expand["sessions"]
            body["sessions"] = [_session_view(s, with_segments) for s in items[:size]]
            if len(items) > size:
                token = encode_skiptoken({"offset": size})
                expand_q = "$expand=segments&" if with_segments else ""
                body["sessions@odata.nextLink"] = (
                    f"{base}/v1.0/communications/callRecords/{rid}/sessions?{expand_q}$skiptoken={token}"
                )
        return web.json_response(body)

    def _offset(self, request: web.Request) -> int:
        token = request.query.get("$skiptoken")
        return int(decode_skiptoken(token).get("offset", 0)) if token else 0

    async def list_sessions(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *READ)
        rid = request.match_info["rid"]
        record = self.store.get_visible(rid)
        expand = request.query.get("$expand", "")
        if expand and expand.strip() != "segments":
            raise bad_request(f"Unsupported $expand '{expand}' on sessions (only 'segments').")
        items = record.data.get("sessions") or []
        size = page_size(request, SESSION_PAGE, SESSION_PAGE)
        start = self._offset(request)
        base = base_url(request)
        body: dict[str, Any] = {
            "@odata.context": f"{base}/v1.0/$metadata#communications/callRecords('{rid}')/sessions",
            "value": [_session_view(s, bool(expand)) for s in items[start : start + size]],
        }
        if start + size < len(items):
            expand_q = "$expand=segments&" if expand else ""
            token = encode_skiptoken({"offset": start + size})
            body["@odata.nextLink"] = (
                f"{base}/v1.0/communications/callRecords/{rid}/sessions?{expand_q}$skiptoken={token}"
            )
        return web.json_response(body)

    async def list_participants(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *READ)
        rid = request.match_info["rid"]
        record = self.store.get_visible(rid)
        items = record.data.get("participants_v2") or []
        size = page_size(request, PARTICIPANT_PAGE, PARTICIPANT_PAGE)
        start = self._offset(request)
        base = base_url(request)
        body: dict[str, Any] = {
            "@odata.context": f"{base}/v1.0/$metadata#communications/callRecords('{rid}')/participants_v2",
            "value": copy.deepcopy(items[start : start + size]),
        }
        if start + size < len(items):
            token = encode_skiptoken({"offset": start + size})
            body["@odata.nextLink"] = f"{base}/v1.0/communications/callRecords/{rid}/participants_v2?$skiptoken={token}"
        return web.json_response(body)

    async def list_records(self, request: web.Request) -> web.Response:
        self.identity.authorize(request, *READ)
        if "$expand" in request.query:
            raise bad_request("The list of call records does not support $expand; get each record instead.")
        predicates = parse_list_filter(request.query.get("$filter"))
        visible = [r for r in self.store.records.values() if self.store.is_visible(r) and all(p(r) for p in predicates)]
        visible.sort(key=lambda r: (str(r.data.get("startDateTime")), str(r.data.get("id"))))
        size = page_size(request, LIST_PAGE, LIST_PAGE)
        start = self._offset(request)
        base = base_url(request)
        value = []
        for record in visible[start : start + size]:
            item = {k: copy.deepcopy(v) for k, v in record.data.items() if k not in {"sessions", "participants_v2"}}
            if "organizer_v2" in item:
                item["organizer_v2@odata.context"] = (
                    f"{base}/v1.0/$metadata#communications/callRecords('{item['id']}')/organizer_v2/$entity"
                )
            value.append(item)
        body: dict[str, Any] = {"@odata.context": f"{base}/v1.0/$metadata#communications/callRecords", "value": value}
        if start + size < len(visible):
            query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = encode_skiptoken({"offset": start + size})
            body["@odata.nextLink"] = str(request.url.with_query(query))
        return web.json_response(body)

    async def _pstn(
        self, request: web.Request, call: str, rows: list[dict[str, Any]], inclusive_end: bool, name: str
    ) -> web.Response:
        self.identity.authorize(request, *PSTN_READ)
        args = dict(re.findall(r"(\w+)\s*=\s*'?([^,')]+)'?", call[call.index("(") :]))
        for short, full in (("from", "fromDateTime"), ("to", "toDateTime")):  # the docs' nextLink abbreviates
            if short in args and full not in args:
                args[full] = args.pop(short)
        if "fromDateTime" not in args or "toDateTime" not in args:
            raise bad_request(f"{name} needs fromDateTime and toDateTime.")
        try:
            start, end = parse_datetime(args["fromDateTime"]), parse_datetime(args["toDateTime"])
        except ValueError as error:
            raise bad_request(f"{name}: fromDateTime and toDateTime must be DateTimeOffset values.") from error
        if end < start:
            raise bad_request(f"{name}: toDateTime is before fromDateTime.")
        if end - start > PSTN_MAX_RANGE:
            raise bad_request(f"{name}: the date range cannot be more than 90 days.")
        selected = []
        for row in rows:
            try:
                when = parse_datetime(str(row.get("startDateTime")))
            except ValueError:
                continue
            if start <= when and (when <= end if inclusive_end else when < end):
                selected.append(row)
        selected.sort(key=lambda r: (str(r.get("startDateTime")), str(r.get("id"))))
        skip_raw = request.query.get("$skip", "0")
        if not skip_raw.isdigit():
            raise bad_request("$skip must be a non-negative integer.")
        skip = int(skip_raw)
        page = selected[skip : skip + PSTN_PAGE]
        kind = "pstnCallLogRow" if name == "getPstnCalls" else "directRoutingLogRow"
        body: dict[str, Any] = {
            "@odata.context": f"{base_url(request)}/v1.0/$metadata#Collection(microsoft.graph.callRecords.{kind})",
            "@odata.count": len(page),
            "value": copy.deepcopy(page),
        }
        if skip + PSTN_PAGE < len(selected):
            query = dict(request.query)
            query["$skip"] = str(skip + PSTN_PAGE)
            body["@odata.nextLink"] = str(request.url.with_query(query))
        return web.json_response(body)


def _session_view(session: dict[str, Any], with_segments: bool) -> dict[str, Any]:
    view = copy.deepcopy(session)
    if not with_segments:
        view.pop("segments", None)
    return view
