"""Simulator scenarios: the YAML format, validated with pydantic, and the random draws it defines.

A scenario says who calls (arrivals, menu paths, patience, survey answers, callbacks, speech,
special-group and transferred-in callers) and who answers (seats: how many, skills, answer
delay, never-answer probability, talk time, pauses). ``load_scenario`` reads a file or a shipped
name (``smoke``, ``peak-hour``, ``overload`` from ``sim/scenarios/``) and raises
``ScenarioError`` whose message names the offending key, e.g.
``callers.patience: give exactly one of fixed, exponential, uniform, lognormal``.

Distributions are written as one-key mappings so a scenario reads like prose::

    patience: {exponential: 90}          # mean 90 s
    answer_delay: {uniform: [0.5, 3]}    # between 0.5 and 3 s
    talk: {lognormal: {median: 240, sigma: 0.5}}
    wrap: {fixed: 10}

This module is pure: no I/O beyond reading the file, every draw takes a ``random.Random``.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
DISTRIBUTION_KINDS = ("fixed", "exponential", "uniform", "lognormal")
SURVEY_CHOICES = ("satisfied", "basically_satisfied", "dissatisfied", "none")
# Survey keys of the hotline's post-call evaluation (ivr/survey.py ANSWERS).
SURVEY_KEYS = {"satisfied": "1", "basically_satisfied": "2", "dissatisfied": "3"}

Seconds = Annotated[float, Field(ge=0)]


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the file and the key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Lognormal(_Model):
    median: float = Field(gt=0)
    sigma: float = Field(ge=0)


class Distribution(_Model):
    """Exactly one of the four kinds; ``draw`` returns seconds (never negative)."""

    fixed: Seconds | None = None
    exponential: float | None = Field(None, gt=0, description="mean seconds")
    uniform: tuple[Seconds, Seconds] | None = None
    lognormal: Lognormal | None = None

    @model_validator(mode="before")
    @classmethod
    def _number_is_fixed(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return {"fixed": value}
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Distribution:
        given = [k for k in DISTRIBUTION_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(DISTRIBUTION_KINDS)} (got {given or 'none'})"
            )
        if self.uniform is not None and self.uniform[0] > self.uniform[1]:
            raise ValueError("uniform: the low bound must not exceed the high bound")
        return self

    def draw(self, rng: random.Random) -> float:
        if self.fixed is not None:
            return float(self.fixed)
        if self.exponential is not None:
            return rng.expovariate(1.0 / self.exponential)
        if self.uniform is not None:
            return rng.uniform(*self.uniform)
        assert self.lognormal is not None
        return rng.lognormvariate(math.log(self.lognormal.median), self.lognormal.sigma)

    @property
    def mean(self) -> float:
        if self.fixed is not None:
            return float(self.fixed)
        if self.exponential is not None:
            return self.exponential
        if self.uniform is not None:
            return sum(self.uniform) / 2
        assert self.lognormal is not None
        return self.lognormal.median * math.exp(self.lognormal.sigma**2 / 2)


class MenuPath(_Model):
    """What one kind of caller presses; ``queue`` is the queue they mean to reach (or none)."""

    name: str = Field(min_length=1)
    weight: float = Field(1.0, gt=0)
    keys: str = Field(pattern=r"^[0-9*#]*$", description="DTMF pressed one by one")
    queue: str | None = Field(None, description="the queue this path asks for (None: self-service)")
    hangup_after_s: Seconds | None = Field(
        None, description="self-service callers hang up this long after the last key"
    )


class Speech(_Model):
    wavs: list[Path] = Field(min_length=1)
    share: float = Field(1.0, ge=0, le=1)


class SpecialGroup(_Model):
    share: float = Field(0.0, ge=0, le=1)
    numbers: list[str] = Field(
        default_factory=list, description="numbers on the hotline's ivr.special_group_numbers"
    )

    @model_validator(mode="after")
    def _numbers_when_used(self) -> SpecialGroup:
        if self.share > 0 and not self.numbers:
            raise ValueError("share > 0 needs numbers (the hotline's special_group_numbers)")
        return self


class Transferred(_Model):
    share: float = Field(0.0, ge=0, le=1)
    partners: dict[str, float] = Field(default_factory=lambda: {"110": 1.0, "12345": 1.0})

    @field_validator("partners")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        if not value or any(w <= 0 for w in value.values()):
            raise ValueError("give at least one partner with a positive weight")
        return value


class Callers(_Model):
    paths: list[MenuPath] = Field(min_length=1)
    first_key_after_s: Seconds = 1.5
    key_gap_s: Seconds = 1.5
    patience: Distribution = Field(default_factory=lambda: Distribution(exponential=120))
    survey: dict[str, float] = Field(
        default_factory=lambda: {"satisfied": 0.7, "basically_satisfied": 0.2, "none": 0.1}
    )
    survey_delay_s: Seconds = Field(1.5, description="after the lawyer hangs up")
    callback_accept: float = Field(0.0, ge=0, le=1)
    speech: Speech | None = None
    special_group: SpecialGroup = Field(default_factory=SpecialGroup)
    transferred: Transferred = Field(default_factory=Transferred)
    number_prefix: str | None = Field(
        None, pattern=r"^1[3-9]\d$", description="first 3 digits of simulated numbers"
    )

    @field_validator("survey")
    @classmethod
    def _survey(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(SURVEY_CHOICES)
        if unknown:
            raise ValueError(f"unknown answers {sorted(unknown)}; use {', '.join(SURVEY_CHOICES)}")
        if any(w < 0 for w in value.values()) or sum(value.values()) <= 0:
            raise ValueError("weights must be >= 0 with a positive sum")
        return value


class Pause(_Model):
    probability: float = Field(0.0, ge=0, le=1, description="after each call")
    duration: Distribution = Field(default_factory=lambda: Distribution(fixed=60))


class Seats(_Model):
    count: int = Field(ge=0, le=500)
    id_prefix: str = Field("sim", pattern=r"^[a-z][a-z0-9_-]{0,15}$")
    skills: str = Field("labor:3,general:1", pattern=r"^[a-z_]+:\d(,[a-z_]+:\d)*$")
    region: str | None = None
    answer_delay: Distribution = Field(default_factory=lambda: Distribution(uniform=(0.5, 2.0)))
    never_answer: float = Field(0.0, ge=0, le=1, description="share of offers left ringing")
    talk: Distribution = Field(default_factory=lambda: Distribution(exponential=300))
    pause: Pause = Field(default_factory=Pause)
    resume_after: Distribution = Field(
        default_factory=lambda: Distribution(fixed=5),
        description="after letting an offer ring out (paused 未接听), back to ready",
    )


class Arrivals(_Model):
    rate_per_hour: float = Field(gt=0)
    profile: dict[int, float] = Field(
        default_factory=dict, description="hour of day (0-23) -> multiplier; missing = 1"
    )
    start_hour: int | None = Field(
        None, ge=0, le=23, description="hour the profile starts at (default: now, Asia/Shanghai)"
    )
    time_scale: float = Field(
        1.0, gt=0, description="simulated hours per real hour (profile only; rates stay real)"
    )

    @field_validator("profile")
    @classmethod
    def _hours(cls, value: dict[int, float]) -> dict[int, float]:
        for hour, factor in value.items():
            if not 0 <= hour <= 23:
                raise ValueError(f"hour {hour} is not 0-23")
            if factor < 0:
                raise ValueError(f"hour {hour}: the multiplier must be >= 0")
        return value

    def rate_at(self, hour: int) -> float:
        """Calls per second at an hour of day."""
        return self.rate_per_hour * self.profile.get(hour % 24, 1.0) / 3600.0


class HotlineAssumptions(_Model):
    """What the simulated callers know about the hotline's configuration."""

    callback_offer_after_s: Seconds | None = Field(
        None, description="acd.callback_offer_after_s: when a waiting caller may press 1"
    )
    callback_key_delay_s: Seconds = 3.0


