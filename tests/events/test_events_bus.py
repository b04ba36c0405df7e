"""The in-process event bus: pattern routing, bounded queues, slow subscribers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from fnmatch import fnmatchcase

from hypothesis import given
from hypothesis import strategies as st

from hotline.events import CallEvent, EventBus, EventType


def ev(type_: EventType | str, n: int = 0) -> CallEvent:
    return CallEvent(f"c{n}", n + 1, datetime.now(UTC), type_, {"n": n})


def drain(sub) -> list[CallEvent]:  # type: ignore[no-untyped-def]
    out = []
    while sub.qsize():
        out.append(sub.get_nowait())
    return out


def test_patterns_select_by_type() -> None:
    bus = EventBus()
    calls = bus.subscribe("call.*")
    everything = bus.subscribe()
    prompts_or_end = bus.subscribe(["prompt.*", "call.ended"])
    queues = bus.subscribe("queue.*")
    published = [
        ev(EventType.CALL_ENTERED),
        ev(EventType.PROMPT_STARTED),
        ev(EventType.CALL_ENDED),
        ev(EventType.SERVICE_RECONCILED),
    ]
    assert [bus.publish(e) for e in published] == [2, 2, 3, 1]

    assert [e.type for e in drain(calls)] == ["call.entered", "call.ended"]
    assert drain(everything) == published
    assert [e.type for e in drain(prompts_or_end)] == ["prompt.started", "call.ended"]
    assert drain(queues) == []


def test_slow_subscriber_drops_oldest_and_is_marked_lagging() -> None:
    bus = EventBus()
    slow = bus.subscribe(maxsize=3)
    fast = bus.subscribe(maxsize=100)
    events = [ev(EventType.PROMPT_STARTED, n) for n in range(5)]
    for e in events:
        bus.publish(e)

    assert slow.lagging and slow.dropped == 2
    assert drain(slow) == events[2:]  # the newest survive
    assert not slow.lagging and slow.dropped == 2  # caught up; the loss stays counted
    assert drain(fast) == events and fast.dropped == 0 and not fast.lagging


def test_publish_never_blocks_on_a_stuck_subscriber() -> None:
    bus = EventBus()
    stuck = bus.subscribe(maxsize=10)
    for n in range(10_000):
        bus.publish(ev(EventType.PROMPT_STARTED, n))
    assert stuck.qsize() == 10 and stuck.dropped == 9_990
    assert stuck.get_nowait().data == {"n": 9_990}


async def test_waiting_consumer_is_woken_and_iteration_ends_on_unsubscribe() -> None:
    bus = EventBus()
    sub = bus.subscribe("call.*")
    received: list[CallEvent] = []

    async def consume() -> None:
        async for event in sub:
            received.append(event)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)  # let the consumer block on the empty queue
    first, second = ev(EventType.CALL_ENTERED, 1), ev(EventType.CALL_ENDED, 2)
    bus.publish(first)
    bus.publish(ev(EventType.PROMPT_STARTED, 3))
    bus.publish(second)
    bus.unsubscribe(sub)
    async with asyncio.timeout(5):
        await task
    assert received == [first, second]
    assert bus.publish(ev(EventType.CALL_ENTERED)) == 0
    bus.unsubscribe(sub)  # idempotent


async def test_context_manager_unsubscribes() -> None:
    bus = EventBus()
    async with bus.subscribe("call.*") as sub:
        assert bus.subscriptions == (sub,)
    assert bus.subscriptions == () and sub.closed


@given(
    types=st.lists(st.sampled_from(list(EventType)), max_size=30),
    pattern=st.sampled_from(
        ["*", "call.*", "prompt.*", "*.ended", "call.e*", "service.?econciled"]
    ),
)
def test_subscription_receives_exactly_the_matching_events_in_order(
    types: list[EventType], pattern: str
) -> None:
    bus = EventBus()
    sub = bus.subscribe(pattern, maxsize=100)
    events = [ev(t, n) for n, t in enumerate(types)]
    for e in events:
        bus.publish(e)
    assert drain(sub) == [e for e in events if fnmatchcase(e.type, pattern)]
