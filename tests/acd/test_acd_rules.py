"""Unit tests of the ACD core, one rule at a time (pure logic: inputs in, commands out)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from pydantic import ValidationError

from acd.config import AcdConfig, OverflowRule, QueueConfig, RelaxationStep, SeatConfig
from acd.core import Acd
from acd.model import (
    LOG_TYPES,
    AcdError,
    Announce,
    CallState,
    CancelOffer,
    Command,
    Connect,
    DialCallback,
    InvalidTransition,
    LeaveQueue,
    Log,
    Offer,
    OfferCallbackChoice,
    Overflowed,
    SeatState,
    UnknownCall,
)


def logs(commands: Iterable[Command], type_: str) -> list[dict[str, Any]]:
    return [dict(c.data) for c in commands if isinstance(c, Log) and c.type == type_]


def of(commands: Iterable[Command], kind: type) -> list[Any]:
    return [c for c in commands if isinstance(c, kind)]


def offers(commands: Iterable[Command]) -> list[tuple[str, str]]:
    return [(c.call_id, c.seat_id) for c in of(commands, Offer)]


def make(
    seats: dict[str, dict[str, int]] | None = None,
    regions: dict[str, str] | None = None,
    queues: list[QueueConfig] | None = None,
    login: bool = True,
    **acd_kw: Any,
) -> Acd:
    seats = seats if seats is not None else {"s1": {"labour": 1}}
    regions = regions or {}
    cfg = AcdConfig(
        queues=tuple(queues or [QueueConfig(name="labour", announce_interval_s=None)]),
        seats=tuple(
            SeatConfig(seat_id=s, skills=sk, region=regions.get(s, "default"))
            for s, sk in seats.items()
        ),
        **acd_kw,
    )
    acd = Acd(cfg, now=0.0)
    if login:
        for i, s in enumerate(seats):
            acd.seat_logged_in(s, now=0.001 * i)  # login order = idle order
    return acd


def busy_all(acd: Acd, now: float = 1.0) -> None:
    """Put every seat on pause so calls queue up."""
    for s in acd.seat_ids():
        acd.seat_paused(s, "会议", now=now)


# ----------------------------------------------------------------- config
def test_config_rejects_unknown_overflow_target_and_unordered_steps() -> None:
    with pytest.raises(ValidationError, match="overflow to unknown queue"):
        AcdConfig(queues=[QueueConfig(name="a", overflow=OverflowRule(after_s=5, to_queue="b"))])
    with pytest.raises(ValidationError, match="increasing"):
        QueueConfig(
            name="a",
            relaxation=[RelaxationStep(after_s=60, level_drop=1), RelaxationStep(after_s=30)],
        )
    with pytest.raises(ValidationError, match=r"unknown key|Extra inputs"):
        QueueConfig.model_validate({"name": "a", "stratgy": "ring_all"})


def test_per_topic_makes_one_queue_per_topic() -> None:
    cfg = AcdConfig.per_topic(["labour", "family"], strategy="fewest_calls")
    assert [(q.name, q.skill, q.strategy) for q in cfg.queues] == [
        ("labour", "labour", "fewest_calls"),
        ("family", "family", "fewest_calls"),
    ]


# ----------------------------------------------------------------- state machine errors
def test_impossible_events_name_event_and_state() -> None:
    acd = make({"s1": {"labour": 1}}, login=False)
    with pytest.raises(InvalidTransition, match=r"seat_ready .*seat s1.*'offline'"):
        acd.seat_ready("s1", now=1)
    acd.seat_logged_in("s1", now=1)
    acd.call_arrived("c1", "labour", now=2)
    acd.offer_answered("c1", "s1", now=3)
    with pytest.raises(InvalidTransition, match=r"seat_logged_out .*seat s1.*'on_call'"):
        acd.seat_logged_out("s1", now=4)
    with pytest.raises(InvalidTransition, match=r"callback_requested .*call c1.*'connected'"):
        acd.callback_requested("c1", now=4)
    with pytest.raises(UnknownCall):
        acd.caller_hung_up("nope", now=4)
    with pytest.raises(AcdError, match="unknown reason"):
        acd.seat_paused("s1", "睡觉", now=4)
    # nothing changed by the rejected inputs
    assert acd.seat_view("s1").state is SeatState.ON_CALL
    assert acd.call_view("c1").state is CallState.CONNECTED


# ----------------------------------------------------------------- event-driven offers
def test_freed_seat_is_offered_the_next_call_in_the_same_input() -> None:
    acd = make({"s1": {"labour": 1}})
    acd.call_arrived("c1", "labour", now=1)
    acd.call_arrived("c2", "labour", now=2)
    acd.offer_answered("c1", "s1", now=3)
    out = acd.call_completed("c1", "seat", now=10)
    assert offers(out) == []  # wrap-up: not offered
    out = acd.wrap_up_done("s1", now=12)
    assert offers(out) == [("c2", "s1")]  # no polling delay (app_queue: ~1.5 s)


def test_wrap_up_timer_ends_wrap_up_and_offers_at_the_deadline() -> None:
    q = QueueConfig(name="labour", wrap_up_s=7, announce_interval_s=None)
    acd = make({"s1": {"labour": 1}}, queues=[q])
    acd.call_arrived("c1", "labour", now=1)
    acd.call_arrived("c2", "labour", now=2)
    acd.offer_answered("c1", "s1", now=3)
    acd.call_completed("c1", "caller", now=10)
    assert acd.next_deadline() == 17
    assert offers(acd.tick(16.9).commands) == []
    result = acd.tick(17)
    assert offers(result.commands) == [("c2", "s1")]
    assert result.next_deadline == 17 + q.ring_timeout_s


def test_pause_requested_during_a_call_applies_after_wrap_up() -> None:
    acd = make({"s1": {"labour": 1}})
    acd.call_arrived("c1", "labour", now=1)
    acd.call_arrived("c2", "labour", now=1.5)
    acd.offer_answered("c1", "s1", now=2)
    assert acd.seat_paused("s1", "小休", now=3) == []
    assert acd.seat_view("s1").pending_pause == "小休"
    acd.call_completed("c1", "seat", now=5)
    out = acd.wrap_up_done("s1", now=6)
    assert offers(out) == []
    assert acd.seat_view("s1").state is SeatState.PAUSED
    assert logs(out, "seat.state_changed")[-1]["reason"] == "小休"


# ----------------------------------------------------------------- strategies
def test_longest_idle_picks_the_seat_idle_longest() -> None:
    acd = make({"a": {"labour": 1}, "b": {"labour": 1}})
    acd.call_arrived("c1", "labour", now=1)  # a (idle since 0)
    acd.offer_answered("c1", "a", now=2)
    acd.call_completed("c1", "seat", now=3)
    acd.wrap_up_done("a", now=4)  # a idle since 3, b since 0.001
    assert offers(acd.call_arrived("c2", "labour", now=5)) == [("c2", "b")]


def test_fewest_calls_picks_the_seat_with_fewest_calls() -> None:
    q = QueueConfig(name="labour", strategy="fewest_calls", announce_interval_s=None)
    acd = make({"a": {"labour": 1}, "b": {"labour": 1}}, queues=[q])

    def serve(call: str, seat: str, t: float, done: bool = True) -> None:
        assert offers(acd.call_arrived(call, "labour", now=t)) == [(call, seat)]
        acd.offer_answered(call, seat, now=t + 1)
        if done:
            acd.call_completed(call, "seat", now=t + 2)
            acd.wrap_up_done(seat, now=t + 3)

    serve("x0", "a", 1)
    serve("x1", "b", 10, done=False)  # b stays on the phone
    serve("x2", "a", 20)
    serve("x3", "a", 30)
    acd.call_completed("x1", "seat", now=40)
    acd.wrap_up_done("b", now=41)  # a: 3 calls, last ended 32; b: 1 call, ended 40
    assert offers(acd.call_arrived("c", "labour", now=50)) == [("c", "b")]


def test_skill_weighted_prefers_the_highest_level() -> None:
    q = QueueConfig(name="labour", strategy="skill_weighted", announce_interval_s=None)
    acd = make({"junior": {"labour": 1}, "senior": {"labour": 4}, "mid": {"labour": 2}}, queues=[q])
    assert offers(acd.call_arrived("c1", "labour", now=1)) == [("c1", "senior")]
    assert offers(acd.call_arrived("c2", "labour", now=1)) == [("c2", "mid")]


def test_round_robin_rotates_through_seats() -> None:
    q = QueueConfig(name="labour", strategy="round_robin", wrap_up_s=0, announce_interval_s=None)
    acd = make({"a": {"labour": 1}, "b": {"labour": 1}, "c": {"labour": 1}}, queues=[q])
    got = []
    for i in range(5):
        out = acd.call_arrived(f"c{i}", "labour", now=i + 1)
        (call, seat) = offers(out)[0]
        got.append(seat)
        acd.offer_answered(call, seat, now=i + 1.2)
        acd.call_completed(call, "seat", now=i + 1.5)
    assert got == ["a", "b", "c", "a", "b"]


def test_ring_all_rings_every_seat_and_the_first_answer_wins() -> None:
    q = QueueConfig(name="labour", strategy="ring_all", announce_interval_s=None)
    acd = make({"a": {"labour": 1}, "b": {"labour": 1}, "c": {"family": 1}}, queues=[q])
    out = acd.call_arrived("c1", "labour", now=1)
    assert sorted(offers(out)) == [("c1", "a"), ("c1", "b")]
    out = acd.offer_answered("c1", "b", now=2)
    assert of(out, CancelOffer) == [CancelOffer("c1", "a")]
    assert of(out, Connect) == [Connect("c1", "b")]
    assert acd.seat_view("a").state is SeatState.AVAILABLE
    with pytest.raises(InvalidTransition):
        acd.offer_answered("c1", "c", now=2.1)  # c was never offered c1
    # the late answer of a after the cancel is hung up again, never bridged
    assert acd.offer_answered("c1", "a", now=2.2) == [CancelOffer("c1", "a")]


def test_regions_restrict_seats() -> None:
    q = QueueConfig(name="labour", regions=("hohhot",), announce_interval_s=None)
    acd = make(
        {"bt": {"labour": 3}, "hh": {"labour": 1}},
        regions={"bt": "baotou", "hh": "hohhot"},
        queues=[q],
    )
    assert offers(acd.call_arrived("c1", "labour", now=1)) == [("c1", "hh")]
    assert acd.queue_view("labour").staffed == 1


# ----------------------------------------------------------------- ordering, priority, aging
def test_longest_waiting_first_at_equal_priority() -> None:
    acd = make({"s1": {"labour": 1}})
    busy_all(acd)
    for i in range(5):
        acd.call_arrived(f"c{i}", "labour", now=2 + i)
    served = []
    for i in range(5):
        out = acd.seat_ready("s1", now=20 + 10 * i)
        ((call, _),) = offers(out)
        served.append(call)
        acd.seat_paused("s1", "小休", now=21 + 10 * i)  # withdraws; the call goes back
        acd.caller_hung_up(call, now=22 + 10 * i)
    assert served == ["c0", "c1", "c2", "c3", "c4"]


def test_priority_passes_but_aging_bounds_it() -> None:
    q = QueueConfig(name="labour", aging_s_per_level=60, announce_interval_s=None)
    acd = make({"s1": {"labour": 1}}, queues=[q])
    busy_all(acd)
    acd.call_arrived("old", "labour", now=0)  # key 0
    acd.call_arrived("normal", "labour", now=50)  # key 50
    acd.call_arrived("green", "labour", now=70, priority=1)  # key 10: passes "normal" only
    acd.call_arrived("x110", "labour", now=75, origin="110")  # priority 2 by origin: key -45
    order = [acd.call_view(c).position for c in ("x110", "old", "green", "normal")]
    assert order == [1, 2, 3, 4]
    assert acd.call_view("x110").priority == 2


def test_no_starvation_with_a_stream_of_priority_calls() -> None:
    """One seat, high-priority calls arrive faster than it serves: the old call still gets in."""
    q = QueueConfig(name="labour", aging_s_per_level=30, wrap_up_s=0, announce_interval_s=None)
    acd = make({"s1": {"labour": 1}}, queues=[q])
    busy_all(acd, now=0.5)
    acd.call_arrived("low", "labour", now=1)
    t, n, served_low_at = 1.0, 0, None
    acd.seat_ready("s1", now=1.5)
    current = acd.seat_view("s1").call_id
    while served_low_at is None and t < 1000:
        for _ in range(2):  # two priority-2 calls per service time
            n += 1
            acd.call_arrived(f"p{n}", "labour", now=t, priority=2)
        assert current is not None
        if current == "low":
            served_low_at = t
            break
        acd.offer_answered(current, "s1", now=t + 1)
        out = acd.call_completed(current, "seat", now=t + 10)
        t += 10
        current = offers(out)[0][0] if offers(out) else acd.seat_view("s1").call_id
    # bound: low is passed only by calls arriving within 2 * 30 s of it (and one in service)
    assert served_low_at is not None and served_low_at <= 1 + 60 + 2 * 10 + 10


# ----------------------------------------------------------------- relaxation, overflow
def test_skill_relaxation_by_waiting_time() -> None:
    q = QueueConfig(
        name="labour",
        min_level=3,
        announce_interval_s=None,
        relaxation=(
            RelaxationStep(after_s=30, level_drop=1),
            RelaxationStep(after_s=60, any_seat=True),
        ),
    )
    acd = make({"l2": {"labour": 2}, "fam": {"family": 5}}, queues=[q])
    assert offers(acd.call_arrived("c1", "labour", now=1)) == []
    assert acd.call_view("c1").required == (("labour", 3),)
    assert acd.next_deadline() == 31
    assert offers(acd.tick(31).commands) == [("c1", "l2")]
    acd.offer_answered("c1", "l2", now=32)
    acd.call_arrived("c2", "labour", now=40)
    assert offers(acd.tick(99).commands) == []  # c2 at 59 s: not yet any seat
    assert offers(acd.tick(100).commands) == [("c2", "fam")]


def test_overflow_to_another_queue_keeps_the_wait() -> None:
    labour = QueueConfig(
        name="labour",
        announce_interval_s=None,
        overflow=OverflowRule(after_s=45, to_queue="general"),
    )
    general = QueueConfig(name="general", announce_interval_s=None)
    acd = make({"g": {"general": 1}, "l": {"labour": 1}}, queues=[labour, general])
    acd.seat_paused("l", "培训", now=0.5)
    acd.seat_paused("g", "培训", now=0.5)
    acd.call_arrived("c1", "labour", now=1)
    acd.call_arrived("c2", "general", now=20)
    out = acd.tick(46).commands
    assert of(out, Overflowed) == [Overflowed("c1", "labour", "general")]
    assert logs(out, "queue.overflowed")[0]["wait"] == 45
    assert acd.call_view("c1").position == 1  # arrived before c2: stays ahead of it
    assert offers(acd.seat_ready("g", now=47)) == [("c1", "g")]


def test_overflow_is_skipped_when_the_target_has_nobody() -> None:
    labour = QueueConfig(
        name="labour", announce_interval_s=None, overflow=OverflowRule(after_s=5, to_queue="x")
    )
    acd = make(
        {"l": {"labour": 1}}, queues=[labour, QueueConfig(name="x", announce_interval_s=None)]
    )
    acd.seat_paused("l", "培训", now=0.5)
    acd.call_arrived("c1", "labour", now=1)
    assert of(acd.tick(10).commands, Overflowed) == []
    assert acd.call_view("c1").queue == "labour"


def test_late_overflow_keeps_the_order_of_callers_who_arrived_together() -> None:
    """Regression (found by the stateful test): c1 and c2 arrive together at priority 2.

    c1 asks for a callback keeping its place, so s1 is reserved for it and dialled. c2's overflow
    falls due at 30 s while c1 is still dialling; c1's callback times out at 60 s, it returns and
    overflows too, in the same tick. It must stay ahead of c2: it used to get a fresh sequence
    number on overflow, which put c2 first and offered s1 to c2.
    """
    family = QueueConfig(
        name="family",
        aging_s_per_level=10,
        overflow=OverflowRule(after_s=30, to_queue="labour"),
        callback_retry_delay_s=0,
        callback_timeout_s=60,
        announce_interval_s=None,
    )
    labour = QueueConfig(name="labour", min_level=2, aging_s_per_level=15, announce_interval_s=None)
    acd = make({"s1": {"labour": 3, "family": 1}}, queues=[family, labour], login=False)
    acd.call_arrived("c1", "family", now=0, priority=2, caller_key="k1")
    acd.callback_requested("c1", now=0)
    assert of(acd.seat_logged_in("s1", now=0), DialCallback) == [DialCallback("c1", "s1")]
    acd.call_arrived("c2", "family", now=0, priority=2)
    assert acd.tick(20).commands == []
    out = acd.tick(60).commands
    assert of(out, Overflowed) == [
        Overflowed("c2", "family", "labour"),
        Overflowed("c1", "family", "labour"),
    ]
    assert logs(out, "callback.failed")[0]["final"] is False
    assert offers(out) == []  # s1 is not given to c2 ...
    assert of(out, DialCallback) == [DialCallback("c1", "s1")]  # ... but reserved for c1 again
    assert acd.call_view("c1").key < acd.call_view("c2").key
    acd.callback_result("c1", True, now=70)
    assert offers(acd.call_completed("c1", "seat", now=100)) == []  # labour wrap-up 10 s
    assert offers(acd.tick(110).commands) == [("c2", "s1")]


# ----------------------------------------------------------------- offers failing
def test_no_answer_pauses_the_seat_and_keeps_the_original_position() -> None:
    q = QueueConfig(name="labour", ring_timeout_s=15, announce_interval_s=None)
    acd = make({"s1": {"labour": 1}, "s2": {"labour": 1}}, queues=[q])
    acd.seat_paused("s2", "会议", now=0.5)
    acd.call_arrived("c1", "labour", now=1)
    acd.call_arrived("c2", "labour", now=2)
    acd.call_arrived("c3", "labour", now=3)
    out = acd.tick(16).commands  # s1 never answers c1
    assert of(out, CancelOffer) == [CancelOffer("c1", "s1")]
    assert logs(out, "queue.no_answer")[0] | {"at": 0} == {
        "call_id": "c1",
        "queue": "labour",
        "seat_id": "s1",
        "why": "no_answer",
        "rang": 15,
        "at": 0,
    }
    seat = acd.seat_view("s1")
    assert (seat.state, seat.reason) == (SeatState.PAUSED, "未接听")
    assert acd.call_view("c1").position == 1  # back at the head, ahead of c2 and c3
    # the paused seat is not rung again; the next ready seat gets c1 first
    assert offers(acd.seat_ready("s2", now=17)) == [("c1", "s2")]


@pytest.mark.parametrize(("why", "reason"), [("busy", "忙线"), ("rejected", "拒接")])
def test_busy_or_rejected_pauses_the_seat_too(why: str, reason: str) -> None:
    acd = make({"s1": {"labour": 1}, "s2": {"labour": 1}})
    acd.call_arrived("c1", "labour", now=1)
    out = acd.offer_failed("c1", "s1", why, now=2)  # type: ignore[arg-type]
    assert acd.seat_view("s1").reason == reason
    assert offers(out) == [("c1", "s2")]  # straight to the next seat
    assert acd.offer_failed("c1", "s1", why, now=3) == []  # a repeated report is ignored


def test_caller_hangs_up_while_ringing() -> None:
    acd = make({"s1": {"labour": 1}})
    busy_all(acd)
    acd.call_arrived("c0", "labour", now=2)
    acd.call_arrived("c1", "labour", now=3)
    acd.call_arrived("c2", "labour", now=4)
    acd.seat_ready("s1", now=5)  # c0 rings
    acd.caller_hung_up("c0", now=5.5)  # c0 abandons while ringing: s1 gets c1 at once
    assert acd.call_view("c1").state is CallState.OFFERED
    out = acd.caller_hung_up("c1", now=9)
    assert of(out, CancelOffer) == [CancelOffer("c1", "s1")]
    ab = logs(out, "queue.abandoned")[0]
    assert (ab["position"], ab["wait"], ab["state"]) == (1, 6, "ringing")
    assert offers(out) == [("c2", "s1")]
    assert acd.offer_answered("c1", "s1", now=9.1) == [CancelOffer("c1", "s1")]  # late answer


def test_abandon_while_waiting_logs_position_and_wait() -> None:
    acd = make({"s1": {"labour": 1}})
    busy_all(acd)
    for i in range(3):
        acd.call_arrived(f"c{i}", "labour", now=2 + i)
    ab = logs(acd.caller_hung_up("c1", now=10), "queue.abandoned")[0]
    assert (ab["position"], ab["wait"], ab["state"]) == (2, 7, "waiting")
    assert acd.call_view("c2").position == 2


def test_logout_while_ringing_returns_the_call_without_pausing() -> None:
    acd = make({"s1": {"labour": 1}, "s2": {"labour": 1}})
    acd.call_arrived("c1", "labour", now=1)
    out = acd.seat_logged_out("s1", now=2)
    assert of(out, CancelOffer) == [CancelOffer("c1", "s1")]
    assert offers(out) == [("c1", "s2")]
    assert acd.seat_view("s1").state is SeatState.OFFLINE


# ----------------------------------------------------------------- waiting: announce, max wait
def test_announcements_give_position_and_live_ewt() -> None:
    q = QueueConfig(name="labour", announce_interval_s=20, default_aht_s=200)
    acd = make({"a": {"labour": 1}, "b": {"labour": 1}}, queues=[q])
    acd.seat_paused("b", "会议", now=0.5)  # paused seats do not count as staffed
    acd.call_arrived("c0", "labour", now=1)  # goes to a
    acd.offer_answered("c0", "a", now=1.5)
    out = acd.call_arrived("c1", "labour", now=2)
    assert of(out, Announce) == [Announce("c1", 1, 200.0)]  # (0+1) * 200 / 1
    out = acd.call_arrived("c2", "labour", now=3)
    assert of(out, Announce) == [Announce("c2", 2, 400.0)]
    acd.aht_observed("labour", 100, now=4)  # EWMA 0.2: 200 -> 180
    assert offers(acd.seat_ready("b", now=5)) == [("c1", "b")]  # two staffed now
    acd.offer_answered("c1", "b", now=6)
    out = acd.tick(23).commands
    assert of(out, Announce) == [Announce("c2", 1, 90.0)]  # 1 * 180 / 2
    assert acd.next_deadline() == 43


def test_max_wait_takes_a_message() -> None:
    q = QueueConfig(name="labour", max_wait_s=120, announce_interval_s=None)
    acd = make({"s1": {"labour": 1}}, queues=[q])
    busy_all(acd)
    acd.call_arrived("c1", "labour", now=2)
    out = acd.tick(122).commands
    assert of(out, LeaveQueue) == [LeaveQueue("c1", "max_wait", "message")]
    assert logs(out, "queue.left")[0]["wait"] == 120
    assert not acd.has_call("c1")


def test_max_wait_with_callback_keeps_the_place() -> None:
    q = QueueConfig(name="labour", max_wait_s=60, on_max_wait="callback", announce_interval_s=None)
    acd = make({"s1": {"labour": 1}}, queues=[q])
    busy_all(acd)
    acd.call_arrived("c1", "labour", now=2, caller_key="k1")
    acd.call_arrived("c2", "labour", now=3, caller_key="k2")
    out = acd.tick(62).commands
    assert of(out, LeaveQueue) == [LeaveQueue("c1", "max_wait", "callback")]
    assert logs(out, "callback.requested")[0]["position"] == 1
    assert acd.call_view("c1").callback
    out = acd.seat_ready("s1", now=62.5)
    assert of(out, DialCallback) == [DialCallback("c1", "s1")]


def test_callback_choice_is_offered_once_after_a_wait() -> None:
    q = QueueConfig(name="labour", callback_offer_after_s=30, announce_interval_s=None)
    acd = make({"s1": {"labour": 1}}, queues=[q])
    busy_all(acd)
    acd.call_arrived("anon", "labour", now=2)  # no caller key: nobody to call back
    acd.call_arrived("c1", "labour", now=2, caller_key="k1")
    assert of(acd.tick(40).commands, OfferCallbackChoice) == [OfferCallbackChoice("c1")]
    assert of(acd.tick(100).commands, OfferCallbackChoice) == []


def test_join_empty_and_leave_empty() -> None:
    q = QueueConfig(
        name="labour",
        join_empty="message",
        leave_empty="callback",
        leave_empty_grace_s=10,
        announce_interval_s=None,
    )
    acd = make({"s1": {"labour": 1}}, queues=[q], login=False)
    out = acd.call_arrived("c0", "labour", now=1)
    assert of(out, LeaveQueue) == [LeaveQueue("c0", "join_empty", "message")]
    acd.seat_logged_in("s1", now=2)
    acd.seat_paused("s1", "会议", now=2)
    acd.call_arrived("c1", "labour", now=3, caller_key="k1")
    acd.call_arrived("c2", "labour", now=4)
    acd.seat_logged_out("s1", now=5)
    assert acd.next_deadline() == 15
    acd.seat_logged_in("s1", now=6)  # back within the grace: nobody leaves
    acd.seat_paused("s1", "会议", now=6)
    assert of(acd.tick(20).commands, LeaveQueue) == []
    acd.seat_logged_out("s1", now=21)
    out = acd.tick(31).commands
    assert of(out, LeaveQueue) == [
        LeaveQueue("c1", "leave_empty", "callback"),
        LeaveQueue("c2", "leave_empty", "message"),  # no caller key: a message instead
    ]
    assert acd.call_view("c1").callback and not acd.has_call("c2")


# ----------------------------------------------------------------- callbacks
def test_callback_keeps_the_place_reserves_the_seat_then_dials() -> None:
    acd = make({"s1": {"labour": 1}})
    busy_all(acd)
    acd.call_arrived("c1", "labour", now=2, caller_key="k1")
    acd.call_arrived("c2", "labour", now=3, caller_key="k2")
    out = acd.callback_requested("c1", now=4)
    assert logs(out, "callback.requested")[0]["position"] == 1
    assert acd.caller_hung_up("c1", now=5) == []  # not an abandon: the place is kept
    assert acd.callback_requested("c1", now=6) == []  # one callback per request
    out = acd.seat_ready("s1", now=7)
    seat_changes = logs(out, "seat.state_changed")
    assert seat_changes[-1]["to"] == "offered"  # reserved before the dial command
    assert out.index(of(out, DialCallback)[0]) > out.index(
        next(c for c in out if isinstance(c, Log) and c.data.get("to") == "offered")
    )
    assert of(out, DialCallback) == [DialCallback("c1", "s1")]
    assert logs(out, "callback.placed")[0]["attempt"] == 1
    out = acd.callback_result("c1", True, now=20)
    assert of(out, Connect) == [Connect("c1", "s1")]
    assert logs(out, "queue.connected")[0]["callback"] is True


def test_failed_callback_is_retried_then_given_up() -> None:
    q = QueueConfig(
        name="labour", callback_retries=1, callback_retry_delay_s=30, announce_interval_s=None
    )
    acd = make({"s1": {"labour": 1}}, queues=[q])
    busy_all(acd)
    acd.call_arrived("c1", "labour", now=2, caller_key="k1")
    acd.callback_requested("c1", now=3)
    acd.seat_ready("s1", now=4)
    out = acd.callback_result("c1", False, now=10)
    assert logs(out, "callback.failed")[0] | {"at": 0} == {
        "call_id": "c1",
        "queue": "labour",
        "seat_id": "s1",
        "attempt": 1,
        "final": False,
        "at": 0,
    }
    assert acd.seat_view("s1").state is SeatState.AVAILABLE  # not the seat's fault
    assert acd.call_view("c1").state is CallState.DEFERRED
    assert of(acd.tick(39).commands, DialCallback) == []
    out = acd.tick(40).commands
    assert of(out, DialCallback) == [DialCallback("c1", "s1")]
    out = acd.tick(40 + q.callback_timeout_s).commands  # nobody reported: a failed attempt
    assert of(out, CancelOffer) == [CancelOffer("c1", "s1")]
    assert logs(out, "callback.failed")[0]["final"] is True
    assert of(out, LeaveQueue) == [LeaveQueue("c1", "callback_failed", "hangup")]
    assert not acd.has_call("c1")


def test_no_duplicate_callback_for_the_same_caller() -> None:
    acd = make({"s1": {"labour": 1}})
    busy_all(acd)
    acd.call_arrived("c1", "labour", now=2, caller_key="same")
    acd.callback_requested("c1", now=3)
    acd.call_arrived("c2", "labour", now=10, caller_key="same")  # calls again
    out = acd.callback_requested("c2", now=11)
    assert logs(out, "callback.requested")[0]["duplicate_of"] == "c1"
    assert of(out, LeaveQueue) == [LeaveQueue("c2", "callback_duplicate", "hangup")]
    out = acd.seat_ready("s1", now=12)
    assert of(out, DialCallback) == [DialCallback("c1", "s1")]
    assert len(acd.call_ids()) == 1


# ----------------------------------------------------------------- transfers
def test_transfer_to_queue_keeps_the_original_priority() -> None:
    labour = QueueConfig(name="labour", announce_interval_s=None)
    family = QueueConfig(name="family", announce_interval_s=None, aging_s_per_level=60)
    acd = make({"l": {"labour": 1}, "f": {"family": 1}}, queues=[labour, family])
    acd.seat_paused("f", "会议", now=0.5)
    acd.call_arrived("c1", "labour", now=1, origin="110")
    acd.offer_answered("c1", "l", now=2)
    acd.call_arrived("f1", "family", now=50)
    out = acd.transfer_to_queue("c1", "family", now=100)
    assert logs(out, "queue.transferred")[0]["to_queue"] == "family"
    assert acd.seat_view("l").state is SeatState.WRAP_UP
    view = acd.call_view("c1")
    assert (view.queue, view.priority, view.position) == ("family", 2, 1)  # 100-120 < 50
    assert view.required == (("family", 1),)
    assert offers(acd.seat_ready("f", now=101)) == [("c1", "f")]


def test_transfer_to_named_seat_waits_for_that_seat() -> None:
    acd = make({"a": {"labour": 1}, "b": {"labour": 1}, "c": {"labour": 1}})
    acd.call_arrived("c1", "labour", now=1)
    acd.offer_answered("c1", "a", now=2)
    acd.call_arrived("c2", "labour", now=3)
    acd.offer_answered("c2", "b", now=4)
    out = acd.transfer_to_seat("c1", "b", now=5)  # b is busy: c1 waits for b, not for c
    assert offers(out) == []
    assert acd.seat_view("c").state is SeatState.AVAILABLE
    acd.call_completed("c2", "seat", now=6)
    assert offers(acd.wrap_up_done("b", now=7)) == [("c1", "b")]


def test_every_log_type_is_documented() -> None:
    assert len(set(LOG_TYPES)) == 15
    assert "queue.abandoned" in LOG_TYPES and "seat.state_changed" in LOG_TYPES
