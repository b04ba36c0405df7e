"""Shared by the integration tests: partners and secrets, and what a partner's system does
(sign a push or a status query)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp.test_utils import TestClient

from hotline.db.testing import DbTarget
from hotline.events.bus import EventBus
from hotline.events.log import CallEventLog
from integrations.config import IntegrationsConfig, parse_config
from integrations.service import IntegrationService
from integrations.signing import new_nonce, sign

SECRETS = {
    "110": b"secret-of-110-for-tests",
    "12345": b"secret-of-12345-for-tests",
    "12355": b"secret-of-12355-for-tests",
}


def make_config(outbound_url: str | None = None, **delivery: float) -> IntegrationsConfig:
    return parse_config(
        {
            "max_body_bytes": 4096,
            "clock_skew_s": 300,
            "delivery": {
                "max_attempts": 4,
                "initial_delay_s": 0.02,
                "max_delay_s": 0.1,
                "poll_interval_s": 0.5,
                "lease_s": 30,
                **delivery,
            },
            "partners": [
                {"id": "110", "name": "110 报警服务台"},
                {"id": "12345", "name": "12345 政务服务热线", "outbound_url": outbound_url},
                {"id": "12355", "name": "12355 青少年服务台", "inbound": False},
            ],
        }
    )


@dataclass
class Api:
    client: TestClient
    integrations: IntegrationService
    bus: EventBus
    event_log: CallEventLog
    db: DbTarget


def order(case_id: str = "SZ-2026-000123", **extra: Any) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "title": "拖欠工资如何申请劳动仲裁",
        "description": "来电人反映公司拖欠三个月工资，咨询劳动仲裁的程序和所需材料。",
        "topic": "劳动争议",
        "urgency": "normal",
        "caller": {"name": "张先生", "phone": "13800138000"},
        **extra,
    }


def push_headers(
    secret: bytes,
    body: bytes,
    *,
    partner: str = "12345",
    key: str | None = "key-0001",
    now: datetime | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    headers = sign(secret, body, sender=partner, now=now, nonce=nonce or new_nonce())
    headers["Content-Type"] = "application/json"
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


async def push(
    client: TestClient,
    secret: bytes,
    payload: Any,
    *,
    partner: str = "12345",
    key: str | None = "key-0001",
    now: datetime | None = None,
    nonce: str | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    body = raw if raw is not None else json.dumps(payload, ensure_ascii=False).encode()
    headers = push_headers(secret, body, partner=partner, key=key, now=now, nonce=nonce)
    response = await client.post(f"/api/partners/{partner}/workorders", data=body, headers=headers)
    return response.status, await response.json(), headers
