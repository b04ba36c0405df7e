"""SMS notices to callers: one interface, two back ends, three messages.

``Notifier`` words the messages (Chinese, with the hotline's signature) for the three occasions
the hotline texts a caller: a callback was booked, a work order's status changed, and the
satisfaction-survey link. It hands an ``SmsMessage`` to a back end:

* ``FileSmsBackend`` (development): appends one JSON line per message to a file and logs it,
  with the number *masked* (138****8000) in both; the text is kept so a developer can read it.
* ``HttpSmsBackend``: POSTs (or PUTs) to an SMS gateway; the request body is a Jinja2 template
  from the configuration (sandboxed, strict about undefined names) with ``to``, ``text``,
  ``kind`` and ``sender``; use ``|tojson`` to quote values in a JSON body. A non-2xx answer or
  a network error raises ``SmsError``; the caller decides whether to retry.

The clear number only ever leaves the process in the gateway request: never in logs or files.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import aiohttp
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from hotline.privacy import mask_number, normalise_number
from integrations.config import SmsSettings

log = logging.getLogger(__name__)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")

STATUS_LABELS = {
    "received": "已接收",
    "rejected": "不予受理",
    "draft": "草稿",
    "submitted": "已受理",
    "dispatched": "已派单",
    "claimed": "已认领",
    "in_progress": "办理中",
    "resolved": "已办结",
    "reviewed": "已审核",
    "closed": "已归档",
    "reopened": "重新办理",
}


class SmsError(Exception):
    """The message was not accepted by the back end."""


@dataclass(frozen=True)
class SmsMessage:
    to: str  # the clear number: personal data, never logged
    text: str
    kind: str  # callback_booked | workorder_status | survey_link


class SmsBackend(Protocol):
    async def send(self, message: SmsMessage) -> None: ...

    async def close(self) -> None: ...


class FileSmsBackend:
    """Development back end: JSON lines with masked numbers, and a log line."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    async def send(self, message: SmsMessage) -> None:
        masked = mask_number(message.to)
        record = {
            "ts": datetime.now(UTC).isoformat(),
            "to": masked,
            "kind": message.kind,
            "text": message.text,
        }
        await asyncio.to_thread(self._append, json.dumps(record, ensure_ascii=False))
        log.info("SMS to %s (%s): %s", masked, message.kind, message.text)

    async def close(self) -> None:
        return None


class HttpSmsBackend:
    """An SMS gateway reached over HTTP, the body rendered from a template."""

    def __init__(self, settings: SmsSettings, *, http: aiohttp.ClientSession | None = None) -> None:
        if not settings.url:
            raise ValueError("the http SMS back end needs a url")
        self.settings = settings
        self.url = settings.url
        env = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
        try:
            self.template = env.from_string(settings.body_template)
        except TemplateError as exc:
            raise ValueError(f"sms.body_template is not a valid Jinja2 template: {exc}") from exc
        self._http = http
        self._own_http = http is None

    def render(self, message: SmsMessage) -> str:
        return self.template.render(
            to=normalise_number(message.to),
            text=message.text,
            kind=message.kind,
            sender=self.settings.sender,
        )

    async def send(self, message: SmsMessage) -> None:
        try:
            body = self.render(message)
        except TemplateError as exc:
            raise SmsError(f"sms.body_template failed: {exc}") from exc
        if self._http is None:
            self._http = aiohttp.ClientSession()
        headers = {"Content-Type": self.settings.content_type, **self.settings.headers}
        masked = mask_number(message.to)
        try:
            async with self._http.request(
                self.settings.method,
                self.url,
                data=body.encode("utf-8"),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
            ) as response:
                answer = (await response.text(errors="replace"))[:200]
                if not 200 <= response.status < 300:
                    raise SmsError(f"gateway answered HTTP {response.status}: {answer}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SmsError(f"gateway unreachable: {type(exc).__name__}: {exc}") from exc
        log.info("SMS to %s (%s) accepted by the gateway", masked, message.kind)

    async def close(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None


def make_backend(settings: SmsSettings, runtime_dir: Path) -> SmsBackend:
    if settings.backend == "http":
        return HttpSmsBackend(settings)
    return FileSmsBackend(settings.file or runtime_dir / "sms.jsonl")


def _local(when: datetime) -> str:
    return when.astimezone(LOCAL_TZ).strftime("%m月%d日 %H:%M")


class Notifier:
    """The hotline's three SMS notices, worded once."""

    def __init__(self, backend: SmsBackend, *, signature: str = "【12348法律服务热线】") -> None:
        self.backend = backend
        self.signature = signature

    async def callback_booked(self, number: str, *, before: datetime | None = None) -> SmsMessage:
        when = f"将于{_local(before)}前" if before else "将尽快"
        text = f"{self.signature}您的回拨预约已登记，律师{when}回电，请保持电话畅通。"
        return await self._send(number, text, "callback_booked")

    async def workorder_status_changed(
        self, number: str, *, order_id: str, status: str
    ) -> SmsMessage:
        label = STATUS_LABELS.get(status, status)
        text = (
            f"{self.signature}您的工单{order_id}状态已更新为「{label}」。"
            "如需查询进度，请拨打12348。"
        )
        return await self._send(number, text, "workorder_status")

    async def survey_link(self, number: str, *, url: str) -> SmsMessage:
        text = f"{self.signature}感谢您致电12348，请对本次服务进行评价：{url}"
        return await self._send(number, text, "survey_link")

    async def _send(self, number: str, text: str, kind: str) -> SmsMessage:
        message = SmsMessage(to=number, text=text, kind=kind)
        await self.backend.send(message)
        return message


def make_notifier(settings: SmsSettings, runtime_dir: Path) -> Notifier:
    return Notifier(make_backend(settings, runtime_dir), signature=settings.signature)
