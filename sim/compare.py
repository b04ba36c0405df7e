"""Ground truth against the hotline: call for call, and every count side by side.

This module owns ``hotline sim compare RUN``: it reads a run directory (``sim.truth``), finds
the hotline's record of the same calls in its call-event log, derives the hotline's facts with
the project's own KPI derivation (``kpi.derive.derive``, the code behind every report) and
compares. Any count that differs, or any call whose facts disagree, fails the comparison.

Matching: the simulator's numbers have unique masks within a run, so a hotline call is matched
by the masked caller of its ``call.entered`` (``hotline.privacy.mask_number``) within the run's
time window; calls with the same mask (special-group numbers repeat) pair in time order.

Which wait. The KPIs count the wait from queue entry (``queue.entered``: the caller starts
hearing the queue, after the "connecting" prompt that follows the last menu key). The simulator
knows what its caller did, i.e. the last key (``TruthCall.asked_at``), not when the hotline
finished its prompt. So the comparison puts the truth on the KPI's clock
(``sim.truth.on_kpi_clock``): queue entry = last key + the connecting prompt's length, the
length measured per menu path as the median over that path's calls of the hotline's
last-digit (``ivr.input``) → ``queue.entered`` gap (both ends are moments the caller and the
hotline see alike: a key press, a prompt's end). A gap that is negative or longer than
``PROMPT_ALLOWANCE_S`` is itself a mismatch. On that clock everything is counted the same way
on both sides: a caller who hung up during the connecting prompt never asked for a seat, and
short abandons (< ``short_abandon_s`` of wait) are compared like the other counts, except that
a difference is tolerated for calls whose wait lies within ``WAIT_TOLERANCE_S`` of the line.

The report. The same counts are also read the way every KPI report reads them: the rollups are
brought up to date with the log (``kpi.rollup.ingest_all``, as ``hotline report`` does) and the
counters each matched call contributes to the report's rollup rows are summed from the calls'
stored facts (``kpi_calls``, ``kpi.rollup.contribution``). ``report`` holds (truth, report) per
count; a difference fails the comparison like any other.

Per call, exactly: reached the hotline, asked for a seat, the queue, answered and by which
seat, abandoned, callback requested, survey answer, special group, origin. With tolerances:
talk time (both sides see the same SIP dialogue, ``TALK_TOLERANCE_S``) and wait on the KPI
clock (``WAIT_TOLERANCE_S``: one prompt's end detection and event-loop latency).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from hotline.db import make_engine
from hotline.events.log import calls_between
from hotline.events.types import CallEvent
from kpi import formulas, rollup
from kpi.derive import derive, events_of_calls
from kpi.facts import CallFacts
from kpi.models import KpiCall
from sim.truth import TruthCall, load_run, on_kpi_clock, true_kpis

TALK_TOLERANCE_S = 1.5
PROMPT_ALLOWANCE_S = 12.0
WAIT_TOLERANCE_S = 1.0
WINDOW_BEFORE = timedelta(seconds=10)
WINDOW_AFTER = timedelta(seconds=120)

# The counts compared (and shown) in this order.
INFORMATIONAL: tuple[str, ...] = ()
COUNTS = (
    "reached",
    "asked_for_seat",
    "answered",
    "abandoned",
    "short_abandoned",
    "callback_requested",
    "survey_satisfied",
    "survey_basically_satisfied",
    "survey_dissatisfied",
    "special_group",
    "transferred_in",
)


@dataclass(frozen=True)
class Mismatch:
    sim_id: str
    call_id: str | None
    what: str
    truth: Any
    hotline: Any

    def __str__(self) -> str:
        return f"{self.sim_id} ({self.call_id or 'no hotline call'}): {self.what}: truth {self.truth!r}, hotline {self.hotline!r}"  # noqa: E501


@dataclass
class HotlineCall:
    call_id: str
    masked: str
    entered_at: datetime
    events: list[CallEvent]
    facts: CallFacts | None = None

    @property
    def special_group(self) -> bool:
        started = next((e for e in self.events if e.type == "ivr.call_started"), None)
        return bool(started and started.data.get("special_group"))

    @property
    def reached(self) -> bool:
        return any(e.type == "call.answered" for e in self.events)


# Truth's counts against the report's counters (``kpi.rollup.contribution``).
REPORT_COUNTERS: dict[str, tuple[str, ...]] = {
    "asked_for_seat": ("offered",),
    "answered": ("answered",),
    "abandoned": ("abandoned_all",),
    "short_abandoned": ("short_abandoned",),
    "callback_requested": ("callback_requested",),
    "transferred_in": ("transferred_in",),
    "survey_good": ("good",),  # 满意 + 基本满意
    "survey_dissatisfied": ("dissatisfied",),
}


@dataclass
class Comparison:
    run_dir: Path
    counts: dict[str, tuple[int, int]]  # name -> (truth, hotline)
    rates: dict[str, tuple[float | None, float | None]]
    mismatches: list[Mismatch] = field(default_factory=list)
    matched: int = 0
    informational: dict[str, tuple[int, int]] = field(default_factory=dict)
    connect_s: dict[str, float] = field(default_factory=dict)  # menu path -> prompt length
    tolerated: dict[str, int] = field(default_factory=dict)  # count -> borderline calls
    report: dict[str, tuple[int, int]] = field(default_factory=dict)  # (truth, KPI report)

    @property
    def count_differences(self) -> list[str]:
        both = [*self.counts.items(), *((f"report {n}", v) for n, v in self.report.items())]
        return [
            name
            for name, (t, h) in both
            if abs(t - h) > self.tolerated.get(name.removeprefix("report "), 0)
        ]

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.count_differences


def hotline_calls(engine: Engine, start: datetime, end: datetime) -> list[HotlineCall]:
    """Every call that entered in the window, with its events and the project's facts."""
    ids = calls_between(engine, start, end)
    events = events_of_calls(engine, ids)
    derived = derive([e for cid in ids for e in events.get(cid, [])]).by_id()
    calls = []
    for cid in ids:
        evs = events.get(cid, [])
        entered = next((e for e in evs if e.type == "call.entered"), None)
        if entered is None:
            continue
        calls.append(
            HotlineCall(cid, str(entered.data.get("caller", "")), entered.ts, evs, derived.get(cid))
        )
    return calls


