"""110 / 12345 linkage on real calls: partner trunks in and out, with pjsua2 phones as partners.

The module runs its own Asterisk and service with a partners file naming two digest trunks:
on loopback every phone shares the carrier's address (127.0.0.1), so a partner is told apart
by its digest user (``trunk110``, ``trunk12345``: the From user, then the challenge), which is
also how a real partner behind a shared address would be configured. Each partner phone
registers with that user and the generated password, calls in with the context headers, and
receives our transfers at its ``transfer_uri`` (its own SIP port).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import yaml

from hotline.privacy import mask_number
from hotline.testing import (
    AsteriskInstance,
    ServiceProcess,
    free_port,
    launch_service,
    running_test_asterisk,
)
from integrations import trunks
from integrations.config import load_config
from sim.phone import Phone

from .test_acd_transfer import add_seat, answered, logged, transfer, uri_for
from .test_first_call import new_caller

pytestmark = pytest.mark.e2e

CASE_12345 = "ZW-2026-1121-0042"
SUMMARY_12345 = "来电人反映公司拖欠三个月工资，需法律咨询"
CASE_110 = "110-2026-0099"


@dataclass
class PartnerEnv:
    instance: AsteriskInstance
    service: ServiceProcess
    ports: dict[str, int]
    passwords: dict[str, str]


@pytest.fixture(scope="module")
def partner_env(tmp_path_factory: pytest.TempPathFactory):
    runtime_dir = tmp_path_factory.mktemp("partner-runtime")
    ports = {"110": free_port("udp"), "12345": free_port("udp")}
    partners = {
        "partners": [
            {"id": "110", "name": "110 公安报警服务台",
             "sip": {"username": "trunk110", "transfer_uri": f"sip:110@127.0.0.1:{ports['110']}",
                     "queue": "operator", "priority": 80, "answer_timeout_s": 4,
                     "fallback": "back_to_partner"}},
            {"id": "12345", "name": "12345 政务服务便民热线",
             "sip": {"username": "trunk12345",
                     "transfer_uri": f"sip:12345@127.0.0.1:{ports['12345']}",
                     "queue": "operator", "priority": 50, "answer_timeout_s": 60,
                     "fallback": "callback"}},
            # Two more trunks for the other fallbacks, with short timers.
            {"id": "12355", "name": "12355 青少年服务台",
             "sip": {"username": "trunk12355", "queue": "operator", "priority": 60,
                     "answer_timeout_s": 3, "fallback": "callback"}},
            {"id": "12368", "name": "12368 诉讼服务热线",
             "sip": {"username": "trunk12368", "queue": "operator", "priority": 40,
                     "answer_timeout_s": 3, "fallback": "overflow",
                     "overflow_queue": "complaint"}},
        ]
    }  # fmt: skip
    with running_partner_env(tmp_path_factory, runtime_dir, partners, ports, "partner") as env:
        yield env


@contextlib.contextmanager
def running_partner_env(
    tmp_path_factory: pytest.TempPathFactory,
    runtime_dir: Path,
    partners: dict,
    ports: dict[str, int],
    name: str,
) -> Iterator[PartnerEnv]:
    """A private Asterisk and service whose runtime holds ``partners`` as its partners file."""
    path = runtime_dir / "partners.yaml"
    path.write_text(yaml.safe_dump(partners, allow_unicode=True), encoding="utf-8")
    with running_test_asterisk(runtime_dir) as instance:
        passwords = trunks.trunk_passwords(runtime_dir, load_config(path).partners)
        service = launch_service(instance, tmp_path_factory.mktemp(f"{name}-service"))
        try:
            yield PartnerEnv(instance, service, ports, passwords)
        finally:
            if service.process is not None:
                service.stop()
            service.engine.dispose()


@contextlib.asynccontextmanager
async def partner_phone(env: PartnerEnv, partner_id: str):
    """The partner's side of its trunk: registered with its digest user, answering calls."""
    async with Phone.start(
        f"p{partner_id}",
        sip_port=env.ports.get(partner_id, 0),
        registrar=env.service.registrar,
        user=f"trunk{partner_id}",
        password=env.passwords[partner_id],
    ) as phone:
        await phone.wait_event("reg_state", active=True, code=200, timeout=10)
        await phone.set_auto_answer("answer", delay_ms=200)
        yield phone


