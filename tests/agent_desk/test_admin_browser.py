"""The administration page in real headless Chromium, on the real service's HTTP app.

An administrator creates a seat and sees its SIP password once, uploads a broken IVR flow and
reads the FILE:LINE problem, uploads a good one and sees it live, and looks at the queues and
the holiday calendar. Screenshots go to ``test-artifacts/agent_desk/``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from desk_server import PASSWORD
from test_admin_api import Admin, start_admin

from acd.seats import get_seat
from hotline.asterisk.render import seat_credential
from ivr.flow import DEFAULT_FLOW


class ThreadedAdmin:
    """``start_admin`` on its own event loop in a thread, for Playwright's sync API."""

    def __init__(self, tmp_path: Path, monkeypatch: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready: Future[Admin] = Future()
        self.thread = threading.Thread(target=self._run, args=(tmp_path, monkeypatch), daemon=True)
        self.thread.start()
        self.admin = self.ready.result(timeout=30)
        self.url = str(self.admin.server.make_url("")).rstrip("/")

    def _run(self, tmp_path: Path, monkeypatch: Any) -> None:
        asyncio.set_event_loop(self.loop)
        gen = start_admin(tmp_path, f"sqlite:///{tmp_path / 'hotline.db'}", monkeypatch)
        try:
            self.ready.set_result(self.loop.run_until_complete(gen.__anext__()))
        except BaseException as exc:
            self.ready.set_exception(exc)
            return
        self.loop.run_forever()
        self.loop.run_until_complete(gen.aclose())
        self.loop.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=20)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: Any) -> Iterator[ThreadedAdmin]:
    served = ThreadedAdmin(tmp_path, monkeypatch)
    try:
        yield served
    finally:
        served.stop()


def sign_in(page: Any, url: str, username: str) -> None:
    page.goto(url + "/")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(url + "/admin*")


def test_admin_creates_a_seat_and_replaces_the_flow(
    site: ThreadedAdmin, browser_context: Any, artifacts: Path
) -> None:
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, site.url, "admin")

    # Seats: create one; the SIP password is shown once, in a dialog.
    page.click("#tabs [data-tab='seats']")
    page.fill("#seat-id", "labor21")
    page.fill("#seat-name", "钱律师")
    page.fill("#seat-skills", "labor:3,family:1")
    page.fill("#seat-region", "武汉")
    page.click("#seat-form button[type=submit]")
    page.wait_for_selector("#sip-dialog[open]")
    password = page.text_content("#sip-password") or ""
    assert page.text_content("#sip-user") == "labor21" and len(password) >= 20
    row = get_seat(site.admin.service.engine, "labor21")
    assert row is not None and row.md5_cred == seat_credential("labor21", password).md5_cred
    page.screenshot(path=artifacts / "20-admin-seat-credentials.png")
    page.click("#sip-close")
    page.wait_for_selector("#sip-dialog:not([open])", state="attached")
    seat_row = page.wait_for_selector("tr[data-seat='labor21']")
    assert "labor:3,family:1" in seat_row.text_content() and "武汉" in seat_row.text_content()
    assert password not in page.content()  # gone once the dialog is closed
    page.reload()
    page.wait_for_selector("tr[data-seat='labor21']")
    assert password not in page.content()
    # Edit its skills and region; the ACD has them at once (the seat is signed out).
    page.click("tr[data-seat='labor21'] button:has-text('编辑')")
    page.fill("#edit-skills", "labor:4")
    page.fill("#edit-region", "宜昌")
    page.click("#seat-edit-form button[type=submit]")
    page.wait_for_selector("tr[data-seat='labor21']:has-text('宜昌')")
    view = site.admin.service.acd.core.seat_view("labor21")
    assert view.skills == {"labor": 4} and view.region == "宜昌"
    page.screenshot(path=artifacts / "21-admin-seats.png")

    # The IVR flow: a broken upload shows its FILE:LINE problem; nothing changes.
    page.click("#tabs [data-tab='flow']")
    page.wait_for_selector("#flow-live[data-flow-id='default-12348']")
    original = DEFAULT_FLOW.read_text()
    broken = original.replace("next: main_menu", "next: no_such_node", 1)
    line = broken.splitlines().index("      next: no_such_node") + 1
    page.set_input_files(
        "#flow-file", files=[{"name": "broken.yaml", "mimeType": "text/yaml",
                              "buffer": broken.encode()}],
    )  # fmt: skip
    page.click("#flow-save")
    problem = page.wait_for_selector(f"#flow-problems li:has-text('broken.yaml:{line}:')")
    assert "no_such_node" in problem.text_content()
    assert site.admin.service.flows.current.id == "default-12348"
    page.screenshot(path=artifacts / "22-admin-flow-error.png")

    # A good upload goes live at once and appears in the history.
    good = original.replace("id: default-12348", "id: hotline-2026-12", 1)
    page.set_input_files(
        "#flow-file", files=[{"name": "good.yaml", "mimeType": "text/yaml",
                              "buffer": good.encode()}],
    )  # fmt: skip
    page.click("#flow-save")
    page.wait_for_selector("#flow-live[data-flow-id='hotline-2026-12']")
    page.wait_for_selector("#flow-result.ok")
    assert site.admin.service.flows.current.id == "hotline-2026-12"
    assert page.locator("#flow-history tr").count() == 2
    page.screenshot(path=artifacts / "23-admin-flow-saved.png")

    # Queues and the calendar, then the English switch.
    page.click("#tabs [data-tab='queues']")
    page.wait_for_selector("tr[data-queue='consult_labor']")
    page.click("#tabs [data-tab='hours']")
    page.wait_for_selector("#hours tr[data-day='mon']:has-text('09:00-17:30')")
    page.wait_for_selector("#holidays tr:has-text('国庆节')")
    page.screenshot(path=artifacts / "24-admin-hours.png")
    page.click("#lang")
    page.wait_for_selector("#tabs [data-tab='hours']:has-text('Hours & holidays')")
    page.click("#tabs [data-tab='seats']")
    page.wait_for_selector("#h-seats:has-text('Seats')")
    page.screenshot(path=artifacts / "25-admin-seats-en.png")
    page.click("#lang")  # back to Chinese for the next test in this browser context
    assert not errors, errors


def test_auditor_sees_the_administration_read_only(
    site: ThreadedAdmin, browser_context: Any, artifacts: Path
) -> None:
    page = browser_context.new_page()
    sign_in(page, site.url, "audit")
    page.wait_for_selector("#audit tr")
    page.click("#tabs [data-tab='seats']")
    assert not page.is_visible("#seat-form")
    page.click("#tabs [data-tab='flow']")
    page.wait_for_selector("#flow-live[data-flow-id='default-12348']")
    assert not page.is_visible("#flow-save")
    assert page.get_attribute("#flow-text", "readonly") is not None
    page.screenshot(path=artifacts / "26-admin-auditor-flow.png")
