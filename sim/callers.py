"""Simulated callers: Poisson arrivals with an hour-of-day profile, and one caller's behaviour.

Arrivals are a non-homogeneous Poisson process, drawn by thinning: candidates at the highest
rate of the profile, each kept with probability rate(hour)/highest. ``arrival_times`` is pure.

A caller (:class:`CallerAgent`) is one SIP call from a pooled phone worker to the hotline:

1. dial 12348 with a simulated number (``<prefix>0000<nnnn>``: the hotline masks it as
   ``<prefix>****<nnnn>`` and shows seats the mask with zeros, so a seat's ringing call names
   its caller exactly);
2. once answered, press the path's keys (``first_key_after_s``, then ``key_gap_s`` apart; the
   IVR takes keys during its prompts as barge-in and type-ahead);
3. a path to a queue: wait with a drawn patience. A seat answering (told by the seat's agent,
   which sees the seat phone's 200 OK) ends the wait; patience running out hangs up (an
   abandon); a caller who accepts callbacks presses 1 when the hotline's callback offer has
   been played (``hotline.callback_offer_after_s`` after queue entry);
4. talking: optionally plays speech; when the lawyer hangs up, the survey: after
   ``survey_delay_s`` the caller presses the drawn answer's key, or hangs up for "none";
5. a self-service path hangs up ``hangup_after_s`` after its last key (or when the IVR does).

Everything the caller sees goes into its :class:`sim.truth.TruthCall`; counters of the live
display move through :class:`Progress`.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hotline.privacy import mask_number
from sim.phone import PhoneCommandError, PhoneError
from sim.pool import PhonePool
from sim.scenario import SURVEY_KEYS, Arrivals, Scenario
from sim.truth import TruthCall

CONNECT_TIMEOUT_S = 30.0
END_TIMEOUT_S = 30.0  # the IVR's goodbye after the survey or a callback booking


def arrival_times(
    arrivals: Arrivals, duration_s: float, rng: random.Random, start_hour: int = 10
) -> Iterator[float]:
    """Seconds from the start at which calls arrive, by thinning (see the module docstring)."""
    peak = max([arrivals.rate_at(h) for h in range(24)])
    if peak <= 0:
        return
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= duration_s:
            return
        hour = int(start_hour + t * arrivals.time_scale / 3600.0) % 24
        if rng.random() * peak <= arrivals.rate_at(hour):
            yield t


class NumberPlan:
    """Unique simulated numbers ``<prefix>0000<nnnn>`` (unique masks, recoverable from seats)."""

    def __init__(self, rng: random.Random, prefix: str | None = None) -> None:
        self.prefixes = [prefix] if prefix else [str(p) for p in rng.sample(range(130, 200), 70)]
        self.next = rng.randrange(10000)
        self.used = 0

    def take(self) -> str:
        prefix = self.prefixes[(self.used // 10000) % len(self.prefixes)]
        number = f"{prefix}0000{(self.next + self.used) % 10000:04d}"
        self.used += 1
        return number


@dataclass
class Progress:
    """Live counters for the progress display (phases are exclusive, totals only grow)."""

    placed: int = 0
    in_ivr: int = 0
    waiting: int = 0
    talking: int = 0
    answered: int = 0
    abandoned: int = 0
    callbacks: int = 0
    failed: int = 0
    ended: int = 0
    surveys: int = 0

    def move(self, old: str | None, new: str | None) -> None:
        if old:
            setattr(self, old, getattr(self, old) - 1)
        if new:
            setattr(self, new, getattr(self, new) + 1)


@dataclass
class CallerLink:
    """What a seat's agent tells the caller's agent (both run in this process)."""

    truth: TruthCall
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    seat_done: asyncio.Event = field(default_factory=asyncio.Event)


class CallerAgent:
    """One simulated caller from dialling to the end of the call."""

    def __init__(
        self,
        truth: TruthCall,
        scenario: Scenario,
        rng: random.Random,
        pool: PhonePool,
        uri: str,
        progress: Progress,
        links: dict[str, CallerLink],
        *,
        callback_offer_after_s: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.truth = truth
        self.scenario = scenario
        self.rng = rng
        self.pool = pool
        self.uri = uri
        self.progress = progress
        self.link = CallerLink(truth)
        links[truth.number] = self.link
        self.callback_offer_after_s = callback_offer_after_s
        self.headers = headers
        self.phase: str | None = None

    def _phase(self, new: str | None) -> None:
        self.progress.move(self.phase, new)
        self.phase = new

    async def run(self) -> TruthCall:
        truth = self.truth
        truth.arrived_at = time.time()
        self.progress.placed += 1
        lease = await self.pool.acquire()
        phone = lease.phone
        try:
            try:
                cid = await phone.call(self.uri, from_user=truth.number, headers=self.headers)
            except (PhoneCommandError, PhoneError) as exc:
                truth.failed = f"call: {exc}".splitlines()[0]
                self.progress.failed += 1
                return truth
            gone = asyncio.create_task(
                phone.wait_event("disconnected", timeout=86400, call=cid), name=f"gone-{cid}"
            )
            try:
                await self._converse(phone, cid, gone)
            finally:
                if not gone.done():
                    with contextlib.suppress(PhoneError, PhoneCommandError):
                        await phone.hangup(cid)
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.shield(gone), 10)
                if gone.done() and not gone.cancelled() and gone.exception() is None:
                    ended = gone.result()
                    truth.ended_at = ended["ts"]
                    if truth.hangup_by is None:
                        truth.hangup_by = "caller" if ended.get("local_hangup") else "system"
                gone.cancel()
                self._finish()
        finally:
            self.pool.release(lease)
        return truth

    def _finish(self) -> None:
        truth = self.truth
        self._phase(None)
        if truth.connected_at is None and truth.failed is None:
            truth.failed = "never answered by the hotline"
            self.progress.failed += 1
        if truth.abandoned:
            self.progress.abandoned += 1
        self.progress.ended += 1

    async def _until(self, gone: asyncio.Task, *waits: asyncio.Event, timeout: float) -> bool:  # noqa: ASYNC109
        """Wait for the line to drop, one of the events, or the timeout; True if still up."""
        tasks = [asyncio.create_task(e.wait()) for e in waits]
        try:
            await asyncio.wait([gone, *tasks], timeout=max(0.0, timeout),
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        finally:
            for task in tasks:
                task.cancel()
        return not gone.done()

    async def _converse(self, phone, cid: str, gone: asyncio.Task) -> None:
        truth, sc = self.truth, self.scenario.callers
        # 1. the hotline answers
        confirmed = asyncio.create_task(
            phone.wait_event("call_state", timeout=CONNECT_TIMEOUT_S, call=cid, state="CONFIRMED")
        )
        await asyncio.wait([confirmed, gone], return_when=asyncio.FIRST_COMPLETED)
        if not confirmed.done() or confirmed.exception() is not None:
            confirmed.cancel()
            if not gone.done():
                truth.failed = "not answered within the connect timeout"
            else:
                truth.failed = f"rejected: {gone.result().get('code')}"
            self.progress.failed += 1
            return
        truth.connected_at = confirmed.result()["ts"]
        self._phase("in_ivr")
        # 2. the menu path
        await self._until(gone, timeout=sc.first_key_after_s)
        for i, key in enumerate(truth.keys):
            if gone.done():
                return
            if i:
                if not await self._until(gone, timeout=sc.key_gap_s):
                    return
            await phone.dtmf(cid, key)
            truth.keys_pressed.append((key, time.time()))
        if gone.done():
            return
        if truth.wanted_queue is None:
            path = next(p for p in self.scenario.callers.paths if p.name == truth.path)
            await self._until(gone, timeout=path.hangup_after_s or 10.0)
            return
        truth.asked_at = time.time()
        await self._wait_in_queue(phone, cid, gone)

    async def _wait_in_queue(self, phone, cid: str, gone: asyncio.Task) -> None:
        truth, link = self.truth, self.link
        self._phase("waiting")
        assert truth.asked_at is not None
        deadline = truth.asked_at + (truth.patience_s or 0.0)
        press_at = None
        if truth.accepts_callback and self.callback_offer_after_s is not None:
            delay = self.callback_offer_after_s + self.scenario.hotline.callback_key_delay_s
            press_at = truth.asked_at + delay
        while not link.answered.is_set():
            now = time.time()
            next_at = min(deadline, press_at) if press_at is not None else deadline
            if not await self._until(gone, link.answered, timeout=next_at - now):
                return
            if link.answered.is_set():
                break
            if press_at is not None and time.time() >= press_at:
                press_at = None
                await phone.dtmf(cid, "1")
                truth.callback_requested_at = time.time()
                self.progress.callbacks += 1
                self._phase(None)
                await self._until(gone, timeout=END_TIMEOUT_S)
                return
            if time.time() >= deadline:
                truth.hangup_by = "caller"
                await phone.hangup(cid)
                return
        await self._talk(phone, cid, gone)

    async def _talk(self, phone, cid: str, gone: asyncio.Task) -> None:
        truth, link = self.truth, self.link
        self._phase("talking")
        self.progress.answered += 1
        if truth.speech:
            with contextlib.suppress(PhoneCommandError):
                await phone.play(cid, truth.speech, loop=True)
        if not await self._until(gone, link.seat_done, timeout=86400):
            return
        self._phase(None)
        if truth.speech:
            with contextlib.suppress(PhoneCommandError):
                await phone.stop_play(cid)
        # The survey (满意度评价) follows the lawyer's hang-up.
        if not await self._until(gone, timeout=self.scenario.callers.survey_delay_s):
            return
        choice = truth.survey_choice
        if choice in SURVEY_KEYS:
            await phone.dtmf(cid, SURVEY_KEYS[choice])
            truth.survey, truth.survey_at = choice, time.time()
            self.progress.surveys += 1
            await self._until(gone, timeout=END_TIMEOUT_S)
        else:
            truth.hangup_by = "caller"
            await phone.hangup(cid)


def new_truth(
    sim_id: str, number: str, scenario: Scenario, rng: random.Random
) -> tuple[TruthCall, dict[str, str] | None]:
    """Draw one caller's behaviour; returns its truth record and any SIP headers to send."""
    sc = scenario.callers
    path = scenario.draw_path(rng)
    origin, headers = "12348", None
    if rng.random() < sc.transferred.share:
        partners = list(sc.transferred.partners)
        origin = rng.choices(partners, weights=[sc.transferred.partners[p] for p in partners])[0]
        # The headers integrations/ expects on a transferred call (integrations.config).
        headers = {"X-Partner-Case-Id": f"SIM-{sim_id}", "X-Original-Caller": number}
    special = rng.random() < sc.special_group.share
    if special:
        number = rng.choice(sc.special_group.numbers)
    speech = None
    if sc.speech and rng.random() < sc.speech.share:
        speech = str(Path(rng.choice(sc.speech.wavs)).resolve())
    truth = TruthCall(
        sim_id=sim_id,
        number=number,
        masked=mask_number(number),
        path=path.name,
        keys=path.keys,
        wanted_queue=path.queue,
        origin=origin,
        special_group=special,
        patience_s=sc.patience.draw(rng),
        survey_choice=scenario.draw_survey(rng),
        accepts_callback=rng.random() < sc.callback_accept,
        speech=speech,
    )
    return truth, headers
