"""The policy snapshot store: each user's effective recording policy over time (Cosmos `policy_snapshots`).

Reconciliation asks it "which policy applied to user U at time T?" (`effective_at`) to decide who had to
be recorded in a past call. The coverage audit feeds it: `observe` writes a snapshot only when a user's
effective policy changed, so the store grows with changes, not with audit runs.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from verbatim.contracts.policy import EffectivePolicy, EffectivePolicyAt, PolicySnapshot
from verbatim.platform import layout

CONTAINER = layout.POLICY_SNAPSHOTS
_IDS_PER_QUERY = 100


class PolicySnapshotStore(Protocol):
    """Where effective-policy snapshots live; the Cosmos container in production, a dict in tests."""

    def latest(self, user_id: str) -> PolicySnapshot | None:
        """The newest snapshot of a user, or None when the user was never observed."""
        ...

    def effective_at(self, user_id: str, at: datetime) -> EffectivePolicyAt:
        """The effective policy of `user_id` at time `at` (see `EffectivePolicyAt` for the change window)."""
        ...

    def history(self, user_id: str) -> list[PolicySnapshot]:
        """Every snapshot of a user, oldest first."""
        ...

    def histories(self, user_ids: Sequence[str]) -> dict[str, list[PolicySnapshot]]:
        """`history` of each of `user_ids` (every one a key, [] when never observed), in one read."""
        ...

    def add(self, snapshot: PolicySnapshot) -> None:
        """Store one snapshot (idempotent on its id)."""
        ...


def snapshot_id(user_id: str, valid_from: datetime) -> str:
    return f"{user_id}:{_iso(valid_from)}"


def observe(
    store: PolicySnapshotStore,
    effective: EffectivePolicy,
    observed_at: datetime,
    *,
    previous_observation: datetime | None,
    observed_by: str = "coverage-audit",
) -> PolicySnapshot | None:
    """Record `effective` as seen at `observed_at`; returns the new snapshot, or None when nothing changed.

    `previous_observation` is when the caller last looked at this user (the previous audit run): the change,
    if any, happened after it. Observations older than the newest snapshot are ignored.
    """
    observed_at = _utc(observed_at)
    latest = store.latest(effective.user_id)
    if latest is not None:
        if observed_at <= latest.valid_from or latest.effective.same_as(effective):
            return None
        changed_after = (
            max(_utc(previous_observation), latest.valid_from) if previous_observation else latest.valid_from
        )
    else:
        changed_after = None
    snapshot = PolicySnapshot(
        id=snapshot_id(effective.user_id, observed_at),
        user_id=effective.user_id,
        valid_from=observed_at,
        changed_after=changed_after,
        effective=effective,
        observed_by=observed_by,
    )
    store.add(snapshot)
    return snapshot


def answer(
    user_id: str, at: datetime, before: PolicySnapshot | None, after: PolicySnapshot | None
) -> EffectivePolicyAt:
    """Combine the snapshot at-or-before T and the first one after T into the answer for T."""
    pending = None
    if after is not None and (after.changed_after is None or after.changed_after < at):
        pending = after
    return EffectivePolicyAt(user_id=user_id, at=at, snapshot=before, pending=pending)


class InMemoryPolicySnapshotStore:
    """A dict of per-user snapshot lists; for tests and the CLI."""

    def __init__(self, snapshots: Iterable[PolicySnapshot] = ()) -> None:
        self._by_user: dict[str, list[PolicySnapshot]] = {}
        for snapshot in snapshots:
            self.add(snapshot)

    def latest(self, user_id: str) -> PolicySnapshot | None:
        snapshots = self._by_user.get(user_id)
        return snapshots[-1] if snapshots else None

    def effective_at(self, user_id: str, at: datetime) -> EffectivePolicyAt:
        at = _utc(at)
        snapshots = self._by_user.get(user_id, [])
        index = bisect.bisect_right([s.valid_from for s in snapshots], at)
        before = snapshots[index - 1] if index > 0 else None
        after = snapshots[index] if index < len(snapshots) else None
        return answer(user_id, at, before, after)

    def history(self, user_id: str) -> list[PolicySnapshot]:
        return list(self._by_user.get(user_id, []))

    def histories(self, user_ids: Sequence[str]) -> dict[str, list[PolicySnapshot]]:
        return {user_id: self.history(user_id) for user_id in user_ids}

    def add(self, snapshot: PolicySnapshot) -> None:
        snapshots = self._by_user.setdefault(snapshot.user_id, [])
        if any(existing.id == snapshot.id for existing in snapshots):
            return
        snapshots.append(snapshot)
        snapshots.sort(key=lambda s: s.valid_from)


class CosmosPolicySnapshotStore:
    """Snapshots in the Cosmos container `policy_snapshots`, partitioned by `/userId`.

    Every query filters on `userId` (single-partition), and `validFrom` is stored as a fixed-width UTC ISO
    string so that string order is time order.
    """

    def __init__(self, container: Any) -> None:
        # `container` is an azure.cosmos ContainerProxy; typed loosely so this module stays importable
        # (and testable) without the SDK's types leaking into the interface.
        self._container = container

    def latest(self, user_id: str) -> PolicySnapshot | None:
        return self._one(
            "SELECT TOP 1 * FROM c WHERE c.userId = @u ORDER BY c.validFrom DESC",
            [{"name": "@u", "value": user_id}],
        )

    def effective_at(self, user_id: str, at: datetime) -> EffectivePolicyAt:
        at = _utc(at)
        params = [{"name": "@u", "value": user_id}, {"name": "@t", "value": _iso(at)}]
        before = self._one(
            "SELECT TOP 1 * FROM c WHERE c.userId = @u AND c.validFrom <= @t ORDER BY c.validFrom DESC", params
        )
        after = self._one(
            "SELECT TOP 1 * FROM c WHERE c.userId = @u AND c.validFrom > @t ORDER BY c.validFrom ASC", params
        )
        return answer(user_id, at, before, after)

    def history(self, user_id: str) -> list[PolicySnapshot]:
        items = self._container.query_items(
            "SELECT * FROM c WHERE c.userId = @u ORDER BY c.validFrom ASC",
            parameters=[{"name": "@u", "value": user_id}],
            partition_key=user_id,
        )
        return [_from_item(item) for item in items]

    def histories(self, user_ids: Sequence[str]) -> dict[str, list[PolicySnapshot]]:
        """One query for every user (a call's participants), instead of one per user; ids in chunks of 100."""
        unique = sorted(set(user_ids))
        found: dict[str, list[PolicySnapshot]] = {user_id: [] for user_id in unique}
        for start in range(0, len(unique), _IDS_PER_QUERY):
            items = self._container.query_items(
                "SELECT * FROM c WHERE ARRAY_CONTAINS(@users, c.userId)",
                parameters=[{"name": "@users", "value": unique[start : start + _IDS_PER_QUERY]}],
                enable_cross_partition_query=True,
            )
            for item in items:
                snapshot = _from_item(item)
                found.setdefault(snapshot.user_id, []).append(snapshot)
        for snapshots in found.values():
            snapshots.sort(key=lambda s: s.valid_from)
        return found

    def add(self, snapshot: PolicySnapshot) -> None:
        self._container.upsert_item(_to_item(snapshot))

    def _one(self, query: str, parameters: list[dict[str, Any]]) -> PolicySnapshot | None:
        user_id = str(parameters[0]["value"])
        for item in self._container.query_items(query, parameters=parameters, partition_key=user_id):
            return _from_item(item)
        return None


def _to_item(snapshot: PolicySnapshot) -> dict[str, Any]:
    item: dict[str, Any] = snapshot.model_dump(mode="json", by_alias=True)
    item["validFrom"] = _iso(snapshot.valid_from)
    if snapshot.changed_after is not None:
        item["changedAfter"] = _iso(snapshot.changed_after)
    return item


def _from_item(item: dict[str, Any]) -> PolicySnapshot:
    return PolicySnapshot.model_validate({key: value for key, value in item.items() if not key.startswith("_")})


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("policy snapshot times must be timezone-aware")
    return moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    """Fixed-width UTC ISO 8601 with microseconds, so lexical order equals time order in Cosmos."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
