"""IVR flows as data: the YAML schema, the loader and every check made before a flow may run.

Owns: the node types (small frozen dataclasses the interpreter reads), ``load_flow`` and
``FlowStore`` (keep the running flow when a reload finds problems). Must not: run a call, read a
clock, touch Asterisk.

A flow file::

    flow:
      id: default-12348
      start: welcome
      languages: [zh, en]          # the first is the language a call starts in
      calendar:                    # optional; needed by ``hours`` nodes
        weekly: {mon-fri: "09:00-17:30"}
        holidays: [cn-2026]        # ivr/holidays/cn-2026.yaml
      nodes:
        welcome: {type: play, prompts: [welcome], next: main_menu}
        ...

Checks, each reported as ``FILE:LINE: problem`` (lines from PyYAML's node marks, so the error
points at the key or value at fault): YAML syntax; unknown or missing keys; unknown node type;
targets that name no node; prompt ids missing from the catalogue or lacking a text for one of the
flow's languages; a menu digit used twice (duplicate YAML keys are caught before PyYAML would
silently keep the last one); a loop through nodes that never wait for the caller (error: the call
would spin); and the GB/T 33358 rule that in every menu and language node ``0`` — and in every
menu and collect node the failure path (timeouts, invalid keys) — reaches a person: a ``queue``
node through nodes that take no input. Unreachable nodes are warnings (``Flow.warnings``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ivr.calendar import HOLIDAYS_DIR, BusinessCalendar, CalendarError, build_calendar

KEYS = "0123456789*#"
OUTCOME_NAMES = ("self_served", "rejected", "hung_up", "failed")
PREDICATES = ("blocked", "special_group", "repeat_caller")
# What a ``lookup`` node may ask the adapter about (the adapter answers with prompt ids).
LOOKUPS = ("work_order",)  # the progress of a work order (menu 9), workorders.service


# Nodes ------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Node:
    id: str
    line: int
    description: str = ""

    @property
    def type(self) -> str:
        return TYPE_OF[type(self)]

    def targets(self) -> list[tuple[str, str]]:
        """(role, node id) for every edge out of this node."""
        return []


@dataclass(frozen=True, kw_only=True)
class PlayNode(Node):
    prompts: tuple[str, ...]
    next: str
    interruptible: bool = True

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next)]


@dataclass(frozen=True, kw_only=True)
class InfoNode(PlayNode):
    """Self-service answer; hearing one to the end makes a later hang-up ``self_served``."""

    topic: str


@dataclass(frozen=True, kw_only=True)
class MenuNode(Node):
    prompts: tuple[str, ...]
    choices: Mapping[str, str]
    on_failure: str
    timeout: float = 6.0
    max_failures: int = 3
    invalid_prompts: tuple[str, ...] = ("invalid_input",)
    timeout_prompts: tuple[str, ...] = ("no_input",)
    interruptible: bool = True

    def targets(self) -> list[tuple[str, str]]:
        edges = [(f"choice {d}", t) for d, t in self.choices.items()]
        return [*edges, ("on_failure", self.on_failure)]


@dataclass(frozen=True, kw_only=True)
class LanguageOption:
    language: str
    prompt: str


@dataclass(frozen=True, kw_only=True)
class LanguageNode(Node):
    """Each option's prompt is spoken in its own language ("普通话请按1", "For English...")."""

    options: Mapping[str, LanguageOption]
    default: str
    next: str
    choices: Mapping[str, str] = field(default_factory=dict)  # other digits, e.g. 0 → a person
    timeout: float = 5.0
    max_failures: int = 2
    invalid_prompts: tuple[str, ...] = ("invalid_input",)
    timeout_prompts: tuple[str, ...] = ()
    interruptible: bool = True

    @property
    def prompts(self) -> tuple[str, ...]:
        return tuple(o.prompt for o in self.options.values())

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next), *((f"choice {d}", t) for d, t in self.choices.items())]


