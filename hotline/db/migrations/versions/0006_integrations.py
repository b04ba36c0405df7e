"""Partners, work-order exchange, deliveries, dead letters.

Revision ID: 0006_integrations
Revises: 0005_desk

The tables of ``integrations.models``: partner_work_orders, integration_deliveries,
integration_dead_letters, integration_nonces.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_integrations"
down_revision: str | None = "0005_desk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "partner_work_orders",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("partner", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("work_order_id", sa.String(64), nullable=True),
        _ts("received_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_partner_work_orders"),
        sa.UniqueConstraint(
            "partner",
            "idempotency_key",
            name="uq_partner_work_orders_partner_idempotency_key",
        ),
    )
    op.create_index(
        "ix_partner_work_orders_partner_case_id", "partner_work_orders", ["partner", "case_id"]
    )
    op.create_table(
        "integration_deliveries",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("partner", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at"),
        _ts("lease_until", nullable=True),
        sa.Column("claimed_by", sa.String(32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("delivered_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_integration_deliveries"),
        sa.UniqueConstraint("idempotency_key", name="uq_integration_deliveries_idempotency_key"),
    )
    op.create_index(
        "ix_integration_deliveries_status_next",
        "integration_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_table(
        "integration_dead_letters",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("delivery_id", _ID, nullable=False),
        sa.Column("partner", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("dead_at"),
        _ts("replayed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_integration_dead_letters"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["integration_deliveries.id"],
            name="fk_integration_dead_letters_delivery_id_integration_deliveries",
        ),
    )
    op.create_index(
        "ix_integration_dead_letters_replayed_at", "integration_dead_letters", ["replayed_at"]
    )
    op.create_table(
        "integration_nonces",
        sa.Column("partner", sa.String(32), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=False),
        _ts("expires_at"),
        sa.PrimaryKeyConstraint("partner", "nonce", name="pk_integration_nonces"),
    )
    op.create_index("ix_integration_nonces_expires_at", "integration_nonces", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_integration_nonces_expires_at", table_name="integration_nonces")
    op.drop_table("integration_nonces")
    op.drop_index("ix_integration_dead_letters_replayed_at", table_name="integration_dead_letters")
    op.drop_table("integration_dead_letters")
    op.drop_index("ix_integration_deliveries_status_next", table_name="integration_deliveries")
    op.drop_table("integration_deliveries")
    op.drop_index("ix_partner_work_orders_partner_case_id", table_name="partner_work_orders")
    op.drop_table("partner_work_orders")
