"""Property tests: any sequence of events a real call can produce, on the real default flow.

The generator only sends what the channel could send now: any key 0-9*# while the IVR has the
call, PromptFinished while a prompt plays, TimerExpired for a timer the run started (the active
one, or a stale one after a cancel race), RecordingFinished while recording, ActionFailed while
an action is outstanding, and a hang-up at any time. A ``Lookup`` (menu 9, an order's progress)
is answered as the adapter would: any order state's status prompt, "not found", or a failure;
a silent caller's lookup is answered too (the adapter does not wait for the caller).
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ivr_driver import MAKEUP_SATURDAY, NATIONAL_DAY, TUESDAY_8PM, TUESDAY_10AM, lookup_answers

from hotline.prompts import load_catalogue
from ivr.flow import CollectNode, LanguageNode, LookupNode, MenuNode
from ivr.interpreter import (
    MASK,
    ActionFailed,
    CallerHungUp,
    CallerInfo,
    CallStarted,
    DigitPressed,
    EnterQueue,
    FlowRun,
    Log,
    Outcome,
    PromptFinished,
    RecordingFinished,
    StartTimer,
    State,
    TimerExpired,
    masked_nodes,
)

KEYS = list("0123456789*#")
SILENCE_LIMIT = 60  # a silent caller must reach an outcome within this many events
LOOKUP_ANSWERS = lookup_answers(load_catalogue())
LOOKUP_FAILED = ActionFailed("work-order look-up failed")
# The person 0 (or silence) reaches from a menu: the operator, except after an order's status,
# where it is the work-order desk (still people: the work_order queue).
PERSON_QUEUE = {"after_work_order_status": "work_order"}
# Random walks seldom key a whole order number, so some calls start with one: 1 during the
# welcome → 普通话, 9 at the main menu → 查询工单进度, the number, #.
starts = st.sampled_from(["", "", "19" + "20260310001#"])

callers = st.builds(
    CallerInfo,
    number=st.sampled_from(["13800138000", "010-12345678", "+8613912345678"]),
    is_repeat=st.booleans(),
    special_group=st.booleans(),
    blocked=st.sampled_from([False] * 7 + [True]),
    origin=st.sampled_from(["direct"] * 6 + ["110", "12345"]),
)
open_callers = st.builds(
    CallerInfo,
    number=st.just("13800138000"),
    is_repeat=st.booleans(),
    special_group=st.booleans(),
)
moments = st.sampled_from([TUESDAY_10AM, TUESDAY_8PM, NATIONAL_DAY, MAKEUP_SATURDAY])
PROPS = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class Call:
    """A run plus everything it emitted and the timers it ever started; ``data`` draws the
    adapter's answers to lookups."""

    def __init__(self, flow, caller, now, data):
        self.data = data
        self.run = FlowRun(flow, clock_now=lambda: now)
        self.out = list(self.run.start(CallStarted(caller, now)))
        self.steps = 0

    def send(self, event):
        self.steps += 1
        self.out.extend(self.run.handle(event))

    def press(self, keys):
        """Keys, while the IVR has the call (a blocked or priority caller may be gone at once)."""
        for key in keys:
            if self.run.finished:
                return
            self.send(DigitPressed(key))

    def timers(self):
        return [c.timer_id for c in self.out if isinstance(c, StartTimer)]

    def possible(self, hang_up=True):
        run = self.run
        events = [CallerHungUp()] if hang_up else []
        if run.pending_action:
            events.append(ActionFailed("no seat"))
        stale = [TimerExpired(t) for t in self.timers() if t != run.active_timer]
        if run.finished:
            return events + stale[-1:]
        events += [DigitPressed(k) for k in KEYS] + stale[-1:]
        node = run.node
        if isinstance(node, (MenuNode, LanguageNode)):
            # Lean towards the menu's own keys so walks go deep into the flow, not only astray.
            options = [*node.choices, *getattr(node, "options", {})]
            events += [DigitPressed(k) for k in options if k != "0"] * 3
        elif isinstance(node, CollectNode):
            # Likewise towards a whole number, so menu 9's lookup and what follows are reached.
            events += [DigitPressed(k) for k in "0123456789"] * 2 + [DigitPressed("#")] * 2
        if run.playing:
            events.append(PromptFinished())
        if run.active_timer:
            events.append(TimerExpired(run.active_timer))
        if run.state is State.RECORDING:
            events.append(RecordingFinished(12.5))
        if run.state is State.LOOKUP:
            events += LOOKUP_ANSWERS  # ActionFailed is in already: the lookup is outstanding
        return events

    def answer_lookup(self):
        answer = self.data.draw(st.sampled_from([*LOOKUP_ANSWERS, LOOKUP_FAILED]), label="lookup")
        self.send(answer)

    def silence(self):
        """A caller who does nothing more: prompts end, timers fire, recordings stop."""
        for _ in range(SILENCE_LIMIT):
            run = self.run
            if run.finished:
                return
            if run.playing:
                self.send(PromptFinished())
            elif run.active_timer:
                self.send(TimerExpired(run.active_timer))
            elif run.state is State.RECORDING:
                self.send(RecordingFinished(3.0))
            elif run.state is State.LOOKUP:
                self.answer_lookup()
            else:
                raise AssertionError(f"stuck at {run.node.id} in {run.state}: nothing can happen")
        raise AssertionError(f"no outcome after {SILENCE_LIMIT} silent events: {self.run.path}")

    def logs(self):
        return [c for c in self.out if isinstance(c, Log)]