@dataclass(frozen=True, kw_only=True)
class CollectNode(Node):
    prompts: tuple[str, ...]
    next: str
    on_failure: str
    store_as: str
    min_length: int = 1
    max_length: int = 20
    terminator: str | None = "#"
    pattern: str | None = None
    sensitive: bool = False
    timeout: float = 8.0
    max_failures: int = 3
    invalid_prompts: tuple[str, ...] = ("invalid_input",)
    timeout_prompts: tuple[str, ...] = ("no_input",)
    interruptible: bool = True

    def accepts(self, value: str) -> bool:
        if not self.min_length <= len(value) <= self.max_length:
            return False
        return self.pattern is None or re.fullmatch(self.pattern, value) is not None

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next), ("on_failure", self.on_failure)]


@dataclass(frozen=True, kw_only=True)
class HoursNode(Node):
    open: str
    closed: str

    def targets(self) -> list[tuple[str, str]]:
        return [("open", self.open), ("closed", self.closed)]


@dataclass(frozen=True, kw_only=True)
class Predicate:
    """``blocked`` / ``special_group`` / ``repeat_caller``, or ``origin`` in a set of values."""

    kind: str
    values: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"origin in {list(self.values)}" if self.kind == "origin" else self.kind


@dataclass(frozen=True, kw_only=True)
class ConditionNode(Node):
    branches: tuple[tuple[Predicate, str], ...]
    otherwise: str

    def targets(self) -> list[tuple[str, str]]:
        edges = [(f"when {p}", t) for p, t in self.branches]
        return [*edges, ("else", self.otherwise)]


@dataclass(frozen=True, kw_only=True)
class QueueNode(Node):
    queue: str
    skill: str
    topic: str
    on_failure: str
    priority: int = 0  # higher is served sooner
    special_group_priority: int | None = None  # used instead for 绿色通道 callers

    def targets(self) -> list[tuple[str, str]]:
        return [("on_failure", self.on_failure)]


@dataclass(frozen=True, kw_only=True)
class TransferNode(Node):
    number: str
    partner: str
    on_failure: str
    summary: str = ""  # the X-Case-Summary header the partner gets (e.g. why: an emergency)

    def targets(self) -> list[tuple[str, str]]:
        return [("on_failure", self.on_failure)]


@dataclass(frozen=True, kw_only=True)
class RecordNode(Node):
    prompts: tuple[str, ...]
    next: str
    on_failure: str
    max_seconds: int = 120
    beep: bool = True

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next), ("on_failure", self.on_failure)]


@dataclass(frozen=True, kw_only=True)
class CallbackNode(Node):
    next: str
    on_failure: str
    topic: str = ""

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next), ("on_failure", self.on_failure)]


@dataclass(frozen=True, kw_only=True)
class LookupNode(Node):
    """Asks the adapter about a collected value (``lookup: work_order``: an order's progress)
    and plays the prompts of the answer (not interruptible), then goes to ``next``; when the
    adapter cannot answer, ``on_failure``."""

    lookup: str
    variable: str
    next: str
    on_failure: str

    def targets(self) -> list[tuple[str, str]]:
        return [("next", self.next), ("on_failure", self.on_failure)]


@dataclass(frozen=True, kw_only=True)
class HangupNode(Node):
    """Plays its prompts (not interruptible), then hangs up. ``outcome`` unset keeps the one
    reached before (message, callback), else the call counts as hung up."""

    prompts: tuple[str, ...] = ()
    outcome: str | None = None
    reason: str = "normal"


TYPE_OF: dict[type[Node], str] = {
    PlayNode: "play",
    InfoNode: "info",
    MenuNode: "menu",
    LanguageNode: "language",
    CollectNode: "collect",
    HoursNode: "hours",
    ConditionNode: "condition",
    QueueNode: "queue",
    TransferNode: "transfer",
    RecordNode: "record",
    CallbackNode: "callback",
    LookupNode: "lookup",
    HangupNode: "hangup",
}
# Nodes that wait for the caller: a loop must pass through one of them.
INPUT_NODES = (MenuNode, LanguageNode, CollectNode, RecordNode)


@dataclass(frozen=True)
class Flow:
    id: str
    start: str
    languages: tuple[str, ...]
    nodes: Mapping[str, Node]
    file: str = "<memory>"
    calendar: BusinessCalendar | None = None
    warnings: tuple[str, ...] = ()

    @property
    def default_language(self) -> str:
        return self.languages[0]

    def prompt_ids(self) -> set[str]:
        ids: set[str] = set()
        for node in self.nodes.values():
            for name in ("prompts", "invalid_prompts", "timeout_prompts"):
                ids.update(getattr(node, name, ()))
        return ids


