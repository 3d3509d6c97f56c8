"""The traffic of a chaos run: a seeded plan of 1:1 calls, PSTN calls and meetings with joins and leaves, for
policy users (strict and advisory) and users no policy records, each with the verdicts it must end with when no
fault touches it; and the generator that places them through the simulator's `POST /sim/calls` at their planned
offsets, so that about `concurrency` calls are up at any time.

The plan (which calls, in which order, how long, when) is a pure function of the seed and the profile; only what
the stack makes of it depends on timing."""

from __future__ import annotations

import heapq
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from devstack.demo import CORA, NED, TARA, TOM, UNA, CallResult, DemoStack, Expected, Scenario
from devstack.simulator import DEMO_TENANT

# The demo tenant's users: Tom and Tara on the strict policy (they are in Traders: every Required* flag), Ned on the
# advisory policy (no Required* flag: calls go on without a recorder), Una and Cora on the disabled Global policy.
# A run adds traders (to the Traders group) and colleagues nobody records, so that nobody is in two calls at once:
# reconciliation matches a user's recordings by call and, after a transfer, by time, which assumes one call at a
# time per person, as people have.
DOMAIN = "contoso.onmicrosoft.com"
TRADERS_GROUP = "7e8f9a0b-1c2d-4e3f-8a4b-5c6d7e8f9a01"
EXTRA_TRADERS = 6
EXTRA_COLLEAGUES = 6
ADVISERS: tuple[str, ...] = (NED,)
# The margin kept between a person's calls, beyond the planned end (calls end a little late under load).
BUSY_MARGIN_SECONDS = 8.0

LINES = (
    "Buying three hundred gilts at market, reference bravo.",
    "Noted, please confirm the settlement date.",
    "Settlement in two days, as usual.",
    "Sterling is flat into the auction.",
    "Please sell half of the euro position at the current rate.",
    "Understood, I will confirm by the end of the day.",
)


def user_id(upn: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, upn))


def traders(extra: int = EXTRA_TRADERS) -> tuple[str, ...]:
    return (TOM, TARA, *(f"chaos.trader{i}@{DOMAIN}" for i in range(1, extra + 1)))


def colleagues(extra: int = EXTRA_COLLEAGUES) -> tuple[str, ...]:
    return (UNA, CORA, *(f"chaos.colleague{i}@{DOMAIN}" for i in range(1, extra + 1)))


def extra_users(extra: int = EXTRA_TRADERS) -> list[dict[str, Any]]:
    """The users a run adds to the demo tenant (tenant model of devstack/simulator/README.md): `extra` traders and
    as many colleagues."""
    users = []
    for index, upn in enumerate(traders(extra)[2:] + colleagues(extra)[2:], start=1):
        name = upn.split("@")[0].replace("chaos.", "").capitalize()
        users.append(
            {
                "id": user_id(upn),
                "userPrincipalName": upn,
                "displayName": f"Chaos {name}",
                "mail": upn,
                "phoneNumbers": [f"+442079{460200 + index:06d}"],
                "country": "GB",
                "pstnConnectivity": "callingPlan",
                "accountEnabled": True,
            }
        )
    return users


def chaos_tenant(path: Path, extra: int = EXTRA_TRADERS) -> Path:
    """The demo tenant with the run's traders (in the Traders group: the strict policy) and colleagues (no policy),
    written to `path` for the stack to start with (same tenant id, so `verbatim-dev up` publishes the demo's
    desired state for it, and the first coverage audit observes everyone)."""
    model: dict[str, Any] = yaml.safe_load(DEMO_TENANT.read_text(encoding="utf-8"))
    known = {u["userPrincipalName"] for u in model["users"]}
    added = [u for u in extra_users(extra) if u["userPrincipalName"] not in known]
    model["users"] += added
    group = next(g for g in model["groups"] if g["id"] == TRADERS_GROUP)
    group["members"] += [u["id"] for u in added if u["userPrincipalName"] in traders(extra)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by devstack/chaos: the demo tenant and the chaos run's extra people\n"
        + yaml.safe_dump(model, sort_keys=False),
        encoding="utf-8",
    )
    return path


