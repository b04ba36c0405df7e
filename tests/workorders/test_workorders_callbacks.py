"""The callback list (回拨列表): callback requests and voice messages assigned by a supervisor or
claimed from a seat's pool, called back from the seat, outcomes, SLA warnings and the history;
through the service and the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from workorders_helpers import Api, Env, users_by_header

from acd.seats import add_seat
from hotline.web import Principal, Role, new_app
from recordings.models import RecordingRow
from workorders import http as workorders_http
from workorders.lifecycle import SlaPolicy
from workorders.service import Conflict, WorkOrderService

NUMBER = "13700002222"
USERS = {
    "law1": Principal("law1", Role.SEAT_LAWYER, seat_id="s1"),  # labor
    "law2": Principal("law2", Role.SEAT_LAWYER, seat_id="s2"),  # labor
    "law3": Principal("law3", Role.SEAT_LAWYER, seat_id="s3"),  # family
    "sup": Principal("sup", Role.SUPERVISOR),
    "admin": Principal("admin", Role.ADMINISTRATOR),
    "aud": Principal("aud", Role.AUDITOR),
}


class CallbackApi(Api):
    async def callbacks(self, user: str, scope: str = "", status: int = 200) -> Any:
        query = f"?scope={scope}" if scope else ""
        return await self.call("GET", f"/api/workorders/callbacks{query}", user, status=status)


@pytest.fixture
async def api(env: Env) -> AsyncIterator[CallbackApi]:
    for seat, skills in (("s1", {"labor": 3}), ("s2", {"labor": 1}), ("s3", {"family": 2})):
        add_seat(env.db.engine, seat, skills=skills)
    app = new_app(object(), [users_by_header(USERS)])
    workorders_http.setup(app, env.service)
    async with TestClient(TestServer(app)) as client:
        yield CallbackApi(client)


async def _booked(env: Env, call_id: str, topic: str = "劳动争议", number: str = NUMBER) -> str:
    """A caller who chose ``topic`` found the queue closed and booked a callback."""
    env.call(call_id, number, topic=topic)
    env.log.append(call_id, "callback.booked", {"topic": topic, "caller_key": "k"})
    event = await env.next_event("workorder.create")
    assert event.data["source"] == "callback_request" and event.data["seat_id"] is None
    return str(event.data["order_id"])


async def test_supervisor_assigns_and_only_that_seat_sees_and_calls_back(
    env: Env, api: CallbackApi
) -> None:
    order_id = await _booked(env, "b1")
    # Nobody's order yet: invisible to seat lawyers except through their pool.
    assert (await api.callbacks("law1"))["items"] == []
    listed = (await api.callbacks("sup"))["items"]
    assert [i["id"] for i in listed] == [order_id]
    item = listed[0]
    assert item["caller"] == "137****2222" and NUMBER not in json.dumps(listed)
    assert item["source"] == "callback_request" and item["topic"] == "劳动争议"
    assert item["booked_at"] == env.clock.now.isoformat()
    # Due by the callback time (24 h by default, the topic's 48 h are for resolving it).
    assert item["due_at"] == (env.clock.now + timedelta(hours=24)).isoformat()
    assert item["allowed_actions"] == ["submit", "note", "assign", "edit"]

    # Who may assign: not a seat lawyer for another seat, not an auditor; a real seat only.
    await api.act(order_id, "assign", "law1", seat_id="s2", status=403)
    await api.act(order_id, "assign", "aud", seat_id="s1", status=403)
    await api.act(order_id, "assign", "sup", seat_id="nosuch", status=400)
    await api.act(order_id, "assign", "sup", status=400)
    await api.callbacks("law1", "open", status=403)

    order = await api.act(order_id, "assign", "sup", seat_id="s1", note="请今天回拨")
    assert order["state"] == "claimed" and order["seat_id"] == "s1"
    assert order["history"][-1]["type"] == "workorder.assign"
    assert order["history"][-1]["data"]["kind"] == "assign"
    assert order["history"][-1]["actor"] == "sup"
    event = await env.next_event("workorder.assign")
    assert event.call_id == "b1" and event.data["seat_id"] == "s1"
    assert event.data["previous_seat_id"] is None and event.data["note"] == "请今天回拨"

    mine = (await api.callbacks("law1"))["items"]
    assert [i["id"] for i in mine] == [order_id]
    assert mine[0]["allowed_actions"] == ["start", "note", "callback"]
    assert (await api.callbacks("law2"))["items"] == []
    await api.call("GET", f"/api/workorders/{order_id}", "law2", status=403)
    await api.act(order_id, "callback", "law2", status=403)
    # Held now: another lawyer cannot take it, a seat lawyer cannot re-assign.
    await api.act(order_id, "assign", "law2", status=409)
    await api.act(order_id, "assign", "law1", status=409)

    # 回拨: the dialer rings s1 with the clear number; no answer, then a retry that is answered.
    dialled: asyncio.Queue = asyncio.Queue()

    async def dialer(view: dict, seat_id: str | None, number: str) -> None:
        await dialled.put((view["id"], seat_id, number))

    env.service.callback_dialer = dialer
    await api.act(order_id, "callback", "law1", seat_id="s2", status=403)  # not their phone
    await api.act(order_id, "callback", "law1")
    async with asyncio.timeout(5):
        assert await dialled.get() == (order_id, "s1", NUMBER)
    assert (await api.callbacks("law1"))["items"][0]["last_outcome"]["outcome"] == "dialing"
    await env.service.callback_outcome(order_id, "no_answer")
    item = (await api.callbacks("law1"))["items"][0]
    assert item["last_outcome"]["outcome"] == "no_answer"
    assert item["last_outcome"]["label"] == "无人接听"
    assert item["state"] == "claimed" and "callback" in item["allowed_actions"]

    env.clock.advance(timedelta(minutes=30))
    await api.act(order_id, "callback", "law1")
    async with asyncio.timeout(5):
        await dialled.get()
    order = await env.service.callback_outcome(order_id, "answered")
    assert order["state"] == "in_progress" and order["callbacks"] == 1
    # Reached: the topic's resolution window (劳动争议 48 h from booking) applies now.
    item = (await api.callbacks("law1"))["items"][0]
    assert item["last_outcome"]["label"] == "已接通"
    assert (
        item["due_at"] == (env.clock.now - timedelta(minutes=30) + timedelta(hours=48)).isoformat()
    )
    assert item["allowed_actions"] == ["start", "resolve", "note", "callback"]
    await api.act(order_id, "resolve", "law2", status=403)
    done = await api.act(order_id, "resolve", "law1", note="已回电解答")
    assert done["state"] == "resolved"
    assert (await api.callbacks("law1"))["items"] == []

    types = [h["type"] for h in done["history"]]
    assert types == [
        "workorder.create",
        "workorder.assign",
        "workorder.callback_requested",
        "workorder.callback_outcome",
        "workorder.callback_requested",
        "workorder.callback_outcome",
        "workorder.callback",
        "workorder.resolve",
    ]
    assert NUMBER not in json.dumps(done)


async def test_seat_lawyer_claims_from_the_pool_of_their_skills(env: Env, api: CallbackApi) -> None:
    labor = await _booked(env, "b1", "劳动争议", "13700000001")
    family = await _booked(env, "b2", "婚姻家庭", "13700000002")
    assert [i["id"] for i in (await api.callbacks("law1", "pool"))["items"]] == [labor]
    assert [i["id"] for i in (await api.callbacks("law3", "pool"))["items"]] == [family]
    pool_item = (await api.callbacks("law1", "pool"))["items"][0]
    assert pool_item["allowed_actions"] == ["assign"]
    # A pool order is readable before the claim, but nothing else may be done with it.
    assert (await api.call("GET", f"/api/workorders/{labor}", "law1"))["allowed_actions"] == [
        "assign"
    ]
    await api.act(labor, "submit", "law1", status=403)
    await api.call("GET", f"/api/workorders/{family}", "law1", status=403)
    await api.act(family, "assign", "law1", status=403)  # 婚姻家庭 is not a labor seat's

    order = await api.act(labor, "assign", "law1")
    assert order["state"] == "claimed" and order["seat_id"] == "s1"
    assert order["claimed_by"] == "law1"
    assert order["history"][-1]["data"]["kind"] == "claim"
    assert (await api.callbacks("law1", "pool"))["items"] == []
    assert [i["id"] for i in (await api.callbacks("law1"))["items"]] == [labor]
    # The supervisor may re-assign (改派) a held one; the list follows.
    moved = await api.act(labor, "assign", "sup", seat_id="s2")
    assert moved["seat_id"] == "s2" and moved["history"][-1]["data"]["previous_seat_id"] == "s1"
    assert (await api.callbacks("law1"))["items"] == []
    assert [i["id"] for i in (await api.callbacks("law2"))["items"]] == [labor]


async def test_orders_of_calls_are_not_assignable_and_agency_orders_stay_with_the_handler(
    env: Env, api: CallbackApi
) -> None:
    env.call("c1", NUMBER, topic="劳动争议", seat="s1")
    order_id = (await env.next_event("workorder.create")).data["order_id"]
    await api.act(order_id, "assign", "sup", seat_id="s2", status=409)
    await api.act(order_id, "submit", "law1")
    await api.act(order_id, "dispatch", "law1", target="区法律援助中心")
    await api.act(order_id, "claim", "sup")  # the handler's claim (supervisor acts for it)
    # The seat whose call made it may not call back or resolve the agency's order.
    detail = await api.call("GET", f"/api/workorders/{order_id}", "law1")
    assert "callback" not in detail["allowed_actions"]
    await api.act(order_id, "callback", "law1", status=403)


async def test_two_lawyers_claiming_at_once_exactly_one_wins(env: Env) -> None:
    add_seat(env.db.engine, "s1", skills={"labor": 1})
    add_seat(env.db.engine, "s2", skills={"labor": 1})
    # A second service on the same database: its own lock, as another process would have.
    other = WorkOrderService(
        env.db.engine, env.log, None, env.runtime, clock=env.clock, check_interval=0
    )
    law1, law2 = USERS["law1"], USERS["law2"]
    for round_ in range(5):
        order_id = await _booked(env, f"race{round_}", number=f"1370000100{round_}")
        results = await asyncio.gather(
            env.service.assign(order_id, law1),
            other.assign(order_id, law2),
            return_exceptions=True,
        )
        wins = [r for r in results if isinstance(r, dict)]
        losses = [r for r in results if isinstance(r, Exception)]
        assert len(wins) == 1 and len(losses) == 1, results
        assert isinstance(losses[0], Conflict) and losses[0].code == "already_assigned"
        order = await env.service.get(order_id, USERS["sup"])
        assigns = [h for h in order["history"] if h["type"] == "workorder.assign"]
        assert len(assigns) == 1 and assigns[0]["data"]["seat_id"] == wins[0]["seat_id"]


async def test_a_callback_not_made_in_time_is_warned(env: Env, api: CallbackApi) -> None:
    order_id = await _booked(env, "b1")
    env.clock.advance(timedelta(hours=19))
    assert await env.service.check_sla() == []
    env.clock.advance(timedelta(hours=1))  # 4 h of 24 left: less than a fifth
    [near] = await env.service.check_sla()
    assert (near.order_id, near.level) == (order_id, "near_due")
    env.clock.advance(timedelta(hours=4, seconds=1))
    [over] = await env.service.check_sla()
    assert over.level == "overdue"
    event = await env.next_event("workorder.warning")
    while event.data["level"] != "overdue":
        event = await env.next_event("workorder.warning")
    assert event.data["order_id"] == order_id and event.call_id == "b1"
    item = (await api.callbacks("sup"))["items"][0]
    assert item["warning"] == "overdue" and item["warning_label"] == "已超期"
    assert await env.service.check_sla() == []  # once per level


async def test_configured_callback_time_and_voice_message_audio_link(
    env: Env, api: CallbackApi
) -> None:
    env.service.sla = SlaPolicy(callback_within=timedelta(hours=2))
    env.call("m1", NUMBER, topic="婚姻家庭")
    env.log.append("m1", "message.recorded", {"recording": "rec-m1", "duration_s": 9.0})
    created = await env.next_event("workorder.create")
    assert created.data["due_at"] == (env.clock.now + timedelta(hours=2)).isoformat()
    recording_id = str(uuid.uuid4())
    with env.db.engine.begin() as conn:
        conn.execute(
            RecordingRow.__table__.insert().values(
                id=recording_id, call_id="m1", kind="message", key_id="k1",
                sha256_plain="0" * 64, sha256_cipher="0" * 64, size=10, duration_s=9.0,
                path="x.enc", created_at=env.clock.now, hold=False,
            )
        )  # fmt: skip
    [item] = (await api.callbacks("sup"))["items"]
    assert item["source"] == "voice_message" and item["source_label"] == "留言"
    assert item["recording_id"] == recording_id
    assert item["audio_url"] == f"/api/recordings/{recording_id}/audio"
    env.clock.advance(timedelta(hours=2, seconds=1))
    [over] = await env.service.check_sla()
    assert over.level == "overdue"
