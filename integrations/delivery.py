"""Outbound deliveries to partners: a database outbox, signed POSTs, retries, dead letters.

Theory of operation
-------------------
Whatever we tell a partner (a status update of an order they pushed, an order we dispatch to
them) is first written as a row of ``integration_deliveries`` by ``enqueue`` in the *same
transaction* as the change it reports, so a change is never stored without its notice nor the
other way round. All state is in that table; a restart loses nothing.

A delivery row moves through three states::

    pending --2xx--------------------------------------> delivered
    pending --retryable failure, attempts < max-------> pending (next_attempt_at = now + backoff)
    pending --retryable failure, attempts = max-------> dead   (+ one integration_dead_letters row)
    pending --permanent failure (4xx but 408/425/429,
              redirect, partner without outbound_url)--> dead   (+ dead letter)
    dead    --operator replay--------------------------> pending (attempts 0, due now)

``DeliveryWorker`` sends due rows. Before sending it *claims* a row with a compare-and-set
UPDATE on ``lease_until``, so a second process (``hotline partners dead-letters replay --now``
beside the service) never sends the same row at the same time; the lease of a process that died
mid-send expires and the row is sent again. Resending after a lost response is why every POST
carries the row's ``Idempotency-Key``: the partner drops the copy.

Backoff is exponential with "equal jitter": attempt n waits ``d/2 + U(0, d/2)`` with
``d = min(max_delay, initial * 2**(n-1))``, so retries of many rows that failed together spread
out; a ``Retry-After`` (seconds) from the partner is honoured up to ``max_delay``.

The worker wakes when something is enqueued in this process (``wake()``), when the earliest
``next_attempt_at`` comes, and at least every ``poll_interval_s`` (rows enqueued by another
process, expired leases).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.orm import Session

from hotline.db.engine import session_factory
from integrations.config import DeliverySettings, IntegrationsConfig
from integrations.models import DeadLetterRow, DeliveryRow
from integrations.signing import sign

log = logging.getLogger(__name__)

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
KINDS = frozenset({"status_update", "work_order"})
_RETRYABLE_4XX = frozenset({408, 425, 429})


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Claimed:
    id: int
    partner: str
    kind: str
    idempotency_key: str
    payload: dict[str, Any]
    attempts: int  # before this attempt


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str | None = None
    permanent: bool = False
    retry_after: float | None = None


class ReplayError(Exception):
    """A dead letter that does not exist or was already replayed."""


# -- the outbox (synchronous: run in a worker thread) ------------------------------------


def enqueue(
    session: Session,
    partner: str,
    kind: str,
    payload: dict[str, Any],
    *,
    now: datetime,
    idempotency_key: str | None = None,
) -> DeliveryRow:
    """Add a pending delivery to ``session`` (the caller's transaction commits it)."""
    if kind not in KINDS:
        raise ValueError(f"unknown delivery kind {kind!r}: one of {sorted(KINDS)}")
    row = DeliveryRow(
        partner=partner,
        kind=kind,
        idempotency_key=idempotency_key or f"dlv_{uuid.uuid4().hex}",
        payload=payload,
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _claim(
    engine: Engine, now: datetime, lease: float, limit: int, only: int | None
) -> list[Claimed]:
    """Lease up to ``limit`` due rows (or row ``only``) to this caller.

    One UPDATE does the claim (write first: on SQLite a read-then-write transaction can fail
    when another writer commits in between); on PostgreSQL a concurrent claimer blocks on the
    row and then re-checks the lease, so each row goes to one claimer.
    """
    free = or_(DeliveryRow.lease_until.is_(None), DeliveryRow.lease_until < now)
    due = and_(DeliveryRow.status == PENDING, free)
    if only is None:
        due = and_(due, DeliveryRow.next_attempt_at <= now)
    else:
        due = and_(due, DeliveryRow.id == only)
    token = uuid.uuid4().hex
    candidates = (
        select(DeliveryRow.id).where(due).order_by(DeliveryRow.next_attempt_at).limit(limit)
    )
    with session_factory(engine).begin() as session:
        session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id.in_(candidates.scalar_subquery()), due)
            .values(lease_until=now + timedelta(seconds=lease), claimed_by=token)
            .execution_options(synchronize_session=False)
        )
        rows = session.scalars(select(DeliveryRow).where(DeliveryRow.claimed_by == token)).all()
        return [
            Claimed(r.id, r.partner, r.kind, r.idempotency_key, r.payload, r.attempts) for r in rows
        ]


