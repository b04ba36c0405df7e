"""Erlang B/C/A: published figures, independent computations, simulation and properties."""

from __future__ import annotations

import heapq
import math
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpi.erlang import (
    erlang_a,
    erlang_a_seats,
    erlang_b,
    erlang_c,
    erlang_c_asa,
    erlang_c_seats,
    erlang_c_service_level,
)

# --- independent reference computations ----------------------------------------------------


def exact_erlang_c(n: int, load: Fraction) -> Fraction:
    """Textbook Erlang C with exact rationals: (A^n/n! * n/(n-A)) / (sum_{k<n} A^k/k! + ...)."""
    terms = [load**k / math.factorial(k) for k in range(n)]
    top = load**n / math.factorial(n) * n / (n - load)
    return top / (sum(terms) + top)


def log_space_erlang_b(n: int, load: float) -> float:
    """Erlang B as exp(log term_n - logsumexp(log term_k)), terms A^k/k! via lgamma."""
    logs = [k * math.log(load) - math.lgamma(k + 1) for k in range(n + 1)]
    peak = max(logs)
    return math.exp(logs[-1] - peak) / sum(math.exp(v - peak) for v in logs)


def birth_death(n: int, lam: float, aht: float, patience: float) -> tuple[float, float]:
    """P(W > 0), P(Ab) of M/M/n+M from the truncated birth-death chain (no closed forms)."""
    mu, theta = 1 / aht, 1 / patience
    logp = [0.0]
    j = 0
    while True:
        j += 1
        death = min(j, n) * mu + max(j - n, 0) * theta
        logp.append(logp[-1] + math.log(lam / death))
        if j > n + 10 and logp[-1] < max(logp) - 60:
            break
    peak = max(logp)
    p = [math.exp(v - peak) for v in logp]
    total = sum(p)
    p_wait = sum(p[n:]) / total
    queue = sum((k - n) * p[k] for k in range(n, len(p))) / total
    return p_wait, theta * queue / lam  # P(Ab) = theta E[Q] / lam


