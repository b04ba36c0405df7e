"""Synthetic call-event streams in the exact vocabulary of the IVR, the ACD core and the adapter.

Used by the rollup tests (rebuild == incremental on a generated stream) and by the report
benchmark (``bench/kpi_report.py``). It is not a queueing simulator of record (``sim/`` is):
it produces plausible, internally consistent logs fast, with every case the KPIs must handle:
IVR-only calls, short and long abandons, overflow, transfers after an answer (counted once),
callbacks (answered or not), surveys answered or not, seats pausing across hour bounds,
shifts (login/logout) and calls spanning midnight.

Seats work two 12-hour shifts (00-12 and 12-24 local); each call goes to the seat of the
current shift that is free first; a caller whose wait would exceed their patience abandons.
Events are yielded in timestamp order, each call's with seq 1, 2, 3 ...
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hotline.events.types import CallEvent

REGIONS = ("呼和浩特", "包头", "鄂尔多斯", "赤峰", "通辽", "呼伦贝尔", "巴彦淖尔", "乌兰察布")
TOPICS = ("labor", "family", "contract", "traffic", "property", "criminal", "admin", "other")
QUEUES = ("general", "labor", "family")
# Relative arrivals per local hour of day (a day-time hotline with a quiet night).
HOUR_PROFILE = (1, 1, 1, 1, 1, 2, 4, 8, 14, 16, 15, 13, 10, 12, 14, 15, 14, 12, 8, 6, 4, 3, 2, 1)


@dataclass(frozen=True)
class SynthConfig:
    calls: int = 1000
    start: datetime = datetime(2026, 10, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    days: int = 7
    seats: int = 20
    seed: int = 12348
    aht_s: float = 240.0
    wrap_s: float = 30.0
    patience_s: float = 90.0
    ivr_only: float = 0.15  # self-service or hung up in the menu
    from_110: float = 0.05
    overflow: float = 0.05
    transfer: float = 0.03  # transferred to another queue after a seat answered
    callback: float = 0.05  # of callers who would abandon: ask for a callback instead
    callback_ok: float = 0.7
    survey_answered: float = 0.7
    dissatisfied: float = 0.06
    basically: float = 0.2
    pause: float = 0.04  # a seat takes a break after a call
    region_known: float = 0.9  # the caller's region is named in call.entered


class _Call:
    __slots__ = ("call_id", "events", "seq")

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.seq = 0
        self.events: list[CallEvent] = []


def generate(cfg: SynthConfig) -> Iterator[CallEvent]:
    """The event stream, in timestamp order."""
    rng = random.Random(cfg.seed)
    tz = cfg.start.tzinfo or UTC
    start = cfg.start.astimezone(UTC)
    span_s = cfg.days * 86400.0
    # Arrival times following the hour profile, sorted.
    weights = [
        HOUR_PROFILE[(start + timedelta(hours=h)).astimezone(tz).hour] for h in range(cfg.days * 24)
    ]
    hours = rng.choices(range(len(weights)), weights=weights, k=cfg.calls)
    arrivals = sorted(h * 3600.0 + rng.random() * 3600.0 for h in hours)
    seat_ids = [f"s{i:03d}" for i in range(cfg.seats)]
    seat_region = {s: REGIONS[i % len(REGIONS)] for i, s in enumerate(seat_ids)}
    shifts = {0: seat_ids[0::2], 1: seat_ids[1::2]}
    heap: list[tuple[float, int, CallEvent]] = []  # (ts seconds, tie, event)
    tie = itertools.count()
    seat_seq: dict[str, int] = {s: 0 for s in seat_ids}
    seat_state: dict[str, str] = {s: "offline" for s in seat_ids}

    def at(t: float) -> datetime:
        return start + timedelta(seconds=t)

    def push(t: float, call_id: str, seq: int, type_: str, data: dict[str, Any]) -> None:
        heapq.heappush(heap, (t, next(tie), CallEvent(call_id, seq, at(t), type_, data)))

    def emit(call: _Call, t: float, type_: str, **data: Any) -> None:
        call.seq += 1
        push(t, call.call_id, call.seq, type_, data)

    def seat_event(seat: str, t: float, type_: str, **data: Any) -> None:
        seat_seq[seat] += 1
        push(t, f"seat:{seat}", seat_seq[seat], type_, {"seat_id": seat, "seat": seat, **data})

    def change(seat: str, t: float, to: str, reason: str) -> None:
        seat_event(
            seat, t, "seat.state_changed", **{"from": seat_state[seat], "to": to}, reason=reason
        )
        seat_state[seat] = to

    # Shift sessions: seat -> free_at; login/logout emitted per shift boundary.
    free_at: dict[str, float] = {}
    shift_of_boundary: list[tuple[float, int]] = []
    local0 = cfg.start.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    for d in range(cfg.days + 1):
        for k in (0, 1):
            b = (local0 + timedelta(days=d, hours=12 * k)).astimezone(UTC)
            shift_of_boundary.append(((b - start).total_seconds(), k))
    boundaries = iter(shift_of_boundary)
    next_boundary = next(boundaries)
    current_shift: int | None = None
    on_shift: list[tuple[float, str]] = []

    def start_shift(t: float, k: int) -> None:
        nonlocal current_shift, on_shift
        if current_shift is not None:
            for seat in shifts[current_shift]:
                out = max(t, free_at.get(seat, t))
                change(seat, out, "offline", "logout")
                seat_event(seat, out, "seat.logout")
        current_shift = k
        on_shift = []
        for seat in shifts[k]:
            t_in = max(t, free_at.get(seat, t))
            seat_event(seat, t_in, "seat.login", region=seat_region[seat])
            change(seat, t_in, "available", "login")
            free_at[seat] = t_in
            on_shift.append((t_in, seat))
        heapq.heapify(on_shift)

    def take_seat(t: float) -> tuple[str, float]:
        free, seat = heapq.heappop(on_shift)
        return seat, max(free, t)

    def release(seat: str, t: float) -> None:
        if rng.random() < cfg.pause:
            change(seat, t, "paused", "小休")
            t += rng.uniform(300, 1200)
            change(seat, t, "available", "ready")
        free_at[seat] = t
        heapq.heappush(on_shift, (t, seat))

    def handle(call: _Call, seat: str, t: float, queue: str, *, callback: bool = False) -> float:
        """Offer, answer, talk, wrap: returns when the seat's talk ended."""
        if callback:
            change(seat, t, "offered", "callback")
            emit(call, t, "callback.placed", queue=queue, seat_id=seat, seat=seat, attempt=1)
        else:
            change(seat, t, "offered", "offer")
            emit(call, t, "queue.offered", queue=queue, seat_id=seat, seat=seat)
        t += rng.uniform(2, 6)
        change(seat, t, "on_call", "answer")
        emit(call, t, "queue.connected", queue=queue, seat_id=seat, seat=seat, callback=callback)
        return t

    def finish(call: _Call, seat: str, t: float, queue: str, by: str) -> None:
        emit(call, t, "queue.completed", queue=queue, seat_id=seat, seat=seat, by=by)
        change(seat, t, "wrap_up", "completed")
        t += rng.uniform(0.5, 1.5) * cfg.wrap_s
        change(seat, t, "available", "wrap_up_done")
        release(seat, t)

    for n, t0 in enumerate(arrivals):
        while next_boundary is not None and next_boundary[0] <= t0:
            start_shift(*next_boundary)
            next_boundary = next(boundaries, None)  # type: ignore[arg-type]
        while heap and heap[0][0] <= t0:
            yield heapq.heappop(heap)[2]
        call = _Call(f"c{cfg.seed}-{n:08d}")
        t = t0
        via = "110" if rng.random() < cfg.from_110 else "direct"
        entered: dict[str, Any] = {"dialled": "12348", "caller": "138****0000", "kind": "inbound"}
        entered |= {"caller_key": f"k{rng.randrange(cfg.calls)}", "via": via}
        if rng.random() < cfg.region_known:
            entered["region"] = rng.choice(REGIONS)
        emit(call, t, "call.entered", **entered)
        emit(call, t, "call.answered", channel=call.call_id)
        topic = rng.choice(TOPICS)
        queue = rng.choice(QUEUES)
        emit(call, t, "ivr.call_started", flow="default", origin=via)
        t += rng.uniform(5, 40)
        if rng.random() < cfg.ivr_only:
            outcome = rng.choice(("self_served", "hung_up"))
            emit(call, t, "ivr.outcome", outcome=outcome, node="menu")
            emit(call, t, "call.ended", hangup_by="caller" if outcome == "hung_up" else "system")
            continue
        emit(call, t, "ivr.action", node="q", action="queue", queue=queue, topic=topic, priority=0)
        emit(call, t, "ivr.outcome", outcome="queued", node="q")
        emit(
            call,
            t,
            "queue.entered",
            queue=queue,
            priority=0,
            origin=via if via != "direct" else None,
            position=1,
        )
        entered_t = t
        seat, free = take_seat(t)
        patience = rng.expovariate(1.0 / cfg.patience_s)
        if free - t > patience:
            heapq.heappush(on_shift, (free, seat))  # nobody took the seat
            t_leave = t + patience
            if rng.random() < cfg.callback:
                emit(
                    call,
                    t_leave,
                    "queue.left",
                    queue=queue,
                    reason="caller_choice",
                    action="callback",
                    wait=patience,
                )
                emit(call, t_leave, "callback.requested", queue=queue)
                emit(call, t_leave + 1, "call.ended", hangup_by="system")
                if rng.random() < cfg.callback_ok:
                    seat, free = take_seat(t_leave + 60)
                    t2 = handle(call, seat, free, queue, callback=True)
                    t3 = t2 + rng.expovariate(1.0 / cfg.aht_s)
                    finish(call, seat, t3, queue, "seat")
                else:
                    seat, free = take_seat(t_leave + 60)
                    change(seat, free, "offered", "callback")
                    emit(
                        call,
                        free,
                        "callback.placed",
                        queue=queue,
                        seat_id=seat,
                        seat=seat,
                        attempt=1,
                    )
                    emit(
                        call,
                        free + 30,
                        "callback.failed",
                        queue=queue,
                        seat_id=seat,
                        attempt=1,
                        final=True,
                    )
                    change(seat, free + 30, "available", "callback_failed")
                    emit(
                        call,
                        free + 30,
                        "queue.left",
                        queue=queue,
                        reason="callback_failed",
                        action="hangup",
                    )
                    release(seat, free + 30)
            else:
                state = "waiting"
                emit(
                    call,
                    t_leave,
                    "queue.abandoned",
                    queue=queue,
                    position=1,
                    wait=patience,
                    state=state,
                )
                emit(call, t_leave, "call.ended", hangup_by="caller")
            continue
        t = free
        if rng.random() < cfg.overflow:
            to_queue = rng.choice([q for q in QUEUES if q != queue])
            emit(
                call,
                max(entered_t, t - 1),
                "queue.overflowed",
                from_queue=queue,
                to_queue=to_queue,
                wait=t - entered_t,
            )
            queue = to_queue
        t = handle(call, seat, t, queue)
        talk_end = t + max(10.0, rng.expovariate(1.0 / cfg.aht_s))
        if rng.random() < cfg.transfer:
            to_queue = rng.choice([q for q in QUEUES if q != queue])
            emit(
                call,
                talk_end,
                "queue.transferred",
                from_queue=queue,
                to_queue=to_queue,
                seat_id=seat,
                seat=seat,
            )
            change(seat, talk_end, "wrap_up", "completed")
            wrap_end = talk_end + cfg.wrap_s
            change(seat, wrap_end, "available", "wrap_up_done")
            release(seat, wrap_end)
            seat, free = take_seat(talk_end)
            t = handle(call, seat, free, to_queue)
            talk_end = t + max(10.0, rng.expovariate(1.0 / cfg.aht_s))
            queue = to_queue
        finish(call, seat, talk_end, queue, "seat")
        emit(call, talk_end, "survey.offered", seat=seat)
        s = talk_end + rng.uniform(3, 10)
        if rng.random() < cfg.survey_answered:
            x = rng.random()
            result = (
                "dissatisfied"
                if x < cfg.dissatisfied
                else "basically_satisfied"
                if x < cfg.dissatisfied + cfg.basically
                else "satisfied"
            )
            key = {"satisfied": "1", "basically_satisfied": "2", "dissatisfied": "3"}[result]
            emit(call, s, "survey.answered", result=result, key=key)
        else:
            emit(
                call,
                s,
                "survey.not_rated",
                result="not_rated",
                reason=rng.choice(("timeout", "hangup")),
            )
        emit(call, s + 1, "call.ended", hangup_by="caller")
    if current_shift is not None:  # the last shift logs out (its seat time is then counted)
        end = max(span_s, *free_at.values())
        for seat in shifts[current_shift]:
            out = max(end, free_at.get(seat, end))
            change(seat, out, "offline", "logout")
            seat_event(seat, out, "seat.logout")
    while heap:
        yield heapq.heappop(heap)[2]
