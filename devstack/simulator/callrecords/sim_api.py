"""The simulator's own call-record API: store a record as given (``PUT /sim/callRecords/{id}``), read what
is stored or scheduled, and add PSTN / Direct Routing rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..odata import GraphError, bad_request, format_datetime, parse_datetime, read_json

if TYPE_CHECKING:
    from .store import CallRecords


class SimCallRecordsApi:
    def __init__(self, store: CallRecords) -> None:
        self.store = store

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/sim/callRecords", self.sim_list),
            web.put("/sim/callRecords/{rid}", self.sim_put),
            web.get("/sim/callRecords/{rid}", self.sim_get),
            web.post("/sim/pstnCalls", self.sim_add_pstn),
            web.post("/sim/directRoutingCalls", self.sim_add_dr),
        ]

    async def sim_put(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        data = await read_json(request, max_bytes=16 * 1024 * 1024)
        if not isinstance(data, dict):
            raise bad_request("A callRecord must be a JSON object.")
        if "id" in data and str(data["id"]) != rid:
            raise bad_request(f"The body's id '{data['id']}' differs from the URL's '{rid}'.")
        stored = {
            k: v
            for k, v in data.items()
            if not (k == "@odata.context" or "@odata.nextLink" in k or k.endswith("@odata.context"))
        }
        stored["id"] = rid
        if "version" not in stored:
            existing = self.store.records.get(rid)
            stored["version"] = existing.version + 1 if existing else 1
        change = self.store.publish(stored)
        return web.json_response(
            {"id": rid, "version": stored["version"], "change": change}, status=201 if change == "created" else 200
        )

    async def sim_get(self, request: web.Request) -> web.Response:
        record = self.store.records.get(request.match_info["rid"])
        if record is None:
            scheduled = self.store.scheduled.get(request.match_info["rid"])
            if scheduled:
                return web.json_response({"id": request.match_info["rid"], "published": False, "scheduled": scheduled})
            raise GraphError(404, "NotFound", "No such call record.")
        return web.json_response(
            {
                "id": request.match_info["rid"],
                "published": True,
                "version": record.version,
                "storedAt": format_datetime(record.stored_at),
                "expired": not self.store.is_visible(record),
                "scheduled": self.store.scheduled.get(request.match_info["rid"], []),
                "record": record.data,
            }
        )

    async def sim_list(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "value": [
                    {
                        "id": rid,
                        "version": r.version,
                        "storedAt": format_datetime(r.stored_at),
                        "expired": not self.store.is_visible(r),
                    }
                    for rid, r in self.store.records.items()
                ],
                "scheduled": {k: v for k, v in self.store.scheduled.items() if v},
                "pstnRows": len(self.store.pstn_rows),
                "directRoutingRows": len(self.store.dr_rows),
            }
        )

    async def _add_rows(self, request: web.Request, target: list[dict[str, Any]]) -> web.Response:
        data = await read_json(request, max_bytes=64 * 1024 * 1024)
        rows = data.get("value") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise bad_request('Send {"value": [rows...]}.')
        for index, row in enumerate(rows):
            if not isinstance(row, dict) or "id" not in row or "startDateTime" not in row:
                raise bad_request(f"value[{index}] needs at least id and startDateTime.")
            try:
                parse_datetime(str(row["startDateTime"]))
            except ValueError as error:
                raise bad_request(f"value[{index}].startDateTime is not a DateTimeOffset.") from error
        target.extend(rows)
        return web.json_response({"added": len(rows), "total": len(target)}, status=201)

    async def sim_add_pstn(self, request: web.Request) -> web.Response:
        return await self._add_rows(request, self.store.pstn_rows)

    async def sim_add_dr(self, request: web.Request) -> web.Response:
        return await self._add_rows(request, self.store.dr_rows)
