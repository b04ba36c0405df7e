"""Typed ARI events, parsed once at the edge from the WebSocket JSON.

Everything past :func:`parse_event` works with frozen dataclasses, never with raw dicts read
by key. Parsing is total: an event type we do not model, or a known type whose payload lacks
a field we need, becomes :class:`UnknownEvent` (with the raw dict) instead of an exception,
so one odd message from Asterisk can never stop the event loop.

Every event carries ``type``, ``timestamp`` (timezone-aware) and ``application``. The
``route_id`` property names the object the event is about (channel id; for playbacks and
recordings the channel or bridge in their ``target_uri``; bridge id for bridge events) and is
what the client's dispatcher uses to keep the events of one call in order.

This module does no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_timestamp(value: Any) -> datetime:
    """Asterisk writes ``2024-05-01T10:20:30.123+0800``; naive or missing values become UTC."""
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return _EPOCH
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return _EPOCH


def _target_id(target_uri: str, kind: str) -> str | None:
    prefix = kind + ":"
    return target_uri[len(prefix) :] if target_uri.startswith(prefix) else None


@dataclass(frozen=True, slots=True)
class Channel:
    """The parts of an ARI Channel object the hotline uses."""

    id: str
    name: str
    state: str
    caller_number: str
    caller_name: str
    dialplan_exten: str
    dialplan_context: str
    creationtime: datetime | None = None
    language: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Channel:
        caller = data.get("caller") or {}
        dialplan = data.get("dialplan") or {}
        created = data.get("creationtime")
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            state=str(data.get("state", "")),
            caller_number=str(caller.get("number", "")),
            caller_name=str(caller.get("name", "")),
            dialplan_exten=str(dialplan.get("exten", "")),
            dialplan_context=str(dialplan.get("context", "")),
            creationtime=parse_timestamp(created) if created else None,
            language=str(data.get("language", "")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of all events."""

    type: str
    timestamp: datetime
    application: str = ""

    @property
    def route_id(self) -> str | None:
        """Id of the channel or bridge this event is about; None for global events."""
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelEvent(Event):
    """An event about one channel."""

    channel: Channel

    @property
    def route_id(self) -> str | None:
        return self.channel.id


