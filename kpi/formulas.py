"""KPI formulas over per-call facts: pure functions, every figure traceable to its calls.

Each KPI returns a :class:`KpiResult` with its numerator, denominator, value (``None`` when
the denominator is 0, never a division error) and the ids of the calls (or seat intervals) in
the numerator and the denominator, plus the ids left out and why. The definitions are those of
DESIGN.md; thresholds come from :class:`Thresholds` (defaults: short abandon 5 s, service
level 15 s, reports in Asia/Shanghai).

Definitions and counting rules
------------------------------
* Asked for a seat: ``entered_queue_at`` set (joined a queue or transferred in), an outcome
  known (calls still waiting are left out as ``in_progress``), and not a short abandon.
* Short abandon: ``abandoned and wait_s < short_abandon_s`` (a 5.0 s wait is a real abandon).
  Excluded from the answer-rate and abandonment numerators and denominators; counted by
  :func:`short_abandon_share`.
* 接通率 answer rate = answered (live, or by a callback the caller answered) / asked.
  A callback that never reached the caller is asked-but-not-answered, and not an abandon.
* 放弃率 abandonment = abandoned (not short) / asked.
* 服务水平 service level = answered live with ``wait_s <= T`` / answered live; ASA = mean
  ``wait_s`` of calls answered live. Callback-answered calls are in neither (no queue wait).
* 满意率 = (满意 + 基本满意) / evaluations; 测评率 = evaluations / answered calls;
  不满意回访率 = dissatisfied followed up / dissatisfied. A survey not answered is in none
  of these denominators except 测评率's (as an answered call without an evaluation).
* AHT = sum(talk + hold + wrap) / answered calls (handled); 质检率 = QA-inspected answered
  calls / answered calls.
* Occupancy = busy / (logged in - paused), from seat intervals (spans split at bounds).

Grouping (:func:`breakdown`): per queue (the attributed queue, see ``kpi.facts``), seat
(answering seat; unanswered calls fall under ``None``), region, topic, or period. A call
belongs to the period in which it **entered the queue**, in local time (Asia/Shanghai): a call
that joins at 23:59:50 and is answered at 00:00:10 counts for the earlier day. Seat time is
instead split at period bounds (:func:`split_interval`), so a pause across 10:00 counts partly
in each hour.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar, overload
from zoneinfo import ZoneInfo

from kpi.facts import CallFacts, FactsError, SeatIntervalFacts, SeatSpan, Survey

Period = Literal["hour", "day", "week", "month", "year"]
PERIODS: tuple[str, ...] = ("hour", "day", "week", "month", "year")
GroupBy = Literal["queue", "seat", "region", "topic", "hour", "day", "week", "month", "year"]
DEFAULT_TZ = "Asia/Shanghai"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The configurable parameters of the KPI definitions."""

    short_abandon_s: float = 5.0
    service_level_s: float = 15.0
    tz: str = DEFAULT_TZ


@dataclass(frozen=True, slots=True)
class KpiResult:
    """One KPI value with the calls behind it."""

    name: str
    numerator: float
    denominator: float
    numerator_ids: tuple[str, ...]
    denominator_ids: tuple[str, ...]
    excluded: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unit: Literal["ratio", "seconds"] = "ratio"

    @property
    def value(self) -> float | None:
        return None if self.denominator == 0 else self.numerator / self.denominator


def _ratio(
    name: str,
    numerator: Sequence[str],
    denominator: Sequence[str],
    excluded: Mapping[str, Sequence[str]] | None = None,
) -> KpiResult:
    return KpiResult(
        name,
        len(numerator),
        len(denominator),
        tuple(numerator),
        tuple(denominator),
        {k: tuple(v) for k, v in (excluded or {}).items()},
    )


def _mean(
    name: str, calls: Sequence[CallFacts], seconds: Callable[[CallFacts], float]
) -> KpiResult:
    ids = tuple(c.call_id for c in calls)
    return KpiResult(name, sum(seconds(c) for c in calls), len(calls), ids, ids, {}, "seconds")