# Errors -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class FlowError(Exception):
    """A flow that must not run; ``problems`` lists each as FILE:LINE: message."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in flow"
        super().__init__("\n".join([head, *(f"  {p}" for p in self.problems)]))


class _Stop(Exception):
    """A problem that makes the rest of one node unreadable; already recorded."""


# Reading YAML with marks --------------------------------------------------------------------------
_constructor = yaml.constructor.SafeConstructor()


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Reader:
    """Walks the composed YAML tree; every value keeps the line it came from."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def problem(self, node: yaml.Node | int, message: str) -> None:
        line = node if isinstance(node, int) else _line(node)
        self.problems.append(Problem(self.file, line, message))

    def fail(self, node: yaml.Node | int, message: str) -> _Stop:
        self.problem(node, message)
        return _Stop()

    def mapping(self, node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, f"{what}: keys must be plain words")
            key = key_node.value
            if key in out:
                first = _line(out[key][0])
                self.problem(
                    key_node, f"{what}: key {key!r} is given twice (first on line {first})"
                )
                continue
            out[key] = (key_node, value_node)
        return out

    def scalar(self, node: yaml.Node, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, f"{what} must be a single value")
        return _constructor.construct_object(node)

    def text(self, node: yaml.Node, what: str) -> str:
        value = self.scalar(node, what)
        if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
            raise self.fail(node, f"{what} must be text, got {node.value!r}")
        return str(value)

    def number(self, node: yaml.Node, what: str, *, integer: bool = False, low: float = 0) -> Any:
        value = self.scalar(node, what)
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or value < low:
            kind = "a whole number" if integer else "a number of seconds"
            raise self.fail(node, f"{what} must be {kind} ≥ {low:g}, got {node.value!r}")
        return value

    def flag(self, node: yaml.Node, what: str) -> bool:
        value = self.scalar(node, what)
        if not isinstance(value, bool):
            raise self.fail(node, f"{what} must be true or false, got {node.value!r}")
        return value

    def texts(self, node: yaml.Node, what: str) -> tuple[str, ...]:
        if isinstance(node, yaml.ScalarNode):
            return (self.text(node, what),)
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list")
        return tuple(self.text(item, what) for item in node.value)


# Node schemas: YAML key → (kind, required). Kinds name a reader below.
Schema = dict[str, tuple[str, bool]]
_COMMON: Schema = {"type": ("text", True), "description": ("text", False)}
_PROMPTED: Schema = {
    "prompts": ("prompts", True),
    "invalid_prompts": ("prompts", False),
    "timeout_prompts": ("prompts", False),
    "timeout": ("seconds", False),
    "max_failures": ("count", False),
    "interruptible": ("flag", False),
}
SCHEMAS: dict[str, tuple[type[Node], Schema]] = {
    "play": (
        PlayNode,
        {"prompts": ("prompts", True), "next": ("target", True), "interruptible": ("flag", False)},
    ),
    "info": (
        InfoNode,
        {
            "prompts": ("prompts", True),
            "next": ("target", True),
            "topic": ("text", True),
            "interruptible": ("flag", False),
        },
    ),
    "menu": (MenuNode, {**_PROMPTED, "choices": ("choices", True), "on_failure": ("target", True)}),
    "language": (
        LanguageNode,
        {
            **{k: v for k, v in _PROMPTED.items() if k != "prompts"},
            "options": ("options", True),
            "default": ("text", True),
            "next": ("target", True),
            "choices": ("choices", False),
        },
    ),
    "collect": (
        CollectNode,
        {
            **_PROMPTED,
            "next": ("target", True),
            "on_failure": ("target", True),
            "store_as": ("text", True),
            "min_length": ("count", False),
            "max_length": ("count", False),
            "terminator": ("key_or_none", False),
            "pattern": ("regex", False),
            "sensitive": ("flag", False),
        },
    ),
    "hours": (HoursNode, {"open": ("target", True), "closed": ("target", True)}),
    "condition": (ConditionNode, {"branches": ("branches", True), "else": ("target", True)}),
    "queue": (
        QueueNode,
        {
            "queue": ("text", True),
            "skill": ("text", True),
            "topic": ("text", True),
            "on_failure": ("target", True),
            "priority": ("int", False),
            "special_group_priority": ("int", False),
        },
    ),
    "transfer": (
        TransferNode,
        {
            "number": ("text", True),
            "partner": ("text", True),
            "on_failure": ("target", True),
            "summary": ("text", False),
        },
    ),
    "record": (
        RecordNode,
        {
            "prompts": ("prompts", False),
            "next": ("target", True),
            "on_failure": ("target", True),
            "max_seconds": ("count", False),
            "beep": ("flag", False),
        },
    ),
    "callback": (
        CallbackNode,
        {"next": ("target", True), "on_failure": ("target", True), "topic": ("text", False)},
    ),
    "lookup": (
        LookupNode,
        {
            "lookup": ("text", True),
            "variable": ("text", True),
            "next": ("target", True),
            "on_failure": ("target", True),
        },
    ),
    "hangup": (
        HangupNode,
        {"prompts": ("prompts", False), "outcome": ("outcome", False), "reason": ("text", False)},
    ),
}
_FIELD_NAME = {"else": "otherwise"}