def simulate(
    n: int, lam: float, aht: float, patience: float, calls: int, seed: int
) -> list[tuple[bool, float]]:
    """FCFS M/M/n+M: each caller takes the earliest free seat if patient enough."""
    rng = random.Random(seed)
    free = [0.0] * n  # heap of the times each seat becomes free
    t = 0.0
    out = []
    for _ in range(calls):
        t += rng.expovariate(lam)
        offered = max(0.0, free[0] - t)
        patience_draw = rng.expovariate(1 / patience)
        if patience_draw > offered:
            heapq.heapreplace(free, t + offered + rng.expovariate(1 / aht))
            out.append((True, offered))
        else:
            out.append((False, patience_draw))
    return out[calls // 20 :]  # drop the warm-up from an empty system


# --- Erlang B and C ------------------------------------------------------------------------


def test_erlang_b_against_published_table() -> None:
    # Erlang B tables (e.g. Mathematica's ErlangB docs: 30 lines at 25 erlangs block ~5%;
    # the standard 1% grade-of-service column: 10 lines 4.461 E, 20 lines 12.031 E,
    # 50 lines 37.901 E, 100 lines 84.064 E).
    assert erlang_b(30, 25) == pytest.approx(0.0526, abs=5e-4)
    for lines, load in [(10, 4.461), (20, 12.031), (50, 37.901), (100, 84.064)]:
        assert erlang_b(lines, load) == pytest.approx(0.01, abs=1e-4)


def test_erlang_c_published_worked_example() -> None:
    # The widely reproduced worked example (Mitan Ltd, "The Erlang-C formula"): 360 calls per
    # half hour, 4 min AHT (u = 48 erlangs), 55 agents, 15 s target: probability of waiting
    # 24%, ASA 8.2 s, 85% answered within 15 s; occupancy 87%.
    load = 360 / 1800 * 240
    assert load == pytest.approx(48)
    assert erlang_c(55, load) == pytest.approx(0.24, abs=0.005)
    assert erlang_c_asa(55, load, 240) == pytest.approx(8.2, abs=0.05)
    assert erlang_c_service_level(55, load, 240, 15) == pytest.approx(0.85, abs=0.005)
    # and the same figures to machine precision from the exact rational formula
    exact = float(exact_erlang_c(55, Fraction(48)))
    assert erlang_c(55, 48) == pytest.approx(exact, rel=1e-12)
    assert erlang_c_service_level(55, 48, 240, 15) == pytest.approx(
        1 - exact * math.exp(-7 * 15 / 240), rel=1e-12
    )
    assert erlang_c_asa(55, 48, 240) == pytest.approx(exact * 240 / 7, rel=1e-12)


@pytest.mark.parametrize(
    ("n", "load"), [(1, "1/2"), (2, "3/2"), (11, "10"), (14, "10"), (40, "35"), (80, "601/8")]
)
def test_erlang_c_matches_exact_rational_formula(n: int, load: str) -> None:
    a = Fraction(load)
    assert erlang_c(n, float(a)) == pytest.approx(float(exact_erlang_c(n, a)), rel=1e-12)


def test_no_overflow_at_a_thousand_seats() -> None:
    for load in (10.0, 500.0, 950.0, 999.0, 1500.0):
        b = erlang_b(1000, load)
        assert b == pytest.approx(log_space_erlang_b(1000, load), rel=1e-9, abs=1e-300)
        c = erlang_c(1000, load)
        assert 0.0 <= c <= 1.0 and math.isfinite(c)
    assert erlang_c(1000, 1500.0) == 1.0
    assert erlang_c_service_level(1000, 1000.0, 180, 15) == 0.0
    assert erlang_c_asa(1000, 1200.0, 180) == math.inf
    n = erlang_c_seats(950.0, 180, 0.8, 15)  # economies of scale: ~1.4% spare seats
    assert n == 963
    exact = float(exact_erlang_c(962, Fraction(950)))
    assert 1 - exact * math.exp(-(962 - 950) * 15 / 180) < 0.8  # one fewer misses, exactly


def test_erlang_c_seats_minimal_for_published_example() -> None:
    n = erlang_c_seats(48, 240, 0.8, 15)
    assert n == 55  # 55 give 84.6% (published); 54 give 79.0%
    assert erlang_c_service_level(n, 48, 240, 15) >= 0.8
    assert erlang_c_service_level(n - 1, 48, 240, 15) < 0.8


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="servers"):
        erlang_b(-1, 3)
    with pytest.raises(ValueError, match="load"):
        erlang_c(3, float("nan"))
    with pytest.raises(ValueError, match="servers"):
        erlang_a(0, 0.1, 180, 60)
    with pytest.raises(ValueError, match="patience"):
        erlang_a(3, 0.1, 180, 0)


