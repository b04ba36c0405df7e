"""Helpers for tests that run real components: port allocation, waiting on conditions, and the
one way to start a throw-away Asterisk (``running_test_asterisk``).

Port allocation has two tools. ``free_port`` asks the kernel for an unused ephemeral port: good
for one socket. ``reserve_ports`` reserves a block of consecutive ports below the ephemeral range
(an Asterisk RTP range, say) and holds a lock file for it, so that test processes running side by
side never pick overlapping blocks; the block stays reserved until ``release()`` or process exit.

Nothing here is imported by the service; it exists so that every test suite starts components the
same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import random
import secrets as _secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, TypeVar

if TYPE_CHECKING:
    from hotline.asterisk.runtime import AsteriskRuntime
    from hotline.config import Settings
    from hotline.secrets import Secrets

T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parent.parent
# The shared Debian root that `make up` also uses; building it once serves every test run.
DEFAULT_TEST_ASTERISK_ROOT = REPO_ROOT / ".hotline" / "asterisk-root"

_LOCK_DIR = Path(tempfile.gettempdir()) / "hotline-test-ports"
# Below Linux's default ephemeral range (32768-60999), so kernel-chosen ports never land inside
# a reserved block, and above the defaults `make up` uses (5060, 8088, 10000-10999).
_RESERVE_FIRST = 20000
_RESERVE_LAST = 32767


class WaitTimeout(AssertionError):
    """A condition did not become true in time (an AssertionError so pytest reports it well)."""


def wait_for(
    predicate: Callable[[], T],
    timeout: float,
    *,
    interval: float = 0.05,
    message: str | None = None,
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    Raises ``WaitTimeout`` naming ``message`` (or the predicate) after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


async def async_wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float,  # noqa: ASYNC109 - mirrors wait_for
    *,
    interval: float = 0.05,
    message: str | None = None,
) -> T:
    """Async ``wait_for``: ``predicate`` may be a plain or an async callable."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", repr(predicate))
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


def free_port(kind: Literal["tcp", "udp"] = "tcp", host: str = "127.0.0.1") -> int:
    """A port the kernel reports free right now (another process may still take it later)."""
    sock_type = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, sock_type) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _bindable(port: int, host: str) -> bool:
    for sock_type in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, sock_type) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


@dataclass
class PortReservation:
    """A block of consecutive ports held (via a lock file) by this process."""

    base: int
    count: int
    _lock: IO[str] | None = field(default=None, repr=False)

    @property
    def ports(self) -> range:
        return range(self.base, self.base + self.count)

    @property
    def last(self) -> int:
        return self.base + self.count - 1

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing drops the flock
            self._lock = None

    def __enter__(self) -> PortReservation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def reserve_ports(count: int, host: str = "127.0.0.1") -> PortReservation:
    """Reserve ``count`` consecutive free ports (TCP and UDP) in 20000-32767.

    Blocks are aligned to ``count`` so two reservations of the same size never overlap; a lock
    file per block excludes other test processes, and every port is test-bound before use.
    """
    if not 0 < count <= 2000:
        raise ValueError("count must be between 1 and 2000")
    _LOCK_DIR.mkdir(parents=True, exist_ok=True)
    bases = list(range(_RESERVE_FIRST, _RESERVE_LAST - count + 2, count))
    random.shuffle(bases)
    for base in bases:
        lock = open(_LOCK_DIR / f"{base}-{count}.lock", "w")  # held until release()
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        if all(_bindable(port, host) for port in range(base, base + count)):
            return PortReservation(base, count, lock)
        lock.close()
    raise RuntimeError(f"no free block of {count} ports in {_RESERVE_FIRST}-{_RESERVE_LAST}")


@dataclass(frozen=True)
class SeatLogin:
    """A SIP seat's clear-text login, for test phones."""

    name: str
    password: str


@dataclass
class AsteriskInstance:
    """A running test Asterisk: what a test needs to talk to it."""

    settings: Settings
    secrets: Secrets
    runtime: AsteriskRuntime
    ari_url: str
    seat: SeatLogin
    seats: list[SeatLogin]
    ports: PortReservation

    @property
    def sip_port(self) -> int:
        return self.settings.asterisk.sip_port

    @property
    def ari_auth(self) -> tuple[str, str]:
        return (self.secrets.ari_user, self.secrets.ari_password)


def _remove_stale_test_instances(parent: Path) -> None:
    """Delete instance dirs left by test processes that died without cleaning up."""
    for path in parent.glob("t*-*"):
        pid_text = path.name[1:].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass


@contextlib.contextmanager
def running_test_asterisk(
    runtime_dir: Path,
    *,
    root_dir: Path = DEFAULT_TEST_ASTERISK_ROOT,
    seat_names: tuple[str, ...] = ("seat1",),
    app_name: str = "hotline",
) -> Iterator[AsteriskInstance]:
    """Start an Asterisk of our own on free ports, with its own instance dir; remove it after.

    ``runtime_dir`` holds the settings' runtime state (secrets); the instance directory lives
    in the shared root (or under ``runtime_dir`` with a system Asterisk) and is deleted on exit.
    """
    from hotline.asterisk.runtime import AsteriskRuntime, seat_credential
    from hotline.config import Settings
    from hotline.secrets import load_or_create

    _remove_stale_test_instances(root_dir / "srv" / "hotline")
    ports = reserve_ports(202)  # 200 for RTP, then SIP and HTTP
    instance = f"t{os.getpid()}-{_secrets.token_hex(3)}"
    try:
        settings = Settings(
            runtime_dir=runtime_dir,
            asterisk={
                "root_dir": root_dir,
                "instance": instance,
                "bind": "127.0.0.1",
                "rtp_start": ports.base,
                "rtp_end": ports.base + 199,
                "sip_port": ports.base + 200,
                "http_port": ports.base + 201,
                "app_name": app_name,
            },
        )
        secrets = load_or_create(settings.runtime_path)
        runtime = AsteriskRuntime(settings, secrets)
        runtime.install()
        logins = [SeatLogin(name, _secrets.token_urlsafe(12)) for name in seat_names]
        runtime.render_config([seat_credential(s.name, s.password) for s in logins])
        try:
            runtime.start()
            yield AsteriskInstance(
                settings=settings,
                secrets=secrets,
                runtime=runtime,
                ari_url=f"http://127.0.0.1:{settings.asterisk.http_port}",
                seat=logins[0],
                seats=logins,
                ports=ports,
            )
        finally:
            runtime.stop()
            shutil.rmtree(runtime.instance_dir, ignore_errors=True)
    finally:
        ports.release()