@dataclass
class _Refs:
    """What a node refers to, with lines, checked once all nodes are read."""

    targets: list[tuple[str, str, int]] = field(default_factory=list)  # (role, node id, line)
    prompts: list[tuple[str, int, tuple[str, ...]]] = field(default_factory=list)  # id, line, langs
    languages: list[tuple[str, int]] = field(default_factory=list)


def _read_node(r: _Reader, node_id: str, line: int, node: yaml.Node, refs: _Refs) -> Node | None:
    """Read one node; ``line`` is its id's line, where node-level problems are reported."""
    where = f"node {node_id!r}"
    try:
        entries = r.mapping(node, where)
        if "type" not in entries:
            raise r.fail(line, f"{where}: missing key 'type' (one of {', '.join(SCHEMAS)})")
        type_node = entries["type"][1]
        kind = r.text(type_node, f"{where}: type")
        if kind not in SCHEMAS:
            raise r.fail(
                type_node,
                f"{where}: unknown node type {kind!r} (expected one of {', '.join(SCHEMAS)})",
            )
        cls, schema = SCHEMAS[kind]
        full = {**_COMMON, **schema}
        values: dict[str, Any] = {}
        broken = False
        for key, (key_node, value_node) in entries.items():
            if key not in full:
                r.problem(
                    key_node,
                    f"{where}: unknown key {key!r} for a {kind} node "
                    f"(allowed: {', '.join(sorted(full))})",
                )
                broken = True
                continue
            if key == "type":
                continue
            reader = _KINDS[full[key][0]]
            try:
                values[_FIELD_NAME.get(key, key)] = reader(r, value_node, f"{where}: {key}", refs)
            except _Stop:
                broken = True
        for key, (_, required) in schema.items():
            if required and key not in entries:
                r.problem(line, f"{where}: a {kind} node needs key {key!r}")
                broken = True
        if broken:
            return None
        built = cls(id=node_id, line=line, **values)
        return _check_node(r, built, line, refs)
    except _Stop:
        return None


def _check_node(r: _Reader, built: Node, node: int, refs: _Refs) -> Node | None:
    """Rules inside one node that the schema cannot express."""
    where = f"node {built.id!r}"
    if isinstance(built, CollectNode):
        if built.min_length > built.max_length:
            r.problem(
                node, f"{where}: min_length {built.min_length} > max_length {built.max_length}"
            )
            return None
    if isinstance(built, LanguageNode):
        codes = [o.language for o in built.options.values()]
        if built.default not in codes:
            r.problem(
                node,
                f"{where}: default language {built.default!r} is not one of the options {codes}",
            )
            return None
        clash = set(built.options) & set(built.choices)
        if clash:
            r.problem(
                node, f"{where}: digit {sorted(clash)[0]!r} is both a language option and a choice"
            )
            return None
    if isinstance(built, LookupNode) and built.lookup not in LOOKUPS:
        r.problem(
            node, f"{where}: unknown lookup {built.lookup!r} (expected one of {', '.join(LOOKUPS)})"
        )
        return None
    if isinstance(built, (MenuNode, LanguageNode, CollectNode)) and built.max_failures < 1:
        r.problem(node, f"{where}: max_failures must be at least 1")
        return None
    if isinstance(built, (MenuNode, CollectNode, LanguageNode)) and built.timeout <= 0:
        r.problem(node, f"{where}: timeout must be more than 0 seconds")
        return None
    return built


