"""A hand-written event log for the KPI edge cases, in the ACD/IVR vocabulary.

One day (2024-03-01, Asia/Shanghai), queues A and B, seats s1 (包头) and s2 (呼和浩特). The
expected figures in test_kpi_derive.py / test_kpi_rollup.py are computed by hand from this.

  c1  A, answered by s1 after 10 s, talk 300, wrap 30, 满意, region named by the caller
  c2  A, short abandon after 3 s
  c3  A, abandon after 40 s
  c4  A, answered by s1 after 12 s, transferred to B (talk 120), answered by s2 (talk 120);
      wrap 30 + 30; 基本满意; counted once, in A; no region of its own → s1's 包头
  c5  A → overflow to B after 30 s, answered by s2 after 40 s (outside SL), talk 120, no wrap,
      survey not answered
  c6  B, enters 23:59:50, answered by s1 at 00:00:05 (exactly 15 s: inside SL), talk 60,
      wrap 30 (after midnight), 不满意 — belongs to 03-01
  c7  A, chose a callback after 60 s; s2 called back and talked 300, wrap 30
  c8  B, chose a callback after 60 s; the callback failed for good
  c9  IVR only (self-service)
  c10 A, still waiting
  c11 B, abandon after exactly 5.0 s (a real abandon)
  s2 is paused 10:50:00-11:00:35 (across the 11:00 bound). Both seats log out 03-02 01:00.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from hotline.events.types import CallEvent
from tests.kpi.kpi_fixtures import at

DAY = "2024-03-01"


class EventScript:
    """Collects events with per-call seq and seat state bookkeeping; ``events()`` in time order."""

    def __init__(self) -> None:
        self._events: list[CallEvent] = []
        self._seq: dict[str, int] = defaultdict(int)
        self._state: dict[str, str] = defaultdict(lambda: "offline")

    def ev(self, call_id: str, when: str | datetime, type_: str, **data: object) -> None:
        ts = at(when) if isinstance(when, str) else when
        self._seq[call_id] += 1
        self._events.append(CallEvent(call_id, self._seq[call_id], ts, type_, dict(data)))

    def seat(self, seat: str, when: str, to: str, reason: str = "") -> None:
        frm = self._state[seat]
        self._state[seat] = to
        data = {"seat_id": seat, "from": frm, "to": to, "reason": reason or to}
        self.ev(f"seat:{seat}", when, "seat.state_changed", **data)

    def login(self, seat: str, when: str, region: str) -> None:
        self.ev(f"seat:{seat}", when, "seat.login", seat_id=seat, region=region)
        self.seat(seat, when, "available", "login")

    def logout(self, seat: str, when: str) -> None:
        self.seat(seat, when, "offline", "logout")
        self.ev(f"seat:{seat}", when, "seat.logout", seat_id=seat)

    def events(self) -> list[CallEvent]:
        return sorted(self._events, key=lambda e: e.ts)  # stable: ties keep script order


def d(hms: str, day: str = DAY) -> str:
    return f"{day} {hms}"


def edge_case_day() -> list[CallEvent]:
    s = EventScript()
    s.login("s1", d("09:00:00"), "包头")
    s.login("s2", d("09:00:00"), "呼和浩特")

    # c1
    s.ev("c1", d("09:59:40"), "call.entered", dialled="12348", caller_key="k1", region="呼和浩特")
    s.ev("c1", d("10:00:00"), "ivr.action", node="q", action="queue", queue="A", topic="labor")
    s.ev("c1", d("10:00:10"), "queue.entered", queue="A", priority=0, origin=None, position=1)
    s.seat("s1", d("10:00:15"), "offered")
    s.ev("c1", d("10:00:15"), "queue.offered", queue="A", seat_id="s1", wait=5)
    s.seat("s1", d("10:00:20"), "on_call")
    s.ev("c1", d("10:00:20"), "queue.connected", queue="A", seat_id="s1", wait=10, callback=False)
    s.ev("c1", d("10:05:20"), "queue.completed", queue="A", seat_id="s1", by="seat", talk=300)
    s.seat("s1", d("10:05:20"), "wrap_up")
    s.ev("c1", d("10:05:25"), "survey.answered", result="satisfied", key="1")
    s.ev("c1", d("10:05:26"), "call.ended", hangup_by="caller")
    s.seat("s1", d("10:05:50"), "available")

    # c2: short abandon
    s.ev("c2", d("10:10:00"), "queue.entered", queue="A", priority=0, position=1)
    s.ev("c2", d("10:10:03"), "queue.abandoned", queue="A", position=1, wait=3, state="waiting")
    s.ev("c2", d("10:10:03"), "call.ended", hangup_by="caller")

    # c3: abandon after 40 s
    s.ev("c3", d("10:20:00"), "queue.entered", queue="A", priority=0, position=1)
    s.ev("c3", d("10:20:40"), "queue.abandoned", queue="A", position=1, wait=40, state="waiting")
    s.ev("c3", d("10:20:40"), "call.ended", hangup_by="caller")

    # c4: answered in A, transferred to B, answered again: counted once in A
    s.ev("c4", d("10:29:50"), "ivr.action", node="q", action="queue", queue="A", topic="family")
    s.ev("c4", d("10:30:00"), "queue.entered", queue="A", priority=0, position=1)
    s.seat("s1", d("10:30:05"), "offered")
    s.ev("c4", d("10:30:05"), "queue.offered", queue="A", seat_id="s1")
    s.seat("s1", d("10:30:12"), "on_call")
    s.ev("c4", d("10:30:12"), "queue.connected", queue="A", seat_id="s1", callback=False)
    s.ev("c4", d("10:32:12"), "queue.transferred", from_queue="A", to_queue="B", seat_id="s1")
    s.seat("s1", d("10:32:12"), "wrap_up")
    s.seat("s2", d("10:32:15"), "offered")
    s.ev("c4", d("10:32:15"), "queue.offered", queue="B", seat_id="s2")
    s.seat("s2", d("10:32:20"), "on_call")
    s.ev("c4", d("10:32:20"), "queue.connected", queue="B", seat_id="s2", callback=False)
    s.seat("s1", d("10:32:42"), "available")
    s.ev("c4", d("10:34:20"), "queue.completed", queue="B", seat_id="s2", by="caller")
    s.seat("s2", d("10:34:20"), "wrap_up")
    s.ev("c4", d("10:34:25"), "survey.answered", result="basically_satisfied", key="2")
    s.seat("s2", d("10:34:50"), "available")

    # s2 pauses across 11:00
    s.seat("s2", d("10:50:00"), "paused", "小休")
    s.seat("s2", d("11:00:35"), "available", "ready")

    # c5: overflow A -> B, answered after 40 s, survey not answered
    s.ev("c5", d("11:00:00"), "queue.entered", queue="A", priority=0, position=1)
    s.ev("c5", d("11:00:30"), "queue.overflowed", from_queue="A", to_queue="B", wait=30)
    s.seat("s2", d("11:00:36"), "offered")
    s.ev("c5", d("11:00:36"), "queue.offered", queue="B", seat_id="s2")
    s.seat("s2", d("11:00:40"), "on_call")
    s.ev("c5", d("11:00:40"), "queue.connected", queue="B", seat_id="s2", callback=False)
    s.ev("c5", d("11:02:40"), "queue.completed", queue="B", seat_id="s2", by="seat")
    s.seat("s2", d("11:02:40"), "wrap_up")
    s.seat("s2", d("11:02:40"), "available", "no_wrap_up")
    s.ev("c5", d("11:02:41"), "survey.offered", seat="s2")
    s.ev("c5", d("11:02:51"), "survey.not_rated", result="not_rated", reason="timeout")

    # c7: callback answered
    s.ev("c7", d("12:00:00"), "queue.entered", queue="A", priority=0, position=1)
    s.ev("c7", d("12:01:00"), "queue.left", queue="A", reason="caller", action="callback")
    s.ev("c7", d("12:01:00"), "callback.requested", queue="A", position=1)
    s.ev("c7", d("12:01:01"), "call.ended", hangup_by="system")
    s.seat("s2", d("12:30:00"), "offered", "callback")
    s.ev("c7", d("12:30:00"), "callback.placed", queue="A", seat_id="s2", attempt=1)
    s.seat("s2", d("12:30:10"), "on_call")
    s.ev("c7", d("12:30:10"), "queue.connected", queue="A", seat_id="s2", callback=True)
    s.ev("c7", d("12:35:10"), "queue.completed", queue="A", seat_id="s2", by="seat")
    s.seat("s2", d("12:35:10"), "wrap_up")
    s.seat("s2", d("12:35:40"), "available")

    # c8: callback that never reached the caller
    s.ev("c8", d("12:10:00"), "queue.entered", queue="B", priority=0, position=1)
    s.ev("c8", d("12:11:00"), "queue.left", queue="B", reason="caller", action="callback")
    s.ev("c8", d("12:11:01"), "call.ended", hangup_by="system")
    s.seat("s1", d("12:40:00"), "offered", "callback")
    s.ev("c8", d("12:40:00"), "callback.placed", queue="B", seat_id="s1", attempt=1)
    s.ev("c8", d("12:40:30"), "callback.failed", queue="B", seat_id="s1", attempt=1, final=True)
    s.seat("s1", d("12:40:30"), "available", "callback_failed")
    s.ev("c8", d("12:40:30"), "queue.left", queue="B", reason="callback_failed", action="hangup")

    # c9: IVR only
    s.ev("c9", d("12:50:00"), "call.entered", dialled="12348", caller_key="k9")
    s.ev("c9", d("12:50:30"), "ivr.outcome", outcome="self_served", node="info")
    s.ev("c9", d("12:50:31"), "call.ended", hangup_by="system")

    # c10: still waiting; c11: abandon after exactly 5.0 s
    s.ev("c10", d("13:00:00"), "queue.entered", queue="A", priority=0, position=1)
    s.ev("c11", d("13:05:00"), "queue.entered", queue="B", priority=0, position=2)
    s.ev("c11", d("13:05:05"), "queue.abandoned", queue="B", position=2, wait=5.0)
    s.ev("c11", d("13:05:05"), "call.ended", hangup_by="caller")

    # c6: enters at 23:59:50 from 110, answered after midnight
    s.ev("c6", d("23:59:40"), "call.entered", dialled="12348", via="110")
    s.ev("c6", d("23:59:50"), "queue.entered", queue="B", priority=2, origin="110", position=1)
    s.seat("s1", d("23:59:55"), "offered")
    s.ev("c6", d("23:59:55"), "queue.offered", queue="B", seat_id="s1")
    s.seat("s1", d("00:00:05", "2024-03-02"), "on_call")
    s.ev("c6", d("00:00:05", "2024-03-02"), "queue.connected", queue="B", seat_id="s1")
    s.ev("c6", d("00:01:05", "2024-03-02"), "queue.completed", queue="B", seat_id="s1", by="seat")
    s.seat("s1", d("00:01:05", "2024-03-02"), "wrap_up")
    s.ev("c6", d("00:01:10", "2024-03-02"), "survey.answered", result="dissatisfied", key="3")
    s.seat("s1", d("00:01:35", "2024-03-02"), "available")

    s.logout("s1", d("01:00:00", "2024-03-02"))
    s.logout("s2", d("01:00:00", "2024-03-02"))
    return s.events()
