"""Work-order lifecycle: states, actions, roles, due times and warnings (预警). No I/O.

Theory of operation
-------------------
A work order (工单) is a small immutable record (``WorkOrder``). Everything that changes it goes
through ``apply(order, action, actor, now, **details)``, which looks the change up in two
tables and returns a ``Transition``: the new record plus a ``Log`` description
(``type="workorder.<action>"``, data with the actor, the role and the time) for the call-event
log, so every change is traced (全程留痕). Nothing else in the code base sets ``state``.

Two rules, after h11's ``_state.py``:

1. Everything that affects the state machine lives in this file: ``TRANSITIONS`` (state ×
   action → new state) and ``PERMISSIONS`` (action → roles allowed). An action missing from
   either table is impossible and raises ``TransitionError`` naming the state, the action and
   the role; nothing is ever silently ignored.
2. This file does not know about storage or delivery. The caller persists the returned order,
   appends the returned log, and is responsible for *which* orders a person may see.

State table (``-`` = impossible)::

    state \\ action | submit     dispatch    claim    return     callback     resolve   review
    ---------------+------------------------------------------------------------------------
    draft          | submitted  -           -        -          -            -         -
    submitted      | -          dispatched  -        -          -            resolved  -
    dispatched     | -          dispatched  claimed  submitted  -            -         -
    claimed        | -          dispatched  -        submitted  in_progress  -         -
    in_progress    | -          -           -        -          in_progress  resolved  -
    resolved       | -          -           -        -          -            -         reviewed
    reviewed       | -          -           -        -          -            -         -
    closed         | -          -           -        -          -            -         -
    reopened       | -          dispatched  -        -          -            resolved  -

    state \\ action | close    reopen    edit         note          assign
    ---------------+------------------------------------------------------------
    draft          | -        -         draft        draft         claimed
    submitted      | -        -         submitted    submitted     claimed
    dispatched     | -        -         -            dispatched    -
    claimed        | -        -         -            claimed       claimed
    in_progress    | -        -         -            in_progress   in_progress
    resolved       | closed   reopened  -            resolved      -
    reviewed       | closed   reopened  -            reviewed      -
    closed         | -        reopened  -            closed        -
    reopened       | -        -         reopened     reopened      -

Why these edges: a seat lawyer answers most questions on the call, so ``submitted → resolved``
(直接办结) skips dispatch; what the seat cannot answer is dispatched to an agency, department
or region, whose handler claims it (认领), calls the caller back (回拨, ``callback``, which may
repeat) and resolves it. A handler who got an order meant for someone else returns it (退回);
a supervisor may re-dispatch (改派) before the callback. ``review`` is the supervisor's quality
check; ``close`` may follow review or, for simple orders, resolution. A caller who is not
satisfied gets the order ``reopened`` (from resolved, reviewed or closed); the SLA clock starts
again from the reopening. ``edit`` changes the content (topic, transcript, fields) only before
the order leaves the seat; ``note`` adds a remark in any state.

Roles (``PERMISSIONS``): the seat lawyer (坐席律师) creates, edits, submits, dispatches and
resolves directly; the supervisor (班长) can do what the seat can plus re-dispatch, return,
review, close and reopen; the handler (承办人, at an agency) claims, returns, calls back and
resolves; the administrator may do every action (still logged, under their name); the auditor
is read-only and can do nothing; ``system`` creates orders for voice messages and callback
requests and records warnings. A handler may only act on an order dispatched to their own unit
(``Actor.unit`` must equal ``WorkOrder.dispatched_to.unit_id``).

Callback list (回拨列表): a callback booked in the IVR (source ``callback_request``) or a voice
message (``voice_message``) is a draft made by ``system`` with no seat. It is not dispatched to
an agency: the hotline's own seat lawyers call these callers back. One rule for both ways in:
``assign`` (draft/submitted → claimed) puts the order at one seat (``WorkOrder.seat_id``, the
seat that will be rung) and records who holds it (``claimed_by``). A seat lawyer may only
``assign`` to their own seat (认领, from the pool of open requests whose topic their skills
serve; the pool itself is the service's business) and only while nobody holds it; a supervisor
or administrator assigns to any seat (分配) and may re-assign (改派) a claimed or in-progress
order. Only these two sources can be assigned. A seat lawyer acts as the handler of an order
held at their seat (``Actor.unit`` = their seat id must equal ``WorkOrder.seat_id``): they call
back (``callback``: claimed → in_progress on the first answered call, repeatable) and mark it
done (``resolve`` from in_progress). Orders of other sources (a call's order dispatched to an
agency) stay with the agency's handler even when they carry the seat's id.

Due times: ``SlaPolicy`` gives a resolution time per legal topic. For a callback request or a
voice message the first due time is the callback time (``SlaPolicy.callback_within``, or the
topic's window if shorter): the caller must be called back by then, and the usual near-due /
overdue warnings apply to it; the first ``callback`` (the caller was reached) moves the due time
to the topic's resolution window counted from the same start. The clock starts when the
order is created (the caller has been waiting since the call) and again on ``reopen``; changing
the topic while the order is still with the seat recomputes the due time. ``warnings(orders,
now)`` returns a ``SlaWarning`` for each open order that has become near due (less than
``near_fraction`` of its window left) or overdue, and not already warned at that level:
``record_warning`` stores the level on the order and returns the ``workorder.warning`` log, so a
periodic job can call ``warnings`` as often as it likes without repeating itself.

Times are timezone-aware UTC ``datetime``s; naive times are rejected so that a local clock can
never shift a due time by eight hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any


class State(StrEnum):
    DRAFT = "draft"  # 草稿
    SUBMITTED = "submitted"  # 已提交
    DISPATCHED = "dispatched"  # 已派单
    CLAIMED = "claimed"  # 已认领
    IN_PROGRESS = "in_progress"  # 办理中 (callback made)
    RESOLVED = "resolved"  # 已办结
    REVIEWED = "reviewed"  # 已审核
    CLOSED = "closed"  # 已归档
    REOPENED = "reopened"  # 重新打开


class Action(StrEnum):
    CREATE = "create"
    EDIT = "edit"
    SUBMIT = "submit"
    DISPATCH = "dispatch"
    CLAIM = "claim"
    RETURN = "return"
    CALLBACK = "callback"
    RESOLVE = "resolve"
    REVIEW = "review"
    CLOSE = "close"
    REOPEN = "reopen"
    NOTE = "note"
    WARNING = "warning"
    ASSIGN = "assign"


class Role(StrEnum):
    SEAT_LAWYER = "seat_lawyer"
    SUPERVISOR = "supervisor"
    HANDLER = "handler"
    ADMINISTRATOR = "administrator"
    AUDITOR = "auditor"
    SYSTEM = "system"


class TargetKind(StrEnum):
    AGENCY = "agency"
    DEPARTMENT = "department"
    REGION = "region"


# Chinese labels for what people read (desk, reports).
STATE_LABELS: Mapping[State, str] = {
    State.DRAFT: "草稿",
    State.SUBMITTED: "已提交",
    State.DISPATCHED: "已派单",
    State.CLAIMED: "已认领",
    State.IN_PROGRESS: "办理中",
    State.RESOLVED: "已办结",
    State.REVIEWED: "已审核",
    State.CLOSED: "已归档",
    State.REOPENED: "重新打开",
}

_S, _A, _R = State, Action, Role

TRANSITIONS: Mapping[State, Mapping[Action, State]] = {
    _S.DRAFT: {
        _A.SUBMIT: _S.SUBMITTED,
        _A.EDIT: _S.DRAFT,
        _A.NOTE: _S.DRAFT,
        _A.ASSIGN: _S.CLAIMED,
    },
    _S.SUBMITTED: {
        _A.ASSIGN: _S.CLAIMED,
        _A.DISPATCH: _S.DISPATCHED,
        _A.RESOLVE: _S.RESOLVED,
        _A.EDIT: _S.SUBMITTED,
        _A.NOTE: _S.SUBMITTED,
    },
    _S.DISPATCHED: {
        _A.DISPATCH: _S.DISPATCHED,
        _A.CLAIM: _S.CLAIMED,
        _A.RETURN: _S.SUBMITTED,
        _A.NOTE: _S.DISPATCHED,
    },
    _S.CLAIMED: {
        _A.DISPATCH: _S.DISPATCHED,
        _A.RETURN: _S.SUBMITTED,
        _A.CALLBACK: _S.IN_PROGRESS,
        _A.NOTE: _S.CLAIMED,
        _A.ASSIGN: _S.CLAIMED,
    },
    _S.IN_PROGRESS: {
        _A.CALLBACK: _S.IN_PROGRESS,
        _A.RESOLVE: _S.RESOLVED,
        _A.NOTE: _S.IN_PROGRESS,
        _A.ASSIGN: _S.IN_PROGRESS,
    },
    _S.RESOLVED: {
        _A.REVIEW: _S.REVIEWED,
        _A.CLOSE: _S.CLOSED,
        _A.REOPEN: _S.REOPENED,
        _A.NOTE: _S.RESOLVED,
    },
    _S.REVIEWED: {_A.CLOSE: _S.CLOSED, _A.REOPEN: _S.REOPENED, _A.NOTE: _S.REVIEWED},
    _S.CLOSED: {_A.REOPEN: _S.REOPENED, _A.NOTE: _S.CLOSED},
    _S.REOPENED: {
        _A.DISPATCH: _S.DISPATCHED,
        _A.RESOLVE: _S.RESOLVED,
        _A.EDIT: _S.REOPENED,
        _A.NOTE: _S.REOPENED,
    },
}

_ALL_HUMANS = frozenset({_R.SEAT_LAWYER, _R.SUPERVISOR, _R.HANDLER, _R.ADMINISTRATOR})

PERMISSIONS: Mapping[Action, frozenset[Role]] = {
    _A.CREATE: frozenset({_R.SEAT_LAWYER, _R.SUPERVISOR, _R.ADMINISTRATOR, _R.SYSTEM}),
    _A.EDIT: frozenset({_R.SEAT_LAWYER, _R.SUPERVISOR, _R.ADMINISTRATOR}),
    _A.SUBMIT: frozenset({_R.SEAT_LAWYER, _R.SUPERVISOR, _R.ADMINISTRATOR}),
    _A.DISPATCH: frozenset({_R.SEAT_LAWYER, _R.SUPERVISOR, _R.ADMINISTRATOR}),
    _A.CLAIM: frozenset({_R.HANDLER, _R.ADMINISTRATOR}),
    _A.RETURN: frozenset({_R.HANDLER, _R.SUPERVISOR, _R.ADMINISTRATOR}),
    # A seat lawyer only at their own seat (``_SEAT_BOUND``).
    _A.CALLBACK: frozenset({_R.HANDLER, _R.SEAT_LAWYER, _R.ADMINISTRATOR}),
    _A.RESOLVE: frozenset({_R.SEAT_LAWYER, _R.SUPERVISOR, _R.HANDLER, _R.ADMINISTRATOR}),
    _A.REVIEW: frozenset({_R.SUPERVISOR, _R.ADMINISTRATOR}),
    _A.CLOSE: frozenset({_R.SUPERVISOR, _R.ADMINISTRATOR}),
    _A.REOPEN: frozenset({_R.SEAT_LAWYER, _R.SUPERVISOR, _R.ADMINISTRATOR}),
    _A.NOTE: _ALL_HUMANS,
    _A.WARNING: frozenset({_R.SYSTEM}),
    _A.ASSIGN: frozenset({_R.SEAT_LAWYER, _R.SUPERVISOR, _R.ADMINISTRATOR}),
}

# Re-dispatching an order already at an agency (改派) is a supervisor's decision, not the seat's.
_STATE_RESTRICTED: Mapping[tuple[State, Action], frozenset[Role]] = {
    (_S.DISPATCHED, _A.DISPATCH): frozenset({_R.SUPERVISOR, _R.ADMINISTRATOR}),
    (_S.CLAIMED, _A.DISPATCH): frozenset({_R.SUPERVISOR, _R.ADMINISTRATOR}),
    # A dispatched order is resolved by the handler who holds it, not by the seat.
    # A seat lawyer resolves one only when it is held at their seat (a callback order).
    (_S.IN_PROGRESS, _A.RESOLVE): frozenset(
        {_R.HANDLER, _R.SEAT_LAWYER, _R.SUPERVISOR, _R.ADMINISTRATOR}
    ),
    # Re-assigning an order someone holds (改派) is a supervisor's decision.
    (_S.CLAIMED, _A.ASSIGN): frozenset({_R.SUPERVISOR, _R.ADMINISTRATOR}),
    (_S.IN_PROGRESS, _A.ASSIGN): frozenset({_R.SUPERVISOR, _R.ADMINISTRATOR}),
}

# Actions a handler may only take on an order dispatched to their own unit.
_UNIT_BOUND = frozenset({_A.CLAIM, _A.RETURN, _A.CALLBACK, _A.RESOLVE, _A.NOTE})
# (state, action) a seat lawyer may only take on an order held at their seat.
_SEAT_BOUND = frozenset(
    {(_S.CLAIMED, _A.CALLBACK), (_S.IN_PROGRESS, _A.CALLBACK), (_S.IN_PROGRESS, _A.RESOLVE)}
)
# Orders the hotline's own seats call back (the callback list); only these can be assigned.
CALLBACK_SOURCES = frozenset({"callback_request", "voice_message"})

OPEN_STATES = frozenset(
    {_S.DRAFT, _S.SUBMITTED, _S.DISPATCHED, _S.CLAIMED, _S.IN_PROGRESS, _S.REOPENED}
)

LOG_TYPES: tuple[str, ...] = tuple(f"workorder.{action.value}" for action in Action)


class WorkOrderError(Exception):
    """Base class of work-order errors."""


class TransitionError(WorkOrderError):
    """An impossible or forbidden change; names the state, the action and the role."""

    def __init__(self, state: State, action: Action, role: Role, reason: str) -> None:
        self.state, self.action, self.role, self.reason = state, action, role, reason
        super().__init__(
            f"cannot {action.value!r} a work order in state {state.value!r} "
            f"as {role.value!r}: {reason}"
        )


class MissingDetail(WorkOrderError):
    """An action was asked for without a detail it needs (e.g. dispatch without a target)."""


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    role: Role
    unit: str | None = None  # the handler's agency / department / region; a seat lawyer's seat


@dataclass(frozen=True, slots=True)
class Target:
    """Where an order is dispatched: an agency (e.g. a 法律援助中心), a department or a region."""

    kind: TargetKind
    unit_id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Log:
    """A description of an event for the call-event log; the caller appends it."""

    type: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WorkOrder:
    id: str
    topic: str
    created_at: datetime
    due_at: datetime
    state: State = State.DRAFT
    call_id: str | None = None
    source: str = "call"  # call | voice_message | callback_request
    dispatched_to: Target | None = None
    claimed_by: str | None = None
    callbacks: int = 0
    clock_started_at: datetime | None = None  # start of the current SLA window
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    reopen_count: int = 0
    warned: str | None = None  # highest warning level already raised for this window
    updated_at: datetime | None = None
    seat_id: str | None = None  # the seat whose call made it, or that holds it (assign)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


@dataclass(frozen=True, slots=True)
class Transition:
    order: WorkOrder
    log: Log


# --- SLA ------------------------------------------------------------------------------------
_H = timedelta(hours=1)
DEFAULT_SLA_HOURS: Mapping[str, int] = {
    # Hours to resolve, counted from creation. Wage arrears and legal-aid requests are urgent
    # for the caller (deadlines, no money); notary and appraisal questions are mostly guidance.
    "劳动争议": 48,
    "婚姻家庭": 72,
    "合同纠纷": 72,
    "借贷债务": 72,
    "交通事故": 48,
    "房产物业": 72,
    "消费维权": 72,
    "法律援助": 24,
    "人民调解": 72,
    "公证": 120,
    "司法鉴定": 120,
    "投诉建议": 120,
    "其他": 120,
}


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """Resolution time per topic; ``default`` for topics not in the table."""

    resolve_within: Mapping[str, timedelta] = field(
        default_factory=lambda: {t: h * _H for t, h in DEFAULT_SLA_HOURS.items()}
    )
    default: timedelta = 120 * _H
    near_fraction: float = 0.2  # near due when less than this share of the window is left
    # A booked callback / voice message is called back within this (回拨时限).
    callback_within: timedelta = 24 * _H

    def __post_init__(self) -> None:
        if not 0 < self.near_fraction < 1:
            raise ValueError("near_fraction must be between 0 and 1")
        for topic, window in self.resolve_within.items():
            if window <= timedelta(0):
                raise ValueError(f"SLA for {topic!r} must be positive")
        if self.callback_within <= timedelta(0):
            raise ValueError("callback_within must be positive")

    def window(self, topic: str) -> timedelta:
        return self.resolve_within.get(topic, self.default)

    def due_at(self, topic: str, start: datetime) -> datetime:
        return _utc(start, "start") + self.window(topic)

    def due_for(
        self, topic: str, start: datetime, source: str = "call", called_back: bool = False
    ) -> datetime:
        """The due time of an order: the callback time for a callback request or a voice
        message not yet called back, else the topic's resolution time."""
        if source in CALLBACK_SOURCES and not called_back:
            return _utc(start, "start") + min(self.callback_within, self.window(topic))
        return self.due_at(topic, start)


