"""The work-order HTTP API with each role: what each may see and do, 403 and 409, the history and
the party archive, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from workorders_helpers import Api, Env, key_of, users_by_header

from hotline.web import Principal, Role, new_app
from workorders import http as workorders_http

NUMBER = "13800138000"
USERS = {
    "law1": Principal("law1", Role.SEAT_LAWYER, seat_id="s1"),
    "law2": Principal("law2", Role.SEAT_LAWYER, seat_id="s2"),
    "sup": Principal("sup", Role.SUPERVISOR),
    "admin": Principal("admin", Role.ADMINISTRATOR),
    "aud": Principal("aud", Role.AUDITOR),
}


@pytest.fixture
async def api(env: Env) -> AsyncIterator[Api]:
    app = new_app(object(), [users_by_header(USERS)])
    workorders_http.setup(app, env.service)
    async with TestClient(TestServer(app)) as client:
        yield Api(client)


async def _order_for(env: Env, call_id: str, seat: str | None = "s1", number: str = NUMBER) -> str:
    env.call(call_id, number, topic="劳动争议", seat=seat)
    return (await env.next_event("workorder.create")).data["order_id"]


async def test_seat_lawyers_see_and_change_only_their_own_orders(env: Env, api: Api) -> None:
    mine = await _order_for(env, "c1", seat="s1")
    theirs = await _order_for(env, "c2", seat="s2")

    listed = await api.call("GET", "/api/workorders", "law1")
    assert [o["id"] for o in listed["items"]] == [mine]
    order = listed["items"][0]
    assert order["number"] == "GD20261121-0001" and order["caller"] == "138****8000"
    assert set(order) >= {
        "id", "number", "call_id", "state", "topic", "ivr_topic", "confidence", "summary",
        "transcript", "fields", "caller", "caller_key", "seat_id", "created_at", "due_at",
        "warning",
    }  # fmt: skip
    await api.call("GET", "/api/workorders?seat=s2", "law1", status=403)
    await api.call("GET", f"/api/workorders/{theirs}", "law1", status=403)
    await api.act(theirs, "submit", "law1", status=403)
    await api.call("PATCH", f"/api/workorders/{theirs}", "law1", {"summary": "x"}, status=403)

    detail = await api.call("GET", f"/api/workorders/{mine}", "law1")
    assert detail["allowed_actions"] == ["submit", "note", "edit"]
    assert [h["type"] for h in detail["history"]] == ["workorder.create"]
    patched = await api.call(
        "PATCH",
        f"/api/workorders/{mine}",
        "law1",
        {
            "topic": "借贷债务",
            "summary": "借款 不还，对方电话 13912345678",
            "fields": {"对方": "张三"},
        },
    )
    assert patched["topic"] == "借贷债务" and "139****5678" in patched["summary"]
    assert patched["fields"]["对方"] == "张三"
    await api.call("PATCH", f"/api/workorders/{mine}", "law1", {"topic": "火星"}, status=400)
    await api.call("PATCH", f"/api/workorders/{mine}", "law1", {"state": "closed"}, status=400)
    submitted = await api.act(mine, "submit", "law1")
    assert submitted["state"] == "submitted"
    await api.act(mine, "submit", "law1", status=409)  # twice: not in this state
    await api.act(mine, "review", "law1", status=403)  # never a seat lawyer's action
    # Direct resolution (直接办结) is the seat's; closing is the supervisor's.
    assert (await api.act(mine, "resolve", "law1", note="已当场答复"))["state"] == "resolved"
    await api.act(mine, "close", "law1", status=403)


async def test_the_whole_lifecycle_through_the_api(env: Env, api: Api) -> None:
    order_id = await _order_for(env, "c1")
    await api.act(order_id, "close", "sup", status=409)  # a draft cannot be closed
    await api.act(order_id, "dispatch", "sup", status=409)
    await api.act(order_id, "submit", "law1")
    await api.act(order_id, "dispatch", "sup", status=400)  # no target
    dispatched = await api.act(
        order_id,
        "dispatch",
        "sup",
        target={"kind": "agency", "unit_id": "la-center", "name": "市法律援助中心"},
        note="符合援助条件",
    )
    assert dispatched["state"] == "dispatched"
    assert dispatched["dispatched_to"] == {
        "kind": "agency", "unit_id": "la-center", "name": "市法律援助中心",
    }  # fmt: skip
    assert "claim" in dispatched["allowed_actions"]
    await api.act(order_id, "dispatch", "law1", status=403)  # re-dispatch (改派) is not the seat's
    assert (await api.act(order_id, "claim", "sup"))["state"] == "claimed"
    assert (await api.act(order_id, "start", "sup", note="已回电"))["state"] == "in_progress"
    await api.act(order_id, "resolve", "law1", status=403)  # the handler resolves now
    assert (await api.act(order_id, "resolve", "sup"))["state"] == "resolved"
    assert (await api.act(order_id, "review", "sup"))["state"] == "reviewed"
    closed = await api.act(order_id, "close", "admin")
    assert closed["state"] == "closed" and closed["closed_at"]
    reopened = await api.act(order_id, "reopen", "sup", note="当事人不满意")
    assert reopened["state"] == "reopened" and reopened["reopen_count"] == 1
    await api.act(order_id, "fly", "sup", status=404)
    await api.act(order_id, "close", "aud", status=403)  # auditors only read
    seen = await api.call("GET", f"/api/workorders/{order_id}", "aud")
    assert seen["allowed_actions"] == []

    history = seen["history"]
    assert [h["type"].split(".")[1] for h in history] == [
        "create", "submit", "dispatch", "claim", "callback", "resolve", "review", "close",
        "reopen",
    ]  # fmt: skip
    assert [h["actor"] for h in history[1:]] == [
        "law1", "sup", "sup", "sup", "sup", "sup", "admin", "sup",
    ]  # fmt: skip
    assert all(h["at"] and h["data"]["at"] for h in history)
    assert history[-1]["data"]["reason"] == "当事人不满意"
    # The same changes are in the call-event log, on the order's call.
    await env.log.flush()
    from hotline.events import events_for_call

    logged = [
        e.type for e in events_for_call(env.db.engine, "c1") if e.type.startswith("workorder")
    ]
    assert logged == [h["type"] for h in history]
    # The list filters by state; the auditor sees everything.
    listed = await api.call("GET", "/api/workorders?state=reopened,closed", "aud")
    assert [o["id"] for o in listed["items"]] == [order_id]
    await api.call("GET", "/api/workorders?state=weird", "aud", status=400)


async def test_unauthenticated_and_unknown(env: Env, api: Api) -> None:
    order_id = await _order_for(env, "c1")
    await api.call("GET", "/api/workorders", "", status=401)
    await api.call("GET", "/api/workorders/nope", "sup", status=404)
    by_number = await api.call("GET", "/api/workorders/GD20261121-0001", "sup")
    assert by_number["id"] == order_id
    body = {"call_id": "c1", "topic": "公证", "summary": "遗嘱公证"}
    created = await api.call("POST", "/api/workorders", "law1", body, status=201)
    assert created["source"] == "manual" and created["number"] == "GD20261121-0002"
    assert created["seat_id"] == "s1" and created["caller"] == "138****8000"
    await api.call("POST", "/api/workorders", "aud", {}, status=403)


async def test_party_archive_api(env: Env, api: Api) -> None:
    await _order_for(env, "c1")
    env.log.append("c1", "survey.answered", {"rating": "satisfied"})
    await _order_for(env, "c2", seat="s2")
    await env.log.flush()
    archive = await api.call("GET", f"/api/parties/{key_of(NUMBER)}/archive", "law1")
    assert [c["call_id"] for c in archive["calls"]] == ["c2", "c1"]
    assert archive["calls"][1]["satisfaction"] == "satisfied"
    assert len(archive["orders"]) == 2 and archive["satisfaction"]["satisfied"] == 1
    assert set(archive["orders"][0]) >= {"id", "number", "topic", "state", "summary", "created_at"}
    await api.call("GET", "/api/parties/not-a-key!/archive", "sup", status=400)
    await api.call("GET", f"/api/parties/{key_of(NUMBER)}/archive", "", status=401)