# Value readers
def _rd_text(r: _Reader, node: yaml.Node, what: str, refs: _Refs) -> str:
    return r.text(node, what)


def _rd_int(r: _Reader, node: yaml.Node, what: str, refs: _Refs) -> int:
    return r.number(node, what, integer=True, low=-1000)


def _rd_count(r: _Reader, node: yaml.Node, what: str, refs: _Refs) -> int:
    return r.number(node, what, integer=True, low=0)


def _rd_seconds(r: _Reader, node: yaml.Node, what: str, refs: _Refs) -> float:
    return float(r.number(node, what))


def _rd_flag(r: _Reader, node: yaml.Node, what: str, refs: _Refs) -> bool:
    return r.flag(node, what)


def _rd_target(r: _Reader, node: yaml.Node, what: str, refs: _Refs) -> str:
    target = r.text(node, what)
    refs.targets.append((what, target, _line(node)))
    return target


def _rd_prompts(r: _Reader, node: yaml.Node, what: str, refs: _Refs) -> tuple[str, ...]:
    if isinstance(node, yaml.SequenceNode):
        ids = []
        for item in node.value:
            ids.append(r.text(item, what))
            refs.prompts.append((ids[-1], _line(item), ()))
        return tuple(ids)
    prompt = r.text(node, what)
    refs.prompts.append((prompt, _line(node), ()))
    return (prompt,)


def _key(r: _Reader, node: yaml.Node, what: str) -> str:
    # Read the raw text: YAML would turn 0 into an int and "01" or "1_0" into surprises.
    if not isinstance(node, yaml.ScalarNode) or node.value not in tuple(KEYS):
        raise r.fail(
            node,
            f"{what}: {getattr(node, 'value', '?')!r} is not a phone key (one of {' '.join(KEYS)})",
        )
    return node.value


def _rd_key_or_none(r: _Reader, node: yaml.Node, what: str, refs: _Refs) -> str | None:
    if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null", "none"):
        return None
    return _key(r, node, what)


def _rd_regex(r: _Reader, node: yaml.Node, what: str, refs: _Refs) -> str:
    text = r.text(node, what)
    try:
        re.compile(text)
    except re.error as exc:
        raise r.fail(node, f"{what}: {text!r} is not a valid regular expression ({exc})") from exc
    return text


def _rd_outcome(r: _Reader, node: yaml.Node, what: str, refs: _Refs) -> str:
    text = r.text(node, what)
    if text not in OUTCOME_NAMES:
        raise r.fail(node, f"{what}: {text!r} is not one of {', '.join(OUTCOME_NAMES)}")
    return text


def _rd_choices(r: _Reader, node: yaml.Node, what: str, refs: _Refs) -> dict[str, str]:
    if not isinstance(node, yaml.MappingNode):
        raise r.fail(node, f"{what} must map phone keys to node ids")
    choices: dict[str, str] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        digit = _key(r, key_node, what)
        if digit in choices:
            r.problem(
                key_node, f"{what}: digit {digit!r} is used twice (first on line {lines[digit]})"
            )
            continue
        lines[digit] = _line(key_node)
        choices[digit] = _rd_target(r, value_node, f"{what} {digit}", refs)
    if not choices:
        raise r.fail(node, f"{what}: at least one choice is needed")
    return choices


