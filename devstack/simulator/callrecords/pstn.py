"""The ``getPstnCalls`` (Calling Plan) or ``getDirectRoutingCalls`` row a PSTN call produces."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

from ..odata import format_datetime
from .facts import CallFacts

ZERO_DATETIME = "0001-01-01T00:00:00Z"
COUNTRY_NAMES = {"US": "United States", "GB": "United Kingdom", "DE": "Germany", "FR": "France", "CH": "Switzerland"}
CURRENCY = {"US": "USD", "GB": "GBP", "DE": "EUR", "FR": "EUR", "CH": "CHF"}


def pstn_row(facts: CallFacts) -> dict[str, Any] | None:
    """The getPstnCalls / getDirectRoutingCalls row a PSTN call produces (None for other calls)."""
    user = facts.pstn_user
    if facts.pstn is None or user is None or facts.pstn_number is None:
        return None
    inbound = facts.pstn == "inbound"
    user_number = facts.user_number
    caller = facts.pstn_number if inbound else user_number
    callee = user_number if inbound else facts.pstn_number
    duration = 0 if facts.setup_failure else round((facts.end - facts.start).total_seconds())
    country = user.country or "US"
    rng = random.Random(facts.record_id)  # noqa: S311 - ids of simulated rows
    if facts.connectivity == "directRouting":
        return {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "correlationId": facts.record_id,
            "userId": user.id,
            "userPrincipalName": user.upn,
            "userDisplayName": user.display_name,
            "startDateTime": format_datetime(facts.start, 3),
            "inviteDateTime": format_datetime(facts.start - timedelta(seconds=3), 3),
            "failureDateTime": format_datetime(facts.start, 3) if facts.setup_failure else ZERO_DATETIME,
            "endDateTime": ZERO_DATETIME if facts.setup_failure else format_datetime(facts.end, 3),
            "duration": duration,
            "callType": "ByotIn" if inbound else "ByotOut",
            "successfulCall": facts.setup_failure is None,
            "callerNumber": caller,
            "calleeNumber": callee,
            "mediaPathLocation": "EUWE",
            "signalingLocation": "EUWE",
            "finalSipCode": 480 if facts.setup_failure else 0,
            "callEndSubReason": 560000 if facts.setup_failure else 540000,
            "finalSipCodePhrase": "Temporarily Unavailable" if facts.setup_failure else "BYE",
            "trunkFullyQualifiedDomainName": facts.trunk_fqdn,
            "mediaBypassEnabled": False,
        }
    return {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "callId": f"{rng.randrange(10**9, 10**10)}_{rng.randrange(10**8, 10**9)}@52.114.{rng.randrange(256)}.1",
        "userId": user.id,
        "userPrincipalName": user.upn,
        "userDisplayName": user.display_name,
        "startDateTime": format_datetime(facts.start),
        "endDateTime": format_datetime(facts.end),
        "duration": duration,
        "charge": 0.0 if inbound else round(duration / 60 * 0.02, 2),
        "callType": "user_in" if inbound else "user_out",
        "currency": CURRENCY.get(country, "USD"),
        "calleeNumber": callee,
        "usageCountryCode": country,
        "tenantCountryCode": country,
        "connectionCharge": 0.0,
        "callerNumber": caller,
        "destinationContext": None,
        "destinationName": COUNTRY_NAMES.get(country, country),
        "conferenceId": None,
        "licenseCapability": "MCOPSTNU",
        "inventoryType": "Subscriber",
        "operator": "Microsoft",
        "callDurationSource": "microsoft",
    }
