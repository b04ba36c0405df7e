"""Rollups: KPI counters per hour and per local day, kept up to date from the event log.

Theory of operation
-------------------
A call's *contribution* (:func:`contribution`) is a fixed set of integer counters (see
``kpi.models.COUNTERS``) computed from its :class:`CallFacts` and the thresholds; it is added
to one ``hour`` row and three ``day`` rows (``all``, ``topic``, ``seat``), all keyed by the
call's queue and region and by the local period it entered the queue in. Any KPI of any period
is then a ratio of SUMs, and every per-queue/region/topic/seat figure adds up to the hotline's.

:func:`ingest` (incremental) reads the events after the checkpoint in log (id) order, runs the
seat fold (``kpi.derive.SeatFold``) on seat events, and re-derives every call the batch
touched *from all its events*: the old contribution (from the facts stored in ``kpi_calls``) is
subtracted and the new one added, in one transaction with the checkpoint. So late events (a
survey after hang-up, a follow-up weeks later, wrap-up, a work order's topic) correct the
counters exactly, and a crash between batches loses nothing (the batch is redone).

:func:`rebuild` recomputes everything from the log with a different code path (a stream of
all events ordered by call, aggregated in memory) and must give the same tables; the tests
check that on generated streams cut into batches at random places. Rollups are built for one
set of thresholds (short abandon, T, time zone), recorded in ``kpi_meta``; changing them
needs a rebuild (``RollupMismatch`` says so).

Counters are integers (milliseconds for times) so that subtracting a contribution is exact
and rebuild == incremental holds bit for bit. Rows whose ``offered`` drops to 0 are deleted
(every contributing call has ``offered = 1``).

Caveat: ids are assumed to become visible in order, which holds with the one event-log writer.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from hotline.db.models import CallEventRow
from hotline.events.log import _from_row
from hotline.events.types import CallEvent
from kpi.derive import (
    Derived,
    SeatFold,
    SeatOutput,
    SeatRegions,
    SeatStatus,
    derive_call,
    is_pseudo_call,
    ms,
    seat_of,
)
from kpi.facts import CallFacts, SeatSpan, Survey
from kpi.formulas import Thresholds, period_start, split_interval
from kpi.models import (
    COUNTERS,
    SEAT_COUNTERS,
    KpiCall,
    KpiMeta,
    KpiRollup,
    KpiSeatHourly,
    KpiSeatState,
)

log = logging.getLogger(__name__)

_HOUR = timedelta(hours=1)
RowKey = tuple[str, datetime, str, str, str, str]  # grain, bucket, queue, region, dim, key
SeatKey = tuple[datetime, str]  # hour bucket, seat
_EV = CallEventRow.__table__
_ROLLUP = KpiRollup.__table__
_SEAT_H = KpiSeatHourly.__table__
_CALLS = KpiCall.__table__


class RollupMismatch(RuntimeError):
    """The rollups were built with other thresholds: rebuild them."""


# --- contributions (pure) ------------------------------------------------------------------


def contribution(f: CallFacts, th: Thresholds) -> dict[str, int] | None:
    """The counters one call adds to its rows (None: it never asked for a seat)."""
    if f.entered_queue_at is None:
        return None
    c = {"offered": 1}
    if f.in_progress:
        c["in_progress"] = 1
    else:
        c["queue_ms"] = ms(f.wait_s)
        if f.abandoned:
            c["abandoned_all"] = 1
        if f.abandoned and f.wait_s < th.short_abandon_s:
            c["short_abandoned"] = 1
        else:
            c["asked"] = 1
            if f.abandoned:
                c["abandoned"] = 1
    if f.answered:
        c["answered"] = 1
        c["handling_ms"] = ms(f.talk_s) + ms(f.hold_s) + ms(f.wrap_s)
        c["talk_ms"] = ms(f.talk_s)
        c["wrap_ms"] = ms(f.wrap_s)
        if f.qa_inspected:
            c["qa_inspected"] = 1
    if f.answered_live:
        c["answered_live"] = 1
        c["wait_ms"] = ms(f.wait_s)
        if f.wait_s <= th.service_level_s:
            c["within_sl"] = 1
    if f.answered_by_callback:
        c["answered_callback"] = 1
    if f.survey is not None:
        c["rated"] = 1
        if f.survey is Survey.DISSATISFIED:
            c["dissatisfied"] = 1
            if f.followed_up:
                c["followed_up"] = 1
        else:
            c["good"] = 1
    if f.callback_requested_at is not None:
        c["callback_requested"] = 1
    if f.transferred_in:
        c["transferred_in"] = 1
    if f.transferred_from or f.overflowed_from:
        c["moved"] = 1
    return c


@lru_cache(maxsize=65536)
def _buckets(entered: datetime, tz: str) -> tuple[datetime, datetime]:
    hour = period_start(entered, "hour", tz).astimezone(UTC)
    day = period_start(entered, "day", tz).astimezone(UTC)
    return hour, day


def row_keys(f: CallFacts, th: Thresholds) -> list[RowKey]:
    """The rollup rows a call contributes to."""
    assert f.entered_queue_at is not None
    # Minutes: every real time zone offset is a whole number of minutes.
    hour, day = _buckets(f.entered_queue_at.replace(second=0, microsecond=0), th.tz)
    q, r = f.queue or "", f.region or ""
    return [
        ("hour", hour, q, r, "all", ""),
        ("day", day, q, r, "all", ""),
        ("day", day, q, r, "topic", f.topic or ""),
        ("day", day, q, r, "seat", f.seat or ""),
    ]


def add_call(
    rows: dict[RowKey, dict[str, int]], f: CallFacts, th: Thresholds, sign: int = 1
) -> None:
    """Add (``sign=1``) or take back (``-1``) one call's contribution."""
    c = contribution(f, th)
    if c is None:
        return
    for key in row_keys(f, th):
        row = rows[key]
        for name, value in c.items():
            row[name] = row.get(name, 0) + sign * value


