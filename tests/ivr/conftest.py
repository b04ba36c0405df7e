"""Fixtures for the IVR core tests: the real default flow and prompt catalogue, fixed clocks."""

from __future__ import annotations

import pytest

from hotline.prompts import load_catalogue
from ivr.flow import DEFAULT_FLOW, Flow, load_flow


@pytest.fixture(scope="session")
def catalogue() -> dict[str, dict[str, str]]:
    return load_catalogue()


@pytest.fixture(scope="session")
def default_flow(catalogue: dict[str, dict[str, str]]) -> Flow:
    return load_flow(DEFAULT_FLOW, catalogue)
