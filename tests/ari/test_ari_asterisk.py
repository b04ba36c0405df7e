"""AriClient against a real Asterisk 22 (the session fixture ``asterisk_instance``).

A call comes in from sipp (an independent SIP peer) to the service number, so the dialplan
sends it into our Stasis app; the client answers, plays a prompt and hangs up. The reconnect
test restarts Asterisk under a running client.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hotline.ari import AriClient, AriNotFound, AriUnauthorized
from hotline.ari.events import (
    ChannelEnteredBridge,
    ChannelLeftBridge,
    Event,
    PlaybackFinished,
    PlaybackStarted,
    RecordingFinished,
    RecordingStarted,
    StasisEnd,
    StasisStart,
)
from hotline.testing import async_wait_for, free_port

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="session")
def asterisk(request: pytest.FixtureRequest) -> Any:
    try:
        return request.getfixturevalue("asterisk_instance")
    except pytest.FixtureLookupError:
        pytest.skip("needs the asterisk_instance fixture from tests/conftest.py")


def _client(asterisk: Any, **kwargs: Any) -> AriClient:
    return AriClient(
        asterisk.ari_url,
        asterisk.secrets.ari_user,
        asterisk.secrets.ari_password,
        asterisk.settings.asterisk.app_name,
        **kwargs,
    )


class Inbox:
    """Collects dispatched events; lets a test wait for the next one matching a condition."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Condition()
        self.connects = 0

    async def handle(self, event: Event) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def on_connect(self) -> None:
        self.connects += 1

    async def wait(self, kind: type, within: float = 20.0, **attrs: Any) -> Any:
        def match() -> Any:
            for event in self.events:
                if isinstance(event, kind) and all(
                    getattr(event, k) == v for k, v in attrs.items()
                ):
                    return event
            return None

        async with asyncio.timeout(within), self._changed:
            return await self._changed.wait_for(match)


@pytest.fixture
async def running(asterisk: Any) -> AsyncIterator[tuple[AriClient, Inbox]]:
    inbox = Inbox()
    client = _client(asterisk, on_connect=inbox.on_connect)
    client.add_handler(inbox.handle)
    task = asyncio.create_task(client.run())
    await client.wait_connected(15)
    yield client, inbox
    await client.close()
    async with asyncio.timeout(10):
        await task


class SippCall:
    """One sipp UAC call to the service number; killed (by its pid) at exit."""

    def __init__(self, asterisk: Any, workdir: Path, hold_ms: int = 8000) -> None:
        self.command = [
            "sipp",
            "-sn",
            "uac",
            f"127.0.0.1:{asterisk.settings.asterisk.sip_port}",
            "-s",
            asterisk.settings.asterisk.service_numbers[0],
            "-m",
            "1",
            "-l",
            "1",
            "-d",
            str(hold_ms),
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port("udp")),
            "-mi",
            "127.0.0.1",
            "-mp",
            str(free_port("udp")),
            "-timeout",
            "30s",
            "-nostdin",
        ]
        self.workdir = workdir
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> SippCall:
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.terminate()
        async with asyncio.timeout(10):
            await self.process.wait()


async def test_asterisk_info(asterisk: Any) -> None:
    async with _client(asterisk) as client:
        info = await client.asterisk_info()
    version = info["system"]["version"]
    assert int(version.split(".")[0]) >= 20, version


async def test_bad_password_is_rejected_clearly(asterisk: Any) -> None:
    async with AriClient(
        asterisk.ari_url, asterisk.secrets.ari_user, "not-the-password", "x"
    ) as client:
        with pytest.raises(AriUnauthorized) as info:
            await client.asterisk_info()
        assert info.value.status == 401
        with pytest.raises(AriUnauthorized):
            async with asyncio.timeout(10):
                await client.run()


async def test_unknown_channel_is_not_found(asterisk: Any) -> None:
    async with _client(asterisk) as client:
        with pytest.raises(AriNotFound) as info:
            await client.get_channel("no-such-channel")
        assert "not found" in info.value.message.lower()
        with pytest.raises(AriNotFound):
            await client.hangup("no-such-channel")


async def test_event_socket_registers_the_app(running: tuple[AriClient, Inbox]) -> None:
    client, inbox = running
    app = await client.request("GET", f"/applications/{client.app}")
    assert app["name"] == client.app
    assert inbox.connects == 1


