"""The interpreter on the real default 12348 flow: every main-menu path and the rules around it."""

from __future__ import annotations

import json

import pytest
from ivr_driver import (
    MAKEUP_SATURDAY,
    NATIONAL_DAY,
    ORDINARY_SATURDAY,
    SPRING_FESTIVAL_MONDAY,
    TUESDAY_8PM,
    TUESDAY_10AM,
    drive,
    logs,
    new_run,
    of_type,
    step,
)

from ivr.flow import MenuNode
from ivr.interpreter import (
    LOG_TYPES,
    MASK,
    BookCallback,
    CallerHungUp,
    CallStarted,
    CancelTimer,
    DigitPressed,
    EnterQueue,
    FlowRun,
    Hangup,
    IvrProtocolError,
    Lookup,
    Outcome,
    Play,
    PromptFinished,
    RecordMessage,
    SetLanguage,
    StartTimer,
    State,
    StopPlayback,
    TimerExpired,
    TransferOut,
    events_from_log,
    path_from_log,
)

MAIN = "PP1"  # welcome finishes, language prompt finishes, 1 = 普通话 → main menu playing


def test_start_plays_welcome_in_mandarin(default_flow):
    run, out = new_run(default_flow)
    assert out[1] == SetLanguage("zh")
    assert of_type(out, Play) == [Play(("welcome",), True)]
    assert logs(out)[0].type == "ivr.call_started"
    assert logs(out)[0].data["caller"] == "138****8000"  # never the number in clear
    assert run.outcome is None and run.state is State.PROMPT


def test_language_prompt_speaks_each_option_in_its_own_language(default_flow):
    run, _ = new_run(default_flow)
    out = drive(run, "P")
    assert of_type(out, Play) == [Play(("lang_zh", "lang_en"), True, ("zh", "en"))]
    out = drive(run, "P2")
    assert SetLanguage("en") in out
    assert run.language == "en" and run.node.id == "main_menu"


def test_language_timeout_falls_back_to_mandarin(default_flow):
    run, _ = new_run(default_flow)
    out = drive(run, "PPTPT")  # two silences = max_failures
    assert of_type(out, SetLanguage) == [SetLanguage("zh")]
    assert run.node.id == "main_menu"


@pytest.mark.parametrize(
    ("key", "queue", "skill", "topic"),
    [
        ("1", "consult_labor", "labor", "劳动争议"),
        ("2", "consult_family", "family", "婚姻家庭"),
        ("3", "consult_contract", "contract", "合同与债务"),
        ("4", "consult_traffic", "traffic", "交通事故"),
        ("5", "consult_property", "property", "房产物业"),
        ("6", "consult_other", "general_law", "其他"),
    ],
)
def test_each_consultation_topic_reaches_its_queue_in_office_hours(
    default_flow, key, queue, skill, topic
):
    run, _ = new_run(default_flow, TUESDAY_10AM)
    out = drive(run, MAIN + "1" + key + "P")
    assert of_type(out, EnterQueue) == [EnterQueue(queue, skill, 0, topic)]
    assert run.outcome is Outcome.QUEUED and run.state is State.HANDED_OFF
    assert run.outcome_data["queue"] == queue
    assert logs(out, "ivr.outcome")[-1].data["outcome"] == "queued"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("21P0P", EnterQueue("operator", "general", 0, "general")),  # info then person
        ("3P", EnterQueue("mediation", "mediation", 0, "人民调解")),
        ("51P", EnterQueue("complaint", "complaint", 0, "投诉与建议")),
        ("0P", EnterQueue("operator", "general", 0, "general")),
    ],
)
def test_main_menu_paths_to_a_queue(default_flow, script, expected):
    run, _ = new_run(default_flow)
    out = drive(run, MAIN + script)
    assert of_type(out, EnterQueue) == [expected]
    assert run.outcome is Outcome.QUEUED


def test_legal_aid_application_collects_id_number_masked(default_flow):
    run, _ = new_run(default_flow)
    id_number = "11010519491231002*"  # 17 digits + * for a final X
    out = drive(run, MAIN + "22" + id_number + "P")
    assert of_type(out, EnterQueue) == [EnterQueue("legal_aid", "legal_aid", 1, "法律援助申请")]
    assert run.variables["id_number"] == id_number
    text = json.dumps([c.data for c in logs(out)], ensure_ascii=False)
    assert id_number[:6] not in text and "19491231" not in text
    inputs = [c.data for c in logs(out, "ivr.input") if c.data["node"] == "legal_aid_id"]
    assert len(inputs) == 18 and {d["digit"] for d in inputs} == {MASK}
    collected = logs(out, "ivr.collected")[0].data
    assert collected["value"] == MASK * 18 and collected["accepted"] is True


