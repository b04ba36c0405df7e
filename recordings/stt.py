"""Speech-to-text: a pool of Vosk recogniser worker processes fed from asyncio.

Theory of operation
-------------------
Recognition is CPU-bound (about 0.2 s of CPU per second of audio with a small model) and the
model is big (0.5 GB, 2 s to load), so it runs in ``workers`` child processes
(``python -m recordings.stt``), each loading the model ONCE and holding one recogniser per
stream. The event loop only moves bytes: nothing here blocks it.

Streams. ``SpeechPool.open_stream()`` gives a ``SpeechStream`` on the least-loaded worker.
Live streams are bounded: at most ``streams_per_worker`` per worker (about what one core
keeps up with in real time) and at most ``max_live`` in all (``speech.live_streams``: live
transcription of every call cannot scale, at about 4 streams per core, so the rest of the calls
are transcribed from their recording after the call). When every live slot is taken
``open_stream`` raises ``Saturated`` at once, so the caller can defer that call to post-call
transcription instead of waiting or overloading the workers; no audio is ever queued for a
stream that has no slot.
File streams (post-call) are not counted against live slots; they are paced instead: at most
``window`` chunks in flight, the next one is sent only when the worker has acknowledged the
last, so a file uses the CPU the live streams leave and delays a live stream's chunk by at most
one file chunk. The service bounds how many file streams run at once.

Audio is buffered per stream and sent in chunks of ``chunk_s`` seconds (fewer, larger
messages). Results come back as they are made: ``on_partial(text)`` (live streams only, when
the guess changes) and ``on_segment(Segment)`` for each final utterance with start/end seconds
from the start of the stream. ``finish()`` flushes, asks for the last result and returns a
``StreamResult`` once the worker is done with the stream; only then is the slot free.

Workers run at CPU niceness ``nice`` (``speech.nice``): recognition, live or post-call, uses
the CPU that Asterisk's media and the service leave, so a busy recogniser delays a transcript,
never a caller's audio.

Failures are never silent: if a worker dies, each of its streams fails (``StreamFailed`` from
``finish()`` and ``on_failed(reason)``), the pool starts a replacement, and the owner
(``recordings.service``) defers those calls to post-call transcription.

Wire protocol (pipes, binary): every message is ``type (1 B) | stream (4 B) | length (4 B)``
big-endian, then ``length`` bytes. Parent→worker: OPEN (json {rate, partials}), AUDIO (PCM
s16le), CLOSE, ABORT, QUIT. Worker→parent: READY (json), PARTIAL (utf-8), FINAL (json {text,
start, end}), ACK (8 B: audio bytes processed so far), DONE (json {audio_s}), ERROR (utf-8;
stream 0 means the worker cannot go on).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import struct
import sys
import time
import wave
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

HEADER = struct.Struct(">BII")
ACK = struct.Struct(">Q")
REPO_ROOT = Path(__file__).resolve().parent.parent


class Msg(IntEnum):
    OPEN = 1
    AUDIO = 2
    CLOSE = 3
    ABORT = 4
    QUIT = 9
    READY = 10
    PARTIAL = 11
    FINAL = 12
    ACK = 13
    DONE = 14
    ERROR = 15


class SpeechError(RuntimeError):
    """Base class of this module's errors."""


class ModelMissing(SpeechError):
    """No usable Vosk model at the configured path (the hotline runs on without live text)."""


class SpeechUnavailable(SpeechError):
    """No recogniser worker is running (model failed to load, workers died)."""


class Saturated(SpeechError):
    """Every live slot is taken: defer this stream to post-call transcription."""


class StreamFailed(SpeechError):
    """The stream's worker died or reported an error before the stream finished."""


MODEL_FILES = ("am/final.mdl", "conf/model.conf")


def check_model(model_path: Path | str | None) -> Path:
    """The model directory, or ``ModelMissing`` saying what is wrong and how to fix it."""
    hint = (
        "run `hotline models fetch zh` (or set speech.model_path to a Vosk model directory); "
        "until then calls are recorded but not transcribed live (未配置语音识别模型)"
    )
    if model_path is None:
        raise ModelMissing(f"no Vosk model configured: {hint}")
    path = Path(model_path)
    if not path.is_dir():
        raise ModelMissing(f"Vosk model directory {path} does not exist: {hint}")
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        raise ModelMissing(f"{path} is not a Vosk model (missing {', '.join(missing)}): {hint}")
    return path


