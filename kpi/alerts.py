"""Targets and warnings (预警): raise an alert when today's figures fall under target, clear it
when they recover.

:class:`AlertRules` is pure: ``evaluate(snapshot)`` compares a live snapshot (see
``kpi.realtime.LiveKpi.snapshot``) with the targets and returns the alerts that change state.
Each alert has a name ``<kind>:<scope>`` (scope ``hotline`` or a queue):

* ``answer_rate`` / ``satisfaction`` / ``service_level``: today's rolling value under target,
  judged only once today has ``alert_min_calls`` calls in the denominator (three calls are
  not a trend); cleared when the value is back at target + ``alert_hysteresis`` or when the
  day rolls over (no data).
* ``longest_wait``: a caller is waiting longer than ``targets.longest_wait_s``; cleared when
  nobody is.

:class:`AlertNotifier` does the I/O for a change: a ``kpi.alert_raised`` /
``kpi.alert_cleared`` event in the log (service pseudo call), the ``kpi_alerts`` row (so a
restart neither repeats nor forgets an alert) and, if configured, a webhook POST (JSON, 5 s
timeout; a failed webhook is logged, never retried into a storm).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from sqlalchemy import Engine, select

from hotline.events.types import EventType
from kpi.models import KpiAlert
from kpi.rollup import _insert
from kpi.settings import KpiSettings

log = logging.getLogger(__name__)

RATE_ALERTS = {
    # alert: (numerator counter, denominator counter, target attribute)
    "answer_rate": ("answered", "asked", "answer_rate"),
    "satisfaction": ("good", "rated", "satisfaction"),
    "service_level": ("within_sl", "answered_live", "service_level"),
}


@dataclass(frozen=True)
class AlertChange:
    name: str  # "<alert>:<scope>"
    alert: str
    scope: str
    raised: bool  # True: raised, False: cleared
    value: float | None
    target: float
    calls: int

    def to_json(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "scope": self.scope,
            "value": self.value,
            "target": self.target,
            "calls": self.calls,
        }


class AlertRules:
    """Which alerts are active, and which change with a new snapshot."""

    def __init__(self, settings: KpiSettings, active: Iterable[str] = ()) -> None:
        self.settings = settings
        self.active: set[str] = set(active)

    def evaluate(self, snapshot: Mapping[str, Any]) -> list[AlertChange]:
        s = self.settings
        t = s.targets
        changes: list[AlertChange] = []
        scopes: dict[str, Mapping[str, int]] = {"hotline": snapshot["today"]["counters"]}
        for queue, counters in snapshot["today"].get("queues", {}).items():
            scopes[queue or "-"] = counters
        seen: set[str] = set()
        for scope, c in scopes.items():
            for alert, (num, den, target_name) in RATE_ALERTS.items():
                target = float(getattr(t, target_name))
                name = f"{alert}:{scope}"
                seen.add(name)
                n, d = c.get(num, 0), c.get(den, 0)
                value = n / d if d else None
                judged = d >= s.alert_min_calls and value is not None
                if name not in self.active and judged and value < target:  # type: ignore[operator]
                    changes.append(AlertChange(name, alert, scope, True, value, target, d))
                elif name in self.active and (
                    not judged or value >= target + s.alert_hysteresis  # type: ignore[operator]
                ):
                    changes.append(AlertChange(name, alert, scope, False, value, target, d))
        waits: dict[str, float] = {"hotline": snapshot["longest_wait_s"]}
        for queue, w in snapshot.get("queues", {}).items():
            waits[queue] = w["longest_wait_s"]
        for scope, wait in waits.items():
            name = f"longest_wait:{scope}"
            seen.add(name)
            limit = t.longest_wait_s
            if name not in self.active and wait > limit:
                changes.append(AlertChange(name, "longest_wait", scope, True, wait, limit, 0))
            elif name in self.active and wait <= limit:
                changes.append(AlertChange(name, "longest_wait", scope, False, wait, limit, 0))
        # An alert whose scope disappeared (a queue with nobody today) is cleared too.
        for name in sorted(self.active - seen):
            alert, _, scope = name.partition(":")
            changes.append(AlertChange(name, alert, scope, False, None, 0.0, 0))
        for ch in changes:
            (self.active.add if ch.raised else self.active.discard)(ch.name)
        return changes


def load_active(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(KpiAlert.name).where(KpiAlert.active.is_(True))).scalars())


def store_change(engine: Engine, change: AlertChange, now: datetime) -> None:
    row = {
        "name": change.name,
        "active": change.raised,
        "value": change.value,
        "target": change.target,
    }
    row["raised_at" if change.raised else "cleared_at"] = now
    with engine.begin() as conn:
        ins = _insert(conn, KpiAlert.__table__).values(**row)
        conn.execute(
            ins.on_conflict_do_update(
                index_elements=["name"], set_={k: v for k, v in row.items() if k != "name"}
            )
        )


def alert_list(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(KpiAlert.__table__).order_by(KpiAlert.name)).all()
    return [
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r._mapping.items()}
        for r in rows
    ]


class AlertNotifier:
    """Logs, stores and (optionally) posts alert changes."""

    def __init__(self, engine: Engine, event_log: Any, webhook: str | None = None) -> None:
        self.engine = engine
        self.event_log = event_log
        self.webhook = webhook
        self.sent = 0
        self.failed = 0

    async def notify(self, changes: Iterable[AlertChange]) -> None:
        for ch in changes:
            now = datetime.now(UTC)
            type_ = EventType.KPI_ALERT_RAISED if ch.raised else EventType.KPI_ALERT_CLEARED
            data = ch.to_json()
            if self.event_log is not None:
                self.event_log.append(self.event_log.service_call_id, type_, data)
            await asyncio.to_thread(store_change, self.engine, ch, now)
            log.warning("KPI alert %s %s: %s", "raised" if ch.raised else "cleared", ch.name, data)
            if self.webhook:
                await self._post({"type": str(type_), "at": now.isoformat(), **data})

    async def _post(self, body: dict[str, Any]) -> None:
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(str(self.webhook), json=body) as resp:
                    if resp.status >= 300:
                        raise aiohttp.ClientError(f"HTTP {resp.status}")
            self.sent += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.failed += 1
            log.warning("KPI alert webhook %s failed: %s", self.webhook, exc)
