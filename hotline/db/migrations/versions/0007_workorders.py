"""Work orders, their history and the daily number counter.

Revision ID: 0007_workorders
Revises: 0006_integrations

The tables of ``workorders.models``: workorders, workorder_history, workorder_counters.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_workorders"
down_revision: str | None = "0006_integrations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "workorders",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("number", sa.String(24), nullable=False),
        sa.Column("source", sa.String(24), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("topic", sa.String(32), nullable=False),
        sa.Column("ivr_topic", sa.String(64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("evidence", _JSON, nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("fields", _JSON, nullable=False),
        sa.Column("locked", _JSON, nullable=False),
        sa.Column("caller_masked", sa.String(32), nullable=True),
        sa.Column("caller_key", sa.String(64), nullable=True),
        sa.Column("caller_enc", sa.Text(), nullable=True),
        sa.Column("contacts_enc", sa.Text(), nullable=True),
        sa.Column("call_id", sa.String(64), nullable=True),
        sa.Column("seat_id", sa.String(64), nullable=True),
        sa.Column("external_ref", sa.String(64), nullable=True),
        sa.Column("dispatch_kind", sa.String(16), nullable=True),
        sa.Column("dispatch_unit", sa.String(64), nullable=True),
        sa.Column("dispatch_name", sa.String(128), nullable=True),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("callbacks", sa.Integer(), nullable=False),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("warning", sa.String(16), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("clock_started_at"),
        _ts("due_at"),
        _ts("resolved_at", nullable=True),
        _ts("closed_at", nullable=True),
        _ts("transcribed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_workorders"),
        sa.UniqueConstraint("number", name="uq_workorders_number"),
        sa.UniqueConstraint("external_ref", name="uq_workorders_external_ref"),
    )
    op.create_index("ix_workorders_call_id", "workorders", ["call_id"])
    op.create_index("ix_workorders_state_due_at", "workorders", ["state", "due_at"])
    op.create_index("ix_workorders_seat_id", "workorders", ["seat_id"])
    op.create_index("ix_workorders_caller_key", "workorders", ["caller_key"])
    op.create_index("ix_workorders_created_at", "workorders", ["created_at"])
    op.create_table(
        "workorder_history",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(32), nullable=False),
        _ts("at"),
        sa.Column("type", sa.String(48), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workorder_history"),
    )
    op.create_index("ix_workorder_history_order_id_id", "workorder_history", ["order_id", "id"])
    op.create_table(
        "workorder_counters",
        sa.Column("day", sa.String(8), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_workorder_counters"),
    )


def downgrade() -> None:
    op.drop_table("workorder_counters")
    op.drop_index("ix_workorder_history_order_id_id", table_name="workorder_history")
    op.drop_table("workorder_history")
    for name in (
        "ix_workorders_created_at",
        "ix_workorders_caller_key",
        "ix_workorders_seat_id",
        "ix_workorders_state_due_at",
        "ix_workorders_call_id",
    ):
        op.drop_index(name, table_name="workorders")
    op.drop_table("workorders")
