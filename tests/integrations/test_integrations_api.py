"""The signed work-order exchange API on a real loopback server, over SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from integrations_helpers import SECRETS, Api, order, push, push_headers
from sqlalchemy import func, select

from hotline.db import Base
from hotline.db.engine import session_factory
from hotline.db.testing import DbTarget
from hotline.events.log import events_for_call
from hotline.events.types import EventType
from integrations.models import NonceRow, PartnerWorkOrderRow
from integrations.service import event_call_id
from integrations.signing import sign

SECRET = SECRETS["12345"]


def stored(api: Api) -> tuple[int, int]:
    """(partner orders, nonces) in the database."""
    with session_factory(api.db.engine)() as session:
        orders = session.scalar(select(func.count()).select_from(PartnerWorkOrderRow))
        nonces = session.scalar(select(func.count()).select_from(NonceRow))
    return orders, nonces


async def test_valid_push_creates_one_order_and_announces_it(api: Api) -> None:
    async with api.bus.subscribe("integration.*") as sub:
        status, body, _ = await push(api.client, SECRET, order())
        assert status == 201, body
        assert body["id"].startswith("pwo_")
        assert body["status"] == "received" and body["case_id"] == "SZ-2026-000123"
        assert stored(api) == (1, 1)
        async with asyncio.timeout(5):
            event = await sub.get()
    assert event.type == EventType.INTEGRATION_WORKORDER_RECEIVED
    assert event.data["order_id"] == body["id"] and event.data["partner"] == "12345"

    await api.event_log.flush()
    logged = events_for_call(api.db.engine, event_call_id(body["id"]))
    assert [e.type for e in logged] == [EventType.INTEGRATION_WORKORDER_RECEIVED]
    with session_factory(api.db.engine)() as session:
        row = session.get(PartnerWorkOrderRow, body["id"])
        assert row is not None and row.payload["caller"]["phone"] == "13800138000"
    assert [o["id"] for o in await api.integrations.unlinked_orders()] == [body["id"]]

    # The partner asks where its order is (a signed GET with an empty body).
    path = f"/api/partners/12345/workorders/{body['id']}"
    response = await api.client.get(path, headers=sign(SECRET, b"", sender="12345"))
    assert response.status == 200
    assert (await response.json())["id"] == body["id"]
    # ... and may not read it as another partner, nor unsigned.
    other = f"/api/partners/110/workorders/{body['id']}"
    response = await api.client.get(other, headers=sign(SECRETS["110"], b"", sender="110"))
    assert response.status == 404
    response = await api.client.get(path)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unsigned"


async def test_same_idempotency_key_creates_nothing_new(api: Api) -> None:
    status, first, _ = await push(api.client, SECRET, order(), key="retry-me")
    assert status == 201
    # A proper retry: same key and body, fresh nonce and timestamp.
    status, again, _ = await push(api.client, SECRET, order(), key="retry-me")
    assert status == 200
    assert again == first
    assert stored(api)[0] == 1

    # Two copies racing each other still make one order.
    results = await asyncio.gather(
        *(push(api.client, SECRET, order("RACE-1"), key="race") for _ in range(4))
    )
    assert sorted(r[0] for r in results) == [200, 200, 200, 201]
    assert len({r[1]["id"] for r in results}) == 1
    assert stored(api)[0] == 2

    # The same key for a different order is refused.
    status, body, _ = await push(api.client, SECRET, order("OTHER-9"), key="retry-me")
    assert status == 409 and body["error"]["code"] == "idempotency_conflict"
    assert body["error"]["order_id"] == first["id"]
    assert stored(api)[0] == 2


async def test_replayed_request_is_refused(api: Api) -> None:
    body = json.dumps(order()).encode()
    headers = push_headers(SECRET, body, key="k1")
    first = await api.client.post("/api/partners/12345/workorders", data=body, headers=headers)
    assert first.status == 201
    before = stored(api)
    replay = await api.client.post("/api/partners/12345/workorders", data=body, headers=headers)
    assert replay.status == 409
    assert (await replay.json())["error"]["code"] == "replayed_nonce"
    assert stored(api) == before == (1, 1)


def _bad_requests() -> list[tuple[str, dict, int, str]]:
    """(what, push() arguments, expected status, expected error code)."""
    stale = datetime.now(UTC) - timedelta(seconds=301)
    future = datetime.now(UTC) + timedelta(seconds=400)
    return [
        ("wrong signature", {"secret": b"not-the-secret"}, 401, "bad_signature"),
        ("another partner's secret", {"secret": SECRETS["110"]}, 401, "bad_signature"),
        ("stale timestamp", {"now": stale}, 401, "stale_timestamp"),
        ("future timestamp", {"now": future}, 401, "stale_timestamp"),
        ("malformed JSON", {"raw": b'{"case_id": "A1", "title": '}, 400, "invalid_json"),
        ("not UTF-8", {"raw": b'{"case_id": "\xff"}'}, 400, "invalid_json"),
        ("JSON but not an object", {"raw": b"[1, 2]"}, 400, "invalid_json"),
        ("deeply nested JSON", {"raw": b"[" * 2000 + b"]" * 2000}, 400, "invalid_json"),
        ("oversized body", {"payload": order(description="很" * 2000)}, 413, "too_large"),
        ("unknown partner", {"partner": "999"}, 404, "unknown_partner"),
        ("partner may not push", {"partner": "12355"}, 403, "inbound_disabled"),
        ("no idempotency key", {"key": None}, 400, "missing_idempotency_key"),
        ("missing title", {"payload": {"case_id": "A1", "description": "x"}}, 422, "invalid_order"),
        ("unknown field", {"payload": order(secret_field=1)}, 422, "invalid_order"),
        ("NUL in text", {"payload": order(title="a\x00b")}, 422, "invalid_order"),
        ("naive due time", {"payload": order(due_at="2026-10-01T10:00:00")}, 422, "invalid_order"),
    ]


async def test_bad_pushes_are_refused_and_store_nothing(api: Api) -> None:
    # One database per backend for the whole matrix: PostgreSQL set-up is the slow part.
    for what, args, status, code in _bad_requests():
        partner = args.pop("partner", "12345")
        secret = args.pop("secret", SECRETS.get(partner, SECRET))
        payload = args.pop("payload", order())
        got, body, _ = await push(api.client, secret, payload, partner=partner, **args)
        assert (got, body["error"]["code"]) == (status, code), (what, body)
        assert body["error"]["message"], what
        assert stored(api) == (0, 0), what


async def test_unsigned_and_mislabelled_pushes_store_nothing(api: Api) -> None:
    body = json.dumps(order()).encode()
    response = await api.client.post(
        "/api/partners/12345/workorders",
        data=body,
        headers={"Content-Type": "application/json", "Idempotency-Key": "k"},
    )
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unsigned"

    # Signed by 110 with 110's secret, but sent to 12345's URL.
    headers = push_headers(SECRETS["110"], body, partner="110")
    response = await api.client.post("/api/partners/12345/workorders", data=body, headers=headers)
    assert (await response.json())["error"]["code"] == "partner_mismatch"

    headers = push_headers(SECRET, body)
    headers["Content-Type"] = "text/plain"
    response = await api.client.post("/api/partners/12345/workorders", data=body, headers=headers)
    assert response.status == 415

    # A chunked body over the limit (no Content-Length to refuse it early).
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b" " * 1000

    headers = push_headers(SECRET, b"")
    response = await api.client.post(
        "/api/partners/12345/workorders", data=chunks(), headers=headers
    )
    assert response.status == 413
    assert stored(api) == (0, 0)


async def test_status_update_changes_what_the_partner_reads(api: Api) -> None:
    status, body, _ = await push(api.client, SECRET, order())
    assert status == 201
    # 12345 has no outbound_url here: nothing is queued, the partner polls.
    assert await api.integrations.update_status(body["id"], "dispatched", "派至区司法局") is None
    await api.integrations.link_work_order(body["id"], "WO-2026-0001")
    path = f"/api/partners/12345/workorders/{body['id']}"
    response = await api.client.get(path, headers=sign(SECRET, b"", sender="12345"))
    data = await response.json()
    assert (data["status"], data["work_order_id"]) == ("dispatched", "WO-2026-0001")
    assert await api.integrations.unlinked_orders() == []
    with pytest.raises(ValueError, match="unknown status"):
        await api.integrations.update_status(body["id"], "done")


async def test_openapi_document_is_served(api: Api) -> None:
    response = await api.client.get("/api/openapi.json")
    assert response.status == 200
    spec = await response.json()
    assert spec["openapi"].startswith("3.")
    assert "/api/partners/{partner}/workorders" in spec["paths"]
    # The documented order fields are exactly the validated ones.
    from integrations.schemas import ORDER_STATUSES, PartnerWorkOrderIn

    documented = spec["components"]["schemas"]["PartnerWorkOrder"]["properties"]
    assert set(documented) == set(PartnerWorkOrderIn.model_fields)
    statuses = spec["components"]["schemas"]["OrderStatus"]["properties"]["status"]["enum"]
    assert tuple(statuses) == ORDER_STATUSES


def test_models_match_migration(migrated: DbTarget) -> None:
    import integrations.models  # noqa: F401  (the tables are on Base.metadata)

    with migrated.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    ours = [d for d in diff if "integration" in repr(d) or "partner_work_orders" in repr(d)]
    assert ours == []


async def test_setup_wires_routes_and_worker_into_the_service(
    migrated: DbTarget, tmp_path: Path
) -> None:
    """What hotline.service does: setup(app, service) with the service's engine and log."""
    from types import SimpleNamespace

    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from hotline.config import Settings
    from integrations.config import partner_secrets
    from integrations.http import INTEGRATIONS_KEY, setup

    runtime = tmp_path / "runtime"
    service = SimpleNamespace(
        settings=Settings(runtime_dir=runtime), engine=migrated.engine, event_log=None
    )
    app = web.Application()
    setup(app, service)
    integrations = app[INTEGRATIONS_KEY]
    assert service.integrations is integrations
    assert [p.id for p in integrations.config.partners] == ["110", "12345", "12355", "12368"]
    secret = partner_secrets(runtime, integrations.config.partners)["12345"]
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert integrations.worker._task is not None  # started with the app
        status, body, _ = await push(client, secret, order())
        assert status == 201, body
    assert integrations.worker._task is None  # stopped with the app
