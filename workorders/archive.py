"""Party archive (当事人法律服务档案): a caller's earlier calls, orders and satisfaction.

The look-up key is the caller key (``hotline.privacy.number_key``: a keyed hash of the number,
as in the ``call.entered`` event data), never the clear number. Everything is read from what is
already stored: the calls from the call-event log (``call.entered`` with that key, then the
events of those calls that say where the call went and how it ended), the orders from the
``workorders`` table (``caller_key``). Nothing is cached, so the archive is always as current
as the log.

A call's ``outcome`` is, most telling first: ``answered`` (a seat took it), ``message`` (a
voice message), ``callback`` (booked a callback), ``transferred`` (to a partner line),
``abandoned`` (hung up waiting for a seat), ``rejected``, else the IVR's outcome
(``self_served``, ``hung_up``, ``failed``) or ``unknown``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Engine, select

from hotline.db.models import CallEventRow
from hotline.events.types import EventType
from workorders.lifecycle import STATE_LABELS, State
from workorders.models import WorkOrderRow

_T = EventType
_CALL_TYPES = (
    _T.CALL_ENDED,
    _T.CALL_REJECTED,
    _T.IVR_ACTION,
    _T.IVR_OUTCOME,
    _T.QUEUE_ENTERED,
    _T.QUEUE_CONNECTED,
    _T.QUEUE_ABANDONED,
    _T.MESSAGE_RECORDED,
    _T.CALLBACK_BOOKED,
    _T.SURVEY_ANSWERED,
)
RATINGS = ("satisfied", "basically_satisfied", "dissatisfied")
RATING_LABELS = {"satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"}


def party_archive(engine: Engine, caller_key: str, *, limit: int = 50) -> dict[str, Any]:
    """The archive of ``caller_key``: most recent first, at most ``limit`` calls and orders."""
    with engine.connect() as conn:
        entered = conn.execute(
            select(CallEventRow.call_id, CallEventRow.ts)
            .where(CallEventRow.type == str(_T.CALL_ENTERED))
            .where(CallEventRow.data["caller_key"].as_string() == caller_key)
            .order_by(CallEventRow.ts.desc(), CallEventRow.id.desc())
            .limit(limit)
        ).all()
        call_ids = [r.call_id for r in entered]
        events = (
            conn.execute(
                select(CallEventRow.call_id, CallEventRow.type, CallEventRow.ts, CallEventRow.data)
                .where(CallEventRow.call_id.in_(call_ids))
                .where(CallEventRow.type.in_([str(t) for t in _CALL_TYPES]))
                .order_by(CallEventRow.call_id, CallEventRow.seq)
            ).all()
            if call_ids
            else []
        )
        orders = conn.execute(
            select(WorkOrderRow)
            .where(WorkOrderRow.caller_key == caller_key)
            .order_by(WorkOrderRow.created_at.desc(), WorkOrderRow.number.desc())
            .limit(limit)
        ).all()

    by_call: dict[str, list[Any]] = {}
    for event in events:
        by_call.setdefault(event.call_id, []).append(event)
    order_topic: dict[str, str] = {}
    for order in reversed(orders):
        if order.call_id:
            order_topic[order.call_id] = order.topic

    calls = []
    ratings: Counter[str] = Counter()
    for call_id, started in entered:
        call = _call_summary(call_id, started, by_call.get(call_id, []))
        call["topic"] = order_topic.get(call_id, call["topic"])
        if call["satisfaction"]:
            ratings[call["satisfaction"]] += 1
        calls.append(call)
    rated = sum(ratings.values())
    last = next((c["satisfaction"] for c in calls if c["satisfaction"]), None)
    return {
        "caller_key": caller_key,
        "repeat": len(calls) > 1,
        "calls": calls,
        "orders": [
            {
                "id": o.id,
                "number": o.number,
                "topic": o.topic,
                "state": o.state,
                "state_label": STATE_LABELS[State(o.state)],
                "summary": o.summary,
                "created_at": o.created_at.isoformat(),
                "resolved_at": o.resolved_at.isoformat() if o.resolved_at else None,
                "call_id": o.call_id,
            }
            for o in orders
        ],
        "satisfaction": {
            **{r: ratings[r] for r in RATINGS},
            "rated": rated,
            "calls": len(calls),
            "rate": round((ratings["satisfied"] + ratings["basically_satisfied"]) / rated, 4)
            if rated
            else None,
            "last": last,
            "last_label": RATING_LABELS.get(last or ""),
        },
    }


def _call_summary(call_id: str, started: Any, events: list[Any]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    queue = topic = seat = rating = ended = ivr_outcome = None
    for event in events:
        seen.setdefault(event.type, event)
        data = event.data or {}
        if event.type in (_T.QUEUE_ENTERED, _T.QUEUE_CONNECTED) and data.get("queue"):
            queue = data["queue"]
        if event.type == _T.QUEUE_CONNECTED and seat is None:
            seat = data.get("seat_id")
        if event.type == _T.IVR_ACTION and data.get("topic"):
            topic = data["topic"]
        if event.type == _T.IVR_ACTION and data.get("action") == "transfer":
            seen.setdefault("transfer", event)
        if event.type == _T.IVR_OUTCOME:
            ivr_outcome = data.get("outcome")
        if event.type == _T.SURVEY_ANSWERED:
            rating = data.get("rating")
        if event.type == _T.CALL_ENDED:
            ended = event.ts
    if _T.QUEUE_CONNECTED in seen:
        outcome = "answered"
    elif _T.MESSAGE_RECORDED in seen:
        outcome = "message"
    elif _T.CALLBACK_BOOKED in seen:
        outcome = "callback"
    elif "transfer" in seen:
        outcome = "transferred"
    elif _T.QUEUE_ABANDONED in seen:
        outcome = "abandoned"
    elif _T.CALL_REJECTED in seen:
        outcome = "rejected"
    else:
        outcome = ivr_outcome or "unknown"
    return {
        "call_id": call_id,
        "started_at": started.isoformat(),
        "ended_at": ended.isoformat() if ended else None,
        "queue": queue,
        "topic": topic,
        "seat_id": seat,
        "outcome": outcome,
        "satisfaction": rating if rating in RATINGS else None,
    }
