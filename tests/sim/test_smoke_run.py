"""The smoke scenario end to end: real Asterisk, the hotline service, pjsua2 callers and seats.

The simulator's ground truth must match the hotline's event log call for call, and the KPI
report's counts.
"""

from __future__ import annotations

from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from hotline.db import make_engine
from kpi.models import KpiCall
from kpi.report import build_report
from sim.compare import REPORT_COUNTERS, compare
from sim.runner import SimRun
from sim.scenario import load_scenario
from sim.stack import running_stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


async def test_smoke_ground_truth_matches_the_event_log(tmp_path):
    scenario = load_scenario("smoke")
    with running_stack(tmp_path / "stack") as stack:
        run = SimRun(scenario, stack.target(), tmp_path / "run")
        result = await run.run()
        log_tail = stack.log_tail(60)
        database_url = stack.database_url
    calls = result.calls
    assert len(calls) == scenario.max_calls
    assert all(c.failed is None for c in calls), [c.failed for c in calls]
    # The scenario exercises the paths that matter: seats answer, the survey is given.
    assert result.kpis["answered"] >= 2, result.kpis
    assert (
        result.kpis["survey_satisfied"]
        + result.kpis["survey_dissatisfied"]
        + result.kpis["survey_basically_satisfied"]
        >= 1
    ), result.kpis

    comparison = compare(tmp_path / "run")
    assert comparison.matched == len(calls)
    details = "\n".join(str(m) for m in comparison.mismatches)
    assert comparison.ok, f"{comparison.counts}\n{details}\n--- service log ---\n{log_tail}"
    assert comparison.counts["answered"][0] == result.kpis["answered"]
    # The KPI report's counters (rollups caught up with the log) equal the ground truth.
    assert set(comparison.report) == set(REPORT_COUNTERS)
    assert all(t == r for t, r in comparison.report.values()), comparison.report
    assert comparison.report["answered"][1] == result.kpis["answered"]
    # ... and so does the report a manager runs for the run's day(s), since this stack's
    # database holds only this run.
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            first, last = conn.execute(
                select(func.min(KpiCall.entered_at), func.max(KpiCall.entered_at))
            ).one()
        zone = ZoneInfo("Asia/Shanghai")
        totals: Counter[str] = Counter()
        for day in sorted({first.astimezone(zone).date(), last.astimezone(zone).date()}):
            totals.update(build_report(engine, day.isoformat()).total.counters)
    finally:
        engine.dispose()
    for name, names in REPORT_COUNTERS.items():
        assert sum(totals[n] for n in names) == comparison.report[name][0], (name, totals)
    # Waits were compared on the KPI's clock: queue entry = last key + the connecting prompt,
    # whose length was measured for each path that reached a queue.
    queued_paths = {c.path for c in calls if c.asked_at is not None}
    assert set(comparison.connect_s) == queued_paths, comparison.connect_s
    assert all(0.0 <= s <= 12.0 for s in comparison.connect_s.values()), comparison.connect_s