def add_spans(
    seat_rows: dict[SeatKey, dict[str, Any]],
    spans: Iterable[SeatSpan],
    tz: str,
    wrap_spans: Iterable[tuple[str, datetime, datetime]] = (),
) -> None:
    """Seat time split at hour bounds into ``logged_in_ms``/``paused_ms``/``busy_ms`` (and
    ``wrap_ms``, the wrap-up part of busy)."""
    pieces = [(s.seat, s.region, f"{s.activity}_ms", s.start, s.end) for s in spans]
    pieces += [(seat, None, "wrap_ms", a, b) for seat, a, b in wrap_spans]
    zone = ZoneInfo(tz)
    for seat, region, column, start, end in pieces:
        offset = start.astimezone(zone).utcoffset()
        if offset is not None and offset.total_seconds() % 3600 == 0:
            # Whole-hour offset (Asia/Shanghai): local hours are UTC hours, cut without tz maths.
            cursor = start.astimezone(UTC)
            stop = end.astimezone(UTC)
            while cursor < stop:
                bucket = cursor.replace(minute=0, second=0, microsecond=0)
                piece_end = min(bucket + _HOUR, stop)
                row = seat_rows.setdefault((bucket, seat), {"region": region or ""})
                row[column] = row.get(column, 0) + ms((piece_end - cursor).total_seconds())
                cursor = piece_end
            continue
        for _, a, b in split_interval(start, end, "hour", tz):
            bucket = period_start(a, "hour", tz).astimezone(UTC)
            row = seat_rows.setdefault((bucket, seat), {"region": region or ""})
            row[column] = row.get(column, 0) + ms((b - a).total_seconds())


