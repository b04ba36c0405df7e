"""Real-time KPIs: the queue now and today's counters, for the wallboard and ``/metrics``.

:class:`LiveKpi` is pure: ``feed(event)`` with every call and seat event as it is logged,
``snapshot(now)`` for the figures. It keeps

* the queue now: calls waiting per queue since when (``queue.entered`` until connected,
  abandoned, left or ended; a transfer re-enters the target queue), hence the longest wait;
* seats by state (from ``seat.state_changed`` / ``seat.logout``);
* today's counters (local day of ``Thresholds.tz``) per queue and for the hotline: each call
  of today is re-derived with ``kpi.derive.derive_call`` on every event and its old
  contribution replaced (``kpi.rollup.contribution``), so the live answer rate is computed
  exactly like the historical one (wrap-up is not in the live AHT: it ends after the call).

:class:`KpiService` runs it in the service: it resynchronises from the database at start and
whenever its bus subscription lagged, publishes a ``kpi.snapshot`` (:class:`KpiSnapshot`, not
logged) every ``live_interval_s``, feeds the alert rules, and keeps the rollups caught up
(``kpi.rollup.ingest`` in a worker thread every ``rollup_interval_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from hotline.db.models import CallEventRow
from hotline.events.log import _from_row, events_between
from hotline.events.types import CallEvent
from kpi.derive import SEAT_PREFIX, derive_call, is_pseudo_call, seat_of
from kpi.facts import CallFacts
from kpi.formulas import Thresholds
from kpi.report import kpis_from_counters
from kpi.rollup import RollupMismatch, contribution, ingest_all
from kpi.settings import KpiSettings

log = logging.getLogger(__name__)

SUBSCRIBED = (
    "call.*",
    "ivr.*",
    "queue.*",
    "seat.*",
    "survey.*",
    "callback.*",
    "qa.*",
    "followup.*",
    "workorder.*",
)
_LEAVES_QUEUE = frozenset({"queue.connected", "queue.abandoned", "queue.left", "call.ended"})


@dataclass(frozen=True)
class KpiSnapshot:
    """What the wallboard gets on the bus (type ``kpi.snapshot``)."""

    data: dict[str, Any]
    type: str = "kpi.snapshot"


@dataclass
class _Today:
    day: str = ""
    events: dict[str, list[CallEvent]] = field(default_factory=lambda: defaultdict(list))
    facts: dict[str, CallFacts] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    queues: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))


class LiveKpi:
    """Today's counters and the queue now, from events fed in log order."""

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.th = thresholds or Thresholds()
        self.zone = ZoneInfo(self.th.tz)
        self.today = _Today()
        self.waiting: dict[str, tuple[str, datetime]] = {}  # call -> (queue, since)
        self.seats: dict[str, str] = {}
        self.fed = 0

    def _day(self, ts: datetime) -> str:
        return ts.astimezone(self.zone).strftime("%Y-%m-%d")

    def roll_to(self, ts: datetime) -> None:
        """Start a new day's counters when ``ts`` is on a later local day."""
        day = self._day(ts)
        if day > self.today.day:
            self.today = _Today(day=day)

    def feed(self, event: CallEvent) -> None:
        self.fed += 1
        t = str(event.type)
        d = event.data
        if event.call_id.startswith(SEAT_PREFIX):
            seat = seat_of(d) or event.call_id[len(SEAT_PREFIX) :]
            if t == "seat.state_changed":
                self.seats[seat] = str(d.get("to") or "offline")
            elif t == "seat.logout":
                self.seats[seat] = "offline"
            return
        if is_pseudo_call(event.call_id):
            return
        self.roll_to(event.ts)
        cid = event.call_id
        if t == "queue.entered":
            self.waiting[cid] = (str(d.get("queue") or ""), event.ts)
        elif t == "queue.overflowed" and cid in self.waiting:
            self.waiting[cid] = (str(d.get("to_queue") or ""), self.waiting[cid][1])
        elif t == "queue.transferred" and d.get("to_queue"):
            self.waiting[cid] = (str(d["to_queue"]), event.ts)
        elif t in _LEAVES_QUEUE:
            self.waiting.pop(cid, None)
        today = self.today
        if cid not in today.events and t not in ("call.entered", "queue.entered"):
            return  # a call of an earlier day: it counts there
        today.events[cid].append(event)
        self._rederive(cid)

    def _rederive(self, cid: str) -> None:
        today = self.today
        facts = derive_call(today.events[cid])
        old = today.facts.get(cid)
        if old is not None:
            self._add(old, -1)
        if facts.entered_queue_at is not None and self._day(facts.entered_queue_at) != today.day:
            today.facts.pop(cid, None)
            return
        today.facts[cid] = facts
        self._add(facts, 1)

    def _add(self, facts: CallFacts, sign: int) -> None:
        c = contribution(facts, self.th)
        if c is None:
            return
        queue = self.today.queues[facts.queue or ""]
        for name, value in c.items():
            self.today.total[name] = self.today.total.get(name, 0) + sign * value
            queue[name] = queue.get(name, 0) + sign * value

    def snapshot(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        queues: dict[str, dict[str, Any]] = {}
        for queue, since in self.waiting.values():
            q = queues.setdefault(queue, {"waiting": 0, "longest_wait_s": 0.0})
            q["waiting"] += 1
            q["longest_wait_s"] = max(q["longest_wait_s"], (now - since).total_seconds())
        seats: dict[str, int] = defaultdict(int)
        for state in self.seats.values():
            seats[state] += 1

        def values(c: dict[str, int]) -> dict[str, float | None]:
            return {k: v.value for k, v in kpis_from_counters(c).items()}

        total = {k: v for k, v in self.today.total.items() if v}
        per_queue = {q: {k: v for k, v in c.items() if v} for q, c in self.today.queues.items()}
        return {
            "at": now.isoformat(),
            "day": self.today.day or self._day(now),
            "waiting": sum(q["waiting"] for q in queues.values()),
            "longest_wait_s": max((q["longest_wait_s"] for q in queues.values()), default=0.0),
            "queues": queues,
            "seats": dict(seats),
            "today": {
                "counters": total,
                "kpis": values(total),
                "queues": per_queue,
                "queue_kpis": {q: values(c) for q, c in per_queue.items()},
            },
            "thresholds": {
                "short_abandon_s": self.th.short_abandon_s,
                "service_level_s": self.th.service_level_s,
                "tz": self.th.tz,
            },
        }


# --- loading the present from the database ------------------------------------------------


def load_present(engine: Engine, live: LiveKpi, now: datetime | None = None) -> None:
    """Rebuild ``live`` from the log: the seats' last states and today's call events."""
    now = now or datetime.now(UTC)
    t = CallEventRow.__table__
    with engine.connect() as conn:
        last = (
            select(func.max(t.c.id))
            .where(t.c.type.in_(["seat.state_changed", "seat.logout"]))
            .group_by(t.c.call_id)
        )
        seat_rows = conn.execute(select(t).where(t.c.id.in_(last)).order_by(t.c.id)).all()
    local = now.astimezone(live.zone).replace(hour=0, minute=0, second=0, microsecond=0)
    start = local.astimezone(UTC)
    fresh = LiveKpi(live.th)
    for row in seat_rows:
        fresh.feed(_from_row(row))
    # From a little before midnight, so callers waiting since yesterday are in the queue now.
    for ev in events_between(engine, start - timedelta(hours=2), now + timedelta(seconds=1)):
        if not ev.call_id.startswith(SEAT_PREFIX):
            fresh.feed(ev)
    fresh.roll_to(now)
    live.today, live.waiting, live.seats = fresh.today, fresh.waiting, fresh.seats


class KpiService:
    """The live KPIs, alerts and rollup catch-up inside the running service."""

    def __init__(
        self,
        engine: Engine,
        bus: Any,
        event_log: Any,
        settings: KpiSettings,
    ) -> None:
        from kpi.alerts import AlertNotifier, AlertRules

        self.engine = engine
        self.bus = bus
        self.settings = settings
        self.live = LiveKpi(settings.thresholds())
        self.rules = AlertRules(settings)
        webhook = str(settings.alert_webhook) if settings.alert_webhook else None
        self.notifier = AlertNotifier(engine, event_log, webhook)
        self.last_snapshot: dict[str, Any] = self.live.snapshot()
        self.rollup_error: str | None = None
        self.clock = lambda: datetime.now(UTC)  # replaced in tests that replay an old day
        self._tasks: list[asyncio.Task[None]] = []
        self._sub: Any = None

    async def start(self) -> None:
        from kpi.alerts import load_active

        self.rules.active = set(await asyncio.to_thread(load_active, self.engine))
        self._sub = self.bus.subscribe(SUBSCRIBED, maxsize=10_000)
        await self.resync()
        self._tasks = [
            asyncio.create_task(self._consume(), name="kpi-live"),
            asyncio.create_task(self._ticker(), name="kpi-snapshot"),
            asyncio.create_task(self._rollups(), name="kpi-rollup"),
        ]

    async def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def _consume(self) -> None:
        async for event in self._sub:
            if self._sub.lagging:
                # Events were dropped: the counters would be wrong, so reload from the log.
                await self.resync()
                continue
            if isinstance(event, CallEvent):
                self.live.feed(event)

    async def resync(self) -> None:
        await asyncio.to_thread(load_present, self.engine, self.live, self.clock())

    async def tick(self, now: datetime | None = None) -> dict[str, Any]:
        """One snapshot: published on the bus and judged by the alert rules."""
        now = now or self.clock()
        self.live.roll_to(now)
        snap = self.live.snapshot(now)
        snap["alerts"] = sorted(self.rules.active)
        changes = self.rules.evaluate(snap)
        if changes:
            await self.notifier.notify(changes)
            snap["alerts"] = sorted(self.rules.active)
        self.last_snapshot = snap
        self.bus.publish(KpiSnapshot(snap))
        return snap

    async def _ticker(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a bad snapshot must not stop the wallboard for good
                log.exception("KPI snapshot failed")
            await asyncio.sleep(self.settings.live_interval_s)

    async def _rollups(self) -> None:
        th = self.settings.thresholds()
        while True:
            try:
                await asyncio.to_thread(ingest_all, self.engine, th)
                self.rollup_error = None
            except RollupMismatch as exc:
                self.rollup_error = str(exc)
                log.error("%s", exc)
            except Exception as exc:  # database away: try again next round
                self.rollup_error = str(exc)
                log.warning("KPI rollup catch-up failed: %s", exc)
            await asyncio.sleep(self.settings.rollup_interval_s)


def feed_all(live: LiveKpi, events: Iterable[CallEvent]) -> LiveKpi:
    for ev in events:
        live.feed(ev)
    return live