def _rd_options(r: _Reader, node: yaml.Node, what: str, refs: _Refs) -> dict[str, LanguageOption]:
    if not isinstance(node, yaml.MappingNode):
        raise r.fail(node, f"{what} must map phone keys to {{language, prompt}}")
    options: dict[str, LanguageOption] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        digit = _key(r, key_node, what)
        if digit in options:
            r.problem(
                key_node, f"{what}: digit {digit!r} is used twice (first on line {lines[digit]})"
            )
            continue
        lines[digit] = _line(key_node)
        entry = r.mapping(value_node, f"{what} {digit}")
        extra = set(entry) - {"language", "prompt"}
        if extra or {"language", "prompt"} - set(entry):
            raise r.fail(value_node, f"{what} {digit}: needs exactly the keys language and prompt")
        language = r.text(entry["language"][1], f"{what} {digit}: language")
        prompt = r.text(entry["prompt"][1], f"{what} {digit}: prompt")
        refs.languages.append((language, _line(entry["language"][1])))
        refs.prompts.append((prompt, _line(entry["prompt"][1]), (language,)))
        options[digit] = LanguageOption(language=language, prompt=prompt)
    return options


def _rd_branches(
    r: _Reader, node: yaml.Node, what: str, refs: _Refs
) -> tuple[tuple[Predicate, str], ...]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise r.fail(node, f"{what} must be a list of {{when, goto}}")
    branches = []
    for item in node.value:
        entry = r.mapping(item, what)
        if set(entry) != {"when", "goto"}:
            raise r.fail(item, f"{what}: each branch needs exactly the keys when and goto")
        when = entry["when"][1]
        if isinstance(when, yaml.MappingNode):
            cond = r.mapping(when, f"{what}: when")
            if set(cond) != {"origin"}:
                raise r.fail(
                    when,
                    f"{what}: when must be one of {', '.join(PREDICATES)} or {{origin: [...]}}",
                )
            predicate = Predicate(
                kind="origin", values=r.texts(cond["origin"][1], f"{what}: origin")
            )
        else:
            kind = r.text(when, f"{what}: when")
            if kind not in PREDICATES:
                raise r.fail(
                    when,
                    f"{what}: unknown condition {kind!r} (expected one of "
                    f"{', '.join(PREDICATES)} or {{origin: [...]}})",
                )
            predicate = Predicate(kind=kind)
        branches.append((predicate, _rd_target(r, entry["goto"][1], f"{what}: goto", refs)))
    return tuple(branches)


_KINDS: dict[str, Callable[[_Reader, yaml.Node, str, _Refs], Any]] = {
    "text": _rd_text,
    "int": _rd_int,
    "count": _rd_count,
    "seconds": _rd_seconds,
    "flag": _rd_flag,
    "target": _rd_target,
    "prompts": _rd_prompts,
    "key_or_none": _rd_key_or_none,
    "regex": _rd_regex,
    "outcome": _rd_outcome,
    "choices": _rd_choices,
    "options": _rd_options,
    "branches": _rd_branches,
}


# Whole-flow checks
def _defaults_used(node: Node) -> list[str]:
    """Prompt ids a node uses by default (not written in the file, so not yet in refs)."""
    ids: list[str] = []
    for name in ("invalid_prompts", "timeout_prompts"):
        value = getattr(node, name, None)
        if value and all(f.default == value for f in _fields(type(node), name)):
            ids.extend(value)
    return ids


def _fields(cls: type, name: str) -> list[Any]:
    return [f for f in cls.__dataclass_fields__.values() if f.name == name]


