"""Routing indexes: waiting calls by requirement, available seats by skill, ranks by key.

Owns the data structures only; it decides nothing about *when* to route (that is ``acd.core``).

- ``CallBucket``: the waiting calls of one queue that currently need the same skills, in a heap
  ordered by their time-invariant key ``(arrival - priority * aging_s_per_level, seq)``. The
  best call for a seat is the smallest head among the buckets the seat qualifies for; the number
  of buckets is small (queues x distinct requirements x relaxation stages), not the number of
  calls.
- ``SeatPool``: available seats in buckets ``skill -> level -> region``, each with two heaps
  (by idle time, and by calls handled then idle time). The best seat for a call is the smallest
  head among the buckets of its primary skill at or above the required level in the allowed
  regions; further required skills are checked on that head, and only when it fails do we scan.
- ``RankList``: the keys of one queue's waiting calls in a sorted list, so a caller's position
  (rank) is a bisection, not a count.

Removal is lazy: every insertion gets a fresh token; an entry whose token is no longer the
record's token is dead and is dropped when it reaches a heap's top, or when the heap is rebuilt
because dead entries outnumber live ones.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from acd.config import QueueConfig, SeatConfig
from acd.model import CallState, SeatState

Requirement = tuple[tuple[str, int], ...]  # primary skill first, then the others sorted
ANY_SEAT: Requirement = (("*", 1),)  # every seat has the pseudo-skill "*" at level 1


@dataclass(slots=True, eq=False)
class SeatRec:
    seat_id: str
    cfg: SeatConfig
    ordinal: int
    skills: dict[str, int]  # config skills plus {"*": 1}
    region: str
    profile: tuple[Any, ...]  # (region, skills): seats with one profile qualify alike
    state: SeatState = SeatState.OFFLINE
    reason: str | None = None
    call_id: str | None = None
    pending_pause: str | None = None
    last_call_end: float = 0.0
    calls: int = 0
    avail_token: int = 0
    wrap_deadline: float | None = None
    timer_version: int = 0
    serves: tuple[str, ...] = ()  # queues whose topic skill this seat has, in their regions


@dataclass(slots=True, eq=False)
class CallRec:
    call_id: str
    queue: str
    priority: int
    needed: dict[str, int]
    origin: str | None
    caller_key: str | None
    entered_at: float
    queue_entered_at: float = 0.0
    key: tuple[float, int] = (0.0, 0)
    state: CallState = CallState.WAITING
    stage: int = 0
    reqs: tuple[Requirement, ...] = ()
    token: int = 0  # 0 = not in a bucket
    ringing: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)  # seats whose offer was withdrawn
    seat_id: str | None = None  # connected seat
    dialing: bool = False  # OFFERED means "a seat is reserved and the callback is dialled"
    offered_at: float = 0.0
    ring_deadline: float = 0.0
    connected_at: float = 0.0
    callback: bool = False
    cb_attempts: int = 0
    retry_at: float = 0.0
    next_announce: float | None = None
    choice_offered: bool = False
    overflow_skipped: bool = False
    target_seat: str | None = None
    moved: bool = False  # overflowed or transferred at least once
    timer_version: int = 0

    @property
    def required(self) -> Requirement:
        if self.target_seat is not None:
            return ((f"@{self.target_seat}", 1),)
        return self.reqs[self.stage]


def requirements(queue: QueueConfig, needed: dict[str, int]) -> tuple[Requirement, ...]:
    """The skill requirement at stage 0 and after each relaxation step of the queue."""

    def norm(levels: dict[str, int]) -> Requirement:
        if not levels:
            return ANY_SEAT
        primary = queue.skill if queue.skill in levels else min(levels)
        rest = sorted((k, v) for k, v in levels.items() if k != primary)
        return ((primary, levels[primary]), *rest)

    stages = [norm(needed)]
    for step in queue.relaxation:
        if step.any_seat:
            stages.append(ANY_SEAT)
        else:
            stages.append(norm({k: max(1, v - step.level_drop) for k, v in needed.items()}))
    return tuple(stages)


def qualifies(seat: SeatRec, queue: QueueConfig, req: Requirement) -> bool:
    if queue.regions is not None and seat.region not in queue.regions:
        return False
    skills = seat.skills
    return all(skills.get(name, 0) >= level for name, level in req)


class CallBucket:
    """Waiting calls with one requirement in one queue, smallest key first."""

    __slots__ = ("heap", "live")

    def __init__(self) -> None:
        self.heap: list[tuple[float, int, int, str]] = []
        self.live = 0

    def push(self, call: CallRec) -> None:
        heapq.heappush(self.heap, (call.key[0], call.key[1], call.token, call.call_id))
        self.live += 1

    def discard(self, valid: Callable[[tuple[float, int, int, str]], bool]) -> None:
        self.live -= 1
        if self.live == 0:
            self.heap.clear()
        elif len(self.heap) > 4 * self.live + 32:
            self.heap = [e for e in self.heap if valid(e)]
            heapq.heapify(self.heap)

    def peek(
        self, valid: Callable[[tuple[float, int, int, str]], bool]
    ) -> tuple[float, int, int, str] | None:
        heap = self.heap
        while heap and not valid(heap[0]):
            heapq.heappop(heap)
        return heap[0] if heap else None

    def entries(
        self, valid: Callable[[tuple[float, int, int, str]], bool]
    ) -> Iterator[tuple[float, int, int, str]]:
        return (e for e in self.heap if valid(e))


class RankList:
    """Sorted keys of a queue's waiting calls: position = bisection."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: list[tuple[float, int]] = []

    def add(self, key: tuple[float, int]) -> None:
        bisect.insort(self.keys, key)

    def remove(self, key: tuple[float, int]) -> None:
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i]

    def position(self, key: tuple[float, int]) -> int:
        """1-based rank; for a key not in the list, the rank it would have."""
        return bisect.bisect_left(self.keys, key) + 1

    def __len__(self) -> int:
        return len(self.keys)


