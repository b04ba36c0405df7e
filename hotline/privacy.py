"""Phone numbers are personal data: mask them for display and logs, key them for look-ups.

The clear number never goes into the event log or the application log. The keyed hash
(HMAC-SHA256 with the generated ``phone_hash_key``) lets the party archive find a repeat caller
without storing the number itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re

_DIGITS = re.compile(r"\D")


def normalise_number(number: str) -> str:
    """Digits only, with China's +86/0086 country prefix removed."""
    digits = _DIGITS.sub("", number or "")
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) >= 11:
            return digits[len(prefix) :]
    return digits


def mask_number(number: str) -> str:
    """138****8000 for an 11-digit number; shorter ones show only their last digits."""
    digits = normalise_number(number)
    if not digits:
        return "unknown"
    if len(digits) >= 11:
        return f"{digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}"
    shown = 4 if len(digits) >= 7 else min(2, len(digits) - 1)
    return "*" * (len(digits) - shown) + digits[len(digits) - shown :]


def number_key(number: str, key: str) -> str:
    """A stable keyed hash of the number: the look-up key for a caller, never reversible."""
    digits = normalise_number(number)
    return hmac.new(key.encode(), digits.encode(), hashlib.sha256).hexdigest()
