"""The ACD core: queues, seats, offers and routing decisions, with no I/O (h11 style).

Theory of operation
-------------------
``Acd`` takes inputs (``call_arrived``, ``seat_ready``, ``offer_failed``, ``tick`` ...; each
carries ``now``, monotonic seconds) and returns the commands the adapter must execute
(``Offer``, ``CancelOffer``, ``Connect``, ``Announce``, ``DialCallback``, ``LeaveQueue`` ...) plus
``Log`` commands, the queue_log equivalents for the call-event log. It never awaits, never reads
a clock and never talks to Asterisk; the same inputs always give the same commands.

Two state machines live here. A *seat* follows ``acd.model.SEAT_TRANSITIONS`` (offline,
available, offered, on call, wrap-up, paused with a reason); every change is logged as
``seat.state_changed`` with from, to and reason. A *call* is waiting (in a queue), offered
(ringing one seat, several for ring-all, or a seat reserved while its callback is dialled),
connected (bridged to exactly one seat), or deferred (a failed callback waiting to retry).
Events impossible in the current state raise ``InvalidTransition`` naming event and state;
events about a call that has already ended (a late answer racing a cancel) are tolerated: an
answer is cancelled again, anything else is ignored.

Event-driven, not polled: every input first runs the timers that are due, then applies the
event, then *settles*: each seat that became available takes the best waiting call it
qualifies for, then each call that became routable (arrived, returned, relaxed, overflowed)
takes the best available seat by its queue's strategy. So after every input no waiting call
has an available seat it qualifies for. ``next_deadline()`` tells the adapter when the next
timer is due (ring timeout, wrap-up end, relaxation, overflow, max wait, announcement,
callback retry, leave-empty grace) so it sleeps exactly until then and calls ``tick``.

Ordering and aging. A call's place is the key ``(arrival - priority * aging_s_per_level, seq)``
fixed when it enters a queue. A priority-p caller is treated as if they had arrived
p * aging_s_per_level earlier: they pass ordinary callers, but anyone who has waited longer
than that already is ahead of them. The key does not change with time, so heaps stay valid
without re-sorting, and starvation is impossible: only calls with a smaller key can pass a
call, and calls arriving more than max_priority * aging_s_per_level after it all have larger
keys. A call that was offered and not answered goes back with the *same* key, i.e. at its
original position. Overflow keeps the original arrival and sequence number (the caller loses
neither their wait nor their order among equals, however late the overflow ran);
a transfer re-enters at the transfer time with the call's original priority.

Routing indexes (``acd.routing``). Waiting calls are bucketed by (queue, current skill
requirement); relaxation moves a call to another bucket, keeping its key. A seat that becomes
available checks the few buckets it qualifies for (memoised per seat profile) and takes the
smallest head. A call looks up available seats in heaps per (skill, level, region), so neither
decision scans the calls or the seats. Round-robin and ring-all scan the qualifying available
seats: they are meant for small teams.

Skill relaxation is counted from the time the call entered its current queue; each step's
``level_drop`` is relative to the call's original requirement; ``any_seat`` accepts any seat of
the queue's regions. Max wait counts from the first arrival in the ACD.

Waiting figures: ``position`` is the 1-based rank among the queue's waiting calls (callbacks
keep theirs); ``EWT = position * AHT / max(1, staffed)`` i.e. (k+1)·AHT/N with k callers ahead
and N logged-in, unpaused seats serving the queue; AHT is a moving average of the handle times
the adapter feeds with ``aht_observed``.

Callbacks keep the caller's place: the call stays in its queue without a caller leg; when it is
the best call for a seat, the seat is reserved (state offered) and ``DialCallback`` is
emitted; ``callback_result(ok)`` connects or frees the seat and retries later, a configured
number of times. One live callback per caller: a second request by the same caller is refused.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from acd.config import AcdConfig, QueueConfig, SeatConfig
from acd.model import (
    CALL_INPUTS,
    SEAT_TRANSITIONS,
    AcdError,
    AhtObserved,
    Announce,
    CallArrived,
    CallbackRequested,
    CallbackResult,
    CallCompleted,
    CallerHungUp,
    CallState,
    CallView,
    CancelOffer,
    Command,
    CompletedBy,
    Connect,
    DialCallback,
    Event,
    InvalidTransition,
    LeaveQueue,
    Log,
    Offer,
    OfferAnswered,
    OfferCallbackChoice,
    OfferFailed,
    OfferFailure,
    Overflowed,
    QueueView,
    SeatEvent,
    SeatLoggedIn,
    SeatLoggedOut,
    SeatPaused,
    SeatReady,
    SeatState,
    SeatView,
    Tick,
    TransferToQueue,
    TransferToSeat,
    UnknownCall,
    UnknownQueue,
    UnknownSeat,
    WrapUpDone,
)
from acd.routing import (
    CallBucket,
    CallRec,
    RankList,
    Requirement,
    SeatPool,
    SeatRec,
    qualifies,
    requirements,
)

_CALL, _SEAT, _QUEUE = 0, 1, 2
_ENDED_MEMORY = 10_000  # ended call ids remembered to tolerate late events


@dataclass(frozen=True, slots=True)
class TickResult:
    commands: list[Command]
    next_deadline: float | None


class _QueueRec:
    __slots__ = ("aht", "cfg", "empty_deadline", "logged_in", "ranks", "rr_last", "staffed", "tv")

    def __init__(self, cfg: QueueConfig) -> None:
        self.cfg = cfg
        self.ranks = RankList()
        self.aht = cfg.default_aht_s
        self.logged_in = 0  # seats serving the queue that are not offline
        self.staffed = 0  # ... and not paused
        self.empty_deadline: float | None = None
        self.rr_last = -1  # ordinal of the seat last offered a call (round-robin)
        self.tv = 0


class Acd:
    """The sans-I/O ACD. Inputs return commands; see the module docstring."""

    def __init__(self, config: AcdConfig, now: float = 0.0) -> None:
        self.config = config
        self._now = now
        self._queues = {q.name: _QueueRec(q) for q in config.queues}
        self._seats: dict[str, SeatRec] = {}
        for cfg in config.seats:
            self._add_seat(cfg)
        self._calls: dict[str, CallRec] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._buckets: dict[tuple[str, Requirement], CallBucket] = {}
        self._targeted: dict[str, CallBucket] = {}
        self._eligible: dict[tuple[Any, str, Requirement], bool] = {}
        self._pool = SeatPool(self._seats)
        self._callback_keys: dict[str, str] = {}  # caller_key -> call_id of the live callback
        self._timers: list[tuple[float, int, int, str, int]] = []
        self._seq = 0
        self._token = 0
        self._out: list[Command] = []
        self._carry: list[Command] = []
        self._dirty_seats: dict[str, None] = {}
        self._dirty_calls: dict[str, None] = {}
        self._announce: dict[str, None] = {}
        self._handlers: dict[type[Event], Callable[[Any], None]] = {
            CallArrived: self._on_call_arrived,
            CallerHungUp: self._on_caller_hung_up,
            SeatLoggedIn: self._on_seat_logged_in,
            SeatLoggedOut: self._on_seat_logged_out,
            SeatReady: self._on_seat_ready,
            SeatPaused: self._on_seat_paused,
            OfferAnswered: self._on_offer_answered,
            OfferFailed: self._on_offer_failed,
            CallCompleted: self._on_call_completed,
            WrapUpDone: self._on_wrap_up_done,
            CallbackRequested: self._on_callback_requested,
            CallbackResult: self._on_callback_result,
            TransferToQueue: self._on_transfer_to_queue,
            TransferToSeat: self._on_transfer_to_seat,
            AhtObserved: self._on_aht_observed,
            Tick: lambda _e: None,
        }

    # ------------------------------------------------------------------ public inputs
    def handle(self, event: Event) -> list[Command]:
        """Apply one input event; return the commands to execute, in order.

        If the event is impossible an ``AcdError`` is raised and the event changed nothing;
        commands from timers that were due are then returned by the next call.
        """
        self._out = self._carry
        self._carry = []
        self._advance(event.now)
        try:
            self._handlers[type(event)](event)
            self._advance(self._now)  # timers the event made due already (e.g. a call back
            # from ringing whose overflow time passed meanwhile) run in this same input
        except AcdError:
            self._settle()
            self._carry, self._out = self._out, []
            raise
        self._settle()
        out, self._out = self._out, []
        return out

    def call_arrived(
        self,
        call_id: str,
        queue: str,
        *,
        now: float,
        priority: int = 0,
        skills_needed: Mapping[str, int] | None = None,
        origin: str | None = None,
        caller_key: str | None = None,
    ) -> list[Command]:
        return self.handle(
            CallArrived(
                now=now,
                call_id=call_id,
                queue=queue,
                priority=priority,
                skills_needed=skills_needed,
                origin=origin,
                caller_key=caller_key,
            )
        )

    def caller_hung_up(self, call_id: str, *, now: float) -> list[Command]:
        return self.handle(CallerHungUp(now=now, call_id=call_id))

    def seat_logged_in(self, seat_id: str, *, now: float) -> list[Command]:
        return self.handle(SeatLoggedIn(now=now, seat_id=seat_id))

    def seat_logged_out(self, seat_id: str, *, now: float) -> list[Command]:
        return self.handle(SeatLoggedOut(now=now, seat_id=seat_id))

    def seat_ready(self, seat_id: str, *, now: float) -> list[Command]:
        return self.handle(SeatReady(now=now, seat_id=seat_id))

    def seat_paused(self, seat_id: str, reason: str, *, now: float) -> list[Command]:
        return self.handle(SeatPaused(now=now, seat_id=seat_id, reason=reason))

    def offer_answered(self, call_id: str, seat_id: str, *, now: float) -> list[Command]:
        return self.handle(OfferAnswered(now=now, call_id=call_id, seat_id=seat_id))

    def offer_failed(
        self, call_id: str, seat_id: str, why: OfferFailure = "no_answer", *, now: float
    ) -> list[Command]:
        return self.handle(OfferFailed(now=now, call_id=call_id, seat_id=seat_id, why=why))

    def call_completed(self, call_id: str, by: CompletedBy, *, now: float) -> list[Command]:
        return self.handle(CallCompleted(now=now, call_id=call_id, by=by))

    def wrap_up_done(self, seat_id: str, *, now: float) -> list[Command]:
        return self.handle(WrapUpDone(now=now, seat_id=seat_id))

    def callback_requested(self, call_id: str, *, now: float) -> list[Command]:
        return self.handle(CallbackRequested(now=now, call_id=call_id))

    def callback_result(self, call_id: str, ok: bool, *, now: float) -> list[Command]:
        return self.handle(CallbackResult(now=now, call_id=call_id, ok=ok))

    def transfer_to_queue(self, call_id: str, queue: str, *, now: float) -> list[Command]:
        return self.handle(TransferToQueue(now=now, call_id=call_id, queue=queue))

    def transfer_to_seat(self, call_id: str, seat_id: str, *, now: float) -> list[Command]:
        return self.handle(TransferToSeat(now=now, call_id=call_id, seat_id=seat_id))

    def aht_observed(self, queue: str, seconds: float, *, now: float) -> list[Command]:
        return self.handle(AhtObserved(now=now, queue=queue, seconds=seconds))

    def tick(self, now: float) -> TickResult:
        """Run due timers; returns the commands and when to tick next (None: no timer)."""
        commands = self.handle(Tick(now=now))
        return TickResult(commands, self.next_deadline())

    def next_deadline(self) -> float | None:
        timers = self._timers
        while timers and not self._timer_live(timers[0]):
            heapq.heappop(timers)
        return timers[0][0] if timers else None

    def add_seat(self, cfg: SeatConfig) -> None:
        """Add or reconfigure a seat (only while it is offline)."""
        old = self._seats.get(cfg.seat_id)
        if old is not None and old.state is not SeatState.OFFLINE:
            raise InvalidTransition("add_seat", f"seat {cfg.seat_id}", old.state)
        self._add_seat(cfg)

    # ------------------------------------------------------------------ public views
    def seat_view(self, seat_id: str) -> SeatView:
        s = self._seat(seat_id)
        return SeatView(
            s.seat_id,
            s.state,
            s.reason,
            s.call_id,
            s.region,
            dict(s.cfg.skills),
            s.calls,
            s.pending_pause,
        )

    def call_view(self, call_id: str) -> CallView:
        c = self._call(call_id)
        if c.state is CallState.CONNECTED:
            seats: tuple[str, ...] = (c.seat_id,) if c.seat_id else ()
        else:
            seats = tuple(sorted(c.ringing))
        return CallView(
            c.call_id,
            c.state,
            c.queue,
            c.priority,
            c.key,
            self._position(c) if c.state is CallState.WAITING and not c.target_seat else None,
            c.required,
            seats,
            c.callback,
            c.target_seat,
            c.entered_at,
        )

    def queue_view(self, name: str) -> QueueView:
        q = self._queue(name)
        return QueueView(name, len(q.ranks), q.logged_in, q.staffed, q.aht)

    def seat_ids(self) -> list[str]:
        return list(self._seats)

    def call_ids(self) -> list[str]:
        return list(self._calls)

    def has_call(self, call_id: str) -> bool:
        return call_id in self._calls

    def seat_qualifies(self, seat_id: str, call_id: str) -> bool:
        """Would this seat be eligible for this call in the call's current stage?"""
        seat, call = self._seat(seat_id), self._call(call_id)
        if call.target_seat is not None:
            return call.target_seat == seat_id
        return qualifies(seat, self._queues[call.queue].cfg, call.required)

    # ------------------------------------------------------------------ lookups
    def _seat(self, seat_id: str) -> SeatRec:
        try:
            return self._seats[seat_id]
        except KeyError:
            raise UnknownSeat(f"unknown seat {seat_id!r}") from None

    def _call(self, call_id: str) -> CallRec:
        try:
            return self._calls[call_id]
        except KeyError:
            raise UnknownCall(f"unknown call {call_id!r}") from None

    def _queue(self, name: str) -> _QueueRec:
        try:
            return self._queues[name]
        except KeyError:
            raise UnknownQueue(f"unknown queue {name!r}") from None

    def _check_call(self, call: CallRec, event: str) -> None:
        if event not in CALL_INPUTS[call.state]:
            raise InvalidTransition(event, f"call {call.call_id}", call.state)

    def _check_seat(self, seat: SeatRec, event: SeatEvent, name: str) -> None:
        if event not in SEAT_TRANSITIONS[seat.state]:
            raise InvalidTransition(name, f"seat {seat.seat_id}", seat.state)

    def _add_seat(self, cfg: SeatConfig) -> None:
        old = self._seats.get(cfg.seat_id)
        skills = {**cfg.skills, "*": 1}
        profile = (cfg.region, tuple(sorted(skills.items())))
        serves = tuple(
            q.name
            for q in self.config.queues
            if q.skill in cfg.skills and (q.regions is None or cfg.region in q.regions)
        )
        ordinal = old.ordinal if old else len(self._seats)
        self._seats[cfg.seat_id] = SeatRec(
            cfg.seat_id, cfg, ordinal, skills, cfg.region, profile, serves=serves
        )

    # ------------------------------------------------------------------ output helpers
    def _log(self, type_: str, **data: Any) -> None:
        data["at"] = self._now
        self._out.append(Log(type_, data))

    def _emit(self, command: Command) -> None:
        self._out.append(command)

    # ------------------------------------------------------------------ timers
    def _push_timer(self, when: float, kind: int, ident: str, version: int) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, kind, ident, version))
        if len(self._timers) > 8 * (len(self._calls) + len(self._seats)) + 1024:
            self._timers = [t for t in self._timers if self._timer_live(t)]
            heapq.heapify(self._timers)

    def _timer_live(self, timer: tuple[float, int, int, str, int]) -> bool:
        _, _, kind, ident, version = timer
        rec: Any
        if kind == _CALL:
            rec = self._calls.get(ident)
            return rec is not None and rec.timer_version == version
        if kind == _SEAT:
            rec = self._seats.get(ident)
            return rec is not None and rec.timer_version == version
        return self._queues[ident].tv == version

    def _call_deadline(self, call: CallRec) -> float | None:
        if call.state is CallState.OFFERED:
            return call.ring_deadline
        if call.state is CallState.DEFERRED:
            return call.retry_at
        if call.state is not CallState.WAITING:
            return None
        q = self._queues[call.queue].cfg
        times: list[float] = []
        if call.target_seat is None:
            if call.stage < len(q.relaxation):
                times.append(call.queue_entered_at + q.relaxation[call.stage].after_s)
            if q.overflow is not None and not call.overflow_skipped:
                times.append(call.queue_entered_at + q.overflow.after_s)
        if not call.callback:
            if q.max_wait_s is not None:
                times.append(call.entered_at + q.max_wait_s)
            if q.callback_offer_after_s is not None and self._can_offer_callback(call):
                times.append(call.queue_entered_at + q.callback_offer_after_s)
            if call.next_announce is not None:
                times.append(call.next_announce)
        return min(times) if times else None

    def _can_offer_callback(self, call: CallRec) -> bool:
        return (
            not call.choice_offered
            and not call.callback
            and call.caller_key is not None
            and call.caller_key not in self._callback_keys
        )

    def _schedule_call(self, call: CallRec) -> None:
        call.timer_version += 1
        when = self._call_deadline(call)
        if when is not None:
            self._push_timer(when, _CALL, call.call_id, call.timer_version)

    def _advance(self, now: float) -> None:
        # Inputs are stamped by the adapter; a stamp slightly in the past is taken as "now".
        now = max(now, self._now)
        self._now = now
        timers = self._timers
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)
            if not self._timer_live(timer):
                continue
            _, _, kind, ident, _ = timer
            if kind == _CALL:
                self._call_timer(self._calls[ident])
            elif kind == _SEAT:
                seat = self._seats[ident]
                if seat.state is SeatState.WRAP_UP:
                    self._wrap_done(seat, "wrap_up_timeout")
            else:
                self._queue_empty_timer(self._queues[ident])

    def _call_timer(self, call: CallRec) -> None:
        now = self._now
        if call.state is CallState.OFFERED:
            if call.ring_deadline <= now:
                if call.dialing:
                    self._callback_failed(call, cancel=True)
                else:
                    for seat_id in sorted(call.ringing):
                        self._fail_offer(call, self._seats[seat_id], "no_answer", cancel=True)
                    self._return(call)
            else:
                self._schedule_call(call)
            return
        if call.state is CallState.DEFERRED:
            if call.retry_at <= now:
                self._return(call)
            else:
                self._schedule_call(call)
            return
        q = self._queues[call.queue].cfg
        if not call.callback and q.max_wait_s is not None and call.entered_at + q.max_wait_s <= now:
            self._leave(call, "max_wait", q.on_max_wait)
            return
        if call.target_seat is None:
            self._relax(call)
            if (
                q.overflow is not None
                and not call.overflow_skipped
                and call.queue_entered_at + q.overflow.after_s <= now
            ):
                self._overflow(call, q.overflow.to_queue)
        q = self._queues[call.queue].cfg
        if (
            q.callback_offer_after_s is not None
            and self._can_offer_callback(call)
            and call.queue_entered_at + q.callback_offer_after_s <= now
        ):
            call.choice_offered = True
            self._emit(OfferCallbackChoice(call.call_id))
        if call.next_announce is not None and call.next_announce <= now:
            interval = q.announce_interval_s or 0.0
            call.next_announce = now + interval if interval else None
            self._announce[call.call_id] = None
        self._schedule_call(call)

    def _relax(self, call: CallRec) -> None:
        steps = self._queues[call.queue].cfg.relaxation
        waited = self._now - call.queue_entered_at
        stage = call.stage
        while stage < len(steps) and steps[stage].after_s <= waited:
            stage += 1
        if stage != call.stage:
            was_waiting = call.state is CallState.WAITING
            if was_waiting:
                self._remove(call)
            call.stage = stage
            if was_waiting:
                self._insert(call)

    def _queue_empty_timer(self, q: _QueueRec) -> None:
        q.empty_deadline = None
        if not self._is_empty(q) or q.cfg.leave_empty == "stay":
            return
        victims = [
            self._calls[e[3]]
            for (name, _), bucket in list(self._buckets.items())
            if name == q.cfg.name
            for e in bucket.entries(self._call_entry_valid)
        ]
        for call in sorted(victims, key=lambda c: c.key):
            if not call.callback:
                self._leave(call, "leave_empty", q.cfg.leave_empty)

    # ------------------------------------------------------------------ queue membership
    def _call_entry_valid(self, entry: tuple[float, int, int, str]) -> bool:
        call = self._calls.get(entry[3])
        return call is not None and call.token == entry[2]

    def _bucket_key(self, call: CallRec) -> tuple[str, Requirement]:
        return (call.queue, call.reqs[call.stage])

    def _insert(self, call: CallRec) -> None:
        """Put a call into its queue at its key (its original place)."""
        call.state = CallState.WAITING
        self._token += 1
        call.token = self._token
        if call.target_seat is not None:
            bucket = self._targeted.get(call.target_seat)
            if bucket is None:
                bucket = self._targeted[call.target_seat] = CallBucket()
        else:
            bkey = self._bucket_key(call)
            bucket = self._buckets.get(bkey)
            if bucket is None:
                bucket = self._buckets[bkey] = CallBucket()
            self._queues[call.queue].ranks.add(call.key)
        bucket.push(call)
        self._dirty_calls[call.call_id] = None

    def _remove(self, call: CallRec) -> None:
        """Take a waiting call out of its queue (offered, gone, or moving)."""
        call.token = 0
        if call.target_seat is not None:
            bucket = self._targeted[call.target_seat]
            bucket.discard(self._call_entry_valid)
            if not bucket.live:
                del self._targeted[call.target_seat]
            return
        bkey = self._bucket_key(call)
        bucket = self._buckets[bkey]
        bucket.discard(self._call_entry_valid)
        if not bucket.live:
            del self._buckets[bkey]
        self._queues[call.queue].ranks.remove(call.key)

    def _enqueue(self, call: CallRec, queue: str, key_time: float, seq: int | None = None) -> None:
        q = self._queues[queue].cfg
        call.queue = queue
        call.queue_entered_at = self._now
        call.stage = 0
        call.overflow_skipped = False
        call.reqs = requirements(q, call.needed)
        if seq is None:
            self._seq += 1
            seq = self._seq
        call.key = (key_time - call.priority * q.aging_s_per_level, seq)
        call.next_announce = self._now + q.announce_interval_s if q.announce_interval_s else None
        self._insert(call)
        if q.announce_on_entry and q.announce_interval_s and not call.callback:
            self._announce[call.call_id] = None
        self._schedule_call(call)

    def _return(self, call: CallRec) -> None:
        """An offer ended without a connection: back to the queue with the same key."""
        call.ringing.clear()
        call.dialing = False
        if call.target_seat is not None and self._seats[call.target_seat].state in (
            SeatState.PAUSED,
            SeatState.OFFLINE,
        ):
            call.target_seat = None  # the named seat is away: back to the queue
        if call.target_seat is None:
            self._relax(call)
        if call.next_announce is not None and call.next_announce < self._now:
            interval = self._queues[call.queue].cfg.announce_interval_s or 0.0
            call.next_announce = self._now + interval  # no burst of missed announcements
        self._insert(call)
        self._schedule_call(call)

    def _position(self, call: CallRec) -> int:
        return self._queues[call.queue].ranks.position(call.key)

    def _needed_in(self, call: CallRec, new_queue: str) -> dict[str, int]:
        old, new = self._queues[call.queue].cfg, self._queues[new_queue].cfg
        needed = {k: v for k, v in call.needed.items() if k != old.skill}
        needed[new.skill] = new.min_level
        return needed

    def _end_call(self, call: CallRec) -> None:
        if call.state is CallState.WAITING:
            self._remove(call)
        del self._calls[call.call_id]
        if call.caller_key is not None and self._callback_keys.get(call.caller_key) == (
            call.call_id
        ):
            del self._callback_keys[call.caller_key]
        self._ended[call.call_id] = None
        if len(self._ended) > _ENDED_MEMORY:
            self._ended.popitem(last=False)
        self._dirty_calls.pop(call.call_id, None)
        self._announce.pop(call.call_id, None)

    def _leave(self, call: CallRec, reason: str, want: str) -> None:
        """The caller's leg leaves the queue; a callback keeps the place if asked and possible."""
        position = self._position(call) if call.target_seat is None else None
        wait = self._now - call.entered_at
        key = call.caller_key
        if want == "callback" and key is not None and key not in self._callback_keys:
            self._emit(LeaveQueue(call.call_id, reason, "callback"))
            self._log(
                "queue.left",
                call_id=call.call_id,
                queue=call.queue,
                reason=reason,
                action="callback",
                position=position,
                wait=wait,
            )
            self._make_callback(call)
            return
        self._emit(LeaveQueue(call.call_id, reason, "message"))
        self._log(
            "queue.left",
            call_id=call.call_id,
            queue=call.queue,
            reason=reason,
            action="message",
            position=position,
            wait=wait,
        )
        self._end_call(call)

    def _make_callback(self, call: CallRec) -> None:
        assert call.caller_key is not None
        call.callback = True
        self._callback_keys[call.caller_key] = call.call_id
        self._announce.pop(call.call_id, None)
        self._log(
            "callback.requested",
            call_id=call.call_id,
            queue=call.queue,
            position=self._position(call) if call.state is CallState.WAITING else None,
        )
        if call.state is CallState.WAITING:
            self._schedule_call(call)

    def _overflow(self, call: CallRec, to_queue: str) -> None:
        target = self._queues[to_queue]
        if self._is_empty(target):
            call.overflow_skipped = True  # nobody there: stay rather than move to an empty queue
            return
        from_queue = call.queue
        self._remove(call)
        call.needed = self._needed_in(call, to_queue)
        call.moved = True
        self._emit(Overflowed(call.call_id, from_queue, to_queue))
        self._log(
            "queue.overflowed",
            call_id=call.call_id,
            from_queue=from_queue,
            to_queue=to_queue,
            wait=self._now - call.entered_at,
        )
        # Keep the first arrival and its tie-break: the caller loses neither the time waited
        # nor their order among callers with the same effective arrival. A fresh sequence
        # number would order them by when each overflowed, and a call that was ringing or
        # dialling a callback at its overflow time overflows late.
        self._enqueue(call, to_queue, call.entered_at, seq=call.key[1])

    # ------------------------------------------------------------------ seats
    def _is_empty(self, q: _QueueRec) -> bool:
        if q.cfg.empty_when == "no_seat_logged_in":
            return q.logged_in == 0
        return q.staffed == 0

    def _transition(self, seat: SeatRec, event: SeatEvent, reason: str) -> None:
        old = seat.state
        new = SEAT_TRANSITIONS[old].get(event)
        if new is None:  # handlers check first; reaching this is a bug in the core
            raise InvalidTransition(event, f"seat {seat.seat_id}", old)
        if old is new and (new is not SeatState.PAUSED or seat.reason == reason):
            return
        if old is SeatState.AVAILABLE:
            self._pool.remove(seat)
        was_in = old is not SeatState.OFFLINE
        was_up = was_in and old is not SeatState.PAUSED
        now_in = new is not SeatState.OFFLINE
        now_up = now_in and new is not SeatState.PAUSED
        seat.state = new
        seat.reason = reason if new is SeatState.PAUSED else None
        if new is not SeatState.WRAP_UP:
            seat.wrap_deadline = None
        if was_in != now_in or was_up != now_up:
            for name in seat.serves:
                self._staffing(self._queues[name], now_in - was_in, now_up - was_up)
        self._log(
            "seat.state_changed", seat_id=seat.seat_id, **{"from": old, "to": new}, reason=reason
        )
        if new is SeatState.AVAILABLE:
            self._pool.add(seat)
            self._dirty_seats[seat.seat_id] = None

    def _staffing(self, q: _QueueRec, d_in: int, d_up: int) -> None:
        was_empty = self._is_empty(q)
        q.logged_in += d_in
        q.staffed += d_up
        empty = self._is_empty(q)
        if empty and not was_empty and q.cfg.leave_empty != "stay":
            q.tv += 1
            q.empty_deadline = self._now + q.cfg.leave_empty_grace_s
            self._push_timer(q.empty_deadline, _QUEUE, q.cfg.name, q.tv)
        elif was_empty and not empty and q.empty_deadline is not None:
            q.tv += 1
            q.empty_deadline = None

    def _withdraw(self, call: CallRec, seat: SeatRec) -> None:
        """Cancel this seat's offer of the call (not the seat's fault)."""
        call.ringing.discard(seat.seat_id)
        call.cancelled.add(seat.seat_id)
        seat.call_id = None
        self._emit(CancelOffer(call.call_id, seat.seat_id))

    def _fail_offer(self, call: CallRec, seat: SeatRec, why: str, *, cancel: bool) -> None:
        """The seat did not take the call: pause it with the configured reason (未接听 ...)."""
        call.ringing.discard(seat.seat_id)
        call.cancelled.add(seat.seat_id)
        seat.call_id = None
        if cancel:
            self._emit(CancelOffer(call.call_id, seat.seat_id))
        self._log(
            "queue.no_answer",
            call_id=call.call_id,
            queue=call.queue,
            seat_id=seat.seat_id,
            why=why,
            rang=self._now - call.offered_at,
        )
        reason = self.config.offer_failure_pause[why]  # type: ignore[index]
        self._transition(seat, SeatEvent.OFFER_FAILED, reason)

    def _release_offered_seat(self, seat: SeatRec, event: SeatEvent, reason: str) -> None:
        """The seat leaves 'offered' on its own (logout, pause): its call goes back."""
        call = self._calls[seat.call_id] if seat.call_id else None
        if call is not None:
            self._withdraw(call, seat)
            if call.dialing or not call.ringing:
                self._return(call)  # a dropped callback reservation is not a failed attempt
        self._transition(seat, event, reason)

    def _finish_seat(self, seat: SeatRec, queue: str) -> None:
        """The seat's call ended (completed or transferred away): wrap-up or straight back."""
        seat.calls += 1
        seat.last_call_end = self._now
        self._transition(seat, SeatEvent.COMPLETE, "completed")
        wrap = seat.cfg.wrap_up_s
        if wrap is None:
            wrap = self._queues[queue].cfg.wrap_up_s
        if wrap <= 0:
            self._wrap_done(seat, "no_wrap_up")
        else:
            seat.wrap_deadline = self._now + wrap
            seat.timer_version += 1
            self._push_timer(seat.wrap_deadline, _SEAT, seat.seat_id, seat.timer_version)

    def _wrap_done(self, seat: SeatRec, reason: str) -> None:
        seat.call_id = None
        seat.timer_version += 1
        if seat.pending_pause is not None:
            pause, seat.pending_pause = seat.pending_pause, None
            self._transition(seat, SeatEvent.PAUSE, pause)
        else:
            self._transition(seat, SeatEvent.WRAP_UP_DONE, reason)

    # ------------------------------------------------------------------ routing
    def _settle(self) -> None:
        """Decide now: freed seats take the best call, then new/returned calls take a seat."""
        if self._dirty_seats:
            dirty = [self._seats[s] for s in self._dirty_seats]
            self._dirty_seats = {}
            dirty.sort(key=lambda s: (s.last_call_end, s.ordinal))
            for seat in dirty:
                if seat.state is SeatState.AVAILABLE:
                    call = self._best_call(seat)
                    if call is not None:
                        self._offer(call, [seat])
        if self._dirty_calls:
            calls = [self._calls[c] for c in self._dirty_calls if c in self._calls]
            self._dirty_calls = {}
            if self._pool.available:
                calls.sort(key=lambda c: c.key)
                for call in calls:
                    if call.state is CallState.WAITING and self._pool.available:
                        seats = self._pick_seats(call)
                        if seats:
                            self._offer(call, seats)
        if self._announce:
            for call_id in self._announce:
                call = self._calls.get(call_id)
                if call is None or call.state is not CallState.WAITING or call.callback:
                    continue
                if call.target_seat is not None:
                    continue
                q = self._queues[call.queue]
                position = self._position(call)
                ewt = position * q.aht / max(1, q.staffed)
                self._emit(Announce(call_id, position, round(ewt, 1)))
            self._announce = {}

    def _best_call(self, seat: SeatRec) -> CallRec | None:
        best: tuple[float, int, int, str] | None = None
        valid = self._call_entry_valid
        cache = self._eligible
        for bkey, bucket in self._buckets.items():
            ckey = (seat.profile, *bkey)
            ok = cache.get(ckey)
            if ok is None:
                ok = cache[ckey] = qualifies(seat, self._queues[bkey[0]].cfg, bkey[1])
            if not ok:
                continue
            head = bucket.peek(valid)
            if head is not None and (best is None or head < best):
                best = head
        personal = self._targeted.get(seat.seat_id)
        if personal is not None:
            head = personal.peek(valid)
            if head is not None and (best is None or head < best):
                best = head
        return self._calls[best[3]] if best is not None else None

    def _pick_seats(self, call: CallRec) -> list[SeatRec]:
        if call.target_seat is not None:
            seat = self._seats[call.target_seat]
            return [seat] if seat.state is SeatState.AVAILABLE else []
        qrec = self._queues[call.queue]
        q = qrec.cfg
        req = call.required
        strategy = q.strategy
        if call.callback:
            strategy = "longest_idle" if strategy in ("ring_all", "round_robin") else strategy
        if strategy in ("longest_idle", "fewest_calls", "skill_weighted"):
            seat = self._pool.best(req, q.regions, strategy)
            return [seat] if seat is not None else []
        cands = self._pool.candidates(req, q.regions)
        if not cands:
            return []
        cands.sort(key=lambda s: s.ordinal)
        if strategy == "round_robin":
            after = [s for s in cands if s.ordinal > qrec.rr_last]
            return [after[0] if after else cands[0]]
        cands.sort(key=lambda s: (s.last_call_end, s.ordinal))  # ring_all
        return cands[: q.ring_all_max]

    def _offer(self, call: CallRec, seats: list[SeatRec]) -> None:
        self._remove(call)
        call.state = CallState.OFFERED
        call.offered_at = self._now
        call.ringing = {s.seat_id for s in seats}
        call.cancelled.difference_update(call.ringing)
        qrec = self._queues[call.queue]
        qrec.rr_last = seats[-1].ordinal
        if call.callback:
            seat = seats[0]
            call.dialing = True
            seat.call_id = call.call_id
            self._transition(seat, SeatEvent.OFFER, "callback")
            self._emit(DialCallback(call.call_id, seat.seat_id))
            self._log(
                "callback.placed",
                call_id=call.call_id,
                queue=call.queue,
                seat_id=seat.seat_id,
                attempt=call.cb_attempts + 1,
            )
            call.ring_deadline = self._now + qrec.cfg.callback_timeout_s
        else:
            ring = qrec.cfg.ring_timeout_s
            for seat in seats:
                seat.call_id = call.call_id
                self._transition(seat, SeatEvent.OFFER, "offer")
                self._emit(Offer(call.call_id, seat.seat_id, ring))
                self._log(
                    "queue.offered",
                    call_id=call.call_id,
                    queue=call.queue,
                    seat_id=seat.seat_id,
                    wait=self._now - call.entered_at,
                )
            call.ring_deadline = self._now + ring
        self._schedule_call(call)

    def _callback_failed(self, call: CallRec, *, cancel: bool) -> None:
        seat = self._seats[next(iter(call.ringing))]
        call.ringing.clear()
        call.dialing = False
        seat.call_id = None
        if cancel:
            self._emit(CancelOffer(call.call_id, seat.seat_id))
        self._transition(seat, SeatEvent.OFFER_CANCELLED, "callback_failed")
        call.cb_attempts += 1
        q = self._queues[call.queue].cfg
        final = call.cb_attempts > q.callback_retries
        self._log(
            "callback.failed",
            call_id=call.call_id,
            queue=call.queue,
            seat_id=seat.seat_id,
            attempt=call.cb_attempts,
            final=final,
        )
        if final:
            self._emit(LeaveQueue(call.call_id, "callback_failed", "hangup"))
            self._log(
                "queue.left",
                call_id=call.call_id,
                queue=call.queue,
                reason="callback_failed",
                action="hangup",
                position=self._position(call),
                wait=self._now - call.entered_at,
            )
            self._end_call(call)
        elif q.callback_retry_delay_s <= 0:
            self._return(call)
        else:
            call.state = CallState.DEFERRED
            call.retry_at = self._now + q.callback_retry_delay_s
            self._schedule_call(call)

    # ------------------------------------------------------------------ event handlers
    def _on_call_arrived(self, e: CallArrived) -> None:
        if e.call_id in self._calls or e.call_id in self._ended:
            raise InvalidTransition("call_arrived", f"call {e.call_id}", "known", "duplicate id")
        qrec = self._queue(e.queue)
        q = qrec.cfg
        needed = dict(e.skills_needed) if e.skills_needed is not None else {q.skill: q.min_level}
        if any(level < 1 for level in needed.values()):
            raise AcdError(f"call {e.call_id}: skill levels start at 1: {needed}")
        priority = max(e.priority, self.config.origin_priority.get(e.origin or "", 0))
        call = CallRec(e.call_id, e.queue, priority, needed, e.origin, e.caller_key, self._now)
        self._calls[e.call_id] = call
        self._enqueue(call, e.queue, self._now)
        self._log(
            "queue.entered",
            call_id=e.call_id,
            queue=e.queue,
            priority=priority,
            origin=e.origin,
            position=self._position(call),
            skills=dict(needed),
        )
        if q.join_empty != "join" and self._is_empty(qrec):
            self._leave(call, "join_empty", q.join_empty)

    def _on_caller_hung_up(self, e: CallerHungUp) -> None:
        if e.call_id in self._ended:
            return
        call = self._call(e.call_id)
        self._check_call(call, "caller_hung_up")
        if call.state is CallState.CONNECTED:
            self._complete(call, "caller")
            return
        if call.callback:
            return  # the caller left after asking for a callback: their place is kept
        position = self._position(call) if call.target_seat is None else None
        while_ = "waiting"
        if call.state is CallState.OFFERED:
            while_ = "ringing"
            for seat_id in sorted(call.ringing):
                seat = self._seats[seat_id]
                self._withdraw(call, seat)
                self._transition(seat, SeatEvent.OFFER_CANCELLED, "caller_hung_up")
        self._log(
            "queue.abandoned",
            call_id=call.call_id,
            queue=call.queue,
            position=position,
            wait=self._now - call.entered_at,
            state=while_,
        )
        self._end_call(call)

    def _on_seat_logged_in(self, e: SeatLoggedIn) -> None:
        seat = self._seat(e.seat_id)
        self._check_seat(seat, SeatEvent.LOGIN, "seat_logged_in")
        seat.calls = 0
        seat.last_call_end = self._now
        seat.pending_pause = None
        self._log("seat.login", seat_id=seat.seat_id, region=seat.region)
        self._transition(seat, SeatEvent.LOGIN, "login")
        if not self.config.ready_on_login:
            self._transition(seat, SeatEvent.PAUSE, self.config.login_pause_reason)

    def _on_seat_logged_out(self, e: SeatLoggedOut) -> None:
        seat = self._seat(e.seat_id)
        self._check_seat(seat, SeatEvent.LOGOUT, "seat_logged_out")
        seat.pending_pause = None
        seat.timer_version += 1
        if seat.state is SeatState.OFFERED:
            self._release_offered_seat(seat, SeatEvent.LOGOUT, "logout")
        else:
            seat.call_id = None
            self._transition(seat, SeatEvent.LOGOUT, "logout")
        self._log("seat.logout", seat_id=seat.seat_id)

    def _on_seat_ready(self, e: SeatReady) -> None:
        seat = self._seat(e.seat_id)
        if seat.state is SeatState.AVAILABLE:
            return  # already ready: a repeated click changes nothing
        self._check_seat(seat, SeatEvent.READY, "seat_ready")
        seat.pending_pause = None
        seat.call_id = None
        seat.timer_version += 1
        self._transition(seat, SeatEvent.READY, "ready")

    def _on_seat_paused(self, e: SeatPaused) -> None:
        seat = self._seat(e.seat_id)
        if e.reason not in self.config.pause_reasons:
            raise AcdError(
                f"seat_paused: unknown reason {e.reason!r}; known: {self.config.pause_reasons}"
            )
        self._check_seat(seat, SeatEvent.PAUSE, "seat_paused")
        if seat.state is SeatState.ON_CALL:
            seat.pending_pause = e.reason  # applied when the call and its wrap-up end
        elif seat.state is SeatState.OFFERED:
            self._release_offered_seat(seat, SeatEvent.PAUSE, e.reason)
        else:
            if seat.state is SeatState.WRAP_UP:
                seat.call_id = None
                seat.timer_version += 1
            self._transition(seat, SeatEvent.PAUSE, e.reason)

    def _offer_pair(self, call_id: str, seat_id: str, event: str) -> tuple[CallRec, SeatRec] | None:
        """The live (call, seat) offer, or None for a stale one; raise if it never existed."""
        seat = self._seat(seat_id)
        if call_id in self._ended:
            return None
        call = self._call(call_id)
        if call.state is CallState.OFFERED and seat_id in call.ringing:
            return call, seat
        if seat_id in call.cancelled:
            return None
        raise InvalidTransition(
            event, f"call {call_id}", call.state, f"seat {seat_id} has no offer of this call"
        )

    def _on_offer_answered(self, e: OfferAnswered) -> None:
        pair = self._offer_pair(e.call_id, e.seat_id, "offer_answered")
        if pair is None:
            self._emit(CancelOffer(e.call_id, e.seat_id))  # too late: hang the seat leg up
            return
        call, seat = pair
        if call.dialing:
            raise InvalidTransition(
                "offer_answered", f"call {call.call_id}", "dialing callback", "use callback_result"
            )
        self._connect(call, seat)

    def _connect(self, call: CallRec, seat: SeatRec) -> None:
        for other_id in sorted(call.ringing - {seat.seat_id}):
            other = self._seats[other_id]
            self._withdraw(call, other)
            self._transition(other, SeatEvent.OFFER_CANCELLED, "answered_elsewhere")
        call.ringing.clear()
        call.dialing = False
        call.state = CallState.CONNECTED
        call.seat_id = seat.seat_id
        call.connected_at = self._now
        self._transition(seat, SeatEvent.ANSWER, "answer")
        self._emit(Connect(call.call_id, seat.seat_id))
        self._log(
            "queue.connected",
            call_id=call.call_id,
            queue=call.queue,
            seat_id=seat.seat_id,
            wait=self._now - call.entered_at,
            callback=call.callback,
        )
        if call.callback and call.caller_key is not None:
            self._callback_keys.pop(call.caller_key, None)
        self._schedule_call(call)

    def _on_offer_failed(self, e: OfferFailed) -> None:
        if e.why not in self.config.offer_failure_pause:
            raise AcdError(f"offer_failed: unknown why {e.why!r}")
        pair = self._offer_pair(e.call_id, e.seat_id, "offer_failed")
        if pair is None:
            return
        call, seat = pair
        if call.dialing:
            raise InvalidTransition(
                "offer_failed", f"call {call.call_id}", "dialing callback", "use callback_result"
            )
        self._fail_offer(call, seat, e.why, cancel=False)
        if not call.ringing:
            self._return(call)

    def _complete(self, call: CallRec, by: str) -> None:
        seat = self._seats[call.seat_id] if call.seat_id else None
        self._log(
            "queue.completed",
            call_id=call.call_id,
            queue=call.queue,
            seat_id=call.seat_id,
            by=by,
            talk=self._now - call.connected_at,
        )
        self._end_call(call)
        if seat is not None:
            self._finish_seat(seat, call.queue)

    def _on_call_completed(self, e: CallCompleted) -> None:
        if e.call_id in self._ended:
            return
        call = self._call(e.call_id)
        self._check_call(call, "call_completed")
        if e.by not in ("caller", "seat"):
            raise AcdError(f"call_completed: by must be caller or seat, not {e.by!r}")
        self._complete(call, e.by)

    def _on_wrap_up_done(self, e: WrapUpDone) -> None:
        seat = self._seat(e.seat_id)
        if seat.state in (SeatState.AVAILABLE, SeatState.PAUSED):
            return  # the wrap-up timer (or a pause) got there first
        self._check_seat(seat, SeatEvent.WRAP_UP_DONE, "wrap_up_done")
        self._wrap_done(seat, "wrap_up_done")

    def _on_callback_requested(self, e: CallbackRequested) -> None:
        call = self._call(e.call_id)
        self._check_call(call, "callback_requested")
        if call.callback:
            return  # one callback per request: a repeated request changes nothing
        key = call.caller_key
        if key is None:
            raise AcdError(f"callback_requested: call {e.call_id} has no caller_key to dial back")
        if call.state is CallState.OFFERED:
            for seat_id in sorted(call.ringing):
                seat = self._seats[seat_id]
                self._withdraw(call, seat)
                self._transition(seat, SeatEvent.OFFER_CANCELLED, "callback_requested")
            self._return(call)
        if key in self._callback_keys:
            self._log(
                "callback.requested",
                call_id=call.call_id,
                queue=call.queue,
                duplicate_of=self._callback_keys[key],
            )
            self._emit(LeaveQueue(call.call_id, "callback_duplicate", "hangup"))
            self._log(
                "queue.left",
                call_id=call.call_id,
                queue=call.queue,
                reason="callback_duplicate",
                action="hangup",
                position=self._position(call),
                wait=self._now - call.entered_at,
            )
            self._end_call(call)
            return
        self._make_callback(call)

    def _on_callback_result(self, e: CallbackResult) -> None:
        call = self._call(e.call_id)
        self._check_call(call, "callback_result")
        if not call.dialing:
            raise InvalidTransition("callback_result", f"call {e.call_id}", "offered (ringing)")
        if e.ok:
            self._connect(call, self._seats[next(iter(call.ringing))])
        else:
            self._callback_failed(call, cancel=False)

    def _on_transfer_to_queue(self, e: TransferToQueue) -> None:
        call = self._call(e.call_id)
        self._check_call(call, "transfer_to_queue")
        qrec = self._queue(e.queue)
        seat = self._seats[call.seat_id] if call.seat_id else None
        self._log(
            "queue.transferred",
            call_id=call.call_id,
            from_queue=call.queue,
            to_queue=e.queue,
            seat_id=call.seat_id,
        )
        from_queue = call.queue
        call.needed = self._needed_in(call, e.queue)
        call.seat_id = None
        call.target_seat = None
        call.moved = True
        call.cancelled.clear()
        # Re-enters now with its original priority (a 110 transfer stays a 110 transfer).
        self._enqueue(call, e.queue, self._now)
        if seat is not None:
            self._finish_seat(seat, from_queue)
        if qrec.cfg.join_empty != "join" and self._is_empty(qrec):
            self._leave(call, "join_empty", qrec.cfg.join_empty)

    def _on_transfer_to_seat(self, e: TransferToSeat) -> None:
        call = self._call(e.call_id)
        self._check_call(call, "transfer_to_seat")
        target = self._seat(e.seat_id)
        if e.seat_id == call.seat_id:
            raise AcdError(f"transfer_to_seat: call {e.call_id} is already with {e.seat_id}")
        seat = self._seats[call.seat_id] if call.seat_id else None
        self._log(
            "queue.transferred",
            call_id=call.call_id,
            from_queue=call.queue,
            to_seat=e.seat_id,
            seat_id=call.seat_id,
        )
        call.seat_id = None
        call.moved = True
        call.cancelled.clear()
        # A named seat that is logged in is waited for; an offline one sends the call to the queue.
        call.target_seat = e.seat_id if target.state is not SeatState.OFFLINE else None
        self._enqueue(call, call.queue, self._now)
        if seat is not None:
            self._finish_seat(seat, call.queue)

    def _on_aht_observed(self, e: AhtObserved) -> None:
        q = self._queue(e.queue)
        if e.seconds < 0:
            raise AcdError(f"aht_observed: negative handle time {e.seconds}")
        q.aht += self.config.aht_alpha * (e.seconds - q.aht)
