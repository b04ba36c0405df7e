"""Outbound deliveries against a real partner HTTP server on a loopback port.

The partner server checks every request's signature like a real partner would, answers the
first N requests with an error, and counts what it accepted: "delivered exactly once" means
exactly one request was answered 2xx, and every copy carried the same Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from aiohttp import web
from click.testing import CliRunner
from integrations_helpers import make_config
from sqlalchemy import select

from hotline.config import Settings
from hotline.db.engine import session_factory
from hotline.db.testing import DbTarget
from hotline.testing import free_port
from integrations import delivery
from integrations.cli import partners
from integrations.config import partner_secrets
from integrations.models import DeadLetterRow, DeliveryRow
from integrations.schemas import PartnerWorkOrderIn
from integrations.service import IntegrationService
from integrations.signing import IDEMPOTENCY_HEADER, SignatureError, verify


@dataclass
class PartnerServer:
    secret: bytes
    fail_first: int = 0
    fail_status: int = 503
    always_fail: bool = False
    requests: list[dict] = field(default_factory=list)
    accepted: list[dict] = field(default_factory=list)
    url: str = ""
    got_request: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(
                request.headers,
                body,
                partner="12348",
                secret=self.secret,
                now=datetime.now(UTC),
                skew=300,
            )
        except SignatureError as exc:
            return web.json_response({"error": exc.code}, status=401)
        entry = {"key": request.headers[IDEMPOTENCY_HEADER], "body": json.loads(body)}
        self.requests.append(entry)
        self.got_request.set()
        if self.always_fail or len(self.requests) <= self.fail_first:
            return web.json_response({"error": "busy"}, status=self.fail_status)
        self.accepted.append(entry)
        return web.json_response({"ok": True})


@pytest.fixture
async def partner_server() -> AsyncIterator[PartnerServer]:
    server = PartnerServer(secret=b"")
    app = web.Application()
    app.router.add_post("/hotline/events", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    server.url = f"http://127.0.0.1:{port}/hotline/events"
    try:
        yield server
    finally:
        await runner.cleanup()


def _rows(db: DbTarget) -> tuple[list[DeliveryRow], list[DeadLetterRow]]:
    with session_factory(db.engine)() as session:
        return (
            list(session.scalars(select(DeliveryRow)).all()),
            list(session.scalars(select(DeadLetterRow)).all()),
        )


async def _service(
    db: DbTarget, server: PartnerServer, runtime_dir: Path, **delivery_settings: float
) -> IntegrationService:
    config = make_config(server.url, **delivery_settings)
    secrets = partner_secrets(runtime_dir, config.partners)
    server.secret = secrets["12345"]
    service = IntegrationService(db.engine, config, secrets)
    service.worker.rng = random.Random(7)
    await service.start()
    return service


async def _pushed_order(service: IntegrationService) -> str:
    received = await service.receive(
        "12345",
        "k-1",
        PartnerWorkOrderIn(case_id="SZ-1", title="欠薪", description="拖欠工资"),
        nonce="n" * 16,
        nonce_expires=datetime.now(UTC),
    )
    return received.order["id"]


async def test_fails_twice_then_delivered_exactly_once(
    migrated: DbTarget, partner_server: PartnerServer, runtime_dir: Path
) -> None:
    partner_server.fail_first = 2
    service = await _service(migrated, partner_server, runtime_dir)
    try:
        order_id = await _pushed_order(service)
        delivery_id = await service.update_status(order_id, "dispatched", "已派至区司法局")
        assert delivery_id is not None
        async with asyncio.timeout(10):
            assert await service.worker.wait_settled(delivery_id) == delivery.DELIVERED
    finally:
        await service.close()

    assert len(partner_server.requests) == 3
    assert len(partner_server.accepted) == 1
    assert len({r["key"] for r in partner_server.requests}) == 1  # the partner can dedupe
    sent = partner_server.accepted[0]["body"]
    assert (sent["type"], sent["order_id"], sent["status"]) == (
        "status_update",
        order_id,
        "dispatched",
    )
    rows, dead = _rows(migrated)
    assert [(r.status, r.attempts) for r in rows] == [("delivered", 3)]
    assert dead == []


async def test_always_failing_ends_as_dead_letter_then_operator_replay_delivers(
    migrated: DbTarget, partner_server: PartnerServer, runtime_dir: Path
) -> None:
    partner_server.always_fail = True
    service = await _service(migrated, partner_server, runtime_dir, max_attempts=3)
    try:
        delivery_id = await service.dispatch_order("12345", {"id": "WO-1", "title": "求助"})
        async with asyncio.timeout(10):
            assert await service.worker.wait_settled(delivery_id) == delivery.DEAD
        rows, dead = _rows(migrated)
        assert [(r.status, r.attempts) for r in rows] == [("dead", 3)]
        assert [(d.delivery_id, d.attempts) for d in dead] == [(delivery_id, 3)]
        assert "HTTP 503" in (dead[0].last_error or "")
        assert partner_server.accepted == []

        # The operator lists and replays it while the service runs; the partner is fixed.
        settings = Settings(runtime_dir=runtime_dir, database={"url": migrated.url})
        cli = CliRunner()
        listed = await asyncio.to_thread(
            cli.invoke, partners, ["dead-letters", "list", "--json"], obj=settings
        )
        assert listed.exit_code == 0, listed.output
        assert json.loads(listed.output.splitlines()[0])["id"] == dead[0].id
        partner_server.always_fail = False
        replayed = await asyncio.to_thread(
            cli.invoke, partners, ["dead-letters", "replay", str(dead[0].id)], obj=settings
        )
        assert replayed.exit_code == 0, replayed.output
        service.worker.wake()  # what the poll would do within poll_interval_s
        async with asyncio.timeout(10):
            assert await service.worker.wait_settled(delivery_id) == delivery.DELIVERED
        again = await asyncio.to_thread(
            cli.invoke, partners, ["dead-letters", "replay", str(dead[0].id)], obj=settings
        )
        assert again.exit_code != 0 and "already replayed" in again.output
    finally:
        await service.close()
    assert len(partner_server.accepted) == 1
    rows, dead = _rows(migrated)
    assert [r.status for r in rows] == ["delivered"]
    assert dead[0].replayed_at is not None


async def test_refused_for_good_goes_straight_to_dead_letters_and_replay_now(
    migrated: DbTarget, partner_server: PartnerServer, runtime_dir: Path
) -> None:
    partner_server.always_fail = True
    partner_server.fail_status = 400
    service = await _service(migrated, partner_server, runtime_dir)
    try:
        delivery_id = await service.dispatch_order("12345", {"id": "WO-2"})
        async with asyncio.timeout(10):
            assert await service.worker.wait_settled(delivery_id) == delivery.DEAD
    finally:
        await service.close()
    assert len(partner_server.requests) == 1  # a 400 is not retried
    (letter,) = delivery.dead_letters(migrated.engine)

    # No service running: `replay --now` sends it from the command itself.
    partner_server.always_fail = False
    (runtime_dir / "partners.yaml").write_text(
        yaml.safe_dump(make_config(partner_server.url).model_dump(mode="json"))
    )
    settings = Settings(runtime_dir=runtime_dir, database={"url": migrated.url})
    result = await asyncio.to_thread(
        CliRunner().invoke,
        partners,
        ["dead-letters", "replay", str(letter.id), "--now"],
        obj=settings,
    )
    assert result.exit_code == 0, result.output
    assert "delivered" in result.output
    assert len(partner_server.accepted) == 1
    assert delivery.dead_letters(migrated.engine) == []


async def test_queued_deliveries_survive_a_restart(
    migrated: DbTarget, partner_server: PartnerServer, runtime_dir: Path
) -> None:
    config = make_config(partner_server.url)
    secrets = partner_secrets(runtime_dir, config.partners)
    partner_server.secret = secrets["12345"]
    # Queued by a process that stopped before sending anything (no worker started).
    first = IntegrationService(migrated.engine, config, secrets)
    delivery_id = await first.dispatch_order("12345", {"id": "WO-3"})
    await first.close()
    assert partner_server.requests == []

    second = IntegrationService(migrated.engine, config, secrets)
    await second.start()
    try:
        async with asyncio.timeout(10):
            assert await second.worker.wait_settled(delivery_id) == delivery.DELIVERED
    finally:
        await second.close()
    assert [r["body"]["order"]["id"] for r in partner_server.accepted] == ["WO-3"]


def test_a_claimed_delivery_is_not_claimed_twice(migrated: DbTarget) -> None:
    now = datetime.now(UTC)
    with session_factory(migrated.engine).begin() as session:
        row_id = delivery.enqueue(session, "12345", "work_order", {"x": 1}, now=now).id
    first = delivery._claim(migrated.engine, now, 30, 10, None)
    assert [c.id for c in first] == [row_id]
    assert delivery._claim(migrated.engine, now, 30, 10, None) == []
    assert delivery._claim(migrated.engine, now, 30, 10, row_id) == []
