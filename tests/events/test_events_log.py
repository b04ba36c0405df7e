"""The call-event log against real SQLite and PostgreSQL, including real database outages."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from hotline.db import CallEventRow, migrate
from hotline.db.testing import DbTarget
from hotline.events import (
    CallEvent,
    CallEventLog,
    EventBus,
    EventLogClosed,
    EventType,
    InvalidEventData,
    UnknownEventType,
    calls_between,
    events_between,
    events_for_call,
    insert_events,
)
from hotline.testing import async_wait_for

WAIT = 30.0  # generous bound for conditions; tests finish as soon as they hold


@pytest.fixture
def migrated(db: DbTarget) -> DbTarget:
    migrate(db.engine)
    return db


def make_log(db: DbTarget, spool: Path, **kw: object) -> CallEventLog:
    kw.setdefault("flush_interval", 0.01)
    kw.setdefault("retry_initial", 0.02)
    kw.setdefault("retry_cap", 0.3)
    return CallEventLog(db.engine, spool_dir=spool, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def event_log(migrated: DbTarget, tmp_path: Path) -> AsyncIterator[CallEventLog]:
    log = make_log(migrated, tmp_path / "spool", bus=EventBus())
    await log.start()
    yield log
    await log.close()


def stored_in_id_order(db: DbTarget) -> list[tuple[str, int]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(CallEventRow.call_id, CallEventRow.seq).order_by(CallEventRow.id)
        ).all()
    return [(r.call_id, r.seq) for r in rows]


async def flushed(log: CallEventLog) -> None:
    async with asyncio.timeout(WAIT):
        await log.flush()


def spool_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.jsonl")) if path.exists() else []


async def test_append_flush_read(event_log: CallEventLog, migrated: DbTarget) -> None:
    appended = []
    for i in range(30):  # interleave three calls
        call = f"call-{i % 3}"
        appended.append(event_log.append(call, EventType.PROMPT_STARTED, {"prompt": f"p{i}"}))
    appended.append(
        event_log.append("call-0", "call.ended", {"hangup_by": "caller", "cause_txt": "正常挂机"})
    )
    await flushed(event_log)

    assert [e.seq for e in appended if e.call_id == "call-1"] == list(range(1, 11))
    stored = events_for_call(migrated.engine, "call-0")
    assert stored == [e for e in appended if e.call_id == "call-0"]
    assert [e.seq for e in stored] == list(range(1, 12))
    assert stored[-1].type is EventType.CALL_ENDED
    assert stored[-1].data["cause_txt"] == "正常挂机"
    assert all(e.ts.tzinfo is not None and e.ts.utcoffset() == timedelta(0) for e in stored)
    assert stored_in_id_order(migrated) == [(e.call_id, e.seq) for e in appended]
    stats = event_log.stats
    assert (stats.appended, stats.written, stats.queued, stats.duplicates) == (31, 31, 0, 0)


async def test_append_publishes_before_writing(event_log: CallEventLog) -> None:
    assert event_log.bus is not None
    sub = event_log.bus.subscribe("call.*")
    event = event_log.append("c1", EventType.CALL_ENTERED, {"called": "12348"})
    event_log.append("c1", EventType.PROMPT_STARTED, {"prompt": "welcome"})
    assert sub.get_nowait() == event  # published synchronously, not after the write
    assert sub.qsize() == 0  # prompt.* does not match call.*


async def test_explicit_timestamp_is_converted_to_utc(
    event_log: CallEventLog, migrated: DbTarget
) -> None:
    local = datetime(2025, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    event = event_log.append("c1", EventType.CALL_ENTERED, ts=local)
    assert event.ts == local and event.ts.tzinfo is UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        event_log.append("c1", EventType.CALL_ENTERED, ts=datetime(2025, 6, 1, 8, 0))
    await flushed(event_log)
    assert events_for_call(migrated.engine, "c1")[0].ts == local


async def test_invalid_events_are_rejected_without_using_a_seq(
    event_log: CallEventLog,
) -> None:
    with pytest.raises(UnknownEventType, match=r"'call\.bogus'.*EventType"):
        event_log.append("c1", "call.bogus")
    with pytest.raises(InvalidEventData, match="hangup_by"):
        event_log.append("c1", EventType.CALL_ENDED, {"cause": 16})
    with pytest.raises(InvalidEventData, match="hangup_by='nobody'"):
        event_log.append("c1", EventType.CALL_ENDED, {"hangup_by": "nobody"})
    with pytest.raises(InvalidEventData, match="JSON"):
        event_log.append("c1", EventType.CALL_ENTERED, {"when": datetime.now(UTC)})
    with pytest.raises(ValueError, match="call_id"):
        event_log.append("x" * 65, EventType.CALL_ENTERED)
    assert event_log.append("c1", EventType.CALL_ENTERED).seq == 1
    assert event_log.stats.appended == 1


async def test_writes_are_idempotent(migrated: DbTarget) -> None:
    ts = datetime(2025, 1, 1, tzinfo=UTC)
    events = [
        CallEvent("c1", s, ts + timedelta(seconds=s), EventType.PROMPT_STARTED, {})
        for s in (1, 2, 3)
    ]
    assert insert_events(migrated.engine, events) == 3
    assert insert_events(migrated.engine, events) == 0
    assert insert_events(migrated.engine, [*events, CallEvent("c1", 4, ts, "call.ended", {})]) == 1
    assert [e.seq for e in events_for_call(migrated.engine, "c1")] == [1, 2, 3, 4]


async def test_resume_call_continues_the_sequence(migrated: DbTarget, tmp_path: Path) -> None:
    async with make_log(migrated, tmp_path / "spool") as first:
        for _ in range(4):
            first.append("adopted", EventType.PROMPT_STARTED)
        await flushed(first)
    async with make_log(migrated, tmp_path / "spool") as second:
        assert await second.resume_call("adopted") == 4
        assert await second.resume_call("never-seen") == 0
        assert second.append("adopted", EventType.CALL_ANSWERED).seq == 5
        await flushed(second)
    assert [e.seq for e in events_for_call(migrated.engine, "adopted")] == [1, 2, 3, 4, 5]


async def test_reused_seq_is_skipped_and_reported(
    migrated: DbTarget, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_log(migrated, tmp_path / "spool") as first:
        first.append("c1", EventType.CALL_ENTERED)
        await flushed(first)
    async with make_log(migrated, tmp_path / "spool") as second:
        # No resume_call(): seq 1 again; the stored row wins and the log says why.
        second.append("c1", EventType.CALL_ENDED, {"hangup_by": "system"})
        await flushed(second)
        assert second.stats.duplicates == 1
    assert [e.type for e in events_for_call(migrated.engine, "c1")] == [EventType.CALL_ENTERED]
    assert "resume_call" in caplog.text


async def test_database_blip_loses_nothing(
    migrated: DbTarget, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hotline.events.log")
    log = make_log(migrated, tmp_path / "spool", batch_size=20)
    await log.start()
    appended = [log.append(f"c{i % 4}", EventType.PROMPT_STARTED, {"i": i}) for i in range(10)]
    await flushed(log)

    with migrated.outage():
        appended += [
            log.append(f"c{i % 4}", EventType.PROMPT_STARTED, {"i": i}) for i in range(10, 60)
        ]
        await async_wait_for(lambda: not log.stats.healthy, WAIT, message="write failure")
        appended += [
            log.append(f"c{i % 4}", EventType.PROMPT_FINISHED, {"i": i}) for i in range(60, 120)
        ]
        # Still down: retries keep failing, nothing more is written.
        await async_wait_for(lambda: log.stats.failed_writes >= 3, WAIT, message="retries")
        assert log.stats.written == 10
        assert log.stats.queued == log.backlog == 110
        assert not log.healthy
    await flushed(log)
    await log.close()

    stats = log.stats
    assert stats.healthy and stats.outages == 1 and stats.written == 120
    assert stored_in_id_order(migrated) == [(e.call_id, e.seq) for e in appended]
    for call in ("c0", "c1", "c2", "c3"):
        assert [e.seq for e in events_for_call(migrated.engine, call)] == list(range(1, 31))
    messages = [r.getMessage() for r in caplog.records if r.name == "hotline.events.log"]
    assert sum("write failed" in m for m in messages) == 1  # once per outage ...
    assert sum("writable again" in m for m in messages) == 1  # ... and once on recovery
    assert spool_files(tmp_path / "spool") == []


async def test_close_during_outage_spools_and_next_start_replays(
    migrated: DbTarget, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    log = make_log(migrated, spool)
    await log.start()
    appended = [log.append("c1", EventType.CALL_ENTERED)]
    await flushed(log)
    with migrated.outage():
        appended += [log.append("c1", EventType.PROMPT_STARTED, {"n": n}) for n in range(25)]
        await async_wait_for(lambda: not log.stats.healthy, WAIT, message="write failure")
        async with asyncio.timeout(WAIT):
            await log.close()
        with pytest.raises(EventLogClosed):
            log.append("c1", EventType.PROMPT_FINISHED)

    files = spool_files(spool)
    assert len(files) == 1
    lines = [json.loads(line) for line in files[0].read_text(encoding="utf-8").splitlines()]
    assert [(x["call_id"], x["seq"]) for x in lines] == [("c1", s) for s in range(2, 27)]
    assert [e.seq for e in events_for_call(migrated.engine, "c1")] == [1]

    async with make_log(migrated, spool) as restarted:
        # The spool's sequence counts even before the replay is written.
        assert restarted.last_seq("c1") == 26
        appended.append(restarted.append("c1", EventType.CALL_ENDED, {"hangup_by": "caller"}))
        await flushed(restarted)
        assert spool_files(spool) == []
    assert stored_in_id_order(migrated) == [(e.call_id, e.seq) for e in appended]


async def test_spool_replay_is_idempotent_and_survives_a_torn_line(
    migrated: DbTarget, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    ts = datetime(2025, 1, 1, tzinfo=UTC)
    events = [CallEvent("c9", s, ts, EventType.PROMPT_STARTED, {"s": s}) for s in range(1, 6)]
    insert_events(migrated.engine, events[:3])  # a crash after a partial write, say
    body = "".join(json.dumps(e.to_json()) + "\n" for e in events)
    (spool / "events-20250101T000000000000-1-000000.jsonl").write_text(
        body + '{"call_id": "c9", "se', encoding="utf-8"
    )
    async with make_log(migrated, spool) as log:
        await flushed(log)
        assert log.stats.duplicates == 3
    assert events_for_call(migrated.engine, "c9") == events
    assert spool_files(spool) == []


async def test_backlog_past_the_bound_goes_to_disk(migrated: DbTarget, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    log = make_log(migrated, spool, batch_size=10, max_backlog=50)
    await log.start()
    appended = []
    with migrated.outage():
        appended.append(log.append("c1", EventType.CALL_ENTERED))
        await async_wait_for(lambda: not log.stats.healthy, WAIT, message="write failure")
        appended += [log.append("c1", EventType.PROMPT_STARTED, {"n": n}) for n in range(200)]
        assert log.stats.queued <= 50 + 10  # memory stays bounded: backlog + the failing batch
        assert log.stats.spilled >= 150
        assert len(spool_files(spool)) >= 3
    await flushed(log)
    await log.close()
    assert spool_files(spool) == []
    assert stored_in_id_order(migrated) == [(e.call_id, e.seq) for e in appended]


async def test_period_queries(event_log: CallEventLog, migrated: DbTarget) -> None:
    t0 = datetime(2025, 5, 1, tzinfo=UTC)
    for n, call in enumerate(["a", "b", "c"]):
        entered = t0 + timedelta(hours=n)
        event_log.append(call, EventType.CALL_ENTERED, ts=entered)
        event_log.append(
            call, EventType.CALL_ENDED, {"hangup_by": "caller"}, ts=entered + timedelta(minutes=5)
        )
    await flushed(event_log)
    end = t0 + timedelta(hours=2)
    assert calls_between(migrated.engine, t0, end) == ["a", "b"]
    ended = events_between(migrated.engine, t0, end, types=[EventType.CALL_ENDED])
    assert [(e.call_id, e.type) for e in ended] == [("a", "call.ended"), ("b", "call.ended")]
    assert len(events_between(migrated.engine, t0, end)) == 4


async def test_flush_fails_fast_when_not_started(migrated: DbTarget, tmp_path: Path) -> None:
    log = make_log(migrated, tmp_path / "spool")
    log.append("c1", EventType.CALL_ENTERED)
    with pytest.raises(RuntimeError, match="not running"):
        await log.flush()
    await log.close()  # never started: what was appended is spooled, not lost
    assert len(spool_files(tmp_path / "spool")) == 1