def _is_short_abandon(call: CallFacts, short_abandon_s: float) -> bool:
    return call.abandoned and call.wait_s < short_abandon_s


def _asked(
    facts: Iterable[CallFacts], short_abandon_s: float
) -> tuple[list[CallFacts], dict[str, list[str]]]:
    """Calls that asked for a seat and count, and the ids left out by reason."""
    asked: list[CallFacts] = []
    excluded: dict[str, list[str]] = {"short_abandon": [], "in_progress": []}
    for call in facts:
        if not call.asked_for_seat:
            continue
        if call.in_progress:
            excluded["in_progress"].append(call.call_id)
        elif _is_short_abandon(call, short_abandon_s):
            excluded["short_abandon"].append(call.call_id)
        else:
            asked.append(call)
    return asked, excluded


# --- the KPIs ------------------------------------------------------------------------------


def answer_rate(facts: Iterable[CallFacts], short_abandon_s: float = 5.0) -> KpiResult:
    """接通率: answered by a seat / asked for a seat, short abandons excluded from both."""
    asked, excluded = _asked(facts, short_abandon_s)
    answered = [c.call_id for c in asked if c.answered]
    return _ratio("answer_rate", answered, [c.call_id for c in asked], excluded)


def abandonment_rate(facts: Iterable[CallFacts], short_abandon_s: float = 5.0) -> KpiResult:
    """放弃率: abandoned while waiting / asked for a seat, short abandons excluded."""
    asked, excluded = _asked(facts, short_abandon_s)
    abandoned = [c.call_id for c in asked if c.abandoned]
    return _ratio("abandonment_rate", abandoned, [c.call_id for c in asked], excluded)


def short_abandon_share(facts: Iterable[CallFacts], short_abandon_s: float = 5.0) -> KpiResult:
    """Short abandons / all calls that asked for a seat (with an outcome): reported apart."""
    asked = [c for c in facts if c.asked_for_seat and not c.in_progress]
    short = [c.call_id for c in asked if _is_short_abandon(c, short_abandon_s)]
    return _ratio("short_abandon_share", short, [c.call_id for c in asked])


def service_level(facts: Iterable[CallFacts], threshold_s: float = 15.0) -> KpiResult:
    """服务水平: answered live within ``threshold_s`` (inclusive) / answered live."""
    live = [c for c in facts if c.answered_live]
    within = [c.call_id for c in live if c.wait_s <= threshold_s]
    return _ratio("service_level", within, [c.call_id for c in live])


def asa(facts: Iterable[CallFacts]) -> KpiResult:
    """ASA: mean seconds from entering the queue to a live answer."""
    return _mean("asa", [c for c in facts if c.answered_live], lambda c: c.wait_s)


def aht(facts: Iterable[CallFacts]) -> KpiResult:
    """AHT: (talk + hold + wrap-up) / handled (answered) calls."""
    return _mean("aht", [c for c in facts if c.answered], lambda c: c.handling_s)


def satisfaction(facts: Iterable[CallFacts]) -> KpiResult:
    """满意率: (满意 + 基本满意) / evaluations given; unanswered surveys are not in it."""
    rated = [c for c in facts if c.survey is not None]
    good = [c.call_id for c in rated if c.survey is not Survey.DISSATISFIED]
    return _ratio("satisfaction", good, [c.call_id for c in rated])


def evaluation_rate(facts: Iterable[CallFacts]) -> KpiResult:
    """测评率: evaluations given / answered calls."""
    answered = [c for c in facts if c.answered]
    rated = [c.call_id for c in answered if c.survey is not None]
    return _ratio("evaluation_rate", rated, [c.call_id for c in answered])


def follow_up_rate(facts: Iterable[CallFacts]) -> KpiResult:
    """不满意回访率: dissatisfied callers followed up / dissatisfied evaluations."""
    unhappy = [c for c in facts if c.survey is Survey.DISSATISFIED]
    done = [c.call_id for c in unhappy if c.followed_up]
    return _ratio("follow_up_rate", done, [c.call_id for c in unhappy])