def aggregate(
    derived: Derived, th: Thresholds
) -> tuple[dict[RowKey, dict[str, int]], dict[SeatKey, dict[str, Any]]]:
    """The rollup tables that a set of derived facts gives (the pure reference)."""
    rows: dict[RowKey, dict[str, int]] = defaultdict(dict)
    for f in derived.calls:
        add_call(rows, f, th)
    seats: dict[SeatKey, dict[str, Any]] = {}
    add_spans(seats, derived.spans, th.tz, derived.wrap_spans)
    return _clean(rows), seats


def _clean(rows: Mapping[RowKey, Mapping[str, int]]) -> dict[RowKey, dict[str, int]]:
    return {
        k: {n: v for n, v in r.items() if v} for k, r in rows.items() if r.get("offered", 0) != 0
    }


# --- facts as JSON (kept per call so a contribution can be taken back) ----------------------

_DT_FIELDS = ("entered_queue_at", "answered_at", "ended_at")
_DT_FIELDS += ("callback_requested_at", "callback_answered_at")


def facts_to_json(f: CallFacts) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fld in fields(CallFacts):
        value = getattr(f, fld.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Survey):
            value = value.value
        out[fld.name] = value
    return out


def facts_from_json(data: Mapping[str, Any]) -> CallFacts:
    kw = dict(data)
    for name in _DT_FIELDS:
        if kw.get(name):
            kw[name] = datetime.fromisoformat(kw[name])
    for name in ("transferred_from", "overflowed_from"):
        kw[name] = tuple(kw.get(name) or ())
    if kw.get("survey"):
        kw["survey"] = Survey(kw["survey"])
    return CallFacts(**kw)


def _call_row(f: CallFacts, wrap_ms: int) -> dict[str, Any]:
    return {
        "call_id": f.call_id,
        "entered_at": f.entered_queue_at,
        "queue": f.queue,
        "region": f.region,
        "topic": f.topic,
        "seat": f.seat,
        "survey": f.survey.value if f.survey else None,
        "wrap_ms": wrap_ms,
        "facts": facts_to_json(f),
    }


# --- database helpers ----------------------------------------------------------------------


def _insert(conn: Connection, table: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _thresholds_json(th: Thresholds) -> dict[str, Any]:
    return {
        "short_abandon_s": th.short_abandon_s,
        "service_level_s": th.service_level_s,
        "tz": th.tz,
    }


def _meta(conn: Connection, key: str) -> dict[str, Any] | None:
    return conn.execute(select(KpiMeta.value).where(KpiMeta.key == key)).scalar()


def _set_meta(conn: Connection, key: str, value: dict[str, Any]) -> None:
    stmt = _insert(conn, KpiMeta.__table__).values(key=key, value=value)
    conn.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))


def built_with(engine: Engine) -> Thresholds | None:
    """The thresholds the stored rollups were built with (None: never built)."""
    with engine.connect() as conn:
        value = _meta(conn, "thresholds")
    return Thresholds(**value) if value else None


def checkpoint(engine: Engine) -> int:
    with engine.connect() as conn:
        value = _meta(conn, "checkpoint")
    return int(value["last_id"]) if value else 0


def _check_thresholds(conn: Connection, th: Thresholds) -> None:
    stored = _meta(conn, "thresholds")
    if stored is None:
        _set_meta(conn, "thresholds", _thresholds_json(th))
    elif stored != _thresholds_json(th):
        raise RollupMismatch(
            f"the KPI rollups were built with {stored}, not {_thresholds_json(th)}: "
            "rebuild them (hotline report --rebuild ...) after changing a threshold"
        )