@contextlib.asynccontextmanager
async def lawyer(service: ServiceProcess, seat_id: str, skills: str):
    """A seat that answers after 300 ms and logs in while calls already wait (so its first
    state may be "offered" at once)."""
    seat_id, password = add_seat(service, seat_id, skills)
    async with Phone.start(
        seat_id, registrar=service.registrar, user=seat_id, password=password
    ) as phone:
        phone.seat_id = seat_id  # type: ignore[attr-defined]
        await phone.wait_event("reg_state", active=True, code=200, timeout=10)
        await phone.set_auto_answer("answer", delay_ms=300)
        status, view = service.api("POST", f"/api/acd/seats/{seat_id}/login")
        assert status == 200 and view["state"] in ("available", "offered"), view
        try:
            yield phone
        finally:
            service.api("POST", f"/api/acd/seats/{seat_id}/logout")


async def to_operator(phone: Phone, service: ServiceProcess, caller: str) -> tuple[str, str]:
    """A direct 12348 caller who presses 0 for a person; returns (phone call, our call id)."""
    call = await phone.call(uri_for(service), from_user=caller)
    masked = mask_number(caller)
    service.wait_logged(masked, "ivr.node_entered", node="language", timeout=20)
    await phone.dtmf(call, "0")
    service.wait_logged(masked, "queue.entered", queue="operator", timeout=20)
    (call_id,) = service.call_ids_for(masked)
    return call, call_id


def work_order_number(service: ServiceProcess, call_id: str) -> str:
    from sqlalchemy import select

    from workorders.models import WorkOrderRow

    with service.engine.connect() as conn:
        number = conn.execute(
            select(WorkOrderRow.number).where(WorkOrderRow.call_id == call_id)
        ).scalar()
    return str(number) if number else call_id


async def incoming_with_headers(phone: Phone, within: float = 20) -> dict:
    incoming = await phone.wait_event("incoming", timeout=within)
    await phone.wait_event("call_state", call=incoming["call"], state="CONFIRMED", timeout=10)
    return incoming


