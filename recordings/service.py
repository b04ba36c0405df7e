"""The recordings feature as one object the call path uses: record, store, tap, transcribe.

Theory of operation
-------------------
``RecordingService`` owns the encrypted store (``recordings.store``), the audited access
(``recordings.access``), the AudioSocket server (``recordings.audiosocket``), the recogniser
pool (``recordings.stt``) and the taps (``recordings.tap``). The ACD adapter calls it; it never
decides anything about a call's routing and never makes call handling wait for speech.

Per answered call the adapter calls ``start_call_recording(ari, bridge_id, call_id)`` and, for
each party, ``tap(ari, call_id, channel_id, speaker)``; when the recording finishes
(RecordingFinished) ``store_asterisk_recording(...)``; when the call ends ``call_ended``.

Live or post-call, never nothing. ``tap`` asks the pool for a live slot. It returns a
``LiveTap`` when it got one, or ``None`` after logging ``transcript.deferred`` with the reason:
``saturated`` (all ``speech.live_streams`` slots busy), ``live_off`` (``live_streams: 0``),
``no_model`` (no model: the hotline runs on without live
text), ``tap_failed`` (Asterisk refused the snoop/externalMedia), ``worker_failed`` (a worker
died mid-call; its streams fail and this path takes over). A deferred call's recording is
marked ``transcript_state=pending`` when it is stored (or at once if it is already stored),
and post-call runners transcribe pending recordings with ``transcribe_file``. Voice messages
are always transcribed post-call. Pending recordings survive restarts (the state is in the
database) and are picked up at start when a model is available. So each call's event log says
which path was used: ``transcript.started`` + ``transcript.segment`` (live) or
``transcript.deferred`` + ``transcript.segment`` with ``source=post_call``.

Segments. Live segments carry the tapped party as speaker and times from the start of the tap
plus ``offset_s``; post-call segments of a call recording carry ``mixed`` (the bridge
recording is one mono mix of both parties) and times from the start of the recording; those of
a voice message carry ``caller``. Each final segment is appended to the event log
(``transcript.segment``) and inserted into ``transcript_segments``; partial results are only
published on the bus (``transcript.partial``, seq 0) for the agent desk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from hotline.ari import AriClient
from hotline.events import CallEvent, CallEventLog, EventBus, EventType
from recordings import crypto
from recordings.access import RecordingAccess
from recordings.audiosocket import AudioSocketServer
from recordings.models import (
    RecordingKind,
    Speaker,
    TranscriptSegmentRow,
    TranscriptSource,
    TranscriptState,
)
from recordings.retention import RetentionPolicy
from recordings.store import RecordingInfo, RecordingStore, load_keyring
from recordings.stt import (
    ModelMissing,
    Saturated,
    Segment,
    SpeechError,
    SpeechPool,
    SpeechStream,
    SpeechUnavailable,
    StreamFailed,
)
from recordings.tap import Tap, TapFailed, start_tap

log = logging.getLogger(__name__)

POST_CALL_ATTEMPTS = 3


@dataclass
class LiveTap:
    """One party's live transcription: AudioSocket sink → recogniser stream → events."""

    service: RecordingService
    call_id: str
    speaker: Speaker
    stream: SpeechStream
    offset_s: float = 0.0
    tap: Tap | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    segments: int = 0

    # AudioSink
    def audio(self, pcm: bytes, rate: int) -> None:
        self.stream.feed(pcm, rate)

    def closed(self, reason: str) -> None:
        self.service._spawn(self.service._finish_live(self, reason))

    async def stop(self) -> None:
        """Tear the tap down; the AudioSocket then closes and the stream finishes."""
        if self.tap is not None:
            await self.tap.stop()