def _apply_rows(conn: Connection, deltas: Mapping[RowKey, Mapping[str, int]]) -> None:
    payload = []
    for (grain, bucket, queue, region, dim, key), c in deltas.items():
        if not any(c.values()):
            continue
        row = {"grain": grain, "bucket": bucket, "queue": queue, "region": region}
        row |= {"dim": dim, "key": key}
        row |= {name: c.get(name, 0) for name in COUNTERS}
        payload.append(row)
    if not payload:
        return
    ins = _insert(conn, _ROLLUP)
    stmt = ins.on_conflict_do_update(
        index_elements=["grain", "bucket", "queue", "region", "dim", "key"],
        set_={name: _ROLLUP.c[name] + ins.excluded[name] for name in COUNTERS},
    )
    for i in range(0, len(payload), 2000):
        conn.execute(stmt, payload[i : i + 2000])
    conn.execute(delete(_ROLLUP).where(_ROLLUP.c.offered == 0))


def _apply_seats(conn: Connection, deltas: Mapping[SeatKey, Mapping[str, Any]]) -> None:
    payload = [
        {"bucket": b, "seat": s, "region": c.get("region", "")}
        | {n: c.get(n, 0) for n in SEAT_COUNTERS}
        for (b, s), c in deltas.items()
    ]
    if not payload:
        return
    ins = _insert(conn, _SEAT_H)
    stmt = ins.on_conflict_do_update(
        index_elements=["bucket", "seat"],
        set_={n: _SEAT_H.c[n] + ins.excluded[n] for n in SEAT_COUNTERS},
    )
    for i in range(0, len(payload), 2000):
        conn.execute(stmt, payload[i : i + 2000])


def _save_seat_status(conn: Connection, status: Mapping[str, SeatStatus]) -> None:
    if not status:
        return
    rows = [
        {"seat": s, "state": st.state, "since": st.since, "region": st.region}
        | {"last_call": st.last_call}
        for s, st in status.items()
    ]
    ins = _insert(conn, KpiSeatState.__table__)
    stmt = ins.on_conflict_do_update(
        index_elements=["seat"],
        set_={c: ins.excluded[c] for c in ("state", "since", "region", "last_call")},
    )
    conn.execute(stmt, rows)


def _load_seat_status(conn: Connection) -> dict[str, SeatStatus]:
    rows = conn.execute(select(KpiSeatState.__table__)).all()
    return {r.seat: SeatStatus(r.state, r.since, r.region, r.last_call) for r in rows}


# Seat regions seen so far, per engine: (last event id loaded, regions).
_REGION_CACHE: weakref.WeakKeyDictionary[Engine, tuple[int, SeatRegions]] = (
    weakref.WeakKeyDictionary()
)


def _seat_regions(conn: Connection, engine: Engine, upto_id: int) -> SeatRegions:
    loaded, regions = _REGION_CACHE.get(engine, (0, SeatRegions()))
    if upto_id > loaded:
        query = (
            select(_EV.c.call_id, _EV.c.ts, _EV.c.data)
            .where(_EV.c.type == "seat.login", _EV.c.id > loaded, _EV.c.id <= upto_id)
            .order_by(_EV.c.id)
        )
        for call_id, ts, data in conn.execute(query):
            regions.add(
                seat_of(data or {}) or call_id.split(":", 1)[-1], ts, (data or {}).get("region")
            )
        _REGION_CACHE[engine] = (upto_id, regions)
    return regions


# --- incremental -------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestStats:
    events: int
    calls: int
    last_id: int
    seconds: float