class Scenario(_Model):
    name: str = Field(min_length=1)
    description: str = ""
    seed: int | None = None
    duration_s: float = Field(gt=0, description="arrivals stop after this many seconds")
    max_calls: int | None = Field(None, gt=0)
    drain_timeout_s: Seconds = Field(600, description="wait this long for calls in progress")
    arrivals: Arrivals
    callers: Callers
    seats: Seats
    hotline: HotlineAssumptions = Field(default_factory=HotlineAssumptions)

    @model_validator(mode="after")
    def _queues_need_seats(self) -> Scenario:
        if any(p.queue for p in self.callers.paths) and self.seats.count == 0:
            raise ValueError("seats.count: paths ask for a queue but no seat is simulated")
        return self

    # Draws -------------------------------------------------------------------------------------
    def draw_path(self, rng: random.Random) -> MenuPath:
        paths = self.callers.paths
        return rng.choices(paths, weights=[p.weight for p in paths])[0]

    def draw_survey(self, rng: random.Random) -> str:
        names = list(self.callers.survey)
        return rng.choices(names, weights=[self.callers.survey[n] for n in names])[0]


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"invalid scenario {source}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        problem = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        problem = problem.removeprefix("Value error, ")
        lines.append(f"  {key}: {problem}")
    return "\n".join(lines)


def parse_scenario(data: Any, source: str = "<data>") -> Scenario:
    """A ``Scenario`` from parsed YAML; ``ScenarioError`` names every bad key."""
    if not isinstance(data, dict):
        raise ScenarioError(f"invalid scenario {source}: the top level must be a mapping")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_describe(exc, source)) from None


def resolve(name_or_path: str | Path) -> Path:
    """A path as given, else a shipped scenario by name (``peak-hour`` -> scenarios/...yaml)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    shipped = SCENARIO_DIR / f"{name_or_path}.yaml"
    if shipped.exists():
        return shipped
    known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
    raise ScenarioError(f"no scenario file {name_or_path!s} (shipped scenarios: {known})")


def load_scenario(name_or_path: str | Path) -> Scenario:
    path = resolve(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"invalid scenario {path}: not valid YAML: {exc}") from None
    scenario = parse_scenario(data, str(path))
    if scenario.callers.speech:  # WAV paths are relative to the scenario file
        wavs = [
            w if w.is_absolute() else (path.parent / w).resolve()
            for w in scenario.callers.speech.wavs
        ]
        speech = scenario.callers.speech.model_copy(update={"wavs": wavs})
        callers = scenario.callers.model_copy(update={"speech": speech})
        scenario = scenario.model_copy(update={"callers": callers})
    return scenario
