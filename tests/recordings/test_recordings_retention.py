"""Retention: which stored items are expired, per kind, with holds; fails safe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recordings.retention import RetentionPolicy, StoredItem, expired, expires_at, purge_log

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _item(item_id: str, kind: str, age_days: float, hold: bool = False) -> StoredItem:
    return StoredItem(item_id, kind, NOW - timedelta(days=age_days), f"/r/{item_id}.enc", hold)


def test_expired_per_kind_oldest_first() -> None:
    policy = RetentionPolicy({"call": 180, "voice_message": 90, "transcript": None})
    items = [
        _item("c-new", "call", 179.9),
        _item("c-old", "call", 200),
        _item("c-edge", "call", 180),  # exactly at expiry: purged
        _item("vm-old", "voice_message", 91),
        _item("vm-new", "voice_message", 10),
        _item("t-ancient", "transcript", 5000),  # kept forever
    ]
    decisions = expired(items, policy, NOW)
    assert [d.item.id for d in decisions] == ["c-old", "vm-old", "c-edge"]
    assert decisions[0].days == 180
    assert decisions[0].expired_at == NOW - timedelta(days=20)


def test_hold_and_unknown_kind_are_kept() -> None:
    policy = RetentionPolicy({"call": 30})
    items = [_item("held", "call", 400, hold=True), _item("new-kind", "screen", 400)]
    assert expired(items, policy, NOW) == []
    assert expires_at(items[1], policy) is None


def test_default_days_apply_to_unlisted_kinds() -> None:
    policy = RetentionPolicy({"call": 30}, default_days=7)
    assert [d.item.id for d in expired([_item("x", "screen", 8)], policy, NOW)] == ["x"]


def test_invalid_policy_and_naive_times_are_errors() -> None:
    with pytest.raises(ValueError, match="call"):
        RetentionPolicy({"call": 0})
    with pytest.raises(ValueError, match="timezone-aware"):
        expired([], RetentionPolicy(), datetime(2026, 6, 1))
    naive = StoredItem("n", "call", datetime(2020, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        expired([naive], RetentionPolicy(), NOW)


def test_purge_log_describes_what_was_removed() -> None:
    (decision,) = expired([_item("c-old", "call", 200)], RetentionPolicy({"call": 180}), NOW)
    log = purge_log(decision, NOW)
    assert log["type"] == "recording.purged"
    assert log["item_id"] == "c-old" and log["path"] == "/r/c-old.enc"
    assert log["retention_days"] == 180 and log["purged_at"] == NOW.isoformat()