async def test_inbound_call_answer_play_hangup(
    running: tuple[AriClient, Inbox], asterisk: Any, tmp_path: Path
) -> None:
    client, inbox = running
    async with SippCall(asterisk, tmp_path):
        start = await inbox.wait(StasisStart)
        channel = start.channel
        assert channel.dialplan_exten == asterisk.settings.asterisk.service_numbers[0]
        await client.answer(channel.id)
        playback_id = await client.play(channel.id, "sound:hello-world", lang="en")
        started = await inbox.wait(PlaybackStarted, playback_id=playback_id)
        assert started.channel_id == channel.id
        finished = await inbox.wait(PlaybackFinished, playback_id=playback_id)
        assert finished.state == "done"
        assert (await client.get_channel(channel.id))["state"] == "Up"
        await client.hangup(channel.id)
        # With subscribeAll=false, StasisEnd is the last event about a channel we hung up.
        await inbox.wait(StasisEnd)
    # Every event of the call came in order on one lane, which is gone now.
    types = [e.type for e in inbox.events if e.route_id == channel.id]
    assert types.index("StasisStart") < types.index("PlaybackStarted")
    assert types.index("PlaybackFinished") < types.index("ChannelHangupRequest")
    assert types[-1] == "StasisEnd"
    await async_wait_for(lambda: client.lane_count == 0, 5, message="the call's lane reaped")


async def test_reconnects_after_asterisk_restart(
    running: tuple[AriClient, Inbox],
    asterisk: Any,
    tmp_path: Path,
    record_property: Any,
) -> None:
    client, inbox = running
    await asyncio.to_thread(asterisk.runtime.stop)
    await async_wait_for(lambda: not client.connected.is_set(), 10, message="socket lost")
    await asyncio.to_thread(asterisk.runtime.start)
    booted = time.monotonic()
    await client.wait_connected(30)
    reconnect_s = time.monotonic() - booted
    record_property("reconnect_after_boot_s", round(reconnect_s, 3))
    assert inbox.connects == 2
    assert client.connect_count == 2
    assert reconnect_s < 15  # backoff is capped at 10 s
    async with SippCall(asterisk, tmp_path, hold_ms=1000):
        start = await inbox.wait(StasisStart)
        await client.hangup(start.channel.id)
        await inbox.wait(StasisEnd)


async def test_bridge_snoop_and_variables(
    running: tuple[AriClient, Inbox], asterisk: Any, tmp_path: Path
) -> None:
    client, inbox = running
    async with SippCall(asterisk, tmp_path):
        caller = (await inbox.wait(StasisStart)).channel
        await client.answer(caller.id)
        await client.set_variable(caller.id, "HOTLINE_CALL", "call-1")
        assert await client.get_variable(caller.id, "HOTLINE_CALL") == "call-1"

        bridge = await client.create_bridge("mixing", name="call-1")
        await client.add_to_bridge(bridge["id"], [caller.id], role="caller")
        entered = await inbox.wait(ChannelEnteredBridge, bridge_id=bridge["id"])
        assert entered.channel.id == caller.id

        snoop = await client.snoop(caller.id, snoop_id=f"snoop-{caller.id}", app_args="tap")
        snooped = await inbox.wait(StasisStart, args=("tap",))
        assert snooped.channel.id == snoop["id"] == f"snoop-{caller.id}"
        await client.hangup(snoop["id"])
        await inbox.wait(StasisEnd, route_id=snoop["id"])

        await client.remove_from_bridge(bridge["id"], caller.id)
        await inbox.wait(ChannelLeftBridge, bridge_id=bridge["id"])
        await client.destroy_bridge(bridge["id"])
        assert all(b["id"] != bridge["id"] for b in await client.list_bridges())
        await client.hangup(caller.id, reason="normal")
        await inbox.wait(StasisEnd, route_id=caller.id)


async def test_bridge_recording(
    running: tuple[AriClient, Inbox], asterisk: Any, tmp_path: Path
) -> None:
    client, inbox = running
    async with SippCall(asterisk, tmp_path):
        caller = (await inbox.wait(StasisStart)).channel
        await client.answer(caller.id)
        bridge = await client.create_bridge("mixing")
        try:
            await client.add_to_bridge(bridge["id"], caller.id)
            name = f"ari-test-{caller.id}"
            await client.record_bridge(bridge["id"], name)
            started = await inbox.wait(RecordingStarted, name=name)
            assert started.bridge_id == bridge["id"]
            await client.stop_recording(name)
            finished = await inbox.wait(RecordingFinished, name=name)
            assert finished.route_id == bridge["id"]
            assert (asterisk.runtime.ari_recordings_dir / f"{name}.wav").is_file()
        finally:
            await client.destroy_bridge(bridge["id"])
            await client.hangup(caller.id)
