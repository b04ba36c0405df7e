"""How fast a freed seat gets its next waiting call: seat hangs up → its phone rings again.

Real Asterisk, the real service, one pjsua2 seat with no wrap-up and a queue kept full by pjsua2
callers. Both timestamps come from the seat's own phone process. app_queue, measured on this
machine, takes about 1.5 s (it retries on a timer); an event-driven ACD should take ~100 ms.

    .venv/bin/python bench/seat_ring_delay.py [--calls 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from hotline.testing import async_wait_for, launch_service, running_test_asterisk
from sim.phone import Phone


def waiting(service) -> int:
    status, queues = service.api("GET", "/api/acd/queues")
    return next(q["waiting"] for q in queues if q["name"] == "operator") if status == 200 else 0


async def main(calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, running_test_asterisk(Path(tmp) / "rt") as ast:
        service = launch_service(ast, Path(tmp), log_level="WARNING")
        service.restart_with(acd={"wrap_up_s": 0, "ring_timeout_s": 10})
        password = service.add_seat("bench1", "general:1")
        async with Phone.start(
            "bench1", registrar=service.registrar, user="bench1", password=password
        ) as seat:
            await seat.wait_event("reg_state", active=True, timeout=10)
            await seat.set_auto_answer("answer", delay_ms=0)
            callers = []
            for i in range((calls + 2) // 4 + 1):  # 4 calls per phone process
                callers.append(await Phone.spawn(f"caller{i}"))
            uri = f"sip:12348@127.0.0.1:{service.sip_port}"
            for i, phone in enumerate(callers):
                for k in range(4):
                    call = await phone.call(uri, from_user=f"1390000{i:02d}{k:02d}")
                    await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=15)
                    await phone.dtmf(call, "0")  # type-ahead during the welcome: 人工服务
            await async_wait_for(
                lambda: waiting(service) >= calls + 1, 120, message="every caller in the queue"
            )
            assert service.api("POST", "/api/acd/seats/bench1/login")[0] == 200
            delays = []
            hung_up_at = None
            for _ in range(calls + 1):
                ring = await seat.wait_event("incoming", timeout=60)
                if hung_up_at is not None:
                    delays.append(ring["ts"] - hung_up_at)
                await seat.wait_event("call_state", call=ring["call"], state="CONFIRMED")
                await seat.hangup(ring["call"])
                gone = await seat.wait_event("disconnected", call=ring["call"], timeout=10)
                hung_up_at = gone["ts"]
            for phone in callers:
                await phone.stop()
        service.stop()
    delays.sort()
    ms = [d * 1000 for d in delays]
    print(f"seat hangs up → next call rings, {len(ms)} calls through real Asterisk")
    print(f"  median {statistics.median(ms):.0f} ms   p95 {ms[int(0.95 * (len(ms) - 1))]:.0f} ms"
          f"   min {ms[0]:.0f} ms   max {ms[-1]:.0f} ms")  # fmt: skip
    print("  app_queue on this machine (RUNTIME.md): about 1500 ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    asyncio.run(main(parser.parse_args().calls))
