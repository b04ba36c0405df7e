"""Benchmark of the ACD core's routing decisions (not a test): p50/p99 per decision.

Scenario: 2,000 seats with mixed skills (1-3 of 8 topics, levels 1-5, 6 regions) and 10,000
waiting calls spread over 8 queues (mixed strategies, priorities, skill levels, relaxation).

- seat freed -> best of the 10,000 waiting calls: ``seat_ready`` (whole input, with logging)
  and the bare decision ``Acd._best_call``;
- call arrives -> best of ~2,000 available seats (10,000 other calls waiting meanwhile):
  ``call_arrived`` and the bare decision ``Acd._pick_seats``;
- call arrives with no seat free: queue insertion, rank and announcement.

Run: ``.venv/bin/python bench/acd_routing.py [--calls 10000 --seats 2000 --samples 2000]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acd.config import AcdConfig, QueueConfig, RelaxationStep, SeatConfig
from acd.core import Acd
from acd.model import Offer

TOPICS = ["labour", "family", "contract", "property", "criminal", "admin", "traffic", "consumer"]
REGIONS = ["hohhot", "baotou", "ordos", "chifeng", "tongliao", "hulunbuir"]
STRATEGIES = ["longest_idle", "fewest_calls", "skill_weighted"]


def build(n_seats: int, rng: random.Random) -> Acd:
    queues = [
        QueueConfig(
            name=t,
            strategy=STRATEGIES[i % len(STRATEGIES)],
            announce_interval_s=30,
            relaxation=(
                RelaxationStep(after_s=30, level_drop=1),
                RelaxationStep(after_s=60, any_seat=True),
            ),
        )
        for i, t in enumerate(TOPICS)
    ]
    queues.append(QueueConfig(name="rare", announce_interval_s=30))  # nobody has this skill
    seats = []
    for i in range(n_seats):
        topics = rng.sample(TOPICS, rng.randint(1, 3))
        seats.append(
            SeatConfig(
                seat_id=f"s{i}",
                skills={t: rng.randint(1, 5) for t in topics},
                region=rng.choice(REGIONS),
            )
        )
    return Acd(AcdConfig(queues=tuple(queues), seats=tuple(seats)), now=0.0)


def pct(samples: list[int]) -> str:
    s = sorted(samples)
    p50 = s[len(s) // 2] / 1000
    p99 = s[min(len(s) - 1, int(len(s) * 0.99))] / 1000
    mean = statistics.mean(s) / 1000
    return f"p50 {p50:8.1f} us   p99 {p99:8.1f} us   (n={len(s)}, mean {mean:.1f})"


def arrive_args(rng: random.Random) -> tuple[str, dict[str, int], int]:
    topic = rng.choice(TOPICS)
    return topic, {topic: rng.randint(1, 3)}, rng.choice([0, 0, 0, 0, 1, 2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--seats", type=int, default=2_000)
    ap.add_argument("--samples", type=int, default=2_000)
    ap.add_argument("--seed", type=int, default=12348)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    clock = time.perf_counter_ns

    # --- phase A: every seat paused, 10k calls waiting; seats become ready one by one.
    acd = build(args.seats, rng)
    now = 0.0
    for i in range(args.seats):
        acd.seat_logged_in(f"s{i}", now=now)
        acd.seat_paused(f"s{i}", "会议", now=now)
    t0 = clock()
    for n in range(args.calls - args.samples):
        now += 0.001
        topic, needed, prio = arrive_args(rng)
        acd.call_arrived(f"w{n}", topic, now=now, priority=prio, skills_needed=needed)
    fill = (clock() - t0) / (args.calls - args.samples)
    queued: list[int] = []
    for n in range(args.samples):  # the last arrivals find no seat: insert, rank, announce
        topic, needed, prio = arrive_args(rng)
        t = clock()
        acd.call_arrived(f"q{n}", topic, now=now, priority=prio, skills_needed=needed)
        queued.append(clock() - t)
    seats = [acd._seats[f"s{i}"] for i in range(args.seats)]
    bare: list[int] = []
    for seat in rng.sample(seats, min(args.samples, len(seats))):
        t = clock()
        acd._best_call(seat)  # decision only (the seat is paused: nothing changes)
        bare.append(clock() - t)
    freed: list[int] = []
    offered = 0
    waiting_at_start = len(acd.call_ids())
    for n in range(args.samples):
        seat_id = f"s{n % args.seats}"
        now += 0.01
        t = clock()
        out = acd.seat_ready(seat_id, now=now)
        freed.append(clock() - t)
        got = [c for c in out if isinstance(c, Offer)]
        offered += len(got)
        for offer in got:  # answer and finish; keep the queue at its size with a new arrival
            acd.offer_answered(offer.call_id, seat_id, now=now)
            acd.call_completed(offer.call_id, "seat", now=now)
            topic, needed, prio = arrive_args(rng)
            acd.call_arrived(f"r{n}", topic, now=now, priority=prio, skills_needed=needed)
        if acd.seat_view(seat_id).state.value == "wrap_up":
            acd.seat_paused(seat_id, "会议", now=now)

    # --- phase B: every seat available, 10k calls waiting for a skill nobody has.
    acd = build(args.seats, rng)
    now = 0.0
    for i in range(args.calls):
        acd.call_arrived(f"x{i}", "rare", now=now)
    for i in range(args.seats):
        acd.seat_logged_in(f"s{i}", now=now + i * 1e-4)
    now = 1.0
    bare_b: list[int] = []
    for n in range(args.samples):
        topic, needed, prio = arrive_args(rng)
        acd.call_arrived(f"probe{n}", "rare", now=now)  # a waiting call object to ask about
        call = acd._calls[f"probe{n}"]
        call.queue, call.reqs = topic, ((next(iter(needed.items())),),)
        t = clock()
        acd._pick_seats(call)
        bare_b.append(clock() - t)
        call.queue = "rare"
        call.reqs = (((("rare", 1),)),)
    arrive: list[int] = []
    n_arrive = min(args.samples, args.seats * 3 // 4)
    for n in range(n_arrive):
        now += 0.01
        topic, needed, prio = arrive_args(rng)
        t = clock()
        out = acd.call_arrived(f"a{n}", topic, now=now, priority=prio, skills_needed=needed)
        arrive.append(clock() - t)
        for offer in (c for c in out if isinstance(c, Offer)):
            acd.offer_answered(offer.call_id, offer.seat_id, now=now)  # seat stays busy

    print(
        f"ACD routing benchmark: {args.calls} waiting calls, {args.seats} seats, "
        f"{len(TOPICS)} topics, {len(REGIONS)} regions (Python {sys.version.split()[0]})"
    )
    print(f"  fill: {fill / 1000:.1f} us per arrival while filling the queues")
    print(f"  seat freed -> best of {waiting_at_start} calls, decision only : {pct(bare)}")
    print(f"  seat freed -> seat_ready() whole input       : {pct(freed)}  offers={offered}")
    print(f"  call arrives -> best of {args.seats} seats, decision only: {pct(bare_b)}")
    print(f"  call arrives -> call_arrived() whole input    : {pct(arrive)}")
    print(f"  call arrives, no seat free (insert+rank+announce): {pct(queued)}")


if __name__ == "__main__":
    main()