def pools(extra: int = EXTRA_TRADERS) -> dict[str, tuple[str, ...]]:
    """The people who fill a call kind's roles (a PSTN call's tenant user needs PSTN connectivity: all have it)."""
    return {"trader": traders(extra), "adviser": ADVISERS, "colleague": colleagues(extra)}


def policy_users(extra: int = EXTRA_TRADERS) -> tuple[str, ...]:
    return traders(extra) + ADVISERS


POLICY_USERS = policy_users()


@dataclass(frozen=True)
class CallKind:
    """One shape of call the generator places: the roles it needs and how its `POST /sim/calls` body is built.
    Traders and advisers are the policy users."""

    name: str
    weight: int
    roles: tuple[str, ...]
    build: Callable[[int, float, random.Random, list[str]], dict[str, Any]]


def _user(key: str, upn: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "user": upn, **extra}


def _dialog(keys: tuple[str, ...], rng: random.Random) -> list[dict[str, Any]]:
    return [{"speaker": keys[i % len(keys)], "text": rng.choice(LINES)} for i in range(3)]


def _p2p(subject: str) -> Callable[[int, float, random.Random, list[str]], dict[str, Any]]:
    def build(index: int, seconds: float, rng: random.Random, people: list[str]) -> dict[str, Any]:
        return {
            "type": "peerToPeer",
            "subject": f"{subject} {index}",
            "participants": [_user("a", people[0]), _user("b", people[1])],
            "dialog": _dialog(("a", "b"), rng),
            "durationSeconds": seconds,
        }

    return build


def _external(index: int) -> dict[str, Any]:
    return {"key": "client", "phone": f"+1425555{index % 10000:04d}", "displayName": "External client"}


def _pstn_inbound(index: int, seconds: float, rng: random.Random, people: list[str]) -> dict[str, Any]:
    return {
        "type": "pstnInbound",
        "subject": f"Client on the phone {index}",
        "participants": [_external(index), _user("trader", people[0])],
        "dialog": _dialog(("client", "trader"), rng),
        "durationSeconds": seconds,
    }


def _pstn_outbound(index: int, seconds: float, rng: random.Random, people: list[str]) -> dict[str, Any]:
    return {
        "type": "pstnOutbound",
        "subject": f"Trader calls a client {index}",
        "participants": [_user("trader", people[0]), _external(index)],
        "dialog": _dialog(("trader", "client"), rng),
        "durationSeconds": seconds,
    }


def _meeting(index: int, seconds: float, rng: random.Random, people: list[str]) -> dict[str, Any]:
    # The organiser (a trader) is there from the start; a second trader joins late and leaves early; a guest joins.
    join = round(rng.uniform(1.5, 3.0), 1)
    leave = round(max(join + 4.0, seconds - rng.uniform(2.0, 4.0)), 1)
    return {
        "type": "meeting",
        "subject": f"Desk meeting {index}",
        "organizer": "host",
        "participants": [
            _user("host", people[0]),
            _user("colleague", people[1]),
            _user("late", people[2], joinAt=join, leaveAt=leave),
            {"key": "guest", "guest": "Visiting analyst", "joinAt": 1.0},
        ],
        "dialog": _dialog(("host", "late", "guest"), rng),
        "durationSeconds": seconds,
    }


KINDS: tuple[CallKind, ...] = (
    CallKind("trader-1:1", 3, ("trader", "colleague"), _p2p("Trader call")),
    CallKind("traders-1:1", 1, ("trader", "trader"), _p2p("Traders between themselves")),
    CallKind("advisory-1:1", 1, ("adviser", "colleague"), _p2p("Advice call")),
    CallKind("pstn-inbound", 1, ("trader",), _pstn_inbound),
    CallKind("pstn-outbound", 1, ("trader",), _pstn_outbound),
    CallKind("meeting", 1, ("trader", "colleague", "trader"), _meeting),
    CallKind("unrecorded-1:1", 1, ("colleague", "colleague"), _p2p("Unrecorded call")),
)