def ingest(engine: Engine, th: Thresholds, *, max_events: int = 20_000) -> IngestStats:
    """Fold the next ``max_events`` events after the checkpoint into the rollups."""
    t0 = time.perf_counter()
    with engine.begin() as conn:
        _check_thresholds(conn, th)
        meta = _meta(conn, "checkpoint")
        last = int(meta["last_id"]) if meta else 0
        rows = conn.execute(
            select(_EV).where(_EV.c.id > last).order_by(_EV.c.id).limit(max_events)
        ).all()
        if not rows:
            return IngestStats(0, 0, last, time.perf_counter() - t0)
        end_id = rows[-1].id
        events = [_from_row(r) for r in rows]
        fold = SeatFold(_load_seat_status(conn))
        out = SeatOutput()
        touched_seats: set[str] = set()
        affected: dict[str, None] = {}
        for ev in events:
            if SeatFold.relevant(ev):
                seat = fold.feed(ev, out)
                if seat is not None:
                    touched_seats.add(seat)
            if not is_pseudo_call(ev.call_id):
                affected[ev.call_id] = None
        for call_id in out.wrap_ms:
            affected[call_id] = None
        regions = _seat_regions(conn, engine, end_id)
        ids = list(affected)
        old: dict[str, tuple[dict[str, Any], int]] = {}
        for i in range(0, len(ids), 500):
            for r in conn.execute(
                select(_CALLS.c.call_id, _CALLS.c.facts, _CALLS.c.wrap_ms).where(
                    _CALLS.c.call_id.in_(ids[i : i + 500])
                )
            ):
                old[r.call_id] = (r.facts, r.wrap_ms)
        call_events = _events_of_calls(conn, ids)
        deltas: dict[RowKey, dict[str, int]] = defaultdict(dict)
        new_rows = []
        for call_id in ids:
            evs = call_events.get(call_id)
            if not evs:
                continue  # wrap-up of a call whose events are not stored (should not happen)
            prior = old.get(call_id)
            wrap = (prior[1] if prior else 0) + out.wrap_ms.get(call_id, 0)
            facts = derive_call(evs, wrap_s=wrap / 1000, seat_regions=regions)
            if prior is not None:
                add_call(deltas, facts_from_json(prior[0]), th, -1)
            add_call(deltas, facts, th, 1)
            new_rows.append(_call_row(facts, wrap))
        if new_rows:
            ins = _insert(conn, _CALLS)
            stmt = ins.on_conflict_do_update(
                index_elements=["call_id"],
                set_={c.name: ins.excluded[c.name] for c in _CALLS.c if c.name != "call_id"},
            )
            for i in range(0, len(new_rows), 2000):
                conn.execute(stmt, new_rows[i : i + 2000])
        _apply_rows(conn, deltas)
        seat_deltas: dict[SeatKey, dict[str, Any]] = {}
        add_spans(seat_deltas, out.spans, th.tz, out.wrap_spans)
        _apply_seats(conn, seat_deltas)
        _save_seat_status(conn, {s: fold.status[s] for s in touched_seats})
        _set_meta(conn, "checkpoint", {"last_id": end_id})
    return IngestStats(len(events), len(new_rows), end_id, time.perf_counter() - t0)


def _events_of_calls(conn: Connection, ids: list[str]) -> dict[str, list[CallEvent]]:
    result: dict[str, list[CallEvent]] = defaultdict(list)
    for i in range(0, len(ids), 500):
        rows = conn.execute(
            select(_EV)
            .where(_EV.c.call_id.in_(ids[i : i + 500]))
            .order_by(_EV.c.call_id, _EV.c.seq)
        )
        for r in rows:
            result[r.call_id].append(_from_row(r))
    return result


def ingest_all(engine: Engine, th: Thresholds, *, max_events: int = 20_000) -> int:
    """Ingest until caught up; returns how many events were folded in."""
    total = 0
    while True:
        stats = ingest(engine, th, max_events=max_events)
        if stats.events == 0:
            return total
        total += stats.events


# --- rebuild -------------------------------------------------------------------------------


def clear(engine: Engine) -> None:
    """Drop every derived row (the QA/follow-up working lists are kept)."""
    with engine.begin() as conn:
        for table in (_ROLLUP, _SEAT_H, _CALLS, KpiSeatState.__table__, KpiMeta.__table__):
            conn.execute(delete(table))
    _REGION_CACHE.pop(engine, None)


