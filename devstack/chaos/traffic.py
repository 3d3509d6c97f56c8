"""The traffic of a chaos run: a seeded plan of 1:1 calls, PSTN calls and meetings with joins and leaves, for
policy users (strict and advisory) and users no policy records, each with the verdicts it must end with when no
fault touches it; and the generator that places them through the simulator's `POST /sim/calls` at their planned
offsets, so that about `concurrency` calls are up at any time.

The plan (which calls, in which order, how long, when) is a pure function of the seed and the profile; only what
the stack makes of it depends on timing."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devstack.demo import CORA, NED, TARA, TOM, UNA, CallResult, DemoStack, Expected, Scenario

# The demo tenant's users: Tom and Tara on the strict policy (every Required* flag), Ned on the advisory policy
# (no Required* flag: calls go on without a recorder), Una and Cora on the disabled Global policy.
STRICT_USERS = (TOM, TARA)
ADVISORY_USERS = (NED,)
POLICY_USERS = STRICT_USERS + ADVISORY_USERS
EXTERNAL_NUMBER = "+442079460999"

LINES = (
    "Buying three hundred gilts at market, reference bravo.",
    "Noted, please confirm the settlement date.",
    "Settlement in two days, as usual.",
    "Sterling is flat into the auction.",
    "Please sell half of the euro position at the current rate.",
    "Understood, I will confirm by the end of the day.",
)


@dataclass(frozen=True)
class CallKind:
    """One shape of call the generator places, and who in it a policy records."""

    name: str
    weight: int
    build: Callable[[int, float, random.Random], dict[str, Any]]
    policy_users: tuple[str, ...]


def _user(key: str, upn: str, **extra: Any) -> dict[str, Any]:
    return {"key": key, "user": upn, **extra}


def _dialog(keys: tuple[str, ...], rng: random.Random) -> list[dict[str, Any]]:
    return [{"speaker": keys[i % len(keys)], "text": rng.choice(LINES)} for i in range(3)]


def _p2p(a: tuple[str, str], b: tuple[str, str], subject: str) -> Callable[[int, float, random.Random], dict[str, Any]]:
    def build(index: int, seconds: float, rng: random.Random) -> dict[str, Any]:
        return {
            "type": "peerToPeer",
            "subject": f"{subject} {index}",
            "participants": [_user(*a), _user(*b)],
            "dialog": _dialog((a[0], b[0]), rng),
            "durationSeconds": seconds,
        }

    return build


def _pstn_inbound(index: int, seconds: float, rng: random.Random) -> dict[str, Any]:
    return {
        "type": "pstnInbound",
        "subject": f"Client on the phone {index}",
        "participants": [
            {"key": "client", "phone": EXTERNAL_NUMBER, "displayName": "External client"},
            _user("tara", TARA),
        ],
        "dialog": _dialog(("client", "tara"), rng),
        "durationSeconds": seconds,
    }


def _pstn_outbound(index: int, seconds: float, rng: random.Random) -> dict[str, Any]:
    return {
        "type": "pstnOutbound",
        "subject": f"Trader calls a client {index}",
        "participants": [
            _user("tom", TOM),
            {"key": "client", "phone": EXTERNAL_NUMBER, "displayName": "External client"},
        ],
        "dialog": _dialog(("tom", "client"), rng),
        "durationSeconds": seconds,
    }


def _meeting(index: int, seconds: float, rng: random.Random) -> dict[str, Any]:
    # Tara joins late and leaves early; a guest joins; Tom organises from the start.
    join = round(rng.uniform(1.5, 3.0), 1)
    leave = round(max(join + 4.0, seconds - rng.uniform(2.0, 4.0)), 1)
    return {
        "type": "meeting",
        "subject": f"Desk meeting {index}",
        "organizer": "tom",
        "participants": [
            _user("tom", TOM),
            _user("una", UNA),
            _user("tara", TARA, joinAt=join, leaveAt=leave),
            {"key": "guest", "guest": "Visiting analyst", "joinAt": 1.0},
        ],
        "dialog": _dialog(("tom", "tara", "guest"), rng),
        "durationSeconds": seconds,
    }


KINDS: tuple[CallKind, ...] = (
    CallKind("trader-1:1", 3, _p2p(("tom", TOM), ("cora", CORA), "Trader call"), (TOM,)),
    CallKind("traders-1:1", 1, _p2p(("tom", TOM), ("tara", TARA), "Traders between themselves"), (TOM, TARA)),
    CallKind("advisory-1:1", 1, _p2p(("ned", NED), ("una", UNA), "Advice call"), (NED,)),
    CallKind("pstn-inbound", 1, _pstn_inbound, (TARA,)),
    CallKind("pstn-outbound", 1, _pstn_outbound, (TOM,)),
    CallKind("meeting", 1, _meeting, (TOM, TARA)),
    CallKind("unrecorded-1:1", 1, _p2p(("una", UNA), ("cora", CORA), "Unrecorded call"), ()),
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


def plan_traffic(seed: int, profile: TrafficProfile) -> list[PlannedCall]:
    """The calls of a run: `concurrency` lanes, each placing its next call a short gap after its previous one
    is due to end, until `profile.seconds`; every call of every kind is expected `recorded` for each of its
    policy users when no fault touches it (the unrecorded kind expects no verdict at all)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible plan, not a secret
    weighted = [kind for kind in KINDS for _ in range(kind.weight)]
    starts: list[tuple[float, int, float, CallKind]] = []
    for lane in range(profile.concurrency):
        at = lane * rng.uniform(*profile.gap_seconds)
        while at < profile.seconds:
            kind = rng.choice(weighted)
            seconds = round(rng.uniform(*profile.call_seconds), 1)
            starts.append((round(at, 2), lane, seconds, kind))
            at += seconds + rng.uniform(*profile.gap_seconds)
    calls = []
    for index, (at, _, seconds, kind) in enumerate(sorted(starts, key=lambda s: (s[0], s[1]))):
        spec = kind.build(index, seconds, rng)
        expected = tuple(Expected(user, "recorded") for user in kind.policy_users)
        calls.append(
            PlannedCall(index, kind.name, at, seconds, Scenario(f"{kind.name}#{index}", kind.name, spec, expected))
        )
    return calls


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
