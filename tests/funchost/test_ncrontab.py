"""The timer schedule parser: 6-field NCRONTAB (NCrontab's rules) and TimeSpan intervals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devstack.funchost.ncrontab import CronSchedule, IntervalSchedule, ScheduleError, parse_schedule

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
# (lowest, highest, names) per field in expression order
FIELDS = [(0, 59, None), (0, 59, None), (0, 23, None), (1, 31, None), (1, 12, MONTHS), (0, 6, DAYS)]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "base", "expected"),
    [
        ("0 */5 * * * *", "2024-01-01T00:03:07", "2024-01-01T00:05:00"),
        ("0 */5 * * * *", "2024-01-01T00:05:00", "2024-01-01T00:10:00"),  # strictly after the base
        ("*/10 * * * * *", "2024-01-01T23:59:55", "2024-01-02T00:00:00"),
        ("0 30 9 * * 1-5", "2024-01-05T10:00:00", "2024-01-08T09:30:00"),  # Friday after 9:30 -> Monday
        ("0 30 9 * * MON-FRI", "2024-01-05T10:00:00", "2024-01-08T09:30:00"),
        ("0 0 0 29 2 *", "2024-03-01T00:00:00", "2028-02-29T00:00:00"),  # next leap day
        ("0 0 0 31 * *", "2024-04-01T00:00:00", "2024-05-31T00:00:00"),  # April has no 31st
        ("0 0 12 * JAN,jul *", "2024-02-01T00:00:00", "2024-07-01T12:00:00"),
        ("5/20 * * * * *", "2024-01-01T00:00:26", "2024-01-01T00:00:45"),  # a/n: from a to the maximum
        ("0 0 0 13 * FRI", "2024-01-01T00:00:00", "2024-09-13T00:00:00"),  # day AND day-of-week
        ("0 0 0 1 1 *", "2024-06-01T00:00:00", "2025-01-01T00:00:00"),
        ("0 0-10/5 8 * * *", "2024-01-01T08:06:00", "2024-01-01T08:10:00"),
    ],
)
def test_next_occurrence_follows_ncrontab(expression: str, base: str, expected: str) -> None:
    assert CronSchedule.parse(expression).next_after(at(base)) == at(expected)


def test_schedule_is_evaluated_in_the_given_time_zone() -> None:
    schedule = CronSchedule.parse("0 0 9 * * *", ZoneInfo("America/New_York"))
    assert schedule.next_after(at("2024-01-10T00:00:00")) == at("2024-01-10T14:00:00")  # EST
    assert schedule.next_after(at("2024-07-10T00:00:00")) == at("2024-07-10T13:00:00")  # EDT


def test_timespan_schedule_repeats_its_interval() -> None:
    schedule = parse_schedule("00:00:30")
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.next_after(at("2024-01-01T00:00:10")) == at("2024-01-01T00:00:40")
    assert parse_schedule("1.02:00:00").next_after(at("2024-01-01T00:00:00")) == at("2024-01-02T02:00:00")


@pytest.mark.parametrize(
    "expression",
    [
        "* * * * *",  # 5 fields: the Functions host wants seconds too
        "* * * * * * *",
        "60 * * * * *",
        "* * 24 * * *",
        "* * * 0 * *",
        "* * * * 13 *",
        "* * * * * 7",  # NCrontab's day of week is 0-6
        "* * * * FOO *",
        "* * 10-2 * * *",
        "*/0 * * * * *",
        "1,,2 * * * * *",
        "0 0 0 30 2 *",  # 30 February never comes
        "00:00:00",
        "not a schedule",
    ],
)
def test_invalid_schedules_are_rejected(expression: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(expression).next_after(at("2024-01-01T00:00:00"))


@st.composite
def field_text(draw: st.DrawFn, index: int) -> tuple[str, set[int]]:
    """One field's text and the set of values it must select."""
    lowest, highest, names = FIELDS[index]

    def value_text(value: int) -> str:
        if names and draw(st.booleans()):
            name = names[value - lowest]
            return draw(st.sampled_from([name, name.lower(), name.title()]))
        return str(value)

    elements, expected = [], set()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["*", "*/s", "v", "a-b", "a-b/s", "a/s"]))
        step = draw(st.integers(1, 12))
        a = draw(st.integers(lowest, highest))
        b = draw(st.integers(a, highest))
        if kind == "*":
            elements.append("*")
            expected |= set(range(lowest, highest + 1))
        elif kind == "*/s":
            elements.append(f"*/{step}")
            expected |= set(range(lowest, highest + 1, step))
        elif kind == "v":
            elements.append(value_text(a))
            expected.add(a)
        elif kind == "a-b":
            elements.append(f"{value_text(a)}-{value_text(b)}")
            expected |= set(range(a, b + 1))
        elif kind == "a-b/s":
            elements.append(f"{value_text(a)}-{value_text(b)}/{step}")
            expected |= set(range(a, b + 1, step))
        else:
            elements.append(f"{value_text(a)}/{step}")
            expected |= set(range(a, highest + 1, step))
    return ",".join(elements), expected


@st.composite
def expressions(draw: st.DrawFn) -> tuple[str, list[set[int]]]:
    fields = [draw(field_text(index)) for index in range(6)]
    return " ".join(text for text, _ in fields), [values for _, values in fields]


@settings(max_examples=300, deadline=None)
@given(expressions())
def test_parsed_fields_select_exactly_the_written_values(case: tuple[str, list[set[int]]]) -> None:
    expression, expected = case
    schedule = CronSchedule.parse(expression)
    parsed = [schedule.seconds, schedule.minutes, schedule.hours, schedule.days, schedule.months, schedule.days_of_week]
    assert [set(values) for values in parsed] == expected


def reference_next(schedule: CronSchedule, base: datetime) -> datetime | None:
    """The first matching second after `base`, found day by day and then by nested loops (UTC)."""
    day = base.date()
    for _ in range(366 * 30):
        if day.month in schedule.months and day.day in schedule.days and day.isoweekday() % 7 in schedule.days_of_week:
            for hour in schedule.hours:
                for minute in schedule.minutes:
                    for second in schedule.seconds:
                        moment = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)
                        if moment > base:
                            return moment
        day += timedelta(days=1)
    return None


@settings(max_examples=200, deadline=None)
@given(
    expressions(),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31)),
)
def test_next_occurrence_is_the_first_matching_second_after_the_base(
    case: tuple[str, list[set[int]]], base_naive: datetime
) -> None:
    expression, _ = case
    base = base_naive.replace(tzinfo=UTC)
    schedule = CronSchedule.parse(expression)
    expected = reference_next(schedule, base)
    if expected is None:  # e.g. 31 February: never within the search horizon
        with pytest.raises(ScheduleError):
            schedule.next_after(base)
        return
    found = schedule.next_after(base)
    assert found == expected
    assert found > base and schedule.matches(found)


def test_reference_and_parser_agree_on_a_leap_day_monday() -> None:
    schedule = CronSchedule.parse("0 0 0 29 FEB MON")
    assert schedule.next_after(at("2024-03-01T00:00:00")) == reference_next(schedule, at("2024-03-01T00:00:00"))
    assert schedule.next_after(at("2024-03-01T00:00:00")).date() == date(2044, 2, 29)
