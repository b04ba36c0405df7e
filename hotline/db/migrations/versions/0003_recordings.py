"""Recordings, transcripts, work orders, party archive.

Revision ID: 0003_recordings
Revises: 0002_acd
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0003_recordings"
down_revision: str | None = "0002_acd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # slot reserved; filled by the feature that owns it


def downgrade() -> None:
    pass