def test_wrong_id_number_is_retried_and_never_logged(default_flow):
    run, _ = new_run(default_flow)
    out = drive(run, MAIN + "22" + "12345#")
    assert logs(out, "ivr.invalid")[-1].data == {
        "node": "legal_aid_id",
        "reason": "no_match",
        "failures": 1,
    }
    assert of_type(out, Play)[-1] == Play(("invalid_input", "enter_id_number"), True)
    assert "12345" not in json.dumps([c.data for c in logs(out)])


def test_information_then_hang_up_is_self_served(default_flow):
    run, _ = new_run(default_flow)
    out = drive(run, MAIN + "4" + "2" + "P")  # 司法鉴定 information heard to the end
    assert run.node.id == "after_info"
    out += drive(run, "H")
    assert run.outcome is Outcome.SELF_SERVED
    assert "info_appraisal" in path_from_log(logs(out))


@pytest.mark.parametrize("key", ["1", "2", "3"])
def test_information_menu_answers(default_flow, key):
    run, _ = new_run(default_flow)
    out = drive(run, MAIN + "4" + key)
    prompt = {"1": "info_notary", "2": "info_appraisal", "3": "info_offices"}[key]
    assert of_type(out, Play)[-1] == Play((prompt,), True)
    drive(run, "P1")  # after the answer, 1 = back to the main menu
    assert run.node.id == "main_menu"


def test_complaint_to_12345_transfers_out(default_flow):
    run, _ = new_run(default_flow)
    out = drive(run, MAIN + "52P")
    assert of_type(out, TransferOut) == [TransferOut("12345", "12345")]
    assert run.outcome is Outcome.TRANSFERRED


def test_emergency_key_transfers_to_110_after_confirmation(default_flow):
    run, _ = new_run(default_flow)
    out = drive(run, MAIN + "8")
    assert run.node.id == "emergency_confirm"
    assert of_type(out, TransferOut) == []  # nothing happens on one key
    out = drive(run, "P1")
    assert of_type(out, Play)[-1] == Play(("connecting_110",), False)
    assert not of_type(drive(run, "5"), StopPlayback)  # the notice is not interruptible
    out = drive(run, "P")
    (transfer,) = of_type(out, TransferOut)
    assert (transfer.number, transfer.partner) == ("110", "110")
    assert "紧急" in transfer.summary  # the partner learns why
    assert logs(out, "ivr.action")[-1].data == {
        "node": "transfer_110", "action": "transfer", "number": "110", "partner": "110"
    }  # fmt: skip
    assert run.outcome is Outcome.TRANSFERRED


def test_emergency_key_two_goes_back_and_failure_reaches_a_person(default_flow):
    run, _ = new_run(default_flow)
    drive(run, MAIN + "8P2")
    assert run.node.id == "main_menu"
    run, _ = new_run(default_flow)
    drive(run, MAIN + "8P1PF")  # 110 unreachable: told so, then a person
    assert run.node.id == "emergency_failed"
    out = drive(run, "P")
    assert of_type(out, EnterQueue)[0].queue == "operator"


def test_failed_transfer_reaches_a_person(default_flow):
    run, _ = new_run(default_flow)
    drive(run, MAIN + "52P")
    out = drive(run, "F")
    assert logs(out, "ivr.action_failed")[0].data["action"] == "transfer"
    assert run.outcome is None and run.node.id == "transfer_failed"
    assert not of_type(drive(run, "0"), StopPlayback)  # not interruptible
    out = drive(run, "P")
    assert of_type(out, EnterQueue)[0].queue == "operator"


