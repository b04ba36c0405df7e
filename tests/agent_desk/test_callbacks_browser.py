"""The callback list in real headless Chromium: a callback booked in the IVR becomes an order
on the supervisor's wallboard, the supervisor assigns it to a seat, the seat lawyer sees it on
the desk (masked number, due time), presses 回拨 (the work-order API's ``callback`` action), sees
the outcome, calls again and marks it done. The desk runs with the real ACD and work-order
services (no Asterisk: the dialer's outcome is reported as the ACD would report it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from desk_server import PASSWORD, DeskServer

CLEAR = "13700002222"
MASKED = "137****2222"


def sign_in(page: Any, server: DeskServer, username: str) -> None:
    page.goto(server.url + "/")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#submit")


def run(server: DeskServer, make: Callable[[], Any]) -> Any:
    """Run a coroutine of the server's services on the server's loop."""
    assert server._loop is not None
    return asyncio.run_coroutine_threadsafe(make(), server._loop).result(timeout=15)


def wait_for(check: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_supervisor_assigns_a_booked_callback_and_the_lawyer_calls_back_from_the_desk(
    full_server: DeskServer, browser_context: Any, chromium: Any, artifacts: Path
) -> None:
    server = full_server
    service = server.workorders
    sup = service  # readable names below
    # The IVR's events of an after-hours call that booked a callback (as the call path logs them).
    service.remember_caller("b-1", CLEAR)
    server.log("b-1", "call.entered", caller=MASKED, caller_key="key-b1", dialled="12348")
    server.log("b-1", "ivr.action", node="queue_labor", action="queue", topic="劳动争议")
    server.log("b-1", "callback.booked", topic="劳动争议", caller_key="key-b1")
    from hotline.web import Principal, Role

    boss = Principal("super", Role.SUPERVISOR)
    orders = wait_for(
        lambda: run(server, lambda: sup.callback_list(boss, "open")), "the callback order"
    )
    order_id = orders[0]["id"]

    # The supervisor assigns it on the wallboard.
    board = browser_context.new_page()
    sign_in(board, server, "super")
    board.wait_for_url(server.url + "/wallboard")
    row = f"#wb-callbacks tr[data-order='{order_id}']"
    board.wait_for_selector(row)
    assert MASKED in board.inner_text(row) and CLEAR not in board.content()
    assert "预约回拨" in board.inner_text(row) and "劳动争议" in board.inner_text(row)
    board.select_option(f"{row} select.cb-seat", "s101")
    with board.expect_response(f"**/api/workorders/{order_id}/actions/assign") as resp:
        board.click(f"{row} .cb-assign-btn")
    assert resp.value.status == 200
    board.wait_for_selector(f"{row} .cb-seat-now:has-text('s101')")
    board.screenshot(path=artifacts / "40-wallboard-callbacks.png")

    # Another lawyer never sees it; the lawyer at s101 does, masked, with 回拨.
    contexts = [
        chromium.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN",
                             timezone_id="Asia/Shanghai")
        for _ in range(2)
    ]  # fmt: skip
    for context in contexts:
        context.set_default_timeout(5000)
    try:
        _lawyers(server, service, boss, order_id, contexts, board, row, artifacts)
    finally:
        for context in contexts:
            context.close()


def _lawyers(
    server: DeskServer, service: Any, boss: Any, order_id: str, contexts: list[Any],
    board: Any, row: str, artifacts: Path,
) -> None:  # fmt: skip
    other = contexts[1].new_page()
    sign_in(other, server, "lawyer2")
    other.wait_for_url(server.url + "/desk")
    page = contexts[0].new_page()
    sign_in(page, server, "lawyer1")
    page.wait_for_url(server.url + "/desk")
    item = f"#callbacks li.cb-order[data-order='{order_id}']"
    page.wait_for_selector(item)
    text = page.inner_text(item)
    assert MASKED in text and "劳动争议" in text and "回拨时限" in text
    assert CLEAR not in page.content()
    other.wait_for_selector("#callbacks li")
    assert other.query_selector(item) is None

    with page.expect_request(f"**/api/workorders/{order_id}/actions/callback") as req:
        page.click(f"{item} .cb-call")
    assert req.value.method == "POST"
    page.wait_for_selector(f"{item} .cb-outcome[data-outcome='dialing']")
    detail = run(server, lambda: service.get(order_id, boss))
    asked = [h for h in detail["history"] if h["type"] == "workorder.callback_requested"]
    assert len(asked) == 1 and asked[0]["data"]["seat_id"] == "s101"
    assert asked[0]["actor"] == "lawyer1"

    # The ACD reports no answer: shown, and 再次回拨 is offered.
    run(server, lambda: service.callback_outcome(order_id, "no_answer"))
    page.wait_for_selector(f"{item} .cb-outcome[data-outcome='no_answer']:has-text('无人接听')")
    assert page.inner_text(f"{item} .cb-call") == "再次回拨"
    page.screenshot(path=artifacts / "41-desk-callback-no-answer.png")

    page.click(f"{item} .cb-call")
    page.wait_for_selector(f"{item} .cb-outcome[data-outcome='dialing']")
    run(server, lambda: service.callback_outcome(order_id, "answered"))
    page.wait_for_selector(f"{item} .cb-outcome[data-outcome='answered']")
    page.wait_for_selector(f"{item} .cb-done")
    with page.expect_response(f"**/api/workorders/{order_id}/actions/resolve") as resp:
        page.click(f"{item} .cb-done")
    assert resp.value.status == 200
    page.wait_for_selector(item, state="detached")
    detail = run(server, lambda: service.get(order_id, boss))
    assert detail["state"] == "resolved"
    types = [h["type"] for h in detail["history"]]
    assert types[:2] == ["workorder.create", "workorder.assign"]
    assert types[-2:] == ["workorder.callback", "workorder.resolve"]
    assert types.count("workorder.callback_requested") == 2
    # The wallboard's list follows the events: the order is no longer open.
    board.wait_for_selector(row, state="detached")
