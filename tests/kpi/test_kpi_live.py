"""Live KPIs, alerts, /metrics and the KPI HTTP API (a real event log, bus and database)."""

from __future__ import annotations

import asyncio
import io
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openpyxl import load_workbook

from hotline.db import make_engine, migrate
from hotline.events import CallEventLog, EventBus, events_for_call
from hotline.events.types import EventType
from hotline.testing import async_wait_for
from hotline.web import new_app, token_authenticator
from kpi.alerts import AlertRules
from kpi.derive import derive
from kpi.formulas import all_kpis
from kpi.http import KPI_KEY, metrics_text, setup
from kpi.realtime import KpiSnapshot, LiveKpi, feed_all
from kpi.settings import KpiSettings, KpiTargets
from tests.kpi.kpi_events import edge_case_day
from tests.kpi.kpi_fixtures import at

TOKEN = "t0ken-for-tests"


def _until(local: str):  # type: ignore[no-untyped-def]
    return [e for e in edge_case_day() if e.ts <= at(local)]


def test_live_counters_equal_the_historical_definitions() -> None:
    events = _until("2024-03-01 13:06:00")
    live = feed_all(LiveKpi(), events)
    snap = live.snapshot(at("2024-03-01 13:06:00"))
    assert snap["day"] == "2024-03-01"
    assert snap["waiting"] == 1 and snap["queues"]["A"]["waiting"] == 1  # c10
    assert snap["longest_wait_s"] == 360
    assert snap["seats"] == {"available": 2}
    reference = all_kpis(derive(events).calls)
    for name in ("answer_rate", "service_level", "satisfaction", "abandonment_rate"):
        r = reference[name]
        assert snap["today"]["kpis"][name] == r.value, name
    c = snap["today"]["counters"]
    assert (c["answered"], c["asked"], c["short_abandoned"]) == (4, 7, 1)
    assert snap["today"]["queues"]["A"]["asked"] == 4


def test_live_day_rolls_over_at_local_midnight() -> None:
    live = feed_all(LiveKpi(), edge_case_day())
    snap = live.snapshot(at("2024-03-02 02:00:00"))
    assert snap["day"] == "2024-03-02"
    assert snap["today"]["counters"] == {}  # c6 entered on 03-01: it counts there
    assert snap["waiting"] == 1  # c10 never left the queue in this log
    assert snap["seats"] == {"offline": 2}


def test_alert_rules_raise_and_clear_with_hysteresis() -> None:
    settings = KpiSettings(alert_min_calls=5, targets=KpiTargets(longest_wait_s=120))
    rules = AlertRules(settings)
    snap = feed_all(LiveKpi(), _until("2024-03-01 13:06:00")).snapshot(at("2024-03-01 13:06:00"))
    raised = {c.name for c in rules.evaluate(snap) if c.raised}
    # 4/7 answered < 95%; SL 2/3 has < 5 calls (not judged); c10 waits 360 s > 120 s
    assert raised == {"answer_rate:hotline", "longest_wait:hotline", "longest_wait:A"}
    assert rules.evaluate(snap) == []  # no repeats
    better = {
        "today": {"counters": {"answered": 96, "asked": 100}, "queues": {}},
        "longest_wait_s": 10.0,
        "queues": {},
    }
    assert [c.name for c in rules.evaluate(better) if not c.raised] == [
        "answer_rate:hotline",
        "longest_wait:hotline",
        "longest_wait:A",
    ]
    # just above target but inside the hysteresis band: stays raised once raised
    rules.active.add("answer_rate:hotline")
    edge = dict(better, today={"counters": {"answered": 955, "asked": 1000}, "queues": {}})
    assert rules.evaluate(edge) == []


def test_metrics_text_is_prometheus_exposition() -> None:
    snap = feed_all(LiveKpi(), _until("2024-03-01 13:06:00")).snapshot(at("2024-03-01 13:06:00"))
    text = metrics_text(snap, KpiSettings(), frozenset({"answer_rate:hotline"}))
    lines = text.splitlines()
    assert 'hotline_queue_waiting{queue="A"} 1.0' in lines
    assert 'hotline_queue_longest_wait_seconds{queue="_all"} 360.0' in lines
    assert 'hotline_seats{state="available"} 2.0' in lines
    assert 'hotline_kpi_today{kpi="answer_rate"} 0.5714285714285714' in lines
    assert 'hotline_kpi_alert_active{alert="answer_rate",scope="hotline"} 1.0' in lines
    assert 'hotline_kpi_today{kpi="qa_rate"} 0.0' in lines
    for line in lines:
        assert line.startswith("#") or " " in line
    assert text.count("# TYPE hotline_seats gauge") == 1


