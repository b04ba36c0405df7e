"""The desk in real headless Chromium (Debian chromium driven by Playwright's sync API).

Screenshots of the main screens go to ``test-artifacts/agent_desk/``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from desk_server import PASSWORD, DeskServer

from hotline.web import Role

CLEAR = "13800138000"
MASKED = "138****8000"


def sign_in(page: Any, server: DeskServer, username: str, password: str = PASSWORD) -> None:
    page.goto(server.url + "/")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#submit")


def live(page: Any) -> None:
    page.wait_for_selector("#conn[data-state='up']")


def seed_wallboard(server: DeskServer) -> None:
    """A morning's picture: seats in every state, calls waiting, ringing and talking."""
    states = {
        "s101": "available",
        "s102": "on_call",
        "s103": "on_call",
        "s104": "paused",
        "s105": "wrap_up",
        "s106": "available",
        "s107": "offered",
        "s108": "on_call",
    }
    for seat, state in states.items():
        server.publish(f"seat:{seat}", "seat.login", seat_id=seat, region="武汉")
        extra = {"reason": "用餐"} if state == "paused" else {}
        server.publish(f"seat:{seat}", "seat.state_changed", seat_id=seat, to=state, **extra)
    calls = [
        ("c-1001", "13800138000", "labour", "劳动争议", "talking", "s102"),
        ("c-1002", "13911112222", "marriage", "婚姻家庭", "talking", "s103"),
        ("c-1003", "15000003333", "labour", "劳动争议", "waiting", None),
        ("c-1004", "18600004444", "general", "合同纠纷", "offered", "s107"),
        ("c-1005", "13700005555", "marriage", "婚姻家庭", "waiting", None),
        ("c-1006", "02787654321", "general", "法律援助", "talking", "s108"),
    ]
    for cid, caller, queue, topic, state, seat in calls:
        via = "110" if cid == "c-1004" else "12345" if cid == "c-1006" else "direct"
        server.publish(cid, "call.entered", caller=caller, dialled="12348", via=via)
        server.publish(cid, "ivr.choice", node="main", choice="2", target=queue)
        server.publish(cid, "ivr.action", node=queue, action="queue", queue=queue, topic=topic)
        server.publish(cid, "queue.entered", call_id=cid, queue=queue)
        if state in ("offered", "talking"):
            server.publish(cid, "queue.offered", call_id=cid, queue=queue, seat_id=seat)
        if state == "talking":
            server.publish(cid, "queue.connected", call_id=cid, queue=queue, seat_id=seat)


@pytest.mark.parametrize(
    ("username", "path", "marker"),
    [
        ("lawyer1", "/desk", "#state-badge"),
        ("super", "/wallboard", "#k-waiting"),
        ("admin", "/admin", "#create-form"),
        ("audit", "/admin", "#audit tr"),
    ],
)
def test_each_role_signs_in_to_its_page(
    server: DeskServer, browser_context: Any, username: str, path: str, marker: str
) -> None:
    page = browser_context.new_page()
    sign_in(page, server, username)
    page.wait_for_url(server.url + path)
    page.wait_for_selector(marker)
    page.wait_for_selector("#who:not(:empty)")  # filled once /api/auth/me answers
    assert "坐席" in page.inner_text("#who") or username in ("super", "admin", "audit")
    # The session cookie is not readable by page scripts (HttpOnly).
    assert "hotline_session" not in page.evaluate("document.cookie")
    cookie = next(c for c in browser_context.cookies() if c["name"] == "hotline_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_sign_in_page_wrong_password_then_lock_out(
    server_factory: Callable[..., DeskServer], browser_context: Any, artifacts: Path
) -> None:
    server = server_factory(max_failures=3)
    server.add_user("lawyer1", Role.SEAT_LAWYER, "s101")
    page = browser_context.new_page()
    page.goto(server.url + "/")
    page.screenshot(path=artifacts / "01-sign-in.png")
    # Keyboard only: type, Tab, type, Enter.
    page.focus("#username")
    page.keyboard.type("lawyer1")
    page.keyboard.press("Tab")
    page.keyboard.type("Wrong-Password-1")
    page.keyboard.press("Enter")
    page.wait_for_selector("#error:not(.hidden)")
    assert "用户名或密码错误" in page.inner_text("#error")
    page.screenshot(path=artifacts / "02-sign-in-wrong-password.png")
    for _ in range(2):
        page.fill("#password", "Wrong-Password-1")
        with page.expect_response("**/api/auth/login") as resp:
            page.click("#submit")
        assert resp.value.status == 401
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_selector("#error:has-text('账户已锁定')")
    assert page.url == server.url + "/"
    page.screenshot(path=artifacts / "03-sign-in-locked.png")