loads = st.floats(0.01, 400, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(loads, st.integers(1, 500))
def test_erlang_c_wait_probability_decreases_with_seats(load: float, n: int) -> None:
    assert 0.0 <= erlang_b(n, load) <= 1.0
    assert erlang_c(n + 1, load) <= erlang_c(n, load)
    assert erlang_b(n, load) <= erlang_c(n, load) + 1e-15  # waiting >= blocking


@settings(max_examples=150, deadline=None)
@given(loads, st.integers(1, 500), st.floats(0, 120), st.floats(0, 120))
def test_erlang_c_service_level_monotone_in_t(load: float, n: int, t1: float, t2: float) -> None:
    lo, hi = sorted((t1, t2))
    assert (
        0.0
        <= erlang_c_service_level(n, load, 180, lo)
        <= erlang_c_service_level(n, load, 180, hi)
        <= 1.0
    )


# --- Erlang A --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "lam", "aht", "patience"),
    [
        (1, 0.004, 180, 60),
        (5, 0.1, 60, 30),
        (10, 10 / 180, 180, 120),  # critically loaded
        (20, 0.2, 180, 1000),  # 36 erlangs on 20 seats: abandonment keeps it stable
        (50, 0.3, 180, 60),
        (3, 0.001, 300, 60),
    ],
)
def test_erlang_a_matches_birth_death_chain(
    n: int, lam: float, aht: float, patience: float
) -> None:
    model = erlang_a(n, lam, aht, patience)
    p_wait, p_abandon = birth_death(n, lam, aht, patience)
    assert model.p_wait == pytest.approx(p_wait, rel=1e-9)
    assert model.p_abandon == pytest.approx(p_abandon, rel=1e-9)
    assert model.p_wait_longer(0) == pytest.approx(p_wait, rel=1e-9)
    assert model.mean_wait_s == pytest.approx(p_abandon * patience)
    assert model.answered_within(math.inf) == pytest.approx(model.answered)
    assert model.p_abandon_within(1e9) == pytest.approx(p_abandon, rel=1e-9)
    assert model.p_abandon_within(0) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    ("n", "lam", "aht", "patience"),
    [(10, 10 / 180, 180.0, 120.0), (4, 5 / 180, 180.0, 30.0)],  # critical; overloaded
)
def test_erlang_a_against_monte_carlo_simulation(
    n: int, lam: float, aht: float, patience: float
) -> None:
    model = erlang_a(n, lam, aht, patience)
    calls = simulate(n, lam, aht, patience, calls=150_000, seed=12348)
    served = [w for ok, w in calls if ok]
    abandoned = [w for ok, w in calls if not ok]
    short = sum(1 for w in abandoned if w < 5)
    waited = sum(1 for ok, w in calls if w > 0 and ok) + len(abandoned)
    assert len(abandoned) / len(calls) == pytest.approx(model.p_abandon, abs=0.006)
    assert waited / len(calls) == pytest.approx(model.p_wait, abs=0.01)
    assert sum(w <= 15 for w in served) / len(served) == pytest.approx(
        model.service_level(15), abs=0.01
    )
    assert sum(w <= 60 for w in served) / len(calls) == pytest.approx(
        model.answered_within(60), abs=0.01
    )
    assert short / len(calls) == pytest.approx(model.p_abandon_within(5), abs=0.003)
    assert len(served) / (len(calls) - short) == pytest.approx(model.answer_rate(5), abs=0.006)
    assert sum(served) / len(served) == pytest.approx(model.asa_s(), rel=0.04)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.floats(0.05, 0.95), st.floats(30, 600))
def test_erlang_a_tends_to_erlang_c_as_patience_grows(n: int, rho: float, aht: float) -> None:
    load = rho * n
    lam = load / aht
    model = erlang_a(n, lam, aht, patience_s=1e9)
    assert model.p_wait == pytest.approx(erlang_c(n, load), rel=1e-4, abs=1e-9)
    assert model.p_abandon == pytest.approx(0.0, abs=1e-4)
    assert model.service_level(15) == pytest.approx(
        erlang_c_service_level(n, load, aht, 15), abs=1e-4
    )
    # ASA over answered callers equals Erlang C's (everyone is answered)
    assert model.asa_s() == pytest.approx(erlang_c_asa(n, load, aht), rel=1e-3, abs=1e-6)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 120),
    st.floats(0.1, 2.0),
    st.floats(30, 600),
    st.floats(5, 900),
    st.floats(0, 120),
    st.floats(0, 120),
)
def test_erlang_a_probabilities_and_monotonicity(
    n: int, rho: float, aht: float, patience: float, t1: float, t2: float
) -> None:
    lam = rho * n / aht
    model = erlang_a(n, lam, aht, patience)
    more = erlang_a(n + 1, lam, aht, patience)
    lo, hi = sorted((t1, t2))
    for p in (
        model.p_wait,
        model.p_abandon,
        model.service_level(lo),
        model.answer_rate(5),
        model.p_wait_longer(lo),
        model.answered_within(lo),
        model.occupancy,
    ):
        assert 0.0 <= p <= 1.0
    assert model.p_abandon <= model.p_wait + 1e-12
    assert model.p_wait_longer(hi) <= model.p_wait_longer(lo) + 1e-12
    assert model.service_level(lo) <= model.service_level(hi) + 1e-12
    assert more.answered >= model.answered - 1e-12
    assert more.p_wait <= model.p_wait + 1e-12


def test_erlang_a_thousand_seats_is_fast_and_finite() -> None:
    for lam in (1000 / 300, 1200 / 300, 3000 / 300):
        model = erlang_a(1000, lam, 300, 120)
        for value in (model.p_wait, model.p_abandon, model.service_level(15), model.asa_s()):
            assert math.isfinite(value) and value >= 0
    n, state = erlang_a_seats(
        1000 / 300, 300, 120, target_answer=0.95, short_abandon_s=5, target_sl=(0.8, 15)
    )
    assert 900 < n < 1000 and state.answer_rate(5) >= 0.95
