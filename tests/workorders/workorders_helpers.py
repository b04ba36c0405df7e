"""Helpers of the work-order tests: the test clock, the environment of a running service and
the events of a generated call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hotline.db.testing import DbTarget
from hotline.events import CallEvent, CallEventLog, EventBus, Subscription
from hotline.privacy import mask_number, number_key
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
