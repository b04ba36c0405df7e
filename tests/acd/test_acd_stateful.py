"""Hypothesis drives the ACD core with random inputs and checks its guarantees after every step.

The machine keeps its own oracle of what the seats may be doing (from the inputs it sent and the
commands it received) and checks the commands of each step against it:
- a seat is never offered two calls at once; a call is never bridged to two seats;
- a seat that is offline, paused or in wrap-up is never offered a call;
- offers follow the queue order: no waiting call with a better place (effective arrival
  = arrival - priority * aging of the queue the call is in, so the longest-waiting caller at
  equal priority first, also after an overflow, and no starvation under priority) that the seat
  could take is passed over;
- no-answer puts the call back with its original key and pauses the seat with 未接听;
- every seat state change is a legal transition chained from the previous one;
- decisions are immediate: after every input no waiting call has an available seat it qualifies for.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from acd.config import AcdConfig, OverflowRule, QueueConfig, RelaxationStep, SeatConfig
from acd.core import Acd
from acd.model import (
    SEAT_TRANSITIONS,
    AcdError,
    CallState,
    CancelOffer,
    Command,
    Connect,
    DialCallback,
    Log,
    Offer,
    Overflowed,
    SeatState,
)

QUEUES = (
    QueueConfig(
        name="labour",
        min_level=2,
        ring_timeout_s=8,
        wrap_up_s=3,
        aging_s_per_level=15,
        announce_interval_s=10,
        max_wait_s=150,
        on_max_wait="callback",
        callback_offer_after_s=25,
        callback_retries=1,
        callback_retry_delay_s=5,
        callback_timeout_s=20,
        relaxation=(
            RelaxationStep(after_s=20, level_drop=1),
            RelaxationStep(after_s=40, any_seat=True),
        ),
    ),
    QueueConfig(
        name="family",
        strategy="fewest_calls",
        ring_timeout_s=6,
        wrap_up_s=0,
        aging_s_per_level=10,
        overflow=OverflowRule(after_s=30, to_queue="labour"),
        leave_empty="message",
        leave_empty_grace_s=5,
        callback_retry_delay_s=0,
    ),
    QueueConfig(
        name="small",
        strategy="ring_all",
        regions=("north",),
        ring_timeout_s=10,
        wrap_up_s=4,
        max_wait_s=100,
        join_empty="callback",
        announce_interval_s=None,
    ),
    QueueConfig(name="rr", strategy="round_robin", ring_timeout_s=5, wrap_up_s=2),
)
SEATS = (
    SeatConfig(seat_id="s1", skills={"labour": 3, "family": 1}, region="north"),
    SeatConfig(seat_id="s2", skills={"labour": 1}, region="south"),
    SeatConfig(seat_id="s3", skills={"family": 2, "small": 1}, region="north"),
    SeatConfig(seat_id="s4", skills={"small": 2, "rr": 1}, region="north", wrap_up_s=1),
    SeatConfig(seat_id="s5", skills={"rr": 2, "labour": 2}, region="south"),
)
CONFIG = AcdConfig(queues=QUEUES, seats=SEATS)
WRAP = {s.seat_id: s.wrap_up_s for s in SEATS}
AGING = {q.name: q.aging_s_per_level for q in QUEUES}
SEAT_IDS = [s.seat_id for s in SEATS]
REASONS = ["小休", "培训", "会议"]


class AcdMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.acd = Acd(CONFIG, now=0.0)
        self.n = 0
        self.keys: dict[str, str | None] = {}  # call -> caller key
        self.arrival: dict[str, tuple[float, int, int, str]] = {}  # (t, order, prio, queue)
        self.moved: set[str] = set()
        self.offered: dict[str, str] = {}  # seat -> call ringing it (or reserved for callback)
        self.connected: dict[str, str] = {}  # call -> seat
        self.chain = dict.fromkeys(SEAT_IDS, SeatState.OFFLINE)
        # oracle of what the test knows: seats that must not be offered anything
        self.blocked: dict[str, tuple[str, float]] = {
            s: ("offline", float("inf")) for s in SEAT_IDS
        }
        self.pending: set[str] = set()

    # ------------------------------------------------------------ helpers
    def views(self) -> dict[str, Any]:
        return {c: self.acd.call_view(c) for c in self.acd.call_ids()}

    def seats_in(self, *states: SeatState) -> list[str]:
        return [s for s in SEAT_IDS if self.acd.seat_view(s).state in states]

    def calls_in(self, state: CallState, callback: bool | None = None) -> list[str]:
        return sorted(
            c
            for c, v in self.views().items()
            if v.state is state and (callback is None or v.callback == callback)
        )

    def oracle_place(self, call: str, views: dict[str, Any]) -> tuple[str, float, int] | None:
        """(queue, place) by the test's own arithmetic, for calls never transferred.

        An overflowed call keeps its first arrival and arrival order but is aged by the queue
        it is in now, so calls compare by place only within the same current queue.
        """
        if call in self.moved or call not in self.arrival or call not in views:
            return None
        t, order, prio, _ = self.arrival[call]
        queue = views[call].queue
        return (queue, t - prio * AGING[queue], order)

    def wrap_block(self, seat: str, queue: str) -> None:
        """The seat's call ends now (completed, hung up, transferred): wrap-up or pause."""
        for call, holder in list(self.connected.items()):
            if holder == seat:
                del self.connected[call]
        wrap = WRAP[seat] if WRAP[seat] is not None else CONFIG.queue(queue).wrap_up_s  # type: ignore[union-attr]
        if seat in self.pending:
            self.blocked[seat] = ("paused", float("inf"))
            self.pending.discard(seat)
        else:
            self.blocked[seat] = ("wrap", self.now + wrap)

    def step(self, method: str, *args: Any, **kw: Any) -> list[Command]:
        before = self.views()
        out = getattr(self.acd, method)(*args, now=self.now, **kw)
        if method == "tick":
            out = out.commands
        self.check(out, before)
        return out

    def check(self, out: list[Command], before: dict[str, Any]) -> None:
        after = self.views()
        waiting = [c for c, v in after.items() if v.state is CallState.WAITING]
        for cmd in out:
            if isinstance(cmd, Log) and cmd.type == "seat.state_changed":
                seat, old, new = cmd.data["seat_id"], cmd.data["from"], cmd.data["to"]
                assert self.chain[seat] == old, f"{seat}: chain {self.chain[seat]} != from {old}"
                assert new in SEAT_TRANSITIONS[old].values(), f"{seat}: {old}->{new} not legal"
                self.chain[seat] = new
            elif isinstance(cmd, Log) and cmd.type == "queue.no_answer":
                seat, call = cmd.data["seat_id"], cmd.data["call_id"]
                self.offered.pop(seat, None)
                self.blocked[seat] = ("paused", float("inf"))
                if cmd.data["why"] == "no_answer":
                    view = self.acd.seat_view(seat)
                    assert (view.state, view.reason) == (SeatState.PAUSED, "未接听")
                    moved = any(isinstance(x, Overflowed) and x.call_id == call for x in out)
                    if call in after and call in before and not moved:
                        assert after[call].key == before[call].key, "no-answer moved the call"
            elif isinstance(cmd, Log) and cmd.type == "callback.failed":
                self.offered.pop(cmd.data["seat_id"], None)
            elif isinstance(cmd, Offer | DialCallback):
                c, s = cmd.call_id, cmd.seat_id
                assert s not in self.offered, f"{s} offered {c} while ringing {self.offered[s]}"
                assert s not in self.connected.values(), f"{s} offered {c} while on a call"
                kind, until = self.blocked[s]
                assert kind in ("", "wrap") and self.now >= until, f"{s} offered {c} while {kind}"
                assert self.chain[s] is SeatState.OFFERED
                self.offered[s] = c
                mine = after[c].key if c in after else None
                for w in waiting:
                    if self.acd.seat_qualifies(s, w):
                        assert mine is not None and after[w].key > mine, (
                            f"{s} offered {c} {mine} but {w} {after[w].key} waits and fits"
                        )
                    ow, oc = self.oracle_place(w, after), self.oracle_place(c, after)
                    same = ow and oc and ow[0] == oc[0]
                    if same and ow < oc and self.acd.seat_qualifies(s, w):  # type: ignore[operator]
                        raise AssertionError(f"{w} waited longer than {c} and fits {s}")
            elif isinstance(cmd, CancelOffer):
                if self.offered.get(cmd.seat_id) == cmd.call_id:
                    del self.offered[cmd.seat_id]
            elif isinstance(cmd, Connect):
                c, s = cmd.call_id, cmd.seat_id
                assert c not in self.connected, f"{c} bridged to {s} and {self.connected[c]}"
                assert self.offered.get(s) == c, f"{c} bridged to {s} without an offer"
                for seat, call in list(self.offered.items()):
                    if call == c:
                        del self.offered[seat]
                self.connected[c] = s
        for c in list(self.connected):
            if c not in after or after[c].state is not CallState.CONNECTED:
                del self.connected[c]

    # ------------------------------------------------------------ rules
    @rule(
        queue=st.sampled_from([q.name for q in QUEUES]),
        prio=st.integers(0, 2),
        level=st.integers(1, 3),
        key=st.sampled_from([None, "k1", "k2", "k3"]),
    )
    def arrive(self, queue: str, prio: int, level: int, key: str | None) -> None:
        self.n += 1
        call = f"c{self.n}"
        skill = CONFIG.queue(queue).skill  # type: ignore[union-attr]
        self.keys[call] = key
        self.arrival[call] = (self.now, self.n, prio, queue)
        self.step(
            "call_arrived", call, queue, priority=prio, skills_needed={skill: level}, caller_key=key
        )

    @rule(data=st.data())
    def hang_up(self, data: st.DataObject) -> None:
        calls = self.acd.call_ids()
        if calls:
            call = data.draw(st.sampled_from(sorted(calls)))
            view = self.acd.call_view(call)
            if view.state is CallState.CONNECTED:
                self.wrap_block(view.seats[0], view.queue)
            self.step("caller_hung_up", call)

    @rule(seat=st.sampled_from(SEAT_IDS))
    def login(self, seat: str) -> None:
        if self.acd.seat_view(seat).state is SeatState.OFFLINE:
            self.blocked[seat] = ("", 0.0)
            self.step("seat_logged_in", seat)

    @rule(seat=st.sampled_from(SEAT_IDS))
    def logout(self, seat: str) -> None:
        if self.acd.seat_view(seat).state not in (SeatState.OFFLINE, SeatState.ON_CALL):
            self.blocked[seat] = ("offline", float("inf"))
            self.pending.discard(seat)
            self.offered.pop(seat, None)
            self.step("seat_logged_out", seat)

    @rule(seat=st.sampled_from(SEAT_IDS))
    def ready(self, seat: str) -> None:
        if self.acd.seat_view(seat).state in (SeatState.PAUSED, SeatState.WRAP_UP):
            self.blocked[seat] = ("", 0.0)
            self.pending.discard(seat)
            self.step("seat_ready", seat)

    @rule(seat=st.sampled_from(SEAT_IDS), reason=st.sampled_from(REASONS))
    def pause(self, seat: str, reason: str) -> None:
        state = self.acd.seat_view(seat).state
        if state is SeatState.OFFLINE:
            return
        if state is SeatState.ON_CALL:
            self.pending.add(seat)
        else:
            self.blocked[seat] = ("paused", float("inf"))
            self.offered.pop(seat, None)
        self.step("seat_paused", seat, reason)

    def ringing_pairs(self) -> list[tuple[str, str]]:
        return sorted(
            (c, s)
            for c, v in self.views().items()
            if v.state is CallState.OFFERED and not v.callback
            for s in v.seats
        )

    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        pairs = self.ringing_pairs()
        if pairs:
            call, seat = data.draw(st.sampled_from(pairs))
            self.step("offer_answered", call, seat)

    @rule(data=st.data(), why=st.sampled_from(["no_answer", "busy", "rejected", "error"]))
    def fail(self, data: st.DataObject, why: str) -> None:
        pairs = self.ringing_pairs()
        if pairs:
            call, seat = data.draw(st.sampled_from(pairs))
            self.step("offer_failed", call, seat, why)
            view = self.acd.seat_view(seat)
            assert view.state is SeatState.PAUSED
            assert view.reason == CONFIG.offer_failure_pause[why]  # type: ignore[index]

    @rule(data=st.data(), by=st.sampled_from(["caller", "seat"]))
    def complete(self, data: st.DataObject, by: str) -> None:
        calls = self.calls_in(CallState.CONNECTED)
        if calls:
            call = data.draw(st.sampled_from(calls))
            view = self.acd.call_view(call)
            self.wrap_block(view.seats[0], view.queue)
            self.step("call_completed", call, by)

    @rule(data=st.data())
    def wrap_done(self, data: st.DataObject) -> None:
        seats = self.seats_in(SeatState.WRAP_UP)
        if seats:
            seat = data.draw(st.sampled_from(seats))
            kind, _ = self.blocked[seat]
            self.blocked[seat] = ("paused", float("inf")) if kind == "paused" else ("", 0.0)
            self.step("wrap_up_done", seat)

    @rule(dt=st.sampled_from([0.5, 1.0, 3.0, 7.0, 15.0, 40.0]))
    def advance(self, dt: float) -> None:
        self.now += dt
        deadline = self.acd.next_deadline()
        assert deadline is None or deadline > self.now - dt - 1e-9
        self.step("tick")
        nxt = self.acd.next_deadline()
        assert nxt is None or nxt > self.now

    @rule(data=st.data())
    def callback_request(self, data: st.DataObject) -> None:
        calls = [c for c in self.calls_in(CallState.WAITING) if not self.acd.call_view(c).callback]
        if not calls:
            return
        call = data.draw(st.sampled_from(calls))
        if self.keys.get(call) is None:
            try:
                self.acd.callback_requested(call, now=self.now)
            except AcdError:
                return
            raise AssertionError("a callback without a number to dial was accepted")
        self.step("callback_requested", call)

    @rule(data=st.data(), ok=st.booleans())
    def callback_result(self, data: st.DataObject, ok: bool) -> None:
        calls = self.calls_in(CallState.OFFERED, callback=True)
        if calls:
            call = data.draw(st.sampled_from(calls))
            seat = self.acd.call_view(call).seats[0]
            if not ok:
                self.offered.pop(seat, None)
            self.step("callback_result", call, ok)

    @rule(data=st.data(), queue=st.sampled_from([q.name for q in QUEUES]))
    def transfer(self, data: st.DataObject, queue: str) -> None:
        calls = self.calls_in(CallState.CONNECTED)
        if calls:
            call = data.draw(st.sampled_from(calls))
            view = self.acd.call_view(call)
            self.wrap_block(view.seats[0], view.queue)
            self.moved.add(call)
            self.step("transfer_to_queue", call, queue)
            if self.acd.has_call(call):
                assert self.acd.call_view(call).priority == view.priority

    @rule(data=st.data(), seat=st.sampled_from(SEAT_IDS))
    def transfer_seat(self, data: st.DataObject, seat: str) -> None:
        calls = [c for c in self.calls_in(CallState.CONNECTED) if self.connected.get(c) != seat]
        if calls:
            call = data.draw(st.sampled_from(calls))
            view = self.acd.call_view(call)
            self.wrap_block(view.seats[0], view.queue)
            self.moved.add(call)
            self.step("transfer_to_seat", call, seat)

    # ------------------------------------------------------------ invariants
    @invariant()
    def states_agree_and_no_double_booking(self) -> None:
        holders: dict[str, str] = {}
        for c, v in self.views().items():
            if v.state is CallState.CONNECTED:
                assert len(v.seats) == 1
            for s in v.seats if v.state in (CallState.OFFERED, CallState.CONNECTED) else ():
                assert s not in holders, f"{s} holds {holders.get(s)} and {c}"
                holders[s] = c
                assert self.acd.seat_view(s).call_id == c
        for s in SEAT_IDS:
            view = self.acd.seat_view(s)
            assert view.state == self.chain[s]
            if view.state in (SeatState.OFFERED, SeatState.ON_CALL):
                assert holders.get(s) == view.call_id

    @invariant()
    def decisions_are_immediate(self) -> None:
        free = self.seats_in(SeatState.AVAILABLE)
        for c in self.calls_in(CallState.WAITING):
            for s in free:
                assert not self.acd.seat_qualifies(s, c), f"{c} waits while {s} is free and fits"


