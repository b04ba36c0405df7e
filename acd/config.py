"""ACD configuration: queues and seats as validated pydantic models.

Owns the shape and the defaults of the ACD settings and their cross-checks (overflow targets
exist, relaxation steps are in order, the auto-pause reasons are known reason codes). It does not
load files: the hotline's single config loader hands a mapping to ``AcdConfig.model_validate``.

Priority and aging: ``aging_s_per_level`` says how many seconds of waiting one priority level is
worth. A caller of priority 2 in a queue with 60 s per level is placed as if they had arrived
120 s earlier, so they pass ordinary callers but can never hold back a caller who has already
waited more than 120 s longer than they have: nobody starves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Strategy = Literal["longest_idle", "fewest_calls", "round_robin", "skill_weighted", "ring_all"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RelaxationStep(_Model):
    after_s: float = Field(gt=0, description="seconds in this queue before the step applies")
    level_drop: int = Field(0, ge=0, description="accept skill levels this much lower (min 1)")
    any_seat: bool = Field(False, description="accept any seat of the queue's regions (任意律师)")


class OverflowRule(_Model):
    after_s: float = Field(gt=0, description="seconds in this queue before overflowing")
    to_queue: str = Field(description="another queue (e.g. another topic or region)")


class QueueConfig(_Model):
    name: str = Field(min_length=1)
    topic: str | None = Field(None, description="the skill this queue needs; default its name")
    min_level: int = Field(1, ge=1)
    regions: tuple[str, ...] | None = Field(None, description="seat regions served; None = all")
    strategy: Strategy = "longest_idle"
    ring_timeout_s: float = Field(15.0, gt=0)
    wrap_up_s: float = Field(10.0, ge=0, description="话后处理; a seat may override it")
    aging_s_per_level: float = Field(60.0, ge=0)
    relaxation: tuple[RelaxationStep, ...] = ()
    overflow: OverflowRule | None = None
    max_wait_s: float | None = Field(None, gt=0)
    on_max_wait: Literal["message", "callback"] = "message"
    callback_offer_after_s: float | None = Field(
        None, gt=0, description="after this wait, offer a callback keeping the place (once)"
    )
    join_empty: Literal["join", "message", "callback"] = "join"
    leave_empty: Literal["stay", "message", "callback"] = "stay"
    leave_empty_grace_s: float = Field(0.0, ge=0)
    empty_when: Literal["no_seat_logged_in", "no_seat_unpaused"] = "no_seat_logged_in"
    announce_interval_s: float | None = Field(30.0, gt=0)
    announce_on_entry: bool = True
    callback_retries: int = Field(2, ge=0, description="retries after the first failed attempt")
    callback_retry_delay_s: float = Field(60.0, ge=0)
    callback_timeout_s: float = Field(60.0, gt=0, description="no callback_result by then = fail")
    ring_all_max: int = Field(10, ge=1)
    default_aht_s: float = Field(300.0, gt=0)

    @property
    def skill(self) -> str:
        return self.topic or self.name

    @model_validator(mode="after")
    def _steps_in_order(self) -> QueueConfig:
        times = [s.after_s for s in self.relaxation]
        if times != sorted(times) or len(set(times)) != len(times):
            raise ValueError(f"queue {self.name}: relaxation steps must have increasing after_s")
        if self.overflow and self.overflow.to_queue == self.name:
            raise ValueError(f"queue {self.name}: overflow to itself")
        return self


class SeatConfig(_Model):
    seat_id: str = Field(min_length=1)
    skills: dict[str, int] = Field(default_factory=dict, description="topic -> level (1 = lowest)")
    region: str = "default"
    wrap_up_s: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _skill_names(self) -> SeatConfig:
        for name, level in self.skills.items():
            if name.startswith(("*", "@")) or level < 1:
                raise ValueError(f"seat {self.seat_id}: bad skill {name}={level}")
        return self


DEFAULT_PAUSE_REASONS = (
    "小休", "培训", "会议", "就餐", "未接听", "忙线", "拒接", "故障", "未就绪",
    "回拨",  # a work-order callback (工单回拨) is being placed from this seat
)  # fmt: skip


class AcdConfig(_Model):
    queues: tuple[QueueConfig, ...] = Field(min_length=1)
    seats: tuple[SeatConfig, ...] = ()
    pause_reasons: tuple[str, ...] = DEFAULT_PAUSE_REASONS
    offer_failure_pause: dict[Literal["no_answer", "busy", "rejected", "error"], str] = Field(
        default_factory=lambda: {
            "no_answer": "未接听",
            "busy": "忙线",
            "rejected": "拒接",
            "error": "故障",
        }
    )
    origin_priority: dict[str, int] = Field(
        default_factory=lambda: {"110": 2},
        description="minimum priority by call origin (e.g. transfers from 110)",
    )
    ready_on_login: bool = True
    login_pause_reason: str = "未就绪"
    aht_alpha: float = Field(0.2, gt=0, le=1, description="weight of a new AHT observation")

    @model_validator(mode="after")
    def _cross_checks(self) -> AcdConfig:
        names = [q.name for q in self.queues]
        if len(set(names)) != len(names):
            raise ValueError("queue names must be unique")
        for q in self.queues:
            if q.overflow and q.overflow.to_queue not in names:
                raise ValueError(f"queue {q.name}: overflow to unknown queue {q.overflow.to_queue}")
        ids = [s.seat_id for s in self.seats]
        if len(set(ids)) != len(ids):
            raise ValueError("seat ids must be unique")
        for reason in [*self.offer_failure_pause.values(), self.login_pause_reason]:
            if reason not in self.pause_reasons:
                raise ValueError(f"pause reason {reason!r} is not in pause_reasons")
        return self

    def queue(self, name: str) -> QueueConfig | None:
        for q in self.queues:
            if q.name == name:
                return q
        return None

    @classmethod
    def per_topic(
        cls, topics: Iterable[str], seats: Iterable[SeatConfig] = (), **queue_defaults: Any
    ) -> AcdConfig:
        """One queue per topic (the default layout), all with the same settings."""
        queues = tuple(QueueConfig(name=t, **queue_defaults) for t in topics)
        return cls(queues=queues, seats=tuple(seats))
