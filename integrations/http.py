"""HTTP routes of the work-order exchange (described for partners in ``api.yml``).

``POST /api/partners/{partner}/workorders``   a partner pushes an order to us
``GET  /api/partners/{partner}/workorders/{id}`` where that order is
``GET  /api/openapi.json``                     the OpenAPI document (``api.yml`` as JSON)

A push is checked in this order, and the first failure answers with a JSON error
(``hotline.web.json_error``) before anything is stored: unknown partner (404) or partner not
allowed to push (403); body over ``max_body_bytes`` (413); signature headers missing or wrong,
timestamp outside the clock-skew window (401); Idempotency-Key missing or malformed (400);
not ``application/json`` (415); not a JSON object (400); not a valid order (422, with each
field's problem); then, in one transaction with the order, the nonce (409 when replayed) and
the idempotency key (200 with the stored order when seen before, 409 if it named another order).
A database outage answers 503: the partner retries with the same Idempotency-Key.

Partner requests are authenticated by their signature only (no bearer token): they are
machines of another organisation, each with its own shared secret.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from hotline.web import json_error, json_response
from integrations.config import load_for_runtime, partner_secrets
from integrations.schemas import PartnerWorkOrderIn
from integrations.service import IdempotencyConflict, IntegrationService, Replayed
from integrations.signing import (
    IDEMPOTENCY_HEADER,
    SignatureError,
    check_idempotency_key,
    nonce_expiry,
    verify,
)
from integrations.sms import make_notifier

log = logging.getLogger(__name__)

API_SPEC = Path(__file__).resolve().parent / "api.yml"
INTEGRATIONS_KEY = web.AppKey("integrations", IntegrationService)


class _TooLarge(Exception):
    pass


def load_spec() -> dict[str, Any]:
    return yaml.safe_load(API_SPEC.read_text(encoding="utf-8"))


def setup(app: web.Application, service: Any) -> None:
    """Wire the integration into the hotline service: partners from the runtime directory,
    secrets from the runtime secrets file, the service's engine and call-event log."""
    runtime = service.settings.runtime_path
    config = load_for_runtime(runtime)
    secrets = partner_secrets(runtime, config.partners)
    integrations = IntegrationService(
        service.engine,
        config,
        secrets,
        event_log=getattr(service, "event_log", None),
        notifier=make_notifier(config.sms, runtime),
    )
    service.integrations = integrations
    setup_routes(app, integrations)
    app.cleanup_ctx.append(integrations.lifecycle)


def setup_routes(app: web.Application, integrations: IntegrationService) -> None:
    app[INTEGRATIONS_KEY] = integrations
    spec = load_spec()
    routes = _Routes(integrations, spec)
    app.router.add_get("/api/openapi.json", routes.openapi)
    app.router.add_post("/api/partners/{partner}/workorders", routes.push)
    app.router.add_get("/api/partners/{partner}/workorders/{order_id}", routes.status)


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in item["loc"]) or "(body)", "message": item["msg"]}
        for item in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


class _Routes:
    def __init__(self, integrations: IntegrationService, spec: dict[str, Any]) -> None:
        self.integrations = integrations
        self.config = integrations.config
        self.spec_text = json.dumps(spec, ensure_ascii=False)

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(text=self.spec_text, content_type="application/json")

    def _partner_or_error(self, partner_id: str) -> web.Response | None:
        partner = self.config.partner(partner_id)
        if partner is None or partner_id not in self.integrations.secrets:
            return json_error(
                404, "unknown_partner", f"未知的合作方 / unknown partner {partner_id}"
            )
        return None

    def _verify(self, request: web.Request, partner: str, body: bytes) -> Any:
        return verify(
            request.headers,
            body,
            partner=partner,
            secret=self.integrations.secrets[partner],
            now=self.integrations.clock(),
            skew=self.config.clock_skew_s,
        )

    async def push(self, request: web.Request) -> web.Response:
        partner_id = request.match_info["partner"]
        if (error := self._partner_or_error(partner_id)) is not None:
            return error
        partner = self.config.partner(partner_id)
        assert partner is not None
        if not partner.inbound:
            return json_error(
                403, "inbound_disabled", f"合作方 {partner_id} 未开通工单推送 / pushes not enabled"
            )
        limit = self.config.max_body_bytes
        try:
            body = await _read_body(request, limit)
        except _TooLarge:
            return json_error(
                413, "too_large", f"请求体过大 / body over {limit} bytes", limit=limit
            )
        try:
            verified = self._verify(request, partner_id, body)
            key = check_idempotency_key(request.headers.get(IDEMPOTENCY_HEADER))
        except SignatureError as exc:
            return json_error(exc.status, exc.code, exc.message)
        if request.content_type != "application/json":
            return json_error(
                415, "unsupported_media_type", "Content-Type must be application/json"
            )
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            return json_error(400, "invalid_json", f"请求体不是合法的 JSON / invalid JSON: {exc}")
        if not isinstance(data, dict):
            return json_error(400, "invalid_json", "the body must be a JSON object")
        try:
            order = PartnerWorkOrderIn.model_validate(data)
        except ValidationError as exc:
            return json_error(
                422,
                "invalid_order",
                "工单内容不合法 / invalid work order",
                errors=_validation_errors(exc),
            )
        now = self.integrations.clock()
        try:
            received = await self.integrations.receive(
                partner_id,
                key,
                order,
                nonce=verified.nonce,
                nonce_expires=nonce_expiry(verified, now, self.config.clock_skew_s),
            )
        except Replayed:
            return json_error(
                409, "replayed_nonce", "重复的请求（nonce 已使用）/ nonce already used"
            )
        except IdempotencyConflict as exc:
            return json_error(
                409,
                "idempotency_conflict",
                "该 Idempotency-Key 已用于另一工单 / key already used for a different order",
                order_id=exc.order_id,
            )
        except SQLAlchemyError:
            log.exception("storing a push from partner %s failed", partner_id)
            return json_error(
                503, "unavailable", "暂时无法受理，请用同一 Idempotency-Key 重试 / retry later"
            )
        return json_response(received.order, status=201 if received.created else 200)

    async def status(self, request: web.Request) -> web.Response:
        partner_id = request.match_info["partner"]
        if (error := self._partner_or_error(partner_id)) is not None:
            return error
        limit = self.config.max_body_bytes
        try:
            body = await _read_body(request, limit)
            self._verify(request, partner_id, body)
        except _TooLarge:
            return json_error(413, "too_large", f"body over {limit} bytes", limit=limit)
        except SignatureError as exc:
            return json_error(exc.status, exc.code, exc.message)
        try:
            order = await self.integrations.order(partner_id, request.match_info["order_id"])
        except SQLAlchemyError:
            log.exception("reading an order for partner %s failed", partner_id)
            return json_error(503, "unavailable", "暂时无法查询 / retry later")
        if order is None:
            return json_error(404, "not_found", "没有这个工单 / no such order")
        return json_response(order)
