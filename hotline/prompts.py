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


MAX_ANNOUNCED = 20  # positions and minutes spoken as numbers; beyond it "more than 20"


def queue_prompts() -> Catalogue:
    """Position and estimated-wait announcements, one prompt per number (no concatenation of
    digit recordings: a whole sentence sounds natural)."""
    prompts: Catalogue = {}
    for n in range(1, MAX_ANNOUNCED + 1):
        verb, plural = ("is", "") if n == 1 else ("are", "s")
        prompts[f"queue_position_{n}"] = {
            "zh": f"您前面还有{n}位来电。",
            "en": f"There {verb} {n} caller{plural} ahead of you.",
        }
        prompts[f"queue_wait_{n}"] = {
            "zh": f"预计等待约{n}分钟。",
            "en": f"The estimated wait is about {n} minute{plural}.",
        }
    prompts["queue_position_many"] = {
        "zh": f"您前面还有超过{MAX_ANNOUNCED}位来电。",
        "en": f"There are more than {MAX_ANNOUNCED} callers ahead of you.",
    }
    prompts["queue_wait_long"] = {
        "zh": f"预计等待超过{MAX_ANNOUNCED}分钟。",
        "en": f"The estimated wait is more than {MAX_ANNOUNCED} minutes.",
    }
    prompts["queue_next"] = {"zh": "您是下一位。", "en": "You are next."}
    return prompts


def announcement(position: int, ewt_seconds: float) -> list[str]:
    """The prompt ids that tell a waiting caller their position and estimated wait."""
    if position <= 1:
        ids = ["queue_next"]
    elif position - 1 <= MAX_ANNOUNCED:
        ids = [f"queue_position_{position - 1}"]
    else:
        ids = ["queue_position_many"]
    minutes = max(1, round(ewt_seconds / 60))
    ids.append(f"queue_wait_{minutes}" if minutes <= MAX_ANNOUNCED else "queue_wait_long")
    return ids


def load_catalogue(directory: Path = CATALOGUE_DIR) -> Catalogue:
    """All prompt ids with their texts per language, from every YAML file in ``directory``."""
    catalogue: Catalogue = dict(queue_prompts())
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


def hold_music(out_dir: Path) -> Path:
    """Music on hold for waiting callers: a calm plucked arpeggio (sox), 8 kHz WAV.

    Generated so that a fresh installation has hold music without licensed files; put
    recorded music in the same directory to replace it."""
    target = out_dir / "moh" / "hold.wav"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    notes = ["C4", "E4", "G4", "C5", "A3", "C4", "E4", "A4", "F3", "A3", "C4", "F4", "G3", "B3",
             "D4", "G4"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for i, note in enumerate(notes):
            part = Path(tmp) / f"{i:02d}.wav"
            subprocess.run(
                [
                    "sox",
                    "-n",
                    "-r",
                    "8000",
                    "-c",
                    "1",
                    "-b",
                    "16",
                    str(part),
                    "synth",
                    "0.6",
                    "pluck",
                    note,
                    "fade",
                    "0",
                    "0.6",
                    "0.4",
                    "vol",
                    "0.35",
                ],
                check=True,
                capture_output=True,
            )
            parts.append(str(part))
        phrase = Path(tmp) / "phrase.wav"
        subprocess.run(["sox", *parts, str(phrase)], check=True, capture_output=True)
        subprocess.run(
            ["sox", str(phrase), str(target), "repeat", "3"], check=True, capture_output=True
        )
    return target


def missing(catalogue: Catalogue, out_dir: Path, languages: tuple[str, ...]) -> list[str]:
    """Prompt files the catalogue names that are not in ``out_dir``."""
    return [
        f"{lang}/{prompt_id}"
        for prompt_id in catalogue
        for lang in languages
        if not (out_dir / lang / f"{prompt_id}.wav").exists()
    ]
