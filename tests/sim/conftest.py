"""Fixtures for the SIP phone tests: real pjsua2 worker processes talking over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sim.audio import speak_wav
from sim.phone import Phone

# What the answering phone says in the audio tests (the hotline's greeting).
GREETING = "您好，这里是一二三四八法律服务热线。"


@pytest.fixture(scope="session")
def greeting_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Mandarin sentence spoken by espeak-ng, 8 kHz mono 16-bit."""
    return speak_wav(tmp_path_factory.mktemp("audio") / "greeting.wav", GREETING, speed=175)


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Phone, Phone]]:
    """Two phones, "alice" and "bob", that can call each other directly (no registrar)."""
    async with Phone.start("alice") as alice, Phone.start("bob") as bob:
        yield alice, bob
