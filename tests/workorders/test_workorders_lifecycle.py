"""Work-order state machine: the tables, roles, logs, SLA due times and warnings (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workorders.lifecycle import (
    DEFAULT_SLA,
    LOG_TYPES,
    NEAR_DUE,
    OVERDUE,
    PERMISSIONS,
    TRANSITIONS,
    Action,
    Actor,
    MissingDetail,
    Role,
    SlaPolicy,
    State,
    Target,
    TargetKind,
    TransitionError,
    WorkOrder,
    allowed_actions,
    apply,
    create,
    record_warning,
    warning_level,
    warnings,
)

T0 = datetime(2026, 3, 5, 1, 0, tzinfo=UTC)
SEAT = Actor("seat-7", Role.SEAT_LAWYER)
SUPERVISOR = Actor("sup-1", Role.SUPERVISOR)
HANDLER = Actor("h-3", Role.HANDLER, unit="aid-center-1")
OTHER_HANDLER = Actor("h-9", Role.HANDLER, unit="aid-center-2")
ADMIN = Actor("admin", Role.ADMINISTRATOR)
AUDITOR = Actor("aud", Role.AUDITOR)
SYSTEM = Actor("system", Role.SYSTEM)
AID_CENTER = Target(TargetKind.AGENCY, "aid-center-1", "市法律援助中心")


def _new(topic: str = "劳动争议", at: datetime = T0) -> WorkOrder:
    return create("wo-1", topic, SEAT, at, call_id="call-42").order


def _at_state(state: State) -> WorkOrder:
    """An order driven to ``state`` through real transitions."""
    paths = {
        State.DRAFT: [],
        State.SUBMITTED: [(Action.SUBMIT, SEAT)],
        State.DISPATCHED: [(Action.SUBMIT, SEAT), (Action.DISPATCH, SEAT)],
        State.CLAIMED: [(Action.SUBMIT, SEAT), (Action.DISPATCH, SEAT), (Action.CLAIM, HANDLER)],
        State.IN_PROGRESS: [
            (Action.SUBMIT, SEAT),
            (Action.DISPATCH, SEAT),
            (Action.CLAIM, HANDLER),
            (Action.CALLBACK, HANDLER),
        ],
        State.RESOLVED: [(Action.SUBMIT, SEAT), (Action.RESOLVE, SEAT)],
        State.REVIEWED: [
            (Action.SUBMIT, SEAT),
            (Action.RESOLVE, SEAT),
            (Action.REVIEW, SUPERVISOR),
        ],
        State.CLOSED: [(Action.SUBMIT, SEAT), (Action.RESOLVE, SEAT), (Action.CLOSE, SUPERVISOR)],
        State.REOPENED: [
            (Action.SUBMIT, SEAT),
            (Action.RESOLVE, SEAT),
            (Action.CLOSE, SUPERVISOR),
            (Action.REOPEN, SEAT),
        ],
    }
    order = _new()
    for step, (action, actor) in enumerate(paths[state], 1):
        extra = {"target": AID_CENTER} if action is Action.DISPATCH else {}
        order = apply(order, action, actor, T0 + timedelta(minutes=step), **extra).order
    assert order.state is state
    return order


def test_create_logs_the_creation_with_actor_time_and_due_time() -> None:
    result = create("wo-1", "法律援助", SYSTEM, T0, call_id="c1", source="voice_message")
    assert result.order.state is State.DRAFT
    assert result.order.due_at == T0 + timedelta(hours=24)
    assert result.log.type == "workorder.create"
    assert result.log.data["actor"] == "system"
    assert result.log.data["role"] == "system"
    assert result.log.data["at"] == T0.isoformat()
    assert result.log.data["source"] == "voice_message"


def test_full_lifecycle_through_an_agency_yields_one_log_per_change() -> None:
    order, logs = _new(), []
    steps = [
        (Action.SUBMIT, SEAT, {}),
        (Action.DISPATCH, SEAT, {"target": AID_CENTER}),
        (Action.CLAIM, HANDLER, {}),
        (Action.CALLBACK, HANDLER, {"outcome": "reached"}),
        (Action.CALLBACK, HANDLER, {}),
        (Action.RESOLVE, HANDLER, {"text": "已告知申请流程"}),
        (Action.REVIEW, SUPERVISOR, {}),
        (Action.CLOSE, SUPERVISOR, {}),
    ]
    for minute, (action, actor, details) in enumerate(steps, 1):
        now = T0 + timedelta(minutes=minute)
        result = apply(order, action, actor, now, **details)
        order = result.order
        logs.append(result.log)
        assert result.log.type == f"workorder.{action.value}"
        assert result.log.data["actor"] == actor.id
        assert result.log.data["at"] == now.isoformat()
        assert result.log.data["to"] == order.state.value
    assert order.state is State.CLOSED
    assert order.claimed_by == "h-3"
    assert order.callbacks == 2
    assert order.dispatched_to == AID_CENTER
    assert logs[1].data["target"] == {
        "kind": "agency",
        "unit_id": "aid-center-1",
        "name": "市法律援助中心",
    }
    assert logs[3].data["outcome"] == "reached"
    assert all(log.type in LOG_TYPES for log in logs)


def _expected_ok(state: State, action: Action, actor: Actor) -> bool:
    if action not in TRANSITIONS[state]:
        return False
    if action in allowed_actions(state, actor.role):
        if action is Action.ASSIGN:
            return False  # these orders are from calls: only callback orders are assigned
        if actor.role is Role.SEAT_LAWYER and (state, action) in {
            (State.CLAIMED, Action.CALLBACK),
            (State.IN_PROGRESS, Action.CALLBACK),
            (State.IN_PROGRESS, Action.RESOLVE),
        }:
            return False  # a seat acts as the handler only on callback orders at its seat
        if actor.role is Role.HANDLER and action in {
            Action.CLAIM,
            Action.RETURN,
            Action.CALLBACK,
            Action.RESOLVE,
            Action.NOTE,
        }:
            return state in {State.DISPATCHED, State.CLAIMED, State.IN_PROGRESS}
        return True
    return False


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("actor", [SEAT, SUPERVISOR, HANDLER, ADMIN, AUDITOR, SYSTEM])
def test_every_state_action_role_either_follows_the_table_or_raises_naming_all_three(
    state: State, actor: Actor
) -> None:
    order = _at_state(state)
    for action in Action:
        if action in (Action.CREATE, Action.WARNING):
            continue
        details = {"target": AID_CENTER} if action is Action.DISPATCH else {}
        if _expected_ok(state, action, actor):
            result = apply(order, action, actor, T0 + timedelta(hours=1), **details)
            assert result.order.state is TRANSITIONS[state][action]
        else:
            with pytest.raises(TransitionError) as info:
                apply(order, action, actor, T0 + timedelta(hours=1), **details)
            message = str(info.value)
            assert state.value in message and action.value in message
            assert actor.role.value in message


def test_auditor_is_read_only_everywhere() -> None:
    assert all(Role.AUDITOR not in roles for roles in PERMISSIONS.values())
    for state in State:
        assert allowed_actions(state, Role.AUDITOR) == frozenset()


def test_impossible_transition_error_lists_what_is_possible() -> None:
    with pytest.raises(TransitionError, match="'claim' a work order in state 'draft'") as info:
        apply(_new(), Action.CLAIM, HANDLER, T0)
    assert "submit" in str(info.value)
    assert info.value.state is State.DRAFT and info.value.role is Role.HANDLER


def test_handler_of_another_unit_cannot_claim() -> None:
    order = _at_state(State.DISPATCHED)
    with pytest.raises(TransitionError, match="not dispatched to the handler's unit"):
        apply(order, Action.CLAIM, OTHER_HANDLER, T0)


def test_seat_cannot_redispatch_but_supervisor_can() -> None:
    order = _at_state(State.CLAIMED)
    with pytest.raises(TransitionError, match="role not allowed"):
        apply(order, Action.DISPATCH, SEAT, T0, target=AID_CENTER)
    other = Target(TargetKind.REGION, "region-2", "二区")
    moved = apply(order, Action.DISPATCH, SUPERVISOR, T0, target=other).order
    assert moved.state is State.DISPATCHED
    assert moved.dispatched_to == other and moved.claimed_by is None


def test_dispatch_needs_a_target() -> None:
    with pytest.raises(MissingDetail):
        apply(_at_state(State.SUBMITTED), Action.DISPATCH, SEAT, T0)


def test_handler_returns_a_wrong_order_to_the_seat() -> None:
    order = apply(_at_state(State.CLAIMED), Action.RETURN, HANDLER, T0, reason="非本单位职责")
    assert order.order.state is State.SUBMITTED
    assert order.order.dispatched_to is None
    assert order.log.data["reason"] == "非本单位职责"


def test_edit_topic_recomputes_due_time_from_creation() -> None:
    order = _new("公证")
    assert order.due_at == T0 + timedelta(hours=120)
    edited = apply(order, Action.EDIT, SEAT, T0 + timedelta(hours=2), topic="法律援助")
    assert edited.order.topic == "法律援助"
    assert edited.order.due_at == T0 + timedelta(hours=24)
    assert edited.log.data["previous_topic"] == "公证"


def test_reopen_starts_a_new_sla_window_and_clears_the_warning() -> None:
    order = _at_state(State.CLOSED)
    order = WorkOrder(**{**_fields(order), "warned": OVERDUE})
    later = T0 + timedelta(days=10)
    reopened = apply(order, Action.REOPEN, SEAT, later, reason="来电人不满意").order
    assert reopened.state is State.REOPENED
    assert reopened.due_at == later + DEFAULT_SLA.window("劳动争议")
    assert reopened.warned is None and reopened.reopen_count == 1
    assert reopened.closed_at is None and reopened.resolved_at is None


def _fields(order: WorkOrder) -> dict:
    return {name: getattr(order, name) for name in WorkOrder.__slots__}


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        create("wo-2", "其他", SEAT, datetime(2026, 3, 5, 9, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        apply(_new(), Action.SUBMIT, SEAT, datetime(2026, 3, 5, 9, 0))


def test_create_is_refused_to_auditor_and_handler() -> None:
    for actor in (AUDITOR, HANDLER):
        with pytest.raises(TransitionError, match="create"):
            create("wo-3", "其他", actor, T0)


# --- SLA and warnings ---------------------------------------------------------------------
def test_warning_levels_follow_the_window() -> None:
    order = _new("劳动争议")  # 48 h, near due in the last 20% = 9.6 h
    assert warning_level(order, T0 + timedelta(hours=38)) is None
    assert warning_level(order, T0 + timedelta(hours=39)) == NEAR_DUE
    assert warning_level(order, T0 + timedelta(hours=48)) == OVERDUE
    done = apply(_at_state(State.SUBMITTED), Action.RESOLVE, SEAT, T0).order
    assert warning_level(done, T0 + timedelta(days=30)) is None


def test_warnings_are_raised_once_per_level_and_sorted_by_due_time() -> None:
    labour = _new("劳动争议")  # due T0 + 48 h
    aid = create("wo-aid", "法律援助", SEAT, T0).order  # due T0 + 24 h
    notary = create("wo-not", "公证", SEAT, T0).order  # due T0 + 120 h
    now = T0 + timedelta(hours=40)
    found = warnings([labour, aid, notary], now)
    assert [(w.order_id, w.level) for w in found] == [("wo-aid", OVERDUE), ("wo-1", NEAR_DUE)]
    assert found[0].remaining == timedelta(hours=-16)
    assert found[0].label == "已超期"

    recorded = record_warning(labour, found[1], now)
    assert recorded.log.type == "workorder.warning"
    assert recorded.log.data["level"] == NEAR_DUE and recorded.log.data["actor"] == "system"
    labour = recorded.order
    assert warnings([labour], now + timedelta(hours=1)) == []  # already warned at this level
    escalated = warnings([labour], T0 + timedelta(hours=49))
    assert [w.level for w in escalated] == [OVERDUE]


def test_custom_sla_policy() -> None:
    policy = SlaPolicy(resolve_within={"劳动争议": timedelta(hours=10)}, near_fraction=0.5)
    order = create("wo-x", "劳动争议", SEAT, T0, sla=policy).order
    assert order.due_at == T0 + timedelta(hours=10)
    assert warning_level(order, T0 + timedelta(hours=5), policy) == NEAR_DUE
    assert policy.window("未知") == policy.default
    with pytest.raises(ValueError):
        SlaPolicy(near_fraction=1.5)


# --- property: random walks only ever follow the table -------------------------------------
_ACTORS = [SEAT, SUPERVISOR, HANDLER, OTHER_HANDLER, ADMIN, AUDITOR]
_ACTIONS = [a for a in Action if a not in (Action.CREATE, Action.WARNING)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_ACTIONS), st.sampled_from(_ACTORS)), max_size=30))
def test_random_walks_follow_the_table_and_log_every_change(steps: list) -> None:
    order = _new()
    now = T0
    for action, actor in steps:
        now += timedelta(minutes=7)
        details = {"target": AID_CENTER} if action is Action.DISPATCH else {}
        before = order.state
        try:
            result = apply(order, action, actor, now, **details)
        except TransitionError as exc:
            assert exc.state is before
            continue
        assert result.order.state is TRANSITIONS[before][action]
        assert result.log.data["from"] == before.value
        assert result.log.data["to"] == result.order.state.value
        assert result.log.data["actor"] == actor.id
        assert actor.role is not Role.AUDITOR
        order = result.order
        assert order.due_at > order.clock_started_at


# --- the callback list: assign / claim, the seat as handler, the callback due time ------------
SEAT_AT_S1 = Actor("law1", Role.SEAT_LAWYER, unit="s1")
SEAT_AT_S2 = Actor("law2", Role.SEAT_LAWYER, unit="s2")


def _booked(topic: str = "劳动争议") -> WorkOrder:
    return create("wo-cb", topic, SYSTEM, T0, call_id="b1", source="callback_request").order


def test_a_booked_callback_is_due_by_the_callback_time_then_by_the_topic() -> None:
    order = _booked()
    assert order.due_at == T0 + DEFAULT_SLA.callback_within  # 24 h < 劳动争议's 48 h
    short = SlaPolicy(callback_within=timedelta(hours=2))
    assert create("x", "劳动争议", SYSTEM, T0, source="voice_message", sla=short).order.due_at == (
        T0 + timedelta(hours=2)
    )
    assert create("x", "劳动争议", SEAT, T0, sla=short).order.due_at == T0 + timedelta(hours=48)
    order = apply(order, Action.ASSIGN, SUPERVISOR, T0, seat_id="s1").order
    reached = apply(order, Action.CALLBACK, SEAT_AT_S1, T0 + timedelta(hours=1))
    assert reached.order.due_at == T0 + timedelta(hours=48)
    assert reached.log.data["due_at"] == (T0 + timedelta(hours=48)).isoformat()
    with pytest.raises(ValueError, match="callback_within"):
        SlaPolicy(callback_within=timedelta(0))


def test_assign_and_claim_rules() -> None:
    order = _booked()
    assigned = apply(order, Action.ASSIGN, SUPERVISOR, T0, seat_id="s1")
    assert assigned.order.state is State.CLAIMED and assigned.order.seat_id == "s1"
    assert assigned.log.type == "workorder.assign"
    assert assigned.log.data["kind"] == "assign" and assigned.log.data["seat_id"] == "s1"
    claimed = apply(order, Action.ASSIGN, SEAT_AT_S1, T0, seat_id="s1")
    assert claimed.order.claimed_by == "law1" and claimed.log.data["kind"] == "claim"
    with pytest.raises(TransitionError, match="only claim for their own seat"):
        apply(order, Action.ASSIGN, SEAT_AT_S1, T0, seat_id="s2")
    with pytest.raises(MissingDetail):
        apply(order, Action.ASSIGN, SUPERVISOR, T0)
    # Held: only a supervisor re-assigns (改派).
    with pytest.raises(TransitionError, match="role not allowed"):
        apply(claimed.order, Action.ASSIGN, SEAT_AT_S2, T0, seat_id="s2")
    moved = apply(claimed.order, Action.ASSIGN, SUPERVISOR, T0, seat_id="s2")
    assert moved.order.seat_id == "s2" and moved.log.data["previous_seat_id"] == "s1"
    # Orders of calls are never assigned.
    with pytest.raises(TransitionError, match="only callback requests"):
        apply(_new(), Action.ASSIGN, SUPERVISOR, T0, seat_id="s1")


def test_only_the_seat_holding_a_callback_calls_back_and_resolves() -> None:
    order = apply(_booked(), Action.ASSIGN, SUPERVISOR, T0, seat_id="s1").order
    with pytest.raises(TransitionError, match="held at the seat"):
        apply(order, Action.CALLBACK, SEAT_AT_S2, T0)
    order = apply(order, Action.CALLBACK, SEAT_AT_S1, T0).order
    assert order.state is State.IN_PROGRESS and order.callbacks == 1
    with pytest.raises(TransitionError, match="held at the seat"):
        apply(order, Action.RESOLVE, SEAT_AT_S2, T0)
    assert apply(order, Action.RESOLVE, SEAT_AT_S1, T0).order.state is State.RESOLVED
    # An agency's order from the seat's own call stays the handler's.
    agency = _at_state(State.CLAIMED)
    seat7 = Actor("seat-7", Role.SEAT_LAWYER, unit=agency.seat_id)
    with pytest.raises(TransitionError):
        apply(agency, Action.CALLBACK, seat7, T0)
