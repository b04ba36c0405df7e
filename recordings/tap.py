"""Media tap: copy one party's voice out of Asterisk to our AudioSocket server.

Theory of operation
-------------------
For a channel (the caller's or the seat's) ``start_tap`` builds, over ARI:

1. a snoop channel on it with ``spy=in`` (only what that party says, not what they hear);
2. an externalMedia channel, ``encapsulation=audiosocket, transport=tcp``, ``format=slin16``,
   ``external_host=<our AudioSocket server>``, ``data=<connection id>``: Asterisk connects to
   us and announces the connection id, which is how the audio finds its stream;
3. a mixing bridge holding the two, so the snoop's audio flows into the externalMedia channel.

The REST reply that creates a channel can arrive before the channel's StasisStart, and adding a
channel that is not yet in Stasis to a bridge fails (422, measured in 4 of 100 calls). So each
new channel's StasisStart is awaited (``StasisStartWaiter``, one AriClient handler) before the
channel is bridged. The channel ids are chosen here (``tap-snoop-<id>``, ``tap-em-<id>``) so
the waiter is armed before the request is sent and no StasisStart can be missed. The call
controller must ignore StasisStart events of channels whose id starts with ``TAP_PREFIX``,
and must not bind them to its call's route key (a handler of that lane may be the one
awaiting this tap).

``Tap.stop()`` hangs up both channels and destroys the bridge; it is idempotent and tolerates
objects that are already gone (the snoop dies with its target channel when the party hangs
up). A failure half-way through ``start_tap`` tears down what was made and raises
``TapFailed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from dataclasses import dataclass, field

from hotline.ari import AriClient
from hotline.ari.errors import AriError, AriNotFound
from hotline.ari.events import Event, StasisStart

log = logging.getLogger(__name__)

TAP_PREFIX = "tap-"
STASIS_TIMEOUT_S = 5.0


class TapFailed(RuntimeError):
    """The tap could not be set up (the channel left, Asterisk refused, timed out)."""


class StasisStartWaiter:
    """Resolves a future when a given channel id enters the Stasis app."""

    def __init__(self, ari: AriClient) -> None:
        self.ari = ari
        self._futures: dict[str, asyncio.Future[StasisStart]] = {}
        ari.add_handler(self.handle)

    def expect(self, channel_id: str) -> asyncio.Future[StasisStart]:
        future = asyncio.get_running_loop().create_future()
        self._futures[channel_id] = future
        return future

    def cancel(self, channel_id: str) -> None:
        future = self._futures.pop(channel_id, None)
        if future is not None and not future.done():
            future.cancel()

    async def handle(self, event: Event) -> None:
        if isinstance(event, StasisStart):
            future = self._futures.pop(event.channel.id, None)
            if future is not None and not future.done():
                future.set_result(event)


_waiters: weakref.WeakKeyDictionary[AriClient, StasisStartWaiter] = weakref.WeakKeyDictionary()


def waiter_for(ari: AriClient) -> StasisStartWaiter:
    """The one waiter registered on ``ari`` (made on first use)."""
    waiter = _waiters.get(ari)
    if waiter is None:
        waiter = _waiters[ari] = StasisStartWaiter(ari)
    return waiter


def is_tap_channel(channel_id: str) -> bool:
    """True for channels made by a tap: the call controller leaves them alone."""
    return channel_id.startswith(TAP_PREFIX)


@dataclass
class Tap:
    ari: AriClient
    channel_id: str  # the tapped party's channel
    connection_id: str
    bridge_id: str
    snoop_id: str
    media_id: str
    stopped: bool = field(default=False)

    async def stop(self) -> None:
        """Hang up the tap's channels and destroy its bridge (idempotent, best effort)."""
        if self.stopped:
            return
        self.stopped = True
        for channel in (self.media_id, self.snoop_id):
            with contextlib.suppress(AriNotFound):
                try:
                    await self.ari.hangup(channel)
                except AriError as exc:
                    if not isinstance(exc, AriNotFound):
                        log.warning("tap %s: hangup %s failed: %s", self.snoop_id, channel, exc)
        with contextlib.suppress(AriNotFound):
            try:
                await self.ari.destroy_bridge(self.bridge_id)
            except AriError as exc:
                if not isinstance(exc, AriNotFound):
                    log.warning("tap bridge %s: destroy failed: %s", self.bridge_id, exc)


async def start_tap(
    ari: AriClient,
    channel_id: str,
    connection_id: str,
    audiosocket_address: str,
    *,
    timeout: float = STASIS_TIMEOUT_S,  # noqa: ASYNC109 - bounds each StasisStart wait
) -> Tap:
    """Tap what ``channel_id`` says into the AudioSocket server at ``audiosocket_address``."""
    waiter = waiter_for(ari)
    short = uuid.uuid4().hex[:12]
    tap = Tap(
        ari,
        channel_id,
        connection_id,
        bridge_id=f"{TAP_PREFIX}bridge-{short}",
        snoop_id=f"{TAP_PREFIX}snoop-{short}",
        media_id=f"{TAP_PREFIX}em-{short}",
    )
    snoop_started = waiter.expect(tap.snoop_id)
    media_started = waiter.expect(tap.media_id)
    try:
        await ari.create_bridge("mixing", bridge_id=tap.bridge_id, name=tap.bridge_id)
        await ari.snoop(channel_id, spy="in", snoop_id=tap.snoop_id, app_args="tap")
        await ari.external_media(
            external_host=audiosocket_address,
            format="slin16",
            encapsulation="audiosocket",
            transport="tcp",
            channel_id=tap.media_id,
            data=connection_id,
        )
        async with asyncio.timeout(timeout):
            await snoop_started
            await media_started
        await ari.add_to_bridge(tap.bridge_id, [tap.snoop_id, tap.media_id])
    except (AriError, TimeoutError, asyncio.CancelledError) as exc:
        waiter.cancel(tap.snoop_id)
        waiter.cancel(tap.media_id)
        await tap.stop()
        if isinstance(exc, asyncio.CancelledError):
            raise
        what = "timed out waiting for StasisStart" if isinstance(exc, TimeoutError) else str(exc)
        raise TapFailed(f"tap on {channel_id}: {what}") from exc
    return tap
