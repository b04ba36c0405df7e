"""Asterisk runtime: installs (system Asterisk or a Debian root), configures, starts and stops
the Asterisk instance that the hotline drives over ARI. See ``runtime.py``."""

from hotline.asterisk.render import (
    MissingModulesError,
    RenderError,
    SeatCredential,
    seat_credential,
)
from hotline.asterisk.runtime import (
    AsteriskError,
    AsteriskNotRunning,
    AsteriskRuntime,
    AsteriskStatus,
)

__all__ = [
    "AsteriskError",
    "AsteriskNotRunning",
    "AsteriskRuntime",
    "AsteriskStatus",
    "MissingModulesError",
    "RenderError",
    "SeatCredential",
    "seat_credential",
]
