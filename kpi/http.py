"""KPI HTTP API: Prometheus ``/metrics``, the live snapshot, reports, traces, staffing, alerts,
and the QA and follow-up lists. ``setup(app, service)`` is registered in
``hotline.service.FEATURE_ROUTES``; it also starts the :class:`kpi.realtime.KpiService`
(live counters, snapshots on the bus, alerts, rollup catch-up) with the web app.

Who may: supervisors, administrators and auditors read; supervisors and administrators score
QA and update follow-ups; the service token may do everything (``hotline.web.require``).
Database work runs in worker threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web

from hotline.web import (
    Role,
    bad_request,
    json_error,
    json_response,
    principal_of,
    read_json,
    require,
)
from kpi import qa as qa_lists
from kpi.alerts import alert_list
from kpi.realtime import KpiService
from kpi.report import CALL_KPIS, ReportError, build_report, render, trace
from kpi.rollup import RollupMismatch
from kpi.settings import KpiSettings, kpi_settings
from kpi.staffing import seats_needed

KPI_KEY = web.AppKey("kpi_service", KpiService)
READ = (Role.SUPERVISOR, Role.ADMINISTRATOR, Role.AUDITOR)
WRITE = (Role.SUPERVISOR, Role.ADMINISTRATOR)
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json; charset=utf-8",
}


# --- Prometheus text -----------------------------------------------------------------------


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float | None) -> str:
    return "NaN" if value is None else repr(float(value))


def metrics_text(
    snapshot: Mapping[str, Any],
    settings: KpiSettings,
    active_alerts: set[str] | frozenset[str] = frozenset(),
    log_stats: Any = None,
) -> str:
    """The Prometheus exposition (text format 0.0.4) of a live snapshot."""
    out: list[str] = []

    def metric(name: str, help_: str, kind: str, samples: list[tuple[dict[str, str], Any]]) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            out.append(f"{name}{{{text}}} {_num(value)}" if text else f"{name} {_num(value)}")

    queues = snapshot.get("queues", {})
    metric(
        "hotline_queue_waiting",
        "Calls waiting for a seat now.",
        "gauge",
        [({"queue": q}, v["waiting"]) for q, v in sorted(queues.items())]
        + [({"queue": "_all"}, snapshot.get("waiting", 0))],
    )
    metric(
        "hotline_queue_longest_wait_seconds",
        "Longest current wait of a caller in the queue.",
        "gauge",
        [({"queue": q}, v["longest_wait_s"]) for q, v in sorted(queues.items())]
        + [({"queue": "_all"}, snapshot.get("longest_wait_s", 0.0))],
    )
    states = ("available", "offered", "on_call", "wrap_up", "paused", "offline")
    seats = snapshot.get("seats", {})
    metric(
        "hotline_seats",
        "Seats by state.",
        "gauge",
        [({"state": s}, seats.get(s, 0)) for s in sorted(set(states) | set(seats))],
    )
    counters = snapshot.get("today", {}).get("counters", {})
    metric(
        "hotline_calls_today",
        "Today's call counters (local day; reset at midnight).",
        "gauge",
        [
            ({"counter": k}, counters.get(k, 0))
            for k in (
                "offered",
                "asked",
                "answered",
                "abandoned",
                "short_abandoned",
                "in_progress",
                "answered_live",
                "within_sl",
                "rated",
                "good",
                "dissatisfied",
            )
        ],
    )
    kpis = snapshot.get("today", {}).get("kpis", {})
    metric(
        "hotline_kpi_today",
        "Today's KPI values (ratios 0..1, seconds for asa/aht); NaN without data.",
        "gauge",
        [({"kpi": k}, kpis.get(k)) for k in CALL_KPIS],
    )
    t = settings.targets
    metric(
        "hotline_kpi_target",
        "Configured KPI targets.",
        "gauge",
        [
            ({"kpi": "answer_rate"}, t.answer_rate),
            ({"kpi": "satisfaction"}, t.satisfaction),
            ({"kpi": "service_level"}, t.service_level),
            ({"kpi": "longest_wait_s"}, t.longest_wait_s),
        ],
    )
    metric(
        "hotline_kpi_alert_active",
        "1 while a KPI alert (预警) is raised.",
        "gauge",
        [
            ({"alert": n.partition(":")[0], "scope": n.partition(":")[2]}, 1)
            for n in sorted(active_alerts)
        ],
    )
    if log_stats is not None:
        metric(
            "hotline_event_log_backlog",
            "Events not yet written.",
            "gauge",
            [({}, log_stats.queued)],
        )
        metric(
            "hotline_event_log_healthy",
            "1 when event writes succeed.",
            "gauge",
            [({}, 1 if log_stats.healthy else 0)],
        )
        metric(
            "hotline_event_log_appended_total",
            "Events appended.",
            "counter",
            [({}, log_stats.appended)],
        )
    return "\n".join(out) + "\n"


# --- handlers ------------------------------------------------------------------------------


def _kpi(request: web.Request) -> KpiService:
    return request.app[KPI_KEY]


@require(*READ)
async def metrics(request: web.Request) -> web.Response:
    kpi = _kpi(request)
    event_log = getattr(kpi.notifier, "event_log", None)
    stats = getattr(event_log, "stats", None) if event_log is not None else None
    snap = kpi.live.snapshot()
    body = metrics_text(snap, kpi.settings, frozenset(kpi.rules.active), stats)
    return web.Response(
        text=body,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


@require(*READ)
async def live(request: web.Request) -> web.Response:
    kpi = _kpi(request)
    snap = kpi.live.snapshot()
    snap["alerts"] = sorted(kpi.rules.active)
    snap["rollup_error"] = kpi.rollup_error
    return json_response(snap)


def _filters(request: web.Request, names: tuple[str, ...]) -> dict[str, str | None]:
    return {n: request.query.get(n) for n in names}


@require(*READ)
async def report(request: web.Request) -> web.StreamResponse:
    kpi = _kpi(request)
    period = request.query.get("period")
    fmt = request.query.get("format", "json")
    if not period:
        raise bad_request("missing", "give ?period=2026-10 (or 2026, 2026-W40, 2026-10-01)")
    if fmt not in CONTENT_TYPES:
        raise bad_request("format", f"format must be one of {sorted(CONTENT_TYPES)}")
    try:
        rep = await asyncio.to_thread(
            build_report,
            kpi.engine,
            period,
            settings=kpi.settings,
            **_filters(request, ("queue", "region")),
        )
        body = await asyncio.to_thread(render, rep, fmt)
    except (ReportError, RollupMismatch) as exc:
        return json_error(400, "report", str(exc))
    headers = {}
    if fmt in ("csv", "xlsx"):
        headers["Content-Disposition"] = f'attachment; filename="kpi-{rep.period.label}.{fmt}"'
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPES[fmt], **headers})


@require(*READ)
async def trace_handler(request: web.Request) -> web.Response:
    kpi = _kpi(request)
    name, period = request.query.get("kpi"), request.query.get("period")
    if not name or not period:
        raise bad_request("missing", "give ?kpi=answer_rate&period=2026-10")
    try:
        result = await asyncio.to_thread(
            trace,
            kpi.engine,
            name,
            period,
            thresholds=kpi.settings.thresholds(),
            **_filters(request, ("queue", "region", "topic", "seat")),
        )
    except ReportError as exc:
        return json_error(400, "trace", str(exc))
    return json_response(
        {
            "kpi": result.name,
            "period": period,
            "numerator": result.numerator,
            "denominator": result.denominator,
            "value": result.value,
            "numerator_ids": list(result.numerator_ids),
            "denominator_ids": list(result.denominator_ids),
            "excluded": {k: list(v) for k, v in result.excluded.items()},
        }
    )


def _float(request: web.Request, name: str, default: float | None) -> float | None:
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise bad_request("invalid", f"{name} must be a number, got {raw!r}") from None


def parse_sl(text: str) -> tuple[float, float]:
    """``0.8/15`` → (0.8, 15.0): share answered within seconds."""
    share, sep, seconds = text.partition("/")
    if not sep:
        raise ValueError(f"service-level target {text!r}: write share/seconds, e.g. 0.8/15")
    return float(share), float(seconds)


@require(*READ)
async def staffing(request: web.Request) -> web.Response:
    cph = _float(request, "calls_per_hour", None)
    aht = _float(request, "aht", None)
    if cph is None or aht is None:
        raise bad_request("missing", "give calls_per_hour and aht (seconds)")
    try:
        sl = parse_sl(request.query["target_sl"]) if request.query.get("target_sl") else (0.8, 15.0)
        result = seats_needed(
            cph,
            aht,
            _float(request, "patience", None),
            target_answer=_float(request, "target_answer", 0.95),
            target_sl=sl,
            short_abandon_s=_kpi(request).settings.short_abandon_s,
        )
    except ValueError as exc:
        return json_error(400, "staffing", str(exc))
    return json_response({k: getattr(result, k) for k in result.__dataclass_fields__})


@require(*READ)
async def alerts(request: web.Request) -> web.Response:
    return json_response({"alerts": await asyncio.to_thread(alert_list, _kpi(request).engine)})


@require(*READ)
async def qa_get(request: web.Request) -> web.Response:
    rows = await asyncio.to_thread(
        qa_lists.qa_list,
        _kpi(request).engine,
        request.query.get("period"),
        request.query.get("seat"),
    )
    return json_response({"qa": rows})


async def _log(request: web.Request, events: list[qa_lists.PendingEvent]) -> None:
    event_log = _kpi(request).notifier.event_log
    if event_log is not None:
        await qa_lists.log_events_async(event_log, events)
    else:
        await asyncio.to_thread(qa_lists.log_events_sync, _kpi(request).engine, events)


@require(*WRITE)
async def qa_sample(request: web.Request) -> web.Response:
    kpi = _kpi(request)
    body = await read_json(request)
    period = body.get("period")
    if not isinstance(period, str):
        raise bad_request("missing", 'give {"period": "2026-10"}')
    try:
        chosen, events = await asyncio.to_thread(
            qa_lists.sample_qa,
            kpi.engine,
            period,
            share=kpi.settings.targets.qa_share,
            min_per_seat=kpi.settings.qa_min_per_seat,
            tz=kpi.settings.tz,
        )
    except (ReportError, qa_lists.QaError) as exc:
        return json_error(400, "qa", str(exc))
    await _log(request, events)
    return json_response({"sampled": chosen})


@require(*WRITE)
async def qa_score(request: web.Request) -> web.Response:
    body = await read_json(request)
    principal = await principal_of(request)
    try:
        events = await asyncio.to_thread(
            qa_lists.score_qa,
            _kpi(request).engine,
            request.match_info["call_id"],
            body.get("score"),
            str(body.get("comment", "")),
            principal.id if principal else "",
        )
    except qa_lists.QaError as exc:
        return json_error(400, "qa", str(exc))
    await _log(request, events)
    return json_response({"ok": True})


@require(*READ)
async def followups_get(request: web.Request) -> web.Response:
    rows = await asyncio.to_thread(
        qa_lists.followup_list, _kpi(request).engine, request.query.get("status")
    )
    return json_response({"followups": rows})


@require(*WRITE)
async def followups_open(request: web.Request) -> web.Response:
    opened, events = await asyncio.to_thread(qa_lists.open_followups, _kpi(request).engine)
    await _log(request, events)
    return json_response({"opened": opened})


@require(*WRITE)
async def followup_update(request: web.Request) -> web.Response:
    body = await read_json(request)
    principal = await principal_of(request)
    try:
        events = await asyncio.to_thread(
            qa_lists.update_followup,
            _kpi(request).engine,
            request.match_info["call_id"],
            str(body.get("status", "")),
            str(body.get("note", "")),
            principal.id if principal else "",
        )
    except qa_lists.QaError as exc:
        return json_error(400, "followup", str(exc))
    await _log(request, events)
    return json_response({"ok": True})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/kpi/live", live)
    app.router.add_get("/api/kpi/report", report)
    app.router.add_get("/api/kpi/trace", trace_handler)
    app.router.add_get("/api/kpi/staffing", staffing)
    app.router.add_get("/api/kpi/alerts", alerts)
    app.router.add_get("/api/kpi/qa", qa_get)
    app.router.add_post("/api/kpi/qa/sample", qa_sample)
    app.router.add_post("/api/kpi/qa/{call_id}", qa_score)
    app.router.add_get("/api/kpi/followups", followups_get)
    app.router.add_post("/api/kpi/followups/open", followups_open)
    app.router.add_post("/api/kpi/followups/{call_id}", followup_update)


def setup(app: web.Application, service: Any) -> None:
    """Register the routes and run the KPI service with the app (started and stopped by it)."""
    kpi = KpiService(service.engine, service.bus, service.event_log, kpi_settings(service.settings))
    app[KPI_KEY] = kpi

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await kpi.start()
        yield
        await kpi.stop()

    app.cleanup_ctx.append(lifecycle)
    add_routes(app)
