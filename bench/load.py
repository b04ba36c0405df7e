"""Load benchmark: the whole hotline against an Asterisk-only app_queue peer, side by side.

    .venv/bin/python bench/load.py [--levels 20,40,80] [--seats 16] [--talk 6]

Both systems run on this machine in the same run, one after the other, with the same callers
and the same seats:

* **ours**: Asterisk + ``hotline serve`` (IVR flow → ACD → seat, survey after the lawyer hangs
  up; recording and transcription as configured by default), from ``sim.stack``;
* **app_queue**: a second Asterisk instance (``hotline.asterisk.runtime``'s instance mechanism,
  configuration rendered from ``bench/appqueue/*.j2``): dialplan IVR with
  ``Background``/``WaitExten`` and the same prompts, ``Queue()`` (leastrecent, wrap-up 0) to
  the same seat accounts.

Callers are sipp (``sim/sipp/hotline_caller.xml``: RFC 4733 keys 1-1-1, echo of all audio, one
sipp per 100 calls); seats are pjsua2 phones (``sim.seats.SeatAgent``) that answer after 0.5 s,
talk ``--talk`` seconds and hang up. Each ramp level runs N callers at once (sipp ``-l N -m N``)
until all have ended; a level passes with zero failed calls (sipp's exit status) and no RTP
loss on Asterisk's side (``pjsip show channelstats`` sampled at the peak). The ramp stops at the
first failing level.

Measured per level: CPU seconds of the Asterisk process and of the service's process tree
divided by the call-seconds carried (= share of a core per concurrent call), resident memory
growth per concurrent call, and the seat-ring delay: from a seat's hang-up (it is available:
wrap-up is 0 on both) to its next INVITE, while callers wait.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import math
import os
import random
import re
import shutil
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
    loss_packets: int = 0
    stats_channels: int = 0
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


def rtp_loss(runtime: Any, save: Path | None = None) -> tuple[int, int]:
    """Packets lost in both directions over all channels (``pjsip show channelstats``), and
    how many channel lines were read (0 means the format was not understood)."""
    out = runtime.cli("pjsip show channelstats", timeout=20)
    if save is not None:
        save.write_text(out)
    lost = read = 0
    for line in out.splitlines():
        # "[BridgeId] ChannelId UpTime Codec RxCount RxLost RxPct RxJitter TxCount TxLost ..."
        parts = line.split()
        at = next((i for i, p in enumerate(parts) if re.fullmatch(r"\d+:\d\d:\d\d", p)), None)
        if at is None or len(parts) < at + 9:
            continue
        with contextlib.suppress(ValueError):
            lost += int(parts[at + 3]) + int(parts[at + 7])
            read += 1
    return lost, read


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
    peak_sampled = False
    waiters = [asyncio.create_task(p.wait()) for p in procs]
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
        if n > level.peak_concurrent:
            level.peak_concurrent = n
        elif not peak_sampled and n >= 0.9 * calls and level.peak_concurrent >= 0.9 * calls:
            peak_sampled = True
            save = work / f"{system.name}-{calls}-channelstats.txt"
            level.loss_packets, level.stats_channels = await asyncio.to_thread(
                rtp_loss, system.runtime, save
            )
    level.duration_s = time.monotonic() - t0
    level.asterisk_cpu_s = cpu_s(a_pids) - a_cpu0
    level.service_cpu_s = (cpu_s(tree_of(system.service_pid)) - s_cpu0) if s_pids else 0.0
    level.failed_sipp = sum(1 for p in procs if p.returncode != 0)
    level.ring_delays = [rang - freed for s in system.seats for rang, freed in s.ring_events
                         if freed is not None]  # fmt: skip
    level.ok = level.failed_sipp == 0 and level.loss_packets == 0
    system.levels.append(level)
    return level


def ring_delays(system: System, seats: int) -> list[float]:
    """Seat hang-up -> that seat's next ring, counted only while callers were surely waiting:
    at least two seats' worth of offers were still to come in the level after the hang-up."""
    rings = sorted(rang for s in system.seats for rang, _ in s.ring_events)
    out = []
    for seat in system.seats:
        for rang, freed in seat.ring_events:
            if freed is None:
                continue
            later = len(rings) - bisect.bisect_right(rings, freed)
            if later >= 2 * seats:
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
              f"lost packets {level.loss_packets} on {level.stats_channels} channels), "
              f"{level.duration_s:.0f} s", flush=True)  # fmt: skip
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