def at_menu(run: FlowRun) -> bool:
    return (
        not run.finished
        and isinstance(run.node, (MenuNode, LanguageNode))
        and run.state in (State.PROMPT, State.INPUT)
    )


@PROPS
@given(caller=callers, now=moments, start=starts, data=st.data())
def test_any_real_call_ends_in_an_outcome(default_flow, caller, now, start, data):
    call = Call(default_flow, caller, now, data)
    call.press(start)
    for _ in range(data.draw(st.integers(0, 60))):
        events = call.possible()
        if not events or (call.run.finished and data.draw(st.booleans())):
            break
        call.send(data.draw(st.sampled_from(events)))
    call.silence()
    event(f"outcome {call.run.outcome}")
    looked_up = [c for c in call.logs() if c.data.get("kind") == "lookup_answered"]
    event("order status heard" if looked_up else "no order status")
    assert call.run.finished and isinstance(call.run.outcome, Outcome)
    if caller.blocked and call.run.outcome is not Outcome.HUNG_UP:
        assert call.run.outcome is Outcome.REJECTED
    outcomes = [c for c in call.logs() if c.type == "ivr.outcome"]
    assert outcomes and outcomes[-1].data["outcome"] == call.run.outcome.value
    # The log tells the path.
    entered = [c.data["node"] for c in call.logs() if c.type == "ivr.node_entered"]
    assert entered == call.run.path


@PROPS
@given(caller=open_callers, now=moments, start=starts, data=st.data())
def test_zero_or_silence_in_any_menu_reaches_a_person(default_flow, caller, now, start, data):
    call = Call(default_flow, caller, now, data)
    call.press(start)
    for _ in range(data.draw(st.integers(0, 40))):
        if at_menu(call.run) and data.draw(st.integers(0, 3)) == 0:
            break
        events = call.possible(hang_up=False)
        if not events:
            break
        call.send(data.draw(st.sampled_from(events)))
    if not at_menu(call.run):
        event("no menu reached")
        return
    menu = call.run.node.id
    event(f"at {menu}")
    before = len(call.out)
    if data.draw(st.booleans(), label="press 0 (else stay silent)"):
        call.send(DigitPressed("0"))
    call.silence()
    assert call.run.outcome is Outcome.QUEUED, (menu, call.run.path)
    queued = [c for c in call.out[before:] if isinstance(c, EnterQueue)]
    assert len(queued) == 1 and queued[0].queue == PERSON_QUEUE.get(menu, "operator"), menu


@PROPS
@given(
    caller=callers, data=st.data(), id_number=st.from_regex(r"[1-9][0-9]{16}[0-9*]", fullmatch=True)
)
def test_sensitive_keys_never_appear_in_clear(default_flow, caller, data, id_number):
    call = Call(default_flow, caller, TUESDAY_10AM, data)
    masked = masked_nodes(default_flow)
    # 1 during the welcome → 普通话, 2 → 法律援助申请, 2 → 申请 (ID number); random events are
    # mixed in, so the ID is typed ahead, barged in, interrupted, failed, retried or abandoned.
    keys = list("122" + id_number + data.draw(st.sampled_from(["#", "", "1#"])))
    while keys and not call.run.finished:
        if data.draw(st.integers(0, 9)) == 0:
            call.send(data.draw(st.sampled_from(call.possible())))
        else:
            call.send(DigitPressed(keys.pop(0)))
    call.silence()
    for log in call.logs():
        if (
            log.type == "ivr.input"
            and log.data.get("kind") == "digit"
            and log.data["node"] in masked
        ):
            assert log.data["digit"] == MASK, log
        if log.type == "ivr.collected" and log.data["node"] == "legal_aid_id":
            assert set(log.data["value"]) <= {MASK}, log
    text = json.dumps([c.data for c in call.logs()], ensure_ascii=False)
    secret = call.run.variables.get("id_number")
    event("id number collected" if secret else "no id number")
    if secret:
        assert secret not in text and secret[:10] not in text
    # A random key can send the scripted keys to a collect node that is not sensitive (9 at the
    # main menu → 查询工单进度): there they are that node's value, a work-order number the flow
    # logs in clear, as the caller keyed it, and looks up (the lookup's log names the number).
    # Anywhere else the ID's digits must not show.
    collects = [n for n in default_flow.nodes.values() if isinstance(n, CollectNode)]
    clear = {n.store_as for n in collects if not n.sensitive} - {
        n.store_as for n in collects if n.sensitive
    }

    def is_clear_value(log):
        if log.type == "ivr.collected":
            return not default_flow.nodes[log.data["node"]].sensitive
        if log.type == "ivr.action" and log.data.get("action") == "lookup":
            node = default_flow.nodes[log.data["node"]]
            return isinstance(node, LookupNode) and node.variable in clear
        return False

    elsewhere = [c.data for c in call.logs() if not is_clear_value(c)]
    assert id_number[:10] not in json.dumps(elsewhere, ensure_ascii=False)
