"""The partner integration's services: store pushed orders, report status, dispatch orders.

``IntegrationService`` is what the HTTP layer, the work-order package and the CLI call. It owns
the delivery worker's lifetime and the event announcing a received order; database work runs in
worker threads (``asyncio.to_thread``).

A pushed order is stored together with the request's nonce in one transaction: a replayed
request violates the nonce key and stores nothing, a retried push (same idempotency key) finds
the stored order and stores nothing new but its nonce. After the commit,
``integration.workorder_received`` goes to the call-event log (and so to the bus) with our id.
The row stays ``received`` with ``work_order_id`` NULL until the work-order package calls
``link_work_order``; ``unlinked_orders`` lists the ones still waiting, so an order whose event
was lost in a crash between the commit and the event is still found at start-up.

Status changes go back to the partner through the outbox (``delivery.enqueue``) in the same
transaction as the status itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from hotline.db.engine import session_factory
from hotline.events.log import CallEventLog
from hotline.events.types import EventType
from integrations import delivery
from integrations.config import IntegrationsConfig
from integrations.models import NonceRow, PartnerWorkOrderRow
from integrations.schemas import ORDER_STATUSES, RECEIVED, PartnerWorkOrderIn, order_view
from integrations.sms import Notifier

log = logging.getLogger(__name__)


class Replayed(Exception):
    """The (partner, nonce) pair was used before."""


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different order."""

    def __init__(self, order_id: str) -> None:
        super().__init__(order_id)
        self.order_id = order_id


class UnknownOrder(LookupError):
    pass


@dataclass(frozen=True)
class Received:
    order: dict[str, Any]  # order_view
    created: bool


def _now() -> datetime:
    return datetime.now(UTC)


