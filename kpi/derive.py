"""From the call-event log to KPI facts: one :class:`CallFacts` per call, seat spans per seat.

This module owns the *reading* of the event vocabulary (``call.*``, ``ivr.*``, ``queue.*``,
``callback.*``, ``seat.*``, ``survey.*``, ``qa.*``, ``followup.*``) into the facts that
``kpi.formulas`` counts; it follows the rules written at the top of ``kpi.facts``. Everything
here is pure except :func:`load_events` (the database loader) and is shared by the three users
of facts: the historical rollups (``kpi.rollup``), the live counters (``kpi.realtime``) and the
trace of a KPI back to its calls.

Theory of operation
-------------------
A call's facts depend only on its own events (ordered by ``seq``) plus two things that live in
the seats' streams (``seat:<id>`` pseudo calls): the wrap-up (话后处理) the answering seat did
after the call, and the seat's region when the call names none. :class:`SeatFold` walks the
seat events (and ``queue.connected``, which says which call a seat is on) in log order and
emits closed :class:`SeatSpan` s and wrap-up seconds per call id. The fold's whole state is a
small :class:`SeatStatus` per seat, so the rollups can persist it and resume it exactly.

How each fact is read (ACD keys from ``acd/core.py``; the adapter adds ``seat``/``queue``):

* ``entered_queue_at``: the first ``queue.entered``. ``queue``: the queue a seat answered in
  (first ``queue.connected``), else the last queue the call was in (``queue.entered``,
  ``queue.overflowed.to_queue``, ``queue.transferred.to_queue``). Moves before the answer are
  kept in ``overflowed_from`` / ``transferred_from``; a transfer after the answer is not a new
  request (the call counts once).
* ``answered_at``/``seat``/``wait_s``: the first live ``queue.connected``; wait is measured
  on the log's timestamps from the first queue entry (not the ACD's per-queue ``wait``).
  ``queue.connected`` with ``callback: true`` sets ``callback_answered_at`` instead.
* ``abandoned``: ``queue.abandoned`` before any answer, or ``call.ended`` by the caller while
  still waiting (an adapter that missed the abandon). ``queue.left`` with ``action:
  callback`` sets ``callback_requested_at``; with ``message``/``hangup`` the call was not
  answered and not abandoned (the hotline failed it).
* ``talk_s``: time connected to any seat (connected → completed / transferred / ended),
  less the time on hold. ``hold_s``: ``call.held`` → ``call.resumed`` (or the end of the
  connection while held), on the log's timestamps.
* ``survey``: ``survey.answered`` ``result`` (or ``rating``); ignored on an unanswered call.
* ``qa_inspected``: a ``qa.scored``; ``followed_up``: a ``followup.updated`` to contacted or
  closed.
* ``topic``: the last non-empty ``topic`` in the call's events (IVR menu, then a work order's
  classification may refine it). ``region``: the first ``region`` the call's own events name,
  else the answering seat's region at the answer (its latest ``seat.login`` before).
* ``origin``: ``queue.entered.origin``, else ``call.entered.via``; ``12348`` by default.
"""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, select

from hotline.db.models import CallEventRow
from hotline.events.log import _from_row
from hotline.events.types import CallEvent
from kpi.facts import SERVICE_NUMBER, CallFacts, SeatSpan, Survey

log = logging.getLogger(__name__)

SEAT_PREFIX = "seat:"
PSEUDO_PREFIXES = ("seat:", "service:", "kpi:")
FOLLOWED_UP_STATUSES = frozenset({"contacted", "closed"})
_NOT_AN_ORIGIN = frozenset({"", "direct", "inbound", "unknown", SERVICE_NUMBER})
# The seat states in which a seat is working a call (talk or wrap-up), or paused.
_BUSY = frozenset({"on_call", "wrap_up"})


