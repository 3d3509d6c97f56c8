"""What the call-record builder is given: the facts of a finished simulated call and its parties, and a
record as stored (its JSON and when it was first stored)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal


@dataclass
class PartyFacts:
    """What a finished call knows about one human participant."""

    kind: Literal["user", "phone", "guest"]
    id: str
    display_name: str | None
    tenant_id: str | None
    upn: str | None
    joined_at: datetime
    left_at: datetime
    platform: str = "windows"
    country: str | None = None
    machine: str = "machine"
    failure: str | None = None
    # What the participant's session used, by Graph's `modality` names: a camera turned on adds video, a shared
    # screen videoBasedScreenSharing (callRecords `session.modalities`; the record's own are their union).
    modalities: list[str] = field(default_factory=lambda: ["audio"])


@dataclass
class CallFacts:
    """Everything the call-record builder needs from a finished (or failed) simulated call."""

    record_id: str
    call_type: Literal["peerToPeer", "groupCall"]
    start: datetime
    end: datetime
    organizer: PartyFacts
    parties: list[PartyFacts]
    join_web_url: str | None = None
    pstn: Literal["inbound", "outbound"] | None = None
    pstn_number: str | None = None
    pstn_user: PartyFacts | None = None
    user_number: str | None = None
    connectivity: Literal["callingPlan", "directRouting"] | None = None
    setup_failure: str | None = None
    delay_seconds: float | None = None
    later_versions: list[float] = field(default_factory=list)
    trunk_fqdn: str = "sbc.contoso.com"


@dataclass
class StoredRecord:
    data: dict[str, Any]
    stored_at: datetime

    @property
    def version(self) -> int:
        return int(self.data.get("version") or 1)
