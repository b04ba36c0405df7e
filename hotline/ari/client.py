"""The hotline's one ARI client: REST calls plus one event WebSocket, on aiohttp.

Theory of operation
-------------------
REST. :meth:`AriClient.request` is the single place that talks HTTP. Query parameters are
flattened the way Asterisk expects (``None`` dropped, booleans as ``true``/``false``, lists
comma-joined); a JSON body is only used for ``variables``. Any HTTP error becomes a typed
:mod:`hotline.ari.errors` exception carrying Asterisk's ``message``; connection failures,
timeouts and 5xx become ``AriUnavailable``. The convenience methods below are one-liners over
it and add no policy.

Events. :meth:`AriClient.run` keeps ONE WebSocket to ``/ari/events?app=<app>`` open for as
long as the client lives. After every (re)connect it awaits the ``on_connect`` callback
*before* reading the first event, so the service can reconcile channels and bridges that are
still in Asterisk; a failing ``on_connect`` drops the socket and retries. Reconnects back off
exponentially with jitter (0.2 s doubling to a 10 s cap), and the backoff resets once a
connection has stayed up for ``stable_after`` seconds. Wrong credentials (401/403) are not
retried: ``run`` raises ``AriUnauthorized``.

Dispatch. Each parsed event gets a route key: its ``route_id`` (channel id; for playbacks and
recordings the channel/bridge in the target URI; bridge id for bridge events), mapped through
:meth:`bind_key` so that the IVR can fold the channels of one call (caller, seat, snoop) onto
one key. Every key has a *lane*: an asyncio queue drained by its own task, which awaits the
handlers one event at a time. So the events of one call are handled strictly in order, calls
run concurrently, and a slow handler delays only its own call. A handler that raises is logged
with the key and event type; the lane goes on. A lane task ends when its queue is empty and
its channel left the app (StasisEnd) or was destroyed, or its bridge was destroyed, or it has
been idle for ``lane_idle_timeout``. A later event for the same key simply starts a new lane;
the old lane had finished all its events, so order is kept. Bindings are dropped on the same
end events (a channel that comes back into Stasis must be bound again). StasisEnd counts as
an end because, with ``subscribeAll=false``, Asterisk 22 sends nothing more about a channel
that has left the app, not even ChannelDestroyed (measured).

This module must not hold call state or decide anything about a call.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from hotline.ari.errors import AriError, AriUnauthorized, AriUnavailable, error_for_status
from hotline.ari.events import BridgeDestroyed, ChannelDestroyed, Event, StasisEnd, parse_event

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]
OnConnect = Callable[[], Awaitable[None]]

#: The route key of the lane that is running the current handler (None outside a lane).
current_route_key: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_route_key", default=None
)

GLOBAL_KEY = ""  # lane for events that concern no channel or bridge


class Backoff:
    """Exponential reconnect delays with jitter; no I/O, so it is tested directly.

    The n-th delay is ``min(cap, initial * factor**n)`` scaled by a random factor in
    ``[1 - jitter, 1 + jitter]`` (never above ``cap``), so that many clients restarted
    together do not reconnect in lock-step.
    """

    def __init__(
        self,
        initial: float = 0.2,
        cap: float = 10.0,
        factor: float = 2.0,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < initial <= cap or factor < 1 or not 0 <= jitter < 1:
            raise ValueError("need 0 < initial <= cap, factor >= 1, 0 <= jitter < 1")
        self.initial, self.cap, self.factor, self.jitter = initial, cap, factor, jitter
        self._rng = rng or random.Random()
        self.attempt = 0

    def next_delay(self) -> float:
        base = min(self.cap, self.initial * self.factor**self.attempt)
        self.attempt += 1
        delay = base * (1 + self.jitter * (2 * self._rng.random() - 1))
        return min(self.cap, delay)

    def reset(self) -> None:
        self.attempt = 0


def encode_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Flatten query parameters the way ARI wants them."""
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = str(value)
    return out


def _seg(value: str) -> str:
    return quote(str(value), safe="")


class _Lane:
    __slots__ = ("closing", "queue", "task")

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.closing = False
        self.task: asyncio.Task[None] | None = None


