"""Menu 9 (查询工单进度): the IVR ``lookup`` node and the prompts of the answer, sans I/O.

The flow is the shipped default flow with the proposed change: after the number is collected,
a ``lookup`` node asks the adapter (which calls ``WorkOrderService.status_for_number``) and
plays the answer, then offers another query, the main menu or a person.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hotline.prompts import load_catalogue
from ivr.flow import DEFAULT_FLOW, FlowError, LookupNode, parse_flow
from ivr.interpreter import (
    ActionFailed,
    CallerHungUp,
    CallerInfo,
    CallStarted,
    DigitPressed,
    EnterQueue,
    FlowRun,
    Log,
    Lookup,
    LookupAnswered,
    Outcome,
    Play,
    PromptFinished,
    State,
    events_from_log,
)
from workorders.lifecycle import State as OrderState


def proposed_flow_text() -> str:
    """The default flow as shipped: menu 9 asks for the order's status (a lookup node)."""
    return DEFAULT_FLOW.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def catalogue() -> dict[str, dict[str, str]]:
    return load_catalogue()


@pytest.fixture(scope="module")
def flow(catalogue):
    return parse_flow(proposed_flow_text(), catalogue, file=str(DEFAULT_FLOW))


def start(flow) -> tuple[FlowRun, list]:
    run = FlowRun(flow)
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai
    out = run.start(CallStarted(CallerInfo(number="13800138000"), now))
    return run, out


def feed(run: FlowRun, *events) -> list:
    out: list = []
    for event in events:
        out.extend(run.handle(event))
    return out


def to_lookup(flow) -> tuple[FlowRun, list]:
    run, out = start(flow)
    keys = "1" + "9" + "202611210001#"  # Mandarin at the language menu, 9, the number
    out += feed(run, *(DigitPressed(k) for k in keys))
    return run, out


def test_menu_9_asks_the_adapter_and_plays_the_status(flow) -> None:
    run, out = to_lookup(flow)
    assert [c for c in out if isinstance(c, Lookup)] == [Lookup("work_order", "202611210001")]
    assert run.state is State.LOOKUP and run.node.id == "work_order_status"
    # Keys while the answer is looked up are ignored, not queued.
    assert any(isinstance(c, Log) and c.type == "ivr.ignored" for c in feed(run, DigitPressed("5")))
    out = feed(run, LookupAnswered(("workorder_status_dispatched",), "dispatched"))
    assert [c for c in out if isinstance(c, Play)] == [
        Play(("workorder_status_dispatched",), interruptible=False)
    ]
    out = feed(run, PromptFinished())
    assert run.node.id == "after_work_order_status"
    out = feed(run, PromptFinished(), DigitPressed("0"), PromptFinished())
    assert [c.queue for c in out if isinstance(c, EnterQueue)] == ["work_order"]


def test_hearing_the_status_and_hanging_up_is_self_service(flow) -> None:
    run, _ = to_lookup(flow)
    feed(run, LookupAnswered(("workorder_not_found",), "not_found"), PromptFinished())
    feed(run, CallerHungUp())
    assert run.outcome is Outcome.SELF_SERVED


def test_when_the_adapter_cannot_answer_the_caller_reaches_a_person(flow) -> None:
    run, _ = to_lookup(flow)
    out = feed(run, ActionFailed("work orders unavailable"))
    failed = [c for c in out if isinstance(c, Log) and c.type == "ivr.action_failed"]
    assert failed[0].data["node"] == "work_order_status"
    out += feed(run, PromptFinished())
    assert [c.queue for c in out if isinstance(c, EnterQueue)] == ["work_order"]


def test_the_path_replays_from_the_log(flow) -> None:
    run, out = to_lookup(flow)
    out += feed(run, LookupAnswered(("workorder_status_closed",), "closed"), PromptFinished())
    out += feed(run, DigitPressed("2"))
    logs = [c for c in out if isinstance(c, Log)]
    replay, _ = start(flow)
    for event in events_from_log(logs):
        replay.handle(event)
    assert replay.path == run.path and replay.node.id == "main_menu"


def test_the_flow_checks_a_lookup_node(catalogue) -> None:
    assert isinstance(
        parse_flow(proposed_flow_text(), catalogue).nodes["work_order_status"], LookupNode
    )
    bad_kind = proposed_flow_text().replace("lookup: work_order", "lookup: weather")
    with pytest.raises(FlowError, match="unknown lookup 'weather'"):
        parse_flow(bad_kind, catalogue)
    bad_var = proposed_flow_text().replace("variable: work_order", "variable: order_no")
    with pytest.raises(FlowError, match="'order_no' is not collected"):
        parse_flow(bad_var, catalogue)


def test_every_state_has_a_status_prompt_in_both_languages(catalogue) -> None:
    for state in OrderState:
        texts = catalogue[f"workorder_status_{state.value}"]
        assert texts["zh"] and texts["en"]
    assert catalogue["workorder_not_found"]["zh"] and catalogue["after_work_order_status"]["en"]