DEFAULT_SLA = SlaPolicy()


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC), got naive {value!r}")
    return value.astimezone(UTC)


def _log(order: WorkOrder, action: Action, actor: Actor, now: datetime, **data: Any) -> Log:
    return Log(
        type=f"workorder.{action.value}",
        data={
            "order_id": order.id,
            "call_id": order.call_id,
            "action": action.value,
            "actor": actor.id,
            "role": actor.role.value,
            "at": now.isoformat(),
            **data,
        },
    )


def bound_refusal(order: WorkOrder, action: Action, actor: Actor) -> str | None:
    """Why ``actor`` may not take ``action`` on this particular order (a handler outside the
    order's unit, a seat lawyer on an order not held at their seat), or None."""
    if actor.role is Role.HANDLER and action in _UNIT_BOUND:
        if order.dispatched_to is None or order.dispatched_to.unit_id != actor.unit:
            return "order is not dispatched to the handler's unit"
    if actor.role is Role.SEAT_LAWYER and (order.state, action) in _SEAT_BOUND:
        if order.source not in CALLBACK_SOURCES or order.seat_id != actor.unit:
            return "only a callback request or voice message held at the seat"
    return None


def allowed_actions(state: State, role: Role) -> frozenset[Action]:
    """What ``role`` may do to an order in ``state`` (for the desk's buttons)."""
    return frozenset(action for action in TRANSITIONS[state] if role in _roles_for(state, action))


