"""Read one complete call record from Graph: the record with its sessions and segments (following
`sessions@odata.nextLink`), and its participants (`participants_v2`, 130 per page)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from verbatim.graph import GraphClient

EXPAND_SESSIONS = "sessions($expand=segments)"


def record_path(call_record_id: str) -> str:
    return f"/communications/callRecords/{quote(call_record_id, safe='')}"


def fetch_call_record(graph: GraphClient, call_record_id: str) -> dict[str, Any]:
    """The record as Graph describes it, with every page of sessions and participants_v2 merged in.

    Raises the Graph client's typed errors (`GraphNotFound` when it does not exist, or not yet).
    """
    path = record_path(call_record_id)
    record = graph.get_json(path, params={"$expand": EXPAND_SESSIONS})
    sessions: list[Any] = list(record.get("sessions") or [])
    link = record.get("sessions@odata.nextLink")
    while isinstance(link, str) and link:
        page = graph.get_json(link)
        sessions.extend(page.get("value") or [])
        link = page.get("@odata.nextLink")
    participants = list(graph.iter_items(f"{path}/participants_v2"))
    merged = {key: value for key, value in record.items() if not key.endswith("@odata.nextLink")}
    merged["sessions"] = sessions
    merged["participants_v2"] = participants
    return merged
