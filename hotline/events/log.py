"""The call-event log: the ONE writer of the ``call_events`` table.

Theory of operation
-------------------
``append()`` is synchronous and cheap, and is called from the event loop by whoever saw
something happen. It validates the type and data (a bug raises at once, in the caller), gives
the event the call's next ``seq`` (1, 2, 3 ... per call, kept in memory) and a UTC timestamp,
publishes it on the bus for live views, and queues it. It never touches the database, so it
never raises or waits because the database is in trouble.

A background task (``start()``) takes queued events in batches (up to ``batch_size``, or what
arrived within ``flush_interval``) and inserts each batch in one transaction in a worker thread.
Inserts are ``INSERT ... ON CONFLICT (call_id, seq) DO NOTHING``: writing an event twice stores
it once, which is what makes every retry and replay below safe.

When a write fails the batch is kept and retried with exponential backoff (``retry_initial``
doubling up to ``retry_cap``); the outage is logged once when it starts and once when it
ends. Events appended meanwhile wait in memory behind the failed batch. If that backlog grows
past ``max_backlog`` it is moved to a spool file (JSON lines) in ``spool_dir`` so memory stays
bounded. ``close()`` writes what it can; if the database is down (or ``close_timeout`` passes)
everything unwritten goes to a spool file. ``start()`` picks up spool files left by earlier
runs. Spool files are replayed by the writer before newer in-memory events, and deleted only
after all their events are in the database. So the write order is the append order, across
outages, spills and restarts.

Sequence numbers live in memory; a process that adopts a call after a restart must call
``await resume_call(call_id)`` before appending to it, which continues from the highest
``seq`` in the database (and in any spool file). A ``seq`` used twice would make the second
event look like a replay and be skipped: the log warns when a first write hits duplicates.
Calls idle for ``seq_idle_ttl`` (default a day) are forgotten to bound memory.

Not thread-safe: use it from the event loop thread; it does its own threading.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from hotline.db.models import CallEventRow
from hotline.events.bus import EventBus
from hotline.events.types import (
    CallEvent,
    EventType,
    InvalidEventData,
    check_data,
    parse_event_type,
)

log = logging.getLogger(__name__)

_TABLE = CallEventRow.__table__
MAX_CALL_ID = 64
SPOOL_SUFFIX = ".jsonl"


class EventLogClosed(RuntimeError):
    """``append`` after ``close()``: a shutdown-order bug in the caller."""


@dataclass(frozen=True)
class LogStats:
    appended: int  # events appended by this process
    written: int  # of those, confirmed in the database
    duplicates: int  # rows skipped because (call_id, seq) was already stored
    queued: int  # in memory, not yet written (including a batch being retried)
    spool_files: int  # spool files waiting to be replayed
    spilled: int  # events this process moved to spool files
    healthy: bool  # False while writes are failing
    outages: int  # write outages since start
    failed_writes: int  # write attempts that failed (each retry counts)
    last_error: str | None


# --- database helpers (run in worker threads) ---------------------------------------------


def _insert_stmt(engine: Engine) -> Any:
    name = engine.dialect.name
    if name == "postgresql":
        ins = postgresql.insert(_TABLE)
    elif name == "sqlite":
        ins = sqlite.insert(_TABLE)
    else:  # pragma: no cover - make_engine refuses other databases
        raise ValueError(f"unsupported dialect {name}")
    return ins.on_conflict_do_nothing(index_elements=["call_id", "seq"]).returning(_TABLE.c.seq)


def _row(event: CallEvent) -> dict[str, Any]:
    return {
        "call_id": event.call_id,
        "seq": event.seq,
        "ts": event.ts,
        "type": str(event.type),
        "data": event.data,
    }


# PostgreSQL: one statement over five arrays. SQLAlchemy's multi-row VALUES form makes
# psycopg re-parse a huge statement per batch (measured: 3x slower on 500-row batches).
_PG_INSERT = (
    f"INSERT INTO {_TABLE.name} (call_id, seq, ts, type, data) "
    "SELECT c, s, t, y, d::jsonb FROM unnest("
    "%(c)s::varchar[], %(s)s::int[], %(t)s::timestamptz[], %(y)s::varchar[], %(d)s::text[]"
    ") AS u(c, s, t, y, d) "
    "ON CONFLICT (call_id, seq) DO NOTHING RETURNING seq"
)


def insert_events(engine: Engine, events: Sequence[CallEvent]) -> int:
    """Insert ``events`` in one transaction, skipping ones already stored; return how many new."""
    if not events:
        return 0
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            params = {
                "c": [e.call_id for e in events],
                "s": [e.seq for e in events],
                "t": [e.ts for e in events],
                "y": [str(e.type) for e in events],
                "d": [json.dumps(e.data, ensure_ascii=False) for e in events],
            }
            result = conn.exec_driver_sql(_PG_INSERT, params)
        else:
            result = conn.execute(_insert_stmt(engine), [_row(e) for e in events])
        return len(result.all())


def max_seq(engine: Engine, call_id: str) -> int:
    """The highest stored ``seq`` of ``call_id`` (0 when the call has no events)."""
    with engine.connect() as conn:
        value = conn.execute(
            select(func.max(_TABLE.c.seq)).where(_TABLE.c.call_id == call_id)
        ).scalar()
    return int(value or 0)


def _from_row(row: Any) -> CallEvent:
    type_: EventType | str
    try:
        type_ = EventType(row.type)
    except ValueError:
        type_ = row.type
    return CallEvent(row.call_id, row.seq, row.ts, type_, dict(row.data or {}))


def events_for_call(engine: Engine, call_id: str) -> list[CallEvent]:
    """All stored events of ``call_id``, ordered by ``seq``."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(_TABLE).where(_TABLE.c.call_id == call_id).order_by(_TABLE.c.seq)
        ).all()
    return [_from_row(r) for r in rows]


