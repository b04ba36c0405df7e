"""Request signing for the partner API, both directions. No I/O.

Theory of operation
-------------------
Every request between us and a partner carries five headers:

=====================  ====================================================================
``X-Hotline-Partner``  who sends: the partner's id inbound, our id (``12348``) outbound
``X-Hotline-Timestamp`` Unix time in whole seconds when the request was signed
``X-Hotline-Nonce``    16..128 characters ``[A-Za-z0-9_-]``, never reused by the sender
``X-Hotline-Signature`` ``sha256=`` + lowercase hex HMAC-SHA256 (key: the partner's shared
                       secret) over ``timestamp + "\\n" + nonce + "\\n" + body`` (raw bytes)
``Idempotency-Key``    (POSTs) 1..128 visible ASCII characters; the same key means the same
                       order, however often it is sent
=====================  ====================================================================

``verify`` checks, in this order, that the headers are present and well formed, that the
timestamp is within ``skew`` seconds of our clock (a stale or future request is refused), and
that the signature matches (compared in constant time). It does not check the nonce: that needs
storage, so the caller records ``(partner, nonce)`` in the ``integration_nonces`` table in the
same transaction as what the request changes; a second use of the nonce violates the table's
unique key and is refused as a replay. A nonce only has to be remembered while its timestamp is
inside the window (``nonce_expiry``): after that the timestamp check refuses the replay.

Failures raise ``SignatureError`` with an HTTP status and a short machine code, so the HTTP layer
turns them into JSON errors without knowing the rules.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

PARTNER_HEADER = "X-Hotline-Partner"
TIMESTAMP_HEADER = "X-Hotline-Timestamp"
NONCE_HEADER = "X-Hotline-Nonce"
SIGNATURE_HEADER = "X-Hotline-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_PREFIX = "sha256="

_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


class SignatureError(Exception):
    """A request that is not (correctly, freshly) signed."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Verified:
    partner: str
    timestamp: datetime
    nonce: str


def signed_payload(timestamp: str, nonce: str, body: bytes) -> bytes:
    return timestamp.encode("ascii") + b"\n" + nonce.encode("ascii") + b"\n" + body


def signature(secret: bytes, timestamp: str, nonce: str, body: bytes) -> str:
    digest = hmac.new(secret, signed_payload(timestamp, nonce, body), hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def sign(
    secret: bytes,
    body: bytes,
    *,
    sender: str,
    now: datetime | None = None,
    nonce: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, str]:
    """The headers that make ``body`` a signed request from ``sender``."""
    when = now or datetime.now(UTC)
    timestamp = str(int(when.timestamp()))
    nonce = nonce or new_nonce()
    headers = {
        PARTNER_HEADER: sender,
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: signature(secret, timestamp, nonce, body),
    }
    if idempotency_key is not None:
        headers[IDEMPOTENCY_HEADER] = idempotency_key
    return headers


def verify(
    headers: Mapping[str, str],
    body: bytes,
    *,
    partner: str,
    secret: bytes,
    now: datetime,
    skew: int,
) -> Verified:
    """Check a request claimed to come from ``partner``; raise ``SignatureError`` if not."""
    missing = [
        h
        for h in (PARTNER_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
        if not headers.get(h)
    ]
    if missing:
        raise SignatureError(401, "unsigned", f"缺少签名头 / missing headers: {', '.join(missing)}")
    if headers[PARTNER_HEADER] != partner:
        raise SignatureError(
            401, "partner_mismatch", f"{PARTNER_HEADER} does not match the partner in the URL"
        )
    timestamp = headers[TIMESTAMP_HEADER]
    if not _TIMESTAMP.match(timestamp):
        raise SignatureError(401, "bad_timestamp", f"{TIMESTAMP_HEADER} must be Unix seconds")
    when = datetime.fromtimestamp(int(timestamp), UTC)
    if abs((now - when).total_seconds()) > skew:
        raise SignatureError(
            401,
            "stale_timestamp",
            f"请求时间超出允许范围 / timestamp more than {skew} s from our clock "
            f"({now.isoformat(timespec='seconds')})",
        )
    nonce = headers[NONCE_HEADER]
    if not _NONCE.match(nonce):
        raise SignatureError(401, "bad_nonce", f"{NONCE_HEADER} must be 16..128 of [A-Za-z0-9_-]")
    expected = signature(secret, timestamp, nonce, body)
    given = headers[SIGNATURE_HEADER]
    # compare_digest on bytes: a non-ASCII header must fail the check, not raise TypeError.
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogateescape")):
        raise SignatureError(401, "bad_signature", "签名不正确 / the signature does not match")
    return Verified(partner=partner, timestamp=when, nonce=nonce)


def nonce_expiry(verified: Verified, now: datetime, skew: int) -> datetime:
    """Until when the nonce must be remembered: as long as its timestamp passes ``verify``."""
    return max(verified.timestamp, now) + timedelta(seconds=skew)


def check_idempotency_key(value: str | None) -> str:
    if value is None or value == "":
        raise SignatureError(
            400, "missing_idempotency_key", f"{IDEMPOTENCY_HEADER} is required for pushes"
        )
    if not _IDEMPOTENCY_KEY.match(value):
        raise SignatureError(
            400, "bad_idempotency_key", f"{IDEMPOTENCY_HEADER}: 1..128 visible ASCII characters"
        )
    return value
