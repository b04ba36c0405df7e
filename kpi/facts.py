"""Typed per-call and per-seat facts: the input of every KPI formula.

The event log is the source of truth; a deriver (not this module) folds each call's events into
one :class:`CallFacts`, and each seat's state changes into :class:`SeatSpan` s. The formulas in
``kpi.formulas`` read only these facts, so they are pure and can be checked by hand.

Rules the deriver must follow (and the formulas rely on)
--------------------------------------------------------
* One ``CallFacts`` per call (``call_id`` unique). Timestamps are timezone-aware UTC.
* ``entered_queue_at`` is when the call first **asked for a seat**: it joined its first queue,
  or arrived as a transfer from 110/12345/... asking for a seat. ``None`` means it never did
  (self-service in the IVR, hung up in the menu): such calls are in no KPI.
* ``queue`` is the queue the call is **attributed** to: the queue in which a seat answered it,
  else the last queue it waited in. A call moved between queues before it was answered
  (``transferred_from``) or overflowed (``overflowed_from``) therefore counts once, in its
  final queue, and per-queue figures add up to the hotline's. Earlier queues are kept only as
  history. A transfer *after* a seat answered is not a new request for a seat: the call is
  already answered; the handling time of later seats is in ``talk_s``/``hold_s`` and in those
  seats' :class:`SeatSpan` busy time.
* ``answered_at``/``seat``: the first live answer by a seat. ``wait_s`` is seconds from
  ``entered_queue_at`` to that answer, or to the hang-up for an abandoned call (time in the
  IVR before the first queue is not counted).
* Callbacks (回拨): a caller who left the queue choosing a callback has
  ``callback_requested_at``; if a seat called back and the caller answered,
  ``callback_answered_at`` and ``seat`` are set. Such a call counts as answered for the answer
  rate, the satisfaction and AHT, but not in the service level or ASA (its wait is not a queue
  wait); it is never an abandon.
* ``abandoned``: the caller hung up while waiting for a seat (not after choosing a callback).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

SERVICE_NUMBER = "12348"


class Survey(StrEnum):
    """The post-call evaluation (满意/基本满意/不满意)."""

    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    DISSATISFIED = "dissatisfied"

    @property
    def label(self) -> str:
        return _SURVEY_LABELS[self]


_SURVEY_LABELS = {
    Survey.SATISFIED: "满意",
    Survey.BASICALLY_SATISFIED: "基本满意",
    Survey.DISSATISFIED: "不满意",
}


class FactsError(ValueError):
    """Facts that contradict themselves; the message names the call or seat."""


def _aware(name: str, owner: str, value: datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise FactsError(f"{owner}: {name} must be timezone-aware (UTC), got naive {value}")


def _seconds(name: str, owner: str, value: float) -> None:
    if not (value >= 0 and math.isfinite(value)):
        raise FactsError(f"{owner}: {name} must be a finite number of seconds >= 0, got {value}")


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What happened to one call, as far as the KPIs care (see the module rules)."""

    call_id: str
    entered_queue_at: datetime | None
    queue: str | None = None
    region: str | None = None
    topic: str | None = None
    origin: str = SERVICE_NUMBER  # number the call came in on: 12348, 110, 12345, ...
    answered_at: datetime | None = None
    seat: str | None = None
    ended_at: datetime | None = None
    abandoned: bool = False
    wait_s: float = 0.0
    talk_s: float = 0.0
    hold_s: float = 0.0
    wrap_s: float = 0.0
    survey: Survey | None = None
    followed_up: bool = False  # a dissatisfied caller was called back (不满意回访)
    qa_inspected: bool = False
    transferred_from: tuple[str, ...] = ()
    overflowed_from: tuple[str, ...] = ()
    callback_requested_at: datetime | None = None
    callback_answered_at: datetime | None = None

    def __post_init__(self) -> None:
        who = f"call {self.call_id}"
        for name in (
            "entered_queue_at",
            "answered_at",
            "ended_at",
            "callback_requested_at",
            "callback_answered_at",
        ):
            _aware(name, who, getattr(self, name))
        for name in ("wait_s", "talk_s", "hold_s", "wrap_s"):
            _seconds(name, who, getattr(self, name))
        if self.survey is not None and not isinstance(self.survey, Survey):
            raise FactsError(f"{who}: survey must be a Survey, got {self.survey!r}")
        if self.entered_queue_at is None and (
            self.answered_at or self.abandoned or self.callback_requested_at
        ):
            raise FactsError(f"{who}: answered, abandoned or callback without entered_queue_at")
        if self.abandoned and self.answered:
            raise FactsError(f"{who}: cannot be both abandoned and answered")
        if self.abandoned and self.callback_requested_at is not None:
            raise FactsError(f"{who}: a caller who chose a callback did not abandon")
        if self.answered and not self.seat:
            raise FactsError(f"{who}: answered but no seat")
        if self.callback_answered_at is not None and self.callback_requested_at is None:
            raise FactsError(f"{who}: callback answered but never requested")
        if (
            self.answered_at is not None
            and self.entered_queue_at is not None
            and self.answered_at < self.entered_queue_at
        ):
            raise FactsError(f"{who}: answered_at is before entered_queue_at")
        if self.survey is not None and not self.answered:
            raise FactsError(f"{who}: a survey on a call no seat answered")

    # Derived views -------------------------------------------------------------------
    @property
    def asked_for_seat(self) -> bool:
        return self.entered_queue_at is not None

    @property
    def answered_live(self) -> bool:
        return self.answered_at is not None

    @property
    def answered_by_callback(self) -> bool:
        return self.answered_at is None and self.callback_answered_at is not None

    @property
    def answered(self) -> bool:
        """A seat talked with the caller: live, or by a callback the caller answered."""
        return self.answered_at is not None or self.callback_answered_at is not None

    @property
    def in_progress(self) -> bool:
        """Still waiting for a seat: no outcome yet, so in no rate (only in real-time counts)."""
        return (
            self.asked_for_seat
            and not self.answered
            and not self.abandoned
            and self.callback_requested_at is None
            and self.ended_at is None
        )

    @property
    def handling_s(self) -> float:
        """Talk + hold + wrap-up seconds (the AHT numerator)."""
        return self.talk_s + self.hold_s + self.wrap_s

    @property
    def transferred_in(self) -> bool:
        """Came from another hotline (110, 12345, 12355, 12368, ...)."""
        return self.origin != SERVICE_NUMBER


