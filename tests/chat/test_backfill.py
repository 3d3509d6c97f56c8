"""Back-fill through the simulator's Teams export API (a real process) into Cosmos, built by the composition root:
every message of a window is read page by page (50 a page, `@odata.nextLink`), Graph's 429s are waited out as
`Retry-After` asks, a message listed under two members is stored once, and a second run over the same window
stores nothing (idempotent, version-gated). Messages posted while nothing was subscribed — an outage, or before
the first start — are what this recovers.

Source: microsoft-graph-docs-contrib api-reference/v1.0/api/chats-getallmessages.md (the `$filter` on
lastModifiedDateTime, `$top` up to 50, `@odata.nextLink`) and concepts/export-teams-content.md ("up to 200 RPS
per app per tenant"; 429 with Retry-After beyond, as every Graph throttle answers).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.callrecords.conftest import Simulator
from tests.callrecords.helpers import cosmos_items
from verbatim.contracts.chat import ChatBackfillRequest
from verbatim.contracts.policy import EffectivePolicy
from verbatim.platform import layout
from verbatim.platform.settings import Settings
from verbatim.platform.times import format_datetime
from verbatim.policy.snapshots import observe
from verbatim.wiring.container import Container

pytestmark = pytest.mark.integration

TOM = "1f0e2d3c-4b5a-4968-8776-a5b4c3d2e101"
TARA = "2a1b3c4d-5e6f-4a7b-8c9d-b0c1d2e3f102"
MESSAGES = 60  # two pages of the export API for each member


@pytest.fixture
def throttled(simulator: Simulator) -> Iterator[None]:
    simulator.sim("POST", "/sim/reset")  # no subscription: nothing is delivered, as during an outage
    simulator.sim("PATCH", "/sim/config", json={"exportRequestsPerSecond": 1})
    yield None
    simulator.sim("PATCH", "/sim/config", json={"exportRequestsPerSecond": 200})


def test_a_window_is_read_page_by_page_through_throttling_and_each_message_is_stored_once(
    sim_env: Settings, simulator: Simulator, throttled: None, caplog: pytest.LogCaptureFixture
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=5)
    container = Container(sim_env)
    observe(
        container.policy_snapshots,
        EffectivePolicy(user_id=TOM, policy_name="StrictRecording", source="group", records=True, strict=True),
        start - timedelta(minutes=1),
        previous_observation=None,
        observed_by="test",
    )
    chat = simulator.sim("POST", "/sim/chats", json={"chatType": "oneOnOne", "members": [TOM, TARA]}).json()
    posted = [
        simulator.sim(
            "POST", f"/sim/chats/{chat['id']}/messages", json={"from": TOM if n % 2 else TARA, "content": f"line {n}"}
        ).json()["id"]
        for n in range(MESSAGES)
    ]
    request = ChatBackfillRequest(
        tenant_id=simulator.tenant_id,
        reason="startup",
        since=format_datetime(start),
        until=format_datetime(datetime.now(UTC) + timedelta(seconds=5)),
        user_ids=[TOM, TARA],
    )

    with caplog.at_level(logging.WARNING, logger="verbatim.graph"):
        first = container.chat.backfiller.run(request)

    assert (first.stored, first.duplicates, first.seen) == (MESSAGES, 0, 2 * MESSAGES)
    assert first.pages == 2 * 2  # 50 + 10 for each member
    throttled_pages = [
        r
        for r in caplog.records
        if getattr(r, "graph_status", None) == 429 and str(getattr(r, "graph_path", "")).endswith("/getAllMessages")
    ]
    assert throttled_pages, "the export API never answered 429 at 1 request per second"
    stored = [
        d for d in cosmos_items(sim_env, layout.CHATS) if d.get("chatId") == chat["id"] and d["docType"] == "version"
    ]
    assert Counter(d["messageId"] for d in stored) == Counter(posted)
    assert {d["source"] for d in stored} == {"export"}

    again = container.chat.backfiller.run(request)
    assert (again.stored, again.duplicates) == (0, MESSAGES)
