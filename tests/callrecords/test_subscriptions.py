"""The subscription keeper: one callRecords subscription per tenant, created, adopted, renewed well
before expiry, recreated when gone or misconfigured, reauthorized on request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.callrecords.fake_graph import FakeGraph
from verbatim.callrecords.subscriptions import CALL_RECORDS
from verbatim.callrecords.webhook import digest
from verbatim.contracts.callrecords import GraphLifecycleEvent
from verbatim.graph.subscriptions import InMemorySubscriptionStates, SubscriptionConfig, SubscriptionKeeper
from verbatim.platform.times import parse_datetime

URL = "https://verbatim.example/api/graph/notifications?code=k"
LIFECYCLE = "https://verbatim.example/api/graph/lifecycle?code=k"


class Rig:
    def __init__(self) -> None:
        self.graph = FakeGraph()
        self.client = self.graph.client()
        self.states = InMemorySubscriptionStates(CALL_RECORDS)
        self.now = datetime(2024, 5, 1, tzinfo=UTC)
        self.keeper = self.make("s1")

    def make(self, secret: str, url: str = URL) -> SubscriptionKeeper:
        return SubscriptionKeeper(
            kind=CALL_RECORDS,
            graph_for=lambda tenant: self.client,
            states=self.states,
            config=SubscriptionConfig(notification_url=url, lifecycle_url=LIFECYCLE, client_state=secret),
            clock=lambda: self.now,
        )


def test_a_missing_subscription_is_created_for_call_records_with_both_change_types() -> None:
    rig = Rig()

    result = rig.keeper.ensure("t1")

    assert result.action == "created"
    (subscription,) = rig.graph.subscriptions.values()
    assert subscription["resource"] == "/communications/callRecords"
    assert subscription["changeType"] == "created,updated"
    assert subscription["notificationUrl"] == URL and subscription["lifecycleNotificationUrl"] == LIFECYCLE
    assert subscription["clientState"] == "s1"
    expiry = parse_datetime(subscription["expirationDateTime"])
    assert expiry is not None and timedelta(minutes=4000) < expiry - rig.now <= timedelta(minutes=4230)
    state = rig.states.load("t1")
    assert state is not None and state["subscriptionId"] == result.subscription_id
    assert state["clientStateSha256"] == digest("s1").hex() and "s1" not in str(state)


def test_a_fresh_subscription_is_left_alone_and_one_near_expiry_is_renewed() -> None:
    rig = Rig()
    first = rig.keeper.ensure("t1")
    rig.now += timedelta(hours=2)
    assert rig.keeper.ensure("t1").action == "unchanged"
    assert rig.graph.count("PATCH", "/subscriptions/") == 0

    rig.now += timedelta(minutes=4200 - 24 * 60 - 120 + 1)  # less than a day left
    renewed = rig.keeper.ensure("t1")

    assert (renewed.action, renewed.subscription_id) == ("renewed", first.subscription_id)
    assert parse_datetime(renewed.expiration) == rig.now + timedelta(minutes=4200)
    assert len(rig.graph.subscriptions) == 1


def test_a_subscription_graph_no_longer_knows_is_recreated() -> None:
    rig = Rig()
    first = rig.keeper.ensure("t1")
    rig.graph.subscriptions.clear()  # expired while we were down

    again = rig.keeper.ensure("t1")

    assert again.action == "recreated" and again.subscription_id != first.subscription_id
    assert rig.states.load("t1")["previousSubscriptionIds"] == [first.subscription_id]  # type: ignore[index]


def test_a_changed_url_or_secret_replaces_the_subscription() -> None:
    rig = Rig()
    first = rig.keeper.ensure("t1")

    rotated = rig.make("s2").ensure("t1")

    assert rotated.action == "recreated"
    assert list(rig.graph.subscriptions) == [rotated.subscription_id] != [first.subscription_id]
    assert rig.graph.subscriptions[rotated.subscription_id]["clientState"] == "s2"


def test_lost_state_adopts_our_existing_subscription_and_deletes_duplicates() -> None:
    rig = Rig()
    a = rig.keeper.ensure("t1")
    rig.states.states.clear()
    rig.graph.subscriptions["dup"] = {
        **rig.graph.subscriptions[a.subscription_id],
        "id": "dup",
        "expirationDateTime": "2024-05-01T01:00:00Z",
    }
    rig.graph.subscriptions["other"] = {"id": "other", "resource": "/users", "notificationUrl": URL}

    adopted = rig.keeper.ensure("t1")

    assert (adopted.action, adopted.subscription_id) == ("adopted", a.subscription_id)
    assert sorted(rig.graph.subscriptions) == sorted([a.subscription_id, "other"])


def test_reauthorization_required_renews_the_subscription() -> None:
    rig = Rig()
    first = rig.keeper.ensure("t1")
    event = GraphLifecycleEvent(
        subscription_id=first.subscription_id,
        tenant_id="t1",
        lifecycle_event="reauthorizationRequired",
        received_at="x",
    )

    result = rig.keeper.handle_lifecycle(event)

    assert result is not None and result.action == "reauthorized"
    assert rig.graph.count("PATCH", f"/subscriptions/{first.subscription_id}") == 1


def test_subscription_removed_creates_a_new_one_and_missed_leaves_it_to_backfill() -> None:
    rig = Rig()
    first = rig.keeper.ensure("t1")
    rig.graph.subscriptions.clear()
    removed = GraphLifecycleEvent(
        subscription_id=first.subscription_id, lifecycle_event="subscriptionRemoved", received_at="x"
    )

    result = rig.keeper.handle_lifecycle(removed)  # tenant found from our state

    assert result is not None and result.action == "created" and len(rig.graph.subscriptions) == 1
    missed = GraphLifecycleEvent(
        subscription_id=result.subscription_id, tenant_id="t1", lifecycle_event="missed", received_at="x"
    )
    assert rig.keeper.handle_lifecycle(missed) is None


def test_losing_a_creation_race_withdraws_our_duplicate_subscription() -> None:
    rig = Rig()
    original_save = rig.states.save
    raced = {"done": False}

    def racing_save(state: dict[str, object]) -> None:
        if not raced["done"]:
            raced["done"] = True
            # Another instance stored its subscription first.
            rig.states.states[CALL_RECORDS.state_id("t1")] = {**state, "subscriptionId": "theirs", "_etag": "99"}
            rig.graph.subscriptions["theirs"] = {
                **rig.graph.subscriptions[str(state["subscriptionId"])],
                "id": "theirs",
            }
        original_save(state)  # type: ignore[arg-type]

    rig.states.save = racing_save  # type: ignore[method-assign]
    result = rig.keeper.ensure("t1")

    assert result.subscription_id == "theirs"
    assert list(rig.graph.subscriptions) == ["theirs"]