def match(
    truths: list[TruthCall], calls: list[HotlineCall]
) -> list[tuple[TruthCall, HotlineCall | None]]:
    """Pair each simulated call with the hotline's call of the same mask, in time order."""
    by_mask: dict[str, list[HotlineCall]] = defaultdict(list)
    for call in sorted(calls, key=lambda c: c.entered_at):
        by_mask[call.masked].append(call)
    pairs = []
    for truth in sorted(truths, key=lambda t: t.arrived_at):
        candidates = by_mask.get(truth.masked)
        pairs.append((truth, candidates.pop(0) if candidates else None))
    return pairs


def _hotline_counts(calls: list[HotlineCall], short_abandon_s: float) -> dict[str, int]:
    facts = [c.facts for c in calls if c.facts is not None]
    asked = [f for f in facts if f.asked_for_seat]
    abandoned = [f for f in asked if f.abandoned]
    surveys = defaultdict(int)
    for f in asked:
        if f.survey is not None and f.answered:
            surveys[str(f.survey)] += 1
    return {
        "reached": sum(1 for c in calls if c.reached),
        "asked_for_seat": len(asked),
        "answered": sum(1 for f in asked if f.answered),
        "abandoned": len(abandoned),
        "short_abandoned": sum(1 for f in abandoned if f.wait_s < short_abandon_s),
        "callback_requested": sum(1 for f in asked if f.callback_requested_at is not None),
        "survey_satisfied": surveys["satisfied"],
        "survey_basically_satisfied": surveys["basically_satisfied"],
        "survey_dissatisfied": surveys["dissatisfied"],
        "special_group": sum(1 for c in calls if c.reached and c.special_group),
        "transferred_in": sum(1 for f in facts if f.transferred_in),
    }


def last_key_to_queue_s(call: HotlineCall) -> float | None:
    """The hotline's gap from the caller's last digit before its first queue entry to that
    entry (the connecting prompt), or None if the call never entered a queue after a digit."""
    last_digit = None
    for event in call.events:
        if event.type == "ivr.input" and event.data.get("kind") == "digit":
            last_digit = event.ts
        elif event.type == "queue.entered":
            return None if last_digit is None else (event.ts - last_digit).total_seconds()
    return None


def connecting_prompts(
    pairs: list[tuple[TruthCall, HotlineCall | None]],
) -> tuple[dict[str, float], list[Mismatch]]:
    """Per menu path, the median last key → queue entry gap of its calls; gaps that make no
    sense (negative, or longer than any connecting prompt) are mismatches."""
    gaps: dict[str, list[float]] = defaultdict(list)
    bad = []
    for truth, call in pairs:
        if call is None or truth.asked_at is None:
            continue
        gap = last_key_to_queue_s(call)
        if gap is None:
            continue
        if not 0.0 <= gap <= PROMPT_ALLOWANCE_S:
            bad.append(Mismatch(truth.sim_id, call.call_id, "last key → queue entry seconds",
                                f"0..{PROMPT_ALLOWANCE_S}", round(gap, 2)))  # fmt: skip
            continue
        gaps[truth.path].append(gap)
    return {path: statistics.median(values) for path, values in gaps.items()}, bad


