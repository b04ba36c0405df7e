"""Business hours with Chinese public holidays and make-up working days (调休).

Owns: the weekly opening hours, the holiday files (``ivr/holidays/*.yaml``) and the one question
the IVR asks — ``is_open(now)``. A date is decided in this order: a public holiday is closed all
day; a make-up working day (调休, usually a Saturday or Sunday) is open with the make-up hours
(by default Monday's); any other date follows its weekday's hours. Times are local to the
calendar's time zone (Asia/Shanghai); ``now`` must carry a time zone, because a naive datetime
from a UTC server clock would shift the hours by eight.

Pure: no clock is read here, no I/O beyond reading the holiday YAML on request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

HOLIDAYS_DIR = Path(__file__).parent / "holidays"
RUNTIME_HOLIDAYS = "holidays"

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

Span = tuple[time, time]


class CalendarError(ValueError):
    """A calendar or holiday file problem, worded for the operator."""


@dataclass(frozen=True)
class BusinessCalendar:
    """Opening hours per weekday (0 = Monday) as half-open spans ``[start, end)``."""

    hours: Mapping[int, Sequence[Span]]
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)
    tz: str = "Asia/Shanghai"
    makeup_hours: Sequence[Span] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "workdays", frozenset(self.workdays))
        both = self.holidays & self.workdays
        if both:
            raise CalendarError(f"dates both holiday and make-up working day: {sorted(both)[:3]}")
        ZoneInfo(self.tz)  # fails early on a misspelt zone

    @classmethod
    def always_open(cls, tz: str = "Asia/Shanghai") -> BusinessCalendar:
        """7×24, holidays included: the hotline's own operators."""
        whole_day = ((time(0, 0), time.max),)
        return cls(hours={d: whole_day for d in range(7)}, tz=tz, makeup_hours=whole_day)

    def spans_for(self, day: date) -> Sequence[Span]:
        """The opening spans that apply on ``day`` (empty when closed all day)."""
        if day in self.holidays:
            return ()
        if day in self.workdays:
            if self.makeup_hours is not None:
                return self.makeup_hours
            return self.hours.get(0, ())
        return self.hours.get(day.weekday(), ())

    def is_open(self, now: datetime) -> bool:
        if now.tzinfo is None:
            raise CalendarError(f"is_open needs an aware datetime, got naive {now.isoformat()}")
        local = now.astimezone(ZoneInfo(self.tz))
        moment = local.time().replace(tzinfo=None)
        # time.max stands for 24:00, so the last microsecond of the day is open too.
        return any(
            start <= moment and (moment < end or end == time.max)
            for start, end in self.spans_for(local.date())
        )


def parse_span(text: str) -> Span:
    """``"09:00-17:30"`` → (09:00, 17:30); ``24:00`` is allowed as an end."""
    match = _SPAN.match(text)
    if not match:
        raise CalendarError(f"opening hours {text!r} must look like 09:00-17:30")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise CalendarError(f"opening hours {text!r}: no such time of day")
    start = time(h1, m1)
    end = time.max if h2 == 24 else time(h2, m2)
    if end <= start:
        raise CalendarError(f"opening hours {text!r}: the end must be after the start")
    return start, end


def _days(key: str) -> list[int]:
    key = key.strip().lower()
    if "-" in key:
        first, _, last = key.partition("-")
        if first not in WEEKDAYS or last not in WEEKDAYS:
            raise CalendarError(f"day range {key!r}: use names from {', '.join(WEEKDAYS)}")
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last)
        if b < a:
            raise CalendarError(f"day range {key!r} runs backwards")
        return list(range(a, b + 1))
    if key not in WEEKDAYS:
        raise CalendarError(f"day {key!r}: use one of {', '.join(WEEKDAYS)} or a range mon-fri")
    return [WEEKDAYS.index(key)]


