"""KPI rollups, QA and follow-up lists, alerts.

Revision ID: 0004_kpi
Revises: 0003_recordings
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0004_kpi"
down_revision: str | None = "0003_recordings"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # slot reserved; filled by the feature that owns it


def downgrade() -> None:
    pass