def is_pseudo_call(call_id: str) -> bool:
    """Seat, service and KPI streams: not callers, never a CallFacts."""
    return call_id.startswith(PSEUDO_PREFIXES)


def seat_of(data: Mapping[str, Any]) -> str | None:
    """The seat a log entry names: the adapter's ``seat`` or the ACD core's ``seat_id``."""
    value = data.get("seat") or data.get("seat_id")
    return str(value) if value else None


def _seconds(a: datetime, b: datetime) -> float:
    return max(0.0, (b - a).total_seconds())


class SeatRegions:
    """Each seat's region over time, from ``seat.login`` (``region`` key)."""

    def __init__(self) -> None:
        self._logins: dict[str, list[tuple[datetime, str]]] = defaultdict(list)

    def add(self, seat: str, ts: datetime, region: str | None) -> None:
        if not region:
            return
        entries = self._logins[seat]
        if entries and entries[-1][0] <= ts:
            if entries[-1][1] != region:
                entries.append((ts, region))
        else:
            bisect.insort(entries, (ts, region))

    def at(self, seat: str | None, ts: datetime | None) -> str | None:
        """The region of the seat's latest login at or before ``ts`` (else its first)."""
        if seat is None:
            return None
        entries = self._logins.get(seat)
        if not entries:
            return None
        if ts is None:
            return entries[-1][1]
        i = bisect.bisect_right(entries, (ts, "\uffff"))
        return entries[max(0, i - 1)][1]

    def __len__(self) -> int:
        return sum(len(v) for v in self._logins.values())


# --- one call ----------------------------------------------------------------------------


