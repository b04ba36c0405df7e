"""The hotline's ARI client: REST + one event WebSocket, typed events, per-call ordered dispatch.

See :mod:`hotline.ari.client` for the theory of operation.
"""

from hotline.ari.client import GLOBAL_KEY, AriClient, Backoff, current_route_key, encode_params
from hotline.ari.errors import (
    AriBadRequest,
    AriConflict,
    AriError,
    AriNotFound,
    AriUnauthorized,
    AriUnavailable,
    AriUnprocessable,
)
from hotline.ari.events import Channel, Event, UnknownEvent, parse_event

__all__ = [
    "GLOBAL_KEY",
    "AriBadRequest",
    "AriClient",
    "AriConflict",
    "AriError",
    "AriNotFound",
    "AriUnauthorized",
    "AriUnavailable",
    "AriUnprocessable",
    "Backoff",
    "Channel",
    "Event",
    "UnknownEvent",
    "current_route_key",
    "encode_params",
    "parse_event",
]
