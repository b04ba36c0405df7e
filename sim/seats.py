"""Simulated seat lawyers: provisioned, registered, logged in through the ACD API, answering.

Each seat is one pjsua2 phone worker registered with its own SIP credentials (a seat has one
call at a time, so one account per process is what a real desk phone is). Its agent:

* is provisioned once with ``hotline seats add`` (the password is kept in
  ``<runtime_dir>/sim-seats.yaml`` so later runs reuse the seat);
* logs in through ``POST /api/acd/seats/{id}/login`` (service token), logs out at the end;
* for each offer (its phone rings): with ``never_answer`` probability lets it ring (the ACD
  then pauses the seat as 未接听; the lawyer comes back with ``ready`` after
  ``resume_after_s``), otherwise answers after a drawn delay, talks for a drawn time and hangs
  up (the caller then gets the survey); with ``pause.probability`` takes a pause (小休) after a
  call. Wrap-up (话后处理) is the ACD's own timer.

The seat side is where the ground truth learns that *a person answered*: the 200 OK confirmed
at the seat phone, with the worker's timestamp. The ringing call names its caller (the caller
id is the masked number with zeros, see ``sim.callers``), which links it to the caller's record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from sim.callers import CallerLink
from sim.phone import Phone, PhoneCommandError, PhoneError
from sim.scenario import Seats

log = logging.getLogger(__name__)

SEAT_CREDENTIALS_FILE = "sim-seats.yaml"
REGISTER_TIMEOUT_S = 15.0
_FROM_NUMBER = re.compile(r"sip:\+?(\d+)@")


class SeatSetupError(RuntimeError):
    """A seat could not be created, registered or logged in."""


@dataclass
class SeatStats:
    offers: int = 0
    answered: int = 0
    not_answered: int = 0
    pauses: int = 0


class AcdClient:
    """The ACD's seat REST API with the service token."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AcdClient:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=aiohttp.ClientTimeout(total=15),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def action(self, seat_id: str, action: str, **body: Any) -> dict[str, Any]:
        assert self._session is not None
        url = f"{self.base_url}/api/acd/seats/{seat_id}/{action}"
        async with self._session.post(url, json=body or None) as response:
            data = await response.json(content_type=None)
            if response.status != 200:
                raise SeatSetupError(f"{action} {seat_id}: HTTP {response.status} {data}")
            return data

    async def seats(self) -> list[dict[str, Any]]:
        assert self._session is not None
        async with self._session.get(f"{self.base_url}/api/acd/seats") as response:
            return await response.json(content_type=None)


def provision_seats(
    seat_ids: list[str],
    skills: str,
    *,
    runtime_dir: Path,
    config_path: Path | None,
    region: str | None = None,
) -> dict[str, str]:
    """Passwords of the seats, creating the missing ones with ``hotline seats add``.

    Blocking (runs the CLI, which reloads Asterisk): call it in a thread.
    """
    store = runtime_dir / SEAT_CREDENTIALS_FILE
    known: dict[str, str] = {}
    if store.exists():
        known = yaml.safe_load(store.read_text(encoding="utf-8")) or {}
    base = [sys.executable, "-m", "hotline"]
    if config_path is not None:
        base += ["--config", str(config_path)]
    changed = False
    for seat_id in seat_ids:
        if seat_id in known:
            continue
        argv = [*base, "seats", "add", seat_id, "--skills", skills, "--json"]
        if region:
            argv += ["--region", region]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise SeatSetupError(
                f"hotline seats add {seat_id} failed: {result.stderr.strip()} (a seat made "
                f"outside the simulator has no password here: use another seats.id_prefix)"
            )
        known[seat_id] = json.loads(result.stdout)["password"]
        changed = True
    if changed:
        store.parent.mkdir(parents=True, exist_ok=True)
        store.write_text(yaml.safe_dump(known), encoding="utf-8")
        store.chmod(0o600)
    return {s: known[s] for s in seat_ids}


def caller_number(incoming: dict[str, Any]) -> str | None:
    match = _FROM_NUMBER.search(str(incoming.get("from", "")))
    return match.group(1) if match else None