def _roles_for(state: State, action: Action) -> frozenset[Role]:
    return _STATE_RESTRICTED.get((state, action), PERMISSIONS.get(action, frozenset()))


def create(
    order_id: str,
    topic: str,
    actor: Actor,
    now: datetime,
    *,
    call_id: str | None = None,
    source: str = "call",
    sla: SlaPolicy = DEFAULT_SLA,
) -> Transition:
    """A new draft order; its due time starts now."""
    now = _utc(now, "now")
    if actor.role not in PERMISSIONS[Action.CREATE]:
        raise TransitionError(State.DRAFT, Action.CREATE, actor.role, "role may not create")
    if source not in ("call", "voice_message", "callback_request"):
        raise ValueError(f"unknown source {source!r}")
    order = WorkOrder(
        id=order_id,
        topic=topic,
        created_at=now,
        due_at=sla.due_for(topic, now, source),
        call_id=call_id,
        source=source,
        clock_started_at=now,
        updated_at=now,
    )
    log = _log(
        order,
        Action.CREATE,
        actor,
        now,
        to=order.state.value,
        topic=topic,
        source=source,
        due_at=order.due_at.isoformat(),
    )
    return Transition(order, log)


def apply(
    order: WorkOrder,
    action: Action | str,
    actor: Actor,
    now: datetime,
    *,
    sla: SlaPolicy = DEFAULT_SLA,
    **details: Any,
) -> Transition:
    """Apply one action; return the new order and its log, or raise ``TransitionError``.

    Details by action: ``dispatch`` needs ``target`` (a ``Target``); ``edit`` may give
    ``topic`` (recomputes the due time); ``return``, ``reopen`` and ``note`` take ``reason`` /
    ``text``; any other keyword is copied into the log data as given (keep it free of clear
    phone numbers).
    """
    action = Action(action)
    now = _utc(now, "now")
    if action in (Action.CREATE, Action.WARNING):
        raise TransitionError(
            order.state, action, actor.role, "use create() / record_warning() for this"
        )
    next_state = TRANSITIONS[order.state].get(action)
    if next_state is None:
        possible = ", ".join(sorted(a.value for a in TRANSITIONS[order.state])) or "nothing"
        raise TransitionError(
            order.state, action, actor.role, f"not possible in this state (possible: {possible})"
        )
    if actor.role not in _roles_for(order.state, action):
        raise TransitionError(order.state, action, actor.role, "role not allowed")
    reason = bound_refusal(order, action, actor)
    if reason is not None:
        raise TransitionError(order.state, action, actor.role, reason)

    changes: dict[str, Any] = {"state": next_state, "updated_at": now}
    data: dict[str, Any] = {"from": order.state.value, "to": next_state.value}
    if action is Action.DISPATCH:
        target = details.pop("target", None)
        if not isinstance(target, Target):
            raise MissingDetail("dispatch needs target=Target(kind, unit_id, name)")
        changes.update(dispatched_to=target, claimed_by=None)
        data["target"] = {"kind": target.kind.value, "unit_id": target.unit_id, "name": target.name}
    elif action is Action.CLAIM:
        changes["claimed_by"] = actor.id
    elif action is Action.RETURN:
        changes.update(dispatched_to=None, claimed_by=None)
    elif action is Action.ASSIGN:
        if order.source not in CALLBACK_SOURCES:
            raise TransitionError(
                order.state, action, actor.role,
                "only callback requests and voice messages are assigned to a seat",
            )  # fmt: skip
        seat = details.pop("seat_id", None)
        if not isinstance(seat, str) or not seat:
            raise MissingDetail("assign needs seat_id (the seat that will call back)")
        claim = actor.role is Role.SEAT_LAWYER
        # Who holds it: the lawyer who claimed it, else the seat (whoever is signed in there).
        holder = details.pop("assignee", None) or (actor.id if claim else f"seat:{seat}")
        if actor.role is Role.SEAT_LAWYER and (seat != actor.unit or holder != actor.id):
            raise TransitionError(
                order.state, action, actor.role, "a seat lawyer may only claim for their own seat"
            )
        changes.update(seat_id=seat, claimed_by=str(holder))
        data.update(
            seat_id=seat,
            previous_seat_id=order.seat_id,
            assignee=str(holder),
            kind="claim" if claim else "assign",
        )
    elif action is Action.CALLBACK:
        changes["callbacks"] = order.callbacks + 1
        data["callbacks"] = order.callbacks + 1
        if order.source in CALLBACK_SOURCES and order.state is State.CLAIMED:
            # Reached the caller: the callback step is done, the topic's window applies now.
            start = order.clock_started_at or order.created_at
            due = sla.due_for(order.topic, start, order.source, called_back=True)
            if due != order.due_at:
                changes.update(due_at=due, warned=None)
                data["due_at"] = due.isoformat()
    elif action is Action.RESOLVE:
        changes["resolved_at"] = now
    elif action is Action.CLOSE:
        changes["closed_at"] = now
    elif action is Action.REOPEN:
        # A new SLA window from now: the caller is waiting again.
        due = sla.due_for(order.topic, now, order.source, called_back=order.callbacks > 0)
        changes.update(
            reopen_count=order.reopen_count + 1,
            clock_started_at=now,
            due_at=due,
            warned=None,
            resolved_at=None,
            closed_at=None,
            claimed_by=None,
        )
        data["due_at"] = due.isoformat()
    elif action is Action.EDIT and "topic" in details:
        topic = str(details.pop("topic"))
        start = order.clock_started_at or order.created_at
        due = sla.due_for(topic, start, order.source, called_back=order.callbacks > 0)
        changes.update(topic=topic, due_at=due)
        if due != order.due_at:
            changes["warned"] = None  # a longer window may no longer be near due
        data.update(topic=topic, previous_topic=order.topic, due_at=due.isoformat())
    data.update(details)
    new_order = replace(order, **changes)
    return Transition(new_order, _log(new_order, action, actor, now, **data))


