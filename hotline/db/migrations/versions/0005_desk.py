"""Agent desk users, sessions, audit.

Revision ID: 0005_desk
Revises: 0004_kpi
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0005_desk"
down_revision: str | None = "0004_kpi"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # slot reserved; filled by the feature that owns it


def downgrade() -> None:
    pass