def parse_weekly(spec: Mapping[str, str | Sequence[str]]) -> dict[int, tuple[Span, ...]]:
    """``{"mon-fri": "09:00-12:00, 13:30-17:30", "sat": []}`` → hours per weekday."""
    hours: dict[int, tuple[Span, ...]] = {}
    for key, value in spec.items():
        texts = value.split(",") if isinstance(value, str) else list(value)
        spans = tuple(sorted(parse_span(t) for t in texts if str(t).strip()))
        for day in _days(str(key)):
            if day in hours:
                raise CalendarError(f"{WEEKDAYS[day]} is given twice in the weekly hours")
            hours[day] = spans
    return hours


@dataclass(frozen=True)
class HolidaySet:
    holidays: frozenset[date]
    workdays: frozenset[date]


def load_holidays(path: Path) -> HolidaySet:
    """Read a holiday file: ``holidays:`` and ``workdays:`` lists of dates or date ranges.

    Entries are ISO dates (``2026-10-01``) or inclusive ranges (``2026-10-01..2026-10-07``),
    either plain or as ``{dates: ..., name: 国庆节}``.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise CalendarError(f"holiday file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise CalendarError(f"holiday file {path} is not valid YAML: {exc}") from exc
    except ValueError as exc:  # YAML reads 2026-13-01 as a date and fails
        raise CalendarError(f"holiday file {path}: not a date: {exc}") from exc
    if not isinstance(data, dict) or set(data) - {"holidays", "workdays", "source"}:
        raise CalendarError(f"holiday file {path}: expected keys holidays, workdays (and source)")
    result = HolidaySet(
        frozenset(_expand(path, data.get("holidays") or [])),
        frozenset(_expand(path, data.get("workdays") or [])),
    )
    both = result.holidays & result.workdays
    if both:
        raise CalendarError(f"holiday file {path}: {sorted(both)[0]} is both holiday and workday")
    return result


def _expand(path: Path, entries: Iterable[object]) -> Iterable[date]:
    for entry in entries:
        value = entry.get("dates") if isinstance(entry, dict) else entry
        if isinstance(value, date):
            yield value
            continue
        text = str(value)
        first, sep, last = text.partition("..")
        try:
            a = date.fromisoformat(first.strip())
            b = date.fromisoformat(last.strip()) if sep else a
        except ValueError as exc:
            raise CalendarError(f"holiday file {path}: {text!r} is not a date or range") from exc
        if b < a:
            raise CalendarError(f"holiday file {path}: range {text!r} runs backwards")
        for ordinal in range(a.toordinal(), b.toordinal() + 1):
            yield date.fromordinal(ordinal)


def runtime_holidays_dir(runtime_dir: Path) -> Path:
    """``<runtime>/holidays``: the holiday files in service, which operators may edit.

    Shipped files (a new year's notice) are copied in when missing there; a file already
    present is the operator's and is never overwritten.
    """
    directory = Path(runtime_dir) / RUNTIME_HOLIDAYS
    directory.mkdir(parents=True, exist_ok=True)
    for shipped in sorted(HOLIDAYS_DIR.glob("*.yaml")):
        target = directory / shipped.name
        if not target.exists():
            target.write_bytes(shipped.read_bytes())
    return directory


def build_calendar(
    weekly: Mapping[str, str | Sequence[str]],
    holiday_files: Sequence[str] = (),
    *,
    holidays_dir: Path = HOLIDAYS_DIR,
    tz: str = "Asia/Shanghai",
    makeup: str | Sequence[str] | None = None,
) -> BusinessCalendar:
    """A calendar from config: weekly hours plus named holiday files (``cn-2026``)."""
    holidays: set[date] = set()
    workdays: set[date] = set()
    for name in holiday_files:
        found = load_holidays(holidays_dir / f"{name}.yaml")
        holidays |= found.holidays
        workdays |= found.workdays
    makeup_hours = None
    if makeup is not None:
        texts = makeup.split(",") if isinstance(makeup, str) else list(makeup)
        makeup_hours = tuple(sorted(parse_span(t) for t in texts))
    return BusinessCalendar(
        hours=parse_weekly(weekly),
        holidays=frozenset(holidays),
        workdays=frozenset(workdays),
        tz=tz,
        makeup_hours=makeup_hours,
    )
