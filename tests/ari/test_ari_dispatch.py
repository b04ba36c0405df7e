"""Per-call ordered dispatch: order within a key, concurrency across keys, isolation, reaping."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
from ari_payloads import channel_json, destroyed, dtmf, event_json, playback, stasis_start
from hypothesis import given
from hypothesis import strategies as st

from hotline.ari import AriClient, Backoff, current_route_key, parse_event
from hotline.ari.events import ChannelDtmfReceived, Event
from hotline.testing import async_wait_for


@pytest.fixture
async def client() -> AsyncIterator[AriClient]:
    # No server: these tests feed events straight into dispatch().
    ari = AriClient("http://127.0.0.1:9", "u", "p", "hotline")
    yield ari
    await ari.close()


def _digits(event: Event) -> str | None:
    return event.digit if isinstance(event, ChannelDtmfReceived) else None


async def test_events_of_one_key_keep_order_while_keys_interleave(client: AriClient) -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    rng = random.Random(7)

    async def handler(event: Event) -> None:
        # Random yields make the lanes interleave; order within a lane must survive that.
        for _ in range(rng.randrange(4)):
            await asyncio.sleep(0)
        digit = _digits(event)
        if digit is not None and event.route_id:
            seen[event.route_id].append(digit)

    client.add_handler(handler)
    expected = {f"c{n}": [str(d % 10) for d in range(30)] for n in range(5)}
    for d in range(30):
        for channel, digits in expected.items():
            client.dispatch(parse_event(dtmf(channel, digits[d])))
    await async_wait_for(lambda: sum(map(len, seen.values())) == 150, 5)
    assert dict(seen) == expected


async def test_blocked_handler_delays_only_its_own_key(client: AriClient) -> None:
    release = asyncio.Event()
    handled: list[str] = []

    async def handler(event: Event) -> None:
        if event.route_id == "slow" and _digits(event) == "1":
            await release.wait()  # a handler stuck for as long as the test wants
        handled.append(f"{event.route_id}:{_digits(event)}")

    client.add_handler(handler)
    client.dispatch(parse_event(dtmf("slow", "1")))
    client.dispatch(parse_event(dtmf("slow", "2")))
    client.dispatch(parse_event(dtmf("fast", "1")))
    client.dispatch(parse_event(dtmf("fast", "2")))
    await async_wait_for(lambda: handled == ["fast:1", "fast:2"], 2)
    release.set()
    await async_wait_for(lambda: len(handled) == 4, 2)
    assert handled[2:] == ["slow:1", "slow:2"]


async def test_failing_handler_is_logged_and_isolated(
    client: AriClient, caplog: pytest.LogCaptureFixture
) -> None:
    handled: list[str] = []

    async def broken(event: Event) -> None:
        if _digits(event) == "1":
            raise RuntimeError("boom")

    async def recorder(event: Event) -> None:
        handled.append(f"{event.route_id}:{_digits(event)}")

    client.add_handler(broken)
    client.add_handler(recorder)
    with caplog.at_level(logging.ERROR, logger="hotline.ari.client"):
        for channel in ("a", "b"):
            client.dispatch(parse_event(dtmf(channel, "1")))
            client.dispatch(parse_event(dtmf(channel, "2")))
        await async_wait_for(lambda: len(handled) == 4, 2)
    # The second handler still saw the event the first one failed on, and the lane went on.
    assert sorted(handled) == ["a:1", "a:2", "b:1", "b:2"]
    failures = [r for r in caplog.records if "failed on ChannelDtmfReceived" in r.getMessage()]
    assert {r.getMessage().rsplit(" ", 1)[-1] for r in failures} == {"a", "b"}
    assert all(r.exc_info and "boom" in str(r.exc_info[1]) for r in failures)


async def test_bound_channels_share_one_lane_and_are_reaped(client: AriClient) -> None:
    seen: list[tuple[str | None, str, str | None]] = []

    async def handler(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append((current_route_key.get(), event.type, event.route_id))

    client.add_handler(handler)
    client.dispatch(parse_event(stasis_start("caller")))
    client.bind_key("caller", "call-1")  # the IVR binds once it knows the call
    client.bind_key("seat", "call-1")
    client.bind_key("pb-bridge", "call-1")
    client.dispatch(parse_event(stasis_start("seat", "seat")))
    client.dispatch(parse_event(playback("PlaybackFinished", "pb", "channel:caller", "done")))
    client.dispatch(parse_event(dtmf("seat", "9")))
    client.dispatch(parse_event(destroyed("caller")))
    client.dispatch(parse_event(destroyed("seat")))
    await async_wait_for(lambda: len(seen) == 6, 2)
    assert seen == [
        ("caller", "StasisStart", "caller"),
        ("call-1", "StasisStart", "seat"),
        ("call-1", "PlaybackFinished", "caller"),
        ("call-1", "ChannelDtmfReceived", "seat"),
        ("call-1", "ChannelDestroyed", "caller"),
        ("call-1", "ChannelDestroyed", "seat"),
    ]
    await async_wait_for(lambda: client.lane_count == 0, 2, message="lanes reaped")
    # Bindings of destroyed channels are forgotten; the bridge one stays until its own end.
    assert client.binding_count == 1
    client.dispatch(parse_event(event_json("BridgeDestroyed", bridge={"id": "pb-bridge"})))
    await async_wait_for(lambda: client.lane_count == 0 and client.binding_count == 0, 2)


async def test_idle_lane_ends_and_a_later_event_starts_a_new_one() -> None:
    handled: list[str | None] = []

    async def handler(event: Event) -> None:
        handled.append(_digits(event))

    async with AriClient("http://127.0.0.1:9", "u", "p", "app", lane_idle_timeout=0.05) as ari:
        ari.add_handler(handler)
        ari.dispatch(parse_event(dtmf("c1", "1")))
        await async_wait_for(lambda: ari.lane_count == 0, 2, message="idle lane reaped")
        ari.dispatch(parse_event(dtmf("c1", "2")))
        await async_wait_for(lambda: handled == ["1", "2"], 2)


async def test_route_key_can_be_overridden(client: AriClient) -> None:
    class OneLane(AriClient):
        def route_key(self, event: Event) -> str:
            return "everything"

    keys: list[str | None] = []

    async def handler(event: Event) -> None:
        keys.append(current_route_key.get())

    async with OneLane("http://127.0.0.1:9", "u", "p", "app") as ari:
        ari.add_handler(handler)
        ari.dispatch(parse_event(dtmf("a", "1")))
        ari.dispatch(parse_event(dtmf("b", "1")))
        await async_wait_for(lambda: len(keys) == 2, 2)
    assert keys == ["everything", "everything"]


async def test_global_events_and_close_cancels_lanes(client: AriClient) -> None:
    started = asyncio.Event()

    async def handler(event: Event) -> None:
        started.set()
        await asyncio.Event().wait()  # never returns: close() must still finish

    client.add_handler(handler)
    client.dispatch(parse_event(event_json("DeviceStateChanged", device_state={})))
    async with asyncio.timeout(2):
        await started.wait()
    assert client.lane_count == 1
    async with asyncio.timeout(2):
        await client.close()
    assert client.lane_count == 0


@given(seed=st.integers(0, 2**32 - 1), initial=st.floats(0.01, 1), cap=st.floats(1, 30))
def test_backoff_grows_with_jitter_up_to_the_cap(seed: int, initial: float, cap: float) -> None:
    backoff = Backoff(initial=initial, cap=cap, jitter=0.2, rng=random.Random(seed))
    delays = [backoff.next_delay() for _ in range(40)]
    for n, delay in enumerate(delays):
        base = min(cap, initial * 2**n)
        assert 0.8 * base - 1e-9 <= delay <= min(cap, 1.2 * base) + 1e-9
    assert delays[-1] >= 0.8 * cap  # it reached the cap and stays there
    backoff.reset()
    assert backoff.next_delay() <= 1.2 * initial + 1e-9


def test_default_backoff_is_200ms_to_10s() -> None:
    backoff = Backoff(rng=random.Random(1))
    first = backoff.next_delay()
    assert 0.16 <= first <= 0.24
    assert max(backoff.next_delay() for _ in range(20)) <= 10.0
    with pytest.raises(ValueError):
        Backoff(initial=0)


async def test_stasis_end_ends_the_lane_and_the_binding(client: AriClient) -> None:
    # Asterisk sends nothing more about a channel that left the app (not even ChannelDestroyed).
    handled: list[str] = []

    async def handler(event: Event) -> None:
        handled.append(event.type)

    client.add_handler(handler)
    client.bind_key("seat", "call-9")
    client.dispatch(parse_event(stasis_start("seat")))
    client.dispatch(parse_event(event_json("StasisEnd", channel=channel_json("seat"))))
    await async_wait_for(lambda: client.lane_count == 0, 2, message="lane reaped")
    assert handled == ["StasisStart", "StasisEnd"]
    assert client.binding_count == 0