@dataclass(frozen=True, slots=True)
class Segment:
    start_s: float
    end_s: float
    text: str


@dataclass
class StreamResult:
    segments: list[Segment] = field(default_factory=list)
    audio_s: float = 0.0


def _pack(kind: Msg, stream: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, stream, len(payload)) + payload


# --- parent side ---------------------------------------------------------------------------


class SpeechStream:
    """One audio stream being recognised (see the module docstring)."""

    def __init__(
        self,
        pool: SpeechPool,
        worker: _Worker,
        stream_id: int,
        *,
        live: bool,
        on_partial: Callable[[str], None] | None,
        on_segment: Callable[[Segment], None] | None,
        on_failed: Callable[[str], None] | None,
    ) -> None:
        self.pool = pool
        self.worker = worker
        self.id = stream_id
        self.live = live
        self.on_partial = on_partial
        self.on_segment = on_segment
        self.on_failed = on_failed
        self.rate = 0
        self.result = StreamResult()
        self.sent = 0  # audio bytes sent to the worker
        self.acked = 0  # audio bytes the worker has processed
        self._buffer = bytearray()
        self._opened = False
        self._closing = False
        self._ended = False
        self._done: asyncio.Future[StreamResult] = asyncio.get_running_loop().create_future()
        self._acked = asyncio.Event()
        self.failure: str | None = None

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def lag_s(self) -> float:
        """Audio sent to the worker but not yet recognised, in seconds."""
        return (self.sent - self.acked) / (2 * self.rate) if self.rate else 0.0

    def feed(self, pcm: bytes, rate: int) -> bool:
        """Queue little-endian 16-bit mono PCM; False if the stream no longer takes audio."""
        if self._closing or self._ended:
            return False
        if not self._opened:
            self.rate = rate
            self._opened = True
            self.worker.send(
                _pack(Msg.OPEN, self.id, json.dumps({"rate": rate, "partials": self.live}).encode())
            )
        elif rate != self.rate:
            log.warning("stream %d changed rate %d -> %d: audio ignored", self.id, self.rate, rate)
            return False
        self._buffer += pcm
        if len(self._buffer) >= self.pool.chunk_bytes(rate):
            self._flush()
        return True

    def _flush(self) -> None:
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            self.sent += len(data)
            self.worker.send(_pack(Msg.AUDIO, self.id, data))

    async def feed_paced(self, pcm: bytes, rate: int, window: int = 2) -> None:
        """Feed a file's audio without flooding the worker: at most ``window`` chunks unacked."""
        step = self.pool.chunk_bytes(rate)
        for start in range(0, len(pcm), step):
            while not self._ended and self.sent - self.acked >= window * step:
                self._acked.clear()
                await self._acked.wait()
            if self._ended:
                raise StreamFailed(self.failure or "stream ended")
            self.feed(pcm[start : start + step], rate)

    async def finish(self) -> StreamResult:
        """Flush, take the last result, free the slot; raises StreamFailed if the worker died."""
        if not self._closing and not self._ended:
            self._closing = True
            if not self._opened:
                self._end(None)
            else:
                self._flush()
                self.worker.send(_pack(Msg.CLOSE, self.id))
        return await asyncio.shield(self._done)

    def abort(self) -> None:
        """Drop the stream without a result (e.g. the tap could not be set up)."""
        if self._ended:
            return
        if self._opened:
            self.worker.send(_pack(Msg.ABORT, self.id))
        self._end(None)

    # from the worker reader
    def _message(self, kind: Msg, payload: bytes) -> None:
        if kind == Msg.PARTIAL:
            if self.on_partial is not None:
                self.on_partial(payload.decode("utf-8"))
        elif kind == Msg.FINAL:
            data = json.loads(payload)
            segment = Segment(float(data["start"]), float(data["end"]), data["text"])
            self.result.segments.append(segment)
            if self.on_segment is not None:
                self.on_segment(segment)
        elif kind == Msg.ACK:
            (self.acked,) = ACK.unpack(payload)
            self._acked.set()
        elif kind == Msg.DONE:
            self.result.audio_s = float(json.loads(payload)["audio_s"])
            self._end(None)
        elif kind == Msg.ERROR:
            self._end(payload.decode("utf-8", "replace"))

    def _end(self, failure: str | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._acked.set()
        self.pool._released(self)
        if failure is None:
            self._done.set_result(self.result)
            return
        self.failure = failure
        self._done.set_exception(StreamFailed(failure))
        self._done.exception()  # retrieved here: finish() may never be awaited after a crash
        if self.on_failed is not None:
            self.on_failed(failure)


class _Worker:
    def __init__(self, index: int, proc: asyncio.subprocess.Process) -> None:
        self.index = index
        self.proc = proc
        self.streams: dict[int, SpeechStream] = {}
        self.live = 0
        self.ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.stderr: deque[str] = deque(maxlen=50)
        self.tasks: list[asyncio.Task[None]] = []
        self.alive = True

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, data: bytes) -> None:
        if self.alive and self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.write(data)

    @property
    def backlog_bytes(self) -> int:
        stdin = self.proc.stdin
        return stdin.transport.get_write_buffer_size() if stdin is not None else 0