@dataclass(frozen=True, slots=True)
class SeatSpan:
    """A stretch of one seat's time in one activity; activities may overlap.

    ``logged_in`` spans cover the whole session; ``paused`` (示忙/小休) and ``busy`` (talk,
    hold and wrap-up) spans lie inside sessions. Occupancy = busy / (logged in - paused).
    """

    seat: str
    activity: str  # one of SEAT_ACTIVITIES
    start: datetime
    end: datetime
    region: str | None = None

    def __post_init__(self) -> None:
        who = f"seat {self.seat}"
        if self.activity not in SEAT_ACTIVITIES:
            raise FactsError(f"{who}: activity must be one of {SEAT_ACTIVITIES}")
        _aware("start", who, self.start)
        _aware("end", who, self.end)
        if self.end < self.start:
            raise FactsError(f"{who}: {self.activity} span ends before it starts")


SEAT_ACTIVITIES = ("logged_in", "paused", "busy")


@dataclass(frozen=True, slots=True)
class SeatIntervalFacts:
    """One seat's seconds in one reporting interval (hour, day, ...), spans split at bounds."""

    seat: str
    period: str
    key: str  # the interval's label, see kpi.formulas.period_key
    logged_in_s: float
    paused_s: float
    busy_s: float
    region: str | None = None

    def __post_init__(self) -> None:
        who = f"seat {self.seat} in {self.key}"
        for name in ("logged_in_s", "paused_s", "busy_s"):
            _seconds(name, who, getattr(self, name))

    @property
    def available_s(self) -> float:
        """Logged-in time not paused: the occupancy denominator."""
        return max(0.0, self.logged_in_s - self.paused_s)
