"""Facts derived from a hand-written event log: every edge case of the issue, by hand."""

from __future__ import annotations

import pytest

from kpi.derive import SeatRegions, derive, derive_call
from kpi.facts import Survey
from kpi.formulas import all_kpis, breakdown, seat_intervals
from tests.kpi.kpi_events import edge_case_day
from tests.kpi.kpi_fixtures import at


@pytest.fixture(scope="module")
def derived():  # type: ignore[no-untyped-def]
    return derive(edge_case_day())


def test_one_facts_row_per_real_call(derived) -> None:  # type: ignore[no-untyped-def]
    ids = sorted(c.call_id for c in derived.calls)
    assert ids == sorted(f"c{i}" for i in range(1, 12))  # no seat:... pseudo calls


def test_answered_call_with_wrap_up_and_caller_region(derived) -> None:  # type: ignore[no-untyped-def]
    c1 = derived.by_id()["c1"]
    assert (c1.queue, c1.seat, c1.region, c1.topic) == ("A", "s1", "呼和浩特", "labor")
    assert c1.entered_queue_at == at("2024-03-01 10:00:10")
    assert (c1.wait_s, c1.talk_s, c1.wrap_s) == (10, 300, 30)
    assert c1.survey is Survey.SATISFIED


def test_transfer_between_queues_counts_once_in_the_answering_queue(derived) -> None:  # type: ignore[no-untyped-def]
    c4 = derived.by_id()["c4"]
    assert (c4.queue, c4.seat, c4.wait_s) == ("A", "s1", 12)
    assert c4.talk_s == 240  # both seats' talk
    assert c4.wrap_s == 60  # both seats' wrap-up
    assert c4.region == "包头"  # no region of its own: the answering seat's
    assert c4.transferred_from == ()  # moved after the answer: not a new request


def test_overflow_is_attributed_to_the_final_queue(derived) -> None:  # type: ignore[no-untyped-def]
    c5 = derived.by_id()["c5"]
    assert (c5.queue, c5.overflowed_from, c5.wait_s, c5.wrap_s) == ("B", ("A",), 40, 0)
    assert c5.survey is None


def test_callbacks(derived) -> None:  # type: ignore[no-untyped-def]
    calls = derived.by_id()
    c7, c8 = calls["c7"], calls["c8"]
    assert c7.answered and c7.answered_by_callback and not c7.abandoned
    assert c7.callback_requested_at == at("2024-03-01 12:01:00")
    assert (c7.seat, c7.talk_s, c7.wrap_s, c7.wait_s) == ("s2", 300, 30, 60)
    assert not c8.answered and not c8.abandoned and c8.callback_requested_at is not None


def test_abandons_and_waiting(derived) -> None:  # type: ignore[no-untyped-def]
    calls = derived.by_id()
    assert calls["c2"].abandoned and calls["c2"].wait_s == 3
    assert calls["c11"].abandoned and calls["c11"].wait_s == 5.0
    assert calls["c10"].in_progress
    assert not calls["c9"].asked_for_seat


def test_hand_computed_kpis(derived) -> None:  # type: ignore[no-untyped-def]
    k = all_kpis(derived.calls)
    assert (k["answer_rate"].numerator, k["answer_rate"].denominator) == (5, 8)
    assert sorted(k["answer_rate"].numerator_ids) == ["c1", "c4", "c5", "c6", "c7"]
    assert k["answer_rate"].excluded == {"short_abandon": ("c2",), "in_progress": ("c10",)}
    assert (k["abandonment_rate"].numerator, k["abandonment_rate"].denominator) == (2, 8)
    assert sorted(k["service_level"].numerator_ids) == ["c1", "c4", "c6"]  # c6 at exactly 15 s
    assert k["service_level"].denominator == 4
    assert k["asa"].value == pytest.approx((10 + 12 + 40 + 15) / 4)
    assert k["aht"].value == pytest.approx((330 + 300 + 120 + 90 + 330) / 5)
    assert (k["satisfaction"].numerator, k["satisfaction"].denominator) == (2, 3)
    assert (k["evaluation_rate"].numerator, k["evaluation_rate"].denominator) == (3, 5)
    # the call spanning midnight counts on the day it entered
    days = breakdown(derived.calls, "day")
    assert set(days) == {"2024-03-01", None}  # None: c9 never asked for a seat
    per_queue = breakdown(derived.calls, "queue")
    assert (per_queue["A"]["answer_rate"].numerator, per_queue["A"]["answer_rate"].denominator) == (
        3,
        4,
    )
    assert (per_queue["B"]["answer_rate"].numerator, per_queue["B"]["answer_rate"].denominator) == (
        2,
        4,
    )


