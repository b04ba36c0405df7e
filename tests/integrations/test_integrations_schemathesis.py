"""schemathesis against the served OpenAPI document: no request makes the API answer 5xx.

The API runs on a loopback port in a thread (its own event loop, a migrated SQLite file).
Two runs: requests as generated (unknown partners, bad headers: everything refused with a
documented 4xx) and requests *signed* with partner 12345's secret, so generated bodies get
past the signature check and exercise validation, idempotency and storage. Bounded examples
keep it to a few seconds.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from integrations_helpers import SECRETS, make_config
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hotline.db import make_engine, migrate
from hotline.testing import free_port
from integrations.http import load_spec, setup_routes
from integrations.service import IntegrationService
from integrations.signing import IDEMPOTENCY_HEADER, sign

schema = schemathesis.openapi.from_dict(load_spec())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('st')}/hotline.db")
    migrate(engine)
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Event | None = None

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        integrations = IntegrationService(engine, make_config(), SECRETS)
        app = web.Application()
        setup_routes(app, integrations)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        started.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10), "the API did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        engine.dispose()


@schema.parametrize()
@EXAMPLES
def test_generated_requests_get_no_5xx(case: schemathesis.Case, base_url: str) -> None:
    response = case.call(base_url=base_url, timeout=10)
    case.validate_response(response, checks=CHECKS)


@schema.parametrize()
@EXAMPLES
def test_signed_generated_requests_get_no_5xx(case: schemathesis.Case, base_url: str) -> None:
    case.path_parameters = {**(case.path_parameters or {}), "partner": "12345"}
    if case.body is NOT_SET:
        body = b""
    elif isinstance(case.body, bytes):  # negative generation: arbitrary bytes
        body = case.body
    else:
        body = json.dumps(case.body).encode()
    headers = sign(SECRETS["12345"], body, sender="12345")
    headers["Content-Type"] = "application/json"
    key = (case.headers or {}).get(IDEMPOTENCY_HEADER)
    if case.method == "POST":
        headers[IDEMPOTENCY_HEADER] = key if isinstance(key, str) and key.isprintable() else "k"
    response = requests.request(
        case.method, base_url + case.formatted_path, data=body, headers=headers, timeout=10
    )
    assert response.status_code < 500, response.text
    case.validate_response(response, checks=CHECKS)