def derive_call(
    events: Sequence[CallEvent],
    *,
    wrap_s: float = 0.0,
    seat_regions: SeatRegions | None = None,
) -> CallFacts:
    """Fold one call's events (any order; sorted by ``seq`` here) into its facts."""
    if not events:
        raise ValueError("derive_call needs at least one event")
    evs = sorted(events, key=lambda e: e.seq)
    call_id = evs[0].call_id
    entered: datetime | None = None
    queue: str | None = None
    answered_queue: str | None = None
    region: str | None = None
    connected_region: str | None = None
    topic: str | None = None
    origin: str | None = None
    via: str | None = None
    answered_at: datetime | None = None
    seat: str | None = None
    ended_at: datetime | None = None
    abandoned = False
    wait_s = 0.0
    talk_s = 0.0
    hold_s = 0.0
    since: datetime | None = None  # connected to a seat since
    held: datetime | None = None  # on hold since (while connected)
    survey: Survey | None = None
    followed_up = False
    qa = False
    transferred_from: list[str] = []
    overflowed_from: list[str] = []
    cb_requested: datetime | None = None
    cb_answered: datetime | None = None
    left = False  # left the queue without an answer (message, hang-up by the system)

    def answered() -> bool:
        return answered_at is not None or cb_answered is not None

    def waiting() -> bool:
        return entered is not None and not answered() and not abandoned and not left

    def end_hold(ts: datetime) -> None:
        nonlocal held, hold_s
        if held is not None:
            hold_s += _seconds(held, ts)
            held = None

    for ev in evs:
        t = str(ev.type)
        d = ev.data
        value = d.get("topic")
        if isinstance(value, str) and value:
            topic = value
        if region is None and (t in ("call.entered", "queue.entered") or t.startswith("ivr.")):
            r = d.get("region")
            if isinstance(r, str) and r:
                region = r
        if t == "call.entered":
            v = d.get("via")
            via = str(v) if v else via
        elif t == "queue.entered":
            if entered is None:
                entered = ev.ts
                o = d.get("origin")
                origin = str(o) if o else None
            if not answered():
                queue = d.get("queue") or queue
        elif t == "queue.overflowed":
            if not answered():
                if d.get("from_queue"):
                    overflowed_from.append(str(d["from_queue"]))
                queue = d.get("to_queue") or queue
        elif t == "queue.transferred":
            if since is not None:
                talk_s += _seconds(since, ev.ts)
                since = None
            end_hold(ev.ts)
            if not answered() and d.get("to_queue"):
                if d.get("from_queue"):
                    transferred_from.append(str(d["from_queue"]))
                queue = d["to_queue"]
        elif t == "queue.connected":
            if entered is None:  # a log without the entry: the answer is the first we know
                entered = ev.ts
            if since is None:
                since = ev.ts
            if not answered():
                s = seat_of(d)
                answered_queue = d.get("queue") or queue
                r = d.get("region")
                connected_region = r if isinstance(r, str) and r else None
                if d.get("callback"):
                    cb_answered = ev.ts
                    if cb_requested is None:
                        cb_requested = ev.ts
                else:
                    answered_at = ev.ts
                    wait_s = _seconds(entered, ev.ts)
                seat = s
                abandoned = False
        elif t == "queue.completed":
            if since is not None:
                talk_s += _seconds(since, ev.ts)
                since = None
            end_hold(ev.ts)
        elif t == "queue.abandoned":
            if waiting() and cb_requested is None and entered is not None:
                abandoned = True
                wait_s = _seconds(entered, ev.ts)
                ended_at = ended_at or ev.ts
        elif t == "queue.left":
            if entered is not None and not answered():
                if d.get("action") == "callback":
                    if cb_requested is None:
                        cb_requested = ev.ts
                        wait_s = _seconds(entered, ev.ts)
                elif cb_requested is None:
                    left = True
                    wait_s = _seconds(entered, ev.ts)
        elif t == "call.ended":
            if since is not None:
                talk_s += _seconds(since, ev.ts)
                since = None
            end_hold(ev.ts)
            if waiting() and cb_requested is None and d.get("hangup_by") == "caller":
                abandoned = True
                assert entered is not None
                wait_s = _seconds(entered, ev.ts)
            ended_at = ev.ts
        elif t == "call.held":
            if since is not None and held is None:
                held = ev.ts
        elif t == "call.resumed":
            end_hold(ev.ts)
        elif t == "survey.answered":
            raw = d.get("result") or d.get("rating")
            try:
                survey = Survey(str(raw))
            except ValueError:
                log.warning("call %s: survey result %r is not a rating", call_id, raw)
        elif t == "qa.scored":
            qa = True
        elif t == "followup.updated":
            if d.get("status") in FOLLOWED_UP_STATUSES:
                followed_up = True

    if answered():
        queue = answered_queue or queue
    if survey is not None and not answered():
        log.warning("call %s: survey on a call no seat answered; ignored", call_id)
        survey = None
    if region is None:
        region = connected_region
    if region is None and seat is not None and seat_regions is not None:
        region = seat_regions.at(seat, answered_at or cb_answered)
    if origin is None or origin in _NOT_AN_ORIGIN:
        origin = via if via and via not in _NOT_AN_ORIGIN else SERVICE_NUMBER
    if entered is None:
        # Never asked for a seat: only the end time matters (no KPI counts it).
        return CallFacts(
            call_id, None, topic=topic, region=region, origin=origin, ended_at=ended_at
        )
    return CallFacts(
        call_id,
        entered,
        queue=queue,
        region=region,
        topic=topic,
        origin=origin,
        answered_at=answered_at,
        seat=seat if answered() else None,
        ended_at=ended_at,
        abandoned=abandoned,
        wait_s=wait_s,
        talk_s=max(0.0, talk_s - hold_s),
        hold_s=hold_s,
        wrap_s=wrap_s if answered() else 0.0,
        survey=survey,
        followed_up=followed_up and survey is Survey.DISSATISFIED,
        qa_inspected=qa and answered(),
        transferred_from=tuple(transferred_from),
        overflowed_from=tuple(overflowed_from),
        callback_requested_at=cb_requested,
        callback_answered_at=cb_answered,
    )


