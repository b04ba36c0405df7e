"""The simulator's own record of every call (ground truth) and the true KPIs computed from it.

This module owns what the simulator *knows* happened, independently of the hotline's event log:
each simulated caller writes one :class:`TruthCall` (arrival, keys pressed, whether and when a
person answered, who hung up, wait, talk, abandon, survey answer), assembled from the SIP
phones' own timestamps (caller side and seat side, ``time.time()`` in the worker processes).
Nothing here reads the hotline's database: ``sim.compare`` does that and holds the two apart.

Definitions (the same as DESIGN.md's KPIs, applied to what the caller and the seat saw):

* *asked for a seat*: the caller finished a menu path that leads to a queue (``queue`` set)
  and was still on the line. ``asked_at`` is the last key: the one moment of the request the
  caller itself makes.
* *queue entry* (the KPI's clock, DESIGN.md: wait counts from queue entry, not from the IVR):
  the moment the caller starts hearing the queue, i.e. after the hotline's "connecting" prompt
  that follows the last key. The caller cannot tell it apart from its own side without
  analysing audio, so the truth keeps ``asked_at`` and :func:`on_kpi_clock` moves a call onto
  the KPI's clock given the connecting prompt's length (``sim.compare`` measures it per menu
  path); a caller who hung up during that prompt never reached the queue on that clock.
* *answered*: a seat's phone answered (its 200 OK confirmed) before the caller hung up.
* *abandoned*: asked for a seat, not answered, and the caller hung up (not after a callback).
* answer rate and abandonment exclude short abandons (< ``short_abandon_s``); service level
  is answered within ``service_level_s`` of the last key / answered.

A run directory holds ``run.json`` (scenario, times, the hotline's configuration file) and
``truth.jsonl`` (one call per line). ``load_run`` reads both back for ``sim compare``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from statistics import mean, median
from typing import Any

TRUTH_FILE = "truth.jsonl"
RUN_FILE = "run.json"


@dataclass
class TruthCall:
    """One simulated call as the simulator saw it; times are Unix seconds."""

    sim_id: str
    number: str  # the simulated caller's number (fake, made by the simulator)
    masked: str  # as the hotline logs it (hotline.privacy.mask_number)
    path: str
    keys: str
    wanted_queue: str | None
    origin: str = "12348"
    special_group: bool = False
    patience_s: float | None = None
    survey_choice: str | None = None  # what this caller would answer (drawn)
    accepts_callback: bool = False
    arrived_at: float = 0.0
    connected_at: float | None = None  # the hotline answered (IVR)
    failed: str | None = None  # the call never reached the hotline (SIP error, timeout)
    keys_pressed: list[tuple[str, float]] = field(default_factory=list)
    asked_at: float | None = None  # last key of a path that leads to a queue
    offers: list[tuple[str, float]] = field(default_factory=list)  # (seat, rang at)
    answered_at: float | None = None
    seat: str | None = None
    seat_hungup_at: float | None = None
    callback_requested_at: float | None = None
    survey: str | None = None  # the key actually pressed, as a rating name
    survey_at: float | None = None
    ended_at: float | None = None
    hangup_by: str | None = None  # caller | seat | system
    speech: str | None = None

    # Derived -----------------------------------------------------------------------------
    @property
    def asked_for_seat(self) -> bool:
        return self.asked_at is not None

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def abandoned(self) -> bool:
        return (
            self.asked_for_seat
            and not self.answered
            and self.callback_requested_at is None
            and self.hangup_by == "caller"
        )

    @property
    def wait_s(self) -> float | None:
        if self.asked_at is None:
            return None
        end = self.answered_at or self.callback_requested_at or self.ended_at
        return None if end is None else max(0.0, end - self.asked_at)

    @property
    def talk_s(self) -> float | None:
        if self.answered_at is None:
            return None
        end = self.seat_hungup_at or self.ended_at
        return None if end is None else max(0.0, end - self.answered_at)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TruthCall:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["keys_pressed"] = [tuple(x) for x in values.get("keys_pressed", [])]
        values["offers"] = [tuple(x) for x in values.get("offers", [])]
        return cls(**values)


def on_kpi_clock(call: TruthCall, connect_s: float | None) -> TruthCall:
    """The call with ``asked_at`` moved to queue entry: last key + ``connect_s`` (the length of
    the connecting prompt the caller heard). A caller gone before then never asked for a seat
    on this clock; ``connect_s`` None leaves the call as it is."""
    if call.asked_at is None or connect_s is None:
        return call
    moved = TruthCall.from_json(call.to_json())
    queued_at = call.asked_at + connect_s
    if call.answered_at is None and call.ended_at is not None and call.ended_at < queued_at:
        moved.asked_at = None
    else:
        moved.asked_at = queued_at
    return moved


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def true_kpis(
    calls: list[TruthCall], *, short_abandon_s: float = 5.0, service_level_s: float = 15.0
) -> dict[str, Any]:
    """Counts and KPIs of the calls that really happened (see the module's definitions)."""
    placed = len(calls)
    reached = [c for c in calls if c.failed is None]
    asked = [c for c in reached if c.asked_for_seat]
    answered = [c for c in asked if c.answered]
    abandoned = [c for c in asked if c.abandoned]
    short = [c for c in abandoned if (c.wait_s or 0.0) < short_abandon_s]
    callbacks = [c for c in asked if c.callback_requested_at is not None]
    counted = len(asked) - len(short)
    waits = [c.wait_s for c in answered if c.wait_s is not None]
    talks = [c.talk_s for c in answered if c.talk_s is not None]
    surveys = Counter(c.survey for c in answered if c.survey)
    rated = sum(surveys.values())
    within = sum(1 for w in waits if w <= service_level_s)
    return {
        "placed": placed,
        "failed": placed - len(reached),
        "asked_for_seat": len(asked),
        "answered": len(answered),
        "abandoned": len(abandoned),
        "short_abandoned": len(short),
        "callback_requested": len(callbacks),
        "special_group": sum(1 for c in reached if c.special_group),
        "transferred_in": sum(1 for c in reached if c.origin != "12348"),
        "survey_satisfied": surveys.get("satisfied", 0),
        "survey_basically_satisfied": surveys.get("basically_satisfied", 0),
        "survey_dissatisfied": surveys.get("dissatisfied", 0),
        "answer_rate": _ratio(len(answered), counted),
        "abandon_rate": _ratio(len(abandoned) - len(short), counted),
        "service_level": _ratio(within, len(answered)),
        "asa_s": mean(waits) if waits else None,
        "median_wait_s": median(waits) if waits else None,
        "avg_talk_s": mean(talks) if talks else None,
        "satisfaction": _ratio(
            surveys.get("satisfied", 0) + surveys.get("basically_satisfied", 0), rated
        ),
        "evaluation_rate": _ratio(rated, len(answered)),
    }


class TruthLog:
    """Appends finished calls to ``truth.jsonl`` as they end (a crash keeps what was done)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / TRUTH_FILE
        self._file = self.path.open("a", encoding="utf-8")
        self.calls: list[TruthCall] = []

    def write(self, call: TruthCall) -> None:
        self.calls.append(call)
        self._file.write(json.dumps(call.to_json(), ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def write_run_info(run_dir: Path, info: dict[str, Any]) -> None:
    (run_dir / RUN_FILE).write_text(
        json.dumps(info, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
    )


def load_run(run_dir: Path) -> tuple[dict[str, Any], list[TruthCall]]:
    """``run.json`` and every call of ``truth.jsonl`` of a finished run."""
    info = json.loads((run_dir / RUN_FILE).read_text(encoding="utf-8"))
    calls = [
        TruthCall.from_json(json.loads(line))
        for line in (run_dir / TRUTH_FILE).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return info, calls