def test_work_order_query_collects_number_in_clear_and_looks_it_up(default_flow):
    run, _ = new_run(default_flow)
    out = drive(run, MAIN + "9" + "20260310001#")
    assert of_type(out, Lookup) == [Lookup("work_order", "20260310001")]
    assert not of_type(out, EnterQueue)
    assert run.state is State.LOOKUP and run.node.id == "work_order_status"
    assert run.variables == {"work_order": "20260310001"}
    assert logs(out, "ivr.collected")[0].data["value"] == "20260310001"
    # The status is spoken at once (not interruptible), then the caller chooses what next.
    out = drive(run, "L")
    assert of_type(out, Play) == [Play(("workorder_status_in_progress",), False)]
    assert logs(out, "ivr.input")[0].data["result"] == "in_progress"
    assert not of_type(drive(run, "5"), StopPlayback)
    out = drive(run, "P")
    assert run.node.id == "after_work_order_status"
    assert of_type(out, Play) == [Play(("after_work_order_status",), True)]
    # 0 there is a person at the work-order desk.
    out = drive(run, "0P")
    assert of_type(out, EnterQueue) == [EnterQueue("work_order", "work_order", 0, "查询工单进度")]
    assert run.outcome is Outcome.QUEUED


def test_work_order_lookup_failure_reaches_the_work_order_desk(default_flow):
    run, _ = new_run(default_flow)
    out = drive(run, MAIN + "9" + "123456#" + "F")
    assert logs(out, "ivr.action_failed")[0].data["action"] == "lookup"
    assert run.node.id == "connecting_work_order" and run.pending_action is None
    out = drive(run, "P")
    assert of_type(out, EnterQueue) == [EnterQueue("work_order", "work_order", 0, "查询工单进度")]


def test_work_order_not_found_then_another_number(default_flow):
    run, _ = new_run(default_flow)
    drive(run, MAIN + "9" + "123456#")
    out = drive(run, "N")
    assert of_type(out, Play) == [Play(("workorder_not_found",), False)]
    out = drive(run, "P1" + "654321#")
    assert of_type(out, Lookup) == [Lookup("work_order", "654321")]
    assert run.variables == {"work_order": "654321"}
    drive(run, "LP2")
    assert run.node.id == "main_menu"


def test_work_order_status_heard_then_hang_up_is_self_served(default_flow):
    run, _ = new_run(default_flow)
    drive(run, MAIN + "9" + "123456#" + "LPH")
    assert run.outcome is Outcome.SELF_SERVED
    # Hanging up while the order is looked up: nothing was heard.
    run, _ = new_run(default_flow)
    drive(run, MAIN + "9" + "123456#" + "H")
    assert run.outcome is Outcome.HUNG_UP


def test_silence_after_work_order_status_reaches_the_work_order_desk(default_flow):
    run, _ = new_run(default_flow)
    out = drive(run, MAIN + "9" + "123456#" + "LP" + "PTPTPT")
    assert logs(out, "ivr.choice")[-1].data["choice"] == "failures"
    assert run.node.id == "connecting_work_order"
    out = drive(run, "P")
    assert of_type(out, EnterQueue)[0].queue == "work_order"


def test_keys_during_the_lookup_are_ignored(default_flow):
    run, _ = new_run(default_flow)
    drive(run, MAIN + "9" + "123456#")
    out = drive(run, "0")
    assert logs(out, "ivr.ignored")[0].data["kind"] == "digit"
    assert run.state is State.LOOKUP and not of_type(out, EnterQueue)
    drive(run, "L")
    assert run.playing and run.node.id == "work_order_status"


def test_work_order_number_ends_on_timeout_with_keys_in_hand(default_flow):
    run, _ = new_run(default_flow)
    drive(run, MAIN + "9" + "123456" + "T")
    assert run.variables == {"work_order": "123456"}


def test_id_number_keyed_at_the_work_order_prompt_is_a_work_order_number(default_flow):
    # Regression (property-test counterexample): 1 during the welcome, 9 at the main menu, then
    # the keys meant for the ID application. They reach 查询工单进度, not 身份证号; the IVR cannot
    # tell what the caller meant, so they are a work-order number, logged in clear as the flow
    # says, and no key is taken for an ID number.
    id_number = "100000000000000000"
    run, _ = new_run(default_flow)
    out = drive(run, "19" + "22" + id_number)
    assert run.path[-2:] == ["work_order_number", "work_order_status"]
    assert of_type(out, Lookup) == [Lookup("work_order", "22" + id_number)]
    assert run.variables == {"work_order": "22" + id_number}
    [collected] = logs(out, "ivr.collected")
    assert collected.data["node"] == "work_order_number"
    assert collected.data["value"] == "22" + id_number
    keys = [c.data for c in logs(out, "ivr.input") if c.data["kind"] == "digit"]
    assert [k["digit"] for k in keys] == list("19" + "22" + id_number)  # none masked
    # The same keys without the 9 are the ID number: masked from the ID node on, never in clear.
    run, _ = new_run(default_flow)
    out = drive(run, "122" + id_number)
    assert run.variables == {"id_number": id_number}
    keys = [c.data for c in logs(out, "ivr.input") if c.data["kind"] == "digit"]
    assert [k["digit"] for k in keys if k["node"] == "legal_aid_id"] == [MASK] * 18
    assert id_number[:10] not in json.dumps([c.data for c in logs(out)], ensure_ascii=False)


