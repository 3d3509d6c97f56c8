"""The policy snapshot store answers "which policy applied to user U at time T?", in memory and in Cosmos."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from verbatim.contracts.policy import EffectivePolicy
from verbatim.platform.settings import Settings
from verbatim.policy.snapshots import (
    CosmosPolicySnapshotStore,
    InMemoryPolicySnapshotStore,
    PolicySnapshotStore,
    observe,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALICE = "00000000-0000-0000-0000-00000000a11c"


def strict(user_id: str = ALICE) -> EffectivePolicy:
    return EffectivePolicy(
        user_id=user_id,
        policy_name="Traders-Strict",
        source="group",
        group_id="g-traders",
        records=True,
        strict=True,
        recorder_instance_ids=["app-1"],
        retention_class="mifid-5y",
    )


def unrecorded(user_id: str = ALICE) -> EffectivePolicy:
    return EffectivePolicy(user_id=user_id, source="none")


@pytest.fixture(params=["memory", "cosmos"])
def store(request: pytest.FixtureRequest) -> Iterator[PolicySnapshotStore]:
    if request.param == "memory":
        yield InMemoryPolicySnapshotStore()
        return
    settings: Settings = request.getfixturevalue("stack_env")
    from verbatim.platform import clients

    container = clients.cosmos_database(settings).get_container_client("policy_snapshots")
    yield CosmosPolicySnapshotStore(container)


def test_an_unobserved_user_has_no_known_policy(store: PolicySnapshotStore) -> None:
    answer = store.effective_at(ALICE, T0)

    assert answer.snapshot is None
    assert answer.must_record is None
    assert not answer.known


def test_observing_an_unchanged_policy_writes_no_new_snapshot(store: PolicySnapshotStore) -> None:
    first = observe(store, strict(), T0, previous_observation=None)
    again = observe(
        store,
        strict().model_copy(update={"user_principal_name": "renamed@x"}),
        T0 + timedelta(hours=1),
        previous_observation=T0,
    )

    assert first is not None
    assert again is None
    assert [s.id for s in store.history(ALICE)] == [first.id]


def test_effective_policy_at_a_time_is_the_newest_snapshot_before_it(store: PolicySnapshotStore) -> None:
    observe(store, strict(), T0, previous_observation=None)
    change = observe(store, unrecorded(), T0 + timedelta(hours=2), previous_observation=T0 + timedelta(hours=1))

    assert change is not None
    assert change.changed_after == T0 + timedelta(hours=1)
    during_strict = store.effective_at(ALICE, T0 + timedelta(minutes=30))
    after_change = store.effective_at(ALICE, T0 + timedelta(hours=3))
    assert during_strict.known and during_strict.must_record is True
    assert during_strict.snapshot is not None and during_strict.snapshot.effective.policy_name == "Traders-Strict"
    assert after_change.known and after_change.must_record is False


def test_a_time_inside_the_change_window_is_reported_as_uncertain(store: PolicySnapshotStore) -> None:
    observe(store, strict(), T0, previous_observation=None)
    observe(store, unrecorded(), T0 + timedelta(hours=2), previous_observation=T0 + timedelta(hours=1))

    answer = store.effective_at(ALICE, T0 + timedelta(minutes=90))

    assert answer.snapshot is not None and answer.pending is not None
    assert not answer.known
    assert answer.must_record is None


def test_an_observation_older_than_the_newest_snapshot_is_ignored(store: PolicySnapshotStore) -> None:
    observe(store, strict(), T0, previous_observation=None)

    assert observe(store, unrecorded(), T0 - timedelta(minutes=1), previous_observation=None) is None
    assert len(store.history(ALICE)) == 1


def test_snapshots_of_other_users_do_not_leak(store: PolicySnapshotStore) -> None:
    observe(store, strict(), T0, previous_observation=None)
    observe(store, unrecorded("someone-else"), T0, previous_observation=None)

    assert store.effective_at(ALICE, T0).must_record is True
    assert store.effective_at("someone-else", T0).must_record is False


def test_naive_times_are_refused(store: PolicySnapshotStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.effective_at(ALICE, datetime(2026, 1, 1))
