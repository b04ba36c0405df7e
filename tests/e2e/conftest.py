"""The hotline service as a real process, beside the session's real Asterisk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, select

from hotline import prompts
from hotline.db import make_engine
from hotline.db.models import CallEventRow
from hotline.events.log import events_for_call
from hotline.events.types import CallEvent
from hotline.testing import REPO_ROOT, AsteriskInstance, free_port, wait_for

PROMPT_CACHE = REPO_ROOT / ".hotline" / "prompt-cache"


@dataclass
class ServiceProcess:
    config_path: Path
    base_url: str
    database_url: str
    engine: Engine
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

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

    def wait_call_ended(self, caller_masked: str, timeout: float = 20) -> list[CallEvent]:
        """The one call from this caller, once its record is complete (call.ended written)."""

        def ended() -> list[CallEvent] | None:
            ids = self.call_ids_for(caller_masked)
            if not ids:
                return None
            assert len(ids) == 1, f"expected one call from {caller_masked}, got {ids}"
            events = self.events(ids[0])
            return events if events and events[-1].type == "call.ended" else None

        return wait_for(ended, timeout, message=f"call.ended for {caller_masked}")


@pytest.fixture(scope="session")
def hotline_service(asterisk_instance: AsteriskInstance, tmp_path_factory) -> ServiceProcess:
    settings = asterisk_instance.settings
    runtime = asterisk_instance.runtime
    prompts.generate(prompts.load_catalogue(), runtime.sounds_dir, cache_dir=PROMPT_CACHE)
    workdir = tmp_path_factory.mktemp("service")
    database_url = f"sqlite:///{workdir / 'hotline.db'}"
    config = settings.model_dump(mode="json")
    config["database"] = {"url": database_url}
    config["service"] = {"bind": "127.0.0.1", "port": free_port()}
    config["log_level"] = "DEBUG"
    config_path = workdir / "hotline.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    service = ServiceProcess(
        config_path=config_path,
        base_url=f"http://127.0.0.1:{config['service']['port']}",
        database_url=database_url,
        engine=make_engine(database_url),
        log_path=workdir / "service.log",
    )
    service.start()
    yield service
    if service.process is not None:
        service.stop()
    service.engine.dispose()
