"""A seat lawyer's shift and the supervisor's wallboard in real headless Chromium, against the
real ACD seat API, KPI service and work-order service (``full_server``, see ``desk_server``).

No Asterisk here: the IVR's events are logged in the shape ``ivr/app.py`` gives them, and the
ACD core gets the inputs its ARI side would give (``acd_input``); everything from the core's
decisions to the browser is the production code. The end-to-end test with real calls through
Asterisk belongs to the service's e2e suite.

Screenshots go to ``test-artifacts/agent_desk/``; the screen-pop latency (median of 20) to
``test-artifacts/agent_desk/screen-pop-latency.txt``.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path
from typing import Any

from desk_server import PASSWORD, WRAP_UP_S, DeskServer

from recordings.models import TranscriptSegmentRow

CLEAR = "13800138000"
MASKED = "138****8000"
KEY = "a1" * 32  # a caller's keyed number hash (hotline.privacy.number_key)


def sign_in(page: Any, server: DeskServer, username: str) -> None:
    page.goto(server.url + "/")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#submit")


def ivr_path(server: DeskServer, cid: str, *, key: str = KEY, origin: str = "direct") -> None:
    """What the IVR logs for a caller choosing 1 法律咨询 → 1 劳动争议 (ivr/app.py shapes)."""
    server.log(cid, "call.entered", channel=f"ch-{cid}", dialled="12348", caller=MASKED,
               caller_key=key, kind="inbound")  # fmt: skip
    server.log(cid, "call.answered")
    server.log(cid, "ivr.call_started", flow="default-12348", caller=MASKED, is_repeat=False,
               special_group=False, blocked=False, origin=origin)  # fmt: skip
    server.log(cid, "ivr.language", language="zh", chosen_by="default")
    server.log(cid, "ivr.choice", node="main_menu", choice="1", target="lawyer_hours")
    server.log(cid, "ivr.choice", node="lawyer_hours", choice="open", target="consult_menu")
    server.log(cid, "ivr.choice", node="consult_menu", choice="1", target="consult_labor")
    server.log(cid, "ivr.action", node="queue_labor", action="queue", queue="consult_labor",
               skill="labor", priority=0, topic="劳动争议")  # fmt: skip


def store_transcript(server: DeskServer, cid: str, lines: list[tuple[str, str]]) -> None:
    """Final segments as recordings/service.py stores and logs them, then the completion."""
    from datetime import UTC, datetime

    from sqlalchemy.orm import Session

    with Session(server.engine) as session, session.begin():
        for i, (speaker, text) in enumerate(lines):
            session.add(
                TranscriptSegmentRow(
                    call_id=cid,
                    speaker=speaker,
                    start_s=i * 4.0,
                    end_s=i * 4.0 + 3.5,
                    text=text,
                    final=True,
                    source="live",
                    created_at=datetime.now(UTC),
                )
            )
    for speaker in ("caller", "seat"):
        count = sum(1 for s, _ in lines if s == speaker)
        server.log(cid, "transcript.completed", speaker=speaker, source="live", segments=count,
                   audio_s=30.0)  # fmt: skip


def test_seat_lawyer_runs_a_shift(
    full_server: DeskServer, browser_context: Any, artifacts: Path
) -> None:
    server = full_server
    page = browser_context.new_page()
    sign_in(page, server, "lawyer1")
    page.wait_for_url(server.url + "/desk")
    page.wait_for_selector("#conn[data-state='up']")
    page.wait_for_selector("#state-badge[data-state='offline']")

    # Log in the seat (the ACD's API), then a pause with a reason, then ready: from the keyboard.
    page.click("#btn-seat-out")
    page.wait_for_selector("#state-badge[data-state='available']")
    page.select_option("#pause-reason", "培训")
    page.focus("#btn-pause")
    page.keyboard.press("Enter")
    page.wait_for_selector("#state-badge[data-state='paused']:has-text('培训')")
    assert server.acd.core.seat_view("s101").reason == "培训"
    page.keyboard.press("Alt+r")
    page.wait_for_selector("#state-badge[data-state='available']")

    # A caller with an earlier call and order: the archive shows them.
    server.log("c-old", "call.entered", dialled="12348", caller=MASKED, caller_key=KEY,
               kind="inbound")  # fmt: skip
    server.log("c-old", "ivr.action", node="queue_labor", action="queue", queue="consult_labor",
               topic="劳动争议")  # fmt: skip
    server.acd_input("call_arrived", "c-old", "consult_labor", caller_key=KEY)
    server.acd_input("offer_answered", "c-old", "s101")
    server.acd_input("call_completed", "c-old", "caller")
    page.wait_for_selector("#state-badge[data-state='wrap_up']")
    page.click("#btn-wrapup")
    page.wait_for_selector("#state-badge[data-state='available']")
    page.wait_for_selector("#f-answered:text-is('1')")

    # The call of this test: IVR path, then the ACD offers it to s101.
    cid = "c-shift-1"
    ivr_path(server, cid, origin="110")
    server.acd_input("call_arrived", cid, "consult_labor", origin="110", caller_key=KEY)
    page.wait_for_selector(f"#pop[data-call-id='{cid}']")
    page.wait_for_selector("#state-badge[data-state='offered']")
    assert page.inner_text("#pop-caller") == MASKED
    assert page.inner_text("#pop-topic") == "劳动争议"
    path = page.inner_text("#pop-path")
    assert "main_menu: 1" in path and "consult_menu: 1" in path, path
    assert "110" in page.inner_text("#pop-source")
    page.wait_for_selector("#archive-calls li")  # the earlier call, not this one
    assert page.locator("#archive-calls li").count() == 1
    assert page.locator("#archive-orders li").count() == 1
    page.screenshot(path=artifacts / "12-desk-offered-screen-pop.png")

    # Answered: the work-order draft appears (the work-order service makes it) and is prefilled.
    server.acd_input("offer_answered", cid, "s101")
    page.wait_for_selector("#state-badge[data-state='on_call']")
    page.wait_for_selector("#wo-number:has-text('GD')")
    assert page.input_value("#wo-topic") == "劳动争议"
    # The live transcript: a running guess, replaced by the final segment; caller vs lawyer.
    server.call(lambda: server.bus.publish(_partial(cid, "caller", "我单位拖欠")))
    page.wait_for_selector("#transcript .partial:has-text('我单位拖欠')")
    server.log(cid, "transcript.segment", speaker="caller", start_s=0.0, end_s=3.5,
               text=f"我单位拖欠我三个月工资，我的电话是{CLEAR}", source="live")  # fmt: skip
    server.log(cid, "transcript.segment", speaker="seat", start_s=4.0, end_s=7.0,
               text="您可以向劳动争议仲裁委员会申请仲裁。", source="live")  # fmt: skip
    page.wait_for_selector("#transcript .line.sp-seat:has-text('仲裁委员会')")
    assert page.locator("#transcript .partial").count() == 0
    assert page.locator("#transcript .line.sp-caller b").inner_text() == "来电人"
    assert CLEAR not in page.content() and MASKED in page.inner_text("#transcript")
    page.fill("#wo-details", "单位拖欠工资三个月，已告知劳动仲裁途径。")

    # The call ends: the transcript completes and the order's summary is filled in from it;
    # what the lawyer typed stays.
    store_transcript(server, cid, [
        ("caller", "我在工厂上班，单位拖欠我三个月工资一共一万五千元。"),
        ("seat", "您可以向劳动争议仲裁委员会申请仲裁，也可以申请法律援助。"),
    ])  # fmt: skip
    server.acd_input("call_completed", cid, "seat")
    page.wait_for_selector("#state-badge[data-state='wrap_up']")
    left = _seconds(page.inner_text("#wrapup-left"))
    assert WRAP_UP_S - 5 <= left <= WRAP_UP_S, left  # the queue's wrap-up, not the default
    page.wait_for_function("() => document.querySelector('#wo-summary').value.length > 0",
                           timeout=15000)  # fmt: skip
    assert page.input_value("#wo-details") == "单位拖欠工资三个月，已告知劳动仲裁途径。"
    server.log(cid, "survey.offered", call_id=cid)
    server.log(cid, "survey.answered", rating="satisfied")
    page.wait_for_selector("#f-sat:text-is('100%')")
    page.screenshot(path=artifacts / "13-desk-wrap-up-work-order.png")

    # Submit with the keyboard; the order leaves the draft state (the real work-order API).
    with page.expect_response(lambda r: "/actions/submit" in r.url) as resp:
        page.keyboard.press("Alt+s")
    assert resp.value.status == 200
    page.wait_for_selector("#wo-form[data-state='submitted']")
    page.wait_for_selector("#f-orders:text-is('1')")
    order_id = page.get_attribute("#wo-form", "data-order-id")
    order = _order(server, order_id)
    assert order["state"] == "submitted"
    assert order["details"] == "单位拖欠工资三个月，已告知劳动仲裁途径。"

    page.keyboard.press("Alt+w")
    page.wait_for_selector("#state-badge[data-state='available']")
    page.wait_for_selector("#f-answered:text-is('2')")
    assert page.inner_text("#f-aht") != "—"
    page.select_option("#pause-reason", "就餐")
    page.click("#btn-pause")
    page.wait_for_selector("#state-badge[data-state='paused']:has-text('就餐')")
    page.screenshot(path=artifacts / "14-desk-paused-figures.png")
    page.click("#btn-seat-out")
    page.wait_for_selector("#state-badge[data-state='offline']")
    assert str(server.acd.core.seat_view("s101").state) == "offline"


def test_seat_lawyer_cannot_change_another_seat_from_the_page(
    full_server: DeskServer, browser_context: Any
) -> None:
    page = browser_context.new_page()
    sign_in(page, full_server, "lawyer1")
    page.wait_for_url(full_server.url + "/desk")
    status = page.evaluate(
        """async () => (await fetch('/api/acd/seats/s102/login', {method: 'POST',
            headers: {'X-CSRF-Token': Desk.csrf, 'Content-Type': 'application/json'},
            body: '{}'})).status"""
    )
    assert status == 403
    assert "s102" not in full_server.acd.core.seat_ids()  # never touched by the refused call


def test_wallboard_live_queues_alerts_chart_and_forced_state(
    full_server: DeskServer, browser_context: Any, artifacts: Path
) -> None:
    server = full_server
    page = browser_context.new_page()
    sign_in(page, server, "super")
    page.wait_for_url(server.url + "/wallboard")
    page.wait_for_selector("#conn[data-state='up']")
    for seat in ("s101", "s102", "s103", "s104"):
        with page.expect_response(lambda r, s=seat: r.url.endswith(f"/{s}/login")):
            page.evaluate(
                """async (s) => Desk.api('POST', `/api/acd/seats/${s}/login`, {})""", seat
            )
    page.wait_for_selector("#k-available:text-is('4')")

    # Two callers answered, one abandons: answer rate today 2/3 < 95% raises the KPI alert.
    for i, seat in enumerate(("s101", "s102")):
        cid = f"c-wall-{i}"
        ivr_path(server, cid, key=f"{i:02d}" * 32)
        server.acd_input("call_arrived", cid, "consult_labor")
        server.acd_input("offer_answered", cid, seat)
    page.wait_for_selector("#k-talking:text-is('2')")
    page.wait_for_selector("#seats [data-seat='s101'][data-state='on_call']")
    ivr_path(server, "c-wall-x", key="ff" * 32)
    server.acd_input("seat_paused", "s103", "会议")
    server.acd_input("seat_paused", "s104", "会议")
    server.acd_input("call_arrived", "c-wall-x", "consult_labor")
    page.wait_for_selector("#k-waiting:text-is('1')")
    page.wait_for_selector("#queues tr[data-queue='consult_labor']")
    server.acd_input("caller_hung_up", "c-wall-x")
    server.log("c-wall-x", "call.ended", hangup_by="caller")
    page.wait_for_selector("#k-waiting:text-is('0')")
    # The KPI service's snapshot gives today's answer rate; its alert colours the tile.
    page.wait_for_selector("#alerts [data-alert='answer_rate:hotline']", timeout=10000)
    page.wait_for_selector("#tile-answer.bad")
    assert page.inner_text("#k-answer") == "66.7%"
    page.wait_for_selector("#queues tr[data-queue='consult_labor'] td.cell-bad")
    # The chart has drawn both series.
    assert page.locator("#chart polyline#chart-talking").count() == 1
    assert page.get_attribute("#chart-talking", "data-last") == "2"

    # Force s103 (paused 会议) to ready, from the keyboard: Tab to the tile, Enter, choose.
    page.focus("#seats [data-seat='s103']")
    page.keyboard.press("Enter")
    page.wait_for_selector("#force-dialog[open]")
    page.select_option("#force-action", "ready")
    page.screenshot(path=artifacts / "15-wallboard-force-seat.png")
    page.click("#force-apply")
    page.wait_for_selector("#seats [data-seat='s103'][data-state='available']")
    assert str(server.acd.core.seat_view("s103").state) == "available"
    # ... and s104 to a pause with another reason.
    page.click("#seats [data-seat='s104']")
    page.select_option("#force-action", "pause")
    page.select_option("#force-reason", "培训")
    page.click("#force-apply")
    page.wait_for_selector("#seats [data-seat='s104']:has-text('培训')")
    html = page.content()
    assert CLEAR not in html and KEY not in html
    page.wait_for_timeout(200)
    page.screenshot(path=artifacts / "16-wallboard-live-kpi-alerts.png")
    page.click("#lang")
    page.wait_for_selector("#h-q:has-text('Queues')")
    page.screenshot(path=artifacts / "17-wallboard-english.png")
    page.click("#lang")


def test_screen_pop_latency_median_of_20(
    full_server: DeskServer, browser_context: Any, artifacts: Path
) -> None:
    """From the ACD logging ``queue.offered`` (bus publish) to the pop drawn in Chromium."""
    server = full_server
    page = browser_context.new_page()
    sign_in(page, server, "lawyer1")
    page.wait_for_url(server.url + "/desk")
    page.wait_for_selector("#conn[data-state='up']")
    page.click("#btn-seat-out")
    page.wait_for_selector("#state-badge[data-state='available']")
    # The page notes when the pop shows each call, at the next frame (when it is painted).
    page.evaluate(
        """() => { window.popSeen = {};
          new MutationObserver(() => {
            const id = document.getElementById('pop').dataset.callId;
            if (id && !(id in window.popSeen)) {
              window.popSeen[id] = null;
              requestAnimationFrame(() => {
                window.popSeen[id] = performance.timeOrigin + performance.now(); });
            }
          }).observe(document.getElementById('pop'), {attributes: true}); }"""
    )
    delays = []
    for i in range(20):
        cid = f"c-lat-{i}"
        ivr_path(server, cid, key=f"{i:02d}" * 32)
        published: list[float] = []

        def offer(cid: str = cid, published: list[float] = published) -> None:
            published.append(time.time() * 1000)  # the same wall clock as the browser's
            server.acd_input("call_arrived", cid, "consult_labor")

        offer()
        page.wait_for_function("(id) => window.popSeen[id] > 0", arg=cid)
        delays.append(page.evaluate("(id) => window.popSeen[id]", cid) - published[0])
        server.acd_input("offer_answered", cid, "s101")
        server.acd_input("call_completed", cid, "caller")
        server.log(cid, "call.ended", hangup_by="caller")
        page.wait_for_selector("#state-badge[data-state='wrap_up']")
        server.acd_input("wrap_up_done", "s101")
        page.wait_for_selector("#state-badge[data-state='available']")
    median = statistics.median(delays)
    (artifacts / "screen-pop-latency.txt").write_text(
        "queue.offered logged by the ACD -> screen pop painted in Chromium (20 offers)\n"
        f"median {median:.1f} ms, min {min(delays):.1f} ms, max {max(delays):.1f} ms\n"
        + " ".join(f"{d:.1f}" for d in delays)
        + "\n"
    )
    print(f"screen pop latency: median {median:.1f} ms, max {max(delays):.1f} ms")
    assert median < 500, delays


def _partial(cid: str, speaker: str, text: str) -> Any:
    from datetime import UTC, datetime

    from hotline.events.types import CallEvent

    return CallEvent(cid, 0, datetime.now(UTC), "transcript.partial", {"speaker": speaker,
                                                                     "text": text})  # fmt: skip


def _seconds(text: str) -> int:
    m = re.fullmatch(r"(\d+):(\d\d)", text.strip())
    assert m, text
    return int(m.group(1)) * 60 + int(m.group(2))


def _order(server: DeskServer, order_id: str | None) -> dict[str, Any]:
    import asyncio

    from hotline.web import Principal, Role

    assert order_id
    admin = Principal("test", Role.ADMINISTRATOR)
    future = asyncio.run_coroutine_threadsafe(server.workorders.get(order_id, admin), server._loop)
    return future.result(timeout=10)
