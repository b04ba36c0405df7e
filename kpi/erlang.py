"""Queueing formulas for staffing: Erlang B, Erlang C (M/M/n) and Erlang A (M/M/n+M, Palm).

This module owns the mathematics only: pure functions of offered load, seat count, handling
time and patience. It knows nothing about calls, queues or the event log; ``kpi.staffing``
turns hotline figures (calls per hour, AHT, targets) into calls of these functions.

Units: times in seconds, rates per second, load in erlangs (``A = lambda * AHT``).

Erlang B and C
--------------
Erlang B uses the recursion ``B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1))``: every step is a
ratio of numbers below ``k + A``, so nothing overflows at 1,000 seats (``A**n / n!`` would).
Erlang C follows from it: ``C = n B / (n - A (1 - B))`` for ``A < n`` and 1 otherwise.
Service level ``P(W <= t) = 1 - C exp(-(n - A) t / AHT)``; ``ASA = C AHT / (n - A)``.

Erlang A (Palm's M/M/n+M; Mandelbaum & Zeltyn, "The Palm/Erlang-A queue, with applications
to call centers", Technion 2004/2005; Garnett, Mandelbaum & Reiman 2002)
------------------------------------------------------------------------------------------
Poisson arrivals (rate ``lam``), exponential handling (``mu = 1/AHT``), ``n`` seats, FCFS, and
every caller hangs up after an exponential patience (``theta = 1/patience``) if not answered
by then. With ``x = n mu / theta``, ``y = lam / theta`` and

    S(a, z) = sum_{k>=0} z**k / ((a+1)(a+2)...(a+k))     (= a e^z z^-a gamma(a, z))

the birth-death chain gives ``pi_n = E / (1 + (S(x, y) - 1) E)`` with ``E`` = Erlang B(n, A),
``P(W > 0) = pi_n S(x, y)`` and ``P(Ab) = theta E[Q] / lam = pi_n (S (y - x) + x) / y``
(these are Mandelbaum & Zeltyn's formulas in another notation).

Waiting-time tail. A caller who finds ``k`` callers ahead waits (if patient) until ``k + 1``
departures from the callers ahead, at rates ``theta (x + k), theta (x + k - 1), ..., theta x``:
the ``(k+1)``-th order statistic of ``x + k`` exponentials, so ``U = exp(-theta V)`` is
Beta(x, k+1). Summing over ``k`` with the stationary weights gives closed forms with
``q = exp(-theta t)``:

    P(V > t)            = pi_n S(x,   y q) e^{y(1-q)} q^x
    P(served, V > t)    = pi_n x/(x+1) S(x+1, y q) e^{y(1-q)} q^(x+1)

(``V`` is the offered wait; the caller is served iff patience > V.) From these:
answered fraction ``1 - P(Ab)``, service level among answered calls
``1 - P(served, V > t) / P(served)`` (the hotline's 服务水平 definition), and the fraction
that hangs up within ``s`` seconds, ``1 - [P(served) - P(served, V > s)] - e^{-theta s} P(V > s)``,
which lets the model report the hotline's 接通率 with short abandons excluded.

``S`` is summed in log space around its largest term (terms rise while ``a + k < z`` and fall
after), so the work is ``O(max(z - a, 0) + sqrt(a + z))`` terms and nothing overflows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

# A summed term smaller than exp(-_TAIL) times the running total is negligible (~1e-20).
_TAIL = 46.0


def _check(servers: int, load: float) -> None:
    if servers < 0 or int(servers) != servers:
        raise ValueError(f"servers must be a non-negative integer, got {servers!r}")
    if not load >= 0 or math.isinf(load):
        raise ValueError(f"load must be a finite number >= 0 erlangs, got {load!r}")


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of M/M/n/n (Erlang's loss formula) by the stable recursion."""
    _check(servers, load)
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


def _erlang_c_from_b(servers: int, load: float, b: float) -> float:
    if load >= servers:
        return 1.0
    return servers * b / (servers - load * (1.0 - b))


def erlang_c(servers: int, load: float) -> float:
    """Probability that a caller waits (all seats busy) in M/M/n; 1.0 when load >= servers."""
    return _erlang_c_from_b(servers, load, erlang_b(servers, load))


def erlang_c_service_level(servers: int, load: float, aht_s: float, t_s: float) -> float:
    """P(answered within ``t_s``) in M/M/n; 0.0 when the queue is unstable (load >= servers)."""
    if aht_s <= 0 or t_s < 0:
        raise ValueError("aht_s must be > 0 and t_s >= 0")
    if load >= servers:
        return 0.0
    c = erlang_c(servers, load)
    return 1.0 - c * math.exp(-(servers - load) * t_s / aht_s)


def erlang_c_asa(servers: int, load: float, aht_s: float) -> float:
    """Average speed of answer (mean wait of all callers) in M/M/n; inf when unstable."""
    if aht_s <= 0:
        raise ValueError("aht_s must be > 0")
    if load >= servers:
        return math.inf
    return erlang_c(servers, load) * aht_s / (servers - load)