class AriClient:
    """REST + WebSocket client for one Stasis application."""

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        app: str,
        *,
        session: aiohttp.ClientSession | None = None,
        on_connect: OnConnect | None = None,
        request_timeout: float = 10.0,
        heartbeat: float | None = 15.0,
        stable_after: float = 5.0,
        lane_idle_timeout: float = 30.0,
        backoff: Backoff | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        if not base.endswith("/ari"):
            base += "/ari"
        self.base_url = base
        self.app = app
        self.on_connect = on_connect
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        self._headers = {"Authorization": f"Basic {token}"}
        self._session = session
        self._own_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._heartbeat = heartbeat
        self._stable_after = stable_after
        self._lane_idle_timeout = lane_idle_timeout
        self.backoff = backoff or Backoff()
        self._handlers: list[Handler] = []
        self._bindings: dict[str, str] = {}
        self._lanes: dict[str, _Lane] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stop = asyncio.Event()
        self._run_task: asyncio.Task[Any] | None = None
        self.connected = asyncio.Event()
        #: Number of successful WebSocket connections so far (1 after the first connect).
        self.connect_count = 0

    async def __aenter__(self) -> AriClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # REST ------------------------------------------------------------------------------------
    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """One REST call; returns the decoded JSON (None for 204) or raises an AriError."""
        url = self.base_url + path
        try:
            async with self._get_session().request(
                method,
                url,
                params=encode_params(params),
                json=json,
                headers=self._headers,
                timeout=self._timeout,
            ) as response:
                body = await response.read()
                if response.status >= 400:
                    raise error_for_status(
                        response.status, method, path, _error_message(body, response.reason)
                    )
                if not body:
                    return None
                if response.content_type == "application/json":
                    return _json_loads(body)
                return body.decode("utf-8", "replace")
        except AriError:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise AriUnavailable(None, method, path, f"{type(exc).__name__}: {exc}") from exc

    # Asterisk and channels
    async def asterisk_info(self) -> dict[str, Any]:
        return await self.request("GET", "/asterisk/info")

    async def list_channels(self) -> list[dict[str, Any]]:
        return await self.request("GET", "/channels")

    async def get_channel(self, channel_id: str) -> dict[str, Any]:
        return await self.request("GET", f"/channels/{_seg(channel_id)}")

    async def answer(self, channel_id: str) -> None:
        """Answer; asked twice if the first reply does not come (answering is idempotent).

        Asterisk answers on the channel's SIP thread. When that thread is stalled (issue #5: a
        DNS timeout blocked it 5 s at a time) the channel is answered after our timeout; a
        caller given up on here would be left answered in our app with nobody driving the call.
        """
        path = f"/channels/{_seg(channel_id)}/answer"
        try:
            await self.request("POST", path)
        except AriUnavailable as exc:
            log.warning("%s; asking again", exc)
            await self.request("POST", path)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        """Reason: normal, busy, congestion, no_answer, unallocated, rejected, ..."""
        await self.request("DELETE", f"/channels/{_seg(channel_id)}", params={"reason": reason})

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/ring")

    async def ring_stop(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{_seg(channel_id)}/ring")

    async def play(
        self,
        channel_id: str,
        media: str | Iterable[str],
        playback_id: str | None = None,
        lang: str | None = None,
    ) -> str:
        """Start a playback and return its id (chosen here, so it is known before any event)."""
        return await self._play(f"/channels/{_seg(channel_id)}", media, playback_id, lang)

    async def play_on_bridge(
        self,
        bridge_id: str,
        media: str | Iterable[str],
        playback_id: str | None = None,
        lang: str | None = None,
    ) -> str:
        """Start a playback heard by everyone in the bridge; returns its id like ``play``."""
        return await self._play(f"/bridges/{_seg(bridge_id)}", media, playback_id, lang)

    async def _play(
        self, resource: str, media: str | Iterable[str], playback_id: str | None, lang: str | None
    ) -> str:
        playback_id = playback_id or str(uuid.uuid4())
        await self.request(
            "POST",
            f"{resource}/play/{_seg(playback_id)}",
            params={"media": _media(media), "lang": lang},
        )
        return playback_id

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{_seg(playback_id)}")

    async def get_variable(self, channel_id: str, variable: str) -> str:
        result = await self.request(
            "GET", f"/channels/{_seg(channel_id)}/variable", params={"variable": variable}
        )
        return str(result.get("value", "")) if isinstance(result, dict) else ""

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        await self.request(
            "POST",
            f"/channels/{_seg(channel_id)}/variable",
            params={"variable": variable, "value": value},
        )

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        await self.request(
            "POST", f"/channels/{_seg(channel_id)}/moh", params={"mohClass": moh_class}
        )

    async def stop_moh(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{_seg(channel_id)}/moh")

    async def continue_in_dialplan(
        self,
        channel_id: str,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        await self.request(
            "POST",
            f"/channels/{_seg(channel_id)}/continue",
            params={
                "context": context,
                "extension": extension,
                "priority": priority,
                "label": label,
            },
        )

    async def originate(
        self,
        endpoint: str,
        *,
        app_args: str | Iterable[str] = "",
        channel_id: str | None = None,
        caller_id: str | None = None,
        timeout: int = 30,  # noqa: ASYNC109 - ARI's ring timeout, not an asyncio one
        variables: Mapping[str, str] | None = None,
        originator: str | None = None,
        other_channel_id: str | None = None,
        formats: str | Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """Call ``endpoint`` (e.g. ``PJSIP/seat7``) into our app; returns the new Channel JSON.

        Its StasisStart (with ``app_args``) may arrive after this returns: wait for it before
        bridging the channel.
        """
        path = f"/channels/{_seg(channel_id)}" if channel_id else "/channels"
        return await self.request(
            "POST",
            path,
            params={
                "endpoint": endpoint,
                "app": self.app,
                "appArgs": _args(app_args),
                "callerId": caller_id,
                "timeout": timeout,
                "originator": originator,
                "otherChannelId": other_channel_id,
                "formats": formats,
            },
            json={"variables": dict(variables)} if variables else None,
        )

    async def create_channel(
        self,
        endpoint: str,
        *,
        app_args: str | Iterable[str] = "",
        channel_id: str | None = None,
        variables: Mapping[str, str] | None = None,
        originator: str | None = None,
        formats: str | Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """Create a channel in our app without dialling it yet (then :meth:`dial`)."""
        return await self.request(
            "POST",
            "/channels/create",
            params={
                "endpoint": endpoint,
                "app": self.app,
                "appArgs": _args(app_args),
                "channelId": channel_id,
                "originator": originator,
                "formats": formats,
            },
            json={"variables": dict(variables)} if variables else None,
        )

    async def dial(
        self,
        channel_id: str,
        caller: str | None = None,
        timeout: int | None = None,  # noqa: ASYNC109 - ARI's ring timeout
    ) -> None:
        await self.request(
            "POST",
            f"/channels/{_seg(channel_id)}/dial",
            params={"caller": caller, "timeout": timeout},
        )

    async def snoop(
        self,
        channel_id: str,
        spy: str = "in",
        whisper: str = "none",
        snoop_id: str | None = None,
        app_args: str | Iterable[str] = "",
    ) -> dict[str, Any]:
        """A snoop channel on ``channel_id`` placed into our app; returns its Channel JSON."""
        path = f"/channels/{_seg(channel_id)}/snoop"
        if snoop_id:
            path += f"/{_seg(snoop_id)}"
        return await self.request(
            "POST",
            path,
            params={"spy": spy, "whisper": whisper, "app": self.app, "appArgs": _args(app_args)},
        )

    async def external_media(
        self,
        *,
        external_host: str | None = None,
        format: str = "slin16",
        encapsulation: str | None = None,
        transport: str | None = None,
        connection_type: str | None = None,
        direction: str | None = None,
        channel_id: str | None = None,
        data: str | None = None,
        transport_data: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """An externalMedia channel (RTP, AudioSocket or WebSocket) in our app."""
        return await self.request(
            "POST",
            "/channels/externalMedia",
            params={
                "app": self.app,
                "external_host": external_host,
                "format": format,
                "encapsulation": encapsulation,
                "transport": transport,
                "connection_type": connection_type,
                "direction": direction,
                "channelId": channel_id,
                "data": data,
                "transport_data": transport_data,
            },
            json={"variables": dict(variables)} if variables else None,
        )

    # Bridges
    async def list_bridges(self) -> list[dict[str, Any]]:
        return await self.request("GET", "/bridges")

    async def get_bridge(self, bridge_id: str) -> dict[str, Any]:
        return await self.request("GET", f"/bridges/{_seg(bridge_id)}")

    async def create_bridge(
        self, type: str = "mixing", bridge_id: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        path = f"/bridges/{_seg(bridge_id)}" if bridge_id else "/bridges"
        return await self.request("POST", path, params={"type": type, "name": name})

    async def add_to_bridge(
        self,
        bridge_id: str,
        channels: str | Iterable[str],
        role: str | None = None,
        *,
        absorb_dtmf: bool | None = None,
        mute: bool | None = None,
        inhibit_connected_line_updates: bool | None = None,
    ) -> None:
        await self.request(
            "POST",
            f"/bridges/{_seg(bridge_id)}/addChannel",
            params={
                "channel": _ids(channels),
                "role": role,
                "absorbDTMF": absorb_dtmf,
                "mute": mute,
                "inhibitConnectedLineUpdates": inhibit_connected_line_updates,
            },
        )

    async def remove_from_bridge(self, bridge_id: str, channels: str | Iterable[str]) -> None:
        await self.request(
            "POST",
            f"/bridges/{_seg(bridge_id)}/removeChannel",
            params={"channel": _ids(channels)},
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{_seg(bridge_id)}")

    async def record_bridge(
        self,
        bridge_id: str,
        name: str,
        format: str = "wav",
        *,
        max_duration_seconds: int | None = None,
        max_silence_seconds: int | None = None,
        if_exists: str = "fail",
        beep: bool = False,
        terminate_on: str = "none",
    ) -> dict[str, Any]:
        """Record the bridge's mix to ``<spool>/recording/<name>.<format>``."""
        return await self.request(
            "POST",
            f"/bridges/{_seg(bridge_id)}/record",
            params={
                "name": name,
                "format": format,
                "maxDurationSeconds": max_duration_seconds,
                "maxSilenceSeconds": max_silence_seconds,
                "ifExists": if_exists,
                "beep": beep,
                "terminateOn": terminate_on,
            },
        )

    async def stop_recording(self, name: str) -> None:
        await self.request("POST", f"/recordings/live/{_seg(name)}/stop")

    # Events: routing ---------------------------------------------------------------------------
    def add_handler(self, handler: Handler) -> None:
        """Register ``async handler(event)``; handlers run in order, one event at a time per key.

        Inside a handler, :data:`current_route_key` holds the key of the lane running it.
        """
        self._handlers.append(handler)

    def remove_handler(self, handler: Handler) -> None:
        self._handlers.remove(handler)

    def bind_key(self, object_id: str, call_key: str) -> None:
        """Route future events about ``object_id`` (a channel or bridge) to ``call_key``.

        Bind as early as possible (in the handler of the channel's StasisStart, or before
        originating it): events already queued on the channel's own lane are still handled
        there, in order, and only then does that lane end.
        """
        self._bindings[object_id] = call_key
        own_lane = self._lanes.get(object_id)
        if own_lane is not None and call_key != object_id:
            own_lane.closing = True

    def unbind_key(self, object_id: str) -> None:
        self._bindings.pop(object_id, None)

    def route_key(self, event: Event) -> str:
        """The lane an event goes to; override to route differently."""
        object_id = event.route_id
        if object_id is None:
            return GLOBAL_KEY
        return self._bindings.get(object_id, object_id)

    @property
    def lane_count(self) -> int:
        """Number of live per-key lanes (for tests and metrics)."""
        return len(self._lanes)

    @property
    def binding_count(self) -> int:
        return len(self._bindings)

    def dispatch(self, event: Event) -> None:
        """Queue ``event`` on its lane (used by the WebSocket reader; public for adapters)."""
        key = self.route_key(event)
        lane = self._lanes.get(key)
        if lane is None:
            lane = _Lane()
            self._lanes[key] = lane
            lane.task = asyncio.create_task(self._run_lane(key, lane), name=f"ari-lane:{key}")
        lane.queue.put_nowait(event)
        if isinstance(event, StasisEnd | ChannelDestroyed | BridgeDestroyed):
            # Its events are over: let the lane end once drained, and forget the binding.
            lane.closing = True
            if event.route_id is not None:
                self._bindings.pop(event.route_id, None)
        else:
            lane.closing = False

    async def _run_lane(self, key: str, lane: _Lane) -> None:
        current_route_key.set(key)
        try:
            while True:
                if lane.queue.empty():
                    if lane.closing:
                        return
                    try:
                        async with asyncio.timeout(self._lane_idle_timeout):
                            event = await lane.queue.get()
                    except TimeoutError:
                        if lane.queue.empty():
                            return
                        continue
                else:
                    event = lane.queue.get_nowait()
                await self._handle(key, event)
        finally:
            # No await between the final empty check and here, so no event can be stranded.
            if self._lanes.get(key) is lane:
                del self._lanes[key]

    async def _handle(self, key: str, event: Event) -> None:
        for handler in list(self._handlers):
            try:
                await handler(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "ARI handler %s failed on %s for key %s",
                    getattr(handler, "__qualname__", handler),
                    event.type,
                    key,
                )

    # Events: the WebSocket ---------------------------------------------------------------------
    @property
    def events_url(self) -> str:
        base = self.base_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        return f"{base}/events"

    async def run(self) -> None:
        """Keep the event WebSocket connected until :meth:`close`; dispatch its events."""
        loop = asyncio.get_running_loop()
        self._run_task = asyncio.current_task()
        while not self._stop.is_set():
            connected_at: float | None = None
            try:
                async with self._get_session().ws_connect(
                    self.events_url,
                    params={"app": self.app, "subscribeAll": "false"},
                    headers=self._headers,
                    heartbeat=self._heartbeat,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
                ) as ws:
                    self._ws = ws
                    if self._stop.is_set():  # close() ran while we were connecting
                        break
                    connected_at = loop.time()
                    self.connect_count += 1
                    log.info("ARI event socket connected (%s, app %s)", self.base_url, self.app)
                    if self.on_connect is not None:
                        await self.on_connect()
                    if self._stop.is_set():
                        break
                    self.connected.set()
                    await self._read(ws)
                if not self._stop.is_set():
                    log.warning("ARI event socket closed by Asterisk")
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status in (401, 403):
                    raise AriUnauthorized(
                        exc.status, "GET", "/events", "ARI user name or password rejected"
                    ) from exc
                log.warning("ARI event socket refused (%s %s)", exc.status, exc.message)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                log.warning("ARI event socket unavailable: %s: %s", type(exc).__name__, exc)
            except AriError as exc:
                log.warning("ARI on_connect failed, reconnecting: %s", exc)
            except Exception:
                if self._stop.is_set():
                    break
                log.exception("ARI on_connect callback failed; reconnecting")
            finally:
                self._ws = None
                self.connected.clear()
            if self._stop.is_set():
                break
            if connected_at is not None and loop.time() - connected_at >= self._stable_after:
                self.backoff.reset()
            delay = self.backoff.next_delay()
            log.info("ARI reconnect in %.2f s", delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                try:
                    raw = json.loads(message.data)
                except ValueError:
                    log.warning("ARI sent a message that is not JSON: %.200r", message.data)
                    continue
                self.dispatch(parse_event(raw))
            elif message.type == aiohttp.WSMsgType.ERROR:
                log.warning("ARI event socket error: %s", ws.exception())
                return

    async def wait_connected(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            await self.connected.wait()

    async def close(self) -> None:
        """Stop :meth:`run`, end every lane and close the HTTP session if we made it."""
        self._stop.set()
        if self._ws is not None:
            await self._ws.close()
        run_task = self._run_task
        if run_task is not None and run_task is not asyncio.current_task() and not run_task.done():
            _, pending = await asyncio.wait({run_task}, timeout=5.0)
            for task in pending:  # stuck in a handshake or in on_connect: stop it the hard way
                task.cancel()
        lanes = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for task in lanes:
            task.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
        self._lanes.clear()
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None


def _error_message(body: bytes, reason: str | None) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    text = body.decode("utf-8", "replace").strip()
    return text[:200] or (reason or "")


def _json_loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def _media(media: str | Iterable[str]) -> str:
    return media if isinstance(media, str) else ",".join(media)


def _ids(ids: str | Iterable[str]) -> str:
    return ids if isinstance(ids, str) else ",".join(ids)


def _args(args: str | Iterable[str]) -> str | None:
    joined = args if isinstance(args, str) else ",".join(args)
    return joined or None
