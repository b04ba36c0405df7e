"""One simulator run: seats up, callers arriving for the scenario's duration, ground truth out.

``SimRun`` ties the parts together: it provisions and starts the seat agents (``sim.seats``),
draws arrivals and starts a caller agent for each (``sim.callers``) on pooled phone workers
(``sim.pool``), waits for the calls in progress to end, and writes the run directory
(``sim.truth``: ``run.json`` + ``truth.jsonl``). ``Target`` says where the hotline is; it is
read from the hotline's own configuration (``Target.from_settings``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hotline.config import Settings
from hotline.secrets import load_or_create
from sim.callers import CallerAgent, CallerLink, NumberPlan, Progress, arrival_times, new_truth
from sim.pool import DEFAULT_RTP_BASE, DEFAULT_RTP_LAST, PhonePool, PortBlocks
from sim.scenario import Scenario
from sim.seats import AcdClient, SeatAgent, provision_seats
from sim.truth import TruthCall, TruthLog, true_kpis, write_run_info

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Target:
    """Where the hotline under test is, and what the simulator must know of its settings."""

    uri: str
    registrar: str
    api_base: str
    token: str
    runtime_dir: Path
    config_path: Path | None = None
    database_url: str | None = None
    callback_offer_after_s: float | None = None
    wrap_up_s: float = 0.0
    short_abandon_s: float = 5.0
    service_level_s: float = 15.0

    def lawyers_open(self) -> bool | None:
        """Whether the hotline's IVR is in the lawyers' hours now (None: it cannot say)."""
        request = urllib.request.Request(
            f"{self.api_base}/api/admin/calendar",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                hours = json.load(response).get("hours") or {}
        except (OSError, ValueError):
            return None
        open_now = hours.get("open_now")
        return open_now if isinstance(open_now, bool) else None

    @classmethod
    def from_settings(cls, settings: Settings, config_path: Path | None = None) -> Target:
        ast = settings.asterisk
        secrets = load_or_create(settings.runtime_path)
        return cls(
            uri=f"sip:{ast.service_numbers[0]}@{ast.bind}:{ast.sip_port}",
            registrar=f"sip:{ast.bind}:{ast.sip_port}",
            api_base=f"http://{settings.service.bind}:{settings.service.port}",
            token=secrets.service_token,
            runtime_dir=settings.runtime_path,
            config_path=config_path,
            database_url=settings.database_url,
            callback_offer_after_s=settings.acd.callback_offer_after_s,
            wrap_up_s=settings.acd.wrap_up_s,
            short_abandon_s=settings.kpi.short_abandon_s,
            service_level_s=settings.kpi.service_level_s,
        )


@dataclass
class RunResult:
    run_dir: Path
    calls: list[TruthCall]
    kpis: dict[str, Any]
    started_at: datetime
    ended_at: datetime
    seat_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    ring_delays_s: list[float] = field(default_factory=list)


class SimRun:
    """Run one scenario against one hotline (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        target: Target,
        run_dir: Path,
        *,
        seed: int | None = None,
        rtp_ports: tuple[int, int] = (DEFAULT_RTP_BASE, DEFAULT_RTP_LAST),
    ) -> None:
        self.scenario = scenario
        self.target = target
        self.run_dir = run_dir
        seed = seed if seed is not None else scenario.seed
        self.seed = seed if seed is not None else random.randrange(2**31)
        self.rng = random.Random(self.seed)
        self.progress = Progress()
        self.ports = PortBlocks(*rtp_ports)
        self.pool = PhonePool(ports=self.ports)
        self.links: dict[str, CallerLink] = {}
        self.seats: list[SeatAgent] = []
        self.stage = "starting"

    @property
    def seat_ids(self) -> list[str]:
        cfg = self.scenario.seats
        return [f"{cfg.id_prefix}{i + 1:03d}" for i in range(cfg.count)]

    async def run(self, on_tick: Callable[[SimRun], None] | None = None) -> RunResult:
        sc, target = self.scenario, self.target
        truth_log = TruthLog(self.run_dir)
        started = datetime.now(UTC)
        ticker = asyncio.create_task(self._tick(on_tick)) if on_tick else None
        try:
            async with AcdClient(target.api_base, target.token) as acd:
                self.stage = "seats"
                await self._start_seats(acd)
                self.stage = "calls"
                await self._place_calls(truth_log)
                self.stage = "seats leaving"
                for seat in self.seats:
                    await seat.stop()
        finally:
            for seat in self.seats:
                with contextlib.suppress(Exception):
                    await seat.stop()
            await self.pool.close()
            truth_log.close()
            if ticker:
                ticker.cancel()
        ended = datetime.now(UTC)
        kpis = true_kpis(
            truth_log.calls,
            short_abandon_s=target.short_abandon_s,
            service_level_s=target.service_level_s,
        )
        delays = [
            rang - freed - target.wrap_up_s
            for seat in self.seats
            for rang, freed in seat.ring_events
            if freed is not None
        ]
        result = RunResult(
            self.run_dir,
            truth_log.calls,
            kpis,
            started,
            ended,
            {s.seat_id: vars(s.stats) for s in self.seats},
            delays,
        )
        write_run_info(
            self.run_dir,
            {
                "scenario": sc.name,
                "seed": self.seed,
                "started_at": started.isoformat(),
                "ended_at": ended.isoformat(),
                "target": {
                    "uri": target.uri,
                    "config_path": str(target.config_path) if target.config_path else None,
                    "database_url": target.database_url,
                    "short_abandon_s": target.short_abandon_s,
                    "service_level_s": target.service_level_s,
                },
                "kpis": kpis,
                "seats": result.seat_stats,
                "workers_started": self.pool.started,
            },
        )
        self.stage = "done"
        if on_tick:
            on_tick(self)
        return result

    async def _tick(self, on_tick: Callable[[SimRun], None]) -> None:
        while True:
            on_tick(self)
            self.pool.reap_idle()
            await asyncio.sleep(0.5)

    async def _start_seats(self, acd: AcdClient) -> None:
        cfg, target = self.scenario.seats, self.target
        if cfg.count == 0:
            return
        passwords = await asyncio.to_thread(
            provision_seats,
            self.seat_ids,
            cfg.skills,
            runtime_dir=target.runtime_dir,
            config_path=target.config_path,
            region=cfg.region,
        )
        for seat_id in self.seat_ids:
            self.seats.append(
                SeatAgent(
                    seat_id,
                    passwords[seat_id],
                    registrar=target.registrar,
                    acd=acd,
                    config=cfg,
                    rng=random.Random(self.rng.random()),
                    links=self.links,
                    rtp_port=self.ports.take(),
                )
            )
        # A few at a time: each worker start costs a burst of CPU.
        sem = asyncio.Semaphore(4)

        async def start(seat: SeatAgent) -> None:
            async with sem:
                await seat.start()
                await seat.login()

        await asyncio.gather(*(start(s) for s in self.seats))
        for seat in self.seats:
            task = asyncio.create_task(seat.run(), name=f"seat-{seat.seat_id}")
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _place_calls(self, truth_log: TruthLog) -> None:
        sc = self.scenario
        start_hour = sc.arrivals.start_hour
        if start_hour is None:
            start_hour = datetime.now(LOCAL_TZ).hour
        numbers = NumberPlan(self.rng, sc.callers.number_prefix)
        callers: set[asyncio.Task[TruthCall]] = set()
        t0 = time.monotonic()
        for n, offset in enumerate(arrival_times(sc.arrivals, sc.duration_s, self.rng, start_hour)):
            if sc.max_calls is not None and n >= sc.max_calls:
                break
            await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))
            truth, headers = new_truth(f"k{n + 1:05d}", numbers.take(), sc, self.rng)
            agent = CallerAgent(
                truth,
                sc,
                random.Random(self.rng.random()),
                self.pool,
                self.target.uri,
                self.progress,
                self.links,
                callback_offer_after_s=(
                    sc.hotline.callback_offer_after_s
                    if sc.hotline.callback_offer_after_s is not None
                    else self.target.callback_offer_after_s
                ),
                headers=headers,
            )
            task = asyncio.create_task(agent.run(), name=f"caller-{truth.sim_id}")
            task.add_done_callback(lambda t, a=agent: _record(t, a, truth_log))
            callers.add(task)
            task.add_done_callback(callers.discard)
        self.stage = "draining"
        if callers:
            await asyncio.wait(list(callers), timeout=sc.drain_timeout_s)
        for task in list(callers):
            task.cancel()


def _record(task: asyncio.Task[TruthCall], agent: CallerAgent, truth_log: TruthLog) -> None:
    """Every caller is recorded, also one whose agent failed (then it says why)."""
    truth = agent.truth
    if task.cancelled():
        truth.failed = truth.failed or "still in progress when the run ended"
    elif task.exception() is not None:
        truth.failed = truth.failed or f"simulator error: {task.exception()!r}"
    truth_log.write(truth)
