"""Quality inspection (质检) and follow-up of dissatisfied callers (不满意回访).

Two working lists, each change mirrored as an event under the call (``qa.sampled``,
``qa.scored``, ``followup.opened``, ``followup.updated``), so the 质检率 and 不满意回访率 that
the rollups derive from the log always agree with the lists:

* QA: :func:`sample_qa` draws, per seat and period, a random sample of the seat's answered
  calls so that at least ``share`` of them (and at least ``min_per_seat``) are on the list;
  drawing again tops the sample up, never duplicates. :func:`score_qa` stores the score
  (0-100) and comment; only scored calls count as inspected.
* Follow-up: :func:`open_followups` puts *every* dissatisfied call on the list (status
  ``open``); :func:`update_followup` moves it along ``FOLLOWUP_TRANSITIONS`` until ``closed``.
  A call counts as followed up once contacted (or closed).

The functions change the tables and return the events to log; the caller logs them with
:func:`log_events_sync` (CLI, tests) or :func:`log_events_async` (the running service, whose
event log owns the sequence numbers).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from hotline.events.log import CallEventLog, insert_events, max_seq
from hotline.events.types import CallEvent, EventType
from kpi.formulas import DEFAULT_TZ
from kpi.models import KpiCall, KpiFollowup, KpiQa
from kpi.report import ReportPeriod, parse_period

FOLLOWUP_STATUSES = ("open", "contacted", "unreachable", "closed")
FOLLOWUP_TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"contacted", "unreachable", "closed"}),
    "unreachable": frozenset({"contacted", "unreachable", "closed"}),
    "contacted": frozenset({"contacted", "closed"}),
    "closed": frozenset(),
}


class QaError(ValueError):
    """A QA or follow-up request that cannot be done; the message says why."""


@dataclass(frozen=True)
class PendingEvent:
    call_id: str
    type: EventType
    data: dict[str, Any]


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


# --- QA ------------------------------------------------------------------------------------


def sample_qa(
    engine: Engine,
    period: str | ReportPeriod,
    *,
    share: float = 0.05,
    min_per_seat: int = 1,
    seed: int | str | None = None,
    tz: str = DEFAULT_TZ,
    now: datetime | None = None,
) -> tuple[list[str], list[PendingEvent]]:
    """Top up the QA sample of ``period`` to >= ``share`` of each seat's answered calls."""
    if not 0 <= share <= 1:
        raise QaError(f"share must be within 0..1, got {share}")
    p = period if isinstance(period, ReportPeriod) else parse_period(period, tz)
    c = KpiCall.__table__
    q = KpiQa.__table__
    by_seat: dict[str, list[str]] = defaultdict(list)
    sampled: dict[str, set[str]] = defaultdict(set)
    at = _now(now)
    with engine.begin() as conn:
        for call_id, seat in conn.execute(
            select(c.c.call_id, c.c.seat)
            .where(c.c.seat.is_not(None), c.c.entered_at >= p.start_utc, c.c.entered_at < p.end_utc)
            .order_by(c.c.call_id)
        ):
            by_seat[seat].append(call_id)
        for call_id, seat in conn.execute(
            select(q.c.call_id, q.c.seat).where(q.c.period == p.label)
        ):
            sampled[seat].add(call_id)
        rng = random.Random(f"{seed}:{p.label}" if seed is not None else None)
        chosen: list[str] = []
        events: list[PendingEvent] = []
        for seat in sorted(by_seat):
            calls = by_seat[seat]
            need = min(len(calls), max(min_per_seat, math.ceil(share * len(calls))))
            have = sampled[seat] & set(calls)
            pool = [x for x in calls if x not in sampled[seat]]
            extra = rng.sample(pool, max(0, need - len(have)))
            for call_id in extra:
                conn.execute(
                    q.insert().values(call_id=call_id, seat=seat, period=p.label, sampled_at=at)
                )
                events.append(
                    PendingEvent(
                        call_id,
                        EventType.QA_SAMPLED,
                        {"seat": seat, "period": p.label, "share": share},
                    )
                )
            chosen.extend(extra)
    return chosen, events