# --- warnings (预警) -------------------------------------------------------------------------
NEAR_DUE = "near_due"  # 临期预警
OVERDUE = "overdue"  # 超期预警
_LEVEL_RANK = {None: 0, NEAR_DUE: 1, OVERDUE: 2}
WARNING_LABELS: Mapping[str, str] = {NEAR_DUE: "即将超期", OVERDUE: "已超期"}


@dataclass(frozen=True, slots=True)
class SlaWarning:
    order_id: str
    level: str  # NEAR_DUE or OVERDUE
    state: State
    topic: str
    due_at: datetime
    remaining: timedelta  # negative when overdue

    @property
    def label(self) -> str:
        return WARNING_LABELS[self.level]


def warning_level(order: WorkOrder, now: datetime, sla: SlaPolicy = DEFAULT_SLA) -> str | None:
    """``overdue``, ``near_due`` or None for an open order; None for a finished one."""
    if not order.is_open:
        return None
    now = _utc(now, "now")
    remaining = order.due_at - now
    if remaining <= timedelta(0):
        return OVERDUE
    start = order.clock_started_at or order.created_at
    window = order.due_at - start
    if remaining <= window * sla.near_fraction:
        return NEAR_DUE
    return None


def warnings(
    orders: Iterable[WorkOrder], now: datetime, sla: SlaPolicy = DEFAULT_SLA
) -> list[SlaWarning]:
    """New warnings: open orders whose level rose above what was already raised, most urgent
    (earliest due) first."""
    now = _utc(now, "now")
    found = []
    for order in orders:
        level = warning_level(order, now, sla)
        if level is None or _LEVEL_RANK[level] <= _LEVEL_RANK[order.warned]:
            continue
        found.append(
            SlaWarning(order.id, level, order.state, order.topic, order.due_at, order.due_at - now)
        )
    found.sort(key=lambda w: (w.due_at, w.order_id))
    return found


def record_warning(order: WorkOrder, warning: SlaWarning, now: datetime) -> Transition:
    """Remember that ``warning`` was raised and describe it as a ``workorder.warning`` event."""
    now = _utc(now, "now")
    if warning.order_id != order.id:
        raise ValueError(f"warning for {warning.order_id!r} applied to order {order.id!r}")
    new_order = replace(order, warned=warning.level)
    system = Actor("system", Role.SYSTEM)
    log = _log(
        new_order,
        Action.WARNING,
        system,
        now,
        level=warning.level,
        label=warning.label,
        state=order.state.value,
        topic=order.topic,
        due_at=warning.due_at.isoformat(),
        remaining_s=int(warning.remaining.total_seconds()),
        dispatched_to=order.dispatched_to.unit_id if order.dispatched_to else None,
    )
    return Transition(new_order, log)
