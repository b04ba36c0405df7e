"""The audio helpers: correlation must tell heard from not heard, levels must be right."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest

from sim.audio import (
    correlation,
    is_silent,
    make_tone_wav,
    read_wav,
    resample,
    rms_dbfs,
    segment_correlation,
    speak_wav,
    write_wav,
)

RNG = np.random.default_rng(12348)


def test_reference_found_at_any_lag_inside_noise() -> None:
    ref = RNG.normal(0, 0.3, 8000)
    received = np.concatenate([RNG.normal(0, 0.01, 3217), 0.5 * ref, RNG.normal(0, 0.01, 900)])
    received[3217 : 3217 + 8000] += RNG.normal(0, 0.01, 8000)  # line noise over the signal
    assert correlation((received, 8000), (ref, 8000)) > 0.95


def test_unrelated_audio_does_not_correlate() -> None:
    ref = RNG.normal(0, 0.3, 4000)
    other = RNG.normal(0, 0.3, 16000)
    assert correlation((other, 8000), (ref, 8000)) < 0.2


def test_silence_and_empty_inputs_give_zero() -> None:
    ref = RNG.normal(0, 0.3, 800)
    assert correlation((np.zeros(4000), 8000), (ref, 8000)) == 0.0
    assert correlation((np.zeros(0), 8000), (ref, 8000)) == 0.0
    assert correlation((ref, 8000), (np.zeros(800), 8000)) == 0.0


def test_truncated_recording_is_penalised() -> None:
    ref = RNG.normal(0, 0.3, 8000)
    half = ref[:4000]  # the far end hung up half way through
    score = correlation((half, 8000), (ref, 8000))
    assert 0.6 < score < 0.8  # sqrt(1/2) of the reference was heard


def test_rates_are_reconciled(tmp_path: Path) -> None:
    wide = make_tone_wav(tmp_path / "wide.wav", [300, 1100], 1.0, rate=16000)
    narrow = make_tone_wav(tmp_path / "narrow.wav", [300, 1100], 1.5, rate=8000)
    assert correlation(narrow, wide) > 0.98
    samples, rate = read_wav(wide)
    assert len(resample(samples, rate, 8000)) == 8000


def test_tone_level_and_silence(tmp_path: Path) -> None:
    tone = make_tone_wav(tmp_path / "tone.wav", 1000, 0.5, amplitude=0.5)
    assert rms_dbfs(tone) == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.1)
    assert not is_silent(tone)
    quiet = write_wav(tmp_path / "quiet.wav", np.zeros(800, dtype=np.int16))
    assert rms_dbfs(quiet) == float("-inf")
    assert is_silent(quiet)


def test_speech_is_telephone_format(tmp_path: Path) -> None:
    path = speak_wav(tmp_path / "s.wav", "请按一号键", voice="cmn")
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() > 4000  # more than half a second of speech
    assert rms_dbfs(path) > -35


def test_segment_correlation_forgives_a_jitter_buffer_slip() -> None:
    ref = RNG.normal(0, 0.3, 16000)
    # A receiver that inserted 20 ms of concealment half way through.
    slipped = np.concatenate([ref[:8000], np.zeros(160), ref[8000:]])
    assert correlation((slipped, 8000), (ref, 8000)) < 0.8
    assert segment_correlation((slipped, 8000), (ref, 8000)) > 0.97
    # ... but not missing audio.
    cut = np.concatenate([ref[:8000], np.zeros(8000)])
    assert segment_correlation((cut, 8000), (ref, 8000)) < 0.6
