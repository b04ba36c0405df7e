"""AudioSocket: the TCP protocol Asterisk's externalMedia speaks to us, and our server for it.

Theory of operation
-------------------
Asterisk (``externalMedia`` with ``encapsulation=audiosocket, transport=tcp``) connects to our
server on 127.0.0.1 and sends *frames*: a 3-byte header, ``kind`` (1 byte) and the payload
length (2 bytes, big-endian), then the payload. The first frame is ``UUID`` (16 raw bytes):
the connection id we gave Asterisk in the externalMedia ``data`` parameter, which tells us
whose audio this is. Then audio frames: ``0x10`` is signed-linear 8 kHz, ``0x12`` slin16
(what we ask for), ``0x11``..``0x18`` other rates; the PCM inside is little-endian. ``0x00``
means the channel hung up; ``0x03`` is a DTMF digit; ``0xff`` an error code.

``FrameParser`` is the sans-I/O half: bytes in, ``Frame`` objects out, tested without
sockets. ``AudioSocketServer`` is the I/O half: before the tap is created the owner registers
the connection id with ``expect(conn_id, sink)``; the server then hands that connection's
audio to ``sink.audio(pcm, rate)`` and calls ``sink.closed(reason)`` exactly once when the
stream ends (hang-up frame, EOF, error, or server close). A connection whose id nobody
expects is closed at once and logged: audio is never sent to the wrong call.

The sink is called on the event loop and must not block (the recogniser pool only queues).
Nothing is sent back to Asterisk: the tap is listen-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

log = logging.getLogger(__name__)

HEADER = struct.Struct(">BH")
MAX_PAYLOAD = 0xFFFF
UUID_TIMEOUT_S = 5.0


class Kind(IntEnum):
    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    AUDIO = 0x10  # slin 8 kHz
    AUDIO_12K = 0x11
    AUDIO_16K = 0x12
    AUDIO_24K = 0x13
    AUDIO_32K = 0x14
    AUDIO_44K = 0x15
    AUDIO_48K = 0x16
    AUDIO_96K = 0x17
    AUDIO_192K = 0x18
    ERROR = 0xFF


AUDIO_RATES: dict[int, int] = {
    Kind.AUDIO: 8000,
    Kind.AUDIO_12K: 12000,
    Kind.AUDIO_16K: 16000,
    Kind.AUDIO_24K: 24000,
    Kind.AUDIO_32K: 32000,
    Kind.AUDIO_44K: 44100,
    Kind.AUDIO_48K: 48000,
    Kind.AUDIO_96K: 96000,
    Kind.AUDIO_192K: 192000,
}


class ProtocolError(ValueError):
    """Bytes that are not AudioSocket framing."""


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    payload: bytes

    @property
    def rate(self) -> int | None:
        """Sample rate of an audio frame, None for other kinds."""
        return AUDIO_RATES.get(self.kind)

    @property
    def connection_id(self) -> uuid.UUID:
        if self.kind != Kind.UUID or len(self.payload) != 16:
            raise ProtocolError(f"not a UUID frame: kind {self.kind:#x}, {len(self.payload)} B")
        return uuid.UUID(bytes=self.payload)


def encode_frame(kind: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes does not fit in one frame")
    return HEADER.pack(kind, len(payload)) + payload


def encode_audio(pcm: bytes, kind: int = Kind.AUDIO_16K) -> Iterator[bytes]:
    """Frames carrying ``pcm`` (split if needed) — for tests and the benchmark's fake Asterisk."""
    step = MAX_PAYLOAD - MAX_PAYLOAD % 2
    for start in range(0, len(pcm), step):
        yield encode_frame(kind, pcm[start : start + step])


class FrameParser:
    """Incremental frame decoder: ``feed(bytes)`` returns the complete frames so far."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buffer)
            if kind not in Kind._value2member_map_:
                raise ProtocolError(f"unknown AudioSocket frame kind {kind:#x}")
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append(Frame(kind, bytes(self._buffer[HEADER.size : end])))
            del self._buffer[:end]
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)


class AudioSink(Protocol):
    def audio(self, pcm: bytes, rate: int) -> None: ...

    def closed(self, reason: str) -> None: ...


class AudioSocketServer:
    """The TCP server externalMedia connects to (see the module docstring)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._expected: dict[uuid.UUID, AudioSink] = {}
        self._connections: set[asyncio.Task[None]] = set()
        self.connections_total = 0
        self.rejected = 0

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("AudioSocket server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def address(self) -> str:
        """``host:port`` as externalMedia's ``external_host`` wants it."""
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self._port)
        log.info("AudioSocket server listening on %s", self.address)

    def expect(self, connection_id: uuid.UUID | str, sink: AudioSink) -> None:
        """Route the connection that will announce ``connection_id`` to ``sink``."""
        self._expected[uuid.UUID(str(connection_id))] = sink

    def forget(self, connection_id: uuid.UUID | str) -> None:
        self._expected.pop(uuid.UUID(str(connection_id)), None)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> AudioSocketServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self.connections_total += 1
        try:
            await self._connection(reader)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader) -> None:
        parser = FrameParser()
        sink: AudioSink | None = None
        conn_id: uuid.UUID | None = None
        reason = "eof"
        try:
            async with asyncio.timeout(UUID_TIMEOUT_S):
                while sink is None:
                    data = await reader.read(65536)
                    if not data:
                        return
                    frames = parser.feed(data)
                    if not frames:
                        continue
                    conn_id = frames[0].connection_id
                    sink = self._expected.pop(conn_id, None)
                    if sink is None:
                        self.rejected += 1
                        log.warning("AudioSocket connection %s is not expected: closed", conn_id)
                        return
                    if self._deliver(sink, frames[1:]):
                        sink.closed("hangup")
                        return
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if self._deliver(sink, parser.feed(data)):
                    reason = "hangup"
                    break
        except TimeoutError:
            self.rejected += 1
            log.warning("AudioSocket connection sent no UUID within %gs: closed", UUID_TIMEOUT_S)
            return
        except ProtocolError as exc:
            reason = "error"
            log.warning("AudioSocket connection %s: %s", conn_id, exc)
        except asyncio.CancelledError:
            reason = "server_closed"
            if sink is not None:
                sink.closed(reason)
            raise
        except ConnectionError:
            reason = "eof"
        if sink is not None:
            sink.closed(reason)

    @staticmethod
    def _deliver(sink: AudioSink, frames: list[Frame]) -> bool:
        """Hand audio frames to ``sink``; True once the call hung up."""
        for frame in frames:
            rate = frame.rate
            if rate is not None:
                if frame.payload:
                    sink.audio(frame.payload, rate)
            elif frame.kind == Kind.HANGUP:
                return True
            elif frame.kind == Kind.ERROR:
                log.warning("AudioSocket error frame: %s", frame.payload.hex())
        return False