def score_qa(
    engine: Engine,
    call_id: str,
    score: int,
    comment: str = "",
    inspector: str = "",
    *,
    now: datetime | None = None,
) -> list[PendingEvent]:
    """Record the inspection of a sampled call: score 0-100 and a comment."""
    if not isinstance(score, int) or isinstance(score, bool) or not 0 <= score <= 100:
        raise QaError(f"score must be an integer 0..100, got {score!r}")
    q = KpiQa.__table__
    with engine.begin() as conn:
        row = conn.execute(select(q.c.call_id).where(q.c.call_id == call_id)).first()
        if row is None:
            raise QaError(f"call {call_id} is not on the QA list: sample it first")
        conn.execute(
            q.update()
            .where(q.c.call_id == call_id)
            .values(score=score, comment=comment, inspector=inspector, scored_at=_now(now))
        )
    data = {"score": score, "comment": comment, "inspector": inspector}
    return [PendingEvent(call_id, EventType.QA_SCORED, data)]


def qa_list(
    engine: Engine, period: str | None = None, seat: str | None = None
) -> list[dict[str, Any]]:
    q = KpiQa.__table__
    query = select(q)
    if period is not None:
        query = query.where(q.c.period == period)
    if seat is not None:
        query = query.where(q.c.seat == seat)
    with engine.connect() as conn:
        return [_jsonable(r._mapping) for r in conn.execute(query.order_by(q.c.seat, q.c.call_id))]


# --- follow-up -----------------------------------------------------------------------------


def open_followups(
    engine: Engine, *, now: datetime | None = None
) -> tuple[list[str], list[PendingEvent]]:
    """Put every dissatisfied call not yet on the follow-up list on it (status ``open``)."""
    c = KpiCall.__table__
    f = KpiFollowup.__table__
    at = _now(now)
    with engine.begin() as conn:
        rows = conn.execute(
            select(c.c.call_id, c.c.seat, c.c.region)
            .where(c.c.survey == "dissatisfied")
            .where(c.c.call_id.not_in(select(f.c.call_id)))
            .order_by(c.c.entered_at)
        ).all()
        for call_id, seat, region in rows:
            conn.execute(
                f.insert().values(
                    call_id=call_id, seat=seat, region=region, opened_at=at, status="open"
                )
            )
    events = [
        PendingEvent(
            r.call_id, EventType.FOLLOWUP_OPENED, {"seat": r.seat, "reason": "dissatisfied"}
        )
        for r in rows
    ]
    return [r.call_id for r in rows], events


def update_followup(
    engine: Engine,
    call_id: str,
    status: str,
    note: str = "",
    by: str = "",
    *,
    now: datetime | None = None,
) -> list[PendingEvent]:
    """Move a follow-up to ``status`` (see ``FOLLOWUP_TRANSITIONS``)."""
    if status not in FOLLOWUP_STATUSES:
        raise QaError(f"status must be one of {FOLLOWUP_STATUSES}, got {status!r}")
    f = KpiFollowup.__table__
    at = _now(now)
    with engine.begin() as conn:
        current = conn.execute(select(f.c.status).where(f.c.call_id == call_id)).scalar()
        if current is None:
            raise QaError(f"call {call_id} is not on the follow-up list")
        if status not in FOLLOWUP_TRANSITIONS[current]:
            raise QaError(f"follow-up of {call_id} is {current}; it cannot become {status}")
        values: dict[str, Any] = {"status": status, "note": note, "updated_by": by}
        values["updated_at"] = at
        if status == "closed":
            values["closed_at"] = at
        conn.execute(f.update().where(f.c.call_id == call_id).values(**values))
    return [
        PendingEvent(
            call_id, EventType.FOLLOWUP_UPDATED, {"status": status, "note": note, "by": by}
        )
    ]


def followup_list(engine: Engine, status: str | None = None) -> list[dict[str, Any]]:
    f = KpiFollowup.__table__
    query = select(f)
    if status is not None:
        query = query.where(f.c.status == status)
    with engine.connect() as conn:
        return [_jsonable(r._mapping) for r in conn.execute(query.order_by(f.c.opened_at))]


def _jsonable(row: Any) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


# --- logging the changes -------------------------------------------------------------------


def log_events_sync(
    engine: Engine, events: Sequence[PendingEvent], *, now: datetime | None = None
) -> int:
    """Append the events straight to the table with each call's next ``seq`` (no service
    running: the CLI and tests). Returns how many were stored."""
    stored = 0
    ts = _now(now)
    for e in events:
        seq = max_seq(engine, e.call_id) + 1
        stored += insert_events(engine, [CallEvent(e.call_id, seq, ts, e.type, e.data)])
    return stored


async def log_events_async(event_log: CallEventLog, events: Sequence[PendingEvent]) -> None:
    """Append through the service's event log (continuing each call's stored sequence)."""
    for e in events:
        await event_log.resume_call(e.call_id)
        event_log.append(e.call_id, e.type, e.data)
