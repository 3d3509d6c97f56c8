"""Microsoft's documented incoming-call notifications (tests/fixtures/graph/calls), as the recorder tests
hand them to the test-side Teams platform."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Microsoft Graph v1.0 docs, `call: answer`, "Example 3: Answer a policy-based recording call": the incoming
# call notification as published (tests/fixtures/graph/calls/README.md).
DOCUMENTED_INVITATION = (
    Path(__file__).resolve().parents[1] / "fixtures" / "graph" / "calls" / "incoming_call_policy_recording.json"
)
DOCUMENTED_CALL_ID = "e71f0300-9c1f-4d99-b5f4-2722e877d497"


def documented_invitation() -> dict[str, Any]:
    """Microsoft's documented policy-recording invitation, as published (a fresh copy each time)."""
    body: dict[str, Any] = json.loads(DOCUMENTED_INVITATION.read_text())
    return body


# The same page, "Example 2: Answer VOIP call with application hosted media", "Notification - incoming": a
# call placed to the bot, which is not a policy-based recording invitation (no incomingContext).
DOCUMENTED_PEER_TO_PEER = DOCUMENTED_INVITATION.with_name("incoming_call_peer_to_peer.json")
DOCUMENTED_PEER_TO_PEER_CALL_ID = "57DAB8B1894C409AB240BD8BEAE78896"


def documented_peer_to_peer_invitation() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(DOCUMENTED_PEER_TO_PEER.read_text())
    return body
