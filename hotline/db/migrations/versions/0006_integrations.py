"""Partners, work-order exchange, deliveries, dead letters.

Revision ID: 0006_integrations
Revises: 0005_desk
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0006_integrations"
down_revision: str | None = "0005_desk"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # slot reserved; filled by the feature that owns it


def downgrade() -> None:
    pass