def test_invalid_key_then_valid_key(default_flow):
    run, _ = new_run(default_flow)
    drive(run, MAIN + "P")  # main menu prompt done, timer running
    timer = run.active_timer
    out = drive(run, "7")
    assert out[1] == CancelTimer(timer)
    assert of_type(out, Play) == [Play(("invalid_input", "main_menu"), True)]
    assert logs(out, "ivr.invalid")[0].data == {
        "node": "main_menu",
        "reason": "invalid",
        "failures": 1,
    }
    out = drive(run, "P3P")
    assert of_type(out, EnterQueue)[0].queue == "mediation"


@pytest.mark.parametrize("script", ["PTPTPT", "7P6PT", "PT7#"])
def test_three_failures_in_main_menu_reach_a_person(default_flow, script):
    run, _ = new_run(default_flow)
    out = drive(run, MAIN + script)
    assert run.node.id == "connecting_operator"
    assert logs(out, "ivr.choice")[-1].data["choice"] == "failures"
    out = drive(run, "P")
    assert of_type(out, EnterQueue) == [EnterQueue("operator", "general", 0, "general")]


def test_timeout_replays_with_no_input_prompt(default_flow):
    run, _ = new_run(default_flow)
    out = drive(run, MAIN + "PT")
    assert of_type(out, Play)[-1] == Play(("no_input", "main_menu"), True)


def test_barge_in_stops_the_prompt_and_acts_on_the_key(default_flow):
    run, _ = new_run(default_flow)
    drive(run, MAIN)
    assert run.playing and run.node.id == "main_menu"
    out = step(run, "3")
    assert out.index(StopPlayback()) < out.index(next(c for c in logs(out, "ivr.choice")))
    assert run.node.id == "connecting_mediation"
    assert of_type(out, Play) == [Play(("connecting_mediation",), True)]


def test_key_during_welcome_is_carried_to_the_language_menu(default_flow):
    run, _ = new_run(default_flow)
    out = step(run, "2")
    assert StopPlayback() in out and SetLanguage("en") in out
    assert run.node.id == "main_menu"


def test_key_during_a_fixed_prompt_is_ignored(default_flow):
    run, _ = new_run(default_flow)
    drive(run, MAIN + "52P")
    drive(run, "F")  # transfer_failed plays, not interruptible
    out = drive(run, "5")
    assert not of_type(out, StopPlayback)
    assert logs(out, "ivr.ignored")[0].data["kind"] == "digit"
    assert run.node.id == "transfer_failed"


MENU_SCRIPTS = {
    "language": "P",
    "main_menu": MAIN,
    "consult_menu": MAIN + "1",
    "legal_aid_menu": MAIN + "2",
    "info_menu": MAIN + "4",
    "after_info": MAIN + "41P",
    "complaint_menu": MAIN + "5",
    "emergency_confirm": MAIN + "8",
    "busy_menu": MAIN + "3PF",
    "after_work_order_status": MAIN + "9" + "123456#" + "LP",
}
# 0 reaches the operator, except after an order's status: the work-order desk (also people).
ZERO_QUEUE = {"after_work_order_status": "work_order"}


def test_every_menu_of_the_default_flow_is_tested_for_zero(default_flow):
    menus = {n.id for n in default_flow.nodes.values() if isinstance(n, MenuNode)}
    assert menus | {"language"} == set(MENU_SCRIPTS) | {"after_hours"}


