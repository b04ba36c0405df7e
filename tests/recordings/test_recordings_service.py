"""RecordingService without Asterisk: post-call transcription of stored recordings, and a
missing model (the hotline keeps running, defers, and catches up once a model is there)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from hotline.db.testing import DbTarget
from hotline.events import CallEventLog, EventType, events_for_call
from recordings.models import TranscriptState
from recordings.service import RecordingService, segments_for_call

pytestmark = pytest.mark.timeout(120)


async def test_a_voice_message_is_transcribed_after_the_call(
    sqlite_db: DbTarget, event_log: CallEventLog, tmp_path: Path, ko_model: Path, ko_speech: Path
) -> None:
    clear = tmp_path / "msg.wav"
    shutil.copy(ko_speech, clear)
    async with RecordingService(
        sqlite_db.engine, event_log, runtime_dir=tmp_path / "rt", model_path=ko_model
    ) as service:
        info = await service.store_recording("call-msg", "message", clear)
        async with asyncio.timeout(60):
            await service.wait_post_call_idle()
        assert service.store.get(info.id).transcript_state == TranscriptState.DONE
    segments = segments_for_call(sqlite_db.engine, "call-msg")
    assert segments and all(s["text"] for s in segments)
    assert {(s["speaker"], s["source"], s["recording_id"]) for s in segments} == {
        ("caller", "post_call", info.id)
    }
    await event_log.flush()
    types = [e.type for e in events_for_call(sqlite_db.engine, "call-msg")]
    assert types[0] == EventType.RECORDING_STORED
    assert types.count(EventType.TRANSCRIPT_SEGMENT) == len(segments)
    assert types[-1] == EventType.TRANSCRIPT_COMPLETED


async def test_without_a_model_calls_are_recorded_and_transcribed_once_one_exists(
    sqlite_db: DbTarget, event_log: CallEventLog, tmp_path: Path, ko_model: Path, ko_speech: Path
) -> None:
    runtime = tmp_path / "rt"
    clear = tmp_path / "call.wav"
    shutil.copy(ko_speech, clear)
    async with RecordingService(
        sqlite_db.engine, event_log, runtime_dir=runtime, model_path=tmp_path / "no-model"
    ) as service:
        assert not service.live_available
        assert "hotline models fetch zh" in (service.model_error or "")
        # No ARI is touched: refusal is immediate and logged.
        assert await service.tap(None, "call-x", "chan-1", "caller") is None  # type: ignore[arg-type]
        info = await service.store_recording("call-x", "call", clear)
        assert service.store.get(info.id).transcript_state == TranscriptState.PENDING

    await event_log.flush()
    deferred = [e for e in events_for_call(sqlite_db.engine, "call-x")
                if e.type == EventType.TRANSCRIPT_DEFERRED]  # fmt: skip
    assert [e.data for e in deferred] == [{"speaker": "caller", "reason": "no_model"}]

    async with RecordingService(
        sqlite_db.engine, event_log, runtime_dir=runtime, model_path=ko_model
    ) as service:
        async with asyncio.timeout(60):
            await service.wait_post_call_idle()
        assert service.store.get(info.id).transcript_state == TranscriptState.DONE
    segments = segments_for_call(sqlite_db.engine, "call-x")
    assert segments and {s["speaker"] for s in segments} == {"mixed"}


async def test_live_streams_zero_transcribes_every_call_after_it_from_the_recording(
    sqlite_db: DbTarget, event_log: CallEventLog, tmp_path: Path, ko_model: Path, ko_speech: Path
) -> None:
    """``speech.live_streams: 0``: no tap is made (ARI untouched), each party's deferral is
    logged as ``live_off`` and the stored recording is transcribed after the call."""
    clear = tmp_path / "call.wav"
    shutil.copy(ko_speech, clear)
    async with RecordingService(
        sqlite_db.engine, event_log, runtime_dir=tmp_path / "rt", model_path=ko_model,
        live_streams=0,
    ) as service:  # fmt: skip
        assert service.live_available
        for speaker in ("caller", "seat"):
            assert await service.tap(None, "call-off", "chan-1", speaker) is None  # type: ignore[arg-type]
        info = await service.store_recording("call-off", "call", clear)
        async with asyncio.timeout(60):
            await service.wait_post_call_idle()
        assert service.store.get(info.id).transcript_state == TranscriptState.DONE
    await event_log.flush()
    events = events_for_call(sqlite_db.engine, "call-off")
    deferred = [e.data for e in events if e.type == EventType.TRANSCRIPT_DEFERRED]
    assert deferred == [{"speaker": "caller", "reason": "live_off"},
                        {"speaker": "seat", "reason": "live_off"}]  # fmt: skip
    segments = segments_for_call(sqlite_db.engine, "call-off")
    assert segments and {(s["source"], s["recording_id"]) for s in segments} == {
        ("post_call", info.id)
    }


async def test_record_calls_false_records_nothing(
    sqlite_db: DbTarget, event_log: CallEventLog, tmp_path: Path
) -> None:
    """The benchmark's switch (``speech.record_calls: false``): no ARI request, no event."""
    async with RecordingService(
        sqlite_db.engine, event_log, runtime_dir=tmp_path / "rt", model_path=None,
        record_calls=False,
    ) as service:  # fmt: skip
        name = await service.start_call_recording(None, "bridge-1", "call-norec")  # type: ignore[arg-type]
        assert name.startswith("call-")
    await event_log.flush()
    assert events_for_call(sqlite_db.engine, "call-norec") == []