def rebuild(engine: Engine, th: Thresholds, *, flush_calls: int = 20_000) -> IngestStats:
    """Recompute every rollup from the log (a separate, streaming path), then checkpoint."""
    t0 = time.perf_counter()
    clear(engine)
    with engine.connect() as conn:
        max_id = conn.execute(select(func.max(_EV.c.id))).scalar() or 0
        # Pass 1: the seat fold, over seat streams and answers, in log order.
        fold = SeatFold()
        out = SeatOutput()
        seat_q = (
            select(_EV)
            .where(_EV.c.id <= max_id)
            .where((_EV.c.call_id.like("seat:%")) | (_EV.c.type == "queue.connected"))
            .order_by(_EV.c.id)
        )
        for r in conn.execution_options(yield_per=20_000).execute(seat_q):
            fold.feed(_from_row(r), out)
    regions = SeatRegions()
    with engine.connect() as conn:
        regions = _seat_regions(conn, engine, max_id)
    rows: dict[RowKey, dict[str, int]] = defaultdict(dict)
    calls = 0
    pending: list[dict[str, Any]] = []

    def flush() -> None:
        if pending:
            with engine.begin() as wconn:
                for i in range(0, len(pending), 5000):
                    wconn.execute(_CALLS.insert(), pending[i : i + 5000])
            pending.clear()

    def finish(call_events: list[CallEvent]) -> None:
        nonlocal calls
        call_id = call_events[0].call_id
        wrap = out.wrap_ms.get(call_id, 0)
        facts = derive_call(call_events, wrap_s=wrap / 1000, seat_regions=regions)
        add_call(rows, facts, th)
        pending.append(_call_row(facts, wrap))
        calls += 1

    with engine.connect() as conn:
        # Pass 2: every call's events together (the (call_id, seq) index), one call at a time.
        call_q = (
            select(_EV)
            .where(_EV.c.id <= max_id)
            .where(~_EV.c.call_id.like("seat:%"))
            .where(~_EV.c.call_id.like("service:%"))
            .where(~_EV.c.call_id.like("kpi:%"))
            .order_by(_EV.c.call_id, _EV.c.seq)
        )
        current: list[CallEvent] = []
        for r in conn.execution_options(yield_per=20_000).execute(call_q):
            ev = _from_row(r)
            if current and ev.call_id != current[0].call_id:
                finish(current)
                current = []
                if len(pending) >= flush_calls:
                    flush()
            current.append(ev)
        if current:
            finish(current)
    flush()
    seat_rows: dict[SeatKey, dict[str, Any]] = {}
    add_spans(seat_rows, out.spans, th.tz, out.wrap_spans)
    with engine.begin() as conn:
        _apply_rows(conn, _clean(rows))
        _apply_seats(conn, seat_rows)
        _save_seat_status(conn, fold.status)
        _set_meta(conn, "thresholds", _thresholds_json(th))
        _set_meta(conn, "checkpoint", {"last_id": max_id})
    return IngestStats(max_id, calls, max_id, time.perf_counter() - t0)


# --- reading back (tests, checks) ----------------------------------------------------------


def read_tables(
    engine: Engine,
) -> tuple[dict[RowKey, dict[str, int]], dict[SeatKey, dict[str, Any]]]:
    """The stored rollup and seat tables as dicts (zero counters left out), for comparison."""
    rows: dict[RowKey, dict[str, int]] = {}
    seats: dict[SeatKey, dict[str, Any]] = {}
    with engine.connect() as conn:
        for r in conn.execute(select(_ROLLUP)):
            key = (r.grain, r.bucket, r.queue, r.region, r.dim, r.key)
            rows[key] = {n: getattr(r, n) for n in COUNTERS if getattr(r, n)}
        for r in conn.execute(select(_SEAT_H)):
            seats[(r.bucket, r.seat)] = {"region": r.region} | {
                n: getattr(r, n) for n in SEAT_COUNTERS if getattr(r, n)
            }
    return rows, seats


def stored_facts(engine: Engine) -> dict[str, CallFacts]:
    with engine.connect() as conn:
        return {r.call_id: facts_from_json(r.facts) for r in conn.execute(select(_CALLS))}