AcdMachine.TestCase.settings = settings(
    max_examples=int(__import__("os").environ.get("ACD_STATEFUL_EXAMPLES", "150")),
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAcdStateful = AcdMachine.TestCase


# ------------------------------------------------------------------------- starvation bound
@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.sampled_from([1.0, 2.0, 4.0, 6.0]), min_size=5, max_size=60),
    prios=st.lists(st.integers(0, 3), min_size=60, max_size=60),
)
def test_no_caller_starves_under_priority(gaps: list[float], prios: list[int]) -> None:
    """One seat, service 5 s, callers of random priority arriving faster than it serves.

    Every caller is offered the seat after at most one service time per caller with a better
    place, and the callers with a better place are those already waiting plus those arriving
    within max_priority * aging seconds after them: a finite bound, whatever the priorities.
    """
    aging = 20.0
    q = QueueConfig(name="q", aging_s_per_level=aging, wrap_up_s=0, announce_interval_s=None)
    acd = Acd(AcdConfig(queues=(q,), seats=(SeatConfig(seat_id="s", skills={"q": 1}),)), 0.0)
    acd.seat_logged_in("s", now=0.0)
    acd.seat_paused("s", "会议", now=0.0)
    arrivals: list[tuple[float, str, int]] = []
    t = 0.0
    for i, gap in enumerate(gaps):
        t += gap
        arrivals.append((t, f"c{i}", prios[i]))
    offered_at: dict[str, float] = {}
    pending = list(arrivals)
    clock, busy_until = 0.5, 0.5
    acd.seat_ready("s", now=0.5)
    current: str | None = None
    while len(offered_at) < len(arrivals):
        next_arrival = pending[0][0] if pending else float("inf")
        if current is None or next_arrival <= busy_until:
            clock = next_arrival
            at, call, prio = pending.pop(0)
            out = acd.call_arrived(call, "q", now=at, priority=prio)
        else:
            clock = busy_until
            out = acd.call_completed(current, "seat", now=clock)
            current = None
        for cmd in out:
            if isinstance(cmd, Offer):
                offered_at[cmd.call_id] = clock
                acd.offer_answered(cmd.call_id, "s", now=clock)
                current, busy_until = cmd.call_id, clock + 5.0
    place = {c: a - p * aging for a, c, p in arrivals}
    for at, call, _ in arrivals:
        better = sum(1 for c in place if place[c] < place[call])
        assert offered_at[call] - at <= 5.0 * (better + 1) + 1e-6
        arrived_later_but_better = sum(
            1 for a, c, _ in arrivals if a > at and place[c] < place[call]
        )
        assert all(a <= at + 3 * aging for a, c, _ in arrivals if a > at and place[c] < place[call])
        assert arrived_later_but_better <= len([a for a, _, _ in arrivals if at < a <= at + 60])
