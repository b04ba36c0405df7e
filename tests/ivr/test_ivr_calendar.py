"""Business hours, Chinese public holidays and 调休 make-up working days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.calendar import (
    HOLIDAYS_DIR,
    BusinessCalendar,
    CalendarError,
    build_calendar,
    load_holidays,
    parse_span,
    parse_weekly,
    runtime_holidays_dir,
)

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def lawyers() -> BusinessCalendar:
    return build_calendar({"mon-fri": "09:00-17:30"}, ["cn-2026"])


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [
        (datetime(2026, 3, 10, 8, 59, 59, tzinfo=SH), False),
        (datetime(2026, 3, 10, 9, 0, tzinfo=SH), True),
        (datetime(2026, 3, 10, 17, 29, 59, tzinfo=SH), True),
        (datetime(2026, 3, 10, 17, 30, tzinfo=SH), False),  # the end is not included
        (datetime(2026, 3, 7, 10, 0, tzinfo=SH), False),  # ordinary Saturday
        (datetime(2026, 10, 1, 10, 0, tzinfo=SH), False),  # 国庆节, a Thursday
        (datetime(2026, 2, 16, 10, 0, tzinfo=SH), False),  # 春节, a Monday
        (datetime(2026, 1, 2, 10, 0, tzinfo=SH), False),  # 元旦 holiday Friday
        (datetime(2026, 2, 14, 10, 0, tzinfo=SH), True),  # 调休 Saturday
        (datetime(2026, 1, 4, 10, 0, tzinfo=SH), True),  # 调休 Sunday
        (datetime(2026, 10, 10, 16, 0, tzinfo=SH), True),  # 调休 Saturday
        (datetime(2026, 10, 10, 18, 0, tzinfo=SH), False),  # ... but only in office hours
    ],
)
def test_lawyer_hours(lawyers, moment, is_open):
    assert lawyers.is_open(moment) is is_open


def test_time_zone_is_converted(lawyers):
    # 01:30 UTC is 09:30 in Shanghai: open; 10:00 UTC is 18:00: closed.
    assert lawyers.is_open(datetime(2026, 3, 10, 1, 30, tzinfo=UTC))
    assert not lawyers.is_open(datetime(2026, 3, 10, 10, 0, tzinfo=UTC))


def test_naive_time_is_refused(lawyers):
    with pytest.raises(CalendarError, match="aware datetime"):
        lawyers.is_open(datetime(2026, 3, 10, 10, 0))


def test_holiday_file_2026():
    found = load_holidays(HOLIDAYS_DIR / "cn-2026.yaml")
    assert len(found.holidays) == 33
    assert all(d.weekday() >= 5 for d in found.workdays)  # make-up days fall on weekends
    assert found.workdays == {
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    }
    # Each festival's day itself is inside its holiday.
    for festival in (
        date(2026, 1, 1),
        date(2026, 2, 17),
        date(2026, 4, 5),
        date(2026, 5, 1),
        date(2026, 6, 19),
        date(2026, 9, 25),
        date(2026, 10, 1),
    ):
        assert festival in found.holidays


def test_makeup_hours_can_differ():
    cal = build_calendar({"mon-fri": "09:00-17:30"}, ["cn-2026"], makeup="09:00-12:00")
    assert cal.is_open(datetime(2026, 2, 14, 11, 0, tzinfo=SH))
    assert not cal.is_open(datetime(2026, 2, 14, 13, 0, tzinfo=SH))


def test_split_day_and_weekend_hours():
    hours = parse_weekly({"mon-fri": "09:00-12:00, 13:30-17:30", "sat": ["10:00-12:00"]})
    assert hours[0] == ((time(9), time(12)), (time(13, 30), time(17, 30)))
    assert hours[5] == ((time(10), time(12)),) and 6 not in hours
    cal = BusinessCalendar(hours=hours)
    assert not cal.is_open(datetime(2026, 3, 10, 12, 30, tzinfo=SH))
    assert cal.is_open(datetime(2026, 3, 7, 11, 0, tzinfo=SH))


def test_always_open_includes_holidays_and_midnight():
    cal = BusinessCalendar.always_open()
    assert cal.is_open(datetime(2026, 10, 1, 0, 0, tzinfo=SH))
    assert cal.is_open(datetime(2026, 10, 1, 23, 59, 59, 999999, tzinfo=SH))


@pytest.mark.parametrize(
    ("text", "message"),
    [("9-17", "must look like"), ("17:00-09:00", "after the start"), ("25:00-26:00", "no such")],
)
def test_bad_spans(text, message):
    with pytest.raises(CalendarError, match=message):
        parse_span(text)


def test_bad_weekly_and_holiday_files(tmp_path: Path):
    with pytest.raises(CalendarError, match="runs backwards"):
        parse_weekly({"fri-mon": "09:00-17:00"})
    with pytest.raises(CalendarError, match="given twice"):
        parse_weekly({"mon-fri": "09:00-17:00", "fri": "09:00-12:00"})
    bad = tmp_path / "x.yaml"
    bad.write_text("holidays: [2026-13-01]\n")
    with pytest.raises(CalendarError, match="not a date"):
        load_holidays(bad)
    bad.write_text("holidays: [2026-05-01]\nworkdays: [2026-05-01]\n")
    with pytest.raises(CalendarError, match="both holiday and workday"):
        load_holidays(bad)
    with pytest.raises(CalendarError, match="does not exist"):
        build_calendar({"mon": "09:00-10:00"}, ["cn-1999"])


def test_runtime_holidays_are_seeded_from_the_package_and_edits_are_kept(tmp_path: Path) -> None:
    directory = runtime_holidays_dir(tmp_path)
    assert directory == tmp_path / "holidays"
    shipped = sorted(p.name for p in HOLIDAYS_DIR.glob("*.yaml"))
    assert shipped and sorted(p.name for p in directory.glob("*.yaml")) == shipped
    first = directory / shipped[0]
    first.unlink()  # a shipped file the runtime lacks comes back
    runtime_holidays_dir(tmp_path)
    assert first.read_bytes() == (HOLIDAYS_DIR / shipped[0]).read_bytes()
    first.write_text("# the operator's own\nholidays: []\n", encoding="utf-8")
    runtime_holidays_dir(tmp_path)  # an edited file is the operator's: never overwritten
    assert first.read_text(encoding="utf-8").startswith("# the operator's own")