def qa_rate(facts: Iterable[CallFacts]) -> KpiResult:
    """质检率: QA-inspected answered calls / answered calls."""
    answered = [c for c in facts if c.answered]
    inspected = [c.call_id for c in answered if c.qa_inspected]
    return _ratio("qa_rate", inspected, [c.call_id for c in answered])


def occupancy(intervals: Iterable[SeatIntervalFacts]) -> KpiResult:
    """Occupancy: busy / (logged in - paused); ids are ``seat@interval``."""
    rows = list(intervals)
    ids = tuple(f"{r.seat}@{r.key}" for r in rows)
    busy = tuple(f"{r.seat}@{r.key}" for r in rows if r.busy_s > 0)
    return KpiResult(
        "occupancy",
        sum(r.busy_s for r in rows),
        sum(r.available_s for r in rows),
        busy,
        ids,
    )


def all_kpis(
    facts: Iterable[CallFacts], thresholds: Thresholds = Thresholds()
) -> dict[str, KpiResult]:
    """Every call-based KPI of one group of calls, by name."""
    calls = list(facts)
    results = [
        answer_rate(calls, thresholds.short_abandon_s),
        abandonment_rate(calls, thresholds.short_abandon_s),
        short_abandon_share(calls, thresholds.short_abandon_s),
        service_level(calls, thresholds.service_level_s),
        asa(calls),
        aht(calls),
        satisfaction(calls),
        evaluation_rate(calls),
        follow_up_rate(calls),
        qa_rate(calls),
    ]
    return {r.name: r for r in results}


# --- periods ---------------------------------------------------------------------------------


def _require_aware(ts: datetime) -> None:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"timestamps must be timezone-aware (UTC), got naive {ts}")


def period_start(ts_utc: datetime, period: Period, tz: str = DEFAULT_TZ) -> datetime:
    """The local start (aware, in ``tz``) of the period that contains ``ts_utc``."""
    _require_aware(ts_utc)
    local = ts_utc.astimezone(ZoneInfo(tz))
    if period == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":  # ISO weeks start on Monday
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "year":
        return day.replace(month=1, day=1)
    raise ValueError(f"period must be one of {PERIODS}, got {period!r}")


def _next_start(start: datetime, period: Period) -> datetime:
    """The next period's local start (wall-clock arithmetic; Asia/Shanghai has no DST)."""
    if period == "hour":
        return start + timedelta(hours=1)
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    if period == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start.replace(year=start.year + 1)


def _label(start: datetime, period: Period) -> str:
    if period == "hour":
        return start.strftime("%Y-%m-%dT%H")
    if period == "day":
        return start.strftime("%Y-%m-%d")
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return start.strftime("%Y-%m")
    return start.strftime("%Y")


def period_key(ts_utc: datetime, period: Period, tz: str = DEFAULT_TZ) -> str:
    """Label of the local period holding ``ts_utc``: ``2024-03-01T13`` (hour), ``2024-03-01``,
    ``2024-W09`` (ISO week), ``2024-03``, ``2024``. Labels of one period kind sort in time."""
    return _label(period_start(ts_utc, period, tz), period)


def split_interval(
    start: datetime, end: datetime, period: Period, tz: str = DEFAULT_TZ
) -> list[tuple[str, datetime, datetime]]:
    """Cut ``[start, end)`` at the local period bounds: ``(key, piece_start, piece_end)``.

    Pieces are contiguous, cover the interval exactly and are returned in UTC. An empty
    interval gives no pieces.
    """
    _require_aware(start)
    _require_aware(end)
    if end < start:
        raise ValueError(f"interval ends ({end}) before it starts ({start})")
    pieces: list[tuple[str, datetime, datetime]] = []
    utc = ZoneInfo("UTC")
    cursor = start.astimezone(utc)
    stop = end.astimezone(utc)
    while cursor < stop:
        local_start = period_start(cursor, period, tz)
        bound = _next_start(local_start, period).astimezone(utc)
        piece_end = min(bound, stop)
        pieces.append((_label(local_start, period), cursor, piece_end))
        cursor = piece_end
    return pieces


