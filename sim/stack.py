"""The whole hotline on free loopback ports, for the simulator's tests and the load benchmark.

``running_stack`` starts a private Asterisk instance (the shared Debian root, its own instance
directory, a reserved block of ports with an RTP range sized for the load), generates the
prompts, writes a service configuration (SQLite database, the ACD/IVR overrides given) and runs
``hotline serve`` as a real process until the block ends. It is the same recipe as the e2e
fixtures (``tests/e2e/conftest.py``), with the RTP range and ACD settings as parameters: a load
test needs far more than the test fixture's 200 ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets as _secrets
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hotline.config import Settings
from hotline.testing import (
    DEFAULT_TEST_ASTERISK_ROOT,
    REPO_ROOT,
    free_port,
    reserve_ports,
    wait_for,
)

PROMPT_CACHE = REPO_ROOT / ".hotline" / "prompt-cache"
# A Monday inside the lawyers' hours, so consultations reach a queue (as in the e2e tests).
OFFICE_HOURS = "2026-11-23T10:00:00+08:00"


@dataclass
class Stack:
    settings: Settings
    config_path: Path
    runtime: Any  # AsteriskRuntime
    process: subprocess.Popen[bytes]
    log_path: Path
    base_url: str

    @property
    def database_url(self) -> str:
        return self.settings.database_url

    def target(self) -> Any:
        from sim.runner import Target

        return Target.from_settings(self.settings, self.config_path)

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.base_url}/healthz", timeout=1) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            return json.load(error)
        except OSError:
            return None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_asterisk(
    work_dir: Path, *, rtp_ports: int, instance_prefix: str = "s", app_name: str = "hotline"
) -> tuple[Settings, Any, Any]:
    """A private Asterisk on reserved ports; returns (settings, runtime, port reservation)."""
    from hotline.asterisk.runtime import AsteriskRuntime
    from hotline.secrets import load_or_create

    ports = reserve_ports(rtp_ports + 2)
    instance = f"{instance_prefix}{os.getpid()}-{_secrets.token_hex(3)}"
    settings = Settings(
        runtime_dir=work_dir,
        asterisk={
            "root_dir": DEFAULT_TEST_ASTERISK_ROOT,
            "instance": instance,
            "bind": "127.0.0.1",
            "rtp_start": ports.base,
            "rtp_end": ports.base + rtp_ports - 1,
            "sip_port": ports.base + rtp_ports,
            "http_port": ports.base + rtp_ports + 1,
            "app_name": app_name,
        },
    )
    runtime = AsteriskRuntime(settings, load_or_create(settings.runtime_path))
    runtime.install()
    runtime.render_config([])
    return settings, runtime, ports


def stop_asterisk(runtime: Any, ports: Any) -> None:
    try:
        runtime.stop()
        shutil.rmtree(runtime.instance_dir, ignore_errors=True)
    finally:
        ports.release()


@contextlib.contextmanager
def running_stack(
    work_dir: Path,
    *,
    rtp_ports: int = 200,
    acd: dict[str, Any] | None = None,
    ivr: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Iterator[Stack]:
    """Asterisk + ``hotline serve`` on free loopback ports (see the module docstring)."""
    from hotline import prompts

    work_dir.mkdir(parents=True, exist_ok=True)
    settings, runtime, ports = start_asterisk(work_dir, rtp_ports=rtp_ports)
    process = None
    try:
        runtime.start()
        prompts.generate(prompts.load_catalogue(), runtime.sounds_dir, cache_dir=PROMPT_CACHE)
        prompts.hold_music(runtime.sounds_dir)
        runtime.render_config([])  # hold music class
        runtime.cli("module reload res_musiconhold.so")
        runtime.reload_pjsip()
        config = settings.model_dump(mode="json")
        config["database"] = {"url": f"sqlite:///{work_dir / 'hotline.db'}"}
        config["service"] = {"bind": "127.0.0.1", "port": free_port()}
        config["ivr"] = {"clock": OFFICE_HOURS, **(ivr or {})}
        config["acd"] = {
            "ring_timeout_s": 4,
            "wrap_up_s": 1,
            "announce_interval_s": None,
            "callback_offer_after_s": None,
            "max_wait_s": 300,
            "overflow_to": None,
            **(acd or {}),
        }
        config.update(extra or {})
        config_path = work_dir / "hotline.yaml"
        config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        service_settings = Settings(**config)
        log_path = work_dir / "service.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "hotline", "--config", str(config_path), "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        stack = Stack(
            service_settings,
            config_path,
            runtime,
            process,
            log_path,
            f"http://127.0.0.1:{config['service']['port']}",
        )

        def connected() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"hotline serve exited: {stack.log_tail()}")
            return bool((stack.health() or {}).get("ari_connected"))

        wait_for(connected, timeout=60, message="the service to connect to ARI")
        yield stack
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        stop_asterisk(runtime, ports)