@pytest.mark.parametrize("menu", sorted(MENU_SCRIPTS))
def test_zero_from_every_menu_reaches_the_operator(default_flow, menu):
    run, _ = new_run(default_flow)
    drive(run, MENU_SCRIPTS[menu])
    assert run.node.id == menu
    out = drive(run, "0P")
    assert of_type(out, EnterQueue)[0].queue == ZERO_QUEUE.get(menu, "operator")
    assert run.outcome is Outcome.QUEUED


@pytest.mark.parametrize("menu", sorted(MENU_SCRIPTS))
def test_silence_in_every_menu_reaches_a_person(default_flow, menu):
    run, _ = new_run(default_flow)
    drive(run, MENU_SCRIPTS[menu])
    for _ in range(20):
        if run.finished:
            break
        drive(run, "P" if run.playing else "T")
    assert run.outcome is Outcome.QUEUED


# Business hours ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "now", [NATIONAL_DAY, SPRING_FESTIVAL_MONDAY, ORDINARY_SATURDAY, TUESDAY_8PM]
)
def test_consultation_after_hours_offers_message_or_callback(default_flow, now):
    run, _ = new_run(default_flow, now)
    out = drive(run, MAIN + "1")
    assert run.node.id == "after_hours"
    assert logs(out, "ivr.choice")[-1].data["choice"] == "closed"
    assert of_type(out, Play)[-1] == Play(("after_hours",), True)


def test_makeup_saturday_is_a_working_day(default_flow):
    run, _ = new_run(default_flow, MAKEUP_SATURDAY)
    drive(run, MAIN + "1")
    assert run.node.id == "consult_menu"


def test_after_hours_message(default_flow):
    run, _ = new_run(default_flow, NATIONAL_DAY)
    out = drive(run, MAIN + "11")
    assert of_type(out, Play)[-1] == Play(("record_instructions",), False)
    out = drive(run, "P")
    assert of_type(out, RecordMessage) == [RecordMessage(120, True)]
    assert run.state is State.RECORDING and run.outcome is None
    drive(run, "5")  # keys while recording change nothing
    out = drive(run, "R")
    assert of_type(out, Play) == [Play(("message_saved",), False)]
    out = drive(run, "P")
    assert of_type(out, Hangup) == [Hangup("message_left")]
    assert run.outcome is Outcome.MESSAGE and run.outcome_data["duration_s"] == 30.0


def test_hanging_up_to_end_a_message_keeps_it(default_flow):
    run, _ = new_run(default_flow, NATIONAL_DAY)
    drive(run, MAIN + "11PH")
    assert run.outcome is Outcome.MESSAGE
    assert run.outcome_data["ended_by"] == "caller_hangup"


def test_after_hours_callback(default_flow):
    run, _ = new_run(default_flow, NATIONAL_DAY)
    out = drive(run, MAIN + "12")
    assert of_type(out, BookCallback) == [BookCallback("lawyer_consultation")]
    assert of_type(out, Play)[-1] == Play(("callback_booked",), False)
    out = drive(run, "P")
    assert of_type(out, Hangup) == [Hangup("callback_booked")]
    assert run.outcome is Outcome.CALLBACK


def test_failed_callback_ends_as_failed(default_flow):
    run, _ = new_run(default_flow, NATIONAL_DAY)
    out = drive(run, MAIN + "12F")
    assert StopPlayback() in out and run.node.id == "system_busy"
    drive(run, "P")
    assert run.outcome is Outcome.FAILED


def test_queue_failure_offers_message_callback_or_operator(default_flow):
    run, _ = new_run(default_flow)
    drive(run, MAIN + "3P")
    assert run.outcome is Outcome.QUEUED
    out = drive(run, "F")
    assert run.outcome is None and run.node.id == "busy_menu"
    assert logs(out, "ivr.action_failed")[0].data["reason"] == "test failure"


# Caller data ----------------------------------------------------------------------------------
def test_special_group_gets_green_channel_and_priority(default_flow):
    run, out = new_run(default_flow, special_group=True)
    out += drive(run, "P")
    assert Play(("green_channel",), True) in out
    out = drive(run, "P" + "P1" + "3P")
    assert of_type(out, EnterQueue) == [EnterQueue("mediation", "mediation", 10, "人民调解")]


def test_blocked_caller_is_rejected(default_flow):
    run, _ = new_run(default_flow, blocked=True)
    out = drive(run, "P")
    assert of_type(out, Play) == [Play(("blocked_notice",), False)]
    out = drive(run, "P")
    assert of_type(out, Hangup) == [Hangup("blocked")]
    assert run.outcome is Outcome.REJECTED