def body_hash(order: PartnerWorkOrderIn) -> str:
    canonical = json.dumps(order.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_order_id() -> str:
    return f"pwo_{uuid.uuid4().hex[:20]}"


def event_call_id(order_id: str) -> str:
    return f"integration:{order_id}"


# -- synchronous store functions (worker threads) ---------------------------------------


def store_order(
    engine: Engine,
    partner: str,
    key: str,
    order: PartnerWorkOrderIn,
    *,
    nonce: str,
    nonce_expires: datetime,
    now: datetime,
) -> Received:
    digest = body_hash(order)
    # Two tries: a concurrent push with the same key may win the insert between our look-up
    # and our insert; the second try then finds its order.
    for attempt in (1, 2):
        try:
            with session_factory(engine).begin() as session:
                session.add(NonceRow(partner=partner, nonce=nonce, expires_at=nonce_expires))
                try:
                    session.flush()
                except IntegrityError as exc:
                    raise Replayed(nonce) from exc
                existing = session.scalars(
                    select(PartnerWorkOrderRow).where(
                        PartnerWorkOrderRow.partner == partner,
                        PartnerWorkOrderRow.idempotency_key == key,
                    )
                ).one_or_none()
                if existing is not None:
                    if existing.body_hash != digest:
                        raise IdempotencyConflict(existing.id)
                    return Received(order_view(existing), created=False)
                row = PartnerWorkOrderRow(
                    id=new_order_id(),
                    partner=partner,
                    idempotency_key=key,
                    case_id=order.case_id,
                    body_hash=digest,
                    payload=order.model_dump(mode="json"),
                    status=RECEIVED,
                    received_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                return Received(order_view(row), created=True)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def find_order(engine: Engine, partner: str, order_id: str) -> dict[str, Any] | None:
    with session_factory(engine)() as session:
        row = session.get(PartnerWorkOrderRow, order_id)
        if row is None or row.partner != partner:
            return None
        return order_view(row)


def count_orders(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(PartnerWorkOrderRow)).scalar())


def purge_nonces(engine: Engine, now: datetime) -> int:
    with session_factory(engine).begin() as session:
        result = session.execute(NonceRow.__table__.delete().where(NonceRow.expires_at < now))
        return int(result.rowcount or 0)


# -- the service --------------------------------------------------------------------------


class IntegrationService:
    def __init__(
        self,
        engine: Engine,
        config: IntegrationsConfig,
        secrets: dict[str, bytes],
        *,
        event_log: CallEventLog | None = None,
        clock: Callable[[], datetime] = _now,
        worker: delivery.DeliveryWorker | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.secrets = secrets
        self.event_log = event_log
        self.clock = clock
        self.worker = worker or delivery.DeliveryWorker(engine, config, secrets, clock=clock)
        self.notifier = notifier  # SMS to callers; the work-order package uses it
        self._purge_task: asyncio.Task[None] | None = None

    # lifecycle (aiohttp cleanup_ctx shape) -------------------------------------------
    async def start(self) -> None:
        await self.worker.start()
        self._purge_task = asyncio.create_task(self._purge_loop(), name="nonce purge")

    async def close(self) -> None:
        if self._purge_task is not None:
            self._purge_task.cancel()
            try:
                await self._purge_task
            except asyncio.CancelledError:
                pass
            self._purge_task = None
        await self.worker.close()
        if self.notifier is not None:
            await self.notifier.backend.close()

    async def lifecycle(self, _app: object) -> AsyncIterator[None]:
        await self.start()
        yield
        await self.close()

    async def _purge_loop(self) -> None:
        while True:
            try:
                purged = await asyncio.to_thread(purge_nonces, self.engine, self.clock())
                if purged:
                    log.debug("purged %d expired nonces", purged)
            except Exception:
                log.warning("nonce purge failed; will retry", exc_info=True)
            await asyncio.sleep(self.config.clock_skew_s)

    # inbound --------------------------------------------------------------------------
    async def receive(
        self,
        partner: str,
        key: str,
        order: PartnerWorkOrderIn,
        *,
        nonce: str,
        nonce_expires: datetime,
    ) -> Received:
        """Store a pushed order (idempotent per key); raises Replayed / IdempotencyConflict."""
        received = await asyncio.to_thread(
            store_order,
            self.engine,
            partner,
            key,
            order,
            nonce=nonce,
            nonce_expires=nonce_expires,
            now=self.clock(),
        )
        if received.created:
            order_id = received.order["id"]
            log.info("partner %s pushed order %s (case %s)", partner, order_id, order.case_id)
            if self.event_log is not None:
                self.event_log.append(
                    event_call_id(order_id),
                    EventType.INTEGRATION_WORKORDER_RECEIVED,
                    {
                        "order_id": order_id,
                        "partner": partner,
                        "case_id": order.case_id,
                        "title": order.title,
                        "urgency": order.urgency,
                        "call_id": order.call_id,
                    },
                )
        return received

    async def order(self, partner: str, order_id: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(find_order, self.engine, partner, order_id)

    async def unlinked_orders(self) -> list[dict[str, Any]]:
        """Stored partner orders that are not yet one of our work orders (oldest first)."""

        def query() -> list[dict[str, Any]]:
            with session_factory(self.engine)() as session:
                rows = session.scalars(
                    select(PartnerWorkOrderRow)
                    .where(PartnerWorkOrderRow.work_order_id.is_(None))
                    .where(PartnerWorkOrderRow.status == RECEIVED)
                    .order_by(PartnerWorkOrderRow.received_at)
                ).all()
                return [{**order_view(r), "payload": r.payload} for r in rows]

        return await asyncio.to_thread(query)

    async def link_work_order(self, order_id: str, work_order_id: str) -> None:
        """Record which of our work orders the partner order became."""

        def write() -> None:
            with session_factory(self.engine).begin() as session:
                # Write first (see delivery._claim): no read-then-write upgrade on SQLite.
                result = session.execute(
                    update(PartnerWorkOrderRow)
                    .where(PartnerWorkOrderRow.id == order_id)
                    .values(work_order_id=work_order_id, updated_at=self.clock())
                )
                if result.rowcount != 1:
                    raise UnknownOrder(order_id)

        await asyncio.to_thread(write)

    # outbound -------------------------------------------------------------------------
    async def update_status(
        self, order_id: str, status: str, note: str | None = None
    ) -> int | None:
        """Set a partner order's status and queue the update for the partner.

        Returns the delivery id, or None when the partner has no ``outbound_url`` (it polls
        ``GET .../workorders/{id}`` instead).
        """
        if status not in ORDER_STATUSES:
            raise ValueError(f"unknown status {status!r}: one of {ORDER_STATUSES}")
        now = self.clock()

        def write() -> int | None:
            with session_factory(self.engine).begin() as session:
                result = session.execute(
                    update(PartnerWorkOrderRow)
                    .where(PartnerWorkOrderRow.id == order_id)
                    .values(status=status, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount != 1:
                    raise UnknownOrder(order_id)
                row = session.get(PartnerWorkOrderRow, order_id)
                assert row is not None
                partner = self.config.partner(row.partner)
                if partner is None or partner.outbound_url is None:
                    return None
                payload = {
                    "type": "status_update",
                    "order_id": row.id,
                    "case_id": row.case_id,
                    "status": status,
                    "work_order_id": row.work_order_id,
                    "note": note,
                    "updated_at": now.isoformat(),
                }
                return delivery.enqueue(session, row.partner, "status_update", payload, now=now).id

        delivery_id = await asyncio.to_thread(write)
        if delivery_id is not None:
            self.worker.wake()
        return delivery_id

    async def dispatch_order(
        self, partner: str, order: dict[str, Any], *, idempotency_key: str | None = None
    ) -> int:
        """Queue one of our work orders for a partner (e.g. a police matter for 110)."""
        if self.config.partner(partner) is None:
            raise ValueError(f"unknown partner {partner!r}")
        now = self.clock()
        payload = {"type": "work_order", "order": order, "sent_at": now.isoformat()}

        def write() -> int:
            with session_factory(self.engine).begin() as session:
                return delivery.enqueue(
                    session,
                    partner,
                    "work_order",
                    payload,
                    now=now,
                    idempotency_key=idempotency_key,
                ).id

        delivery_id = await asyncio.to_thread(write)
        self.worker.wake()
        return delivery_id
