"""``hotline report`` and ``hotline staffing``: click commands the main CLI registers.

Both read the service configuration from ``ctx.obj`` (``hotline.config.Settings``) when it is
there; the KPI thresholds and targets come from its ``kpi`` section (defaults otherwise).
``report`` first brings the rollups up to date with the event log (or rebuilds them with
``--rebuild``), then writes the file and prints the thresholds it used.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from sqlalchemy import Engine, select

from kpi.models import KpiRollup
from kpi.settings import KpiSettings, kpi_settings
from kpi.staffing import StaffingResult, seats_needed

WEEKDAYS = ("一", "二", "三", "四", "五", "六", "日")


def _engine(ctx: click.Context) -> Engine:
    from hotline.db import make_engine, migrate

    settings = ctx.obj
    url = getattr(settings, "database_url", None)
    if url is None:
        raise click.UsageError("no database configured")
    engine = make_engine(url)
    migrate(engine)
    return engine


def _settings(ctx: click.Context) -> KpiSettings:
    return kpi_settings(ctx.obj)


@click.command("report")
@click.option("--period", required=True, help="2026-10 (month), 2026 (year), 2026-W40, 2026-10-01")
@click.option("--queue", default=None, help="only this queue")
@click.option("--region", default=None, help="only this region")
@click.option("--format", "fmt", type=click.Choice(["html", "xlsx", "csv", "json"]), default="html")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="file ('-' for stdout)")
@click.option("--rebuild", is_flag=True, help="rebuild the rollups from the event log first")
@click.pass_context
def report_command(
    ctx: click.Context,
    period: str,
    queue: str | None,
    region: str | None,
    fmt: str,
    output: str | None,
    rebuild: bool,
) -> None:
    """KPI report (接通率, 满意率, 测评率, 回访率, 质检率, 放弃率, SL, ASA, AHT, occupancy)."""
    from kpi import rollup
    from kpi.report import ReportError, build_report, render

    settings = _settings(ctx)
    engine = _engine(ctx)
    th = settings.thresholds()
    try:
        if rebuild:
            stats = rollup.rebuild(engine, th)
            click.echo(f"rollups rebuilt: {stats.calls} calls in {stats.seconds:.1f} s", err=True)
        else:
            rollup.ingest_all(engine, th)
        rep = build_report(engine, period, queue=queue, region=region, settings=settings)
    except rollup.RollupMismatch as exc:
        raise click.ClickException(f"{exc}\n(run again with --rebuild)") from exc
    except ReportError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from exc
    finally:
        engine.dispose()
    body = render(rep, fmt)
    target = output or f"kpi-{rep.period.label}{'-' + queue if queue else ''}.{fmt}"
    if target == "-":
        sys.stdout.buffer.write(body)
    else:
        Path(target).write_bytes(body)
        click.echo(f"wrote {target}", err=True)
    click.echo("thresholds used:", err=True)
    for name, value in rep.threshold_lines():
        click.echo(f"  {name}: {value}", err=True)
    ar = rep.total.kpis["answer_rate"]
    sat = rep.total.kpis["satisfaction"]
    click.echo(
        f"{rep.period.label}: 接通率 {ar.shown()} ({ar.numerator:g}/{ar.denominator:g}), "
        f"满意率 {sat.shown()} ({sat.numerator:g}/{sat.denominator:g})",
        err=True,
    )


def _parse_sl(text: str | None) -> tuple[float, float] | None:
    if text is None or text.lower() == "none":
        return None
    share, sep, seconds = text.partition("/")
    try:
        if not sep:
            raise ValueError
        return float(share), float(seconds)
    except ValueError:
        raise click.BadParameter(f"{text!r}: write share/seconds, e.g. 0.8/15") from None


def describe(result: StaffingResult) -> list[str]:
    """The figures of a staffing result, one per line, Chinese first."""
    sl = result.target_sl
    lines = [
        f"所需坐席 seats needed: {result.seats}  (model {result.model})",
        f"话务量 offered load: {result.load_erlangs:.2f} erlangs",
        f"接通率 answer rate (short abandons excluded): {result.answer_rate * 100:.2f}%",
        f"放弃率 abandonment: {result.abandon_rate * 100:.2f}%",
    ]
    if sl is not None:
        lines.append(
            f"服务水平 service level ({sl[1]:g} s): {result.service_level * 100:.2f}%"
            f" (target {sl[0] * 100:g}%)"
        )
    lines += [
        f"排队概率 P(wait): {result.p_wait * 100:.2f}%",
        f"ASA: {result.asa_s:.1f} s",
        f"坐席占用率 occupancy: {result.occupancy * 100:.1f}%",
    ]
    if result.target_answer is not None:
        lines.append(f"目标 target answer rate: {result.target_answer * 100:g}%")
    return lines


@dataclass(frozen=True)
class HourOfWeek:
    weekday: int  # 0 = Monday
    hour: int
    calls_per_hour: float
    result: StaffingResult | None


def staffing_from_history(
    engine: Engine,
    *,
    weeks: int = 8,
    end: datetime | None = None,
    settings: KpiSettings | None = None,
    patience_s: float | None = None,
    target_answer: float | None = 0.95,
    target_sl: tuple[float, float] | None = (0.8, 15.0),
) -> tuple[list[HourOfWeek], dict[str, float]]:
    """Seats needed per hour of the week from the last ``weeks`` weeks of hourly rollups.

    Calls per hour = mean offered calls in that hour of the week over the weeks; AHT = the
    period's handling time / handled calls; patience = the caller patience estimate
    (time in queue of every caller / abandons, the exponential MLE) unless given.
    """
    settings = settings or KpiSettings()
    zone = ZoneInfo(settings.tz)
    end = end or datetime.now(UTC)
    start = end - timedelta(weeks=weeks)
    r = KpiRollup.__table__
    slots: dict[tuple[int, int], int] = defaultdict(int)
    totals: dict[str, int] = defaultdict(int)
    seen_hours: set[datetime] = set()
    with engine.connect() as conn:
        q = select(
            r.c.bucket, r.c.offered, r.c.answered, r.c.handling_ms, r.c.queue_ms, r.c.abandoned_all
        ).where(r.c.grain == "hour", r.c.dim == "all", r.c.bucket >= start, r.c.bucket < end)
        for bucket, offered, answered, handling, queue_ms, abandoned in conn.execute(q):
            local = bucket.astimezone(zone)
            slots[(local.weekday(), local.hour)] += offered
            seen_hours.add(bucket)
            totals["answered"] += answered
            totals["handling_ms"] += handling
            totals["queue_ms"] += queue_ms
            totals["abandoned"] += abandoned
    aht = totals["handling_ms"] / 1000 / totals["answered"] if totals["answered"] else 0.0
    if patience_s is None and totals["abandoned"]:
        patience_s = totals["queue_ms"] / 1000 / totals["abandoned"]
    rows = []
    for wd in range(7):
        for h in range(24):
            cph = slots.get((wd, h), 0) / weeks
            result = None
            if cph > 0 and aht > 0:
                result = seats_needed(
                    cph,
                    aht,
                    patience_s,
                    target_answer=target_answer,
                    target_sl=target_sl,
                    short_abandon_s=settings.short_abandon_s,
                )
            rows.append(HourOfWeek(wd, h, cph, result))
    info = {
        "aht_s": aht,
        "patience_s": patience_s or math.nan,
        "weeks": weeks,
        "hours_with_calls": len(seen_hours),
    }
    return rows, info


@click.command("staffing")
@click.option("--calls-per-hour", type=float, help="offered calls per hour")
@click.option("--aht", type=float, help="average handling time, seconds")
@click.option("--patience", type=float, default=None, help="callers' mean patience (Erlang A)")
@click.option("--target-answer", type=float, default=0.95, show_default=True)
@click.option("--target-sl", default="0.8/15", show_default=True, help="share/seconds or none")
@click.option("--short-abandon", type=float, default=None, help="seconds (default: settings)")
@click.option("--from-history", is_flag=True, help="a seats-needed table per hour of the week")
@click.option("--weeks", type=int, default=8, show_default=True)
@click.option("--until", default=None, help="history up to this local date (default: now)")
@click.pass_context
def staffing_command(
    ctx: click.Context,
    calls_per_hour: float | None,
    aht: float | None,
    patience: float | None,
    target_answer: float,
    target_sl: str,
    short_abandon: float | None,
    from_history: bool,
    weeks: int,
    until: str | None,
) -> None:
    """Seats needed (Erlang C; Erlang A with --patience) for the answer-rate and SL targets."""
    settings = _settings(ctx)
    sl = _parse_sl(target_sl)
    short = settings.short_abandon_s if short_abandon is None else short_abandon
    if from_history:
        engine = _engine(ctx)
        try:
            rows, info = staffing_from_history(
                engine,
                weeks=weeks,
                settings=settings,
                patience_s=patience,
                target_answer=target_answer,
                target_sl=sl,
            )
        finally:
            engine.dispose()
        click.echo(
            f"history: {weeks} weeks, AHT {info['aht_s']:.0f} s, patience "
            f"{info['patience_s']:.0f} s, targets 接通率 {target_answer:g} SL {target_sl}"
        )
        click.echo("hour " + " ".join(f"周{d:>3}" for d in WEEKDAYS))
        by = {(r.weekday, r.hour): r for r in rows}
        for h in range(24):
            cells = []
            for wd in range(7):
                res = by[(wd, h)].result
                cells.append(f"{res.seats if res else 0:>4}")
            click.echo(f"{h:02d}   " + " ".join(cells))
        return
    if calls_per_hour is None or aht is None:
        raise click.UsageError("give --calls-per-hour and --aht (or --from-history)")
    try:
        result = seats_needed(
            calls_per_hour,
            aht,
            patience,
            target_answer=target_answer,
            target_sl=sl,
            short_abandon_s=short,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"{calls_per_hour:g} calls/h, AHT {aht:g} s"
        + (f", patience {patience:g} s" if patience else "")
        + f", short abandon {short:g} s"
    )
    for line in describe(result):
        click.echo(line)


def register(group: click.Group) -> None:
    """Add ``report`` and ``staffing`` to the ``hotline`` command group."""
    group.add_command(report_command)
    group.add_command(staffing_command)
