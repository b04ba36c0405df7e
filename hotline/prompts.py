"""Prompt audio: the catalogue of what callers hear, and the 8 kHz WAV files Asterisk plays.

Each prompt has an id and a text per language (``ivr/prompts/*.yaml``). ``generate`` makes the
files a deployment plays: a recorded file ``<recorded_dir>/<lang>/<id>.wav`` wins; otherwise the
text is spoken by espeak-ng and converted by sox to 8 kHz mono 16-bit WAV (what Asterisk plays
without transcoding). Spoken files are cached by a hash of voice and text, so a changed text is
spoken again and an unchanged one never is.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

CATALOGUE_DIR = Path(__file__).resolve().parent.parent / "ivr" / "prompts"
VOICES = {"zh": "cmn", "en": "en-us"}
# Slower than espeak's default: callers on a phone line need time to understand a menu.
SPEED_WPM = {"zh": 165, "en": 160}


class PromptError(Exception):
    pass


Catalogue = dict[str, dict[str, str]]


def load_catalogue(directory: Path = CATALOGUE_DIR) -> Catalogue:
    """All prompt ids with their texts per language, from every YAML file in ``directory``."""
    catalogue: Catalogue = {}
    for path in sorted(directory.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for prompt_id, texts in data.items():
            if prompt_id in catalogue:
                raise PromptError(f"{path}: prompt {prompt_id!r} is defined twice")
            if not isinstance(texts, dict) or not all(isinstance(t, str) for t in texts.values()):
                raise PromptError(f"{path}: prompt {prompt_id!r} needs a text per language")
            catalogue[str(prompt_id)] = {str(lang): text for lang, text in texts.items()}
    return catalogue


@dataclass
class GenerateReport:
    recorded: int = 0
    spoken: int = 0
    cached: int = 0


def _spoken_cache_path(cache_dir: Path, lang: str, text: str) -> Path:
    digest = hashlib.sha256(f"{VOICES[lang]}|{SPEED_WPM[lang]}|{text}".encode()).hexdigest()
    return cache_dir / lang / f"{digest[:32]}.wav"


def speak(text: str, lang: str, out: Path) -> None:
    """espeak-ng → sox: 8 kHz mono signed 16-bit WAV, normalised to -3 dBFS."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise PromptError(f"{tool} is not installed (run scripts/install-debian-deps.sh)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(
            ["espeak-ng", "-v", VOICES[lang], "-s", str(SPEED_WPM[lang]), "-w", str(raw), text],
            check=True,
            capture_output=True,
        )
        converted = Path(tmp) / "out.wav"
        subprocess.run(
            [
                "sox",
                str(raw),
                "-r",
                "8000",
                "-c",
                "1",
                "-b",
                "16",
                "-e",
                "signed-integer",
                str(converted),
                "norm",
                "-3",
            ],
            check=True,
            capture_output=True,
        )
        shutil.move(converted, out)


def _convert_recorded(source: Path, out: Path) -> None:
    subprocess.run(
        ["sox", str(source), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(out)],
        check=True,
        capture_output=True,
    )


def generate(
    catalogue: Catalogue,
    out_dir: Path,
    *,
    cache_dir: Path,
    languages: tuple[str, ...] = ("zh", "en"),
    recorded_dir: Path | None = None,
) -> GenerateReport:
    """Write ``out_dir/<lang>/<id>.wav`` for every prompt and language; returns what it did."""
    report = GenerateReport()
    jobs: list[tuple[str, str, Path]] = []
    for prompt_id, texts in catalogue.items():
        for lang in languages:
            target = out_dir / lang / f"{prompt_id}.wav"
            target.parent.mkdir(parents=True, exist_ok=True)
            recorded = recorded_dir / lang / f"{prompt_id}.wav" if recorded_dir else None
            if recorded is not None and recorded.exists():
                _convert_recorded(recorded, target)
                report.recorded += 1
                continue
            if lang not in texts:
                raise PromptError(f"prompt {prompt_id!r} has no {lang!r} text")
            jobs.append((lang, texts[lang], target))

    def make(job: tuple[str, str, Path]) -> bool:
        lang, text, target = job
        cached = _spoken_cache_path(cache_dir, lang, text)
        fresh = not cached.exists()
        if fresh:
            speak(text, lang, cached)
        shutil.copyfile(cached, target)
        return fresh

    with ThreadPoolExecutor(max_workers=2) as pool:
        for fresh in pool.map(make, jobs):
            if fresh:
                report.spoken += 1
            else:
                report.cached += 1
    return report


def missing(catalogue: Catalogue, out_dir: Path, languages: tuple[str, ...]) -> list[str]:
    """Prompt files the catalogue names that are not in ``out_dir``."""
    return [
        f"{lang}/{prompt_id}"
        for prompt_id in catalogue
        for lang in languages
        if not (out_dir / lang / f"{prompt_id}.wav").exists()
    ]