class SeatAgent:
    """One simulated seat lawyer (see the module docstring)."""

    def __init__(
        self,
        seat_id: str,
        password: str,
        *,
        registrar: str,
        acd: AcdClient | None,
        config: Seats,
        rng: random.Random,
        links: dict[str, CallerLink],
        rtp_port: int = 0,
    ) -> None:
        self.seat_id = seat_id
        self.password = password
        self.registrar = registrar
        self.acd = acd
        self.config = config
        self.rng = rng
        self.links = links
        self.rtp_port = rtp_port
        self.phone: Phone | None = None
        self.stats = SeatStats()
        self.ring_events: list[tuple[float, float | None]] = []  # (rang at, freed before)
        self._freed_at: float | None = None
        self._stopping = False

    async def start(self) -> None:
        self.phone = await Phone.spawn(
            self.seat_id,
            registrar=self.registrar,
            user=self.seat_id,
            password=self.password,
            rtp_port=self.rtp_port,
        )
        await self.phone.set_auto_answer("never")  # this agent decides, per offer
        try:
            await self.phone.wait_event(
                "reg_state", timeout=REGISTER_TIMEOUT_S, active=True, code=200
            )
        except TimeoutError as exc:
            raise SeatSetupError(f"seat {self.seat_id} did not register: {exc}") from None

    async def login(self) -> None:
        if self.acd is not None:  # None: a PBX without our ACD (the app_queue benchmark)
            await self.acd.action(self.seat_id, "login")

    async def _acd(self, action: str, **body: Any) -> None:
        if self.acd is not None:
            with contextlib.suppress(SeatSetupError):
                await self.acd.action(self.seat_id, action, **body)

    async def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(Exception):
            await self._acd("logout")
        if self.phone is not None:
            await self.phone.stop()

    async def run(self) -> None:
        assert self.phone is not None
        while not self._stopping:
            try:
                incoming = await self.phone.wait_event("incoming", timeout=3600)
            except TimeoutError:
                continue
            except PhoneError:
                if self._stopping:
                    return
                raise
            try:
                await self._offer(incoming)
            except (PhoneCommandError, PhoneError):
                if self._stopping:
                    return
                log.exception("seat %s: offer failed", self.seat_id)

    async def _gone_within(self, cid: str, seconds: float) -> dict[str, Any] | None:
        assert self.phone is not None
        try:
            return await self.phone.wait_event("disconnected", timeout=max(0.0, seconds), call=cid)
        except TimeoutError:
            return None

    async def _offer(self, incoming: dict[str, Any]) -> None:
        phone, cfg, rng = self.phone, self.config, self.rng
        assert phone is not None
        cid = incoming["call"]
        self.stats.offers += 1
        self.ring_events.append((incoming["ts"], self._freed_at))
        self._freed_at = None
        link = self.links.get(caller_number(incoming) or "")
        if link is not None:
            link.truth.offers.append((self.seat_id, incoming["ts"]))
        if rng.random() < cfg.never_answer:
            self.stats.not_answered += 1
            await self._gone_within(cid, 600)
            self._freed_at = None
            # The ACD paused this seat (未接听); the lawyer notices and comes back.
            await asyncio.sleep(cfg.resume_after.draw(rng))
            await self._acd("ready")
            return
        if await self._gone_within(cid, cfg.answer_delay.draw(rng)) is not None:
            return  # the caller hung up or the offer timed out while ringing
        await phone.answer(cid)
        state = await self._confirmed_or_gone(cid)
        if state is None:
            return
        self.stats.answered += 1
        if link is not None and link.truth.answered_at is None:
            link.truth.answered_at, link.truth.seat = state["ts"], self.seat_id
            link.answered.set()
        ended = await self._gone_within(cid, cfg.talk.draw(rng))
        if ended is None:
            await phone.hangup(cid)
            ended = await self._gone_within(cid, 10)
        if ended is not None:
            self._freed_at = ended["ts"]
            if link is not None and ended.get("local_hangup"):
                link.truth.seat_hungup_at = ended["ts"]
                link.truth.hangup_by = None  # the caller's end of the call decides
        if link is not None:
            link.seat_done.set()
        if rng.random() < cfg.pause.probability:
            self.stats.pauses += 1
            self._freed_at = None
            await self._acd("pause", reason="小休")
            await asyncio.sleep(cfg.pause.duration.draw(rng))
            await self._acd("ready")

    async def _confirmed_or_gone(self, cid: str) -> dict[str, Any] | None:
        assert self.phone is not None
        ok = asyncio.create_task(
            self.phone.wait_event("call_state", timeout=10, call=cid, state="CONFIRMED")
        )
        gone = asyncio.create_task(self.phone.wait_event("disconnected", timeout=10, call=cid))
        done, _ = await asyncio.wait([ok, gone], return_when=asyncio.FIRST_COMPLETED)
        confirmed = ok in done and ok.exception() is None
        for task in (ok, gone):
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()  # retrieved: a timeout of the loser is not an error
        return ok.result() if confirmed else None
