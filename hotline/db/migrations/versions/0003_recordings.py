"""Recordings (encrypted files), transcript segments, recording access audit.

Revision ID: 0003_recordings
Revises: 0002_acd
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_recordings"
down_revision: str | None = "0002_acd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("sha256_plain", sa.String(64), nullable=False),
        sa.Column("sha256_cipher", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hold", sa.Boolean(), nullable=False),
        sa.Column("transcript_state", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recordings"),
    )
    op.create_index("ix_recordings_call_id", "recordings", ["call_id"])
    op.create_index("ix_recordings_created_at", "recordings", ["created_at"])

    op.create_table(
        "transcript_segments",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("speaker", sa.String(8), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("recording_id", sa.String(36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_transcript_segments"),
    )
    op.create_index(
        "ix_transcript_segments_call_id_start_s", "transcript_segments", ["call_id", "start_s"]
    )

    op.create_table(
        "recording_audit",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("principal_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("recording_id", sa.String(36), nullable=True),
        sa.Column("call_id", sa.String(64), nullable=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recording_audit"),
    )
    op.create_index("ix_recording_audit_recording_id", "recording_audit", ["recording_id"])
    op.create_index("ix_recording_audit_at", "recording_audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_recording_audit_at", table_name="recording_audit")
    op.drop_index("ix_recording_audit_recording_id", table_name="recording_audit")
    op.drop_table("recording_audit")
    op.drop_index("ix_transcript_segments_call_id_start_s", table_name="transcript_segments")
    op.drop_table("transcript_segments")
    op.drop_index("ix_recordings_created_at", table_name="recordings")
    op.drop_index("ix_recordings_call_id", table_name="recordings")
    op.drop_table("recordings")
