"""A pool of pjsua2 phone worker processes for simulated callers: at most 4 calls each.

pjsua-python is compiled for at most 4 calls per process (shared/RUNTIME.md), so a simulator
with hundreds of callers needs a process per 4 calls. This module owns those processes: it
starts them on demand, hands out call slots (``acquire`` -> :class:`Lease`), takes them back
(``release``), and reaps workers that are idle or worn out.

Why workers are retired: a worker keeps every finished ``Call`` object alive until it exits
(freeing one earlier lets pjsua hang up whatever call reuses its slot), so its memory grows
with every call. After ``calls_per_worker_life`` calls a worker gets no new call and is stopped
once its last call ends; a fresh one takes its place.

Each worker gets its own block of RTP ports from ``rtp_base`` upwards (outside Asterisk's range
and outside the ephemeral range by default), recycled when the worker stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field

from sim.phone import Phone

CALLS_PER_WORKER = 4  # pjsua-python's compiled limit
RTP_BLOCK = 40  # ports per worker (phone_worker.RTP_PORT_RANGE)
DEFAULT_RTP_BASE = 61000
DEFAULT_RTP_LAST = 65500


@dataclass
class Worker:
    phone: Phone
    rtp_port: int
    active: int = 0
    total: int = 0
    idle_since: float = field(default_factory=time.monotonic)
    retiring: bool = False


@dataclass(frozen=True)
class Lease:
    """One call slot on one worker; give it back with ``PhonePool.release``."""

    worker: Worker

    @property
    def phone(self) -> Phone:
        return self.worker.phone


class PortBlocks:
    """RTP port blocks for workers (one block per live worker)."""

    def __init__(self, first: int, last: int, size: int = RTP_BLOCK) -> None:
        self._free = list(range(first, last - size + 2, size))
        self._free.reverse()

    def take(self) -> int:
        if not self._free:
            raise RuntimeError("no RTP port block left for another phone worker")
        return self._free.pop()

    def give(self, base: int) -> None:
        self._free.append(base)


class PhonePool:
    """Caller phone workers, ≤ 4 calls each, started and reaped as the load needs."""

    def __init__(
        self,
        *,
        name: str = "caller",
        ports: PortBlocks | None = None,
        calls_per_worker: int = CALLS_PER_WORKER,
        calls_per_worker_life: int = 200,
        idle_reap_s: float = 30.0,
        log_level: int = 1,
    ) -> None:
        if not 1 <= calls_per_worker <= CALLS_PER_WORKER:
            raise ValueError(f"calls_per_worker must be 1..{CALLS_PER_WORKER}")
        self.name = name
        self.ports = ports or PortBlocks(DEFAULT_RTP_BASE, DEFAULT_RTP_LAST)
        self.calls_per_worker = calls_per_worker
        self.calls_per_worker_life = calls_per_worker_life
        self.idle_reap_s = idle_reap_s
        self.log_level = log_level
        self.workers: list[Worker] = []
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._stopping: set[asyncio.Task[None]] = set()
        self.started = 0
        self.reaped = 0

    @property
    def active_calls(self) -> int:
        return sum(w.active for w in self.workers)

    async def acquire(self) -> Lease:
        """A free call slot, on the busiest worker that has one (fewest processes)."""
        async with self._lock:
            candidates = [
                w
                for w in self.workers
                if not w.retiring and w.active < self.calls_per_worker and _alive(w)
            ]
            if candidates:
                worker = max(candidates, key=lambda w: w.active)
            else:
                worker = await self._spawn()
            worker.active += 1
            worker.total += 1
            if worker.total >= self.calls_per_worker_life:
                worker.retiring = True
            return Lease(worker)

    def release(self, lease: Lease) -> None:
        worker = lease.worker
        worker.active -= 1
        if worker.active == 0:
            worker.idle_since = time.monotonic()
            if worker.retiring or not _alive(worker):
                self._retire(worker)

    async def _spawn(self) -> Worker:
        port = self.ports.take()
        try:
            phone = await Phone.spawn(
                f"{self.name}{next(self._ids)}", rtp_port=port, log_level=self.log_level
            )
        except BaseException:
            self.ports.give(port)
            raise
        worker = Worker(phone, port)
        self.workers.append(worker)
        self.started += 1
        return worker

    def _retire(self, worker: Worker) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
        self.reaped += 1

        async def stop() -> None:
            with contextlib.suppress(Exception):
                await worker.phone.stop()
            self.ports.give(worker.rtp_port)

        task = asyncio.create_task(stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def reap_idle(self, keep: int = 1) -> int:
        """Stop workers idle for ``idle_reap_s`` (keeping ``keep`` warm); returns how many."""
        now = time.monotonic()
        idle = [w for w in self.workers if w.active == 0 and now - w.idle_since > self.idle_reap_s]
        for worker in idle[: max(0, len(idle) - keep)] if keep else idle:
            self._retire(worker)
        return len(idle)

    async def close(self) -> None:
        for worker in list(self.workers):
            self._retire(worker)
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)


def _alive(worker: Worker) -> bool:
    return worker.phone.proc.returncode is None