def erlang_c_seats(load: float, aht_s: float, target_sl: float, t_s: float) -> int:
    """Fewest seats with Erlang C service level >= ``target_sl`` at ``t_s`` seconds."""
    if not 0 < target_sl < 1:
        raise ValueError("target_sl must be in (0, 1)")
    _check(0, load)
    n = math.floor(load) + 1  # fewer seats than the load never reach a steady state
    b = erlang_b(n, load)
    while True:
        c = _erlang_c_from_b(n, load, b)
        if 1.0 - c * math.exp(-(n - load) * t_s / aht_s) >= target_sl:
            return n
        n += 1
        b = load * b / (n + load * b)


# --- Erlang A -------------------------------------------------------------------------------


def _log_series(a: float, z: float, weight: Callable[[int], float] | None = None) -> float:
    """log of sum_{k>=0} w(k) z**k / prod_{i=1..k}(a+i); w >= 0, polynomially bounded."""
    if z <= 0.0:
        w0 = 1.0 if weight is None else weight(0)
        return math.log(w0) if w0 > 0 else -math.inf
    log_z = math.log(z)
    peak = max(0, math.floor(z - a))  # terms grow while z / (a + k) > 1
    ref = peak * log_z + math.lgamma(a + 1.0) - math.lgamma(a + peak + 1.0)
    total = 0.0
    log_term = -ref  # log(term_0) - ref, term_0 = 1
    k = 0
    while True:
        w = 1.0 if weight is None else weight(k)
        contribution = w * math.exp(log_term)
        total += contribution
        if k > peak and total > 0 and (w == 0 or log_term + math.log(max(w, 1.0)) < -_TAIL):
            break
        k += 1
        log_term += log_z - math.log(a + k)
    return ref + math.log(total) if total > 0 else -math.inf


@dataclass(frozen=True, slots=True)
class ErlangA:
    """Steady state of M/M/n+M for one seat count; probabilities per arriving caller.

    Build with :func:`erlang_a`. ``p_wait`` = P(all seats busy on arrival), ``p_abandon`` =
    P(hangs up before a seat answers), ``answered`` = 1 - p_abandon.
    """

    servers: int
    arrival_rate: float
    aht_s: float
    patience_s: float
    log_pi_n: float  # log P(exactly n in system)
    p_wait: float
    p_abandon: float

    @property
    def load(self) -> float:
        return self.arrival_rate * self.aht_s

    @property
    def answered(self) -> float:
        return 1.0 - self.p_abandon

    @property
    def occupancy(self) -> float:
        """Share of seat time spent handling calls: answered load / seats."""
        return min(1.0, self.load * self.answered / self.servers)

    @property
    def mean_wait_s(self) -> float:
        """Mean time in queue over all callers, answered or not (Little: E[Q] / lam)."""
        return self.p_abandon * self.patience_s

    def _xyq(self, t_s: float) -> tuple[float, float, float, float]:
        theta = 1.0 / self.patience_s
        x = self.servers * self.patience_s / self.aht_s
        y = self.arrival_rate * self.patience_s
        # log of e^{y(1-q)} q^x, written to stay exact for tiny theta * t.
        log_shift = y * -math.expm1(-theta * t_s) - x * theta * t_s
        return x, y * math.exp(-theta * t_s), log_shift, theta

    def p_wait_longer(self, t_s: float) -> float:
        """P(offered wait V > t_s): the caller would wait longer than t_s if patient."""
        if t_s < 0:
            raise ValueError("t_s must be >= 0")
        if self.log_pi_n == -math.inf:
            return 0.0
        x, yq, log_shift, _ = self._xyq(t_s)
        return _clip(math.exp(self.log_pi_n + _log_series(x, yq) + log_shift))

    def _served_after(self, t_s: float) -> float:
        """P(served and offered wait V > t_s)."""
        if self.log_pi_n == -math.inf:
            return 0.0
        x, yq, log_shift, theta = self._xyq(t_s)
        log_value = self.log_pi_n + math.log(x / (x + 1.0)) + _log_series(x + 1.0, yq)
        return _clip(math.exp(log_value + log_shift - theta * t_s))  # q^(x+1) = q^x q

    def answered_within(self, t_s: float) -> float:
        """P(answered by a seat within t_s seconds), over all arriving callers."""
        return _clip(self.answered - self._served_after(t_s))

    def service_level(self, t_s: float) -> float:
        """服务水平 in the hotline's sense: answered within t_s / answered."""
        if self.answered <= 0.0:
            return 0.0
        return _clip(1.0 - self._served_after(t_s) / self.answered)

    def p_abandon_within(self, s: float) -> float:
        """P(the caller hangs up unanswered within s seconds of joining the queue)."""
        if s < 0:
            raise ValueError("s must be >= 0")
        served_by_s = self.answered - self._served_after(s)
        return _clip(1.0 - served_by_s - math.exp(-s / self.patience_s) * self.p_wait_longer(s))

    def answer_rate(self, short_abandon_s: float = 0.0) -> float:
        """接通率 as the hotline defines it: answered / callers, short abandons excluded."""
        kept = 1.0 - self.p_abandon_within(short_abandon_s) if short_abandon_s > 0 else 1.0
        return _clip(self.answered / kept) if kept > 0 else 0.0

    def asa_s(self) -> float:
        """Average speed of answer over answered callers, E[V | served].

        Given k callers ahead, U = exp(-theta V) ~ Beta(x, k+1), so E[V U] =
        (1/theta) x/(x+k+1) (psi(x+k+2) - psi(x+1)); summed with the stationary weights.
        """
        if self.log_pi_n == -math.inf or self.answered <= 0.0:
            return 0.0
        theta = 1.0 / self.patience_s
        x = self.servers * self.patience_s / self.aht_s
        y = self.arrival_rate * self.patience_s
        harmonic = [0.0]  # harmonic[k] = sum_{i=1}^{k+1} 1/(x+i), grown lazily

        def weight(k: int) -> float:
            while len(harmonic) <= k + 1:
                harmonic.append(harmonic[-1] + 1.0 / (x + len(harmonic)))
            return x / (x + k + 1.0) * harmonic[k + 1]

        log_sum = _log_series(x, y, weight)
        return math.exp(self.log_pi_n + log_sum) / theta / self.answered