class RecordingService:
    """See the module docstring."""

    def __init__(
        self,
        engine: Engine,
        event_log: CallEventLog,
        *,
        runtime_dir: Path,
        model_path: Path | str | None,
        bus: EventBus | None = None,
        keyring: crypto.KeyRing | None = None,
        workers: int = 1,
        streams_per_worker: int = 4,
        live_streams: int | None = None,
        nice: int = 0,
        record_calls: bool = True,
        post_call_streams: int = 1,
        policy: RetentionPolicy | None = None,
        audiosocket_host: str = "127.0.0.1",
        audiosocket_port: int = 0,
    ) -> None:
        self.engine = engine
        self.event_log = event_log
        self.bus = bus if bus is not None else event_log.bus
        runtime_dir = Path(runtime_dir)
        self.store = RecordingStore(
            engine,
            runtime_dir / "recordings",
            keyring or load_keyring(runtime_dir),
            event_log,
            policy=policy,
        )
        self.access = RecordingAccess(self.store, event_log)
        self.pool = SpeechPool(
            model_path,
            workers=workers,
            streams_per_worker=streams_per_worker,
            max_live=live_streams,
            nice=nice,
        )
        self.record_calls = record_calls
        self.audiosocket = AudioSocketServer(audiosocket_host, audiosocket_port)
        self.post_call_streams = post_call_streams
        self.live_available = False
        self.model_error: str | None = None
        self._deferred: dict[str, set[str]] = {}
        self._taps: dict[str, list[LiveTap]] = {}
        self._jobs: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._busy = 0  # post-call jobs being worked on
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runners: list[asyncio.Task[None]] = []

    # -- life cycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the AudioSocket server and the recognisers; a missing model is not fatal."""
        await self.audiosocket.start()
        try:
            await self.pool.start()
        except (ModelMissing, SpeechUnavailable) as exc:
            self.model_error = str(exc)
            log.error("live transcription disabled: %s", exc)
        else:
            self.live_available = True
            self._runners = [
                asyncio.create_task(self._post_call_runner(), name=f"post-call-stt-{i}")
                for i in range(self.post_call_streams)
            ]
            pending = await asyncio.to_thread(
                self.store.with_transcript_state, TranscriptState.PENDING
            )
            for info in pending:
                self._enqueue(info.id)

    async def close(self) -> None:
        for taps in list(self._taps.values()):
            for live in taps:
                with contextlib.suppress(Exception):
                    await live.stop()
        for task in self._runners:
            task.cancel()
        await asyncio.gather(*self._runners, return_exceptions=True)
        await self.audiosocket.close()
        await self.pool.close()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)

    async def __aenter__(self) -> RecordingService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recordings task failed", exc_info=task.exception())

    # -- recording -------------------------------------------------------------------------
    async def start_call_recording(
        self, ari: AriClient, bridge_id: str, call_id: str, *, name: str | None = None
    ) -> str:
        """Record the bridge's mix (both parties) into Asterisk's recording dir; the name."""
        name = name or f"call-{uuid.uuid4().hex}"
        if not self.record_calls:  # speech.record_calls: false, only to measure its cost
            return name
        await ari.record_bridge(bridge_id, name, "wav", if_exists="overwrite")
        self.event_log.append(
            call_id,
            EventType.RECORDING_STARTED,
            {"name": name, "kind": RecordingKind.CALL.value, "target": f"bridge:{bridge_id}"},
        )
        return name

    async def store_asterisk_recording(
        self,
        recordings_dir: Path,
        name: str,
        call_id: str,
        kind: RecordingKind | str = RecordingKind.CALL,
        fmt: str = "wav",
    ) -> RecordingInfo | None:
        """Store what Asterisk wrote as ``<recordings_dir>/<name>.<fmt>`` (after it finished).

        ``recordings_dir`` is ``AsteriskRuntime.ari_recordings_dir``. A missing file is logged
        as ``recording.failed`` and returns None.
        """
        path = Path(recordings_dir) / f"{name}.{fmt}"
        if not await asyncio.to_thread(path.is_file):
            self.event_log.append(
                call_id, EventType.RECORDING_FAILED, {"name": name, "reason": "file missing"}
            )
            log.error("call %s: recording %s was not written", call_id, name)
            return None
        return await self.store_recording(call_id, kind, path)

    async def store_recording(
        self, call_id: str, kind: RecordingKind | str, clear_path: Path
    ) -> RecordingInfo:
        """Encrypt and record a clear WAV; queue it for post-call transcription if needed."""
        kind = RecordingKind(kind)
        post_call = kind == RecordingKind.MESSAGE or call_id in self._deferred
        state = TranscriptState.PENDING if post_call else TranscriptState.NONE
        info = await self.store.store(call_id, kind, clear_path, transcript_state=state)
        if post_call:
            self._enqueue(info.id)
        return info

    # -- live transcription ----------------------------------------------------------------
    async def tap(
        self,
        ari: AriClient,
        call_id: str,
        channel_id: str,
        speaker: Speaker | str,
        *,
        offset_s: float = 0.0,
    ) -> LiveTap | None:
        """Start live transcription of one party, or defer the call (see module docstring).

        Never waits for speech-to-text capacity: refusal is immediate.
        """
        speaker = Speaker(speaker)
        if not self.live_available:
            self._defer(call_id, speaker, "no_model")
            return None
        if self.pool.max_live == 0:
            self._defer(call_id, speaker, "live_off")
            return None
        try:
            stream = self.pool.open_stream(live=True)
        except Saturated:
            self._defer(call_id, speaker, "saturated")
            return None
        except SpeechUnavailable:
            self._defer(call_id, speaker, "worker_failed")
            return None
        live = LiveTap(self, call_id, speaker, stream, offset_s)
        stream.on_partial = lambda text: self._partial(live, text)
        stream.on_segment = lambda segment: self._live_segment(live, segment)
        stream.on_failed = lambda reason: self._defer(call_id, speaker, "worker_failed")
        connection_id = str(uuid.uuid4())
        self.audiosocket.expect(connection_id, live)
        try:
            live.tap = await start_tap(ari, channel_id, connection_id, self.audiosocket.address)
        except TapFailed as exc:
            self.audiosocket.forget(connection_id)
            stream.abort()
            log.warning("call %s: %s", call_id, exc)
            self._defer(call_id, speaker, "tap_failed")
            return None
        self._taps.setdefault(call_id, []).append(live)
        self.event_log.append(
            call_id,
            EventType.TRANSCRIPT_STARTED,
            {"speaker": speaker.value, "stream": stream.id, "source": "live"},
        )
        return live

    async def call_ended(self, call_id: str, *, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        """Stop the call's taps and wait (bounded) until their last segments are stored."""
        taps = self._taps.pop(call_id, [])
        for live in taps:
            await live.stop()
        if taps:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    for live in taps:
                        await live.finished.wait()

    def _partial(self, live: LiveTap, text: str) -> None:
        if self.bus is None:
            return
        data = {"speaker": live.speaker.value, "text": text}
        self.bus.publish(
            CallEvent(live.call_id, 0, datetime.now(UTC), EventType.TRANSCRIPT_PARTIAL, data)
        )

    def _live_segment(self, live: LiveTap, segment: Segment) -> None:
        live.segments += 1
        row = self._segment(
            live.call_id, live.speaker, segment, TranscriptSource.LIVE, None, live.offset_s
        )
        self._spawn(self._insert_segments([row]))

    async def _finish_live(self, live: LiveTap, reason: str) -> None:
        try:
            result = await live.stream.finish()
        except StreamFailed:
            return  # on_failed already deferred the call
        finally:
            live.finished.set()
        self.event_log.append(
            live.call_id,
            EventType.TRANSCRIPT_COMPLETED,
            {
                "speaker": live.speaker.value,
                "source": TranscriptSource.LIVE.value,
                "segments": len(result.segments),
                "audio_s": result.audio_s,
                "end": reason,
            },
        )

    def _defer(self, call_id: str, speaker: Speaker, reason: str) -> None:
        first = call_id not in self._deferred
        self._deferred.setdefault(call_id, set()).add(reason)
        self.event_log.append(
            call_id, EventType.TRANSCRIPT_DEFERRED, {"speaker": speaker.value, "reason": reason}
        )
        log.info("call %s: %s transcription deferred to after the call (%s)", call_id, speaker,
                 reason)  # fmt: skip
        if first:  # the recording may already be stored (a worker died late in the call)
            self._spawn(self._mark_stored_pending(call_id))

    async def _mark_stored_pending(self, call_id: str) -> None:
        infos = await asyncio.to_thread(self.store.list_for_call, call_id)
        for info in infos:
            if info.transcript_state == TranscriptState.NONE and info.deleted_at is None:
                await asyncio.to_thread(
                    self.store.set_transcript_state, info.id, TranscriptState.PENDING
                )
                self._enqueue(info.id)

    def deferred_reasons(self, call_id: str) -> set[str]:
        return set(self._deferred.get(call_id, ()))

    # -- post-call transcription -----------------------------------------------------------
    def _enqueue(self, recording_id: str) -> None:
        if recording_id in self._queued:
            return
        self._queued.add(recording_id)
        self._idle.clear()
        self._jobs.put_nowait(recording_id)

    async def wait_post_call_idle(self) -> None:
        """Until no post-call job is queued or running (bound it with asyncio.timeout)."""
        while not (self._jobs.empty() and self._busy == 0):
            self._idle.clear()
            await self._idle.wait()

    async def _post_call_runner(self) -> None:
        while True:
            recording_id = await self._jobs.get()
            self._busy += 1
            try:
                await self._post_call_job(recording_id)
            finally:
                self._busy -= 1
                self._queued.discard(recording_id)
                if self._jobs.empty() and self._busy == 0:
                    self._idle.set()

    async def _post_call_job(self, recording_id: str) -> None:
        last = ""
        for attempt in range(1, POST_CALL_ATTEMPTS + 1):
            try:
                await self.transcribe_file(recording_id)
                return
            except (SpeechError, OSError, crypto.RecordingCryptoError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "post-call transcription of %s failed (attempt %d): %s",
                    recording_id,
                    attempt,
                    last,
                )
                await asyncio.sleep(min(5.0, 0.5 * attempt))
        info = await asyncio.to_thread(self.store.get, recording_id)
        await asyncio.to_thread(
            self.store.set_transcript_state, recording_id, TranscriptState.FAILED
        )
        if info is not None:
            self.event_log.append(
                info.call_id,
                EventType.TRANSCRIPT_FAILED,
                {"recording_id": recording_id, "reason": last[:500]},
            )

    async def transcribe_file(self, recording_id: str) -> list[Segment]:
        """Transcribe a stored recording now (post-call path); store and log its segments.

        Idempotent: segments of an earlier attempt on this recording are replaced.
        """
        info = await asyncio.to_thread(self.store.get, recording_id)
        if info is None:
            raise SpeechError(f"no recording {recording_id}")
        await self.event_log.resume_call(info.call_id)
        speaker = Speaker.CALLER if info.kind == RecordingKind.MESSAGE else Speaker.MIXED
        tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="hotline-stt-"))
        try:
            clear = tmp / "recording.wav"
            await asyncio.to_thread(self.store.decrypt_to, recording_id, clear)
            started = time.monotonic()
            result = await self.pool.transcribe_wav(clear)
        finally:
            await asyncio.to_thread(shutil.rmtree, tmp, True)
        rows = [
            self._segment(info.call_id, speaker, s, TranscriptSource.POST_CALL, recording_id)
            for s in result.segments
        ]
        await self._insert_segments(rows, replace_recording=recording_id)
        await asyncio.to_thread(self.store.set_transcript_state, recording_id, TranscriptState.DONE)
        self.event_log.append(
            info.call_id,
            EventType.TRANSCRIPT_COMPLETED,
            {
                "speaker": speaker.value,
                "source": TranscriptSource.POST_CALL.value,
                "segments": len(rows),
                "audio_s": result.audio_s,
                "recording_id": recording_id,
                "cpu_wall_s": round(time.monotonic() - started, 3),
            },
        )
        return result.segments

    # -- segments --------------------------------------------------------------------------
    def _segment(
        self,
        call_id: str,
        speaker: Speaker,
        segment: Segment,
        source: TranscriptSource,
        recording_id: str | None,
        offset_s: float = 0.0,
    ) -> dict[str, Any]:
        """Log one final segment and return its row values."""
        data: dict[str, Any] = {
            "speaker": speaker.value,
            "start_s": round(offset_s + segment.start_s, 3),
            "end_s": round(offset_s + segment.end_s, 3),
            "text": segment.text,
            "source": source.value,
        }
        if recording_id is not None:
            data["recording_id"] = recording_id
        event = self.event_log.append(call_id, EventType.TRANSCRIPT_SEGMENT, data)
        return {
            "call_id": call_id,
            "speaker": data["speaker"],
            "start_s": data["start_s"],
            "end_s": data["end_s"],
            "text": segment.text,
            "final": True,
            "source": source.value,
            "recording_id": recording_id,
            "created_at": event.ts,
        }

    async def _insert_segments(
        self, rows: list[dict[str, Any]], *, replace_recording: str | None = None
    ) -> None:
        delay = 0.2
        for attempt in range(5):
            try:
                await asyncio.to_thread(self._insert_sync, rows, replace_recording)
                return
            except Exception as exc:  # the database blipped: the event log still has them
                if attempt == 4:
                    log.error("could not store %d transcript segment(s): %s", len(rows), exc)
                    raise
                await asyncio.sleep(delay)
                delay *= 2

    def _insert_sync(self, rows: list[dict[str, Any]], replace_recording: str | None) -> None:
        table = TranscriptSegmentRow.__table__
        with self.engine.begin() as conn:
            if replace_recording is not None:
                conn.execute(delete(table).where(table.c.recording_id == replace_recording))
            if rows:
                conn.execute(insert(table), rows)

    async def flush(self) -> None:
        """Wait for background segment writes (tests, shutdown)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    def transcript(self, call_id: str) -> list[dict[str, Any]]:
        """The call's stored segments in time order (blocking; run in a thread)."""
        return segments_for_call(self.engine, call_id)


def segments_for_call(engine: Engine, call_id: str) -> list[dict[str, Any]]:
    table = TranscriptSegmentRow.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(table).where(table.c.call_id == call_id).order_by(table.c.start_s, table.c.id)
        ).all()
    return [
        {
            "speaker": r.speaker,
            "start_s": r.start_s,
            "end_s": r.end_s,
            "text": r.text,
            "final": r.final,
            "source": r.source,
            "recording_id": r.recording_id,
        }
        for r in rows
    ]


def transcript_text(segments: Iterable[dict[str, Any]]) -> str:
    """Plain text of segments, one line per segment with its speaker (for work orders)."""
    return "\n".join(f"[{s['speaker']}] {s['text']}" for s in segments)