def test_call_transferred_in_from_110_goes_to_operator_with_priority(default_flow):
    run, _ = new_run(default_flow, origin="110")
    out = drive(run, "PP")
    assert of_type(out, EnterQueue) == [EnterQueue("operator", "general", 5, "transferred_in")]


def test_repeat_caller_hears_welcome_back(default_flow):
    run, _ = new_run(default_flow, is_repeat=True)
    out = drive(run, "P")
    assert of_type(out, Play) == [Play(("welcome_back",), True)]


# Hang-ups, protocol errors, the log
def test_hang_up_in_a_menu_is_hung_up_and_cancels_the_timer(default_flow):
    run, _ = new_run(default_flow)
    drive(run, MAIN + "P")
    timer = run.active_timer
    out = drive(run, "H")
    assert CancelTimer(timer) in out and run.outcome is Outcome.HUNG_UP
    assert drive(run, "H") == []  # a second hang-up report is harmless


def test_events_impossible_in_the_state_raise_naming_event_and_state(default_flow):
    run, _ = new_run(default_flow)
    drive(run, MAIN + "0P")
    with pytest.raises(IvrProtocolError, match=r"DigitPressed .*HANDED_OFF"):
        run.handle(DigitPressed("1"))
    with pytest.raises(IvrProtocolError, match=r"PromptFinished .*HANDED_OFF"):
        run.handle(PromptFinished())
    assert run.handle(CallerHungUp()) == []
    fresh = FlowRun(default_flow)
    with pytest.raises(IvrProtocolError, match=r"DigitPressed .*IDLE.*CallStarted"):
        fresh.handle(DigitPressed("1"))


def test_unknown_timer_raises_and_stale_timer_is_ignored(default_flow):
    run, _ = new_run(default_flow)
    drive(run, MAIN + "P")
    old = run.active_timer
    drive(run, "7")  # cancels the timer, replays the menu
    out = run.handle(TimerExpired(old))
    assert logs(out, "ivr.ignored")[0].data["kind"] == "stale_timer"
    with pytest.raises(IvrProtocolError, match="names no timer"):
        run.handle(TimerExpired("nope:1"))
    with pytest.raises(IvrProtocolError, match=r"PromptFinished .*INPUT"):
        drive(run, "P")
        run.handle(PromptFinished())


def test_action_failed_with_nothing_outstanding_raises(default_flow):
    from ivr.interpreter import ActionFailed

    run, _ = new_run(default_flow)
    with pytest.raises(IvrProtocolError, match="no action outstanding"):
        run.handle(ActionFailed("x"))


def test_start_twice_raises(default_flow):
    run, _ = new_run(default_flow)
    with pytest.raises(IvrProtocolError, match=r"CallStarted .*PROMPT"):
        run.start(CallStarted(run.caller, TUESDAY_10AM))


def test_log_types_are_the_documented_ones(default_flow):
    run, out = new_run(default_flow, NATIONAL_DAY)
    out += drive(run, MAIN + "P7P" + "1" + "2P")
    assert {c.type for c in logs(out)} <= set(LOG_TYPES)


def test_path_and_events_replay_from_the_log(default_flow):
    run, out = new_run(default_flow, NATIONAL_DAY)
    out += drive(run, "1" + "P7" + "1" + "PTP" + "2P")
    assert path_from_log(logs(out)) == run.path
    assert run.outcome is Outcome.CALLBACK
    # Feeding the logged inputs to a fresh run gives the very same commands.
    events = events_from_log(logs(out))
    replay, again = new_run(default_flow, NATIONAL_DAY)
    for event in events:
        again += replay.handle(event)
    assert again == out and replay.outcome is Outcome.CALLBACK


def test_masked_keys_cannot_be_replayed(default_flow):
    run, out = new_run(default_flow)
    out += drive(run, MAIN + "22" + "1")
    with pytest.raises(ValueError, match="masked"):
        events_from_log(logs(out))


def test_timer_is_started_after_each_menu_prompt(default_flow):
    run, _ = new_run(default_flow)
    out = drive(run, MAIN + "P")
    assert of_type(out, StartTimer)[-1] == StartTimer(run.active_timer, 6.0)
    assert run.active_timer.startswith("main_menu:")
