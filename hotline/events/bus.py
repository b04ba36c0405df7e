"""In-process publish/subscribe for asyncio: call events to the agent desk, wallboard, KPIs.

Theory of operation
-------------------
``EventBus.publish(event)`` hands ``event`` to every subscription whose pattern matches
``event.type`` (``fnmatch`` style, case-sensitive: ``"*"``, ``"call.*"``, ``"queue.*"``).
Publishing never blocks and never raises because of a subscriber: each subscription has its
own bounded queue, and when a slow subscriber's queue is full the *oldest* queued event is
dropped to make room. The subscription is then marked ``lagging`` (and ``dropped`` counts
the losses) until its consumer has drained the queue; a consumer that needs every event
(e.g. a wallboard that keeps counters) checks ``lagging`` / ``dropped`` and resynchronises
from the database.

A subscription is an async iterator (``async for event in sub``) and an async context manager
that unsubscribes on exit. Iteration ends after ``unsubscribe`` / ``close``.

The bus is not thread-safe: publish and consume on the event loop's thread. It is not
durable either: the call-event log is the record; the bus is only for live views.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable
from fnmatch import fnmatchcase
from typing import Any, Protocol

log = logging.getLogger(__name__)


class HasType(Protocol):
    @property
    def type(self) -> Any: ...


class Subscription:
    """One subscriber's bounded queue of matching events."""

    def __init__(self, bus: EventBus, patterns: tuple[str, ...], maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._bus = bus
        self.patterns = patterns
        self.maxsize = maxsize
        self._queue: deque[Any] = deque()
        self._ready = asyncio.Event()
        self.closed = False
        self.dropped = 0  # events lost because this subscriber was too slow (ever)
        self.lagging = False  # dropped something since the queue was last drained

    def matches(self, type_: str) -> bool:
        return any(fnmatchcase(type_, p) for p in self.patterns)

    def _offer(self, event: Any) -> None:
        if len(self._queue) >= self.maxsize:
            self._queue.popleft()
            self.dropped += 1
            if not self.lagging:
                log.warning(
                    "event subscriber %s is lagging: dropping its oldest events", self.patterns
                )
            self.lagging = True
        self._queue.append(event)
        self._ready.set()

    def qsize(self) -> int:
        return len(self._queue)

    def get_nowait(self) -> Any:
        """The next event; raises ``asyncio.QueueEmpty`` when none is queued."""
        if not self._queue:
            raise asyncio.QueueEmpty
        event = self._queue.popleft()
        if not self._queue:
            self.lagging = False
        return event

    async def get(self) -> Any:
        """Wait for the next event; raises ``StopAsyncIteration`` once closed and drained."""
        while not self._queue:
            if self.closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self.get_nowait()

    def close(self) -> None:
        """Stop receiving; queued events can still be read, then iteration ends."""
        self._bus.unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        return await self.get()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Subscription({self.patterns}, queued={len(self._queue)}, dropped={self.dropped}"
            f"{', lagging' if self.lagging else ''}{', closed' if self.closed else ''})"
        )


class EventBus:
    """Fan-out of events to subscriptions selected by type pattern."""

    def __init__(self, *, default_maxsize: int = 1000) -> None:
        self.default_maxsize = default_maxsize
        self._subscriptions: list[Subscription] = []
        self.published = 0

    def subscribe(
        self, pattern: str | Iterable[str] = "*", *, maxsize: int | None = None
    ) -> Subscription:
        """A new subscription to events whose type matches ``pattern`` (or any of several)."""
        patterns = (pattern,) if isinstance(pattern, str) else tuple(pattern)
        if not patterns:
            raise ValueError("subscribe needs at least one pattern")
        sub = Subscription(self, patterns, maxsize or self.default_maxsize)
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, subscription: Subscription) -> None:
        """Remove ``subscription``; its iterator ends once its queue is drained. Idempotent."""
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)
        subscription.closed = True
        subscription._ready.set()

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subscriptions)

    def publish(self, event: HasType) -> int:
        """Queue ``event`` for every matching subscription; return how many matched."""
        self.published += 1
        type_ = str(event.type)
        matched = 0
        for sub in self._subscriptions:
            if sub.matches(type_):
                sub._offer(event)
                matched += 1
        return matched

    def close(self) -> None:
        """Unsubscribe everyone (at shutdown), so their ``async for`` loops end."""
        for sub in list(self._subscriptions):
            self.unsubscribe(sub)
