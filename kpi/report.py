"""Reports: KPIs of a day, week, month or year from the rollups, as HTML, XLSX, CSV or JSON.

``build_report(engine, "2026-10", queue=..., region=...)`` sums the rollup counters of the
period (and of the previous one, for the trend) and turns them into the KPIs of DESIGN.md with
the formulas' definitions: every figure is a numerator and a denominator, printed with the
thresholds and targets used. :func:`trace` lists the calls behind any figure, from the stored
per-call facts through ``kpi.formulas`` itself, so a manager can check a number call by call.

Renderers: :func:`render_html` (one self-contained page; charts are inline SVG drawn here on
the server, no JavaScript), :func:`render_xlsx` (openpyxl; one sheet per breakdown plus the
thresholds), :func:`render_csv` (long format, one KPI per line). Seat occupancy comes from seat
time, which belongs to a seat and not to a queue: the queue filter does not apply to it.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine, func, select

from kpi import formulas
from kpi.facts import CallFacts
from kpi.formulas import Thresholds
from kpi.models import COUNTERS, KpiCall, KpiRollup, KpiSeatHourly
from kpi.rollup import RollupMismatch, built_with, checkpoint, facts_from_json
from kpi.settings import KpiSettings

TEMPLATES = Path(__file__).resolve().parent / "templates"

# name -> (Chinese label, English label, unit, target attribute in KpiTargets or None)
KPI_LABELS: dict[str, tuple[str, str, str, str | None]] = {
    "answer_rate": ("接通率", "answer rate", "ratio", "answer_rate"),
    "satisfaction": ("满意率", "satisfaction", "ratio", "satisfaction"),
    "evaluation_rate": ("测评率", "evaluation rate", "ratio", None),
    "follow_up_rate": ("不满意回访率", "dissatisfied followed up", "ratio", None),
    "qa_rate": ("质检率", "QA inspection rate", "ratio", "qa_share"),
    "abandonment_rate": ("放弃率", "abandonment", "ratio", None),
    "short_abandon_share": ("短时放弃占比", "short abandons", "ratio", None),
    "service_level": ("服务水平", "service level", "ratio", "service_level"),
    "asa": ("平均应答时长", "ASA", "seconds", None),
    "aht": ("平均处理时长", "AHT", "seconds", None),
    "occupancy": ("坐席占用率", "occupancy", "ratio", None),
}
CALL_KPIS = tuple(k for k in KPI_LABELS if k != "occupancy")


class ReportError(ValueError):
    """A report request that cannot be answered (bad period, rollups to rebuild)."""


# --- periods ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportPeriod:
    kind: str  # day | week | month | year
    label: str
    start: datetime  # local, aware
    end: datetime  # local, aware, exclusive

    @property
    def start_utc(self) -> datetime:
        return self.start.astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return self.end.astimezone(UTC)

    def previous(self) -> ReportPeriod:
        return parse_period(_previous_label(self), str(self.start.tzinfo))

    def days(self) -> list[date]:
        d, out = self.start.date(), []
        while d < self.end.date():
            out.append(d)
            d += timedelta(days=1)
        return out


def parse_period(spec: str, tz: str = formulas.DEFAULT_TZ) -> ReportPeriod:
    """``2026-10-01`` (day), ``2026-W40`` (ISO week), ``2026-10`` (month), ``2026`` (year)."""
    zone = ZoneInfo(tz)
    spec = spec.strip()
    try:
        if m := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", spec):
            start = datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=zone)
            return ReportPeriod("day", spec, start, start + timedelta(days=1))
        if m := re.fullmatch(r"(\d{4})-W(\d{2})", spec):
            monday = date.fromisocalendar(int(m[1]), int(m[2]), 1)
            start = datetime(monday.year, monday.month, monday.day, tzinfo=zone)
            return ReportPeriod("week", spec, start, start + timedelta(days=7))
        if m := re.fullmatch(r"(\d{4})-(\d{2})", spec):
            y, mo = int(m[1]), int(m[2])
            start = datetime(y, mo, 1, tzinfo=zone)
            end = datetime(y + mo // 12, mo % 12 + 1, 1, tzinfo=zone)
            return ReportPeriod("month", spec, start, end)
        if m := re.fullmatch(r"(\d{4})", spec):
            y = int(m[1])
            return ReportPeriod(
                "year", spec, datetime(y, 1, 1, tzinfo=zone), datetime(y + 1, 1, 1, tzinfo=zone)
            )
    except ValueError as exc:
        raise ReportError(f"period {spec!r}: {exc}") from exc
    raise ReportError(
        f"period {spec!r}: use 2026-10-01 (day), 2026-W40 (week), 2026-10 (month) or 2026 (year)"
    )


def _previous_label(p: ReportPeriod) -> str:
    if p.kind == "day":
        return (p.start - timedelta(days=1)).strftime("%Y-%m-%d")
    if p.kind == "week":
        y, w, _ = (p.start - timedelta(days=7)).isocalendar()
        return f"{y}-W{w:02d}"
    if p.kind == "month":
        return (p.start - timedelta(days=1)).strftime("%Y-%m")
    return str(p.start.year - 1)


# --- KPIs from counters ------------------------------------------------------------------------


@dataclass(frozen=True)
class KpiValue:
    name: str
    numerator: float
    denominator: float
    unit: str = "ratio"

    @property
    def value(self) -> float | None:
        return None if self.denominator == 0 else self.numerator / self.denominator

    def shown(self) -> str:
        v = self.value
        if v is None:
            return "—"
        return f"{v * 100:.2f}%" if self.unit == "ratio" else f"{v:.1f} s"


def kpis_from_counters(
    c: Mapping[str, int], seat: Mapping[str, int] | None = None
) -> dict[str, KpiValue]:
    """The KPIs of a group from its summed counters (the formulas' definitions)."""
    g = lambda n: c.get(n, 0)  # noqa: E731
    out = {
        "answer_rate": KpiValue("answer_rate", g("answered"), g("asked")),
        "satisfaction": KpiValue("satisfaction", g("good"), g("rated")),
        "evaluation_rate": KpiValue("evaluation_rate", g("rated"), g("answered")),
        "follow_up_rate": KpiValue("follow_up_rate", g("followed_up"), g("dissatisfied")),
        "qa_rate": KpiValue("qa_rate", g("qa_inspected"), g("answered")),
        "abandonment_rate": KpiValue("abandonment_rate", g("abandoned"), g("asked")),
        "short_abandon_share": KpiValue(
            "short_abandon_share", g("short_abandoned"), g("asked") + g("short_abandoned")
        ),
        "service_level": KpiValue("service_level", g("within_sl"), g("answered_live")),
        "asa": KpiValue("asa", g("wait_ms") / 1000, g("answered_live"), "seconds"),
        "aht": KpiValue("aht", g("handling_ms") / 1000, g("answered"), "seconds"),
    }
    if seat is not None:
        available = seat.get("logged_in_ms", 0) - seat.get("paused_ms", 0)
        out["occupancy"] = KpiValue("occupancy", seat.get("busy_ms", 0), max(0, available))
    return out


# --- the report --------------------------------------------------------------------------------


@dataclass
class Group:
    key: str
    counters: dict[str, int]
    kpis: dict[str, KpiValue]


@dataclass
class Report:
    period: ReportPeriod
    previous: ReportPeriod
    queue: str | None
    region: str | None
    thresholds: Thresholds
    targets: dict[str, float]
    total: Group
    previous_total: Group
    by_day: list[Group]
    previous_by_day: list[Group]
    by_hour: list[Group]  # hour of day 0..23, local
    by_queue: list[Group]
    by_region: list[Group]
    by_topic: list[Group]
    by_seat: list[Group]
    generated_at: datetime
    checkpoint: int
    notes: list[str] = field(default_factory=list)

    def threshold_lines(self) -> list[tuple[str, str]]:
        th = self.thresholds
        return [
            ("短时放弃阈值 short-abandon threshold", f"{th.short_abandon_s:g} s"),
            ("服务水平时限 service-level T", f"{th.service_level_s:g} s"),
            ("时区 time zone", th.tz),
            *[
                (f"目标 target {KPI_LABELS[k][0]} {KPI_LABELS[k][1]}", f"{v * 100:g}%")
                for k, v in self.targets.items()
                if k in KPI_LABELS
            ],
        ]

    def to_json(self) -> dict[str, Any]:
        def group(g: Group) -> dict[str, Any]:
            return {
                "key": g.key,
                "counters": g.counters,
                "kpis": {
                    k: {"numerator": v.numerator, "denominator": v.denominator, "value": v.value}
                    for k, v in g.kpis.items()
                },
            }

        return {
            "period": self.period.label,
            "previous": self.previous.label,
            "filters": {"queue": self.queue, "region": self.region},
            "thresholds": {
                "short_abandon_s": self.thresholds.short_abandon_s,
                "service_level_s": self.thresholds.service_level_s,
                "tz": self.thresholds.tz,
            },
            "targets": self.targets,
            "total": group(self.total),
            "previous_total": group(self.previous_total),
            **{
                name: [group(g) for g in getattr(self, name)]
                for name in (
                    "by_day",
                    "previous_by_day",
                    "by_hour",
                    "by_queue",
                    "by_region",
                    "by_topic",
                    "by_seat",
                )
            },
            "generated_at": self.generated_at.isoformat(),
            "checkpoint": self.checkpoint,
            "notes": self.notes,
        }


_R = KpiRollup.__table__
_S = KpiSeatHourly.__table__
_SUMS = [func.coalesce(func.sum(_R.c[n]), 0).label(n) for n in COUNTERS]


def _sum(
    conn: Any,
    grain: str,
    dim: str,
    start: datetime,
    end: datetime,
    by: Sequence[Any],
    queue: str | None,
    region: str | None,
) -> dict[tuple[Any, ...], dict[str, int]]:
    q = select(*by, *_SUMS).where(
        _R.c.grain == grain, _R.c.dim == dim, _R.c.bucket >= start, _R.c.bucket < end
    )
    if queue is not None:
        q = q.where(_R.c.queue == queue)
    if region is not None:
        q = q.where(_R.c.region == region)
    if by:
        q = q.group_by(*by)
    out: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in conn.execute(q):
        values = tuple(row)
        counters = {n: int(v) for n, v in zip(COUNTERS, values[len(by) :], strict=True)}
        if counters["offered"]:  # SUM over no rows is a row of zeros: no calls, no group
            out[values[: len(by)]] = counters
    return out


def _seat_sum(
    conn: Any, start: datetime, end: datetime, by: Sequence[Any], region: str | None
) -> dict[tuple[Any, ...], dict[str, int]]:
    cols = ("logged_in_ms", "paused_ms", "busy_ms", "wrap_ms")
    q = select(*by, *[func.coalesce(func.sum(_S.c[n]), 0) for n in cols]).where(
        _S.c.bucket >= start, _S.c.bucket < end
    )
    if region is not None:
        q = q.where(_S.c.region == region)
    if by:
        q = q.group_by(*by)
    return {
        tuple(r)[: len(by)]: dict(zip(cols, map(int, tuple(r)[len(by) :]), strict=True))
        for r in conn.execute(q)
    }


def _add(a: dict[str, int], b: Mapping[str, int]) -> None:
    for k, v in b.items():
        a[k] = a.get(k, 0) + v


def _groups(
    sums: Mapping[tuple[Any, ...], dict[str, int]],
    seats: Mapping[tuple[Any, ...], dict[str, int]] | None = None,
) -> list[Group]:
    out = []
    for key in sorted(sums, key=lambda k: str(k[0])):
        seat = seats.get(key, {}) if seats is not None else None
        out.append(Group(str(key[0]), sums[key], kpis_from_counters(sums[key], seat)))
    return out


def build_report(
    engine: Engine,
    period: str | ReportPeriod,
    *,
    queue: str | None = None,
    region: str | None = None,
    settings: KpiSettings | None = None,
) -> Report:
    """Sum the rollups of ``period`` (and the previous period) into a :class:`Report`."""
    settings = settings or KpiSettings()
    th = settings.thresholds()
    stored = built_with(engine)
    if stored is not None and stored != th:
        raise RollupMismatch(
            f"the rollups were built with {stored}, the settings say {th}: rebuild the rollups"
        )
    p = period if isinstance(period, ReportPeriod) else parse_period(period, th.tz)
    prev = p.previous()
    zone = ZoneInfo(th.tz)
    with engine.connect() as conn:
        total = _sum(conn, "day", "all", p.start_utc, p.end_utc, [], queue, region).get((), {})
        prev_total = _sum(conn, "day", "all", prev.start_utc, prev.end_utc, [], queue, region)
        seat_total = _seat_sum(conn, p.start_utc, p.end_utc, [], region).get((), {})
        prev_seat = _seat_sum(conn, prev.start_utc, prev.end_utc, [], region).get((), {})

        def daily(per: ReportPeriod) -> list[Group]:
            rows = _sum(
                conn, "day", "all", per.start_utc, per.end_utc, [_R.c.bucket], queue, region
            )
            by_label: dict[str, dict[str, int]] = {}
            for (bucket,), c in rows.items():
                by_label[bucket.astimezone(zone).strftime("%Y-%m-%d")] = c
            return [
                Group(
                    d.isoformat(),
                    by_label.get(d.isoformat(), {}),
                    kpis_from_counters(by_label.get(d.isoformat(), {})),
                )
                for d in per.days()
            ]

        by_day, prev_by_day = daily(p), daily(prev)
        hourly = _sum(conn, "hour", "all", p.start_utc, p.end_utc, [_R.c.bucket], queue, region)
        hours: dict[int, dict[str, int]] = defaultdict(dict)
        for (bucket,), c in hourly.items():
            _add(hours[bucket.astimezone(zone).hour], c)
        by_hour = [
            Group(f"{h:02d}", hours.get(h, {}), kpis_from_counters(hours.get(h, {})))
            for h in range(24)
        ]
        by_queue = _groups(
            _sum(conn, "day", "all", p.start_utc, p.end_utc, [_R.c.queue], queue, region)
        )
        by_region = _groups(
            _sum(conn, "day", "all", p.start_utc, p.end_utc, [_R.c.region], queue, region)
        )
        by_topic = _groups(
            _sum(conn, "day", "topic", p.start_utc, p.end_utc, [_R.c.key], queue, region)
        )
        by_seat = _groups(
            _sum(conn, "day", "seat", p.start_utc, p.end_utc, [_R.c.key], queue, region),
            _seat_sum(conn, p.start_utc, p.end_utc, [_S.c.seat], region),
        )
    notes = [
        "接通率 = 坐席接通 / 请求人工 (短时放弃不计入分子分母); "
        "answer rate excludes short abandons.",
        "满意率 = (满意 + 基本满意) / 参评数; 测评率 = 参评数 / 接通数.",
        f"按来电进入队列的时间归属时段 ({th.tz}); a call counts in the period it joined a queue.",
        "坐席占用率不按队列筛选; occupancy is seat time and ignores the queue filter.",
    ]
    if total.get("in_progress"):
        notes.append(f"{total['in_progress']} 通来电仍在排队, 未计入比率; calls still waiting.")
    t = settings.targets
    return Report(
        period=p,
        previous=prev,
        queue=queue,
        region=region,
        thresholds=th,
        targets={
            "answer_rate": t.answer_rate,
            "satisfaction": t.satisfaction,
            "service_level": t.service_level,
            "qa_rate": t.qa_share,
        },
        total=Group("total", total, kpis_from_counters(total, seat_total)),
        previous_total=Group(
            "previous",
            prev_total.get((), {}),
            kpis_from_counters(prev_total.get((), {}), prev_seat),
        ),
        by_day=by_day,
        previous_by_day=prev_by_day,
        by_hour=by_hour,
        by_queue=by_queue,
        by_region=by_region,
        by_topic=by_topic,
        by_seat=by_seat,
        generated_at=datetime.now(UTC),
        checkpoint=checkpoint(engine),
        notes=notes,
    )


# --- trace: the calls behind a figure -------------------------------------------------------

_FORMULAS: dict[str, Callable[[list[CallFacts], Thresholds], formulas.KpiResult]] = {
    "answer_rate": lambda c, th: formulas.answer_rate(c, th.short_abandon_s),
    "abandonment_rate": lambda c, th: formulas.abandonment_rate(c, th.short_abandon_s),
    "short_abandon_share": lambda c, th: formulas.short_abandon_share(c, th.short_abandon_s),
    "service_level": lambda c, th: formulas.service_level(c, th.service_level_s),
    "asa": lambda c, _: formulas.asa(c),
    "aht": lambda c, _: formulas.aht(c),
    "satisfaction": lambda c, _: formulas.satisfaction(c),
    "evaluation_rate": lambda c, _: formulas.evaluation_rate(c),
    "follow_up_rate": lambda c, _: formulas.follow_up_rate(c),
    "qa_rate": lambda c, _: formulas.qa_rate(c),
}


def period_facts(
    engine: Engine,
    period: str | ReportPeriod,
    *,
    tz: str = formulas.DEFAULT_TZ,
    **filters: str | None,
) -> list[CallFacts]:
    """The stored facts of the calls that entered a queue in the period (``queue``, ``region``,
    ``topic``, ``seat`` filters; ``""`` selects calls without one)."""
    p = period if isinstance(period, ReportPeriod) else parse_period(period, tz)
    t = KpiCall.__table__
    q = select(t.c.facts).where(t.c.entered_at >= p.start_utc, t.c.entered_at < p.end_utc)
    for name, value in filters.items():
        if value is None:
            continue
        if name not in ("queue", "region", "topic", "seat"):
            raise ReportError(f"cannot filter calls by {name!r}")
        q = q.where(t.c[name].is_(None) if value == "" else t.c[name] == value)
    with engine.connect() as conn:
        return [facts_from_json(r[0]) for r in conn.execute(q.order_by(t.c.entered_at))]


def trace(
    engine: Engine,
    kpi: str,
    period: str | ReportPeriod,
    *,
    thresholds: Thresholds | None = None,
    **filters: str | None,
) -> formulas.KpiResult:
    """A KPI of a period recomputed call by call with ``kpi.formulas``: ids in the numerator,
    the denominator, and those left out (short abandons, calls still waiting)."""
    if kpi not in _FORMULAS:
        raise ReportError(f"unknown KPI {kpi!r}; one of {sorted(_FORMULAS)}")
    thresholds = thresholds or Thresholds()
    calls = period_facts(engine, period, tz=thresholds.tz, **filters)
    return _FORMULAS[kpi](calls, thresholds)


# --- renderers -----------------------------------------------------------------------------


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


def svg_bars(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    width: int = 720,
    height: int = 220,
    color: str = "#2b6cb0",
) -> str:
    """A vertical bar chart as inline SVG (values >= 0)."""
    n = max(1, len(values))
    top = max([*values, 1e-9])
    pad_l, pad_b, pad_t = 40, 40, 28
    plot_w, plot_h = width - pad_l - 10, height - pad_b - pad_t
    bw = plot_w / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="{pad_l}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - 10}" y2="{pad_t + plot_h}" '
        'stroke="#888"/>',
    ]
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * (v / top) if top > 0 else 0
        x = pad_l + i * bw
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{pad_t + plot_h - h:.1f}" width="{max(1.0, bw - 2):.1f}" '
            f'height="{h:.1f}" fill="{color}">'
            f"<title>{escape(label)}: {escape(fmt(v))}</title></rect>"
        )
        if n <= 40:
            parts.append(
                f'<text x="{x + bw / 2:.1f}" y="{pad_t + plot_h + 14}" font-size="10" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
            parts.append(
                f'<text x="{x + bw / 2:.1f}" y="{pad_t + plot_h - h - 3:.1f}" font-size="9" '
                f'text-anchor="middle">{escape(fmt(v))}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def svg_lines(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None], str]],
    *,
    target: float | None = None,
    width: int = 720,
    height: int = 240,
) -> str:
    """Line chart of ratios (0..1) for several series: (name, values, colour)."""
    pad_l, pad_b, pad_t = 44, 36, 30
    plot_w, plot_h = width - pad_l - 10, height - pad_b - pad_t
    vals = [v for _, s, _ in series for v in s if v is not None]
    lo = min([*vals, target if target is not None else 1.0, 1.0]) if vals else 0.0
    lo = max(0.0, min(lo, 1.0) - 0.05)
    n = max(2, max((len(s) for _, s, _ in series), default=2))

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad_l + plot_w * i / (n - 1)
        y = pad_t + plot_h * (1 - (v - lo) / max(1e-9, 1.0 - lo))
        return x, y

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="{pad_l}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<text x="2" y="{pad_t + 4}" font-size="10">{_pct(1.0)}</text>',
        f'<text x="2" y="{pad_t + plot_h}" font-size="10">{_pct(lo)}</text>',
    ]
    if target is not None:
        _, ty = xy(0, target)
        parts.append(
            f'<line x1="{pad_l}" y1="{ty:.1f}" x2="{width - 10}" y2="{ty:.1f}" stroke="#c53030" '
            f'stroke-dasharray="4 3"><title>目标 target {_pct(target)}</title></line>'
        )
    for k, (name, values, colour) in enumerate(series):
        points = [xy(i, v) for i, v in enumerate(values) if v is not None]
        if points:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>'
            )
        parts.append(
            f'<text x="{pad_l + 160 * k}" y="{height - 6}" font-size="11" fill="{colour}">'
            f"— {escape(name)}</text>"
        )
    step = max(1, len(labels) // 12)
    for i in range(0, len(labels), step):
        x, _ = xy(i, lo)
        parts.append(
            f'<text x="{x:.1f}" y="{pad_t + plot_h + 14}" font-size="10" text-anchor="middle">'
            f"{escape(labels[i])}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def charts(report: Report) -> dict[str, str]:
    """The report's charts as inline SVG strings."""
    days = [g.key[5:] for g in report.by_day]
    if report.period.kind == "year":
        # A year by month reads better than 365 points.
        months: dict[str, dict[str, int]] = defaultdict(dict)
        for g in report.by_day:
            _add(months[g.key[:7]], g.counters)
        prev_months: dict[str, dict[str, int]] = defaultdict(dict)
        for g in report.previous_by_day:
            _add(prev_months[g.key[:7]], g.counters)
        labels = [m[5:] for m in sorted(months)]
        cur = [kpis_from_counters(months[m])["answer_rate"].value for m in sorted(months)]
        prev = [
            kpis_from_counters(prev_months[m])["answer_rate"].value for m in sorted(prev_months)
        ]
    else:
        labels = days
        cur = [g.kpis["answer_rate"].value for g in report.by_day]
        prev = [g.kpis["answer_rate"].value for g in report.previous_by_day]
    return {
        "trend": svg_lines(
            f"接通率趋势 answer rate: {report.period.label} vs {report.previous.label}",
            labels,
            [
                (report.period.label, cur, "#2b6cb0"),
                (report.previous.label, prev, "#a0aec0"),
            ],
            target=report.targets.get("answer_rate"),
        ),
        "hours": svg_bars(
            "按小时来电量 calls by hour of day",
            [g.key for g in report.by_hour],
            [g.counters.get("offered", 0) for g in report.by_hour],
        ),
        "topics": svg_bars(
            "按主题来电量 calls by topic",
            [g.key or "未分类" for g in report.by_topic],
            [g.counters.get("offered", 0) for g in report.by_topic],
            color="#2f855a",
        ),
        "regions": svg_bars(
            "按地区接通率 answer rate by region",
            [g.key or "未知" for g in report.by_region],
            [g.kpis["answer_rate"].value or 0.0 for g in report.by_region],
            fmt=lambda v: f"{v * 100:.1f}%",
            color="#b7791f",
        ),
    }


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["labels"] = KPI_LABELS
    env.globals["pct"] = _pct
    return env


def render_html(report: Report) -> str:
    """One self-contained HTML page (inline SVG charts, no scripts)."""
    return (
        _env()
        .get_template("report.html.j2")
        .render(r=report, charts=charts(report), kpi_names=list(KPI_LABELS), call_kpis=CALL_KPIS)
    )


_BREAKDOWNS = (
    ("按日 by day", "by_day"),
    ("按小时 by hour", "by_hour"),
    ("按队列 by queue", "by_queue"),
    ("按地区 by region", "by_region"),
    ("按主题 by topic", "by_topic"),
    ("按坐席 by seat", "by_seat"),
)
_COUNTS = ("offered", "asked", "answered", "abandoned", "short_abandoned", "rated", "dissatisfied")


def _header() -> list[str]:
    head = ["分组 group", *(f"{c}" for c in _COUNTS)]
    for k in KPI_LABELS:
        head.append(f"{KPI_LABELS[k][0]} {KPI_LABELS[k][1]}")
    return head


def _row(g: Group) -> list[Any]:
    row: list[Any] = [g.key or "—", *(g.counters.get(c, 0) for c in _COUNTS)]
    for k in KPI_LABELS:
        v = g.kpis.get(k)
        row.append(None if v is None or v.value is None else round(v.value, 6))
    return row


def render_xlsx(report: Report) -> bytes:
    """A workbook: 概览 (summary with thresholds and targets), then one sheet per breakdown."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "概览 summary"
    bold = Font(bold=True)
    ws.append([f"12348 热线 KPI 报表 {report.period.label}"])
    ws["A1"].font = bold
    ws.append(
        ["队列 queue", report.queue or "全部 all", "地区 region", report.region or "全部 all"]
    )
    ws.append([])
    ws.append(["阈值与目标 thresholds and targets"])
    ws.cell(ws.max_row, 1).font = bold
    for name, value in report.threshold_lines():
        ws.append([name, value])
    ws.append([])
    ws.append(
        [
            "指标 KPI",
            "分子 numerator",
            "分母 denominator",
            report.period.label,
            report.previous.label,
        ]
    )
    ws.cell(ws.max_row, 1).font = bold
    for k, (zh, en, _, _) in KPI_LABELS.items():
        v = report.total.kpis[k]
        pv = report.previous_total.kpis[k]
        ws.append([f"{zh} {en}", v.numerator, v.denominator, v.value, pv.value])
    ws.append([])
    for note in report.notes:
        ws.append([note])
    for title, attr in _BREAKDOWNS:
        sheet = wb.create_sheet(title)
        sheet.append(_header())
        for cell in sheet[1]:
            cell.font = bold
        for g in getattr(report, attr):
            sheet.append(_row(g))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def render_csv(report: Report) -> str:
    """Long format: section, group, kpi, numerator, denominator, value (thresholds first)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["section", "group", "kpi", "label", "numerator", "denominator", "value"])
    for name, value in report.threshold_lines():
        w.writerow(["threshold", "", name, "", "", "", value])
    sections = [("total", [report.total]), ("previous", [report.previous_total])]
    sections += [(attr, getattr(report, attr)) for _, attr in _BREAKDOWNS]
    for section, groups in sections:
        for g in groups:
            for k, v in g.kpis.items():
                w.writerow(
                    [
                        section,
                        g.key,
                        k,
                        KPI_LABELS[k][0],
                        v.numerator,
                        v.denominator,
                        "" if v.value is None else f"{v.value:.6f}",
                    ]
                )
    return buf.getvalue()


def render(report: Report, fmt: str) -> bytes:
    """``html``, ``xlsx``, ``csv`` or ``json`` as bytes."""
    if fmt == "html":
        return render_html(report).encode()
    if fmt == "xlsx":
        return render_xlsx(report)
    if fmt == "csv":
        return render_csv(report).encode("utf-8-sig")  # the BOM makes Excel read the Chinese
    if fmt == "json":
        import json

        return json.dumps(report.to_json(), ensure_ascii=False, indent=1).encode()
    raise ReportError(f"format must be html, xlsx, csv or json, not {fmt!r}")
