"""Shared builders for the KPI tests: local Shanghai times and a hand-computed call set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from kpi.facts import CallFacts, Survey

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(local: str) -> datetime:
    """'2024-03-01 10:00:00' in Shanghai -> aware UTC datetime."""
    return datetime.fromisoformat(local).replace(tzinfo=SHANGHAI).astimezone(UTC)


def call(call_id: str, entered: str | None, **kw: object) -> CallFacts:
    """A call entering the queue at local time ``entered``; ``answer_after`` sets wait."""
    start = at(entered) if entered else None
    after = kw.pop("answer_after", None)
    if after is not None:
        assert start is not None
        kw.setdefault("answered_at", start + timedelta(seconds=float(after)))  # type: ignore[arg-type]
        kw.setdefault("wait_s", float(after))  # type: ignore[arg-type]
        kw.setdefault("ended_at", start + timedelta(seconds=float(after) + 600))  # type: ignore[arg-type]
    elif kw.get("abandoned"):
        kw.setdefault("ended_at", start + timedelta(seconds=float(kw["wait_s"])))  # type: ignore[arg-type, operator]
    return CallFacts(call_id, start, **kw)  # type: ignore[arg-type]


def day_of_calls() -> list[CallFacts]:
    """The fixture every hand-computed expectation in test_kpi_formulas.py refers to."""
    return [
        call(
            "c1",
            "2024-03-01 10:00:00",
            queue="A",
            region="呼和浩特",
            topic="labor",
            seat="s1",
            answer_after=10,
            talk_s=300,
            hold_s=20,
            wrap_s=40,
            survey=Survey.SATISFIED,
            qa_inspected=True,
        ),
        call(
            "c2",
            "2024-03-01 10:05:00",
            queue="A",
            region="包头",
            topic="family",
            seat="s2",
            answer_after=20,
            talk_s=200,
            wrap_s=30,
            survey=Survey.DISSATISFIED,
            followed_up=True,
        ),
        # short abandon: 3 s < 5 s
        call("c3", "2024-03-01 10:06:00", queue="A", region="包头", abandoned=True, wait_s=3),
        call("c4", "2024-03-01 10:07:00", queue="A", region="包头", abandoned=True, wait_s=40),
        # moved from A to B before a seat answered: counted once, in B
        call(
            "c5",
            "2024-03-01 10:10:00",
            queue="B",
            region="呼和浩特",
            topic="labor",
            transferred_from=("A",),
            seat="s3",
            answer_after=12,
            talk_s=100,
            wrap_s=20,
            survey=Survey.BASICALLY_SATISFIED,
            qa_inspected=True,
        ),
        # overflowed from A, answered in B at exactly T = 15 s (inside the service level)
        call(
            "c6",
            "2024-03-01 10:20:00",
            queue="B",
            region="呼和浩特",
            topic="family",
            overflowed_from=("A",),
            seat="s3",
            answer_after=15,
            talk_s=150,
        ),
        # transferred in from 110 at 23:59:50, answered after midnight: counts on 03-01
        call(
            "c7",
            "2024-03-01 23:59:50",
            queue="A",
            region="包头",
            topic="labor",
            origin="110",
            seat="s1",
            answer_after=20,
            talk_s=60,
            survey=Survey.DISSATISFIED,
        ),
        # chose a callback after 60 s; called back and answered: answered, not in SL/ASA
        call(
            "c8",
            "2024-03-01 11:00:00",
            queue="A",
            region="呼和浩特",
            topic="labor",
            wait_s=60,
            callback_requested_at=at("2024-03-01 11:01:00"),
            callback_answered_at=at("2024-03-01 11:30:00"),
            seat="s2",
            ended_at=at("2024-03-01 11:35:00"),
            talk_s=120,
            wrap_s=30,
            survey=Survey.SATISFIED,
        ),
        # callback requested, never reached the caller
        call(
            "c9",
            "2024-03-01 11:10:00",
            queue="B",
            region="包头",
            wait_s=60,
            callback_requested_at=at("2024-03-01 11:11:00"),
            ended_at=at("2024-03-01 11:11:00"),
        ),
        # self-service in the IVR: never asked for a seat
        call("c10", None, ended_at=at("2024-03-01 11:20:00")),
        # still waiting in queue A
        call("c11", "2024-03-01 12:00:00", queue="A", region="包头"),
        # abandoned after exactly 5.0 s: a real abandon, not a short one
        call(
            "c12", "2024-03-01 12:05:00", queue="B", region="呼和浩特", abandoned=True, wait_s=5.0
        ),
    ]
