"""Tables of the work-order feature: orders, their history, the daily number counter.

This module owns the *shape* of the tables (kept in step with migration ``0007_workorders``;
``tests/db`` compares them). Rows are written only by ``workorders.service``.

- ``workorders``: one row per order. ``number`` is the human number ``GDyyyymmdd-NNNN`` (the
  date in Asia/Shanghai, what a caller types in IVR menu 9 without the letters and the dash);
  ``state`` is a ``workorders.lifecycle.State`` value and is changed only through
  ``lifecycle.apply``. The caller's number is kept three ways and never in clear:
  ``caller_masked`` (138****8000, for display), ``caller_key`` (the keyed hash of
  ``hotline.privacy.number_key``, the party-archive look-up key) and ``caller_enc``
  (AES-GCM ciphertext, ``workorders.protect``, for the callback). ``contacts_enc`` holds the
  phone numbers found in the transcript, encrypted the same way; ``fields`` only their masked
  form. ``locked`` lists the content keys a person has edited, which the transcript must no
  longer overwrite.
- ``workorder_history``: every change of an order, in order, with who and when: the same
  description that goes to the call-event log, written in the same transaction as the change,
  so the order and its history can never disagree (the log is written asynchronously).
- ``workorder_counters``: the last sequence number given out per day, incremented in the
  transaction that inserts the order, so numbers are unique and without gaps per day.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db.models import Base, BigIntId, JSONData, UTCDateTime


class WorkOrderRow(Base):
    __tablename__ = "workorders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    number: Mapped[str] = mapped_column(String(24), nullable=False)
    source: Mapped[str] = mapped_column(String(24), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    topic: Mapped[str] = mapped_column(String(32), nullable=False)
    ivr_topic: Mapped[str | None] = mapped_column(String(64), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    evidence: Mapped[list[Any]] = mapped_column(JSONData, nullable=False, default=list)
    summary: Mapped[str] = mapped_column(Text, nullable=False, default="")
    details: Mapped[str] = mapped_column(Text, nullable=False, default="")
    fields: Mapped[dict[str, Any]] = mapped_column(JSONData, nullable=False, default=dict)
    locked: Mapped[list[Any]] = mapped_column(JSONData, nullable=False, default=list)
    caller_masked: Mapped[str | None] = mapped_column(String(32), nullable=True)
    caller_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    caller_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    contacts_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    seat_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    external_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dispatch_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    dispatch_unit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    dispatch_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    callbacks: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    warning: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    clock_started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    transcribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        UniqueConstraint("number", name="uq_workorders_number"),
        # One order per partner order, whatever is replayed.
        UniqueConstraint("external_ref", name="uq_workorders_external_ref"),
        Index("ix_workorders_call_id", "call_id"),
        Index("ix_workorders_state_due_at", "state", "due_at"),
        Index("ix_workorders_seat_id", "seat_id"),
        Index("ix_workorders_caller_key", "caller_key"),
        Index("ix_workorders_created_at", "created_at"),
    )


class WorkOrderHistoryRow(Base):
    __tablename__ = "workorder_history"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(32), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    type: Mapped[str] = mapped_column(String(48), nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONData, nullable=False)

    __table_args__ = (Index("ix_workorder_history_order_id_id", "order_id", "id"),)


class WorkOrderCounterRow(Base):
    __tablename__ = "workorder_counters"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, nullable=False)
