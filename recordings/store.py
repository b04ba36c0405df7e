"""Encrypted storage of recordings: keys, files, rows, events, and the retention purge.

Theory of operation
-------------------
Asterisk writes a clear WAV into its recording directory (``AsteriskRuntime.
ari_recordings_dir``). Once the recording has finished, ``RecordingStore.store()`` encrypts it
with ``recordings.crypto`` into ``<runtime_dir>/recordings/YYYY/MM/DD/<id>.hlrec``, binding the
recording id and call id into every chunk (associated data), writes the ``recordings`` row,
deletes the clear file, and appends ``recording.stored`` to the call's event log. The order
matters: the clear file is removed only after the encrypted file is on disk (fsynced) and the
row is committed, so a crash in between leaves the clear file for a retry, never a row without
a file. File and database work run in worker threads; the event loop never waits on them.

Keys live in the runtime secrets file (``secrets.yaml``, mode 0600) under
``recording_keys: {key_id: base64}`` and ``recording_key_current``. ``load_keyring`` creates
the first key when none exists; ``rotate_keyring`` adds a new current key and keeps the old
ones, so older files stay readable; ``RecordingStore.reencrypt`` moves a file to the current
key (to retire an old one). The read-modify-write of the secrets file holds a lock file, so
two processes setting up at once cannot lose a key.

Purge. ``purge(now)`` asks ``recordings.retention`` which stored recordings have expired
(rows under ``hold`` never do), deletes each file, sets ``deleted_at`` and appends
``recording.purged`` with what was removed and why. A row is marked deleted only after its
file is gone, so a failed unlink is retried by the next run.

Nothing here checks who may read a recording: that is ``recordings.access``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets as _secrets
import tempfile
import uuid
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from hotline import secrets as secrets_file
from hotline.events import CallEventLog, EventType
from recordings import crypto
from recordings.models import RecordingKind, RecordingRow, TranscriptState
from recordings.retention import RetentionPolicy, StoredItem, expired, purge_log

log = logging.getLogger(__name__)

SUFFIX = ".hlrec"
_KEYS = "recording_keys"
_CURRENT = "recording_key_current"


# --- keys ------------------------------------------------------------------------------------


def _new_key_id() -> str:
    return f"rk-{datetime.now(UTC):%Y%m%d}-{_secrets.token_hex(3)}"


def load_keyring(runtime_dir: Path) -> crypto.KeyRing:
    """The recording key ring from the runtime secrets; the first key is made if none exists."""
    with secrets_file.edit(runtime_dir) as data:
        keys = data.get(_KEYS) or {}
        current = data.get(_CURRENT)
        if not keys:
            current = _new_key_id()
            keys = {current: crypto.encode_key(crypto.new_key())}
            data[_KEYS], data[_CURRENT] = keys, current
            log.info("created recording key %s", current)
        return crypto.KeyRing.from_text(keys, str(current))


def rotate_keyring(runtime_dir: Path, new_id: str | None = None) -> crypto.KeyRing:
    """Add a new current key (old keys are kept for reading); return the new ring."""
    ring = load_keyring(runtime_dir)
    with secrets_file.edit(runtime_dir) as data:
        ring = crypto.KeyRing.from_text(data[_KEYS], data[_CURRENT]).rotated(
            new_id or _new_key_id()
        )
        data[_KEYS], data[_CURRENT] = ring.to_text(), ring.current
    log.info("recording key rotated: new files use %s", ring.current)
    return ring


# --- stored recordings -----------------------------------------------------------------------


class RecordingNotFound(LookupError):
    pass


class RecordingGone(LookupError):
    """The recording existed but retention removed its file."""


@dataclass(frozen=True)
class RecordingInfo:
    id: str
    call_id: str
    kind: str
    key_id: str
    sha256: str
    sha256_cipher: str
    size: int
    duration_s: float
    path: str
    created_at: datetime
    deleted_at: datetime | None
    hold: bool
    transcript_state: str

    @classmethod
    def of(cls, row: RecordingRow) -> RecordingInfo:
        return cls(
            row.id, row.call_id, row.kind, row.key_id, row.sha256_plain, row.sha256_cipher,
            row.size, row.duration_s, row.path, row.created_at, row.deleted_at, row.hold,
            row.transcript_state,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "call_id": self.call_id,
            "kind": self.kind,
            "sha256": self.sha256,
            "size": self.size,
            "duration_s": round(self.duration_s, 3),
            "created_at": self.created_at.isoformat(),
            "deleted_at": self.deleted_at.isoformat() if self.deleted_at else None,
            "hold": self.hold,
            "transcript_state": self.transcript_state,
        }


def wav_duration(path: Path) -> float:
    """Duration of a PCM WAV in seconds (0.0 for a file the wave module cannot read)."""
    try:
        with wave.open(str(path), "rb") as w:
            rate = w.getframerate()
            return w.getnframes() / rate if rate else 0.0
    except (wave.Error, EOFError):
        return 0.0


def _associated_data(recording_id: str, call_id: str) -> bytes:
    return f"hotline-recording:{recording_id}:{call_id}".encode()


class RecordingStore:
    """Encrypted recordings under ``root`` with their rows in ``engine`` (see module doc)."""

    def __init__(
        self,
        engine: Engine,
        root: Path,
        keyring: crypto.KeyRing,
        event_log: CallEventLog | None = None,
        *,
        policy: RetentionPolicy | None = None,
    ) -> None:
        self.engine = engine
        self.root = Path(root)
        self.keyring = keyring
        self.event_log = event_log
        self.policy = policy or RetentionPolicy()

    # -- writing ---------------------------------------------------------------------------
    async def store(
        self,
        call_id: str,
        kind: RecordingKind | str,
        clear_path: Path,
        *,
        recording_id: str | None = None,
        transcript_state: TranscriptState = TranscriptState.NONE,
        keep_clear: bool = False,
    ) -> RecordingInfo:
        """Encrypt ``clear_path``, record it, delete the clear file; log ``recording.stored``."""
        kind = RecordingKind(kind)
        rid = recording_id or uuid.uuid4().hex
        info = await asyncio.to_thread(
            self._store_sync, call_id, kind, Path(clear_path), rid, transcript_state, keep_clear
        )
        self._append(
            call_id,
            EventType.RECORDING_STORED,
            {
                "recording_id": info.id,
                "kind": info.kind,
                "sha256": info.sha256,
                "size": info.size,
                "duration_s": round(info.duration_s, 3),
                "key_id": info.key_id,
            },
        )
        return info

    def _store_sync(
        self,
        call_id: str,
        kind: RecordingKind,
        clear: Path,
        rid: str,
        transcript_state: TranscriptState,
        keep_clear: bool,
    ) -> RecordingInfo:
        now = datetime.now(UTC)
        relative = Path(f"{now:%Y/%m/%d}") / f"{rid}{SUFFIX}"
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        duration = wav_duration(clear)
        enc = crypto.encrypt_file(clear, target, self.keyring, _associated_data(rid, call_id))
        row = RecordingRow(
            id=rid,
            call_id=call_id,
            kind=kind.value,
            key_id=enc.key_id,
            sha256_plain=enc.sha256_plain,
            sha256_cipher=enc.sha256_cipher,
            size=enc.size,
            duration_s=duration,
            path=str(relative),
            created_at=now,
            deleted_at=None,
            hold=False,
            transcript_state=transcript_state.value,
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(RecordingRow.__table__.insert().values(**_values(row)))
        except BaseException:
            target.unlink(missing_ok=True)  # no file without a row
            raise
        if not keep_clear:
            clear.unlink(missing_ok=True)
        return RecordingInfo.of(row)

    def _append(self, call_id: str, type_: EventType, data: dict[str, Any]) -> None:
        if self.event_log is not None:
            self.event_log.append(call_id, type_, data)

    # -- reading ---------------------------------------------------------------------------
    def get(self, recording_id: str) -> RecordingInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(RecordingRow.__table__).where(RecordingRow.id == recording_id)
            ).first()
        return RecordingInfo.of(row) if row is not None else None  # type: ignore[arg-type]

    def list_for_call(self, call_id: str) -> list[RecordingInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(RecordingRow.__table__)
                .where(RecordingRow.call_id == call_id)
                .order_by(RecordingRow.created_at, RecordingRow.id)
            ).all()
        return [RecordingInfo.of(r) for r in rows]  # type: ignore[arg-type]

    def with_transcript_state(self, state: TranscriptState) -> list[RecordingInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(RecordingRow.__table__)
                .where(
                    RecordingRow.transcript_state == state.value,
                    RecordingRow.deleted_at.is_(None),
                )
                .order_by(RecordingRow.created_at)
            ).all()
        return [RecordingInfo.of(r) for r in rows]  # type: ignore[arg-type]

    def set_transcript_state(self, recording_id: str, state: TranscriptState) -> None:
        self._update(recording_id, transcript_state=state.value)

    def set_hold(self, recording_id: str, hold: bool) -> None:
        """Keep a recording past its retention (complaint, open work order) or release it."""
        self._update(recording_id, hold=hold)

    def _update(self, recording_id: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(RecordingRow.__table__)
                .where(RecordingRow.id == recording_id)
                .values(**values)
            )

    def file_of(self, info: RecordingInfo) -> Path:
        return self.root / info.path

    def decrypt_to(self, recording_id: str, dst: Path) -> RecordingInfo:
        """Decrypt into ``dst`` after authenticating every chunk and the plaintext sha256.

        Raises RecordingNotFound, RecordingGone, or crypto.InvalidRecording (then ``dst`` does
        not exist). Blocking: run it in a thread.
        """
        info = self.get(recording_id)
        if info is None:
            raise RecordingNotFound(recording_id)
        if info.deleted_at is not None:
            raise RecordingGone(recording_id)
        crypto.decrypt_file(
            self.file_of(info),
            dst,
            self.keyring,
            _associated_data(info.id, info.call_id),
            expected_sha256=info.sha256,
        )
        return info

    @contextlib.contextmanager
    def decrypted(self, recording_id: str) -> Iterator[tuple[RecordingInfo, Path]]:
        """A private temporary clear copy, deleted when the block ends. Blocking."""
        with tempfile.TemporaryDirectory(prefix="hotline-rec-") as tmp:
            os.chmod(tmp, 0o700)
            path = Path(tmp) / f"{recording_id}.wav"
            info = self.decrypt_to(recording_id, path)
            yield info, path

    def reencrypt(self, recording_id: str) -> RecordingInfo:
        """Move one file to the ring's current key (to retire an old key). Blocking."""
        info = self.get(recording_id)
        if info is None:
            raise RecordingNotFound(recording_id)
        enc = crypto.reencrypt_file(
            self.file_of(info),
            self.file_of(info),
            self.keyring,
            _associated_data(info.id, info.call_id),
        )
        if enc.sha256_plain != info.sha256:  # pragma: no cover - crypto guarantees it
            raise crypto.InvalidRecording("re-encrypted recording changed its plaintext")
        self._update(recording_id, key_id=enc.key_id, sha256_cipher=enc.sha256_cipher)
        return self.get(recording_id)  # type: ignore[return-value]

    # -- retention -------------------------------------------------------------------------
    async def purge(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Delete expired files; return the ``recording.purged`` data of each (also logged)."""
        now = now or datetime.now(UTC)
        removed = await asyncio.to_thread(self._purge_sync, now)
        for call_id, data in removed:
            self._append(call_id, EventType.RECORDING_PURGED, data)
            log.info(
                "purged recording %s (%s, kept %s days)",
                data["item_id"],
                data["kind"],
                data["retention_days"],
            )
        return [data for _, data in removed]

    def _purge_sync(self, now: datetime) -> list[tuple[str, dict[str, Any]]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(RecordingRow.__table__).where(RecordingRow.deleted_at.is_(None))
            ).all()
        by_id = {r.id: r for r in rows}
        # Retention's kinds: a voice message is "voice_message" there.
        items = [
            StoredItem(
                r.id,
                "voice_message" if r.kind == RecordingKind.MESSAGE else r.kind,
                r.created_at,
                r.path,
                r.hold,
            )
            for r in rows
        ]
        removed = []
        for decision in expired(items, self.policy, now):
            row = by_id[decision.item.id]
            try:
                (self.root / row.path).unlink(missing_ok=True)
            except OSError as exc:
                log.error("cannot purge recording %s: %s (will retry)", row.id, exc)
                continue
            self._update(row.id, deleted_at=now)
            data = purge_log(decision, now)
            data.pop("type", None)
            removed.append((row.call_id, data))
        return removed


def _values(row: RecordingRow) -> dict[str, Any]:
    return {c.name: getattr(row, c.key) for c in RecordingRow.__table__.columns}
