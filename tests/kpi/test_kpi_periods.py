"""Period keys in Asia/Shanghai, interval splitting, seat intervals and occupancy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kpi_fixtures import at

from kpi.facts import FactsError, SeatSpan
from kpi.formulas import (
    breakdown_seats,
    occupancy,
    period_key,
    period_start,
    seat_intervals,
    split_interval,
)


@pytest.mark.parametrize(
    ("utc", "period", "key"),
    [
        # 16:30 UTC on 2024-02-29 is 00:30 on 2024-03-01 in Shanghai
        ("2024-02-29T16:30:00", "hour", "2024-03-01T00"),
        ("2024-02-29T16:30:00", "day", "2024-03-01"),
        ("2024-02-29T15:59:59", "day", "2024-02-29"),
        ("2024-02-29T16:30:00", "month", "2024-03"),
        ("2024-12-31T16:00:00", "year", "2025"),
        ("2024-12-31T15:59:59", "year", "2024"),
        # ISO weeks: Monday 2024-12-30 (local) belongs to 2025-W01
        ("2024-12-29T16:00:00", "week", "2025-W01"),
        ("2024-12-29T15:59:59", "week", "2024-W52"),
    ],
)
def test_period_key_uses_local_time(utc: str, period: str, key: str) -> None:
    ts = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert period_key(ts, period) == key  # type: ignore[arg-type]


def test_period_key_other_zone_and_naive_refused() -> None:
    ts = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)
    assert period_key(ts, "day", tz="UTC") == "2024-03-01"
    assert period_key(ts, "hour", tz="Asia/Shanghai") == "2024-03-01T10"
    with pytest.raises(ValueError, match="naive"):
        period_key(datetime(2024, 3, 1), "day")
    with pytest.raises(ValueError, match="period must be"):
        period_key(ts, "fortnight")  # type: ignore[arg-type]


def test_split_interval_at_hour_and_midnight() -> None:
    pieces = split_interval(at("2024-03-01 23:50:00"), at("2024-03-02 01:10:00"), "hour")
    assert [(k, (b - a).total_seconds()) for k, a, b in pieces] == [
        ("2024-03-01T23", 600.0),
        ("2024-03-02T00", 3600.0),
        ("2024-03-02T01", 600.0),
    ]
    days = split_interval(at("2024-03-01 23:50:00"), at("2024-03-02 01:10:00"), "day")
    assert [(k, (b - a).total_seconds()) for k, a, b in days] == [
        ("2024-03-01", 600.0),
        ("2024-03-02", 4200.0),
    ]
    month = split_interval(at("2024-12-31 23:00:00"), at("2025-01-01 01:00:00"), "month")
    assert [k for k, _, _ in month] == ["2024-12", "2025-01"]
    assert split_interval(at("2024-03-01 10:00:00"), at("2024-03-01 10:00:00"), "hour") == []
    with pytest.raises(ValueError, match="before it starts"):
        split_interval(at("2024-03-01 10:00:00"), at("2024-03-01 09:00:00"), "hour")


def test_pause_across_an_interval_boundary_is_split() -> None:
    spans = [
        SeatSpan("s1", "logged_in", at("2024-03-01 09:30:00"), at("2024-03-01 11:30:00")),
        SeatSpan("s1", "paused", at("2024-03-01 09:50:00"), at("2024-03-01 10:20:00")),
        SeatSpan("s1", "busy", at("2024-03-01 10:30:00"), at("2024-03-01 10:36:00")),
        SeatSpan(
            "s2", "logged_in", at("2024-03-01 10:00:00"), at("2024-03-01 11:00:00"), region="包头"
        ),
        SeatSpan("s2", "busy", at("2024-03-01 10:10:00"), at("2024-03-01 10:40:00"), region="包头"),
    ]
    rows = {(r.seat, r.key): r for r in seat_intervals(spans, "hour")}
    s1_9, s1_10, s1_11 = (rows[("s1", f"2024-03-01T{h}")] for h in ("09", "10", "11"))
    assert (s1_9.logged_in_s, s1_9.paused_s, s1_9.busy_s) == (1800, 600, 0)
    assert (s1_10.logged_in_s, s1_10.paused_s, s1_10.busy_s) == (3600, 1200, 360)
    assert (s1_11.logged_in_s, s1_11.paused_s, s1_11.busy_s) == (1800, 0, 0)
    assert occupancy([s1_10]).value == pytest.approx(360 / 2400)
    assert occupancy([s1_9, s1_10, s1_11]).value == pytest.approx(360 / 5400)
    assert occupancy([s1_9]).value == 0.0
    assert occupancy([]).value is None
    per_seat = breakdown_seats(rows.values(), "seat")
    assert per_seat["s2"].value == pytest.approx(1800 / 3600)
    assert per_seat["s1"].denominator_ids == (
        "s1@2024-03-01T09",
        "s1@2024-03-01T10",
        "s1@2024-03-01T11",
    )
    per_hour = breakdown_seats(rows.values(), "period")
    assert per_hour["2024-03-01T10"].value == pytest.approx((360 + 1800) / (2400 + 3600))
    assert breakdown_seats(rows.values(), "region")["包头"].value == pytest.approx(0.5)
    # one day: the pause is not split and all seat time lands on 2024-03-01
    (day_s1,) = [r for r in seat_intervals(spans, "day") if r.seat == "s1"]
    assert (day_s1.logged_in_s, day_s1.paused_s, day_s1.busy_s) == (7200, 1800, 360)


def test_inconsistent_seat_spans_are_refused() -> None:
    with pytest.raises(FactsError, match=r"s9.*longer than logged in"):
        seat_intervals(
            [SeatSpan("s9", "paused", at("2024-03-01 10:00:00"), at("2024-03-01 10:05:00"))],
            "hour",
        )
    with pytest.raises(FactsError, match="ends before"):
        SeatSpan("s9", "busy", at("2024-03-01 10:05:00"), at("2024-03-01 10:00:00"))


instants = st.integers(0, 3 * 366 * 86400).map(
    lambda s: datetime(2023, 1, 1, tzinfo=UTC) + timedelta(seconds=s)
)


@settings(max_examples=200, deadline=None)
@given(
    instants, st.integers(0, 60 * 86400), st.sampled_from(["hour", "day", "week", "month", "year"])
)
def test_split_pieces_cover_the_interval_each_in_one_period(
    start: datetime, length_s: int, period: str
) -> None:
    end = start + timedelta(seconds=length_s)
    pieces = split_interval(start, end, period)  # type: ignore[arg-type]
    assert sum((b - a).total_seconds() for _, a, b in pieces) == length_s
    if pieces:
        assert pieces[0][1] == start and pieces[-1][2] == end
    for (key, a, b), nxt in zip(pieces, [*pieces[1:], None], strict=False):
        assert a < b
        assert period_key(a, period) == key  # type: ignore[arg-type]
        assert period_key(b - timedelta(microseconds=1), period) == key  # type: ignore[arg-type]
        if nxt is not None:
            assert nxt[1] == b and nxt[0] > key  # contiguous, keys increase
            assert period_start(b, period).astimezone(UTC) == b  # type: ignore[arg-type]
