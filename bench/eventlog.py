"""Benchmark: call-event log throughput on SQLite and PostgreSQL.

Appends N events (round-robin over a number of calls, yielding to the event loop every 500
appends as a live service would), waits until all are written, and prints events/s for the
whole run (append + write) and for append alone. Median of --runs runs, each on a fresh
database: a SQLite file in a temporary directory, a temporary PostgreSQL database.

    .venv/bin/python bench/eventlog.py [--n 100000] [--runs 3] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from hotline.db import make_engine, migrate
from hotline.db.testing import postgres_unavailable_reason, temporary_postgres_database
from hotline.events import CallEventLog, EventBus, EventType

TYPES = [EventType.PROMPT_STARTED, EventType.PROMPT_FINISHED, EventType.CALL_ANSWERED]


async def one_run(url: str, n: int, calls: int, batch_size: int) -> tuple[float, float]:
    engine = make_engine(url)
    migrate(engine)
    bus = EventBus()
    sub = bus.subscribe("call.*")  # a live view listening, as in the service

    async def view() -> None:
        async for _ in sub:
            pass

    viewer = asyncio.create_task(view())
    with tempfile.TemporaryDirectory() as spool:
        log = CallEventLog(engine, spool_dir=Path(spool), bus=bus, batch_size=batch_size)
        await log.start()
        t0 = time.perf_counter()
        appending = 0.0
        for i in range(n):
            a = time.perf_counter()
            log.append(f"call-{i % calls:05d}", TYPES[i % 3], {"prompt": "welcome", "i": i})
            appending += time.perf_counter() - a
            if i % 500 == 499:
                await asyncio.sleep(0)
        await log.flush()
        total = time.perf_counter() - t0
        stats = log.stats
        await log.close()
    bus.close()
    await viewer
    engine.dispose()
    assert stats.written == n and stats.spilled == 0, stats
    return n / total, n / appending


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()

    for backend in args.backends.split(","):
        results = []
        for _ in range(args.runs):
            if backend == "sqlite":
                with tempfile.TemporaryDirectory() as tmp:
                    url = f"sqlite:///{tmp}/bench.db"
                    results.append(asyncio.run(one_run(url, args.n, args.calls, args.batch_size)))
            else:
                reason = postgres_unavailable_reason()
                if reason:
                    print(f"{backend}: skipped ({reason})")
                    break
                with temporary_postgres_database(prefix="hotline_bench_") as url:
                    results.append(asyncio.run(one_run(url, args.n, args.calls, args.batch_size)))
        if results:
            written = statistics.median(r[0] for r in results)
            appended = statistics.median(r[1] for r in results)
            runs = ", ".join(f"{r[0]:,.0f}" for r in results)
            print(
                f"{backend:10s} N={args.n:,}: {written:,.0f} events/s written "
                f"(median of {len(results)}: {runs}); append alone {appended:,.0f} events/s"
            )


if __name__ == "__main__":
    main()
