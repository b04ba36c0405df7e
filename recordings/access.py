"""Audited access to recordings and transcripts: who, when, which recording, why, outcome.

Rules (等级保护: every read of personal data leaves a trace):

- every read — playing or downloading audio, listing a call's recordings, reading a
  transcript — writes one ``recording_audit`` row (and a ``recording.accessed`` event on the
  call) *before* anything is served; if the audit row cannot be written, nothing is served
  (``AuditUnavailable``): fail closed;
- audio needs a stated reason (``ReasonRequired`` otherwise; the refusal is not audited
  because nothing was read); the reason is stored as given (trimmed, at most 500 characters);
- audio is decrypted to a private temporary file only after every chunk and the plaintext
  sha256 authenticated, so a tampered file is never partly played; such an attempt is audited
  with outcome ``invalid``. The caller streams the file and then calls ``AudioGrant.close()``.

Which roles may do what is checked by the HTTP layer (``hotline.web.require``); this module
records the principal it is given.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from hotline.events import CallEventLog, EventType
from hotline.web import Principal
from recordings import crypto
from recordings.models import AuditAction, AuditOutcome, RecordingAuditRow
from recordings.store import RecordingGone, RecordingInfo, RecordingNotFound, RecordingStore

MAX_REASON = 500


class ReasonRequired(ValueError):
    """Audio access without a stated reason."""


class AuditUnavailable(RuntimeError):
    """The audit record could not be written, so nothing is served."""


class AccessRefused(LookupError):
    """The recording does not exist, was purged, or failed authentication (see outcome)."""

    def __init__(self, outcome: AuditOutcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def normalise_reason(reason: str | None, *, required: bool) -> str:
    text = " ".join((reason or "").split())
    if required and len(text) < 2:
        raise ReasonRequired(
            "a reason for listening to this recording is required (请填写调听事由)"
        )
    return text[:MAX_REASON]


@dataclass
class AudioGrant:
    """A decrypted copy to serve; ``close()`` deletes it."""

    info: RecordingInfo
    path: Path
    _dir: Path

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


class RecordingAccess:
    def __init__(self, store: RecordingStore, event_log: CallEventLog | None = None) -> None:
        self.store = store
        self.engine = store.engine
        self.event_log = event_log

    async def audio(
        self,
        principal: Principal,
        recording_id: str,
        reason: str | None,
        *,
        download: bool = False,
    ) -> AudioGrant:
        """Decrypt a recording for playback/download; audited whatever the outcome."""
        reason_text = normalise_reason(reason, required=True)
        action = AuditAction.DOWNLOAD if download else AuditAction.PLAY
        info = await asyncio.to_thread(self.store.get, recording_id)
        if info is None:
            await self._audit(principal, action, reason_text, AuditOutcome.NOT_FOUND, recording_id)
            raise AccessRefused(AuditOutcome.NOT_FOUND, f"no recording {recording_id}")
        if info.deleted_at is not None:
            await self._audit(principal, action, reason_text, AuditOutcome.GONE, info=info)
            raise AccessRefused(AuditOutcome.GONE, f"recording {recording_id} was purged")
        tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="hotline-play-"))
        path = tmp / f"{recording_id}.wav"
        try:
            await asyncio.to_thread(self.store.decrypt_to, recording_id, path)
        except (crypto.RecordingCryptoError, RecordingNotFound, RecordingGone, OSError) as exc:
            await asyncio.to_thread(shutil.rmtree, tmp, True)
            await self._audit(principal, action, reason_text, AuditOutcome.INVALID, info=info)
            raise AccessRefused(AuditOutcome.INVALID, f"recording {recording_id}: {exc}") from exc
        try:
            await self._audit(principal, action, reason_text, AuditOutcome.GRANTED, info=info)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, tmp, True)
            raise
        return AudioGrant(info, path, tmp)

    async def list_for_call(
        self, principal: Principal, call_id: str, reason: str | None = None
    ) -> list[RecordingInfo]:
        infos = await asyncio.to_thread(self.store.list_for_call, call_id)
        await self._audit(
            principal,
            AuditAction.LIST,
            normalise_reason(reason, required=False),
            AuditOutcome.GRANTED,
            call_id=call_id,
        )
        return infos

    async def transcript(
        self, principal: Principal, call_id: str, reason: str | None = None
    ) -> list[dict[str, Any]]:
        from recordings.service import segments_for_call

        await self._audit(
            principal,
            AuditAction.TRANSCRIPT,
            normalise_reason(reason, required=False),
            AuditOutcome.GRANTED,
            call_id=call_id,
        )
        return await asyncio.to_thread(segments_for_call, self.engine, call_id)

    async def _audit(
        self,
        principal: Principal,
        action: AuditAction,
        reason: str,
        outcome: AuditOutcome,
        recording_id: str | None = None,
        *,
        info: RecordingInfo | None = None,
        call_id: str | None = None,
    ) -> None:
        if info is not None:
            recording_id, call_id = info.id, info.call_id
        values = {
            "at": datetime.now(UTC),
            "principal_id": principal.id[:64],
            "role": str(principal.role),
            "recording_id": recording_id,
            "call_id": call_id,
            "action": action.value,
            "reason": reason,
            "outcome": outcome.value,
        }
        try:
            await asyncio.to_thread(self._insert, values)
        except Exception as exc:
            raise AuditUnavailable(f"cannot write the access audit record: {exc}") from exc
        if self.event_log is not None and call_id:
            self.event_log.append(
                call_id,
                EventType.RECORDING_ACCESSED,
                {
                    "recording_id": recording_id,
                    "action": action.value,
                    "principal": principal.id,
                    "role": str(principal.role),
                    "reason": reason,
                    "outcome": outcome.value,
                },
            )

    def _insert(self, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(RecordingAuditRow.__table__), [values])

    def audit_records(
        self, *, recording_id: str | None = None, call_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Audit rows, oldest first (blocking)."""
        table = RecordingAuditRow.__table__
        query = select(table).order_by(table.c.at, table.c.id)
        if recording_id is not None:
            query = query.where(table.c.recording_id == recording_id)
        if call_id is not None:
            query = query.where(table.c.call_id == call_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
