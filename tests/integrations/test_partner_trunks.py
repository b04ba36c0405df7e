"""Partner SIP trunks without a network: header cleaning, routing, outgoing headers, the intake
dialogue, the partner queues, configuration rules and trunk secrets."""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from acd.config import AcdConfig, QueueConfig
from acd.wiring import partner_queue_name, partner_queues
from hotline.config import ConfigError
from integrations import trunks
from integrations.config import Partner, parse_config
from ivr import interpreter as ivr

BASE_SIP = {
    "addresses": ["192.0.2.20/32"],
    "queue": "operator",
    "priority": 50,
    "transfer_uri": "sip:12345@192.0.2.20",
}


def partner(partner_id: str = "12345", **sip: object) -> Partner:
    fields = {**BASE_SIP, **sip}
    return Partner(id=partner_id, name="12345 政务服务便民热线", sip=fields)  # type: ignore[arg-type]


# Untrusted header values ----------------------------------------------------------------------
def test_control_characters_are_stripped_and_whitespace_collapsed() -> None:
    assert trunks.clean_text("a\r\nVia: evil\x00\tb\u202e c", 100) == "a Via: evil b c"


def test_values_are_capped() -> None:
    assert len(trunks.clean_text("案" * 1000, trunks.MAX_SUMMARY)) == trunks.MAX_SUMMARY


def test_percent_encoded_utf8_is_decoded_and_bad_escapes_do_not_raise() -> None:
    assert trunks.clean_text("%E5%8A%B3%E5%8A%A8%E4%BA%89%E8%AE%AE", 50) == "劳动争议"
    assert trunks.clean_text("%FF%FE 50%", 50)  # replaced, not an exception


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("13800138000", "13800138000"), ("+86 138-0013-8000", "+8613800138000"),
     ("sip:13800138000@x", ""), ("12", ""), ("1" * 25, ""), (None, ""), ("1380013800O", "")],
)  # fmt: skip
def test_original_caller_must_be_a_phone_number(raw: object, expected: str) -> None:
    assert trunks.clean_number(raw) == expected


@given(st.text(max_size=2000))
def test_any_header_value_comes_out_printable_and_short(value: str) -> None:
    out = trunks.clean_text(value, 64)
    assert len(out) <= 64
    assert all(c.isprintable() for c in out)


def test_partner_call_from_hostile_headers_is_safe_and_masked() -> None:
    call = trunks.parse_partner_call(
        "12345",
        partner(),
        {"case_id": "ZW-2026-0042\r\nX-Evil: 1", "original_caller": "13800138000",
         "summary": "来电人反映拖欠工资\x07" + "。" * 500},
    )  # fmt: skip
    assert call.case_id == "ZW-2026-0042 X-Evil: 1"
    assert len(call.summary) == trunks.MAX_SUMMARY and "\x07" not in call.summary
    attached = call.attached()
    assert attached["original_caller"] == "138****8000"
    assert "13800138000" not in repr(attached) and "13800138000" not in repr(call)
    assert attached["partner_name"] == "12345 政务服务便民热线"


def test_missing_headers_and_an_unknown_partner_still_give_a_call() -> None:
    call = trunks.parse_partner_call("999", None, {})
    assert (call.partner_id, call.partner_name, call.known) == ("999", "999", False)
    assert call.attached() == {"partner": "999", "partner_name": "999"}
    assert trunks.header_names(None)["case_id"] == "X-Partner-Case-Id"


# Routing --------------------------------------------------------------------------------------
def test_a_partner_with_a_queue_skips_the_ivr() -> None:
    route = trunks.inbound_route(partner(), {"12345": "operator.12345"})
    assert route == trunks.InboundRoute(
        "queue", "operator.12345", 50, "12345 政务服务便民热线 转入"
    )


def test_unknown_partner_or_no_queue_runs_the_flow() -> None:
    assert trunks.inbound_route(None, {"12345": "operator.12345"}).kind == "flow"
    assert trunks.inbound_route(partner(), {}).kind == "flow"


def test_intake_greets_queues_and_falls_back_to_the_partner_then_busy() -> None:
    intake = trunks.PartnerIntake(trunks.InboundRoute("queue", "operator.12345", 50), "12345")
    assert ivr.Play(("transferred_in",), False) in intake.start()
    assert intake.handle(ivr.DigitPressed("1")) == []  # no menus
    out = intake.handle(ivr.PromptFinished())
    assert ivr.EnterQueue("operator.12345", "", 50, "") in out
    out = intake.handle(ivr.ActionFailed("queue full"))
    assert ivr.TransferOut("12345", "12345") in out
    out = intake.handle(ivr.ActionFailed("no trunk"))
    assert ivr.Play(("system_busy",), False) in out
    assert intake.handle(ivr.PromptFinished()) == [ivr.Hangup("system_busy")]
    assert intake.handle(ivr.CallerHungUp()) == []


# Headers we send --------------------------------------------------------------------------------
def test_outbound_headers_carry_reference_case_caller_and_encoded_summary() -> None:
    variables = trunks.outbound_variables(
        partner(), reference="GD20261121-0001", summary="劳动争议：拖欠工资\r\n",
        case_id="ZW-42", original_caller="13800138000",
    )  # fmt: skip
    assert variables["PJSIP_HEADER(add,X-Hotline-Work-Order)"] == "GD20261121-0001"
    assert variables["PJSIP_HEADER(add,X-Partner-Case-Id)"] == "ZW-42"
    assert variables["PJSIP_HEADER(add,X-Original-Caller)"] == "13800138000"
    summary = variables["PJSIP_HEADER(add,X-Case-Summary)"]
    assert summary.isascii() and unquote(summary) == "劳动争议：拖欠工资"


