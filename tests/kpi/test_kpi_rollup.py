"""Rollups on SQLite and PostgreSQL: hand-computed figures, rebuild == incremental, late events,
reports that open, QA and follow-up lists, the CLI."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from hotline.db import migrate
from hotline.db.testing import DbTarget
from hotline.events.log import insert_events
from hotline.events.types import CallEvent
from kpi import qa, rollup
from kpi.derive import derive, derive_from_db
from kpi.formulas import Thresholds
from kpi.report import build_report, parse_period, render, trace
from kpi.settings import KpiSettings
from kpi.synth import SynthConfig, generate
from tests.kpi.kpi_events import edge_case_day
from tests.kpi.kpi_fixtures import at

TH = Thresholds()


@pytest.fixture
def edge_db(db: DbTarget) -> DbTarget:
    migrate(db.engine)
    insert_events(db.engine, edge_case_day())
    rollup.ingest_all(db.engine, TH)
    return db


def test_report_of_the_edge_case_day_matches_the_hand_computation(edge_db: DbTarget) -> None:
    rep = build_report(edge_db.engine, "2024-03-01")
    k = rep.total.kpis
    assert (k["answer_rate"].numerator, k["answer_rate"].denominator) == (5, 8)
    assert (k["abandonment_rate"].numerator, k["abandonment_rate"].denominator) == (2, 8)
    assert (k["short_abandon_share"].numerator, k["short_abandon_share"].denominator) == (1, 9)
    assert (k["service_level"].numerator, k["service_level"].denominator) == (3, 4)
    assert k["asa"].value == pytest.approx(19.25)
    assert k["aht"].value == pytest.approx(234.0)
    assert (k["satisfaction"].numerator, k["satisfaction"].denominator) == (2, 3)
    assert (k["evaluation_rate"].numerator, k["evaluation_rate"].denominator) == (3, 5)
    assert rep.total.counters["in_progress"] == 1
    assert rep.total.counters["transferred_in"] == 1  # c6 from 110
    assert rep.total.counters["moved"] == 1  # c5 overflowed
    queues = {g.key: g.kpis["answer_rate"] for g in rep.by_queue}
    assert (queues["A"].numerator, queues["A"].denominator) == (3, 4)
    assert (queues["B"].numerator, queues["B"].denominator) == (2, 4)
    # per-queue figures add up to the hotline's
    assert sum(g.counters.get("asked", 0) for g in rep.by_queue) == 8
    assert sum(g.counters.get("asked", 0) for g in rep.by_seat) == 8
    hours = {g.key: g.counters.get("offered", 0) for g in rep.by_hour}
    assert hours["10"] == 4 and hours["23"] == 1  # c1-c4; c6 at 23:59:50
    seats = {g.key: g for g in rep.by_seat}
    assert seats["s2"].counters["answered"] == 2  # c5, c7 (c4 counts for s1)
    # s2 on 03-01: logged in 09:00-24:00, paused 635 s, busy 150 + 120 + 330
    occ = seats["s2"].kpis["occupancy"]
    assert (occ.numerator, occ.denominator) == (600_000, (15 * 3600 - 635) * 1000)
    # the month holds the same calls; the next day holds none of them
    month = build_report(edge_db.engine, "2024-03")
    assert month.total.counters == rep.total.counters
    assert build_report(edge_db.engine, "2024-03-02").total.counters == {}


def test_every_figure_traces_back_to_its_calls(edge_db: DbTarget) -> None:
    result = trace(edge_db.engine, "answer_rate", "2024-03-01")
    assert sorted(result.numerator_ids) == ["c1", "c4", "c5", "c6", "c7"]
    assert sorted(result.denominator_ids) == ["c1", "c11", "c3", "c4", "c5", "c6", "c7", "c8"]
    assert result.excluded["short_abandon"] == ("c2",)
    sl = trace(edge_db.engine, "service_level", "2024-03-01", queue="B")
    assert sorted(sl.numerator_ids) == ["c6"] and sorted(sl.denominator_ids) == ["c5", "c6"]
    rep = build_report(edge_db.engine, "2024-03-01")
    for name, value in rep.total.kpis.items():
        if name == "occupancy":
            continue
        t = trace(edge_db.engine, name, "2024-03-01")
        assert t.denominator == value.denominator, name
        assert t.numerator == pytest.approx(value.numerator, abs=1e-3), name


def test_rebuild_equals_incremental_on_a_generated_stream(db: DbTarget) -> None:
    migrate(db.engine)
    cfg = SynthConfig(calls=1200, days=3, seats=6, seed=7, pause=0.2)
    events = list(generate(cfg))
    rng = random.Random(3)
    i = 0
    while i < len(events):  # writes and catch-ups interleaved at random places
        n = rng.randint(1, 2500)
        insert_events(db.engine, events[i : i + n])
        i += n
        if rng.random() < 0.7:
            rollup.ingest(db.engine, TH, max_events=rng.randint(50, 4000))
    # late events: follow-ups weeks later, a work order that re-classifies a topic
    unhappy = [
        e.call_id
        for e in events
        if e.type == "survey.answered" and e.data["result"] == "dissatisfied"
    ]
    late_ts = events[-1].ts + timedelta(days=20)
    late = [
        CallEvent(c, 100, late_ts, "followup.updated", {"status": "contacted"}) for c in unhappy[:5]
    ]
    late.append(
        CallEvent(events[200].call_id, 101, late_ts, "workorder.classified", {"topic": "family"})
    )
    insert_events(db.engine, late)
    rollup.ingest_all(db.engine, TH, max_events=777)
    incremental = rollup.read_tables(db.engine)
    incremental_facts = rollup.stored_facts(db.engine)

    rollup.rebuild(db.engine, TH)
    rebuilt = rollup.read_tables(db.engine)
    reference = rollup.aggregate(derive([*events, *late]), TH)
    assert incremental[0] == rebuilt[0] == reference[0]
    assert incremental[1] == rebuilt[1] == reference[1]
    assert incremental_facts == rollup.stored_facts(db.engine)
    assert len(rebuilt[0]) > 100
    assert sum(r.get("followed_up", 0) for k, r in rebuilt[0].items() if k[0] == "hour") == 5
    # the database loader gives the same facts as the pure derivation of the whole log
    start = datetime(2026, 10, 1, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)
    from_db = derive_from_db(db.engine, start, start + timedelta(days=3)).by_id()
    assert from_db == {k: v for k, v in incremental_facts.items() if v.entered_queue_at}


def test_changed_thresholds_need_a_rebuild(edge_db: DbTarget) -> None:
    other = Thresholds(short_abandon_s=10)
    with pytest.raises(rollup.RollupMismatch, match="rebuild"):
        rollup.ingest(edge_db.engine, other)
    with pytest.raises(rollup.RollupMismatch):
        build_report(edge_db.engine, "2024-03-01", settings=KpiSettings(short_abandon_s=10))
    rollup.rebuild(edge_db.engine, other)
    rep = build_report(edge_db.engine, "2024-03-01", settings=KpiSettings(short_abandon_s=10))
    # c11 (5.0 s) is now a short abandon too
    assert (rep.total.kpis["answer_rate"].numerator, rep.total.kpis["answer_rate"].denominator) == (
        5,
        7,
    )
    assert "10 s" in dict(rep.threshold_lines())["短时放弃阈值 short-abandon threshold"]


def test_report_files_open_and_carry_the_figures(edge_db: DbTarget) -> None:
    rep = build_report(edge_db.engine, "2024-03-01", queue="A")
    html = render(rep, "html").decode()
    assert "62.50%" not in html  # queue A: 3/4
    assert "75.00%" in html and "<svg" in html and "<script" not in html
    assert "短时放弃阈值" in html and "15 s" in html
    wb = load_workbook(io.BytesIO(render(rep, "xlsx")))
    assert wb.sheetnames == [
        "概览 summary",
        "按日 by day",
        "按小时 by hour",
        "按队列 by queue",
        "按地区 by region",
        "按主题 by topic",
        "按坐席 by seat",
    ]
    summary = {row[0]: row for row in wb["概览 summary"].iter_rows(values_only=True) if row[0]}
    assert summary["接通率 answer rate"][1:4] == (3, 4, 0.75)
    assert summary["服务水平时限 service-level T"][1] == "15 s"
    by_queue = list(wb["按队列 by queue"].iter_rows(values_only=True))
    assert [r[0] for r in by_queue[1:]] == ["A"]
    rows = list(csv.reader(io.StringIO(render(rep, "csv").decode("utf-8-sig"))))
    assert rows[0] == ["section", "group", "kpi", "label", "numerator", "denominator", "value"]
    total = {r[2]: r for r in rows if r[0] == "total"}
    assert total["answer_rate"][4:] == ["3", "4", "0.750000"]
    assert any(r[0] == "threshold" for r in rows)


def test_qa_sample_and_follow_up_flow_into_the_kpis(edge_db: DbTarget) -> None:
    engine = edge_db.engine
    chosen, events = qa.sample_qa(engine, "2024-03-01", share=0.05, min_per_seat=1, seed=1)
    assert len(chosen) == 2  # one per seat (s1: c1 c4 c6, s2: c5 c7), >= 5% and >= 1
    assert qa.sample_qa(engine, "2024-03-01", share=0.05, seed=1)[0] == []  # topped up already
    more, more_events = qa.sample_qa(engine, "2024-03-01", share=0.5, seed=1)
    assert len(more) == 1  # s1 needs ceil(0.5 * 3) = 2 (has 1), s2 ceil(0.5 * 2) = 1 (has 1)
    qa.log_events_sync(engine, events + more_events)
    qa.log_events_sync(engine, qa.score_qa(engine, chosen[0], 88, "规范", "sup1"))
    with pytest.raises(qa.QaError):
        qa.score_qa(engine, "c3", 50)  # not sampled
    with pytest.raises(qa.QaError):
        qa.score_qa(engine, chosen[1], 101)

    opened, f_events = qa.open_followups(engine)
    assert opened == ["c6"]
    qa.log_events_sync(engine, f_events)
    assert qa.open_followups(engine)[0] == []
    qa.log_events_sync(engine, qa.update_followup(engine, "c6", "contacted", "已回访", "sup1"))
    qa.log_events_sync(engine, qa.update_followup(engine, "c6", "closed", "", "sup1"))
    with pytest.raises(qa.QaError, match="closed"):
        qa.update_followup(engine, "c6", "open")
    assert qa.followup_list(engine, "closed")[0]["call_id"] == "c6"

    rollup.ingest_all(engine, TH)
    k = build_report(engine, "2024-03-01").total.kpis
    assert (k["qa_rate"].numerator, k["qa_rate"].denominator) == (1, 5)
    assert (k["follow_up_rate"].numerator, k["follow_up_rate"].denominator) == (1, 1)
    # and the incremental result still equals a rebuild from the log
    before = rollup.read_tables(engine)
    rollup.rebuild(engine, TH)
    assert rollup.read_tables(engine) == before


def test_cli_report_and_staffing_from_history(edge_db: DbTarget, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import click

    from hotline.config import Settings
    from kpi.cli import register

    @click.group()
    @click.pass_context
    def main(ctx: click.Context) -> None:
        ctx.obj = Settings(database={"url": edge_db.url}, runtime_dir=tmp_path)

    register(main)
    out = tmp_path / "r.xlsx"
    result = CliRunner().invoke(
        main, ["report", "--period", "2024-03", "--format", "xlsx", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "服务水平时限 service-level T: 15 s" in result.output
    assert "接通率 62.50% (5/8)" in result.output
    assert load_workbook(out)["概览 summary"]["A1"].value.endswith("2024-03")
    result = CliRunner().invoke(main, ["report", "--period", "2024-13"])
    assert result.exit_code != 0 and "period" in result.output
    result = CliRunner().invoke(
        main, ["staffing", "--from-history", "--weeks", "1", "--until", "2024-03-02"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") >= 26  # header + 24 hours


def test_period_parsing() -> None:
    assert parse_period("2026-W40").start.date().isoformat() == "2026-09-28"
    assert parse_period("2026-10").previous().label == "2026-09"
    assert parse_period("2026-01").previous().label == "2025-12"
    assert parse_period("2026").end.year == 2027
    assert parse_period("2026-03-01").previous().label == "2026-02-28"
    assert parse_period("2024-10-01").start_utc == at("2024-10-01 00:00:00")