async def test_12345_call_skips_the_ivr_jumps_the_queue_and_shows_its_case(partner_env, tmp_path):
    service = partner_env.service
    caller, original = new_caller(), new_caller()
    async with (
        Phone.start("direct") as direct,
        partner_phone(partner_env, "12345") as p12345,
        partner_phone(partner_env, "110") as p110,
    ):
        # A direct caller waits for a person first.
        direct_call, direct_id = await to_operator(direct, service, caller)

        # 12345 transfers its caller in, with the case in the headers.
        pcall = await p12345.call(
            uri_for(service),
            headers={"X-Partner-Case-Id": CASE_12345, "X-Original-Caller": original,
                     "X-Case-Summary": quote(SUMMARY_12345)},
        )  # fmt: skip
        await p12345.wait_event("call_state", call=pcall, state="CONFIRMED", timeout=10)
        pmasked = mask_number(original)  # the person on the line is 12345's caller
        entered = service.wait_logged(pmasked, "call.entered", timeout=15).data
        assert entered["kind"] == "partner" and entered["origin"] == "12345"
        assert entered["attached"] == {
            "partner": "12345", "partner_name": "12345 政务服务便民热线",
            "case_id": CASE_12345, "summary": SUMMARY_12345, "original_caller": pmasked,
        }  # fmt: skip
        queued = service.wait_logged(pmasked, "queue.entered", timeout=15).data
        assert queued["queue"] == "operator.12345" and queued["priority"] == 50
        assert queued["origin"] == "12345"
        (partner_id,) = service.call_ids_for(pmasked)
        nodes = [e.data.get("node") for e in service.events(partner_id)
                 if e.type == "ivr.node_entered"]  # fmt: skip
        assert nodes == ["partner_intake"]  # no menus: greeting, then the queue

        # A lawyer logs in: the transferred call is served before the direct caller.
        async with lawyer(service, "pt_seat", "general:1") as seat:
            first = await answered(seat)
            logged(service, partner_id, "queue.connected", seat_id=seat.seat_id)
            assert not [e for e in service.events(direct_id) if e.type == "queue.connected"]
            status, view = service.api("GET", f"/api/acd/calls/{partner_id}")
            assert status == 200 and view["origin"] == "12345", view
            assert view["partner"]["case_id"] == CASE_12345
            assert view["partner"]["summary"] == SUMMARY_12345
            assert view["partner"]["original_caller"] == pmasked  # masked on the API too

            # 12345's caller hangs up; the direct caller gets the lawyer next ...
            await p12345.hangup(pcall)
            await seat.wait_event("disconnected", call=first, timeout=10)
            await answered(seat, within=20)
            logged(service, direct_id, "queue.connected", seat_id=seat.seat_id)

            # ... who transfers them to 110: our call id and a summary go in the headers.
            assert transfer(service, direct_id, "number:110")["status"] == "ringing"
            incoming = await incoming_with_headers(p110)
            headers = incoming["headers"]
            # The service opened a work order for the connected call: its number is our
            # reference (a call without one sends the call id).
            assert headers["X-Hotline-Work-Order"] == work_order_number(service, direct_id)
            assert headers["X-Original-Caller"] == caller
            assert "X-Partner-Case-Id" not in headers  # the call did not come from 110
            assert unquote(headers["X-Case-Summary"]).startswith("12348热线转接")
            sent = logged(service, direct_id, "partner.transferred", partner="110")
            assert sent["mode"] == "blind" and sent["seat_id"] == seat.seat_id
            assert set(sent["headers"]) >= {"X-Hotline-Work-Order", "X-Case-Summary"}
            await p110.hangup(str(incoming["call"]))
            await direct.wait_event("disconnected", call=direct_call, timeout=10)


async def test_unanswered_110_call_goes_back_to_110_with_its_case(partner_env):
    service = partner_env.service
    original = new_caller()
    async with partner_phone(partner_env, "110") as p110:
        # No seat is logged in: after answer_timeout_s (4 s) the call returns to 110.
        pcall = await p110.call(
            uri_for(service),
            headers={"X-Partner-Case-Id": CASE_110, "X-Original-Caller": original},
        )
        await p110.wait_event("call_state", call=pcall, state="CONFIRMED", timeout=10)
        pmasked = mask_number(original)
        queued = service.wait_logged(pmasked, "queue.entered", timeout=15).data
        assert queued["queue"] == "operator.110" and queued["priority"] == 80
        (call_id,) = service.call_ids_for(pmasked)
        incoming = await incoming_with_headers(p110, within=30)
        headers = incoming["headers"]
        assert headers["X-Partner-Case-Id"] == CASE_110  # their own case comes back
        assert headers["X-Hotline-Work-Order"] == work_order_number(service, call_id)
        assert headers["X-Original-Caller"] == original
        fallback = logged(service, call_id, "partner.fallback", partner="110")
        assert fallback["fallback"] == "back_to_partner" and fallback["result"] == "back_to_partner"
        left = logged(service, call_id, "queue.left", queue="operator.110")
        assert left["reason"] == "max_wait"
        assert logged(service, call_id, "partner.transferred")["mode"] == "back_to_partner"
        await p110.hangup(str(incoming["call"]))
        await p110.wait_event("disconnected", call=pcall, timeout=10)  # our leg goes too


