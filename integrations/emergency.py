"""The emergency path by speech (有危难打110): the caller's live transcript names a danger.

Theory of operation
-------------------
While a caller talks to a seat, ``recordings.service`` transcribes each party live and puts
the text on the event bus: ``transcript.partial`` (the recogniser's running guess, bus only)
and ``transcript.segment`` (a final segment, logged). ``EmergencyWatch`` subscribes to both
(and to ``call.ended``) and hands each one to ``EmergencyMonitor.feed``, which

1. ignores everything that is not the *caller's live* speech: the seat's own words ("如果他
   打你，你就报警") must never raise the alarm, and a post-call transcript comes too late to
   transfer anyone;
2. normalises the text (``normalise``: NFKC, case-folded, every space, punctuation mark and
   symbol removed: Vosk writes Chinese with spaces between words, "救 命 啊"), removes the
   configured harmless phrases (``ignore``: "打我电话" is not "打我"), and looks for the
   configured words (``EmergencyDetector.match``);
3. answers once per call, on the first match: the call's ``emergency.suspected`` event data
   (words as configured, speaker, source "partial" | "segment", the partner to offer, the
   text heard). Later matches, and text after ``call.ended``, answer nothing.

The watch logs that event under the call id (``CallEventLog.append`` also publishes it on the
bus), so the agent desk's live hub shows the seat of the call a red banner with a one-click
transfer to the partner (``number:110`` through the 110 trunk with its headers: the ACD's
transfer API) and the wallboard marks the call. Nothing is transferred automatically: a person
decides.

The detector and the monitor are pure (no I/O, no clock); the watch only reads the bus and
appends to the log, both non-blocking, so detection never holds up the event loop: matching a
few dozen words against a transcript line takes microseconds.

The words are configuration (the ``emergency:`` block of the partners file,
``integrations.config.EmergencySettings``); ``DEFAULT_WORDS`` is the shipped list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotline.events.types import EventType

if TYPE_CHECKING:
    from hotline.events.bus import EventBus, Subscription
    from hotline.events.log import CallEventLog
    from integrations.config import EmergencySettings

log = logging.getLogger(__name__)

# What a caller in danger says (Mandarin): life, violence, fire, abduction, weapons, self-harm.
# Short, unambiguous phrases; a word that is also everyday speech gets an ``ignore`` phrase.
DEFAULT_WORDS: tuple[str, ...] = (
    "救命",  # help!
    "杀人",  # killing / murder
    "要杀我",  # (he) wants to kill me
    "要自杀",  # going to kill myself
    "想自杀",
    "不想活了",  # I don't want to live any more
    "跳楼",  # jump off a building
    "打我",  # (he) is beating me
    "家暴",  # domestic violence
    "着火",  # on fire
    "失火",
    "绑架",  # kidnapping
    "持刀",  # armed with a knife
    "拿刀",
    "砍人",  # hacking at people
    "有枪",  # has a gun
    "抢劫",  # robbery
    "强奸",  # rape
)
# Everyday phrases that contain a word above and mean no danger (removed before matching).
DEFAULT_IGNORE: tuple[str, ...] = (
    "打我电话",  # call me
    "打我手机",
    "打我的电话",
    "打我的手机",
)
# How much heard text the event keeps (the banner shows it; the transcript has it all).
TEXT_LIMIT = 120
# Calls remembered (alerted or ended): bounded, oldest forgotten first.
REMEMBER_CALLS = 10_000


def normalise(text: str) -> str:
    """``text`` without spaces, punctuation and symbols, NFKC-folded and case-folded, so that
    "救 命 啊！" and "救命啊" read alike (and full-width letters like half-width ones)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    # Letters (L*), marks (M*: combining vowels, Hangul jamo), numbers (N*) carry the words;
    # separators, punctuation, symbols and control characters do not.
    return "".join(c for c in folded if unicodedata.category(c)[0] in "LMN")


class EmergencyDetector:
    """Which configured words a text contains (pure; see the module docstring)."""

    def __init__(self, words: Iterable[str], ignore: Iterable[str] = ()) -> None:
        # (normalised, as configured); a word that normalises to nothing could match anything.
        self.words = [(normalise(w), w) for w in words if normalise(w)]
        # Longest first: "打我的电话" goes before a shorter phrase inside it.
        self.ignore = sorted({normalise(p) for p in ignore if normalise(p)}, key=len, reverse=True)

    def match(self, text: str) -> list[str]:
        """The configured words found in ``text``, in configuration order, each once."""
        if not isinstance(text, str) or not text or not self.words:
            return []
        heard = normalise(text)
        for phrase in self.ignore:
            # A separator no word contains, so the parts around a harmless phrase do not join.
            heard = heard.replace(phrase, "\x00")
        found: list[str] = []
        for key, word in self.words:
            if key in heard and word not in found:
                found.append(word)
        return found


