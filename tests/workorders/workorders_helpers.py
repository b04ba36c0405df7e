"""Helpers of the work-order tests: the test clock, the environment of a running service and
the events of a generated call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from hotline.db.testing import DbTarget
from hotline.events import CallEvent, CallEventLog, EventBus, Subscription
from hotline.privacy import mask_number, number_key
from hotline.web import Principal
from workorders.service import WorkOrderService

PHONE_KEY = "test-phone-hash-key"
START = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Env:
    db: DbTarget
    bus: EventBus
    log: CallEventLog
    service: WorkOrderService
    clock: Clock
    runtime: Path
    events: Subscription  # every workorder.* event, in order

    async def next_event(self, type_: str, wait: float = 10.0) -> CallEvent:
        """The next ``type_`` event (earlier ones of other types are skipped)."""
        async with asyncio.timeout(wait):
            while True:
                event = await self.events.get()
                if str(event.type) == type_:
                    return event

    def call(
        self,
        call_id: str,
        number: str,
        *,
        topic: str | None = None,
        seat: str | None = None,
        queue: str = "consult_labor",
    ) -> None:
        """The events of a call reaching a seat, as the IVR and the ACD log them."""
        self.service.remember_caller(call_id, number)
        self.log.append(
            call_id,
            "call.entered",
            {
                "caller": mask_number(number),
                "caller_key": number_key(number, PHONE_KEY),
                "dialled": "12348",
            },
        )
        if topic:
            self.log.append(
                call_id,
                "ivr.action",
                {"node": "q", "action": "queue", "queue": queue, "topic": topic},
            )
            self.log.append(call_id, "queue.entered", {"queue": queue, "priority": 0})
        if seat:
            self.log.append(
                call_id, "queue.connected", {"queue": queue, "seat_id": seat, "wait": 3}
            )


def key_of(number: str) -> str:
    return number_key(number, PHONE_KEY)


def segment_rows(call_id: str, texts: list[tuple[str, str]], at: datetime) -> list[dict[str, Any]]:
    """Rows for ``transcript_segments`` (speaker, text), one second apart."""
    return [
        {
            "call_id": call_id,
            "speaker": speaker,
            "start_s": float(i),
            "end_s": i + 0.9,
            "text": text,
            "final": True,
            "source": "live",
            "recording_id": None,
            "created_at": at,
        }
        for i, (speaker, text) in enumerate(texts)
    ]


class Api:
    """The work-order HTTP API as one user at a time (``X-Test-User``, see ``users_by_header``)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def call(
        self, method: str, path: str, user: str, body: Any = None, status: int = 200
    ) -> Any:
        response = await self.client.request(
            method, path, json=body, headers={"X-Test-User": user} if user else {}
        )
        data = await response.json()
        assert response.status == status, (method, path, user, response.status, data)
        return data

    async def act(
        self, order_id: str, action: str, user: str, status: int = 200, **body: Any
    ) -> Any:
        return await self.call(
            "POST", f"/api/workorders/{order_id}/actions/{action}", user, body, status
        )


def users_by_header(
    users: dict[str, Principal],
) -> Callable[[web.Request], Awaitable[Principal | None]]:
    """An authenticator that signs a request in as the ``X-Test-User`` named in ``users``."""

    async def authenticate(request: web.Request) -> Principal | None:
        return users.get(request.headers.get("X-Test-User", ""))

    return authenticate
