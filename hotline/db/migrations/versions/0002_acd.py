"""Seats (ACD): SIP identity, skills, region and the digest hash of the SIP password.

Revision ID: 0002_acd
Revises: 0001_call_events
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_acd"
down_revision: str | None = "0001_call_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seats",
        sa.Column("seat_id", sa.String(32), primary_key=True),
        sa.Column("display_name", sa.String(100), nullable=False, server_default=""),
        sa.Column(
            "skills", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("region", sa.String(64), nullable=False, server_default="default"),
        sa.Column("wrap_up_s", sa.Float(), nullable=True),
        sa.Column("md5_cred", sa.String(32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("seats")
