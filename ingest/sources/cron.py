"""Cron expressions for source schedules: the five fields of crontab(5), and when the
next run after a moment falls.

    minute hour day-of-month month day-of-week      e.g. "0 3 * * 1-5"

Each field takes `*`, a number, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`, and lists
of these (`1,15,30-40`); months and weekdays also take names (jan, mon). Weekdays run
0-7, 0 and 7 both Sunday. As in Vixie cron, a day matches when day-of-month OR
day-of-week does if both are restricted, and by the restricted one otherwise. The
macros @hourly, @daily (@midnight), @weekly, @monthly and @yearly (@annually) stand for
their five fields. Times are UTC unless the expression begins with `TZ=Zone ` (or
cronie's `CRON_TZ=`), e.g. "TZ=Europe/Paris 0 3 * * 1-5"; a wall time a daylight-saving
change skips runs at the same offset as just before the change (an hour later in the
new time), one it repeats runs once.

Written here rather than taken from croniter or cronsim: neither is a dependency, and
this is all a schedule needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# name, lowest, highest, the names of its values (from the lowest)
FIELDS: tuple[tuple[str, int, int, list[str]], ...] = (
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day of month", 1, 31, []),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
)
# Feb 29 on a given weekday can be 28 years away; nothing that never runs gets past it.
HORIZON_YEARS = 29


class CronError(ValueError):
    """An expression that is not a valid cron schedule; the message says which part."""


def _value(text: str, field: str, low: int, high: int, names: list[str]) -> int:
    if text.lower() in names:
        return names.index(text.lower()) + low
    if not text.isdigit():
        raise CronError(f"{field}: {text!r} is not a number" + (" or a name" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{field}: {value} is outside {low}-{high}")
    return value


def _field(text: str, field: str, low: int, high: int, names: list[str]) -> frozenset[int]:
    """The values one field allows."""
    values: set[int] = set()
    for part in text.split(","):
        span, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field}: the step in {part!r} must be a positive number")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first, last = _value(a, field, low, high, names), _value(b, field, low, high, names)
            if first > last:
                raise CronError(f"{field}: the range {span!r} runs backwards")
        elif span:
            first = _value(span, field, low, high, names)
            last = high if slash else first  # "5/15": from 5 to the end, every 15
        else:
            raise CronError(f"{field}: empty value in {text!r}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    """A parsed expression: the values each field allows, and the zone it runs in."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 Sunday .. 6 Saturday
    # The field began with "*" (Vixie's test): then the other day field alone decides.
    any_day: bool
    any_weekday: bool
    zone: tzinfo

    @classmethod
    def parse(cls, text: str) -> Cron:
        """The expression checked (CronError saying what is wrong)."""
        words = text.split()
        zone: tzinfo = UTC
        if words and words[0].startswith(("TZ=", "CRON_TZ=")):
            name = words.pop(0).partition("=")[2]
            try:
                zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise CronError(f"unknown time zone {name!r} (e.g. Europe/Paris)") from None
        if len(words) == 1 and words[0].startswith("@"):
            if words[0].lower() not in MACROS:
                raise CronError(f"unknown macro {words[0]!r}: one of {', '.join(MACROS)}")
            words = MACROS[words[0].lower()].split()
        if len(words) != 5:
            raise CronError(
                f"a cron expression has 5 fields (minute hour day-of-month month "
                f"day-of-week), not {len(words)}: {text!r}"
            )
        sets = [_field(w, *spec) for w, spec in zip(words, FIELDS, strict=True)]
        cron = cls(
            text=" ".join(text.split()),
            minutes=sets[0],
            hours=sets[1],
            days=sets[2],
            months=sets[3],
            weekdays=frozenset(d % 7 for d in sets[4]),
            any_day=words[2].startswith("*"),
            any_weekday=words[4].startswith("*"),
            zone=zone,
        )
        cron.next_after(datetime(2000, 1, 1, tzinfo=UTC))  # "0 0 30 2 *" never runs
        return cron

    def _day_matches(self, day: datetime) -> bool:
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, moment: datetime) -> datetime:
        """The first run strictly after `moment` (aware), in UTC."""
        local = moment.astimezone(self.zone).replace(tzinfo=None, second=0, microsecond=0)
        at = local + timedelta(minutes=1)
        end = at.year + HORIZON_YEARS
        while at.year <= end:
            if at.month not in self.months:
                at = datetime(at.year + at.month // 12, at.month % 12 + 1, 1)
            elif not self._day_matches(at):
                at = datetime(at.year, at.month, at.day) + timedelta(days=1)
            elif at.hour not in self.hours:
                at = datetime(at.year, at.month, at.day, at.hour) + timedelta(hours=1)
            elif at.minute not in self.minutes:
                at += timedelta(minutes=1)
            else:
                found = at.replace(tzinfo=self.zone).astimezone(UTC)
                if found > moment:  # a wall time repeated by a DST change: once
                    return found
                at += timedelta(minutes=1)
        raise CronError(f"{self.text!r} never runs (no such date)")


def next_run(interval_s: int, cron: str | None, after: datetime) -> datetime | None:
    """When a source with this schedule runs next after `after` (None: on demand only)."""
    if cron:
        return Cron.parse(cron).next_after(after)
    return after + timedelta(seconds=interval_s) if interval_s else None