class SpeechPool:
    """Recogniser worker processes (see the module docstring)."""

    def __init__(
        self,
        model_path: Path | str | None,
        *,
        workers: int = 1,
        streams_per_worker: int = 4,
        max_live: int | None = None,
        nice: int = 0,
        chunk_s: float = 0.2,
        start_timeout: float = 60.0,
        restart: bool = True,
        python: str = sys.executable,
    ) -> None:
        if workers < 1 or streams_per_worker < 1:
            raise ValueError("need at least one worker and one stream per worker")
        if max_live is not None and max_live < 0:
            raise ValueError("max_live must be >= 0")
        self.model_path = model_path
        self.n_workers = workers
        self.streams_per_worker = streams_per_worker
        self.max_live = max_live
        self.nice = nice
        self.chunk_s = chunk_s
        self.start_timeout = start_timeout
        self.restart = restart
        self.python = python
        self.workers: list[_Worker] = []
        self._next_id = 1
        self._closing = False
        self.started = False
        self.restarts = 0
        self.refused = 0  # live streams refused because saturated

    def chunk_bytes(self, rate: int) -> int:
        return max(2, int(rate * self.chunk_s) * 2)

    @property
    def capacity(self) -> int:
        """Live streams the pool takes at once."""
        slots = self.streams_per_worker * sum(1 for w in self.workers if w.alive)
        return slots if self.max_live is None else min(slots, self.max_live)

    @property
    def live_streams(self) -> int:
        return sum(w.live for w in self.workers if w.alive)

    @property
    def pids(self) -> list[int]:
        return [w.pid for w in self.workers if w.alive]

    async def start(self) -> None:
        """Spawn the workers and wait until each has loaded the model.

        Raises ModelMissing (bad path, before spawning anything) or SpeechUnavailable.
        """
        check_model(self.model_path)
        results = await asyncio.gather(
            *(self._spawn(i) for i in range(self.n_workers)), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        self.workers = [r for r in results if isinstance(r, _Worker)]
        if errors:
            await self.close()
            raise SpeechUnavailable(f"speech workers failed to start: {errors[0]}")
        self.started = True

    async def _spawn(self, index: int) -> _Worker:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        # One BLAS/OpenMP thread per worker: parallelism comes from processes, not threads.
        env.setdefault("OMP_NUM_THREADS", "1")
        proc = await asyncio.create_subprocess_exec(
            self.python,
            "-m",
            "recordings.stt",
            "--model",
            str(self.model_path),
            "--nice",
            str(self.nice),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        worker = _Worker(index, proc)
        worker.tasks = [
            asyncio.create_task(self._read(worker), name=f"stt-worker-{index}"),
            asyncio.create_task(self._read_stderr(worker), name=f"stt-worker-{index}-stderr"),
        ]
        try:
            async with asyncio.timeout(self.start_timeout):
                info = await asyncio.shield(worker.ready)
        except BaseException as exc:
            await self._kill(worker)
            detail = "\n".join(worker.stderr) or "(no output)"
            raise SpeechUnavailable(
                f"speech worker {index} did not start: {exc!r}\n{detail}"
            ) from None
        log.info(
            "speech worker %d (pid %d) loaded the model in %.1f s",
            index,
            proc.pid,
            info["load_s"],
        )
        return worker

    def open_stream(
        self,
        *,
        live: bool = True,
        on_partial: Callable[[str], None] | None = None,
        on_segment: Callable[[Segment], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
    ) -> SpeechStream:
        """A new stream on the least-loaded worker; ``Saturated`` if no live slot is free."""
        alive = [w for w in self.workers if w.alive]
        if not alive:
            raise SpeechUnavailable("no speech worker is running")
        if live:
            alive = [w for w in alive if w.live < self.streams_per_worker]
            if not alive or self.live_streams >= self.capacity:
                self.refused += 1
                raise Saturated(f"all {self.capacity} live transcription slots are busy")
        worker = min(alive, key=lambda w: (w.live, len(w.streams), w.index))
        stream = SpeechStream(
            self,
            worker,
            self._next_id,
            live=live,
            on_partial=on_partial,
            on_segment=on_segment,
            on_failed=on_failed,
        )
        self._next_id += 1
        worker.streams[stream.id] = stream
        if live:
            worker.live += 1
        return stream

    def _released(self, stream: SpeechStream) -> None:
        worker = stream.worker
        if worker.streams.pop(stream.id, None) is not None and stream.live:
            worker.live -= 1

    async def transcribe_wav(
        self, path: Path, on_segment: Callable[[Segment], None] | None = None
    ) -> StreamResult:
        """Recognise a WAV file (16-bit mono PCM) on a paced file stream."""
        stream = self.open_stream(live=False, on_segment=on_segment)
        try:
            with wave.open(str(path), "rb") as w:
                if w.getsampwidth() != 2 or w.getnchannels() != 1:
                    raise SpeechError(f"{path}: need 16-bit mono PCM WAV")
                rate = w.getframerate()
                frames = rate  # one second per read
                while True:
                    pcm = await asyncio.to_thread(w.readframes, frames)
                    if not pcm:
                        break
                    await stream.feed_paced(pcm, rate)
            return await stream.finish()
        except BaseException:
            stream.abort()
            raise

    # -- worker I/O ----------------------------------------------------------------------
    async def _read(self, worker: _Worker) -> None:
        stdout = worker.proc.stdout
        assert stdout is not None
        reason = "worker exited"
        try:
            while True:
                header = await stdout.readexactly(HEADER.size)
                kind, stream_id, length = HEADER.unpack(header)
                payload = await stdout.readexactly(length) if length else b""
                kind = Msg(kind)
                if kind == Msg.READY:
                    if not worker.ready.done():
                        worker.ready.set_result(json.loads(payload))
                    continue
                if kind == Msg.ERROR and stream_id == 0:
                    reason = payload.decode("utf-8", "replace")
                    log.error("speech worker %d: %s", worker.index, reason)
                    break
                stream = worker.streams.get(stream_id)
                if stream is not None:
                    stream._message(kind, payload)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._worker_gone(worker, reason)

    async def _read_stderr(self, worker: _Worker) -> None:
        stderr = worker.proc.stderr
        assert stderr is not None
        async for line in stderr:
            worker.stderr.append(line.decode("utf-8", "replace").rstrip())

    def _worker_gone(self, worker: _Worker, reason: str) -> None:
        worker.alive = False
        if not worker.ready.done():
            worker.ready.set_exception(SpeechUnavailable(reason))
            worker.ready.exception()
        failed = list(worker.streams.values())
        for stream in failed:
            stream._end(f"speech worker {worker.index} failed: {reason}")
        if self._closing:
            return
        log.error(
            "speech worker %d (pid %d) stopped (%s); %d stream(s) failed",
            worker.index,
            worker.pid,
            reason,
            len(failed),
        )
        if self.restart and self.started:
            asyncio.get_running_loop().create_task(self._replace(worker))

    async def _replace(self, old: _Worker) -> None:
        await self._kill(old)
        delay = 0.5
        while not self._closing:
            try:
                new = await self._spawn(old.index)
            except SpeechUnavailable as exc:
                log.error("speech worker %d restart failed: %s", old.index, exc)
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)
                continue
            if self._closing:
                await self._kill(new)
                return
            self.workers = [new if w is old else w for w in self.workers]
            self.restarts += 1
            return

    async def _kill(self, worker: _Worker) -> None:
        worker.alive = False
        proc = worker.proc
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(Exception):
            await proc.wait()
        for task in worker.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        await asyncio.gather(
            *(t for t in worker.tasks if t is not asyncio.current_task()),
            return_exceptions=True,
        )

    async def close(self) -> None:
        """Stop every worker (streams still open fail with 'pool closed')."""
        self._closing = True
        for worker in self.workers:
            for stream in list(worker.streams.values()):
                stream._end("speech pool closed")
            if worker.alive and worker.proc.stdin is not None:
                with contextlib.suppress(Exception):
                    worker.proc.stdin.write(_pack(Msg.QUIT, 0))
                    worker.proc.stdin.close()
        for worker in self.workers:
            try:
                async with asyncio.timeout(5):
                    await worker.proc.wait()
            except TimeoutError:
                pass
            await self._kill(worker)
        self.workers = []

    async def __aenter__(self) -> SpeechPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# --- worker side (runs in the child process) ---------------------------------------------


def _read_exact(stream: IO[bytes], size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        part = stream.read(size - len(data))
        if not part:
            return None
        data += part
    return data


def _segment_of(result: dict[str, Any], position_s: float) -> dict[str, Any] | None:
    text = (result.get("text") or "").strip()
    if not text:
        return None
    words = result.get("result") or []
    if words:
        start, end = float(words[0]["start"]), float(words[-1]["end"])
    else:
        start = end = position_s
    return {"text": text, "start": round(start, 3), "end": round(end, 3)}


def worker_main(model_path: str, nice: int = 0) -> int:
    """The worker process: load the model once, then serve streams until QUIT or EOF."""
    if nice > 0:
        # Below Asterisk and the service: a busy recogniser must never delay call audio.
        with contextlib.suppress(OSError):
            os.nice(nice)
    out = sys.stdout.buffer
    inp = sys.stdin.buffer

    def emit(kind: Msg, stream: int, payload: bytes = b"") -> None:
        out.write(_pack(kind, stream, payload))

    try:
        from vosk import KaldiRecognizer, Model, SetLogLevel

        SetLogLevel(-1)
        started = time.monotonic()
        model = Model(model_path)
    except Exception as exc:
        emit(Msg.ERROR, 0, f"cannot load Vosk model {model_path}: {exc!r}".encode())
        out.flush()
        return 3
    emit(
        Msg.READY,
        0,
        json.dumps({"load_s": round(time.monotonic() - started, 3), "pid": os.getpid()}).encode(),
    )
    out.flush()

    recognizers: dict[int, Any] = {}
    state: dict[int, dict[str, Any]] = {}
    while True:
        header = _read_exact(inp, HEADER.size)
        if header is None:
            return 0
        kind, sid, length = HEADER.unpack(header)
        payload = _read_exact(inp, length) if length else b""
        if payload is None:
            return 0
        try:
            if kind == Msg.OPEN:
                options = json.loads(payload)
                rec = KaldiRecognizer(model, float(options["rate"]))
                rec.SetWords(True)
                recognizers[sid] = rec
                state[sid] = {
                    "rate": int(options["rate"]),
                    "partials": bool(options.get("partials")),
                    "bytes": 0,
                    "partial": "",
                }
            elif kind == Msg.AUDIO:
                rec, st = recognizers.get(sid), state.get(sid)
                if rec is None or st is None:
                    continue
                st["bytes"] += len(payload)
                position = st["bytes"] / (2 * st["rate"])
                if rec.AcceptWaveform(payload):
                    segment = _segment_of(json.loads(rec.Result()), position)
                    st["partial"] = ""
                    if segment is not None:
                        emit(Msg.FINAL, sid, json.dumps(segment, ensure_ascii=False).encode())
                elif st["partials"]:
                    partial = json.loads(rec.PartialResult()).get("partial", "")
                    if partial and partial != st["partial"]:
                        st["partial"] = partial
                        emit(Msg.PARTIAL, sid, partial.encode("utf-8"))
                emit(Msg.ACK, sid, ACK.pack(st["bytes"]))
            elif kind in (Msg.CLOSE, Msg.ABORT):
                rec, st = recognizers.pop(sid, None), state.pop(sid, None)
                if kind == Msg.CLOSE and rec is not None and st is not None:
                    position = st["bytes"] / (2 * st["rate"])
                    segment = _segment_of(json.loads(rec.FinalResult()), position)
                    if segment is not None:
                        emit(Msg.FINAL, sid, json.dumps(segment, ensure_ascii=False).encode())
                    emit(Msg.DONE, sid, json.dumps({"audio_s": round(position, 3)}).encode())
            elif kind == Msg.QUIT:
                return 0
        except Exception as exc:  # one bad stream must not take the others down
            recognizers.pop(sid, None)
            state.pop(sid, None)
            emit(Msg.ERROR, sid, f"{type(exc).__name__}: {exc}".encode())
        out.flush()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Vosk recogniser worker (internal)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--nice", type=int, default=0, help="lower the worker's CPU priority")
    args = parser.parse_args(argv)
    return worker_main(args.model, args.nice)


if __name__ == "__main__":
    sys.exit(main())
