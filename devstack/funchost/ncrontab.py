"""Timer schedules as the Functions timer trigger reads them: 6-field NCRONTAB and TimeSpan intervals.

NCRONTAB fields are `second minute hour day month day-of-week`, each `*`, a value, a range `a-b`, a step
`*/n`, `a/n` or `a-b/n`, or a comma list of those; months and days of week also by (prefix of) name.
As in NCrontab (and unlike Vixie cron) day-of-month and day-of-week must BOTH match. Occurrences are
computed in wall-clock time of the given time zone (UTC by default).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol

from devstack.funchost.config import HostConfigError, parse_timespan

_MONTHS = ("JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER", "OCTOBER",
           "NOVEMBER", "DECEMBER")  # fmt: skip
_DAYS = ("SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY")
# (name, lowest, highest, value names) per field, in expression order.
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 6, _DAYS),
)
# A schedule that matches nothing (e.g. 30 February) would loop forever; give up after this many years.
_SEARCH_YEARS = 30


class ScheduleError(HostConfigError):
    """A timer schedule that is neither a valid NCRONTAB expression nor a TimeSpan."""


class TimerSchedule(Protocol):
    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after `moment` (an aware datetime)."""
        ...


def _parse_value(text: str, lowest: int, highest: int, names: tuple[str, ...], field: str) -> int:
    if text.isdigit():
        value = int(text)
    else:
        upper = text.upper()
        matches = [index for index, name in enumerate(names) if upper and name.startswith(upper)]
        if not matches:
            raise ScheduleError(f"{text!r} is not a valid {field} value")
        value = matches[0] + lowest
    if not lowest <= value <= highest:
        raise ScheduleError(f"{field} value {value} is outside {lowest}-{highest}")
    return value


def parse_field(text: str, field: str, lowest: int, highest: int, names: tuple[str, ...] = ()) -> frozenset[int]:
    """The values one field of an expression selects."""
    values: set[int] = set()
    for element in text.split(","):
        if not element:
            raise ScheduleError(f"empty element in {field} field {text!r}")
        step = 1
        stepped = "/" in element
        if stepped:
            element, _, step_text = element.partition("/")
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"bad step {step_text!r} in {field} field {text!r}")
            step = int(step_text)
        if element == "*":
            first, last = lowest, highest
        elif "-" in element:
            start, _, end = element.partition("-")
            first = _parse_value(start, lowest, highest, names, field)
            last = _parse_value(end, lowest, highest, names, field)
            if first > last:
                raise ScheduleError(f"range {element!r} in {field} field runs backwards")
        else:
            first = _parse_value(element, lowest, highest, names, field)
            # NCrontab: `a/n` means from a to the field's maximum in steps of n.
            last = highest if stepped else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed 6-field NCRONTAB expression."""

    expression: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: tuple[int, ...]
    days_of_week: frozenset[int]
    zone: tzinfo = UTC

    @classmethod
    def parse(cls, expression: str, zone: tzinfo = UTC) -> CronSchedule:
        tokens = expression.split()
        if len(tokens) != 6:
            raise ScheduleError(
                f"{expression!r} is not a 6-field NCRONTAB expression (second minute hour day month day-of-week)"
            )
        fields = [
            parse_field(token, name, lowest, highest, names)
            for token, (name, lowest, highest, names) in zip(tokens, _FIELDS, strict=True)
        ]
        return cls(
            expression=expression,
            seconds=tuple(sorted(fields[0])),
            minutes=tuple(sorted(fields[1])),
            hours=tuple(sorted(fields[2])),
            days=fields[3],
            months=tuple(sorted(fields[4])),
            days_of_week=fields[5],
            zone=zone,
        )

    def matches(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        return (
            local.second in self.seconds
            and local.minute in self.minutes
            and local.hour in self.hours
            and local.day in self.days
            and local.month in self.months
            and (local.isoweekday() % 7) in self.days_of_week
        )

    def next_after(self, moment: datetime) -> datetime:
        local = moment.astimezone(self.zone).replace(tzinfo=None, microsecond=0) + timedelta(seconds=1)
        found = self._next_wall_clock(local)
        # Wall-clock times skipped by a DST change resolve forward, as .NET's conversion does.
        return found.replace(tzinfo=self.zone).astimezone(UTC)

    def _next_wall_clock(self, t: datetime) -> datetime:
        limit = t.year + _SEARCH_YEARS
        while t.year <= limit:
            if t.month not in self.months:
                index = bisect.bisect_right(self.months, t.month)
                t = (
                    datetime(t.year, self.months[index], 1)
                    if index < len(self.months)
                    else datetime(t.year + 1, self.months[0], 1)
                )
                continue
            if t.day not in self.days or (t.isoweekday() % 7) not in self.days_of_week:
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                index = bisect.bisect_right(self.hours, t.hour)
                if index == len(self.hours):
                    t = datetime(t.year, t.month, t.day) + timedelta(days=1)
                else:
                    t = t.replace(hour=self.hours[index], minute=0, second=0)
                continue
            if t.minute not in self.minutes:
                index = bisect.bisect_right(self.minutes, t.minute)
                if index == len(self.minutes):
                    t = t.replace(minute=0, second=0) + timedelta(hours=1)
                else:
                    t = t.replace(minute=self.minutes[index], second=0)
                continue
            if t.second not in self.seconds:
                index = bisect.bisect_right(self.seconds, t.second)
                if index == len(self.seconds):
                    t = t.replace(second=0) + timedelta(minutes=1)
                else:
                    t = t.replace(second=self.seconds[index])
                continue
            return t
        raise ScheduleError(f"{self.expression!r} has no occurrence within {_SEARCH_YEARS} years")


@dataclass(frozen=True)
class IntervalSchedule:
    """A TimeSpan schedule (`hh:mm:ss`): every interval, counted from the previous occurrence."""

    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.interval


def parse_schedule(text: str, zone: tzinfo = UTC) -> TimerSchedule:
    """A timer trigger's `schedule`: NCRONTAB when it has spaces, otherwise a TimeSpan."""
    text = text.strip()
    if " " in text:
        return CronSchedule.parse(text, zone)
    try:
        interval = parse_timespan(text)
    except HostConfigError as error:
        raise ScheduleError(f"{text!r} is neither an NCRONTAB expression nor a TimeSpan (hh:mm:ss)") from error
    if interval <= timedelta(0):
        raise ScheduleError(f"TimeSpan schedule {text!r} must be positive")
    return IntervalSchedule(interval)
