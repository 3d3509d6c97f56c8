"""The OData query options the call-records API accepts: ``$expand`` of sessions (with segments) and
participants, and the list's ``$filter`` on ``startDateTime`` and participants."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..odata import bad_request, parse_datetime
from .facts import StoredRecord

_EXPAND_ITEM = re.compile(r"\s*([A-Za-z_0-9]+)\s*(?:\((.*)\))?\s*$")


def _split_top(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return parts


def parse_expand(raw: str | None) -> dict[str, set[str]]:
    """``sessions($expand=segments),participants_v2`` -> {"sessions": {"segments"}, "participants_v2": set()}"""
    out: dict[str, set[str]] = {}
    if not raw:
        return out
    for item in _split_top(raw):
        match = _EXPAND_ITEM.match(item)
        if not match:
            raise bad_request(f"Invalid $expand item '{item.strip()}'.")
        name, inner = match.group(1), match.group(2)
        if name not in {"sessions", "participants_v2", "organizer_v2"}:
            raise bad_request(
                f"Could not find a property named '{name}' on type 'microsoft.graph.callRecords.callRecord'."
            )
        nested: set[str] = set()
        if inner:
            inner_match = re.match(r"^\s*\$expand\s*=\s*([A-Za-z_]+)\s*$", inner)
            if not inner_match or inner_match.group(1) != "segments" or name != "sessions":
                raise bad_request(f"Unsupported nested expansion '{inner}'.")
            nested.add("segments")
        out[name] = nested
    return out


_CLAUSE_TIME = re.compile(r"^\s*startDateTime\s+(lt|le|gt|ge|eq)\s+(\S+)\s*$", re.IGNORECASE)
_CLAUSE_PARTICIPANT = re.compile(
    r"^\s*participants_v2/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'([^']+)'\s*\)\s*$", re.IGNORECASE
)


def parse_list_filter(raw: str | None) -> list[Callable[[StoredRecord], bool]]:
    if not raw:
        return []
    predicates: list[Callable[[StoredRecord], bool]] = []
    for clause in re.split(r"\s+and\s+", raw, flags=re.IGNORECASE):
        time_match = _CLAUSE_TIME.match(clause)
        if time_match:
            op = time_match.group(1).lower()
            try:
                bound = parse_datetime(time_match.group(2))
            except ValueError as error:
                raise bad_request(f"Invalid date in $filter: {time_match.group(2)}") from error
            predicates.append(_time_predicate(op, bound))
            continue
        participant = _CLAUSE_PARTICIPANT.match(clause)
        if participant:
            predicates.append(_participant_predicate(participant.group(2).lower()))
            continue
        raise bad_request(
            f"Unsupported $filter clause '{clause.strip()}': use startDateTime lt|le|gt|ge <DateTimeOffset> "
            "and participants_v2/any(p:p/id eq '<id>')."
        )
    return predicates


def _participant_predicate(wanted: str) -> Callable[[StoredRecord], bool]:
    def check(record: StoredRecord) -> bool:
        return wanted in record_participant_ids(record.data)

    return check


def _time_predicate(op: str, bound: datetime) -> Callable[[StoredRecord], bool]:
    def check(record: StoredRecord) -> bool:
        try:
            start = parse_datetime(str(record.data.get("startDateTime")))
        except ValueError:
            return False
        return {
            "lt": start < bound,
            "le": start <= bound,
            "gt": start > bound,
            "ge": start >= bound,
            "eq": start == bound,
        }[op]

    return check


def record_participant_ids(data: dict[str, Any]) -> set[str]:
    """Entra object ids (and phone numbers) of everyone in a record, however the record spells them."""
    ids: set[str] = set()

    def from_identity(identity: Any) -> None:
        if isinstance(identity, dict):
            for value in identity.values():
                if isinstance(value, dict) and value.get("id"):
                    ids.add(str(value["id"]).lower())

    for p in data.get("participants_v2") or []:
        if isinstance(p, dict):
            if p.get("id"):
                ids.add(str(p["id"]).lower())
            from_identity(p.get("identity"))
    for p in data.get("participants") or []:
        from_identity(p)
    organizer = data.get("organizer_v2")
    if isinstance(organizer, dict):
        from_identity(organizer.get("identity"))
    return ids