# Transcript events the monitor reads, and the source they stand for in emergency.suspected.
_SOURCES = {
    EventType.TRANSCRIPT_PARTIAL.value: "partial",
    EventType.TRANSCRIPT_SEGMENT.value: "segment",
}


@dataclass
class EmergencyMonitor:
    """Once per call, the data of its ``emergency.suspected`` event (pure, no I/O)."""

    detector: EmergencyDetector
    partner: str = "110"
    remember: int = REMEMBER_CALLS

    def __post_init__(self) -> None:
        self._done: OrderedDict[str, str] = OrderedDict()  # call id -> "alerted" | "ended"

    def _mark(self, call_id: str, why: str) -> None:
        self._done[call_id] = why
        self._done.move_to_end(call_id)
        while len(self._done) > self.remember:
            self._done.popitem(last=False)

    def feed(
        self, call_id: str, type_: str, data: Mapping[str, Any] | None
    ) -> dict[str, Any] | None:
        """Take one bus event; return the data to log as ``emergency.suspected``, or None."""
        type_ = str(type_)
        if not call_id or ":" in call_id:  # pseudo call ids (service:, workorder:) are no calls
            return None
        if type_ == EventType.CALL_ENDED.value:
            self._done.setdefault(call_id, "ended")
            return None
        source = _SOURCES.get(type_)
        if source is None or call_id in self._done or not isinstance(data, Mapping):
            return None
        # Only the caller's live speech: never the seat's, never a post-call transcript.
        if data.get("speaker") != "caller" or data.get("source", "live") != "live":
            return None
        text = data.get("text")
        words = self.detector.match(text) if isinstance(text, str) else []
        if not words:
            return None
        self._mark(call_id, "alerted")
        return {
            "words": words,
            "speaker": "caller",
            "source": source,
            "partner": self.partner,
            "text": text.strip()[:TEXT_LIMIT],
        }


class EmergencyWatch:
    """The monitor on the event bus: logs ``emergency.suspected`` for the calls it flags."""

    def __init__(self, monitor: EmergencyMonitor | None, event_log: CallEventLog) -> None:
        self.monitor = monitor  # None: the emergency path by speech is off
        self.event_log = event_log
        self.flagged = 0
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls, settings: EmergencySettings | None, event_log: CallEventLog
    ) -> EmergencyWatch:
        if settings is None or not settings.enabled:
            return cls(None, event_log)
        detector = EmergencyDetector(settings.words, settings.ignore)
        return cls(EmergencyMonitor(detector, settings.partner), event_log)

    @classmethod
    def for_runtime(cls, runtime_dir: Path, event_log: CallEventLog) -> EmergencyWatch:
        """From the runtime's partners file; a broken file turns the path off (and says so:
        the integrations part refuses the same file loudly)."""
        from hotline.config import ConfigError
        from integrations.config import load_for_runtime

        try:
            settings = load_for_runtime(runtime_dir).emergency
        except ConfigError as exc:
            log.error("emergency words disabled: %s", exc)
            settings = None
        return cls.from_settings(settings, event_log)

    def start(self, bus: EventBus) -> None:
        if self.monitor is None:
            log.info("emergency words: off")
            return
        patterns = (
            EventType.TRANSCRIPT_PARTIAL.value,
            EventType.TRANSCRIPT_SEGMENT.value,
            EventType.CALL_ENDED.value,
        )
        sub = bus.subscribe(patterns, maxsize=5000)
        self._task = asyncio.create_task(self._run(sub), name="emergency-watch")
        log.info(
            "emergency words: %d, offered transfer to %s",
            len(self.monitor.detector.words),
            self.monitor.partner,
        )

    def handle(self, event: Any) -> dict[str, Any] | None:
        """One bus event: log ``emergency.suspected`` when the monitor flags it."""
        if self.monitor is None:
            return None
        call_id = str(getattr(event, "call_id", "") or "")
        data = self.monitor.feed(call_id, str(event.type), getattr(event, "data", None))
        if data is None:
            return None
        self.flagged += 1
        self.event_log.append(call_id, EventType.EMERGENCY_SUSPECTED, data)
        log.warning("call %s: emergency words heard from the caller: %s", call_id, data["words"])
        return data

    async def _run(self, sub: Subscription) -> None:
        async with sub:
            async for event in sub:
                try:
                    self.handle(event)
                except Exception:  # one bad event must not end the watch
                    log.exception("emergency watch: could not handle %r", event)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