def events_between(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    types: Sequence[EventType | str] | None = None,
) -> list[CallEvent]:
    """Stored events with ``start <= ts < end`` (optionally of some types), in time order."""
    query = select(_TABLE).where(_TABLE.c.ts >= start, _TABLE.c.ts < end)
    if types is not None:
        query = query.where(_TABLE.c.type.in_([str(t) for t in types]))
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(_TABLE.c.ts, _TABLE.c.id)).all()
    return [_from_row(r) for r in rows]


def calls_between(
    engine: Engine,
    start: datetime,
    end: datetime,
    *,
    type: EventType | str = EventType.CALL_ENTERED,
) -> list[str]:
    """Ids of the calls with a ``type`` event (default: entered) in ``[start, end)``, by time.

    Uses the (type, ts) index; a call counts in the period in which it entered.
    """
    query = (
        select(_TABLE.c.call_id, func.min(_TABLE.c.ts).label("first"))
        .where(_TABLE.c.type == str(type), _TABLE.c.ts >= start, _TABLE.c.ts < end)
        .group_by(_TABLE.c.call_id)
        .order_by("first", _TABLE.c.call_id)
    )
    with engine.connect() as conn:
        return [r.call_id for r in conn.execute(query)]


# --- spool files ---------------------------------------------------------------------------


