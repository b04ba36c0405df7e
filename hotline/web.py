"""The HTTP core every feature's API builds on: JSON errors, who is asking, and who may.

Authentication is pluggable: ``Authenticator`` functions look at a request and return a
``Principal`` or None. The service registers the API-token authenticator (machine clients:
``Authorization: Bearer <service_token>``, with the token generated at set-up); the agent desk
adds its session-cookie authenticator. ``require(*roles)`` guards a handler on the server side:
no principal → 401, a principal without one of the roles → 403, both as JSON errors.

Features add their routes with a ``setup(app: web.Application, service) -> None`` function that
``hotline.service`` calls; the service object is also at ``app[SERVICE_KEY]``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import wraps
from typing import Any

from aiohttp import web


class Role(StrEnum):
    SEAT_LAWYER = "seat_lawyer"  # 坐席律师
    SUPERVISOR = "supervisor"  # 班长
    ADMINISTRATOR = "administrator"
    AUDITOR = "auditor"  # read-only
    SERVICE = "service"  # another program with the API token


@dataclass(frozen=True)
class Principal:
    id: str
    role: Role
    name: str = ""
    seat_id: str | None = None  # the seat a seat lawyer works at


Authenticator = Callable[[web.Request], Awaitable[Principal | None]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SERVICE_KEY = web.AppKey("hotline_service", object)
AUTHENTICATORS_KEY = web.AppKey("hotline_authenticators", list)


def json_error(status: int, code: str, message: str, **details: Any) -> web.Response:
    """A JSON error body that says what was wrong: ``{"error": {"code", "message", ...}}``."""
    body = {"error": {"code": code, "message": message, **details}}
    return web.json_response(body, status=status, dumps=_dumps)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


async def read_json(request: web.Request, max_bytes: int = 1 << 20) -> dict[str, Any]:
    """The request's JSON object body, or a 400/413 ``web.HTTPException`` with a JSON error."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise web.HTTPRequestEntityTooLarge(
            max_size=max_bytes,
            actual_size=request.content_length,
            text=_dumps(
                {"error": {"code": "too_large", "message": f"body over {max_bytes} bytes"}}
            ),
            content_type="application/json",
        )
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request("invalid_json", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise bad_request("invalid_json", "the body must be a JSON object")
    return data


def bad_request(code: str, message: str, **details: Any) -> web.HTTPBadRequest:
    body = _dumps({"error": {"code": code, "message": message, **details}})
    return web.HTTPBadRequest(text=body, content_type="application/json")


def token_authenticator(token: str) -> Authenticator:
    """Machine clients: ``Authorization: Bearer <token>`` (compared in constant time)."""

    async def authenticate(request: web.Request) -> Principal | None:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and given and hmac.compare_digest(given, token):
            return Principal(id="service", role=Role.SERVICE, name="API token")
        return None

    return authenticate


async def principal_of(request: web.Request) -> Principal | None:
    if "principal" in request:
        return request["principal"]
    principal = None
    for authenticate in request.app.get(AUTHENTICATORS_KEY, []):
        principal = await authenticate(request)
        if principal is not None:
            break
    request["principal"] = principal
    return principal


def require(*roles: Role) -> Callable[[Handler], Handler]:
    """Allow the handler only to principals with one of ``roles`` (the service token always)."""
    allowed = {*roles, Role.SERVICE}

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            principal = await principal_of(request)
            if principal is None:
                return json_error(401, "unauthenticated", "sign in or give an API token")
            if principal.role not in allowed:
                return json_error(
                    403,
                    "forbidden",
                    f"role {principal.role} may not do this",
                    allowed=sorted(allowed),
                )
            return await handler(request)

        return guarded

    return decorate


def new_app(service: object, authenticators: list[Authenticator]) -> web.Application:
    app = web.Application(client_max_size=2 << 20)
    app[SERVICE_KEY] = service
    app[AUTHENTICATORS_KEY] = list(authenticators)
    return app