# --- seats -------------------------------------------------------------------------------


@dataclass(slots=True)
class SeatStatus:
    """What the fold remembers about one seat between events (persisted by the rollups)."""

    state: str = "offline"
    since: datetime | None = None
    region: str | None = None
    last_call: str | None = None


def ms(seconds: float) -> int:
    """Integer milliseconds: rollups sum these so that taking a contribution back is exact."""
    return round(seconds * 1000)


@dataclass(slots=True)
class SeatOutput:
    spans: list[SeatSpan] = field(default_factory=list)
    wrap: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    wrap_ms: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    wrap_spans: list[tuple[str, datetime, datetime]] = field(default_factory=list)


class SeatFold:
    """Seat state changes → closed spans (logged in, paused, busy) and wrap-up per call.

    Feed events in log order. A span is emitted when the state it belongs to ends, so a seat
    that is still logged in has an open span that no report counts yet.
    """

    def __init__(self, status: Mapping[str, SeatStatus] | None = None) -> None:
        self.status: dict[str, SeatStatus] = dict(status or {})
        self.regions = SeatRegions()

    @staticmethod
    def relevant(event: CallEvent) -> bool:
        return event.call_id.startswith(SEAT_PREFIX) or str(event.type) == "queue.connected"

    def feed(self, event: CallEvent, out: SeatOutput) -> str | None:
        """Apply one event; returns the seat whose status changed (or None)."""
        t = str(event.type)
        d = event.data
        if t == "queue.connected":
            s = seat_of(d)
            if s is None:
                return None
            self.status.setdefault(s, SeatStatus()).last_call = event.call_id
            return s
        if not event.call_id.startswith(SEAT_PREFIX):
            return None
        s = seat_of(d) or event.call_id[len(SEAT_PREFIX) :]
        st = self.status.setdefault(s, SeatStatus())
        if t == "seat.login":
            r = d.get("region")
            if isinstance(r, str) and r:
                st.region = r
                self.regions.add(s, event.ts, r)
            return s
        if t != "seat.state_changed":
            return None
        new = str(d.get("to") or "offline")
        if st.since is not None and st.state != "offline":
            self._close(s, st, event.ts, out)
        call = d.get("call_id")
        if call and new in ("on_call", "wrap_up"):  # the adapter names the call: trust it
            st.last_call = str(call)
        st.state = new
        st.since = event.ts if new != "offline" else None
        return s

    def _close(self, seat: str, st: SeatStatus, end: datetime, out: SeatOutput) -> None:
        assert st.since is not None
        start = st.since
        if end <= start:
            return
        out.spans.append(SeatSpan(seat, "logged_in", start, end, st.region))
        if st.state == "paused":
            out.spans.append(SeatSpan(seat, "paused", start, end, st.region))
        elif st.state in _BUSY:
            out.spans.append(SeatSpan(seat, "busy", start, end, st.region))
        if st.state == "wrap_up" and st.last_call is not None:
            out.wrap[st.last_call] += _seconds(start, end)
            out.wrap_ms[st.last_call] += ms(_seconds(start, end))
        if st.state == "wrap_up":
            out.wrap_spans.append((seat, start, end))


# --- a whole log -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Derived:
    """Facts of every call in a set of events, and the seats' closed spans."""

    calls: list[CallFacts]
    spans: list[SeatSpan]
    wrap: Mapping[str, float]
    wrap_spans: Sequence[tuple[str, datetime, datetime]] = ()

    def by_id(self) -> dict[str, CallFacts]:
        return {c.call_id: c for c in self.calls}


