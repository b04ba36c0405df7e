"""The caller's number at rest: AES-GCM with a key from the runtime secrets, rotatable.

The work-order key ring lives in ``<runtime_dir>/secrets.yaml`` (mode 0600) under
``workorder_keys`` (key id → URL-safe base64 of 32 random bytes) and
``workorder_key_current``; the first key is generated when none exists, under the same file
lock the recordings feature uses, and every other entry of the file is kept as it was.

A sealed value is text: ``v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>``, with a fresh
96-bit nonce and the order id as associated data, so a ciphertext copied onto another order
does not open. Old keys stay in the ring after a rotation and still open what they sealed.
"""

from __future__ import annotations

import base64
import os
import secrets as _secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hotline import secrets as secrets_file

KEYS_ENTRY = "workorder_keys"
CURRENT_ENTRY = "workorder_key_current"
_VERSION = "v1"
_AAD = b"hotline-workorder-caller:"


class SealError(ValueError):
    """A sealed value that cannot be opened (unknown key, tampered, wrong order)."""


@dataclass(frozen=True)
class Sealer:
    """Seal and open short personal values (phone numbers) bound to one order id."""

    keys: Mapping[str, bytes] = field(repr=False)
    current: str

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ValueError(f"current key {self.current!r} is not in the key ring")
        for key_id, key in self.keys.items():
            if len(key) != 32 or ":" in key_id:
                raise ValueError(f"work-order key {key_id!r} must be 32 bytes, id without ':'")

    def seal(self, plain: str, order_id: str) -> str:
        nonce = os.urandom(12)
        box = AESGCM(self.keys[self.current]).encrypt(
            nonce, plain.encode(), _AAD + order_id.encode()
        )
        return f"{_VERSION}:{self.current}:{base64.urlsafe_b64encode(nonce + box).decode()}"

    def open(self, sealed: str, order_id: str) -> str:
        try:
            version, key_id, body = sealed.split(":", 2)
            if version != _VERSION:
                raise SealError(f"unknown sealed-value version {version!r}")
            raw = base64.urlsafe_b64decode(body.encode())
            key = self.keys[key_id]
            plain = AESGCM(key).decrypt(raw[:12], raw[12:], _AAD + order_id.encode())
        except KeyError:
            raise SealError("the key of this value is not in the key ring") from None
        except (ValueError, InvalidTag) as exc:
            raise SealError("the value does not open with this key and order") from exc
        return plain.decode()


def _new_id() -> str:
    return f"wk-{datetime.now(UTC):%Y%m%d}-{_secrets.token_hex(3)}"


def _ring(data: Mapping[str, Any]) -> Sealer:
    keys = {str(k): base64.urlsafe_b64decode(str(v).encode()) for k, v in data[KEYS_ENTRY].items()}
    return Sealer(keys, str(data[CURRENT_ENTRY]))


def load_sealer(runtime_dir: Path) -> Sealer:
    """The work-order key ring from the runtime secrets; the first key is made if none exists."""
    with secrets_file.edit(Path(runtime_dir)) as data:
        if not data.get(KEYS_ENTRY) or data.get(CURRENT_ENTRY) not in data[KEYS_ENTRY]:
            key_id = _new_id()
            data[KEYS_ENTRY] = {
                **(data.get(KEYS_ENTRY) or {}),
                key_id: base64.urlsafe_b64encode(os.urandom(32)).decode(),
            }
            data[CURRENT_ENTRY] = key_id
        return _ring(data)


def rotate(runtime_dir: Path) -> Sealer:
    """Add a new current key; older keys are kept so existing values still open."""
    load_sealer(runtime_dir)
    with secrets_file.edit(Path(runtime_dir)) as data:
        key_id = _new_id()
        while key_id in data[KEYS_ENTRY]:
            key_id = _new_id()
        data[KEYS_ENTRY][key_id] = base64.urlsafe_b64encode(os.urandom(32)).decode()
        data[CURRENT_ENTRY] = key_id
        return _ring(data)