class _PoolBucket:
    __slots__ = ("few", "idle", "live")

    def __init__(self) -> None:
        self.idle: list[tuple[Any, ...]] = []  # (last_call_end, ordinal, token, seat_id)
        self.few: list[tuple[Any, ...]] = []  # (calls, last_call_end, ordinal, token, seat_id)
        self.live = 0


class SeatPool:
    """Available seats indexed by skill, level and region."""

    def __init__(self, seats: dict[str, SeatRec]) -> None:
        self._seats = seats
        self._tree: dict[str, dict[int, dict[str, _PoolBucket]]] = {}
        self._token = 0
        self.available = 0

    def _valid(self, entry: tuple[Any, ...]) -> bool:
        seat = self._seats.get(entry[-1])
        return seat is not None and seat.avail_token == entry[-2]

    def add(self, seat: SeatRec) -> None:
        self._token += 1
        seat.avail_token = tok = self._token
        idle = (seat.last_call_end, seat.ordinal, tok, seat.seat_id)
        few = (seat.calls, seat.last_call_end, seat.ordinal, tok, seat.seat_id)
        for skill, level in seat.skills.items():
            by_region = self._tree.setdefault(skill, {}).setdefault(level, {})
            bucket = by_region.get(seat.region)
            if bucket is None:
                bucket = by_region[seat.region] = _PoolBucket()
            heapq.heappush(bucket.idle, idle)
            heapq.heappush(bucket.few, few)
            bucket.live += 1
        self.available += 1

    def remove(self, seat: SeatRec) -> None:
        self._token += 1
        seat.avail_token = self._token  # every entry of this seat is now dead
        for skill, level in seat.skills.items():
            bucket = self._tree[skill][level][seat.region]
            bucket.live -= 1
            if bucket.live == 0:
                bucket.idle.clear()
                bucket.few.clear()
            elif len(bucket.idle) > 4 * bucket.live + 32:
                for name in ("idle", "few"):
                    heap = [e for e in getattr(bucket, name) if self._valid(e)]
                    heapq.heapify(heap)
                    setattr(bucket, name, heap)
        self.available -= 1

    def _buckets(
        self, req: Requirement, regions: tuple[str, ...] | None
    ) -> Iterator[tuple[int, _PoolBucket]]:
        skill, min_level = req[0]
        for level, by_region in self._tree.get(skill, {}).items():
            if level < min_level:
                continue
            if regions is None:
                for bucket in by_region.values():
                    if bucket.live:
                        yield level, bucket
            else:
                for region in regions:
                    bucket = by_region.get(region)
                    if bucket is not None and bucket.live:
                        yield level, bucket

    def candidates(self, req: Requirement, regions: tuple[str, ...] | None) -> list[SeatRec]:
        """Every available seat that qualifies (a scan: for round-robin, ring-all, fallbacks)."""
        rest = req[1:]
        found = []
        for _level, bucket in self._buckets(req, regions):
            for entry in bucket.idle:
                if self._valid(entry):
                    seat = self._seats[entry[-1]]
                    if all(seat.skills.get(n, 0) >= lv for n, lv in rest):
                        found.append(seat)
        return found

    def best(
        self, req: Requirement, regions: tuple[str, ...] | None, strategy: str
    ) -> SeatRec | None:
        """Best available seat for longest_idle, fewest_calls or skill_weighted."""
        few = strategy == "fewest_calls"
        weighted = strategy == "skill_weighted"
        best_key: tuple[Any, ...] | None = None
        for level, bucket in self._buckets(req, regions):
            heap = bucket.few if few else bucket.idle
            while heap and not self._valid(heap[0]):
                heapq.heappop(heap)
            if not heap:
                continue
            key = (-level, *heap[0]) if weighted else heap[0]
            if best_key is None or key < best_key:
                best_key = key
        if best_key is None:
            return None
        seat = self._seats[best_key[-1]]
        rest = req[1:]
        if all(seat.skills.get(n, 0) >= lv for n, lv in rest):
            return seat
        # The best seat by the primary skill lacks another required skill: scan.
        cands = self.candidates(req, regions)
        if not cands:
            return None
        return min(cands, key=lambda s: self.sort_key(s, req[0][0], strategy))

    @staticmethod
    def sort_key(seat: SeatRec, primary: str, strategy: str) -> tuple[Any, ...]:
        if strategy == "fewest_calls":
            return (seat.calls, seat.last_call_end, seat.ordinal)
        if strategy == "skill_weighted":
            return (-seat.skills.get(primary, 0), seat.last_call_end, seat.ordinal)
        return (seat.last_call_end, seat.ordinal)
