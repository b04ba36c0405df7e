"""The recogniser pool with a real Vosk model (Korean, from PyPI) on espeak-ng speech."""

from __future__ import annotations

import asyncio
import difflib
import os
import signal
import wave
from pathlib import Path

import pytest

from hotline.testing import async_wait_for
from recordings.stt import (
    ModelMissing,
    Saturated,
    Segment,
    SpeechPool,
    StreamFailed,
    check_model,
)

pytestmark = pytest.mark.timeout(120)


def _pcm(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes()), w.getframerate()


async def test_file_and_live_streams_give_the_same_text(ko_model: Path, ko_speech: Path) -> None:
    async with SpeechPool(ko_model, workers=1, streams_per_worker=2) as pool:
        offline = await pool.transcribe_wav(ko_speech)
        text = " ".join(s.text for s in offline.segments)
        assert text.strip(), "no text recognised"
        pcm, rate = _pcm(ko_speech)
        assert offline.audio_s == pytest.approx(len(pcm) / 2 / rate, abs=0.05)
        assert all(0 <= s.start_s <= s.end_s <= offline.audio_s + 0.1 for s in offline.segments)

        partials: list[str] = []
        segments: list[Segment] = []
        stream = pool.open_stream(live=True, on_partial=partials.append,
                                  on_segment=segments.append)  # fmt: skip
        frame = rate // 50 * 2  # 20 ms, as Asterisk sends it
        for i in range(0, len(pcm), frame):
            assert stream.feed(pcm[i : i + frame], rate)
        live = await stream.finish()
        assert live.segments == segments
        # Same audio, same model: nearly the same words (Vosk is not bit-for-bit repeatable
        # on this robotic speech: a few words near the confidence edge change between runs).
        live_text = " ".join(s.text for s in live.segments)
        similarity = difflib.SequenceMatcher(None, live_text.split(), text.split()).ratio()
        assert similarity > 0.6, (live_text, text)
        assert partials, "a live stream reports partial results"
        assert pool.live_streams == 0


async def test_live_slots_are_bounded_and_refusal_is_immediate(
    ko_model: Path, ko_speech: Path
) -> None:
    async with SpeechPool(ko_model, workers=1, streams_per_worker=1) as pool:
        assert pool.capacity == 1
        first = pool.open_stream(live=True)
        with pytest.raises(Saturated):
            pool.open_stream(live=True)
        assert pool.refused == 1
        # A post-call (file) stream is not refused: it is paced instead.
        result = await pool.transcribe_wav(ko_speech)
        assert result.segments
        await first.finish()  # no audio: frees the slot at once
        second = pool.open_stream(live=True)
        second.abort()
        assert pool.live_streams == 0


async def test_a_dead_worker_fails_its_streams_loudly_and_is_replaced(
    ko_model: Path, ko_speech: Path
) -> None:
    async with SpeechPool(ko_model, workers=1, streams_per_worker=2) as pool:
        failures: list[str] = []
        stream = pool.open_stream(live=True, on_failed=failures.append)
        pcm, rate = _pcm(ko_speech)
        stream.feed(pcm[: rate * 2], rate)
        old_pid = pool.pids[0]
        os.kill(old_pid, signal.SIGKILL)
        with pytest.raises(StreamFailed, match="speech worker 0 failed"):
            await asyncio.wait_for(stream.finish(), 10)
        assert failures and "failed" in failures[0]
        await async_wait_for(lambda: pool.restarts == 1 and pool.capacity == 2, 30)
        assert pool.pids[0] != old_pid
        result = await pool.transcribe_wav(ko_speech)
        assert result.segments


async def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match="hotline models fetch zh"):
        check_model(None)
    with pytest.raises(ModelMissing, match="does not exist"):
        await SpeechPool(tmp_path / "nowhere").start()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelMissing, match="not a Vosk model"):
        await SpeechPool(tmp_path / "empty").start()


def _niceness(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


async def test_live_streams_are_capped_in_all_and_workers_yield_the_cpu(ko_model: Path) -> None:
    """``speech.live_streams`` bounds live streams across workers (the rest of the calls go to
    post-call), and the recognisers run below the call audio's priority (``speech.nice``)."""
    async with SpeechPool(ko_model, workers=1, streams_per_worker=4, max_live=2, nice=7) as pool:
        assert pool.capacity == 2
        first, second = pool.open_stream(live=True), pool.open_stream(live=True)
        with pytest.raises(Saturated):
            pool.open_stream(live=True)
        assert _niceness(pool.pids[0]) - _niceness(os.getpid()) == 7
        first.abort()
        pool.open_stream(live=True).abort()  # the freed slot is taken again
        second.abort()
    async with SpeechPool(ko_model, workers=1, max_live=0) as pool:
        assert pool.capacity == 0
        with pytest.raises(Saturated):
            pool.open_stream(live=True)
