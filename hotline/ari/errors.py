"""Typed errors of the ARI client: one class per failure a caller can act on.

Asterisk answers a failed REST call with an HTTP status and usually a JSON body
``{"message": "..."}``. The client turns that into one of the classes below so that callers
catch what they can handle (``AriNotFound`` when a channel has already hung up,
``AriUnprocessable`` when it is not in Stasis yet) instead of inspecting status codes.
``AriUnavailable`` covers everything that means "Asterisk is not answering properly right now"
(connection refused or reset, timeout, 5xx): the request may be retried later.
"""

from __future__ import annotations


class AriError(Exception):
    """A failed ARI request. ``status`` is None when no HTTP response arrived."""

    def __init__(self, status: int | None, method: str, path: str, message: str) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.message = message
        super().__init__(status, method, path, message)

    def __str__(self) -> str:
        status = self.status if self.status is not None else "no response"
        return f"ARI {self.method} {self.path} failed ({status}): {self.message}"


class AriBadRequest(AriError):
    """400: a parameter is missing or invalid."""


class AriUnauthorized(AriError):
    """401/403: Asterisk rejected the ARI user name or password (see ari.conf)."""


class AriNotFound(AriError):
    """404: the channel, bridge, playback or recording does not exist (any more)."""


class AriConflict(AriError):
    """409: the resource is in a state that forbids the request (e.g. a bridge id in use)."""


class AriUnprocessable(AriError):
    """422: e.g. "Channel not in Stasis application" (wait for its StasisStart first)."""


class AriUnavailable(AriError):
    """Connection refused/reset, timeout, or a 5xx answer: Asterisk is down or overloaded."""


_BY_STATUS: dict[int, type[AriError]] = {
    400: AriBadRequest,
    401: AriUnauthorized,
    403: AriUnauthorized,
    404: AriNotFound,
    409: AriConflict,
    422: AriUnprocessable,
}


def error_for_status(status: int, method: str, path: str, message: str) -> AriError:
    """Build the typed error for an HTTP error status (>= 400)."""
    if status in _BY_STATUS:
        cls = _BY_STATUS[status]
    elif status >= 500:
        cls = AriUnavailable
    else:
        cls = AriError
    if cls is AriUnauthorized and not message:
        message = "ARI user name or password rejected (check ari.conf and the secrets file)"
    return cls(status, method, path, message)