def _check_call(truth: TruthCall, call: HotlineCall | None) -> list[Mismatch]:
    """Compare one call; ``truth`` is already on the KPI clock (``on_kpi_clock``)."""
    out: list[Mismatch] = []

    def diff(what: str, t: Any, h: Any) -> None:
        if t != h:
            out.append(Mismatch(truth.sim_id, call.call_id if call else None, what, t, h))

    reached = truth.connected_at is not None
    if call is None:
        diff("reached the hotline", reached, False)
        return out
    diff("reached the hotline", reached, call.reached)
    f = call.facts
    if f is None:
        return out
    diff("asked for a seat", truth.asked_for_seat, f.asked_for_seat)
    if truth.asked_for_seat and f.asked_for_seat:
        diff("queue", truth.wanted_queue, f.queue)
    diff("answered", truth.answered, f.answered_live)
    if truth.answered and f.answered_live:
        diff("seat", truth.seat, f.seat)
        if truth.talk_s is not None and abs(truth.talk_s - f.talk_s) > TALK_TOLERANCE_S:
            diff("talk seconds (±1.5)", round(truth.talk_s, 2), round(f.talk_s, 2))
        tw = truth.wait_s
        if tw is not None and abs(tw - f.wait_s) > WAIT_TOLERANCE_S:
            diff(f"wait seconds from queue entry (±{WAIT_TOLERANCE_S})", round(tw, 2),
                 round(f.wait_s, 2))  # fmt: skip
    diff("abandoned", truth.abandoned, f.abandoned)
    diff("callback requested", truth.callback_requested_at is not None,
         f.callback_requested_at is not None)  # fmt: skip
    diff("survey", truth.survey, str(f.survey) if f.survey is not None else None)
    diff("special group", truth.special_group, call.special_group)
    diff("origin", truth.origin, f.origin)
    return out


def report_counters(engine: Engine, call_ids: list[str], th: formulas.Thresholds) -> dict[str, int]:
    """What these calls add to the KPI report's rollups, after catching up with the log."""
    th = rollup.built_with(engine) or th
    rollup.ingest_all(engine, th)
    totals: dict[str, int] = defaultdict(int)
    table = KpiCall.__table__
    with engine.connect() as conn:
        for start in range(0, len(call_ids), 500):
            chunk = call_ids[start : start + 500]
            query = select(table.c.facts).where(table.c.call_id.in_(chunk))
            for (stored,) in conn.execute(query):
                added = rollup.contribution(rollup.facts_from_json(stored), th) or {}
                for name, value in added.items():
                    totals[name] += value
    return dict(totals)


def compare(run_dir: Path, engine: Engine | None = None) -> Comparison:
    """Compare a finished run with the hotline's event log (see the module docstring)."""
    info, truths = load_run(run_dir)
    target = info.get("target", {})
    own_engine = engine is None
    if engine is None:
        url = target.get("database_url")
        if not url:
            raise ValueError(f"{run_dir}/run.json names no database: pass the hotline's config")
        engine = make_engine(url)
    try:
        start = datetime.fromisoformat(info["started_at"]) - WINDOW_BEFORE
        end = datetime.fromisoformat(info["ended_at"]) + WINDOW_AFTER
        ours = {t.masked for t in truths}
        calls = [c for c in hotline_calls(engine, start, end) if c.masked in ours]
        short = float(target.get("short_abandon_s", 5.0))
        sl = float(target.get("service_level_s", 15.0))
        counters = report_counters(
            engine, [c.call_id for c in calls], formulas.Thresholds(short, sl)
        )
    finally:
        if own_engine:
            engine.dispose()
    pairs = match(truths, calls)
    connect_s, mismatches = connecting_prompts(pairs)
    # The truth on the KPI's clock: waits from queue entry (see the module docstring).
    truths = [on_kpi_clock(t, connect_s.get(t.path)) for t in truths]
    pairs = [(on_kpi_clock(t, connect_s.get(t.path)), c) for t, c in pairs]
    mismatches += [m for t, c in pairs for m in _check_call(t, c)]
    matched_ids = {c.call_id for _, c in pairs if c is not None}
    for call in calls:
        if call.call_id not in matched_ids:
            mismatches.append(Mismatch("?", call.call_id, "a hotline call no simulated caller made",
                                       None, call.masked))  # fmt: skip
    truth_kpis = true_kpis(truths, short_abandon_s=short, service_level_s=sl)
    truth_kpis["reached"] = sum(1 for t in truths if t.connected_at is not None)
    hotline = _hotline_counts(calls, short)
    counts = {name: (int(truth_kpis[name]), hotline[name]) for name in COUNTS}
    info = {name: (int(truth_kpis[name]), hotline[name]) for name in INFORMATIONAL}
    facts = [c.facts for c in calls if c.facts is not None]
    rates = {
        "answer_rate": (truth_kpis["answer_rate"], formulas.answer_rate(facts, short).value),
        "abandon_rate": (truth_kpis["abandon_rate"], formulas.abandonment_rate(facts, short).value),
        "service_level": (truth_kpis["service_level"], formulas.service_level(facts, sl).value),
        "asa_s": (truth_kpis["asa_s"], formulas.asa(facts).value),
        "satisfaction": (truth_kpis["satisfaction"], formulas.satisfaction(facts).value),
    }
    borderline = sum(
        1 for t in truths if t.abandoned and abs((t.wait_s or 0.0) - short) <= WAIT_TOLERANCE_S
    )
    truth_kpis["survey_good"] = (
        truth_kpis["survey_satisfied"] + truth_kpis["survey_basically_satisfied"]
    )
    report = {
        name: (int(truth_kpis[name]), sum(counters.get(c, 0) for c in names))
        for name, names in REPORT_COUNTERS.items()
    }
    return Comparison(run_dir, counts, rates, mismatches, len(matched_ids), info, connect_s,
                      {"short_abandoned": borderline}, report)  # fmt: skip
