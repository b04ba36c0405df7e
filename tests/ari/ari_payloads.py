"""ARI event payloads as Asterisk 22 writes them, for the ARI client tests."""

from __future__ import annotations

from typing import Any

APP = "hotline"


def channel_json(channel_id: str, *, number: str = "13800138000", state: str = "Ring") -> dict:
    return {
        "id": channel_id,
        "name": f"PJSIP/trunk-{channel_id[-8:]}",
        "state": state,
        "protocol_id": "abc@127.0.0.1",
        "caller": {"name": "", "number": number},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {
            "context": "from-trunk",
            "exten": "12348",
            "priority": 2,
            "app_name": "Stasis",
            "app_data": "hotline",
        },
        "creationtime": "2025-03-01T09:30:00.125+0800",
        "language": "zh",
    }


def event_json(event_type: str, **fields: Any) -> dict:
    return {
        "type": event_type,
        "timestamp": "2025-03-01T09:30:01.500+0800",
        "application": APP,
        "asterisk_id": "02:42:ac:11:00:02",
        **fields,
    }


def stasis_start(channel_id: str, *args: str) -> dict:
    return event_json("StasisStart", channel=channel_json(channel_id), args=list(args))


def dtmf(channel_id: str, digit: str) -> dict:
    return event_json(
        "ChannelDtmfReceived", channel=channel_json(channel_id), digit=digit, duration_ms=120
    )


def destroyed(channel_id: str) -> dict:
    return event_json(
        "ChannelDestroyed", channel=channel_json(channel_id), cause=16, cause_txt="Normal Clearing"
    )


def playback(event_type: str, playback_id: str, target: str, state: str) -> dict:
    return event_json(
        event_type,
        playback={
            "id": playback_id,
            "media_uri": "sound:hello-world",
            "target_uri": target,
            "language": "en",
            "state": state,
        },
    )
