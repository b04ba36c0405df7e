"""Encrypted storage: rows, events, keys in the runtime secrets, rotation, retention purge."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import update

from hotline.db import Base, migrate
from hotline.db.testing import DbTarget
from hotline.events import CallEventLog, EventType, events_for_call
from recordings import crypto
from recordings.models import RecordingRow
from recordings.retention import RetentionPolicy
from recordings.store import RecordingStore, load_keyring, rotate_keyring
from sim.audio import make_tone_wav


def _wav(path: Path, seconds: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_tone_wav(path, 440, seconds)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


OUR_TABLES = {"recordings", "transcript_segments", "recording_audit"}


def _ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return getattr(table, "name", name) in OUR_TABLES


def test_models_match_the_migration(db: DbTarget) -> None:
    migrate(db.engine)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": _ours}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
    assert OUR_TABLES <= set(Base.metadata.tables)


def test_keys_live_in_the_runtime_secrets_and_rotate(tmp_path: Path) -> None:
    secrets_file = tmp_path / "secrets.yaml"
    secrets_file.write_text("ari_password: keep-me\n")
    ring = load_keyring(tmp_path)
    assert load_keyring(tmp_path) == ring  # created once, then read back
    data = yaml.safe_load(secrets_file.read_text())
    assert data["ari_password"] == "keep-me"
    assert data["recording_key_current"] == ring.current
    assert stat.S_IMODE(os.stat(secrets_file).st_mode) == 0o600
    rotated = rotate_keyring(tmp_path, "rk-next")
    assert rotated.current == "rk-next" and ring.current in rotated.keys
    assert load_keyring(tmp_path) == rotated


async def test_store_encrypts_records_and_logs(
    sqlite_db: DbTarget, event_log: CallEventLog, tmp_path: Path
) -> None:
    clear = _wav(tmp_path / "asterisk" / "call-1.wav", 2.0)
    plain_sha, original = _sha(clear), clear.read_bytes()
    store = RecordingStore(sqlite_db.engine, tmp_path / "rec", load_keyring(tmp_path), event_log)
    info = await store.store("call-1", "call", clear)

    assert not clear.exists(), "the clear file is deleted once stored"
    stored = store.file_of(info)
    assert stored.read_bytes()[:5] == b"HLREC" and b"RIFF" not in stored.read_bytes()[:64]
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    assert (info.sha256, info.size, info.kind) == (plain_sha, len(original), "call")
    assert info.duration_s == pytest.approx(2.0, abs=0.01)
    assert info.sha256_cipher == _sha(stored)
    assert store.list_for_call("call-1") == [info]

    with store.decrypted(info.id) as (_, path):
        assert path.read_bytes() == original
    await event_log.flush()
    events = events_for_call(sqlite_db.engine, "call-1")
    assert [e.type for e in events] == [EventType.RECORDING_STORED]
    assert events[0].data["recording_id"] == info.id and events[0].data["sha256"] == plain_sha

    # A file moved onto another row (or edited) does not decrypt.
    other = await store.store("call-2", "call", _wav(tmp_path / "b.wav"))
    shutil.copy(stored, store.file_of(other))
    with pytest.raises(crypto.InvalidRecording):
        store.decrypt_to(other.id, tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()


async def test_rotation_keeps_old_files_readable_and_reencrypt_moves_them(
    sqlite_db: DbTarget, tmp_path: Path
) -> None:
    clear = _wav(tmp_path / "a.wav")
    original = clear.read_bytes()
    first = load_keyring(tmp_path)
    store = RecordingStore(sqlite_db.engine, tmp_path / "rec", first)
    old = await store.store("c", "message", clear)
    store.keyring = rotate_keyring(tmp_path, "rk-two")
    newer = await store.store("c", "message", _wav(tmp_path / "b.wav"))
    assert (old.key_id, newer.key_id) == (first.current, "rk-two")
    moved = store.reencrypt(old.id)
    assert moved.key_id == "rk-two" and crypto.read_key_id(store.file_of(old)) == "rk-two"
    store.keyring = crypto.KeyRing({"rk-two": store.keyring.key("rk-two")}, "rk-two")
    with store.decrypted(old.id) as (_, path):  # the retired key is no longer needed
        assert path.read_bytes() == original


async def test_purge_deletes_expired_files_and_logs_them(
    sqlite_db: DbTarget, event_log: CallEventLog, tmp_path: Path
) -> None:
    store = RecordingStore(
        sqlite_db.engine,
        tmp_path / "rec",
        load_keyring(tmp_path),
        event_log,
        policy=RetentionPolicy({"call": 30, "voice_message": 10}),
    )
    now = datetime.now(UTC)
    old_call = await store.store("c-old", "call", _wav(tmp_path / "1.wav"))
    held = await store.store("c-held", "call", _wav(tmp_path / "2.wav"))
    fresh = await store.store("c-new", "call", _wav(tmp_path / "3.wav"))
    message = await store.store("c-msg", "message", _wav(tmp_path / "4.wav"))
    with sqlite_db.engine.begin() as conn:
        for rid, age in ((old_call.id, 31), (held.id, 400), (fresh.id, 29), (message.id, 11)):
            conn.execute(
                update(RecordingRow.__table__)
                .where(RecordingRow.id == rid)
                .values(created_at=now - timedelta(days=age))
            )
    store.set_hold(held.id, True)

    removed = await store.purge(now)
    assert sorted(d["item_id"] for d in removed) == sorted([old_call.id, message.id])
    assert not store.file_of(old_call).exists() and not store.file_of(message).exists()
    assert store.file_of(held).exists() and store.file_of(fresh).exists()
    assert store.get(old_call.id).deleted_at == now  # row kept, marked
    assert await store.purge(now) == []  # nothing twice

    await event_log.flush()
    purged = [e for e in events_for_call(sqlite_db.engine, "c-old")
              if e.type == EventType.RECORDING_PURGED]  # fmt: skip
    assert len(purged) == 1
    assert purged[0].data["retention_days"] == 30 and purged[0].data["kind"] == "call"
    msg_event = events_for_call(sqlite_db.engine, "c-msg")[-1]
    assert msg_event.data["kind"] == "voice_message" and msg_event.data["retention_days"] == 10
