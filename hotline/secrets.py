"""Credentials generated at set-up, kept in ``<runtime_dir>/secrets.yaml`` (mode 0600).

There are no default passwords: a missing secret is generated the first time it is needed and
then kept, so re-running set-up is idempotent.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

SECRETS_FILE = "secrets.yaml"
_GENERATED = {
    "ari_user": lambda: "hotline",
    "ari_password": lambda: secrets.token_urlsafe(24),
    # Key for the keyed hash of phone numbers (party archive, logs): never the clear number.
    "phone_hash_key": lambda: secrets.token_hex(32),
    # Bearer token for machine clients of the HTTP API (operators' scripts, the simulator).
    "service_token": lambda: secrets.token_urlsafe(32),
}


@dataclass(frozen=True)
class Secrets:
    ari_user: str
    ari_password: str
    phone_hash_key: str
    service_token: str


def load_or_create(runtime_dir: Path) -> Secrets:
    runtime_dir.mkdir(parents=True, exist_ok=True)
    path = runtime_dir / SECRETS_FILE
    data: dict[str, str] = {}
    if path.exists():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [key for key in _GENERATED if not data.get(key)]
    for key in missing:
        data[key] = _GENERATED[key]()
    if missing or not path.exists():
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump(data, handle)
        os.replace(tmp, path)
    os.chmod(path, 0o600)
    return Secrets(**{key: str(data[key]) for key in _GENERATED})
