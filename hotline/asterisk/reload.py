"""Making a change of seats take effect in Asterisk, from any process.

``push_seats`` is what ``hotline seats add`` does after a change and what the admin API does
inside the service: write PJSIP's configuration with the active seats' credentials and, when the
instance answers on its console, reload PJSIP so that a new seat can register at once (and a
disabled one can no longer). Blocking (it runs ``asterisk -rx``): call it from a thread.
"""

from __future__ import annotations

from collections.abc import Sequence

from hotline.asterisk.render import SeatCredential
from hotline.asterisk.runtime import AsteriskRuntime


def push_seats(runtime: AsteriskRuntime, seats: Sequence[SeatCredential]) -> str:
    """Re-render the seats into Asterisk's configuration, reload PJSIP when Asterisk runs;
    returns what was done, for the operator."""
    if not runtime.installed:
        return "Asterisk is not installed yet: `hotline setup` will include the seats"
    if runtime.status().running:
        runtime.reload_pjsip(list(seats))
        return "Asterisk reloaded"
    runtime.render_config(list(seats))
    return "Asterisk configuration updated (it takes effect when Asterisk starts)"
