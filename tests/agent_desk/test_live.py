"""Live events: masking, per-role filtering, screen-pop summaries, and the WebSocket itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from desk_client import DeskClient
from desk_server import PASSWORD, DeskServer

from agent_desk.live import LiveHub, redact
from hotline.events.types import CallEvent
from hotline.web import Principal, Role

CLEAR = "13800138000"
MASKED = "138****8000"


def ev(call_id: str, seq: int, type_: str, /, **data: Any) -> CallEvent:
    return CallEvent(call_id, seq, datetime(2026, 3, 2, 2, 0, seq, tzinfo=UTC), type_, data)


def drain(client: Any) -> list[dict]:
    out = list(client.outbox)
    client.outbox.clear()
    return out


def test_redact_masks_numbers_everywhere_but_ids() -> None:
    data = {
        "caller": CLEAR,
        "caller_number": "+86 138 0013 8000",
        "caller_key": "ab" * 32,
        "note": f"请回电 {CLEAR} 或 +8613912345678",
        "attached": {"callback_number": "02787654321", "history": [{"phone": CLEAR}]},
        "channel": "1712345678.12",
        "call_id": "17123456789",
        "wait": 12.5,
        "from": "available",
    }
    out = redact(data)
    text = json.dumps(out, ensure_ascii=False)
    assert CLEAR not in text and "13912345678" not in text and "87654321" not in text
    assert out["caller"] == MASKED
    assert out["caller_number"] == MASKED
    assert "caller_key" not in out
    assert out["attached"]["history"][0]["phone"] == MASKED
    assert out["channel"] == "1712345678.12" and out["call_id"] == "17123456789"
    assert out["wait"] == 12.5 and out["from"] == "available"
    assert redact({"caller": MASKED}) == {"caller": MASKED}


def call_flow(hub: LiveHub, call_id: str, seat: str, caller: str = CLEAR) -> None:
    hub.ingest(ev(call_id, 1, "call.entered", caller=caller, dialled="12348", via="110"))
    hub.ingest(ev(call_id, 2, "ivr.choice", node="main", choice="2", target="labour"))
    hub.ingest(ev(call_id, 3, "ivr.action", node="labour", action="queue", queue="labour",
                  topic="劳动争议"))  # fmt: skip
    hub.ingest(ev(call_id, 4, "queue.entered", call_id=call_id, queue="labour", position=1))
    hub.ingest(ev(call_id, 5, "queue.offered", call_id=call_id, queue="labour", seat_id=seat))
    hub.ingest(ev(call_id, 6, "queue.connected", call_id=call_id, queue="labour", seat_id=seat))


def test_seat_lawyer_sees_only_own_seat_and_calls() -> None:
    hub = LiveHub()
    mine = hub.connect(Principal("lawyer1", Role.SEAT_LAWYER, seat_id="s101"))
    other = hub.connect(Principal("lawyer2", Role.SEAT_LAWYER, seat_id="s102"))
    boss = hub.connect(Principal("super", Role.SUPERVISOR))
    for c in (mine, other, boss):
        assert drain(c)[0]["kind"] == "snapshot"

    hub.ingest(ev("seat:s101", 1, "seat.state_changed", seat_id="s101", to="available"))
    hub.ingest(ev("seat:s102", 1, "seat.state_changed", seat_id="s102", to="paused"))
    call_flow(hub, "c1", "s101")
    call_flow(hub, "c2", "s102", caller="13911112222")

    got_mine = drain(mine)
    calls_mine = {m["event"]["call_id"] for m in got_mine if "call" in m}
    assert calls_mine == {"c1"}
    assert {m["seat"]["seat_id"] for m in got_mine if "seat" in m} == {"s101"}
    # The call reaches the seat at the offer, with what happened before it in the summary.
    first = next(m for m in got_mine if "call" in m)
    assert first["event"]["type"] == "queue.offered"
    assert first["call"]["ivr_path"] == [{"node": "main", "choice": "2", "target": "labour"}]
    assert first["call"]["topic"] == "劳动争议"
    assert first["call"]["source"] == "110"
    assert first["call"]["caller"] == MASKED

    assert {m["event"]["call_id"] for m in drain(other) if "call" in m} == {"c2"}
    everything = drain(boss)
    assert {m["event"]["call_id"] for m in everything if "call" in m} == {"c1", "c2"}
    assert len(everything) == 14
    text = json.dumps([got_mine, everything], ensure_ascii=False)
    assert CLEAR not in text and "13911112222" not in text

    # A new connection gets the present state.
    snap = hub.snapshot(Principal("lawyer1", Role.SEAT_LAWYER, seat_id="s101"))
    assert [c["call_id"] for c in snap["calls"]] == ["c1"]
    assert snap["calls"][0]["state"] == "talking"
    assert set(snap["seats"]) == {"s101"}
    assert set(hub.snapshot(Principal("a", Role.AUDITOR))["seats"]) == {"s101", "s102"}


def test_acd_events_under_the_callers_call_id() -> None:
    """The ACD logs call events under the call's id (no call_id in data), seat events under
    ``seat:<id>`` with the call in data; the seat may change state before the offer event."""
    hub = LiveHub()
    lawyer = hub.connect(Principal("lawyer1", Role.SEAT_LAWYER, seat_id="s101"))
    drain(lawyer)
    hub.ingest(ev("c9", 1, "call.entered", caller=CLEAR))
    hub.ingest(ev("c9", 2, "queue.entered", queue="labour", priority=0, position=1))
    hub.ingest(ev("seat:s101", 1, "seat.state_changed", seat_id="s101", to="offered",
                  reason="offer", call_id="c9"))  # fmt: skip
    hub.ingest(ev("c9", 3, "queue.offered", queue="labour", seat_id="s101", attempt=1))
    got = drain(lawyer)
    assert [m["event"]["type"] for m in got] == ["seat.state_changed", "queue.offered"]
    assert got[0]["seat"]["state"] == "offered" and got[0]["seat"]["call_id"] == "c9"
    assert got[1]["call"]["call_id"] == "c9" and got[1]["call"]["state"] == "offered"
    assert "seat:s101" not in hub.calls


def test_no_answer_takes_the_call_away_from_the_seat() -> None:
    hub = LiveHub()
    lawyer = hub.connect(Principal("lawyer1", Role.SEAT_LAWYER, seat_id="s101"))
    drain(lawyer)
    hub.ingest(ev("c1", 1, "call.entered", caller=CLEAR))
    hub.ingest(ev("c1", 2, "queue.offered", call_id="c1", seat_id="s101"))
    hub.ingest(ev("c1", 3, "queue.no_answer", call_id="c1", seat_id="s101"))
    hub.ingest(ev("c1", 4, "queue.offered", call_id="c1", seat_id="s102"))
    hub.ingest(ev("c1", 5, "call.ended", hangup_by="caller"))
    types = [m["event"]["type"] for m in drain(lawyer)]
    assert types == ["queue.offered", "queue.no_answer"]


def test_seat_lawyer_without_seat_sees_nothing() -> None:
    hub = LiveHub()
    client = hub.connect(Principal("x", Role.SEAT_LAWYER, seat_id=None))
    drain(client)
    call_flow(hub, "c1", "s101")
    assert drain(client) == []


def test_slow_client_is_told_to_resync() -> None:
    hub = LiveHub()
    client = hub.connect(Principal("super", Role.SUPERVISOR))
    client.maxsize = 5
    for i in range(1, 20):
        hub.ingest(ev(f"c{i}", 1, "call.entered", caller=CLEAR))
    assert len(client.outbox) <= 6
    assert any(m["kind"] == "resync" for m in client.outbox)


def test_ended_calls_are_forgotten() -> None:
    hub = LiveHub(keep_ended=3)
    for i in range(10):
        hub.ingest(ev(f"c{i}", 1, "call.entered", caller=CLEAR))
        hub.ingest(ev(f"c{i}", 2, "call.ended", hangup_by="caller"))
    assert len(hub.calls) == 3


# --- over the real WebSocket -----------------------------------------------------------------


async def receive_until(ws: Any, predicate: Callable[[dict], bool], limit_s: float = 5.0) -> list:
    """Messages (raw text, parsed) until one matches ``predicate``."""
    seen: list[tuple[str, dict]] = []
    async with asyncio.timeout(limit_s):
        while True:
            msg = await ws.receive()
            assert msg.type is aiohttp.WSMsgType.TEXT, msg
            parsed = json.loads(msg.data)
            seen.append((msg.data, parsed))
            if predicate(parsed):
                return seen


def publish_call(server: DeskServer, call_id: str, seat: str, caller: str) -> None:
    server.publish(call_id, "call.entered", caller=caller, dialled="12348",
                   note=f"caller said {caller}")  # fmt: skip
    server.publish(call_id, "ivr.choice", node="main", choice="1", target="marriage")
    server.publish(call_id, "queue.entered", call_id=call_id, queue="marriage")
    server.publish(call_id, "queue.offered", call_id=call_id, queue="marriage", seat_id=seat)


async def test_websocket_filters_by_role_and_never_sends_a_clear_number(
    server: DeskServer,
) -> None:
    async with (
        DeskClient(server.url) as lawyer,
        DeskClient(server.url) as boss,
    ):
        await lawyer.login("lawyer1", PASSWORD)
        await boss.login("super", PASSWORD)
        async with lawyer.ws() as lws, boss.ws() as bws:
            hello = await receive_until(lws, lambda m: m["kind"] == "snapshot")
            assert hello[0][1] == {
                "kind": "hello", "user": "lawyer1", "role": "seat_lawyer", "seat_id": "s101"
            }  # fmt: skip
            await receive_until(bws, lambda m: m["kind"] == "snapshot")
            await asyncio.to_thread(publish_call, server, "c-other", "s102", "13911112222")
            await asyncio.to_thread(publish_call, server, "c-mine", "s101", CLEAR)
            boss_seen = await receive_until(
                bws, lambda m: m.get("event", {}).get("type") == "queue.offered"
                and m["event"]["call_id"] == "c-mine",
            )  # fmt: skip
            lawyer_seen = await receive_until(
                lws, lambda m: m.get("event", {}).get("type") == "queue.offered"
            )
    assert {m["event"]["call_id"] for _, m in lawyer_seen if m["kind"] == "event"} == {"c-mine"}
    assert {m["event"]["call_id"] for _, m in boss_seen if m["kind"] == "event"} == {
        "c-other",
        "c-mine",
    }
    offered = lawyer_seen[-1][1]
    assert offered["call"]["caller"] == MASKED
    assert offered["call"]["ivr_path"][0]["choice"] == "1"
    for raw, _ in lawyer_seen + boss_seen:
        assert CLEAR not in raw and "13911112222" not in raw


async def test_websocket_refuses_anonymous_and_cross_origin(server: DeskServer) -> None:
    async with DeskClient(server.url) as anon:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            async with anon.ws():
                pass
        assert info.value.status == 401
    async with DeskClient(server.url) as c:
        await c.login("super", PASSWORD)
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            async with c.ws(origin="http://evil.example"):
                pass
        assert info.value.status == 403


async def test_websocket_closes_when_the_session_ends(
    server_factory: Callable[..., DeskServer],
) -> None:
    server = server_factory(idle_timeout_s=1.0)
    server.add_user("sup", Role.SUPERVISOR)
    async with DeskClient(server.url) as c:
        await c.login("sup", PASSWORD)
        async with c.ws() as ws:
            seen = await receive_until(ws, lambda m: m["kind"] == "bye", limit_s=5)
            assert seen[-1][1]["reason"] == "session_ended"
            msg = await ws.receive()
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 4401


# --- the desk's live picture: figures, wrap-up, KPI alerts, transcripts ---------------------


def test_seat_figures_of_today_from_events_counted_once() -> None:
    hub = LiveHub()
    lawyer = hub.connect(Principal("lawyer1", Role.SEAT_LAWYER, seat_id="s101"))
    drain(lawyer)
    events = [
        ev("c1", 1, "call.entered", caller=CLEAR, caller_key="k1"),
        ev("c1", 2, "queue.offered", queue="labour", seat_id="s101"),
        ev("c1", 3, "queue.connected", queue="labour", seat_id="s101", wait=3.0),
        ev("c1", 10, "queue.completed", queue="labour", seat_id="s101", by="seat", talk=120.0),
        ev("seat:s101", 1, "seat.state_changed", seat_id="s101", to="wrap_up", reason="completed"),
        ev("seat:s101", 40, "seat.state_changed", seat_id="s101", to="available"),
        ev("c1", 41, "survey.answered", rating="basically_satisfied"),
        ev("c2", 42, "queue.connected", queue="labour", seat_id="s101"),
        ev("c2", 50, "queue.completed", queue="labour", seat_id="s101", talk=60.0),
        ev("c2", 51, "survey.answered", rating="dissatisfied"),
    ]
    for e in events + events[2:4]:  # replayed events do not count twice
        hub.ingest(e)
    today = hub.snapshot(Principal("lawyer1", Role.SEAT_LAWYER, seat_id="s101"))["seats"]
    figures = today["s101"]["today"]
    # AHT = (120 + 39 wrap-up + 60) / 2 calls
    assert figures == {"answered": 2, "completed": 2, "aht_s": 109.5, "rated": 2,
                       "satisfaction": 0.5}  # fmt: skip
    # The survey's figures reach the lawyer with the event (the call is theirs).
    got = [m for m in drain(lawyer) if m["event"]["type"] == "survey.answered"]
    assert got[-1]["seat"]["today"]["rated"] == 2


def test_wrap_up_seconds_from_the_event_or_the_acd_config() -> None:
    asked: list[tuple[str, str | None]] = []

    def lookup(seat: str, queue: str | None) -> float:
        asked.append((seat, queue))
        return 45.0

    hub = LiveHub(wrap_up_lookup=lookup)
    hub.ingest(ev("c1", 1, "queue.connected", queue="labour", seat_id="s101"))
    hub.ingest(ev("c1", 2, "queue.completed", queue="labour", seat_id="s101", talk=5.0))
    hub.ingest(ev("seat:s101", 1, "seat.state_changed", seat_id="s101", to="wrap_up"))
    seat = hub.seats["s101"]
    assert asked == [("s101", "labour")] and seat["wrap_up_s"] == 45.0
    assert seat["wrap_up_until"] == "2026-03-02T02:00:46+00:00"  # ts (second 1) + 45 s
    hub.ingest(ev("seat:s102", 3, "seat.state_changed", seat_id="s102", to="wrap_up",
                  wrap_up_s=20))  # fmt: skip
    assert hub.seats["s102"]["wrap_up_s"] == 20.0 and len(asked) == 1
    hub.ingest(ev("seat:s101", 9, "seat.state_changed", seat_id="s101", to="available"))
    assert hub.seats["s101"]["wrap_up_until"] is None


def test_screen_pop_summary_origin_path_and_archive_key() -> None:
    hub = LiveHub()
    lawyer = hub.connect(Principal("lawyer1", Role.SEAT_LAWYER, seat_id="s101"))
    drain(lawyer)
    hub.ingest(ev("c1", 1, "call.entered", caller=MASKED, caller_key="ab" * 32,
                  dialled="12348", kind="inbound"))  # fmt: skip
    hub.ingest(ev("c1", 2, "ivr.call_started", origin="12345", is_repeat=True))
    hub.ingest(ev("c1", 3, "ivr.language", language="zh", chosen_by="default"))
    hub.ingest(ev("c1", 4, "ivr.choice", node="main_menu", choice="1", target="lawyer_hours"))
    hub.ingest(ev("c1", 5, "ivr.language", language="en", chosen_by="caller"))
    hub.ingest(ev("c1", 6, "ivr.action", node="q", action="queue", queue="labour",
                  topic="劳动争议"))  # fmt: skip
    hub.ingest(ev("c1", 7, "queue.entered", queue="labour", origin=None))
    hub.ingest(ev("c1", 8, "queue.offered", queue="labour", seat_id="s101"))
    (offered,) = drain(lawyer)
    call = offered["call"]
    assert call["source"] == "12345" and call["is_repeat"] and call["topic"] == "劳动争议"
    assert [s["node"] for s in call["ivr_path"]] == ["main_menu", "language"]
    assert call["language"] == "en"
    # The keyed hash is in the summary (for the party archive), never in the event data.
    assert call["caller_key"] == "ab" * 32
    assert "caller_key" not in json.dumps(offered["event"])


def test_kpi_picture_and_partials_go_where_they_belong() -> None:
    from types import SimpleNamespace

    hub = LiveHub(kpi_targets={"answer_rate": 0.95})
    boss = hub.connect(Principal("super", Role.SUPERVISOR))
    lawyer = hub.connect(Principal("lawyer1", Role.SEAT_LAWYER, seat_id="s101"))
    drain(boss), drain(lawyer)
    call_flow(hub, "c1", "s101")
    drain(boss), drain(lawyer)
    hub.ingest(ev("c1", 0, "transcript.partial", speaker="caller", text=f"我的电话 {CLEAR}"))
    hub.ingest(ev("service:x", 1, "kpi.alert_raised", alert="answer_rate", scope="hotline",
                  value=0.9, target=0.95, calls=20))  # fmt: skip
    hub.ingest(SimpleNamespace(type="kpi.snapshot", data={"today": {"kpis": {}}, "alerts": [
        "answer_rate:hotline", "service_level:labour"]}))  # fmt: skip
    seen_boss = [m["event"]["type"] for m in drain(boss)]
    seen_lawyer = drain(lawyer)
    assert seen_boss == ["kpi.alert_raised", "kpi.snapshot"]
    assert [m["event"]["type"] for m in seen_lawyer] == ["transcript.partial"]
    assert CLEAR not in json.dumps(seen_lawyer, ensure_ascii=False)
    snap = hub.snapshot(Principal("super", Role.SUPERVISOR))
    assert {a["name"] for a in snap["alerts"]} == {"answer_rate:hotline", "service_level:labour"}
    assert snap["targets"] == {"answer_rate": 0.95} and snap["kpi"]["alerts"]
    assert "kpi" not in hub.snapshot(Principal("lawyer1", Role.SEAT_LAWYER, seat_id="s101"))
    hub.ingest(ev("service:x", 2, "kpi.alert_cleared", alert="answer_rate", scope="hotline"))
    assert {a["name"] for a in hub.snapshot(boss.principal)["alerts"]} == {"service_level:labour"}


def test_work_order_events_reach_the_seat_of_their_call_only() -> None:
    hub = LiveHub()
    lawyer = hub.connect(Principal("lawyer1", Role.SEAT_LAWYER, seat_id="s101"))
    call_flow(hub, "c1", "s101")
    drain(lawyer)
    hub.ingest(ev("c1", 7, "workorder.created", order_id="o1", number="GD20261121-0001"))
    hub.ingest(ev("workorder:o2", 1, "workorder.created", order_id="o2", number="GD20261121-0002"))
    assert [m["event"]["data"]["number"] for m in drain(lawyer)] == ["GD20261121-0001"]
    assert "workorder:o2" not in hub.calls


def test_emergency_suspected_reaches_the_seat_of_the_call_and_supervisors_only() -> None:
    hub = LiveHub()
    mine = hub.connect(Principal("lawyer1", Role.SEAT_LAWYER, seat_id="s101"))
    other = hub.connect(Principal("lawyer2", Role.SEAT_LAWYER, seat_id="s102"))
    boss = hub.connect(Principal("super", Role.SUPERVISOR))
    call_flow(hub, "c1", "s101")
    call_flow(hub, "c2", "s102", caller="13911112222")
    for client in (mine, other, boss):
        drain(client)
    said = f"救 命 啊 他 拿 刀 我 电话 {CLEAR}"
    hub.ingest(ev("c1", 7, "emergency.suspected", words=["救命", "拿刀"], speaker="caller",
                  source="segment", partner="110", text=said))  # fmt: skip

    (got,) = drain(mine)
    assert got["event"]["type"] == "emergency.suspected"
    assert got["event"]["data"]["words"] == ["救命", "拿刀"]
    assert got["call"]["emergency"]["partner"] == "110"
    assert got["call"]["emergency"]["words"] == ["救命", "拿刀"]
    assert CLEAR not in json.dumps(got, ensure_ascii=False)  # the text is masked too
    assert drain(other) == []
    (seen,) = drain(boss)
    assert seen["call"]["call_id"] == "c1" and seen["call"]["emergency"]["words"]
    # A reloaded desk (and the wallboard) get the mark from the snapshot.
    snap = hub.snapshot(Principal("lawyer1", Role.SEAT_LAWYER, seat_id="s101"))
    assert [c["emergency"]["words"] for c in snap["calls"]] == [["救命", "拿刀"]]
    snap = hub.snapshot(Principal("lawyer2", Role.SEAT_LAWYER, seat_id="s102"))
    assert [c["emergency"] for c in snap["calls"]] == [None]