def derive(events: Iterable[CallEvent], *, seat_regions: SeatRegions | None = None) -> Derived:
    """Facts from events given in log order (the database's id order; ties keep the order)."""
    fold = SeatFold()
    out = SeatOutput()
    per_call: dict[str, list[CallEvent]] = defaultdict(list)
    for ev in events:
        if SeatFold.relevant(ev):
            fold.feed(ev, out)
        if not is_pseudo_call(ev.call_id):
            per_call[ev.call_id].append(ev)
    regions = seat_regions or fold.regions
    calls = [
        derive_call(evs, wrap_s=out.wrap_ms.get(cid, 0) / 1000, seat_regions=regions)
        for cid, evs in per_call.items()
    ]
    calls.sort(
        key=lambda c: (c.entered_queue_at is None, c.entered_queue_at or c.ended_at, c.call_id)
    )
    return Derived(calls, out.spans, dict(out.wrap), out.wrap_spans)


# --- the database loader -----------------------------------------------------------------

_T = CallEventRow.__table__
_CHUNK = 500


def _chunks(items: Sequence[str], size: int = _CHUNK) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def events_of_calls(engine: Engine, call_ids: Sequence[str]) -> dict[str, list[CallEvent]]:
    """Every stored event of these calls, per call, in ``seq`` order."""
    result: dict[str, list[CallEvent]] = defaultdict(list)
    with engine.connect() as conn:
        for chunk in _chunks(list(call_ids)):
            rows = conn.execute(
                select(_T).where(_T.c.call_id.in_(chunk)).order_by(_T.c.call_id, _T.c.seq)
            )
            for row in rows:
                result[row.call_id].append(_from_row(row))
    return result


def load_seat_regions(engine: Engine, before_id: int | None = None) -> SeatRegions:
    """Every seat's logins (region) from the log, optionally only rows with id <= before_id."""
    regions = SeatRegions()
    query = select(_T.c.call_id, _T.c.ts, _T.c.data).where(_T.c.type == "seat.login")
    if before_id is not None:
        query = query.where(_T.c.id <= before_id)
    with engine.connect() as conn:
        for call_id, ts, data in conn.execute(query.order_by(_T.c.id)):
            seat = seat_of(data or {}) or call_id[len(SEAT_PREFIX) :]
            regions.add(seat, ts, (data or {}).get("region"))
    return regions


def load_events(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    seat_lookback: timedelta = timedelta(days=1),
) -> list[CallEvent]:
    """Events behind the KPIs of ``[start, end)``: all events of calls that entered a queue in
    that window (late surveys and follow-ups included) and the seat streams from
    ``seat_lookback`` before ``start`` (a seat's state at ``start`` needs its last change).
    Returned in log (id) order. Meant for traces and checks; reports read the rollups."""
    with engine.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                select(_T.c.call_id)
                .where(_T.c.type == "queue.entered", _T.c.ts >= start, _T.c.ts < end)
                .distinct()
            )
        ]
        rows: list[Any] = []
        for chunk in _chunks(ids):
            rows.extend(conn.execute(select(_T).where(_T.c.call_id.in_(chunk))))
        rows.extend(
            conn.execute(
                select(_T).where(
                    _T.c.ts >= start - seat_lookback,
                    _T.c.ts < end,
                    or_(_T.c.call_id.like(f"{SEAT_PREFIX}%"), _T.c.type == "queue.connected"),
                )
            )
        )
    unique = {r.id: r for r in rows}
    return [_from_row(unique[i]) for i in sorted(unique)]


def derive_from_db(engine: Engine, start: datetime, end: datetime) -> Derived:
    """:func:`derive` over :func:`load_events`, keeping calls that entered in ``[start, end)``
    and the seat spans clipped to it."""
    events = load_events(engine, start, end)
    derived = derive(events, seat_regions=load_seat_regions(engine))
    calls = [
        c
        for c in derived.calls
        if c.entered_queue_at is not None and start <= c.entered_queue_at < end
    ]
    spans = [
        SeatSpan(s.seat, s.activity, max(s.start, start), min(s.end, end), s.region)
        for s in derived.spans
        if s.end > start and s.start < end
    ]
    return Derived(calls, spans, derived.wrap)