def test_desk_screen_pop_shows_masked_caller_path_and_topic(
    server: DeskServer, browser_context: Any, artifacts: Path
) -> None:
    page = browser_context.new_page()
    sign_in(page, server, "lawyer1")
    page.wait_for_url(server.url + "/desk")
    live(page)
    page.screenshot(path=artifacts / "04-desk-idle.png")

    server.publish("seat:s101", "seat.state_changed", seat_id="s101", to="available")
    page.wait_for_selector("#state-badge[data-state='available']")
    # Someone else's call must never appear on this desk.
    server.publish("c-x", "call.entered", caller="13911112222", dialled="12348")
    server.publish("c-x", "queue.offered", call_id="c-x", queue="labour", seat_id="s102")

    cid = "c-2001"
    server.publish(cid, "call.entered", caller=CLEAR, dialled="12348", via="110",
                   attached={"incident": "110-2026-0042", "callback_number": CLEAR})  # fmt: skip
    server.publish(cid, "ivr.call_started", is_repeat=True, special_group=True)
    server.publish(cid, "ivr.choice", node="main", choice="2", target="labour")
    server.publish(cid, "ivr.choice", node="labour", choice="1", target="queue_wages")
    server.publish(cid, "ivr.action", node="queue_wages", action="queue", queue="labour",
                   topic="劳动争议·欠薪")  # fmt: skip
    server.publish(cid, "queue.entered", call_id=cid, queue="labour")
    offered_at = time.monotonic()
    server.publish(cid, "queue.offered", call_id=cid, queue="labour", seat_id="s101")
    server.publish("seat:s101", "seat.state_changed", seat_id="s101", to="offered")
    page.wait_for_selector(f"#pop[data-call-id='{cid}']:not(.hidden)")
    pop_delay_ms = (time.monotonic() - offered_at) * 1000
    assert page.inner_text("#pop-caller") == MASKED
    assert "劳动争议·欠薪" in page.inner_text("#pop-topic")
    assert "main: 2" in page.inner_text("#pop-path") and "labour: 1" in page.inner_text("#pop-path")
    assert "110" in page.inner_text("#pop-source")
    assert page.input_value("#wo-topic") == "劳动争议·欠薪"  # the work order is prefilled

    server.publish(cid, "queue.connected", call_id=cid, queue="labour", seat_id="s101")
    server.publish("seat:s101", "seat.state_changed", seat_id="s101", to="on_call")
    page.wait_for_selector("#state-badge[data-state='on_call']")
    page.wait_for_selector("#f-answered:has-text('1')")
    page.fill("#wo-summary", "来电人反映单位拖欠三个月工资，咨询如何申请劳动仲裁。")
    page.fill("#wo-details", "告知可向劳动争议仲裁委员会申请仲裁，并可申请法律援助。")
    page.screenshot(path=artifacts / "05-desk-screen-pop.png")

    html = page.content()
    assert CLEAR not in html and "13911112222" not in html
    assert "c-x" not in html
    assert pop_delay_ms < 2000  # the median of 20 is measured in test_desk_shift

    # English switch, then wrap-up.
    page.click("#lang")
    page.wait_for_selector("#h-pop:has-text('Screen pop')")
    server.publish(cid, "call.ended", hangup_by="caller")
    server.publish("seat:s101", "seat.state_changed", seat_id="s101", to="wrap_up")
    page.wait_for_selector("#wrapup:not(.hidden)")
    page.screenshot(path=artifacts / "06-desk-wrap-up-english.png")
    page.click("#lang")


def test_desk_state_keys_work_from_the_keyboard(server: DeskServer, browser_context: Any) -> None:
    page = browser_context.new_page()
    sign_in(page, server, "lawyer1")
    page.wait_for_url(server.url + "/desk")
    live(page)
    server.publish("seat:s101", "seat.state_changed", seat_id="s101", to="paused", reason="meal")
    page.wait_for_selector("#state-badge[data-state='paused']")
    # The ACD API is not mounted in this server: the command reaches the server (POST with the
    # CSRF token) and the page says the function is not connected.
    with page.expect_request(lambda r: r.url.endswith("/api/acd/seats/s101/ready")) as req:
        page.keyboard.press("Alt+r")
    assert req.value.headers.get("x-csrf-token")
    page.wait_for_selector(".toast")


