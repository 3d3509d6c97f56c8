"""Who took part in a recording: identity keys of people (object id, UPN, phone number) and how custodians,
data subjects and hold queries are matched against a recording's facts — one definition for holds, the sweep's
last check and data-subject requests."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from verbatim.contracts.evidence import RecordingFacts
from verbatim.contracts.retention import DataSubject, HoldQuery

Role = Literal["observed_user", "participant"]
_PHONE = re.compile(r"^\+?[0-9 ().-]{6,}$")


def phone_digits(number: str) -> str:
    return re.sub(r"[^0-9]", "", number)


def keys_of_value(value: str) -> set[str]:
    """The identity keys a custodian or subject value may mean: `upn:` for a UPN, `phone:+<digits>` for a phone
    number (also `id:` — a phone participant's id is its number), else `id:` (compared case-insensitively)."""
    value = value.strip()
    if not value:
        return set()
    if "@" in value:
        return {f"upn:{value.lower()}"}
    if _PHONE.match(value):
        return {f"phone:+{phone_digits(value)}", f"id:{value.lower()}"}
    return {f"id:{value.lower()}"}


def keys_of_subject(subject: DataSubject) -> set[str]:
    keys: set[str] = set()
    if subject.user_id:
        keys.add(f"id:{subject.user_id.strip().lower()}")
    if subject.upn:
        keys.add(f"upn:{subject.upn.strip().lower()}")
    if subject.phone_number:
        keys.add(f"phone:+{phone_digits(subject.phone_number)}")
    return keys


def _identity_keys(id_: str | None, upn: str | None, phone: str | None, kind: str | None = None) -> set[str]:
    keys: set[str] = set()
    if id_:
        keys.add(f"id:{id_.lower()}")
        if kind == "phone":
            keys.add(f"phone:+{phone_digits(id_)}")
    if upn:
        keys.add(f"upn:{upn.lower()}")
    if phone:
        keys.add(f"phone:+{phone_digits(phone)}")
    return keys


def keys_in_recording(facts: RecordingFacts) -> dict[str, Role]:
    """Every identity key in the recording, with the strongest role it appears in."""
    found: dict[str, Role] = {}
    for participant in facts.participants:
        identity = participant.identity
        for key in _identity_keys(identity.id, identity.upn, participant.phone_number, identity.kind):
            found.setdefault(key, "participant")
    for number in facts.phone_numbers:
        found.setdefault(f"phone:+{phone_digits(number)}", "participant")
    user = facts.observed_user
    if user is not None:
        for key in _identity_keys(user.id, user.upn, user.phone_number):
            found[key] = "observed_user"
    return found


@dataclass(frozen=True)
class PersonKeys:
    """Identity keys split by kind, as the Cosmos queries take them (lower-cased ids and UPNs; phone numbers as
    `+<digits>` and `<digits>`, since stored numbers are E.164 but may lack the plus)."""

    ids: list[str] = field(default_factory=list)
    upns: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, keys: Iterable[str]) -> PersonKeys:
        ids, upns, phones = set(), set(), set()
        for key in keys:
            kind, _, value = key.partition(":")
            if kind == "id":
                ids.add(value)
            elif kind == "upn":
                upns.add(value)
            elif kind == "phone":
                digits = phone_digits(value)
                phones.update({f"+{digits}", digits})
        return cls(sorted(ids), sorted(upns), sorted(phones))

    @property
    def empty(self) -> bool:
        return not (self.ids or self.upns or self.phones)


def _query_matches(query: HoldQuery, facts: RecordingFacts) -> bool:
    if query.call_types and facts.call_type not in query.call_types:
        return False
    if query.directions and facts.direction not in query.directions:
        return False
    if query.participants:
        wanted = set().union(*(keys_of_value(p) for p in query.participants))
        if not wanted & keys_in_recording(facts).keys():
            return False
    if query.text:
        needle = query.text.lower()
        haystack = [
            value
            for p in facts.participants
            for value in (p.identity.display_name, p.identity.upn, p.phone_number, p.identity.id)
            if value
        ]
        if facts.observed_user is not None:
            user = facts.observed_user
            haystack += [v for v in (user.display_name, user.upn, user.phone_number) if v]
        haystack += facts.phone_numbers
        if not any(needle in value.lower() for value in haystack):
            return False
    return True


def custodians_match(custodians: Iterable[str], facts: RecordingFacts) -> bool:
    """Is any custodian in the recording — as the observed user or as any other participant? A hold preserves
    a custodian's communications wherever they were recorded, not only their own recordings."""
    wanted: set[str] = set()
    for custodian in custodians:
        wanted |= keys_of_value(custodian)
    return bool(wanted & keys_in_recording(facts).keys())


def in_time_range(facts: RecordingFacts, start: datetime | None, end: datetime | None) -> bool:
    """Does the call overlap [start, end] (either bound open)? A call with no known time matches."""
    call_start = facts.started_at
    call_end = facts.ended_at or call_start
    if start is not None and call_end is not None and call_end < start:
        return False
    return not (end is not None and call_start is not None and call_start > end)


def hold_scope_matches(
    custodians: list[str],
    start: datetime | None,
    end: datetime | None,
    query: HoldQuery | None,
    facts: RecordingFacts,
) -> bool:
    if custodians and not custodians_match(custodians, facts):
        return False
    if not in_time_range(facts, start, end):
        return False
    return query is None or _query_matches(query, facts)