@pytest.fixture
async def kpi_app(tmp_path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path}/kpi.db")
    migrate(engine)
    bus = EventBus()
    event_log = CallEventLog(engine, spool_dir=tmp_path / "spool", bus=bus)
    await event_log.start()
    hooks: list[dict] = []
    got_hook = asyncio.Event()

    async def webhook(request: web.Request) -> web.Response:
        hooks.append(await request.json())
        got_hook.set()
        return web.json_response({})

    hook_app = web.Application()
    hook_app.router.add_post("/hook", webhook)
    hook_server = TestServer(hook_app, host="127.0.0.1")
    await hook_server.start_server()
    settings = KpiSettings(
        alert_min_calls=5,
        live_interval_s=3600,  # the test ticks by hand
        rollup_interval_s=0.05,
        alert_webhook=f"http://127.0.0.1:{hook_server.port}/hook",
    )
    service = SimpleNamespace(
        engine=engine, bus=bus, event_log=event_log, settings=SimpleNamespace(kpi=settings)
    )
    app = new_app(service, [token_authenticator(TOKEN)])
    setup(app, service)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield SimpleNamespace(
            client=client,
            log=event_log,
            engine=engine,
            bus=bus,
            hooks=hooks,
            got_hook=got_hook,
            kpi=app[KPI_KEY],
        )
    finally:
        await client.close()
        await hook_server.close()
        await event_log.close()
        engine.dispose()


async def test_service_live_alerts_metrics_and_api(kpi_app) -> None:  # type: ignore[no-untyped-def]
    k = kpi_app
    snaps = k.bus.subscribe("kpi.snapshot")
    k.kpi.clock = lambda: at("2024-03-01 13:06:00")  # replaying that day as if it were today
    await k.kpi.resync()
    events = _until("2024-03-01 13:06:00")
    for e in events:  # through the real log: it publishes on the bus and writes the table
        k.log.append(e.call_id, e.type, e.data, ts=e.ts)
    await async_wait_for(lambda: k.kpi.live.fed >= len(events), 5, message="live fed")
    snap = await k.kpi.tick()
    assert "answer_rate:hotline" in snap["alerts"]
    published = await asyncio.wait_for(snaps.get(), 5)
    assert isinstance(published, KpiSnapshot) and published.data["waiting"] == 1
    await asyncio.wait_for(k.got_hook.wait(), 5)
    assert {h["alert"] for h in k.hooks} >= {"answer_rate", "longest_wait"}
    await k.log.flush()
    service_events = events_for_call(k.engine, k.log.service_call_id)
    assert EventType.KPI_ALERT_RAISED in {e.type for e in service_events}

    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert (await k.client.get("/metrics")).status == 401
    resp = await k.client.get("/metrics", headers=auth)
    assert resp.status == 200 and resp.content_type == "text/plain"
    assert 'hotline_kpi_alert_active{alert="answer_rate",scope="hotline"} 1.0' in await resp.text()
    live = await (await k.client.get("/api/kpi/live", headers=auth)).json()
    assert live["today"]["counters"]["asked"] == 7

    # the rollup task catches up with the log by itself
    await async_wait_for(
        lambda: k.kpi.rollup_error is None and _asked(k.engine) == 7, 10, message="rollups"
    )
    resp = await k.client.get("/api/kpi/report?period=2024-03-01&format=xlsx", headers=auth)
    assert resp.status == 200
    wb = load_workbook(io.BytesIO(await resp.read()))
    assert "按坐席 by seat" in wb.sheetnames
    rep = await (await k.client.get("/api/kpi/report?period=2024-03-01", headers=auth)).json()
    assert rep["total"]["kpis"]["answer_rate"]["numerator"] == 4
    bad = await k.client.get("/api/kpi/report?period=2024-3", headers=auth)
    assert bad.status == 400 and "period" in (await bad.json())["error"]["message"]
    tr = await (
        await k.client.get("/api/kpi/trace?kpi=answer_rate&period=2024-03-01", headers=auth)
    ).json()
    assert sorted(tr["numerator_ids"]) == ["c1", "c4", "c5", "c7"]
    st = await (
        await k.client.get(
            "/api/kpi/staffing?calls_per_hour=300&aht=300&patience=120&target_sl=0.8/15",
            headers=auth,
        )
    ).json()
    assert st["seats"] == 28 and st["model"] == "erlang_a"

    # QA through the API: sample, score (logged under the call through the service's log)
    sampled = await (
        await k.client.post("/api/kpi/qa/sample", json={"period": "2024-03-01"}, headers=auth)
    ).json()
    assert len(sampled["sampled"]) == 2
    call_id = sampled["sampled"][0]
    ok = await k.client.post(f"/api/kpi/qa/{call_id}", json={"score": 90}, headers=auth)
    assert ok.status == 200
    bad = await k.client.post(f"/api/kpi/qa/{call_id}", json={"score": "x"}, headers=auth)
    assert bad.status == 400
    await k.log.flush()
    assert "qa.scored" in {str(e.type) for e in events_for_call(k.engine, call_id)}


def _asked(engine) -> int:  # type: ignore[no-untyped-def]
    from kpi.report import build_report

    return build_report(engine, "2024-03-01").total.counters.get("asked", 0)
