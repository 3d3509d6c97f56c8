"""Property tests of the simulator's parsers of client input: timestamps, paging tokens, the subscription
participant filter, $expand and the call-record list $filter. Anything malformed must end in a Graph 400,
never in another exception."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack.simulator.callrecords import parse_expand, parse_list_filter
from devstack.simulator.odata import GraphError, decode_skiptoken, encode_skiptoken, format_datetime, parse_datetime
from devstack.simulator.subscriptions import parse_resource

moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))
ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=36)


@given(moments)
def test_graph_timestamps_round_trip(moment: datetime) -> None:
    assert parse_datetime(format_datetime(moment)) == moment
    assert parse_datetime(format_datetime(moment, 3)) == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@given(st.dictionaries(st.sampled_from(["offset", "page", "x"]), st.integers(0, 10**9)))
def test_skiptokens_round_trip(state: dict[str, int]) -> None:
    assert decode_skiptoken(encode_skiptoken(state)) == state


@given(st.text(max_size=60))
def test_bad_skiptokens_are_a_400(token: str) -> None:
    try:
        decode_skiptoken(token)
    except GraphError as error:
        assert error.status == 400


@given(st.lists(ids, min_size=1, max_size=6), st.sampled_from(["eq", "in"]))
def test_subscription_participant_filters_yield_exactly_their_ids(values: list[str], form: str) -> None:
    if form == "eq":
        body = " or ".join(f"p/id eq '{v}'" for v in values)
    else:
        body = "p/id in (" + ", ".join(f"'{v}'" for v in values) + ")"
    resource = f"/communications/callRecords?$filter=participants/any(p:{body})"
    assert parse_resource(resource) == {v.lower() for v in values}
    assert parse_resource("communications/callRecords") is None


@given(st.text(max_size=80))
def test_any_other_subscription_resource_is_a_400_or_understood(text: str) -> None:
    try:
        parse_resource(text)
    except GraphError as error:
        assert error.status == 400


@given(st.text(max_size=80))
def test_expand_and_list_filters_reject_garbage_with_400(text: str) -> None:
    for parser in (parse_expand, parse_list_filter):
        try:
            parser(text)
        except GraphError as error:
            assert error.status == 400


@given(moments, st.integers(-3600, 3600))
def test_start_time_filters_select_by_the_bound(bound: datetime, offset: int) -> None:
    from devstack.simulator.callrecords import StoredRecord

    record = StoredRecord({"startDateTime": format_datetime(bound + timedelta(seconds=offset))}, bound)
    (ge,) = parse_list_filter(f"startDateTime ge {format_datetime(bound)}")
    (lt,) = parse_list_filter(f"startDateTime lt {format_datetime(bound)}")
    assert ge(record) == (offset >= 0) and lt(record) == (offset < 0)


def test_supported_expansions_parse() -> None:
    assert parse_expand("sessions($expand=segments),participants_v2") == {
        "sessions": {"segments"},
        "participants_v2": set(),
    }
    with pytest.raises(GraphError):
        parse_expand("sessions($expand=media)")
