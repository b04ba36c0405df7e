"""KPI formulas: hand-computed fixtures for every edge case, then hypothesis properties."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kpi_fixtures import at, call, day_of_calls

from kpi.facts import CallFacts, FactsError, Survey
from kpi.formulas import (
    KpiResult,
    Thresholds,
    abandonment_rate,
    aht,
    all_kpis,
    answer_rate,
    asa,
    breakdown,
    evaluation_rate,
    follow_up_rate,
    qa_rate,
    satisfaction,
    service_level,
    short_abandon_share,
)


def frac(result: KpiResult) -> tuple[float, float]:
    return result.numerator, result.denominator


# --- hand-computed fixtures (see kpi_fixtures.day_of_calls for the story of each call) ---


def test_answer_rate_hotline_excludes_short_abandons_in_progress_and_ivr_only() -> None:
    r = answer_rate(day_of_calls())
    # asked: c1 c2 c4 c5 c6 c7 c8 c9 c12; answered: c1 c2 c5 c6 c7 c8 (c8 by callback)
    assert frac(r) == (6, 9)
    assert r.value == pytest.approx(6 / 9)
    assert set(r.numerator_ids) == {"c1", "c2", "c5", "c6", "c7", "c8"}
    assert set(r.denominator_ids) == {"c1", "c2", "c4", "c5", "c6", "c7", "c8", "c9", "c12"}
    assert r.excluded["short_abandon"] == ("c3",)
    assert r.excluded["in_progress"] == ("c11",)
    assert "c10" not in r.denominator_ids  # never asked for a seat


def test_short_abandon_threshold_is_configurable_and_strict() -> None:
    calls = day_of_calls()
    # At 5 s c12 (5.0 s) is a real abandon; at 6 s it becomes short too; at 0 none is short.
    assert frac(answer_rate(calls, short_abandon_s=6)) == (6, 8)
    assert frac(answer_rate(calls, short_abandon_s=0)) == (6, 10)
    assert frac(short_abandon_share(calls)) == (1, 10)
    assert short_abandon_share(calls).numerator_ids == ("c3",)


def test_abandonment_rate() -> None:
    r = abandonment_rate(day_of_calls())
    assert frac(r) == (2, 9)
    assert set(r.numerator_ids) == {"c4", "c12"}  # c9 chose a callback: not an abandon


def test_service_level_and_asa_count_live_answers_only() -> None:
    calls = day_of_calls()
    sl = service_level(calls)  # live: c1 10s, c2 20s, c5 12s, c6 15s, c7 20s
    assert frac(sl) == (3, 5)
    assert set(sl.numerator_ids) == {"c1", "c5", "c6"}  # 15 s is within 15 s
    assert "c8" not in sl.denominator_ids  # answered by callback
    assert frac(service_level(calls, threshold_s=20)) == (5, 5)
    assert frac(service_level(calls, threshold_s=14.9)) == (2, 5)
    a = asa(calls)
    assert frac(a) == (77, 5)
    assert a.value == pytest.approx(15.4)
    assert a.unit == "seconds"


def test_aht_counts_every_handled_call_including_callbacks() -> None:
    r = aht(day_of_calls())
    # 360 + 230 + 120 + 150 + 60 + 150 (c8, callback)
    assert frac(r) == (1070, 6)
    assert r.value == pytest.approx(1070 / 6)


def test_satisfaction_evaluation_follow_up_and_qa() -> None:
    calls = day_of_calls()
    sat = satisfaction(calls)  # c1 满意, c2 不满意, c5 基本满意, c7 不满意, c8 满意
    assert frac(sat) == (3, 5)
    assert set(sat.numerator_ids) == {"c1", "c5", "c8"}
    assert "c6" not in sat.denominator_ids  # survey not answered: not in the denominator
    ev = evaluation_rate(calls)
    assert frac(ev) == (5, 6)
    assert "c6" in ev.denominator_ids and "c6" not in ev.numerator_ids
    fu = follow_up_rate(calls)
    assert frac(fu) == (1, 2)
    assert fu.numerator_ids == ("c2",)
    assert frac(qa_rate(calls)) == (2, 6)


def test_per_queue_rule_transfers_and_overflow_counted_once_in_final_queue() -> None:
    per_queue = breakdown(day_of_calls(), "queue", answer_rate)
    assert list(per_queue) == ["A", "B", None]  # None: c10 never reached a queue
    assert frac(per_queue["A"]) == (4, 5)  # c1 c2 c7 c8 of c1 c2 c4 c7 c8
    assert frac(per_queue["B"]) == (2, 4)  # c5 c6 of c5 c6 c9 c12
    assert "c5" not in per_queue["A"].denominator_ids  # transferred away before answer
    assert "c6" not in per_queue["A"].denominator_ids  # overflowed away
    assert frac(per_queue[None]) == (0, 0) and per_queue[None].value is None
    whole = answer_rate(day_of_calls())
    assert sum(r.numerator for r in per_queue.values()) == whole.numerator
    assert sum(r.denominator for r in per_queue.values()) == whole.denominator


def test_call_transferred_in_from_110_asks_for_a_seat() -> None:
    c7 = next(c for c in day_of_calls() if c.call_id == "c7")
    assert c7.transferred_in
    assert "c7" in answer_rate([c7]).numerator_ids


def test_call_spanning_midnight_counts_in_the_day_it_entered_the_queue() -> None:
    per_day = breakdown(day_of_calls(), "day", answer_rate)
    assert set(per_day) == {"2024-03-01", None}
    assert "c7" in per_day["2024-03-01"].numerator_ids  # answered at 00:00:10 on 03-02
    # Local, not UTC: 07:30 in Shanghai on 03-02 is 23:30 UTC on 03-01.
    early = call("e1", "2024-03-02 07:30:00", queue="A", seat="s1", answer_after=5)
    assert early.entered_queue_at is not None and early.entered_queue_at.day == 1
    assert list(breakdown([early], "day", answer_rate)) == ["2024-03-02"]


def test_breakdowns_per_seat_region_topic_and_hour() -> None:
    calls = day_of_calls()
    per_seat = breakdown(calls, "seat", aht)
    assert frac(per_seat["s1"]) == (420, 2)  # c1 360 + c7 60
    assert frac(per_seat["s2"]) == (380, 2)  # c2 230 + c8 150 (callback)
    assert frac(per_seat["s3"]) == (270, 2)
    per_region = breakdown(calls, "region", satisfaction)
    assert frac(per_region["呼和浩特"]) == (3, 3)
    assert frac(per_region["包头"]) == (0, 2)
    per_topic = breakdown(calls, "topic", answer_rate)
    assert frac(per_topic["labor"]) == (4, 4)
    per_hour = breakdown(calls, "hour", answer_rate)
    assert list(per_hour) == [
        "2024-03-01T10",
        "2024-03-01T11",
        "2024-03-01T12",
        "2024-03-01T23",
        None,
    ]
    assert frac(per_hour["2024-03-01T10"]) == (4, 5)  # c3 short; c4 abandoned
    assert per_hour["2024-03-01T12"].excluded["in_progress"] == ("c11",)


def test_breakdown_default_gives_every_kpi_with_thresholds() -> None:
    per_queue = breakdown(day_of_calls(), "queue", thresholds=Thresholds(service_level_s=20))
    assert set(per_queue["A"]) >= {
        "answer_rate",
        "satisfaction",
        "evaluation_rate",
        "follow_up_rate",
        "service_level",
        "asa",
        "abandonment_rate",
        "aht",
        "qa_rate",
        "short_abandon_share",
    }
    assert frac(per_queue["A"]["service_level"]) == (3, 3)  # c1 10s, c2 20s, c7 20s at T=20


def test_empty_inputs_give_none_not_errors() -> None:
    for result in all_kpis([]).values():
        assert result.value is None
        assert result.denominator == 0
    assert breakdown([], "queue") == {}


def test_invalid_group_and_contradictory_facts_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot group by"):
        breakdown(day_of_calls(), "agent")  # type: ignore[arg-type]
    with pytest.raises(FactsError, match=r"c99.*abandoned and answered"):
        call("c99", "2024-03-01 10:00:00", seat="s1", answer_after=3, abandoned=True)
    with pytest.raises(FactsError, match=r"c98.*survey"):
        call(
            "c98",
            "2024-03-01 10:00:00",
            survey=Survey.SATISFIED,
            ended_at=at("2024-03-01 10:01:00"),
        )
    with pytest.raises(FactsError, match="naive"):
        CallFacts("c97", at("2024-03-01 10:00:00").replace(tzinfo=None))
    with pytest.raises(FactsError, match="wait_s"):
        call("c96", "2024-03-01 10:00:00", abandoned=True, wait_s=-1)


# --- hypothesis properties --------------------------------------------------------------

OUTCOMES = (
    "answered",
    "callback_answered",
    "callback_missed",
    "abandoned",
    "unanswered",
    "in_progress",
    "ivr_only",
)


@st.composite
def calls_strategy(draw: st.DrawFn, call_id: str) -> CallFacts:
    outcome = draw(st.sampled_from(OUTCOMES))
    entered = at("2024-03-01 00:00:00") + timedelta(seconds=draw(st.integers(0, 40 * 86400)))
    wait = draw(st.floats(0, 600, allow_nan=False))
    common = {
        "queue": draw(st.sampled_from(["A", "B", "C"])),
        "region": draw(st.sampled_from(["r1", "r2", None])),
        "topic": draw(st.sampled_from(["labor", "family", None])),
        "qa_inspected": draw(st.booleans()),
    }
    if outcome == "ivr_only":
        return CallFacts(call_id, None, ended_at=entered)
    if outcome == "in_progress":
        return CallFacts(call_id, entered, wait_s=wait, **common)
    if outcome == "abandoned":
        return CallFacts(
            call_id,
            entered,
            abandoned=True,
            wait_s=wait,
            ended_at=entered + timedelta(seconds=wait),
            **common,
        )
    if outcome == "unanswered":
        return CallFacts(
            call_id, entered, wait_s=wait, ended_at=entered + timedelta(seconds=wait), **common
        )
    survey = draw(st.sampled_from([None, *Survey]))
    handled = {
        "seat": draw(st.sampled_from(["s1", "s2", "s3"])),
        "talk_s": draw(st.floats(0, 3600, allow_nan=False)),
        "hold_s": draw(st.floats(0, 600, allow_nan=False)),
        "wrap_s": draw(st.floats(0, 600, allow_nan=False)),
        "survey": survey,
        "followed_up": survey is Survey.DISSATISFIED and draw(st.booleans()),
    }
    if outcome == "answered":
        return CallFacts(
            call_id,
            entered,
            answered_at=entered + timedelta(seconds=wait),
            wait_s=wait,
            ended_at=entered + timedelta(seconds=wait + 60),
            **common,
            **handled,
        )
    requested = entered + timedelta(seconds=wait)
    if outcome == "callback_missed":
        return CallFacts(
            call_id,
            entered,
            wait_s=wait,
            callback_requested_at=requested,
            ended_at=requested,
            **common,
        )
    return CallFacts(
        call_id,
        entered,
        wait_s=wait,
        callback_requested_at=requested,
        callback_answered_at=requested + timedelta(hours=1),
        ended_at=requested,
        **common,
        **handled,
    )


call_lists = st.integers(0, 40).flatmap(
    lambda n: st.tuples(*(calls_strategy(f"c{i}") for i in range(n))).map(list)
)


@settings(max_examples=100, deadline=None)
@given(call_lists)
def test_rates_are_in_unit_interval_and_answered_at_most_asked(calls: list[CallFacts]) -> None:
    results = all_kpis(calls)
    for name, r in results.items():
        assert r.numerator >= 0 and r.denominator >= 0
        if r.unit == "ratio":
            assert r.numerator <= r.denominator, name
            assert r.value is None or 0.0 <= r.value <= 1.0, name
            assert len(r.numerator_ids) == r.numerator
            assert set(r.numerator_ids) <= set(r.denominator_ids), name
        assert (r.value is None) == (r.denominator == 0)
    ar = results["answer_rate"]
    assert ar.numerator + results["abandonment_rate"].numerator <= ar.denominator


@settings(max_examples=60, deadline=None)
@given(call_lists, st.floats(0, 4.99), st.sampled_from([1.0, 5.0, 10.0]))
def test_adding_a_short_abandon_never_changes_the_answer_rate(
    calls: list[CallFacts], wait: float, threshold: float
) -> None:
    wait = wait * threshold / 5.0  # always below the threshold
    before = answer_rate(calls, threshold)
    extra = CallFacts(
        "short",
        at("2024-03-05 10:00:00"),
        queue="A",
        abandoned=True,
        wait_s=wait,
        ended_at=at("2024-03-05 10:00:10"),
    )
    after = answer_rate([*calls, extra], threshold)
    assert (after.numerator, after.denominator, after.value) == (
        before.numerator,
        before.denominator,
        before.value,
    )
    assert after.excluded["short_abandon"] == (*before.excluded["short_abandon"], "short")


@settings(max_examples=60, deadline=None)
@given(call_lists, st.floats(0, 600), st.floats(0, 600))
def test_service_level_is_monotone_in_threshold(
    calls: list[CallFacts], t1: float, t2: float
) -> None:
    lo, hi = sorted((t1, t2))
    a, b = service_level(calls, lo), service_level(calls, hi)
    assert a.denominator == b.denominator
    assert a.numerator <= b.numerator


@settings(max_examples=60, deadline=None)
@given(
    call_lists,
    st.sampled_from(["queue", "seat", "region", "topic", "hour", "day", "week", "month", "year"]),
)
def test_breakdowns_partition_the_calls(calls: list[CallFacts], by: str) -> None:
    whole = all_kpis(calls)
    parts = breakdown(calls, by)  # type: ignore[arg-type]
    for name, total in whole.items():
        assert sum(p[name].denominator for p in parts.values()) == pytest.approx(total.denominator)
        assert sum(p[name].numerator for p in parts.values()) == pytest.approx(total.numerator)
