"""The simulator's own ``/sim/calls`` API: place a scenario call, list and read scenarios, hang up."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from ..odata import GraphError, bad_request, not_found, read_model
from .conversation import Scenario
from .specs import HangupBody, ScenarioSpec

if TYPE_CHECKING:
    from .service import Calls


class SimCallsApi:
    def __init__(self, calls: Calls) -> None:
        self.placement = calls.placement
        self.scenarios = calls.scenarios

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/sim/calls", self.sim_place),
            web.get("/sim/calls", self.sim_list),
            web.get("/sim/calls/{sid}", self.sim_get),
            web.post("/sim/calls/{sid}/hangup", self.sim_hangup),
        ]

    async def sim_place(self, request: web.Request) -> web.Response:
        spec = await read_model(request, ScenarioSpec, max_bytes=1024 * 1024)
        scenario = await self.placement.place(spec)
        await asyncio.sleep(0)
        return web.json_response(scenario.dump(), status=201, headers={"Location": f"/sim/calls/{scenario.id}"})

    async def sim_list(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "value": [
                    {"id": s.id, "type": s.spec.type, "state": s.state, "outcome": s.outcome}
                    for s in self.scenarios.values()
                ]
            }
        )

    def _scenario(self, request: web.Request) -> Scenario:
        scenario = self.scenarios.get(request.match_info["sid"])
        if scenario is None:
            raise not_found(f"No simulated call '{request.match_info['sid']}'.")
        return scenario

    async def sim_get(self, request: web.Request) -> web.Response:
        return web.json_response(self._scenario(request).dump())

    async def sim_hangup(self, request: web.Request) -> web.Response:
        scenario = self._scenario(request)
        body = HangupBody()
        if request.can_read_body:
            body = await read_model(request, HangupBody, max_bytes=4096)
        conv = scenario.conversations[-1]
        if conv.ended:
            raise GraphError(409, "Conflict", "The call has already ended.")
        if body.participant is not None:
            party = conv.party(body.participant)
            if party is None:
                raise bad_request(f"Participant '{body.participant}' is not in the current call.")
            await conv.leave(party, "hung up (/sim)")
        else:
            await conv.end("ended", "hung up (/sim)", (200, 5001, "The conversation has ended."))
        return web.json_response(scenario.dump())
