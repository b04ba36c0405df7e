"""KPI rollups, QA and follow-up lists, alerts.

Revision ID: 0004_kpi
Revises: 0003_recordings
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_kpi"
down_revision: str | None = "0003_recordings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Kept in step with kpi/models.py (tests/db compares the two).
COUNTERS = (
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


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "kpi_calls",
        sa.Column("call_id", sa.String(64), nullable=False),
        _ts("entered_at"),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("topic", sa.String(64), nullable=True),
        sa.Column("seat", sa.String(64), nullable=True),
        sa.Column("survey", sa.String(24), nullable=True),
        sa.Column("wrap_ms", sa.BigInteger(), nullable=False),
        sa.Column("facts", _json(), nullable=False),
        sa.PrimaryKeyConstraint("call_id", name="pk_kpi_calls"),
    )
    op.create_index("ix_kpi_calls_entered_at", "kpi_calls", ["entered_at"])
    op.create_index("ix_kpi_calls_seat_entered_at", "kpi_calls", ["seat", "entered_at"])
    op.create_index("ix_kpi_calls_survey", "kpi_calls", ["survey"])

    op.create_table(
        "kpi_rollup",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("grain", sa.String(8), nullable=False),
        _ts("bucket", nullable=False),
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("dim", sa.String(8), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTERS],
        sa.PrimaryKeyConstraint("id", name="pk_kpi_rollup"),
        sa.UniqueConstraint(
            "grain",
            "bucket",
            "queue",
            "region",
            "dim",
            "key",
            name="uq_kpi_rollup_grain_bucket_queue_region_dim_key",
        ),
    )
    op.create_index("ix_kpi_rollup_grain_dim_bucket", "kpi_rollup", ["grain", "dim", "bucket"])

    op.create_table(
        "kpi_seat_hourly",
        _ts("bucket", nullable=False),
        sa.Column("seat", sa.String(64), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("logged_in_ms", sa.BigInteger(), nullable=False),
        sa.Column("paused_ms", sa.BigInteger(), nullable=False),
        sa.Column("busy_ms", sa.BigInteger(), nullable=False),
        sa.Column("wrap_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "seat", name="pk_kpi_seat_hourly"),
    )
    op.create_table(
        "kpi_seat_state",
        sa.Column("seat", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _ts("since"),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("last_call", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("seat", name="pk_kpi_seat_state"),
    )
    op.create_table(
        "kpi_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", _json(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_kpi_meta"),
    )
    op.create_table(
        "kpi_qa",
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("seat", sa.String(64), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        _ts("sampled_at", nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("inspector", sa.String(64), nullable=True),
        _ts("scored_at"),
        sa.PrimaryKeyConstraint("call_id", name="pk_kpi_qa"),
    )
    op.create_index("ix_kpi_qa_period_seat", "kpi_qa", ["period", "seat"])
    op.create_table(
        "kpi_followups",
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("seat", sa.String(64), nullable=True),
        sa.Column("region", sa.String(64), nullable=True),
        _ts("opened_at", nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.String(64), nullable=True),
        _ts("updated_at"),
        _ts("closed_at"),
        sa.PrimaryKeyConstraint("call_id", name="pk_kpi_followups"),
    )
    op.create_index("ix_kpi_followups_status", "kpi_followups", ["status"])
    op.create_table(
        "kpi_alerts",
        sa.Column("name", sa.String(96), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("target", sa.Float(), nullable=True),
        _ts("raised_at"),
        _ts("cleared_at"),
        sa.PrimaryKeyConstraint("name", name="pk_kpi_alerts"),
    )


def downgrade() -> None:
    op.drop_table("kpi_alerts")
    op.drop_index("ix_kpi_followups_status", table_name="kpi_followups")
    op.drop_table("kpi_followups")
    op.drop_index("ix_kpi_qa_period_seat", table_name="kpi_qa")
    op.drop_table("kpi_qa")
    op.drop_table("kpi_meta")
    op.drop_table("kpi_seat_state")
    op.drop_table("kpi_seat_hourly")
    op.drop_index("ix_kpi_rollup_grain_dim_bucket", table_name="kpi_rollup")
    op.drop_table("kpi_rollup")
    op.drop_index("ix_kpi_calls_survey", table_name="kpi_calls")
    op.drop_index("ix_kpi_calls_seat_entered_at", table_name="kpi_calls")
    op.drop_index("ix_kpi_calls_entered_at", table_name="kpi_calls")
    op.drop_table("kpi_calls")
