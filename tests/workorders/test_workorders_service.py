"""The work-order service on a real database (SQLite and PostgreSQL): drafts made from the event
stream on the bus, the transcript filling them in, the number at rest, SLA warnings, the IVR
progress query and the party archive."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from workorders_helpers import Env, key_of, segment_rows

from hotline.events import events_for_call
from hotline.web import Principal, Role
from recordings.models import TranscriptSegmentRow
from workorders.archive import party_archive
from workorders.models import WorkOrderHistoryRow, WorkOrderRow
from workorders.protect import load_sealer
from workorders.service import Conflict

NUMBER = "13800138000"
SUPERVISOR = Principal("sup1", Role.SUPERVISOR, seat_id=None)


async def test_a_connected_call_becomes_a_draft_then_the_transcript_fills_it(env: Env) -> None:
    env.call("c1", NUMBER, topic="劳动争议", seat="s1")
    created = await env.next_event("workorder.create")
    assert created.call_id == "c1"
    data = created.data
    assert data["source"] == "call" and data["seat_id"] == "s1" and data["actor"] == "system"
    assert data["number"] == "GD20261121-0001"  # Shanghai date of creation, first of the day
    assert data["at"] == env.clock.now.isoformat()

    [order] = await env.service.list_orders(SUPERVISOR, call_id="c1")
    assert order["state"] == "draft" and order["seat_id"] == "s1"
    assert order["ivr_topic"] == "劳动争议" and order["topic"] == "劳动争议"
    assert order["caller"] == "138****8000" and order["caller_key"] == key_of(NUMBER)
    assert (
        order["transcript"] == []
        and order["due_at"] == (env.clock.now + timedelta(hours=48)).isoformat()
    )

    # The call ends; the live transcript says it is about a divorce, not wages.
    texts = [
        ("caller", "你好 我想 问一下 离婚 的 事情"),
        ("seat", "您请说"),
        ("caller", "我 老公 家暴 我 想 离婚 孩子 抚养权 怎么 办 我 电话 13912345678"),
        ("caller", "去年 借给 他 三万五千元 也 没 还"),
    ]
    with env.db.engine.begin() as conn:
        conn.execute(sa.insert(TranscriptSegmentRow), segment_rows("c1", texts, env.clock.now))
    env.log.append(
        "c1", "transcript.completed", {"speaker": "caller", "source": "live", "segments": 3}
    )
    updated = await env.next_event("workorder.updated")
    assert updated.data["topic"] == "婚姻家庭" and updated.data["previous_topic"] == "劳动争议"

    order = await env.service.get(order["id"], SUPERVISOR)
    assert order["topic"] == "婚姻家庭" and 0 < order["confidence"] <= 1
    assert "离婚" in order["evidence"]
    assert "离婚" in order["summary"] and "13912345678" not in order["summary"]
    assert order["fields"]["phones"] == ["139****5678"]
    assert order["fields"]["amounts"][0]["value"] == "35000"
    assert [s["speaker"] for s in order["transcript"]] == ["caller", "seat", "caller", "caller"]
    assert "139****5678" in order["transcript"][2]["text"]
    # Due time follows the topic (婚姻家庭: 72 h from creation).
    assert order["due_at"] == (env.clock.now + timedelta(hours=72)).isoformat()
    assert [h["type"] for h in order["history"]] == ["workorder.create", "workorder.updated"]


async def test_the_number_is_sealed_at_rest_and_never_in_the_log(env: Env) -> None:
    env.call("c1", NUMBER, topic="劳动争议", seat="s1")
    await env.next_event("workorder.create")
    await env.log.flush()
    with env.db.engine.connect() as conn:
        row = conn.execute(sa.select(WorkOrderRow)).one()
        dump = json.dumps(
            [list(map(str, r)) for r in conn.execute(sa.text("SELECT * FROM workorders"))]
        )
        events = json.dumps(
            [list(map(str, r)) for r in conn.execute(sa.text("SELECT * FROM call_events"))]
        )
        history = json.dumps([str(r) for r in conn.execute(sa.select(WorkOrderHistoryRow))])
    for stored in (dump, events, history):
        assert NUMBER not in stored and "00138000" not in stored
    assert row.caller_enc.startswith("v1:") and row.caller_masked == "138****8000"
    sealer = load_sealer(env.runtime)
    assert sealer.open(row.caller_enc, row.id) == NUMBER
    # The key went into the runtime secrets (0600), next to whatever else is there.
    secrets = env.runtime / "secrets.yaml"
    assert secrets.stat().st_mode & 0o777 == 0o600
    assert "workorder_keys" in secrets.read_text()


async def test_messages_callbacks_and_partner_orders_become_drafts_once(env: Env) -> None:
    env.call("m1", "13700001111", topic="婚姻家庭")
    env.log.append("m1", "message.recorded", {"recording": "rec-m1", "duration_s": 12.5})
    message = await env.next_event("workorder.create")
    env.call("b1", "13700002222")
    env.log.append("b1", "callback.booked", {"topic": "lawyer_consultation", "caller_key": "k"})
    callback = await env.next_event("workorder.create")
    env.log.append(
        "integration:pwo_1",
        "integration.workorder_received",
        {"order_id": "pwo_1", "partner": "110", "case_id": "JJ-7",
         "title": "邻居 噪音 纠纷 需要 调解", "urgency": "normal", "call_id": None},
    )  # fmt: skip
    partner = await env.next_event("workorder.create")

    assert (message.data["source"], message.data["ivr_topic"]) == ("voice_message", "婚姻家庭")
    assert callback.data["source"] == "callback_request"
    assert callback.data["caller_key"] == key_of("13700002222")
    assert partner.data["source"] == "integration" and partner.call_id.startswith("workorder:")
    assert partner.data["topic"] == "人民调解"
    numbers = [e.data["number"] for e in (message, callback, partner)]
    assert numbers == ["GD20261121-0001", "GD20261121-0002", "GD20261121-0003"]

    # Replays (a bus event seen twice, a restart sweep) make nothing new.
    await env.service.create_for_call("m1", "voice_message")
    await env.service.create_for_partner({"order_id": "pwo_1", "title": "x"})
    orders = await env.service.list_orders(SUPERVISOR)
    assert len(orders) == 3
    by_source = {o["source"]: o for o in orders}
    assert by_source["integration"]["fields"]["case_id"] == "JJ-7"
    assert by_source["voice_message"]["caller"] == "137****1111"


async def test_transcript_segments_written_late_are_waited_for(env: Env) -> None:
    env.call("c2", NUMBER, topic="其他", seat="s1")
    await env.next_event("workorder.create")
    texts = [("caller", "老板 拖欠 工资 三个月 了"), ("caller", "要 申请 劳动仲裁 吗")]
    rows = segment_rows("c2", texts, env.clock.now)
    with env.db.engine.begin() as conn:
        conn.execute(sa.insert(TranscriptSegmentRow), rows[:1])
    env.log.append(
        "c2", "transcript.completed", {"speaker": "caller", "source": "live", "segments": 2}
    )
    await asyncio.sleep(0.1)  # the service is waiting for the second segment now
    with env.db.engine.begin() as conn:
        conn.execute(sa.insert(TranscriptSegmentRow), rows[1:])
    updated = await env.next_event("workorder.updated")
    assert updated.data["segments"] == 2 and updated.data["topic"] == "劳动争议"


async def test_a_seat_edit_is_not_overwritten_by_the_transcript(env: Env) -> None:
    env.call("c3", NUMBER, topic="劳动争议", seat="s1")
    created = await env.next_event("workorder.create")
    seat = Principal("law1", Role.SEAT_LAWYER, seat_id="s1")
    await env.service.edit(
        created.data["order_id"], seat, {"topic": "合同纠纷", "summary": "装修 合同"}
    )
    with env.db.engine.begin() as conn:
        conn.execute(
            sa.insert(TranscriptSegmentRow),
            segment_rows("c3", [("caller", "我 老公 要 离婚")], env.clock.now),
        )
    env.log.append(
        "c3", "transcript.completed", {"speaker": "caller", "source": "live", "segments": 1}
    )
    updated = await env.next_event("workorder.updated")
    assert updated.data["suggested_topic"] == "婚姻家庭" and updated.data["topic"] == "合同纠纷"
    order = await env.service.get(created.data["order_id"], seat)
    assert order["topic"] == "合同纠纷" and order["summary"] == "装修 合同"


async def test_sla_warnings_are_raised_once_per_level(env: Env) -> None:
    env.call("c4", NUMBER, topic="法律援助申请", seat="s1")  # 法律援助: 24 h
    created = await env.next_event("workorder.create")
    assert created.data["topic"] == "法律援助"
    assert await env.service.check_sla() == []
    env.clock.advance(timedelta(hours=20))  # 4 h of 24 left: under 20 %
    [near] = await env.service.check_sla()
    assert near.level == "near_due"
    assert await env.service.check_sla() == []  # not again
    event = await env.next_event("workorder.warning")
    assert event.call_id == "c4" and event.data["level"] == "near_due"
    assert event.data["actor"] == "system" and event.data["at"] == env.clock.now.isoformat()
    env.clock.advance(timedelta(hours=5))
    [over] = await env.service.check_sla()
    assert over.level == "overdue" and over.remaining < timedelta(0)
    assert (await env.next_event("workorder.warning")).data["level"] == "overdue"
    [order] = await env.service.list_orders(SUPERVISOR)
    assert order["warning"] == "overdue" and order["warning_label"] == "已超期"
    # A resolved order warns no more.
    await env.service.act(order["id"], "submit", SUPERVISOR)
    await env.service.act(order["id"], "resolve", SUPERVISOR, note="已答复")
    env.clock.advance(timedelta(days=3))
    assert await env.service.check_sla() == []


async def test_progress_query_by_the_number_the_caller_types(env: Env) -> None:
    env.call("c5", NUMBER, topic="劳动争议", seat="s1")
    created = await env.next_event("workorder.create")
    order_id, number = created.data["order_id"], created.data["number"]
    assert number == "GD20261121-0001"

    state, prompts = await env.service.status_for_number("202611210001", call_id="q1")
    assert (state, prompts) == ("draft", ("workorder_status_draft",))
    await env.service.act(order_id, "submit", SUPERVISOR)
    await env.service.act(
        order_id,
        "dispatch",
        SUPERVISOR,
        target={"kind": "agency", "unit_id": "la-1", "name": "法律援助中心"},
    )
    assert await env.service.status_for_number("2026112100001") == (
        "dispatched",
        ("workorder_status_dispatched",),
    )
    assert await env.service.status_for_number("202611210002") == (None, ("workorder_not_found",))
    assert await env.service.status_for_number("123") == (None, ("workorder_not_found",))
    queried = await env.next_event("workorder.status_queried")
    assert queried.call_id == "q1" and queried.data["found"] and queried.data["state"] == "draft"


async def test_party_archive_of_a_repeat_caller(env: Env) -> None:
    env.call("a1", NUMBER, topic="劳动争议", seat="s1")
    env.log.append("a1", "survey.answered", {"rating": "dissatisfied"})
    env.log.append("a1", "call.ended", {"hangup_by": "caller"})
    first = await env.next_event("workorder.create")
    env.clock.advance(timedelta(days=2))
    env.call("a2", NUMBER, topic="婚姻家庭")
    env.log.append("a2", "message.recorded", {"recording": "r", "duration_s": 5})
    await env.next_event("workorder.create")
    env.call("x1", "13911112222", topic="劳动争议", seat="s2")  # someone else
    await env.next_event("workorder.create")
    await env.log.flush()

    archive = party_archive(env.db.engine, key_of(NUMBER))
    assert archive["repeat"] is True
    assert [c["call_id"] for c in archive["calls"]] == ["a2", "a1"]  # newest first
    a2, a1 = archive["calls"]
    assert (a1["outcome"], a1["queue"], a1["seat_id"], a1["satisfaction"]) == (
        "answered", "consult_labor", "s1", "dissatisfied",
    )  # fmt: skip
    assert (a2["outcome"], a2["topic"]) == ("message", "婚姻家庭")
    assert [o["number"] for o in archive["orders"]] == ["GD20261123-0001", first.data["number"]]
    assert archive["satisfaction"]["dissatisfied"] == 1 and archive["satisfaction"]["rated"] == 1
    assert archive["satisfaction"]["last"] == "dissatisfied"
    assert NUMBER not in json.dumps(archive)
    assert party_archive(env.db.engine, key_of("13500000000"))["calls"] == []


async def test_every_change_is_in_the_log_with_who_and_when(env: Env) -> None:
    env.call("c6", NUMBER, topic="劳动争议", seat="s1")
    created = await env.next_event("workorder.create")
    order_id = created.data["order_id"]
    seat = Principal("law1", Role.SEAT_LAWYER, seat_id="s1")
    await env.service.act(order_id, "submit", seat)
    env.clock.advance(timedelta(minutes=5))
    await env.service.act(order_id, "dispatch", SUPERVISOR, target="区司法局")
    await env.service.act(order_id, "claim", SUPERVISOR)  # as the handler of that unit
    await env.service.act(order_id, "start", SUPERVISOR, note="已回电")
    await env.log.flush()
    logged = [e for e in events_for_call(env.db.engine, "c6") if e.type.startswith("workorder.")]
    assert [e.type for e in logged] == [
        "workorder.create", "workorder.submit", "workorder.dispatch", "workorder.claim",
        "workorder.callback",
    ]  # fmt: skip
    for event in logged[1:]:
        assert event.data["order_id"] == order_id and event.data["actor"] in ("law1", "sup1")
        assert event.data["at"] and event.data["from"] and event.data["to"]
    assert logged[1].data["role"] == "seat_lawyer"
    assert logged[2].data["at"] == env.clock.now.isoformat()
    assert logged[3].data["role"] == "handler" and logged[3].data["principal_role"] == "supervisor"
    assert logged[4].data["note"] == "已回电"


async def test_callback_request_rings_through_the_dialer_and_logs_the_outcome(env: Env) -> None:
    env.call("c7", NUMBER, topic="劳动争议", seat="s1")
    order_id = (await env.next_event("workorder.create")).data["order_id"]
    dialled: asyncio.Queue = asyncio.Queue()

    async def dialer(order: dict, seat_id: str | None, number: str) -> None:
        await dialled.put((order["id"], seat_id, number))

    env.service.callback_dialer = dialer
    handler = Principal("sup1", Role.SUPERVISOR, seat_id="s9")
    await env.service.act(order_id, "submit", SUPERVISOR)
    await env.service.act(order_id, "dispatch", SUPERVISOR, target="区法律援助中心")
    with pytest.raises(Conflict):  # before the claim
        await env.service.act(order_id, "callback", handler)
    order = await env.service.act(order_id, "claim", handler)
    assert "callback" in order["allowed_actions"]
    await env.service.act(order_id, "callback", handler)
    async with asyncio.timeout(5):
        assert await dialled.get() == (order_id, "s9", NUMBER)  # the clear number, in memory
    requested = await env.next_event("workorder.callback_requested")
    assert requested.data["seat_id"] == "s9" and NUMBER not in json.dumps(requested.data)
    order = await env.service.callback_outcome(order_id, "answered")
    assert order["state"] == "in_progress" and order["callbacks"] == 1
    outcome = await env.next_event("workorder.callback_outcome")
    assert outcome.data["outcome"] == "answered"
