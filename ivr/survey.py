"""The post-call satisfaction survey (满意度评价), sans I/O: one evaluation per answered call.

Theory of operation
-------------------
When a seat hangs up on an answered call, the adapter keeps the caller's channel and runs one
``SurveyRun`` with the same event and command types as the flow interpreter. The caller hears
"满意请按1，基本满意请按2，不满意请按3" (interruptible: a key during the prompt counts at once).

    OFFERED  --PromptFinished--> WAITING (timer started)
    OFFERED/WAITING --1|2|3--> ANSWERED: thanks, Hangup           survey.answered
    OFFERED/WAITING --other key--> first time: "输入有误" + the question again (one retry);
                                   second time: NOT_RATED, goodbye  survey.not_rated(invalid)
    WAITING --TimerExpired--> NOT_RATED (no retry on silence)        survey.not_rated(timeout)
    any    --CallerHungUp--> NOT_RATED unless already answered       survey.not_rated(hangup)

Only 1/2/3 are ever counted; a timeout, a wrong key or a hang-up is ``not_rated`` and never
satisfied. A run gives at most one result, and a run is refused for a call that no seat
answered (``SurveyRun(answered=False)`` raises): the KPI's 测评率 denominator is answered calls.
After the result, only a hang-up (no-op), a stale timer or the final ``PromptFinished`` is
accepted; anything else is a protocol error, like in ``ivr.interpreter``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ivr.interpreter import (
    CallerHungUp,
    CancelTimer,
    Command,
    DigitPressed,
    Event,
    Hangup,
    IvrProtocolError,
    Log,
    Play,
    PromptFinished,
    StartTimer,
    StopPlayback,
    TimerExpired,
)


class SurveyResult(enum.Enum):
    SATISFIED = "satisfied"  # 满意
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意
    DISSATISFIED = "dissatisfied"  # 不满意
    NOT_RATED = "not_rated"  # 未评价: timeout, wrong key, hang-up


ANSWERS = {
    "1": SurveyResult.SATISFIED,
    "2": SurveyResult.BASICALLY_SATISFIED,
    "3": SurveyResult.DISSATISFIED,
}

# Prompt ids the survey needs in the catalogue (checked by tests/ivr).
SURVEY_PROMPTS = ("survey_question", "survey_invalid", "survey_thanks", "goodbye")


class SurveyState(enum.Enum):
    IDLE = "idle"
    OFFERED = "offered"  # question playing
    WAITING = "waiting"  # question done, timer running
    CLOSING = "closing"  # result known, last prompt playing
    ENDED = "ended"


@dataclass(frozen=True)
class SurveyConfig:
    timeout: float = 8.0
    retries_on_invalid: int = 1
    question: tuple[str, ...] = ("survey_question",)
    invalid: tuple[str, ...] = ("survey_invalid",)
    thanks: tuple[str, ...] = ("survey_thanks",)
    not_rated: tuple[str, ...] = ("goodbye",)


class SurveyRun:
    """One survey for one answered call."""

    def __init__(self, call_id: str, *, answered: bool, config: SurveyConfig | None = None):
        if not answered:
            raise ValueError(f"call {call_id}: only an answered call is surveyed")
        self.call_id = call_id
        self.config = config or SurveyConfig()
        self.state = SurveyState.IDLE
        self.result: SurveyResult | None = None
        self.active_timer: str | None = None
        self.playing = False
        self._invalid = 0
        self._timer_seq = 0
        self._timers: set[str] = set()
        self._out: list[Command] = []

    @property
    def finished(self) -> bool:
        return self.result is not None

    def start(self) -> list[Command]:
        if self.state is not SurveyState.IDLE:
            raise IvrProtocolError(f"survey for call {self.call_id} already started")
        self._out = [Log("survey.offered", {"call_id": self.call_id})]
        self._ask(())
        return self._flush()

    def handle(self, event: Event) -> list[Command]:
        self._out = []
        if isinstance(event, CallerHungUp):
            self._on_hangup()
        elif isinstance(event, TimerExpired):
            self._on_timer(event)
        elif isinstance(event, PromptFinished) and self.playing:
            self._on_prompt_finished()
        elif isinstance(event, DigitPressed) and self.state in (
            SurveyState.OFFERED,
            SurveyState.WAITING,
        ):
            self._on_digit(event.digit)
        elif isinstance(event, DigitPressed) and self.state is SurveyState.CLOSING:
            pass  # keys during the thank-you have no effect: the one evaluation is made
        else:
            raise IvrProtocolError(
                f"{type(event).__name__} is not possible in survey state {self.state.name} "
                f"(call {self.call_id}); expected "
                + {
                    SurveyState.IDLE: "start()",
                    SurveyState.OFFERED: "PromptFinished, DigitPressed or CallerHungUp",
                    SurveyState.WAITING: "DigitPressed, TimerExpired or CallerHungUp",
                    SurveyState.CLOSING: "PromptFinished or CallerHungUp",
                    SurveyState.ENDED: "CallerHungUp",
                }[self.state]
            )
        return self._flush()

    # Internals
    def _flush(self) -> list[Command]:
        out, self._out = self._out, []
        return out

    def _ask(self, before: tuple[str, ...]) -> None:
        self._out.append(Play(before + self.config.question, interruptible=True))
        self.playing = True
        self.state = SurveyState.OFFERED

    def _on_prompt_finished(self) -> None:
        self.playing = False
        if self.state is SurveyState.OFFERED:
            self._timer_seq += 1
            self.active_timer = f"survey:{self._timer_seq}"
            self._timers.add(self.active_timer)
            self._out.append(StartTimer(self.active_timer, self.config.timeout))
            self.state = SurveyState.WAITING
        elif self.state is SurveyState.CLOSING:
            self._out.append(Hangup("survey_done"))
            self.state = SurveyState.ENDED

    def _on_digit(self, digit: str) -> None:
        if self.playing:
            self._out.append(StopPlayback())
            self.playing = False
        self._cancel_timer()
        result = ANSWERS.get(digit)
        if result is not None:
            self._decide(result, "survey.answered", {"result": result.value, "key": digit})
            return
        self._invalid += 1
        if self._invalid > self.config.retries_on_invalid:
            self._decide(SurveyResult.NOT_RATED, "survey.not_rated", {"reason": "invalid"})
            return
        self._out.append(Log("survey.invalid", {"call_id": self.call_id, "key": digit}))
        self._ask(self.config.invalid)

    def _on_timer(self, event: TimerExpired) -> None:
        if event.timer_id not in self._timers:
            raise IvrProtocolError(f"TimerExpired({event.timer_id!r}): no such survey timer")
        if event.timer_id != self.active_timer:
            return  # cancelled earlier; the race is harmless
        self.active_timer = None
        self._decide(SurveyResult.NOT_RATED, "survey.not_rated", {"reason": "timeout"})

    def _on_hangup(self) -> None:
        self._cancel_timer()
        self.playing = False
        if self.result is None:
            self.result = SurveyResult.NOT_RATED
            self._out.append(
                Log(
                    "survey.not_rated",
                    {
                        "call_id": self.call_id,
                        "reason": "hangup",
                        "result": SurveyResult.NOT_RATED.value,
                    },
                )
            )
        self.state = SurveyState.ENDED

    def _cancel_timer(self) -> None:
        if self.active_timer is not None:
            self._out.append(CancelTimer(self.active_timer))
            self.active_timer = None

    def _decide(self, result: SurveyResult, log_type: str, data: dict[str, str]) -> None:
        self.result = result
        self._out.append(Log(log_type, {"call_id": self.call_id, "result": result.value, **data}))
        prompts = self.config.not_rated if result is SurveyResult.NOT_RATED else self.config.thanks
        self._out.append(Play(prompts, interruptible=False))
        self.playing = True
        self.state = SurveyState.CLOSING