def _clip(p: float) -> float:
    return 0.0 if p < 0.0 else 1.0 if p > 1.0 else p


def _erlang_a_from_b(
    servers: int, arrival_rate: float, aht_s: float, patience_s: float, b: float
) -> ErlangA:
    if arrival_rate == 0.0 or b == 0.0:
        return ErlangA(servers, arrival_rate, aht_s, patience_s, -math.inf, 0.0, 0.0)
    x = servers * patience_s / aht_s
    y = arrival_rate * patience_s
    log_s = _log_series(x, y)
    # log(1 + (S - 1) E) = log((1 - E) + S E)
    log_den = _logaddexp(math.log1p(-b) if b < 1.0 else -math.inf, log_s + math.log(b))
    log_pi_n = math.log(b) - log_den
    p_wait = _clip(math.exp(log_pi_n + log_s))
    # P(Ab) = pi_n * sum_k k t_k / y, summed directly: no cancellation between terms.
    log_t1 = _log_series(x, y, float)
    p_abandon = _clip(math.exp(log_pi_n + log_t1 - math.log(y)))
    return ErlangA(servers, arrival_rate, aht_s, patience_s, log_pi_n, p_wait, p_abandon)


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


def erlang_a(servers: int, arrival_rate: float, aht_s: float, patience_s: float) -> ErlangA:
    """Erlang A steady state: ``servers`` seats, ``arrival_rate`` calls/s, mean patience."""
    if servers < 1 or int(servers) != servers:
        raise ValueError(f"servers must be an integer >= 1, got {servers!r}")
    if not arrival_rate >= 0 or math.isinf(arrival_rate):
        raise ValueError(f"arrival_rate must be finite and >= 0, got {arrival_rate!r}")
    if not aht_s > 0 or not patience_s > 0 or math.isinf(aht_s) or math.isinf(patience_s):
        raise ValueError("aht_s and patience_s must be finite and > 0")
    b = erlang_b(servers, arrival_rate * aht_s)
    return _erlang_a_from_b(servers, arrival_rate, aht_s, patience_s, b)


def erlang_a_seats(
    arrival_rate: float,
    aht_s: float,
    patience_s: float,
    *,
    target_answer: float | None = 0.95,
    short_abandon_s: float = 0.0,
    target_sl: tuple[float, float] | None = None,
    max_servers: int = 100_000,
) -> tuple[int, ErlangA]:
    """Fewest seats meeting every given target in Erlang A, with its steady state.

    ``target_answer`` is on :meth:`ErlangA.answer_rate` (short abandons excluded);
    ``target_sl = (share, t_s)`` on :meth:`ErlangA.service_level`. The search goes up one seat
    at a time, so the seat count below the answer always misses a target.
    """
    load = arrival_rate * aht_s
    _check(0, load)
    if target_answer is not None and not 0 <= target_answer < 1:
        raise ValueError("target_answer must be in [0, 1)")
    if target_sl is not None and not 0 <= target_sl[0] < 1:
        raise ValueError("target_sl share must be in [0, 1)")
    # Served throughput is at most n / AHT, and kept callers are at least those patient for
    # short_abandon_s, so answer_rate <= n / (load * e^{-s/patience}): skip seats that cannot.
    keep_floor = math.exp(-short_abandon_s / patience_s) if short_abandon_s > 0 else 1.0
    b = 1.0
    for n in range(1, max_servers + 1):
        b = load * b / (n + load * b)
        if target_answer is not None and load > 0 and n < target_answer * load * keep_floor:
            continue
        state = _erlang_a_from_b(n, arrival_rate, aht_s, patience_s, b)
        if target_answer is not None and state.answer_rate(short_abandon_s) < target_answer:
            continue
        if target_sl is not None and state.service_level(target_sl[1]) < target_sl[0]:
            continue
        return n, state
    raise ValueError(f"no seat count up to {max_servers} meets the targets")
