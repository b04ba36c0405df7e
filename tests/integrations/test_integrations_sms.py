"""SMS notices: the development file back end and an HTTP gateway on a loopback port."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from hotline.testing import free_port
from integrations.config import SmsSettings
from integrations.sms import FileSmsBackend, HttpSmsBackend, Notifier, SmsError, make_notifier

NUMBER = "13800138000"


async def test_file_backend_masks_numbers_and_keeps_the_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = make_notifier(SmsSettings(file=tmp_path / "sms.jsonl"), tmp_path)
    assert isinstance(notifier.backend, FileSmsBackend)
    caplog.set_level(logging.INFO, logger="integrations.sms")
    when = datetime(2026, 10, 1, 6, 30, tzinfo=UTC)  # 14:30 in Shanghai
    await notifier.callback_booked(NUMBER, before=when)
    await notifier.workorder_status_changed(NUMBER, order_id="WO-2026-0001", status="resolved")
    await notifier.survey_link(NUMBER, url="https://12348.example.cn/s/abc")

    lines = [json.loads(line) for line in (tmp_path / "sms.jsonl").read_text().splitlines()]
    assert [m["kind"] for m in lines] == ["callback_booked", "workorder_status", "survey_link"]
    assert {m["to"] for m in lines} == {"138****8000"}
    assert "10月01日 14:30" in lines[0]["text"]
    assert "「已办结」" in lines[1]["text"] and "WO-2026-0001" in lines[1]["text"]
    assert lines[2]["text"].endswith("https://12348.example.cn/s/abc")
    everything = (tmp_path / "sms.jsonl").read_text() + caplog.text
    assert NUMBER not in everything
    assert "138****8000" in caplog.text


class Gateway:
    def __init__(self) -> None:
        self.received: list[tuple[dict, dict]] = []
        self.status = 200

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), json.loads(await request.read())))
        return web.json_response({"code": 0}, status=self.status)


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[Gateway, str]]:
    gw = Gateway()
    app = web.Application()
    app.router.add_post("/send", gw.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield gw, f"http://127.0.0.1:{port}/send"
    finally:
        await runner.cleanup()


async def test_http_gateway_gets_the_templated_body(
    gateway: tuple[Gateway, str], caplog: pytest.LogCaptureFixture
) -> None:
    gw, url = gateway
    settings = SmsSettings(
        backend="http",
        url=url,
        headers={"X-Api-Key": "k"},
        body_template=(
            '{"phone": {{ to|tojson }}, "content": {{ text|tojson }}, '
            '"kind": {{ kind|tojson }}, "sign": {{ sender|tojson }}}'
        ),
    )
    backend = HttpSmsBackend(settings)
    caplog.set_level(logging.INFO, logger="integrations.sms")
    try:
        notifier = Notifier(backend)
        message = await notifier.survey_link("+86 138-0013-8000", url='https://x.cn/"s"<b>')
        headers, body = gw.received[0]
        assert body == {
            "phone": NUMBER,
            "content": message.text,
            "kind": "survey_link",
            "sign": "12348",
        }
        assert headers["X-Api-Key"] == "k"
        assert NUMBER not in caplog.text

        gw.status = 500
        with pytest.raises(SmsError, match="HTTP 500"):
            await notifier.callback_booked(NUMBER)
    finally:
        await backend.close()


async def test_gateway_unreachable_and_bad_templates_are_errors() -> None:
    closed = f"http://127.0.0.1:{free_port()}/send"
    backend = HttpSmsBackend(SmsSettings(backend="http", url=closed, timeout_s=2))
    try:
        with pytest.raises(SmsError, match="unreachable"):
            await Notifier(backend).survey_link(NUMBER, url="https://x.cn")
    finally:
        await backend.close()
    with pytest.raises(ValueError, match="template"):
        HttpSmsBackend(SmsSettings(backend="http", url=closed, body_template="{{ to "))
    strict = HttpSmsBackend(SmsSettings(backend="http", url=closed, body_template="{{ nope }}"))
    with pytest.raises(SmsError, match="template"):
        await Notifier(strict).survey_link(NUMBER, url="https://x.cn")
