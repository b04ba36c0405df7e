"""The wait clock of ``sim compare``: the truth is moved to queue entry (the KPI's clock).

Pure logic on hand-made records: the simulator's last key plus the connecting prompt's length
(measured from the hotline's own last-digit → ``queue.entered`` gap, per menu path) is queue
entry; a caller gone during the prompt never asked for a seat on that clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hotline.events.types import CallEvent
from sim.compare import HotlineCall, connecting_prompts, last_key_to_queue_s
from sim.truth import TruthCall, on_kpi_clock, true_kpis

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def _truth(sim_id: str, *, asked: float, answered: float | None = None, ended: float,
           path: str = "labor") -> TruthCall:  # fmt: skip
    return TruthCall(
        sim_id=sim_id, number="13900000001", masked="139****0001", path=path, keys="111",
        wanted_queue="labor", arrived_at=0.0, connected_at=0.5, asked_at=asked,
        answered_at=answered, seat="s1" if answered else None, ended_at=ended,
        hangup_by="caller",
    )  # fmt: skip


def _hotline(call_id: str, key_s: float, queued_s: float | None) -> HotlineCall:
    events = [
        CallEvent(call_id, 1, T0, "call.entered", {"caller": "139****0001"}),
        CallEvent(
            call_id,
            2,
            T0 + timedelta(seconds=key_s - 2),
            "ivr.input",
            {"kind": "digit", "digit": "1"},
        ),
        CallEvent(
            call_id, 3, T0 + timedelta(seconds=key_s), "ivr.input", {"kind": "digit", "digit": "1"}
        ),
    ]
    if queued_s is not None:
        events.append(CallEvent(call_id, 4, T0 + timedelta(seconds=queued_s), "queue.entered",
                                {"queue": "labor"}))  # fmt: skip
    return HotlineCall(call_id, "139****0001", T0, events)


def test_the_hotline_gap_from_last_digit_to_queue_entry() -> None:
    assert last_key_to_queue_s(_hotline("a", 6.0, 10.5)) == 4.5
    assert last_key_to_queue_s(_hotline("b", 6.0, None)) is None


def test_connecting_prompt_is_the_median_per_path_and_absurd_gaps_are_mismatches() -> None:
    pairs = [
        (_truth("1", asked=6.0, ended=30.0), _hotline("a", 6.0, 10.4)),
        (_truth("2", asked=6.0, ended=30.0), _hotline("b", 6.0, 10.5)),
        (_truth("3", asked=6.0, ended=30.0), _hotline("c", 6.0, 10.9)),
        (_truth("4", asked=6.0, ended=30.0), _hotline("d", 6.0, 40.0)),  # 34 s: not a prompt
        (_truth("5", asked=6.0, ended=7.0), _hotline("e", 6.0, None)),  # left during it
    ]
    lengths, bad = connecting_prompts(pairs)
    assert lengths == {"labor": 4.5}
    assert [m.sim_id for m in bad] == ["4"]


def test_on_the_kpi_clock_the_wait_starts_at_queue_entry() -> None:
    answered = on_kpi_clock(_truth("1", asked=100.0, answered=112.0, ended=150.0), 4.5)
    assert answered.asked_at == 104.5
    assert answered.wait_s == 7.5
    # hung up during the connecting prompt: never in the queue, so not an abandon
    gone = on_kpi_clock(_truth("2", asked=100.0, ended=103.0), 4.5)
    assert not gone.asked_for_seat and not gone.abandoned
    # hung up 3 s into the queue: a short abandon on the KPI clock (7 s from the last key)
    short = on_kpi_clock(_truth("3", asked=100.0, ended=107.5), 4.5)
    assert short.abandoned and short.wait_s == 3.0
    kpis = true_kpis([answered, gone, short], short_abandon_s=5.0)
    assert (kpis["asked_for_seat"], kpis["answered"], kpis["abandoned"]) == (2, 1, 1)
    assert kpis["short_abandoned"] == 1
    # unknown prompt length: unchanged
    same = _truth("4", asked=100.0, ended=103.0)
    assert on_kpi_clock(same, None) is same
