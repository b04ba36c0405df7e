"""ACD vocabulary: states, input events, output commands, errors and the seat transition table.

This module owns the *names* of the ACD (automatic call distribution) core and the seat state
machine as data. It has no behaviour beyond validating a transition: the decisions live in
``acd.core`` and the indexes in ``acd.routing``. Nothing here does I/O.

Seat state machine (``SEAT_TRANSITIONS[state][event] -> new state``)::

    state \\ event | login     logout   ready      pause     offer    answer   offer_failed
    --------------+---------------------------------------------------------------------
    offline       | available  -        -          -         -        -        -
    available     | -          offline  available  paused    offered  -        -
    offered       | -          offline  -          paused    -        on_call  paused
    on_call       | -          -        -          on_call*  -        -        -
    wrap_up       | -          offline  available  paused    -        -        -
    paused        | -          offline  available  paused    -        -        -

    state \\ event | offer_cancelled  complete  wrap_up_done
    --------------+-----------------------------------------
    offered       | available        -         -
    on_call       | -                wrap_up   -
    wrap_up       | -                -         available

``-`` is impossible and raises ``InvalidTransition`` naming the event and the state.
``on_call*``: a pause asked for during a call is remembered and applied when wrap-up ends.
``offer_failed`` (no answer, busy, rejected, error) pauses the seat with a reason code
(未接听 by default) so that a seat that does not answer is not rung again and again.
``offer_cancelled`` covers a caller hanging up while the seat rings, another seat winning a
ring-all, and a callback that could not reach the caller (not the seat's fault).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


class SeatState(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    OFFERED = "offered"  # ringing, or reserved for a callback being dialled
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"  # 话后处理
    PAUSED = "paused"  # 小休, 培训, 会议, 未接听 ...


class SeatEvent(StrEnum):
    LOGIN = "login"
    LOGOUT = "logout"
    READY = "ready"
    PAUSE = "pause"
    OFFER = "offer"
    ANSWER = "answer"
    OFFER_FAILED = "offer_failed"
    OFFER_CANCELLED = "offer_cancelled"
    COMPLETE = "complete"
    WRAP_UP_DONE = "wrap_up_done"


_S, _E = SeatState, SeatEvent
SEAT_TRANSITIONS: Mapping[SeatState, Mapping[SeatEvent, SeatState]] = {
    _S.OFFLINE: {_E.LOGIN: _S.AVAILABLE},
    _S.AVAILABLE: {
        _E.LOGOUT: _S.OFFLINE,
        _E.READY: _S.AVAILABLE,
        _E.PAUSE: _S.PAUSED,
        _E.OFFER: _S.OFFERED,
    },
    _S.OFFERED: {
        _E.LOGOUT: _S.OFFLINE,
        _E.PAUSE: _S.PAUSED,
        _E.ANSWER: _S.ON_CALL,
        _E.OFFER_FAILED: _S.PAUSED,
        _E.OFFER_CANCELLED: _S.AVAILABLE,
    },
    _S.ON_CALL: {_E.PAUSE: _S.ON_CALL, _E.COMPLETE: _S.WRAP_UP},
    _S.WRAP_UP: {
        _E.LOGOUT: _S.OFFLINE,
        _E.READY: _S.AVAILABLE,
        _E.PAUSE: _S.PAUSED,
        _E.WRAP_UP_DONE: _S.AVAILABLE,
    },
    _S.PAUSED: {
        _E.LOGOUT: _S.OFFLINE,
        _E.READY: _S.AVAILABLE,
        _E.PAUSE: _S.PAUSED,
    },
}
del _S, _E


class CallState(StrEnum):
    WAITING = "waiting"  # in a queue (a callback request waits here too, caller not on line)
    OFFERED = "offered"  # ringing one seat (or several for ring-all), or dialling a callback
    CONNECTED = "connected"  # bridged to exactly one seat
    DEFERRED = "deferred"  # a failed callback waiting for its retry time, out of the queue


# Which inputs make sense for a call in each state; anything else is InvalidTransition.
CALL_INPUTS: Mapping[CallState, frozenset[str]] = {
    CallState.WAITING: frozenset({"caller_hung_up", "callback_requested"}),
    CallState.OFFERED: frozenset(
        {
            "caller_hung_up",
            "offer_answered",
            "offer_failed",
            "callback_requested",
            "callback_result",
        }
    ),
    CallState.CONNECTED: frozenset(
        {"caller_hung_up", "call_completed", "transfer_to_queue", "transfer_to_seat"}
    ),
    CallState.DEFERRED: frozenset({"caller_hung_up", "callback_requested"}),
}

OfferFailure = Literal["no_answer", "busy", "rejected", "error"]
CompletedBy = Literal["caller", "seat"]
LeaveAction = Literal["message", "callback", "hangup"]


# --- errors -----------------------------------------------------------------------------------
class AcdError(Exception):
    """An input the core cannot accept; the message says what was expected."""


class UnknownCall(AcdError):
    pass


class UnknownSeat(AcdError):
    pass


class UnknownQueue(AcdError):
    pass


class InvalidTransition(AcdError):
    """An event that is impossible in the current state (names the event and the state)."""

    def __init__(self, event: str, subject: str, state: str, detail: str = "") -> None:
        self.event, self.subject, self.state = event, subject, state
        msg = f"{event} is impossible for {subject} in state {state!r}"
        super().__init__(f"{msg}: {detail}" if detail else msg)


# --- input events (one dataclass per input method of Acd) -------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    now: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallArrived(Event):
    call_id: str
    queue: str
    priority: int = 0
    skills_needed: Mapping[str, int] | None = None  # default {queue topic: queue min_level}
    origin: str | None = None  # e.g. "110", "12345": may raise the priority per config
    caller_key: str | None = None  # stable key of the caller (hash of the number) for callbacks


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerHungUp(Event):
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatLoggedIn(Event):
    seat_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatLoggedOut(Event):
    seat_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatReady(Event):
    seat_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SeatPaused(Event):
    seat_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferAnswered(Event):
    call_id: str
    seat_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OfferFailed(Event):
    call_id: str
    seat_id: str
    why: OfferFailure = "no_answer"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallCompleted(Event):
    call_id: str
    by: CompletedBy


@dataclass(frozen=True, slots=True, kw_only=True)
class WrapUpDone(Event):
    seat_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackRequested(Event):
    call_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackResult(Event):
    call_id: str
    ok: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferToQueue(Event):
    call_id: str
    queue: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferToSeat(Event):
    call_id: str
    seat_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AhtObserved(Event):
    queue: str
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick(Event):
    pass


# --- output commands ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Command:
    pass


@dataclass(frozen=True, slots=True)
class Offer(Command):
    """Ring the seat for this call; the core cancels it itself after ring_timeout seconds."""

    call_id: str
    seat_id: str
    ring_timeout: float


@dataclass(frozen=True, slots=True)
class CancelOffer(Command):
    """Stop ringing the seat (or stop dialling a callback); the seat leg is not bridged."""

    call_id: str
    seat_id: str


@dataclass(frozen=True, slots=True)
class Connect(Command):
    """Bridge the caller with the seat."""

    call_id: str
    seat_id: str


@dataclass(frozen=True, slots=True)
class Announce(Command):
    """Tell the caller their place: ``position`` is 1-based (您排在第N位), EWT in seconds."""

    call_id: str
    position: int
    ewt_seconds: float


@dataclass(frozen=True, slots=True)
class OfferCallbackChoice(Command):
    """Ask the caller whether they want to be called back keeping their place (按1回拨)."""

    call_id: str


@dataclass(frozen=True, slots=True)
class DialCallback(Command):
    """The seat is reserved for this callback: dial the caller, report callback_result."""

    call_id: str
    seat_id: str


@dataclass(frozen=True, slots=True)
class Overflowed(Command):
    call_id: str
    from_queue: str
    to_queue: str


@dataclass(frozen=True, slots=True)
class LeaveQueue(Command):
    """The caller's live leg leaves the queue.

    ``action``: ``message`` take a message (留言, the core forgets the call); ``callback`` the
    core keeps a callback request at the call's place (play a notice, then hang up);
    ``hangup`` nothing more to do (e.g. a callback that failed every retry: the core forgot it).
    """

    call_id: str
    reason: str
    action: LeaveAction


@dataclass(frozen=True, slots=True)
class Log(Command):
    """A queue_log-like event for the call-event log. ``data`` always has ``at`` (monotonic)."""

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)


LOG_TYPES: tuple[str, ...] = (
    "queue.entered",
    "queue.offered",
    "queue.no_answer",
    "queue.connected",
    "queue.abandoned",
    "queue.completed",
    "queue.transferred",
    "queue.overflowed",
    "queue.left",
    "callback.requested",
    "callback.placed",
    "callback.failed",
    "seat.state_changed",
    "seat.login",
    "seat.logout",
)


# --- read-only views for the API, the wallboard and tests -----------------------------------
@dataclass(frozen=True, slots=True)
class SeatView:
    seat_id: str
    state: SeatState
    reason: str | None  # pause reason code while paused
    call_id: str | None  # the call offered / on call / in wrap-up
    region: str
    skills: Mapping[str, int]
    calls_handled: int
    pending_pause: str | None


@dataclass(frozen=True, slots=True)
class CallView:
    call_id: str
    state: CallState
    queue: str
    priority: int
    key: tuple[float, int]  # (effective arrival, sequence): the place in the queue
    position: int | None  # 1-based rank while waiting
    required: tuple[tuple[str, int], ...]  # skills currently required (after relaxation)
    seats: tuple[str, ...]  # ringing seats, or the connected seat
    callback: bool
    target_seat: str | None
    entered_at: float


@dataclass(frozen=True, slots=True)
class QueueView:
    name: str
    waiting: int
    logged_in: int
    staffed: int  # logged in and not paused
    aht: float
