"""``hotline sim``: run a scenario against the hotline, compare its ground truth with the log.

``hotline sim run peak-hour`` (a shipped scenario name or a YAML file) shows a live panel
(calls placed / in IVR / waiting / talking / answered / abandoned, rich's ``Live``) and ends
with a summary table of the true KPIs; the run directory (``--out``, default
``<runtime_dir>/sim-runs/<scenario>-<time>``) keeps the ground truth. ``hotline sim compare RUN``
prints truth and hotline side by side and exits 1 on any difference.

The group reads the hotline's configuration from the root ``hotline`` command (``ctx.obj`` is
the ``Settings``; ``--config`` is passed on to ``hotline seats add``).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from hotline.config import Settings
from sim.scenario import ScenarioError, load_scenario

console = Console()


def _config_path(ctx: click.Context) -> Path | None:
    return ctx.find_root().params.get("config_file")


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.1%}" if value <= 1.0 else f"{value:.1f}"
    return str(value)


def progress_table(run: Any) -> Table:
    p = run.progress
    table = Table(title=f"{run.scenario.name}: {run.stage}", show_edge=False)
    for name in ("placed", "in IVR", "waiting", "talking", "answered", "abandoned", "callbacks",
                 "failed", "ended", "workers"):  # fmt: skip
        table.add_column(name, justify="right")
    table.add_row(*(str(v) for v in (p.placed, p.in_ivr, p.waiting, p.talking, p.answered,
                                     p.abandoned, p.callbacks, p.failed, p.ended,
                                     len(run.pool.workers))))  # fmt: skip
    return table


def summary_table(kpis: dict[str, Any], seat_stats: dict[str, dict[str, int]]) -> Table:
    table = Table(title="ground truth (the simulator's own record)")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    labels = {
        "placed": "calls placed", "failed": "failed (never reached the hotline)",
        "asked_for_seat": "asked for a seat", "answered": "answered by a seat (接通)",
        "abandoned": "abandoned (放弃)", "short_abandoned": "  of which short abandons",
        "callback_requested": "callback requested (回拨)", "answer_rate": "接通率 answer rate",
        "abandon_rate": "放弃率 abandonment", "service_level": "服务水平 service level",
        "asa_s": "ASA (s)", "median_wait_s": "median wait (s)", "avg_talk_s": "average talk (s)",
        "satisfaction": "满意率 satisfaction", "evaluation_rate": "测评率 evaluation rate",
        "special_group": "special group (绿色通道)", "transferred_in": "transferred in",
    }  # fmt: skip
    for key, label in labels.items():
        value = kpis.get(key)
        table.add_row(label, f"{value:.1f}" if key.endswith("_s") and value else _fmt(value))
    offers = sum(s["offers"] for s in seat_stats.values())
    answered = sum(s["answered"] for s in seat_stats.values())
    table.add_row("seat offers / answered", f"{offers} / {answered}")
    return table


@click.group()
def sim() -> None:
    """SIP simulator: realistic callers and seats, with a ground truth (模拟话务)."""


@sim.command("run")
@click.argument("scenario")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), help="run directory")
@click.option("--seed", type=int, default=None, help="override the scenario's seed")
@click.option("--max-calls", type=int, default=None, help="stop after this many calls")
@click.option("--compare/--no-compare", "then_compare", default=False,
              help="compare with the event log when done")  # fmt: skip
@click.option("--closed-ok", is_flag=True,
              help="run even when the hotline is outside the lawyers' hours")  # fmt: skip
@click.pass_context
def run_command(
    ctx: click.Context,
    scenario: str,
    out: Path | None,
    seed: int | None,
    max_calls: int | None,
    then_compare: bool,
    closed_ok: bool,
) -> None:
    """Run SCENARIO (a shipped name: smoke, peak-hour, overload; or a YAML file)."""
    from sim.runner import SimRun, Target

    settings: Settings = ctx.obj
    try:
        sc = load_scenario(scenario)
    except ScenarioError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if max_calls is not None:
        sc = sc.model_copy(update={"max_calls": max_calls})
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = out or settings.runtime_path / "sim-runs" / f"{sc.name}-{stamp}"
    target = Target.from_settings(settings, _config_path(ctx))
    if target.lawyers_open() is False and not closed_ok:
        # The scenarios' callers choose consultations: after hours the IVR offers a message
        # or a callback instead of a queue, so the ground truth's paths would not hold.
        click.echo(
            "error: the hotline is outside the lawyers' hours now (律师值班时间外): callers "
            "would reach the after-hours path, not the queues. For a drill, start the hotline "
            "with a time inside the hours, e.g. HOTLINE_IVR__CLOCK=2026-11-23T10:00:00+08:00 "
            "make up (or ivr.clock in the config), or pass --closed-ok.",
            err=True,
        )
        sys.exit(2)
    runner = SimRun(sc, target, run_dir, seed=seed)
    with Live(progress_table(runner), console=console, refresh_per_second=4) as live:
        result = asyncio.run(runner.run(lambda r: live.update(progress_table(r))))
    console.print(summary_table(result.kpis, result.seat_stats))
    console.print(f"run directory: {run_dir}")
    console.print(f"compare with the hotline's log: hotline sim compare {run_dir}")
    if then_compare:
        ctx.invoke(compare_command, run_dir=run_dir)


@sim.command("compare")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--database-url", default=None, help="default: the one the run recorded")
@click.pass_context
def compare_command(ctx: click.Context, run_dir: Path, database_url: str | None) -> None:
    """Compare a run's ground truth with the hotline's event log, call for call."""
    from hotline.db import make_engine
    from sim.compare import compare

    engine = make_engine(database_url) if database_url else None
    result = compare(run_dir, engine)
    table = Table(title=f"ground truth vs hotline ({result.matched} calls matched)")
    for col in ("count", "truth", "hotline", ""):
        table.add_column(col, justify="right" if col in ("truth", "hotline") else "left")
    differs = set(result.count_differences)
    for name, (t, h) in result.counts.items():
        note = "[red]DIFFERS[/red]" if name in differs else ""
        if t != h and name not in differs:
            note = f"(within the wait tolerance: {result.tolerated[name]} borderline call(s))"
        table.add_row(name, str(t), str(h), note)
    for name, (t, h) in result.informational.items():
        table.add_row(name, str(t), str(h), "(not compared: wait definitions differ)")
    for name, (t, h) in result.report.items():
        differs_in_report = f"report {name}" in differs
        note = "[red]DIFFERS[/red]" if differs_in_report else "(KPI report's rollups)"
        table.add_row(f"report: {name}", str(t), str(h), note)
    for name, (t, h) in result.rates.items():
        table.add_row(name, _fmt(t), _fmt(h), "")
    console.print(table)
    for path, seconds in sorted(result.connect_s.items()):
        console.print(f"path {path}: queue entry = last key + {seconds:.2f} s (connecting prompt)")
    for mismatch in result.mismatches[:50]:
        console.print(f"[red]✗[/red] {mismatch}")
    if len(result.mismatches) > 50:
        console.print(f"... and {len(result.mismatches) - 50} more")
    if not result.ok:
        console.print("[red]the hotline's record differs from the ground truth[/red]")
        sys.exit(1)
    console.print("[green]the hotline's record matches the ground truth call for call[/green]")
