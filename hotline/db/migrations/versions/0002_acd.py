"""Seats, seat state, queues (ACD).

Revision ID: 0002_acd
Revises: 0001_call_events
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0002_acd"
down_revision: str | None = "0001_call_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # slot reserved; filled by the feature that owns it


def downgrade() -> None:
    pass