def _record(
    engine: Engine, claimed: Claimed, outcome: Outcome, now: datetime, next_at: datetime | None
) -> str:
    """Store an attempt's outcome; returns the row's new status."""
    attempts = claimed.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "lease_until": None, "claimed_by": None}
    if outcome.ok:
        status = DELIVERED
        values.update(status=DELIVERED, delivered_at=now, last_error=None)
    elif next_at is not None:
        status = PENDING
        values.update(next_attempt_at=next_at, last_error=outcome.error)
    else:
        status = DEAD
        values.update(status=DEAD, last_error=outcome.error)
    with session_factory(engine).begin() as session:
        session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == claimed.id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if status == DEAD:
            session.add(
                DeadLetterRow(
                    delivery_id=claimed.id,
                    partner=claimed.partner,
                    kind=claimed.kind,
                    attempts=attempts,
                    last_error=outcome.error,
                    dead_at=now,
                )
            )
    return status


def next_due(engine: Engine) -> datetime | None:
    with engine.connect() as conn:
        return conn.execute(
            select(func.min(DeliveryRow.next_attempt_at)).where(DeliveryRow.status == PENDING)
        ).scalar()


def get_delivery(engine: Engine, delivery_id: int) -> DeliveryRow | None:
    with session_factory(engine)() as session:
        return session.get(DeliveryRow, delivery_id)


def dead_letters(engine: Engine, *, include_replayed: bool = False) -> list[DeadLetterRow]:
    query = select(DeadLetterRow).order_by(DeadLetterRow.id)
    if not include_replayed:
        query = query.where(DeadLetterRow.replayed_at.is_(None))
    with session_factory(engine)() as session:
        return list(session.scalars(query).all())


def replay(engine: Engine, dead_letter_id: int, *, now: datetime | None = None) -> int:
    """Put a dead letter's delivery back in the queue, due now; returns the delivery id."""
    now = now or _now()
    with session_factory(engine).begin() as session:
        letter = session.get(DeadLetterRow, dead_letter_id)
        if letter is None:
            raise ReplayError(f"死信 {dead_letter_id} 不存在 / no dead letter {dead_letter_id}")
        if letter.replayed_at is not None:
            raise ReplayError(
                f"死信 {dead_letter_id} 已于 {letter.replayed_at.isoformat()} 重发 / "
                "already replayed"
            )
        row = session.get(DeliveryRow, letter.delivery_id)
        assert row is not None  # foreign key
        letter.replayed_at = now
        row.status = PENDING
        row.attempts = 0
        row.next_attempt_at = now
        row.lease_until = None
        row.claimed_by = None
        return row.id