def seat_intervals(
    spans: Iterable[SeatSpan], period: Period, tz: str = DEFAULT_TZ
) -> list[SeatIntervalFacts]:
    """Seat time per (seat, period): spans split at the bounds, summed per activity."""
    totals: dict[tuple[str, str], dict[str, float]] = defaultdict(
        lambda: {"logged_in": 0.0, "paused": 0.0, "busy": 0.0}
    )
    regions: dict[tuple[str, str], str | None] = {}
    for span in spans:
        for key, a, b in split_interval(span.start, span.end, period, tz):
            totals[(span.seat, key)][span.activity] += (b - a).total_seconds()
            regions.setdefault((span.seat, key), span.region)
    rows = []
    for (seat, key), t in sorted(totals.items()):
        slack = 1e-6  # float sums of split pieces
        if t["paused"] > t["logged_in"] + slack or t["busy"] > t["logged_in"] + slack:
            raise FactsError(f"seat {seat} in {key}: paused or busy longer than logged in")
        rows.append(
            SeatIntervalFacts(
                seat, period, key, t["logged_in"], t["paused"], t["busy"], regions[(seat, key)]
            )
        )
    return rows


# --- grouping --------------------------------------------------------------------------------


def group_key(call: CallFacts, by: GroupBy, tz: str = DEFAULT_TZ) -> str | None:
    """The group of one call; periods by the local time it entered the queue."""
    if by in PERIODS:
        if call.entered_queue_at is None:
            return None
        return period_key(call.entered_queue_at, by, tz)  # type: ignore[arg-type]
    if by in ("queue", "seat", "region", "topic"):
        return getattr(call, by)
    raise ValueError(f"cannot group by {by!r}: use queue, seat, region, topic or {PERIODS}")


@overload
def breakdown(
    facts: Iterable[CallFacts],
    by: GroupBy,
    kpi: None = None,
    thresholds: Thresholds = ...,
) -> dict[str | None, dict[str, KpiResult]]: ...


@overload
def breakdown(
    facts: Iterable[CallFacts],
    by: GroupBy,
    kpi: Callable[[list[CallFacts]], T],
    thresholds: Thresholds = ...,
) -> dict[str | None, T]: ...


def breakdown(
    facts: Iterable[CallFacts],
    by: GroupBy,
    kpi: Callable[[list[CallFacts]], Any] | None = None,
    thresholds: Thresholds = Thresholds(),
) -> dict[str | None, Any]:
    """Apply ``kpi`` (default: :func:`all_kpis`) to each group of calls, keyed by group.

    Groups partition the calls, so counts add up to the whole; keys sort in time for periods.
    Example: ``breakdown(calls, "day", answer_rate)``.
    """
    groups: dict[str | None, list[CallFacts]] = defaultdict(list)
    for call in facts:
        groups[group_key(call, by, thresholds.tz)].append(call)
    compute = kpi or (lambda calls: all_kpis(calls, thresholds))
    ordered = sorted(groups, key=lambda k: (k is None, k or ""))
    return {key: compute(groups[key]) for key in ordered}


def breakdown_seats(
    intervals: Iterable[SeatIntervalFacts], by: Literal["seat", "region", "period"]
) -> dict[str | None, KpiResult]:
    """Occupancy per seat, region or interval key."""
    groups: dict[str | None, list[SeatIntervalFacts]] = defaultdict(list)
    for row in intervals:
        key = row.key if by == "period" else getattr(row, by)
        groups[key].append(row)
    return {k: occupancy(groups[k]) for k in sorted(groups, key=lambda k: (k is None, k or ""))}