@dataclass(frozen=True, slots=True, kw_only=True)
class StasisStart(ChannelEvent):
    args: tuple[str, ...] = ()
    replace_channel: Channel | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StasisEnd(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelStateChange(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelDtmfReceived(ChannelEvent):
    digit: str
    duration_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelHangupRequest(ChannelEvent):
    cause: int | None = None
    soft: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelDestroyed(ChannelEvent):
    cause: int = 0
    cause_txt: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelTalkingStarted(ChannelEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelTalkingFinished(ChannelEvent):
    duration_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelVarset(Event):
    """A variable was set; ``channel`` is None for a global variable."""

    variable: str
    value: str
    channel: Channel | None = None

    @property
    def route_id(self) -> str | None:
        return self.channel.id if self.channel else None


@dataclass(frozen=True, slots=True, kw_only=True)
class _TargetedEvent(Event):
    """Playback and recording events: they name their channel or bridge in ``target_uri``."""

    target_uri: str

    @property
    def channel_id(self) -> str | None:
        return _target_id(self.target_uri, "channel")

    @property
    def bridge_id(self) -> str | None:
        return _target_id(self.target_uri, "bridge")

    @property
    def route_id(self) -> str | None:
        return self.channel_id or self.bridge_id


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackEvent(_TargetedEvent):
    playback_id: str
    media_uri: str = ""
    state: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackStarted(PlaybackEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackFinished(PlaybackEvent):
    """``state`` is ``done`` when it played to the end, ``failed`` e.g. when the caller left."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingEvent(_TargetedEvent):
    name: str
    state: str = ""
    duration: int | None = None
    format: str = ""
    cause: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingStarted(RecordingEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingFinished(RecordingEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingFailed(RecordingEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeEvent(Event):
    bridge_id: str
    bridge_type: str = ""

    @property
    def route_id(self) -> str | None:
        return self.bridge_id


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeCreated(BridgeEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeDestroyed(BridgeEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelEnteredBridge(ChannelEvent):
    """Routed by the channel (the call it belongs to), not by the bridge."""

    bridge_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelLeftBridge(ChannelEvent):
    bridge_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Dial(Event):
    """Progress of a dial; routed by ``peer`` (the channel being dialled)."""

    peer: Channel
    dialstatus: str = ""
    caller: Channel | None = None
    dialstring: str = ""

    @property
    def route_id(self) -> str | None:
        return self.peer.id


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(Event):
    """Any event type we do not model (or could not parse); ``raw`` is the JSON as received."""

    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def route_id(self) -> str | None:
        channel = self.raw.get("channel")
        if isinstance(channel, Mapping) and channel.get("id"):
            return str(channel["id"])
        bridge = self.raw.get("bridge")
        if isinstance(bridge, Mapping) and bridge.get("id"):
            return str(bridge["id"])
        return None


# Parsing -------------------------------------------------------------------------------------

_Builder = Callable[[Mapping[str, Any], dict[str, Any]], Event]


def _channel_event(
    cls: type[ChannelEvent], **extra: Callable[[Mapping[str, Any]], Any]
) -> _Builder:
    def build(raw: Mapping[str, Any], base: dict[str, Any]) -> Event:
        values = {name: getter(raw) for name, getter in extra.items()}
        return cls(channel=Channel.from_json(raw["channel"]), **base, **values)

    return build


def _optional_channel(raw: Mapping[str, Any], key: str) -> Channel | None:
    value = raw.get(key)
    return Channel.from_json(value) if isinstance(value, Mapping) and value.get("id") else None


def _playback(cls: type[PlaybackEvent]) -> _Builder:
    def build(raw: Mapping[str, Any], base: dict[str, Any]) -> Event:
        playback = raw["playback"]
        return cls(
            playback_id=str(playback["id"]),
            target_uri=str(playback.get("target_uri", "")),
            media_uri=str(playback.get("media_uri", "")),
            state=str(playback.get("state", "")),
            **base,
        )

    return build


def _recording(cls: type[RecordingEvent]) -> _Builder:
    def build(raw: Mapping[str, Any], base: dict[str, Any]) -> Event:
        recording = raw["recording"]
        duration = recording.get("duration")
        return cls(
            name=str(recording["name"]),
            target_uri=str(recording.get("target_uri", "")),
            state=str(recording.get("state", "")),
            duration=int(duration) if duration is not None else None,
            format=str(recording.get("format", "")),
            cause=str(recording.get("cause", "")),
            **base,
        )

    return build


def _bridge(cls: type[BridgeEvent]) -> _Builder:
    def build(raw: Mapping[str, Any], base: dict[str, Any]) -> Event:
        bridge = raw["bridge"]
        return cls(
            bridge_id=str(bridge["id"]), bridge_type=str(bridge.get("bridge_type", "")), **base
        )

    return build


def _bridge_membership(cls: type[ChannelEnteredBridge | ChannelLeftBridge]) -> _Builder:
    def build(raw: Mapping[str, Any], base: dict[str, Any]) -> Event:
        return cls(
            channel=Channel.from_json(raw["channel"]), bridge_id=str(raw["bridge"]["id"]), **base
        )

    return build


def _varset(raw: Mapping[str, Any], base: dict[str, Any]) -> Event:
    return ChannelVarset(
        variable=str(raw.get("variable", "")),
        value=str(raw.get("value", "")),
        channel=_optional_channel(raw, "channel"),
        **base,
    )


def _dial(raw: Mapping[str, Any], base: dict[str, Any]) -> Event:
    return Dial(
        peer=Channel.from_json(raw["peer"]),
        caller=_optional_channel(raw, "caller"),
        dialstatus=str(raw.get("dialstatus", "")),
        dialstring=str(raw.get("dialstring", "")),
        **base,
    )


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None


_BUILDERS: dict[str, _Builder] = {
    "StasisStart": _channel_event(
        StasisStart,
        args=lambda raw: tuple(str(a) for a in raw.get("args") or ()),
        replace_channel=lambda raw: _optional_channel(raw, "replace_channel"),
    ),
    "StasisEnd": _channel_event(StasisEnd),
    "ChannelStateChange": _channel_event(ChannelStateChange),
    "ChannelDtmfReceived": _channel_event(
        ChannelDtmfReceived,
        digit=lambda raw: str(raw["digit"]),
        duration_ms=lambda raw: int(raw.get("duration_ms") or 0),
    ),
    "ChannelHangupRequest": _channel_event(
        ChannelHangupRequest,
        cause=lambda raw: _int_or_none(raw.get("cause")),
        soft=lambda raw: bool(raw.get("soft", False)),
    ),
    "ChannelDestroyed": _channel_event(
        ChannelDestroyed,
        cause=lambda raw: int(raw.get("cause") or 0),
        cause_txt=lambda raw: str(raw.get("cause_txt", "")),
    ),
    "ChannelTalkingStarted": _channel_event(ChannelTalkingStarted),
    "ChannelTalkingFinished": _channel_event(
        ChannelTalkingFinished, duration_ms=lambda raw: int(raw.get("duration") or 0)
    ),
    "ChannelVarset": _varset,
    "PlaybackStarted": _playback(PlaybackStarted),
    "PlaybackFinished": _playback(PlaybackFinished),
    "RecordingStarted": _recording(RecordingStarted),
    "RecordingFinished": _recording(RecordingFinished),
    "RecordingFailed": _recording(RecordingFailed),
    "BridgeCreated": _bridge(BridgeCreated),
    "BridgeDestroyed": _bridge(BridgeDestroyed),
    "ChannelEnteredBridge": _bridge_membership(ChannelEnteredBridge),
    "ChannelLeftBridge": _bridge_membership(ChannelLeftBridge),
    "Dial": _dial,
}

KNOWN_TYPES: frozenset[str] = frozenset(_BUILDERS)


def parse_event(raw: Mapping[str, Any]) -> Event:
    """Turn one WebSocket message (already JSON-decoded) into a typed event. Never raises."""
    if not isinstance(raw, Mapping):
        return UnknownEvent(type="", timestamp=_EPOCH, raw={"value": raw})
    event_type = str(raw.get("type", ""))
    base: dict[str, Any] = {
        "type": event_type,
        "timestamp": parse_timestamp(raw.get("timestamp")),
        "application": str(raw.get("application", "")),
    }
    builder = _BUILDERS.get(event_type)
    if builder is not None:
        try:
            return builder(raw, base)
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            # A malformed known event must not stop the dispatcher; keep it visible.
            log.warning(
                "could not parse ARI %s event (%r); passing it on as unknown", event_type, exc
            )
    return UnknownEvent(raw=dict(raw), **base)