def test_wallboard_shows_live_queues_calls_and_seats(
    server: DeskServer, browser_context: Any, artifacts: Path
) -> None:
    page = browser_context.new_page()
    sign_in(page, server, "super")
    page.wait_for_url(server.url + "/wallboard")
    live(page)
    seed_wallboard(server)
    page.wait_for_selector("#k-waiting:text-is('3')")  # two waiting + one ringing
    page.wait_for_selector("#k-talking:text-is('3')")
    page.wait_for_selector("#seats .seat[data-seat='s108']")
    assert page.inner_text("#k-available") == "2"
    rows = page.inner_text("#queues")
    assert "labour" in rows and "marriage" in rows
    html = page.content()
    for clear in ("13800138000", "13911112222", "15000003333", "02787654321"):
        assert clear not in html
    assert MASKED in page.inner_text("#calls")
    # A call answered: waiting drops, talking rises, live.
    server.publish("c-1003", "queue.offered", call_id="c-1003", queue="labour", seat_id="s101")
    server.publish("c-1003", "queue.connected", call_id="c-1003", queue="labour", seat_id="s101")
    server.publish("seat:s101", "seat.state_changed", seat_id="s101", to="on_call")
    page.wait_for_selector("#k-talking:text-is('4')")
    page.wait_for_selector("#k-waiting:text-is('2')")
    page.wait_for_timeout(300)  # let the canvas chart settle for the screenshot
    page.screenshot(path=artifacts / "07-wallboard.png")


def test_admin_creates_user_who_changes_the_first_password(
    server: DeskServer, browser_context: Any, chromium: Any, artifacts: Path
) -> None:
    page = browser_context.new_page()
    sign_in(page, server, "admin")
    page.wait_for_url(server.url + "/admin")
    page.fill("#new-username", "lawyer7")
    page.fill("#new-name", "周律师")
    page.select_option("#new-role", "seat_lawyer")
    page.fill("#new-seat", "s107")
    page.click("#create-form button[type=submit]")
    page.wait_for_selector("#pw-dialog[open]")
    password = page.inner_text("#pw-value").strip()
    assert len(password) == 16
    page.wait_for_selector("#users tr[data-user='lawyer7']")
    page.screenshot(path=artifacts / "08-admin-new-user-password.png")
    page.click("#pw-dialog button")
    page.wait_for_selector("#audit tr:has-text('user.created')")
    page.screenshot(path=artifacts / "09-admin.png")

    other = chromium.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    try:
        p2 = other.new_page()
        sign_in(p2, server, "lawyer7", password)
        p2.wait_for_selector("#change-form:not(.hidden)")
        p2.screenshot(path=artifacts / "10-change-first-password.png")
        p2.fill("#new1", "Brand-New-Secret-7")
        p2.fill("#new2", "Brand-New-Secret-7")
        p2.click("#change-submit")
        p2.wait_for_url(server.url + "/desk")
        p2.wait_for_selector("#seat-id:text-is('s107')")
    finally:
        other.close()

    # Lock from the page (confirm dialog accepted); the user's session ends at once.
    page.on("dialog", lambda d: d.accept())
    page.click("#users tr[data-user='lawyer7'] button.danger")
    page.wait_for_selector("#users tr[data-user='lawyer7'] .s-waiting")
    assert server.store.get_user("lawyer7").disabled  # type: ignore[union-attr]


def test_auditor_sees_admin_page_read_only(
    server: DeskServer, browser_context: Any, artifacts: Path
) -> None:
    page = browser_context.new_page()
    sign_in(page, server, "audit")
    page.wait_for_url(server.url + "/admin")
    page.wait_for_selector("#audit tr")
    assert page.is_visible(".readonly-note")
    assert not page.is_visible("#create-form")
    assert page.locator("#users button").count() == 0
    # Even a hand-made request from the auditor's page is refused by the server.
    status = page.evaluate(
        """async () => (await fetch('/api/admin/users/lawyer1/lock', {method: 'POST',
            headers: {'X-CSRF-Token': Desk.csrf, 'Content-Type': 'application/json'},
            body: '{}'})).status"""
    )
    assert status == 403
    page.screenshot(path=artifacts / "11-admin-auditor-read-only.png")


def test_session_expiry_sends_the_browser_back_to_sign_in(
    server_factory: Callable[..., DeskServer], browser_context: Any
) -> None:
    server = server_factory(idle_timeout_s=1.5)
    server.add_user("sup", Role.SUPERVISOR)
    page = browser_context.new_page()
    sign_in(page, server, "sup")
    page.wait_for_url(server.url + "/wallboard")
    # No activity: the server ends the session, closes the socket, the page goes to sign-in.
    page.wait_for_url(server.url + "/", timeout=8000)
    page.goto(server.url + "/wallboard")
    assert page.url == server.url + "/"


def test_seat_lawyer_cannot_open_other_pages(server: DeskServer, browser_context: Any) -> None:
    page = browser_context.new_page()
    sign_in(page, server, "lawyer1")
    page.wait_for_url(server.url + "/desk")
    response = page.goto(server.url + "/admin")
    assert response.status == 403
    assert "无权访问" in page.inner_text("body")
