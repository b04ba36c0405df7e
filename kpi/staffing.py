"""Seat planning: how many seats a load needs to meet the hotline's targets.

Turns hotline figures (calls per hour, AHT, callers' mean patience) into the queueing models
of ``kpi.erlang`` and reports the seat count with the figures it achieves, so a plan can be
checked against the yearly targets (接通率 >= 95%, 服务水平 e.g. 80% within 15 s).

Model choice: with ``patience_s`` the Erlang A model (callers hang up after an exponential
patience) is used, and ``answer_rate`` is the hotline's 接通率 with abandons shorter than
``short_abandon_s`` excluded, as in the reports. Without patience, Erlang C: nobody hangs up,
so the answer rate is 1 whenever the queue is stable and only the service level binds. The
service level is always "answered within T / answered" (DESIGN.md).

Seats are found by counting up one at a time, so ``seats - 1`` always misses some target.
The result is seats *on the phones*: shrinkage (breaks, training, meetings) and rostering are
for the caller to add.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from kpi.erlang import (
    erlang_a_seats,
    erlang_c,
    erlang_c_asa,
    erlang_c_seats,
    erlang_c_service_level,
)


@dataclass(frozen=True, slots=True)
class StaffingResult:
    """Seats needed and what that many seats achieve, in the model used."""

    seats: int
    model: Literal["erlang_c", "erlang_a"]
    load_erlangs: float
    answer_rate: float  # 接通率, short abandons excluded (Erlang A); 1.0 in Erlang C
    answered_share: float  # of all callers, short abandons included
    abandon_rate: float  # of all callers
    service_level: float  # answered within target_sl[1] / answered
    p_wait: float  # P(a caller finds every seat busy)
    asa_s: float  # mean wait of answered callers
    occupancy: float
    target_answer: float | None
    target_sl: tuple[float, float] | None


def seats_needed(
    calls_per_hour: float,
    aht_s: float,
    patience_s: float | None = None,
    target_answer: float | None = 0.95,
    target_sl: tuple[float, float] | None = (0.8, 15.0),
    short_abandon_s: float = 5.0,
) -> StaffingResult:
    """Fewest seats for ``calls_per_hour`` at ``aht_s`` meeting the answer and SL targets.

    ``target_sl = (share, seconds)``; pass ``None`` to drop a target. ``patience_s`` switches
    from Erlang C to Erlang A.
    """
    if not calls_per_hour >= 0 or math.isinf(calls_per_hour):
        raise ValueError(f"calls_per_hour must be finite and >= 0, got {calls_per_hour!r}")
    if not aht_s > 0 or math.isinf(aht_s):
        raise ValueError(f"aht_s must be finite and > 0, got {aht_s!r}")
    sl_t = target_sl[1] if target_sl is not None else 0.0
    arrival_rate = calls_per_hour / 3600.0
    load = arrival_rate * aht_s

    if patience_s is None:
        if target_sl is not None and target_sl[0] > 0:
            seats = erlang_c_seats(load, aht_s, target_sl[0], sl_t)
        else:
            seats = max(1, math.floor(load) + 1)  # the fewest seats with a steady state
        c = erlang_c(seats, load)
        asa_all = erlang_c_asa(seats, load, aht_s)
        return StaffingResult(
            seats=seats,
            model="erlang_c",
            load_erlangs=load,
            answer_rate=1.0,
            answered_share=1.0,
            abandon_rate=0.0,
            service_level=erlang_c_service_level(seats, load, aht_s, sl_t),
            p_wait=c,
            asa_s=asa_all,
            occupancy=load / seats,
            target_answer=target_answer,
            target_sl=target_sl,
        )

    seats, state = erlang_a_seats(
        arrival_rate,
        aht_s,
        patience_s,
        target_answer=target_answer,
        short_abandon_s=short_abandon_s,
        target_sl=target_sl,
    )
    return StaffingResult(
        seats=seats,
        model="erlang_a",
        load_erlangs=load,
        answer_rate=state.answer_rate(short_abandon_s),
        answered_share=state.answered,
        abandon_rate=state.p_abandon,
        service_level=state.service_level(sl_t),
        p_wait=state.p_wait,
        asa_s=state.asa_s(),
        occupancy=state.occupancy,
        target_answer=target_answer,
        target_sl=target_sl,
    )
