"""The event WebSocket against a stand-in server: connect, on_connect first, reconnect, close."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from ari_fake import APP, PASSWORD, USER, FakeAsterisk
from ari_payloads import dtmf, stasis_start

from hotline.ari import AriClient, AriUnauthorized, Backoff
from hotline.ari.events import Event, StasisStart, UnknownEvent
from hotline.testing import async_wait_for


def fast_backoff() -> Backoff:
    return Backoff(initial=0.01, cap=0.05)


@pytest.fixture
async def make_client(
    fake_asterisk: FakeAsterisk,
) -> AsyncIterator[Callable[..., AriClient]]:
    made: list[tuple[AriClient, asyncio.Task[None]]] = []

    def make(**kwargs: object) -> AriClient:
        kwargs.setdefault("backoff", fast_backoff())
        ari = AriClient(fake_asterisk.url, USER, PASSWORD, APP, **kwargs)  # type: ignore[arg-type]
        made.append((ari, asyncio.create_task(ari.run())))
        return ari

    yield make
    for ari, task in made:
        await ari.close()
        async with asyncio.timeout(5):
            await asyncio.gather(task, return_exceptions=True)


class Recorder:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.events: list[Event] = []

    async def on_connect(self) -> None:
        # Give the server time to push its first event: it must still wait for us.
        await asyncio.sleep(0.05)
        self.log.append("on_connect")

    async def handle(self, event: Event) -> None:
        self.events.append(event)
        self.log.append(event.type)


async def test_connects_and_reconciles_before_dispatching(
    fake_asterisk: FakeAsterisk, make_client: Callable[..., AriClient]
) -> None:
    fake_asterisk.on_ws_connect = [stasis_start("c1", "inbound")]
    rec = Recorder()
    ari = make_client(on_connect=rec.on_connect)
    ari.add_handler(rec.handle)
    await ari.wait_connected(5)
    await async_wait_for(lambda: len(rec.events) == 1, 5)
    assert rec.log == ["on_connect", "StasisStart"]
    assert isinstance(rec.events[0], StasisStart) and rec.events[0].args == ("inbound",)
    assert fake_asterisk.ws_queries == [{"app": APP, "subscribeAll": "false"}]


async def test_reconnects_after_the_socket_drops(
    fake_asterisk: FakeAsterisk, make_client: Callable[..., AriClient]
) -> None:
    rec = Recorder()
    ari = make_client(on_connect=rec.on_connect)
    ari.add_handler(rec.handle)
    await fake_asterisk.wait_sockets(1)
    await fake_asterisk.send(dtmf("c1", "1"))
    await async_wait_for(lambda: len(rec.events) == 1, 5)

    await fake_asterisk.drop()  # Asterisk restarts
    await fake_asterisk.wait_sockets(2)
    await ari.wait_connected(5)
    await fake_asterisk.send(stasis_start("c2"))
    await async_wait_for(lambda: len(rec.events) == 2, 5)
    assert rec.log == ["on_connect", "ChannelDtmfReceived", "on_connect", "StasisStart"]
    assert ari.connect_count == 2


async def test_retries_while_asterisk_is_unavailable(
    fake_asterisk: FakeAsterisk, make_client: Callable[..., AriClient]
) -> None:
    fake_asterisk.ws_status = 503
    ari = make_client()
    await async_wait_for(lambda: ari.backoff.attempt >= 3, 5, message="several retries")
    assert not ari.connected.is_set()
    fake_asterisk.ws_status = None
    await ari.wait_connected(5)
    assert ari.connect_count == 1


async def test_backoff_resets_after_a_stable_connection(
    fake_asterisk: FakeAsterisk, make_client: Callable[..., AriClient]
) -> None:
    fake_asterisk.ws_status = 503
    ari = make_client(stable_after=0.0)
    await async_wait_for(lambda: ari.backoff.attempt >= 3, 5)
    fake_asterisk.ws_status = None
    await fake_asterisk.wait_sockets(1)
    await ari.wait_connected(5)
    await fake_asterisk.drop()
    await fake_asterisk.wait_sockets(2)
    # One delay was taken after the stable connection, from a reset counter.
    assert ari.backoff.attempt == 1


async def test_failing_on_connect_drops_and_retries(
    fake_asterisk: FakeAsterisk, make_client: Callable[..., AriClient]
) -> None:
    fake_asterisk.on_ws_connect = [stasis_start("c1")]
    calls: list[int] = []
    rec = Recorder()

    async def flaky_on_connect() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database blip")

    ari = make_client(on_connect=flaky_on_connect)
    ari.add_handler(rec.handle)
    await ari.wait_connected(5)
    await async_wait_for(lambda: len(rec.events) == 1, 5)
    # The event of the failed attempt was never dispatched; the second attempt delivered it.
    assert len(calls) == 2 and ari.connect_count == 2
    assert len(fake_asterisk.sockets) == 2


async def test_bad_password_stops_run(fake_asterisk: FakeAsterisk) -> None:
    ari = AriClient(fake_asterisk.url, USER, "wrong", APP, backoff=fast_backoff())
    with pytest.raises(AriUnauthorized, match="password"):
        async with asyncio.timeout(5):
            await ari.run()
    await ari.close()


async def test_junk_messages_do_not_stop_the_reader(
    fake_asterisk: FakeAsterisk, make_client: Callable[..., AriClient]
) -> None:
    rec = Recorder()
    ari = make_client()
    ari.add_handler(rec.handle)
    await fake_asterisk.wait_sockets(1)
    await fake_asterisk.send_text("not json")
    await fake_asterisk.send({"type": "SomethingNew", "x": 1})
    await fake_asterisk.send(dtmf("c1", "3"))
    await async_wait_for(lambda: len(rec.events) == 2, 5)
    assert isinstance(rec.events[0], UnknownEvent)
    assert rec.events[1].type == "ChannelDtmfReceived"
    assert ari.connect_count == 1


@pytest.mark.parametrize("state", ["connected", "backing_off"])
async def test_close_stops_run_promptly(fake_asterisk: FakeAsterisk, state: str) -> None:
    if state == "backing_off":
        fake_asterisk.ws_status = 503
    ari = AriClient(fake_asterisk.url, USER, PASSWORD, APP, backoff=Backoff(initial=30, cap=30))
    task = asyncio.create_task(ari.run())
    if state == "connected":
        await ari.wait_connected(5)
    else:
        await async_wait_for(lambda: ari.backoff.attempt == 1, 5)
    async with asyncio.timeout(2):
        await ari.close()
        await task  # returns normally, no exception
    assert not ari.connected.is_set()