@dataclass(frozen=True)
class TrafficProfile:
    """How much traffic: for how long calls are started, how many at once, how long each lasts."""

    seconds: float
    concurrency: int
    call_seconds: tuple[float, float]
    gap_seconds: tuple[float, float] = (1.0, 4.0)


@dataclass(frozen=True)
class PlannedCall:
    index: int
    kind: str
    at: float  # seconds after the traffic starts
    seconds: float
    scenario: Scenario

    @property
    def policy_users(self) -> tuple[str, ...]:
        return tuple(e.user for e in self.scenario.expected)


def plan_traffic(seed: int, profile: TrafficProfile, extra: int = EXTRA_TRADERS) -> list[PlannedCall]:
    """The calls of a run: `concurrency` lanes, each placing its next call a short gap after its previous one
    is due to end, until `profile.seconds`, with people free at that time (nobody in two calls at once); every
    policy user of every call is expected `recorded` when no fault touches it (the unrecorded kind expects no
    verdict at all)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible plan, not a secret
    people_of = pools(extra)
    recorded = set(policy_users(extra))
    weighted = [kind for kind in KINDS for _ in range(kind.weight)]
    busy: dict[str, float] = {}
    lanes = [(round(lane * rng.uniform(*profile.gap_seconds), 2), lane) for lane in range(profile.concurrency)]
    heapq.heapify(lanes)
    calls: list[PlannedCall] = []
    while lanes:
        at, lane = heapq.heappop(lanes)
        if at >= profile.seconds:
            continue
        kind = rng.choice(weighted)
        people = _free_people(kind, at, busy, rng, people_of)
        if people is None:  # not enough people free now: this lane tries again a little later
            heapq.heappush(lanes, (round(at + 2.0, 2), lane))
            continue
        seconds = round(rng.uniform(*profile.call_seconds), 1)
        for person in people:
            busy[person] = at + seconds + BUSY_MARGIN_SECONDS
        index = len(calls)
        spec = kind.build(index, seconds, rng, people)
        expected = tuple(Expected(user, "recorded") for user in people if user in recorded)
        calls.append(
            PlannedCall(index, kind.name, at, seconds, Scenario(f"{kind.name}#{index}", kind.name, spec, expected))
        )
        heapq.heappush(lanes, (round(at + seconds + rng.uniform(*profile.gap_seconds), 2), lane))
    return calls


def _free_people(
    kind: CallKind, at: float, busy: dict[str, float], rng: random.Random, people_of: dict[str, tuple[str, ...]]
) -> list[str] | None:
    chosen: list[str] = []
    for role in kind.roles:
        free = [p for p in people_of[role] if busy.get(p, 0.0) <= at and p not in chosen]
        if not free:
            return None
        chosen.append(rng.choice(free))
    return chosen


@dataclass
class PlacedCall:
    """A planned call once placed: when, the simulator's and Teams' ids, and what became of it."""

    planned: PlannedCall
    placed_at: datetime
    result: CallResult | None = None
    error: str | None = None
    ended_at: datetime | None = None
    state: dict[str, Any] = field(default_factory=dict)


class TrafficGenerator:
    """Places the planned calls at their offsets from `start()` on a thread of its own."""

    def __init__(self, stack: DemoStack, calls: list[PlannedCall], echo: Callable[[str], None] = print) -> None:
        self.stack = stack
        self.calls = calls
        self.echo = echo
        self.placed: list[PlacedCall] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-traffic", daemon=True)
        self._t0 = 0.0

    def start(self, t0: float) -> None:
        self._t0 = t0
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        for call in self.calls:
            delay = self._t0 + call.at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            placed = PlacedCall(call, datetime.now(UTC))
            try:
                placed.result = self.stack.place(call.scenario)
            except Exception as error:  # a refused placement is a finding, not the end of the run
                placed.error = f"{type(error).__name__}: {error}"
                self.echo(f"chaos: placing {call.scenario.key} failed: {placed.error}")
            self.placed.append(placed)
