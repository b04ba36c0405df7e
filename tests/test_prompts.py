"""Prompts: the catalogue is complete, generation is real audio, cached and overridable."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from hotline import prompts
from sim.audio import read_wav


def test_catalogue_has_every_language_for_every_prompt():
    catalogue = prompts.load_catalogue()
    assert "welcome" in catalogue
    for prompt_id, texts in catalogue.items():
        assert texts.get("zh") and texts.get("en"), prompt_id


def test_generate_speaks_8khz_audio_then_uses_the_cache(tmp_path):
    catalogue = {"welcome": prompts.load_catalogue()["welcome"]}
    out, cache = tmp_path / "out", tmp_path / "cache"
    first = prompts.generate(catalogue, out, cache_dir=cache)
    assert (first.spoken, first.cached) == (2, 0)
    samples, rate = read_wav(out / "zh" / "welcome.wav")
    assert rate == 8000 and len(samples) > rate  # more than a second of speech
    assert abs(samples).max() > 1000  # not silence
    second = prompts.generate(catalogue, tmp_path / "out2", cache_dir=cache)
    assert (second.spoken, second.cached) == (0, 2)
    changed = {"welcome": {"zh": "新的欢迎词。", "en": "New welcome."}}
    assert prompts.generate(changed, out, cache_dir=cache).spoken == 2


def test_a_recorded_prompt_replaces_the_spoken_one(tmp_path):
    recorded = tmp_path / "recorded" / "zh"
    recorded.mkdir(parents=True)
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            "44100",
            "-c",
            "2",
            str(recorded / "welcome.wav"),
            "synth",
            "1",
            "sine",
            "440",
        ],
        check=True,
    )
    catalogue = {"welcome": {"zh": "欢迎", "en": "Welcome"}}
    report = prompts.generate(
        catalogue,
        tmp_path / "out",
        cache_dir=tmp_path / "cache",
        recorded_dir=tmp_path / "recorded",
    )
    assert (report.recorded, report.spoken) == (1, 1)
    samples, rate = read_wav(tmp_path / "out" / "zh" / "welcome.wav")
    assert rate == 8000 and len(samples) == 8000  # converted to 8 kHz mono


def test_missing_lists_absent_files(tmp_path):
    catalogue = {"a": {"zh": "甲", "en": "A"}}
    assert prompts.missing(catalogue, tmp_path, ("zh",)) == ["zh/a"]


def test_no_espeak_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda tool: None)
    with pytest.raises(prompts.PromptError, match="espeak-ng is not installed"):
        prompts.speak("你好", "zh", tmp_path / "x.wav")
