"""REST side of AriClient against a stand-in server: encoding and error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from ari_fake import APP, PASSWORD, USER, FakeAsterisk

from hotline.ari import (
    AriBadRequest,
    AriClient,
    AriConflict,
    AriNotFound,
    AriUnauthorized,
    AriUnavailable,
    AriUnprocessable,
    encode_params,
)
from hotline.testing import free_port


@pytest.fixture
async def client(fake_asterisk: FakeAsterisk) -> AsyncIterator[AriClient]:
    ari = AriClient(fake_asterisk.url, USER, PASSWORD, APP, request_timeout=2.0)
    yield ari
    await ari.close()


def test_encode_params() -> None:
    assert encode_params(
        {"a": None, "b": True, "c": False, "d": ["x", "y"], "e": 5, "f": ("z",)}
    ) == {"b": "true", "c": "false", "d": "x,y", "e": "5", "f": "z"}


async def test_info_uses_basic_auth_and_returns_json(
    fake_asterisk: FakeAsterisk, client: AriClient
) -> None:
    fake_asterisk.responses[("GET", "/asterisk/info")] = (200, {"system": {"version": "22.1"}})
    assert await client.asterisk_info() == {"system": {"version": "22.1"}}
    assert fake_asterisk.requests[-1].path == "/asterisk/info"


async def test_base_url_may_end_with_ari(fake_asterisk: FakeAsterisk) -> None:
    fake_asterisk.responses[("GET", "/channels")] = (200, [])
    async with AriClient(fake_asterisk.url + "/ari/", USER, PASSWORD, APP) as ari:
        assert await ari.list_channels() == []


async def test_bad_password_is_a_clear_error(fake_asterisk: FakeAsterisk) -> None:
    async with AriClient(fake_asterisk.url, USER, "wrong", APP) as ari:
        with pytest.raises(AriUnauthorized) as info:
            await ari.asterisk_info()
    assert info.value.status == 401
    assert "Authentication required" in str(info.value)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, AriBadRequest),
        (404, AriNotFound),
        (409, AriConflict),
        (422, AriUnprocessable),
        (500, AriUnavailable),
        (503, AriUnavailable),
    ],
)
async def test_status_maps_to_typed_error(
    fake_asterisk: FakeAsterisk, client: AriClient, status: int, error: type
) -> None:
    fake_asterisk.responses[("POST", "/bridges/b1/addChannel")] = (
        status,
        {"message": "Channel not in Stasis application"},
    )
    with pytest.raises(error) as info:
        await client.add_to_bridge("b1", ["c1"])
    assert info.value.status == status
    assert info.value.method == "POST" and info.value.path == "/bridges/b1/addChannel"
    assert info.value.message == "Channel not in Stasis application"


async def test_error_without_json_body_keeps_the_reason(
    fake_asterisk: FakeAsterisk, client: AriClient
) -> None:
    fake_asterisk.responses[("DELETE", "/channels/gone")] = (404, None)
    with pytest.raises(AriNotFound) as info:
        await client.hangup("gone")
    assert info.value.message == "Not Found"


async def test_connection_refused_is_unavailable() -> None:
    port = free_port()  # nothing listens there
    async with AriClient(f"http://127.0.0.1:{port}", USER, PASSWORD, APP) as ari:
        with pytest.raises(AriUnavailable) as info:
            await ari.asterisk_info()
    assert info.value.status is None


async def test_timeout_is_unavailable(fake_asterisk: FakeAsterisk) -> None:
    fake_asterisk.delays[("GET", "/channels")] = 2.0
    async with AriClient(fake_asterisk.url, USER, PASSWORD, APP, request_timeout=0.2) as ari:
        with pytest.raises(AriUnavailable):
            await ari.list_channels()


async def test_answer_is_asked_again_once_after_a_timeout(fake_asterisk: FakeAsterisk) -> None:
    key = ("POST", "/channels/c1/answer")
    # The first POST meets a stalled Asterisk; it has caught up when the second comes.
    fake_asterisk.delay_queue[key] = [2.0]
    async with AriClient(fake_asterisk.url, USER, PASSWORD, APP, request_timeout=0.3) as ari:
        await ari.answer("c1")
        assert [(r.method, r.path) for r in fake_asterisk.requests] == [key, key]
        # Still stalled at the second try: the caller gets the error.
        fake_asterisk.delays[key] = 2.0
        with pytest.raises(AriUnavailable):
            await ari.answer("c1")
        assert len(fake_asterisk.requests) == 4


async def test_requests_are_encoded_as_ari_expects(
    fake_asterisk: FakeAsterisk, client: AriClient
) -> None:
    fake_asterisk.responses[("POST", "/channels")] = (200, {"id": "seat-ch"})
    reply = await client.originate(
        "PJSIP/seat7",
        app_args=["seat", "call-1"],
        caller_id="12348",
        variables={"CALL_KEY": "call-1"},
    )
    assert reply == {"id": "seat-ch"}
    originate = fake_asterisk.requests[-1]
    assert originate.query == {
        "endpoint": "PJSIP/seat7",
        "app": APP,
        "appArgs": "seat,call-1",
        "callerId": "12348",
        "timeout": "30",
    }
    assert originate.body == {"variables": {"CALL_KEY": "call-1"}}

    await client.originate("PJSIP/seat8", app_args="x", channel_id="fixed-id")
    assert fake_asterisk.requests[-1].path == "/channels/fixed-id"
    assert fake_asterisk.requests[-1].body is None

    await client.add_to_bridge("b1", ["c1", "c2"], role="caller", absorb_dtmf=False)
    assert fake_asterisk.requests[-1].query == {
        "channel": "c1,c2",
        "role": "caller",
        "absorbDTMF": "false",
    }

    playback_id = await client.play("c1", ["sound:a", "sound:b"], lang="zh")
    played = fake_asterisk.requests[-1]
    assert played.path == f"/channels/c1/play/{playback_id}"
    assert played.query == {"media": "sound:a,sound:b", "lang": "zh"}
    assert await client.play("c1", "sound:x", playback_id="pb-7") == "pb-7"

    await client.hangup("c1", reason="unallocated")
    assert (fake_asterisk.requests[-1].method, fake_asterisk.requests[-1].query) == (
        "DELETE",
        {"reason": "unallocated"},
    )

    await client.snoop("c1", snoop_id="snoop-1", app_args="tap")
    assert fake_asterisk.requests[-1].path == "/channels/c1/snoop/snoop-1"
    assert fake_asterisk.requests[-1].query == {
        "spy": "in",
        "whisper": "none",
        "app": APP,
        "appArgs": "tap",
    }

    await client.record_bridge("b1", "call-1")
    assert fake_asterisk.requests[-1].query == {
        "name": "call-1",
        "format": "wav",
        "ifExists": "fail",
        "beep": "false",
        "terminateOn": "none",
    }


async def test_ids_are_path_quoted(fake_asterisk: FakeAsterisk, client: AriClient) -> None:
    await client.answer("odd/id")
    assert fake_asterisk.requests[-1].path == "/channels/odd/id/answer"  # decoded by the server
    await client.answer("1740792600.17")
    assert fake_asterisk.requests[-1].path == "/channels/1740792600.17/answer"


async def test_get_variable_returns_the_value(
    fake_asterisk: FakeAsterisk, client: AriClient
) -> None:
    fake_asterisk.responses[("GET", "/channels/c1/variable")] = (200, {"value": "甲"})
    assert await client.get_variable("c1", "CALLERID(name)") == "甲"
    assert fake_asterisk.requests[-1].query == {"variable": "CALLERID(name)"}
