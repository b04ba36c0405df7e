"""Tables of the recordings feature: stored recordings, transcript segments, access audit.

This module owns the *shape* of the three tables (kept in step with migration
``0003_recordings``; ``tests/db`` compares them). Rows are written by ``recordings.store``
(recordings), ``recordings.service`` (transcript segments) and ``recordings.access`` (audit).

- ``recordings``: one encrypted file under ``<runtime_dir>/recordings/``; ``path`` is relative
  to that directory. ``sha256_plain`` is the clear WAV's hash (checked on every decryption),
  ``sha256_cipher`` the stored file's. A purged recording keeps its row with ``deleted_at``
  set, so what existed stays on record. ``transcript_state`` says whether the recording still
  has to be transcribed after the call (``pending``), so a restart resumes that work.
- ``transcript_segments``: final recogniser results with times in seconds from the start of
  the stream (live) or of the recording (post-call), the speaker and the path that made them.
- ``recording_audit``: who read which recording or transcript, when, why, and the outcome.
  Rows are never updated or deleted by the service.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hotline.db.models import Base, BigIntId, UTCDateTime


class RecordingKind(StrEnum):
    CALL = "call"  # both parties of an answered call, from answer to end
    MESSAGE = "message"  # a voice message (留言) left in the IVR


class Speaker(StrEnum):
    CALLER = "caller"
    SEAT = "seat"
    # Post-call transcription of a bridge recording: both parties in one mono mix.
    MIXED = "mixed"


class TranscriptSource(StrEnum):
    LIVE = "live"
    POST_CALL = "post_call"


class TranscriptState(StrEnum):
    NONE = "none"  # nothing to do after the call (live transcription covered it)
    PENDING = "pending"  # to be transcribed from the recording
    DONE = "done"
    FAILED = "failed"


class AuditAction(StrEnum):
    PLAY = "play"
    DOWNLOAD = "download"
    LIST = "list"
    TRANSCRIPT = "transcript"


class AuditOutcome(StrEnum):
    GRANTED = "granted"
    NOT_FOUND = "not_found"
    GONE = "gone"  # purged by retention
    INVALID = "invalid"  # the file failed authentication: nothing was served


class RecordingRow(Base):
    __tablename__ = "recordings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    key_id: Mapped[str] = mapped_column(String(64), nullable=False)
    sha256_plain: Mapped[str] = mapped_column(String(64), nullable=False)
    sha256_cipher: Mapped[str] = mapped_column(String(64), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    duration_s: Mapped[float] = mapped_column(Float, nullable=False)
    path: Mapped[str] = mapped_column(String(512), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    hold: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    transcript_state: Mapped[str] = mapped_column(
        String(16), nullable=False, default=TranscriptState.NONE.value
    )

    __table_args__ = (
        Index("ix_recordings_call_id", "call_id"),
        Index("ix_recordings_created_at", "created_at"),
    )


class TranscriptSegmentRow(Base):
    __tablename__ = "transcript_segments"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), nullable=False)
    speaker: Mapped[str] = mapped_column(String(8), nullable=False)
    start_s: Mapped[float] = mapped_column(Float, nullable=False)
    end_s: Mapped[float] = mapped_column(Float, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    final: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    recording_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (Index("ix_transcript_segments_call_id_start_s", "call_id", "start_s"),)


class RecordingAuditRow(Base):
    __tablename__ = "recording_audit"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    principal_id: Mapped[str] = mapped_column(String(64), nullable=False)
    role: Mapped[str] = mapped_column(String(32), nullable=False)
    recording_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)

    __table_args__ = (
        Index("ix_recording_audit_recording_id", "recording_id"),
        Index("ix_recording_audit_at", "at"),
    )
