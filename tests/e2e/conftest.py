"""The hotline service as a real process, beside the session's real Asterisk."""

from __future__ import annotations

import pytest

from hotline.testing import AsteriskInstance, ServiceProcess, launch_service


@pytest.fixture(scope="session")
def hotline_service(asterisk_instance: AsteriskInstance, tmp_path_factory) -> ServiceProcess:
    service = launch_service(asterisk_instance, tmp_path_factory.mktemp("service"))
    yield service
    if service.process is not None:
        service.stop()
    service.engine.dispose()
