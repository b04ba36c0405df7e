"""A tiny script language to drive a FlowRun in tests, and fixed local times.

Script steps: a key ("0"-"9", "*", "#"), "P" (the prompt playing finished), "T" (the active
timer expired), "R" (the recording finished, 30 s), "F" (the outstanding action failed: for a
lookup, the adapter could not answer), "L" (the lookup answered: the order is being handled),
"N" (the lookup answered: no such order), "H" (caller hung up). Each step checks that the event
is one a real call could send now.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from ivr.flow import Flow
from ivr.interpreter import (
    ActionFailed,
    CallerHungUp,
    CallerInfo,
    CallStarted,
    Command,
    DigitPressed,
    FlowRun,
    Log,
    LookupAnswered,
    PromptFinished,
    RecordingFinished,
    State,
    TimerExpired,
)

# What the adapter (ivr.app, from workorders) answers to a Lookup: an order's status prompt and
# its state word, or "not found".
STATUS_ANSWER = LookupAnswered(("workorder_status_in_progress",), "in_progress")
NOT_FOUND_ANSWER = LookupAnswered(("workorder_not_found",), "not_found")

SHANGHAI = ZoneInfo("Asia/Shanghai")
TUESDAY_10AM = datetime(2026, 3, 10, 10, 0, tzinfo=SHANGHAI)  # ordinary working day
TUESDAY_8PM = datetime(2026, 3, 10, 20, 0, tzinfo=SHANGHAI)
NATIONAL_DAY = datetime(2026, 10, 1, 10, 0, tzinfo=SHANGHAI)  # Thursday, public holiday
SPRING_FESTIVAL_MONDAY = datetime(2026, 2, 16, 10, 0, tzinfo=SHANGHAI)
MAKEUP_SATURDAY = datetime(2026, 2, 14, 10, 0, tzinfo=SHANGHAI)  # 调休: a working Saturday
ORDINARY_SATURDAY = datetime(2026, 3, 7, 10, 0, tzinfo=SHANGHAI)


def new_run(flow: Flow, now: datetime = TUESDAY_10AM, **caller: object) -> tuple[FlowRun, list]:
    run = FlowRun(flow, clock_now=lambda: now)
    info = CallerInfo(number=str(caller.pop("number", "13800138000")), **caller)  # type: ignore[arg-type]
    return run, run.start(CallStarted(info, now))


def step(run: FlowRun, code: str) -> list[Command]:
    if code == "P":
        assert run.playing, f"no prompt playing at {run.node and run.node.id} ({run.state})"
        return run.handle(PromptFinished())
    if code == "T":
        assert run.active_timer, f"no timer running at {run.node and run.node.id}"
        return run.handle(TimerExpired(run.active_timer))
    if code == "R":
        assert run.state is State.RECORDING
        return run.handle(RecordingFinished(30.0))
    if code == "F":
        assert run.pending_action
        return run.handle(ActionFailed("test failure"))
    if code in ("L", "N"):
        assert run.state is State.LOOKUP, f"no lookup outstanding at {run.node and run.node.id}"
        return run.handle(STATUS_ANSWER if code == "L" else NOT_FOUND_ANSWER)
    if code == "H":
        return run.handle(CallerHungUp())
    return run.handle(DigitPressed(code))


def drive(run: FlowRun, script: str) -> list[Command]:
    """Run the script's steps; return every command produced."""
    out: list[Command] = []
    for code in script.replace(" ", ""):
        out.extend(step(run, code))
    return out


def lookup_answers(catalogue: dict[str, dict[str, str]]) -> list[LookupAnswered]:
    """Every answer a real adapter can give: one per order state in the prompt catalogue
    (``workorder_status_<state>``), and ``workorder_not_found``."""
    prefix = "workorder_status_"
    answers = [
        LookupAnswered((prompt,), prompt.removeprefix(prefix))
        for prompt in sorted(catalogue)
        if prompt.startswith(prefix)
    ]
    assert answers, "the catalogue has no workorder_status_* prompts"
    return [*answers, NOT_FOUND_ANSWER]


def logs(commands: list[Command], type_: str | None = None) -> list[Log]:
    return [c for c in commands if isinstance(c, Log) and (type_ is None or c.type == type_)]


def of_type(commands: list[Command], cls: type) -> list:
    return [c for c in commands if isinstance(c, cls)]
