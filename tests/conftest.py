"""Shared pytest fixtures. Each part of the project keeps its fixtures in its own marked block."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# ===== Asterisk runtime fixtures (owner: hotline/asterisk) ===================================
from hotline.testing import AsteriskInstance, running_test_asterisk


@pytest.fixture(scope="session")
def asterisk_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsteriskInstance]:
    """A real Asterisk for the whole test session, beside any `make up` instance.

    Uses (and on first use builds, about a minute) the shared root ``.hotline/asterisk-root``;
    free SIP/HTTP ports and a private 200-port RTP range; a unique instance name; a temporary
    runtime dir (secrets). Yields ``.settings``, ``.secrets``, ``.runtime`` (AsteriskRuntime),
    ``.ari_url`` (http://127.0.0.1:port), ``.seat`` (name, password; also ``.seats``),
    ``.ari_auth`` and ``.sip_port``. Stopped and its instance dir removed at the end.
    """
    with running_test_asterisk(tmp_path_factory.mktemp("asterisk-runtime")) as instance:
        yield instance


# ===== end of Asterisk runtime fixtures =====================================================


# ===== Hypothesis profiles (owner: acd tests) ================================================
# CI runs must be reproducible: with CI set, examples come from a hash of each test (not a
# random seed), there is no deadline on a loaded runner, and a failure prints its blob for
# @reproduce_failure. Loaded here, before the test modules build their settings objects.
import os  # noqa: E402

from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    _hypothesis_settings.load_profile("ci")
# ===== end of Hypothesis profiles ============================================================
