"""Reconciliation after an ARI reconnect must leave a supervisor's line alone."""

from __future__ import annotations

from types import SimpleNamespace

from acd.supervision import Supervising, Supervision


class _Ari:
    def add_handler(self, handler: object) -> None:
        self.handler = handler


def test_supervision_registers_the_objects_it_owns_with_the_acd() -> None:
    acd = SimpleNamespace(ari=_Ari(), events=None, object_owners=[])
    supervision = Supervision(acd)  # type: ignore[arg-type]
    assert acd.object_owners == [supervision.owns]
    session = Supervising(
        call_id="c1",
        supervisor="boss",
        phone="seat9",
        mode="monitor",
        channel_id="sup-line",
        seat_channel="seat-leg",
        caller_channel="caller-leg",
        snoop_id="snoop-1",
        bridge_id="private-bridge",
    )
    supervision.sessions["c1"] = session
    for channel in (session.channel_id, session.seat_channel, session.caller_channel):
        supervision._by_channel[channel] = session
    for object_id in ("sup-line", "snoop-1", "private-bridge"):
        assert supervision.owns(object_id), object_id
    assert not supervision.owns("someone-else")
    del supervision.sessions["c1"]
    supervision._by_channel.clear()
    assert not supervision.owns("sup-line")  # an ended session's line is an orphan again
