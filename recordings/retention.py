"""Retention of stored recordings: which items are expired, given days per kind and now. Pure.

This module decides; it deletes nothing. The purge job (elsewhere) lists the stored items,
calls ``expired(items, policy, now)``, deletes each returned file, and appends
``purge_log(decision)`` to the event log so that what was removed, and why, stays on record
after the file is gone.

Rules, chosen to fail safe (keep rather than delete):

- the retention period is per kind (``call`` recordings, ``voice_message`` 留言, ``callback``
  recordings, ``transcript`` ...), in whole days, counted from ``stored_at``;
- an item expires when ``now >= stored_at + days``; ``None`` days means keep forever;
- a kind missing from the policy uses ``default_days``; if that is ``None`` too, it is kept
  (a new kind of file is never deleted by accident);
- an item under hold (``hold=True``: a complaint, an open work order, a legal request) is
  never returned, whatever its age;
- times must be timezone-aware: a naive time is an error rather than a silent 8-hour shift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

DEFAULT_DAYS: Mapping[str, int | None] = {
    "call": 180,  # call recordings: quality inspection and complaints within half a year
    "voice_message": 90,
    "callback": 180,
    "transcript": 365,
}


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    days: Mapping[str, int | None] = field(default_factory=lambda: dict(DEFAULT_DAYS))
    default_days: int | None = None

    def __post_init__(self) -> None:
        for kind, value in {**self.days, "(default)": self.default_days}.items():
            if value is not None and (isinstance(value, bool) or value < 1):
                raise ValueError(f"retention days for {kind!r} must be >= 1 or None, got {value}")

    def days_for(self, kind: str) -> int | None:
        return self.days[kind] if kind in self.days else self.default_days


@dataclass(frozen=True, slots=True)
class StoredItem:
    id: str
    kind: str
    stored_at: datetime
    path: str = ""
    hold: bool = False


@dataclass(frozen=True, slots=True)
class PurgeDecision:
    item: StoredItem
    days: int
    expired_at: datetime


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value!r}")
    return value


def expires_at(item: StoredItem, policy: RetentionPolicy) -> datetime | None:
    """When ``item`` expires under ``policy``; None if it is kept forever."""
    days = policy.days_for(item.kind)
    if days is None:
        return None
    return _aware(item.stored_at, f"stored_at of {item.id!r}") + timedelta(days=days)


def expired(
    items: Iterable[StoredItem], policy: RetentionPolicy, now: datetime
) -> list[PurgeDecision]:
    """The items to purge now, oldest expiry first."""
    _aware(now, "now")
    purge = []
    for item in items:
        if item.hold:
            continue
        at = expires_at(item, policy)
        if at is not None and now >= at:
            purge.append(PurgeDecision(item, policy.days_for(item.kind) or 0, at))
    purge.sort(key=lambda d: (d.expired_at, d.item.id))
    return purge


def purge_log(decision: PurgeDecision, now: datetime) -> dict[str, Any]:
    """Event data describing one removal (type ``recording.purged``)."""
    item = decision.item
    return {
        "type": "recording.purged",
        "item_id": item.id,
        "kind": item.kind,
        "path": item.path,
        "stored_at": item.stored_at.isoformat(),
        "retention_days": decision.days,
        "expired_at": decision.expired_at.isoformat(),
        "purged_at": _aware(now, "now").isoformat(),
    }
