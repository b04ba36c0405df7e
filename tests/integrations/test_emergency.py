"""The emergency path by speech: the configuration, the pure detector and per-call monitor, and
the watch on a real event bus writing to a real call-event log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hotline.config import ConfigError
from hotline.db.testing import DbTarget
from hotline.events.bus import EventBus
from hotline.events.log import CallEventLog, events_for_call
from hotline.events.types import CallEvent, EventType
from integrations.config import EXAMPLE_PARTNERS_FILE, load_config, parse_config
from integrations.emergency import (
    DEFAULT_IGNORE,
    DEFAULT_WORDS,
    EmergencyDetector,
    EmergencyMonitor,
    EmergencyWatch,
    normalise,
)

DETECTOR = EmergencyDetector(DEFAULT_WORDS, DEFAULT_IGNORE)
PARTNERS = [{"id": "110", "name": "110 公安报警服务台"}, {"id": "12345", "name": "12345"}]


# --- configuration -------------------------------------------------------------------------
def test_the_shipped_partners_file_has_the_default_words_and_110() -> None:
    emergency = load_config(EXAMPLE_PARTNERS_FILE).emergency
    assert emergency.enabled and emergency.partner == "110"
    assert {"救命", "杀人", "要自杀", "打我", "着火", "绑架", "持刀"} <= set(emergency.words)
    assert "打我电话" in emergency.ignore


def test_an_emergency_block_is_read_and_checked() -> None:
    config = parse_config(
        {"partners": PARTNERS, "emergency": {"words": ["救 命", "살려"], "partner": "12345"}}
    )
    assert config.emergency.words == ["救 命", "살려"] and config.emergency.partner == "12345"
    # No block at all: the defaults, even without a 110 partner.
    assert parse_config({"partners": PARTNERS[1:]}).emergency.partner == "110"
    assert parse_config({"emergency": {"enabled": False, "words": []}}).emergency.enabled is False


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"words": []}, "at least one word"),
        ({"words": ["救命", " 救 命！"]}, "the same as '救命'"),
        ({"words": ["？！ "]}, "has no letters"),
        ({"words": ["救" * 33]}, "longer than 32"),
        ({"ignore": ["..."]}, "has no letters"),
        ({"partner": "12368"}, "emergency.partner 12368 is not a configured partner"),
        ({"partner": "1 1 0"}, "emergency.partner"),
        ({"keywords": ["救命"]}, "emergency.keywords: unknown key"),
        ({"words": "救命"}, "emergency.words"),
    ],
)
def test_a_bad_emergency_block_is_refused_naming_the_key(block: dict, message: str) -> None:
    with pytest.raises(ConfigError, match="invalid partner configuration") as info:
        parse_config({"partners": PARTNERS, "emergency": block})
    assert message in str(info.value)
    assert "emergency" in str(info.value)


# --- detection -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("救 命 啊 ！ 他 拿 刀 要 杀 我", ["救命", "要杀我", "拿刀"]),  # Vosk writes spaces
        ("救命！！", ["救命"]),
        ("我老公天天打我", ["打我"]),
        ("厨房着火了", ["着火"]),
        ("我 不 想 活 了", ["不想活了"]),
        ("你好，我想咨询一下劳动合同的问题", []),
        ("律师您好，回头请打我电话", []),  # everyday phrase
        ("他打我，还不让我打我的电话", ["打我"]),  # a harmless phrase does not hide a real one
        ("ＡＢＣ", []),
        ("", []),
    ],
)
def test_detector_finds_the_configured_words(text: str, words: list[str]) -> None:
    assert DETECTOR.match(text) == words


def test_normalise_drops_spaces_punctuation_and_width() -> None:
    assert normalise(" 救 命，\t啊！ ") == "救命啊"
    assert normalise("ＨＥＬＰ me!") == "helpme"
    assert normalise("살 려 주 세 요") == "살려주세요"


@given(st.text())
def test_detector_never_raises_and_answers_configured_words(text: str) -> None:
    found = DETECTOR.match(text)
    assert set(found) <= set(DEFAULT_WORDS) and len(found) == len(set(found))


separators = st.lists(st.sampled_from([" ", "　", "，", "。", "！", "?", "…", "\n", "-", ""]))


@given(st.sampled_from(DEFAULT_WORDS), st.data(), st.text(alphabet="你好请问律师", max_size=8))
def test_detector_ignores_spaces_and_punctuation_inside_a_word(
    word: str, data: st.DataObject, around: str
) -> None:
    spaced = "".join(c + "".join(data.draw(separators)) for c in word)
    found = DETECTOR.match(f"{around} {spaced} {around}")
    assert word in found


@given(st.sampled_from(DEFAULT_WORDS), st.text(max_size=20), st.text(max_size=20))
def test_the_seats_own_speech_never_raises_the_alarm(word: str, before: str, after: str) -> None:
    monitor = EmergencyMonitor(DETECTOR)
    seat = {"speaker": "seat", "text": f"{before}{word}{after}", "source": "live"}
    assert monitor.feed("c1", "transcript.segment", seat) is None
    assert monitor.feed("c1", "transcript.partial", seat) is None
    # ... nor does a transcript made after the call, nor a mixed recording.
    late = {"speaker": "caller", "text": word, "source": "post_call"}
    assert monitor.feed("c1", "transcript.segment", late) is None
    assert monitor.feed("c1", "transcript.segment", {**late, "speaker": "mixed"}) is None
    # The caller saying it does.
    said = monitor.feed("c1", "transcript.segment", {"speaker": "caller", "text": word})
    assert said is not None and word in said["words"]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["c1", "c2", "service:x", ""]),
            st.sampled_from(["transcript.partial", "transcript.segment", "call.ended", "x.y"]),
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {"speaker": st.sampled_from(["caller", "seat", None]),
                     "text": st.one_of(st.none(), st.integers(), st.text(), st.just("救 命"))}
                ),
            ),
        ),
        max_size=30,
    )
)  # fmt: skip
def test_monitor_flags_a_call_at_most_once_and_never_raises(feed: list) -> None:
    monitor = EmergencyMonitor(DETECTOR)
    flagged: list[str] = []
    for call_id, type_, data in feed:
        if monitor.feed(call_id, type_, data) is not None:
            flagged.append(call_id)
    assert len(flagged) == len(set(flagged)) and set(flagged) <= {"c1", "c2"}


def test_monitor_answers_the_first_match_only_and_nothing_after_the_call_ended() -> None:
    monitor = EmergencyMonitor(DETECTOR, partner="110")
    caller = {"speaker": "caller", "source": "live"}
    assert monitor.feed("c1", "transcript.partial", {**caller, "text": "你好 我 想 咨询"}) is None
    first = monitor.feed("c1", "transcript.partial", {**caller, "text": "救 命 啊"})
    assert first == {"words": ["救命"], "speaker": "caller", "source": "partial",
                     "partner": "110", "text": "救 命 啊"}  # fmt: skip
    assert monitor.feed("c1", "transcript.segment", {**caller, "text": "救 命 啊 着 火"}) is None
    assert monitor.feed("c2", "call.ended", {"hangup_by": "caller"}) is None
    assert monitor.feed("c2", "transcript.segment", {**caller, "text": "救命"}) is None
    # Bounded memory: the oldest calls are forgotten.
    small = EmergencyMonitor(DETECTOR, remember=2)
    for cid in ("a", "b", "c"):
        small.feed(cid, "call.ended", {})
        small._mark(cid, "ended")
    assert len(small._done) == 2


# --- the watch: real bus, real event log ----------------------------------------------------
async def test_watch_logs_emergency_suspected_once_for_the_callers_words(
    migrated: DbTarget, tmp_path: Path, runtime_dir: Path
) -> None:
    (runtime_dir / "partners.yaml").write_text(
        yaml.safe_dump({"partners": PARTNERS, "emergency": {"words": ["救命", "杀人"]}}),
        encoding="utf-8",
    )
    bus = EventBus()
    event_log = CallEventLog(migrated.engine, spool_dir=tmp_path / "spool", bus=bus)
    await event_log.start()
    watch = EmergencyWatch.for_runtime(runtime_dir, event_log)
    watch.start(bus)
    desk = bus.subscribe("emergency.*")
    try:
        now = datetime.now(UTC)
        # The seat says it first (no alarm), then the caller (partial: no log row of its own).
        event_log.append("c1", EventType.TRANSCRIPT_SEGMENT, {"speaker": "seat", "start_s": 0,
                         "end_s": 1, "text": "别 怕 不 会 杀人 的", "source": "live"})  # fmt: skip
        bus.publish(CallEvent("c1", 0, now, EventType.TRANSCRIPT_PARTIAL,
                              {"speaker": "caller", "text": "救 命"}))  # fmt: skip
        event_log.append("c1", EventType.TRANSCRIPT_SEGMENT, {"speaker": "caller", "start_s": 1,
                         "end_s": 2, "text": "救 命 有人 杀人", "source": "live"})  # fmt: skip
        async with asyncio.timeout(5):
            published = await desk.get()
        assert published.call_id == "c1" and published.type == EventType.EMERGENCY_SUSPECTED
        await event_log.flush()
        logged = [e for e in events_for_call(migrated.engine, "c1")
                  if e.type == EventType.EMERGENCY_SUSPECTED]  # fmt: skip
        assert [e.data for e in logged] == [{"words": ["救命"], "speaker": "caller",
                                             "source": "partial", "partner": "110",
                                             "text": "救 命"}]  # fmt: skip
        assert watch.flagged == 1
    finally:
        await watch.stop()
        await event_log.close()


def test_watch_is_off_when_disabled_or_the_partners_file_is_broken(
    runtime_dir: Path, tmp_path: Path
) -> None:
    path = runtime_dir / "partners.yaml"
    path.write_text(yaml.safe_dump({"emergency": {"enabled": False}}), encoding="utf-8")
    assert EmergencyWatch.for_runtime(runtime_dir, None).monitor is None  # type: ignore[arg-type]
    path.write_text("emergency: {words: []}\n", encoding="utf-8")
    watch = EmergencyWatch.for_runtime(runtime_dir, None)  # type: ignore[arg-type]
    assert watch.monitor is None
    assert watch.handle(CallEvent("c1", 0, datetime.now(UTC), "transcript.partial",
                                  {"speaker": "caller", "text": "救命"})) is None  # fmt: skip
