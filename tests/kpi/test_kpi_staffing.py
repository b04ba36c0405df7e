"""seats_needed: targets met, minimal (one seat fewer misses), both models."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpi.erlang import erlang_a, erlang_c_service_level
from kpi.staffing import StaffingResult, seats_needed


def misses(
    result: StaffingResult,
    seats: int,
    calls_per_hour: float,
    aht_s: float,
    patience_s: float | None,
    short_abandon_s: float = 5.0,
) -> bool:
    """Would ``seats`` miss one of the result's targets?"""
    load = calls_per_hour / 3600 * aht_s
    if seats < 1:
        return True
    if patience_s is None:  # no steady state at or below the load; then only SL binds
        if seats <= load or result.target_sl is None:
            return seats <= load
        share, t = result.target_sl
        return erlang_c_service_level(seats, load, aht_s, t) < share
    state = erlang_a(seats, calls_per_hour / 3600, aht_s, patience_s)
    if (
        result.target_answer is not None
        and state.answer_rate(short_abandon_s) < result.target_answer
    ):
        return True
    if result.target_sl is not None:
        share, t = result.target_sl
        return state.service_level(t) < share
    return False


def test_erlang_c_plan_for_the_published_example() -> None:
    # 720 calls/h at 240 s = 48 erlangs; 80% in 15 s needs 55 seats (55 give 84.6%).
    plan = seats_needed(720, 240)
    assert plan.model == "erlang_c"
    assert plan.seats == 55
    assert plan.service_level == pytest.approx(0.8459, abs=1e-4)
    assert plan.p_wait == pytest.approx(0.2387, abs=1e-4)
    assert plan.asa_s == pytest.approx(8.18, abs=0.01)
    assert plan.occupancy == pytest.approx(48 / 55)
    assert plan.answer_rate == 1.0 and plan.abandon_rate == 0.0
    assert misses(plan, 54, 720, 240, None)


def test_erlang_a_plan_for_a_provincial_hotline() -> None:
    # 300 calls/h, AHT 6 min (30 erlangs), callers wait 90 s on average before hanging up.
    plan = seats_needed(300, 360, patience_s=90, target_answer=0.95, target_sl=(0.8, 15))
    assert plan.model == "erlang_a"
    assert plan.answer_rate >= 0.95 and plan.service_level >= 0.8
    assert misses(plan, plan.seats - 1, 300, 360, 90)
    # with abandonment, fewer seats reach the same service level than Erlang C says
    sl_only_a = seats_needed(300, 360, patience_s=90, target_answer=None)
    assert sl_only_a.seats <= seats_needed(300, 360).seats
    # the answer-rate target alone needs fewer seats than with the 80/15 service level
    answer_only = seats_needed(300, 360, patience_s=90, target_sl=None)
    assert answer_only.seats <= plan.seats
    assert answer_only.answer_rate >= 0.95
    assert misses(answer_only, answer_only.seats - 1, 300, 360, 90)


def test_zero_load_and_bad_input() -> None:
    assert seats_needed(0, 300).seats == 1
    assert seats_needed(0, 300, patience_s=60).seats == 1
    with pytest.raises(ValueError, match="aht_s"):
        seats_needed(100, 0)
    with pytest.raises(ValueError, match="calls_per_hour"):
        seats_needed(-1, 300)


def test_thousand_seats() -> None:
    plan = seats_needed(12_000, 300, patience_s=120)  # 1000 erlangs
    # Abandonment keeps an overloaded queue stable: fewer seats than erlangs meet 95% / 80-15.
    assert 900 < plan.seats < 1000
    assert plan.answer_rate >= 0.95 and plan.service_level >= 0.8
    strict = seats_needed(12_000, 300, patience_s=120, short_abandon_s=0)
    assert strict.seats >= plan.seats and strict.answered_share >= 0.95
    assert misses(plan, plan.seats - 1, 12_000, 300, 120)
    plan_c = seats_needed(12_000, 300)
    assert 1000 < plan_c.seats < 1050


@settings(max_examples=40, deadline=None)
@given(
    st.floats(1, 2000),
    st.floats(30, 900),
    st.one_of(st.none(), st.floats(10, 600)),
    st.floats(0.5, 0.99),
    st.one_of(st.none(), st.tuples(st.floats(0.5, 0.95), st.floats(5, 60))),
)
def test_seats_needed_is_minimal(
    calls_per_hour: float,
    aht_s: float,
    patience_s: float | None,
    target_answer: float,
    target_sl: tuple[float, float] | None,
) -> None:
    plan = seats_needed(calls_per_hour, aht_s, patience_s, target_answer, target_sl)
    assert not misses(plan, plan.seats, calls_per_hour, aht_s, patience_s)
    assert misses(plan, plan.seats - 1, calls_per_hour, aht_s, patience_s)
    for p in (plan.answer_rate, plan.service_level, plan.p_wait, plan.abandon_rate, plan.occupancy):
        assert 0.0 <= p <= 1.0