def test_seat_pause_across_an_hour_is_split(derived) -> None:  # type: ignore[no-untyped-def]
    hours = {(r.seat, r.key): r for r in seat_intervals(derived.spans, "hour")}
    s2_10, s2_11 = hours[("s2", "2024-03-01T10")], hours[("s2", "2024-03-01T11")]
    assert (s2_10.logged_in_s, s2_10.paused_s, s2_10.busy_s) == (3600, 600, 150)
    assert (s2_11.paused_s, s2_11.busy_s) == (35, 120)
    s1_10 = hours[("s1", "2024-03-01T10")]
    assert s1_10.busy_s == 300 + 30 + 120 + 30
    # c6's wrap-up after midnight is seat time of the next day
    assert hours[("s1", "2024-03-02T00")].busy_s == 60 + 30


def test_late_events_change_the_facts() -> None:
    events = [e for e in edge_case_day() if e.call_id == "c6"]
    before = derive_call(events)
    from hotline.events.types import CallEvent

    late = CallEvent(
        "c6", 99, at("2024-03-05 10:00:00"), "followup.updated", {"status": "contacted"}
    )
    after = derive_call([*events, late])
    assert before.survey is Survey.DISSATISFIED and not before.followed_up
    assert after.followed_up


def test_seat_region_is_the_one_at_the_answer() -> None:
    regions = SeatRegions()
    regions.add("s1", at("2024-03-01 09:00:00"), "包头")
    regions.add("s1", at("2024-03-02 09:00:00"), "赤峰")
    assert regions.at("s1", at("2024-03-01 12:00:00")) == "包头"
    assert regions.at("s1", at("2024-03-02 12:00:00")) == "赤峰"
    assert regions.at("s9", at("2024-03-02 12:00:00")) is None


def test_hold_is_counted_apart_from_talk_and_in_the_handling_time() -> None:
    from hotline.events.types import CallEvent

    def ev(seq: int, hms: str, type_: str, **data: object) -> CallEvent:
        return CallEvent("h1", seq, at(f"2024-03-01 {hms}"), type_, data)

    events = [
        ev(1, "10:00:00", "call.entered"),
        ev(2, "10:00:10", "queue.entered", queue="labor"),
        ev(3, "10:00:20", "queue.connected", queue="labor", seat="s1"),
        ev(4, "10:01:00", "call.held", seat_id="s1"),  # 40 s talk, then 30 s on hold
        ev(5, "10:01:30", "call.resumed", seat_id="s1", held_s=30),
        ev(6, "10:02:00", "call.held", seat_id="s1"),  # 30 s talk, 15 s on hold
        ev(7, "10:02:15", "call.resumed", seat_id="s1"),
        ev(8, "10:02:15", "call.held", seat_id="s1"),  # held again until the caller hangs up
        ev(9, "10:02:45", "call.ended", hangup_by="caller"),
        ev(10, "10:03:00", "call.resumed", seat_id="s1"),  # after the end: nothing
    ]
    facts = derive_call(events, wrap_s=20)
    assert facts.hold_s == 30 + 15 + 30
    assert facts.talk_s == 40 + 30
    assert facts.handling_s == 40 + 30 + 75 + 20
    # A hold outside a connection (before the answer) is not hold time.
    early = derive_call([events[0], events[1], ev(3, "10:00:15", "call.held"), *events[2:3]])
    assert early.hold_s == 0
