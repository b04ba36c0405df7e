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
