"""The IVR flow interpreter: one caller's run through a flow, sans I/O (events in, commands out).

Theory of operation
-------------------
A ``FlowRun`` is a state machine for one call. The ARI adapter turns what happens on the channel
into *events* (``CallStarted``, ``PromptFinished``, ``DigitPressed``, ``TimerExpired``,
``RecordingFinished``, ``CallerHungUp``, ``ActionFailed``, ``LookupAnswered``), feeds them to
``start``/``handle`` and executes the *commands* returned, in order (``Play``,
``StopPlayback``, ``StartTimer``, ``CancelTimer``, ``SetLanguage``, ``EnterQueue``,
``TransferOut``, ``RecordMessage``, ``BookCallback``, ``Lookup``, ``Hangup``, ``Log``). The
run never awaits, sleeps or reads a clock except the ``clock_now`` it was given (used only by
``hours`` nodes), so a test drives it in microseconds.

The run is always in one ``State``; the table ``ACCEPTS`` says which events each state takes.
Anything else raises ``IvrProtocolError`` naming the event, the state and what was expected:

    IDLE       --CallStarted--> (enter the flow's start node)
    PROMPT     a node's prompts are playing.   PromptFinished, DigitPressed, CallerHungUp,
                                               ActionFailed (while an action is outstanding)
    INPUT      waiting for a key; one timer.   DigitPressed, TimerExpired, CallerHungUp
    RECORDING  a message is being recorded.    RecordingFinished, DigitPressed (ignored),
                                               CallerHungUp, ActionFailed
    LOOKUP     waiting for the adapter's answer to a ``Lookup``.
                                               LookupAnswered, ActionFailed, CallerHungUp,
                                               DigitPressed (ignored)
    HANDED_OFF queued or transferred: the IVR is done unless the action fails.
                                               ActionFailed, CallerHungUp (no-op)
    ENDED      we hung up or the caller did.   CallerHungUp (no-op), late ActionFailed (logged)

``TimerExpired`` for a timer this run started and later cancelled is a harmless race and is
ignored in any state after IDLE; a timer id never issued is a protocol error.

Entering a node: nodes that need no caller (``condition``, ``hours``, ``callback``) pass control
on at once, so one event may walk several nodes; the flow loader forbids loops of such nodes and
``MAX_STEPS`` guards anyway. Node behaviour:

* ``play``/``info`` play their prompts and go on when they finish. A key during an interruptible
  prompt is barge-in: ``StopPlayback``, and the key is carried (type-ahead) to the next node that
  takes keys, so "1" pressed during the welcome selects from the next menu.
* ``menu`` and ``language`` play their prompt (interruptible), then start a timer. A key in
  ``choices`` moves on; a wrong key or a timeout is a failure: the retry prompt plus the menu
  again, and after ``max_failures`` failures the ``on_failure`` node (a person: GB/T 33358).
  The language node falls back to its default language instead.
* ``collect`` gathers keys until the terminator, ``max_length`` keys, or a timeout with keys in
  hand; the value must match length and ``pattern``; a sensitive node's keys are masked in logs.
* ``queue``/``transfer`` hand the call off (``EnterQueue``/``TransferOut``); ``record`` asks for
  ``RecordMessage`` after its instructions; ``callback`` issues ``BookCallback``. Each stays the
  *outstanding action* until the next action: an ``ActionFailed`` then goes to its
  ``on_failure`` node.
* ``lookup`` sends ``Lookup(kind, value)`` with a collected value (the order number of menu 9)
  and waits; the adapter answers ``LookupAnswered(prompt_ids)`` (e.g. the order's status),
  which is played (not interruptible) before ``next``: like an ``info`` node, hearing it makes
  a later hang-up ``self_served``. ``ActionFailed`` instead goes to ``on_failure``.
* ``hangup`` plays its prompts (not interruptible) and sends ``Hangup``.

Stopped playbacks: after this run sends ``StopPlayback`` the adapter must not deliver a
``PromptFinished`` for the stopped prompt; every other ``Play`` gets exactly one ``PromptFinished``.

Every step is a ``Log`` command (types in ``LOG_TYPES``); with ``path_from_log`` and
``events_from_log`` a call's path can be rebuilt from the event log and replayed. Keys pressed in
a sensitive node are logged as ``MASK``; the caller's number only masked.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hotline.privacy import mask_number
from ivr.calendar import BusinessCalendar
from ivr.flow import (
    KEYS,
    CallbackNode,
    CollectNode,
    ConditionNode,
    Flow,
    HangupNode,
    HoursNode,
    InfoNode,
    LanguageNode,
    LookupNode,
    MenuNode,
    Node,
    PlayNode,
    Predicate,
    QueueNode,
    RecordNode,
    TransferNode,
)

MASK = "•"
MAX_STEPS = 64  # automatic node entries per event; loader already forbids input-free loops


# Events (inputs)
@dataclass(frozen=True)
class CallerInfo:
    number: str
    is_repeat: bool = False
    special_group: bool = False  # on the 绿色通道 list: elderly, disabled, migrant workers, ...
    blocked: bool = False
    origin: str = "direct"  # or the partner line that transferred the call in: "110", "12345"


@dataclass(frozen=True)
class CallStarted:
    caller: CallerInfo
    now: datetime


@dataclass(frozen=True)
class PromptFinished:
    interrupted: bool = False


@dataclass(frozen=True)
class DigitPressed:
    digit: str

    def __post_init__(self) -> None:
        if len(self.digit) != 1 or self.digit not in KEYS:
            raise ValueError(f"DigitPressed needs one of {KEYS!r}, got {self.digit!r}")


@dataclass(frozen=True)
class TimerExpired:
    timer_id: str


@dataclass(frozen=True)
class RecordingFinished:
    duration_s: float


@dataclass(frozen=True)
class CallerHungUp:
    pass


@dataclass(frozen=True)
class ActionFailed:
    reason: str


@dataclass(frozen=True)
class LookupAnswered:
    """The adapter's answer to ``Lookup``: the prompts to play (e.g. an order's status) and a
    short result word for the log (e.g. the order's state, or ``not_found``)."""

    prompt_ids: tuple[str, ...]
    result: str = ""


Event = (
    CallStarted
    | PromptFinished
    | DigitPressed
    | TimerExpired
    | RecordingFinished
    | CallerHungUp
    | ActionFailed
    | LookupAnswered
)


# Commands (outputs)
@dataclass(frozen=True)
class Play:
    """Play prompts in order. ``languages`` (same length) overrides the call's language per prompt;
    empty means all in the language of the last ``SetLanguage``."""

    prompt_ids: tuple[str, ...]
    interruptible: bool
    languages: tuple[str, ...] = ()


@dataclass(frozen=True)
class StopPlayback:
    pass


@dataclass(frozen=True)
class StartTimer:
    timer_id: str
    seconds: float


@dataclass(frozen=True)
class CancelTimer:
    timer_id: str


@dataclass(frozen=True)
class SetLanguage:
    code: str


@dataclass(frozen=True)
class EnterQueue:
    queue: str
    skill: str
    priority: int  # higher is served sooner
    topic: str


@dataclass(frozen=True)
class TransferOut:
    number: str
    partner: str
    summary: str = ""  # for the partner (a SIP header), e.g. "IVR emergency key"


@dataclass(frozen=True)
class RecordMessage:
    max_seconds: int
    beep: bool


@dataclass(frozen=True)
class BookCallback:
    topic: str = ""


@dataclass(frozen=True)
class Lookup:
    """Ask the adapter about ``value`` (``kind``: one of ``ivr.flow.LOOKUPS``); answer with
    ``LookupAnswered`` or ``ActionFailed``."""

    kind: str
    value: str


@dataclass(frozen=True)
class Hangup:
    reason: str


@dataclass(frozen=True)
class Log:
    type: str
    data: Mapping[str, Any] = field(default_factory=dict)


Command = (
    Play
    | StopPlayback
    | StartTimer
    | CancelTimer
    | SetLanguage
    | EnterQueue
    | TransferOut
    | RecordMessage
    | BookCallback
    | Lookup
    | Hangup
    | Log
)

LOG_TYPES = (
    "ivr.call_started",  # flow, caller (masked), is_repeat, special_group, blocked, origin, now
    "ivr.node_entered",  # node, node_type
    "ivr.prompt_played",  # node, prompts, languages, interruptible
    "ivr.barge_in",  # node (the key is logged where it is consumed)
    "ivr.input",  # node, kind (digit|timeout|prompt_finished|recording_finished|hangup|
    #                  action_failed), digit (masked when sensitive), timer, ...
    "ivr.ignored",  # node, kind: an event with no effect (key during a fixed prompt, stale timer)
    "ivr.choice",  # node, choice, target: a menu key, a branch, open/closed, a collected value
    "ivr.invalid",  # node, reason (invalid|timeout|no_match), failures
    "ivr.collected",  # node, variable, length, value (MASK… when sensitive)
    "ivr.language",  # language, chosen_by (caller|default)
    "ivr.action",  # node, action (queue|transfer|record|callback|lookup), its arguments
    "ivr.action_failed",  # node, action, reason
    "ivr.outcome",  # outcome, node, data
)


class Outcome(enum.Enum):
    QUEUED = "queued"
    TRANSFERRED = "transferred"
    SELF_SERVED = "self_served"
    MESSAGE = "message"
    CALLBACK = "callback"
    HUNG_UP = "hung_up"
    REJECTED = "rejected"
    FAILED = "failed"  # the system could not serve (every fallback failed)


class State(enum.Enum):
    IDLE = "idle"
    PROMPT = "prompt"
    INPUT = "input"
    RECORDING = "recording"
    LOOKUP = "lookup"
    HANDED_OFF = "handed_off"
    ENDED = "ended"


class IvrProtocolError(Exception):
    """An event that cannot happen in the run's current state: an adapter bug."""


# Which events each state takes, and the method that handles them (h11 style: the table is the
# whole story of what may happen when).
ACCEPTS: dict[State, dict[type, str]] = {
    State.IDLE: {CallStarted: "_on_call_started"},
    State.PROMPT: {
        PromptFinished: "_on_prompt_finished",
        DigitPressed: "_on_digit",
        TimerExpired: "_on_timer",
        CallerHungUp: "_on_hangup",
        ActionFailed: "_on_action_failed",
    },
    State.INPUT: {
        DigitPressed: "_on_digit",
        TimerExpired: "_on_timer",
        CallerHungUp: "_on_hangup",
        ActionFailed: "_on_action_failed",
    },
    State.RECORDING: {
        RecordingFinished: "_on_recording_finished",
        DigitPressed: "_on_digit",
        TimerExpired: "_on_timer",
        CallerHungUp: "_on_hangup",
        ActionFailed: "_on_action_failed",
    },
    State.LOOKUP: {
        LookupAnswered: "_on_lookup_answered",
        DigitPressed: "_on_digit",
        TimerExpired: "_on_timer",
        CallerHungUp: "_on_hangup",
        ActionFailed: "_on_action_failed",
    },
    State.HANDED_OFF: {
        ActionFailed: "_on_action_failed",
        TimerExpired: "_on_timer",
        CallerHungUp: "_on_hangup_after_end",
    },
    State.ENDED: {
        ActionFailed: "_on_action_failed_after_end",
        TimerExpired: "_on_timer",
        CallerHungUp: "_on_hangup_after_end",
    },
}

_ACTION_OUTCOME = {
    QueueNode: Outcome.QUEUED,
    TransferNode: Outcome.TRANSFERRED,
    RecordNode: Outcome.MESSAGE,
    CallbackNode: Outcome.CALLBACK,
}


def _matches(predicate: Predicate, caller: CallerInfo) -> bool:
    if predicate.kind == "blocked":
        return caller.blocked
    if predicate.kind == "special_group":
        return caller.special_group
    if predicate.kind == "repeat_caller":
        return caller.is_repeat
    if predicate.kind == "origin":
        return caller.origin in predicate.values
    raise ValueError(f"unknown predicate {predicate.kind!r}")


class FlowRun:
    """One call's run through ``flow``. Not thread-safe; one run per call."""

    def __init__(
        self,
        flow: Flow,
        calendar: BusinessCalendar | None = None,
        clock_now: Callable[[], datetime] | None = None,
    ) -> None:
        self.flow = flow
        self.calendar = calendar or flow.calendar
        self._clock = clock_now
        self.state = State.IDLE
        self.node: Node | None = None
        self.language = flow.default_language
        self.caller: CallerInfo | None = None
        self.variables: dict[str, str] = {}  # collected values, in clear: never log these
        self.path: list[str] = []
        self.active_timer: str | None = None
        self.playing = False
        self.pending_action: str | None = None  # node id whose action may still fail
        self._outcome: Outcome | None = None
        self.outcome_data: dict[str, Any] = {}
        self._started_at: datetime | None = None
        self._typeahead: list[str] = []
        self._failures = 0
        self._buffer = ""
        self._timers_issued: set[str] = set()
        self._timer_seq = 0
        self._info_heard = False
        self._out: list[Command] = []
        self._masked_nodes = masked_nodes(flow)

    # Public API
    @property
    def outcome(self) -> Outcome | None:
        """None until the run is finished (handed off or ended)."""
        return self._outcome if self.finished else None

    @property
    def finished(self) -> bool:
        return self.state in (State.HANDED_OFF, State.ENDED)

    def start(self, event: CallStarted) -> list[Command]:
        if not isinstance(event, CallStarted):
            raise IvrProtocolError(f"start() takes CallStarted, got {event!r}")
        return self.handle(event)

    def handle(self, event: Event) -> list[Command]:
        handler = ACCEPTS[self.state].get(type(event))
        if handler is None:
            expected = ", ".join(t.__name__ for t in ACCEPTS[self.state])
            node = self.node.id if self.node else None
            raise IvrProtocolError(
                f"{type(event).__name__} is not possible in state {self.state.name} "
                f"(node {node!r}); expected one of: {expected}"
            )
        self._out = []
        getattr(self, handler)(event)
        out, self._out = self._out, []
        return out

    # Helpers -------------------------------------------------------------------------------------
    def _emit(self, *commands: Command) -> None:
        self._out.extend(commands)

    def _log(self, type_: str, **data: Any) -> None:
        self._out.append(Log(type_, data))

    def _now(self) -> datetime:
        if self._clock is not None:
            return self._clock()
        assert self._started_at is not None
        return self._started_at

    def _play(
        self,
        node: Node,
        prompts: tuple[str, ...],
        interruptible: bool,
        languages: tuple[str, ...] = (),
    ) -> None:
        self._emit(Play(prompts, interruptible, languages))
        self._log(
            "ivr.prompt_played",
            node=node.id,
            prompts=list(prompts),
            languages=list(languages) or [self.language] * len(prompts),
            interruptible=interruptible,
        )
        self.playing = True
        self.state = State.PROMPT

    def _stop_playback(self) -> None:
        if self.playing:
            self._emit(StopPlayback())
            self.playing = False

    def _start_timer(self, seconds: float) -> None:
        assert self.node is not None and self.active_timer is None
        self._timer_seq += 1
        timer_id = f"{self.node.id}:{self._timer_seq}"
        self._timers_issued.add(timer_id)
        self.active_timer = timer_id
        self._emit(StartTimer(timer_id, seconds))
        self.state = State.INPUT

    def _cancel_timer(self) -> None:
        if self.active_timer is not None:
            self._emit(CancelTimer(self.active_timer))
            self.active_timer = None

    def _shown(self, digit: str) -> str:
        """A key as it may be logged: masked wherever it could end up in a sensitive value."""
        assert self.node is not None
        return MASK if self.node.id in self._masked_nodes else digit

    def _finish(self, state: State) -> None:
        self.state = state
        assert self._outcome is not None
        self._log(
            "ivr.outcome",
            outcome=self._outcome.value,
            node=self.node.id if self.node else None,
            data=dict(self.outcome_data),
        )

    # Node entry ----------------------------------------------------------------------------------
    def _goto(self, node_id: str | None) -> None:
        """Enter nodes until one waits for an event."""
        for _ in range(MAX_STEPS):
            if node_id is None:
                return
            node = self.flow.nodes[node_id]
            self.node = node
            self.path.append(node_id)
            self._failures = 0
            self._buffer = ""
            self._log("ivr.node_entered", node=node_id, node_type=node.type)
            node_id = getattr(self, _ENTER[type(node)])(node)
        raise IvrProtocolError(
            f"more than {MAX_STEPS} nodes entered without an event "
            f"(last {node_id!r}); the flow loops"
        )

    def _enter_play(self, node: PlayNode) -> str | None:
        if self._typeahead and node.interruptible:
            # The caller is already typing: skip what they would interrupt anyway.
            self._log("ivr.barge_in", node=node.id, skipped=True)
            return node.next
        if not node.interruptible:
            self._typeahead.clear()
        self._play(node, node.prompts, node.interruptible)
        return None

    def _enter_menu(self, node: MenuNode | LanguageNode) -> str | None:
        if self._typeahead:
            return self._menu_key(node, self._typeahead.pop(0))
        self._play_menu(node, ())
        return None

    def _play_menu(self, node: MenuNode | LanguageNode, before: tuple[str, ...]) -> None:
        if isinstance(node, LanguageNode):
            prompts = before + node.prompts
            languages = (self.language,) * len(before) + tuple(
                o.language for o in node.options.values()
            )
            self._play(node, prompts, node.interruptible, languages)
        else:
            self._play(node, before + node.prompts, node.interruptible)

    def _enter_collect(self, node: CollectNode) -> str | None:
        if self._typeahead:
            digits, self._typeahead = self._typeahead, []
            return self._collect_keys(node, digits)
        self._play(node, node.prompts, node.interruptible)
        return None

    def _enter_hours(self, node: HoursNode) -> str | None:
        if self.calendar is None:
            raise IvrProtocolError(f"node {node.id!r} needs a business calendar; none given")
        now = self._now()
        is_open = self.calendar.is_open(now)
        target = node.open if is_open else node.closed
        self._log(
            "ivr.choice",
            node=node.id,
            choice="open" if is_open else "closed",
            target=target,
            at=now.isoformat(),
        )
        return target

    def _enter_condition(self, node: ConditionNode) -> str | None:
        assert self.caller is not None
        for predicate, target in node.branches:
            if _matches(predicate, self.caller):
                self._log("ivr.choice", node=node.id, choice=str(predicate), target=target)
                return target
        self._log("ivr.choice", node=node.id, choice="else", target=node.otherwise)
        return node.otherwise

    def _begin_action(self, node: Node, command: Command, **data: Any) -> None:
        self._typeahead.clear()
        self._emit(command)
        self.pending_action = node.id
        self._outcome = _ACTION_OUTCOME[type(node)]
        self.outcome_data = {"node": node.id, **data}
        self._log("ivr.action", node=node.id, action=node.type, **data)

    def _enter_queue(self, node: QueueNode) -> str | None:
        assert self.caller is not None
        priority = node.priority
        if self.caller.special_group and node.special_group_priority is not None:
            priority = max(priority, node.special_group_priority)
        self._begin_action(
            node,
            EnterQueue(node.queue, node.skill, priority, node.topic),
            queue=node.queue,
            skill=node.skill,
            priority=priority,
            topic=node.topic,
        )
        self._finish(State.HANDED_OFF)
        return None

    def _enter_transfer(self, node: TransferNode) -> str | None:
        self._begin_action(
            node,
            TransferOut(node.number, node.partner, node.summary),
            number=node.number,
            partner=node.partner,
        )
        self._finish(State.HANDED_OFF)
        return None

    def _enter_callback(self, node: CallbackNode) -> str | None:
        self._begin_action(node, BookCallback(node.topic), topic=node.topic)
        return node.next

    def _enter_record(self, node: RecordNode) -> str | None:
        self._typeahead.clear()
        if node.prompts:
            self._play(node, node.prompts, interruptible=False)
        else:
            self._start_recording(node)
        return None

    def _start_recording(self, node: RecordNode) -> None:
        self._begin_action(
            node, RecordMessage(node.max_seconds, node.beep), max_seconds=node.max_seconds
        )
        self.state = State.RECORDING

    def _enter_lookup(self, node: LookupNode) -> str | None:
        self._typeahead.clear()
        value = self.variables.get(node.variable)
        if value is None:
            self._log("ivr.action_failed", node=node.id, action=node.type, reason="no_value")
            return node.on_failure
        self._emit(Lookup(node.lookup, value))
        self.pending_action = node.id
        self._log("ivr.action", node=node.id, action=node.type, lookup=node.lookup, value=value)
        self.state = State.LOOKUP
        return None

    def _enter_hangup(self, node: HangupNode) -> str | None:
        self._typeahead.clear()
        if node.outcome is not None:
            self._outcome = Outcome(node.outcome)
            self.outcome_data = {"node": node.id}
        elif self._outcome is None:
            self._outcome = Outcome.SELF_SERVED if self._info_heard else Outcome.HUNG_UP
            self.outcome_data = {"node": node.id}
        if node.prompts:
            self._play(node, node.prompts, interruptible=False)
        else:
            self._hang_up(node)
        return None

    def _hang_up(self, node: HangupNode) -> None:
        self._emit(Hangup(node.reason))
        self._finish(State.ENDED)

    # Keys for menus and collect
    def _menu_key(self, node: MenuNode | LanguageNode, digit: str) -> str | None:
        if isinstance(node, LanguageNode) and digit in node.options:
            language = node.options[digit].language
            self._set_language(language, "caller")
            self._log("ivr.choice", node=node.id, choice=digit, target=node.next)
            return node.next
        if digit in node.choices:
            target = node.choices[digit]
            self._log("ivr.choice", node=node.id, choice=digit, target=target)
            return target
        self._typeahead.clear()  # the caller is off track; what they typed ahead means nothing
        return self._failure(node, "invalid")

    def _set_language(self, language: str, chosen_by: str) -> None:
        self.language = language
        self._emit(SetLanguage(language))
        self._log("ivr.language", language=language, chosen_by=chosen_by)

    def _failure(self, node: MenuNode | LanguageNode | CollectNode, reason: str) -> str | None:
        self._failures += 1
        self._log("ivr.invalid", node=node.id, reason=reason, failures=self._failures)
        if self._failures >= node.max_failures:
            if isinstance(node, LanguageNode):
                self._set_language(node.default, "default")
                target = node.next
            else:
                target = node.on_failure
            self._log("ivr.choice", node=node.id, choice="failures", target=target)
            return target
        before = node.timeout_prompts if reason == "timeout" else node.invalid_prompts
        self._buffer = ""
        if isinstance(node, CollectNode):
            self._play(node, before + node.prompts, node.interruptible)
        else:
            self._play_menu(node, before)
        return None

    def _collect_keys(self, node: CollectNode, digits: Iterable[str]) -> str | None:
        keys = list(digits)
        while keys:
            digit = keys.pop(0)
            if digit == node.terminator:
                result = self._evaluate(node)
            elif len(self._buffer) + 1 >= node.max_length:
                self._buffer += digit
                result = self._evaluate(node)
            else:
                self._buffer += digit
                continue
            # Keys typed after a value was complete carry on only if it was accepted.
            if result == node.next:
                self._typeahead = keys
            return result
        self._start_timer(node.timeout)
        return None

    def _evaluate(self, node: CollectNode) -> str | None:
        value, self._buffer = self._buffer, ""
        accepted = node.accepts(value)
        shown = MASK * len(value) if node.sensitive else value
        self._log(
            "ivr.collected",
            node=node.id,
            variable=node.store_as,
            length=len(value),
            value=shown,
            accepted=accepted,
        )
        if not accepted:
            return self._failure(node, "no_match")
        self.variables[node.store_as] = value
        self._log("ivr.choice", node=node.id, choice="accepted", target=node.next)
        return node.next

    # Event handlers
    def _on_call_started(self, event: CallStarted) -> None:
        self.caller = event.caller
        self._started_at = event.now
        caller = event.caller
        self._log(
            "ivr.call_started",
            flow=self.flow.id,
            caller=mask_number(caller.number),
            is_repeat=caller.is_repeat,
            special_group=caller.special_group,
            blocked=caller.blocked,
            origin=caller.origin,
            now=event.now.isoformat(),
        )
        self._set_language(self.flow.default_language, "default")
        self._goto(self.flow.start)

    def _on_prompt_finished(self, event: PromptFinished) -> None:
        node = self.node
        assert node is not None
        self.playing = False
        self._log("ivr.input", node=node.id, kind="prompt_finished", interrupted=event.interrupted)
        if isinstance(node, PlayNode):
            if isinstance(node, InfoNode) and not event.interrupted:
                self._info_heard = True
            self._goto(node.next)
        elif isinstance(node, (MenuNode, LanguageNode, CollectNode)):
            self._start_timer(node.timeout)
        elif isinstance(node, RecordNode):
            self._start_recording(node)
        elif isinstance(node, HangupNode):
            self._hang_up(node)
        elif isinstance(node, LookupNode):
            if not event.interrupted:
                self._info_heard = True
            self._goto(node.next)
        else:  # pragma: no cover - no other node plays prompts
            raise IvrProtocolError(f"PromptFinished at {node.type} node {node.id!r}")

    def _on_digit(self, event: DigitPressed) -> None:
        node = self.node
        assert node is not None
        digit = event.digit
        # Logged once, as it arrives, so the log replays in order; masked where it could become
        # part of a sensitive value (see masked_nodes).
        self._log("ivr.input", node=node.id, kind="digit", digit=self._shown(digit))
        takes_keys = isinstance(node, (PlayNode, MenuNode, LanguageNode, CollectNode))
        if self.state in (State.RECORDING, State.LOOKUP) or (
            self.state is State.PROMPT and not (takes_keys and node.interruptible)
        ):
            self._log("ivr.ignored", node=node.id, kind="digit")
            return
        if self.playing:
            self._stop_playback()
            self._log("ivr.barge_in", node=node.id)
        self._cancel_timer()
        if isinstance(node, PlayNode):
            self._typeahead.append(digit)
            self._goto(node.next)
        elif isinstance(node, (MenuNode, LanguageNode)):
            self._goto(self._menu_key(node, digit))
        elif isinstance(node, CollectNode):
            self._goto(self._collect_keys(node, [digit]))

    def _on_timer(self, event: TimerExpired) -> None:
        if event.timer_id not in self._timers_issued:
            raise IvrProtocolError(
                f"TimerExpired({event.timer_id!r}) names no timer this run started "
                f"(state {self.state.name}, active timer {self.active_timer!r})"
            )
        node = self.node
        assert node is not None
        if event.timer_id != self.active_timer:
            self._log("ivr.ignored", node=node.id, kind="stale_timer", timer=event.timer_id)
            return
        self.active_timer = None
        self._log("ivr.input", node=node.id, kind="timeout", timer=event.timer_id)
        if isinstance(node, CollectNode) and self._buffer:
            self._goto(self._evaluate(node))
        elif isinstance(node, (MenuNode, LanguageNode, CollectNode)):
            self._goto(self._failure(node, "timeout"))
        else:  # pragma: no cover - only these nodes start timers
            raise IvrProtocolError(f"timer at {node.type} node {node.id!r}")

    def _on_recording_finished(self, event: RecordingFinished) -> None:
        node = self.node
        assert isinstance(node, RecordNode)
        self._log("ivr.input", node=node.id, kind="recording_finished", duration_s=event.duration_s)
        self.outcome_data["duration_s"] = event.duration_s
        self._goto(node.next)

    def _on_lookup_answered(self, event: LookupAnswered) -> None:
        node = self.node
        assert isinstance(node, LookupNode)
        self._log(
            "ivr.input",
            node=node.id,
            kind="lookup_answered",
            prompts=list(event.prompt_ids),
            result=event.result,
        )
        self.pending_action = None
        if event.prompt_ids:
            self._play(node, tuple(event.prompt_ids), interruptible=False)
        else:
            self._goto(node.next)

    def _on_hangup(self, event: CallerHungUp) -> None:
        node = self.node
        assert node is not None
        self._log("ivr.input", node=node.id, kind="hangup")
        self._cancel_timer()
        self.playing = False  # the channel is gone; nothing to stop
        self._typeahead.clear()
        if self.state is State.RECORDING:
            # Hanging up is how most callers end a message; the recording stands.
            self.outcome_data["ended_by"] = "caller_hangup"
        elif self._outcome is None:
            self._outcome = Outcome.SELF_SERVED if self._info_heard else Outcome.HUNG_UP
            self.outcome_data = {"node": node.id}
        self._finish(State.ENDED)

    def _on_hangup_after_end(self, event: CallerHungUp) -> None:
        # The IVR's part is over (queued, transferred or hung up): the channel's end is the
        # ACD's or the adapter's business. Nothing to do, and not an error.
        return

    def _on_action_failed(self, event: ActionFailed) -> None:
        if self.pending_action is None:
            node = self.node.id if self.node else None
            raise IvrProtocolError(
                f"ActionFailed({event.reason!r}) with no action outstanding (state "
                f"{self.state.name}, node {node!r}); expected after EnterQueue, TransferOut, "
                f"RecordMessage or BookCallback"
            )
        failed = self.flow.nodes[self.pending_action]
        self._log("ivr.input", node=failed.id, kind="action_failed", reason=event.reason)
        self._log("ivr.action_failed", node=failed.id, action=failed.type, reason=event.reason)
        self.pending_action = None
        self._stop_playback()
        self._cancel_timer()
        self._typeahead.clear()
        self._outcome = None
        self.outcome_data = {}
        self._goto(failed.on_failure)  # type: ignore[attr-defined]

    def _on_action_failed_after_end(self, event: ActionFailed) -> None:
        if self.pending_action is None:
            self._on_action_failed(event)  # raises: nothing was outstanding
        node = self.pending_action
        self._log("ivr.action_failed", node=node, reason=event.reason, after_end=True)
        self.outcome_data["action_failed"] = event.reason
        self.pending_action = None


def masked_nodes(flow: Flow) -> frozenset[str]:
    """Nodes where a key pressed may become part of a sensitive collect node's value.

    That is the sensitive collect nodes themselves and every node from which a key typed ahead
    can reach one without another node taking it first (through nodes that take no keys).
    """
    takes_keys = (MenuNode, LanguageNode, CollectNode, RecordNode, HangupNode)
    masked: set[str] = set()
    for node_id in flow.nodes:
        todo, seen = [node_id], set()
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            node = flow.nodes[current]
            if isinstance(node, CollectNode) and node.sensitive:
                masked.add(node_id)
                break
            if current != node_id and isinstance(node, takes_keys):
                continue
            if isinstance(node, (PlayNode, HoursNode, ConditionNode, CallbackNode)) or (
                current == node_id and isinstance(node, CollectNode)
            ):
                todo.extend(t for _, t in node.targets())
    return frozenset(masked)


_ENTER: dict[type[Node], str] = {
    PlayNode: "_enter_play",
    InfoNode: "_enter_play",
    MenuNode: "_enter_menu",
    LanguageNode: "_enter_menu",
    CollectNode: "_enter_collect",
    HoursNode: "_enter_hours",
    ConditionNode: "_enter_condition",
    QueueNode: "_enter_queue",
    TransferNode: "_enter_transfer",
    CallbackNode: "_enter_callback",
    RecordNode: "_enter_record",
    LookupNode: "_enter_lookup",
    HangupNode: "_enter_hangup",
}


# Replaying from the event log
def _records(logs: Iterable[Log | Mapping[str, Any]]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    for item in logs:
        if isinstance(item, Log):
            yield item.type, item.data
        else:
            yield str(item["type"]), item.get("data", {})


def path_from_log(logs: Iterable[Log | Mapping[str, Any]]) -> list[str]:
    """The nodes a caller went through, in order, from ``ivr.node_entered`` records."""
    return [data["node"] for type_, data in _records(logs) if type_ == "ivr.node_entered"]


def events_from_log(logs: Iterable[Log | Mapping[str, Any]]) -> list[Event]:
    """The run's input events (after ``CallStarted``) from ``ivr.input`` records, in order.

    Masked keys come back as ``MASK`` and cannot be replayed as keys: this returns them as
    ``DigitPressed`` only when they are in clear, and raises ``ValueError`` otherwise.
    """
    events: list[Event] = []
    for type_, data in _records(logs):
        if type_ != "ivr.input":
            continue
        kind = data["kind"]
        if kind == "digit":
            if data["digit"] == MASK:
                raise ValueError(f"node {data['node']!r}: a masked key cannot be replayed")
            events.append(DigitPressed(data["digit"]))
        elif kind == "timeout":
            events.append(TimerExpired(data["timer"]))
        elif kind == "prompt_finished":
            events.append(PromptFinished(bool(data.get("interrupted"))))
        elif kind == "recording_finished":
            events.append(RecordingFinished(float(data["duration_s"])))
        elif kind == "hangup":
            events.append(CallerHungUp())
        elif kind == "action_failed":
            events.append(ActionFailed(str(data["reason"])))
        elif kind == "lookup_answered":
            events.append(LookupAnswered(tuple(data["prompts"]), str(data.get("result", ""))))
    return events