def summarize(system: System) -> dict[str, Any]:
    passed = [lv for lv in system.levels if lv.ok]
    best = passed[-1] if passed else None
    # CPU and memory per call from the highest level that ran, passed or not.
    top = system.levels[-1] if system.levels else None
    delays = [d for lv in system.levels for d in lv.ring_delays]
    return {
        "max_concurrent": best.peak_concurrent if best else 0,
        "asterisk_cpu_per_call": top.per_call(top.asterisk_cpu_s) if top else None,
        "service_cpu_per_call": top.per_call(top.service_cpu_s) if top else None,
        "mem_per_call_mb": (
            (top.asterisk_mem_mb + top.service_mem_mb) / top.peak_concurrent
            if top and top.peak_concurrent
            else None
        ),
        "ring_delay_p50_s": median(delays),
        "ring_delay_p95_s": (statistics.quantiles(delays, n=20)[18] if len(delays) >= 20 else None),
    }


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def print_table(ours: dict[str, Any], peer: dict[str, Any]) -> None:
    def ratio(key: str, total: bool = False) -> str:
        a, b = ours.get(key), peer.get(key)
        if total:
            a = (ours["asterisk_cpu_per_call"] or 0) + (ours["service_cpu_per_call"] or 0)
            b = (peer["asterisk_cpu_per_call"] or 0) + (peer["service_cpu_per_call"] or 0)
        return f"{a / b:.2f}" if a is not None and b else "—"

    total = {k: (d["asterisk_cpu_per_call"] or 0) + (d["service_cpu_per_call"] or 0)
             for k, d in (("ours", ours), ("peer", peer))}  # fmt: skip
    rows = [
        ("max concurrent calls (0 failed, 0 lost)", "max_concurrent", "d", False),
        ("Asterisk CPU per call (% of a core)", "asterisk_cpu_per_call", ".2%", False),
        ("service CPU per call (% of a core)", "service_cpu_per_call", ".2%", False),
        ("memory per call (MB, Asterisk + service)", "mem_per_call_mb", ".2f", False),
        ("seat-ring delay p50 (s)", "ring_delay_p50_s", ".3f", False),
        ("seat-ring delay p95 (s)", "ring_delay_p95_s", ".3f", False),
    ]
    print(f"\n{'':44} {'ours':>10} {'app_queue':>10} {'ours/app_queue':>15}")
    for label, key, spec, _ in rows:
        print(f"{label:44} {fmt(ours[key], spec):>10} {fmt(peer[key], spec):>10} "
              f"{ratio(key):>15}")  # fmt: skip
    print(f"{'total CPU per call (Asterisk + service)':44} {total['ours']:>10.2%} "
          f"{total['peer']:>10.2%} {ratio('', total=True):>15}")  # fmt: skip


async def main_async(args: argparse.Namespace) -> None:
    levels = [int(x) for x in args.levels.split(",")]
    work = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
    seat_ids = [f"bench{i + 1:03d}" for i in range(args.seats)]
    seat_cfg = Seats(count=args.seats, id_prefix="bench", answer_delay=Distribution(fixed=0.5),
                     talk=Distribution(fixed=args.talk))  # fmt: skip
    seat_ports = list(range(61000, 61000 + 40 * args.seats, 40))
    print(f"work dir {work}; levels {levels}; {args.seats} seats, talk {args.talk} s", flush=True)
    results: dict[str, dict[str, Any]] = {}
    # 1. ours
    acd_settings = {"wrap_up_s": 0, "ring_timeout_s": 15, "max_wait_s": 900}
    with running_stack(work / "ours", rtp_ports=RTP_PORTS, acd=acd_settings) as stack:
        target = stack.target()
        passwords = await asyncio.to_thread(
            provision_seats, seat_ids, "labor:3,general:1",
            runtime_dir=target.runtime_dir, config_path=target.config_path,
        )  # fmt: skip
        system = ours_system = System("ours", stack.runtime, stack.settings.asterisk.sip_port,
                        stack.process.pid)  # fmt: skip
        async with AcdClient(target.api_base, target.token) as acd:
            await start_seats(system, passwords, seat_cfg, acd, seat_ports)
            await ramp(system, levels, work, args.rate, args.keep_going)
            for seat in system.seats:
                await seat.stop()
        results["ours"] = summarize(system)
    # 2. app_queue, in its own Asterisk instance, with the same seat accounts
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
        results["app_queue"] = summarize(peer)
    finally:
        stop_asterisk(runtime, ports)
    print("\nper level (CPU and memory per concurrent call; 'FAIL' = failed calls or lost audio):")
    for system in (ours_system, peer):
        for lv in system.levels:
            a, sv = lv.per_call(lv.asterisk_cpu_s), lv.per_call(lv.service_cpu_s)
            mem = (lv.asterisk_mem_mb + lv.service_mem_mb) / max(1, lv.peak_concurrent)
            print(
                f"  {system.name:9} {lv.calls:4} calls peak {lv.peak_concurrent:4} "
                f"{'ok  ' if lv.ok else 'FAIL'} Asterisk {fmt(a, '.2%')} service "
                f"{fmt(sv, '.2%')} mem {mem:.2f} MB/call, {lv.call_seconds:.0f} call-s"
            )
    print_table(results["ours"], results["app_queue"])
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levels", default="20,40,80", help="concurrent callers per ramp step")
    ap.add_argument("--seats", type=int, default=16)
    ap.add_argument("--talk", type=float, default=6.0, help="seconds a seat talks")
    ap.add_argument("--rate", type=float, default=10.0, help="new calls per second (sipp -r)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument(
        "--keep-going", action="store_true", help="run every level even after a failing one"
    )
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
