"""Benchmark: monthly and annual KPI reports over a synthetic year, on SQLite and PostgreSQL.

For each size (calls in one year) and backend: generate the year's event log with
``kpi.synth`` (about 15 events per call), insert it, build the rollups from the log
(``kpi.rollup.rebuild``), catch up a day of new events incrementally (``kpi.rollup.ingest``),
then time ``build_report`` for the busiest month and for the year (median of --runs), plus
rendering to HTML and XLSX. The report reads only the rollups, so its time follows the number
of rollup rows (bounded by days x queues x regions x topics/seats), not the number of calls;
loading and rebuilding grow linearly with events. With two or more sizes the script fits both
and extrapolates to --target calls (the issue's 2 million calls / ~20 million events).

    .venv/bin/python bench/kpi_report.py [--calls 25000,100000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select

from hotline.db import make_engine, migrate
from hotline.db.testing import postgres_unavailable_reason, temporary_postgres_database
from hotline.events.log import insert_events
from hotline.events.types import CallEvent
from kpi import rollup
from kpi.models import KpiRollup, KpiSeatHourly
from kpi.report import build_report, render
from kpi.settings import KpiSettings
from kpi.synth import SynthConfig, generate

YEAR_START = datetime(2026, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))


def timed(fn: Callable[[], Any], runs: int = 1) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def load(engine: Engine, cfg: SynthConfig, hold_back: timedelta) -> tuple[int, list[CallEvent]]:
    """Insert the year's events except the last ``hold_back`` (returned for the catch-up)."""
    cut = YEAR_START + timedelta(days=cfg.days) - hold_back
    batch: list[CallEvent] = []
    late: list[CallEvent] = []
    n = 0
    for ev in generate(cfg):
        if ev.ts >= cut:
            late.append(ev)
            continue
        batch.append(ev)
        if len(batch) >= 5000:
            n += insert_events(engine, batch)
            batch = []
    n += insert_events(engine, batch)
    return n, late


def one(url: str, calls: int, seats: int, runs: int) -> dict[str, float]:
    engine = make_engine(url)
    migrate(engine)
    settings = KpiSettings()
    th = settings.thresholds()
    cfg = SynthConfig(calls=calls, start=YEAR_START, days=365, seats=seats, seed=calls)
    out: dict[str, float] = {"calls": calls}
    t_load, (events, late) = timed(lambda: load(engine, cfg, timedelta(days=1)))
    out |= {"events": events + len(late), "load_s": t_load}
    t_rebuild, _ = timed(lambda: rollup.rebuild(engine, th))
    out["rebuild_s"] = t_rebuild
    insert_events(engine, late)
    t_ingest, ingested = timed(lambda: rollup.ingest_all(engine, th, max_events=20_000))
    out |= {"ingest_s": t_ingest, "ingest_events": ingested}
    with engine.connect() as conn:
        out["rollup_rows"] = conn.execute(select(func.count()).select_from(KpiRollup)).scalar()
        out["seat_rows"] = conn.execute(select(func.count()).select_from(KpiSeatHourly)).scalar()
    t_month, month = timed(lambda: build_report(engine, "2026-10", settings=settings), runs)
    t_year, year = timed(lambda: build_report(engine, "2026", settings=settings), runs)
    t_queue, _ = timed(lambda: build_report(engine, "2026", queue="labor", settings=settings), runs)
    t_html, _ = timed(lambda: render(year, "html"), runs)
    t_xlsx, _ = timed(lambda: render(year, "xlsx"), runs)
    out |= {
        "month_s": t_month,
        "year_s": t_year,
        "year_queue_s": t_queue,
        "render_html_s": t_html,
        "render_xlsx_s": t_xlsx,
        "year_calls": year.total.counters.get("offered", 0),
        "year_answer_rate": year.total.kpis["answer_rate"].value or 0.0,
        "month_calls": month.total.counters.get("offered", 0),
    }
    engine.dispose()
    return out


def fit(xs: list[float], ys: list[float], x: float) -> float:
    """Least-squares line through the points, evaluated at x (one point: proportional)."""
    if len(xs) == 1:
        return ys[0] * x / xs[0]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((a - mx) ** 2 for a in xs)
    slope = sum((a - mx) * (b - my) for a, b in zip(xs, ys, strict=True)) / sxx
    return my + slope * (x - mx)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", default="25000,100000", help="comma-separated sizes (calls/year)")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--seats", type=int, default=80)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--target", type=int, default=2_000_000, help="extrapolate to this many calls")
    args = ap.parse_args()
    sizes = [int(s) for s in args.calls.split(",")]
    for backend in args.backends.split(","):
        if backend == "postgresql" and (reason := postgres_unavailable_reason()):
            print(f"postgresql: skipped ({reason})")
            continue
        results = []
        for calls in sizes:
            if backend == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    r = one(f"sqlite:///{Path(tmp) / 'bench.db'}", calls, args.seats, args.runs)
            else:
                with temporary_postgres_database() as url:
                    r = one(url, calls, args.seats, args.runs)
            results.append(r)
            print(
                f"{backend:10} {calls:>9,} calls {int(r['events']):>11,} events | "
                f"load {r['load_s']:7.1f} s  rebuild {r['rebuild_s']:7.1f} s "
                f"({r['events'] / r['rebuild_s']:,.0f} ev/s)  catch-up 1 day "
                f"{r['ingest_s']:5.2f} s ({int(r['ingest_events']):,} ev) | rollup rows "
                f"{int(r['rollup_rows']):,} + seat rows {int(r['seat_rows']):,}",
                flush=True,
            )
            print(
                f"{'':10} month report {r['month_s'] * 1000:7.1f} ms  year report "
                f"{r['year_s'] * 1000:7.1f} ms  year, one queue {r['year_queue_s'] * 1000:7.1f} ms"
                f"  render html {r['render_html_s'] * 1000:6.1f} ms xlsx "
                f"{r['render_xlsx_s'] * 1000:6.1f} ms | year: {int(r['year_calls']):,} calls, "
                f"接通率 {r['year_answer_rate'] * 100:.2f}%",
                flush=True,
            )
        # Loading and rebuilding are linear in events: rate of the largest run x target events.
        # Report time is linear in rollup rows at worst; rows are extrapolated linearly in calls
        # (an upper bound: they saturate at days x queues x regions x topics/seats).
        big = results[-1]
        xs = [r["calls"] for r in results]
        ev_per_call = big["events"] / big["calls"]
        target_events = args.target * ev_per_call
        rows = max(fit(xs, [r["rollup_rows"] for r in results], args.target), big["rollup_rows"])
        scale = (rows + big["seat_rows"]) / (big["rollup_rows"] + big["seat_rows"])
        print(
            f"{backend:10} extrapolated to {args.target:,} calls (~{target_events:,.0f} events): "
            f"load {big['load_s'] / big['events'] * target_events / 60:.0f} min, rebuild "
            f"{big['rebuild_s'] / big['events'] * target_events / 60:.0f} min, rollup rows <= "
            f"{rows:,.0f}, month report <= {big['month_s'] * scale * 1000:.0f} ms, year report <= "
            f"{big['year_s'] * scale * 1000:.0f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
