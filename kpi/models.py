"""KPI tables: per-call facts, rollups (counts and sums), seat time, QA, follow-up, alerts.

Everything here is *derived* from the call-event log except the QA and follow-up working
lists, whose every change is also logged as an event under the call (``qa.*``,
``followup.*``), so the KPIs computed from the log and the lists always agree. The rollups can
be dropped and rebuilt from the log at any time (``kpi.rollup.rebuild``).

* ``kpi_calls``: one row per call with its :class:`kpi.facts.CallFacts` as JSON; the rollup
  keeps it so a call's old contribution can be taken back exactly when a late event (survey,
  follow-up, wrap-up, a work order's topic) changes the call. It is also the trace index:
  which calls make up a KPI.
* ``kpi_rollup``: counters per (grain, bucket, queue, region, dim, key). Grain ``hour``
  holds ``dim='all'`` rows (per queue and region, by hour); grain ``day`` (local days) holds
  ``all``, ``topic`` and ``seat`` rows. Only counts and integer millisecond sums, never
  ratios, so any period is a plain SUM and taking a contribution back is exact.
* ``kpi_seat_hourly``: seat seconds per hour (logged in, paused, busy, wrap-up), for occupancy.
* ``kpi_seat_state`` / ``kpi_meta``: the rollup's resumable state (seat fold, checkpoint,
  the thresholds the counters were built with).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db.models import Base, BigIntId, JSONData, UTCDateTime

# The counters of one rollup row (see kpi.rollup.contribution for each one's meaning).
COUNTERS: tuple[str, ...] = (
    "offered",
    "in_progress",
    "short_abandoned",
    "asked",
    "answered",
    "abandoned",
    "abandoned_all",
    "answered_live",
    "answered_callback",
    "within_sl",
    "wait_ms",
    "queue_ms",
    "handling_ms",
    "talk_ms",
    "wrap_ms",
    "rated",
    "good",
    "dissatisfied",
    "followed_up",
    "qa_inspected",
    "callback_requested",
    "transferred_in",
    "moved",
)

SEAT_COUNTERS: tuple[str, ...] = ("logged_in_ms", "paused_ms", "busy_ms", "wrap_ms")


class KpiCall(Base):
    __tablename__ = "kpi_calls"

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    entered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    queue: Mapped[str | None] = mapped_column(String(64), nullable=True)
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    topic: Mapped[str | None] = mapped_column(String(64), nullable=True)
    seat: Mapped[str | None] = mapped_column(String(64), nullable=True)
    survey: Mapped[str | None] = mapped_column(String(24), nullable=True)
    wrap_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    facts: Mapped[dict[str, Any]] = mapped_column(JSONData, nullable=False)

    __table_args__ = (
        Index("ix_kpi_calls_entered_at", "entered_at"),
        Index("ix_kpi_calls_seat_entered_at", "seat", "entered_at"),
        Index("ix_kpi_calls_survey", "survey"),
    )


class KpiRollup(Base):
    __tablename__ = "kpi_rollup"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    grain: Mapped[str] = mapped_column(String(8), nullable=False)
    bucket: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    queue: Mapped[str] = mapped_column(String(64), nullable=False)
    region: Mapped[str] = mapped_column(String(64), nullable=False)
    dim: Mapped[str] = mapped_column(String(8), nullable=False)
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    offered: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    in_progress: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    short_abandoned: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    asked: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    answered: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    abandoned: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    abandoned_all: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    answered_live: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    answered_callback: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    within_sl: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    wait_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    queue_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    handling_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    talk_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    wrap_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    rated: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    good: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    dissatisfied: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    followed_up: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    qa_inspected: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    callback_requested: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    transferred_in: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    moved: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)

    __table_args__ = (
        UniqueConstraint("grain", "bucket", "queue", "region", "dim", "key"),
        Index("ix_kpi_rollup_grain_dim_bucket", "grain", "dim", "bucket"),
    )


class KpiSeatHourly(Base):
    __tablename__ = "kpi_seat_hourly"

    bucket: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    seat: Mapped[str] = mapped_column(String(64), primary_key=True)
    region: Mapped[str] = mapped_column(String(64), nullable=False, default="")
    logged_in_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    paused_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    busy_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    wrap_ms: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class KpiSeatState(Base):
    __tablename__ = "kpi_seat_state"

    seat: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_call: Mapped[str | None] = mapped_column(String(64), nullable=True)


class KpiMeta(Base):
    __tablename__ = "kpi_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSONData, nullable=False)


class KpiQa(Base):
    """质检: a call sampled for quality inspection, and its score once inspected."""

    __tablename__ = "kpi_qa"

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seat: Mapped[str] = mapped_column(String(64), nullable=False)
    period: Mapped[str] = mapped_column(String(16), nullable=False)
    sampled_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    inspector: Mapped[str | None] = mapped_column(String(64), nullable=True)
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_kpi_qa_period_seat", "period", "seat"),)


class KpiFollowup(Base):
    """不满意回访: every dissatisfied call, with its status until closed."""

    __tablename__ = "kpi_followups"

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seat: Mapped[str | None] = mapped_column(String(64), nullable=True)
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_kpi_followups_status", "status"),)


class KpiAlert(Base):
    """The current state of each alert (预警), so a restart neither repeats nor forgets one."""

    __tablename__ = "kpi_alerts"

    name: Mapped[str] = mapped_column(String(96), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    target: Mapped[float | None] = mapped_column(Float, nullable=True)
    raised_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
