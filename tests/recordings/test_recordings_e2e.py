"""End to end with a real Asterisk 22: a pjsua2 caller dials 12348 and speaks Korean; a small
Stasis app of this test (on hotline.ari.AriClient, not the service) answers, records the
bridge and taps the caller into the recogniser pool over snoop + externalMedia/AudioSocket.

Own Asterisk instance (``running_test_asterisk`` with app name ``rectest``): the session's
``asterisk_instance`` has the e2e ``hotline_service`` process subscribed to app ``hotline``,
and a second subscriber to the same app would take its calls away.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hotline.ari import AriClient
from hotline.ari.events import Event, RecordingFinished, StasisEnd, StasisStart
from hotline.events import CallEventLog, EventType, events_for_call
from hotline.testing import AsteriskInstance, running_test_asterisk
from recordings.service import LiveTap, RecordingService, segments_for_call
from recordings.tap import is_tap_channel
from sim.audio import correlation, rms_dbfs
from sim.phone import Phone

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
APP = "rectest"


@pytest.fixture(scope="module")
def asterisk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskInstance]:
    with running_test_asterisk(tmp_path_factory.mktemp("rec-asterisk"), app_name=APP) as inst:
        yield inst


@dataclass
class Call:
    channel_id: str
    bridge_id: str = ""
    recording: str = ""
    tap: LiveTap | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Future[RecordingFinished] | None = None


class CallApp:
    """Answer, bridge, record the bridge, tap the caller; store and clean up at hang-up."""

    def __init__(self, ari: AriClient, service: RecordingService) -> None:
        self.ari, self.service = ari, service
        self.calls: dict[str, Call] = {}
        self.arrived: asyncio.Queue[Call] = asyncio.Queue()
        self.recordings: dict[str, asyncio.Future[RecordingFinished]] = {}

    async def handle(self, event: Event) -> None:
        if isinstance(event, StasisStart) and not is_tap_channel(event.channel.id):
            await self._answer(event)
        elif isinstance(event, RecordingFinished):
            future = self.recordings.get(event.name)
            if future is not None and not future.done():
                future.set_result(event)
        elif isinstance(event, StasisEnd) and event.channel.id in self.calls:
            self.calls[event.channel.id].ended.set()

    async def _answer(self, event: StasisStart) -> None:
        assert event.args[:1] == ("inbound",), event.args
        call = Call(event.channel.id)
        self.calls[call.channel_id] = call
        loop = asyncio.get_running_loop()
        await self.ari.answer(call.channel_id)
        bridge = await self.ari.create_bridge("mixing")
        call.bridge_id = bridge["id"]
        await self.ari.add_to_bridge(call.bridge_id, call.channel_id)
        call.recording = f"rec-{call.channel_id.replace('.', '-')}"
        call.finished = self.recordings[call.recording] = loop.create_future()
        await self.service.start_call_recording(
            self.ari, call.bridge_id, call.channel_id, name=call.recording
        )
        call.tap = await self.service.tap(self.ari, call.channel_id, call.channel_id, "caller")
        call.ready.set()
        self.arrived.put_nowait(call)

    async def end(self, call: Call, recordings_dir: Path) -> None:
        """After the caller hung up: stop recording, store it, end the taps."""
        async with asyncio.timeout(15):
            await call.ended.wait()
        with contextlib.suppress(Exception):
            await self.ari.stop_recording(call.recording)
        assert call.finished is not None
        async with asyncio.timeout(15):
            await call.finished
        await self.ari.destroy_bridge(call.bridge_id)
        await self.service.store_asterisk_recording(recordings_dir, call.recording,
                                                    call.channel_id)  # fmt: skip
        await self.service.call_ended(call.channel_id)


@pytest.fixture
async def running(
    asterisk: AsteriskInstance,
    sqlite_db,
    event_log: CallEventLog,
    ko_model: Path,
    tmp_path: Path,
) -> AsyncIterator[CallApp]:
    # One worker, one live stream: the second concurrent call saturates the pool.
    service = RecordingService(
        sqlite_db.engine,
        event_log,
        runtime_dir=tmp_path / "runtime",
        model_path=ko_model,
        workers=1,
        streams_per_worker=1,
    )
    await service.start()
    ari = AriClient(asterisk.ari_url, *asterisk.ari_auth, APP)
    app = CallApp(ari, service)
    ari.add_handler(app.handle)
    task = asyncio.create_task(ari.run())
    try:
        await ari.wait_connected(15)
        yield app
    finally:
        await service.close()
        await ari.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _speak_and_hang_up(phone: Phone, asterisk: AsteriskInstance, app: CallApp,
                             speech: Path) -> Call:  # fmt: skip
    uri = f"sip:12348@127.0.0.1:{asterisk.sip_port}"
    sip_call = await phone.call(uri, from_user=f"139{random.randrange(10**8):08d}")
    await phone.wait_event("media_active", call=sip_call, timeout=10)
    call = await asyncio.wait_for(app.arrived.get(), 10)
    await asyncio.wait_for(call.ready.wait(), 10)
    await phone.play(sip_call, speech)
    await phone.wait_event("play_done", call=sip_call, timeout=30)
    await phone.hangup(sip_call)
    await phone.wait_event("disconnected", call=sip_call, timeout=10)
    await app.end(call, asterisk.runtime.ari_recordings_dir)
    return call


def _types(engine, call_id: str) -> list[str]:
    return [str(e.type) for e in events_for_call(engine, call_id)]


async def test_recorded_encrypted_and_transcribed_live(
    asterisk: AsteriskInstance,
    running: CallApp,
    sqlite_db,
    event_log: CallEventLog,
    ko_speech: Path,
    tmp_path: Path,
) -> None:
    service = running.service
    async with Phone.start("caller") as phone:
        call = await _speak_and_hang_up(phone, asterisk, running, ko_speech)
    assert call.tap is not None, "the pool had a free slot: the call is transcribed live"

    [info] = service.store.list_for_call(call.channel_id)
    assert info.kind == "call" and info.duration_s > 5
    raw = asterisk.runtime.ari_recordings_dir / f"{call.recording}.wav"
    assert not raw.exists(), "the clear file Asterisk wrote is deleted"
    assert service.store.file_of(info).read_bytes()[:5] == b"HLREC"
    with service.store.decrypted(info.id) as (_, wav):  # checks every chunk and the sha256
        level = rms_dbfs(wav)
        score = correlation(wav, ko_speech)
    assert level > -45, f"recording is silent ({level:.1f} dBFS)"
    assert score > 0.5, f"recording does not contain the caller's speech (r={score:.2f})"

    await service.flush()
    await event_log.flush()
    segments = segments_for_call(sqlite_db.engine, call.channel_id)
    assert segments, "no transcript segments"
    assert {(s["speaker"], s["source"]) for s in segments} == {("caller", "live")}
    assert all(s["text"].strip() for s in segments)
    assert all(0 <= s["start_s"] <= s["end_s"] for s in segments)
    types = _types(sqlite_db.engine, call.channel_id)
    for expected in ("recording.started", "transcript.started", "transcript.segment",
                     "transcript.completed", "recording.stored"):  # fmt: skip
        assert expected in types
    assert "transcript.deferred" not in types
    assert info.transcript_state == "none"


async def test_saturated_pool_defers_to_post_call_and_loses_nothing(
    asterisk: AsteriskInstance,
    running: CallApp,
    sqlite_db,
    event_log: CallEventLog,
    ko_speech: Path,
) -> None:
    service = running.service
    assert service.pool.capacity == 1
    async with Phone.start("callers") as phone:
        calls = await asyncio.gather(
            _speak_and_hang_up(phone, asterisk, running, ko_speech),
            _speak_and_hang_up(phone, asterisk, running, ko_speech),
        )
    live = [c for c in calls if c.tap is not None]
    deferred = [c for c in calls if c.tap is None]
    assert len(live) == 1 and len(deferred) == 1, "one live slot for two calls"

    async with asyncio.timeout(90):
        await service.wait_post_call_idle()
    await service.flush()
    await event_log.flush()

    live_segments = segments_for_call(sqlite_db.engine, live[0].channel_id)
    assert live_segments and {s["source"] for s in live_segments} == {"live"}

    call_id = deferred[0].channel_id
    events = events_for_call(sqlite_db.engine, call_id)
    reasons = [e.data["reason"] for e in events if e.type == EventType.TRANSCRIPT_DEFERRED]
    assert reasons == ["saturated"]
    post = segments_for_call(sqlite_db.engine, call_id)
    assert post and all(s["text"].strip() for s in post)
    [info] = service.store.list_for_call(call_id)
    assert {(s["source"], s["recording_id"]) for s in post} == {("post_call", info.id)}
    assert service.store.get(info.id).transcript_state == "done"
    completed = [e.data for e in events if e.type == EventType.TRANSCRIPT_COMPLETED]
    assert completed and completed[-1]["source"] == "post_call"
