"""Credentials generated at set-up, kept in ``<runtime_dir>/secrets.yaml`` (mode 0600).

There are no default passwords: a missing secret is generated the first time it is needed and
then kept, so re-running set-up is idempotent.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@contextlib.contextmanager
def edit(runtime_dir: Path) -> Iterator[dict[str, Any]]:
    """Read, change and write the secrets file under an exclusive lock (features keep their
    own keys in it: recording keys, work-order keys, partner secrets). The file is rewritten
    atomically with mode 0600, and only when the mapping changed."""
    runtime_dir.mkdir(parents=True, exist_ok=True)
    path = runtime_dir / SECRETS_FILE
    with open(runtime_dir / f".{SECRETS_FILE}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data: dict[str, Any] = {}
        if path.exists():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        before = yaml.safe_dump(data)
        yield data
        if yaml.safe_dump(data) != before or not path.exists():
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                yaml.safe_dump(data, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        os.chmod(path, 0o600)


def load_or_create(runtime_dir: Path) -> Secrets:
    with edit(runtime_dir) as data:
        for key, generate in _GENERATED.items():
            if not data.get(key):
                data[key] = generate()
        return Secrets(**{key: str(data[key]) for key in _GENERATED})