def backoff_delay(attempt: int, settings: DeliverySettings, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    ceiling = min(settings.max_delay_s, settings.initial_delay_s * 2 ** min(attempt - 1, 60))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


# -- the worker ---------------------------------------------------------------------------


class DeliveryWorker:
    """Sends due deliveries (see the module docstring). Use from one event loop."""

    def __init__(
        self,
        engine: Engine,
        config: IntegrationsConfig,
        secrets: dict[str, bytes],
        *,
        http: aiohttp.ClientSession | None = None,
        clock: Callable[[], datetime] = _now,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.settings = config.delivery
        self.secrets = secrets
        self.clock = clock
        self.rng = rng or random.Random()
        self._http = http
        self._own_http = http is None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._waiters: dict[int, list[asyncio.Future[str]]] = {}
        self.attempts = 0  # HTTP attempts made by this worker (for tests and health)

    # lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("DeliveryWorker already started")
        self._task = asyncio.create_task(self._run(), name="partner deliveries")

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None

    def wake(self) -> None:
        """Something was enqueued: look for due rows now instead of at the next poll."""
        self._wake.set()

    async def wait_settled(self, delivery_id: int) -> str:
        """Wait until ``delivery_id`` is delivered or dead (bound it with asyncio.timeout)."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(delivery_id, []).append(future)
        row = await asyncio.to_thread(get_delivery, self.engine, delivery_id)
        if row is not None and row.status != PENDING:
            return row.status
        return await future

    # sending --------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Send every delivery due now (up to ``concurrency`` at a time); returns how many."""
        sent = 0
        while not self._closing:
            batch = await asyncio.to_thread(
                _claim,
                self.engine,
                self.clock(),
                self.settings.lease_s,
                self.settings.concurrency,
                None,
            )
            if not batch:
                return sent
            await asyncio.gather(*(self._attempt(c) for c in batch))
            sent += len(batch)
        return sent

    async def deliver(self, delivery_id: int) -> str | None:
        """Make one attempt at ``delivery_id`` now, due or not; returns its status afterwards,
        or None when it is not pending or another process holds it."""
        batch = await asyncio.to_thread(
            _claim, self.engine, self.clock(), self.settings.lease_s, 1, delivery_id
        )
        if not batch:
            return None
        return await self._attempt(batch[0])

    async def _attempt(self, claimed: Claimed) -> str:
        try:
            outcome = await self._post(claimed)
        except Exception as exc:  # a bug here must not kill the worker: retry later, logged
            log.exception("delivery %d to %s failed unexpectedly", claimed.id, claimed.partner)
            outcome = Outcome(False, f"internal error: {exc!r}")
        attempt = claimed.attempts + 1
        now = self.clock()
        next_at: datetime | None = None
        if not outcome.ok and not outcome.permanent and attempt < self.settings.max_attempts:
            delay = backoff_delay(attempt, self.settings, self.rng)
            if outcome.retry_after is not None:
                delay = min(self.settings.max_delay_s, max(delay, outcome.retry_after))
            next_at = now + timedelta(seconds=delay)
        status = await asyncio.to_thread(_record, self.engine, claimed, outcome, now, next_at)
        if status == DELIVERED:
            log.info(
                "delivery %d (%s) to %s delivered on attempt %d",
                claimed.id,
                claimed.kind,
                claimed.partner,
                attempt,
            )
        elif status == DEAD:
            log.warning(
                "delivery %d (%s) to %s is a dead letter after %d attempt(s): %s "
                "(hotline partners dead-letters list)",
                claimed.id,
                claimed.kind,
                claimed.partner,
                attempt,
                outcome.error,
            )
        else:
            log.info(
                "delivery %d to %s: attempt %d failed (%s); next at %s",
                claimed.id,
                claimed.partner,
                attempt,
                outcome.error,
                next_at.isoformat() if next_at else "-",
            )
        if status != PENDING:
            for future in self._waiters.pop(claimed.id, []):
                if not future.done():
                    future.set_result(status)
        return status

    async def _post(self, claimed: Claimed) -> Outcome:
        partner = self.config.partner(claimed.partner)
        if partner is None:
            return Outcome(False, f"partner {claimed.partner} is not configured", permanent=True)
        if partner.outbound_url is None:
            return Outcome(False, f"partner {partner.id} has no outbound_url", permanent=True)
        secret = self.secrets.get(partner.id)
        if secret is None:
            return Outcome(False, f"no shared secret for partner {partner.id}", permanent=True)
        body = json.dumps(claimed.payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = sign(
            secret,
            body,
            sender=self.config.our_id,
            now=self.clock(),
            idempotency_key=claimed.idempotency_key,
        )
        headers["Content-Type"] = "application/json; charset=utf-8"
        if self._http is None:
            self._http = aiohttp.ClientSession()
        self.attempts += 1
        try:
            async with self._http.post(
                partner.outbound_url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=partner.outbound_timeout_s),
            ) as response:
                text = (await response.text(errors="replace"))[:200]
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Outcome(False, f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= status < 300:
            return Outcome(True)
        error = f"HTTP {status}: {text}"
        permanent = status < 500 and status not in _RETRYABLE_4XX
        return Outcome(False, error, permanent=permanent, retry_after=retry_after)

    async def _run(self) -> None:
        poll = self.settings.poll_interval_s
        while not self._closing:
            self._wake.clear()
            try:
                await self.run_once()
                due = await asyncio.to_thread(next_due, self.engine)
            except Exception:
                # The database is away: try again at the next poll; rows stay in the table.
                log.warning("partner deliveries: database error, retrying", exc_info=True)
                due = None
            timeout = poll
            if due is not None:
                timeout = min(poll, max(0.0, (due - self.clock()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