async def test_unanswered_12355_call_keeps_its_place_for_a_callback(partner_env):
    service = partner_env.service
    original = new_caller()
    async with partner_phone(partner_env, "12355") as p12355:
        pcall = await p12355.call(uri_for(service), headers={"X-Original-Caller": original})
        await p12355.wait_event("call_state", call=pcall, state="CONFIRMED", timeout=10)
        pmasked = mask_number(original)
        service.wait_logged(pmasked, "queue.entered", queue="operator.12355", timeout=15)
        (call_id,) = service.call_ids_for(pmasked)
        # After 3 s: the place is kept, the caller told so and hung up by us.
        fallback = logged(service, call_id, "partner.fallback", timeout=20)
        assert fallback["fallback"] == "callback" and fallback["result"] == "callback"
        logged(service, call_id, "callback.requested", queue="operator.12355")
        logged(service, call_id, "prompt.started", prompt="queue_callback_booked")
        gone = await p12355.wait_event("disconnected", call=pcall, timeout=20)
        assert not gone["local_hangup"]


async def test_unanswered_12368_call_overflows_to_another_queue(partner_env):
    service = partner_env.service
    original = new_caller()
    async with (
        lawyer(service, "pt_complaint", "complaint:1") as seat,
        partner_phone(partner_env, "12368") as p12368,
    ):
        headers = {"X-Original-Caller": original, "X-Partner-Case-Id": "SF-7"}
        pcall = await p12368.call(uri_for(service), headers=headers)
        await p12368.wait_event("call_state", call=pcall, state="CONFIRMED", timeout=10)
        pmasked = mask_number(original)
        service.wait_logged(pmasked, "queue.entered", queue="operator.12368", timeout=15)
        (call_id,) = service.call_ids_for(pmasked)
        # Nobody serves operator.12368 here; after 3 s the complaint lawyer gets the call.
        await answered(seat, within=20)
        moved = logged(service, call_id, "queue.overflowed", to_queue="complaint")
        assert moved["from_queue"] == "operator.12368"
        fallback = logged(service, call_id, "partner.fallback")
        assert (fallback["fallback"], fallback["result"]) == ("overflow", "overflowed")
        logged(service, call_id, "queue.connected", seat_id=seat.seat_id)
        status, view = service.api("GET", f"/api/acd/calls/{call_id}")
        assert status == 200 and view["partner"]["case_id"] == "SF-7", view
        await p12368.hangup(pcall)


async def test_emergency_key_transfers_the_caller_to_110(partner_env):
    service = partner_env.service
    caller = new_caller()
    masked = mask_number(caller)
    async with Phone.start("emergency") as phone, partner_phone(partner_env, "110") as p110:
        call = await phone.call(uri_for(service), from_user=caller)
        for node, digit in [("language", "1"), ("main_menu", "8"), ("emergency_confirm", "1")]:
            service.wait_logged(masked, "ivr.node_entered", node=node, timeout=20)
            await phone.dtmf(call, digit)
        incoming = await incoming_with_headers(p110, within=30)
        (call_id,) = service.call_ids_for(masked)
        headers = incoming["headers"]
        assert headers["X-Hotline-Work-Order"] == work_order_number(service, call_id)
        assert headers["X-Original-Caller"] == caller
        assert "紧急" in unquote(headers["X-Case-Summary"])
        action = logged(service, call_id, "ivr.action", node="transfer_110")
        assert action["partner"] == "110"
        assert logged(service, call_id, "partner.transferred", partner="110")["mode"] == "ivr"
        await p110.hangup(str(incoming["call"]))
        await phone.wait_event("disconnected", call=call, timeout=10)
        ended = service.wait_call_ended(masked)
        assert [e.data["outcome"] for e in ended if e.type == "ivr.outcome"] == ["transferred"]


def test_partner_trunk_secret_is_kept_in_the_runtime_secrets(partner_env):
    secrets = yaml.safe_load(
        (Path(partner_env.instance.settings.runtime_path) / "secrets.yaml").read_text()
    )
    assert secrets[trunks.SIP_SECRETS_KEY] == partner_env.passwords
    pjsip = (partner_env.instance.runtime.etc_dir / "pjsip.conf").read_text()
    assert "[trunk110]" in pjsip and partner_env.passwords["110"] not in pjsip
