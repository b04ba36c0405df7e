"""Time from answer to queue entry for a caller who presses 1 (法律咨询) then a topic.

Real Asterisk, the real service, pjsua2 callers with RFC 4733 DTMF. Two kinds of caller:
- "at each menu": presses when each menu starts (language 1, main menu 1, topic 1);
- "typing ahead": presses 1 1 1 as soon as the call is answered (barge-in carries the keys).
Times come from the call-event log (call.answered → queue.entered) of each call.

    .venv/bin/python bench/ivr_to_queue.py [--calls 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from hotline.privacy import mask_number
from hotline.testing import launch_service, running_test_asterisk
from sim.phone import Phone

STEPS = [("language", "1"), ("main_menu", "1"), ("consult_menu", "1")]


async def one_call(service, number: str, type_ahead: bool) -> float:
    masked = mask_number(number)
    async with Phone.start(f"c{number[-4:]}") as phone:
        call = await phone.call(f"sip:12348@127.0.0.1:{service.sip_port}", from_user=number)
        await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=15)
        if type_ahead:
            await phone.dtmf(call, "111")
        else:
            for node, key in STEPS:
                await service.await_logged(masked, "ivr.node_entered", node=node, timeout=60)
                await phone.dtmf(call, key)
        entered = await service.await_logged(masked, "queue.entered", timeout=60)
        await phone.hangup(call)
    answered = await service.await_logged(masked, "call.answered")
    return (entered.ts - answered.ts).total_seconds()


async def main(calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, running_test_asterisk(Path(tmp) / "rt") as ast:
        service = launch_service(ast, Path(tmp), log_level="WARNING")
        results = {}
        for label, ahead in (("at each menu", False), ("typing ahead", True)):
            times = [
                await one_call(service, f"1380000{ahead:d}{i:03d}", ahead) for i in range(calls)
            ]
            results[label] = times
        service.stop()
    print(f"answer → queue entry (consultation, labour topic), {calls} calls each, real Asterisk")
    for label, times in results.items():
        print(f"  {label:13} median {statistics.median(times):.2f} s   "
              f"min {min(times):.2f} s   max {max(times):.2f} s")  # fmt: skip
    print(
        "  (the rest is prompt audio: the last prompt, 正在为您转接律师, is played before queueing)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10)
    asyncio.run(main(parser.parse_args().calls))