def _read_spool(path: Path) -> list[CallEvent]:
    events: list[CallEvent] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                events.append(CallEvent.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                # A torn last line from a crash mid-write: the rest of the file is good.
                log.warning("spool %s line %d unreadable, skipped: %s", path, lineno, exc)
    return events


def _replay_spool(engine: Engine, path: Path, batch_size: int) -> tuple[int, int]:
    """Write a spool file's events (idempotently), then delete it. Returns (events, new rows)."""
    events = _read_spool(path)
    inserted = 0
    for i in range(0, len(events), batch_size):
        inserted += insert_events(engine, events[i : i + batch_size])
    path.unlink()
    return len(events), inserted


# --- the log -------------------------------------------------------------------------------


class CallEventLog:
    """Buffered, retrying, idempotent writer of call events (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        *,
        spool_dir: Path,
        batch_size: int = 500,
        flush_interval: float = 0.05,
        bus: EventBus | None = None,
        max_backlog: int = 100_000,
        retry_initial: float = 0.05,
        retry_cap: float = 5.0,
        close_timeout: float = 10.0,
        seq_idle_ttl: float = 24 * 3600.0,
    ) -> None:
        if batch_size < 1 or max_backlog < batch_size:
            raise ValueError("need 1 <= batch_size <= max_backlog")
        self.engine = engine
        self.spool_dir = Path(spool_dir)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.bus = bus
        self.max_backlog = max_backlog
        self.retry_initial = retry_initial
        self.retry_cap = retry_cap
        self.close_timeout = close_timeout
        self.seq_idle_ttl = seq_idle_ttl
        # Service-wide events (service.*) use a per-boot pseudo call, so their seq never
        # needs the database to continue after a restart.
        self.service_call_id = f"service:{uuid4().hex[:16]}"

        self._seq: dict[str, int] = {}
        self._touched: dict[str, float] = {}
        self._last_sweep = time.monotonic()
        self._pending: deque[CallEvent] = deque()
        self._inflight: list[CallEvent] = []
        self._inflight_attempts = 0
        # (path, events of this run in it): replayed oldest first, before _pending.
        self._spool_files: deque[tuple[Path, int]] = deque()
        self._spool_counter = itertools.count()

        self._appended = 0
        self._done = 0  # events of this run confirmed written (in append order)
        self._duplicates = 0
        self._spilled = 0
        self._outages = 0
        self._failed_writes = 0
        self._healthy = True
        self._outage_started = 0.0
        self._last_error: str | None = None

        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # there is work
        self._batch_ready = asyncio.Event()  # a full batch, a flush or close: stop gathering
        self._progress = asyncio.Event()  # something was written
        self._closing = asyncio.Event()
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Pick up spool files from earlier runs and start the background writer."""
        if self._task is not None:
            raise RuntimeError("CallEventLog already started")
        found = await asyncio.to_thread(self._scan_spool_dir)
        for path, last_seqs in found:
            self._spool_files.append((path, 0))
            for call_id, seq in last_seqs.items():
                self._bump_seq(call_id, seq)
        if found:
            log.info("call-event log: %d spool file(s) to replay", len(found))
            self._wake.set()
        self._task = asyncio.create_task(self._run(), name="call-event-log writer")
        self._task.add_done_callback(self._writer_done)

    async def close(self) -> None:
        """Write what can be written; spool the rest. The log accepts no events afterwards."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._wake.set()
        self._batch_ready.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.close_timeout)
            except TimeoutError:
                log.warning("call-event log: writer did not finish in %gs", self.close_timeout)
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        leftovers = [*self._inflight, *self._pending]
        self._inflight = []
        self._pending.clear()
        if leftovers:
            path = await asyncio.to_thread(self._write_spool, leftovers)
            log.warning(
                "call-event log closed with %d unwritten events: spooled to %s",
                len(leftovers),
                path,
            )

    async def __aenter__(self) -> CallEventLog:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the producer side --------------------------------------------------------------

    def append(
        self,
        call_id: str,
        type: EventType | str,
        data: Mapping[str, Any] | None = None,
        ts: datetime | None = None,
    ) -> CallEvent:
        """Record one event of ``call_id``; returns it with its ``seq`` and ``ts``.

        Raises (a caller bug) ``UnknownEventType``, ``InvalidEventData``, ``ValueError`` for a
        bad call id or naive ``ts``, ``EventLogClosed`` after close. Never for database trouble.
        """
        if self._closed:
            raise EventLogClosed(f"call-event log is closed; dropped {type} for {call_id}")
        type_ = parse_event_type(type)
        if not call_id or len(call_id) > MAX_CALL_ID:
            raise ValueError(f"call_id must be 1..{MAX_CALL_ID} characters, got {call_id!r}")
        if data is None:
            payload: dict[str, Any] = {}
        elif not isinstance(data, Mapping):
            raise InvalidEventData(f"{type_} data must be a mapping, got {data!r}")
        else:
            try:
                # A round trip: the bus sees exactly what the database will return, and an
                # unserialisable value fails here instead of poisoning a batch later.
                payload = json.loads(json.dumps(data, ensure_ascii=False))
            except (TypeError, ValueError) as exc:
                raise InvalidEventData(f"{type_} data is not JSON-serialisable: {exc}") from exc
        check_data(type_, payload)
        if ts is None:
            ts = datetime.now(UTC)
        elif ts.tzinfo is None or ts.utcoffset() is None:
            raise ValueError(f"ts must be timezone-aware, got {ts!r}")
        else:
            ts = ts.astimezone(UTC)

        seq = self._seq.get(call_id, 0) + 1
        self._seq[call_id] = seq
        now = time.monotonic()
        self._touched[call_id] = now
        event = CallEvent(call_id, seq, ts, type_, payload)
        self._appended += 1
        self._pending.append(event)
        if len(self._pending) >= self.batch_size:
            self._batch_ready.set()
        self._wake.set()
        if len(self._pending) >= self.max_backlog:
            self._spill()
        if now - self._last_sweep > 60.0:
            self._forget_idle(now)
        if self.bus is not None:
            self.bus.publish(event)
        return event

    async def resume_call(self, call_id: str, *, retry_for: float = 30.0) -> int:
        """Continue ``call_id``'s sequence after the stored events; returns its last ``seq``.

        Retries while the database is unreachable, up to ``retry_for`` seconds, then raises.
        """
        deadline = time.monotonic() + retry_for
        delay = self.retry_initial
        while True:
            try:
                stored = await asyncio.to_thread(max_seq, self.engine, call_id)
                break
            except Exception:
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(self.retry_cap, delay * 2)
        self._seq[call_id] = last = max(self._seq.get(call_id, 0), stored)
        self._touched[call_id] = time.monotonic()
        return last

    def last_seq(self, call_id: str) -> int:
        """The last ``seq`` given to ``call_id`` by this process (0 if none)."""
        return self._seq.get(call_id, 0)

    def forget_call(self, call_id: str) -> None:
        """Drop ``call_id``'s sequence counter (its events stay queued and get written)."""
        self._seq.pop(call_id, None)
        self._touched.pop(call_id, None)

    async def flush(self) -> None:
        """Wait until everything appended so far (and every spool file) is in the database.

        Waits as long as it takes (an outage can be long): bound it with ``asyncio.timeout``.
        """
        target = self._appended
        self._batch_ready.set()
        self._wake.set()

        while not (self._done >= target and not self._spool_files):
            if self._task is None or self._task.done():
                raise RuntimeError("call-event log writer is not running")
            self._progress.clear()
            await self._progress.wait()

    @property
    def backlog(self) -> int:
        """Events appended by this process and not yet in the database (memory or spool)."""
        return self._appended - self._done

    @property
    def healthy(self) -> bool:
        """False while database writes are failing."""
        return self._healthy

    @property
    def stats(self) -> LogStats:
        return LogStats(
            appended=self._appended,
            written=self._done,
            duplicates=self._duplicates,
            queued=len(self._inflight) + len(self._pending),
            spool_files=len(self._spool_files),
            spilled=self._spilled,
            healthy=self._healthy,
            outages=self._outages,
            failed_writes=self._failed_writes,
            last_error=self._last_error,
        )

    # -- internals ------------------------------------------------------------------------

    def _bump_seq(self, call_id: str, seq: int) -> None:
        if seq > self._seq.get(call_id, 0):
            self._seq[call_id] = seq

    def _forget_idle(self, now: float) -> None:
        self._last_sweep = now
        cutoff = now - self.seq_idle_ttl
        for call_id in [c for c, t in self._touched.items() if t < cutoff]:
            self.forget_call(call_id)

    def _spill(self) -> None:
        """Move the in-memory backlog to a spool file (called on the loop: rare, bounded)."""
        events = list(self._pending)
        try:
            path = self._write_spool(events)
        except OSError:
            log.exception("call-event log: cannot spool %d events; keeping them", len(events))
            return
        self._pending.clear()
        self._spool_files.append((path, len(events)))
        self._spilled += len(events)
        log.warning(
            "call-event log: backlog of %d events moved to %s until the database is back",
            len(events),
            path,
        )

    def _write_spool(self, events: Sequence[CallEvent]) -> Path:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"events-{stamp}-{os.getpid()}-{next(self._spool_counter):06d}"
        tmp = self.spool_dir / (name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for event in events:
                fh.write(json.dumps(event.to_json(), ensure_ascii=False))
                fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        path = tmp.with_suffix(SPOOL_SUFFIX)
        tmp.rename(path)
        return path

    def _scan_spool_dir(self) -> list[tuple[Path, dict[str, int]]]:
        if not self.spool_dir.exists():
            return []
        # A .tmp file is a spill torn by a crash; its complete lines are still good.
        for tmp in self.spool_dir.glob("events-*.tmp"):
            tmp.rename(tmp.with_suffix(SPOOL_SUFFIX))
        found = []
        for path in sorted(self.spool_dir.glob(f"events-*{SPOOL_SUFFIX}")):
            last: dict[str, int] = {}
            for event in _read_spool(path):
                last[event.call_id] = max(last.get(event.call_id, 0), event.seq)
            found.append((path, last))
        return found

    def _has_work(self) -> bool:
        return bool(self._inflight or self._pending or self._spool_files)

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("call-event log writer crashed", exc_info=task.exception())
        self._progress.set()  # wake flush() waiters so they see the writer is gone

    async def _run(self) -> None:
        failures = 0
        while True:
            closing = self._closing.is_set()
            if closing and (not self._healthy or (not self._inflight and not self._pending)):
                return  # spool files stay for the next start; close() spools the rest
            if not self._inflight and self._spool_files and not closing:
                path, count = self._spool_files[0]
                try:
                    total, inserted = await asyncio.to_thread(
                        _replay_spool, self.engine, path, self.batch_size
                    )
                except Exception as exc:
                    failures += 1
                    self._failed(exc)
                    await self._backoff(failures)
                    continue
                failures = 0
                self._recovered()
                self._spool_files.popleft()
                self._done += count
                self._duplicates += total - inserted
                log.info(
                    "call-event log: replayed %s (%d events, %d new)", path.name, total, inserted
                )
                self._progress.set()
                continue
            if not self._inflight:
                if not self._pending:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                if len(self._pending) < self.batch_size and not closing:
                    # Gather a batch: one transaction per flush_interval, not per event.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._batch_ready.wait(), self.flush_interval)
                take = min(self.batch_size, len(self._pending))
                self._inflight = [self._pending.popleft() for _ in range(take)]
                self._inflight_attempts = 0
                if not self._pending:
                    self._batch_ready.clear()
            batch = self._inflight
            self._inflight_attempts += 1
            try:
                inserted = await asyncio.to_thread(insert_events, self.engine, batch)
            except Exception as exc:
                failures += 1
                self._failed(exc)
                await self._backoff(failures)
                continue
            failures = 0
            self._recovered()
            skipped = len(batch) - inserted
            if skipped:
                self._duplicates += skipped
                if self._inflight_attempts == 1:
                    # Not a retry, so these (call_id, seq) were stored by someone else: a call
                    # adopted without resume_call(), or a second writer.
                    log.warning(
                        "call-event log: %d new events already stored (e.g. %s seq %d); "
                        "was resume_call() skipped?",
                        skipped,
                        batch[0].call_id,
                        batch[0].seq,
                    )
            self._inflight = []
            self._done += len(batch)
            self._progress.set()

    def _failed(self, exc: Exception) -> None:
        self._failed_writes += 1
        self._last_error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if self._healthy:
            self._healthy = False
            self._outages += 1
            self._outage_started = time.monotonic()
            log.warning(
                "call-event log: database write failed, buffering and retrying: %s",
                self._last_error,
            )
        else:
            log.debug("call-event log: write still failing: %s", self._last_error)

    def _recovered(self) -> None:
        if not self._healthy:
            self._healthy = True
            log.warning(
                "call-event log: database writable again after %.1f s; %d events queued",
                time.monotonic() - self._outage_started,
                len(self._inflight) + len(self._pending),
            )

    async def _backoff(self, failures: int) -> None:
        delay = min(self.retry_cap, self.retry_initial * 2 ** (failures - 1))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), delay)