def _person_problem(nodes: Mapping[str, Node], start: str) -> str | None:
    """None when every path from ``start`` through input-free nodes ends in a queue node."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        node_id = todo.pop()
        if node_id in seen or node_id not in nodes:
            continue
        seen.add(node_id)
        node = nodes[node_id]
        if isinstance(node, QueueNode):
            continue
        if isinstance(node, (PlayNode, HoursNode, ConditionNode)):
            todo.extend(t for _, t in node.targets())
            continue
        return f"it can reach {node.type} node {node_id!r} instead"
    return None


def _check_flow(
    r: _Reader,
    nodes: dict[str, Node],
    start: str,
    start_line: int,
    languages: tuple[str, ...],
    catalogue: Mapping[str, Mapping[str, str]],
    refs: _Refs,
    node_lines: dict[str, int],
) -> list[str]:
    warnings: list[str] = []
    if start not in node_lines:
        r.problem(start_line, f"start node {start!r} does not exist")
    for what, target, line in refs.targets:
        if target not in node_lines:
            r.problem(line, f"{what}: no node named {target!r}")
    for language, line in refs.languages:
        if language not in languages:
            r.problem(
                line, f"language {language!r} is not in the flow's languages {list(languages)}"
            )
    prompts = list(refs.prompts)
    for node in nodes.values():
        prompts.extend((p, node.line, ()) for p in _defaults_used(node))
    for prompt, line, only in prompts:
        texts = catalogue.get(prompt)
        if texts is None:
            r.problem(line, f"prompt {prompt!r} is not in the prompt catalogue")
            continue
        for language in only or languages:
            if not texts.get(language):
                r.problem(line, f"prompt {prompt!r} has no {language!r} text in the catalogue")
    collected = {n.store_as for n in nodes.values() if isinstance(n, CollectNode)}
    for node in nodes.values():
        if isinstance(node, LookupNode) and node.variable not in collected:
            r.problem(
                node.line,
                f"node {node.id!r}: variable {node.variable!r} is not collected by any collect "
                f"node (store_as)",
            )
    if r.problems:
        return warnings

    for node in nodes.values():
        if isinstance(node, MenuNode):
            checks = [("digit 0", node.choices.get("0")), ("on_failure", node.on_failure)]
        elif isinstance(node, LanguageNode):
            checks = [("digit 0", node.choices.get("0"))]
        elif isinstance(node, CollectNode):
            checks = [("on_failure", node.on_failure)]
        else:
            continue
        for role, target in checks:
            if target is None:
                r.problem(
                    node.line,
                    f"node {node.id!r}: GB/T 33358 needs digit 0 to reach a "
                    f"person (add a choice 0 leading to a queue node)",
                )
                continue
            problem = _person_problem(nodes, target)
            if problem:
                r.problem(
                    node.line,
                    f"node {node.id!r}: {role} must reach a person (a queue "
                    f"node) without further input; {problem}",
                )

    # A loop through nodes that never wait for the caller would spin forever.
    automatic = {
        n.id: [t for _, t in n.targets()] for n in nodes.values() if not isinstance(n, INPUT_NODES)
    }
    state: dict[str, int] = {}

    def visit(node_id: str, trail: list[str]) -> None:
        state[node_id] = 1
        for target in automatic.get(node_id, []):
            if target not in automatic:
                continue
            if state.get(target) == 1:
                cycle = [*trail[trail.index(target) :], target] if target in trail else [target]
                r.problem(node_lines[target], "loop without caller input: " + " → ".join(cycle))
            elif target not in state:
                visit(target, [*trail, target])
        state[node_id] = 2

    for node_id in automatic:
        if node_id not in state:
            visit(node_id, [node_id])

    reachable: set[str] = set()
    todo = [start]
    while todo:
        node_id = todo.pop()
        if node_id in reachable:
            continue
        reachable.add(node_id)
        todo.extend(t for _, t in nodes[node_id].targets())
    for node_id in nodes:
        if node_id not in reachable:
            warnings.append(f"{r.file}:{node_lines[node_id]}: node {node_id!r} is unreachable")
    return warnings


def parse_flow(
    text: str,
    catalogue: Mapping[str, Mapping[str, str]],
    *,
    file: str = "<memory>",
    holidays_dir: Path = HOLIDAYS_DIR,
) -> Flow:
    """Parse and check a flow from YAML text; raise FlowError listing every problem found."""
    r = _Reader(file)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise FlowError([Problem(file, line, f"not valid YAML: {exc.problem}")]) from exc
    if root is None:
        raise FlowError([Problem(file, 1, "the file is empty; expected a top-level 'flow:'")])
    try:
        top = r.mapping(root, "the file")
        if set(top) != {"flow"}:
            raise r.fail(root, "the file must hold exactly one top-level key, 'flow'")
        body = r.mapping(top["flow"][1], "flow")
        for key in body.keys() - {"id", "start", "languages", "nodes", "calendar", "description"}:
            r.problem(body[key][0], f"flow: unknown key {key!r}")
        for key in ("id", "start", "languages", "nodes"):
            if key not in body:
                r.problem(top["flow"][1], f"flow: missing key {key!r}")
        if r.problems:
            raise _Stop
        flow_id = r.text(body["id"][1], "flow: id")
        start_node = body["start"][1]
        start = r.text(start_node, "flow: start")
        languages = r.texts(body["languages"][1], "flow: languages")
        if not languages:
            raise r.fail(body["languages"][1], "flow: languages needs at least one language")
        calendar = None
        if "calendar" in body:
            calendar = _read_calendar(r, body["calendar"][1], holidays_dir)
        node_map = r.mapping(body["nodes"][1], "flow: nodes")
    except _Stop:
        raise FlowError(r.problems) from None

    refs = _Refs()
    nodes: dict[str, Node] = {}
    node_lines = {node_id: _line(key) for node_id, (key, _) in node_map.items()}
    for node_id, (_, value) in node_map.items():
        built = _read_node(r, node_id, node_lines[node_id], value, refs)
        if built is not None:
            nodes[node_id] = built
    if any(isinstance(n, HoursNode) for n in nodes.values()) and calendar is None:
        r.problem(top["flow"][0], "flow: hours nodes need a 'calendar' section")
    if r.problems:
        raise FlowError(r.problems)
    warnings = _check_flow(
        r, nodes, start, _line(start_node), languages, catalogue, refs, node_lines
    )
    if r.problems:
        raise FlowError(r.problems)
    return Flow(
        id=flow_id,
        start=start,
        languages=languages,
        nodes=nodes,
        file=file,
        calendar=calendar,
        warnings=tuple(warnings),
    )


def _read_calendar(r: _Reader, node: yaml.Node, holidays_dir: Path) -> BusinessCalendar:
    entries = r.mapping(node, "flow: calendar")
    unknown = set(entries) - {"weekly", "holidays", "makeup_hours", "tz"}
    if unknown or "weekly" not in entries:
        raise r.fail(node, "flow: calendar takes weekly (required), holidays, makeup_hours, tz")
    weekly_node = entries["weekly"][1]
    weekly = {
        k: r.scalar(v, f"calendar: weekly {k}")
        if isinstance(v, yaml.ScalarNode)
        else r.texts(v, f"calendar: weekly {k}")
        for k, (_, v) in r.mapping(weekly_node, "calendar: weekly").items()
    }
    holidays = (
        r.texts(entries["holidays"][1], "calendar: holidays") if "holidays" in entries else ()
    )
    makeup = (
        r.text(entries["makeup_hours"][1], "calendar: makeup_hours")
        if "makeup_hours" in entries
        else None
    )
    tz = r.text(entries["tz"][1], "calendar: tz") if "tz" in entries else "Asia/Shanghai"
    try:
        return build_calendar(weekly, holidays, holidays_dir=holidays_dir, tz=tz, makeup=makeup)
    except (CalendarError, ValueError, KeyError) as exc:
        raise r.fail(node, f"flow: calendar: {exc}") from exc


def load_flow(
    path: Path | str,
    catalogue: Mapping[str, Mapping[str, str]],
    *,
    holidays_dir: Path = HOLIDAYS_DIR,
) -> Flow:
    """Load and check a flow file; raise FlowError (FILE:LINE: problem, one per line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FlowError([Problem(str(path), 0, f"cannot read the flow file: {exc}")]) from exc
    return parse_flow(text, catalogue, file=str(path), holidays_dir=holidays_dir)


class FlowStore:
    """The flow in service: a reload with problems keeps the old flow and reports why."""

    def __init__(
        self,
        path: Path | str,
        catalogue: Mapping[str, Mapping[str, str]],
        holidays_dir: Path = HOLIDAYS_DIR,
    ) -> None:
        self.path = Path(path)
        self.catalogue = catalogue
        self.holidays_dir = holidays_dir
        # A broken flow refuses to start.
        self.current = load_flow(self.path, catalogue, holidays_dir=holidays_dir)

    def reload(self) -> FlowError | None:
        """Swap in the file's flow when it checks clean; else keep the old one, return the error."""
        try:
            self.current = load_flow(self.path, self.catalogue, holidays_dir=self.holidays_dir)
        except FlowError as exc:
            return exc
        return None


DEFAULT_FLOW = Path(__file__).parent / "flows" / "default.yaml"
