"""parse_event: typed events from ARI JSON, total on any input."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from ari_payloads import channel_json, destroyed, dtmf, event_json, playback, stasis_start
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.ari.events import (
    BridgeCreated,
    BridgeDestroyed,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelLeftBridge,
    ChannelStateChange,
    ChannelTalkingFinished,
    ChannelVarset,
    Dial,
    PlaybackFinished,
    PlaybackStarted,
    RecordingFailed,
    RecordingFinished,
    StasisEnd,
    StasisStart,
    UnknownEvent,
    parse_event,
)

CST = timezone(timedelta(hours=8))


def test_stasis_start_is_fully_typed() -> None:
    raw = stasis_start("1740792600.17", "inbound", "12348")
    raw["replace_channel"] = channel_json("1740792600.16")
    event = parse_event(raw)
    assert isinstance(event, StasisStart)
    assert event.type == "StasisStart"
    assert event.application == "hotline"
    assert event.timestamp == datetime(2025, 3, 1, 9, 30, 1, 500000, tzinfo=CST)
    assert event.timestamp.utcoffset() == timedelta(hours=8)
    assert event.args == ("inbound", "12348")
    assert event.replace_channel is not None and event.replace_channel.id == "1740792600.16"
    channel = event.channel
    assert channel.id == "1740792600.17"
    assert channel.caller_number == "13800138000"
    assert (channel.dialplan_exten, channel.dialplan_context) == ("12348", "from-trunk")
    assert channel.state == "Ring"
    assert channel.creationtime == datetime(2025, 3, 1, 1, 30, 0, 125000, tzinfo=UTC)
    assert event.route_id == "1740792600.17"
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.args = ()  # type: ignore[misc]


def test_channel_events() -> None:
    assert parse_event(dtmf("c1", "5")) == ChannelDtmfReceived(
        type="ChannelDtmfReceived",
        timestamp=datetime(2025, 3, 1, 9, 30, 1, 500000, tzinfo=CST),
        application="hotline",
        channel=parse_event(dtmf("c1", "5")).channel,  # type: ignore[attr-defined]
        digit="5",
        duration_ms=120,
    )
    hangup = parse_event(
        event_json("ChannelHangupRequest", channel=channel_json("c1"), cause=16, soft=True)
    )
    assert isinstance(hangup, ChannelHangupRequest) and (hangup.cause, hangup.soft) == (16, True)
    gone = parse_event(destroyed("c1"))
    assert isinstance(gone, ChannelDestroyed)
    assert (gone.cause, gone.cause_txt, gone.route_id) == (16, "Normal Clearing", "c1")
    assert isinstance(parse_event(event_json("StasisEnd", channel=channel_json("c1"))), StasisEnd)
    change = parse_event(event_json("ChannelStateChange", channel=channel_json("c1", state="Up")))
    assert isinstance(change, ChannelStateChange) and change.channel.state == "Up"
    talk = parse_event(
        event_json("ChannelTalkingFinished", channel=channel_json("c1"), duration=2300)
    )
    assert isinstance(talk, ChannelTalkingFinished) and talk.duration_ms == 2300


def test_varset_with_and_without_channel() -> None:
    on_channel = parse_event(
        event_json("ChannelVarset", channel=channel_json("c1"), variable="X", value="1")
    )
    assert isinstance(on_channel, ChannelVarset) and on_channel.route_id == "c1"
    global_var = parse_event(event_json("ChannelVarset", variable="G", value="2"))
    assert isinstance(global_var, ChannelVarset)
    assert global_var.channel is None and global_var.route_id is None


def test_playback_target_gives_channel_or_bridge() -> None:
    started = parse_event(playback("PlaybackStarted", "pb1", "channel:c1", "playing"))
    assert isinstance(started, PlaybackStarted)
    assert (started.playback_id, started.channel_id, started.route_id) == ("pb1", "c1", "c1")
    assert started.media_uri == "sound:hello-world"
    done = parse_event(playback("PlaybackFinished", "pb2", "bridge:b9", "failed"))
    assert isinstance(done, PlaybackFinished)
    assert (done.channel_id, done.bridge_id, done.route_id, done.state) == (
        None,
        "b9",
        "b9",
        "failed",
    )


def test_recording_events() -> None:
    rec = {"name": "call-1", "format": "wav", "target_uri": "bridge:b1", "state": "done"}
    finished = parse_event(event_json("RecordingFinished", recording={**rec, "duration": 42}))
    assert isinstance(finished, RecordingFinished)
    assert (finished.name, finished.duration, finished.bridge_id) == ("call-1", 42, "b1")
    failed = parse_event(
        event_json("RecordingFailed", recording={**rec, "state": "failed", "cause": "disk"})
    )
    assert isinstance(failed, RecordingFailed)
    assert (failed.duration, failed.cause, failed.state) == (None, "disk", "failed")


def test_bridge_and_dial_events_route_sensibly() -> None:
    bridge = {"id": "b1", "technology": "simple_bridge", "bridge_type": "mixing", "channels": []}
    created = parse_event(event_json("BridgeCreated", bridge=bridge))
    assert isinstance(created, BridgeCreated) and created.route_id == "b1"
    assert isinstance(parse_event(event_json("BridgeDestroyed", bridge=bridge)), BridgeDestroyed)
    entered = parse_event(
        event_json("ChannelEnteredBridge", bridge=bridge, channel=channel_json("c1"))
    )
    # Bridge membership belongs to the call of the channel, not to the bridge's lane.
    assert isinstance(entered, ChannelEnteredBridge)
    assert (entered.bridge_id, entered.route_id) == ("b1", "c1")
    left = parse_event(event_json("ChannelLeftBridge", bridge=bridge, channel=channel_json("c2")))
    assert isinstance(left, ChannelLeftBridge) and left.route_id == "c2"
    dial = parse_event(
        event_json("Dial", peer=channel_json("seat-1"), dialstatus="ANSWER", dialstring="seat1")
    )
    assert isinstance(dial, Dial)
    assert (dial.route_id, dial.caller, dial.dialstatus) == ("seat-1", None, "ANSWER")


def test_unknown_and_malformed_events_do_not_raise() -> None:
    raw = event_json("DeviceStateChanged", device_state={"name": "PJSIP/seat1", "state": "INUSE"})
    unknown = parse_event(raw)
    assert isinstance(unknown, UnknownEvent)
    assert unknown.type == "DeviceStateChanged" and unknown.raw["device_state"]["state"] == "INUSE"
    assert unknown.route_id is None
    future = parse_event(event_json("ChannelFancyNewThing", channel=channel_json("c7")))
    assert isinstance(future, UnknownEvent) and future.route_id == "c7"
    # A known type with a broken payload is passed on, not raised.
    broken = parse_event(event_json("StasisStart", args=[]))
    assert isinstance(broken, UnknownEvent) and broken.type == "StasisStart"
    no_time = parse_event({"type": "StasisEnd", "channel": channel_json("c1")})
    assert isinstance(no_time, StasisEnd) and no_time.timestamp.tzinfo is not None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
# Nearly valid objects reach deeper into the builders than random ones.
json_objects = st.fixed_dictionaries(
    {},
    optional={
        k: json_values
        for k in ("id", "name", "caller", "dialplan", "creationtime", "target_uri", "state")
    },
)
known_types = st.sampled_from(
    ["StasisStart", "ChannelDtmfReceived", "PlaybackFinished", "RecordingFinished", "Dial", "X"]
)


@given(
    event_type=known_types,
    fields=st.dictionaries(
        st.sampled_from(
            ["channel", "playback", "recording", "peer", "digit", "args", "timestamp", "bridge"]
        ),
        json_values | json_objects,
    ),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_parse_event_is_total(event_type: str, fields: dict) -> None:
    event = parse_event({"type": event_type, **fields})
    assert event.type == event_type
    assert event.timestamp.tzinfo is not None