def test_outbound_headers_follow_the_partners_names_and_skip_empty_values() -> None:
    renamed = partner(headers={"work_order_id": "X-Ref", "summary": "X-Note"})
    variables = trunks.outbound_variables(renamed, reference="abc", summary="s")
    assert set(variables) == {"PJSIP_HEADER(add,X-Ref)", "PJSIP_HEADER(add,X-Note)"}


def test_dial_string_uses_the_partners_own_trunk() -> None:
    assert trunks.dial_string(partner()) == "PJSIP/partner-12345/sip:12345@192.0.2.20"
    assert trunks.dial_string(partner(transfer_uri=None)) is None
    assert trunks.dial_string(partner(transfer_uri=None, username="t1")) == "PJSIP/t1"
    assert partner(username="trunk12345").endpoint == "trunk12345"


# Configuration --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sip", "problem"),
    [({"fallback": "overflow"}, "needs overflow_queue"),
     ({"fallback": "overflow", "overflow_queue": "operator"}, "must differ"),
     ({"headers": {"case_id": "X-Case,Id"}}, "pattern"),
     ({"username": "bad user"}, "pattern"),
     ({"transfer_uri": "sip:110@x,b(evil)"}, "SIP URI"),
     ({"transfer_uri": "http://x"}, "SIP URI")],
)  # fmt: skip
def test_bad_trunk_configuration_is_refused(sip: dict, problem: str) -> None:
    data = {"partners": [{"id": "12345", "name": "12345", "sip": {"queue": "operator", **sip}}]}
    with pytest.raises(ConfigError, match=problem):
        parse_config(data)


def test_two_partners_cannot_share_a_sip_user() -> None:
    sip = {"username": "trunk"}
    data = {"partners": [{"id": "110", "name": "110", "sip": sip},
                         {"id": "12345", "name": "12345", "sip": sip}]}  # fmt: skip
    with pytest.raises(ConfigError, match="taken"):
        parse_config(data)


def test_trunk_passwords_are_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = trunks.trunk_passwords(tmp_path, [partner(username="trunk12345"), partner("x")])
    assert set(first) == {"12345"} and len(first["12345"]) >= 24
    assert trunks.trunk_passwords(tmp_path, [partner(username="trunk12345")]) == first
    secrets_path = tmp_path / "secrets.yaml"
    assert stat.S_IMODE(secrets_path.stat().st_mode) == 0o600
    stored = yaml.safe_load(secrets_path.read_text())
    assert stored[trunks.SIP_SECRETS_KEY]["12345"] == first["12345"]


# Partner queues ---------------------------------------------------------------------------------
def _acd() -> AcdConfig:
    return AcdConfig(queues=(QueueConfig(name="operator", topic="general", max_wait_s=120),
                             QueueConfig(name="complaint", topic="complaint")))  # fmt: skip


@pytest.mark.parametrize(
    ("sip", "expect"),
    [({"fallback": "callback", "answer_timeout_s": 30},
      {"max_wait_s": 30, "on_max_wait": "callback", "overflow": None}),
     ({"fallback": "back_to_partner", "answer_timeout_s": 20},
      {"max_wait_s": 20, "on_max_wait": "message", "overflow": None}),
     ({"fallback": "overflow", "overflow_queue": "complaint", "answer_timeout_s": 15},
      {"max_wait_s": 120})],
)  # fmt: skip
def test_partner_queue_copies_its_queue_with_the_fallback_as_a_rule(
    sip: dict, expect: dict
) -> None:
    config, routes = partner_queues(_acd(), [partner(**sip)])
    name = partner_queue_name(partner())
    assert routes == {"12345": name} and name == "operator.12345"
    queue = config.queue(name)
    assert queue is not None and queue.skill == "general"  # the same seats serve it
    for key, value in expect.items():
        assert getattr(queue, key) == value
    if sip["fallback"] == "overflow":
        assert queue.overflow is not None
        assert (queue.overflow.to_queue, queue.overflow.after_s) == ("complaint", 15)


def test_partner_with_an_unknown_queue_gets_none_and_goes_through_the_flow() -> None:
    config, routes = partner_queues(_acd(), [partner(queue="minors")])
    assert routes == {} and config == _acd()


# The seat's screen pop ------------------------------------------------------------------------
def test_screen_pop_shows_the_partner_its_case_and_a_masked_caller() -> None:
    from agent_desk.live import CallSummary, redact

    call = trunks.parse_partner_call(
        "12345",
        partner(),
        {"case_id": "ZW-42", "original_caller": "13800138000", "summary": "拖欠工资"},
    )
    entered = {"caller": "138****8000", "kind": "partner", "origin": "12345",
               "attached": call.attached(), "caller_key": "k"}  # fmt: skip
    summary = CallSummary("c1")
    summary.apply({"type": "call.entered", "data": redact(entered), "ts": None})
    shown = summary.to_json()
    assert shown["source"] == "12345"  # the desk labels it 12345 转入
    assert shown["attached"] == {"partner": "12345", "partner_name": "12345 政务服务便民热线",
                                 "case_id": "ZW-42", "summary": "拖欠工资",
                                 "original_caller": "138****8000"}  # fmt: skip
    assert "13800138000" not in repr(shown)
