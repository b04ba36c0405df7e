"""Tables of the partner integration: received orders, outbound deliveries, dead letters, nonces.

This module owns the *shape* of the tables (migration ``0006_integrations`` creates them; keep
the two in step, ``tests/db`` compares models and migrations).

* ``partner_work_orders``: what a partner pushed to us. ``(partner, idempotency_key)`` is unique,
  which is what makes a retried push create one order even when two copies race. ``body_hash``
  lets a reused key with a *different* order be refused instead of silently answered.
  ``work_order_id`` is set when the work-order package has made it one of our work orders.
* ``integration_deliveries``: the outbox. A row is written in the same transaction as the change
  it reports, and the delivery worker sends it (``status``: pending → delivered | dead).
  ``lease_until`` is the claim of the worker sending it; a claim of a crashed process simply
  expires. ``idempotency_key`` goes out as the ``Idempotency-Key`` header, so the partner can
  drop a copy we resend after a lost response.
* ``integration_dead_letters``: a delivery that used up its attempts (or was refused for good),
  kept for the operator; ``replayed_at`` is set when ``hotline partners dead-letters replay``
  put the delivery back in the queue.
* ``integration_nonces``: nonces of accepted signed requests until their timestamp leaves the
  clock-skew window; the unique key is the replay check.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db.models import Base, BigIntId, JSONData, UTCDateTime


class PartnerWorkOrderRow(Base):
    __tablename__ = "partner_work_orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # our id: pwo_<hex>
    partner: Mapped[str] = mapped_column(String(32), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False)
    case_id: Mapped[str] = mapped_column(String(64), nullable=False)  # the partner's reference
    body_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONData, nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    work_order_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (
        UniqueConstraint("partner", "idempotency_key"),
        Index("ix_partner_work_orders_partner_case_id", "partner", "case_id"),
    )


class DeliveryRow(Base):
    __tablename__ = "integration_deliveries"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    partner: Mapped[str] = mapped_column(String(32), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)  # status_update | work_order
    idempotency_key: Mapped[str] = mapped_column(String(128), nullable=False, unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONData, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # pending|delivered|dead
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(32), nullable=True)  # claim token
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_integration_deliveries_status_next", "status", "next_attempt_at"),)


class DeadLetterRow(Base):
    __tablename__ = "integration_dead_letters"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("integration_deliveries.id"), nullable=False
    )
    partner: Mapped[str] = mapped_column(String(32), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    dead_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_integration_dead_letters_replayed_at", "replayed_at"),)


class NonceRow(Base):
    __tablename__ = "integration_nonces"

    partner: Mapped[str] = mapped_column(String(32), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (Index("ix_integration_nonces_expires_at", "expires_at"),)
